// `vmemcheck kvm-cost`: KVM's per-memslot metadata for a virtio-mem geometry, one big memslot
// against dynamic memslots (docs/kvm-metadata.md).
#pragma once

#include <cstdint>

namespace vmem::cli {

int run_kvm_cost(uint64_t addr, uint64_t region_size, uint64_t block_size, uint64_t plugged,
                 uint64_t memslot_limit, bool dirty_logging);

}  // namespace vmem::cli
