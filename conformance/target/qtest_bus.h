// The guest's side of a machine (port I/O, MMIO, guest RAM, interrupt lines) spoken as qtest
// protocol lines over a LineChannel. QEMU's qtest server understands them, and so does the
// adapter protocol, which reuses the grammar; this class knows nothing else about QEMU.
//
// Promises: it never sends a malformed line (qtest aborts QEMU on one: a bad size, a missing
// argument, `read ADDR 0`), so every argument is checked here first and requests that need no
// peer (a zero-length transfer) are answered locally; it accepts only the exact reply shapes
// ("OK", "OK 0x<hex>", "OK <base64>" of the right length) and turns anything else ("FAIL ...",
// "ERR ...", garbage) into an error carrying the reply; it keeps the level of each interrupt line
// from the peer's "IRQ raise N" / "IRQ lower N" lines, which may arrive before any reply.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "conformance/target/line_channel.h"
#include "reference/base/result.h"

namespace vmem::conformance {

class QtestBus {
 public:
  // Large transfers go as b64read/b64write in chunks of this many bytes (QEMU allocates a
  // buffer of the whole length for each command); short ones as read/write in hex.
  static constexpr std::size_t kTransferChunk = std::size_t{1} << 20;
  static constexpr std::size_t kHexMax = 64;
  // memset is split so that QEMU's temporary buffer stays small.
  static constexpr uint64_t kFillChunk = uint64_t{16} << 20;

  // Borrows `channel` (which must outlive the bus) and installs handle_async() as its
  // asynchronous-line handler. A user with its own asynchronous lines installs a handler that
  // calls handle_async() first.
  explicit QtestBus(LineChannel& channel);
  QtestBus(const QtestBus&) = delete;
  QtestBus& operator=(const QtestBus&) = delete;

  // size 1, 2 or 4 (inb/inw/inl, outb/outw/outl); `value` must fit in `size` bytes.
  Result<uint32_t> io_read(uint16_t port, unsigned size);
  Status io_write(uint16_t port, unsigned size, uint32_t value);
  // size 1, 2, 4 or 8 (readb/w/l/q, writeb/w/l/q); `value` must fit in `size` bytes.
  Result<uint64_t> mmio_read(uint64_t gpa, unsigned size);
  Status mmio_write(uint64_t gpa, unsigned size, uint64_t value);
  // Bulk guest-physical access; the range must not wrap around 2^64.
  Status mem_read(uint64_t gpa, std::span<uint8_t> out);
  Status mem_write(uint64_t gpa, std::span<const uint8_t> in);
  Status mem_fill(uint64_t gpa, uint64_t len, uint8_t byte);

  // `irq_intercept_in PATH`: from now on the peer reports the input lines of the interrupt
  // controller at QOM path `path` ("ioapic" on x86) instead of delivering them.
  Status intercept_irqs(std::string_view qom_path);
  // The level of interrupt line `line` after every line received so far (low if never seen).
  bool irq_level(unsigned line) const;
  // The same after taking in the asynchronous lines the peer has already sent, so that an
  // interrupt raised by a host-side action on another channel (a QMP resize) is seen.
  Result<bool> irq_level_now(unsigned line);
  // How often `line` was raised since the bus was created.
  uint64_t irq_raises(unsigned line) const;

  // Consumes "IRQ raise N" / "IRQ lower N" (N decimal); returns false for any other line.
  bool handle_async(std::string_view line);

  LineChannel& channel() { return channel_; }

  // The exact lines this bus sends, for callers that batch them with LineChannel::pipeline
  // (their replies are "OK"). They fail on arguments that would make a malformed line.
  static Result<std::string> format_io_write(uint16_t port, unsigned size, uint32_t value);
  static Result<std::string> format_mmio_write(uint64_t gpa, unsigned size, uint64_t value);

 private:
  struct IrqLine {
    bool level = false;
    uint64_t raises = 0;
  };

  Result<uint64_t> read_value(const std::string& line, uint64_t max);

  LineChannel& channel_;
  std::map<unsigned, IrqLine> irqs_;
};

// Standard base64 (RFC 4648, with padding), as qtest's b64read/b64write use it. decode is strict:
// the length is a multiple of 4, only the alphabet and final padding appear.
std::string base64_encode(std::span<const uint8_t> bytes);
Result<std::vector<uint8_t>> base64_decode(std::string_view text);

}  // namespace vmem::conformance
