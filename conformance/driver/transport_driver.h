// The driver's side of a virtio transport, written for testing: the generic registers (device
// status, features, device configuration, queues, notifications, ISR) of one device, reached
// through a Target's bus. virtio-pci modern finds them by walking the capability list and
// mapping BAR 4; virtio-mmio v2 finds them at a fixed base. Nothing here knows virtio-mem.
//
// Every register access is a Target call, so every accessor can fail (the VMM died or stopped
// answering): failures come back as values naming the register.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "conformance/target/target.h"

namespace vmem::conformance {

class TransportDriver {
 public:
  virtual ~TransportDriver() = default;

  virtual std::string describe() const = 0;
  // The generic virtio device ID the transport reports (24 for virtio-mem).
  virtual uint32_t device_id() const = 0;

  virtual Result<uint8_t> status() = 0;
  virtual Status set_status(uint8_t status) = 0;
  virtual Result<uint64_t> device_features() = 0;
  virtual Status set_driver_features(uint64_t features) = 0;

  virtual Result<uint32_t> config_generation() = 0;
  // One access of 1, 2, 4 or 8 bytes at `offset` in the device-specific configuration.
  virtual Result<uint64_t> config_read(uint32_t offset, unsigned size) = 0;
  virtual Status config_write(uint32_t offset, unsigned size, uint64_t value) = 0;

  virtual Result<uint16_t> queue_max_size(uint16_t queue) = 0;
  // Writes the queue's size and ring addresses, then enables it.
  virtual Status setup_queue(uint16_t queue, uint16_t size, uint64_t desc, uint64_t driver,
                             uint64_t device) = 0;
  virtual Status notify(uint16_t queue) = 0;
  // Reads and acknowledges the interrupt status: bit 0 used buffer, bit 1 configuration change.
  virtual Result<uint8_t> take_isr() = 0;
  // The level of the device's interrupt line, where the target shows it.
  virtual Result<bool> interrupt_line() = 0;
};

// Finds the `index`-th virtio device with `device_id` on PCI bus 0, walks its capabilities and
// maps BAR 4 in the layout's BAR window. Fails with what was missing or malformed.
Result<std::unique_ptr<TransportDriver>> probe_pci(Target& target, const MachineLayout& layout,
                                                   uint32_t device_id, unsigned index);
// Checks the virtio-mmio v2 header at the layout's `index`-th base.
Result<std::unique_ptr<TransportDriver>> probe_mmio(Target& target, const MachineLayout& layout,
                                                    uint32_t device_id, unsigned index);
// Either of the above, as the layout's transport says.
Result<std::unique_ptr<TransportDriver>> probe(Target& target, const MachineLayout& layout,
                                               uint32_t device_id, unsigned index);

}  // namespace vmem::conformance
