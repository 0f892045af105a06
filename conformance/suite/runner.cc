#include "conformance/suite/runner.h"

#include <fmt/format.h>
#include <fnmatch.h>

#include <algorithm>
#include <set>

namespace vmem::conformance {

namespace {

bool in_version(const Requirement& r, const std::string& version) {
  return std::find(r.spec_versions.begin(), r.spec_versions.end(), version) !=
         r.spec_versions.end();
}

double since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

CheckResult run_one(Target& target, const Catalog& catalog, const CheckDef& def,
                    const RunOptions& options) {
  CheckResult res;
  res.name = def.name;
  res.title = def.title;
  const auto t0 = std::chrono::steady_clock::now();
  for (Capability cap : def.needs) {
    if (!target.has(cap)) {
      for (const std::string& id : def.covers)
        res.verdicts.push_back(
            {id, Outcome::Skip, fmt::format("the target has no {}", to_string(cap)), def.name});
      res.seconds = since(t0);
      return res;
    }
  }
  auto layout = target.start(def.setup);
  if (!layout.has_value()) {
    res.stopped =
        "the target could not start " + describe(def.setup) + ": " + layout.error().message;
  } else {
    CheckContext ctx(def, catalog, target, *layout, options.completion_timeout);
    if (!options.record_profile.empty()) ctx.record(options.record_profile);
    Status s = ctx.attach();
    if (s.has_value()) s = def.run(ctx);
    // Every check ends with the comparison against the model, unless the target already failed.
    if (s.has_value()) s = ctx.verify_model();
    if (!s.has_value()) res.stopped = s.error().message;
    res.verdicts = ctx.verdicts();
    res.trace = ctx.recording();
  }
  if (!res.stopped.empty()) {
    // What the check could not finish is FAIL, except where it already named a broken rule
    // (FAIL, or WARN for a SHOULD). A SKIP or INFO does not count: the check still stopped.
    for (const std::string& id : def.covers) {
      const bool judged =
          std::any_of(res.verdicts.begin(), res.verdicts.end(), [&](const Verdict& v) {
            return v.id == id && (v.outcome == Outcome::Fail || v.outcome == Outcome::Warn);
          });
      if (!judged)
        res.verdicts.push_back({id, Outcome::Fail, "the check stopped: " + res.stopped, def.name});
    }
  }
  res.violations = target.take_violations();
  res.transcript = target.take_transcript();
  res.reproducer_header = target.reproducer_header();
  res.seconds = since(t0);
  return res;
}

}  // namespace

Outcome CheckResult::outcome() const {
  Outcome o = Outcome::Skip;
  for (const Verdict& v : verdicts)
    o = combine(o, v.outcome);
  return o;
}

std::map<Outcome, std::size_t> Report::counts() const {
  std::map<Outcome, std::size_t> out;
  for (const RequirementResult& r : requirements)
    ++out[r.outcome];
  return out;
}

std::size_t Report::violations() const {
  std::size_t n = 0;
  for (const CheckResult& c : checks)
    n += c.violations.size();
  return n;
}

const RequirementResult* Report::find(std::string_view id) const {
  for (const RequirementResult& r : requirements) {
    if (r.requirement.id == id) return &r;
  }
  return nullptr;
}

std::vector<const CheckDef*> select_checks(const std::vector<CheckDef>& all,
                                           const std::vector<std::string>& filters) {
  std::vector<const CheckDef*> out;
  for (const CheckDef& c : all) {
    bool match = filters.empty();
    for (const std::string& f : filters) {
      match = match || fnmatch(f.c_str(), c.name.c_str(), 0) == 0 ||
              std::find(c.covers.begin(), c.covers.end(), f) != c.covers.end();
    }
    if (match) out.push_back(&c);
  }
  return out;
}

Report run_suite(Target& target, const Catalog& catalog, const std::vector<CheckDef>& checks,
                 const RunOptions& options) {
  Report report;
  report.target = target.name();
  report.spec_version = options.spec_version;
  const auto t0 = std::chrono::steady_clock::now();
  const auto selected = select_checks(checks, options.filters);
  for (std::size_t i = 0; i < selected.size(); ++i) {
    report.checks.push_back(run_one(target, catalog, *selected[i], options));
    if (options.progress) options.progress(report.checks.back(), i, selected.size());
  }
  report.seconds = since(t0);

  std::set<std::string> ran;
  for (const CheckDef* c : selected)
    ran.insert(c->covers.begin(), c->covers.end());
  for (const Requirement& req : catalog.requirements) {
    RequirementResult r;
    r.requirement = req;
    if (!in_version(req, options.spec_version)) {
      r.evidence = fmt::format("not a requirement of virtio {}", options.spec_version);
      report.requirements.push_back(std::move(r));
      continue;
    }
    std::optional<Outcome> decided;
    for (const CheckResult& c : report.checks) {
      bool judged = false;
      for (const Verdict& v : c.verdicts) {
        if (v.id != req.id) continue;
        judged = true;
        r.verdicts.push_back(v);
        const Outcome next = decided ? combine(*decided, v.outcome) : v.outcome;
        if (!decided || next != *decided || (r.evidence.empty() && next != Outcome::Pass))
          r.evidence = v.evidence;
        decided = next;
      }
      if (judged) r.checks.push_back(c.name);
    }
    if (decided) {
      r.outcome = *decided;
      if (r.outcome == Outcome::Pass) r.evidence.clear();
    } else if (req.checkable == "driver-obligation") {
      r.evidence = "a driver obligation: the suite's own driver keeps it";
    } else if (req.checkable == "no") {
      r.evidence = "no driver can observe it";
    } else if (ran.count(req.id) == 0) {
      r.evidence = "no selected check covers it";
    } else {
      r.evidence = "the checks that cover it judged nothing";
    }
    report.requirements.push_back(std::move(r));
  }
  return report;
}

}  // namespace vmem::conformance
