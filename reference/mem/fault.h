// Named faults for the mutants build (decisions D6).
//
// A fault is a small, deliberate change of behaviour that mirrors a real bug class. It is chosen
// by name through DeviceOptions::fault and exists only in vmem_reference_mutants: in the normal
// build every `faulty(...)` test is the constant false and the faulty paths compile away.
// Each entry names the requirement or invariant that the catalog expects to catch it, and says
// what kind of change it is: a bug, a difference the spec leaves open (a profile difference), or
// a change shown to behave identically (an equivalent mutant). docs/mutants.md lists them all.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "reference/base/abi.h"

VMEM_NAMESPACE_BEGIN

enum class Fault : uint8_t {
  None,
  RangeEndOffByOne,
  RangeNoWrapCheck,
  NackBeforeRangeCheck,
  UnplugStateCheckSkipped,
  UnplugPluggedSizeStale,
  UnplugAllUsableBelowRequested,
  DeviceResetUnplugs,
  SystemResetKeepsBlocks,
  ResizeWithoutNotification,
  MigrationTrustsPluggedSize,
  StateChainNotReturned,
  RollbackClippedToFailingSection,
  RollbackSkipsFirstListener,
  UnregisterKeepsMappings,
  PopulateMapsWholeSection,
  MemslotDeactivatedWhilePlugged,
  UsableRegionNotRounded,
  UnplugSkipsDiscard,
  PlugStateCheckSkipped,
  PlugSizeNotRolledBack,
  PlugBitmapKeptOnRefusal,
  PlugIgnoresBusy,
  PlugNotifiesConfig,
  PlugGenerationUnchanged,
  NbBlocksZeroAccepted,
  StateRangeCheckIgnored,
  StatePluggedForMixed,
  StateNotifiesDiscard,
  UnplugAllKeepsLastBlock,
  ResizeShrinksUsable,
  HostResizeBeyondRegion,
  WakeupUnplugs,
  UsedLenWholeChain,
  MigrationKeepsUsableRegion,
  PopulateMapsOneRange,
  MemslotEndRoundedDown,
  ClipEndNotCapped,
  MappingBudgetOffByOne,
  MappingBudgetIgnoresMemslots,
  MemslotSizeNotBlockAligned,
  UnknownTypeAnsweredError,
  UnplugAllBusyWhenEmpty,
  OverQuotaAnsweredError,
  UnplugAllDiscardsWholeRegion,
};

// What a fault changes.
enum class FaultKind : uint8_t {
  Bug,                // breaks a requirement or an invariant
  ProfileDifference,  // changes only what the spec leaves open (another VMM, or qemu-7.2, does it)
  Equivalent,         // shown to behave identically to the fault-free device
};
std::string_view to_string(FaultKind k);

struct FaultInfo {
  Fault fault;
  std::string_view name;         // what DeviceOptions::fault and the CLI take
  std::string_view bug_class;    // one line: what real bug this mirrors
  std::string_view expected_by;  // the requirement or invariant expected to catch it; for a
                                 // profile difference, the requirement whose verdict shows it
  FaultKind kind = FaultKind::Bug;
  std::string_view reason = {};  // why a profile difference or an equivalent mutant is one
};

// Every fault but None, in declaration order.
std::span<const FaultInfo> fault_catalog();
std::optional<Fault> fault_from_name(std::string_view name);
std::string_view fault_name(Fault f);
// The spec requirements (DEV-n, GEN-n) named in a fault's expected_by, in order, once each: a
// conformance run kills the fault by FAILing (or WARNing) one of them (decisions D6).
std::vector<std::string> expected_requirements(const FaultInfo& f);

// True when `f` is the active fault. Constant false in the normal build.
constexpr bool faulty(Fault active, Fault f) {
  return kMutantsBuild && active == f;
}

VMEM_NAMESPACE_END
