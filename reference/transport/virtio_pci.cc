#include "reference/transport/virtio_pci.h"

#include "reference/base/endian.h"

VMEM_NAMESPACE_BEGIN

namespace {

constexpr uint16_t kWritableCommand =
    pci::kCommandIo | pci::kCommandMemory | pci::kCommandBusMaster | pci::kCommandIntxDisable;
constexpr uint32_t kBarFlags = 0xc;        // 64-bit, prefetchable memory
constexpr uint16_t kSubsystemId = 0x1100;  // QEMU's PCI_SUBDEVICE_ID_QEMU
constexpr uint8_t kClassOther = 0xff;      // PCI_CLASS_OTHERS, as virtio-mem-pci

// Capability placement, as QEMU's virtio-mem-pci.
constexpr uint8_t kCapCommon = 0x40;
constexpr uint8_t kCapIsr = 0x50;
constexpr uint8_t kCapDevice = 0x60;
constexpr uint8_t kCapNotify = 0x70;
constexpr uint8_t kCapPciCfg = 0x84;
constexpr uint8_t kPciCfgBar = kCapPciCfg + 4;
constexpr uint8_t kPciCfgOffset = kCapPciCfg + 8;
constexpr uint8_t kPciCfgLength = kCapPciCfg + 12;
constexpr uint8_t kPciCfgData = kCapPciCfg + 16;

void put_cap(std::array<uint8_t, 256>& c, uint8_t at, uint8_t next, uint8_t len, uint8_t type,
             uint32_t offset, uint32_t length) {
  c[at] = pci::kCapVendor;
  c[at + 1] = next;
  c[at + 2] = len;
  c[at + 3] = type;
  c[at + 4] = type == VIRTIO_PCI_CAP_PCI_CFG ? 0 : VirtioPciTransport::kBar;
  store_le<uint32_t>(&c[at + 8], offset);
  store_le<uint32_t>(&c[at + 12], length);
}

// Writes `size` bytes of `value` at byte `shift` into a dword.
uint32_t merge(uint32_t old, unsigned shift, unsigned size, uint32_t value) {
  const uint32_t mask = size >= 4 ? 0xffffffffu : ((1u << (8 * size)) - 1) << (8 * shift);
  return (old & ~mask) | ((value << (8 * shift)) & mask);
}

}  // namespace

VirtioPciTransport::VirtioPciTransport(VirtioDevice& device) : device_(device) {
  put_cap(caps_, kCapCommon, kCapIsr, 16, VIRTIO_PCI_CAP_COMMON_CFG, kCommonOffset, kStructureSize);
  put_cap(caps_, kCapIsr, kCapDevice, 16, VIRTIO_PCI_CAP_ISR_CFG, kIsrOffset, kStructureSize);
  put_cap(caps_, kCapDevice, kCapNotify, 16, VIRTIO_PCI_CAP_DEVICE_CFG, kDeviceOffset,
          kStructureSize);
  put_cap(caps_, kCapNotify, kCapPciCfg, 20, VIRTIO_PCI_CAP_NOTIFY_CFG, kNotifyOffset,
          kStructureSize);
  store_le<uint32_t>(&caps_[kCapNotify + 16], kNotifyOffMultiplier);
  put_cap(caps_, kCapPciCfg, 0, 20, VIRTIO_PCI_CAP_PCI_CFG, 0, 0);
  device_.set_interrupt_line(this);
}

VirtioPciTransport::~VirtioPciTransport() {
  device_.set_interrupt_line(nullptr);
}

uint32_t VirtioPciTransport::read_header(uint32_t offset) const {
  switch (offset) {
    case 0x00:
      return pci::kVendorRedHatQumranet | uint32_t(pci::kModernDeviceIdBase + device_.device_id())
                                              << 16;
    case 0x04: {
      std::lock_guard<std::mutex> g(intx_mu_);
      const uint16_t status = pci::kStatusCapList | (isr_level_ ? pci::kStatusInterrupt : 0);
      return command_ | uint32_t{status} << 16;
    }
    case 0x08:
      return 0x01 | uint32_t{kClassOther} << 24;  // revision 1 (modern), class 0xff
    case 0x20:
      return static_cast<uint32_t>(bar4_) | kBarFlags;
    case 0x24:
      return static_cast<uint32_t>(bar4_ >> 32);
    case 0x2c:
      return pci::kVendorRedHatQumranet | uint32_t{kSubsystemId} << 16;
    case 0x34:
      return kCapCommon;
    case 0x3c:
      return interrupt_line_ | 1u << 8;  // interrupt pin A
    default:
      return 0;
  }
}

uint32_t VirtioPciTransport::config_read(uint32_t offset, unsigned size) {
  if (offset >= 256 || (size != 1 && size != 2 && size != 4) || offset + size > 256) return 0;
  if (offset >= kPciCfgData && offset < kPciCfgData + 4) {
    // virtio_pci_cfg_cap: the data window accesses BAR `cfg_bar_` at `cfg_offset_`.
    if (cfg_bar_ != kBar || (cfg_length_ != 1 && cfg_length_ != 2 && cfg_length_ != 4)) return 0;
    return static_cast<uint32_t>(bar_read(cfg_offset_, cfg_length_));
  }
  const uint32_t base = offset & ~3u;
  uint32_t dword = 0;
  if (base < 0x40) {
    dword = read_header(base);
  } else {
    dword = load_le<uint32_t>(&caps_[base]);
    if (base == kPciCfgBar) dword = (dword & ~0xffu) | cfg_bar_;
    if (base == kPciCfgOffset) dword = cfg_offset_;
    if (base == kPciCfgLength) dword = cfg_length_;
  }
  const uint32_t v = dword >> (8 * (offset & 3));
  return size == 4 ? v : v & ((1u << (8 * size)) - 1);
}

void VirtioPciTransport::config_write(uint32_t offset, unsigned size, uint32_t value) {
  if (offset >= 256 || (size != 1 && size != 2 && size != 4) || offset + size > 256) return;
  if (offset >= kPciCfgData && offset < kPciCfgData + 4) {
    if (cfg_bar_ == kBar && (cfg_length_ == 1 || cfg_length_ == 2 || cfg_length_ == 4)) {
      bar_write(cfg_offset_, cfg_length_, value);
    }
    return;
  }
  const uint32_t base = offset & ~3u;
  const unsigned shift = offset & 3;
  switch (base) {
    case pci::kCommand: {
      if (shift >= 2) return;  // the status register's bits are not writable here
      command_ = static_cast<uint16_t>(merge(command_, shift, size, value) & kWritableCommand);
      std::lock_guard<std::mutex> g(intx_mu_);
      intx_disabled_ = (command_ & pci::kCommandIntxDisable) != 0;
      update_intx();
      return;
    }
    case 0x20: {
      const uint32_t low = merge(static_cast<uint32_t>(bar4_), shift, size, value);
      bar4_ = (bar4_ & 0xffffffff00000000ULL) | (low & ~static_cast<uint32_t>(kBarSize - 1));
      return;
    }
    case 0x24: {
      const uint32_t high = merge(static_cast<uint32_t>(bar4_ >> 32), shift, size, value);
      bar4_ = (bar4_ & 0xffffffffULL) | uint64_t{high} << 32;
      return;
    }
    case pci::kInterruptLine:
      if (shift == 0) interrupt_line_ = static_cast<uint8_t>(value);
      return;
    case kPciCfgBar:
      if (shift == 0) cfg_bar_ = static_cast<uint8_t>(value);
      return;
    case kPciCfgOffset:
      cfg_offset_ = merge(cfg_offset_, shift, size, value);
      return;
    case kPciCfgLength:
      cfg_length_ = merge(cfg_length_, shift, size, value);
      return;
    default:
      return;  // read-only
  }
}

std::optional<uint64_t> VirtioPciTransport::bar_address() const {
  if (!(command_ & pci::kCommandMemory) || bar4_ == 0) return std::nullopt;
  return bar4_;
}

uint64_t VirtioPciTransport::bar_read(uint64_t offset, unsigned size) {
  if (size == 8) return bar_read(offset, 4) | bar_read(offset + 4, 4) << 32;
  if (size != 1 && size != 2 && size != 4) return 0;
  if (offset < kIsrOffset) {
    const uint64_t v = common_read(static_cast<uint32_t>(offset));
    return size == 4 ? v : v & ((1ULL << (8 * size)) - 1);
  }
  if (offset < kDeviceOffset) {
    // Reading the ISR clears it and deasserts the interrupt (4.1.4.5).
    return offset == kIsrOffset ? device_.read_and_clear_isr() : 0;
  }
  if (offset < kNotifyOffset) return device_.read_config(offset - kDeviceOffset, size);
  return 0;
}

void VirtioPciTransport::bar_write(uint64_t offset, unsigned size, uint64_t value) {
  if (size == 8) {
    bar_write(offset, 4, value & 0xffffffff);
    bar_write(offset + 4, 4, value >> 32);
    return;
  }
  if (size != 1 && size != 2 && size != 4) return;
  if (offset < kIsrOffset) {
    common_write(static_cast<uint32_t>(offset), size, static_cast<uint32_t>(value));
  } else if (offset >= kDeviceOffset && offset < kNotifyOffset) {
    device_.write_config(offset - kDeviceOffset, size, value);
  } else if (offset >= kNotifyOffset && offset < kBarSize) {
    // The queue is chosen by the address (queue_notify_off * multiplier), as in QEMU. Without
    // bus mastering the device cannot reach the rings, so the kick is dropped.
    if (!(command_ & pci::kCommandBusMaster)) return;
    const uint64_t queue = (offset - kNotifyOffset) / kNotifyOffMultiplier;
    if (queue < device_.num_queues()) device_.notify_queue(static_cast<uint16_t>(queue));
  }
}

uint32_t VirtioPciTransport::common_read(uint32_t offset) {
  using namespace common_cfg;
  const bool has_queue = queue_select_ < device_.num_queues();
  const SplitQueue* q = has_queue ? &device_.queue(queue_select_) : nullptr;
  switch (offset) {
    case device_feature_select:
      return device_feature_select_;
    case device_feature:
      return device_.read_device_features(device_feature_select_);
    case driver_feature_select:
      return driver_feature_select_;
    case driver_feature:
      return driver_feature_select_ < 2
                 ? static_cast<uint32_t>(device_.driver_features() >> (32 * driver_feature_select_))
                 : 0;
    case config_msix_vector:
      return VIRTIO_MSI_NO_VECTOR;
    case num_queues:
      return static_cast<uint32_t>(device_.num_queues());
    case device_status:
      return device_.status();
    case config_generation:
      return device_.config_generation() & 0xff;
    case queue_select:
      return queue_select_;
    case queue_size:
      return q ? q->size() : 0;
    case queue_msix_vector:
      return VIRTIO_MSI_NO_VECTOR;
    case queue_enable:
      return q && q->ready() ? 1 : 0;
    case queue_notify_off:
      return has_queue ? queue_select_ : 0;
    case queue_desc:
      return q ? static_cast<uint32_t>(q->desc_table()) : 0;
    case queue_desc + 4:
      return q ? static_cast<uint32_t>(q->desc_table() >> 32) : 0;
    case queue_driver:
      return q ? static_cast<uint32_t>(q->avail_ring()) : 0;
    case queue_driver + 4:
      return q ? static_cast<uint32_t>(q->avail_ring() >> 32) : 0;
    case queue_device:
      return q ? static_cast<uint32_t>(q->used_ring()) : 0;
    case queue_device + 4:
      return q ? static_cast<uint32_t>(q->used_ring() >> 32) : 0;
    default:
      return 0;
  }
}

void VirtioPciTransport::common_write(uint32_t offset, unsigned, uint32_t value) {
  using namespace common_cfg;
  SplitQueue* q = queue_select_ < device_.num_queues() ? &device_.queue(queue_select_) : nullptr;
  // A queue's configuration is frozen while it is enabled (4.1.4.3.2).
  SplitQueue* cfg = q != nullptr && !q->ready() ? q : nullptr;
  auto set_low = [](uint64_t old, uint32_t v) { return (old & 0xffffffff00000000ULL) | v; };
  auto set_high = [](uint64_t old, uint32_t v) {
    return (old & 0xffffffffULL) | uint64_t{v} << 32;
  };
  switch (offset) {
    case device_feature_select:
      device_feature_select_ = value;
      break;
    case driver_feature_select:
      driver_feature_select_ = value;
      break;
    case driver_feature:
      device_.write_driver_features(driver_feature_select_, value);
      break;
    case device_status:
      device_.write_status(static_cast<uint8_t>(value));
      break;
    case queue_select:
      queue_select_ = static_cast<uint16_t>(value);
      break;
    case queue_size:
      if (cfg) cfg->set_size(static_cast<uint16_t>(value));
      break;
    case queue_enable:
      // Writing 0 is not allowed to a driver (4.1.4.3.2); it is ignored.
      if (value == 1 && q && !q->ready()) enable_queue(queue_select_);
      break;
    case queue_desc:
      if (cfg) cfg->set_desc_table(set_low(cfg->desc_table(), value));
      break;
    case queue_desc + 4:
      if (cfg) cfg->set_desc_table(set_high(cfg->desc_table(), value));
      break;
    case queue_driver:
      if (cfg) cfg->set_avail_ring(set_low(cfg->avail_ring(), value));
      break;
    case queue_driver + 4:
      if (cfg) cfg->set_avail_ring(set_high(cfg->avail_ring(), value));
      break;
    case queue_device:
      if (cfg) cfg->set_used_ring(set_low(cfg->used_ring(), value));
      break;
    case queue_device + 4:
      if (cfg) cfg->set_used_ring(set_high(cfg->used_ring(), value));
      break;
    default:
      break;  // read-only or MSI-X (absent)
  }
}

void VirtioPciTransport::enable_queue(uint16_t index) {
  SplitQueue& q = device_.queue(index);
  if (auto layout = q.check_layout(device_.memory()); !layout.has_value()) {
    device_.fail_queue_setup(index, layout.error());
    return;
  }
  q.set_ready(true);
}

void VirtioPciTransport::set_level(bool asserted) {
  std::lock_guard<std::mutex> g(intx_mu_);
  isr_level_ = asserted;
  update_intx();
}

void VirtioPciTransport::update_intx() {
  const bool out = isr_level_ && !intx_disabled_;
  if (out == intx_out_) return;
  intx_out_ = out;
  if (intx_cb_) intx_cb_(out);
}

bool VirtioPciTransport::intx_asserted() const {
  return intx_out_;
}

void VirtioPciTransport::reset() {
  command_ = 0;
  bar4_ = 0;
  interrupt_line_ = 0;
  device_feature_select_ = driver_feature_select_ = 0;
  queue_select_ = 0;
  cfg_bar_ = 0;
  cfg_offset_ = cfg_length_ = 0;
  device_.reset();
  std::lock_guard<std::mutex> g(intx_mu_);
  intx_disabled_ = false;
  update_intx();
}

VMEM_NAMESPACE_END
