// The `driver` fuzz target's device: a Target whose every answer (register values, guest-memory
// contents the driver reads back, interrupt levels, the outcome of host actions) is taken from
// the fuzz input, in the order the suite asks. Writes always succeed and are forgotten. When the
// input runs out, every call fails, as a VMM that died would.
//
// RecordingTarget writes that input: it forwards to a real target (the reference) and records
// each answer in the same order and encoding, so a seed replays a well-behaved device exactly
// and mutations of it are hostile devices near the real paths.
#pragma once

#include <cstring>
#include <string>
#include <vector>

#include "conformance/target/target.h"

namespace vmem::fuzz {

using conformance::Capability;
using conformance::DeviceSetup;
using conformance::MachineLayout;
using conformance::Target;
using conformance::Transport;

// The machine both sides agree on: 64 MiB of scratch RAM at 1 MiB, the reference's addresses.
inline MachineLayout scripted_layout(Transport t) {
  MachineLayout l;
  l.transport = t;
  l.scratch_base = 1ULL << 20;
  l.scratch_size = 63ULL << 20;
  l.bar_window = 0xe0000000;
  if (t == Transport::Mmio) l.mmio_bases = {0xfeb00000, 0xfeb00200};
  return l;
}

class ScriptedDevice final : public Target {
 public:
  ScriptedDevice(const uint8_t* data, std::size_t size) : p_(data), end_(data + size) {}

  std::string name() const override { return "scripted"; }
  bool has(Capability) const override { return true; }
  Result<MachineLayout> start(const DeviceSetup&) override {
    VMEM_ASSIGN_OR_RETURN(uint64_t t, take(1));
    return scripted_layout((t & 1) ? Transport::Mmio : Transport::Pci);
  }
  Result<uint32_t> io_read(uint16_t, unsigned size) override {
    VMEM_ASSIGN_OR_RETURN(uint64_t v, take(size));
    return static_cast<uint32_t>(v);
  }
  Status io_write(uint16_t, unsigned, uint32_t) override { return ok(); }
  Result<uint64_t> mmio_read(uint64_t, unsigned size) override { return take(size); }
  Status mmio_write(uint64_t, unsigned, uint64_t) override { return ok(); }
  Status mem_read(uint64_t, std::span<uint8_t> out) override {
    if (static_cast<std::size_t>(end_ - p_) < out.size()) return unexpected(exhausted());
    std::memcpy(out.data(), p_, out.size());
    p_ += out.size();
    return ok();
  }
  Status mem_write(uint64_t, std::span<const uint8_t>) override { return ok(); }
  Status mem_fill(uint64_t, uint64_t, uint8_t) override { return ok(); }
  Result<bool> interrupt_asserted(unsigned) override {
    VMEM_ASSIGN_OR_RETURN(uint64_t v, take(1));
    return (v & 1) != 0;
  }
  Status set_requested_size(unsigned, uint64_t) override { return host(); }
  Status system_reset() override { return host(); }
  Status set_busy(bool) override { return host(); }
  Status suspend_resume() override { return host(); }
  Status refuse_next_populate(unsigned) override { return host(); }

 private:
  static Error exhausted() { return Error{"the device stopped answering (end of input)"}; }
  Result<uint64_t> take(unsigned n) {
    if (static_cast<std::size_t>(end_ - p_) < n) return unexpected(exhausted());
    uint64_t v = 0;
    for (unsigned i = 0; i < n; ++i)
      v |= uint64_t{p_[i]} << (8 * i);
    p_ += n;
    return v;
  }
  Status host() {
    VMEM_ASSIGN_OR_RETURN(uint64_t v, take(1));
    if (v != 0) return unexpected(Error{"the host refused"});
    return ok();
  }

  const uint8_t* p_;
  const uint8_t* end_;
};

class RecordingTarget final : public Target {
 public:
  explicit RecordingTarget(Target& inner) : inner_(inner) {}
  const std::vector<uint8_t>& recorded() const { return out_; }

  std::string name() const override { return inner_.name(); }
  bool has(Capability c) const override { return inner_.has(c); }
  Result<MachineLayout> start(const DeviceSetup& s) override {
    VMEM_ASSIGN_OR_RETURN(MachineLayout l, inner_.start(s));
    put(l.transport == Transport::Mmio ? 1 : 0, 1);
    return l;
  }
  Result<uint32_t> io_read(uint16_t port, unsigned size) override {
    VMEM_ASSIGN_OR_RETURN(uint32_t v, inner_.io_read(port, size));
    put(v, size);
    return v;
  }
  Status io_write(uint16_t port, unsigned size, uint32_t v) override {
    return inner_.io_write(port, size, v);
  }
  Result<uint64_t> mmio_read(uint64_t gpa, unsigned size) override {
    VMEM_ASSIGN_OR_RETURN(uint64_t v, inner_.mmio_read(gpa, size));
    put(v, size);
    return v;
  }
  Status mmio_write(uint64_t gpa, unsigned size, uint64_t v) override {
    return inner_.mmio_write(gpa, size, v);
  }
  Status mem_read(uint64_t gpa, std::span<uint8_t> out) override {
    VMEM_TRY(inner_.mem_read(gpa, out));
    out_.insert(out_.end(), out.begin(), out.end());
    return ok();
  }
  Status mem_write(uint64_t gpa, std::span<const uint8_t> in) override {
    return inner_.mem_write(gpa, in);
  }
  Status mem_fill(uint64_t gpa, uint64_t n, uint8_t b) override {
    return inner_.mem_fill(gpa, n, b);
  }
  Result<bool> interrupt_asserted(unsigned i) override {
    VMEM_ASSIGN_OR_RETURN(bool v, inner_.interrupt_asserted(i));
    put(v ? 1 : 0, 1);
    return v;
  }
  Status set_requested_size(unsigned i, uint64_t s) override {
    return host(inner_.set_requested_size(i, s));
  }
  Status system_reset() override { return host(inner_.system_reset()); }
  Status set_busy(bool b) override { return host(inner_.set_busy(b)); }
  Status suspend_resume() override { return host(inner_.suspend_resume()); }
  Status refuse_next_populate(unsigned index) override {
    return host(inner_.refuse_next_populate(index));
  }

 private:
  void put(uint64_t v, unsigned n) {
    for (unsigned i = 0; i < n; ++i)
      out_.push_back(static_cast<uint8_t>(v >> (8 * i)));
  }
  Status host(Status s) {
    put(s.has_value() ? 0 : 1, 1);
    return s;
  }
  Target& inner_;
  std::vector<uint8_t> out_;
};

}  // namespace vmem::fuzz
