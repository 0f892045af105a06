// virtio over MMIO, version 2 (virtio 1.2+, section 4.2), at register level. Register accesses
// are 32 bits wide and aligned; the device configuration at 0x100 may be read 8, 16 or 32 bits at
// a time. As in QEMU, an access of the wrong width to a register reads 0 and writes nothing.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>

#include "reference/virtio/virtio_device.h"

VMEM_NAMESPACE_BEGIN

namespace mmio {
inline constexpr uint32_t kMagicValue = 0x000;
inline constexpr uint32_t kVersion = 0x004;
inline constexpr uint32_t kDeviceId = 0x008;
inline constexpr uint32_t kVendorId = 0x00c;
inline constexpr uint32_t kDeviceFeatures = 0x010;
inline constexpr uint32_t kDeviceFeaturesSel = 0x014;
inline constexpr uint32_t kDriverFeatures = 0x020;
inline constexpr uint32_t kDriverFeaturesSel = 0x024;
inline constexpr uint32_t kQueueSel = 0x030;
inline constexpr uint32_t kQueueNumMax = 0x034;
inline constexpr uint32_t kQueueNum = 0x038;
inline constexpr uint32_t kQueueReady = 0x044;
inline constexpr uint32_t kQueueNotify = 0x050;
inline constexpr uint32_t kInterruptStatus = 0x060;
inline constexpr uint32_t kInterruptAck = 0x064;
inline constexpr uint32_t kStatus = 0x070;
inline constexpr uint32_t kQueueDescLow = 0x080;
inline constexpr uint32_t kQueueDescHigh = 0x084;
inline constexpr uint32_t kQueueDriverLow = 0x090;
inline constexpr uint32_t kQueueDriverHigh = 0x094;
inline constexpr uint32_t kQueueDeviceLow = 0x0a0;
inline constexpr uint32_t kQueueDeviceHigh = 0x0a4;
inline constexpr uint32_t kShmSel = 0x0ac;
inline constexpr uint32_t kShmLenLow = 0x0b0;
inline constexpr uint32_t kShmLenHigh = 0x0b4;
inline constexpr uint32_t kShmBaseLow = 0x0b8;
inline constexpr uint32_t kShmBaseHigh = 0x0bc;
inline constexpr uint32_t kConfigGeneration = 0x0fc;
inline constexpr uint32_t kConfig = 0x100;
inline constexpr uint32_t kMagic = 0x74726976;       // "virt"
inline constexpr uint32_t kVendorQemu = 0x554d4551;  // "QEMU"
inline constexpr uint64_t kWindowSize = 0x200;
}  // namespace mmio

class VirtioMmioTransport final : public InterruptLine {
 public:
  explicit VirtioMmioTransport(VirtioDevice& device);
  ~VirtioMmioTransport() override;
  VirtioMmioTransport(const VirtioMmioTransport&) = delete;
  VirtioMmioTransport& operator=(const VirtioMmioTransport&) = delete;

  uint64_t read(uint64_t offset, unsigned size);
  void write(uint64_t offset, unsigned size, uint64_t value);

  bool interrupt_asserted() const { return level_.load(std::memory_order_acquire); }
  void set_interrupt_callback(std::function<void(bool)> cb) { cb_ = std::move(cb); }

  VirtioDevice& device() { return device_; }

 private:
  void set_level(bool asserted) override;

  VirtioDevice& device_;
  uint32_t device_features_sel_ = 0;
  uint32_t driver_features_sel_ = 0;
  uint32_t queue_sel_ = 0;
  std::atomic<bool> level_{false};  // set from the device's notifications, read by the vCPU
  std::function<void(bool)> cb_;
};

VMEM_NAMESPACE_END
