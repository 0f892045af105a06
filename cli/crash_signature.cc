#include "cli/crash_signature.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <iterator>
#include <vector>

#include "cli/campaign_io.h"

namespace vmem::cli {

namespace {

// The oracle line with its numbers blanked, so the same broken oracle on other values is one
// crash.
std::string without_numbers(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size();) {
    if (std::isdigit(static_cast<unsigned char>(s[i]))) {
      if (s[i] == '0' && i + 1 < s.size() && (s[i + 1] == 'x' || s[i + 1] == 'X')) i += 2;
      while (i < s.size() && std::isxdigit(static_cast<unsigned char>(s[i])))
        ++i;
      out += 'N';
    } else {
      out += s[i++];
    }
  }
  return out;
}

// The runtime's own frames, which every crash shares.
bool runtime_frame(const std::string& fn) {
  static const char* const prefixes[] = {"__sanitizer",
                                         "__asan",
                                         "__ubsan",
                                         "__interceptor",
                                         "__GI_",
                                         "__libc",
                                         "abort",
                                         "raise",
                                         "gsignal",
                                         "fuzzer::",
                                         "__pthread",
                                         "pthread_kill",
                                         "std::__terminate",
                                         "__cxa",
                                         "__assert",
                                         "_start",
                                         "main"};
  return std::any_of(std::begin(prefixes), std::end(prefixes),
                     [&](const char* p) { return fn.rfind(p, 0) == 0; });
}

}  // namespace

// What a replay printed -> its signature: the oracle line if there is one, otherwise the
// sanitizer's kind and the first three frames of its first stack that are not the runtime's,
// otherwise how the process ended.
Signature signature_of(const std::string& log, const Exit& e) {
  Signature s;
  std::vector<std::string> frames;
  bool stack_done = false;
  for (const std::string& line : lines_of(log)) {
    const size_t oracle_at = line.find(" oracle: ");
    if (s.oracle.empty() && oracle_at != std::string::npos && oracle_at > 0 &&
        line.find(' ') == oracle_at) {
      s.oracle = line;
    }
    if (s.headline.empty()) {
      const size_t err = line.find("ERROR: ");
      const size_t ub = line.find("runtime error: ");
      if (ub != std::string::npos)
        s.headline = line.substr(ub);
      else if (err != std::string::npos &&
               line.find("libFuzzer: deadly signal") == std::string::npos)
        s.headline = line.substr(err + 7);
    }
    // "    #3 0x55d0c1 in vmem::Device::plug(...) /work/main/reference/mem/device.cc:120:7"
    const size_t hash = line.find_first_not_of(' ');
    if (hash == std::string::npos || line[hash] != '#' || stack_done) continue;
    const auto idx = number_after(line, "#");
    if (idx && *idx == 0 && !frames.empty()) {
      stack_done = true;
      continue;
    }
    const size_t in = line.find(" in ");
    if (in == std::string::npos) continue;
    std::string fn = line.substr(in + 4);
    fn = fn.substr(0, fn.find(" (BuildId: "));
    const size_t last = fn.rfind(' ');
    if (last != std::string::npos && (fn[last + 1] == '/' || fn.compare(last + 1, 2, "(/") == 0))
      fn = fn.substr(0, last);
    if (!runtime_frame(fn)) frames.push_back(fn);
  }
  // The kind: "AddressSanitizer: heap-buffer-overflow on address ..." -> up to " on ".
  std::string kind = s.headline.substr(0, s.headline.find(" on "));
  kind = kind.substr(0, kind.find(" at pc"));
  if (kind.rfind("runtime error: ", 0) == 0) kind = without_numbers(kind.substr(0, 60));
  s.reproduced = e.code != 0 || e.signal != 0;
  if (!s.oracle.empty()) {
    s.key = "oracle: " + without_numbers(s.oracle);
  } else if (!frames.empty()) {
    frames.resize(std::min<size_t>(frames.size(), 3));
    s.key = fmt::format("{}: {}", kind.empty() ? "crash" : kind, fmt::join(frames, " < "));
  } else if (e.timed_out) {
    s.key = "timeout (no stack)";
  } else if (e.signal != 0) {
    s.key = fmt::format("signal {}{}{}", e.signal, kind.empty() ? "" : ": ", kind);
  } else if (e.code != 0) {
    s.key = fmt::format("exit status {}{}{}", e.code, kind.empty() ? "" : ": ", kind);
  } else {
    s.key = "does not reproduce";
  }
  return s;
}

// FNV-1a, for short stable names of crash signatures.
std::string short_hash(const std::string& s) {
  uint32_t h = 2166136261u;
  for (unsigned char c : s)
    h = (h ^ c) * 16777619u;
  return fmt::format("{:08x}", h);
}

}  // namespace vmem::cli
