// The mutant mechanism (decisions D6): this binary links vmem_reference_mutants. Each named
// fault must change what a driver or the host can observe; the same scenario on the fault-free
// configuration of the same library behaves as the spec requires.
#include <gtest/gtest.h>

#include <functional>
#include <set>

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
  ASSERT_GE(fault_catalog().size(), 10u);
  for (const FaultInfo& f : fault_catalog()) {
    EXPECT_EQ(fault_from_name(f.name), f.fault);
    EXPECT_FALSE(f.bug_class.empty());
    EXPECT_FALSE(f.expected_by.empty());
  }
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

  explicit Rig(Fault f, DeviceOptions o = small_options()) : ConsumerRig(with_fault_name(f, o)) {
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
