// The discard manager's promise, proved inductive over its own bookkeeping
// (reference/discard/listener_state.h, which reference/tests/listener_state_test.cc ties to
// DiscardManager and the VFIO listener); see listener_invariants.cc.
#pragma once

#include <vector>

#include "proofs/proof.h"
#include "reference/mem/device_options.h"

VMEM_NAMESPACE_BEGIN
namespace proofs {

std::vector<Proof> listener_invariant_proofs();

// The devices the consumers' counterexample traces run on, at 4 GiB: `blocks` blocks of 2 MiB,
// all of which may be plugged (VFIO needs blocks of at least a page); and dynamic memslots over
// `blocks` blocks of 16 MiB, where two memslots meet QEMU's 1 GiB minimum at 64 blocks each.
DeviceOptions consumer_trace_device(uint64_t blocks);
DeviceOptions memslot_trace_device(uint64_t blocks);

// A counterexample to the VFIO mapping budget that the reference can run: a container whose
// entry limit (a u32) Z3 picks so that the fault's budget decides otherwise than the fault-free
// one on its first section, with QEMU's fallback of 512 memslots (what ConsumerSet gives the
// listener); the trace expects the fault-free answer. Empty when no such limit exists.
std::string mapping_budget_trace(const ProofOptions& o);

}  // namespace proofs
VMEM_NAMESPACE_END
