// What KVM allocates per memslot on x86, so that vmemcheck can say what one big memslot costs
// against dynamic memslots. Formulas (from arch/x86/kvm/x86.c kvm_alloc_memslot_metadata(),
// mmu/page_track.c and virt/kvm/kvm_main.c; docs/kvm-metadata.md works them through):
//
//   rmap         8 B per 4 KiB page + 8 B per 2 MiB + 8 B per 1 GiB of the slot. Allocated up
//                front without the TDP MMU; with it (Linux 5.14+) only once a shadow root exists
//                (nested guests without EPT-on-EPT, shadow paging).
//   lpage_info   4 B per 2 MiB + 4 B per 1 GiB. Always.
//   gfn_track    2 B per 4 KiB page. Always before Linux 5.16; since then only when write
//                tracking is needed (shadow paging, a shadow root, or external tracking).
//   dirty bitmap 2 bits per 4 KiB page (the bitmap and its GET_DIRTY_LOG buffer), only while
//                dirty logging is on (migration).
//   SMM          a second address space mirrors all RAM: everything above twice.
#pragma once

#include <cstdint>
#include <string>

#include "reference/base/abi.h"

VMEM_NAMESPACE_BEGIN

struct KvmModel {
  std::string name;
  bool rmap_eager = true;  // rmaps allocated with the memslot (no TDP MMU)
  bool gfn_track = true;   // gfn_track allocated with the memslot
  bool smm = false;
  bool dirty_logging = false;
};

struct MetadataCost {
  uint64_t rmap = 0;
  uint64_t lpage_info = 0;
  uint64_t gfn_track = 0;
  uint64_t dirty_bitmap = 0;
  uint64_t total() const { return rmap + lpage_info + gfn_track + dirty_bitmap; }
  MetadataCost& operator+=(const MetadataCost& o);
};

// The metadata of one memslot at guest-physical [gpa, gpa + size).
MetadataCost memslot_metadata(uint64_t gpa, uint64_t size, const KvmModel& model);

// One big memslot against dynamic memslots for a device with `plugged` bytes plugged.
struct MemslotComparison {
  uint64_t memslots = 0;  // dynamic memslots the device is split into
  uint64_t memslot_size = 0;
  uint64_t best_mapped = 0;    // memslots mapped when the plugged memory is packed
  uint64_t worst_mapped = 0;   // memslots mapped when every plugged block sits in its own
  MetadataCost one_big;        // the whole region in one memslot
  MetadataCost dynamic_best;   // plugged memory packed into as few memslots as possible
  MetadataCost dynamic_worst;  // plugged blocks spread so that each sits in its own memslot
};

MemslotComparison compare_memslots(uint64_t gpa, uint64_t region_size, uint64_t block_size,
                                   uint64_t plugged, uint64_t memslot_limit, const KvmModel& model);

// The four models the report prints: the seed figures' kernel (gfn_track always allocated, as
// before Linux 5.16) and a current kernel, each with and without the TDP MMU.
KvmModel seed_kernel(bool tdp_mmu, bool smm);
KvmModel current_kernel(bool tdp_mmu, bool smm);

VMEM_NAMESPACE_END
