// `vmemcheck prove`: the Z3 proofs over the reference's decision code (proofs/proof.h).
#pragma once

#include <string>

namespace vmem::cli {

// Runs the selected proofs, `jobs` at a time (each in its own Z3 context), and prints them in
// their fixed order. 0 when every one is proved; 1 otherwise (failed or unknown); 2 on bad
// options.
int run_prove(const std::string& filter, unsigned timeout_ms, const std::string& fault,
              unsigned jobs = 1);

// `prove --trace FILE`: 0 when the transition relation explains every block-state step of the
// trace; 1 at the first step it does not explain; 2 when the trace cannot be read or checked.
int run_prove_trace(const std::string& path);

}  // namespace vmem::cli
