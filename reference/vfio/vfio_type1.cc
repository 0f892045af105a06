#include "reference/vfio/vfio_type1.h"

#include <bit>

VMEM_NAMESPACE_BEGIN

const char* to_string(VfioError e) {
  switch (e) {
    case VfioError::Invalid:
      return "EINVAL";
    case VfioError::Exists:
      return "EEXIST: overlaps an existing mapping";
    case VfioError::NoSpace:
      return "ENOSPC: DMA mapping limit reached";
    case VfioError::NoMemory:
      return "ENOMEM: locked memory limit exceeded";
    case VfioError::Injected:
      return "EFAULT (injected)";
  }
  return "?";
}

VfioType1Container::VfioType1Container(VfioContainerOptions options) : options_(options) {}

uint64_t VfioType1Container::min_page_size() const {
  return options_.iova_pgsizes == 0 ? 4096 : uint64_t{1} << std::countr_zero(options_.iova_pgsizes);
}

Result<void, VfioError> VfioType1Container::map_dma(uint64_t iova, uint64_t size, uint64_t vaddr) {
  ++maps_;
  if (fail_at_ && maps_ == *fail_at_) {
    fail_at_.reset();
    return unexpected(VfioError::Injected);
  }
  const uint64_t mask = min_page_size() - 1;
  if (size == 0 || (iova & mask) || (size & mask) || (vaddr & mask) || iova + size - 1 < iova ||
      vaddr + size - 1 < vaddr) {
    return unexpected(VfioError::Invalid);
  }
  // Overlap with the mapping at or before iova, or with one starting inside [iova, iova + size).
  auto next = mappings_.lower_bound(iova);
  if (next != mappings_.end() && next->first <= iova + size - 1)
    return unexpected(VfioError::Exists);
  if (next != mappings_.begin()) {
    const DmaMapping& prev = std::prev(next)->second;
    if (prev.iova + prev.size - 1 >= iova) return unexpected(VfioError::Exists);
  }
  if (mappings_.size() >= options_.dma_entry_limit) return unexpected(VfioError::NoSpace);
  if (size > options_.locked_memory_limit - pinned_) return unexpected(VfioError::NoMemory);
  mappings_.emplace_hint(next, iova, DmaMapping{iova, size, vaddr});
  pinned_ += size;
  return {};
}

Result<uint64_t, VfioError> VfioType1Container::unmap_dma(uint64_t iova, uint64_t size) {
  ++unmaps_;
  const uint64_t mask = min_page_size() - 1;
  if (size == 0 || (iova & mask) || (size & mask) || iova + size - 1 < iova) {
    return unexpected(VfioError::Invalid);
  }
  const uint64_t last = iova + size - 1;
  // type1 v2: the first and the last byte may not fall inside a mapping that sticks out.
  auto it = mappings_.upper_bound(iova);
  if (it != mappings_.begin()) {
    const DmaMapping& prev = std::prev(it)->second;
    if (prev.iova < iova && prev.iova + prev.size - 1 >= iova)
      return unexpected(VfioError::Invalid);
  }
  auto tail = mappings_.upper_bound(last);
  if (tail != mappings_.begin()) {
    const DmaMapping& m = std::prev(tail)->second;
    if (m.iova <= last && m.iova + m.size - 1 > last) return unexpected(VfioError::Invalid);
  }
  uint64_t unmapped = 0;
  for (auto m = mappings_.lower_bound(iova); m != mappings_.end() && m->first <= last;) {
    unmapped += m->second.size;
    pinned_ -= m->second.size;
    m = mappings_.erase(m);
  }
  return unmapped;
}

VMEM_NAMESPACE_END
