// The discard manager and its consumers: listeners on sections, roll-back, the VFIO type1
// container and listener with its mapping budget, dynamic memslots, discard permissions. The
// invariant checker runs after every step.
#include <gtest/gtest.h>
#include <unistd.h>

#include "reference/check/consumer_set.h"
#include "reference/check/invariants.h"
#include "reference/discard/discard_manager.h"
#include "reference/discard/recording_listener.h"
#include "reference/kvm/memslot_map.h"
#include "reference/mem/consumer_rules.h"
#include "reference/tests/consumer_rig.h"
#include "reference/vfio/vfio_listener.h"

namespace vmem::testing {
namespace {

using Consumers = ConsumerRig;

// --- The discard manager ---------------------------------------------------------------------

TEST(DiscardManagerTest, ListenerRegisteredAfterPlugsGetsTheReplayOfItsSectionOnly) {
  Consumers c;
  ASSERT_EQ(c.plug(c.t.block(2), 10), RespType::Ack);
  auto l = c.listener("late", blocks(5, 20));
  EXPECT_EQ(l->view().count(), 7u) << "blocks 5..11 of 2..11";
  EXPECT_EQ(l->populates(), 1u);
  c.expect_consistent("after registration");
}

TEST(DiscardManagerTest, PopulateIsClippedToEachListenersSection) {
  Consumers c;
  auto a = c.listener("a", blocks(4, 8));
  auto b = c.listener("b", blocks(10, 30));
  ASSERT_EQ(c.plug(c.t.block(0), 16), RespType::Ack);
  EXPECT_EQ(a->view().count(), 8u);
  EXPECT_EQ(b->view().count(), 6u);
  ASSERT_EQ(c.unplug(c.t.block(6), 6), RespType::Ack);
  EXPECT_EQ(a->view().count(), 2u);
  EXPECT_EQ(b->view().count(), 4u);
  c.expect_consistent("after unplug");
}

// Listeners are notified most recent first; a refusal rolls back the ones already told, each
// clipped to its own section.
TEST(DiscardManagerTest, SecondOfThreeOverlappingListenersRefusesPopulate) {
  Consumers c;
  ASSERT_EQ(c.plug(c.t.block(20), 2), RespType::Ack);
  auto first = c.listener("first", blocks(2, 40));
  auto second = c.listener("second", blocks(8, 10));
  auto third = c.listener("third", blocks(12, 20));  // notified first
  second->refuse_after(0);
  EXPECT_EQ(c.plug(c.t.block(6), 10), RespType::Busy);
  EXPECT_EQ(c.t.cfg().plugged_size, 2 * kBlock);
  EXPECT_EQ(third->populates(), 2u) << "replay + the refused plug";
  EXPECT_EQ(third->discards(), 1u) << "rolled back";
  EXPECT_EQ(first->populates(), 1u) << "never told about the refused plug";
  EXPECT_EQ(third->double_populates() + third->double_discards(), 0u);
  c.expect_consistent("after the refused plug");
  // The next try succeeds and everyone agrees again.
  EXPECT_EQ(c.plug(c.t.block(6), 10), RespType::Ack);
  c.expect_consistent("after the retried plug");
}

TEST(DiscardManagerTest, TwoListenersAtNonZeroOffsetsWhereTheSecondRefuses) {
  Consumers c;
  auto a = c.listener("a", blocks(3, 5));
  auto b = c.listener("b", blocks(1, 5));
  a->refuse_after(0);  // b is notified first, a refuses
  EXPECT_EQ(c.plug(c.t.block(2), 4), RespType::Busy);
  EXPECT_EQ(b->view().count(), 0u);
  EXPECT_EQ(a->view().count(), 0u);
  c.expect_consistent("after refusal");
}

TEST(DiscardManagerTest, UnregisterDuringUseDiscardsAndStopsNotifications) {
  Consumers c;
  auto l = c.listener("l", blocks(0, 64));
  ASSERT_EQ(c.plug(c.t.block(0), 4), RespType::Ack);
  c.manager->unregister_listener(*l);
  c.checker->unwatch(*l);
  EXPECT_EQ(l->view().count(), 0u);
  ASSERT_EQ(c.plug(c.t.block(10), 1), RespType::Ack);
  EXPECT_EQ(l->view().count(), 0u);
  c.expect_consistent("after unregister");
}

TEST(DiscardManagerTest, UnplugAllWithListeners) {
  Consumers c;
  auto per_run = c.listener("per-run", blocks(0, 100));
  auto sweep = c.listener("sweep", blocks(0, 100), /*double_discard=*/true);
  ASSERT_EQ(c.plug(c.t.block(1), 2), RespType::Ack);
  ASSERT_EQ(c.plug(c.t.block(50), 3), RespType::Ack);
  const uint64_t before = per_run->discards();
  ASSERT_EQ(c.unplug_all(), RespType::Ack);
  EXPECT_EQ(per_run->discards() - before, 2u) << "one per plugged run";
  EXPECT_EQ(sweep->discards(), 1u) << "one for the whole section";
  EXPECT_EQ(per_run->double_discards(), 0u);
  c.expect_consistent("after unplug-all");
}

TEST(DiscardManagerTest, IsPopulatedRefusesSectionsOutsideTheRegion) {
  Consumers c;
  ASSERT_EQ(c.plug(c.t.block(0), 4), RespType::Ack);
  EXPECT_FALSE(c.manager->is_populated({kBlock, ~uint64_t{0} - kBlock + 1}));
  EXPECT_FALSE(c.manager->is_populated({~uint64_t{0} - kBlock + 1, kBlock}));
  EXPECT_FALSE(c.manager->is_populated({0, 0}));
}

TEST(DiscardManagerTest, QueriesAndReplays) {
  Consumers c;
  ASSERT_EQ(c.plug(c.t.block(4), 4), RespType::Ack);
  EXPECT_TRUE(c.manager->is_populated(blocks(4, 4)));
  EXPECT_TRUE(c.manager->is_populated({4 * kBlock + 4096, 8192}));  // rounded out to blocks
  EXPECT_FALSE(c.manager->is_populated(blocks(3, 2)));
  EXPECT_EQ(c.manager->min_granularity(), kBlock);
  std::vector<Section> runs;
  ASSERT_TRUE(c.manager
                  ->replay_discarded(blocks(2, 10),
                                     [&](const Section& s) {
                                       runs.push_back(s);
                                       return ok();
                                     })
                  .has_value());
  EXPECT_EQ(runs, (std::vector<Section>{blocks(2, 2), blocks(8, 4)}));
  auto stop = c.manager->replay_populated(
      blocks(0, 64), [](const Section&) -> Status { return unexpected(Error{"stop"}); });
  EXPECT_FALSE(stop.has_value());
}

TEST(DiscardManagerTest, RegistrationRefusedByTheListenerLeavesNothingBehind) {
  Consumers c;
  ASSERT_EQ(c.plug(c.t.block(0), 2), RespType::Ack);
  ASSERT_EQ(c.plug(c.t.block(5), 2), RespType::Ack);
  RecordingListener l("picky", c.nb_blocks(), kBlock);
  l.refuse_after(1);  // accepts the first run, refuses the second
  EXPECT_FALSE(c.manager->register_listener(l, blocks(0, 64)).has_value());
  EXPECT_EQ(l.view().count(), 0u);
  EXPECT_TRUE(c.manager->listeners().empty());
  EXPECT_FALSE(c.manager->register_listener(l, {kBlock / 2, kBlock}).has_value()) << "misaligned";
  EXPECT_FALSE(c.manager->register_listener(l, blocks(500, 20)).has_value()) << "past the region";
}

TEST(DiscardManagerTest, MigrationLoadReplaysToListenersAndARefusalRestoresThem) {
  Consumers src;
  ASSERT_EQ(src.plug(src.t.block(3), 4), RespType::Ack);
  const auto stream = src.t.dev().save();
  Consumers dst(small_options());
  std::vector<uint8_t> ram(2 * kMiB);
  ASSERT_TRUE(src.t.machine->mem.read(0, ram).has_value());
  ASSERT_TRUE(dst.t.machine->mem.write(0, ram).has_value());
  auto l = dst.listener("dst", blocks(0, 64));
  l->refuse_after(0);
  EXPECT_FALSE(dst.t.dev().load(stream).has_value());
  EXPECT_EQ(l->view().count(), 0u);
  dst.expect_consistent("after the refused load");
  ASSERT_TRUE(dst.t.dev().load(stream).has_value());
  EXPECT_EQ(l->view().count(), 4u);
  dst.expect_consistent("after the load");
}

// --- Discard permissions ---------------------------------------------------------------------

TEST(DiscardPermissionTest, VirtioMemAndVfioType1Coexist) {
  DiscardPermission p;
  ASSERT_TRUE(p.require(true).has_value());  // virtio-mem
  ASSERT_TRUE(p.disable(true).has_value());  // VFIO type1
  EXPECT_FALSE(p.require(false).has_value()) << "a balloon next to VFIO";
  auto pin_all = p.disable(false);
  ASSERT_FALSE(pin_all.has_value()) << "pinning the whole region next to virtio-mem";
  EXPECT_NE(pin_all.error().message.find("RamDiscardListener"), std::string::npos);
}

TEST(DiscardPermissionTest, WhicheverComesSecondFails) {
  DiscardPermission p;
  ASSERT_TRUE(p.require(false).has_value());  // a balloon first
  EXPECT_FALSE(p.disable(true).has_value()) << "then VFIO type1";
  p.release_require(false);
  EXPECT_TRUE(p.disable(true).has_value());
  DiscardPermission q;
  ASSERT_TRUE(q.disable(false).has_value());  // non-type1 VFIO first
  EXPECT_FALSE(q.require(true).has_value()) << "then virtio-mem";
}

// --- VFIO type1 container --------------------------------------------------------------------

TEST(VfioType1Test, MapRefusesOverlapsAndMisalignment) {
  VfioType1Container c;
  ASSERT_TRUE(c.map_dma(0x100000, 0x200000, 0x7f0000000000).has_value());
  EXPECT_EQ(c.map_dma(0x100000, 0x1000, 0).error(), VfioError::Exists);
  EXPECT_EQ(c.map_dma(0x0, 0x101000, 0).error(), VfioError::Exists);
  EXPECT_EQ(c.map_dma(0x2ff000, 0x2000, 0).error(), VfioError::Exists);
  EXPECT_TRUE(c.map_dma(0x300000, 0x1000, 0).has_value()) << "adjacent is fine";
  EXPECT_EQ(c.map_dma(0x400800, 0x1000, 0).error(), VfioError::Invalid);
  EXPECT_EQ(c.map_dma(0x500000, 0, 0).error(), VfioError::Invalid);
  EXPECT_EQ(c.map_dma(~uint64_t{0} - 0xfff, 0x2000, 0).error(), VfioError::Invalid);
}

TEST(VfioType1Test, UnmapCoversWholeMappingsButNeverSplitsOne) {
  VfioType1Container c;
  for (uint64_t i = 0; i < 4; ++i)
    ASSERT_TRUE(c.map_dma(i * 0x200000, 0x200000, 0).has_value());
  EXPECT_EQ(c.unmap_dma(0x100000, 0x200000).error(), VfioError::Invalid) << "starts inside";
  EXPECT_EQ(c.unmap_dma(0x0, 0x300000).error(), VfioError::Invalid) << "ends inside";
  EXPECT_EQ(c.mappings().size(), 4u);
  EXPECT_EQ(*c.unmap_dma(0x0, 0x400000), 0x400000u);
  EXPECT_EQ(*c.unmap_dma(0x0, 0x10000000), 0x400000u) << "gaps are fine";
  EXPECT_EQ(*c.unmap_dma(0x0, 0x10000000), 0u) << "nothing mapped: nothing unmapped";
  EXPECT_EQ(c.unmap_dma(0x0, 0).error(), VfioError::Invalid);
  EXPECT_EQ(c.pinned_bytes(), 0u);
}

TEST(VfioType1Test, EntryLimitAndLockedMemory) {
  VfioType1Container c({.dma_entry_limit = 3, .locked_memory_limit = 0x3000});
  ASSERT_TRUE(c.map_dma(0x0, 0x1000, 0).has_value());
  ASSERT_TRUE(c.map_dma(0x1000, 0x1000, 0).has_value());
  EXPECT_EQ(c.map_dma(0x2000, 0x2000, 0).error(), VfioError::NoMemory);
  ASSERT_TRUE(c.map_dma(0x2000, 0x1000, 0).has_value());
  EXPECT_EQ(c.map_dma(0x10000, 0x1000, 0).error(), VfioError::NoSpace);
  EXPECT_EQ(c.pinned_bytes(), 0x3000u);
  c.fail_nth_map(1);
  ASSERT_TRUE(c.unmap_dma(0x0, 0x1000).has_value());
  EXPECT_EQ(c.map_dma(0x0, 0x1000, 0).error(), VfioError::Injected);
  EXPECT_TRUE(c.map_dma(0x0, 0x1000, 0).has_value());
}

// --- VFIO as a consumer ----------------------------------------------------------------------

struct WithVfio : Consumers {
  VfioType1Container container;
  std::unique_ptr<VfioMemoryListener> vfio;

  explicit WithVfio(DeviceOptions o = small_options(), VfioContainerOptions co = {},
                    uint64_t max_memslots = 512)
      : Consumers(o), container(co) {
    auto v = VfioMemoryListener::create(
        container, *manager, permission,
        reinterpret_cast<uintptr_t>(t.machine->device_region->backing.data()),
        {o.profile, max_memslots});
    vfio = std::move(*v);
    checker->watch(*vfio);
  }
};

TEST(VfioListenerTest, OneMappingPerBlockAndOneUnmapPerDiscard) {
  WithVfio c;
  ASSERT_TRUE(c.vfio->region_add({0, c.t.cfg().region_size}).has_value());
  ASSERT_EQ(c.plug(c.t.block(10), 8), RespType::Ack);
  EXPECT_EQ(c.container.mappings().size(), 8u);
  EXPECT_EQ(c.container.pinned_bytes(), 8 * kBlock);
  c.expect_consistent("after plug");
  const uint64_t unmaps = c.container.unmap_calls();
  ASSERT_EQ(c.unplug(c.t.block(11), 3), RespType::Ack);
  EXPECT_EQ(c.container.unmap_calls() - unmaps, 1u);
  EXPECT_EQ(c.container.mappings().size(), 5u);
  c.expect_consistent("after unplug");
  ASSERT_EQ(c.unplug_all(), RespType::Ack);
  EXPECT_EQ(c.container.unmap_calls() - unmaps, 2u) << "UNPLUG_ALL: one unmap for the section";
  EXPECT_TRUE(c.container.mappings().empty());
  c.expect_consistent("after unplug-all");
}

TEST(VfioListenerTest, MapFailureInTheMiddleOfA65535BlockPlugRollsBack) {
  DeviceOptions o = small_options();
  o.region_size = 256 * kGiB;
  o.requested_size = o.region_size;
  o.block_size = 4096;  // 65535 blocks of 4 KiB; entry limit raised to fit
  WithVfio c(o, {.dma_entry_limit = 70000}, 512);
  ASSERT_TRUE(c.vfio->region_add({0, 256 * kMiB}).has_value());
  c.container.fail_nth_map(40000);
  EXPECT_EQ(c.plug(c.t.block(0), 65535), RespType::Busy);
  EXPECT_TRUE(c.container.mappings().empty());
  EXPECT_EQ(c.t.cfg().plugged_size, 0u);
  c.expect_consistent("after the failed plug");
  EXPECT_EQ(c.plug(c.t.block(0), 65535), RespType::Ack);
  EXPECT_EQ(c.container.mappings().size(), 65535u);
  c.expect_consistent("after the retried plug");
}

// Entry limit 10 with 7 mappings already taken by other devices, 2 MiB blocks, no memslots
// counted: 3 blocks fit, the 4th does not.
TEST(VfioListenerTest, EntryLimitHitExactlyWithAPrefilledContainer) {
  WithVfio c(small_options(), {.dma_entry_limit = 10}, 0);
  for (uint64_t i = 0; i < 7; ++i)
    ASSERT_TRUE(c.container.map_dma(i * 0x1000, 0x1000, 0).has_value());
  ASSERT_TRUE(c.vfio->region_add(blocks(0, 8)).has_value()) << "8 blocks + 0 memslots - 1 <= 10";
  EXPECT_EQ(c.plug(c.t.block(0), 3), RespType::Ack);
  EXPECT_EQ(c.container.mappings().size(), 10u);
  EXPECT_EQ(c.plug(c.t.block(3), 1), RespType::Busy);
  EXPECT_EQ(c.container.mappings().size(), 10u);
  c.expect_consistent("at the limit");
}

// QEMU's estimate: mappings of every listener + max memslots - listeners > dma_max_mappings.
TEST(VfioListenerTest, MappingBudgetLimit65535Region256GiB) {
  for (Profile p : {Profile::Spec, Profile::Qemu, Profile::Qemu72}) {
    DeviceOptions o = small_options(p);
    o.region_size = 256 * kGiB;
    o.block_size = 2 * kMiB;  // 131072 possible mappings: too many for 65535
    WithVfio c(o, {.dma_entry_limit = 65535}, 512);
    auto r = c.vfio->region_add({0, o.region_size});
    if (p == Profile::Qemu72) {
      EXPECT_TRUE(r.has_value());
      ASSERT_EQ(c.vfio->warnings().size(), 1u);
    } else {
      ASSERT_FALSE(r.has_value());
      EXPECT_NE(r.error().message.find("increase the block size"), std::string::npos)
          << r.error().message;
      EXPECT_TRUE(c.manager->listeners().empty());
    }
    o.block_size = 8 * kMiB;  // 32768 + 512 - 1 fits
    WithVfio d(o, {.dma_entry_limit = 65535}, 512);
    EXPECT_TRUE(d.vfio->region_add({0, o.region_size}).has_value());
    EXPECT_TRUE(d.vfio->warnings().empty());
  }
}

TEST(VfioListenerTest, BudgetBoundaryIsExact) {
  // 1 GiB at 2 MiB = 512 mappings; limit L accepts iff 512 + M - 1 <= L.
  DeviceOptions o = small_options();
  WithVfio exact(o, {.dma_entry_limit = 512 + 100 - 1}, 100);
  EXPECT_TRUE(exact.vfio->region_add({0, kGiB}).has_value());
  WithVfio over(o, {.dma_entry_limit = 512 + 100 - 2}, 100);
  EXPECT_FALSE(over.vfio->region_add({0, kGiB}).has_value());
}

// --- Dynamic memslots ------------------------------------------------------------------------

TEST(MemslotTest, DecisionFollowsQemu) {
  auto g = [](uint64_t region, uint64_t block, uint64_t limit) {
    const auto d = rules::decide_memslots(U64{}, region, block, limit);
    return std::pair{d.count, d.size};
  };
  EXPECT_EQ(g(1ULL << 40, 2 * kMiB, 256), (std::pair<uint64_t, uint64_t>{256, 4 * kGiB}));
  EXPECT_EQ(g(1ULL << 40, 2 * kMiB, 1), (std::pair<uint64_t, uint64_t>{1, 1ULL << 40}));
  EXPECT_EQ(g(1ULL << 40, 2 * kMiB, 0), (std::pair<uint64_t, uint64_t>{1, 1ULL << 40}));
  EXPECT_EQ(g(3584 * kMiB, 2 * kMiB, 256), (std::pair<uint64_t, uint64_t>{4, kGiB}))
      << "at most one per GiB";
  EXPECT_EQ(g(kGiB, 2 * kMiB, 256), (std::pair<uint64_t, uint64_t>{1, kGiB}));
  EXPECT_EQ(g(16 * kGiB, 4 * kGiB, 256), (std::pair<uint64_t, uint64_t>{4, 4 * kGiB}))
      << "block size bounds it";
  EXPECT_EQ(g(100 * kGiB, 2 * kMiB, 7), (std::pair<uint64_t, uint64_t>{7, 14630 * kMiB}));
}

DeviceOptions memslot_options() {
  DeviceOptions o = small_options();
  o.region_size = 8 * kGiB;
  o.requested_size = 8 * kGiB;
  o.dynamic_memslots = true;
  return o;
}

struct WithMemslots : WithVfio {
  MemslotMap memslots;
  explicit WithMemslots(uint64_t limit = 256)
      : WithVfio(memslot_options()), memslots(t.dev(), true, limit) {
    manager->set_memslots(&memslots);
    EXPECT_TRUE(memslots.add_listener(*vfio).has_value());
    checker->watch(memslots);
  }
};

TEST(MemslotTest, OnlyMemslotsHoldingPluggedBlocksAreMapped) {
  WithMemslots c;
  ASSERT_EQ(c.memslots.count(), 8u);
  EXPECT_EQ(c.memslots.active_count(), 0u);
  EXPECT_TRUE(c.vfio->listeners().empty());
  // A plug across the boundary of memslots 0 and 1 maps both; VFIO gets a listener for each.
  ASSERT_EQ(c.plug(c.t.block(511), 2), RespType::Ack);
  EXPECT_EQ(c.memslots.active_count(), 2u);
  EXPECT_EQ(c.vfio->listeners().size(), 2u);
  EXPECT_EQ(c.container.mappings().size(), 2u);
  c.expect_consistent("after the cross-memslot plug");
  ASSERT_EQ(c.unplug(c.t.block(512), 1), RespType::Ack);
  EXPECT_EQ(c.memslots.active_count(), 1u);
  EXPECT_FALSE(c.memslots.active(1));
  c.expect_consistent("after emptying memslot 1");
  ASSERT_EQ(c.plug(c.t.block(4 * 512 + 7), 1), RespType::Ack);
  ASSERT_EQ(c.unplug_all(), RespType::Ack);
  EXPECT_EQ(c.memslots.active_count(), 0u);
  EXPECT_TRUE(c.vfio->listeners().empty());
  c.expect_consistent("after unplug-all");
}

TEST(MemslotTest, ListenerSectionSmallerThanAMemslotAndOneSpanningSeveral) {
  WithMemslots c;
  auto small = c.listener("small", blocks(100, 10));
  auto wide = c.listener("wide", blocks(400, 1000));  // memslots 0, 1 and 2
  ASSERT_EQ(c.plug(c.t.block(105), 300), RespType::Ack);
  EXPECT_EQ(small->view().count(), 5u);
  EXPECT_EQ(wide->view().count(), 5u);
  ASSERT_EQ(c.plug(c.t.block(1020), 100), RespType::Ack);
  EXPECT_EQ(c.memslots.active_count(), 3u);
  c.expect_consistent("after plugs");
}

TEST(MemslotTest, RefusedPopulateUnmapsTheMemslotsItMapped) {
  WithMemslots c;
  auto l = c.listener("refuser", blocks(0, 4096));
  l->refuse_after(0);
  EXPECT_EQ(c.plug(c.t.block(700), 1), RespType::Busy);
  EXPECT_EQ(c.memslots.active_count(), 0u);
  EXPECT_TRUE(c.container.mappings().empty());
  c.expect_consistent("after the refusal");
}

TEST(MemslotTest, RefusedMigrationLoadLeavesNoMemslotMapped) {
  WithMemslots src;
  ASSERT_EQ(src.plug(src.t.block(3), 2), RespType::Ack);        // memslot 0
  ASSERT_EQ(src.plug(src.t.block(3 * 512), 2), RespType::Ack);  // memslot 3
  const auto stream = src.t.dev().save();
  WithMemslots dst;
  std::vector<uint8_t> ram(2 * kMiB);
  ASSERT_TRUE(src.t.machine->mem.read(0, ram).has_value());
  ASSERT_TRUE(dst.t.machine->mem.write(0, ram).has_value());
  dst.container.fail_nth_map(3);  // the second run's first block
  EXPECT_FALSE(dst.t.dev().load(stream).has_value());
  EXPECT_EQ(dst.memslots.active_count(), 0u);
  EXPECT_TRUE(dst.vfio->listeners().empty());
  EXPECT_TRUE(dst.container.mappings().empty());
  dst.expect_consistent("after the refused load");
  ASSERT_TRUE(dst.t.dev().load(stream).has_value());
  EXPECT_EQ(dst.memslots.active_count(), 2u);
  dst.expect_consistent("after the load");
}

TEST(MemslotTest, DynamicMemslotsNeedUnpluggedInaccessible) {
  DeviceOptions o = memslot_options();
  Testbed t = make_testbed(o, BackingKind::Anonymous, false);
  const uint64_t offered = t.dev().device_features();
  ASSERT_TRUE(offered & feature_bit(VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE));
  EXPECT_EQ(t.drv().initialize(offered & ~feature_bit(VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE)) &
                VIRTIO_CONFIG_S_FEATURES_OK,
            0);
  o.unplugged_inaccessible = Tristate::Off;
  EXPECT_FALSE(validate(o).has_value());
  o = memslot_options();
  o.profile = Profile::Qemu72;
  EXPECT_FALSE(validate(o).has_value());
}

TEST(MemslotTest, KvmMemslotLimitIsReadWhenKvmIsThere) {
  const uint64_t n = kvm_max_memslots();
  EXPECT_GE(n, 1u);
  if (access("/dev/kvm", R_OK | W_OK) == 0) {
    EXPECT_GE(n, 509u) << "any current KVM offers 509 or more";
  }
}

// --- The consumer set (the host side of the trace replayer and the `ops` fuzzer) -------------

// Each of the three injected refusals stays armed until the populate it names refuses; the
// `ops` fuzzer holds a plug to the mapping budget's verdict only when none is armed.
TEST(ConsumerSetTest, AnInjectedRefusalIsArmedUntilItRefuses) {
  Testbed t = make_testbed(small_options());
  ConsumerOptions o;
  o.vfio = true;
  auto attached = ConsumerSet::attach(t.dev(), o);
  ASSERT_TRUE(attached.has_value()) << attached.error().message;
  ConsumerSet& cs = **attached;
  ASSERT_TRUE(cs.add_listener("l0", blocks(0, 8)).has_value());
  ASSERT_TRUE(cs.vfio_add(blocks(0, 8)).has_value());
  EXPECT_FALSE(cs.refusal_armed());

  cs.refuse_next_populate();
  EXPECT_TRUE(cs.refusal_armed());
  EXPECT_NE(t.plug(t.block(0), 1), RespType::Ack);
  EXPECT_FALSE(cs.refusal_armed());

  ASSERT_TRUE(cs.refuse_populate("l0", 1).has_value());  // the second populate from now
  EXPECT_EQ(t.plug(t.block(0), 1), RespType::Ack);
  EXPECT_TRUE(cs.refusal_armed());
  EXPECT_NE(t.plug(t.block(1), 1), RespType::Ack);
  EXPECT_FALSE(cs.refusal_armed());

  ASSERT_TRUE(cs.fail_nth_map(2).has_value());  // one block is one DMA map
  EXPECT_EQ(t.plug(t.block(2), 1), RespType::Ack);
  EXPECT_TRUE(cs.refusal_armed());
  EXPECT_NE(t.plug(t.block(3), 1), RespType::Ack);
  EXPECT_FALSE(cs.refusal_armed());

  EXPECT_EQ(cs.populate_refusals(), 3u);
  EXPECT_TRUE(cs.check_full().empty());
}

}  // namespace
}  // namespace vmem::testing
