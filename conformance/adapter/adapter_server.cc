#include "conformance/adapter/adapter_server.h"

#include <fmt/format.h>

#include <array>
#include <charconv>

#include "conformance/target/qtest_bus.h"

namespace vmem::conformance {

namespace {

constexpr std::array kCapabilities = {
    std::pair{Capability::SetRequestedSize, "resize"},
    std::pair{Capability::SystemReset, "system-reset"},
    std::pair{Capability::BusyWindow, "busy"},
    std::pair{Capability::SuspendResume, "suspend-resume"},
    std::pair{Capability::Interrupts, "interrupts"},
    std::pair{Capability::NumaNode, "numa"},
    std::pair{Capability::TwoDevices, "two-devices"},
    std::pair{Capability::UnpluggedInaccessible, "unplugged-inaccessible"},
    std::pair{Capability::RefusePopulate, "refuse-populate"},
};

// A bounded transfer size: the protocol's lines are at most 16 MiB, so hex or base64 payloads
// beyond that cannot come back anyway.
constexpr uint64_t kMaxTransfer = 4ULL << 20;

Result<uint64_t> arg(const std::vector<std::string_view>& w, std::size_t i) {
  if (i >= w.size()) return unexpected(Error{fmt::format("'{}' needs more arguments", w[0])});
  return parse_protocol_number(w[i]);
}

unsigned width(char suffix) {
  switch (suffix) {
    case 'b':
      return 1;
    case 'w':
      return 2;
    case 'l':
      return 4;
    case 'q':
      return 8;
  }
  return 0;
}

Status fits(uint64_t v, unsigned size) {
  if (size < 8 && v >> (8 * size) != 0)
    return unexpected(Error{fmt::format("{:#x} does not fit in {} bytes", v, size)});
  return ok();
}

std::string hex_bytes(std::span<const uint8_t> b) {
  std::string out = "0x";
  for (uint8_t v : b)
    out += fmt::format("{:02x}", v);
  return out;
}

Result<std::vector<uint8_t>> parse_hex(std::string_view s, uint64_t len) {
  if (s.size() < 2 || s[0] != '0' || s[1] != 'x')
    return unexpected(Error{"hex data must start with 0x"});
  s.remove_prefix(2);
  // As in qtest, shorter data leaves the rest zero; longer data or half a byte is an error.
  if (s.size() % 2 != 0 || s.size() > 2 * len)
    return unexpected(Error{"hex data of the wrong length"});
  std::vector<uint8_t> out(len, 0);
  for (std::size_t i = 0; 2 * i < s.size(); ++i) {
    const auto [end, ec] = std::from_chars(s.data() + 2 * i, s.data() + 2 * i + 2, out[i], 16);
    if (ec != std::errc() || end != s.data() + 2 * i + 2)
      return unexpected(Error{"hex data holds a non-hex digit"});
  }
  return out;
}

}  // namespace

std::vector<std::string_view> split_protocol_line(std::string_view line) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && line[i] == ' ')
      ++i;
    std::size_t j = i;
    while (j < line.size() && line[j] != ' ')
      ++j;
    if (j > i) out.push_back(line.substr(i, j - i));
    i = j;
  }
  return out;
}

Result<uint64_t> parse_protocol_number(std::string_view s) {
  int base = 10;
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    s.remove_prefix(2);
    base = 16;
  }
  uint64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v, base);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size())
    return unexpected(Error{fmt::format("'{}' is not a number", s)});
  return v;
}

const char* protocol_name(Capability c) {
  for (const auto& [cap, name] : kCapabilities) {
    if (cap == c) return name;
  }
  return "?";
}

std::optional<Capability> capability_from_protocol_name(std::string_view s) {
  for (const auto& [cap, name] : kCapabilities) {
    if (s == name) return cap;
  }
  return std::nullopt;
}

std::vector<std::string> AdapterServer::handle(std::string_view line) {
  std::vector<std::string> out;
  const auto words = split_protocol_line(line);
  if (words.empty()) {
    out.push_back("FAIL empty line");
    return out;
  }
  auto reply = dispatch(words);
  report_interrupts(out);
  out.push_back(reply.has_value() ? (reply->empty() ? "OK" : "OK " + *reply)
                                  : "FAIL " + reply.error().message);
  return out;
}

void AdapterServer::report_interrupts(std::vector<std::string>& out) {
  if (!target_.has(Capability::Interrupts)) return;
  for (unsigned i = 0; i < devices_; ++i) {
    auto level = target_.interrupt_asserted(i);
    if (!level.has_value() || *level == irq_levels_[i]) continue;
    irq_levels_[i] = *level;
    out.push_back(fmt::format("IRQ {} {}", *level ? "raise" : "lower", i));
  }
}

Result<std::string> AdapterServer::dispatch(const std::vector<std::string_view>& w) {
  const std::string_view verb = w[0];
  if (verb == "vmemcheck-adapter") {
    VMEM_ASSIGN_OR_RETURN(uint64_t version, arg(w, 1));
    if (version != kAdapterProtocolVersion) {
      return unexpected(Error{fmt::format("protocol version {} is not served (only {})", version,
                                          kAdapterProtocolVersion)});
    }
    greeted_ = true;
    std::string caps;
    for (const auto& [cap, name] : kCapabilities) {
      if (target_.has(cap)) caps += caps.empty() ? name : fmt::format(",{}", name);
    }
    return fmt::format("vmemcheck-adapter {} caps={} name={}", kAdapterProtocolVersion, caps,
                       target_.name());
  }
  if (!greeted_) return unexpected(Error{"the first line must be 'vmemcheck-adapter 1'"});
  if (verb == "quit") {
    done_ = true;
    return std::string();
  }
  if (verb == "start") return start(w);
  if (verb == "host") return host(w);

  // The guest's side, in qtest's grammar.
  if ((verb == "inb" || verb == "inw" || verb == "inl") && w.size() == 2) {
    VMEM_ASSIGN_OR_RETURN(uint64_t port, arg(w, 1));
    if (port > 0xffff) return unexpected(Error{"port beyond 0xffff"});
    VMEM_ASSIGN_OR_RETURN(uint32_t v, target_.io_read(static_cast<uint16_t>(port), width(verb[2])));
    return fmt::format("{:#x}", v);
  }
  if ((verb == "outb" || verb == "outw" || verb == "outl") && w.size() == 3) {
    VMEM_ASSIGN_OR_RETURN(uint64_t port, arg(w, 1));
    VMEM_ASSIGN_OR_RETURN(uint64_t v, arg(w, 2));
    if (port > 0xffff) return unexpected(Error{"port beyond 0xffff"});
    VMEM_TRY(fits(v, width(verb[3])));
    VMEM_TRY(
        target_.io_write(static_cast<uint16_t>(port), width(verb[3]), static_cast<uint32_t>(v)));
    return std::string();
  }
  if (verb.size() == 5 && verb.substr(0, 4) == "read" && width(verb[4]) && w.size() == 2) {
    VMEM_ASSIGN_OR_RETURN(uint64_t gpa, arg(w, 1));
    VMEM_ASSIGN_OR_RETURN(uint64_t v, target_.mmio_read(gpa, width(verb[4])));
    return fmt::format("{:#x}", v);
  }
  if (verb.size() == 6 && verb.substr(0, 5) == "write" && width(verb[5]) && w.size() == 3) {
    VMEM_ASSIGN_OR_RETURN(uint64_t gpa, arg(w, 1));
    VMEM_ASSIGN_OR_RETURN(uint64_t v, arg(w, 2));
    VMEM_TRY(fits(v, width(verb[5])));
    VMEM_TRY(target_.mmio_write(gpa, width(verb[5]), v));
    return std::string();
  }
  if ((verb == "read" || verb == "b64read") && w.size() == 3) {
    VMEM_ASSIGN_OR_RETURN(uint64_t gpa, arg(w, 1));
    VMEM_ASSIGN_OR_RETURN(uint64_t len, arg(w, 2));
    if (len == 0 || len > kMaxTransfer)
      return unexpected(Error{fmt::format("length {} outside 1..{}", len, kMaxTransfer)});
    std::vector<uint8_t> buf(len);
    VMEM_TRY(target_.mem_read(gpa, buf));
    return verb == "read" ? hex_bytes(buf) : base64_encode(buf);
  }
  if ((verb == "write" || verb == "b64write") && w.size() == 4) {
    VMEM_ASSIGN_OR_RETURN(uint64_t gpa, arg(w, 1));
    VMEM_ASSIGN_OR_RETURN(uint64_t len, arg(w, 2));
    if (len == 0 || len > kMaxTransfer)
      return unexpected(Error{fmt::format("length {} outside 1..{}", len, kMaxTransfer)});
    std::vector<uint8_t> data;
    if (verb == "write") {
      VMEM_ASSIGN_OR_RETURN(data, parse_hex(w[3], len));
    } else {
      VMEM_ASSIGN_OR_RETURN(data, base64_decode(w[3]));
      if (data.size() != len) return unexpected(Error{"base64 data does not match the length"});
    }
    VMEM_TRY(target_.mem_write(gpa, data));
    return std::string();
  }
  if (verb == "memset" && w.size() == 4) {
    VMEM_ASSIGN_OR_RETURN(uint64_t gpa, arg(w, 1));
    VMEM_ASSIGN_OR_RETURN(uint64_t len, arg(w, 2));
    VMEM_ASSIGN_OR_RETURN(uint64_t byte, arg(w, 3));
    VMEM_TRY(fits(byte, 1));
    VMEM_TRY(target_.mem_fill(gpa, len, static_cast<uint8_t>(byte)));
    return std::string();
  }
  return unexpected(Error{fmt::format("unknown command '{}' or wrong arguments", verb)});
}

Result<std::string> AdapterServer::start(const std::vector<std::string_view>& w) {
  DeviceSetup s;
  for (std::size_t i = 1; i < w.size(); ++i) {
    const auto eq = w[i].find('=');
    if (eq == std::string_view::npos)
      return unexpected(Error{fmt::format("'{}' is not key=value", w[i])});
    const std::string_view key = w[i].substr(0, eq);
    VMEM_ASSIGN_OR_RETURN(uint64_t v, parse_protocol_number(w[i].substr(eq + 1)));
    if (key == "block-size")
      s.block_size = v;
    else if (key == "region-size")
      s.region_size = v;
    else if (key == "requested-size")
      s.requested_size = v;
    else if (key == "node")
      s.node_id = static_cast<uint16_t>(v);
    else if (key == "acpi-pxm")
      s.acpi_pxm = v != 0;
    else if (key == "unplugged-inaccessible")
      s.unplugged_inaccessible = v != 0;
    else if (key == "devices")
      s.devices = static_cast<unsigned>(v);
    else
      return unexpected(Error{fmt::format("unknown start key '{}'", key)});
  }
  if (s.devices < 1 || s.devices > 2) return unexpected(Error{"devices must be 1 or 2"});
  VMEM_ASSIGN_OR_RETURN(MachineLayout l, target_.start(s));
  devices_ = s.devices;
  irq_levels_.assign(devices_, false);
  std::string reply = fmt::format("transport={} scratch={:#x} scratch-size={:#x} bar-window={:#x}",
                                  l.transport == Transport::Pci ? "pci" : "mmio", l.scratch_base,
                                  l.scratch_size, l.bar_window);
  if (!l.mmio_bases.empty()) {
    reply += " mmio=";
    for (std::size_t i = 0; i < l.mmio_bases.size(); ++i)
      reply += fmt::format("{}{:#x}", i ? "," : "", l.mmio_bases[i]);
  }
  return reply;
}

Result<std::string> AdapterServer::host(const std::vector<std::string_view>& w) {
  if (w.size() < 2) return unexpected(Error{"'host' needs a verb"});
  const std::string_view verb = w[1];
  if (verb == "requested-size" && w.size() == 4) {
    VMEM_ASSIGN_OR_RETURN(uint64_t dev, arg(w, 2));
    VMEM_ASSIGN_OR_RETURN(uint64_t size, arg(w, 3));
    if (dev >= devices_) return unexpected(Error{fmt::format("no device {}", dev)});
    VMEM_TRY(target_.set_requested_size(static_cast<unsigned>(dev), size));
    return std::string();
  }
  if (verb == "system-reset" && w.size() == 2) {
    VMEM_TRY(target_.system_reset());
    return std::string();
  }
  if (verb == "busy" && w.size() == 3 && (w[2] == "on" || w[2] == "off")) {
    VMEM_TRY(target_.set_busy(w[2] == "on"));
    return std::string();
  }
  if (verb == "suspend-resume" && w.size() == 2) {
    VMEM_TRY(target_.suspend_resume());
    return std::string();
  }
  if (verb == "refuse-populate" && w.size() == 3) {
    VMEM_ASSIGN_OR_RETURN(uint64_t dev, arg(w, 2));
    if (dev >= devices_) return unexpected(Error{fmt::format("no device {}", dev)});
    VMEM_TRY(target_.refuse_next_populate(static_cast<unsigned>(dev)));
    return std::string();
  }
  return unexpected(Error{fmt::format("unknown host verb '{}' or wrong arguments", verb)});
}

}  // namespace vmem::conformance
