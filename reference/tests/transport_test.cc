// The transports at register level: a driver that knows only registers finds, sets up and uses
// the reference device over virtio-pci (through port I/O and BAR accesses) and virtio-mmio.
#include <gtest/gtest.h>

#include "reference/tests/testbed.h"
#include "reference/transport/pci_host.h"
#include "reference/transport/virtio_mmio.h"

namespace vmem::testing {
namespace {

constexpr uint64_t kBarBase = 0xe0000000;
constexpr uint8_t kSlot = 1;

class PciTest : public ::testing::Test {
 protected:
  void SetUp() override {
    t_ = make_testbed(small_options(), BackingKind::Anonymous, false);
    pci_ = std::make_unique<VirtioPciTransport>(t_.dev());
    ASSERT_TRUE(host_.attach(kSlot, *pci_));
    pci_->set_intx_callback([this](bool level) {
      intx_ = level;
      ++intx_edges_;
    });
  }

  uint32_t cfg_read(uint8_t slot, uint8_t off, unsigned size = 4) {
    host_.io_write(PciHost::kConfigAddressPort, 4,
                   0x80000000u | uint32_t{slot} << 11 | (off & 0xfc));
    return host_.io_read(static_cast<uint16_t>(PciHost::kConfigDataPort + (off & 3)), size);
  }
  void cfg_write(uint8_t slot, uint8_t off, unsigned size, uint32_t v) {
    host_.io_write(PciHost::kConfigAddressPort, 4,
                   0x80000000u | uint32_t{slot} << 11 | (off & 0xfc));
    host_.io_write(static_cast<uint16_t>(PciHost::kConfigDataPort + (off & 3)), size, v);
  }
  uint64_t rd(uint64_t off, unsigned size) {
    return host_.mmio_read(kBarBase + off, size).value_or(~0ULL);
  }
  void wr(uint64_t off, unsigned size, uint64_t v) {
    ASSERT_TRUE(host_.mmio_write(kBarBase + off, size, v));
  }

  void map_bar() {
    cfg_write(kSlot, 0x20, 4, 0xffffffff);
    cfg_write(kSlot, 0x24, 4, 0xffffffff);
    EXPECT_EQ(cfg_read(kSlot, 0x20), 0xffffc00cu) << "BAR 4: 16 KiB, 64-bit prefetchable memory";
    EXPECT_EQ(cfg_read(kSlot, 0x24), 0xffffffffu);
    cfg_write(kSlot, 0x20, 4, kBarBase);
    cfg_write(kSlot, 0x24, 4, 0);
    cfg_write(kSlot, 0x04, 2, pci::kCommandMemory | pci::kCommandBusMaster);
  }

  // The driver initialization of 3.1.1 through the common configuration structure.
  void init(uint64_t features) {
    using namespace common_cfg;
    const uint64_t common = VirtioPciTransport::kCommonOffset;
    wr(common + device_status, 1, 0);
    wr(common + device_status, 1, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
    wr(common + driver_feature_select, 4, 0);
    wr(common + driver_feature, 4, features & 0xffffffff);
    wr(common + driver_feature_select, 4, 1);
    wr(common + driver_feature, 4, features >> 32);
    wr(common + device_status, 1,
       VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK);
    ASSERT_TRUE(rd(common + device_status, 1) & VIRTIO_CONFIG_S_FEATURES_OK);
    wr(common + queue_select, 2, 0);
    EXPECT_EQ(rd(common + queue_size, 2), 128u);
    DriverQueue& q = t_.drv().queue();
    q.reset();
    wr(common + queue_size, 2, q.size());
    wr(common + queue_desc, 8, q.desc_table());
    wr(common + queue_driver, 4, q.avail_ring());
    wr(common + queue_driver + 4, 4, 0);
    wr(common + queue_device, 8, q.used_ring());
    wr(common + queue_enable, 2, 1);
    EXPECT_EQ(rd(common + queue_enable, 2), 1u);
    wr(common + device_status, 1, 0x0f);
  }

  Response request(uint16_t type, uint64_t addr, uint16_t nb) {
    DriverQueue& q = t_.drv().queue();
    auto head = q.build_chain(0, encode_request({type, {}, addr, nb, {}}), {{24}, {10}, false});
    q.publish(*head);
    const uint64_t notify_off = rd(common_cfg::queue_notify_off, 2);
    wr(VirtioPciTransport::kNotifyOffset + notify_off * VirtioPciTransport::kNotifyOffMultiplier, 2,
       0);
    auto used = q.pop_used();
    EXPECT_TRUE(used.has_value());
    auto raw = q.read_response(*head, 10);
    const auto w = decode_response(std::span<const uint8_t, kResponseSize>(raw.data(), 10));
    return {static_cast<RespType>(w.type), static_cast<BlockState>(w.state)};
  }

  Testbed t_;
  PciHost host_;
  std::unique_ptr<VirtioPciTransport> pci_;
  bool intx_ = false;
  int intx_edges_ = 0;
};

TEST_F(PciTest, ScanFindsHostBridgeAndTheDevice) {
  EXPECT_EQ(cfg_read(0, 0), 0x29c08086u);
  EXPECT_EQ(cfg_read(kSlot, 0), 0x10581af4u) << "virtio modern device id 0x1040 + 24";
  EXPECT_EQ(cfg_read(kSlot, 0x08) >> 24, 0xffu);
  EXPECT_EQ(cfg_read(kSlot, 0x08) & 0xff, 1u) << "revision 1: modern";
  EXPECT_EQ(cfg_read(kSlot, 0x2c), 0x11001af4u);
  EXPECT_EQ(cfg_read(2, 0), 0xffffffffu) << "an empty slot";
  EXPECT_EQ(cfg_read(kSlot, 0x3d, 1), 1u) << "interrupt pin A";
}

TEST_F(PciTest, CapabilitiesDescribeBar4AsQemuDoes) {
  EXPECT_TRUE(cfg_read(kSlot, 0x06, 2) & pci::kStatusCapList);
  struct Cap {
    uint8_t type, bar;
    uint32_t offset, length;
  };
  std::vector<Cap> found;
  uint32_t notify_mult = 0;
  for (uint8_t pos = static_cast<uint8_t>(cfg_read(kSlot, 0x34, 1)); pos != 0;
       pos = static_cast<uint8_t>(cfg_read(kSlot, pos + 1, 1))) {
    ASSERT_EQ(cfg_read(kSlot, pos, 1), pci::kCapVendor);
    Cap c{static_cast<uint8_t>(cfg_read(kSlot, pos + 3, 1)),
          static_cast<uint8_t>(cfg_read(kSlot, pos + 4, 1)), cfg_read(kSlot, pos + 8),
          cfg_read(kSlot, pos + 12)};
    if (c.type == VIRTIO_PCI_CAP_NOTIFY_CFG) notify_mult = cfg_read(kSlot, pos + 16);
    found.push_back(c);
    ASSERT_LT(found.size(), 16u) << "capability list loops";
  }
  ASSERT_EQ(found.size(), 5u);
  EXPECT_EQ(found[0].type, VIRTIO_PCI_CAP_COMMON_CFG);
  EXPECT_EQ(found[0].bar, 4);
  EXPECT_EQ(found[1].type, VIRTIO_PCI_CAP_ISR_CFG);
  EXPECT_EQ(found[1].offset, 0x1000u);
  EXPECT_EQ(found[2].type, VIRTIO_PCI_CAP_DEVICE_CFG);
  EXPECT_EQ(found[2].offset, 0x2000u);
  EXPECT_EQ(found[3].type, VIRTIO_PCI_CAP_NOTIFY_CFG);
  EXPECT_EQ(found[3].offset, 0x3000u);
  EXPECT_EQ(notify_mult, 4u);
  EXPECT_EQ(found[4].type, VIRTIO_PCI_CAP_PCI_CFG);
}

TEST_F(PciTest, BarIsUnmappedUntilMemoryDecodingIsOn) {
  cfg_write(kSlot, 0x20, 4, kBarBase);
  EXPECT_FALSE(host_.mmio_read(kBarBase, 4).has_value());
  cfg_write(kSlot, 0x04, 2, pci::kCommandMemory);
  EXPECT_TRUE(host_.mmio_read(kBarBase, 4).has_value());
}

TEST_F(PciTest, FullInitializationAndRequests) {
  map_bar();
  init(t_.dev().device_features());
  EXPECT_EQ(rd(common_cfg::device_status, 1), 0x0fu);
  EXPECT_EQ(rd(common_cfg::num_queues, 2), 1u);
  EXPECT_EQ(rd(common_cfg::config_msix_vector, 2), VIRTIO_MSI_NO_VECTOR);
  EXPECT_EQ(rd(VirtioPciTransport::kDeviceOffset + config_offset::block_size, 8), 2 * kMiB);
  EXPECT_EQ(request(VIRTIO_MEM_REQ_PLUG, t_.block(0), 2).type, RespType::Ack);
  EXPECT_EQ(rd(VirtioPciTransport::kDeviceOffset + config_offset::plugged_size, 4), 4 * kMiB);
  EXPECT_TRUE(intx_) << "the used buffer raised INTx";
  EXPECT_EQ(rd(VirtioPciTransport::kIsrOffset, 1), VIRTIO_ISR_QUEUE);
  EXPECT_FALSE(intx_) << "reading the ISR lowers INTx";
  EXPECT_EQ(rd(VirtioPciTransport::kIsrOffset, 1), 0u);
  EXPECT_EQ(request(VIRTIO_MEM_REQ_STATE, t_.block(0), 3),
            (Response{RespType::Ack, BlockState::Mixed}));
}

TEST_F(PciTest, ConfigChangeRaisesIsrBitOneAndTheGeneration) {
  map_bar();
  init(t_.dev().device_features());
  (void)rd(VirtioPciTransport::kIsrOffset, 1);
  const uint64_t gen = rd(common_cfg::config_generation, 1);
  ASSERT_TRUE(t_.dev().set_requested_size(256 * kMiB).has_value());
  EXPECT_NE(rd(common_cfg::config_generation, 1), gen);
  EXPECT_TRUE(intx_);
  EXPECT_EQ(rd(VirtioPciTransport::kIsrOffset, 1), VIRTIO_ISR_CONFIG);
}

TEST_F(PciTest, IntxDisableMasksThePin) {
  map_bar();
  init(t_.dev().device_features());
  cfg_write(kSlot, 0x04, 2,
            pci::kCommandMemory | pci::kCommandBusMaster | pci::kCommandIntxDisable);
  ASSERT_TRUE(t_.dev().set_requested_size(256 * kMiB).has_value());
  EXPECT_FALSE(intx_);
  EXPECT_TRUE(cfg_read(kSlot, 0x06, 2) & pci::kStatusInterrupt) << "status still shows it";
}

TEST_F(PciTest, RefusedFeaturesLeaveFeaturesOkClear) {
  map_bar();
  using namespace common_cfg;
  wr(device_status, 1, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
  wr(driver_feature_select, 4, 1);
  wr(driver_feature, 4, 1);  // VERSION_1 only: UNPLUGGED_INACCESSIBLE is not accepted
  wr(device_status, 1,
     VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK);
  EXPECT_EQ(rd(device_status, 1), 3u);
}

TEST_F(PciTest, EnablingABadQueueBreaksTheDevice) {
  map_bar();
  using namespace common_cfg;
  wr(device_status, 1, 3);
  wr(queue_size, 2, 100);  // not a power of two
  wr(queue_enable, 2, 1);
  EXPECT_EQ(rd(queue_enable, 2), 0u);
  EXPECT_TRUE(rd(device_status, 1) & VIRTIO_CONFIG_S_NEEDS_RESET);
}

TEST_F(PciTest, PciCfgCapabilityReachesTheBar) {
  map_bar();
  // Read device_feature (dword) and the device config's block_size low dword via the window.
  cfg_write(kSlot, 0x84 + 4, 1, 4);
  cfg_write(kSlot, 0x84 + 12, 4, 4);
  cfg_write(kSlot, 0x84 + 8, 4, VirtioPciTransport::kDeviceOffset);
  EXPECT_EQ(cfg_read(kSlot, 0x84 + 16), 2 * kMiB);
  cfg_write(kSlot, 0x84 + 8, 4, common_cfg::device_feature_select);
  cfg_write(kSlot, 0x84 + 16, 4, 1);
  EXPECT_EQ(rd(common_cfg::device_feature, 4), t_.dev().device_features() >> 32);
}

TEST_F(PciTest, ResetClearsBarAndCommand) {
  map_bar();
  init(t_.dev().device_features());
  ASSERT_EQ(request(VIRTIO_MEM_REQ_PLUG, t_.block(0), 1).type, RespType::Ack);
  host_.reset();
  EXPECT_EQ(cfg_read(kSlot, 0x20), 0xcu);
  EXPECT_EQ(cfg_read(kSlot, 0x04, 2), 0u);
  EXPECT_EQ(t_.dev().status(), 0);
  EXPECT_EQ(t_.cfg().plugged_size, 2 * kMiB) << "a device reset keeps blocks (DEV-13)";
}

// --- virtio-mmio ----------------------------------------------------------------------------

TEST(MmioTest, IdentityRegisters) {
  Testbed t = make_testbed(small_options(), BackingKind::Anonymous, false);
  VirtioMmioTransport m(t.dev());
  EXPECT_EQ(m.read(mmio::kMagicValue, 4), mmio::kMagic);
  EXPECT_EQ(m.read(mmio::kVersion, 4), 2u);
  EXPECT_EQ(m.read(mmio::kDeviceId, 4), VIRTIO_ID_MEM);
  EXPECT_EQ(m.read(mmio::kQueueNumMax, 4), 128u);
  EXPECT_EQ(m.read(mmio::kMagicValue, 2), 0u) << "registers are 32 bits wide";
  EXPECT_EQ(m.read(mmio::kShmLenLow, 4), 0xffffffffu);
  EXPECT_EQ(m.read(mmio::kConfig + config_offset::block_size, 8), 2 * kMiB);
  EXPECT_EQ(m.read(mmio::kConfig + config_offset::block_size + 2, 1), 0x20u);
}

TEST(MmioTest, InitializationRequestsAndInterrupts) {
  Testbed t = make_testbed(small_options(), BackingKind::Anonymous, false);
  VirtioMmioTransport m(t.dev());
  bool irq = false;
  m.set_interrupt_callback([&](bool level) { irq = level; });
  const uint64_t f = t.dev().device_features();
  m.write(mmio::kStatus, 4, 0);
  m.write(mmio::kStatus, 4, 3);
  m.write(mmio::kDriverFeaturesSel, 4, 0);
  m.write(mmio::kDriverFeatures, 4, f & 0xffffffff);
  m.write(mmio::kDriverFeaturesSel, 4, 1);
  m.write(mmio::kDriverFeatures, 4, f >> 32);
  m.write(mmio::kStatus, 4, 0xb);
  ASSERT_EQ(m.read(mmio::kStatus, 4), 0xbu);
  DriverQueue& q = t.drv().queue();
  q.reset();
  m.write(mmio::kQueueSel, 4, 0);
  m.write(mmio::kQueueNum, 4, q.size());
  m.write(mmio::kQueueDescLow, 4, q.desc_table());
  m.write(mmio::kQueueDescHigh, 4, 0);
  m.write(mmio::kQueueDriverLow, 4, q.avail_ring());
  m.write(mmio::kQueueDeviceLow, 4, q.used_ring());
  m.write(mmio::kQueueReady, 4, 1);
  ASSERT_EQ(m.read(mmio::kQueueReady, 4), 1u);
  m.write(mmio::kStatus, 4, 0xf);

  auto head = q.build_chain(0, encode_request({VIRTIO_MEM_REQ_PLUG, {}, t.block(3), 1, {}}),
                            {{24}, {10}, false});
  q.publish(*head);
  m.write(mmio::kQueueNotify, 4, 0);
  ASSERT_TRUE(q.pop_used().has_value());
  EXPECT_EQ(t.cfg().plugged_size, 2 * kMiB);
  EXPECT_TRUE(irq);
  EXPECT_EQ(m.read(mmio::kInterruptStatus, 4), VIRTIO_ISR_QUEUE);
  m.write(mmio::kInterruptAck, 4, VIRTIO_ISR_QUEUE);
  EXPECT_FALSE(irq);
  const uint64_t gen = m.read(mmio::kConfigGeneration, 4);
  ASSERT_TRUE(t.dev().set_requested_size(512 * kMiB).has_value());
  EXPECT_NE(m.read(mmio::kConfigGeneration, 4), gen);
  EXPECT_EQ(m.read(mmio::kInterruptStatus, 4), VIRTIO_ISR_CONFIG);
  EXPECT_EQ(m.read(mmio::kConfig + config_offset::requested_size, 4), 512 * kMiB);
}

}  // namespace
}  // namespace vmem::testing
