// The inductive invariants of the device's block-state machine (reference/mem/block_state.h)
// and the per-word lemmas they rest on; see block_invariants.cc.
#pragma once

#include <vector>

#include "proofs/proof.h"

VMEM_NAMESPACE_BEGIN
namespace proofs {

std::vector<Proof> block_invariant_proofs();

}  // namespace proofs
VMEM_NAMESPACE_END
