// Small readers for what fuzz engines and their tools leave behind (logs, status lines,
// directories of inputs), and the way `vmemcheck fuzz` prints figures.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace vmem::cli {

using Clock = std::chrono::steady_clock;

// Seconds since `t0`.
double since(Clock::time_point t0);

// 1234567 -> "1,234,567", as the figures in docs/fuzzing.md are written.
std::string grouped(uint64_t v);

// The whole file, or "" when it cannot be read.
std::string read_text(const std::filesystem::path& p);
std::vector<std::string> lines_of(const std::string& text);
// The file's last `n` lines, each indented by two spaces (for error messages).
std::string last_lines(const std::filesystem::path& p, size_t n);

// Regular files directly in `dir`, sorted by name; AFL's README.txt is not an input.
std::vector<std::filesystem::path> files_in(const std::filesystem::path& dir);

// The number right after `label` in `line` (e.g. "cov: " in "... cov: 3021 ft: ..."), if any.
std::optional<uint64_t> number_after(const std::string& line, const std::string& label);

}  // namespace vmem::cli
