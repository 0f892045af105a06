#include "cli/requirements.h"

#include <fmt/format.h>

#include "conformance/catalog.h"
#include "conformance/suite/checks.h"
#include "conformance/suite/report.h"

namespace vmem::cli {

int run_requirements(const std::string& id, bool json, bool markdown) {
  if (json) {
    fmt::print("{}", conformance::embedded_catalog_json());
    return 0;
  }
  auto catalog = conformance::embedded_catalog();
  if (!catalog.has_value()) {
    fmt::print(stderr, "vmemcheck: the built-in catalog is broken: {}\n", catalog.error().message);
    return 2;
  }
  if (markdown) {
    fmt::print("{}", conformance::requirements_markdown(*catalog, conformance::all_checks()));
    return 0;
  }
  int shown = 0;
  for (const auto& r : catalog->requirements) {
    if (!id.empty() && r.id != id) continue;
    ++shown;
    if (!id.empty()) {
      fmt::print(
          "{} ({} {}, spec {}, broken = {})\n  section: {}\n  {}\n  check: {} ({})\n  Linux guest: "
          "{}\n  checks: {}\n",
          r.id, r.party, r.level, fmt::join(r.spec_versions, "/"), r.on_violation, r.section,
          r.statement, r.checkable, r.how, r.linux_guest.empty() ? "-" : r.linux_guest,
          fmt::join(conformance::checks_covering(conformance::all_checks(), r.id), ", "));
      continue;
    }
    fmt::print("{:<7} {:<10} {:<18} {:<4}  {}\n", r.id, r.level, r.checkable, r.on_violation,
               r.statement.size() > 90 ? r.statement.substr(0, 87) + "..." : r.statement);
  }
  if (shown == 0) {
    fmt::print(stderr, "vmemcheck: no requirement '{}'\n", id);
    return 2;
  }
  return 0;
}

}  // namespace vmem::cli
