#include "cli/mutate.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "cli/process_group.h"
#include "conformance/catalog.h"
#include "conformance/suite/checks.h"
#include "conformance/suite/runner.h"
#include "conformance/target/reference_target.h"
#include "reference/mem/fault.h"

#if VMEM_HAVE_PROOFS
#include "proofs/proof.h"
#endif

namespace vmem::cli {

namespace {

namespace fs = std::filesystem;
using nlohmann::ordered_json;

const char* const kParts[] = {"conformance", "invariants", "proofs", "fuzz"};

double since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// One part's result for one mutant.
ordered_json result(bool killed, std::string detail, double seconds) {
  return {{"killed", killed}, {"detail", std::move(detail)}, {"seconds", seconds}};
}

// The conformance suite against the reference with `fault`, profile spec (what
// conformance_mutants_test runs).
conformance::Report conform(const conformance::Catalog& catalog, const std::string& fault) {
  conformance::ReferenceTarget t(
      {conformance::Transport::Pci, Profile::Spec, fault, BackingKind::Anonymous});
  conformance::RunOptions o;
  o.completion_timeout = std::chrono::milliseconds(30);
  return conformance::run_suite(t, catalog, conformance::all_checks(), o);
}

std::string describe(const conformance::RequirementResult& q) {
  return fmt::format("{} {} ({}): {}", q.requirement.id, to_string(q.outcome),
                     q.checks.empty() ? "" : q.checks.front(), q.evidence.substr(0, 120));
}

// Killed (D6) when the report FAILs or WARNs a requirement the catalog expects; a FAIL of another
// requirement is reported but does not count. For a profile difference, the first requirement
// whose verdict or evidence differs from the fault-free report.
ordered_json spec_verdicts(const conformance::Report& r, const conformance::Report& clean,
                           const FaultInfo& f, double seconds) {
  using conformance::Outcome;
  const std::vector<std::string> expected = expected_requirements(f);
  const conformance::RequirementResult* other = nullptr;
  for (const auto& q : r.requirements) {
    if (q.outcome != Outcome::Fail && q.outcome != Outcome::Warn) continue;
    if (std::find(expected.begin(), expected.end(), q.requirement.id) != expected.end())
      return result(true, describe(q), seconds);
    if (other == nullptr) other = &q;
  }
  if (other != nullptr)
    return result(false, "not an expected requirement: " + describe(*other), seconds);
  if (f.kind == FaultKind::ProfileDifference) {
    for (const auto& q : r.requirements) {
      const auto* c = clean.find(q.requirement.id);
      if (c != nullptr && (c->outcome != q.outcome || c->evidence != q.evidence)) {
        return result(false,
                      fmt::format("differs (not a FAIL): {} {}: {}", q.requirement.id,
                                  to_string(q.outcome), q.evidence.substr(0, 100)),
                      seconds);
      }
    }
  }
  return result(false, "", seconds);
}

ordered_json invariants(const conformance::Report& r, double seconds) {
  for (const auto& c : r.checks) {
    if (!c.violations.empty())
      return result(true, fmt::format("{}: {}", c.name, c.violations.front().substr(0, 140)),
                    seconds);
  }
  return result(false, "", seconds);
}

#if VMEM_HAVE_PROOFS
ordered_json proofs_part(Fault fault, unsigned timeout_ms) {
  const auto t0 = std::chrono::steady_clock::now();
  std::string failed;
  for (const proofs::Proof& p : proofs::all_proofs()) {
    if (p.fault_independent) continue;
    const proofs::ProofResult r = p.run(proofs::ProofOptions{fault, timeout_ms});
    if (r.outcome == proofs::Outcome::Proved) continue;
    failed += (failed.empty() ? "" : ", ") + r.name + " " + to_string(r.outcome);
  }
  return result(!failed.empty(), failed, since(t0));
}
#endif

// The ops fuzzer with VMEM_FUZZ_FAULT, seed 1, from a copy of the corpus; killed iff it left a
// crash artifact. Bounded by libFuzzer's own clock and, should that fail, by run_bounded's.
ordered_json fuzz_part(const MutateOptions& o, const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / fmt::format("vmem-mutate-{}-{}", getpid(), name);
  fs::remove_all(dir);
  fs::create_directories(dir / "corpus");
  fs::create_directories(dir / "crash");
  for (const auto& e : fs::directory_iterator(o.corpus))
    fs::copy_file(e.path(), dir / "corpus" / e.path().filename());
  const Command cmd{
      {o.fuzzer, "-seed=1", fmt::format("-max_total_time={}", o.fuzz_time), "-timeout=10",
       fmt::format("-artifact_prefix={}/", (dir / "crash").string()), (dir / "corpus").string()},
      {"VMEM_FUZZ_FAULT=" + name},
      dir / "log"};
  const auto t0 = std::chrono::steady_clock::now();
  const auto ran = run_bounded(cmd, o.fuzz_time + 60.0);
  const double seconds = since(t0);
  bool crashed = false;
  for (const auto& e : fs::directory_iterator(dir / "crash"))
    crashed = crashed || e.path().filename().string().rfind("crash-", 0) == 0;
  std::string oracle;
  std::ifstream log(dir / "log");
  for (std::string line; std::getline(log, line);) {
    if (line.rfind("ops oracle: ", 0) == 0) {
      oracle = line.substr(12, 140);
      break;
    }
  }
  fs::remove_all(dir);
  if (!ran.has_value()) return result(false, "the fuzzer did not run: " + ran.error().message, 0);
  return result(crashed, crashed ? oracle : fmt::format("nothing in {} s", o.fuzz_time), seconds);
}

std::string cell(const ordered_json& parts, const char* part) {
  if (!parts.contains(part)) return "-";
  const auto& p = parts[part];
  if (p["killed"].get<bool>()) return fmt::format("killed ({:.1f} s)", p["seconds"].get<double>());
  const std::string d = p["detail"].get<std::string>();
  return d.rfind("differs", 0) == 0 ? "differs" : "survived";
}

// Every (mutant, part) this run shares with the baseline and the baseline killed must be killed
// again: the harness lost no power.
int compare_with_baseline(const MutateOptions& o, const ordered_json& matrix) {
  std::ifstream in(o.baseline);
  const ordered_json base = ordered_json::parse(in, nullptr, false);
  if (base.is_discarded() || !base.contains("mutants")) {
    fmt::print(stderr, "vmemcheck: {} is not a kill matrix (matrix.json)\n", o.baseline);
    return 2;
  }
  std::map<std::string, const ordered_json*> before;
  for (const auto& m : base["mutants"])
    before[m["name"].get<std::string>()] = &m["parts"];
  int lost = 0;
  for (const auto& m : matrix) {
    const auto it = before.find(m["name"].get<std::string>());
    if (it == before.end()) continue;
    for (const auto& [part, now] : m["parts"].items()) {
      const ordered_json& then = *it->second;
      if (!then.contains(part) || !then[part]["killed"].get<bool>()) continue;
      if (now["killed"].get<bool>()) continue;
      ++lost;
      fmt::print("REGRESSION: {} survives {} (the baseline killed it: {})\n",
                 m["name"].get<std::string>(), part, then[part]["detail"].get<std::string>());
    }
  }
  fmt::print("baseline {}: {}\n", o.baseline,
             lost ? fmt::format("{} kills lost", lost) : std::string("no kill lost"));
  return lost ? 1 : 0;
}

}  // namespace

int run_mutate(const MutateOptions& o) {
  if (!kMutantsBuild) {
    fmt::print(stderr, "vmemcheck: mutate needs the mutants build: run vmemcheck-mutants\n");
    return 2;
  }
  for (const std::string& p : o.parts) {
    if (std::find(std::begin(kParts), std::end(kParts), p) == std::end(kParts)) {
      fmt::print(stderr, "vmemcheck: unknown part '{}' (conformance, invariants, proofs, fuzz)\n",
                 p);
      return 2;
    }
  }
  const auto want = [&](const char* p) {
    return std::find(o.parts.begin(), o.parts.end(), p) != o.parts.end();
  };
#if !VMEM_HAVE_PROOFS
  if (want("proofs")) {
    fmt::print(stderr, "vmemcheck: built without proofs (VMEM_BUILD_PROOFS=OFF)\n");
    return 2;
  }
#endif
  if (want("fuzz") && (o.fuzzer.empty() || !fs::exists(o.fuzzer))) {
    fmt::print(stderr,
               "vmemcheck: the fuzz part needs --fuzzer PATH (build/fuzz/fuzz/ops_mutants_fuzzer: "
               "cmake --build --preset fuzz --target ops_mutants_fuzzer)\n");
    return 2;
  }
  std::vector<FaultInfo> faults;
  for (const FaultInfo& f : fault_catalog()) {
    if (o.only.empty() || std::find(o.only.begin(), o.only.end(), f.name) != o.only.end())
      faults.push_back(f);
  }
  for (const std::string& n : o.only) {
    if (!fault_from_name(n) || n == "none") {
      fmt::print(stderr, "vmemcheck: unknown fault '{}' (see `vmemcheck-mutants faults`)\n", n);
      return 2;
    }
  }
  auto catalog = conformance::embedded_catalog();
  if (!catalog.has_value()) {
    fmt::print(stderr, "vmemcheck: {}\n", catalog.error().message);
    return 2;
  }
  fs::create_directories(fs::path(o.out) / "mutants");
  std::optional<conformance::Report> clean;

  ordered_json matrix = ordered_json::array();
  for (const FaultInfo& f : faults) {
    const fs::path file = fs::path(o.out) / "mutants" / (std::string(f.name) + ".json");
    ordered_json m = {{"name", f.name},
                      {"kind", to_string(f.kind)},
                      {"bug_class", f.bug_class},
                      {"expected_by", f.expected_by},
                      {"parts", ordered_json::object()}};
    // What an earlier run stored is kept; the parts asked for are run again, unless --resume
    // finds them there.
    if (fs::exists(file)) {
      std::ifstream in(file);
      const ordered_json stored = ordered_json::parse(in, nullptr, false);
      if (!stored.is_discarded() && stored.contains("parts")) m["parts"] = stored["parts"];
    }
    ordered_json& parts = m["parts"];
    const auto due = [&](const char* part) {
      return want(part) && !(o.resume && parts.contains(part));
    };
    if (due("conformance") || due("invariants")) {
      if (!clean) clean = conform(*catalog, "");
      const auto t0 = std::chrono::steady_clock::now();
      const conformance::Report r = conform(*catalog, std::string(f.name));
      const double s = since(t0);
      if (due("conformance")) parts["conformance"] = spec_verdicts(r, *clean, f, s);
      if (due("invariants")) parts["invariants"] = invariants(r, s);
    }
#if VMEM_HAVE_PROOFS
    if (due("proofs")) parts["proofs"] = proofs_part(f.fault, o.proof_timeout_ms);
#endif
    if (due("fuzz")) parts["fuzz"] = fuzz_part(o, std::string(f.name));
    std::ofstream(file) << m.dump(2) << "\n";
    fmt::print("{:<38} {:<18} {:<16} {:<16} {:<16} {}\n", f.name, to_string(f.kind),
               cell(parts, "conformance"), cell(parts, "invariants"), cell(parts, "proofs"),
               cell(parts, "fuzz"));
    matrix.push_back(std::move(m));
  }

  // The figures D6 asks for: bugs killed by any part, and by spec verdicts and proofs alone.
  unsigned bugs = 0, any = 0, pr = 0;
  for (const auto& m : matrix) {
    if (m["kind"] != "bug") continue;
    ++bugs;
    const auto& p = m["parts"];
    const auto killed = [&](const char* part) {
      return p.contains(part) && p[part]["killed"].get<bool>();
    };
    any += killed("conformance") || killed("invariants") || killed("proofs") || killed("fuzz");
    pr += killed("conformance") || killed("proofs");
  }
  // The parts with results (this run's and those stored by earlier runs).
  std::vector<std::string> ran;
  for (const char* part : kParts) {
    const bool present = std::any_of(matrix.begin(), matrix.end(),
                                     [&](const auto& m) { return m["parts"].contains(part); });
    if (present) ran.emplace_back(part);
  }
  const std::string summary = fmt::format(
      "{} bugs: {} killed by at least one part run ({}), {} by spec verdicts and proofs "
      "({:.0f}%)",
      bugs, any, fmt::join(ran, ", "), pr, bugs ? 100.0 * pr / bugs : 0.0);
  fmt::print("\n{}\n", summary);

  std::ofstream(fs::path(o.out) / "matrix.json")
      << ordered_json{{"summary", summary}, {"mutants", matrix}}.dump(2) << "\n";
  std::ofstream md(fs::path(o.out) / "matrix.md");
  md << "| mutant | kind | spec verdicts | invariant checker | proofs | fuzzing (ops) |\n"
     << "|---|---|---|---|---|---|\n";
  for (const auto& m : matrix) {
    const auto& p = m["parts"];
    const auto text = [&](const char* part) -> std::string {
      if (!p.contains(part)) return "not run";
      const auto& r = p[part];
      std::string d = r["detail"].get<std::string>();
      std::replace(d.begin(), d.end(), '|', '/');
      if (r["killed"].get<bool>())
        return fmt::format("**killed** in {:.1f} s: {}", r["seconds"].get<double>(), d);
      return d.empty() ? "survived" : d;
    };
    md << fmt::format("| `{}` | {} | {} | {} | {} | {} |\n", m["name"].get<std::string>(),
                      m["kind"].get<std::string>(), text("conformance"), text("invariants"),
                      text("proofs"), text("fuzz"));
  }
  md << "\n" << summary << ".\n";
  fmt::print("written: {}/matrix.md, {}/matrix.json, {}/mutants/\n", o.out, o.out, o.out);
  return o.baseline.empty() ? 0 : compare_with_baseline(o, matrix);
}

}  // namespace vmem::cli
