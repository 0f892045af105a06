// `vmemcheck fuzz`: a fuzzing campaign on one fuzz target (issue "fuzzers", Campaigns). Runs the
// target's libFuzzer binary (fork mode for --jobs > 1) or AFL++ (one main, --jobs - 1
// secondaries) for a bounded time, prints progress, then merges the corpus, deduplicates the
// crashes by their oracle line or top stack frames, minimizes each and turns it into a regression
// (a trace for `ops`, the raw input otherwise), and writes OUT/summary.md and OUT/summary.json
// (with a coverage report and a plot when the tools and binaries are there). docs/fuzzing.md.
#pragma once

#include <string>

namespace vmem::cli {

struct FuzzOptions {
  std::string target;  // migration_stream, virtqueue, transport, ops, driver, qemu_diff
  std::string engine = "libfuzzer";  // libfuzzer | afl
  std::string time = "10m";          // 90, 90s, 10m, 2h, 1h30m
  unsigned jobs = 1;
  std::string out;  // default: build/campaigns/<target>-<engine> (git ignores build/)
  bool resume = false;
  // Where <target>_fuzzer (or _afl) and <target>_replay are: a build directory or its fuzz/.
  // Default: build/fuzz/fuzz (libfuzzer), build/afl/fuzz (afl).
  std::string build_dir;
  std::string coverage_build_dir = "build/coverage/fuzz";  // <target>_replay with coverage
  std::string seeds;                                       // default: corpus/<target>
  // A dictionary (-dict= / -x); default: corpus/dictionaries/<target>.dict when it exists.
  std::string dict;
  unsigned status_interval = 10;  // seconds between progress lines
  unsigned minimize_time = 30;    // seconds per unique crash
  unsigned input_timeout = 10;    // seconds per input (-timeout, -t)
};

// Exit status: 0 when the campaign ran and found nothing, 1 when it found crashes, 2 on a usage
// error, a missing binary or an engine that failed to run.
int run_fuzz(const FuzzOptions& options);

}  // namespace vmem::cli
