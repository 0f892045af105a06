// `vmemcheck prove`: the Z3 proofs over the reference's decision code (proofs/proof.h).
#pragma once

#include <string>

namespace vmem::cli {

// 0 when every selected proof is proved; 1 otherwise (failed or unknown); 2 on bad options.
int run_prove(const std::string& filter, unsigned timeout_ms, const std::string& fault);

}  // namespace vmem::cli
