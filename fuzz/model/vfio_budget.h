// QEMU's DMA-mapping budget for VFIO on virtio-mem sections, modelled from the QEMU notes
// (qemu-behaviour.md, "Mapping-budget check": QEMU a74317f636, a warning up to 10.1, a fatal
// region_add error from 10.2) without the reference's code. The `ops` fuzzer judges by it every
// VFIO section the reference admits or refuses.
//
// VFIO maps a virtio-mem section one granule at a time, so that any block can be unmapped on its
// own later. Before it listens to a new section, QEMU adds up what the worst case would need: every
// granule of every section of the container, the new one included, plus one mapping for each
// memslot KVM may still have (max_memslots), less the memslots those sections are themselves.
#pragma once

#include <cstdint>
#include <span>

#include "fuzz/model/spec_model.h"

namespace vmem::model {

// A section of a virtio-mem region that VFIO listens to, in guest-physical addresses.
struct DmaSection {
  uint64_t gpa = 0;
  uint64_t size = 0;
  uint64_t granularity = 0;  // the device's block size: a power of two
};

// The mappings `s` needs when fully populated: one per granule it touches.
uint64_t granules_touched(const DmaSection& s);

// Whether the container takes `added` beside `registered`: false when the worst case exceeds
// `dma_max_mappings` (0: the limit is unknown, as with iommufd, and nothing is checked), except
// in qemu-7.2, where QEMU only warns. `max_memslots` is KVM's memslot count (QEMU assumes 512
// without KVM).
bool vfio_budget_admits(Profile p, std::span<const DmaSection> registered, const DmaSection& added,
                        uint64_t max_memslots, uint64_t dma_max_mappings);

}  // namespace vmem::model
