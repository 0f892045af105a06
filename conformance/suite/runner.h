// Runs checks against a target and gathers their verdicts into a report: per check (verdicts,
// the target's transcript, the reference's own invariant findings, time) and per requirement of
// the catalog (the combined outcome and the evidence that decided it).
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "conformance/catalog.h"
#include "conformance/suite/check.h"
#include "conformance/suite/verdict.h"
#include "conformance/target/target.h"

namespace vmem::conformance {

struct RunOptions {
  // Check names, shell patterns of them ("resize-*"), or requirement IDs; a check runs if any
  // matches (all if empty).
  std::vector<std::string> filters;
  std::string spec_version = "1.4";  // requirements of other versions are not judged
  std::chrono::milliseconds completion_timeout{2000};
  // When set, each check records device 0's run as a trace (CheckResult::trace) whose `device`
  // line names this profile (spec, qemu, qemu-7.2): what `vmemcheck prove --trace` checks it in.
  std::string record_profile;
  // Called after each check, for progress output.
  std::function<void(const struct CheckResult&, std::size_t index, std::size_t total)> progress;
};

struct CheckResult {
  std::string name;
  std::string title;
  std::vector<Verdict> verdicts;
  std::string stopped;                  // why the check ended early (a target failure), or empty
  std::vector<std::string> violations;  // the target's own checker (D6: not a spec verdict)
  std::vector<std::string> transcript;
  std::string reproducer_header;
  std::string trace;  // with RunOptions::record_profile: the run as a trace, or empty
  double seconds = 0;
  Outcome outcome() const;  // the combination of its verdicts
};

struct RequirementResult {
  Requirement requirement;  // a copy: a report outlives the catalog it came from
  Outcome outcome = Outcome::Skip;
  std::string evidence;             // of the deciding verdict (or why SKIP)
  std::vector<std::string> checks;  // the checks that judged it
  std::vector<Verdict> verdicts;    // every verdict about it
};

struct Report {
  std::string target;
  std::string spec_version;
  std::vector<CheckResult> checks;
  std::vector<RequirementResult> requirements;  // catalog order
  double seconds = 0;

  std::map<Outcome, std::size_t> counts() const;  // over requirements
  std::size_t violations() const;
  bool has(Outcome o) const { return counts().count(o) != 0; }
  const RequirementResult* find(std::string_view id) const;
};

// The checks a run with these filters selects.
std::vector<const CheckDef*> select_checks(const std::vector<CheckDef>& all,
                                           const std::vector<std::string>& filters);

Report run_suite(Target& target, const Catalog& catalog, const std::vector<CheckDef>& checks,
                 const RunOptions& options);

}  // namespace vmem::conformance
