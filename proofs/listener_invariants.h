// The discard manager's promise, proved inductive over its own bookkeeping
// (reference/discard/listener_state.h, which reference/tests/listener_state_test.cc ties to
// DiscardManager and the VFIO listener); see listener_invariants.cc.
#pragma once

#include <vector>

#include "proofs/proof.h"

VMEM_NAMESPACE_BEGIN
namespace proofs {

std::vector<Proof> listener_invariant_proofs();

}  // namespace proofs
VMEM_NAMESPACE_END
