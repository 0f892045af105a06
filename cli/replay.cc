#include "cli/replay.h"

#include <fmt/format.h>

#include <fstream>

#include "cli/campaign_io.h"
#include "reference/trace/trace.h"

namespace vmem::cli {

int run_replay(const std::string& trace_file, const std::string& record_file,
               const std::string& fault) {
  auto trace = parse_trace(read_text(trace_file));
  if (!trace.has_value()) {
    fmt::print(stderr, "{}: {}\n", trace_file, trace.error().message);
    return 2;
  }
  const ReplayReport r = replay_trace(*trace, fault.empty() ? std::nullopt : std::optional(fault));
  if (!record_file.empty()) {
    std::ofstream out(record_file);
    out << format_trace(r.recorded);
    if (!out) {
      fmt::print(stderr, "cannot write {}\n", record_file);
      return 2;
    }
  }
  if (r.error) {
    fmt::print(stderr, "{}: {}\n", trace_file, *r.error);
    return 2;
  }
  if (r.mismatch) {
    fmt::print("{}:{}: {}\n  expected: {}\n  observed: {}\n", trace_file, r.mismatch->line,
               r.mismatch->op, r.mismatch->expected, r.mismatch->observed);
    fmt::print("{} steps replayed, 1 mismatch\n", r.steps);
    return 1;
  }
  fmt::print("{}: {} steps replayed, every observation matched\n", trace_file, r.steps);
  return 0;
}

}  // namespace vmem::cli
