// What a campaign leaves for people: a coverage report (llvm-cov HTML from the coverage build's
// replay binary over the final corpus), a plot of coverage and execs over time (gnuplot), and
// OUT/summary.md and OUT/summary.json. The report and the plot are optional: when a tool or a
// binary is missing, the JSON says why instead.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/fuzz_engines.h"

namespace vmem::cli {

// {"made": true, "html": ..., "lines"/"functions"/"regions": "NN.NN%"} or {"made": false, "why"}.
nlohmann::ordered_json coverage_report(const Campaign& c, const std::filesystem::path& corpus);
// OUT/progress.png from OUT/progress.tsv's `points` lines: {"made", "png"} or {"made", "why"}.
nlohmann::ordered_json plot(const Campaign& c, unsigned points);
// OUT/summary.json (`j` itself) and OUT/summary.md (its tables and one section per crash).
void write_summary(const Campaign& c, const nlohmann::ordered_json& j);
// "2026-11-24 10:27 UTC"
std::string today();

}  // namespace vmem::cli
