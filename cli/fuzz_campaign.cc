#include "cli/fuzz_campaign.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "cli/campaign_io.h"
#include "cli/campaign_report.h"
#include "cli/crash_signature.h"
#include "cli/fuzz_engines.h"
#include "cli/process_group.h"
#include "conformance/target/child_process.h"
#include "reference/base/result.h"

namespace vmem::cli {

namespace {

namespace fs = std::filesystem;
using nlohmann::ordered_json;

const char* const kTargets[] = {"migration_stream", "virtqueue", "transport", "ops",
                                "driver",           "qemu_diff"};

// 90, 90s, 10m, 2h, 1h30m -> seconds.
Result<unsigned> parse_duration(const std::string& s) {
  const Error bad{fmt::format("bad --time '{}' (examples: 90, 90s, 10m, 1h30m)", s)};
  uint64_t total = 0;
  size_t i = 0;
  while (i < s.size()) {
    size_t j = i;
    while (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j])))
      ++j;
    if (j == i || j - i > 9) return unexpected(bad);
    const uint64_t v = std::stoull(s.substr(i, j - i));
    uint64_t unit = 1;
    if (j < s.size()) {
      switch (s[j]) {
        case 's':
          unit = 1;
          break;
        case 'm':
          unit = 60;
          break;
        case 'h':
          unit = 3600;
          break;
        default:
          return unexpected(bad);
      }
      ++j;
    } else if (i != 0) {
      return unexpected(bad);  // "1h30": minutes or seconds?
    }
    total += v * unit;
    i = j;
  }
  if (total == 0 || total > 7 * 24 * 3600)
    return unexpected(Error{fmt::format("--time '{}' must be between 1 s and 7 days", s)});
  return static_cast<unsigned>(total);
}

struct Merged {
  std::string command;
  // The coverage of the merged corpus as the merge counted it: libFuzzer's edges and features,
  // afl-cmin's tuples (an edge and a bucket of its hit count).
  std::optional<uint64_t> edges, features, tuples;
};

// Merge and minimize the corpus into OUT/corpus.min: libFuzzer's -merge=1, or afl-cmin.
Result<Merged> minimize_corpus(const Campaign& c) {
  const fs::path min = c.out / "corpus.min";
  fs::remove_all(min);
  Command cmd;
  cmd.log = c.logs / "merge.log";
  fs::remove(cmd.log);
  if (c.afl) {
    cmd = afl_tool(c, "afl-cmin", c.corpus, min, cmd.log);
    // afl-cmin refuses directories under /tmp unless told: the campaign owns its --out.
    cmd.env.push_back("AFL_ALLOW_TMP=1");
  } else {
    fs::create_directories(min);
    cmd.argv = {c.engine.string(), "-merge=1", fmt::format("-timeout={}", c.o.input_timeout),
                min.string(), c.corpus.string()};
  }
  VMEM_ASSIGN_OR_RETURN(const Exit e, run_bounded(cmd, std::max(120.0, c.seconds / 2.0)));
  if (e.code != 0) {
    return unexpected(
        Error{fmt::format("{} ({}); see {}", cmd.argv[0], describe(e), cmd.log.string())});
  }
  Merged m;
  m.command = fmt::format("{}", fmt::join(cmd.argv, " "));
  // "MERGE-OUTER: 457 new files with 18474 new features added; 3279 new coverage edges", or
  // afl-cmin's "Found 1234 unique tuples across 567 files."
  for (const std::string& line : lines_of(read_text(cmd.log))) {
    if (line.rfind("MERGE-OUTER: ", 0) == 0 &&
        line.find(" new coverage edges") != std::string::npos) {
      m.features = number_after(line, " files with ");
      m.edges = number_after(line, "added; ");
    }
    if (const size_t at = line.find("Found ");
        at != std::string::npos && line.find(" unique tuples") != std::string::npos)
      m.tuples = number_after(line.substr(at), "Found ");
  }
  return m;
}

// Replays one input and reads its signature. The engine binary is used for its sanitizer
// reports (libFuzzer builds have ASan+UBSan); UBSan is asked for a stack.
Result<Signature> replay(const Campaign& c, const fs::path& input, const fs::path& log) {
  fs::remove(log);
  Command cmd{{c.engine.string(), input.string()},
              {"UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1", "AFL_NO_UI=1"},
              log};
  if (!c.afl) cmd.argv.insert(cmd.argv.begin() + 1, "-runs=1");
  VMEM_ASSIGN_OR_RETURN(const Exit e, run_bounded(cmd, std::max(60u, 3 * c.o.input_timeout)));
  return signature_of(read_text(log), e);
}

struct UniqueCrash {
  std::string name;  // <target>-<hash of the key>
  Signature sig;
  std::vector<fs::path> files;
  fs::path minimized;
  std::string minimize_note;
  fs::path regression;
  std::string regression_note;
};

// Minimizes a crash within --minimize-time: libFuzzer's -minimize_crash=1, or afl-tmin. The
// result is kept only if it still crashes the same way.
void minimize_crash(const Campaign& c, UniqueCrash& u) {
  const fs::path dir = c.out / "crashes.min";
  fs::create_directories(dir);
  const fs::path raw = u.files.front();
  const fs::path min = dir / u.name;
  fs::remove(min);
  Command cmd;
  cmd.log = c.logs / fmt::format("minimize-{}.log", u.name);
  fs::remove(cmd.log);
  if (c.afl) {
    cmd = afl_tool(c, "afl-tmin", raw, min, cmd.log);
  } else {
    cmd.argv = {c.engine.string(),
                "-minimize_crash=1",
                fmt::format("-max_total_time={}", c.o.minimize_time),
                fmt::format("-timeout={}", c.o.input_timeout),
                "-exact_artifact_path=" + min.string(),
                raw.string()};
  }
  const auto e = run_bounded(cmd, c.o.minimize_time + 30.0);
  const uint64_t before = fs::file_size(raw);
  if (e.has_value() && fs::exists(min) && fs::file_size(min) > 0) {
    const auto again = replay(c, min, c.logs / fmt::format("replay-{}.min.log", u.name));
    if (again.has_value() && again->key == u.sig.key) {
      u.minimized = min;
      u.minimize_note = fmt::format("{} -> {} bytes", before, fs::file_size(min));
      return;
    }
    u.minimize_note = "the minimized input crashed differently; kept the original";
  } else {
    u.minimize_note = e.has_value() ? fmt::format("not minimized ({})", describe(*e))
                                    : "not minimized: " + e.error().message;
  }
  fs::copy_file(raw, min, fs::copy_options::overwrite_existing);
  u.minimized = min;
}

// OUT/regressions/NAME.trace for `ops` (the replay binary writes what the input did, with the
// model's answers as the expected observations, docs/trace-format.md), the raw input otherwise.
void make_regression(const Campaign& c, UniqueCrash& u) {
  const fs::path dir = c.out / "regressions";
  fs::create_directories(dir);
  if (c.o.target != "ops") {
    u.regression = dir / u.name;
    fs::copy_file(u.minimized, u.regression, fs::copy_options::overwrite_existing);
    u.regression_note = fmt::format(
        "raw input (the trace format does not describe {} inputs): keep it under "
        "corpus/regressions/{}/",
        c.o.target, c.o.target);
    return;
  }
  const fs::path trace = dir / (u.name + ".trace");
  fs::remove(trace);
  const Command cmd{{c.replay.string(), u.minimized.string()},
                    {"VMEM_FUZZ_TRACE=" + trace.string()},
                    c.logs / fmt::format("trace-{}.log", u.name)};
  const auto e = run_bounded(cmd, 120);
  if (!e.has_value() || !fs::exists(trace) || fs::file_size(trace) == 0) {
    u.regression = dir / u.name;
    fs::copy_file(u.minimized, u.regression, fs::copy_options::overwrite_existing);
    u.regression_note = "no trace was written; kept the raw input";
    return;
  }
  u.regression = trace;
  // Does it replay on the reference? A mismatch means the reference and the model disagree on it.
  const Command check{{"/proc/self/exe", "replay", trace.string()},
                      {},
                      c.logs / fmt::format("replay-trace-{}.log", u.name)};
  const auto r = run_bounded(check, 120);
  u.regression_note =
      fmt::format("trace written by {}; `vmemcheck replay` on it: {}", c.replay.filename().string(),
                  !r.has_value() ? r.error().message
                  : r->code == 0 ? std::string("replays cleanly")
                  : r->code == 1 ? std::string("mismatch (exit 1)")
                                 : describe(*r));
}

// Replays every crash file, smallest first, within a budget (a campaign with a shallow bug can
// leave thousands); the files past it are listed as not replayed.
std::vector<UniqueCrash> deduplicate(const Campaign& c, double budget,
                                     std::vector<fs::path>& unreplayed) {
  std::vector<UniqueCrash> uniques;
  const auto t0 = Clock::now();
  std::map<std::string, size_t> by_key;
  std::vector<fs::path> crashes = files_in(c.crashes);
  // Smallest first, so each group's first file is its smallest.
  std::stable_sort(crashes.begin(), crashes.end(), [](const fs::path& a, const fs::path& b) {
    return fs::file_size(a) < fs::file_size(b);
  });
  for (const fs::path& f : crashes) {
    if (since(t0) > budget) {
      unreplayed.push_back(f);
      continue;
    }
    const auto sig = replay(c, f, c.logs / ("replay-" + f.filename().string() + ".log"));
    Signature s;
    if (sig.has_value())
      s = *sig;
    else
      s.key = "replay failed: " + sig.error().message;
    const auto [it, fresh] = by_key.emplace(s.key, uniques.size());
    if (fresh) {
      UniqueCrash u;
      u.name = fmt::format("{}-{}", c.o.target, short_hash(s.key));
      u.sig = s;
      uniques.push_back(std::move(u));
    }
    uniques[it->second].files.push_back(f);
  }
  return uniques;
}

// Where an engine binary is: DIR/NAME or DIR/fuzz/NAME.
fs::path binary_in(const fs::path& dir, const std::string& name) {
  if (!fs::exists(dir / name) && fs::exists(dir / "fuzz" / name)) return dir / "fuzz" / name;
  return dir / name;
}

Result<Campaign> prepare(const FuzzOptions& o) {
  Campaign c;
  c.o = o;
  if (std::find(std::begin(kTargets), std::end(kTargets), o.target) == std::end(kTargets)) {
    return unexpected(
        Error{fmt::format("unknown --target '{}' ({})", o.target, fmt::join(kTargets, ", "))});
  }
  if (o.engine != "libfuzzer" && o.engine != "afl")
    return unexpected(Error{fmt::format("unknown --engine '{}' (libfuzzer, afl)", o.engine)});
  c.afl = o.engine == "afl";
  if (o.jobs < 1 || o.jobs > 64) return unexpected(Error{"--jobs must be between 1 and 64"});
  if (o.status_interval < 1) return unexpected(Error{"--status-interval must be at least 1 s"});
  VMEM_ASSIGN_OR_RETURN(c.seconds, parse_duration(o.time));

  const std::string preset = c.afl ? "afl" : "fuzz";
  const std::string engine_name = o.target + (c.afl ? "_afl" : "_fuzzer");
  const fs::path dir =
      o.build_dir.empty() ? fs::path("build") / preset / "fuzz" : fs::path(o.build_dir);
  c.engine = binary_in(dir, engine_name);
  if (access(c.engine.c_str(), X_OK) != 0) {
    return unexpected(Error{fmt::format(
        "{} not found: build it with `cmake --preset {} && cmake --build --preset {} --target {}` "
        "(or pass --build-dir)",
        c.engine.string(), preset, preset, engine_name)});
  }
  c.engine = fs::absolute(c.engine);
  c.replay = binary_in(dir, o.target + "_replay");
  c.replay = access(c.replay.c_str(), X_OK) == 0 ? fs::absolute(c.replay) : c.engine;
  if (c.afl) {
    for (const char* tool : {"afl-fuzz", "afl-cmin", "afl-tmin"}) {
      if (!conformance::resolve_binary(tool).has_value())
        return unexpected(Error{fmt::format("{} not found (apt-get install afl++)", tool)});
    }
  }

  if (!o.dict.empty()) {
    if (!fs::is_regular_file(o.dict))
      return unexpected(Error{fmt::format("--dict {}: no such file", o.dict)});
    c.dict = fs::absolute(o.dict);
  } else if (const fs::path d = fs::path("corpus/dictionaries") / (o.target + ".dict");
             fs::is_regular_file(d)) {
    c.dict = fs::absolute(d);
  }

  c.out = fs::absolute(o.out.empty() ? fs::path("build") / "campaigns" / (o.target + "-" + o.engine)
                                     : fs::path(o.out));
  c.corpus = c.out / "corpus";
  c.crashes = c.out / "crashes";
  c.logs = c.out / "logs";
  if (o.resume) {
    if (!fs::is_directory(c.corpus))
      return unexpected(Error{fmt::format("--resume: {} holds no campaign", c.out.string())});
    if (c.afl && !fs::exists(c.out / "afl"))
      return unexpected(Error{fmt::format("--resume: {} holds no AFL++ campaign", c.out.string())});
  } else {
    if (fs::exists(c.corpus)) {
      return unexpected(Error{fmt::format(
          "{} already holds a campaign: pass --resume to go on with it, or another --out",
          c.out.string())});
    }
    const fs::path seeds = o.seeds.empty() ? fs::path("corpus") / o.target : fs::path(o.seeds);
    if (files_in(seeds).empty()) {
      return unexpected(Error{fmt::format(
          "no seeds in {} (run from the repository root, or pass --seeds)", seeds.string())});
    }
    // The engines write into their corpus: never the repository's, always a copy.
    fs::create_directories(c.corpus);
    for (const fs::path& f : files_in(seeds))
      fs::copy_file(f, c.corpus / f.filename());
  }
  fs::create_directories(c.crashes);
  fs::create_directories(c.logs);
  c.corpus_before = files_in(c.corpus).size();
  return c;
}

}  // namespace

int run_fuzz(const FuzzOptions& o) {
  auto prepared = prepare(o);
  if (!prepared.has_value()) {
    fmt::print(stderr, "vmemcheck: {}\n", prepared.error().message);
    return 2;
  }
  const Campaign& c = *prepared;
  const InterruptGuard guard;
  std::string command = fmt::format("vmemcheck fuzz --target {} --engine {} --time {} --jobs {}",
                                    o.target, o.engine, o.time, o.jobs);
  if (!o.build_dir.empty()) command += " --build-dir " + o.build_dir;
  if (o.coverage_build_dir != FuzzOptions{}.coverage_build_dir)
    command += " --coverage-build-dir " + o.coverage_build_dir;
  if (!o.seeds.empty()) command += " --seeds " + o.seeds;
  if (!o.dict.empty()) command += " --dict " + o.dict;
  command += " --out " + c.out.string();
  if (o.resume) command += " --resume";
  fmt::print("campaign: {} with {} for {} s on {} job(s); seeds: {} inputs; out: {}\n", o.target,
             o.engine, c.seconds, o.jobs, c.corpus_before, c.out.string());
  std::fflush(stdout);

  auto engine_run = c.afl ? afl_fuzz(c) : libfuzzer_fuzz(c);
  if (!engine_run.has_value()) {
    fmt::print(stderr, "vmemcheck: {}\n", engine_run.error().message);
    return 2;
  }
  EngineRun& run = *engine_run;
  if (!run.failure.empty()) fmt::print(stderr, "vmemcheck: the engine failed: {}\n", run.failure);
  if (run.interrupted) fmt::print("interrupted: the engines are stopped; wrapping up\n");
  const uint64_t corpus_after = files_in(c.corpus).size();

  fmt::print("merging the corpus into {}/corpus.min\n", c.out.string());
  std::fflush(stdout);
  const auto merged = minimize_corpus(c);
  const std::string merge_note = merged.has_value() ? merged->command : merged.error().message;
  const bool have_min = merged.has_value();

  std::vector<fs::path> unreplayed;
  std::vector<UniqueCrash> uniques = deduplicate(c, std::max(300.0, c.seconds / 4.0), unreplayed);
  for (UniqueCrash& u : uniques) {
    if (!u.sig.reproduced) {
      u.minimized = u.files.front();
      u.minimize_note = "does not reproduce: not minimized";
      u.regression_note = "none (does not reproduce)";
      continue;
    }
    fmt::print("crash {}: {} ({} file(s)); minimizing\n", u.name, u.sig.key, u.files.size());
    std::fflush(stdout);
    minimize_crash(c, u);
    make_regression(c, u);
  }
  const ordered_json cov = coverage_report(c, have_min ? c.out / "corpus.min" : c.corpus);
  std::ifstream tsv(c.out / "progress.tsv");
  unsigned points = 0;
  for (std::string line; std::getline(tsv, line);)
    points += line.rfind('#', 0) != 0;
  const ordered_json png = plot(c, points);

  const double wall = std::max(run.wall, 1e-3);
  ordered_json crashes_j = ordered_json::array();
  for (const UniqueCrash& u : uniques) {
    std::vector<std::string> files;
    for (const fs::path& f : u.files)
      files.push_back(f.string());
    crashes_j.push_back({{"name", u.name},
                         {"key", u.sig.key},
                         {"oracle", u.sig.oracle},
                         {"headline", u.sig.headline},
                         {"reproduced", u.sig.reproduced},
                         {"files", files},
                         {"minimized", u.minimized.string()},
                         {"minimize", u.minimize_note},
                         {"regression", u.regression.string()},
                         {"regression_note", u.regression_note}});
  }
  const ordered_json summary = {
      {"target", o.target},
      {"engine", o.engine},
      {"jobs", o.jobs},
      {"date", today()},
      {"command", command},
      {"engine_binary", c.engine.string()},
      {"dictionary", c.dict.empty() ? ordered_json() : ordered_json(c.dict.string())},
      {"resumed", o.resume},
      {"time_budget_s", c.seconds},
      {"run",
       {{"wall_s", run.wall},
        {"timed_out", run.timed_out},
        {"interrupted", run.interrupted},
        {"execs", run.stats.execs},
        {"exec_per_s", static_cast<uint64_t>(static_cast<double>(run.stats.execs) / wall)},
        {"engine_exec_per_s", run.stats.exec_per_s},
        {"coverage", run.stats.coverage},
        {"features", run.stats.features}}},
      {"corpus",
       {{"before", c.corpus_before},
        {"after", corpus_after},
        {"minimized",
         have_min ? ordered_json(files_in(c.out / "corpus.min").size()) : ordered_json()},
        {"merge", merge_note},
        {"merged_edges", have_min && merged->edges ? ordered_json(*merged->edges) : ordered_json()},
        {"merged_features",
         have_min && merged->features ? ordered_json(*merged->features) : ordered_json()},
        {"merged_tuples",
         have_min && merged->tuples ? ordered_json(*merged->tuples) : ordered_json()}}},
      {"crash_files", files_in(c.crashes).size()},
      {"crash_files_not_replayed", unreplayed.size()},
      {"unique_crashes", crashes_j},
      {"regressions", o.target == "ops"
                          ? "traces (docs/trace-format.md) written by the replay binary"
                          : "the minimized raw inputs (the trace format describes ops only)"},
      {"engine_failure", run.failure},
      {"engine_note", run.note},
      {"coverage_report", cov},
      {"plot", png}};
  write_summary(c, summary);

  fmt::print(
      "\n{}: {} execs in {:.0f} s ({} exec/s), coverage {}, corpus {} -> {}{}, {} crash "
      "file(s), {} unique\n",
      o.target, grouped(run.stats.execs), run.wall,
      grouped(summary["run"]["exec_per_s"].get<uint64_t>()), grouped(run.stats.coverage),
      c.corpus_before, corpus_after,
      have_min ? fmt::format(" (merged: {})", summary["corpus"]["minimized"].get<uint64_t>())
               : std::string(),
      summary["crash_files"].get<uint64_t>(), uniques.size());
  for (const UniqueCrash& u : uniques)
    fmt::print("  {}: {}\n", u.name, u.sig.key);
  fmt::print("written: {}/summary.md, {}/summary.json\n", c.out.string(), c.out.string());
  if (!run.failure.empty()) return 2;
  return uniques.empty() ? 0 : 1;
}

}  // namespace vmem::cli
