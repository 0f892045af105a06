#include "conformance/target/qtest_bus.h"

#include <fmt/format.h>

#include <array>
#include <charconv>

namespace vmem::conformance {

namespace {

constexpr std::string_view kBase64Alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

uint64_t size_mask(unsigned size) {
  return size == 8 ? ~uint64_t{0} : (uint64_t{1} << (8 * size)) - 1;
}

const char* io_suffix(unsigned size) {
  switch (size) {
    case 1:
      return "b";
    case 2:
      return "w";
    case 4:
      return "l";
    case 8:
      return "q";
    default:
      return nullptr;
  }
}

Status check_io(uint16_t port, unsigned size, uint64_t value, const char* what) {
  if (size != 1 && size != 2 && size != 4) {
    return unexpected(
        Error{fmt::format("{} of port {:#x}: size {} is not 1, 2 or 4", what, port, size)});
  }
  if (value > size_mask(size)) {
    return unexpected(Error{fmt::format("{} of port {:#x}: value {:#x} does not fit in {} bytes",
                                        what, port, value, size)});
  }
  return ok();
}

Status check_mmio(uint64_t gpa, unsigned size, uint64_t value, const char* what) {
  if (io_suffix(size) == nullptr) {
    return unexpected(
        Error{fmt::format("{} at {:#x}: size {} is not 1, 2, 4 or 8", what, gpa, size)});
  }
  if (value > size_mask(size)) {
    return unexpected(Error{
        fmt::format("{} at {:#x}: value {:#x} does not fit in {} bytes", what, gpa, value, size)});
  }
  if (gpa + (size - 1) < gpa) {
    return unexpected(
        Error{fmt::format("{} at {:#x}: {} bytes wrap around the address space", what, gpa, size)});
  }
  return ok();
}

Status check_range(uint64_t gpa, uint64_t len, const char* what) {
  if (len != 0 && gpa + (len - 1) < gpa) {
    return unexpected(Error{
        fmt::format("{} of {:#x} bytes at {:#x} wraps around the address space", what, len, gpa)});
  }
  return ok();
}

bool all_hex(std::string_view s) {
  return s.find_first_not_of("0123456789abcdefABCDEF") == std::string_view::npos;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return c - 'A' + 10;
}

Error bad_reply(std::string_view request, std::string_view reply, std::string_view expected) {
  constexpr std::size_t kMax = 160;
  const std::string shown =
      reply.size() <= kMax ? std::string(reply)
                           : fmt::format("{}... ({} bytes)", reply.substr(0, kMax), reply.size());
  return Error{fmt::format("'{}' was answered '{}' (expected {})",
                           request.substr(0, std::min<std::size_t>(request.size(), kMax)), shown,
                           expected)};
}

std::string to_hex(std::span<const uint8_t> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (uint8_t b : bytes) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 0xf]);
  }
  return out;
}

}  // namespace

std::string base64_encode(std::span<const uint8_t> bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const uint32_t v = uint32_t{bytes[i]} << 16 | uint32_t{bytes[i + 1]} << 8 | bytes[i + 2];
    out.push_back(kBase64Alphabet[(v >> 18) & 63]);
    out.push_back(kBase64Alphabet[(v >> 12) & 63]);
    out.push_back(kBase64Alphabet[(v >> 6) & 63]);
    out.push_back(kBase64Alphabet[v & 63]);
  }
  const std::size_t rest = bytes.size() - i;
  if (rest > 0) {
    uint32_t v = uint32_t{bytes[i]} << 16;
    if (rest == 2) v |= uint32_t{bytes[i + 1]} << 8;
    out.push_back(kBase64Alphabet[(v >> 18) & 63]);
    out.push_back(kBase64Alphabet[(v >> 12) & 63]);
    out.push_back(rest == 2 ? kBase64Alphabet[(v >> 6) & 63] : '=');
    out.push_back('=');
  }
  return out;
}

Result<std::vector<uint8_t>> base64_decode(std::string_view text) {
  static const std::array<int8_t, 256> kValue = [] {
    std::array<int8_t, 256> t{};
    t.fill(-1);
    for (std::size_t i = 0; i < kBase64Alphabet.size(); ++i) {
      t[static_cast<uint8_t>(kBase64Alphabet[i])] = static_cast<int8_t>(i);
    }
    return t;
  }();
  if (text.size() % 4 != 0) {
    return unexpected(
        Error{fmt::format("base64 text of {} characters (not a multiple of 4)", text.size())});
  }
  std::vector<uint8_t> out;
  out.reserve(text.size() / 4 * 3);
  for (std::size_t i = 0; i < text.size(); i += 4) {
    const bool last = i + 4 == text.size();
    int pad = 0;
    uint32_t v = 0;
    for (std::size_t j = 0; j < 4; ++j) {
      const char c = text[i + j];
      if (c == '=' && last && j >= 2) {
        ++pad;
        v <<= 6;
        continue;
      }
      const int8_t d = kValue[static_cast<uint8_t>(c)];
      if (d < 0 || pad > 0) {
        return unexpected(Error{fmt::format("bad base64 character at {}", i + j)});
      }
      v = v << 6 | static_cast<uint32_t>(d);
    }
    out.push_back(static_cast<uint8_t>(v >> 16));
    if (pad < 2) out.push_back(static_cast<uint8_t>(v >> 8));
    if (pad < 1) out.push_back(static_cast<uint8_t>(v));
  }
  return out;
}

QtestBus::QtestBus(LineChannel& channel) : channel_(channel) {
  channel_.on_async([this](std::string_view line) { return handle_async(line); });
}

bool QtestBus::handle_async(std::string_view line) {
  bool raise = false;
  if (line.starts_with("IRQ raise ")) {
    raise = true;
    line.remove_prefix(10);
  } else if (line.starts_with("IRQ lower ")) {
    line.remove_prefix(10);
  } else {
    return false;
  }
  unsigned n = 0;
  const auto [end, ec] = std::from_chars(line.data(), line.data() + line.size(), n, 10);
  if (ec != std::errc() || end != line.data() + line.size() || line.empty()) return false;
  IrqLine& irq = irqs_[n];
  irq.level = raise;
  if (raise) ++irq.raises;
  return true;
}

bool QtestBus::irq_level(unsigned line) const {
  const auto it = irqs_.find(line);
  return it != irqs_.end() && it->second.level;
}

uint64_t QtestBus::irq_raises(unsigned line) const {
  const auto it = irqs_.find(line);
  return it == irqs_.end() ? 0 : it->second.raises;
}

Result<bool> QtestBus::irq_level_now(unsigned line) {
  VMEM_TRY(channel_.drain_async());
  return irq_level(line);
}

Status QtestBus::intercept_irqs(std::string_view qom_path) {
  if (qom_path.empty() ||
      qom_path.find_first_of(std::string_view(" \t\r\n\0", 5)) != std::string_view::npos) {
    return unexpected(Error{fmt::format("irq_intercept_in: bad QOM path '{}'", qom_path)});
  }
  const std::string line = fmt::format("irq_intercept_in {}", qom_path);
  auto reply = channel_.call(line);
  if (!reply.has_value()) return unexpected(reply.error());
  if (*reply != "OK") return unexpected(bad_reply(line, *reply, "OK"));
  return ok();
}

Result<uint64_t> QtestBus::read_value(const std::string& line, uint64_t max) {
  auto reply = channel_.call(line);
  if (!reply.has_value()) return unexpected(reply.error());
  std::string_view r = *reply;
  constexpr std::string_view kPrefix = "OK 0x";
  if (!r.starts_with(kPrefix)) return unexpected(bad_reply(line, r, "OK 0x<value>"));
  r.remove_prefix(kPrefix.size());
  if (r.empty() || r.size() > 16 || !all_hex(r)) {
    return unexpected(bad_reply(line, *reply, "OK 0x<1 to 16 hex digits>"));
  }
  uint64_t v = 0;
  std::from_chars(r.data(), r.data() + r.size(), v, 16);
  if (v > max) return unexpected(bad_reply(line, *reply, fmt::format("a value <= {:#x}", max)));
  return v;
}

Result<std::string> QtestBus::format_io_write(uint16_t port, unsigned size, uint32_t value) {
  VMEM_TRY(check_io(port, size, value, "io_write"));
  return fmt::format("out{} {:#x} {:#x}", io_suffix(size), port, value);
}

Result<std::string> QtestBus::format_mmio_write(uint64_t gpa, unsigned size, uint64_t value) {
  VMEM_TRY(check_mmio(gpa, size, value, "mmio_write"));
  return fmt::format("write{} {:#x} {:#x}", io_suffix(size), gpa, value);
}

Result<uint32_t> QtestBus::io_read(uint16_t port, unsigned size) {
  VMEM_TRY(check_io(port, size, 0, "io_read"));
  auto v = read_value(fmt::format("in{} {:#x}", io_suffix(size), port), size_mask(size));
  if (!v.has_value()) return unexpected(v.error());
  return static_cast<uint32_t>(*v);
}

Status QtestBus::io_write(uint16_t port, unsigned size, uint32_t value) {
  auto line = format_io_write(port, size, value);
  if (!line.has_value()) return unexpected(line.error());
  auto reply = channel_.call(*line);
  if (!reply.has_value()) return unexpected(reply.error());
  if (*reply != "OK") return unexpected(bad_reply(*line, *reply, "OK"));
  return ok();
}

Result<uint64_t> QtestBus::mmio_read(uint64_t gpa, unsigned size) {
  VMEM_TRY(check_mmio(gpa, size, 0, "mmio_read"));
  return read_value(fmt::format("read{} {:#x}", io_suffix(size), gpa), size_mask(size));
}

Status QtestBus::mmio_write(uint64_t gpa, unsigned size, uint64_t value) {
  auto line = format_mmio_write(gpa, size, value);
  if (!line.has_value()) return unexpected(line.error());
  auto reply = channel_.call(*line);
  if (!reply.has_value()) return unexpected(reply.error());
  if (*reply != "OK") return unexpected(bad_reply(*line, *reply, "OK"));
  return ok();
}

Status QtestBus::mem_read(uint64_t gpa, std::span<uint8_t> out) {
  VMEM_TRY(check_range(gpa, out.size(), "mem_read"));
  for (std::size_t done = 0; done < out.size();) {
    const std::size_t n = std::min(out.size() - done, kTransferChunk);
    const uint64_t at = gpa + done;
    const bool hex = n <= kHexMax;
    const std::string line = fmt::format("{} {:#x} {}", hex ? "read" : "b64read", at, n);
    auto reply = channel_.call(line);
    if (!reply.has_value()) return unexpected(reply.error());
    std::string_view r = *reply;
    if (hex) {
      if (!r.starts_with("OK 0x") || r.size() != 5 + 2 * n || !all_hex(r.substr(5))) {
        return unexpected(bad_reply(line, r, fmt::format("OK 0x<{} hex digits>", 2 * n)));
      }
      for (std::size_t i = 0; i < n; ++i) {
        out[done + i] =
            static_cast<uint8_t>(hex_digit(r[5 + 2 * i]) << 4 | hex_digit(r[5 + 2 * i + 1]));
      }
    } else {
      if (!r.starts_with("OK ")) return unexpected(bad_reply(line, r, "OK <base64>"));
      auto bytes = base64_decode(r.substr(3));
      if (!bytes.has_value() || bytes->size() != n) {
        return unexpected(bad_reply(line, r, fmt::format("OK <base64 of {} bytes>", n)));
      }
      std::copy(bytes->begin(), bytes->end(), out.begin() + static_cast<std::ptrdiff_t>(done));
    }
    done += n;
  }
  return ok();
}

Status QtestBus::mem_write(uint64_t gpa, std::span<const uint8_t> in) {
  VMEM_TRY(check_range(gpa, in.size(), "mem_write"));
  std::vector<std::string> lines;
  for (std::size_t done = 0; done < in.size();) {
    const std::size_t n = std::min(in.size() - done, kTransferChunk);
    const auto chunk = in.subspan(done, n);
    if (n <= kHexMax) {
      lines.push_back(fmt::format("write {:#x} {} 0x{}", gpa + done, n, to_hex(chunk)));
    } else {
      lines.push_back(fmt::format("b64write {:#x} {} {}", gpa + done, n, base64_encode(chunk)));
    }
    done += n;
  }
  return channel_.pipeline(lines);
}

Status QtestBus::mem_fill(uint64_t gpa, uint64_t len, uint8_t byte) {
  VMEM_TRY(check_range(gpa, len, "mem_fill"));
  std::vector<std::string> lines;
  for (uint64_t done = 0; done < len;) {
    const uint64_t n = std::min(len - done, kFillChunk);
    lines.push_back(fmt::format("memset {:#x} {} {:#x}", gpa + done, n, byte));
    done += n;
  }
  return channel_.pipeline(lines);
}

}  // namespace vmem::conformance
