#include "reference/transport/pci_host.h"

VMEM_NAMESPACE_BEGIN

namespace {

constexpr uint32_t kEnable = 1u << 31;
constexpr uint32_t kHostBridgeId = 0x8086 | 0x29c0u << 16;  // q35's MCH
constexpr uint32_t kHostBridgeClass = 0x06000000;           // bridge, host

}  // namespace

bool PciHost::attach(uint8_t slot, VirtioPciTransport& function) {
  if (slot == 0 || slot >= 32 || find(slot) != nullptr) return false;
  slots_.push_back({slot, &function});
  return true;
}

VirtioPciTransport* PciHost::find(uint8_t slot) const {
  for (const Slot& s : slots_) {
    if (s.slot == slot) return s.function;
  }
  return nullptr;
}

uint32_t PciHost::io_read(uint16_t port, unsigned size) {
  if (port == kConfigAddressPort && size == 4) return config_address_;
  if (port >= kConfigDataPort && port < kConfigDataPort + 4 && (config_address_ & kEnable)) {
    const uint32_t address = (config_address_ & ~3u) | (port - kConfigDataPort);
    if (auto v = config_read(address, size)) return *v;
  }
  return size >= 4 ? 0xffffffffu : (1u << (8 * size)) - 1;
}

std::optional<uint32_t> PciHost::config_read(uint32_t address, unsigned size) {
  const uint32_t bus = (address >> 16) & 0xff;
  const uint32_t slot = (address >> 11) & 0x1f;
  const uint32_t function = (address >> 8) & 0x7;
  const uint32_t offset = address & 0xff;
  if (bus != 0 || function != 0) return std::nullopt;
  if (slot == 0) {
    uint32_t dword = offset < 4 ? kHostBridgeId : (offset & ~3u) == 8 ? kHostBridgeClass : 0;
    dword >>= 8 * (offset & 3);
    return size >= 4 ? dword : dword & ((1u << (8 * size)) - 1);
  }
  if (VirtioPciTransport* f = find(static_cast<uint8_t>(slot))) return f->config_read(offset, size);
  return std::nullopt;
}

void PciHost::io_write(uint16_t port, unsigned size, uint32_t value) {
  if (port == kConfigAddressPort && size == 4) {
    config_address_ = value;
    return;
  }
  if (port >= kConfigDataPort && port < kConfigDataPort + 4 && (config_address_ & kEnable)) {
    const uint32_t bus = (config_address_ >> 16) & 0xff;
    const uint32_t slot = (config_address_ >> 11) & 0x1f;
    const uint32_t function = (config_address_ >> 8) & 0x7;
    const uint32_t offset = (config_address_ & 0xfc) | (port - kConfigDataPort);
    if (bus != 0 || function != 0) return;
    if (VirtioPciTransport* f = find(static_cast<uint8_t>(slot)))
      f->config_write(offset, size, value);
  }
}

std::optional<uint64_t> PciHost::mmio_read(uint64_t gpa, unsigned size) {
  for (const Slot& s : slots_) {
    auto base = s.function->bar_address();
    if (base && gpa >= *base && gpa - *base < VirtioPciTransport::kBarSize) {
      return s.function->bar_read(gpa - *base, size);
    }
  }
  return std::nullopt;
}

bool PciHost::mmio_write(uint64_t gpa, unsigned size, uint64_t value) {
  for (const Slot& s : slots_) {
    auto base = s.function->bar_address();
    if (base && gpa >= *base && gpa - *base < VirtioPciTransport::kBarSize) {
      s.function->bar_write(gpa - *base, size, value);
      return true;
    }
  }
  return false;
}

void PciHost::reset() {
  config_address_ = 0;
  for (const Slot& s : slots_)
    s.function->reset();
}

VMEM_NAMESPACE_END
