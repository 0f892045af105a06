#include "conformance/suite/report.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

namespace vmem::conformance {

namespace {

std::string xml_escape(std::string_view s) {
  std::string out;
  for (char ch : s) {
    switch (ch) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        // XML 1.0 has no place for most control characters.
        out += (static_cast<unsigned char>(ch) < 0x20 && ch != '\n' && ch != '\t') ? '?' : ch;
    }
  }
  return out;
}

std::string totals(const Report& r) {
  const auto n = r.counts();
  auto get = [&](Outcome o) { return n.count(o) ? n.at(o) : 0; };
  return fmt::format("{} PASS, {} FAIL, {} WARN, {} INFO, {} SKIP", get(Outcome::Pass),
                     get(Outcome::Fail), get(Outcome::Warn), get(Outcome::Info),
                     get(Outcome::Skip));
}

}  // namespace

std::string format_text(const Report& r, bool verbose) {
  std::string out = fmt::format("\nCompliance matrix: {} (virtio {})\n", r.target, r.spec_version);
  for (const RequirementResult& q : r.requirements) {
    const Requirement& req = q.requirement;
    if (!verbose && q.outcome == Outcome::Skip && req.checkable != "yes" &&
        req.checkable != "host-control" && req.checkable != "partial") {
      continue;  // driver obligations and unobservable statements: listed with --verbose
    }
    out += fmt::format("  {:<7} {:<4} {:<10}", req.id, to_string(q.outcome), req.level);
    if (q.outcome == Outcome::Pass) {
      out += fmt::format(" {}\n", fmt::join(q.checks, ", "));
    } else {
      out += fmt::format(" {}\n", q.evidence);
    }
  }
  out += fmt::format("\n{} requirements: {}\n", r.requirements.size(), totals(r));
  if (r.violations() != 0) {
    out +=
        fmt::format("The reference's invariant checker found {} violation(s):\n", r.violations());
    for (const CheckResult& c : r.checks) {
      for (const std::string& v : c.violations)
        out += fmt::format("  [{}] {}\n", c.name, v);
    }
  }
  out += fmt::format("{} checks in {:.2f} s against {}\n", r.checks.size(), r.seconds, r.target);
  return out;
}

nlohmann::json to_json(const Report& r) {
  nlohmann::json j;
  j["schema"] = "vmemcheck-conformance-report";
  j["version"] = kReportSchemaVersion;
  j["target"] = r.target;
  j["spec_version"] = r.spec_version;
  j["seconds"] = r.seconds;
  nlohmann::json counts = nlohmann::json::object();
  for (const auto& [o, n] : r.counts())
    counts[to_string(o)] = n;
  j["counts"] = counts;
  j["requirements"] = nlohmann::json::array();
  for (const RequirementResult& q : r.requirements) {
    nlohmann::json e;
    e["id"] = q.requirement.id;
    e["level"] = q.requirement.level;
    e["section"] = q.requirement.section;
    e["outcome"] = to_string(q.outcome);
    e["evidence"] = q.evidence;
    e["checks"] = q.checks;
    j["requirements"].push_back(e);
  }
  j["checks"] = nlohmann::json::array();
  for (const CheckResult& c : r.checks) {
    nlohmann::json e;
    e["name"] = c.name;
    e["title"] = c.title;
    e["outcome"] = to_string(c.outcome());
    e["seconds"] = c.seconds;
    if (!c.stopped.empty()) e["stopped"] = c.stopped;
    e["violations"] = c.violations;
    e["verdicts"] = nlohmann::json::array();
    for (const Verdict& v : c.verdicts) {
      e["verdicts"].push_back(
          {{"id", v.id}, {"outcome", to_string(v.outcome)}, {"evidence", v.evidence}});
    }
    j["checks"].push_back(e);
  }
  return j;
}

std::string to_junit(const Report& r) {
  const auto n = r.counts();
  auto get = [&](Outcome o) { return n.count(o) ? n.at(o) : 0; };
  std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  out += fmt::format(
      "<testsuites name=\"vmemcheck conform\">\n"
      "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" time=\"{:.3f}\">\n",
      xml_escape(r.target), r.requirements.size(), get(Outcome::Fail), get(Outcome::Skip),
      r.seconds);
  for (const RequirementResult& q : r.requirements) {
    const Requirement& req = q.requirement;
    out += fmt::format("    <testcase classname=\"{}\" name=\"{} ({})\">", xml_escape(req.section),
                       xml_escape(req.id), xml_escape(req.level));
    switch (q.outcome) {
      case Outcome::Fail:
        out += fmt::format("<failure message=\"{}\"/>", xml_escape(q.evidence));
        break;
      case Outcome::Skip:
        out += fmt::format("<skipped message=\"{}\"/>", xml_escape(q.evidence));
        break;
      case Outcome::Warn:
      case Outcome::Info:
        out += fmt::format("<system-out>{}: {}</system-out>", to_string(q.outcome),
                           xml_escape(q.evidence));
        break;
      case Outcome::Pass:
        break;
    }
    out += "</testcase>\n";
  }
  out += "  </testsuite>\n</testsuites>\n";
  return out;
}

nlohmann::ordered_json to_baseline(const Report& r) {
  nlohmann::ordered_json j;
  j["schema"] = "vmemcheck-baseline";
  j["version"] = kBaselineSchemaVersion;
  j["target"] = r.target;
  j["spec_version"] = r.spec_version;
  j["requirements"] = nlohmann::ordered_json::object();
  for (const RequirementResult& q : r.requirements) {
    nlohmann::ordered_json e = {{"outcome", to_string(q.outcome)}};
    if (q.outcome != Outcome::Pass) e["evidence"] = q.evidence;
    j["requirements"][q.requirement.id] = e;
  }
  return j;
}

Result<std::vector<std::string>> compare_with_baseline(const Report& r,
                                                       const nlohmann::json& baseline) {
  if (!baseline.is_object() || baseline.value("schema", "") != "vmemcheck-baseline" ||
      baseline.value("version", 0) != kBaselineSchemaVersion ||
      !baseline.contains("requirements") || !baseline["requirements"].is_object()) {
    return unexpected(
        Error{fmt::format("not a vmemcheck baseline of version {}", kBaselineSchemaVersion)});
  }
  std::vector<std::string> drift;
  const auto& want = baseline["requirements"];
  for (const RequirementResult& q : r.requirements) {
    const std::string& id = q.requirement.id;
    if (!want.contains(id)) {
      drift.push_back(fmt::format("{}: {} now, not in the baseline", id, to_string(q.outcome)));
      continue;
    }
    const auto& e = want[id];
    if (!e.is_object() || !e.contains("outcome") || !e["outcome"].is_string())
      return unexpected(Error{fmt::format("baseline entry {} has no outcome", id)});
    const std::string outcome = e["outcome"];
    if (outcome != to_string(q.outcome)) {
      drift.push_back(fmt::format("{}: {} now, {} in the baseline{}", id, to_string(q.outcome),
                                  outcome,
                                  q.evidence.empty() ? "" : fmt::format(" ({})", q.evidence)));
    } else if (e.contains("evidence") && e["evidence"].is_string() &&
               e["evidence"].get<std::string>() != q.evidence) {
      drift.push_back(
          fmt::format("{}: still {}, but the evidence changed: now \"{}\", baseline "
                      "\"{}\"",
                      id, outcome, q.evidence, e["evidence"].get<std::string>()));
    }
  }
  for (const auto& [id, e] : want.items()) {
    if (!r.find(id)) drift.push_back(fmt::format("{}: in the baseline, not in the catalog", id));
  }
  return drift;
}

std::vector<std::string> checks_covering(const std::vector<CheckDef>& checks, std::string_view id) {
  std::vector<std::string> out;
  for (const CheckDef& c : checks) {
    if (std::find(c.covers.begin(), c.covers.end(), id) != c.covers.end()) out.push_back(c.name);
  }
  return out;
}

std::string requirements_markdown(const Catalog& catalog, const std::vector<CheckDef>& checks) {
  auto cell = [](std::string s) {
    std::string out;
    for (char ch : s)
      out += ch == '|' ? std::string("\\|") : std::string(1, ch);
    return out;
  };
  std::string out =
      "# Requirements and the checks that cover them\n\n"
      "Generated by `vmemcheck requirements --markdown` from "
      "`conformance/catalog/requirements.json` and the suite's check registry; a test keeps this "
      "page identical to that output. `vmemcheck requirements ID` shows one requirement in full "
      "(how it is checked, what a Linux guest does).\n\n"
      "A broken requirement gives the verdict in the *broken* column (decisions D2). *checkable*: "
      "`yes` by a driver alone, `host-control` with the host's help (resize, reset, ...), "
      "`partial` only some cases, `no` not by any driver, `driver-obligation` a rule for the "
      "driver, which the suite's own driver keeps.\n\n"
      "| ID | level | checkable | broken | statement | checks |\n|---|---|---|---|---|---|\n";
  for (const Requirement& r : catalog.requirements) {
    const auto covering = checks_covering(checks, r.id);
    out += fmt::format("| {} | {} | {} | {} | {} | {} |\n", r.id, r.level, r.checkable,
                       r.on_violation, cell(r.statement),
                       covering.empty() ? "" : fmt::format("`{}`", fmt::join(covering, "`, `")));
  }
  out += "\n## Checks\n\n| check | what it does | device setup |\n|---|---|---|\n";
  for (const CheckDef& c : checks) {
    out += fmt::format("| `{}` | {} | {} |\n", c.name, cell(c.title), describe(c.setup));
  }
  return out;
}

Result<std::vector<std::string>> write_reproducers(const Report& r, const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return unexpected(Error{fmt::format("cannot create {}: {}", dir, ec.message())});
  // Reproducers of an earlier run would pass for this one's.
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    if (e.path().extension() == ".repro") std::filesystem::remove(e.path(), ec);
  }
  std::vector<std::string> written;
  for (const CheckResult& c : r.checks) {
    std::vector<const Verdict*> notable;
    for (const Verdict& v : c.verdicts) {
      if (v.outcome == Outcome::Fail || v.outcome == Outcome::Warn || v.outcome == Outcome::Info)
        notable.push_back(&v);
    }
    if (notable.empty() && c.violations.empty()) continue;
    const std::string path = fmt::format("{}/{}.repro", dir, c.name);
    std::ofstream f(path);
    if (!f) return unexpected(Error{"cannot write " + path});
    f << "# vmemcheck reproducer: check '" << c.name << "' (" << c.title << ")\n";
    f << "# target: " << r.target << "\n";
    for (const Verdict* v : notable)
      f << "# " << to_string(v->outcome) << " " << v->id << ": " << v->evidence << "\n";
    for (const std::string& v : c.violations)
      f << "# invariant: " << v << "\n";
    if (!c.reproducer_header.empty()) f << c.reproducer_header << "\n";
    if (c.transcript.empty()) {
      f << "# (this target records no transcript)\n";
    }
    for (const std::string& line : c.transcript)
      f << line << "\n";
    written.push_back(path);
  }
  return written;
}

}  // namespace vmem::conformance
