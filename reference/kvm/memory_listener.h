// QEMU's MemoryListener, reduced to what virtio-mem's consumers need: a section of the device
// region appears in (region_add) or leaves (region_del) the guest's address space. With dynamic
// memslots each memslot is such a section; without, the whole region is one.
#pragma once

#include "reference/base/result.h"
#include "reference/discard/discard_manager.h"

VMEM_NAMESPACE_BEGIN

class MemoryListener {
 public:
  virtual ~MemoryListener() = default;
  // May refuse (e.g. VFIO cannot afford the mappings); the section then stays unmapped.
  virtual Status region_add(const Section& s) = 0;
  virtual void region_del(const Section& s) = 0;
};

VMEM_NAMESPACE_END
