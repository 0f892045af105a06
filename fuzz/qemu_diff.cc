// Fuzz target `qemu_diff`: the same operation sequence against Debian's QEMU (over qtest and QMP,
// the conformance suite's QemuTarget) and against the reference in profile qemu-7.2, both driven
// by the suite's register-level driver. Operations are what QEMU over qtest can do: guest
// requests (addresses and sizes as `ops` picks them, fuzz/common/pick.h), host resizes, system
// reset, device reset, the busy window, and STATE sweeps.
//
// Oracle: every answer (and an ACKed STATE's state), every resize's acceptance and, after every
// operation, every configuration field are the same on both sides. A difference, or a QEMU that
// stops answering, is a finding: the input is kept, and VMEM_FUZZ_REPRO=FILE receives the QEMU
// side as a reproducer (`conformance/replay/vmem-replay qemu FILE`), VMEM_FUZZ_TRACE=FILE the
// operations with QEMU's answers as a trace that `vmemcheck replay` runs on the reference.
//
// One QEMU is kept across inputs and reset between them (QemuTarget::start with the same setup).
// Environment: VMEM_QEMU (the binary, default qemu-system-x86_64), VMEM_QEMU_ACCEL (default: kvm
// when usable, else tcg).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>

#include "conformance/driver/mem_driver.h"
#include "conformance/driver/transport_driver.h"
#include "conformance/target/qemu_target.h"
#include "conformance/target/reference_target.h"
#include "fuzz/common/fuzz_support.h"
#include "fuzz/common/pick.h"
#include "fuzz/common/trace_log.h"

namespace {

using namespace vmem;
using namespace vmem::conformance;

// The device both sides get: 1 GiB of 2 MiB blocks, 256 MiB requested (QEMU keeps its process
// while the setup stays the same).
const DeviceSetup kSetup{};
constexpr auto kTimeout = std::chrono::milliseconds(2000);
constexpr int kMaxSteps = 48;  // each step is a few qtest round trips

// One side of the comparison: a target and the driver of its device.
struct Side {
  const char* name;
  Target* target = nullptr;
  MachineLayout layout;
  std::unique_ptr<MemDriver> driver;

  // Probes the device (again, after a system reset cleared the BARs) and initializes it.
  Status attach() {
    VMEM_ASSIGN_OR_RETURN(auto transport, probe(*target, layout, VIRTIO_ID_MEM, 0));
    driver =
        std::make_unique<MemDriver>(*target, std::move(transport), layout.scratch_base, kTimeout);
    VMEM_ASSIGN_OR_RETURN(uint8_t status, driver->initialize());
    if (status != 0x0f) return unexpected(Error{fmt::format("status {:#x} after init", status)});
    return ok();
  }
};

QemuTarget& qemu() {
  static QemuTarget* q = [] {
    QemuTargetOptions o;
    if (const char* b = std::getenv("VMEM_QEMU")) o.binary = b;
    if (const char* a = std::getenv("VMEM_QEMU_ACCEL")) o.accel = a;
    return new QemuTarget(o);  // lives until exit; QemuProcess reaps QEMU then
  }();
  return *q;
}

class Diff {
 public:
  Diff() : trace_("qemu_diff") {}

  [[noreturn]] void finding(const char* what, const std::string& detail) {
    trace_.line("# finding: {} {}", what, detail);
    trace_.write();
    if (const char* path = std::getenv("VMEM_FUZZ_REPRO")) {
      std::ofstream out(path);
      out << qemu().reproducer_header() << "\n";
      for (const std::string& line : qemu().take_transcript())
        out << line << "\n";
    }
    fuzz::oracle_failure("qemu_diff", what, detail);
  }

  // Both sides, or a finding that says which one failed.
  template <class F>
  void both(const char* step, F&& f) {
    for (Side* s : {&q_, &r_}) {
      Status st = f(*s);
      if (!st.has_value())
        finding("a side failed", fmt::format("{}: {}: {}", step, s->name, st.error().message));
    }
  }

  WireConfig compare_config(const char* after) {
    auto qc = q_.driver->read_config();
    auto rc = r_.driver->read_config();
    if (!qc.has_value())
      finding("QEMU failed", fmt::format("config after {}: {}", after, qc.error().message));
    if (!rc.has_value()) finding("the reference failed", rc.error().message);
    trace_.line("config -> usable_region_size={:#x} plugged_size={:#x} requested_size={:#x}",
                qc->usable_region_size, qc->plugged_size, qc->requested_size);
    if (qc->usable_region_size != rc->usable_region_size || qc->plugged_size != rc->plugged_size ||
        qc->requested_size != rc->requested_size || qc->addr != rc->addr ||
        qc->region_size != rc->region_size || qc->block_size != rc->block_size) {
      finding("the configuration differs",
              fmt::format("after {}: QEMU usable {:#x} plugged {:#x} requested {:#x}, reference "
                          "usable {:#x} plugged {:#x} requested {:#x}",
                          after, qc->usable_region_size, qc->plugged_size, qc->requested_size,
                          rc->usable_region_size, rc->plugged_size, rc->requested_size));
    }
    return *qc;
  }

  void request(uint16_t type, uint64_t addr, uint16_t nb) {
    auto qa = q_.driver->request(type, addr, nb);
    auto ra = r_.driver->request(type, addr, nb);
    if (!qa.has_value())
      finding("QEMU failed", fmt::format("{}: {}", request_type_name(type), qa.error().message));
    if (!ra.has_value()) finding("the reference failed", ra.error().message);
    const bool state = type == VIRTIO_MEM_REQ_STATE && qa->type == VIRTIO_MEM_RESP_ACK;
    trace_.request(type, addr, nb, qa->type, qa->state);
    if (std::getenv("VMEM_FUZZ_VERBOSE") != nullptr)
      std::fprintf(stderr, "qemu_diff: %s %#llx+%u -> %u/%u\n", request_type_name(type),
                   static_cast<unsigned long long>(addr), nb, qa->type, qa->state);
    if (qa->type != ra->type || (state && qa->state != ra->state)) {
      finding("the answer differs",
              fmt::format("{} {:#x}+{}: QEMU {}/{}, reference {}/{}", request_type_name(type), addr,
                          nb, qa->type, qa->state, ra->type, ra->state));
    }
  }

  void run(fuzz::InputBytes& in) {
    // QEMU first: its region address is where the reference puts its own.
    auto layout = qemu().start(kSetup);
    if (!layout.has_value()) finding("QEMU did not start", layout.error().message);
    q_ = {"QEMU", &qemu(), *layout, nullptr};
    if (auto s = q_.attach(); !s.has_value()) finding("QEMU failed", s.error().message);
    auto first = q_.driver->read_config();
    if (!first.has_value()) finding("QEMU failed", first.error().message);
    reference_ = std::make_unique<ReferenceTarget>(ReferenceTargetOptions{
        Transport::Pci, Profile::Qemu72, "", BackingKind::Null, first->addr});
    auto rl = reference_->start(kSetup);
    if (!rl.has_value()) finding("the reference did not start", rl.error().message);
    r_ = {"reference", reference_.get(), *rl, nullptr};
    if (auto s = r_.attach(); !s.has_value()) finding("the reference failed", s.error().message);
    trace_.line(
        "device profile=qemu-7.2 addr={:#x} region_size={:#x} block_size={:#x} "
        "requested_size={:#x} ui=off backing=null",
        first->addr, kSetup.region_size, kSetup.block_size, kSetup.requested_size);
    trace_.line("init");
    WireConfig c = compare_config("start");

    bool busy = false;
    for (int step = 0; step < kMaxSteps && !in.empty(); ++step) {
      const uint8_t op = in.take<uint8_t>();
      switch (op % 8) {
        case 0:
        case 1:
        case 2:
        case 3: {
          const auto type = static_cast<uint16_t>(op >> 3 & 3);
          const uint64_t addr = fuzz::pick_addr(in, c);
          request(type, addr, fuzz::pick_nb(in));
          break;
        }
        case 4: {  // a host resize, aligned mostly
          uint64_t size = (in.take<uint16_t>() % (c.region_size / c.block_size + 2)) * c.block_size;
          if (op & 0x80) size += in.take<uint16_t>();
          const bool qa = qemu().set_requested_size(0, size).has_value();
          const bool ra = reference_->set_requested_size(0, size).has_value();
          trace_.line("host resize {:#x} -> {}", size, qa ? "ok" : "error");
          if (qa != ra)
            finding("a resize is accepted by one side only",
                    fmt::format("{:#x}: QEMU {}, reference {}", size, qa, ra));
          break;
        }
        case 5:
          if (op & 8) {
            both("device reset", [](Side& s) -> Status {
              VMEM_TRY(s.driver->reset());
              return s.attach();
            });
            trace_.line("host device_reset -> ok");
          } else {
            both("system reset", [](Side& s) -> Status {
              VMEM_TRY(s.target->system_reset());
              return s.attach();
            });
            trace_.line("host system_reset -> ok");
          }
          trace_.line("init");
          break;
        case 6:
          if (((op & 8) != 0) == busy) break;
          busy = !busy;
          both(busy ? "busy on" : "busy off", [&](Side& s) { return s.target->set_busy(busy); });
          trace_.line("host busy {} -> ok", busy ? "on" : "off");
          break;
        default: {  // a STATE sweep over the usable region
          const uint64_t blocks = c.usable_region_size / c.block_size;
          for (uint64_t b = 0; b < blocks; b += 0xffff)
            request(VIRTIO_MEM_REQ_STATE, c.addr + b * c.block_size,
                    static_cast<uint16_t>(std::min<uint64_t>(0xffff, blocks - b)));
          break;
        }
      }
      c = compare_config("an operation");
    }
    if (busy) both("busy off", [](Side& s) { return s.target->set_busy(false); });
    trace_.write();
    (void)qemu().take_transcript();  // the next input starts its own
  }

 private:
  fuzz::TraceLog trace_;
  std::unique_ptr<ReferenceTarget> reference_;
  Side q_;
  Side r_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::InputBytes in(data, size);
  Diff().run(in);
  return 0;
}
