// The in-process reference device as a target: a small machine (64 MiB of RAM at 0, one or two
// virtio-mem devices behind virtio-pci on a 0xcf8/0xcfc host bridge, or behind virtio-mmio at
// microvm's addresses) that the suite drives exactly as it drives a remote VMM. After every
// queue notification it runs the reference's own invariant checker; what that finds is kept
// apart from the spec verdicts (decisions D6) and returned by take_violations().
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "conformance/target/target.h"
#include "reference/mem/device.h"
#include "reference/mem/profile.h"
#include "reference/memory/backing.h"

namespace vmem::conformance {

struct ReferenceTargetOptions {
  Transport transport = Transport::Pci;
  Profile profile = Profile::Spec;
  std::string fault;  // a named fault; the mutants build only (decisions D6)
  BackingKind backing = BackingKind::Anonymous;
  // Where the first device region starts (0: kRegionBase), e.g. where a QEMU under comparison
  // put its own, so that the same guest-physical addresses mean the same blocks in both.
  uint64_t region_base = 0;
  // Capabilities withheld, so that the reference can stand in for a target that lacks them (the
  // QEMU differential test); the reference has every one otherwise.
  std::vector<Capability> without = {};
};

class ReferenceTarget final : public Target {
 public:
  static constexpr uint64_t kRamSize = 64ULL << 20;
  static constexpr uint64_t kScratchBase = 1ULL << 20;
  static constexpr uint64_t kBarWindow = 0xe0000000;
  static constexpr uint64_t kMmioBase = 0xfeb00000;  // microvm's first virtio-mmio slot
  static constexpr uint64_t kMmioStride = 0x200;
  static constexpr uint64_t kRegionBase = 4ULL << 30;

  explicit ReferenceTarget(ReferenceTargetOptions options);
  ~ReferenceTarget() override;

  std::string name() const override;
  bool has(Capability c) const override;
  Result<MachineLayout> start(const DeviceSetup& setup) override;

  Result<uint32_t> io_read(uint16_t port, unsigned size) override;
  Status io_write(uint16_t port, unsigned size, uint32_t value) override;
  Result<uint64_t> mmio_read(uint64_t gpa, unsigned size) override;
  Status mmio_write(uint64_t gpa, unsigned size, uint64_t value) override;
  Status mem_read(uint64_t gpa, std::span<uint8_t> out) override;
  Status mem_write(uint64_t gpa, std::span<const uint8_t> in) override;
  Status mem_fill(uint64_t gpa, uint64_t len, uint8_t byte) override;
  Result<bool> interrupt_asserted(unsigned index) override;

  Status set_requested_size(unsigned index, uint64_t size) override;
  Status system_reset() override;
  Status set_busy(bool busy) override;
  Status suspend_resume() override;
  Status refuse_next_populate(unsigned index) override;

  // Invariant violations found since the last call, as "I3 at block 17: ..." lines.
  std::vector<std::string> take_violations() override;

  // The device behind index `i` of the running machine (tests look inside).
  VirtioMemDevice* device(unsigned i);

 private:
  struct Machine;
  Status running() const;  // an error until start() built a machine
  void check_invariants();

  ReferenceTargetOptions options_;
  std::unique_ptr<Machine> machine_;
  std::vector<std::string> violations_;
};

}  // namespace vmem::conformance
