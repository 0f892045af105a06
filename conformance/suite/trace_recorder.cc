#include "conformance/suite/trace_recorder.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <array>
#include <string>

#include "reference/trace/trace.h"

namespace vmem::conformance {

namespace {

uint64_t packed(const std::array<uint16_t, 3>& words) {
  return uint64_t{words[0]} | uint64_t{words[1]} << 16 | uint64_t{words[2]} << 32;
}

}  // namespace

void TraceRecorder::line(std::string_view l) {
  text_ += l;
  text_ += '\n';
}

void TraceRecorder::device(const WireConfig& c) {
  text_ = "vmemtrace 1\n# recorded by the conformance suite (conformance/suite/trace_recorder.h)\n";
  line(
      fmt::format("device profile={} addr={:#x} region_size={:#x} block_size={:#x} "
                  "requested_size={:#x}",
                  profile_, c.addr, c.region_size, c.block_size, c.requested_size));
  // What the device reported before anything happened; the relation checks it too.
  config(c);
}

void TraceRecorder::request(const WireRequest& r, const ChainShape& shape, const Exchange& x) {
  if (!initialized_) init();
  std::string l = format_request(r.type, r.addr, r.nb_blocks);
  if (const uint64_t p = packed(r.padding); p != 0) l += fmt::format(" pad={:#x}", p);
  if (const uint64_t p = packed(r.payload_padding); p != 0) l += fmt::format(" ppad={:#x}", p);
  const ChainShape plain{{24}, {10}, false};
  if (shape.readable != plain.readable || shape.writable != plain.writable) {
    l +=
        fmt::format(" shape={}/{}", fmt::join(shape.readable, ","), fmt::join(shape.writable, ","));
  }
  if (shape.indirect) l += " indirect=1";
  l += " ->";
  if (x.kind != Exchange::Kind::Used || !x.response || x.used_id != x.head) {
    l += " no_response";
  } else {
    l += " " + format_answer(r.type, x.response->type, x.response->state);
  }
  line(l);
}

void TraceRecorder::host(std::string_view action, bool ok) {
  // A refused populate is the host's side (trace-format.md): replaying it needs the consumers.
  if (action == "refuse_populate" && !consumers_) {
    line("consumers -> ok");
    consumers_ = true;
  }
  line(fmt::format("host {} -> {}", action, ok ? "ok" : "error"));
  // A machine reset takes the device back to status 0.
  if (action == "system_reset") initialized_ = false;
}

void TraceRecorder::comment(std::string_view text) {
  std::string l = "# ";
  for (char ch : text)
    l += ch == '\n' ? ' ' : ch;
  line(l);
}

void TraceRecorder::config(const WireConfig& c) {
  line(fmt::format("config -> usable_region_size={:#x} plugged_size={:#x} requested_size={:#x}",
                   c.usable_region_size, c.plugged_size, c.requested_size));
}

}  // namespace vmem::conformance
