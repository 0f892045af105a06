// A target is the machine the conformance suite tests: a VMM with one or two virtio-mem devices,
// reached the way a guest reaches it (port I/O, MMIO, guest RAM, an interrupt line) plus the
// host's control plane (resize, system reset, busy window, suspend/wake-up). The suite's driver
// and checks see nothing else, so the same checks run against the in-process reference, any
// VMM behind the adapter protocol, and QEMU over qtest.
//
// Every call can fail (the VMM crashed, stopped answering, or answered garbage): failures are
// values carrying a reason, and every wait inside a target is bounded.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "reference/base/result.h"

namespace vmem::conformance {

// What a target can do beyond the guest's bus. A check that needs a missing capability is SKIP,
// with the capability's name as the reason.
enum class Capability : uint8_t {
  SetRequestedSize,       // host resize at run time
  SystemReset,            // a machine reset (the device's blocks all unplugged, DEV-22)
  BusyWindow,             // the host can make the device answer BUSY for a while
  SuspendResume,          // suspend-to-RAM and wake-up (DEV-23)
  Interrupts,             // the device's interrupt line level is observable
  NumaNode,               // a device with a node_id and ACPI_PXM offered
  TwoDevices,             // a machine with two virtio-mem devices
  UnpluggedInaccessible,  // the device can be made to offer VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE
  RefusePopulate,         // the host can make the next PLUG's populate fail (as a VFIO mapping
                          // or a memslot the host could not set up does)
};
const char* to_string(Capability c);

enum class Transport : uint8_t { Pci, Mmio };
const char* to_string(Transport t);

// The device a check wants. Targets map it to their own configuration (DeviceOptions, a QEMU
// command line, an adapter's `start` verb) and may keep a machine alive across checks that want
// the same setup, provided they hand it back freshly reset.
struct DeviceSetup {
  uint64_t block_size = 2ULL << 20;
  uint64_t region_size = 1ULL << 30;
  uint64_t requested_size = 256ULL << 20;  // the initial target
  uint16_t node_id = 0;                    // with acpi_pxm
  bool acpi_pxm = false;
  bool unplugged_inaccessible = false;  // offer the feature (DEV-12, DEV-20)
  unsigned devices = 1;                 // 1 or 2 (the second gets the same geometry)

  friend bool operator==(const DeviceSetup&, const DeviceSetup&) = default;
};
std::string describe(const DeviceSetup& s);

// Where things are in the machine a target started, as far as a driver needs to know.
struct MachineLayout {
  Transport transport = Transport::Pci;
  // RAM the driver may use for rings and buffers (never a device region).
  uint64_t scratch_base = 0;
  uint64_t scratch_size = 0;
  // PCI: a free guest-physical window in which the driver maps BARs (below 4 GiB).
  uint64_t bar_window = 0;
  // MMIO: the register base of each virtio-mem device, in order.
  std::vector<uint64_t> mmio_bases;
};

class Target {
 public:
  virtual ~Target() = default;

  virtual std::string name() const = 0;
  virtual bool has(Capability c) const = 0;

  // Brings up (or resets and reuses) a machine with `setup`'s devices, every block unplugged and
  // every device freshly reset.
  virtual Result<MachineLayout> start(const DeviceSetup& setup) = 0;

  // --- The guest's side ---
  virtual Result<uint32_t> io_read(uint16_t port, unsigned size) = 0;
  virtual Status io_write(uint16_t port, unsigned size, uint32_t value) = 0;
  virtual Result<uint64_t> mmio_read(uint64_t gpa, unsigned size) = 0;
  virtual Status mmio_write(uint64_t gpa, unsigned size, uint64_t value) = 0;
  virtual Status mem_read(uint64_t gpa, std::span<uint8_t> out) = 0;
  virtual Status mem_write(uint64_t gpa, std::span<const uint8_t> in) = 0;
  virtual Status mem_fill(uint64_t gpa, uint64_t len, uint8_t byte) = 0;
  // The level of device `index`'s interrupt line (Capability::Interrupts).
  virtual Result<bool> interrupt_asserted(unsigned index) = 0;

  // --- The host's side ---
  virtual Status set_requested_size(unsigned index, uint64_t size) = 0;
  virtual Status system_reset() = 0;
  virtual Status set_busy(bool busy) = 0;
  // Suspend-to-RAM followed by a wake-up.
  virtual Status suspend_resume() = 0;
  // The next populate of device `index` (the host backing a PLUG's blocks) fails, once.
  virtual Status refuse_next_populate(unsigned index) = 0;

  // What the target did since the last call, as replayable lines (decisions D16): qtest and QMP
  // lines for QEMU, adapter-protocol lines for other targets, nothing for the in-process ones.
  virtual std::vector<std::string> take_transcript() { return {}; }
  // The header a reproducer starts with (a QEMU command line, an adapter command).
  virtual std::string reproducer_header() const { return {}; }
  // What the target's own checker found since the last call (the reference's invariant checker);
  // kept apart from spec verdicts (decisions D6). Real VMMs have none.
  virtual std::vector<std::string> take_violations() { return {}; }
};

}  // namespace vmem::conformance
