#include "reference/transport/virtio_mmio.h"

VMEM_NAMESPACE_BEGIN

VirtioMmioTransport::VirtioMmioTransport(VirtioDevice& device) : device_(device) {
  device_.set_interrupt_line(this);
}

VirtioMmioTransport::~VirtioMmioTransport() {
  device_.set_interrupt_line(nullptr);
}

uint64_t VirtioMmioTransport::read(uint64_t offset, unsigned size) {
  using namespace mmio;
  if (offset >= kConfig) {
    if (size != 1 && size != 2 && size != 4 && size != 8) return 0;
    return device_.read_config(offset - kConfig, size);
  }
  if (size != 4 || offset % 4 != 0) return 0;
  const bool has_queue = queue_sel_ < device_.num_queues();
  const SplitQueue* q = has_queue ? &device_.queue(queue_sel_) : nullptr;
  switch (offset) {
    case kMagicValue:
      return kMagic;
    case kVersion:
      return 2;
    case kDeviceId:
      return device_.device_id();
    case kVendorId:
      return kVendorQemu;
    case kDeviceFeatures:
      return device_.read_device_features(device_features_sel_);
    case kQueueNumMax:
      return q ? q->max_size() : 0;
    case kQueueNum:
      return q ? q->size() : 0;
    case kQueueReady:
      return q && q->ready() ? 1 : 0;
    case kInterruptStatus:
      return device_.isr();
    case kStatus:
      return device_.status();
    case kQueueDescLow:
      return q ? static_cast<uint32_t>(q->desc_table()) : 0;
    case kQueueDescHigh:
      return q ? static_cast<uint32_t>(q->desc_table() >> 32) : 0;
    case kQueueDriverLow:
      return q ? static_cast<uint32_t>(q->avail_ring()) : 0;
    case kQueueDriverHigh:
      return q ? static_cast<uint32_t>(q->avail_ring() >> 32) : 0;
    case kQueueDeviceLow:
      return q ? static_cast<uint32_t>(q->used_ring()) : 0;
    case kQueueDeviceHigh:
      return q ? static_cast<uint32_t>(q->used_ring() >> 32) : 0;
    // No shared memory regions: a length of all ones says "no such region" (4.2.2).
    case kShmLenLow:
    case kShmLenHigh:
    case kShmBaseLow:
    case kShmBaseHigh:
      return 0xffffffff;
    case kConfigGeneration:
      return device_.config_generation();
    default:
      return 0;
  }
}

void VirtioMmioTransport::write(uint64_t offset, unsigned size, uint64_t value64) {
  using namespace mmio;
  if (offset >= kConfig) {
    device_.write_config(offset - kConfig, size, value64);
    return;
  }
  if (size != 4 || offset % 4 != 0) return;
  const auto value = static_cast<uint32_t>(value64);
  SplitQueue* q = queue_sel_ < device_.num_queues() ? &device_.queue(queue_sel_) : nullptr;
  SplitQueue* cfg = q != nullptr && !q->ready() ? q : nullptr;
  auto low = [](uint64_t old, uint32_t v) { return (old & 0xffffffff00000000ULL) | v; };
  auto high = [](uint64_t old, uint32_t v) { return (old & 0xffffffffULL) | uint64_t{v} << 32; };
  switch (offset) {
    case kDeviceFeaturesSel:
      device_features_sel_ = value;
      break;
    case kDriverFeatures:
      device_.write_driver_features(driver_features_sel_, value);
      break;
    case kDriverFeaturesSel:
      driver_features_sel_ = value;
      break;
    case kQueueSel:
      queue_sel_ = value;
      break;
    case kQueueNum:
      if (cfg) cfg->set_size(static_cast<uint16_t>(value > 0xffff ? 0 : value));
      break;
    case kQueueReady:
      if (q == nullptr) break;
      if (value == 1 && !q->ready()) {
        if (auto layout = q->check_layout(device_.memory()); !layout.has_value()) {
          device_.fail_queue_setup(static_cast<uint16_t>(queue_sel_), layout.error());
        } else {
          q->set_ready(true);
        }
      } else if (value == 0) {
        q->set_ready(false);
      }
      break;
    case kQueueNotify:
      if (value < device_.num_queues()) device_.notify_queue(static_cast<uint16_t>(value));
      break;
    case kInterruptAck:
      device_.acknowledge_interrupt(static_cast<uint8_t>(value));
      break;
    case kStatus:
      device_.write_status(static_cast<uint8_t>(value));
      break;
    case kQueueDescLow:
      if (cfg) cfg->set_desc_table(low(cfg->desc_table(), value));
      break;
    case kQueueDescHigh:
      if (cfg) cfg->set_desc_table(high(cfg->desc_table(), value));
      break;
    case kQueueDriverLow:
      if (cfg) cfg->set_avail_ring(low(cfg->avail_ring(), value));
      break;
    case kQueueDriverHigh:
      if (cfg) cfg->set_avail_ring(high(cfg->avail_ring(), value));
      break;
    case kQueueDeviceLow:
      if (cfg) cfg->set_used_ring(low(cfg->used_ring(), value));
      break;
    case kQueueDeviceHigh:
      if (cfg) cfg->set_used_ring(high(cfg->used_ring(), value));
      break;
    default:
      break;
  }
}

void VirtioMmioTransport::set_level(bool asserted) {
  // Called under the device's notify lock, so changes arrive one at a time.
  if (level_.exchange(asserted, std::memory_order_acq_rel) == asserted) return;
  if (cb_) cb_(asserted);
}

VMEM_NAMESPACE_END
