#include "conformance/driver/transport_driver.h"

#include <fmt/format.h>

#include <optional>

#include "reference/transport/pci_host.h"
#include "reference/transport/virtio_mmio.h"
#include "reference/transport/virtio_pci.h"
#include "reference/virtio/virtio_device.h"

namespace vmem::conformance {

namespace {

Error fail(std::string what) {
  return Error{std::move(what)};
}

// --- virtio-pci modern --------------------------------------------------------------------

// Configuration mechanism #1: one dword address, then 1-4 bytes of data at 0xcfc + (reg & 3).
class PciConfigSpace {
 public:
  PciConfigSpace(Target& t, uint8_t slot) : t_(t), slot_(slot) {}

  Result<uint32_t> read(uint16_t reg, unsigned size) {
    VMEM_TRY(t_.io_write(PciHost::kConfigAddressPort, 4, address(reg)));
    return t_.io_read(static_cast<uint16_t>(PciHost::kConfigDataPort + (reg & 3)), size);
  }
  Status write(uint16_t reg, unsigned size, uint32_t value) {
    VMEM_TRY(t_.io_write(PciHost::kConfigAddressPort, 4, address(reg)));
    return t_.io_write(static_cast<uint16_t>(PciHost::kConfigDataPort + (reg & 3)), size, value);
  }

 private:
  uint32_t address(uint16_t reg) const {
    return 0x80000000u | (uint32_t{slot_} << 11) | (reg & 0xfcu);
  }
  Target& t_;
  uint8_t slot_;
};

struct PciStructures {
  std::optional<uint32_t> common, isr, device, notify;
  uint32_t notify_multiplier = 0;
};

class PciDriver final : public TransportDriver {
 public:
  PciDriver(Target& t, unsigned index, uint8_t slot, uint32_t device_id, uint64_t bar,
            const PciStructures& s)
      : t_(t),
        index_(index),
        slot_(slot),
        device_id_(device_id),
        common_(bar + *s.common),
        isr_(bar + *s.isr),
        device_(bar + *s.device),
        notify_(bar + *s.notify),
        multiplier_(s.notify_multiplier) {}

  std::string describe() const override {
    return fmt::format("virtio-pci 00:{:02x}.0, common cfg at {:#x}", slot_, common_);
  }
  uint32_t device_id() const override { return device_id_; }

  Result<uint8_t> status() override {
    VMEM_ASSIGN_OR_RETURN(uint64_t v, t_.mmio_read(common_ + common_cfg::device_status, 1));
    return static_cast<uint8_t>(v);
  }
  Status set_status(uint8_t s) override {
    return t_.mmio_write(common_ + common_cfg::device_status, 1, s);
  }
  Result<uint64_t> device_features() override {
    uint64_t f = 0;
    for (uint32_t sel = 0; sel < 2; ++sel) {
      VMEM_TRY(t_.mmio_write(common_ + common_cfg::device_feature_select, 4, sel));
      VMEM_ASSIGN_OR_RETURN(uint64_t v, t_.mmio_read(common_ + common_cfg::device_feature, 4));
      f |= (v & 0xffffffffu) << (32 * sel);
    }
    return f;
  }
  Status set_driver_features(uint64_t f) override {
    for (uint32_t sel = 0; sel < 2; ++sel) {
      VMEM_TRY(t_.mmio_write(common_ + common_cfg::driver_feature_select, 4, sel));
      VMEM_TRY(
          t_.mmio_write(common_ + common_cfg::driver_feature, 4, (f >> (32 * sel)) & 0xffffffffu));
    }
    return ok();
  }
  Result<uint32_t> config_generation() override {
    VMEM_ASSIGN_OR_RETURN(uint64_t v, t_.mmio_read(common_ + common_cfg::config_generation, 1));
    return static_cast<uint32_t>(v);
  }
  Result<uint64_t> config_read(uint32_t offset, unsigned size) override {
    return t_.mmio_read(device_ + offset, size);
  }
  Status config_write(uint32_t offset, unsigned size, uint64_t value) override {
    return t_.mmio_write(device_ + offset, size, value);
  }
  Result<uint16_t> queue_max_size(uint16_t q) override {
    VMEM_TRY(t_.mmio_write(common_ + common_cfg::queue_select, 2, q));
    VMEM_ASSIGN_OR_RETURN(uint64_t v, t_.mmio_read(common_ + common_cfg::queue_size, 2));
    return static_cast<uint16_t>(v);
  }
  Status setup_queue(uint16_t q, uint16_t size, uint64_t desc, uint64_t driver,
                     uint64_t device) override {
    VMEM_TRY(t_.mmio_write(common_ + common_cfg::queue_select, 2, q));
    VMEM_TRY(t_.mmio_write(common_ + common_cfg::queue_size, 2, size));
    // 64-bit fields as two dword writes: every transport implementation accepts those.
    for (auto [reg, v] :
         {std::pair{common_cfg::queue_desc, desc}, std::pair{common_cfg::queue_driver, driver},
          std::pair{common_cfg::queue_device, device}}) {
      VMEM_TRY(t_.mmio_write(common_ + reg, 4, v & 0xffffffffu));
      VMEM_TRY(t_.mmio_write(common_ + reg + 4, 4, v >> 32));
    }
    VMEM_ASSIGN_OR_RETURN(uint64_t off, t_.mmio_read(common_ + common_cfg::queue_notify_off, 2));
    notify_off_ = static_cast<uint16_t>(off);
    return t_.mmio_write(common_ + common_cfg::queue_enable, 2, 1);
  }
  Status notify(uint16_t q) override {
    return t_.mmio_write(notify_ + uint64_t{notify_off_} * multiplier_, 2, q);
  }
  Result<uint8_t> take_isr() override {
    VMEM_ASSIGN_OR_RETURN(uint64_t v, t_.mmio_read(isr_, 1));
    return static_cast<uint8_t>(v);
  }
  Result<bool> interrupt_line() override { return t_.interrupt_asserted(index_); }

 private:
  Target& t_;
  unsigned index_;
  uint8_t slot_;
  uint32_t device_id_;
  uint64_t common_, isr_, device_, notify_;
  uint32_t multiplier_;
  uint16_t notify_off_ = 0;
};

Result<PciStructures> walk_capabilities(PciConfigSpace& cfg) {
  VMEM_ASSIGN_OR_RETURN(uint32_t status, cfg.read(pci::kStatus, 2));
  if (!(status & pci::kStatusCapList)) return unexpected(fail("no capability list"));
  VMEM_ASSIGN_OR_RETURN(uint32_t pos, cfg.read(pci::kCapabilityPointer, 1));
  PciStructures s;
  // A hostile or broken device can build a loop: 48 capabilities is every slot there is.
  for (int n = 0; pos != 0 && n < 48; ++n) {
    if (pos < 0x40 || pos > 0xf0) return unexpected(fail(fmt::format("capability at {:#x}", pos)));
    VMEM_ASSIGN_OR_RETURN(uint32_t head, cfg.read(static_cast<uint16_t>(pos), 4));
    const uint8_t id = head & 0xff;
    const uint32_t next = (head >> 8) & 0xfc;
    if (id == pci::kCapVendor) {
      const auto type = static_cast<uint8_t>(head >> 24);
      VMEM_ASSIGN_OR_RETURN(uint32_t bar_word, cfg.read(static_cast<uint16_t>(pos + 4), 1));
      VMEM_ASSIGN_OR_RETURN(uint32_t offset, cfg.read(static_cast<uint16_t>(pos + 8), 4));
      const bool in_bar4 = (bar_word & 0xff) == VirtioPciTransport::kBar;
      switch (type) {
        case VIRTIO_PCI_CAP_COMMON_CFG:
          if (in_bar4) s.common = offset;
          break;
        case VIRTIO_PCI_CAP_ISR_CFG:
          if (in_bar4) s.isr = offset;
          break;
        case VIRTIO_PCI_CAP_DEVICE_CFG:
          if (in_bar4) s.device = offset;
          break;
        case VIRTIO_PCI_CAP_NOTIFY_CFG: {
          if (!in_bar4) break;
          s.notify = offset;
          VMEM_ASSIGN_OR_RETURN(s.notify_multiplier, cfg.read(static_cast<uint16_t>(pos + 16), 4));
          break;
        }
        default:
          break;
      }
    }
    pos = next;
  }
  if (!s.common || !s.isr || !s.device || !s.notify) {
    return unexpected(
        fail("the virtio capabilities do not all point into BAR 4 (common, isr, "
             "device, notify)"));
  }
  return s;
}

// --- virtio-mmio v2 -------------------------------------------------------------------------

class MmioDriver final : public TransportDriver {
 public:
  MmioDriver(Target& t, unsigned index, uint64_t base, uint32_t device_id)
      : t_(t), index_(index), base_(base), device_id_(device_id) {}

  std::string describe() const override { return fmt::format("virtio-mmio at {:#x}", base_); }
  uint32_t device_id() const override { return device_id_; }

  Result<uint8_t> status() override {
    VMEM_ASSIGN_OR_RETURN(uint32_t v, reg(mmio::kStatus));
    return static_cast<uint8_t>(v);
  }
  Status set_status(uint8_t s) override { return set(mmio::kStatus, s); }
  Result<uint64_t> device_features() override {
    uint64_t f = 0;
    for (uint32_t sel = 0; sel < 2; ++sel) {
      VMEM_TRY(set(mmio::kDeviceFeaturesSel, sel));
      VMEM_ASSIGN_OR_RETURN(uint32_t v, reg(mmio::kDeviceFeatures));
      f |= uint64_t{v} << (32 * sel);
    }
    return f;
  }
  Status set_driver_features(uint64_t f) override {
    for (uint32_t sel = 0; sel < 2; ++sel) {
      VMEM_TRY(set(mmio::kDriverFeaturesSel, sel));
      VMEM_TRY(set(mmio::kDriverFeatures, static_cast<uint32_t>(f >> (32 * sel))));
    }
    return ok();
  }
  Result<uint32_t> config_generation() override { return reg(mmio::kConfigGeneration); }
  Result<uint64_t> config_read(uint32_t offset, unsigned size) override {
    // virtio-mmio allows no 64-bit accesses: two 32-bit reads, low first.
    if (size == 8) {
      VMEM_ASSIGN_OR_RETURN(uint64_t lo, t_.mmio_read(base_ + mmio::kConfig + offset, 4));
      VMEM_ASSIGN_OR_RETURN(uint64_t hi, t_.mmio_read(base_ + mmio::kConfig + offset + 4, 4));
      return (lo & 0xffffffffu) | (hi << 32);
    }
    return t_.mmio_read(base_ + mmio::kConfig + offset, size);
  }
  Status config_write(uint32_t offset, unsigned size, uint64_t value) override {
    return t_.mmio_write(base_ + mmio::kConfig + offset, size, value);
  }
  Result<uint16_t> queue_max_size(uint16_t q) override {
    VMEM_TRY(set(mmio::kQueueSel, q));
    VMEM_ASSIGN_OR_RETURN(uint32_t v, reg(mmio::kQueueNumMax));
    return static_cast<uint16_t>(v);
  }
  Status setup_queue(uint16_t q, uint16_t size, uint64_t desc, uint64_t driver,
                     uint64_t device) override {
    VMEM_TRY(set(mmio::kQueueSel, q));
    VMEM_TRY(set(mmio::kQueueNum, size));
    for (auto [lo, v] :
         {std::pair{mmio::kQueueDescLow, desc}, std::pair{mmio::kQueueDriverLow, driver},
          std::pair{mmio::kQueueDeviceLow, device}}) {
      VMEM_TRY(set(lo, static_cast<uint32_t>(v)));
      VMEM_TRY(set(lo + 4, static_cast<uint32_t>(v >> 32)));
    }
    return set(mmio::kQueueReady, 1);
  }
  Status notify(uint16_t q) override { return set(mmio::kQueueNotify, q); }
  Result<uint8_t> take_isr() override {
    VMEM_ASSIGN_OR_RETURN(uint32_t v, reg(mmio::kInterruptStatus));
    if (v != 0) VMEM_TRY(set(mmio::kInterruptAck, v));
    return static_cast<uint8_t>(v);
  }
  Result<bool> interrupt_line() override { return t_.interrupt_asserted(index_); }

 private:
  Result<uint32_t> reg(uint32_t offset) {
    VMEM_ASSIGN_OR_RETURN(uint64_t v, t_.mmio_read(base_ + offset, 4));
    return static_cast<uint32_t>(v);
  }
  Status set(uint32_t offset, uint32_t v) { return t_.mmio_write(base_ + offset, 4, v); }

  Target& t_;
  unsigned index_;
  uint64_t base_;
  uint32_t device_id_;
};

}  // namespace

Result<std::unique_ptr<TransportDriver>> probe_pci(Target& target, const MachineLayout& layout,
                                                   uint32_t device_id, unsigned index) {
  const uint32_t want = pci::kVendorRedHatQumranet | (pci::kModernDeviceIdBase + device_id) << 16;
  unsigned seen = 0;
  for (uint8_t slot = 0; slot < 32; ++slot) {
    PciConfigSpace cfg(target, slot);
    VMEM_ASSIGN_OR_RETURN(uint32_t ids, cfg.read(0, 4));
    if (ids != want || seen++ != index) continue;

    VMEM_ASSIGN_OR_RETURN(PciStructures s, walk_capabilities(cfg));
    // Size BAR 4 (64-bit memory), then map it in this device's part of the BAR window.
    const uint16_t bar_reg = pci::kBar0 + 4 * VirtioPciTransport::kBar;
    VMEM_TRY(cfg.write(bar_reg, 4, 0xffffffffu));
    VMEM_ASSIGN_OR_RETURN(uint32_t probe_lo, cfg.read(bar_reg, 4));
    if ((probe_lo & 0x1) != 0 || (probe_lo & 0x6) != 0x4) {
      return unexpected(fail(fmt::format("BAR 4 reads {:#x}: not 64-bit memory", probe_lo)));
    }
    const uint64_t size = (uint64_t{~(probe_lo & ~0xfu)} + 1) & 0xffffffffu;
    if (size == 0 || size > (16ULL << 20) || (size & (size - 1)) != 0)
      return unexpected(
          fail(fmt::format("BAR 4 size {:#x} is not a power of two <= 16 MiB", size)));
    const uint64_t bar = layout.bar_window + uint64_t{index} * (16ULL << 20);
    VMEM_TRY(cfg.write(bar_reg, 4, static_cast<uint32_t>(bar)));
    VMEM_TRY(cfg.write(bar_reg + 4, 4, static_cast<uint32_t>(bar >> 32)));
    for (uint32_t off : {*s.common, *s.isr, *s.device, *s.notify}) {
      if (off >= size) {
        return unexpected(
            fail(fmt::format("a capability points at {:#x}, past BAR 4's {:#x} bytes", off, size)));
      }
    }
    VMEM_TRY(cfg.write(pci::kCommand, 2, pci::kCommandMemory | pci::kCommandBusMaster));
    return std::unique_ptr<TransportDriver>(
        std::make_unique<PciDriver>(target, index, slot, device_id, bar, s));
  }
  return unexpected(fail(fmt::format("no virtio-pci device {} (1af4:{:04x}) number {} on bus 0",
                                     device_id, pci::kModernDeviceIdBase + device_id, index)));
}

Result<std::unique_ptr<TransportDriver>> probe_mmio(Target& target, const MachineLayout& layout,
                                                    uint32_t device_id, unsigned index) {
  if (index >= layout.mmio_bases.size())
    return unexpected(fail(fmt::format("the target lists no virtio-mmio device {}", index)));
  const uint64_t base = layout.mmio_bases[index];
  VMEM_ASSIGN_OR_RETURN(uint64_t magic, target.mmio_read(base + mmio::kMagicValue, 4));
  if (magic != mmio::kMagic)
    return unexpected(fail(fmt::format("magic {:#x} at {:#x}", magic, base)));
  VMEM_ASSIGN_OR_RETURN(uint64_t version, target.mmio_read(base + mmio::kVersion, 4));
  if (version != 2) {
    return unexpected(fail(
        fmt::format("virtio-mmio version {} at {:#x} (only 2, modern, is tested)", version, base)));
  }
  VMEM_ASSIGN_OR_RETURN(uint64_t id, target.mmio_read(base + mmio::kDeviceId, 4));
  if (id != device_id)
    return unexpected(fail(fmt::format("device ID {} at {:#x}, expected {}", id, base, device_id)));
  return std::unique_ptr<TransportDriver>(
      std::make_unique<MmioDriver>(target, index, base, device_id));
}

Result<std::unique_ptr<TransportDriver>> probe(Target& target, const MachineLayout& layout,
                                               uint32_t device_id, unsigned index) {
  return layout.transport == Transport::Pci ? probe_pci(target, layout, device_id, index)
                                            : probe_mmio(target, layout, device_id, index);
}

}  // namespace vmem::conformance
