// The mutant mechanism (decisions D6): this binary links vmem_reference_mutants. Each named
// fault must change what a driver or the host can observe; the same scenario on the fault-free
// configuration of the same library behaves as the spec requires.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <array>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "reference/check/invariants.h"
#include "reference/discard/discard_manager.h"
#include "reference/discard/recording_listener.h"
#include "reference/kvm/memslot_map.h"
#include "reference/tests/consumer_rig.h"
#include "reference/trace/trace.h"
#include "reference/vfio/vfio_listener.h"

namespace vmem::testing {
namespace {

static_assert(kMutantsBuild, "this test must link vmem_reference_mutants");

Testbed with_fault(Fault f, DeviceOptions o = small_options()) {
  o.fault = std::string(fault_name(f));
  return make_testbed(o);
}

TEST(MutantsTest, CatalogNamesRoundTrip) {
  ASSERT_GE(fault_catalog().size(), 32u);
  std::set<std::string_view> names;
  std::map<FaultKind, int> kinds;
  for (std::size_t i = 0; i < fault_catalog().size(); ++i) {
    const FaultInfo& f = fault_catalog()[i];
    // In declaration order, every enumerator but None listed once.
    EXPECT_EQ(static_cast<std::size_t>(f.fault), i + 1) << f.name;
    EXPECT_EQ(fault_from_name(f.name), f.fault);
    EXPECT_EQ(fault_name(f.fault), f.name);
    EXPECT_TRUE(names.insert(f.name).second) << "duplicate name " << f.name;
    // kebab-case: lower-case words joined by single dashes.
    EXPECT_FALSE(f.name.empty() || f.name.front() == '-' || f.name.back() == '-') << f.name;
    for (std::size_t j = 0; j < f.name.size(); ++j) {
      const char c = f.name[j];
      EXPECT_TRUE((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  (c == '-' && f.name[j - 1] != '-'))
          << f.name;
    }
    EXPECT_FALSE(f.bug_class.empty());
    EXPECT_FALSE(f.expected_by.empty());
    // A bug needs no excuse; a profile difference or an equivalent mutant says why it is one.
    EXPECT_EQ(f.reason.empty(), f.kind == FaultKind::Bug) << f.name;
    ++kinds[f.kind];
  }
  EXPECT_GE(kinds[FaultKind::ProfileDifference], 1);
  EXPECT_GE(kinds[FaultKind::Equivalent], 1);
  EXPECT_EQ(to_string(FaultKind::ProfileDifference), "profile-difference");
  EXPECT_EQ(fault_from_name("no-such-fault"), std::nullopt);
  DeviceOptions o = small_options();
  o.fault = "no-such-fault";
  EXPECT_FALSE(validate(o).has_value());
}

TEST(MutantsTest, RangeEndOffByOneAcceptsABlockPastTheUsableEnd) {
  for (Fault f : {Fault::None, Fault::RangeEndOffByOne}) {
    Testbed t = with_fault(f);
    const uint64_t usable_end = t.cfg().addr + t.cfg().usable_region_size;
    EXPECT_EQ(t.state(usable_end - 2 * kMiB, 2).type,
              f == Fault::None ? RespType::Error : RespType::Ack);
  }
}

TEST(MutantsTest, RangeNoWrapCheckAcceptsAWrappingRange) {
  DeviceOptions o = small_options();
  o.region_size = 64 * kGiB;
  o.addr = 0 - o.region_size - 2 * kMiB;  // the region ends 2 MiB below 2^64
  o.requested_size = o.region_size;
  for (Fault f : {Fault::None, Fault::RangeNoWrapCheck}) {
    o.fault = std::string(fault_name(f));
    auto m = Machine::create(o, BackingKind::Null);
    ASSERT_TRUE(m.has_value()) << m.error().message;
    const uint64_t last = o.addr + o.region_size - 2 * kMiB;
    const Response r = (*m)->device->process({VIRTIO_MEM_REQ_STATE, {}, last, 65535, {}});
    EXPECT_EQ(r.type, f == Fault::None ? RespType::Error : RespType::Ack);
  }
}

TEST(MutantsTest, NackBeforeRangeCheckNacksAMisalignedPlug) {
  for (Fault f : {Fault::None, Fault::NackBeforeRangeCheck}) {
    Testbed t = with_fault(f);
    EXPECT_EQ(t.plug(t.block(0) + 4096, 100), f == Fault::None ? RespType::Error : RespType::Nack);
  }
}

TEST(MutantsTest, UnplugStateCheckSkippedAcksAnUnpluggedRange) {
  for (Fault f : {Fault::None, Fault::UnplugStateCheckSkipped}) {
    Testbed t = with_fault(f);
    ASSERT_EQ(t.plug(t.block(0), 1), RespType::Ack);
    EXPECT_EQ(t.unplug(t.block(0), 2), f == Fault::None ? RespType::Error : RespType::Ack);
  }
}

TEST(MutantsTest, UnplugPluggedSizeStaleBreaksDev3) {
  for (Fault f : {Fault::None, Fault::UnplugPluggedSizeStale}) {
    Testbed t = with_fault(f);
    ASSERT_EQ(t.plug(t.block(0), 2), RespType::Ack);
    ASSERT_EQ(t.unplug(t.block(0), 1), RespType::Ack);
    EXPECT_EQ(t.cfg().plugged_size == t.dev().bitmap().count() * 2 * kMiB, f == Fault::None);
  }
}

TEST(MutantsTest, UnplugAllUsableBelowRequestedBreaksDev4) {
  for (Fault f : {Fault::None, Fault::UnplugAllUsableBelowRequested}) {
    Testbed t = with_fault(f);
    ASSERT_EQ(t.unplug_all(), RespType::Ack);
    EXPECT_EQ(t.cfg().usable_region_size >= t.cfg().requested_size, f == Fault::None);
  }
}

TEST(MutantsTest, DeviceResetUnplugsBreaksDev13) {
  for (Fault f : {Fault::None, Fault::DeviceResetUnplugs}) {
    Testbed t = with_fault(f);
    ASSERT_EQ(t.plug(t.block(0), 2), RespType::Ack);
    t.dev().write_status(0);
    EXPECT_EQ(t.cfg().plugged_size, f == Fault::None ? 4 * kMiB : 0u);
  }
}

TEST(MutantsTest, SystemResetKeepsBlocksBreaksDev22) {
  for (Fault f : {Fault::None, Fault::SystemResetKeepsBlocks}) {
    Testbed t = with_fault(f);
    ASSERT_EQ(t.plug(t.block(0), 2), RespType::Ack);
    t.dev().system_reset();
    EXPECT_EQ(t.cfg().plugged_size, f == Fault::None ? 0u : 4 * kMiB);
  }
}

TEST(MutantsTest, ResizeWithoutNotificationBreaksDev9) {
  for (Fault f : {Fault::None, Fault::ResizeWithoutNotification}) {
    Testbed t = with_fault(f);
    (void)t.dev().read_and_clear_isr();
    ASSERT_TRUE(t.dev().set_requested_size(256 * kMiB).has_value());
    EXPECT_EQ((t.dev().isr() & VIRTIO_ISR_CONFIG) != 0, f == Fault::None);
  }
}

TEST(MutantsTest, MigrationTrustsPluggedSizeLoadsALie) {
  for (Fault f : {Fault::None, Fault::MigrationTrustsPluggedSize}) {
    Testbed src = with_fault(f);
    ASSERT_EQ(src.plug(src.block(0), 2), RespType::Ack);
    auto stream = src.dev().save();
    store_le<uint64_t>(stream.data() + 8 + 4 + 8 * 3 + 2 + 1 + 8 + 8 + 16,
                       8 * kMiB);  // plugged_size
    Testbed dst = with_fault(f);
    std::vector<uint8_t> ram(2 * kMiB);  // the queue's rings, as migrated with guest RAM
    ASSERT_TRUE(src.machine->mem.read(0, ram).has_value());
    ASSERT_TRUE(dst.machine->mem.write(0, ram).has_value());
    auto loaded = dst.dev().load(stream);
    EXPECT_EQ(loaded.has_value(), f != Fault::None)
        << (loaded.has_value() ? "" : loaded.error().message);
  }
}

TEST(MutantsTest, PlugStateCheckSkippedAcksAReplug) {
  for (Fault f : {Fault::None, Fault::PlugStateCheckSkipped}) {
    Testbed t = with_fault(f);
    ASSERT_EQ(t.plug(t.block(0), 1), RespType::Ack);
    EXPECT_EQ(t.plug(t.block(0), 2), f == Fault::None ? RespType::Error : RespType::Ack);
    // DEV-3: the re-plugged block is counted twice.
    EXPECT_EQ(t.cfg().plugged_size, f == Fault::None ? 2 * kMiB : 6 * kMiB);
  }
}

TEST(MutantsTest, PlugIgnoresBusyChangesTheBitmapAfterItWasMigrated) {
  for (Fault f : {Fault::None, Fault::PlugIgnoresBusy}) {
    Testbed src = with_fault(f);
    src.dev().set_busy(true);  // a migration has started: the bitmap is on its way
    const auto stream = src.dev().save();
    std::vector<uint8_t> ram(2 * kMiB);  // the queue's rings, as migrated with guest RAM
    ASSERT_TRUE(src.machine->mem.read(0, ram).has_value());
    EXPECT_EQ(src.plug(src.block(0), 2), f == Fault::None ? RespType::Busy : RespType::Ack);
    Testbed dst = with_fault(f);
    ASSERT_TRUE(dst.machine->mem.write(0, ram).has_value());
    ASSERT_TRUE(dst.dev().load(stream).has_value());
    // The guest was told its blocks are plugged, but the destination never heard of them.
    EXPECT_EQ(dst.dev().bitmap() == src.dev().bitmap(), f == Fault::None);
  }
}

TEST(MutantsTest, PlugNotifiesConfigBreaksDev10) {
  for (Fault f : {Fault::None, Fault::PlugNotifiesConfig}) {
    Testbed t = with_fault(f);
    (void)t.dev().read_and_clear_isr();
    ASSERT_EQ(t.plug(t.block(0), 1), RespType::Ack);
    EXPECT_EQ((t.dev().isr() & VIRTIO_ISR_CONFIG) != 0, f != Fault::None);
  }
}

TEST(MutantsTest, PlugGenerationUnchangedBreaksGen5) {
  for (Fault f : {Fault::None, Fault::PlugGenerationUnchanged}) {
    Testbed t = with_fault(f);
    const uint32_t g0 = t.dev().config_generation();
    ASSERT_EQ(t.plug(t.block(0), 1), RespType::Ack);
    EXPECT_EQ(t.cfg().plugged_size, 2 * kMiB);
    EXPECT_EQ(t.dev().config_generation() != g0, f == Fault::None);
  }
}

TEST(MutantsTest, NbBlocksZeroAcceptedAcksEmptyRanges) {
  for (Fault f : {Fault::None, Fault::NbBlocksZeroAccepted}) {
    Testbed t = with_fault(f);
    const RespType want = f == Fault::None ? RespType::Error : RespType::Ack;
    EXPECT_EQ(t.plug(t.block(0), 0), want);
    EXPECT_EQ(t.unplug(t.block(0), 0), want);
    EXPECT_EQ(t.state(t.block(0), 0).type, want);
    EXPECT_EQ(t.cfg().plugged_size, 0u);
  }
}

TEST(MutantsTest, StateRangeCheckIgnoredAnswersInvalidRanges) {
  for (Fault f : {Fault::None, Fault::StateRangeCheckIgnored}) {
    Testbed t = with_fault(f);
    const uint64_t usable_end = t.cfg().addr + t.cfg().usable_region_size;
    const RespType want = f == Fault::None ? RespType::Error : RespType::Ack;
    EXPECT_EQ(t.state(t.block(0) + 4096, 1).type, want);
    EXPECT_EQ(t.state(t.block(0) - 2 * kMiB, 1).type, want);
    EXPECT_EQ(t.state(usable_end, 1).type, want);
    EXPECT_EQ(t.state(t.block(0), 0).type, want);
  }
}

TEST(MutantsTest, StatePluggedForMixedBreaksDev48) {
  for (Fault f : {Fault::None, Fault::StatePluggedForMixed}) {
    Testbed t = with_fault(f);
    ASSERT_EQ(t.plug(t.block(1), 1), RespType::Ack);
    EXPECT_EQ(t.state(t.block(0), 3).state,
              f == Fault::None ? BlockState::Mixed : BlockState::Plugged);
    EXPECT_EQ(t.state(t.block(1), 1).state, BlockState::Plugged);
    EXPECT_EQ(t.state(t.block(2), 1).state, BlockState::Unplugged);
  }
}

TEST(MutantsTest, UnplugAllKeepsLastBlockBreaksDev41AndDev22) {
  for (Fault f : {Fault::None, Fault::UnplugAllKeepsLastBlock}) {
    Testbed t = with_fault(f);
    ASSERT_EQ(t.plug(t.block(0), 2), RespType::Ack);
    ASSERT_EQ(t.plug(t.block(5), 1), RespType::Ack);
    ASSERT_EQ(t.unplug_all(), RespType::Ack);
    EXPECT_EQ(t.cfg().plugged_size, 0u);
    EXPECT_EQ(t.state(t.block(0), 2).state, BlockState::Unplugged);
    EXPECT_EQ(t.state(t.block(5), 1).state,
              f == Fault::None ? BlockState::Unplugged : BlockState::Plugged);
    // The same clear runs at a system reset.
    Testbed r = with_fault(f);
    ASSERT_EQ(r.plug(r.block(3), 1), RespType::Ack);
    r.dev().system_reset();
    EXPECT_EQ(r.dev().bitmap().count(), f == Fault::None ? 0u : 1u);
  }
}

TEST(MutantsTest, ResizeShrinksUsableBreaksDev8) {
  for (Fault f : {Fault::None, Fault::ResizeShrinksUsable}) {
    Testbed t = with_fault(f);
    const uint64_t before = t.cfg().usable_region_size;
    ASSERT_TRUE(t.dev().set_requested_size(2 * kMiB).has_value());
    EXPECT_EQ(t.cfg().usable_region_size >= before, f == Fault::None);
    EXPECT_GE(t.cfg().usable_region_size, t.cfg().requested_size);
  }
}

TEST(MutantsTest, HostResizeBeyondRegionBreaksDev4) {
  for (Fault f : {Fault::None, Fault::HostResizeBeyondRegion}) {
    Testbed t = with_fault(f);
    const uint64_t too_big = t.cfg().region_size + 2 * kMiB;
    EXPECT_EQ(t.dev().set_requested_size(too_big).has_value(), f != Fault::None);
    EXPECT_EQ(t.cfg().usable_region_size >= t.cfg().requested_size, f == Fault::None);
    InvariantChecker checker(t.dev());
    std::set<std::string> caught;
    for (const Violation& v : checker.check_full())
      caught.insert(v.invariant.substr(0, 2));
    EXPECT_EQ(caught.count("I3"), f == Fault::None ? 0u : 1u);
  }
}

TEST(MutantsTest, WakeupUnplugsBreaksDev23) {
  for (Fault f : {Fault::None, Fault::WakeupUnplugs}) {
    Testbed t = with_fault(f);
    ASSERT_TRUE(t.dev().driver_features() & feature_bit(VIRTIO_MEM_F_PERSISTENT_SUSPEND));
    ASSERT_EQ(t.plug(t.block(0), 2), RespType::Ack);
    t.dev().wakeup_reset();
    ASSERT_EQ(t.drv().initialize(), 0x0f);
    EXPECT_EQ(t.state(t.block(0), 2).state,
              f == Fault::None ? BlockState::Plugged : BlockState::Unplugged);
  }
}

TEST(MutantsTest, UsedLenWholeChainBreaksGen8) {
  for (Fault f : {Fault::None, Fault::UsedLenWholeChain}) {
    Testbed t = with_fault(f);
    WireRequest r;
    r.type = VIRTIO_MEM_REQ_STATE;
    r.addr = t.block(0);
    r.nb_blocks = 1;
    auto x = t.drv().send(r, {{24}, {10}, false});
    ASSERT_TRUE(x.has_value()) << x.error().message;
    // 10 bytes were written; the mutant claims the 24 it read as well.
    EXPECT_EQ(x->used_len, f == Fault::None ? 10u : 34u);
  }
}

TEST(MutantsTest, MigrationKeepsUsableRegionLeavesPluggedBlocksOutside) {
  for (Fault f : {Fault::None, Fault::MigrationKeepsUsableRegion}) {
    Testbed src = with_fault(f);
    ASSERT_TRUE(src.dev().set_requested_size(512 * kMiB).has_value());  // usable 384 -> 768 MiB
    ASSERT_EQ(src.plug(src.block(300), 1), RespType::Ack);              // at 600 MiB
    const auto stream = src.dev().save();
    std::vector<uint8_t> ram(2 * kMiB);
    ASSERT_TRUE(src.machine->mem.read(0, ram).has_value());
    Testbed dst = with_fault(f);  // its own usable region is 384 MiB
    ASSERT_TRUE(dst.machine->mem.write(0, ram).has_value());
    ASSERT_TRUE(dst.dev().load(stream).has_value());
    EXPECT_EQ(dst.cfg().usable_region_size == src.cfg().usable_region_size, f == Fault::None);
    // The guest's plugged block is now outside the usable region: STATE refuses it.
    const Response st = dst.dev().process({VIRTIO_MEM_REQ_STATE, {}, dst.block(300), 1, {}});
    EXPECT_EQ(st.type, f == Fault::None ? RespType::Ack : RespType::Error);
    InvariantChecker checker(dst.dev());
    std::set<std::string> caught;
    for (const Violation& v : checker.check_full())
      caught.insert(v.invariant.substr(0, 2));
    const std::set<std::string> want =
        f == Fault::None ? std::set<std::string>{} : std::set<std::string>{"I2", "I3"};
    EXPECT_EQ(caught, want);
  }
}

// --- Profile differences: the spec leaves the behaviour open, so the spec profile's choice and
// the mutant's are both conforming; each test shows the difference a driver sees.

TEST(MutantsTest, UnknownTypeAnsweredErrorReturnsTheChain) {
  for (Fault f : {Fault::None, Fault::UnknownTypeAnsweredError}) {
    Testbed t = with_fault(f);
    auto r = t.drv().request(4, t.block(0), 1);
    ASSERT_EQ(r.has_value(), f != Fault::None);
    if (r.has_value()) {
      EXPECT_EQ(r->type, RespType::Error);
    }
    EXPECT_EQ(t.dev().broken(), f == Fault::None);
  }
}

TEST(MutantsTest, UnplugAllBusyWhenEmptyAnswersAsQemu72) {
  auto answer = [](Fault f, Profile p) {
    Testbed t = with_fault(f, small_options(p));
    t.dev().set_busy(true);
    return t.unplug_all();
  };
  EXPECT_EQ(answer(Fault::None, Profile::Spec), RespType::Ack);
  EXPECT_EQ(answer(Fault::UnplugAllBusyWhenEmpty, Profile::Spec), RespType::Busy);
  EXPECT_EQ(answer(Fault::None, Profile::Qemu72), RespType::Busy);
}

TEST(MutantsTest, OverQuotaAnsweredErrorRefusesWithError) {
  for (Fault f : {Fault::None, Fault::OverQuotaAnsweredError}) {
    Testbed t = with_fault(f);
    ASSERT_EQ(t.plug(t.block(0), 64), RespType::Ack);  // requested_size is 64 blocks
    EXPECT_EQ(t.plug(t.block(64), 1), f == Fault::None ? RespType::Nack : RespType::Error);
    EXPECT_EQ(t.cfg().plugged_size, 128 * kMiB);
  }
}

TEST(MutantsTest, StateChainNotReturnedLeavesAChainHanging) {
  for (Fault f : {Fault::None, Fault::StateChainNotReturned}) {
    Testbed t = with_fault(f);
    auto r = t.drv().request(VIRTIO_MEM_REQ_STATE, t.block(0), 1);
    EXPECT_EQ(r.has_value(), f == Fault::None);
    const SplitQueue& q = t.dev().queue(0);
    EXPECT_EQ(q.popped() == q.used() + q.detached(), f == Fault::None);
  }
}

}  // namespace
}  // namespace vmem::testing

namespace vmem::testing {
namespace {

// A recorded trace replays cleanly on the correct device and fails on a mutant at the first
// operation whose observation the fault changes (the trace is the kill evidence, D7).
TEST(MutantsTest, RecordedTraceCatchesAMutantAtTheRightLine) {
  auto t = parse_trace(R"(vmemtrace 1
device region_size=0x40000000 requested_size=0x8000000
init
request plug addr=0x100000000 nb=2
isr
host resize 0x10000000
isr
request unplug addr=0x100000000 nb=1
config
)");
  ASSERT_TRUE(t.has_value());
  const ReplayReport recorded = replay_trace(*t);
  ASSERT_TRUE(recorded.ok());
  EXPECT_TRUE(replay_trace(recorded.recorded).ok());
  const ReplayReport no_notify = replay_trace(recorded.recorded, "resize-without-notification");
  ASSERT_TRUE(no_notify.mismatch);
  EXPECT_EQ(no_notify.mismatch->line, 7);
  const ReplayReport stale = replay_trace(recorded.recorded, "unplug-plugged-size-stale");
  ASSERT_TRUE(stale.mismatch);
  EXPECT_EQ(stale.mismatch->line, 9);
}

// Two memslots over 191 blocks of 16 MiB: QEMU's share, half the region, is 95.5 blocks, so the
// fault-free size rounds up to 96 blocks (0x60000000) and the mutant keeps a size that splits a
// block between the memslots.
TEST(MutantsTest, MemslotSizeNotBlockAlignedSplitsABlock) {
  auto t = parse_trace(R"(vmemtrace 1
device addr=0x100000000 region_size=0xbf000000 block_size=0x1000000 requested_size=0xbf000000 ui=on memslots=1
init
consumers memslots=2 -> ok
request plug addr=0x15f000000 nb=1 -> ack
check -> ok consistent
)");
  ASSERT_TRUE(t.has_value()) << t.error().message;
  EXPECT_TRUE(replay_trace(*t).ok());
  const ReplayReport mutant = replay_trace(*t, "memslot-size-not-block-aligned");
  ASSERT_TRUE(mutant.mismatch);
  EXPECT_NE(mutant.mismatch->observed.find("I4"), std::string::npos) << mutant.mismatch->observed;
}

// A section of 16 blocks with QEMU's 512 memslots needs up to 16 + 512 - 1 mappings: a limit of
// 383 refuses it, unless the budget forgets the memslots.
TEST(MutantsTest, MappingBudgetIgnoresMemslotsAdmitsTooMuch) {
  auto t = parse_trace(R"(vmemtrace 1
device addr=0x100000000 region_size=0x8000000 block_size=0x200000 requested_size=0x8000000
init
consumers vfio=1 entry_limit=383 -> ok
vfio add offset=0x0 size=0x2000000 -> error
)");
  ASSERT_TRUE(t.has_value()) << t.error().message;
  EXPECT_TRUE(replay_trace(*t).ok());
  const ReplayReport mutant = replay_trace(*t, "mapping-budget-ignores-memslots");
  ASSERT_TRUE(mutant.mismatch);
  EXPECT_EQ(mutant.mismatch->line, 5);
}

}  // namespace
}  // namespace vmem::testing

// --- The invariant checker catches a named mutant for each invariant (issue: discard manager) --

namespace vmem::testing {
namespace {

constexpr uint64_t kBlk = kBlock;

// A consumer rig on the mutants build with a VFIO container and, with dynamic memslots, a
// memslot map; listeners it registers stay alive as long as the rig.
struct Rig : ConsumerRig {
  VfioType1Container container;
  std::unique_ptr<VfioMemoryListener> vfio;
  std::vector<std::unique_ptr<RecordingListener>> listeners;
  std::unique_ptr<MemslotMap> memslots;

  explicit Rig(Fault f, DeviceOptions o = small_options(), uint32_t dma_entry_limit = 65535)
      : ConsumerRig(with_fault_name(f, o)),
        container(VfioContainerOptions{.dma_entry_limit = dma_entry_limit}) {
    if (o.dynamic_memslots) {
      memslots = std::make_unique<MemslotMap>(t.dev(), true, 256);
      manager->set_memslots(memslots.get());
      checker->watch(*memslots);
    }
    vfio = std::move(*VfioMemoryListener::create(
        container, *manager, permission,
        reinterpret_cast<uintptr_t>(t.machine->device_region->backing.data()), {o.profile, 512}));
    checker->watch(*vfio);
  }
  static DeviceOptions with_fault_name(Fault f, DeviceOptions o) {
    o.fault = std::string(fault_name(f));
    return o;
  }
  RecordingListener& listener(Section s) {
    listeners.push_back(ConsumerRig::listener("l" + std::to_string(listeners.size()), s));
    return *listeners.back();
  }
  // The invariants (by their "In" prefix) the checker reports.
  std::set<std::string> caught() {
    std::set<std::string> ids;
    for (const Violation& v : violations())
      ids.insert(v.invariant.substr(0, 2));
    return ids;
  }
};

// Runs `scenario` on the fault-free device (no violation) and on the mutant (the invariant
// `expected` reported).
void expect_caught(Fault f, const std::string& expected, const std::function<void(Rig&)>& scenario,
                   DeviceOptions o = small_options()) {
  {
    Rig clean(Fault::None, o);
    scenario(clean);
    EXPECT_TRUE(clean.caught().empty()) << "the scenario breaks the correct device";
  }
  Rig mutant(f, o);
  scenario(mutant);
  EXPECT_TRUE(mutant.caught().count(expected)) << fault_name(f) << " not caught as " << expected;
}

TEST(InvariantCheckerTest, CatchesI1PluggedSizeStale) {
  expect_caught(Fault::UnplugPluggedSizeStale, "I1", [](Rig& r) {
    r.t.plug(r.t.block(0), 2);
    r.t.unplug(r.t.block(0), 1);
  });
}

TEST(InvariantCheckerTest, CatchesI2RangeEndOffByOne) {
  expect_caught(Fault::RangeEndOffByOne, "I2", [](Rig& r) {
    const uint64_t usable_end = r.t.cfg().addr + r.t.cfg().usable_region_size;
    r.t.plug(usable_end - kBlk, 2);
  });
}

TEST(InvariantCheckerTest, CatchesI3UnplugAllBelowRequested) {
  expect_caught(Fault::UnplugAllUsableBelowRequested, "I3", [](Rig& r) { r.t.unplug_all(); });
}

TEST(InvariantCheckerTest, CatchesI4UsableRegionNotRounded) {
  DeviceOptions o = small_options();
  o.usable_extent = 1 * kMiB;
  expect_caught(
      Fault::UsableRegionNotRounded, "I4", [](Rig& r) { r.t.unplug_all(); }, o);
}

TEST(InvariantCheckerTest, CatchesI5RollbackToTheWrongSection) {
  expect_caught(Fault::RollbackClippedToFailingSection, "I5", [](Rig& r) {
    r.listener({0, 20 * kBlk});
    r.listener({10 * kBlk, 20 * kBlk}).refuse_after(0);
    r.listener({2 * kBlk, 4 * kBlk});  // notified first; its own section differs from the refuser's
    r.t.plug(r.t.block(0), 30);
  });
}

TEST(InvariantCheckerTest, CatchesI5RollbackThatMissesAListener) {
  expect_caught(Fault::RollbackSkipsFirstListener, "I5", [](Rig& r) {
    r.listener({0, 10 * kBlk}).refuse_after(0);
    r.listener({0, 10 * kBlk});  // notified first, never rolled back
    r.t.plug(r.t.block(0), 4);
  });
}

TEST(InvariantCheckerTest, CatchesI6UnregisterKeepingMappings) {
  expect_caught(Fault::UnregisterKeepsMappings, "I6", [](Rig& r) {
    ASSERT_TRUE(r.vfio->region_add({0, 64 * kBlk}).has_value());
    r.t.plug(r.t.block(0), 4);
    r.vfio->region_del({0, 64 * kBlk});
  });
}

// The incremental mode alone must see what an unregister left behind (it touched no block).
TEST(InvariantCheckerTest, IncrementalCheckSeesListenerChanges) {
  Rig r(Fault::UnregisterKeepsMappings);
  ASSERT_TRUE(r.vfio->region_add({0, 64 * kBlk}).has_value());
  r.t.plug(r.t.block(0), 4);
  (void)r.checker->check_incremental();
  r.vfio->region_del({0, 64 * kBlk});
  bool caught = false;
  for (const Violation& v : r.checker->check_incremental())
    caught |= v.invariant.rfind("I6", 0) == 0;
  EXPECT_TRUE(caught);
}

// A faulty range check at the end of the region must not read past the bitmap (ASan watches).
TEST(MutantsTest, FaultyRangeCheckAtTheRegionEndStaysInBounds) {
  DeviceOptions o = small_options();
  o.requested_size = o.region_size;  // usable = region
  for (Fault f : {Fault::RangeEndOffByOne, Fault::RangeNoWrapCheck}) {
    Testbed t = with_fault(f, o);
    const uint64_t last = t.cfg().addr + t.cfg().region_size - kBlk;
    (void)t.plug(last, 2);
    (void)t.unplug(last, 2);
    (void)t.state(last, 65535);
    EXPECT_EQ(t.cfg().plugged_size % kBlk, 0u);
  }
}

TEST(InvariantCheckerTest, CatchesI6PopulateMappingTheWholeSection) {
  expect_caught(Fault::PopulateMapsWholeSection, "I6", [](Rig& r) {
    ASSERT_TRUE(r.vfio->region_add({0, 16 * kBlk}).has_value());
    r.t.plug(r.t.block(3), 1);
  });
}

TEST(InvariantCheckerTest, CatchesI7MemslotUnmappedWhilePlugged) {
  DeviceOptions o = small_options();
  o.region_size = 4 * kGiB;
  o.requested_size = 4 * kGiB;
  o.dynamic_memslots = true;
  expect_caught(
      Fault::MemslotDeactivatedWhilePlugged, "I7",
      [](Rig& r) {
        ASSERT_TRUE(r.memslots->add_listener(*r.vfio).has_value());
        r.t.plug(r.t.block(0), 2);
        r.t.unplug(r.t.block(1), 1);
      },
      o);
}

TEST(InvariantCheckerTest, CatchesI1PlugSizeNotRolledBack) {
  expect_caught(Fault::PlugSizeNotRolledBack, "I1", [](Rig& r) {
    r.listener({0, 20 * kBlk}).refuse_after(0);
    EXPECT_EQ(r.t.plug(r.t.block(0), 2), RespType::Busy);
  });
}

TEST(InvariantCheckerTest, CatchesI5PlugBitmapKeptOnRefusal) {
  expect_caught(Fault::PlugBitmapKeptOnRefusal, "I5", [](Rig& r) {
    r.listener({0, 20 * kBlk}).refuse_after(0);
    EXPECT_EQ(r.t.plug(r.t.block(0), 2), RespType::Busy);
  });
  // A driver sees it too: the BUSY PLUG changed the blocks' state (DEV-28).
  Rig mutant(Fault::PlugBitmapKeptOnRefusal);
  mutant.listener({0, 20 * kBlk}).refuse_after(0);
  ASSERT_EQ(mutant.t.plug(mutant.t.block(0), 2), RespType::Busy);
  EXPECT_EQ(mutant.t.state(mutant.t.block(0), 2).state, BlockState::Plugged);
}

TEST(InvariantCheckerTest, CatchesI6StateNotifyingDiscard) {
  expect_caught(Fault::StateNotifiesDiscard, "I6", [](Rig& r) {
    ASSERT_TRUE(r.vfio->region_add({0, 64 * kBlk}).has_value());
    ASSERT_EQ(r.t.plug(r.t.block(0), 4), RespType::Ack);
    EXPECT_EQ(r.t.state(r.t.block(0), 4).state, BlockState::Plugged);
  });
}

TEST(InvariantCheckerTest, CatchesI6PopulateMappingOneRange) {
  expect_caught(Fault::PopulateMapsOneRange, "I6", [](Rig& r) {
    ASSERT_TRUE(r.vfio->region_add({0, 16 * kBlk}).has_value());
    ASSERT_EQ(r.t.plug(r.t.block(3), 2), RespType::Ack);
  });
  // And type1 cannot split the mapping when one block of the run goes: it stays mapped.
  Rig mutant(Fault::PopulateMapsOneRange);
  ASSERT_TRUE(mutant.vfio->region_add({0, 16 * kBlk}).has_value());
  ASSERT_EQ(mutant.t.plug(mutant.t.block(3), 2), RespType::Ack);
  ASSERT_EQ(mutant.t.unplug(mutant.t.block(3), 1), RespType::Ack);
  EXPECT_EQ(mutant.container.pinned_bytes(), 2 * kBlk);
}

TEST(InvariantCheckerTest, CatchesI7MemslotEndRoundedDown) {
  DeviceOptions o = small_options();
  o.region_size = 4 * kGiB;
  o.requested_size = 4 * kGiB;
  o.dynamic_memslots = true;
  expect_caught(
      Fault::MemslotEndRoundedDown, "I7",
      [](Rig& r) {
        ASSERT_TRUE(r.memslots->add_listener(*r.vfio).has_value());
        ASSERT_EQ(r.t.plug(r.t.block(0), 2), RespType::Ack);
      },
      o);
}

TEST(InvariantCheckerTest, CatchesI5ClipEndNotCapped) {
  // The request ends inside the section: the faulty clip tells the listener of the section's
  // blocks up to its end.
  expect_caught(Fault::ClipEndNotCapped, "I5", [](Rig& r) {
    r.listener({0, 16 * kBlk});
    ASSERT_EQ(r.t.plug(r.t.block(3), 2), RespType::Ack);
  });
}

TEST(MutantsTest, MappingBudgetOffByOneRefusesASectionThatFitsExactly) {
  // 16 blocks, plus 512 possible memslots, minus the one this listener stands for: the estimate
  // is exactly the container's limit, which QEMU accepts.
  constexpr uint32_t kLimit = 16 + 512 - 1;
  Rig clean(Fault::None, small_options(), kLimit);
  EXPECT_TRUE(clean.vfio->region_add({0, 16 * kBlk}).has_value());
  Rig mutant(Fault::MappingBudgetOffByOne, small_options(), kLimit);
  EXPECT_FALSE(mutant.vfio->region_add({0, 16 * kBlk}).has_value());
  // One mapping more than the limit is refused by both.
  Rig over(Fault::None, small_options(), kLimit - 1);
  EXPECT_FALSE(over.vfio->region_add({0, 16 * kBlk}).has_value());
}

// The equivalent mutant: every observation a driver, the host or the checker can make is the
// same as on the fault-free device, with both a private and a shared (memfd) backing.
TEST(MutantsTest, UnplugAllDiscardsWholeRegionIsEquivalent) {
  auto observe = [](Fault f, BackingKind kind) {
    DeviceOptions o = small_options();
    o.fault = std::string(fault_name(f));
    Testbed t = make_testbed(o, kind);
    DiscardPermission permission;
    auto manager = std::move(*DiscardManager::attach(t.dev(), permission));
    RecordingListener l("l", t.dev().bitmap().size(), kBlk);
    EXPECT_TRUE(manager->register_listener(l, {0, 64 * kBlk}).has_value());
    InvariantChecker checker(t.dev());
    checker.watch(l, {0, 64 * kBlk});
    std::vector<std::string> seen;
    auto note = [&](const std::string& what) {
      // D10: the shared zero page a read of an unplugged block maps is not resident memory, but
      // mincore (and here even pagemap) counts it: re-discard what the test read (blocks 1 and
      // 15, never plugged) before measuring.
      EXPECT_TRUE(t.dev().region().discard(1 * kBlk, kBlk).has_value());
      EXPECT_TRUE(t.dev().region().discard(15 * kBlk, kBlk).has_value());
      const WireConfig c = t.cfg();
      std::string line = what + fmt::format(" usable={:#x} plugged={:#x} requested={:#x} gen={}",
                                            c.usable_region_size, c.plugged_size, c.requested_size,
                                            t.dev().config_generation());
      for (uint64_t b = 0; b < 20; ++b) {
        line += fmt::format(" {}", static_cast<int>(t.state(t.block(b), 1).state));
        auto res = t.dev().region().resident_bytes(b * kBlk, kBlk);
        line += fmt::format("/{}", res.has_value() ? *res : ~uint64_t{0});
      }
      for (const Violation& v : checker.check_full())
        line += " " + to_string(v);
      seen.push_back(line);
    };
    std::array<uint8_t, 64> buf{};
    std::vector<uint8_t> pattern(4096, 0x5a);
    for (int round = 0; round < 2; ++round) {
      // Reads of unplugged usable blocks are allowed (DEV-20) and map the zero page.
      EXPECT_TRUE(t.machine->mem.read(t.block(1), buf).has_value());
      seen.push_back(fmt::format("block 1 reads {:#x}", buf[0]));
      EXPECT_TRUE(t.machine->mem.read(t.block(15), buf).has_value());
      seen.push_back(fmt::format("block 15 reads {:#x}", buf[0]));
      seen.push_back(fmt::format("plug {}", static_cast<int>(t.plug(t.block(4), 3))));
      seen.push_back(fmt::format("plug {}", static_cast<int>(t.plug(t.block(10), 1))));
      EXPECT_TRUE(t.machine->mem.write(t.block(4), pattern).has_value());
      EXPECT_TRUE(t.machine->mem.write(t.block(10) + kBlk - 4096, pattern).has_value());
      note("plugged");
      seen.push_back(fmt::format("unplug {}", static_cast<int>(t.unplug(t.block(5), 1))));
      seen.push_back(fmt::format("all {}", static_cast<int>(t.unplug_all())));
      note("after UNPLUG_ALL");
      EXPECT_TRUE(t.machine->mem.read(t.block(4), buf).has_value());
      seen.push_back(fmt::format("block 4 reads {:#x}", buf[0]));
      seen.push_back(fmt::format("all {}", static_cast<int>(t.unplug_all())));
      note("after a second UNPLUG_ALL");
    }
    seen.push_back(fmt::format("listener view {} blocks", l.view().count()));
    return seen;
  };
  for (BackingKind kind : {BackingKind::Anonymous, BackingKind::Shared}) {
    const auto clean = observe(Fault::None, kind);
    const auto mutant = observe(Fault::UnplugAllDiscardsWholeRegion, kind);
    ASSERT_EQ(clean.size(), mutant.size());
    for (std::size_t i = 0; i < clean.size(); ++i)
      EXPECT_EQ(clean[i], mutant[i]) << "observation " << i;
  }
}

TEST(InvariantCheckerTest, CatchesI8UnplugKeepingMemory) {
  expect_caught(Fault::UnplugSkipsDiscard, "I8", [](Rig& r) {
    r.t.plug(r.t.block(0), 1);
    std::vector<uint8_t> data(4096, 1);
    ASSERT_TRUE(r.t.machine->mem.write(r.t.block(0), data).has_value());
    r.t.unplug(r.t.block(0), 1);
  });
}

}  // namespace
}  // namespace vmem::testing
