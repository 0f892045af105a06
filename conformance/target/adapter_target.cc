#include "conformance/target/adapter_target.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include "conformance/adapter/adapter_server.h"
#include "conformance/target/child_process.h"
#include "conformance/target/line_channel.h"
#include "conformance/target/qtest_bus.h"

namespace vmem::conformance {

AdapterTarget::AdapterTarget(AdapterTargetOptions options) : options_(std::move(options)) {}

AdapterTarget::~AdapterTarget() {
  if (channel_ && channel_->healthy()) (void)channel_->send("quit");
  bus_.reset();
  channel_.reset();
  if (child_) (void)child_->stop(std::chrono::milliseconds(500));
}

Result<std::unique_ptr<AdapterTarget>> AdapterTarget::spawn(const AdapterTargetOptions& options) {
  std::unique_ptr<AdapterTarget> t(new AdapterTarget(options));
  VMEM_TRY(t->respawn());
  return t;
}

Result<std::unique_ptr<AdapterTarget>> AdapterTarget::connect(int read_fd, int write_fd,
                                                              const AdapterTargetOptions& options) {
  std::unique_ptr<AdapterTarget> t(new AdapterTarget(options));
  VMEM_TRY(t->attach(read_fd, write_fd));
  return t;
}

Status AdapterTarget::respawn() {
  bus_.reset();
  channel_.reset();
  if (child_) (void)child_->stop(std::chrono::milliseconds(500));
  child_.reset();
  int to_child[2], from_child[2];
  if (pipe2(to_child, O_CLOEXEC) != 0) return unexpected(Error{"pipe2 failed"});
  if (pipe2(from_child, O_CLOEXEC) != 0) {
    close(to_child[0]);
    close(to_child[1]);
    return unexpected(Error{"pipe2 failed"});
  }
  ChildProcess::Options o;
  o.argv = {"/bin/sh", "-c", options_.command};
  o.stdin_fd = to_child[0];
  o.stdout_fd = from_child[1];
  auto child = ChildProcess::spawn(o);
  close(to_child[0]);
  close(from_child[1]);
  if (!child.has_value()) {
    close(to_child[1]);
    close(from_child[0]);
    return unexpected(Error{
        fmt::format("cannot start the adapter '{}': {}", options_.command, child.error().message)});
  }
  child_ = std::move(*child);
  auto s = attach(from_child[0], to_child[1]);
  if (!s.has_value()) {
    return unexpected(
        Error{fmt::format("{} (the adapter {})", s.error().message, child_->describe())});
  }
  return ok();
}

Status AdapterTarget::attach(int read_fd, int write_fd) {
  LineChannel::Options o;
  o.timeout = options_.call_timeout;
  o.name = "adapter";
  o.record_replies = options_.record_replies;
  channel_ = std::make_unique<LineChannel>(read_fd, write_fd, o);
  bus_ = std::make_unique<QtestBus>(*channel_);
  VMEM_ASSIGN_OR_RETURN(std::string hello, channel_->call(fmt::format("vmemcheck-adapter {}",
                                                                      kAdapterProtocolVersion)));
  // OK vmemcheck-adapter 1 caps=a,b,c name=the rest of the line
  const auto w = split_protocol_line(hello);
  if (w.size() < 4 || w[0] != "OK" || w[1] != "vmemcheck-adapter" ||
      w[2] != std::to_string(kAdapterProtocolVersion) || w[3].substr(0, 5) != "caps=") {
    return unexpected(Error{fmt::format("the adapter's handshake reply is not protocol {}: '{}'",
                                        kAdapterProtocolVersion, hello)});
  }
  caps_.clear();
  std::string_view list = w[3].substr(5);
  while (!list.empty()) {
    const auto comma = list.find(',');
    const std::string_view name = list.substr(0, comma);
    // Capabilities this harness does not know are ignored: a newer adapter may offer more.
    if (auto c = capability_from_protocol_name(name)) caps_.insert(*c);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  const auto at = hello.find(" name=");
  name_ = at == std::string::npos ? "adapter" : "adapter:" + hello.substr(at + 6);
  (void)channel_->take_transcript();  // the handshake belongs to no check
  return ok();
}

Status AdapterTarget::usable() const {
  if (!channel_) return unexpected(Error{"the adapter is not running"});
  if (!channel_->healthy()) {
    std::string why = channel_->failure();
    if (child_) why += fmt::format("; the adapter {}", child_->describe());
    return unexpected(Error{why});
  }
  return ok();
}

Result<MachineLayout> AdapterTarget::start(const DeviceSetup& s) {
  // A dead or broken adapter is replaced, as a crashed QEMU is.
  if (!options_.command.empty() && (!channel_ || !channel_->healthy())) VMEM_TRY(respawn());
  VMEM_TRY(usable());
  VMEM_ASSIGN_OR_RETURN(
      std::string reply,
      channel_->call(fmt::format("start block-size={:#x} region-size={:#x} requested-size={:#x} "
                                 "node={} acpi-pxm={} unplugged-inaccessible={} devices={}",
                                 s.block_size, s.region_size, s.requested_size, s.node_id,
                                 s.acpi_pxm ? 1 : 0, s.unplugged_inaccessible ? 1 : 0, s.devices)));
  const auto w = split_protocol_line(reply);
  if (w.empty() || w[0] != "OK") return unexpected(Error{"start: " + reply});
  MachineLayout l;
  bool transport = false;
  for (std::size_t i = 1; i < w.size(); ++i) {
    const auto eq = w[i].find('=');
    if (eq == std::string_view::npos) return unexpected(Error{"start: malformed reply: " + reply});
    const std::string_view key = w[i].substr(0, eq), value = w[i].substr(eq + 1);
    if (key == "transport") {
      if (value != "pci" && value != "mmio") return unexpected(Error{"start: unknown transport"});
      l.transport = value == "pci" ? Transport::Pci : Transport::Mmio;
      transport = true;
    } else if (key == "scratch") {
      VMEM_ASSIGN_OR_RETURN(l.scratch_base, parse_protocol_number(value));
    } else if (key == "scratch-size") {
      VMEM_ASSIGN_OR_RETURN(l.scratch_size, parse_protocol_number(value));
    } else if (key == "bar-window") {
      VMEM_ASSIGN_OR_RETURN(l.bar_window, parse_protocol_number(value));
    } else if (key == "mmio") {
      std::string_view list = value;
      while (!list.empty()) {
        const auto comma = list.find(',');
        VMEM_ASSIGN_OR_RETURN(uint64_t base, parse_protocol_number(list.substr(0, comma)));
        l.mmio_bases.push_back(base);
        if (comma == std::string_view::npos) break;
        list.remove_prefix(comma + 1);
      }
    }  // unknown keys: a newer adapter's additions
  }
  if (!transport || l.scratch_size == 0)
    return unexpected(Error{"start: the reply lacks transport or scratch: " + reply});
  return l;
}

Result<uint32_t> AdapterTarget::io_read(uint16_t port, unsigned size) {
  VMEM_TRY(usable());
  return bus_->io_read(port, size);
}
Status AdapterTarget::io_write(uint16_t port, unsigned size, uint32_t value) {
  VMEM_TRY(usable());
  return bus_->io_write(port, size, value);
}
Result<uint64_t> AdapterTarget::mmio_read(uint64_t gpa, unsigned size) {
  VMEM_TRY(usable());
  return bus_->mmio_read(gpa, size);
}
Status AdapterTarget::mmio_write(uint64_t gpa, unsigned size, uint64_t value) {
  VMEM_TRY(usable());
  return bus_->mmio_write(gpa, size, value);
}
Status AdapterTarget::mem_read(uint64_t gpa, std::span<uint8_t> out) {
  VMEM_TRY(usable());
  return bus_->mem_read(gpa, out);
}
Status AdapterTarget::mem_write(uint64_t gpa, std::span<const uint8_t> in) {
  VMEM_TRY(usable());
  return bus_->mem_write(gpa, in);
}
Status AdapterTarget::mem_fill(uint64_t gpa, uint64_t len, uint8_t byte) {
  VMEM_TRY(usable());
  return bus_->mem_fill(gpa, len, byte);
}
Result<bool> AdapterTarget::interrupt_asserted(unsigned index) {
  VMEM_TRY(usable());
  return bus_->irq_level_now(index);
}

Status AdapterTarget::host(const std::string& line) {
  VMEM_TRY(usable());
  VMEM_ASSIGN_OR_RETURN(std::string reply, channel_->call(line));
  if (reply != "OK") return unexpected(Error{fmt::format("{}: {}", line, reply)});
  return ok();
}

Status AdapterTarget::set_requested_size(unsigned index, uint64_t size) {
  return host(fmt::format("host requested-size {} {:#x}", index, size));
}
Status AdapterTarget::system_reset() {
  return host("host system-reset");
}
Status AdapterTarget::set_busy(bool busy) {
  return host(busy ? "host busy on" : "host busy off");
}
Status AdapterTarget::suspend_resume() {
  return host("host suspend-resume");
}
Status AdapterTarget::refuse_next_populate(unsigned index) {
  return host(fmt::format("host refuse-populate {}", index));
}

std::vector<std::string> AdapterTarget::take_transcript() {
  return channel_ ? channel_->take_transcript() : std::vector<std::string>{};
}

std::string AdapterTarget::reproducer_header() const {
  return fmt::format(
      "# adapter: {}\n# replay: conformance/replay/vmem-replay adapter REPRO -- {}\n"
      "vmemcheck-adapter {}",
      options_.command.empty() ? "(connected descriptors)" : options_.command, options_.command,
      kAdapterProtocolVersion);
}

}  // namespace vmem::conformance
