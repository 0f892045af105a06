// The reference device through its virtqueue: every DEV-24..48 verdict in each profile, framing,
// protocol violations, features, notifications, resets, the busy window and large regions.
#include "reference/mem/device.h"

#include <gtest/gtest.h>

#include "reference/tests/testbed.h"

namespace vmem::testing {
namespace {

class DeviceTest : public ::testing::TestWithParam<Profile> {
 protected:
  void SetUp() override { t_ = make_testbed(small_options(GetParam())); }
  Profile profile() const { return GetParam(); }
  Testbed t_;
};

}  // namespace
}  // namespace vmem::testing

VMEM_NAMESPACE_BEGIN
// Test names then say "spec" instead of "1-byte object <00>".
void PrintTo(Profile p, std::ostream* os) {
  *os << profile_name(p);
}
VMEM_NAMESPACE_END

namespace vmem::testing {
namespace {

INSTANTIATE_TEST_SUITE_P(Profiles, DeviceTest,
                         ::testing::Values(Profile::Spec, Profile::Qemu, Profile::Qemu72),
                         [](const auto& p) {
                           return p.param == Profile::Spec   ? std::string("spec")
                                  : p.param == Profile::Qemu ? std::string("qemu")
                                                             : std::string("qemu72");
                         });

// --- PLUG ------------------------------------------------------------------------------------

TEST_P(DeviceTest, Dev29Dev30PlugIsAckedAndCounted) {
  EXPECT_EQ(t_.plug(t_.block(0), 4), RespType::Ack);
  EXPECT_EQ(t_.cfg().plugged_size, 8 * kMiB);
  EXPECT_EQ(t_.state(t_.block(0), 4), (Response{RespType::Ack, BlockState::Plugged}));
}

TEST_P(DeviceTest, Dev24Dev25PlugIgnoresPadding) {
  WireRequest r;
  r.type = VIRTIO_MEM_REQ_PLUG;
  r.addr = t_.block(2);
  r.nb_blocks = 1;
  r.padding = {0xdead, 0xbeef, 0xffff};
  r.payload_padding = {0x1234, 0xffff, 0x0001};
  auto res = t_.drv().send(r);
  ASSERT_TRUE(res.has_value());
  EXPECT_EQ(res->response.type, RespType::Ack);
  EXPECT_EQ(t_.cfg().plugged_size, 2 * kMiB);
}

TEST_P(DeviceTest, Dev26InvalidPlugRangesAreErrors) {
  const uint64_t usable_end = t_.cfg().addr + t_.cfg().usable_region_size;
  EXPECT_EQ(t_.plug(t_.block(0) + kMiB, 1), RespType::Error) << "misaligned";
  EXPECT_EQ(t_.plug(t_.block(0), 0), RespType::Error) << "nb_blocks 0";
  EXPECT_EQ(t_.plug(t_.block(0) - 2 * kMiB, 1), RespType::Error) << "below the region";
  EXPECT_EQ(t_.plug(usable_end - 2 * kMiB, 2), RespType::Error) << "crosses the usable end";
  EXPECT_EQ(t_.plug(usable_end, 1), RespType::Error) << "beyond usable, inside the region";
  EXPECT_EQ(t_.plug(~uint64_t{0} - 2 * kMiB + 1, 2), RespType::Error) << "wraps 2^64";
  EXPECT_EQ(t_.plug(t_.block(0), 65535), RespType::Error) << "65535 blocks, past the usable end";
  EXPECT_EQ(t_.cfg().plugged_size, 0u);
}

TEST_P(DeviceTest, Dev26RangeEndingExactlyAtTheUsableEndIsValid) {
  const uint64_t usable_end = t_.cfg().addr + t_.cfg().usable_region_size;
  EXPECT_EQ(t_.plug(usable_end - 2 * kMiB, 1), RespType::Ack);
  EXPECT_EQ(t_.state(usable_end - 2 * kMiB, 1).state, BlockState::Plugged);
}

TEST_P(DeviceTest, Dev27PlugOverPluggedBlocksIsAnError) {
  ASSERT_EQ(t_.plug(t_.block(5), 1), RespType::Ack);
  EXPECT_EQ(t_.plug(t_.block(5), 1), RespType::Error);
  EXPECT_EQ(t_.plug(t_.block(4), 3), RespType::Error);
  EXPECT_EQ(t_.cfg().plugged_size, 2 * kMiB);
  EXPECT_EQ(t_.state(t_.block(4), 3).state, BlockState::Mixed);
}

TEST_P(DeviceTest, PlugBeyondRequestedSizeIsNacked) {
  // requested_size is 128 MiB = 64 blocks.
  EXPECT_EQ(t_.plug(t_.block(0), 65), RespType::Nack);
  EXPECT_EQ(t_.plug(t_.block(0), 64), RespType::Ack);
  EXPECT_EQ(t_.plug(t_.block(64), 1), RespType::Nack);
}

TEST_P(DeviceTest, OverQuotaPlugOverPluggedBlocksFollowsTheProfile) {
  ASSERT_EQ(t_.plug(t_.block(0), 64), RespType::Ack);
  // Both over the requested size and overlapping plugged blocks: the spec's MUST (DEV-27) says
  // ERROR; QEMU checks the plug limit first and answers NACK.
  EXPECT_EQ(t_.plug(t_.block(63), 2),
            profile() == Profile::Spec ? RespType::Error : RespType::Nack);
}

// --- UNPLUG ----------------------------------------------------------------------------------

TEST_P(DeviceTest, Dev36Dev37UnplugIsAckedAndCounted) {
  ASSERT_EQ(t_.plug(t_.block(0), 8), RespType::Ack);
  EXPECT_EQ(t_.unplug(t_.block(2), 4), RespType::Ack);
  EXPECT_EQ(t_.cfg().plugged_size, 8 * kMiB);
  EXPECT_EQ(t_.state(t_.block(2), 4).state, BlockState::Unplugged);
  EXPECT_EQ(t_.state(t_.block(0), 8).state, BlockState::Mixed);
}

TEST_P(DeviceTest, Dev31Dev32UnplugIgnoresPadding) {
  ASSERT_EQ(t_.plug(t_.block(0), 1), RespType::Ack);
  WireRequest r{VIRTIO_MEM_REQ_UNPLUG, {1, 2, 3}, t_.block(0), 1, {4, 5, 6}};
  auto res = t_.drv().send(r);
  ASSERT_TRUE(res.has_value());
  EXPECT_EQ(res->response.type, RespType::Ack);
}

TEST_P(DeviceTest, Dev33InvalidUnplugRangesAreErrors) {
  ASSERT_EQ(t_.plug(t_.block(0), 4), RespType::Ack);
  const uint64_t usable_end = t_.cfg().addr + t_.cfg().usable_region_size;
  EXPECT_EQ(t_.unplug(t_.block(0) + 4096, 1), RespType::Error);
  EXPECT_EQ(t_.unplug(t_.block(0), 0), RespType::Error);
  EXPECT_EQ(t_.unplug(t_.block(0) - 2 * kMiB, 2), RespType::Error);
  EXPECT_EQ(t_.unplug(usable_end, 1), RespType::Error);
  EXPECT_EQ(t_.unplug(~uint64_t{0} - 2 * kMiB + 1, 1), RespType::Error);
  EXPECT_EQ(t_.cfg().plugged_size, 8 * kMiB);
}

TEST_P(DeviceTest, Dev34UnplugOfUnpluggedBlocksIsAnErrorAndChangesNothing) {
  ASSERT_EQ(t_.plug(t_.block(0), 2), RespType::Ack);
  EXPECT_EQ(t_.unplug(t_.block(10), 1), RespType::Error);
  EXPECT_EQ(t_.unplug(t_.block(1), 2), RespType::Error);
  EXPECT_EQ(t_.state(t_.block(1), 2).state, BlockState::Mixed);
  EXPECT_EQ(t_.cfg().plugged_size, 4 * kMiB);
}

TEST_P(DeviceTest, UnplugIsNotBoundedByRequestedSize) {
  ASSERT_EQ(t_.plug(t_.block(0), 8), RespType::Ack);
  ASSERT_TRUE(t_.dev().set_requested_size(0).has_value());
  EXPECT_EQ(t_.unplug(t_.block(0), 8), RespType::Ack);
}

// --- UNPLUG_ALL ------------------------------------------------------------------------------

TEST_P(DeviceTest, Dev38To42UnplugAllIgnoresPayloadAndUnplugsEverything) {
  ASSERT_EQ(t_.plug(t_.block(0), 3), RespType::Ack);
  ASSERT_EQ(t_.plug(t_.block(40), 5), RespType::Ack);
  WireRequest r{VIRTIO_MEM_REQ_UNPLUG_ALL, {7, 7, 7}, 0x1234567, 0, {9, 9, 9}};
  auto res = t_.drv().send(r);
  ASSERT_TRUE(res.has_value());
  EXPECT_EQ(res->response.type, RespType::Ack);
  EXPECT_EQ(t_.cfg().plugged_size, 0u);
  EXPECT_EQ(t_.state(t_.cfg().addr, static_cast<uint16_t>(t_.cfg().usable_region_size / (2 * kMiB)))
                .state,
            BlockState::Unplugged);
}

TEST_P(DeviceTest, Dev41UnplugAllWithNothingPluggedIsAcked) {
  EXPECT_EQ(t_.unplug_all(), RespType::Ack);
}

TEST_P(DeviceTest, Dev43UnplugAllShrinksTheUsableRegionSilently) {
  ASSERT_TRUE(t_.dev().set_requested_size(512 * kMiB).has_value());
  ASSERT_EQ(t_.cfg().usable_region_size, 768 * kMiB);
  ASSERT_TRUE(t_.dev().set_requested_size(64 * kMiB).has_value());
  EXPECT_EQ(t_.cfg().usable_region_size, 768 * kMiB) << "DEV-8: no shrink outside UNPLUG_ALL";
  (void)t_.dev().read_and_clear_isr();
  const uint64_t interrupts = t_.dev().counters().config_interrupts;
  EXPECT_EQ(t_.unplug_all(), RespType::Ack);
  EXPECT_EQ(t_.cfg().usable_region_size, 320 * kMiB);
  EXPECT_GE(t_.cfg().usable_region_size, t_.cfg().requested_size);
  EXPECT_EQ(t_.dev().counters().config_interrupts, interrupts);
}

// --- STATE -----------------------------------------------------------------------------------

TEST_P(DeviceTest, Dev44To48StateReportsPluggedUnpluggedMixed) {
  ASSERT_EQ(t_.plug(t_.block(8), 8), RespType::Ack);
  WireRequest r{VIRTIO_MEM_REQ_STATE, {0xffff, 0, 0xffff}, t_.block(8), 8, {1, 1, 1}};
  auto res = t_.drv().send(r);
  ASSERT_TRUE(res.has_value());
  EXPECT_EQ(res->response, (Response{RespType::Ack, BlockState::Plugged}));
  EXPECT_EQ(t_.state(t_.block(0), 8).state, BlockState::Unplugged);
  EXPECT_EQ(t_.state(t_.block(7), 2).state, BlockState::Mixed);
  EXPECT_EQ(t_.state(t_.block(15), 2).state, BlockState::Mixed);
  EXPECT_EQ(t_.state(t_.block(9), 1).state, BlockState::Plugged);
}

TEST_P(DeviceTest, Dev46InvalidStateRangesAreErrors) {
  const uint64_t usable_end = t_.cfg().addr + t_.cfg().usable_region_size;
  EXPECT_EQ(t_.state(t_.block(0) + 1, 1).type, RespType::Error);
  EXPECT_EQ(t_.state(t_.block(0), 0).type, RespType::Error);
  EXPECT_EQ(t_.state(usable_end - 2 * kMiB, 2).type, RespType::Error);
  EXPECT_EQ(t_.state(0, 1).type, RespType::Error);
}

TEST_P(DeviceTest, Dev47StateIsNeverBusy) {
  t_.dev().set_busy(true);
  EXPECT_EQ(t_.state(t_.block(0), 1).type, RespType::Ack);
}

// --- The busy window -------------------------------------------------------------------------

TEST_P(DeviceTest, BusyWindowAnswersBusyAfterValidation) {
  ASSERT_EQ(t_.plug(t_.block(0), 2), RespType::Ack);
  t_.dev().set_busy(true);
  EXPECT_EQ(t_.plug(t_.block(4), 1), RespType::Busy);
  EXPECT_EQ(t_.unplug(t_.block(0), 1), RespType::Busy);
  EXPECT_EQ(t_.unplug_all(), RespType::Busy);
  EXPECT_EQ(t_.plug(t_.block(4) + 4096, 1), RespType::Error) << "invalid ranges are still ERROR";
  EXPECT_EQ(t_.cfg().plugged_size, 4 * kMiB);
  t_.dev().set_busy(false);
  EXPECT_EQ(t_.unplug_all(), RespType::Ack);
  t_.dev().set_busy(true);
  // Nothing plugged: upstream QEMU acknowledges, QEMU 7.2 is busy regardless.
  EXPECT_EQ(t_.unplug_all(), profile() == Profile::Qemu72 ? RespType::Busy : RespType::Ack);
}

// --- Framing (D8) and protocol violations ----------------------------------------------------

TEST_P(DeviceTest, RequestSplitOverThreeDescriptorsIsHandled) {
  WireRequest r{VIRTIO_MEM_REQ_PLUG, {}, t_.block(1), 2, {}};
  auto res = t_.drv().send(r, ChainShape{{2, 14, 8}, {10}, false});
  ASSERT_TRUE(res.has_value()) << res.error().message;
  EXPECT_EQ(res->response.type, RespType::Ack);
  EXPECT_EQ(res->used_len, kResponseSize);
  auto st = t_.drv().send(WireRequest{VIRTIO_MEM_REQ_STATE, {}, t_.block(1), 2, {}},
                          ChainShape{{24}, {3, 3, 4}, false});
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->response, (Response{RespType::Ack, BlockState::Plugged}));
}

TEST_P(DeviceTest, IndirectChainsAreHandled) {
  auto res = t_.drv().send(WireRequest{VIRTIO_MEM_REQ_PLUG, {}, t_.block(3), 1, {}},
                           ChainShape{{12, 12}, {5, 5}, true});
  ASSERT_TRUE(res.has_value()) << res.error().message;
  EXPECT_EQ(res->response.type, RespType::Ack);
}

TEST_P(DeviceTest, LongerBuffersAreAccepted) {
  auto res = t_.drv().send(WireRequest{VIRTIO_MEM_REQ_STATE, {}, t_.block(3), 1, {}},
                           ChainShape{{32}, {16}, false});
  ASSERT_TRUE(res.has_value()) << res.error().message;
  EXPECT_EQ(res->response.type, RespType::Ack);
  EXPECT_EQ(res->used_len, kResponseSize);
}

struct Violation {
  const char* name;
  ChainShape shape;
  uint16_t type;
};

void PrintTo(const Violation& v, std::ostream* os) {
  *os << v.name;
}

class ProtocolViolationTest : public ::testing::TestWithParam<Violation> {};

TEST_P(ProtocolViolationTest, SetsNeedsResetWithoutAResponse) {
  Testbed t = make_testbed(small_options());
  const Violation& v = GetParam();
  ASSERT_EQ(t.plug(t.block(0), 1), RespType::Ack);
  auto res = t.drv().send(WireRequest{v.type, {}, t.block(1), 1, {}}, v.shape);
  EXPECT_FALSE(res.has_value());
  EXPECT_TRUE(t.dev().status() & VIRTIO_CONFIG_S_NEEDS_RESET);
  EXPECT_TRUE(t.dev().isr() & VIRTIO_ISR_CONFIG);
  const SplitQueue& q = t.dev().queue(0);
  EXPECT_EQ(q.popped(), q.used() + q.detached()) << "every popped chain ends exactly once";
  EXPECT_EQ(q.detached(), 1u);
  EXPECT_EQ(t.cfg().plugged_size, 2 * kMiB);
  // The broken device ignores further requests until a reset; after one it works again.
  EXPECT_FALSE(t.drv().request(VIRTIO_MEM_REQ_STATE, t.block(0), 1).has_value());
  ASSERT_EQ(t.drv().initialize(), 0x0f);
  EXPECT_EQ(t.state(t.block(0), 1).state, BlockState::Plugged);
}

INSTANTIATE_TEST_SUITE_P(
    Chains, ProtocolViolationTest,
    ::testing::Values(Violation{"ShortRequest", {{23}, {10}, false}, VIRTIO_MEM_REQ_STATE},
                      Violation{"ShortResponse", {{24}, {9}, false}, VIRTIO_MEM_REQ_STATE},
                      Violation{"NoResponseBuffer", {{24}, {}, false}, VIRTIO_MEM_REQ_STATE},
                      Violation{"UnknownType", {{24}, {10}, false}, 4},
                      Violation{"UnknownTypeFfff", {{24}, {10}, false}, 0xffff}),
    [](const auto& p) { return std::string(p.param.name); });

TEST(DeviceQueueTest, MalformedChainBreaksTheDevice) {
  Testbed t = make_testbed(small_options());
  DriverQueue& q = t.drv().queue();
  q.write_descriptor(0, {q.data_slot(0), 24, VIRTQ_DESC_F_NEXT, 0});  // a loop
  q.publish(0);
  t.dev().notify_queue(0);
  EXPECT_TRUE(t.dev().broken());
  EXPECT_TRUE(t.dev().status() & VIRTIO_CONFIG_S_NEEDS_RESET);
  EXPECT_EQ(t.dev().queue(0).detached(), 1u);
}

TEST(DeviceQueueTest, SpecProfileConsumesNothingBeforeDriverOk) {
  Testbed t = make_testbed(small_options(), BackingKind::Anonymous, false);
  VirtioDevice& d = t.dev();
  d.write_status(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
  d.write_driver_features(0, static_cast<uint32_t>(d.device_features()));
  d.write_driver_features(1, static_cast<uint32_t>(d.device_features() >> 32));
  d.write_status(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
                 VIRTIO_CONFIG_S_FEATURES_OK);
  DriverQueue& q = t.drv().queue();
  d.queue(0).set_desc_table(q.desc_table());
  d.queue(0).set_avail_ring(q.avail_ring());
  d.queue(0).set_used_ring(q.used_ring());
  d.queue(0).set_ready(true);
  auto head = q.build_chain(0, encode_request({VIRTIO_MEM_REQ_STATE, {}, t.block(0), 1, {}}),
                            {{24}, {10}, false});
  q.publish(*head);
  d.notify_queue(0);
  EXPECT_EQ(d.queue(0).popped(), 0u);
}

// --- Features (DEV-12, DEV-15) ---------------------------------------------------------------

TEST(DeviceFeaturesTest, Dev12UnpluggedInaccessibleOfferedMustBeAccepted) {
  Testbed t = make_testbed(small_options(), BackingKind::Anonymous, false);
  const uint64_t offered = t.dev().device_features();
  ASSERT_TRUE(offered & feature_bit(VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE));
  const uint8_t status =
      t.drv().initialize(offered & ~feature_bit(VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE));
  EXPECT_EQ(status, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER) << "FEATURES_OK refused";
  EXPECT_EQ(t.drv().initialize(offered), 0x0f);
}

TEST(DeviceFeaturesTest, Version1AndOnlyOfferedFeatures) {
  Testbed t = make_testbed(small_options(), BackingKind::Anonymous, false);
  const uint64_t offered = t.dev().device_features();
  EXPECT_EQ(
      t.drv().initialize(offered & ~feature_bit(VIRTIO_F_VERSION_1)) & VIRTIO_CONFIG_S_FEATURES_OK,
      0);
  EXPECT_EQ(t.drv().initialize(offered | feature_bit(20)) & VIRTIO_CONFIG_S_FEATURES_OK, 0);
  EXPECT_EQ(t.drv().initialize(offered), 0x0f);
}

TEST(DeviceFeaturesTest, OfferedFeaturesFollowProfileAndBacking) {
  auto features = [](Profile p, BackingKind k, bool pxm = false) {
    DeviceOptions o = small_options(p);
    o.acpi_pxm = pxm;
    Testbed t = make_testbed(o, k, false);
    return t.dev().device_features();
  };
  const uint64_t ui = feature_bit(VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE);
  const uint64_t ps = feature_bit(VIRTIO_MEM_F_PERSISTENT_SUSPEND);
  const uint64_t pxm = feature_bit(VIRTIO_MEM_F_ACPI_PXM);
  EXPECT_TRUE(features(Profile::Spec, BackingKind::Anonymous) & ui);
  EXPECT_TRUE(features(Profile::Spec, BackingKind::Anonymous) & ps);
  EXPECT_FALSE(features(Profile::Spec, BackingKind::Anonymous) & pxm);
  EXPECT_TRUE(features(Profile::Spec, BackingKind::Anonymous, true) & pxm);
  EXPECT_TRUE(features(Profile::Qemu, BackingKind::Anonymous) & ps);
  // QEMU 7.2: unplugged-inaccessible=auto is off for anonymous RAM, on for a memfd.
  EXPECT_FALSE(features(Profile::Qemu72, BackingKind::Anonymous) & ui);
  EXPECT_TRUE(features(Profile::Qemu72, BackingKind::Shared) & ui);
  EXPECT_FALSE(features(Profile::Qemu72, BackingKind::Anonymous) & ps);
  EXPECT_TRUE(features(Profile::Qemu72, BackingKind::Anonymous) & feature_bit(VIRTIO_F_VERSION_1));
}

TEST(DeviceFeaturesTest, ConfigIsReadableBeforeFeaturesOk) {
  Testbed t = make_testbed(small_options(), BackingKind::Anonymous, false);
  EXPECT_EQ(t.dev().read_config(config_offset::block_size, 8), 2 * kMiB);
  EXPECT_EQ(t.dev().read_config(config_offset::requested_size, 8), 128 * kMiB);
  EXPECT_EQ(t.dev().read_config(config_offset::usable_region_size, 4), 384 * kMiB);
  EXPECT_EQ(t.dev().read_config(56, 8), 0u) << "past the end reads as zero";
}

TEST(DeviceFeaturesTest, Drv1ConfigWritesAreIgnored) {
  Testbed t = make_testbed(small_options());
  t.dev().write_config(config_offset::requested_size, 8, 0);
  EXPECT_EQ(t.cfg().requested_size, 128 * kMiB);
}

// --- Configuration changes (DEV-9, DEV-10, D9) -----------------------------------------------

TEST_P(DeviceTest, Dev9HostResizeNotifiesAfterDriverOk) {
  (void)t_.dev().read_and_clear_isr();
  const uint32_t gen = t_.dev().config_generation();
  ASSERT_TRUE(t_.dev().set_requested_size(256 * kMiB).has_value());
  EXPECT_EQ(t_.cfg().requested_size, 256 * kMiB);
  EXPECT_EQ(t_.cfg().usable_region_size, 512 * kMiB);
  EXPECT_NE(t_.dev().config_generation(), gen);
  EXPECT_EQ(t_.dev().read_and_clear_isr(), VIRTIO_ISR_CONFIG);
  EXPECT_EQ(t_.dev().isr(), 0);
}

TEST_P(DeviceTest, UnchangedResizeNotifiesOnlyInQemuProfiles) {
  (void)t_.dev().read_and_clear_isr();
  ASSERT_TRUE(t_.dev().set_requested_size(128 * kMiB).has_value());
  EXPECT_EQ(t_.dev().isr() != 0, profile() != Profile::Spec);
}

TEST_P(DeviceTest, Dev10PlugDoesNotRaiseAConfigInterrupt) {
  (void)t_.dev().read_and_clear_isr();
  const uint32_t gen = t_.dev().config_generation();
  const uint64_t irqs = t_.dev().counters().config_interrupts;
  ASSERT_EQ(t_.plug(t_.block(0), 1), RespType::Ack);
  EXPECT_EQ(t_.dev().counters().config_interrupts, irqs);
  EXPECT_EQ(t_.dev().isr() & VIRTIO_ISR_CONFIG, 0);
  // The generic virtio rule: the generation changes with plugged_size. QEMU does not do that.
  EXPECT_EQ(t_.dev().config_generation() != gen, profile() == Profile::Spec);
}

TEST_P(DeviceTest, ResizeBeforeDriverOkFollowsTheNotifyPolicy) {
  Testbed t = make_testbed(small_options(profile()), BackingKind::Anonymous, false);
  const uint32_t gen = t.dev().config_generation();
  ASSERT_TRUE(t.dev().set_requested_size(256 * kMiB).has_value());
  EXPECT_EQ(t.dev().isr(), 0);
  if (profile() == Profile::Spec) {
    EXPECT_NE(t.dev().config_generation(), gen);
    // The pending notification arrives at DRIVER_OK at the latest.
    ASSERT_EQ(t.drv().initialize(), 0x0f);
    EXPECT_TRUE(t.dev().isr() & VIRTIO_ISR_CONFIG);
  } else {
    EXPECT_EQ(t.dev().config_generation(), gen);
    ASSERT_EQ(t.drv().initialize(), 0x0f);
    EXPECT_EQ(t.dev().isr() & VIRTIO_ISR_CONFIG, 0);
  }
}

TEST_P(DeviceTest, ResizeRejectsMisalignedAndTooLargeSizes) {
  EXPECT_FALSE(t_.dev().set_requested_size(3 * kMiB).has_value());
  EXPECT_FALSE(t_.dev().set_requested_size(2 * kGiB).has_value());
  EXPECT_EQ(t_.cfg().requested_size, 128 * kMiB);
}

TEST_P(DeviceTest, Dev2ConstantFieldsStayConstant) {
  const WireConfig before = t_.cfg();
  ASSERT_EQ(t_.plug(t_.block(0), 4), RespType::Ack);
  ASSERT_TRUE(t_.dev().set_requested_size(512 * kMiB).has_value());
  t_.dev().reset();
  t_.dev().system_reset();
  const WireConfig after = t_.cfg();
  EXPECT_EQ(after.block_size, before.block_size);
  EXPECT_EQ(after.node_id, before.node_id);
  EXPECT_EQ(after.addr, before.addr);
  EXPECT_EQ(after.region_size, before.region_size);
}

// --- Resets (DEV-13, DEV-14, DEV-22, DEV-23) -------------------------------------------------

TEST_P(DeviceTest, Dev13Dev14DeviceResetKeepsBlocksAndContents) {
  ASSERT_EQ(t_.plug(t_.block(3), 2), RespType::Ack);
  std::vector<uint8_t> pattern(4096, 0xa5);
  ASSERT_TRUE(t_.machine->mem.write(t_.block(3) + 4096, pattern).has_value());
  t_.dev().write_status(0);
  ASSERT_EQ(t_.drv().initialize(), 0x0f);
  EXPECT_EQ(t_.cfg().plugged_size, 4 * kMiB);
  EXPECT_EQ(t_.state(t_.block(3), 2).state, BlockState::Plugged);
  std::vector<uint8_t> back(4096);
  ASSERT_TRUE(t_.machine->mem.read(t_.block(3) + 4096, back).has_value());
  EXPECT_EQ(back, pattern);
}

TEST_P(DeviceTest, Dev22SystemResetUnplugsEverythingAndShrinks) {
  ASSERT_TRUE(t_.dev().set_requested_size(512 * kMiB).has_value());
  ASSERT_EQ(t_.plug(t_.block(100), 8), RespType::Ack);
  ASSERT_TRUE(t_.dev().set_requested_size(64 * kMiB).has_value());
  t_.dev().system_reset();
  EXPECT_EQ(t_.dev().status(), 0);
  EXPECT_EQ(t_.cfg().plugged_size, 0u);
  EXPECT_EQ(t_.cfg().usable_region_size, 320 * kMiB);
  EXPECT_EQ(*t_.machine->device_region->backing.resident_bytes_total(), 0u);
}

TEST_P(DeviceTest, SystemResetWhileBusyKeepsBlocks) {
  ASSERT_EQ(t_.plug(t_.block(0), 2), RespType::Ack);
  t_.dev().set_busy(true);
  t_.dev().system_reset();
  EXPECT_EQ(t_.cfg().plugged_size, 4 * kMiB);
}

TEST_P(DeviceTest, Dev23WakeUpKeepsBlocksExceptInQemu72) {
  ASSERT_EQ(t_.plug(t_.block(0), 2), RespType::Ack);
  t_.dev().wakeup_reset();
  EXPECT_EQ(t_.cfg().plugged_size, profile() == Profile::Qemu72 ? 0u : 4 * kMiB);
}

// --- Residency (D10) and DEV-20 --------------------------------------------------------------

TEST(DeviceResidencyTest, UnpluggedBlocksAreNotResidentEvenAfterACpuRead) {
  DeviceOptions o = small_options();
  o.unplugged_inaccessible = Tristate::Off;  // DEV-20: CPU reads of unplugged memory must work
  Testbed t = make_testbed(o);
  Backing& region = t.machine->device_region->backing;
  ASSERT_EQ(t.plug(t.block(0), 4), RespType::Ack);
  for (uint64_t b = 0; b < 4; ++b)
    std::fill_n(region.data() + b * 2 * kMiB, 2 * kMiB, 0x77);
  EXPECT_EQ(*region.resident_bytes(0, 8 * kMiB), 8 * kMiB);
  ASSERT_EQ(t.unplug(t.block(1), 2), RespType::Ack);
  EXPECT_EQ(*region.resident_bytes(2 * kMiB, 4 * kMiB), 0u);
  EXPECT_EQ(*region.resident_bytes_total(), 4 * kMiB);
  // A CPU read of unplugged usable memory works and maps only the zero page.
  std::vector<uint8_t> buf(2 * kMiB);
  ASSERT_TRUE(t.machine->mem.read(t.block(1), buf).has_value());
  EXPECT_EQ(buf, std::vector<uint8_t>(2 * kMiB, 0));
  ASSERT_TRUE(t.machine->mem.read(t.block(20), buf).has_value());
  EXPECT_EQ(*region.resident_bytes(2 * kMiB, 4 * kMiB), 0u);
  EXPECT_EQ(*region.resident_bytes(20 * 2 * kMiB, 2 * kMiB), 0u);
  EXPECT_EQ(*region.resident_bytes_total(), 4 * kMiB);
  ASSERT_EQ(t.unplug_all(), RespType::Ack);
  EXPECT_EQ(*region.resident_bytes_total(), 0u);
}

TEST(DeviceResidencyTest, SharedBackingIsPunched) {
  Testbed t = make_testbed(small_options(), BackingKind::Shared);
  Backing& region = t.machine->device_region->backing;
  ASSERT_EQ(t.plug(t.block(0), 2), RespType::Ack);
  std::fill_n(region.data(), 4 * kMiB, 0x11);
  EXPECT_EQ(*region.resident_bytes_total(), 4 * kMiB);
  ASSERT_EQ(t.unplug(t.block(0), 2), RespType::Ack);
  EXPECT_EQ(*region.resident_bytes_total(), 0u);
}

// --- Large regions (D5: 1 TiB, or 256 GiB under TSan) ----------------------------------------

class LargeRegionTest : public ::testing::TestWithParam<uint64_t> {};

TEST_P(LargeRegionTest, PlugUnplugAtBothEndsWithoutTouchingTheRest) {
  DeviceOptions o;
  o.addr = 1ULL << 40;
  o.region_size = large_region_size();
  o.block_size = GetParam();
  o.requested_size = o.region_size;
  Testbed t = make_testbed(o);
  ASSERT_TRUE(t.machine);
  const uint64_t last = o.region_size / o.block_size - 1;
  EXPECT_EQ(t.cfg().usable_region_size, o.region_size);
  EXPECT_EQ(t.plug(t.block(0), 65535), RespType::Ack);
  EXPECT_EQ(t.plug(t.block(last), 1), RespType::Ack);
  EXPECT_EQ(t.plug(t.block(last) + o.block_size, 1), RespType::Error);
  EXPECT_EQ(t.state(t.block(last - 1), 2).state, BlockState::Mixed);
  EXPECT_EQ(t.cfg().plugged_size, 65536 * o.block_size);
  EXPECT_EQ(t.dev().bitmap().count(), 65536u);
  // Nothing was written, so nothing is resident: the region costs no host memory.
  EXPECT_EQ(*t.machine->device_region->backing.resident_bytes_total(), 0u);
  std::vector<uint8_t> pattern(o.block_size, 0x3c);
  ASSERT_TRUE(t.machine->mem.write(t.block(last), pattern).has_value());
  EXPECT_EQ(*t.machine->device_region->backing.resident_bytes_total(), o.block_size);
  EXPECT_EQ(t.unplug_all(), RespType::Ack);
  EXPECT_EQ(t.cfg().plugged_size, 0u);
  EXPECT_EQ(*t.machine->device_region->backing.resident_bytes_total(), 0u);
}

INSTANTIATE_TEST_SUITE_P(BlockSizes, LargeRegionTest, ::testing::Values(2 * kMiB, 4096),
                         [](const auto& p) {
                           return std::to_string(large_region_size() >> 30) + "GiB_" +
                                  (p.param == 4096 ? std::string("4KiB") : std::string("2MiB"));
                         });

}  // namespace
}  // namespace vmem::testing

namespace vmem::testing {
namespace {

// DEV-7: region_size may be 0. Nothing is valid then, and UNPLUG_ALL still succeeds.
TEST(DeviceEdgeTest, EmptyRegion) {
  DeviceOptions o = small_options();
  o.region_size = 0;
  o.requested_size = 0;
  Testbed t = make_testbed(o);
  EXPECT_EQ(t.cfg().usable_region_size, 0u);
  EXPECT_EQ(t.plug(o.addr, 1), RespType::Error);
  EXPECT_EQ(t.state(o.addr, 1).type, RespType::Error);
  EXPECT_EQ(t.unplug_all(), RespType::Ack);
  EXPECT_FALSE(t.dev().set_requested_size(2 * kMiB).has_value());
}

TEST(DeviceEdgeTest, InvalidOptionsAreRefusedWithTheirName) {
  auto refused = [](DeviceOptions o, const char* what) {
    auto v = validate(o);
    EXPECT_FALSE(v.has_value()) << what;
    return v.has_value() ? std::string() : v.error().message;
  };
  DeviceOptions o = small_options();
  o.block_size = 3 * kMiB;
  EXPECT_NE(refused(o, "block size").find("block-size"), std::string::npos);
  o = small_options();
  o.addr += 4096;
  EXPECT_NE(refused(o, "addr").find("addr"), std::string::npos);
  o = small_options();
  o.requested_size = 2 * kGiB;
  EXPECT_NE(refused(o, "requested").find("requested-size"), std::string::npos);
  o = small_options();
  o.addr = 0 - kGiB;
  EXPECT_NE(refused(o, "wrap").find("wraps"), std::string::npos);
  o = small_options();
  o.fault = "range-end-off-by-one";
  EXPECT_NE(refused(o, "fault in the normal build").find("mutants build"), std::string::npos);
}

}  // namespace
}  // namespace vmem::testing
