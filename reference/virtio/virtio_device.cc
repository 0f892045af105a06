#include "reference/virtio/virtio_device.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>

#include "reference/base/cond_lock.h"
#include "reference/base/endian.h"

VMEM_NAMESPACE_BEGIN

VirtioDevice::VirtioDevice(uint32_t device_id, GuestMemory& mem, std::size_t num_queues,
                           uint16_t queue_max, ConfigNotifyPolicy policy)
    : device_id_(device_id),
      mem_(mem),
      policy_(policy),
      queues_(num_queues, SplitQueue(queue_max)) {}

uint32_t VirtioDevice::read_device_features(uint32_t select) const {
  if (select > 1) return 0;
  return static_cast<uint32_t>(offered_features() >> (32 * select));
}

uint32_t VirtioDevice::config_generation() const {
  CondLock lock(notify_mu_, threaded_);
  return config_generation_;
}

std::string VirtioDevice::broken_reason() const {
  CondLock lock(notify_mu_, threaded_);
  return broken_reason_;
}

uint8_t VirtioDevice::isr() const {
  CondLock lock(notify_mu_, threaded_);
  return isr_;
}

void VirtioDevice::write_driver_features(uint32_t select, uint32_t value) {
  if (select > 1 || (status() & VIRTIO_CONFIG_S_FEATURES_OK)) return;
  const unsigned shift = 32 * select;
  driver_features_ =
      (driver_features_ & ~(uint64_t{0xffffffff} << shift)) | (uint64_t{value} << shift);
}

void VirtioDevice::write_status(uint8_t value) {
  if (value == 0) {
    reset();
    return;
  }
  const bool setting_features_ok =
      (value & VIRTIO_CONFIG_S_FEATURES_OK) && !(status() & VIRTIO_CONFIG_S_FEATURES_OK);
  if (setting_features_ok) {
    // 3.1.1 and 2.2.2: the driver may accept only offered features; a modern-only device needs
    // VERSION_1; then the device type decides.
    const bool subset = (driver_features_ & ~offered_features()) == 0;
    const bool version_1 = (driver_features_ & feature_bit(VIRTIO_F_VERSION_1)) != 0;
    if (!subset || !version_1 || !accept_features(driver_features_)) {
      ++counters_.feature_refusals;
      return;
    }
    for (auto& q : queues_) {
      q.set_event_idx(has_feature(VIRTIO_F_EVENT_IDX));
      q.set_indirect(has_feature(VIRTIO_F_INDIRECT_DESC));
    }
  }
  const bool setting_driver_ok = (value & VIRTIO_CONFIG_S_DRIVER_OK) && !driver_ok();
  // NEEDS_RESET is the device's to set; the driver cannot clear it except by a reset.
  CondLock lock(notify_mu_, threaded_);
  status_.store(static_cast<uint8_t>((value & ~VIRTIO_CONFIG_S_NEEDS_RESET) |
                                     (status() & VIRTIO_CONFIG_S_NEEDS_RESET)),
                std::memory_order_release);
  if (setting_driver_ok && config_notification_pending_) {
    config_notification_pending_ = false;
    raise_isr(VIRTIO_ISR_CONFIG);
  }
}

uint64_t VirtioDevice::read_config(uint64_t offset, unsigned size) const {
  const auto guard = config_read_lock();
  const auto bytes = config_bytes();
  std::array<uint8_t, 8> b{};
  for (unsigned i = 0; i < size && i < b.size(); ++i) {
    if (offset + i < bytes.size()) b[i] = bytes[offset + i];
  }
  return load_le<uint64_t>(b.data());
}

void VirtioDevice::write_config(uint64_t offset, unsigned size, uint64_t value) {
  on_config_write(offset, size, value);
}

uint8_t VirtioDevice::read_and_clear_isr() {
  CondLock lock(notify_mu_, threaded_);
  const uint8_t v = isr_;
  isr_ = 0;
  update_line();
  return v;
}

void VirtioDevice::acknowledge_interrupt(uint8_t bits) {
  CondLock lock(notify_mu_, threaded_);
  isr_ = static_cast<uint8_t>(isr_ & ~bits);
  update_line();
}

void VirtioDevice::notify_queue(uint16_t index) {
  if (index >= queues_.size() || broken()) return;
  // 3.1.1: the device must not consume buffers before DRIVER_OK. QEMU does not check this; its
  // profiles use the Qemu policy and process the queue anyway.
  if (!driver_ok() && policy_ == ConfigNotifyPolicy::Spec) return;
  if (!queues_[index].ready()) return;
  handle_queue(index);
}

void VirtioDevice::reset() {
  for (auto& q : queues_)
    q.reset();
  driver_features_ = 0;
  {
    CondLock lock(notify_mu_, threaded_);
    broken_.store(false, std::memory_order_release);
    broken_reason_.clear();
    status_.store(0, std::memory_order_release);
    isr_ = 0;
    // A pending configuration notification survives: it is due at the next DRIVER_OK (D9).
    update_line();
  }
  on_reset();
}

void VirtioDevice::fail_queue_setup(uint16_t index, QueueError error) {
  needs_reset(fmt::format("queue {} cannot be enabled: {}", index, to_string(error)));
}

void VirtioDevice::config_changed(bool notify) {
  CondLock lock(notify_mu_, threaded_);
  if (policy_ == ConfigNotifyPolicy::Qemu) {
    if (!notify || !driver_ok()) return;
    ++config_generation_;
    raise_isr(VIRTIO_ISR_CONFIG);
    return;
  }
  ++config_generation_;
  if (!notify) return;
  if (driver_ok()) {
    raise_isr(VIRTIO_ISR_CONFIG);
  } else {
    config_notification_pending_ = true;
  }
}

void VirtioDevice::used_buffers_added(uint16_t index) {
  if (!queues_.at(index).should_notify(mem_)) return;
  CondLock lock(notify_mu_, threaded_);
  raise_isr(VIRTIO_ISR_QUEUE);
}

void VirtioDevice::needs_reset(std::string reason) {
  CondLock lock(notify_mu_, threaded_);
  broken_.store(true, std::memory_order_release);
  broken_reason_ = std::move(reason);
  ++counters_.needs_reset;
  status_.fetch_or(VIRTIO_CONFIG_S_NEEDS_RESET, std::memory_order_acq_rel);
  // 2.1.2: the device sends a configuration change notification when it sets NEEDS_RESET.
  // QEMU does it through virtio_notify_config(), which also bumps the generation.
  if (driver_ok()) {
    if (policy_ == ConfigNotifyPolicy::Qemu) ++config_generation_;
    raise_isr(VIRTIO_ISR_CONFIG);
  }
}

VirtioDeviceState VirtioDevice::save_state() const {
  VirtioDeviceState s;
  CondLock lock(notify_mu_, threaded_);
  s.status = status();
  s.driver_features = driver_features_;
  s.config_generation = config_generation_;
  s.isr = isr_;
  s.broken = broken();
  s.config_notification_pending = config_notification_pending_;
  for (const auto& q : queues_)
    s.queues.push_back(q.state());
  return s;
}

Status VirtioDevice::check_state(const VirtioDeviceState& s) const {
  constexpr uint8_t kKnownStatus = VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
                                   VIRTIO_CONFIG_S_DRIVER_OK | VIRTIO_CONFIG_S_FEATURES_OK |
                                   VIRTIO_CONFIG_S_NEEDS_RESET | VIRTIO_CONFIG_S_FAILED;
  if (s.status & ~kKnownStatus) {
    return unexpected(Error{fmt::format("device status {:#x} has unknown bits", s.status)});
  }
  if (s.driver_features & ~offered_features()) {
    return unexpected(Error{fmt::format("driver features {:#x} include some not offered ({:#x})",
                                        s.driver_features, offered_features())});
  }
  if ((s.status & VIRTIO_CONFIG_S_FEATURES_OK) &&
      (!(s.driver_features & feature_bit(VIRTIO_F_VERSION_1)) ||
       !accept_features(s.driver_features))) {
    return unexpected(Error{fmt::format(
        "status has FEATURES_OK but the device refuses driver features {:#x}", s.driver_features)});
  }
  if ((s.status & VIRTIO_CONFIG_S_DRIVER_OK) && !(s.status & VIRTIO_CONFIG_S_FEATURES_OK)) {
    return unexpected(Error{"status has DRIVER_OK without FEATURES_OK"});
  }
  if (s.isr & ~(VIRTIO_ISR_QUEUE | VIRTIO_ISR_CONFIG)) {
    return unexpected(Error{fmt::format("ISR {:#x} has unknown bits", s.isr)});
  }
  if (s.queues.size() != queues_.size()) {
    return unexpected(
        Error{fmt::format("stream has {} queues, the device {}", s.queues.size(), queues_.size())});
  }
  for (std::size_t i = 0; i < s.queues.size(); ++i) {
    const QueueState& qs = s.queues[i];
    SplitQueue probe(queues_[i].max_size());
    probe.restore(qs);
    if (qs.size > queues_[i].max_size()) {
      return unexpected(Error{fmt::format("queue {} size {} exceeds the maximum {}", i, qs.size,
                                          queues_[i].max_size())});
    }
    if (!qs.ready) continue;
    if (auto layout = probe.check_layout(mem_); !layout.has_value()) {
      return unexpected(Error{fmt::format("queue {}: {}", i, to_string(layout.error()))});
    }
    // As QEMU's virtio_load(): the driver cannot have more chains outstanding than the queue
    // holds, and the used index in guest memory must be the one the device saved.
    std::array<uint8_t, 2> idx{};
    (void)mem_.read(qs.avail_ring + 2, idx);
    const uint16_t avail_idx = load_le<uint16_t>(idx.data());
    if (static_cast<uint16_t>(avail_idx - qs.next_avail) > qs.size) {
      return unexpected(Error{
          fmt::format("queue {}: available index {} is inconsistent with the device's next {}", i,
                      avail_idx, qs.next_avail)});
    }
    (void)mem_.read(qs.used_ring + 2, idx);
    if (load_le<uint16_t>(idx.data()) != qs.next_used) {
      return unexpected(Error{fmt::format("queue {}: used index in guest memory {} is not {}", i,
                                          load_le<uint16_t>(idx.data()), qs.next_used)});
    }
  }
  return ok();
}

void VirtioDevice::restore_state(const VirtioDeviceState& s) {
  CondLock lock(notify_mu_, threaded_);
  status_.store(s.status, std::memory_order_release);
  driver_features_ = s.driver_features;
  config_generation_ = s.config_generation;
  isr_ = s.isr;
  broken_.store(s.broken, std::memory_order_release);
  broken_reason_ = s.broken ? "broken before migration" : "";
  config_notification_pending_ = s.config_notification_pending;
  for (std::size_t i = 0; i < queues_.size(); ++i) {
    queues_[i].restore(s.queues[i]);
    queues_[i].set_event_idx(has_feature(VIRTIO_F_EVENT_IDX));
    queues_[i].set_indirect(has_feature(VIRTIO_F_INDIRECT_DESC));
  }
  update_line();
}

void VirtioDevice::raise_isr(uint8_t bits) {
  if (bits & VIRTIO_ISR_CONFIG) ++counters_.config_interrupts;
  if (bits & VIRTIO_ISR_QUEUE) ++counters_.queue_interrupts;
  isr_ |= bits;
  update_line();
}

void VirtioDevice::update_line() {
  if (line_ != nullptr) line_->set_level(isr_ != 0);
}

VMEM_NAMESPACE_END
