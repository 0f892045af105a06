// A PCI host bridge on port I/O 0xcf8/0xcfc (configuration mechanism #1) with functions on bus
// 0, and the memory dispatch that routes guest-physical accesses to mapped BARs. Slot 0 is a
// host bridge (the q35 one's IDs), so a scan looks like one of QEMU's.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "reference/transport/virtio_pci.h"

VMEM_NAMESPACE_BEGIN

class PciHost {
 public:
  static constexpr uint16_t kConfigAddressPort = 0xcf8;
  static constexpr uint16_t kConfigDataPort = 0xcfc;

  // Puts a virtio-pci function at bus 0, `slot`, function 0. Slot 0 is the host bridge.
  bool attach(uint8_t slot, VirtioPciTransport& function);

  // Port I/O; unclaimed ports read as all ones.
  uint32_t io_read(uint16_t port, unsigned size);
  void io_write(uint16_t port, unsigned size, uint32_t value);
  // Memory accesses to mapped BARs; nothing if no BAR claims the address.
  std::optional<uint64_t> mmio_read(uint64_t gpa, unsigned size);
  bool mmio_write(uint64_t gpa, unsigned size, uint64_t value);

  // A PCI bus reset: every function is reset.
  void reset();

 private:
  struct Slot {
    uint8_t slot;
    VirtioPciTransport* function;
  };
  std::optional<uint32_t> config_read(uint32_t address, unsigned size);
  VirtioPciTransport* find(uint8_t slot) const;

  uint32_t config_address_ = 0;
  std::vector<Slot> slots_;
};

VMEM_NAMESPACE_END
