#include "conformance/target/qemu_target.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <thread>

#include "conformance/target/line_channel.h"
#include "conformance/target/qemu_process.h"
#include "conformance/target/qmp_client.h"
#include "conformance/target/qtest_bus.h"

namespace vmem::conformance {

namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr uint64_t kMiB = 1ULL << 20;
constexpr uint64_t kGiB = 1ULL << 30;
// QEMU 7.2 keeps at most this many NUMA nodes (MAX_NODES).
constexpr unsigned kMaxNumaNodes = 128;

bool is_q35(const std::string& machine) {
  return machine.starts_with("q35") || machine.starts_with("pc-q35");
}

// A size as QEMU's option parser reads it: with a binary suffix when exact, else in bytes.
std::string qemu_size(uint64_t bytes) {
  if (bytes != 0) {
    for (auto [shift, suffix] : {std::pair{40, 'T'}, {30, 'G'}, {20, 'M'}, {10, 'K'}}) {
      if (bytes % (1ULL << shift) == 0) return fmt::format("{}{}", bytes >> shift, suffix);
    }
  }
  return fmt::format("{}", bytes);
}

uint32_t pci_config_address(unsigned slot, unsigned reg) {
  return 0x80000000u | slot << 11 | (reg & 0xfc);
}

}  // namespace

bool kvm_usable() {
  const int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (kvm < 0) return false;
  bool usable = ioctl(kvm, KVM_GET_API_VERSION, 0) == KVM_API_VERSION;
  if (usable) {
    // /dev/kvm can exist where creating a VM fails (nested virtualisation switched off).
    const int vm = ioctl(kvm, KVM_CREATE_VM, 0);
    usable = vm >= 0;
    if (vm >= 0) close(vm);
  }
  close(kvm);
  return usable;
}

QemuTarget::QemuTarget(QemuTargetOptions options) : options_(std::move(options)) {}

QemuTarget::~QemuTarget() {
  stop();
}

bool QemuTarget::has(Capability c) const {
  switch (c) {
    case Capability::SetRequestedSize:
    case Capability::SystemReset:
    case Capability::BusyWindow:
    case Capability::NumaNode:
    case Capability::TwoDevices:
    case Capability::UnpluggedInaccessible:
      return true;
    case Capability::Interrupts:
      return is_q35(options_.machine);
    case Capability::SuspendResume:
    case Capability::RefusePopulate:  // nothing outside QEMU makes its populate fail
      return false;
  }
  return false;
}

pid_t QemuTarget::pid() const {
  return process_ ? process_->pid() : -1;
}

Result<unsigned> QemuTarget::device_gsi(unsigned index) const {
  if (index >= gsi_.size()) {
    return unexpected(Error{fmt::format("qemu: no device {} in this machine", index)});
  }
  return gsi_[index];
}

// --- Command line ------------------------------------------------------------------------------

Result<std::vector<std::string>> QemuTarget::machine_args(const QemuTargetOptions& options,
                                                          const DeviceSetup& setup,
                                                          const std::string& accel) {
  if (setup.devices != 1 && setup.devices != 2) {
    return unexpected(
        Error{fmt::format("qemu: {} devices asked, 1 or 2 supported", setup.devices)});
  }
  if (setup.acpi_pxm && setup.node_id >= kMaxNumaNodes) {
    return unexpected(Error{fmt::format("qemu: node {} asked, QEMU has at most {} NUMA nodes",
                                        setup.node_id, kMaxNumaNodes)});
  }
  if (options.ram_size < 32 * kMiB || options.ram_size % kMiB != 0) {
    return unexpected(
        Error{fmt::format("qemu: guest RAM {:#x} must be a multiple of 1 MiB and at least 32 MiB",
                          options.ram_size)});
  }
  const std::string bus = is_q35(options.machine) ? "pcie.0" : "pci.0";
  // Room for the devices in QEMU's device-memory area, with one block of alignment slack each.
  uint64_t device_memory = 0;
  for (unsigned i = 0; i < setup.devices; ++i)
    device_memory += setup.region_size + setup.block_size;
  uint64_t maxmem = options.ram_size + device_memory;
  maxmem = (maxmem + kMiB - 1) / kMiB * kMiB;

  std::vector<std::string> a = {
      "-machine", options.machine,
      "-accel",   accel,
      "-S",       "-display",
      "none",     "-nodefaults",
      "-m",       fmt::format("{}M,maxmem={}", options.ram_size / kMiB, qemu_size(maxmem))};
  // qemu64 has 40 physical address bits, and as an AMD model QEMU moves RAM above 4 GiB to 1 TiB
  // once the highest address would reach the HyperTransport hole at 1012 GiB; then 40 bits are
  // too few ("phys-bits too low"). The estimate (start at 4 GiB, device memory, 1 GiB alignment
  // per device, the 32 GiB 64-bit PCI hole) errs on the large side; measured, maxmem 976 GiB
  // still starts with 40 bits.
  const uint64_t highest = 4 * kGiB + maxmem + setup.devices * kGiB + 32 * kGiB;
  if (highest >= 0xfd00000000ULL) {
    a.insert(a.end(), {"-cpu", "qemu64,phys-bits=48"});
  }
  if (setup.acpi_pxm) {
    // NUMA wants all of RAM in nodes, and nodes numbered from 0 without gaps; the device's node
    // may be memory-less.
    a.insert(a.end(),
             {"-object",
              fmt::format("memory-backend-ram,id=ram-node0,size={}", qemu_size(options.ram_size)),
              "-numa", "node,nodeid=0,memdev=ram-node0"});
    for (unsigned n = 1; n <= setup.node_id; ++n) {
      a.insert(a.end(), {"-numa", fmt::format("node,nodeid={}", n)});
    }
  }
  for (unsigned i = 0; i < setup.devices; ++i) {
    // reserve=off (MAP_NORESERVE) for every region: plugged blocks are touched on demand
    // anyway, and without it a region larger than RAM plus swap fails to start under the default
    // overcommit heuristic.
    a.insert(a.end(), {"-object", fmt::format("memory-backend-ram,id=mem{},size={},reserve=off", i,
                                              qemu_size(setup.region_size))});
    std::string device = fmt::format(
        "virtio-mem-pci,id=vm{0},memdev=mem{0},bus={1},addr={2:#x},block-size={3},"
        "requested-size={4},unplugged-inaccessible={5}",
        i, bus, kFirstSlot + i, qemu_size(setup.block_size), qemu_size(setup.requested_size),
        setup.unplugged_inaccessible ? "on" : "off");
    if (setup.acpi_pxm) device += fmt::format(",node={}", setup.node_id);
    a.insert(a.end(), {"-device", device});
  }
  a.insert(a.end(), options.extra_args.begin(), options.extra_args.end());
  return a;
}

// --- Life cycle --------------------------------------------------------------------------------

Status QemuTarget::usable() const {
  if (!process_) return unexpected(Error{"qemu: no QEMU is running (call start() first)"});
  if (failed_) {
    return unexpected(
        Error{fmt::format("qemu: the QEMU is unusable (start() replaces it): {}", *failed_)});
  }
  return ok();
}

std::string QemuTarget::diagnose(const std::string& message) {
  const bool channels_ok =
      qtest_ && qtest_->healthy() && qmp_ && qmp_->channel().healthy() && process_->running();
  if (channels_ok) return message;
  // A closed socket means QEMU is on its way out: give the exit a moment to land. After a
  // timeout it is hung, and waiting would only delay the report.
  if (qtest_->peer_closed() || qmp_->channel().peer_closed()) {
    process_->wait_exit(std::chrono::milliseconds(1000));
  }
  failed_ = fmt::format("{}; {}", message, process_->describe());
  return *failed_;
}

template <class T>
Result<T> QemuTarget::checked(Result<T> r) {
  if (r.has_value()) return r;
  return unexpected(Error{diagnose(r.error().message)});
}

void QemuTarget::flush_transcript() {
  if (qtest_) {
    for (std::string& line : qtest_->take_transcript())
      transcript_.push_back(std::move(line));
  }
  if (qmp_) {
    for (std::string& line : qmp_->channel().take_transcript()) {
      transcript_.push_back(std::move(line));
    }
  }
}

std::vector<std::string> QemuTarget::take_transcript() {
  flush_transcript();
  std::vector<std::string> out;
  out.swap(transcript_);
  return out;
}

Result<json> QemuTarget::qmp(std::string_view command, const json& arguments) {
  // qtest lines sent so far go first, so that the transcript keeps the order of events.
  flush_transcript();
  auto r = checked(qmp_->execute(command, arguments));
  flush_transcript();
  return r;
}

Result<json> QemuTarget::qmp_execute(std::string_view command, const json& arguments) {
  VMEM_TRY(usable());
  return qmp(command, arguments);
}

void QemuTarget::stop() {
  if (!process_) return;
  flush_transcript();
  if (!failed_ && qmp_ && qmp_->channel().healthy() && process_->running()) {
    qmp_->channel().set_timeout(options_.stop_timeout);
    [[maybe_unused]] auto quit = qmp_->execute("quit");
    process_->wait_exit(options_.stop_timeout);
    // The quit is teardown, not part of what a check did.
    [[maybe_unused]] auto dropped = qmp_->channel().take_transcript();
  }
  bus_.reset();
  qtest_.reset();
  qmp_.reset();
  [[maybe_unused]] auto stopped = process_->stop(options_.stop_timeout);
  process_.reset();
  setup_.reset();
  requested_.clear();
  gsi_.clear();
  busy_ = false;
  failed_.reset();
}

Status QemuTarget::launch(const DeviceSetup& setup) {
  accel_ = options_.accel.empty() ? (kvm_usable() ? "kvm" : "tcg") : options_.accel;
  auto args = machine_args(options_, setup, accel_);
  if (!args.has_value()) return unexpected(args.error());
  QemuProcess::Options po;
  po.binary = options_.binary;
  po.args = *args;
  po.connect_timeout = options_.start_timeout;
  auto process = QemuProcess::start(po);
  if (!process.has_value()) {
    return unexpected(
        Error{fmt::format("qemu: could not start QEMU: {}", process.error().message)});
  }
  process_ = std::move(*process);
  // The binary as resolved, so that the replay runs the same QEMU.
  args->insert(args->begin(), process_->argv().front());
  reproducer_header_ =
      fmt::format("# qemu: {}\n# replay: conformance/replay/vmem-replay qemu REPRO [--qemu BINARY]",
                  shell_join(*args));

  LineChannel::Options qo;
  qo.timeout = options_.call_timeout;
  qo.name = "qtest";
  qo.record_replies = options_.record_replies;
  const int qtest_fd = process_->take_qtest_fd();
  qtest_ = std::make_unique<LineChannel>(qtest_fd, qtest_fd, qo);
  bus_ = std::make_unique<QtestBus>(*qtest_);
  LineChannel::Options mo = qo;
  mo.name = "QMP";
  mo.transcript_prefix = "qmp ";
  const int qmp_fd = process_->take_qmp_fd();
  qmp_ = std::make_unique<QmpClient>(std::make_unique<LineChannel>(qmp_fd, qmp_fd, mo));

  auto fail = [&](const Error& e) -> Status {
    std::string why = diagnose(e.message);
    // QEMU connects before it creates the devices, so a refused device option shows up here:
    // then its stderr is the whole story.
    if (!process_->running()) why = process_->describe();
    stop();
    return unexpected(Error{fmt::format("qemu: QEMU failed during start-up: {}", why)});
  };
  qmp_->channel().set_timeout(options_.start_timeout);
  if (auto h = qmp_->handshake(); !h.has_value()) return fail(h.error());
  qmp_->channel().set_timeout(options_.call_timeout);
  // A replay does its own handshake.
  [[maybe_unused]] auto handshake_lines = qmp_->channel().take_transcript();

  transcript_.push_back(fmt::format("# QEMU started for {}", describe(setup)));
  if (auto l = locate_devices(setup.devices); !l.has_value()) return fail(l.error());
  if (is_q35(options_.machine)) {
    if (auto i = bus_->intercept_irqs("ioapic"); !i.has_value()) return fail(i.error());
  }
  setup_ = setup;
  requested_.assign(setup.devices, setup.requested_size);
  busy_ = false;
  return ok();
}

Status QemuTarget::locate_devices(unsigned count) {
  gsi_.clear();
  for (unsigned i = 0; i < count; ++i) {
    const unsigned slot = kFirstSlot + i;
    VMEM_TRY(bus_->io_write(0xcf8, 4, pci_config_address(slot, 0x00)));
    auto id = bus_->io_read(0xcfc, 4);
    if (!id.has_value()) return unexpected(id.error());
    if (*id != 0x10581af4) {
      return unexpected(Error{fmt::format(
          "expected virtio-mem (1af4:1058) at 00:{:02x}.0, found vendor:device {:04x}:{:04x}", slot,
          *id & 0xffff, *id >> 16)});
    }
    VMEM_TRY(bus_->io_write(0xcf8, 4, pci_config_address(slot, 0x3c)));
    auto reg = bus_->io_read(0xcfc, 4);
    if (!reg.has_value()) return unexpected(reg.error());
    const unsigned pin = (*reg >> 8) & 0xff;
    if (pin < 1 || pin > 4) {
      return unexpected(Error{fmt::format("00:{:02x}.0 has interrupt pin {}", slot, pin)});
    }
    gsi_.push_back(16 + 4 + (slot + pin - 1) % 4);
  }
  return ok();
}

Status QemuTarget::wait_migration(std::string_view status, std::string* last) {
  // The polls are not part of the transcript: the directive stands for them.
  flush_transcript();
  const auto deadline = Clock::now() + options_.reset_timeout;
  for (;;) {
    auto r = checked(qmp_->execute("query-migrate"));
    if (!r.has_value()) return unexpected(r.error());
    const auto it = r->find("status");
    *last = it != r->end() && it->is_string() ? it->get<std::string>() : "none";
    if (*last == status) break;
    if (*last == "failed" || *last == "completed" || Clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  [[maybe_unused]] auto polls = qmp_->channel().take_transcript();
  if (*last != status) {
    return unexpected(
        Error{fmt::format("qemu: the migration is '{}', not '{}' (waited up to {} ms)", *last,
                          status, options_.reset_timeout.count())});
  }
  transcript_.push_back(fmt::format("qmp-wait migration {}", status));
  return ok();
}

Status QemuTarget::reset_for_reuse(const DeviceSetup& setup) {
  if (busy_) VMEM_TRY(set_busy(false));
  // A resize survives a system reset (requested-size is a property, not device state): restore
  // it first, so that the reset recomputes the usable region from the setup's value.
  for (unsigned i = 0; i < requested_.size(); ++i) {
    if (requested_[i] != setup.requested_size) {
      VMEM_TRY(set_requested_size(i, setup.requested_size));
    }
  }
  VMEM_TRY(system_reset());
  // So that each check's transcript replays on its own, against a fresh QEMU: the interception is
  // repeated (QEMU answers OK to a repeat for the same controller).
  if (is_q35(options_.machine)) return checked(bus_->intercept_irqs("ioapic"));
  return ok();
}

Result<MachineLayout> QemuTarget::start(const DeviceSetup& setup) {
  MachineLayout layout;
  layout.transport = Transport::Pci;
  layout.scratch_base = kScratchBase;
  layout.scratch_size = kScratchSize;
  layout.bar_window = kBarWindow;

  // A setup QEMU cannot take is refused before the running QEMU is given up.
  if (auto args = machine_args(options_, setup, "tcg"); !args.has_value()) {
    return unexpected(args.error());
  }
  if (process_ && !failed_ && setup_ && *setup_ == setup) {
    auto reused = reset_for_reuse(setup);
    if (reused.has_value()) return layout;
    // Whatever went wrong, a fresh QEMU is a correct answer to start().
    transcript_.push_back(
        fmt::format("# reset for reuse failed, restarting QEMU: {}", reused.error().message));
  }
  stop();
  VMEM_TRY(launch(setup));
  return layout;
}

// --- The guest's side --------------------------------------------------------------------------

Result<uint32_t> QemuTarget::io_read(uint16_t port, unsigned size) {
  VMEM_TRY(usable());
  return checked(bus_->io_read(port, size));
}

Status QemuTarget::io_write(uint16_t port, unsigned size, uint32_t value) {
  VMEM_TRY(usable());
  return checked(bus_->io_write(port, size, value));
}

Result<uint64_t> QemuTarget::mmio_read(uint64_t gpa, unsigned size) {
  VMEM_TRY(usable());
  return checked(bus_->mmio_read(gpa, size));
}

Status QemuTarget::mmio_write(uint64_t gpa, unsigned size, uint64_t value) {
  VMEM_TRY(usable());
  return checked(bus_->mmio_write(gpa, size, value));
}

Status QemuTarget::mem_read(uint64_t gpa, std::span<uint8_t> out) {
  VMEM_TRY(usable());
  return checked(bus_->mem_read(gpa, out));
}

Status QemuTarget::mem_write(uint64_t gpa, std::span<const uint8_t> in) {
  VMEM_TRY(usable());
  return checked(bus_->mem_write(gpa, in));
}

Status QemuTarget::mem_fill(uint64_t gpa, uint64_t len, uint8_t byte) {
  VMEM_TRY(usable());
  return checked(bus_->mem_fill(gpa, len, byte));
}

Result<bool> QemuTarget::interrupt_asserted(unsigned index) {
  VMEM_TRY(usable());
  if (!has(Capability::Interrupts)) {
    return unexpected(Error{
        fmt::format("qemu: interrupt lines are observed on q35 only, not {}", options_.machine)});
  }
  auto gsi = device_gsi(index);
  if (!gsi.has_value()) return unexpected(gsi.error());
  // A host action on the QMP socket (a resize) raises the line on the qtest socket before QMP
  // replies, so the lines already sent are all there is to read.
  return checked(bus_->irq_level_now(*gsi));
}

// --- The host's side ---------------------------------------------------------------------------

Status QemuTarget::set_requested_size(unsigned index, uint64_t size) {
  VMEM_TRY(usable());
  if (index >= requested_.size()) {
    return unexpected(Error{fmt::format("qemu: no device {} in this machine", index)});
  }
  auto r = qmp("qom-set", {{"path", fmt::format("/machine/peripheral/vm{}", index)},
                           {"property", "requested-size"},
                           {"value", size}});
  if (!r.has_value()) return unexpected(r.error());
  requested_[index] = size;
  return ok();
}

Status QemuTarget::refuse_next_populate(unsigned) {
  return unexpected(Error{"qemu: no host interface makes a populate fail"});
}

Status QemuTarget::system_reset() {
  VMEM_TRY(usable());
  qmp_->clear_events();
  auto r = qmp("system_reset");
  if (!r.has_value()) return unexpected(r.error());
  // The reset itself runs later in QEMU's main loop; qtest lines sent before RESET could see the
  // machine half reset.
  auto event = checked(qmp_->wait_event("RESET", options_.reset_timeout));
  if (!event.has_value()) return unexpected(event.error());
  transcript_.push_back("qmp-wait event RESET");
  return checked(qtest_->drain_async());
}

Status QemuTarget::set_busy(bool busy) {
  VMEM_TRY(usable());
  if (busy == busy_) return ok();
  std::string status;
  if (busy) {
    VMEM_TRY(qmp("migrate-set-parameters", {{"max-bandwidth", kBusyBandwidth}}));
    VMEM_TRY(qmp("migrate", {{"uri", "exec:cat > /dev/null"}}));
    busy_ = true;  // from here on a start() must end it, even if the check below fails
    return wait_migration("active", &status);
  }
  auto before = qmp("query-migrate");
  if (!before.has_value()) return unexpected(before.error());
  const auto status_field = before->is_object() ? before->find("status") : before->end();
  const bool completed = status_field != before->end() && *status_field == "completed";
  VMEM_TRY(qmp("migrate_cancel"));
  busy_ = false;
  if (completed) {
    return unexpected(Error{
        "qemu: the busy window had already ended: the throttled migration completed (the device "
        "may have answered requests normally before set_busy(false))"});
  }
  return wait_migration("cancelled", &status);
}

Status QemuTarget::suspend_resume() {
  return unexpected(
      Error{"qemu: no suspend-to-RAM: the vCPUs never run under -S, so no guest can enter S3 "
            "(decisions D14)"});
}

}  // namespace vmem::conformance
