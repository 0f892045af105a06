// Cases taken from the spec notes (virtio-mem-spec.md §2, §3, §4.1, §5.4) and the behaviour
// table (docs/profiles.md); each test names the rule it pins.
#include "fuzz/model/spec_model.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "reference/mem/wire.h"

namespace vmem::model {
namespace {

constexpr uint64_t kMiB = uint64_t{1} << 20;
constexpr uint64_t kGiB = uint64_t{1} << 30;
constexpr uint64_t kBs = 2 * kMiB;
constexpr uint64_t kBase = 4 * kGiB;

constexpr Answer kAck{VIRTIO_MEM_RESP_ACK, 0};
constexpr Answer kNack{VIRTIO_MEM_RESP_NACK, 0};
constexpr Answer kBusy{VIRTIO_MEM_RESP_BUSY, 0};
constexpr Answer kError{VIRTIO_MEM_RESP_ERROR, 0};
constexpr Answer kStatePlugged{VIRTIO_MEM_RESP_ACK, VIRTIO_MEM_STATE_PLUGGED};
constexpr Answer kStateUnplugged{VIRTIO_MEM_RESP_ACK, VIRTIO_MEM_STATE_UNPLUGGED};
constexpr Answer kStateMixed{VIRTIO_MEM_RESP_ACK, VIRTIO_MEM_STATE_MIXED};

constexpr Profile kProfiles[] = {Profile::Spec, Profile::Qemu, Profile::Qemu72};

std::string name(Profile p) {
  switch (p) {
    case Profile::Spec:
      return "spec";
    case Profile::Qemu:
      return "qemu";
    case Profile::Qemu72:
      return "qemu-7.2";
  }
  return "?";
}

// 32 blocks of 2 MiB at 4 GiB; the usable region gets 4 blocks beyond requested_size.
Geometry small_geometry() {
  return Geometry{
      .addr = kBase, .region_size = 32 * kBs, .block_size = kBs, .usable_extent = 4 * kBs};
}

SpecModel make(Profile p, uint64_t requested_blocks = 8, bool persistent_suspend = false) {
  return SpecModel(p, small_geometry(), requested_blocks * kBs, persistent_suspend);
}

uint64_t gpa(uint64_t block) {
  return kBase + block * kBs;
}

Answer plug(SpecModel& m, uint64_t block, uint16_t n, bool refused = false) {
  return m.request(VIRTIO_MEM_REQ_PLUG, gpa(block), n, refused);
}
Answer unplug(SpecModel& m, uint64_t block, uint16_t n) {
  return m.request(VIRTIO_MEM_REQ_UNPLUG, gpa(block), n);
}
Answer state(SpecModel& m, uint64_t block, uint16_t n) {
  return m.request(VIRTIO_MEM_REQ_STATE, gpa(block), n);
}
Answer unplug_all(SpecModel& m) {
  return m.request(VIRTIO_MEM_REQ_UNPLUG_ALL, 0, 0);
}

// --- Construction and the usable region (§2, §5.2, profiles.md "Usable region") ---

TEST(SpecModelTest, PowerOnHasNothingPluggedAndAUsableRegionForTheRequest) {
  const SpecModel m = make(Profile::Spec, 8);
  EXPECT_EQ(m.config(), (Config{.block_size = kBs,
                                .addr = kBase,
                                .region_size = 32 * kBs,
                                .usable_region_size = 12 * kBs,
                                .plugged_size = 0,
                                .requested_size = 8 * kBs}));
  for (uint64_t b = 0; b < 32; ++b)
    EXPECT_FALSE(m.plugged(b));
  EXPECT_FALSE(m.plugged(1000));
}

TEST(SpecModelTest, UsableRegionIsZeroWhenNothingIsRequested) {
  SpecModel m = make(Profile::Qemu, 0);
  EXPECT_EQ(m.config().usable_region_size, 0u);
  // Nothing is usable, so every ranged request is out of range (DEV-26/33/46).
  EXPECT_EQ(plug(m, 0, 1), kError);
  EXPECT_EQ(state(m, 0, 1), kError);
  EXPECT_EQ(unplug_all(m), kAck);
}

TEST(SpecModelTest, UsableRegionIsCappedAtTheRegionAndRoundedUpToTheBlockSize) {
  Geometry g = small_geometry();
  EXPECT_EQ(SpecModel(Profile::Spec, g, 30 * kBs, false).config().usable_region_size, 32 * kBs);
  g.usable_extent = kMiB;  // half a block: rounded up to one
  EXPECT_EQ(SpecModel(Profile::Spec, g, 8 * kBs, false).config().usable_region_size, 9 * kBs);
  g.usable_extent = 0;
  EXPECT_EQ(SpecModel(Profile::Spec, g, 8 * kBs, false).config().usable_region_size, 8 * kBs);
  g.usable_extent = ~uint64_t{0};  // requested + extent passes 2^64: still capped
  EXPECT_EQ(SpecModel(Profile::Spec, g, 8 * kBs, false).config().usable_region_size, 32 * kBs);
}

TEST(SpecModelTest, InconsistentGeometryIsRejected) {
  const auto build = [](Geometry g, uint64_t requested) {
    return SpecModel(Profile::Spec, g, requested, false);
  };
  Geometry g = small_geometry();
  g.block_size = 0;
  EXPECT_THROW(build(g, 0), std::invalid_argument);
  g.block_size = 3 * kMiB;
  EXPECT_THROW(build(g, 0), std::invalid_argument);
  g = small_geometry();
  g.addr += kMiB;
  EXPECT_THROW(build(g, 0), std::invalid_argument);
  g = small_geometry();
  g.region_size += kMiB;
  EXPECT_THROW(build(g, 0), std::invalid_argument);
  g = small_geometry();
  g.addr = ~uint64_t{0} - kBs + 1;  // the last block below 2^64; the region goes beyond
  EXPECT_THROW(build(g, 0), std::invalid_argument);
  g = small_geometry();
  EXPECT_THROW(build(g, kMiB), std::invalid_argument);
  EXPECT_THROW(build(g, 33 * kBs), std::invalid_argument);
  EXPECT_NO_THROW(build(g, 32 * kBs));
}

// --- Range validity (DEV-26/33/46; profiles.md "Range validity") ---

TEST(SpecModelTest, InvalidRangesAreErrorsForPlugUnplugAndStateInEveryProfile) {
  for (const Profile p : kProfiles) {
    SCOPED_TRACE(name(p));
    SpecModel m = make(p, 8);  // usable: blocks [0, 12)
    ASSERT_EQ(plug(m, 0, 4), kAck);
    for (const uint16_t type : {VIRTIO_MEM_REQ_PLUG, VIRTIO_MEM_REQ_UNPLUG, VIRTIO_MEM_REQ_STATE}) {
      SCOPED_TRACE(type);
      EXPECT_EQ(m.request(type, gpa(0) + kBs / 2, 1), kError);            // misaligned
      EXPECT_EQ(m.request(type, gpa(0), 0), kError);                      // nb_blocks == 0
      EXPECT_EQ(m.request(type, kBase - kBs, 1), kError);                 // below addr
      EXPECT_EQ(m.request(type, kBase - kBs, 2), kError);                 // straddles addr
      EXPECT_EQ(m.request(type, gpa(11), 2), kError);                     // crosses usable end
      EXPECT_EQ(m.request(type, gpa(12), 1), kError);                     // beyond usable
      EXPECT_EQ(m.request(type, gpa(40), 1), kError);                     // beyond the region
      EXPECT_EQ(m.request(type, 0, 1), kError);                           // address 0
      EXPECT_EQ(m.request(type, ~uint64_t{0} - kBs + 1, 65535), kError);  // wraps past 2^64
    }
    EXPECT_EQ(m.config().plugged_size, 4 * kBs);
    // A range ending exactly at the usable end is valid.
    EXPECT_EQ(state(m, 4, 8), kStateUnplugged);
    EXPECT_EQ(plug(m, 11, 1), kAck);
    EXPECT_EQ(state(m, 0, 12), kStateMixed);
  }
}

TEST(SpecModelTest, ARegionEndingAt2To64KeepsItsLastBlockUsable) {
  // 16 blocks ending exactly at 2^64: the last block's range ends at 2^64, which is not past it.
  const uint64_t addr = uint64_t{0} - 16 * kBs;
  SpecModel m(Profile::Qemu, Geometry{addr, 16 * kBs, kBs, 0}, 16 * kBs, false);
  EXPECT_EQ(m.config().usable_region_size, 16 * kBs);
  const uint64_t last = addr + 15 * kBs;
  EXPECT_EQ(m.request(VIRTIO_MEM_REQ_PLUG, last, 1), kAck);
  EXPECT_EQ(m.request(VIRTIO_MEM_REQ_STATE, last, 1), kStatePlugged);
  EXPECT_EQ(m.request(VIRTIO_MEM_REQ_STATE, addr, 16), kStateMixed);
  EXPECT_EQ(m.request(VIRTIO_MEM_REQ_STATE, last, 2), kError);  // past 2^64
  EXPECT_EQ(m.request(VIRTIO_MEM_REQ_UNPLUG, last, 65535), kError);
  EXPECT_EQ(m.request(VIRTIO_MEM_REQ_UNPLUG, last, 1), kAck);
  EXPECT_EQ(m.request(VIRTIO_MEM_REQ_PLUG, addr, 16), kAck);
  EXPECT_EQ(m.config().plugged_size, 16 * kBs);
}

// --- PLUG: block states and the plug limit (DEV-27, profiles.md row 1 and "The plug limit") ---

TEST(SpecModelTest, PlugOverPluggedBlocksWithinTheLimitIsAnErrorInEveryProfile) {
  for (const Profile p : kProfiles) {
    SCOPED_TRACE(name(p));
    SpecModel m = make(p, 8);
    ASSERT_EQ(plug(m, 5, 1), kAck);
    EXPECT_EQ(plug(m, 5, 1), kError);
    EXPECT_EQ(plug(m, 4, 3), kError);
    EXPECT_EQ(m.config().plugged_size, kBs);
    EXPECT_FALSE(m.plugged(4));
    EXPECT_FALSE(m.plugged(6));
  }
}

TEST(SpecModelTest, OverLimitPlugOverPluggedBlocksFollowsTheProfileCheckOrder) {
  for (const Profile p : kProfiles) {
    SCOPED_TRACE(name(p));
    SpecModel m = make(p, 8);
    ASSERT_EQ(plug(m, 0, 6), kAck);
    // 6 plugged + 3 > 8 requested, and block 5 is plugged: spec checks states first.
    EXPECT_EQ(plug(m, 5, 3), p == Profile::Spec ? kError : kNack);
    EXPECT_EQ(m.config().plugged_size, 6 * kBs);
  }
}

TEST(SpecModelTest, PlugLimitNacksAnyOvershootAndNeverLimitsUnplug) {
  for (const Profile p : kProfiles) {
    SCOPED_TRACE(name(p));
    SpecModel m = make(p, 8);
    ASSERT_EQ(plug(m, 0, 6), kAck);
    EXPECT_EQ(plug(m, 6, 3), kNack);  // would partly overshoot: 6 + 3 > 8
    EXPECT_EQ(plug(m, 6, 2), kAck);   // exactly requested_size
    EXPECT_EQ(plug(m, 8, 1), kNack);
    EXPECT_EQ(m.config().plugged_size, 8 * kBs);
    ASSERT_TRUE(m.set_requested_size(2 * kBs));
    EXPECT_EQ(m.config().plugged_size, 8 * kBs);  // plugged_size may exceed requested_size
    EXPECT_EQ(unplug(m, 0, 1), kAck);             // unplug is never limited
    EXPECT_EQ(plug(m, 0, 1), kNack);
    EXPECT_EQ(unplug(m, 1, 7), kAck);
    EXPECT_EQ(plug(m, 0, 2), kAck);
    EXPECT_EQ(m.config().plugged_size, 2 * kBs);
  }
}

TEST(SpecModelTest, NothingCanBePluggedWhenNothingIsRequestedEvenInsideTheUsableRegion) {
  SpecModel m = make(Profile::Spec, 8);
  ASSERT_TRUE(m.set_requested_size(0));
  EXPECT_EQ(m.config().usable_region_size, 12 * kBs);  // no shrink on a resize
  EXPECT_EQ(plug(m, 0, 1), kNack);
  EXPECT_EQ(state(m, 0, 12), kStateUnplugged);
}

// --- UNPLUG and STATE (DEV-34, DEV-47/48) ---

TEST(SpecModelTest, UnplugOfAnUnpluggedOrMixedRangeIsAnErrorAndChangesNothing) {
  for (const Profile p : kProfiles) {
    SCOPED_TRACE(name(p));
    SpecModel m = make(p, 8);
    EXPECT_EQ(unplug(m, 0, 1), kError);
    ASSERT_EQ(plug(m, 2, 3), kAck);
    EXPECT_EQ(unplug(m, 1, 2), kError);
    EXPECT_EQ(unplug(m, 4, 2), kError);
    EXPECT_EQ(unplug(m, 1, 5), kError);
    EXPECT_EQ(state(m, 2, 3), kStatePlugged);
    EXPECT_EQ(m.config().plugged_size, 3 * kBs);
    EXPECT_EQ(unplug(m, 3, 1), kAck);  // splits the run
    EXPECT_EQ(state(m, 2, 3), kStateMixed);
    EXPECT_TRUE(m.plugged(2));
    EXPECT_FALSE(m.plugged(3));
    EXPECT_TRUE(m.plugged(4));
    EXPECT_EQ(m.config().plugged_size, 2 * kBs);
  }
}

TEST(SpecModelTest, StateReportsPluggedUnpluggedOrMixed) {
  SpecModel m = make(Profile::Spec, 8);
  ASSERT_EQ(plug(m, 3, 2), kAck);
  ASSERT_EQ(plug(m, 6, 1), kAck);
  EXPECT_EQ(state(m, 3, 2), kStatePlugged);
  EXPECT_EQ(state(m, 4, 1), kStatePlugged);
  EXPECT_EQ(state(m, 0, 3), kStateUnplugged);
  EXPECT_EQ(state(m, 5, 1), kStateUnplugged);
  EXPECT_EQ(state(m, 2, 2), kStateMixed);
  EXPECT_EQ(state(m, 4, 3), kStateMixed);
  EXPECT_EQ(state(m, 0, 12), kStateMixed);
  ASSERT_EQ(plug(m, 5, 1), kAck);  // joins [3, 5) and [6, 7)
  EXPECT_EQ(state(m, 3, 4), kStatePlugged);
  EXPECT_EQ(unplug(m, 3, 4), kAck);
  EXPECT_EQ(state(m, 0, 12), kStateUnplugged);
}

// --- The busy window (profiles.md "Busy window", row 2) ---

TEST(SpecModelTest, BusyWindowAnswersBusyOnlyAfterValidationAndNeverForState) {
  for (const Profile p : kProfiles) {
    SCOPED_TRACE(name(p));
    SpecModel m = make(p, 8);
    ASSERT_EQ(plug(m, 0, 2), kAck);
    m.set_busy(true);
    EXPECT_TRUE(m.busy());
    EXPECT_EQ(plug(m, 2, 1), kBusy);
    EXPECT_EQ(plug(m, 20, 1), kError);  // range
    EXPECT_EQ(plug(m, 2, 7), kNack);    // plug limit
    EXPECT_EQ(plug(m, 1, 2), kError);   // block states
    EXPECT_EQ(unplug(m, 0, 1), kBusy);
    EXPECT_EQ(unplug(m, 2, 1), kError);
    EXPECT_EQ(unplug(m, 0, 0), kError);
    EXPECT_EQ(state(m, 0, 2), kStatePlugged);
    EXPECT_EQ(state(m, 0, 20), kError);
    EXPECT_EQ(m.config().plugged_size, 2 * kBs);
    m.set_busy(false);
    EXPECT_EQ(plug(m, 2, 1), kAck);
    EXPECT_EQ(unplug(m, 0, 1), kAck);
  }
}

TEST(SpecModelTest, UnplugAllInABusyWindowDependsOnTheProfile) {
  for (const Profile p : kProfiles) {
    SCOPED_TRACE(name(p));
    SpecModel m = make(p, 8);
    m.set_busy(true);
    // Nothing plugged: spec and qemu ACK, qemu-7.2 is BUSY whenever busy.
    EXPECT_EQ(unplug_all(m), p == Profile::Qemu72 ? kBusy : kAck);
    m.set_busy(false);
    ASSERT_EQ(plug(m, 0, 3), kAck);
    m.set_busy(true);
    EXPECT_EQ(unplug_all(m), kBusy);  // something plugged: BUSY in every profile
    EXPECT_EQ(m.config().plugged_size, 3 * kBs);
    EXPECT_EQ(state(m, 0, 3), kStatePlugged);
    m.set_busy(false);
    EXPECT_EQ(unplug_all(m), kAck);
    EXPECT_EQ(m.config().plugged_size, 0u);
  }
}

// --- UNPLUG_ALL and the usable region (DEV-8, DEV-41..43) ---

TEST(SpecModelTest, UnplugAllUnplugsEverythingIgnoresItsPayloadAndShrinksTheUsableRegion) {
  for (const Profile p : kProfiles) {
    SCOPED_TRACE(name(p));
    SpecModel m = make(p, 8);
    ASSERT_TRUE(m.set_requested_size(20 * kBs));
    EXPECT_EQ(m.config().usable_region_size, 24 * kBs);
    ASSERT_EQ(plug(m, 0, 5), kAck);
    ASSERT_EQ(plug(m, 17, 3), kAck);
    ASSERT_TRUE(m.set_requested_size(2 * kBs));
    EXPECT_EQ(m.config().usable_region_size, 24 * kBs);  // a resize never shrinks it
    // Garbage in addr and nb_blocks: still ACK (DEV-38).
    EXPECT_EQ(m.request(VIRTIO_MEM_REQ_UNPLUG_ALL, kBase + 12345, 77), kAck);
    EXPECT_EQ(m.config().plugged_size, 0u);
    EXPECT_EQ(m.config().usable_region_size, 6 * kBs);
    EXPECT_EQ(state(m, 0, 6), kStateUnplugged);
    EXPECT_EQ(state(m, 17, 1), kError);  // now outside the usable region
    for (uint64_t b = 0; b < 32; ++b)
      EXPECT_FALSE(m.plugged(b));
  }
}

TEST(SpecModelTest, UnplugAllWithNothingPluggedStillRecomputesTheUsableRegion) {
  SpecModel m = make(Profile::Qemu72, 8);
  ASSERT_TRUE(m.set_requested_size(0));
  EXPECT_EQ(m.config().usable_region_size, 12 * kBs);
  EXPECT_EQ(unplug_all(m), kAck);
  EXPECT_EQ(m.config().usable_region_size, 0u);
}

TEST(SpecModelTest, UsableRegionGrowsOnResizeUpToTheRegion) {
  SpecModel m = make(Profile::Spec, 0);
  ASSERT_TRUE(m.set_requested_size(4 * kBs));
  EXPECT_EQ(m.config().usable_region_size, 8 * kBs);
  ASSERT_TRUE(m.set_requested_size(31 * kBs));
  EXPECT_EQ(m.config().usable_region_size, 32 * kBs);
  ASSERT_TRUE(m.set_requested_size(4 * kBs));
  EXPECT_EQ(m.config().usable_region_size, 32 * kBs);
  EXPECT_EQ(m.config().requested_size, 4 * kBs);
}

TEST(SpecModelTest, SetRequestedSizeRejectsUnalignedOrOversizedValuesAndChangesNothing) {
  SpecModel m = make(Profile::Qemu, 8);
  const Config before = m.config();
  EXPECT_FALSE(m.set_requested_size(8 * kBs + kMiB));
  EXPECT_FALSE(m.set_requested_size(33 * kBs));
  EXPECT_FALSE(m.set_requested_size(~uint64_t{0}));
  EXPECT_EQ(m.config(), before);
  EXPECT_TRUE(m.set_requested_size(32 * kBs));
  EXPECT_TRUE(m.set_requested_size(8 * kBs));  // the same value is fine
}

// --- Resets (DEV-13, DEV-22, DEV-23; profiles.md row 11 and "Device reset") ---

TEST(SpecModelTest, SystemResetUnplugsEverythingAndRecomputesTheUsableRegion) {
  for (const Profile p : kProfiles) {
    SCOPED_TRACE(name(p));
    SpecModel m = make(p, 16);
    ASSERT_EQ(plug(m, 10, 6), kAck);
    ASSERT_TRUE(m.set_requested_size(2 * kBs));
    m.system_reset();
    EXPECT_EQ(m.config(), (Config{.block_size = kBs,
                                  .addr = kBase,
                                  .region_size = 32 * kBs,
                                  .usable_region_size = 6 * kBs,
                                  .plugged_size = 0,
                                  .requested_size = 2 * kBs}));
    EXPECT_FALSE(m.plugged(10));
  }
}

TEST(SpecModelTest, SystemResetInABusyWindowWithBlocksPluggedChangesNothing) {
  for (const Profile p : kProfiles) {
    SCOPED_TRACE(name(p));
    SpecModel m = make(p, 16);
    ASSERT_EQ(plug(m, 10, 6), kAck);
    ASSERT_TRUE(m.set_requested_size(2 * kBs));
    m.set_busy(true);
    const Config before = m.config();
    m.system_reset();
    EXPECT_EQ(m.config(), before);
    EXPECT_EQ(state(m, 10, 6), kStatePlugged);
    EXPECT_TRUE(m.busy());
    // With nothing plugged, only qemu-7.2's UNPLUG_ALL is BUSY (row 2): spec and qemu still
    // recompute the usable region.
    SpecModel empty = make(p, 16);
    ASSERT_TRUE(empty.set_requested_size(0));
    empty.set_busy(true);
    empty.system_reset();
    EXPECT_EQ(empty.config().usable_region_size, p == Profile::Qemu72 ? 20 * kBs : 0);
  }
}

TEST(SpecModelTest, DeviceResetKeepsEveryBlockAndField) {
  for (const Profile p : kProfiles) {
    SCOPED_TRACE(name(p));
    SpecModel m = make(p, 8);
    ASSERT_EQ(plug(m, 1, 3), kAck);
    ASSERT_TRUE(m.set_requested_size(0));
    const Config before = m.config();
    m.device_reset();
    EXPECT_EQ(m.config(), before);
    EXPECT_EQ(state(m, 1, 3), kStatePlugged);
  }
}

TEST(SpecModelTest, WakeUpResetKeepsBlocksExceptInQemu72) {
  for (const Profile p : kProfiles) {
    for (const bool persistent_suspend : {false, true}) {
      SCOPED_TRACE(name(p) + (persistent_suspend ? " with" : " without") + " PERSISTENT_SUSPEND");
      SpecModel m = make(p, 8, persistent_suspend);
      EXPECT_EQ(m.persistent_suspend_negotiated(), persistent_suspend && p != Profile::Qemu72);
      ASSERT_EQ(plug(m, 1, 3), kAck);
      ASSERT_TRUE(m.set_requested_size(2 * kBs));
      const Config before = m.config();
      m.wakeup_reset();
      if (p == Profile::Qemu72) {
        // The legacy reset hook: everything unplugged, the usable region recomputed.
        EXPECT_EQ(m.config().plugged_size, 0u);
        EXPECT_EQ(m.config().usable_region_size, 6 * kBs);
        EXPECT_EQ(state(m, 0, 6), kStateUnplugged);
      } else {
        EXPECT_EQ(m.config(), before);  // DEV-23
        EXPECT_EQ(state(m, 1, 3), kStatePlugged);
      }
    }
  }
}

TEST(SpecModelTest, Qemu72WakeUpInABusyWindowKeepsBlocksLikeASystemReset) {
  SpecModel m = make(Profile::Qemu72, 8);
  ASSERT_EQ(plug(m, 1, 3), kAck);
  m.set_busy(true);
  const Config before = m.config();
  m.wakeup_reset();
  EXPECT_EQ(m.config(), before);
}

// --- A refused populate (discard_hooks.h: roll back, answer BUSY) ---

TEST(SpecModelTest, RefusedPopulateAnswersBusyAndPlugsNothing) {
  for (const Profile p : kProfiles) {
    SCOPED_TRACE(name(p));
    SpecModel m = make(p, 8);
    EXPECT_EQ(plug(m, 2, 4, /*refused=*/true), kBusy);
    EXPECT_EQ(m.config().plugged_size, 0u);
    EXPECT_EQ(state(m, 2, 4), kStateUnplugged);
    // The refusal matters only where the answer would be ACK.
    EXPECT_EQ(plug(m, 2, 9, true), kNack);
    EXPECT_EQ(plug(m, 20, 1, true), kError);
    m.set_busy(true);
    EXPECT_EQ(plug(m, 2, 4, true), kBusy);
    m.set_busy(false);
    ASSERT_EQ(plug(m, 2, 1), kAck);
    EXPECT_EQ(plug(m, 2, 1, true), kError);
    EXPECT_EQ(plug(m, 3, 3), kAck);  // the refused range is still free
    EXPECT_EQ(m.config().plugged_size, 4 * kBs);
  }
}

TEST(SpecModelTest, UnknownRequestTypeIsAPreconditionFailure) {
  SpecModel m = make(Profile::Spec, 8);
  EXPECT_THROW(m.request(4, gpa(0), 1), std::invalid_argument);
  EXPECT_THROW(m.request(0xffff, gpa(0), 1), std::invalid_argument);
}

// --- Scale: a 1 TiB region of 2 MiB blocks (512 Ki blocks), requests of 65535 blocks ---

TEST(SpecModelTest, OneTebibyteRegionWithFullSizeRequestsIsFast) {
  const uint64_t region = uint64_t{1} << 40;
  const uint64_t blocks = region / kBs;
  SpecModel m(Profile::Spec, Geometry{kBase, region, kBs, 256 * kMiB}, region, false);
  const auto start = std::chrono::steady_clock::now();
  uint64_t next = 0;
  while (next < blocks) {
    const auto n = static_cast<uint16_t>(std::min<uint64_t>(65535, blocks - next));
    ASSERT_EQ(plug(m, next, n), kAck);
    next += n;
  }
  EXPECT_EQ(m.config().plugged_size, region);
  // Punch a hole every other block in the first 2 * 65535 blocks, then query across them.
  for (uint64_t b = 0; b < 2 * 65535; b += 2)
    ASSERT_EQ(unplug(m, b, 1), kAck);
  EXPECT_EQ(state(m, 0, 65535), kStateMixed);
  EXPECT_EQ(state(m, 2 * 65535, 65535), kStatePlugged);
  EXPECT_EQ(unplug(m, 0, 65535), kError);
  for (int i = 0; i < 1000; ++i)
    ASSERT_EQ(state(m, 0, 65535), kStateMixed);
  EXPECT_EQ(m.config().plugged_size, region - 65535 * kBs);
  EXPECT_EQ(unplug_all(m), kAck);
  EXPECT_EQ(m.config().plugged_size, 0u);
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_LT(elapsed, std::chrono::seconds(10));
}

// --- Randomized: the run set against a plain per-block shadow, verdicts recomputed naively ---

TEST(SpecModelTest, RandomSequencesAgreeWithANaivePerBlockShadow) {
  for (const Profile p : kProfiles) {
    SCOPED_TRACE(name(p));
    std::mt19937_64 rng(0x5eed + static_cast<unsigned>(p));
    const uint64_t nblocks = 48;
    Geometry g{kBase, nblocks * kBs, kBs, 5 * kBs};
    SpecModel m(p, g, 16 * kBs, true);
    std::vector<bool> shadow(nblocks, false);
    const auto pick = [&](uint64_t n) {
      return std::uniform_int_distribution<uint64_t>(0, n)(rng);
    };
    for (int step = 0; step < 20000; ++step) {
      const Config c = m.config();
      const uint64_t usable_blocks = c.usable_region_size / kBs;
      const uint64_t first = pick(nblocks + 2);
      const auto n = static_cast<uint16_t>(pick(9));
      uint64_t count = 0;
      bool in_range = n != 0 && first + n <= usable_blocks;
      if (in_range)
        for (uint64_t b = first; b < first + n; ++b)
          count += shadow[b];
      const uint64_t plugged = c.plugged_size / kBs;
      switch (pick(9)) {
        case 0:
        case 1:
        case 2: {
          const bool refused = pick(7) == 0;
          const Answer a = plug(m, first, n, refused);
          Answer want = kAck;
          const bool over = (plugged + n) * kBs > c.requested_size;
          if (!in_range)
            want = kError;
          else if (p == Profile::Spec && count != 0)
            want = kError;
          else if (over)
            want = kNack;
          else if (count != 0)
            want = kError;
          else if (m.busy() || refused)
            want = kBusy;
          ASSERT_EQ(a, want) << "step " << step;
          if (a == kAck)
            for (uint64_t b = first; b < first + n; ++b)
              shadow[b] = true;
          break;
        }
        case 3:
        case 4: {
          const Answer a = unplug(m, first, n);
          Answer want = kAck;
          if (!in_range || count != n)
            want = kError;
          else if (m.busy())
            want = kBusy;
          ASSERT_EQ(a, want) << "step " << step;
          if (a == kAck)
            for (uint64_t b = first; b < first + n; ++b)
              shadow[b] = false;
          break;
        }
        case 5: {
          const Answer a = state(m, first, n);
          const Answer want = !in_range    ? kError
                              : count == 0 ? kStateUnplugged
                              : count == n ? kStatePlugged
                                           : kStateMixed;
          ASSERT_EQ(a, want) << "step " << step;
          break;
        }
        case 6:
          if (pick(20) == 0) {
            const Answer a = unplug_all(m);
            const bool busy = m.busy() && (p == Profile::Qemu72 || plugged != 0);
            ASSERT_EQ(a, busy ? kBusy : kAck) << "step " << step;
            if (a == kAck) shadow.assign(nblocks, false);
          }
          break;
        case 7:
          ASSERT_TRUE(m.set_requested_size(pick(nblocks) * kBs));
          break;
        case 8:
          m.set_busy(pick(3) == 0);
          break;
        default:
          switch (pick(30)) {
            case 0:
              m.system_reset();
              // In a busy window it stops, or (spec, qemu) has nothing to unplug.
              if (!m.busy()) shadow.assign(nblocks, false);
              break;
            case 1:
              m.wakeup_reset();
              if (p == Profile::Qemu72 && !m.busy()) shadow.assign(nblocks, false);
              break;
            case 2:
              m.device_reset();
              break;
            default:
              break;
          }
      }
      // Invariants of §2, and the run set against the shadow.
      const Config after = m.config();
      uint64_t total = 0;
      for (uint64_t b = 0; b < nblocks; ++b) {
        ASSERT_EQ(m.plugged(b), shadow[b]) << "step " << step << " block " << b;
        total += shadow[b];
      }
      ASSERT_EQ(after.plugged_size, total * kBs);
      ASSERT_LE(after.requested_size, after.usable_region_size);
      ASSERT_LE(after.usable_region_size, after.region_size);
      ASSERT_LE(after.plugged_size, after.usable_region_size);
      ASSERT_EQ(after.usable_region_size % kBs, 0u);
      for (uint64_t b = after.usable_region_size / kBs; b < nblocks; ++b)
        ASSERT_FALSE(shadow[b]);
    }
  }
}

}  // namespace
}  // namespace vmem::model
