// Fuzz target `transport`: register-level reads and writes to the reference device behind
// virtio-pci (its configuration space and BAR 4) or virtio-mmio, in any order and of any width:
// status transitions out of order, feature negotiation after FEATURES_OK, queues set up and
// notified with rings anywhere in guest memory, host resizes in between.
// Oracles after every access, the generic rules as a driver sees them:
// - a status write of 0 resets: status, driver features and ISR read 0;
// - any other status write reads back as written, or (a refused FEATURES_OK, 3.1.1) as before,
//   with DEVICE_NEEDS_RESET possibly added by the device;
// - while FEATURES_OK reads set, the driver features are a subset of the offered ones, include
//   VERSION_1, and do not change;
// - the device only ever sets NEEDS_RESET with a reason, and the invariant checker finds nothing.
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "fuzz/common/fuzz_support.h"
#include "reference/check/invariants.h"
#include "reference/mem/machine.h"
#include "reference/transport/virtio_mmio.h"
#include "reference/transport/virtio_pci.h"

namespace {

using namespace vmem;

[[noreturn]] void fail(const char* what, const std::string& detail = {}) {
  fuzz::oracle_failure("transport", what, detail);
}

// The registers a driver uses, so most accesses hit one (the rest go anywhere).
constexpr std::array kPciBar = {
    VirtioPciTransport::kCommonOffset + common_cfg::device_feature_select,
    VirtioPciTransport::kCommonOffset + common_cfg::device_feature,
    VirtioPciTransport::kCommonOffset + common_cfg::driver_feature_select,
    VirtioPciTransport::kCommonOffset + common_cfg::driver_feature,
    VirtioPciTransport::kCommonOffset + common_cfg::device_status,
    VirtioPciTransport::kCommonOffset + common_cfg::config_generation,
    VirtioPciTransport::kCommonOffset + common_cfg::queue_select,
    VirtioPciTransport::kCommonOffset + common_cfg::queue_size,
    VirtioPciTransport::kCommonOffset + common_cfg::queue_enable,
    VirtioPciTransport::kCommonOffset + common_cfg::queue_desc,
    VirtioPciTransport::kCommonOffset + common_cfg::queue_driver,
    VirtioPciTransport::kCommonOffset + common_cfg::queue_device,
    VirtioPciTransport::kIsrOffset,
    VirtioPciTransport::kDeviceOffset,
    VirtioPciTransport::kDeviceOffset + 0x28,
    VirtioPciTransport::kNotifyOffset,
};
constexpr std::array kMmio = {
    mmio::kDeviceFeatures,   mmio::kDeviceFeaturesSel,
    mmio::kDriverFeatures,   mmio::kDriverFeaturesSel,
    mmio::kQueueSel,         mmio::kQueueNum,
    mmio::kQueueReady,       mmio::kQueueNotify,
    mmio::kInterruptStatus,  mmio::kInterruptAck,
    mmio::kStatus,           mmio::kQueueDescLow,
    mmio::kQueueDriverLow,   mmio::kQueueDeviceLow,
    mmio::kConfigGeneration, mmio::kConfig,
};

// Where the two transports keep the device status register.
struct StatusRegister {
  uint64_t offset;
  unsigned size;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::InputBytes in(data, size);
  const bool pci = (in.take(1) & 1) == 0;
  DeviceOptions o;
  o.region_size = 256ULL << 20;
  o.requested_size = 64ULL << 20;
  auto m = Machine::create(o, BackingKind::Null);
  if (!m.has_value()) fail("cannot build the device", m.error().message);
  VirtioMemDevice& dev = *(*m)->device;
  InvariantChecker checker(dev);
  std::unique_ptr<VirtioPciTransport> p;
  std::unique_ptr<VirtioMmioTransport> mm;
  if (pci) {
    p = std::make_unique<VirtioPciTransport>(dev);
  } else {
    mm = std::make_unique<VirtioMmioTransport>(dev);
  }
  const StatusRegister status_reg =
      pci ? StatusRegister{VirtioPciTransport::kCommonOffset + common_cfg::device_status, 1}
          : StatusRegister{mmio::kStatus, 4};
  bool negotiated = false;  // FEATURES_OK read set after the previous access,
  uint64_t frozen = 0;      // with these driver features

  for (int step = 0; step < 512 && !in.empty(); ++step) {
    const auto op = static_cast<uint8_t>(in.take(1));
    const unsigned width = 1u << (op >> 3 & 3);
    const auto pick = static_cast<uint8_t>(in.take(1));
    uint64_t offset = 0;
    if (pci) {
      offset =
          pick < 0xc0 ? kPciBar[pick % kPciBar.size()] : in.take(2) % VirtioPciTransport::kBarSize;
    } else {
      offset = pick < 0xc0 ? kMmio[pick % kMmio.size()] : in.take(2) % mmio::kWindowSize;
    }
    const uint8_t before = dev.status();
    switch (op & 7) {
      case 0:
      case 1:  // a read
        if (pci) {
          (void)p->bar_read(offset, width);
        } else {
          (void)mm->read(offset, width);
        }
        break;
      case 2:
      case 3:
      case 4: {  // a write
        const uint64_t value = in.take(width);
        if (pci) {
          p->bar_write(offset, width, value);
        } else {
          mm->write(offset, width, value);
        }
        if (offset == status_reg.offset && width == status_reg.size) {
          const auto wrote = static_cast<uint8_t>(value);
          const uint8_t now = dev.status();
          const auto plain = [](uint8_t s) {
            return static_cast<uint8_t>(s & ~VIRTIO_CONFIG_S_NEEDS_RESET);
          };
          if (wrote == 0) {
            if (now != 0 || dev.driver_features() != 0 || dev.isr() != 0)
              fail("a status write of 0 did not reset the device");
          } else if (plain(now) != plain(wrote) && plain(now) != plain(before)) {
            fail("status reads back neither as written nor as before",
                 std::to_string(wrote) + " -> " + std::to_string(now));
          }
        }
        break;
      }
      case 5: {  // PCI configuration space (the capability list, BAR and command registers)
        const auto reg = static_cast<uint32_t>(in.take(1));
        const unsigned w = width > 4 ? 4 : width;
        if (pci) {
          if (op & 0x80) {
            p->config_write(reg, w, static_cast<uint32_t>(in.take(w)));
          } else {
            (void)p->config_read(reg, w);
          }
        }
        break;
      }
      case 6:  // the host resizes
        (void)dev.set_requested_size((in.take(2) % 129) * o.block_size);
        break;
      default:  // the host resets the machine
        dev.system_reset();
        break;
    }
    const uint8_t s = dev.status();
    if (std::getenv("VMEM_FUZZ_VERBOSE") != nullptr) {
      std::fprintf(stderr, "transport: op %#x at %#llx -> status %#x, config interrupts %llu\n", op,
                   static_cast<unsigned long long>(offset), s,
                   static_cast<unsigned long long>(dev.counters().config_interrupts));
    }
    if (s & VIRTIO_CONFIG_S_FEATURES_OK) {
      const uint64_t f = dev.driver_features();
      if (f & ~dev.device_features()) fail("FEATURES_OK with features the device did not offer");
      if (!(f & feature_bit(VIRTIO_F_VERSION_1))) fail("FEATURES_OK without VERSION_1");
      if (negotiated && frozen != f) fail("driver features changed after FEATURES_OK");
      negotiated = true;
      frozen = f;
    } else {
      negotiated = false;
    }
    if ((s & VIRTIO_CONFIG_S_NEEDS_RESET) && dev.broken_reason().empty())
      fail("DEVICE_NEEDS_RESET without a reason");
    const auto v = checker.check_incremental();
    if (!v.empty()) fail("invariant violated", to_string(v[0]));
  }
  return 0;
}
