#include "reference/vfio/vfio_listener.h"

#include <fmt/format.h>

#include <algorithm>

#include "reference/mem/consumer_rules.h"
#include "reference/mem/device.h"

VMEM_NAMESPACE_BEGIN

Status VfioRamDiscardListener::notify_populate(const Section& s_in) {
  // The mutant maps the listener's whole section instead of the populated part.
  const Section s = faulty(fault_, Fault::PopulateMapsWholeSection) ? section_ : s_in;
  // The mutant maps the whole run at once, so a later discard of one block would split it.
  const uint64_t granularity = faulty(fault_, Fault::PopulateMapsOneRange) ? s.end() : granularity_;
  for (uint64_t off = s.offset; off < s.end();) {
    // Granules are aligned within the region; the last one may be cut by the section's end.
    const uint64_t next = std::min(s.end(), (off / granularity + 1) * granularity);
    auto r = container_.map_dma(gpa_ + off, next - off, hva_ + off);
    if (!r.has_value()) {
      notify_discard(s);
      return unexpected(Error{fmt::format("VFIO_MAP_DMA of [{:#x}, +{:#x}) failed: {}", gpa_ + off,
                                          next - off, to_string(r.error()))});
    }
    off = next;
  }
  return ok();
}

void VfioRamDiscardListener::notify_discard(const Section& s) {
  // Cannot fail by contract; an error here would be a bug in the mapping scheme, and the
  // invariant checker reports the mappings it leaves behind.
  (void)container_.unmap_dma(gpa_ + s.offset, s.size);
}

Result<std::unique_ptr<VfioMemoryListener>> VfioMemoryListener::create(
    VfioType1Container& container, DiscardManager& manager, DiscardPermission& permission,
    uint64_t hva, Options options) {
  VMEM_TRY(permission.disable(/*uncoordinated_only=*/true));
  return std::unique_ptr<VfioMemoryListener>(
      new VfioMemoryListener(container, manager, permission, hva, options));
}

VfioMemoryListener::~VfioMemoryListener() {
  while (!listeners_.empty())
    region_del(listeners_.back()->section());
  permission_.release_disable(true);
}

Status VfioMemoryListener::region_add(const Section& s) {
  const auto quiet = manager_.device().quiesce();
  const uint64_t granularity = manager_.min_granularity();
  const uint64_t gpa = manager_.device().options().addr;
  if (granularity < container_.min_page_size()) {
    return unexpected(Error{fmt::format("block size {:#x} is below the IOMMU page size {:#x}",
                                        granularity, container_.min_page_size())});
  }
  // The budget counts every RamDiscardListener of this container, the new one included.
  const U64 m;
  uint64_t mappings = rules::section_mappings(m, gpa + s.offset, s.size, granularity);
  for (const auto& l : listeners_) {
    mappings += rules::section_mappings(m, l->gpa() + l->section().offset, l->section().size,
                                        l->granularity());
  }
  const uint64_t count = listeners_.size() + 1;
  if (rules::mapping_budget_exceeded(m, mappings, count, options_.max_memslots,
                                     uint64_t{container_.dma_entry_limit()},
                                     manager_.device().fault())) {
    const std::string message = fmt::format(
        "a virtio-mem section needs up to {} DMA mappings ({} with the {} possible memslots), "
        "more than the container's limit of {}: possibly running out of DMA mappings; increase "
        "the block size (now {:#x}) or raise vfio_iommu_type1's dma_entry_limit",
        mappings, mappings + options_.max_memslots - count, options_.max_memslots,
        container_.dma_entry_limit(), granularity);
    if (options_.profile != Profile::Qemu72) return unexpected(Error{message});
    warnings_.push_back(message);
  }
  auto l = std::make_unique<VfioRamDiscardListener>(container_, s, gpa, hva_, granularity,
                                                    manager_.device().fault());
  VMEM_TRY(manager_.register_listener(*l, s));
  listeners_.push_back(std::move(l));
  return ok();
}

void VfioMemoryListener::region_del(const Section& s) {
  const auto quiet = manager_.device().quiesce();
  auto it = std::find_if(listeners_.begin(), listeners_.end(),
                         [&](const auto& l) { return l->section() == s; });
  if (it == listeners_.end()) return;
  manager_.unregister_listener(**it);
  listeners_.erase(it);
}

VMEM_NAMESPACE_END
