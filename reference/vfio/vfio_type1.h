// A VFIO container with the type1 v2 IOMMU driver (drivers/vfio/vfio_iommu_type1.c), as far as
// the DMA mapping interface goes: what VFIO_IOMMU_MAP_DMA and VFIO_IOMMU_UNMAP_DMA accept, the
// per-container limit on mappings (the dma_entry_limit module parameter, 65535 by default) and
// pinned-memory accounting against the locked-memory limit (RLIMIT_MEMLOCK).
//
// The rules that matter to virtio-mem: a new mapping may not overlap an existing one; an unmap
// may cover any number of whole mappings (and gaps) but may not split one, so a consumer that
// wants to unmap single blocks later must map them one by one.
#pragma once

#include <cstdint>
#include <map>
#include <optional>

#include "reference/base/result.h"

VMEM_NAMESPACE_BEGIN

enum class VfioError : uint8_t {
  Invalid,   // EINVAL: size 0, misaligned to the IOMMU page size, wraps, or an unmap splits a
             // mapping
  Exists,    // EEXIST: the new mapping overlaps an existing one
  NoSpace,   // ENOSPC: the container's mapping limit is reached
  NoMemory,  // ENOMEM: pinning would exceed the locked-memory limit
  Injected,  // EFAULT: a map failure injected by a test
};
const char* to_string(VfioError e);

struct DmaMapping {
  uint64_t iova = 0;
  uint64_t size = 0;
  uint64_t vaddr = 0;
  friend bool operator==(const DmaMapping&, const DmaMapping&) = default;
};

struct VfioContainerOptions {
  uint32_t dma_entry_limit = 65535;
  uint64_t locked_memory_limit = ~uint64_t{0};
  // Supported IOMMU page sizes (VFIO_IOMMU_GET_INFO's iova_pgsizes): 4 KiB, 2 MiB, 1 GiB.
  uint64_t iova_pgsizes = (1ULL << 12) | (1ULL << 21) | (1ULL << 30);
};

class VfioType1Container {
 public:
  explicit VfioType1Container(VfioContainerOptions options = {});

  Result<void, VfioError> map_dma(uint64_t iova, uint64_t size, uint64_t vaddr);
  // Returns the bytes unmapped (0 if nothing was mapped there).
  Result<uint64_t, VfioError> unmap_dma(uint64_t iova, uint64_t size);

  // Fault injection: the n-th map_dma from now (1 = the next) fails with VfioError::Injected.
  void fail_nth_map(uint64_t n) { fail_at_ = maps_ + n; }
  bool map_failure_armed() const { return fail_at_.has_value(); }

  const std::map<uint64_t, DmaMapping>& mappings() const { return mappings_; }
  uint64_t pinned_bytes() const { return pinned_; }
  uint32_t dma_entry_limit() const { return options_.dma_entry_limit; }
  uint64_t min_page_size() const;
  uint64_t map_calls() const { return maps_; }
  uint64_t unmap_calls() const { return unmaps_; }

 private:
  VfioContainerOptions options_;
  std::map<uint64_t, DmaMapping> mappings_;  // by iova
  uint64_t pinned_ = 0;
  uint64_t maps_ = 0;
  uint64_t unmaps_ = 0;
  std::optional<uint64_t> fail_at_;
};

VMEM_NAMESPACE_END
