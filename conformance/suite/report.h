// A run's report in the forms users consume: the text matrix, JSON with a versioned schema,
// JUnit XML for CI dashboards, a baseline to compare later runs with (decisions D15), and
// reproducers, one file per check that did not pass (decisions D16).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "conformance/suite/runner.h"

namespace vmem::conformance {

inline constexpr int kReportSchemaVersion = 1;
inline constexpr int kBaselineSchemaVersion = 1;

// The compliance matrix: one line per requirement, with the evidence of every non-PASS, then
// the totals and the reference's own findings.
std::string format_text(const Report& r, bool verbose);
nlohmann::json to_json(const Report& r);
std::string to_junit(const Report& r);

// A baseline holds, per requirement ID, the outcome and the deciding evidence.
nlohmann::ordered_json to_baseline(const Report& r);
// The differences between a run and a baseline, one line each; empty when they match.
Result<std::vector<std::string>> compare_with_baseline(const Report& r,
                                                       const nlohmann::json& baseline);

// The catalog as a Markdown page with, for each requirement, the checks that cover it:
// docs/requirements.md is this output, and a test keeps it so.
std::string requirements_markdown(const Catalog& catalog, const std::vector<CheckDef>& checks);
// The names of the checks that cover `id`.
std::vector<std::string> checks_covering(const std::vector<CheckDef>& checks, std::string_view id);

// Writes one reproducer per check with a non-PASS verdict into `dir`: the target's header and
// transcript, and the verdicts it explains. Returns the files written.
Result<std::vector<std::string>> write_reproducers(const Report& r, const std::string& dir);

}  // namespace vmem::conformance
