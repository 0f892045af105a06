// Serves a Target over the adapter protocol, version 1 (docs/adapter-protocol.md): a version
// handshake, `start` for the machine, the line grammar of qtest for the guest's side (port I/O,
// MMIO, guest RAM), `host ...` verbs for the host's side, and interrupt levels reported as
// asynchronous "IRQ raise N" / "IRQ lower N" lines. `vmemcheck-adapter` serves the reference
// device with it; a VMM speaks the same grammar to be tested.
//
// Promises: every request line gets exactly one reply line ("OK ..." or "FAIL <reason>"),
// preceded by any interrupt-level changes it caused; malformed lines are answered with FAIL, never
// a crash.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "conformance/target/target.h"

namespace vmem::conformance {

inline constexpr int kAdapterProtocolVersion = 1;

// The space-separated words of a protocol line.
std::vector<std::string_view> split_protocol_line(std::string_view line);
// A number as the protocol writes them: 0x-prefixed hexadecimal or decimal, nothing else.
Result<uint64_t> parse_protocol_number(std::string_view s);

// The protocol's names for capabilities ("resize", "system-reset", ...).
const char* protocol_name(Capability c);
std::optional<Capability> capability_from_protocol_name(std::string_view s);

class AdapterServer {
 public:
  explicit AdapterServer(Target& target) : target_(target) {}

  // Handles one request line (without its terminator). Returns the lines to send back: the
  // asynchronous interrupt lines first, then the reply.
  std::vector<std::string> handle(std::string_view line);
  // True once `quit` was handled.
  bool done() const { return done_; }

 private:
  Result<std::string> dispatch(const std::vector<std::string_view>& words);
  Result<std::string> start(const std::vector<std::string_view>& words);
  Result<std::string> host(const std::vector<std::string_view>& words);
  void report_interrupts(std::vector<std::string>& out);

  Target& target_;
  bool greeted_ = false;
  bool done_ = false;
  unsigned devices_ = 0;
  std::vector<bool> irq_levels_;
};

}  // namespace vmem::conformance
