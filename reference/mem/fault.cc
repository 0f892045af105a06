#include "reference/mem/fault.h"

#include <array>

VMEM_NAMESPACE_BEGIN

namespace {

constexpr std::array kCatalog = {
    FaultInfo{Fault::RangeEndOffByOne, "range-end-off-by-one",
              "range check accepts a range that ends one block past the usable end",
              "DEV-26, DEV-33, DEV-46"},
    FaultInfo{Fault::RangeNoWrapCheck, "range-no-wrap-check",
              "range check misses u64 wrap-around of addr + nb_blocks * block_size",
              "DEV-26, DEV-33, DEV-46"},
    FaultInfo{Fault::NackBeforeRangeCheck, "nack-before-range-check",
              "plug limit checked before range validity (cloud-hypervisor, Dragonball order)",
              "DEV-26"},
    FaultInfo{Fault::UnplugStateCheckSkipped, "unplug-state-check-skipped",
              "UNPLUG does not check that every covered block is plugged", "DEV-34, DEV-3"},
    FaultInfo{Fault::UnplugPluggedSizeStale, "unplug-plugged-size-stale",
              "an ACKed UNPLUG leaves plugged_size unchanged", "DEV-37, DEV-3"},
    FaultInfo{Fault::UnplugAllUsableBelowRequested, "unplug-all-usable-below-requested",
              "UNPLUG_ALL shrinks usable_region_size to 0 whatever requested_size is (Firecracker)",
              "DEV-4"},
    FaultInfo{Fault::DeviceResetUnplugs, "device-reset-unplugs",
              "a virtio device reset unplugs every block (QEMU 9.2 regression class)", "DEV-13"},
    FaultInfo{Fault::SystemResetKeepsBlocks, "system-reset-keeps-blocks",
              "a system reset leaves blocks plugged", "DEV-22"},
    FaultInfo{Fault::ResizeWithoutNotification, "resize-without-notification",
              "a host resize changes requested_size without a config change notification", "DEV-9"},
    FaultInfo{Fault::MigrationTrustsPluggedSize, "migration-trusts-plugged-size",
              "migration load takes plugged_size from the stream instead of the bitmap",
              "DEV-3 (after load)"},
    FaultInfo{Fault::StateChainNotReturned, "state-chain-not-returned",
              "a STATE request's chain is popped but neither used nor detached", "GEN-2"},
    FaultInfo{Fault::RollbackClippedToFailingSection, "rollback-clipped-to-failing-section",
              "populate roll-back clips each discard to the refusing listener's section",
              "invariant: listener view = plugged ∩ section"},
    FaultInfo{Fault::RollbackSkipsFirstListener, "rollback-skips-first-listener",
              "populate roll-back forgets the first listener it notified",
              "invariant: listener view = plugged ∩ section"},
    FaultInfo{Fault::UnregisterKeepsMappings, "unregister-keeps-mappings",
              "unregistering a listener does not discard what it had populated",
              "invariant: VFIO mappings = plugged ∩ section"},
    FaultInfo{Fault::PopulateMapsWholeSection, "populate-maps-whole-section",
              "the VFIO listener maps its whole section instead of the populated part",
              "invariant: VFIO mappings = plugged ∩ section"},
    FaultInfo{Fault::MemslotDeactivatedWhilePlugged, "memslot-deactivated-while-plugged",
              "an unplug unmaps every memslot it touches, even one still holding a plugged block",
              "invariant: memslot mapped iff it holds a plugged block"},
    FaultInfo{Fault::UsableRegionNotRounded, "usable-region-not-rounded",
              "the usable region is requested + extent without rounding up to the block size",
              "DEV-6"},
    FaultInfo{Fault::UnplugSkipsDiscard, "unplug-skips-discard",
              "an UNPLUG keeps the block's memory instead of discarding it", "D10 residency"},
};

}  // namespace

std::span<const FaultInfo> fault_catalog() {
  return kCatalog;
}

std::optional<Fault> fault_from_name(std::string_view name) {
  if (name.empty() || name == "none") return Fault::None;
  for (const auto& f : kCatalog) {
    if (f.name == name) return f.fault;
  }
  return std::nullopt;
}

std::string_view fault_name(Fault f) {
  for (const auto& i : kCatalog) {
    if (i.fault == f) return i.name;
  }
  return "none";
}

VMEM_NAMESPACE_END
