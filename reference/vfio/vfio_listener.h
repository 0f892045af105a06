// VFIO type1 as a consumer of virtio-mem memory, as QEMU's VFIO listener does it
// (hw/vfio/common.c in 7.2, hw/vfio/listener.c today).
//
// A section of a virtio-mem region is never mapped whole: VFIO registers a RamDiscardListener
// for it and maps only what is populated, one DMA mapping per granule (block), so that any block
// can later be unmapped alone (type1 cannot split a mapping). A discard unmaps its range in one
// call, which type1 allows because it covers whole mappings only.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "reference/discard/discard_manager.h"
#include "reference/kvm/memory_listener.h"
#include "reference/mem/fault.h"
#include "reference/mem/profile.h"
#include "reference/vfio/vfio_type1.h"

VMEM_NAMESPACE_BEGIN

class VfioRamDiscardListener final : public RamDiscardListener {
 public:
  // `gpa` and `hva` are the guest-physical and host addresses of offset 0 of the device region.
  VfioRamDiscardListener(VfioType1Container& container, const Section& section, uint64_t gpa,
                         uint64_t hva, uint64_t granularity, Fault fault = Fault::None)
      : container_(container),
        section_(section),
        gpa_(gpa),
        hva_(hva),
        granularity_(granularity),
        fault_(fault) {}

  // Maps granule by granule; on a failure unmaps the whole section again (unmapping IOVA that was
  // never mapped is harmless) and refuses.
  Status notify_populate(const Section& s) override;
  // One unmap for the whole range.
  void notify_discard(const Section& s) override;
  bool double_discard_supported() const override { return true; }

  const Section& section() const { return section_; }
  uint64_t gpa() const { return gpa_; }
  uint64_t granularity() const { return granularity_; }

 private:
  VfioType1Container& container_;
  Section section_;
  uint64_t gpa_;
  uint64_t hva_;
  uint64_t granularity_;
  Fault fault_;
};

// The container's memory listener for virtio-mem sections.
class VfioMemoryListener final : public MemoryListener {
 public:
  struct Options {
    Profile profile = Profile::Spec;  // qemu-7.2 only warns about the mapping budget
    uint64_t max_memslots = 512;      // KVM's KVM_CAP_NR_MEMSLOTS, or QEMU's fallback of 512
  };

  // Takes the type1 permission (uncoordinated discards disabled; virtio-mem's are fine).
  static Result<std::unique_ptr<VfioMemoryListener>> create(VfioType1Container& container,
                                                            DiscardManager& manager,
                                                            DiscardPermission& permission,
                                                            uint64_t hva, Options options);
  ~VfioMemoryListener() override;

  // Checks the mapping budget, then registers a listener for the section (which maps what is
  // populated). In the spec and qemu profiles a budget that could be exceeded refuses the
  // section with an error naming the fix; qemu-7.2 records a warning and goes on.
  Status region_add(const Section& s) override;
  void region_del(const Section& s) override;

  const std::vector<std::unique_ptr<VfioRamDiscardListener>>& listeners() const {
    return listeners_;
  }
  const std::vector<std::string>& warnings() const { return warnings_; }
  VfioType1Container& container() const { return container_; }
  const Options& options() const { return options_; }

 private:
  VfioMemoryListener(VfioType1Container& container, DiscardManager& manager,
                     DiscardPermission& permission, uint64_t hva, Options options)
      : container_(container),
        manager_(manager),
        permission_(permission),
        hva_(hva),
        options_(options) {}

  VfioType1Container& container_;
  DiscardManager& manager_;
  DiscardPermission& permission_;
  uint64_t hva_;
  Options options_;
  std::vector<std::unique_ptr<VfioRamDiscardListener>> listeners_;
  std::vector<std::string> warnings_;
};

VMEM_NAMESPACE_END
