#include "reference/mem/fault.h"

#include <algorithm>
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
    FaultInfo{Fault::PlugStateCheckSkipped, "plug-state-check-skipped",
              "PLUG does not check that every covered block is unplugged: re-plugging is ACKed",
              "DEV-27, DEV-3"},
    FaultInfo{Fault::PlugSizeNotRolledBack, "plug-size-not-rolled-back",
              "plugged_size grows before the populate and is not taken back when a listener "
              "refuses it",
              "invariant I1 (DEV-3)"},
    FaultInfo{Fault::PlugBitmapKeptOnRefusal, "plug-bitmap-kept-on-refusal",
              "a PLUG whose populate a listener refused leaves the blocks marked plugged "
              "(cloud-hypervisor sets its bitmap before mapping, peers H-CH2)",
              "DEV-48 (the refused range reads PLUGGED); invariants I1, I5"},
    FaultInfo{Fault::PlugIgnoresBusy, "plug-ignores-busy",
              "PLUG is ACKed during a migration, so the bitmap changes after it was sent",
              "proof verdict_order; migration contract (bitmap immutable while busy)"},
    FaultInfo{Fault::PlugNotifiesConfig, "plug-notifies-config",
              "an ACKed PLUG raises a configuration change notification for plugged_size alone",
              "DEV-10"},
    FaultInfo{Fault::PlugGenerationUnchanged, "plug-generation-unchanged",
              "an ACKed PLUG changes plugged_size without changing config_generation (QEMU 7.2, "
              "measured)",
              "GEN-5"},
    FaultInfo{Fault::NbBlocksZeroAccepted, "nb-blocks-zero-accepted",
              "range check accepts nb_blocks == 0 (an empty range passes every bound)",
              "DEV-26, DEV-33, DEV-46"},
    FaultInfo{Fault::StateRangeCheckIgnored, "state-range-check-ignored",
              "STATE answers ACK with a state even for an invalid range (cloud-hypervisor before "
              "1dd588fa6)",
              "DEV-46"},
    FaultInfo{Fault::StatePluggedForMixed, "state-plugged-for-mixed",
              "STATE answers PLUGGED for a range with any plugged block instead of MIXED",
              "DEV-48"},
    FaultInfo{Fault::StateNotifiesDiscard, "state-notifies-discard",
              "a STATE request runs the unplug notification: listeners discard plugged blocks",
              "invariants I5, I6"},
    FaultInfo{Fault::UnplugAllKeepsLastBlock, "unplug-all-keeps-last-block",
              "UNPLUG_ALL clears the bitmap one block short and leaves the last plugged block "
              "(cloud-hypervisor shipped a partial clear, dfee31a84)",
              "DEV-41, DEV-48, DEV-22"},
    FaultInfo{Fault::ResizeShrinksUsable, "resize-shrinks-usable",
              "a host resize down shrinks usable_region_size outside UNPLUG_ALL and system reset",
              "DEV-8, DEV-36 (plugged blocks end up outside: I2)"},
    FaultInfo{Fault::HostResizeBeyondRegion, "host-resize-beyond-region",
              "the host may set requested_size above region_size; usable_region_size then lags "
              "behind it",
              "invariant I3 (DEV-4)"},
    FaultInfo{Fault::WakeupUnplugs, "wakeup-unplugs",
              "S3 wake-up unplugs every block although PERSISTENT_SUSPEND was offered (QEMU before "
              "10.0 unplugged on wake-up)",
              "DEV-23"},
    FaultInfo{Fault::UsedLenWholeChain, "used-len-whole-chain",
              "the used length is the whole chain (readable + writable bytes), not the 10 written",
              "GEN-8"},
    FaultInfo{Fault::MigrationKeepsUsableRegion, "migration-keeps-usable-region",
              "migration load restores the bitmap and requested_size but keeps the target's "
              "usable_region_size (QEMU's early-migration window)",
              "invariants I2, I3 (DEV-4 after load)"},
    FaultInfo{Fault::PopulateMapsOneRange, "populate-maps-one-range",
              "the VFIO listener maps a populated run as one DMA mapping, which a later "
              "single-block unmap would have to split (type1 refuses)",
              "invariant I6"},
    FaultInfo{Fault::MemslotEndRoundedDown, "memslot-end-rounded-down",
              "the last memslot a plug touches is computed by rounding down: it is never mapped",
              "invariant I7"},
    FaultInfo{Fault::ClipEndNotCapped, "clip-end-not-capped",
              "section clipping takes the later start but keeps the first range's end (a max "
              "without its min): a listener hears of blocks past the request or its section",
              "invariants I5, I6"},
    FaultInfo{Fault::MappingBudgetOffByOne, "mapping-budget-off-by-one",
              "the VFIO mapping budget refuses an estimate equal to the container's limit ('>=' "
              "for '>'): a section that fits exactly is refused",
              "the VFIO mapping budget (QEMU a74317f636)"},
    FaultInfo{Fault::MappingBudgetIgnoresMemslots, "mapping-budget-ignores-memslots",
              "the VFIO mapping budget leaves out the memslots that may still appear as mappings "
              "of their own: a section is admitted whose mappings can exceed the limit",
              "the VFIO mapping budget; mappings within the container's limit"},
    FaultInfo{Fault::MemslotSizeNotBlockAligned, "memslot-size-not-block-aligned",
              "the dynamic-memslot size is region_size / limit, not rounded up to the block size: "
              "a block straddles two memslots",
              "invariants I4, I7"},
    FaultInfo{Fault::UnknownTypeAnsweredError, "unknown-type-answered-error",
              "an unknown request type is answered with ERROR instead of DEVICE_NEEDS_RESET "
              "(cloud-hypervisor, 97e16f249)",
              "GEN-10", FaultKind::ProfileDifference,
              "GEN-10: the spec defines types 0-3 only; ERROR and NEEDS_RESET are both allowed"},
    FaultInfo{Fault::UnplugAllBusyWhenEmpty, "unplug-all-busy-when-empty",
              "UNPLUG_ALL answers BUSY in a busy window even with nothing plugged (QEMU 7.2)",
              "DEV-40", FaultKind::ProfileDifference,
              "DEV-40: BUSY is always allowed for UNPLUG_ALL; the qemu-7.2 profile does this"},
    FaultInfo{Fault::OverQuotaAnsweredError, "over-quota-answered-error",
              "a valid PLUG beyond requested_size gets ERROR instead of NACK (Firecracker, peers "
              "H-FC1)",
              "GEN-9", FaultKind::ProfileDifference,
              "GEN-9: no normative statement ties a response code to the plug limit"},
    FaultInfo{Fault::UnplugAllDiscardsWholeRegion, "unplug-all-discards-whole-region",
              "UNPLUG_ALL discards the whole region instead of the plugged span",
              "none (equivalent)", FaultKind::Equivalent,
              "blocks outside the plugged span are unplugged, so already discarded (I8; a read "
              "maps only the zero page, D10): the extra discard frees nothing, and what unplugged "
              "blocks hold is the device's business (DEV-17)"},
};

}  // namespace

std::string_view to_string(FaultKind k) {
  switch (k) {
    case FaultKind::Bug:
      return "bug";
    case FaultKind::ProfileDifference:
      return "profile-difference";
    case FaultKind::Equivalent:
      return "equivalent";
  }
  return "?";
}

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

std::vector<std::string> expected_requirements(const FaultInfo& f) {
  // A scan, not std::regex: g++'s ASan build warns inside it.
  std::vector<std::string> out;
  const std::string_view text = f.expected_by;
  for (std::size_t i = 0; i + 4 < text.size(); ++i) {
    const std::string_view head = text.substr(i, 4);
    if (head != "DEV-" && head != "GEN-") continue;
    std::size_t j = i + 4;
    while (j < text.size() && text[j] >= '0' && text[j] <= '9')
      ++j;
    if (j == i + 4) continue;
    std::string id(text.substr(i, j - i));
    if (std::find(out.begin(), out.end(), id) == out.end()) out.push_back(std::move(id));
  }
  return out;
}

std::string_view fault_name(Fault f) {
  for (const auto& i : kCatalog) {
    if (i.fault == f) return i.name;
  }
  return "none";
}

VMEM_NAMESPACE_END
