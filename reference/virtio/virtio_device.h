// The transport-independent part of a virtio device (virtio 1.2+, sections 2 and 3): device
// status, feature negotiation, the configuration generation counter, the ISR, and the
// virtqueues. Transports (virtio-pci, virtio-mmio) translate their registers into calls on this
// class; device types (virtio-mem) derive from it. It knows neither PCI nor MMIO nor any device
// type.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "reference/memory/guest_memory.h"
#include "reference/virtqueue/split_queue.h"

VMEM_NAMESPACE_BEGIN

// Device status bits (2.1).
inline constexpr uint8_t VIRTIO_CONFIG_S_ACKNOWLEDGE = 1;
inline constexpr uint8_t VIRTIO_CONFIG_S_DRIVER = 2;
inline constexpr uint8_t VIRTIO_CONFIG_S_DRIVER_OK = 4;
inline constexpr uint8_t VIRTIO_CONFIG_S_FEATURES_OK = 8;
inline constexpr uint8_t VIRTIO_CONFIG_S_NEEDS_RESET = 0x40;
inline constexpr uint8_t VIRTIO_CONFIG_S_FAILED = 0x80;

// Transport-independent feature bits (6).
inline constexpr unsigned VIRTIO_F_INDIRECT_DESC = 28;
inline constexpr unsigned VIRTIO_F_EVENT_IDX = 29;
inline constexpr unsigned VIRTIO_F_VERSION_1 = 32;

// ISR bits (4.1.4.5).
inline constexpr uint8_t VIRTIO_ISR_QUEUE = 1;
inline constexpr uint8_t VIRTIO_ISR_CONFIG = 2;

constexpr uint64_t feature_bit(unsigned bit) {
  return uint64_t{1} << bit;
}

// The device's interrupt output. The transport decides what it means (an INTx line, an MMIO
// interrupt); the device only says whether it is asserted.
class InterruptLine {
 public:
  virtual ~InterruptLine() = default;
  virtual void set_level(bool asserted) = 0;
};

// When a configuration change becomes visible (decisions D9).
enum class ConfigNotifyPolicy : uint8_t {
  // The generic virtio rule: config_generation changes with every change, whatever the status;
  // a change that needs a notification raises ISR bit 1 and the interrupt once DRIVER_OK is set,
  // at DRIVER_OK at the latest.
  Spec,
  // QEMU's virtio_notify_config(): before DRIVER_OK nothing at all happens (generation and ISR
  // untouched); after it, the generation, ISR and interrupt change only with a notification.
  Qemu,
};

struct VirtioCounters {
  uint64_t config_interrupts = 0;  // ISR bit 1 raised
  uint64_t queue_interrupts = 0;   // ISR bit 0 raised
  uint64_t feature_refusals = 0;   // FEATURES_OK refused
  uint64_t needs_reset = 0;        // times the device broke itself
};

// What migration saves of the generic part of a device (decisions D13).
struct VirtioDeviceState {
  uint8_t status = 0;
  uint64_t driver_features = 0;
  uint32_t config_generation = 0;
  uint8_t isr = 0;
  bool broken = false;
  bool config_notification_pending = false;
  std::vector<QueueState> queues;
  friend bool operator==(const VirtioDeviceState&, const VirtioDeviceState&) = default;
};

class VirtioDevice {
 public:
  VirtioDevice(const VirtioDevice&) = delete;
  VirtioDevice& operator=(const VirtioDevice&) = delete;
  virtual ~VirtioDevice() = default;

  // --- What a transport uses ---
  uint32_t device_id() const { return device_id_; }
  uint64_t device_features() const { return offered_features(); }
  uint64_t driver_features() const { return driver_features_; }
  uint32_t read_device_features(uint32_t select) const;
  // Ignored once FEATURES_OK is set: features are frozen then (3.1.1).
  void write_driver_features(uint32_t select, uint32_t value);

  uint8_t status() const { return status_.load(std::memory_order_acquire); }
  // Writing 0 resets the device. Setting FEATURES_OK validates the features and, if they are
  // refused, leaves the status as it was (the driver reads FEATURES_OK back clear).
  void write_status(uint8_t value);

  uint32_t config_generation() const;
  std::size_t config_size() const { return config_bytes().size(); }
  // A read of 1, 2, 4 or 8 bytes; bytes past the end of the config read as 0.
  uint64_t read_config(uint64_t offset, unsigned size) const;
  // The driver writing configuration: handed to the device, which may ignore it.
  void write_config(uint64_t offset, unsigned size, uint64_t value);

  uint8_t isr() const;
  // virtio-pci ISR semantics: reading returns and clears the ISR, deasserting the interrupt.
  uint8_t read_and_clear_isr();
  // virtio-mmio InterruptACK semantics: clears the given bits.
  void acknowledge_interrupt(uint8_t bits);

  std::size_t num_queues() const { return queues_.size(); }
  SplitQueue& queue(std::size_t index) { return queues_.at(index); }
  const SplitQueue& queue(std::size_t index) const { return queues_.at(index); }
  // A driver notification ("kick") for one queue.
  void notify_queue(uint16_t index);

  void set_interrupt_line(InterruptLine* line) { line_ = line; }
  // From now on notifications may come from several threads (an iothread and the control plane):
  // the configuration generation, the ISR and the interrupt line get a lock. Device status and
  // queues stay the caller's to serialize (QEMU's big lock), see IoThread.
  void enable_threading() { threaded_ = true; }
  bool threaded() const { return threaded_; }
  bool broken() const { return broken_.load(std::memory_order_acquire); }
  std::string broken_reason() const;
  const VirtioCounters& counters() const { return counters_; }
  GuestMemory& memory() { return mem_; }

  // The device reset (status written 0, or a transport reset).
  void reset();
  // The driver enabled a queue whose size or rings are unusable: the device cannot work.
  void fail_queue_setup(uint16_t index, QueueError error);

  // Migration of the generic state. check_state() validates a loaded state against this device
  // (features it offers and accepts, status, queue sizes and rings in guest memory);
  // restore_state() assumes it passed.
  VirtioDeviceState save_state() const;
  Status check_state(const VirtioDeviceState& s) const;
  void restore_state(const VirtioDeviceState& s);

 protected:
  VirtioDevice(uint32_t device_id, GuestMemory& mem, std::size_t num_queues, uint16_t queue_max,
               ConfigNotifyPolicy policy);

  // --- What a device type implements ---
  // Every feature the device offers, transport-independent ones included.
  virtual uint64_t offered_features() const = 0;
  // Whether the device accepts the features the driver wrote (checked at FEATURES_OK, after the
  // generic checks).
  virtual bool accept_features(uint64_t features) const = 0;
  // The current device configuration space, encoded; with threading on, the device must keep it
  // stable while read_config() copies it (config_read_lock()).
  virtual std::span<const uint8_t> config_bytes() const = 0;
  // Held while the configuration is copied out; the device takes its own lock there.
  virtual std::unique_lock<std::mutex> config_read_lock() const { return {}; }
  virtual void on_config_write(uint64_t offset, unsigned size, uint64_t value) = 0;
  virtual void handle_queue(uint16_t index) = 0;
  virtual void on_reset() = 0;

  // --- What a device type calls ---
  // The device configuration changed. `notify` says whether the change needs a configuration
  // change notification (some do not, e.g. plugged_size for virtio-mem, DEV-10).
  void config_changed(bool notify);
  // After adding used buffers to a queue: raises the queue interrupt if the driver wants one.
  void used_buffers_added(uint16_t index);
  // A protocol violation: sets DEVICE_NEEDS_RESET and stops processing until a reset (QEMU's
  // virtio_error()).
  void needs_reset(std::string reason);
  bool driver_ok() const { return (status_ & VIRTIO_CONFIG_S_DRIVER_OK) != 0; }
  bool has_feature(unsigned bit) const { return (driver_features_ & feature_bit(bit)) != 0; }
  ConfigNotifyPolicy notify_policy() const { return policy_; }

 private:
  void raise_isr(uint8_t bits);
  void update_line();

  const uint32_t device_id_;
  GuestMemory& mem_;
  const ConfigNotifyPolicy policy_;
  std::vector<SplitQueue> queues_;
  InterruptLine* line_ = nullptr;
  uint64_t driver_features_ = 0;
  std::atomic<uint8_t> status_{0};
  uint8_t isr_ = 0;  // notify_mu_
  bool threaded_ = false;
  mutable std::mutex notify_mu_;  // the generation, ISR, pending notification and the line
  uint32_t config_generation_ = 0;
  bool config_notification_pending_ = false;
  std::atomic<bool> broken_{false};
  std::string broken_reason_;  // notify_mu_
  VirtioCounters counters_;
};

VMEM_NAMESPACE_END
