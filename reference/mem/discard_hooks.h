// How the device tells the rest of the VMM that block memory becomes usable or goes away: the
// hook the discard manager (RamDiscardManager semantics) plugs into. Offsets and sizes are
// relative to the start of the device region and block-aligned. The calls come in QEMU's order:
//   PLUG:       populate (may refuse) -> bitmap set
//   UNPLUG:     memory discarded -> discard -> bitmap cleared -> unplugged
//   UNPLUG_ALL: memory discarded -> discard_all -> bitmap cleared -> unplugged(whole region)
// and a refused populate is followed by unplugged() for its range after the roll-back.
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
  // UNPLUG_ALL (or a system reset) with something plugged, after the whole region was discarded
  // and before the bitmap is cleared: one call, where the hook may discard per plugged run or
  // in one sweep. Cannot fail.
  virtual void discard_all() = 0;
  // Called once the bitmap shows [offset, offset + size) unplugged.
  virtual void unplugged(uint64_t offset, uint64_t size) {
    (void)offset;
    (void)size;
  }
};

VMEM_NAMESPACE_END
