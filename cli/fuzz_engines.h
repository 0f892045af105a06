// The two engines a campaign runs, behind one face: libFuzzer (fork mode for --jobs > 1) and
// AFL++ (one main instance and --jobs - 1 secondaries), each for a bounded time, with a progress
// line every --status-interval seconds and OUT/progress.tsv for the plot. AFL++ exits 0 after
// finding crashes: its crashes/ directories are read, not its exit status.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "cli/fuzz_campaign.h"
#include "cli/process_group.h"
#include "reference/base/result.h"

namespace vmem::cli {

// What the engine reports as it runs (the figures of its status lines or stats files).
struct Stats {
  uint64_t execs = 0;
  uint64_t exec_per_s = 0;  // libFuzzer's fork mode: the last finished job's own average
  uint64_t coverage = 0;    // libFuzzer: cov (edges); AFL++: edges_found
  uint64_t features = 0;    // libFuzzer only
  uint64_t corpus = 0;
  uint64_t findings = 0;  // crash files so far
};

// A campaign as `vmemcheck fuzz` prepared it: the options, the binaries found, and OUT's layout
// (corpus/ a copy of the seeds the engine grows, crashes/, logs/).
struct Campaign {
  FuzzOptions o;
  bool afl = false;
  unsigned seconds = 0;
  std::filesystem::path out, corpus, crashes, logs;
  std::filesystem::path engine;  // <target>_fuzzer or <target>_afl
  std::filesystem::path replay;  // <target>_replay of the same build, or the engine binary
  std::filesystem::path dict;    // empty: none
  uint64_t corpus_before = 0;
};

// How the engine's run went.
struct EngineRun {
  Stats stats;
  double wall = 0;
  bool timed_out = false;
  bool interrupted = false;
  std::string failure;  // the engine did not run as asked
  std::string note;     // how the engine ended, when it matters
};

// Runs the campaign's engine until its time is up (plus a margin for wrapping up), or Ctrl-C.
// The figures are the engine's own; crashes land in c.crashes, the corpus in c.corpus.
Result<EngineRun> libfuzzer_fuzz(const Campaign& c);
Result<EngineRun> afl_fuzz(const Campaign& c);

// An AFL++ tool (afl-cmin, afl-tmin) from `in` to `out`, run on the campaign's engine binary.
Command afl_tool(const Campaign& c, const char* tool, const std::filesystem::path& in,
                 const std::filesystem::path& out, const std::filesystem::path& log);

}  // namespace vmem::cli
