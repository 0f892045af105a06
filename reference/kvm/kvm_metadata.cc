#include "reference/kvm/kvm_metadata.h"

#include <algorithm>

#include "reference/mem/consumer_rules.h"

VMEM_NAMESPACE_BEGIN

namespace {

constexpr uint64_t kPage = 4096;

// Pages of `level_size` a slot [gpa, gpa + size) overlaps (KVM's __kvm_mmu_slot_lpages()).
uint64_t lpages(uint64_t gpa, uint64_t size, uint64_t level_size) {
  if (size == 0) return 0;
  return (gpa + size - 1) / level_size - gpa / level_size + 1;
}

}  // namespace

MetadataCost& MetadataCost::operator+=(const MetadataCost& o) {
  rmap += o.rmap;
  lpage_info += o.lpage_info;
  gfn_track += o.gfn_track;
  dirty_bitmap += o.dirty_bitmap;
  return *this;
}

MetadataCost memslot_metadata(uint64_t gpa, uint64_t size, const KvmModel& model) {
  MetadataCost c;
  const uint64_t pages = size / kPage;
  const uint64_t l2m = lpages(gpa, size, 2ULL << 20);
  const uint64_t l1g = lpages(gpa, size, 1ULL << 30);
  if (model.rmap_eager) c.rmap = 8 * (pages + l2m + l1g);
  c.lpage_info = 4 * (l2m + l1g);
  if (model.gfn_track) c.gfn_track = 2 * pages;
  if (model.dirty_logging) c.dirty_bitmap = 2 * ((pages + 63) / 64 * 8);
  if (model.smm) {
    c.rmap *= 2;
    c.lpage_info *= 2;
    c.gfn_track *= 2;
    c.dirty_bitmap *= 2;
  }
  return c;
}

MemslotComparison compare_memslots(uint64_t gpa, uint64_t region_size, uint64_t block_size,
                                   uint64_t plugged, uint64_t memslot_limit,
                                   const KvmModel& model) {
  MemslotComparison r;
  r.one_big = memslot_metadata(gpa, region_size, model);
  const auto g = rules::decide_memslots(U64{}, region_size, block_size, memslot_limit);
  r.memslots = g.count;
  r.memslot_size = g.size;
  if (region_size == 0 || plugged == 0) return r;
  auto slot = [&](uint64_t i) {
    const uint64_t off = i * g.size;
    return memslot_metadata(gpa + off, std::min(g.size, region_size - off), model);
  };
  // Best: the plugged bytes fill memslots from the start of the region.
  r.best_mapped = std::min(g.count, (plugged + g.size - 1) / g.size);
  for (uint64_t i = 0; i < r.best_mapped; ++i)
    r.dynamic_best += slot(i);
  // Worst: one plugged block in as many memslots as there are blocks.
  r.worst_mapped = std::min(g.count, plugged / block_size);
  for (uint64_t i = 0; i < r.worst_mapped; ++i)
    r.dynamic_worst += slot(i);
  return r;
}

KvmModel seed_kernel(bool tdp_mmu, bool smm) {
  return KvmModel{std::string("seed kernel (< 5.16), ") + (tdp_mmu ? "TDP MMU" : "no TDP MMU") +
                      (smm ? ", SMM" : ""),
                  !tdp_mmu, true, smm, false};
}

KvmModel current_kernel(bool tdp_mmu, bool smm) {
  // With EPT/NPT and without the TDP MMU, write tracking is still not needed on a current kernel.
  return KvmModel{std::string("current kernel (6.x), ") + (tdp_mmu ? "TDP MMU" : "no TDP MMU") +
                      (smm ? ", SMM" : ""),
                  !tdp_mmu, false, smm, false};
}

VMEM_NAMESPACE_END
