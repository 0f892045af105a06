#include "cli/prove.h"

#include <fmt/format.h>

#include <fstream>
#include <sstream>

#include "proofs/proof.h"
#include "proofs/trace_check.h"

namespace vmem::cli {

int run_prove(const std::string& filter, unsigned timeout_ms, const std::string& fault_name) {
  const auto fault = fault_from_name(fault_name);
  if (!fault) {
    fmt::print(stderr, "vmemcheck: unknown fault '{}' (see `vmemcheck faults`)\n", fault_name);
    return 2;
  }
  if (*fault != Fault::None && !kMutantsBuild) {
    fmt::print(stderr, "vmemcheck: --fault needs the mutants build: run vmemcheck-mutants\n");
    return 2;
  }
  int failed = 0, ran = 0;
  double total = 0;
  for (const proofs::Proof& p : proofs::all_proofs()) {
    if (!filter.empty() && p.name.find(filter) == std::string::npos) continue;
    ++ran;
    const proofs::ProofResult r = p.run(proofs::ProofOptions{*fault, timeout_ms});
    total += r.seconds;
    fmt::print("{:<8} {:<26} {:>8.2f} s  {}\n", to_string(r.outcome), r.name, r.seconds, r.covers);
    if (r.outcome != proofs::Outcome::Proved) {
      ++failed;
      fmt::print("         counterexample: {}\n", r.counterexample);
      if (!r.trace.empty()) fmt::print("         as a trace (vmemcheck replay):\n{}", r.trace);
    }
  }
  if (ran == 0) {
    fmt::print(stderr, "vmemcheck: no proof matches '{}'\n", filter);
    return 2;
  }
  fmt::print("{} passed, {} failed ({:.1f} s)\n", ran - failed, failed, total);
  return failed == 0 ? 0 : 1;
}

int run_prove_trace(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  if (!in) {
    fmt::print(stderr, "vmemcheck: cannot read {}\n", path);
    return 2;
  }
  const auto trace = parse_trace(text.str());
  if (!trace.has_value()) {
    fmt::print(stderr, "vmemcheck: {}: {}\n", path, trace.error().message);
    return 2;
  }
  const proofs::TraceCheck r = proofs::check_trace(*trace);
  if (r.error) {
    fmt::print(stderr, "vmemcheck: {}: {}\n", path, *r.error);
    return 2;
  }
  if (r.unexplained) {
    fmt::print("{}:{}: no transition explains `{}`: observed {}; the relation allows {}\n", path,
               r.unexplained->line, r.unexplained->op, r.unexplained->observed,
               r.unexplained->allowed);
    fmt::print("{} steps explained before it\n", r.explained);
    return 1;
  }
  fmt::print("{}: {} block-state steps explained by the transition relation ({}), {} passed over\n",
             path, r.explained, profile_name(trace->options.profile), r.passed_over);
  if (r.stopped) fmt::print("stopped early: {}\n", *r.stopped);
  return 0;
}

}  // namespace vmem::cli
