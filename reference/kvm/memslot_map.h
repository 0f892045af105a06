// The device region as KVM sees it: one big memslot, or, with dynamic memslots (QEMU 8.2+), a
// row of memslots of which only those holding a plugged block are mapped. A huge, mostly empty
// device then costs KVM (and vhost, and VFIO) almost nothing.
//
// Rules (QEMU's virtio_mem_activate_memslots_to_plug() / _deactivate_unplugged_memslots()):
// before a PLUG is announced, every memslot its range touches is mapped; after an UNPLUG (or a
// refused PLUG) every memslot the range touches that holds no plugged block any more is unmapped;
// UNPLUG_ALL unmaps them all. Memslots are never merged with their neighbours, so each maps and
// unmaps on its own. Mapping a memslot is a region_add to every memory listener (VFIO registers
// a RamDiscardListener there), unmapping a region_del.
#pragma once

#include <cstdint>
#include <vector>

#include "reference/discard/discard_manager.h"
#include "reference/kvm/memory_listener.h"

VMEM_NAMESPACE_BEGIN

class VirtioMemDevice;

class MemslotMap {
 public:
  // `limit` is how many memslots the device may use (QEMU's memory_device_memslot_decision_limit);
  // 1, or dynamic memslots off, gives a single memslot that is mapped from the start.
  MemslotMap(const VirtioMemDevice& device, bool dynamic, uint64_t limit);

  uint64_t count() const { return active_.size(); }
  uint64_t memslot_size() const { return memslot_size_; }
  bool dynamic() const { return dynamic_; }
  Section section_of(uint64_t index) const;
  bool active(uint64_t index) const { return active_.at(index); }
  uint64_t active_count() const;

  // Listeners see region_add for every memslot already mapped when they are added.
  Status add_listener(MemoryListener& l);

  // Before populate: maps the memslots [offset, offset + size) touches. If a listener refuses a
  // memslot, the ones mapped by this call are unmapped again and the error returned.
  Status activate(uint64_t offset, uint64_t size);
  // After the bitmap shows the range unplugged: unmaps each memslot it touches that holds no
  // plugged block.
  void deactivate_unplugged(uint64_t offset, uint64_t size);

 private:
  Status map(uint64_t index);
  void unmap(uint64_t index);

  const VirtioMemDevice& device_;
  bool dynamic_;
  uint64_t memslot_size_;
  std::vector<bool> active_;
  std::vector<MemoryListener*> listeners_;
};

// How many memslots KVM offers (KVM_CAP_NR_MEMSLOTS) when /dev/kvm can be opened; else QEMU's
// assumption of 512.
uint64_t kvm_max_memslots();

VMEM_NAMESPACE_END
