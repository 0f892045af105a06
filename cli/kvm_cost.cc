#include "cli/kvm_cost.h"

#include <fmt/format.h>

#include "reference/kvm/kvm_metadata.h"
#include "reference/kvm/memslot_map.h"
#include "reference/mem/consumer_rules.h"

namespace vmem::cli {

namespace {

std::string human(uint64_t bytes) {
  if (bytes >= (1ULL << 30))
    return fmt::format("{:.2f} GiB", static_cast<double>(bytes) / (1ULL << 30));
  if (bytes >= (1ULL << 20))
    return fmt::format("{:.2f} MiB", static_cast<double>(bytes) / (1ULL << 20));
  return fmt::format("{:.1f} KiB", static_cast<double>(bytes) / 1024);
}

}  // namespace

int run_kvm_cost(uint64_t addr, uint64_t region_size, uint64_t block_size, uint64_t plugged,
                 uint64_t memslot_limit, bool dirty_logging) {
  if (plugged > region_size || block_size == 0 || plugged % block_size != 0) {
    fmt::print(stderr,
               "vmemcheck: --plugged must be a multiple of the block size, at most the region\n");
    return 2;
  }
  fmt::print("KVM memslot metadata for a {} virtio-mem region at {:#x}, {} blocks, {} plugged\n",
             human(region_size), addr, human(block_size), human(plugged));
  // As QEMU decides for a device that fills the device-memory area, unless the user says.
  const uint64_t kvm_slots = kvm_max_memslots();
  if (memslot_limit == 0) {
    memslot_limit = rules::memslot_decision_limit(U64{}, kvm_slots, kvm_slots, 0, 0, region_size,
                                                  region_size, 0);
  }
  fmt::print(
      "KVM offers {} memslots here (KVM_CAP_NR_MEMSLOTS, or 512 without /dev/kvm); "
      "the device may use {}\n",
      kvm_slots, memslot_limit);
  fmt::print("\n{:<42} {:>12} {:>14} {:>14}\n", "kernel model", "one memslot", "dynamic best",
             "dynamic worst");
  for (bool current : {false, true}) {
    for (bool tdp : {false, true}) {
      for (bool smm : {false, true}) {
        KvmModel m = current ? current_kernel(tdp, smm) : seed_kernel(tdp, smm);
        m.dirty_logging = dirty_logging;
        const MemslotComparison c =
            compare_memslots(addr, region_size, block_size, plugged, memslot_limit, m);
        fmt::print("{:<42} {:>12} {:>14} {:>14}\n", m.name, human(c.one_big.total()),
                   human(c.dynamic_best.total()), human(c.dynamic_worst.total()));
      }
    }
  }
  const MemslotComparison c = compare_memslots(addr, region_size, block_size, plugged,
                                               memslot_limit, seed_kernel(false, false));
  fmt::print("\ndynamic memslots: {} of {} each; best case {} mapped, worst case {} mapped\n",
             c.memslots, human(c.memslot_size), c.best_mapped, c.worst_mapped);
  fmt::print(
      "rmap 8 B per 4 KiB + 2 MiB + 1 GiB page (without the TDP MMU); lpage_info 4 B per 2 MiB + 1 "
      "GiB;\n"
      "gfn_track 2 B per 4 KiB (always before Linux 5.16, on demand since); SMM doubles "
      "everything.\n");
  return 0;
}

}  // namespace vmem::cli
