// `vmemcheck prove --trace` (proofs/trace_check.h): a scenario recorded from the reference, in
// every profile, is explained step by step by the transition relation; the same scenario recorded
// from each transition mutant of the catalog is not, and the check names the first step it
// cannot explain.
#include "proofs/trace_check.h"

#include <gtest/gtest.h>

#include <string>

#include "reference/mem/fault.h"
#include "reference/trace/trace.h"

namespace vmem::proofs {
namespace {

static_assert(kMutantsBuild, "this test must link the mutants build");

// Every transition, the edges the mutants get wrong, and a `config` after each state change
// (no expectations: recording fills them in). 32 blocks of 2 MiB; the unaligned extent makes the
// usable region 10 blocks.
std::string scenario(const char* profile) {
  return std::string("vmemtrace 1\ndevice profile=") + profile +
         R"( addr=0x100000000 region_size=0x4000000 block_size=0x200000 requested_size=0x1000000 extent=0x300000 backing=null
init
consumers
config
request plug addr=0x100000000 nb=2
config
request plug addr=0x100200000 nb=1
config
request plug addr=0x101200000 nb=2
request plug addr=0x100800000 nb=0
request state addr=0x100000000 nb=4
request unplug addr=0x100600000 nb=1
config
host refuse_populate
request plug addr=0x100800000 nb=1
config
request state addr=0x100800000 nb=1
request unplug addr=0x100000000 nb=1
config
host resize 0x800000
config
host resize 0x8000000
config
host resize 0x1000000
config
host device_reset
init
config
host wakeup
init
config
request plug addr=0x100400000 nb=2
request unplug_all
config
request state addr=0x100000000 nb=10
request plug addr=0x100000000 nb=3
host busy on
request plug addr=0x100600000 nb=1
request unplug_all
host system_reset
init
config
host busy off
host system_reset
init
config
request state addr=0x100000000 nb=3
)";
}

Trace recorded(const char* profile, Fault f) {
  auto t = parse_trace(scenario(profile));
  EXPECT_TRUE(t.has_value()) << t.error().message;
  const ReplayReport r = replay_trace(*t, std::string(fault_name(f)));
  EXPECT_FALSE(r.error.has_value()) << *r.error;
  return r.recorded;
}

TEST(TraceCheckTest, ReferenceRecordingsAreExplainedInEveryProfile) {
  for (const char* p : {"spec", "qemu", "qemu-7.2"}) {
    const TraceCheck c = check_trace(recorded(p, Fault::None));
    EXPECT_TRUE(c.accepted()) << p << ": line "
                              << c.unexplained.value_or(TraceCheck::Unexplained{}).line << " "
                              << c.unexplained.value_or(TraceCheck::Unexplained{}).observed << " / "
                              << c.unexplained.value_or(TraceCheck::Unexplained{}).allowed
                              << c.error.value_or("");
    EXPECT_GE(c.explained, 45) << p;
    EXPECT_FALSE(c.stopped.has_value()) << *c.stopped;
  }
}

// A region that ends 2 MiB below 2^64 (64 GiB of 2 MiB blocks), where a request from the last
// block with nb_blocks 65535 wraps around: the one place range-no-wrap-check shows.
constexpr const char* kTopScenario = R"(vmemtrace 1
device profile=spec addr=0xffffffefffe00000 region_size=0x1000000000 block_size=0x200000 requested_size=0x1000000000 backing=null
init
request plug addr=0xffffffffffa00000 nb=1
request state addr=0xffffffffffc00000 nb=65535
request plug addr=0xffffffffffc00000 nb=65535
config
request state addr=0xffffffffffa00000 nb=2
)";

TEST(TraceCheckTest, RecordingAtTheTopOfTheAddressSpaceCatchesTheMissingWrapCheck) {
  auto t = parse_trace(kTopScenario);
  ASSERT_TRUE(t.has_value()) << t.error().message;
  const ReplayReport clean = replay_trace(*t, "none");
  ASSERT_FALSE(clean.error.has_value()) << *clean.error;
  const TraceCheck ok = check_trace(clean.recorded);
  EXPECT_FALSE(ok.unexplained.has_value())
      << ok.unexplained->op << ": " << ok.unexplained->observed;
  const ReplayReport mutant = replay_trace(*t, "range-no-wrap-check");
  ASSERT_FALSE(mutant.error.has_value()) << *mutant.error;
  const TraceCheck c = check_trace(mutant.recorded);
  ASSERT_TRUE(c.unexplained.has_value()) << "range-no-wrap-check recording was accepted";
  EXPECT_EQ(c.unexplained->line, 5) << c.unexplained->op;
  std::cout << "range-no-wrap-check: line " << c.unexplained->line << " `" << c.unexplained->op
            << "`: observed " << c.unexplained->observed << ", allowed " << c.unexplained->allowed
            << "\n";
}

// The transition mutants (those that change a verdict, a bitmap word or a size; the same list
// as reference/tests/block_state_test.cc, less range-no-wrap-check, which the scenario above
// reaches: it needs a region at the top of the address space).
class TraceCheckMutantTest : public ::testing::TestWithParam<Fault> {};

TEST_P(TraceCheckMutantTest, RecordingFromTheMutantIsRejected) {
  const TraceCheck c = check_trace(recorded("spec", GetParam()));
  ASSERT_FALSE(c.error.has_value()) << *c.error;
  ASSERT_TRUE(c.unexplained.has_value()) << fault_name(GetParam()) << " recording was accepted";
  std::cout << fault_name(GetParam()) << ": line " << c.unexplained->line << " `"
            << c.unexplained->op << "`: observed " << c.unexplained->observed << ", allowed "
            << c.unexplained->allowed << "\n";
}

INSTANTIATE_TEST_SUITE_P(
    Catalog, TraceCheckMutantTest,
    ::testing::Values(Fault::RangeEndOffByOne, Fault::NbBlocksZeroAccepted,
                      Fault::UnplugStateCheckSkipped, Fault::PlugStateCheckSkipped,
                      Fault::UnplugPluggedSizeStale, Fault::PlugSizeNotRolledBack,
                      Fault::PlugBitmapKeptOnRefusal, Fault::UnplugAllUsableBelowRequested,
                      Fault::UsableRegionNotRounded, Fault::ResizeShrinksUsable,
                      Fault::HostResizeBeyondRegion, Fault::DeviceResetUnplugs,
                      Fault::SystemResetKeepsBlocks, Fault::WakeupUnplugs,
                      Fault::UnplugAllKeepsLastBlock),
    [](const auto& p) {
      std::string n(fault_name(p.param));
      for (char& ch : n) {
        if (ch == '-') ch = '_';
      }
      return n;
    });

TEST(TraceCheckTest, StepsOutsideTheRelationEndTheCheck) {
  auto t = parse_trace(
      "vmemtrace 1\ndevice backing=null transport=pci\ninit\nreg pci read 0 4\n"
      "request plug addr=0x100000000 nb=1 -> ack\n");
  ASSERT_TRUE(t.has_value()) << t.error().message;
  const TraceCheck c = check_trace(*t);
  EXPECT_TRUE(c.accepted());
  ASSERT_TRUE(c.stopped.has_value());
  EXPECT_NE(c.stopped->find("line 4"), std::string::npos) << *c.stopped;
}

}  // namespace
}  // namespace vmem::proofs
