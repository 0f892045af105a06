// `vmemcheck prove --trace`: checks a recorded trace (docs/trace-format.md) step by step against
// the transition relation of the device's block-state machine (reference/mem/block_state.h, the
// machine the invariant proofs are about), and names the first step no allowed transition
// explains.
//
// The relation is the fault-free machine in the trace's profile, with the host's part of a step
// left open where a trace cannot show it: a PLUG may meet a refused populate and an UNPLUG or
// UNPLUG_ALL a failed discard (both answer BUSY and change nothing). Every observation the trace
// recorded of the block state (responses, STATE answers, resize results, plugged_size,
// requested_size, usable_region_size) must be one of the relation's. Steps that do not touch the
// block state (consumers, listeners, VFIO, guest memory, `check`, `status`, `isr`) are passed over;
// a step that replaces the state the relation cannot follow (`load`, register-level driving)
// ends the check there, and the result says so.
#pragma once

#include <optional>
#include <string>

#include "reference/trace/trace.h"

VMEM_NAMESPACE_BEGIN
namespace proofs {

struct TraceCheck {
  int explained = 0;    // block-state steps the relation explained
  int passed_over = 0;  // steps that do not touch the block state
  // The first step no transition explains: the line, the operation, what the trace observed and
  // what the relation allows.
  struct Unexplained {
    int line = 0;
    std::string op;
    std::string observed;
    std::string allowed;
  };
  std::optional<Unexplained> unexplained;
  // Where the check had to stop early without a verdict on the rest, and why.
  std::optional<std::string> stopped;
  // A trace the check cannot run (a geometry the device refuses, a region too large to follow).
  std::optional<std::string> error;

  bool accepted() const { return !unexplained && !error; }
};

TraceCheck check_trace(const Trace& trace);

}  // namespace proofs
VMEM_NAMESPACE_END
