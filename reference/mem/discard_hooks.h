// How the device tells the rest of the VMM that block memory becomes usable or goes away: the
// hook the discard manager (RamDiscardManager semantics) plugs into. Offsets and sizes are
// relative to the start of the device region and block-aligned.
#pragma once

#include <cstdint>

#include "reference/base/result.h"

VMEM_NAMESPACE_BEGIN

class DiscardHooks {
 public:
  virtual ~DiscardHooks() = default;
  // Called before [offset, offset + size) becomes usable by the guest. May refuse (e.g. a VFIO
  // mapping failed); the device then rolls back and answers BUSY, and the hook must have undone
  // its own partial work.
  virtual Status populate(uint64_t offset, uint64_t size) = 0;
  // Called after the memory of [offset, offset + size) was discarded. Cannot fail.
  virtual void discard(uint64_t offset, uint64_t size) = 0;
};

VMEM_NAMESPACE_END
