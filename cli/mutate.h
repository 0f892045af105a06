// `vmemcheck-mutants mutate`: the kill matrix (decisions D6). Every named fault of the catalog
// against each part of the harness, in separate columns:
//   conformance  the suite's spec verdicts (a FAIL or WARN; for a profile difference, any
//                verdict or evidence that differs from the fault-free run)
//   invariants   the reference's own invariant checker during that same run
//   proofs       the Z3 proofs over the fault's decision logic
//   fuzz         the `ops` fuzzer (an external binary) with a fixed seed for a fixed time
// Results are kept per mutant (OUT/mutants/NAME.json), so a long run can be resumed; the matrix
// is printed and written as OUT/matrix.md and OUT/matrix.json.
#pragma once

#include <string>
#include <vector>

namespace vmem::cli {

struct MutateOptions {
  std::vector<std::string> parts = {"conformance", "invariants", "proofs"};
  std::vector<std::string> only;  // fault names; empty: the whole catalog
  std::string out = "mutate-results";
  bool resume = false;      // skip the parts already stored for a mutant (others are kept anyway)
  unsigned fuzz_time = 60;  // seconds per mutant
  std::string fuzzer;       // the ops_mutants_fuzzer binary (for the fuzz part)
  std::string corpus = "corpus/ops";
  unsigned proof_timeout_ms = 120000;
  // A stored matrix (matrix.json of an earlier run, e.g. docs/kill-matrix.json): a mutant a
  // part killed there must be killed by that part again.
  std::string baseline;
};

// Exit status: 0 when the matrix was built (and nothing the baseline killed survived), 1 when a
// mutant the baseline killed survived, 2 on a usage error.
int run_mutate(const MutateOptions& options);

}  // namespace vmem::cli
