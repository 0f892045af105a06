#include "conformance/target/reference_target.h"

#include <fmt/format.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "reference/check/invariants.h"
#include "reference/mem/device_options.h"
#include "reference/mem/discard_hooks.h"
#include "reference/memory/guest_memory.h"
#include "reference/transport/pci_host.h"
#include "reference/transport/virtio_mmio.h"
#include "reference/transport/virtio_pci.h"

namespace vmem::conformance {

namespace {

constexpr uint64_t align_up(uint64_t v, uint64_t a) {
  return (v + a - 1) / a * a;
}

Status from(Result<void, MemoryError> r, uint64_t gpa) {
  if (r.has_value()) return ok();
  return unexpected(Error{fmt::format("guest memory at {:#x}: {}", gpa, to_string(r.error()))});
}

// The host side of a reference machine: nothing maps guest memory, but the host can make the next
// populate fail, as a VFIO mapping limit or a memslot the host could not add does in a VMM.
class PopulateGate final : public DiscardHooks {
 public:
  void refuse_next() { refuse_ = true; }

  Status populate(uint64_t offset, uint64_t size) override {
    if (!std::exchange(refuse_, false)) return ok();
    return unexpected(
        Error{fmt::format("the host could not populate [{:#x}, +{:#x})", offset, size)});
  }
  void discard(uint64_t, uint64_t) override {}
  void discard_all() override {}

 private:
  bool refuse_ = false;
};

}  // namespace

struct ReferenceTarget::Machine {
  DeviceSetup setup;
  GuestMemory mem;
  std::vector<std::unique_ptr<PopulateGate>> gates;  // outlive the devices that call them
  std::vector<std::unique_ptr<VirtioMemDevice>> devices;
  std::vector<std::unique_ptr<InvariantChecker>> checkers;
  PciHost pci;
  std::vector<std::unique_ptr<VirtioPciTransport>> pci_functions;
  std::vector<std::unique_ptr<VirtioMmioTransport>> mmio_functions;
};

ReferenceTarget::ReferenceTarget(ReferenceTargetOptions options) : options_(std::move(options)) {}
ReferenceTarget::~ReferenceTarget() = default;

std::string ReferenceTarget::name() const {
  std::string n = options_.transport == Transport::Pci ? "reference" : "reference-mmio";
  if (options_.profile != Profile::Spec) n += fmt::format(" ({})", profile_name(options_.profile));
  if (!options_.fault.empty()) n += fmt::format(" [fault {}]", options_.fault);
  return n;
}

bool ReferenceTarget::has(Capability c) const {
  // The reference offers everything; UNPLUGGED_INACCESSIBLE can be forced on in every profile.
  return std::find(options_.without.begin(), options_.without.end(), c) == options_.without.end();
}

Result<MachineLayout> ReferenceTarget::start(const DeviceSetup& setup) {
  machine_.reset();
  auto m = std::make_unique<Machine>();
  m->setup = setup;
  auto ram = Backing::create(BackingKind::Anonymous, kRamSize);
  if (!ram.has_value()) return unexpected(ram.error());
  if (auto r = m->mem.add_region("ram", 0, std::move(*ram)); !r.has_value())
    return unexpected(r.error());

  MachineLayout layout;
  layout.transport = options_.transport;
  layout.scratch_base = kScratchBase;
  layout.scratch_size = kRamSize - kScratchBase;
  layout.bar_window = kBarWindow;
  const uint64_t stride = align_up(setup.region_size, 1ULL << 30);
  for (unsigned i = 0; i < setup.devices; ++i) {
    DeviceOptions o;
    o.addr = (options_.region_base != 0 ? options_.region_base : kRegionBase) + i * stride;
    o.region_size = setup.region_size;
    o.block_size = setup.block_size;
    o.requested_size = setup.requested_size;
    o.node_id = setup.node_id;
    o.acpi_pxm = setup.acpi_pxm;
    o.unplugged_inaccessible = setup.unplugged_inaccessible ? Tristate::On : Tristate::Off;
    o.profile = options_.profile;
    o.fault = options_.fault;
    auto backing = Backing::create(options_.backing, setup.region_size);
    if (!backing.has_value()) return unexpected(backing.error());
    auto region = m->mem.add_region(fmt::format("virtio-mem{}", i), o.addr, std::move(*backing));
    if (!region.has_value()) return unexpected(region.error());
    auto dev = VirtioMemDevice::create(o, m->mem, (*region)->backing);
    if (!dev.has_value()) return unexpected(dev.error());
    m->gates.push_back(std::make_unique<PopulateGate>());
    (*dev)->set_discard_hooks(m->gates.back().get());
    m->checkers.push_back(std::make_unique<InvariantChecker>(**dev));
    m->devices.push_back(std::move(*dev));
  }
  for (unsigned i = 0; i < setup.devices; ++i) {
    if (options_.transport == Transport::Pci) {
      m->pci_functions.push_back(std::make_unique<VirtioPciTransport>(*m->devices[i]));
      if (!m->pci.attach(static_cast<uint8_t>(1 + i), *m->pci_functions.back()))
        return unexpected(Error{"cannot attach the PCI function"});
    } else {
      m->mmio_functions.push_back(std::make_unique<VirtioMmioTransport>(*m->devices[i]));
      layout.mmio_bases.push_back(kMmioBase + i * kMmioStride);
    }
  }
  machine_ = std::move(m);
  return layout;
}

VirtioMemDevice* ReferenceTarget::device(unsigned i) {
  if (!machine_ || i >= machine_->devices.size()) return nullptr;
  return machine_->devices[i].get();
}

Status ReferenceTarget::running() const {
  if (!machine_) return unexpected(Error{"no machine started"});
  return ok();
}

Result<uint32_t> ReferenceTarget::io_read(uint16_t port, unsigned size) {
  VMEM_TRY(running());
  return machine_->pci.io_read(port, size);
}

Status ReferenceTarget::io_write(uint16_t port, unsigned size, uint32_t value) {
  VMEM_TRY(running());
  machine_->pci.io_write(port, size, value);
  return ok();
}

Result<uint64_t> ReferenceTarget::mmio_read(uint64_t gpa, unsigned size) {
  VMEM_TRY(running());
  if (options_.transport == Transport::Pci) {
    if (auto v = machine_->pci.mmio_read(gpa, size)) return *v;
  } else {
    for (std::size_t i = 0; i < machine_->mmio_functions.size(); ++i) {
      const uint64_t base = kMmioBase + i * kMmioStride;
      if (gpa >= base && gpa + size <= base + mmio::kWindowSize)
        return machine_->mmio_functions[i]->read(gpa - base, size);
    }
  }
  // Unclaimed MMIO reads as all ones, as on a PC.
  return size >= 8 ? ~0ULL : (1ULL << (8 * size)) - 1;
}

Status ReferenceTarget::mmio_write(uint64_t gpa, unsigned size, uint64_t value) {
  VMEM_TRY(running());
  if (options_.transport == Transport::Pci) {
    (void)machine_->pci.mmio_write(gpa, size, value);
  } else {
    for (std::size_t i = 0; i < machine_->mmio_functions.size(); ++i) {
      const uint64_t base = kMmioBase + i * kMmioStride;
      if (gpa >= base && gpa + size <= base + mmio::kWindowSize)
        machine_->mmio_functions[i]->write(gpa - base, size, value);
    }
  }
  // A register write may have been a queue notification: requests ran synchronously.
  check_invariants();
  return ok();
}

Status ReferenceTarget::mem_read(uint64_t gpa, std::span<uint8_t> out) {
  VMEM_TRY(running());
  return from(machine_->mem.read(gpa, out), gpa);
}

Status ReferenceTarget::mem_write(uint64_t gpa, std::span<const uint8_t> in) {
  VMEM_TRY(running());
  return from(machine_->mem.write(gpa, in), gpa);
}

Status ReferenceTarget::mem_fill(uint64_t gpa, uint64_t len, uint8_t byte) {
  VMEM_TRY(running());
  constexpr uint64_t kChunk = 1ULL << 20;
  std::vector<uint8_t> chunk(std::min(len, kChunk), byte);
  for (uint64_t done = 0; done < len; done += kChunk) {
    const uint64_t n = std::min(kChunk, len - done);
    VMEM_TRY(from(machine_->mem.write(gpa + done, std::span(chunk).first(n)), gpa + done));
  }
  return ok();
}

Result<bool> ReferenceTarget::interrupt_asserted(unsigned index) {
  VMEM_TRY(running());
  if (index >= machine_->devices.size()) return unexpected(Error{"no such device"});
  if (options_.transport == Transport::Pci) return machine_->pci_functions[index]->intx_asserted();
  return machine_->mmio_functions[index]->interrupt_asserted();
}

Status ReferenceTarget::set_requested_size(unsigned index, uint64_t size) {
  VMEM_TRY(running());
  if (index >= machine_->devices.size()) return unexpected(Error{"no such device"});
  VMEM_TRY(machine_->devices[index]->set_requested_size(size));
  check_invariants();
  return ok();
}

Status ReferenceTarget::refuse_next_populate(unsigned index) {
  VMEM_TRY(running());
  if (index >= machine_->gates.size()) return unexpected(Error{"no such device"});
  machine_->gates[index]->refuse_next();
  return ok();
}

Status ReferenceTarget::system_reset() {
  VMEM_TRY(running());
  for (auto& d : machine_->devices)
    d->system_reset();
  // As on a real machine, the reset also clears every PCI function (BARs, command register).
  machine_->pci.reset();
  for (auto& t : machine_->mmio_functions)
    t->write(mmio::kStatus, 4, 0);
  check_invariants();
  return ok();
}

Status ReferenceTarget::set_busy(bool busy) {
  VMEM_TRY(running());
  for (auto& d : machine_->devices)
    d->set_busy(busy);
  return ok();
}

Status ReferenceTarget::suspend_resume() {
  VMEM_TRY(running());
  for (auto& d : machine_->devices)
    d->wakeup_reset();
  check_invariants();
  return ok();
}

void ReferenceTarget::check_invariants() {
  for (auto& c : machine_->checkers) {
    for (const Violation& v : c->check_incremental())
      violations_.push_back(to_string(v));
  }
}

std::vector<std::string> ReferenceTarget::take_violations() {
  if (machine_) {
    for (auto& c : machine_->checkers) {
      for (const Violation& v : c->check_full())
        violations_.push_back(to_string(v));
    }
  }
  return std::exchange(violations_, {});
}

}  // namespace vmem::conformance
