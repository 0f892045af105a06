#include "fuzz/model/vfio_budget.h"

namespace vmem::model {

namespace {
__extension__ typedef unsigned __int128 u128;  // __extension__: -Wpedantic
}  // namespace

uint64_t granules_touched(const DmaSection& s) {
  // In 128 bits, a section ending at 2^64 needs no special case.
  const u128 g = s.granularity;
  const u128 first = s.gpa / g;
  const u128 end = (u128{s.gpa} + s.size + g - 1) / g;
  return static_cast<uint64_t>(end - first);
}

bool vfio_budget_admits(Profile p, std::span<const DmaSection> registered, const DmaSection& added,
                        uint64_t max_memslots, uint64_t dma_max_mappings) {
  if (p == Profile::Qemu72 || dma_max_mappings == 0) return true;
  u128 worst = u128{granules_touched(added)} + max_memslots - 1;
  for (const DmaSection& s : registered)
    worst += u128{granules_touched(s)} - 1;  // each section stands for one of the memslots
  return worst <= dma_max_mappings;
}

}  // namespace vmem::model
