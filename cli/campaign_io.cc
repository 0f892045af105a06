#include "cli/campaign_io.h"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>

namespace vmem::cli {

namespace fs = std::filesystem;

double since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::string grouped(uint64_t v) {
  const std::string digits = std::to_string(v);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    out.push_back(line);
  return out;
}

std::string last_lines(const fs::path& p, size_t n) {
  const std::vector<std::string> all = lines_of(read_text(p));
  const size_t from = all.size() > n ? all.size() - n : 0;
  std::string out;
  for (size_t i = from; i < all.size(); ++i)
    out += "  " + all[i] + "\n";
  return out;
}

// Regular files directly in `dir`, sorted by name; AFL's README.txt is not an input.
std::vector<fs::path> files_in(const fs::path& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return out;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.is_regular_file() && e.path().filename() != "README.txt") out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// The number right after `label` in `line` (e.g. "cov: " in "... cov: 3021 ft: ..."), if any.
std::optional<uint64_t> number_after(const std::string& line, const std::string& label) {
  const size_t at = line.find(label);
  if (at == std::string::npos) return std::nullopt;
  size_t i = at + label.size();
  if (i >= line.size() || !std::isdigit(static_cast<unsigned char>(line[i]))) return std::nullopt;
  uint64_t v = 0;
  for (; i < line.size() && std::isdigit(static_cast<unsigned char>(line[i])); ++i)
    v = v * 10 + static_cast<uint64_t>(line[i] - '0');
  return v;
}

}  // namespace vmem::cli
