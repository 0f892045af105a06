// virtio over PCI, modern interface only (virtio 1.2+, section 4.1), at register level: the
// function's configuration space with the five virtio capabilities, and BAR 4 holding the common
// configuration, ISR, device configuration and notification structures, laid out as QEMU lays
// out virtio-mem-pci. A driver talks to it exactly as it would to QEMU's device. It knows no
// device type: it speaks to a VirtioDevice.
//
// Interrupts: INTx pin A only (QEMU 7.2's virtio-mem-pci has no MSI-X either); the level follows
// the ISR and the command register's INTx-disable bit.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>

#include "reference/virtio/virtio_device.h"

VMEM_NAMESPACE_BEGIN

namespace pci {
inline constexpr uint16_t kVendorRedHatQumranet = 0x1af4;
inline constexpr uint16_t kModernDeviceIdBase = 0x1040;
inline constexpr uint16_t kCommand = 0x04;
inline constexpr uint16_t kStatus = 0x06;
inline constexpr uint16_t kCommandIo = 1 << 0;
inline constexpr uint16_t kCommandMemory = 1 << 1;
inline constexpr uint16_t kCommandBusMaster = 1 << 2;
inline constexpr uint16_t kCommandIntxDisable = 1 << 10;
inline constexpr uint16_t kStatusInterrupt = 1 << 3;
inline constexpr uint16_t kStatusCapList = 1 << 4;
inline constexpr uint16_t kBar0 = 0x10;
inline constexpr uint16_t kCapabilityPointer = 0x34;
inline constexpr uint16_t kInterruptLine = 0x3c;
inline constexpr uint8_t kCapVendor = 0x09;
}  // namespace pci

// virtio_pci_cap cfg_type values.
inline constexpr uint8_t VIRTIO_PCI_CAP_COMMON_CFG = 1;
inline constexpr uint8_t VIRTIO_PCI_CAP_NOTIFY_CFG = 2;
inline constexpr uint8_t VIRTIO_PCI_CAP_ISR_CFG = 3;
inline constexpr uint8_t VIRTIO_PCI_CAP_DEVICE_CFG = 4;
inline constexpr uint8_t VIRTIO_PCI_CAP_PCI_CFG = 5;

// Offsets in struct virtio_pci_common_cfg.
namespace common_cfg {
inline constexpr uint32_t device_feature_select = 0x00;
inline constexpr uint32_t device_feature = 0x04;
inline constexpr uint32_t driver_feature_select = 0x08;
inline constexpr uint32_t driver_feature = 0x0c;
inline constexpr uint32_t config_msix_vector = 0x10;
inline constexpr uint32_t num_queues = 0x12;
inline constexpr uint32_t device_status = 0x14;
inline constexpr uint32_t config_generation = 0x15;
inline constexpr uint32_t queue_select = 0x16;
inline constexpr uint32_t queue_size = 0x18;
inline constexpr uint32_t queue_msix_vector = 0x1a;
inline constexpr uint32_t queue_enable = 0x1c;
inline constexpr uint32_t queue_notify_off = 0x1e;
inline constexpr uint32_t queue_desc = 0x20;
inline constexpr uint32_t queue_driver = 0x28;
inline constexpr uint32_t queue_device = 0x30;
}  // namespace common_cfg

inline constexpr uint16_t VIRTIO_MSI_NO_VECTOR = 0xffff;

class VirtioPciTransport final : public InterruptLine {
 public:
  // BAR 4 layout, as QEMU's: four 4 KiB structures.
  static constexpr uint8_t kBar = 4;
  static constexpr uint64_t kBarSize = 0x4000;
  static constexpr uint32_t kCommonOffset = 0x0000;
  static constexpr uint32_t kIsrOffset = 0x1000;
  static constexpr uint32_t kDeviceOffset = 0x2000;
  static constexpr uint32_t kNotifyOffset = 0x3000;
  static constexpr uint32_t kStructureSize = 0x1000;
  static constexpr uint32_t kNotifyOffMultiplier = 4;

  explicit VirtioPciTransport(VirtioDevice& device);
  ~VirtioPciTransport() override;
  VirtioPciTransport(const VirtioPciTransport&) = delete;
  VirtioPciTransport& operator=(const VirtioPciTransport&) = delete;

  // PCI configuration space of the function (256 bytes); accesses of 1, 2 or 4 bytes.
  uint32_t config_read(uint32_t offset, unsigned size);
  void config_write(uint32_t offset, unsigned size, uint32_t value);

  // The guest-physical address BAR 4 is mapped at, when memory decoding is on.
  std::optional<uint64_t> bar_address() const;
  // Accesses inside BAR 4 (offset from its start); 1, 2, 4 or 8 bytes.
  uint64_t bar_read(uint64_t offset, unsigned size);
  void bar_write(uint64_t offset, unsigned size, uint64_t value);

  bool intx_asserted() const;
  // Called with the INTx level whenever it changes.
  void set_intx_callback(std::function<void(bool)> cb) { intx_cb_ = std::move(cb); }

  // A PCI reset of the function: command, BARs and interrupt line cleared, device reset.
  void reset();

  VirtioDevice& device() { return device_; }

 private:
  // InterruptLine
  void set_level(bool asserted) override;
  void update_intx();  // intx_mu_ held

  uint32_t common_read(uint32_t offset);
  void common_write(uint32_t offset, unsigned size, uint32_t value);
  void enable_queue(uint16_t index);
  uint32_t read_header(uint32_t offset) const;  // dword-aligned

  VirtioDevice& device_;
  std::array<uint8_t, 256> caps_{};  // capability area, built once
  uint16_t command_ = 0;
  uint64_t bar4_ = 0;  // programmed address bits
  uint8_t interrupt_line_ = 0;
  uint32_t device_feature_select_ = 0;
  uint32_t driver_feature_select_ = 0;
  uint16_t queue_select_ = 0;
  // The INTx state changes from the device's notifications (any thread, under its notify lock)
  // and from command register writes (the vCPU): it has its own lock.
  mutable std::mutex intx_mu_;
  bool isr_level_ = false;
  bool intx_out_ = false;
  bool intx_disabled_ = false;
  std::function<void(bool)> intx_cb_;
  // virtio_pci_cfg_cap window.
  uint8_t cfg_bar_ = 0;
  uint32_t cfg_offset_ = 0;
  uint32_t cfg_length_ = 0;
};

VMEM_NAMESPACE_END
