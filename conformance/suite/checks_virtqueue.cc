// Checks of the generic virtqueue rules on the guest-request queue (GEN-1, 2, 4, 6, 8, 10):
// requests split over descriptors however the driver likes (decisions D8), chains too short to
// hold a request or a response, unknown request types, used lengths, and nothing consumed before
// DRIVER_OK.
#include <fmt/format.h>

#include <functional>
#include <thread>

#include "conformance/suite/check.h"
#include "conformance/suite/checks.h"
#include "reference/virtio/virtio_device.h"
#include "reference/virtqueue/split_queue.h"

namespace vmem::conformance {

namespace {

constexpr uint8_t kIsrConfig = 0x2;

std::string shape_name(const ChainShape& s) {
  return fmt::format("readable {}, writable {}{}", fmt::join(s.readable, "+"),
                     fmt::join(s.writable, "+"), s.indirect ? ", indirect" : "");
}

// GEN-1: the same request split in many ways gets the same answer as the plain chain.
Status split_chains(CheckContext& c) {
  const uint64_t indirect = feature_bit(VIRTIO_F_INDIRECT_DESC);
  VMEM_ASSIGN_OR_RETURN(uint8_t s, c.driver().negotiate());
  (void)s;
  const bool can_indirect = (c.driver().offered() & indirect) != 0;
  VMEM_TRY(c.initialize(0, c.driver().negotiated() | (c.driver().offered() & indirect)));

  std::vector<ChainShape> shapes = {
      {{8, 8, 8}, {10}, false},  {{2, 6, 8, 2, 6}, {10}, false},
      {{1, 23}, {2, 8}, false},  {{24}, {1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, false},
      {{12, 12}, {5, 5}, false}, {{23, 1}, {9, 1}, false},
  };
  if (can_indirect) {
    shapes.push_back({{24}, {10}, true});
    shapes.push_back({{8, 8, 8}, {4, 6}, true});
  } else {
    c.info("GEN-1", "INDIRECT_DESC not offered: indirect chains not tested");
  }
  // Each shape carries a PLUG, a STATE and an UNPLUG of a block of its own; the plain chain's
  // answers are ACK, PLUGGED and ACK.
  uint64_t b = 0;
  for (const ChainShape& shape : shapes) {
    for (uint16_t type : {VIRTIO_MEM_REQ_PLUG, VIRTIO_MEM_REQ_STATE, VIRTIO_MEM_REQ_UNPLUG}) {
      WireRequest r;
      r.type = type;
      r.addr = c.block(b);
      r.nb_blocks = 1;
      VMEM_ASSIGN_OR_RETURN(Exchange x, c.send(r, 0, shape));
      const std::string what =
          fmt::format("{} split as {}", request_type_name(type), shape_name(shape));
      if (!c.expect("GEN-1", x.kind == Exchange::Kind::Used && x.response && x.used_id == x.head,
                    fmt::format("{}: {}, used length {}", what, to_string(x.kind), x.used_len))) {
        if (x.kind == Exchange::Kind::NeedsReset)
          VMEM_TRY(c.initialize(0, c.driver().negotiated()));
        continue;
      }
      const bool right =
          x.response->type == VIRTIO_MEM_RESP_ACK &&
          (type != VIRTIO_MEM_REQ_STATE || x.response->state == VIRTIO_MEM_STATE_PLUGGED);
      c.expect("GEN-1", right,
               fmt::format("{}: answered {} state {}, the plain chain gets ACK{}", what,
                           resp_name(*x.response), x.response->state,
                           type == VIRTIO_MEM_REQ_STATE ? " PLUGGED" : ""));
      c.expect("GEN-8", x.used_len <= x.writable,
               fmt::format("{}: used length {} exceeds the {} writable bytes", what, x.used_len,
                           x.writable));
    }
    ++b;
  }
  return ok();
}

// Sends one chain expected to be refused somehow and judges GEN-2 (returned or NEEDS_RESET),
// GEN-6 (NEEDS_RESET after DRIVER_OK notifies) and GEN-8; returns what happened for the evidence.
Result<std::string> judge_refused(CheckContext& c, const std::function<Result<Exchange>()>& send,
                                  std::string_view what) {
  TransportDriver& t = c.driver().transport();
  VMEM_ASSIGN_OR_RETURN(uint8_t stale, t.take_isr());
  (void)stale;
  VMEM_ASSIGN_OR_RETURN(Exchange x, send());
  std::string seen;
  switch (x.kind) {
    case Exchange::Kind::Used:
      seen = x.response ? fmt::format("returned with {} (used length {})", resp_name(*x.response),
                                      x.used_len)
                        : fmt::format("returned with used length {}", x.used_len);
      c.expect("GEN-8", x.used_len <= x.writable,
               fmt::format("{}: used length {} exceeds the {} writable bytes", what, x.used_len,
                           x.writable));
      break;
    case Exchange::Kind::NeedsReset: {
      seen = "not returned; DEVICE_NEEDS_RESET set";
      VMEM_ASSIGN_OR_RETURN(uint8_t isr, t.take_isr());
      c.expect("GEN-6", (isr & kIsrConfig) != 0,
               fmt::format("{}: DEVICE_NEEDS_RESET set after DRIVER_OK without a configuration "
                           "change notification (ISR {:#x})",
                           what, isr));
      break;
    }
    case Exchange::Kind::NoAnswer:
      seen = "neither returned nor DEVICE_NEEDS_RESET";
      break;
  }
  c.expect("GEN-2", x.kind != Exchange::Kind::NoAnswer,
           fmt::format("{}: the chain was {}", what, seen));
  // Start again from a clean device whatever happened.
  VMEM_TRY(c.initialize());
  return seen;
}

Result<std::string> provoke(CheckContext& c, std::span<const uint8_t> bytes,
                            const ChainShape& shape, std::string_view what) {
  return judge_refused(
      c, [&] { return c.driver().exchange(bytes, shape); }, what);
}

// GEN-2/6/8 on chains that cannot hold a request or a response (D8: short means fewer than 24
// readable or 10 writable bytes in total).
Status short_chains(CheckContext& c) {
  VMEM_TRY(c.initialize());
  WireRequest r;
  r.type = VIRTIO_MEM_REQ_STATE;
  r.addr = c.block(0);
  r.nb_blocks = 1;
  const auto full = encode_request(r);
  struct Case {
    const char* what;
    size_t readable;
    ChainShape shape;
  };
  const Case cases[] = {
      {"a 23-byte request", 23, {{23}, {10}, false}},
      {"a 9-byte response buffer", 24, {{24}, {9}, false}},
      {"a 2-byte request split 1+1", 2, {{1, 1}, {10}, false}},
      {"no response buffer", 24, {{24}, {}, false}},
  };
  for (const Case& k : cases) {
    VMEM_ASSIGN_OR_RETURN(std::string seen,
                          provoke(c, std::span(full).first(k.readable), k.shape, k.what));
    c.info("GEN-2", fmt::format("{}: {}", k.what, seen));
  }
  // Longer buffers are fine (D8): 32 readable bytes, 64 writable.
  std::vector<uint8_t> longer(full.begin(), full.end());
  longer.resize(32, 0);
  VMEM_ASSIGN_OR_RETURN(Exchange x, c.driver().exchange(longer, {{32}, {64}, false}));
  c.expect("GEN-1",
           x.kind == Exchange::Kind::Used && x.response && x.response->type == VIRTIO_MEM_RESP_ACK,
           fmt::format("STATE with 32 readable and 64 writable bytes: {}",
                       x.response ? resp_name(*x.response) : std::string(to_string(x.kind))));
  if (x.kind == Exchange::Kind::Used) {
    c.expect(
        "GEN-8", x.used_len <= kResponseSize,
        fmt::format("a 10-byte response reported used length {} in a 64-byte buffer", x.used_len));
  }
  return ok();
}

// GEN-2/6 on descriptor chains no device can follow; what the device does is left open.
Status malformed_chains(CheckContext& c) {
  VMEM_TRY(c.initialize());
  MemDriver& d = c.driver();
  DriverQueue& q = d.queue();
  WireRequest r;
  r.type = VIRTIO_MEM_REQ_STATE;
  r.addr = c.block(0);
  r.nb_blocks = 1;
  const auto bytes = encode_request(r);
  // Buffers in data slots the well-formed chains of this check never use.
  const uint64_t req = q.data_slot(60), resp = q.data_slot(61);
  VMEM_TRY(c.target().mem_write(req, bytes));
  const uint16_t N = VIRTQ_DESC_F_NEXT, W = VIRTQ_DESC_F_WRITE;
  const uint32_t rlen = kRequestSize, wlen = kResponseSize;
  struct Case {
    const char* what;
    std::vector<Descriptor> chain;  // at slots 40, 41, ...
  };
  const Case cases[] = {
      {"the writable descriptor before the readable one",
       {{resp, wlen, static_cast<uint16_t>(W | N), 41}, {req, rlen, 0, 0}}},
      {"a zero-length descriptor between request and response",
       {{req, rlen, N, 41}, {resp, 0, static_cast<uint16_t>(W | N), 42}, {resp, wlen, W, 0}}},
      {"a request buffer outside guest memory",
       {{0xfff0000000000000ULL, rlen, N, 41}, {resp, wlen, W, 0}}},
      {"a next index beyond the queue", {{req, rlen, N, 200}}},
      {"a descriptor loop", {{req, rlen, N, 41}, {resp, wlen, static_cast<uint16_t>(W | N), 40}}},
  };
  for (const Case& k : cases) {
    for (std::size_t i = 0; i < k.chain.size(); ++i) {
      if (!q.write_descriptor(static_cast<uint16_t>(40 + i), k.chain[i]))
        return unexpected(Error{"cannot write a descriptor into guest memory"});
    }
    VMEM_ASSIGN_OR_RETURN(std::string seen,
                          judge_refused(
                              c, [&] { return c.driver().submit(40, wlen); }, k.what));
    c.info("GEN-2", fmt::format("a chain with {}: {}", k.what, seen));
  }
  return ok();
}

// GEN-10 (what the device does), GEN-2, GEN-6 for unknown request types.
Status unknown_type(CheckContext& c) {
  VMEM_TRY(c.initialize());
  for (uint16_t type : {uint16_t{4}, uint16_t{0xffff}}) {
    WireRequest r;
    r.type = type;
    r.addr = c.block(0);
    r.nb_blocks = 1;
    const auto bytes = encode_request(r);
    const std::string what = fmt::format("request type {}", type);
    VMEM_ASSIGN_OR_RETURN(std::string seen, provoke(c, bytes, {{24}, {10}, false}, what));
    c.info("GEN-10", fmt::format("{}: {}", what, seen));
  }
  return ok();
}

// GEN-8: used lengths of well-formed requests, against a canary.
Status used_length(CheckContext& c) {
  VMEM_TRY(c.initialize());
  for (uint16_t type : {VIRTIO_MEM_REQ_PLUG, VIRTIO_MEM_REQ_STATE, VIRTIO_MEM_REQ_UNPLUG,
                        VIRTIO_MEM_REQ_UNPLUG_ALL}) {
    WireRequest r;
    r.type = type;
    r.addr = c.block(3);
    r.nb_blocks = type == VIRTIO_MEM_REQ_UNPLUG_ALL ? 0 : 1;
    VMEM_ASSIGN_OR_RETURN(Exchange x, c.send(r));
    const char* what = request_type_name(type);
    if (x.kind != Exchange::Kind::Used) {
      c.expect("GEN-8", false, fmt::format("{}: {}", what, to_string(x.kind)));
      continue;
    }
    c.expect(
        "GEN-11", x.used_id == x.head,
        fmt::format("{}: used element id {} for the chain with head {}", what, x.used_id, x.head));
    c.expect(
        "GEN-8", x.used_len <= x.writable,
        fmt::format("{}: used length {} with {} writable bytes", what, x.used_len, x.writable));
    // The writable bytes were filled with 0xee; every byte the used length claims must have
    // been written, and no response byte of virtio-mem is 0xee.
    bool written = true;
    for (uint8_t v : x.written)
      written = written && v != 0xee;
    c.expect("GEN-8", written,
             fmt::format("{}: used length {} but the response area still holds the canary", what,
                         x.used_len));
    if (x.used_len < kResponseSize)
      c.info("GEN-8",
             fmt::format("{}: used length {} is below the 10-byte response", what, x.used_len));
  }
  return ok();
}

// GEN-4: a chain published and notified before DRIVER_OK stays in the available ring.
Status before_driver_ok(CheckContext& c) {
  MemDriver& d = c.driver();
  VMEM_ASSIGN_OR_RETURN(uint8_t s, d.negotiate());
  if (!(s & VIRTIO_CONFIG_S_FEATURES_OK)) return unexpected(Error{"FEATURES_OK refused"});
  VMEM_TRY(d.setup_queue());
  WireRequest r;
  r.type = VIRTIO_MEM_REQ_PLUG;
  r.addr = c.block(0);
  r.nb_blocks = 1;
  const auto bytes = encode_request(r);
  const auto head = d.queue().build_chain(0, bytes, {{24}, {10}, false});
  if (!head || !d.queue().publish(*head)) return unexpected(Error{"cannot build the chain"});
  VMEM_TRY(d.transport().notify(MemDriver::kQueue));
  // A device that consumes it does so at once on the reference, within milliseconds elsewhere.
  std::this_thread::sleep_for(std::min(c.completion_timeout(), std::chrono::milliseconds(20)));
  const uint16_t used = d.queue().device_used_idx();
  VMEM_ASSIGN_OR_RETURN(WireConfig cfg, d.read_config());
  c.expect("GEN-4", used == 0 && cfg.plugged_size == 0,
           fmt::format("a PLUG notified before DRIVER_OK was consumed: used index {}, "
                       "plugged_size {:#x}",
                       used, cfg.plugged_size));
  // Start over properly; a device that already plugged the block keeps it (learn it).
  VMEM_TRY(c.initialize());
  if (cfg.plugged_size != 0) {
    VMEM_ASSIGN_OR_RETURN(WireResponse st, c.state(c.block(0), 1));
    if (st.state == VIRTIO_MEM_STATE_PLUGGED) c.shadow().apply(r, WireResponse{});
  }
  return ok();
}

}  // namespace

void add_virtqueue_checks(std::vector<CheckDef>& out) {
  const DeviceSetup base;
  out.push_back({"split-chains",
                 "Requests split over descriptors (D8)",
                 {"GEN-1", "GEN-8"},
                 base,
                 {},
                 split_chains});
  out.push_back({"short-chains",
                 "Chains too short for a request or a response",
                 {"GEN-1", "GEN-2", "GEN-6", "GEN-8"},
                 base,
                 {},
                 short_chains});
  out.push_back({"malformed-chains",
                 "Descriptor chains no device can follow",
                 {"GEN-2", "GEN-6", "GEN-8"},
                 base,
                 {},
                 malformed_chains});
  out.push_back({"unknown-type",
                 "Unknown request types",
                 {"GEN-2", "GEN-6", "GEN-10"},
                 base,
                 {},
                 unknown_type});
  out.push_back({"used-length",
                 "Used lengths of well-formed requests",
                 {"GEN-8", "GEN-11"},
                 base,
                 {},
                 used_length});
  out.push_back({"before-driver-ok",
                 "Nothing is consumed before DRIVER_OK",
                 {"GEN-4"},
                 base,
                 {},
                 before_driver_ok});
}

}  // namespace vmem::conformance
