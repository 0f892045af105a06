#include "cli/campaign_report.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <ctime>
#include <fstream>
#include <sstream>
#include <vector>

#include "cli/campaign_io.h"
#include "cli/process_group.h"
#include "conformance/target/child_process.h"

namespace vmem::cli {

namespace fs = std::filesystem;
using nlohmann::ordered_json;

// llvm-cov HTML from the coverage build's replay binary over the final corpus.
ordered_json coverage_report(const Campaign& c, const fs::path& corpus) {
  fs::path dir = c.o.coverage_build_dir;
  const std::string bin_name = c.o.target + "_replay";
  if (!fs::exists(dir / bin_name) && fs::exists(dir / "fuzz" / bin_name)) dir /= "fuzz";
  const fs::path bin = dir / bin_name;
  if (!fs::exists(bin)) {
    return {{"made", false},
            {"why", fmt::format("{} not found (cmake --preset coverage && cmake --build --preset "
                                "coverage --target {}; or --coverage-build-dir)",
                                bin.string(), bin_name)}};
  }
  const auto tool = [](const char* name) -> std::string {
    if (conformance::resolve_binary(name).has_value()) return name;
    return std::string(name) + "-14";
  };
  const fs::path cov = c.out / "coverage";
  fs::remove_all(cov);
  fs::create_directories(cov / "raw");
  const fs::path log = c.logs / "coverage.log";
  fs::remove(log);
  const auto step = [&](std::vector<std::string> argv, std::vector<std::string> env = {}) {
    const auto e = run_bounded({std::move(argv), std::move(env), log}, 600);
    return e.has_value() && e->code == 0;
  };
  // The replay binary stops at an input that crashes; the corpus should have none.
  if (!step({bin.string(), corpus.string()},
            {"LLVM_PROFILE_FILE=" + (cov / "raw" / "replay-%p.profraw").string()})) {
    return {{"made", false}, {"why", "the coverage replay failed; see " + log.string()}};
  }
  std::vector<std::string> merge = {tool("llvm-profdata"), "merge", "-sparse", "-o",
                                    (cov / "replay.profdata").string()};
  for (const fs::path& f : files_in(cov / "raw"))
    merge.push_back(f.string());
  const std::string ignore = "-ignore-filename-regex=(^/usr/|/build/)";
  if (!step(merge) || !step({tool("llvm-cov"), "show", bin.string(),
                             "-instr-profile=" + (cov / "replay.profdata").string(), "-format=html",
                             "-output-dir=" + (cov / "html").string(), ignore})) {
    return {{"made", false}, {"why", "llvm-profdata or llvm-cov failed; see " + log.string()}};
  }
  // The TOTAL line of `llvm-cov report`: regions, missed, cover, functions, missed, executed,
  // lines, missed, cover, ...
  const fs::path report = cov / "report.txt";
  fs::remove(report);
  const auto r = run_bounded({{tool("llvm-cov"), "report", bin.string(),
                               "-instr-profile=" + (cov / "replay.profdata").string(), ignore},
                              {},
                              report},
                             600);
  ordered_json j = {
      {"made", true}, {"html", (cov / "html" / "index.html").string()}, {"binary", bin.string()}};
  for (const std::string& line : lines_of(read_text(report))) {
    if (line.rfind("TOTAL", 0) != 0) continue;
    std::istringstream in(line);
    std::vector<std::string> w;
    for (std::string x; in >> x;)
      w.push_back(x);
    if (w.size() >= 10) {
      j["regions"] = w[3];
      j["functions"] = w[6];
      j["lines"] = w[9];
    }
  }
  (void)r;
  return j;
}

// OUT/progress.png: coverage and execs over the run, from OUT/progress.tsv.
ordered_json plot(const Campaign& c, unsigned points) {
  if (points < 2) return {{"made", false}, {"why", "fewer than two progress points"}};
  if (!conformance::resolve_binary("gnuplot").has_value())
    return {{"made", false}, {"why", "gnuplot is not installed"}};
  const fs::path script = c.out / "progress.gp";
  const fs::path png = c.out / "progress.png";
  std::ofstream(script) << fmt::format(
      "set terminal pngcairo size 900,500\n"
      "set output '{}'\n"
      "set title '{} ({}, {} job(s))'\n"
      "set xlabel 'seconds'\n"
      "set ylabel '{}'\n"
      "set y2label 'execs'\n"
      "set ytics nomirror\n"
      "set y2tics\n"
      "set key left top\n"
      "plot '{}' using 1:4 with lines lw 2 title 'coverage', '' using 1:2 axes x1y2 with lines "
      "title 'execs'\n",
      png.string(), c.o.target, c.o.engine, c.o.jobs,
      c.afl ? "edges found (AFL++)" : "coverage (libFuzzer cov:)",
      (c.out / "progress.tsv").string());
  fs::remove(png);
  const auto e = run_bounded({{"gnuplot", script.string()}, {}, c.logs / "gnuplot.log"}, 60);
  if (!e.has_value() || e->code != 0 || !fs::exists(png))
    return {{"made", false}, {"why", "gnuplot failed; see " + (c.logs / "gnuplot.log").string()}};
  return {{"made", true}, {"png", png.string()}};
}

std::string today() {
  const std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", std::gmtime(&t));
  return buf;
}

void write_summary(const Campaign& c, const ordered_json& j) {
  std::ofstream(c.out / "summary.json") << j.dump(2) << "\n";
  std::ofstream md(c.out / "summary.md");
  const auto& run = j["run"];
  md << fmt::format("# Campaign: `{}` with {}\n\n", c.o.target, c.o.engine);
  md << fmt::format("{}; {} job(s), budget {} s{}.\n\n", j["date"].get<std::string>(), c.o.jobs,
                    c.seconds, j["resumed"].get<bool>() ? ", resumed" : "");
  md << "```\n" << j["command"].get<std::string>() << "\n```\n\n";
  if (!j["dictionary"].is_null())
    md << fmt::format("Dictionary: {}.\n\n", j["dictionary"].get<std::string>());
  md << "| | |\n|---|---|\n";
  md << fmt::format("| wall time | {:.0f} s{} |\n", run["wall_s"].get<double>(),
                    run["interrupted"].get<bool>() ? " (interrupted)"
                    : run["timed_out"].get<bool>() ? " (stopped at the time limit)"
                                                   : "");
  md << fmt::format("| execs | {} |\n", grouped(run["execs"].get<uint64_t>()));
  md << fmt::format("| exec/s (execs / wall time) | {} |\n",
                    grouped(run["exec_per_s"].get<uint64_t>()));
  md << fmt::format(
      "| coverage | {} {}{} |\n", grouped(run["coverage"].get<uint64_t>()),
      c.afl ? "edges (AFL++ edges_found)" : "edges (libFuzzer cov)",
      c.afl ? "" : fmt::format(", {} features", grouped(run["features"].get<uint64_t>())));
  const auto& corpus = j["corpus"];
  md << fmt::format("| corpus | {} before, {} after{}, {} after merging ({}) |\n",
                    corpus["before"].get<uint64_t>(), corpus["after"].get<uint64_t>(),
                    c.afl ? " (the instances' queues together)" : "",
                    corpus["minimized"].is_null() ? std::string("-")
                                                  : grouped(corpus["minimized"].get<uint64_t>()),
                    corpus["merge"].get<std::string>());
  if (!corpus["merged_edges"].is_null()) {
    md << fmt::format(
        "| coverage of the merged corpus | {} edges{} |\n",
        grouped(corpus["merged_edges"].get<uint64_t>()),
        corpus["merged_features"].is_null()
            ? std::string()
            : fmt::format(", {} features", grouped(corpus["merged_features"].get<uint64_t>())));
  }
  if (!corpus["merged_tuples"].is_null()) {
    md << fmt::format(
        "| coverage of the merged corpus | {} tuples (afl-cmin: edge x hit-count bucket) |\n",
        grouped(corpus["merged_tuples"].get<uint64_t>()));
  }
  md << fmt::format("| crash files | {}{} |\n", j["crash_files"].get<uint64_t>(),
                    j["crash_files_not_replayed"].get<uint64_t>() == 0
                        ? std::string()
                        : fmt::format(" ({} not replayed: past the deduplication budget)",
                                      j["crash_files_not_replayed"].get<uint64_t>()));
  md << fmt::format("| unique crashes | {} |\n\n", j["unique_crashes"].size());
  if (!j["engine_note"].get<std::string>().empty())
    md << "Note: " << j["engine_note"].get<std::string>() << ".\n\n";
  if (!j["engine_failure"].get<std::string>().empty())
    md << "**The engine failed:**\n\n```\n" << j["engine_failure"].get<std::string>() << "```\n\n";
  for (const auto& u : j["unique_crashes"]) {
    md << fmt::format("## {}\n\n", u["name"].get<std::string>());
    md << fmt::format("- signature: `{}`\n", u["key"].get<std::string>());
    if (!u["oracle"].get<std::string>().empty())
      md << fmt::format("- oracle line: `{}`\n", u["oracle"].get<std::string>());
    if (!u["headline"].get<std::string>().empty())
      md << fmt::format("- report: `{}`\n", u["headline"].get<std::string>());
    std::vector<std::string> files = u["files"].get<std::vector<std::string>>();
    const size_t more = files.size() > 5 ? files.size() - 5 : 0;
    files.resize(files.size() - more);
    md << fmt::format("- files ({}): {}{}\n", u["files"].size(), fmt::join(files, ", "),
                      more ? fmt::format(" and {} more (summary.json)", more) : std::string());
    md << fmt::format("- minimized: {} ({})\n", u["minimized"].get<std::string>(),
                      u["minimize"].get<std::string>());
    md << fmt::format("- regression: {} ({})\n\n", u["regression"].get<std::string>(),
                      u["regression_note"].get<std::string>());
  }
  const auto& cov = j["coverage_report"];
  if (cov["made"].get<bool>()) {
    md << fmt::format("Coverage report: {} (lines {}, functions {}, regions {}).\n",
                      cov["html"].get<std::string>(), cov.value("lines", "?"),
                      cov.value("functions", "?"), cov.value("regions", "?"));
  } else {
    md << fmt::format("Coverage report: not made: {}.\n", cov["why"].get<std::string>());
  }
  const auto& p = j["plot"];
  md << (p["made"].get<bool>() ? fmt::format("Plot: {}.\n", p["png"].get<std::string>())
                               : fmt::format("Plot: not made: {}.\n", p["why"].get<std::string>()));
}

}  // namespace vmem::cli
