// Sensitivity (issue: Z3-checked invariants): each proof fails, with a counterexample, for the
// named mutants of the catalog that change the logic it covers.
#include <gtest/gtest.h>

#include <cctype>
#include <string>

#include "proofs/proof.h"
#include "reference/trace/trace.h"

namespace vmem::proofs {
namespace {

static_assert(kMutantsBuild, "this test must link the mutants build");

ProofResult run(const std::string& name, Fault f) {
  for (const Proof& p : all_proofs()) {
    if (p.name == name) return p.run(ProofOptions{f, 60000});
  }
  ADD_FAILURE() << "no proof " << name;
  return {};
}

struct Case {
  const char* proof;
  Fault fault;
};

void PrintTo(const Case& c, std::ostream* os) {
  *os << c.proof << "/" << fault_name(c.fault);
}

// "fault_proof", with every character gtest does not take in a name as '_'.
std::string case_name(const ::testing::TestParamInfo<Case>& p) {
  std::string n = std::string(fault_name(p.param.fault)) + "_" + p.param.proof;
  for (char& ch : n) {
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  }
  return n;
}

class ProofSensitivityTest : public ::testing::TestWithParam<Case> {};

TEST_P(ProofSensitivityTest, MutantIsCaughtWithACounterexample) {
  const Case& c = GetParam();
  const ProofResult clean = run(c.proof, Fault::None);
  ASSERT_EQ(clean.outcome, Outcome::Proved) << clean.counterexample;
  const ProofResult mutant = run(c.proof, c.fault);
  EXPECT_EQ(mutant.outcome, Outcome::Failed);
  EXPECT_FALSE(mutant.counterexample.empty());
  std::cout << c.proof << " with " << fault_name(c.fault) << ": " << mutant.counterexample << "\n";
}

// The counterexample of a range-check or verdict-table mutant is a trace that replays cleanly
// on the correct logic and fails on the mutant (decisions D7).
TEST(ProofCounterexampleTest, DecisionCounterexamplesReplayAsFailingTraces) {
  for (const Case& c :
       {Case{"range_check_exact", Fault::RangeEndOffByOne},
        Case{"range_check_exact", Fault::RangeNoWrapCheck},
        Case{"range_check_exact", Fault::NbBlocksZeroAccepted},
        Case{"verdict_order[spec]", Fault::NackBeforeRangeCheck},
        Case{"verdict_order[qemu]", Fault::PlugIgnoresBusy},
        Case{"verdict_order[spec]", Fault::OverQuotaAnsweredError},
        Case{"verdict_order[qemu-7.2]", Fault::OverQuotaAnsweredError},
        Case{"verdict_order[spec]", Fault::UnplugAllBusyWhenEmpty},
        Case{"usable_region_bounds", Fault::UsableRegionNotRounded},
        Case{"usable_region_bounds", Fault::UnplugAllUsableBelowRequested},
        Case{"clip_exact", Fault::ClipEndNotCapped},
        Case{"mapping_budget_exact", Fault::MappingBudgetOffByOne},
        Case{"memslot_indices", Fault::MemslotEndRoundedDown},
        Case{"memslot_geometry", Fault::MemslotSizeNotBlockAligned},
        Case{"mapping_budget_exact", Fault::MappingBudgetIgnoresMemslots},
        Case{"listeners_within_entry_limit", Fault::MappingBudgetIgnoresMemslots},
        Case{"memslot_indices", Fault::MemslotEndRoundedDown},
        Case{"memslot_geometry", Fault::MemslotSizeNotBlockAligned},
        Case{"mapping_budget_exact", Fault::MappingBudgetIgnoresMemslots},
        Case{"listeners_within_entry_limit", Fault::MappingBudgetIgnoresMemslots}}) {
    const ProofResult r = run(c.proof, c.fault);
    ASSERT_EQ(r.outcome, Outcome::Failed);
    ASSERT_FALSE(r.trace.empty()) << fault_name(c.fault);
    auto trace = parse_trace(r.trace);
    ASSERT_TRUE(trace.has_value()) << trace.error().message << "\n" << r.trace;
    const ReplayReport clean = replay_trace(*trace, "none");
    EXPECT_TRUE(clean.ok()) << r.trace
                            << (clean.error      ? *clean.error
                                : clean.mismatch ? clean.mismatch->observed
                                                 : "");
    const ReplayReport mutant = replay_trace(*trace, std::string(fault_name(c.fault)));
    EXPECT_TRUE(mutant.mismatch.has_value()) << fault_name(c.fault) << " replays cleanly:\n"
                                             << r.trace;
    std::cout << r.trace;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Catalog, ProofSensitivityTest,
    ::testing::Values(Case{"range_check_exact", Fault::RangeEndOffByOne},
                      Case{"range_check_exact", Fault::RangeNoWrapCheck},
                      Case{"verdict_order[spec]", Fault::NackBeforeRangeCheck},
                      Case{"verdict_order[qemu]", Fault::NackBeforeRangeCheck},
                      Case{"usable_region_bounds", Fault::UsableRegionNotRounded},
                      Case{"usable_region_bounds", Fault::UnplugAllUsableBelowRequested},
                      Case{"range_check_exact", Fault::NbBlocksZeroAccepted},
                      Case{"verdict_order[spec]", Fault::PlugIgnoresBusy},
                      Case{"verdict_order[qemu]", Fault::PlugIgnoresBusy},
                      Case{"clip_exact", Fault::ClipEndNotCapped},
                      Case{"lemma_clip_blocks", Fault::ClipEndNotCapped},
                      Case{"mapping_budget_exact", Fault::MappingBudgetOffByOne},
                      // The lemma the transition proofs take a request's blocks from.
                      Case{"lemma_valid_range_in_blocks", Fault::RangeEndOffByOne},
                      Case{"lemma_valid_range_in_blocks", Fault::RangeNoWrapCheck},
                      Case{"lemma_valid_range_in_blocks", Fault::NbBlocksZeroAccepted},
                      // Profile differences: the proof pins the D1 table the spec and qemu
                      // profiles chose, where the spec leaves the answer open.
                      Case{"verdict_order[spec]", Fault::OverQuotaAnsweredError},
                      Case{"verdict_order[qemu]", Fault::OverQuotaAnsweredError},
                      Case{"verdict_order[spec]", Fault::UnplugAllBusyWhenEmpty},
                      Case{"verdict_order[qemu]", Fault::UnplugAllBusyWhenEmpty}),
    case_name);

// The inductive invariants (proofs/block_invariants.cc) against the catalog's transition
// mutants: each breaks the proof of its transition, and the counterexample is a trace that
// replays cleanly on the reference and fails on the mutant (decisions D7).
class TransitionSensitivityTest : public ::testing::TestWithParam<Case> {};

TEST_P(TransitionSensitivityTest, CounterexampleReplaysAsAFailingTrace) {
  const Case& c = GetParam();
  const ProofResult clean = run(c.proof, Fault::None);
  ASSERT_EQ(clean.outcome, Outcome::Proved) << clean.counterexample;
  const ProofResult mutant = run(c.proof, c.fault);
  ASSERT_EQ(mutant.outcome, Outcome::Failed) << mutant.counterexample;
  ASSERT_FALSE(mutant.trace.empty()) << mutant.counterexample;
  auto trace = parse_trace(mutant.trace);
  ASSERT_TRUE(trace.has_value()) << trace.error().message << "\n" << mutant.trace;
  const ReplayReport on_reference = replay_trace(*trace, "none");
  EXPECT_TRUE(on_reference.ok()) << mutant.trace
                                 << (on_reference.error      ? *on_reference.error
                                     : on_reference.mismatch ? on_reference.mismatch->observed
                                                             : "");
  const ReplayReport on_mutant = replay_trace(*trace, std::string(fault_name(c.fault)));
  EXPECT_TRUE(on_mutant.mismatch.has_value()) << "replays cleanly on the mutant:\n" << mutant.trace;
  std::cout << mutant.trace;
}

INSTANTIATE_TEST_SUITE_P(
    Catalog, TransitionSensitivityTest,
    ::testing::Values(
        Case{"invariants_kept[plug, spec]", Fault::PlugBitmapKeptOnRefusal},
        Case{"invariants_kept[plug, spec]", Fault::PlugSizeNotRolledBack},
        Case{"invariants_kept[plug, qemu]", Fault::PlugStateCheckSkipped},
        Case{"invariants_kept[unplug, spec]", Fault::UnplugPluggedSizeStale},
        Case{"invariants_kept[unplug, qemu-7.2]", Fault::UnplugStateCheckSkipped},
        Case{"invariants_kept[unplug_all, spec]", Fault::UnplugAllUsableBelowRequested},
        Case{"invariants_kept[host_resize, spec]", Fault::ResizeShrinksUsable},
        Case{"invariants_kept[host_resize, qemu]", Fault::HostResizeBeyondRegion},
        Case{"invariants_kept[device_reset, spec]", Fault::DeviceResetUnplugs},
        Case{"invariants_kept[system_reset, qemu-7.2]", Fault::SystemResetKeepsBlocks},
        Case{"invariants_kept[wakeup, spec]", Fault::WakeupUnplugs}),
    case_name);

// The listener and memslot invariants (proofs/listener_invariants.cc) against the catalog's
// consumer mutants, the same way.
INSTANTIATE_TEST_SUITE_P(
    Consumers, TransitionSensitivityTest,
    ::testing::Values(
        Case{"listeners_kept[populate, recording]", Fault::RollbackClippedToFailingSection},
        Case{"listeners_kept[populate, recording]", Fault::RollbackSkipsFirstListener},
        Case{"listeners_kept[populate, recording]", Fault::ClipEndNotCapped},
        Case{"listeners_kept[discard, vfio]", Fault::ClipEndNotCapped},
        Case{"listeners_kept[populate, vfio]", Fault::PopulateMapsOneRange},
        Case{"listeners_kept[populate, vfio]", Fault::PopulateMapsWholeSection},
        Case{"listeners_kept[unregister, vfio]", Fault::UnregisterKeepsMappings},
        Case{"memslots_kept[plug]", Fault::MemslotEndRoundedDown},
        Case{"memslots_kept[plug]", Fault::MemslotDeactivatedWhilePlugged},
        Case{"memslots_kept[unplug]", Fault::MemslotDeactivatedWhilePlugged}),
    case_name);

}  // namespace
}  // namespace vmem::proofs
