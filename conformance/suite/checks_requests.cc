// Checks of the four request types (DEV-24..48): every verdict the spec decides, including
// padding garbage, misalignment, nb_blocks 0 and 65535, ranges that cross the usable end or wrap
// around 2^64, and ranges both invalid and over the requested size.
#include <fmt/format.h>

#include <random>

#include "conformance/suite/check.h"
#include "conformance/suite/checks.h"

namespace vmem::conformance {

namespace {

struct Geometry {
  uint64_t addr, bs, usable_blocks, requested_blocks, region_blocks;
};

Result<Geometry> geometry(CheckContext& c) {
  VMEM_ASSIGN_OR_RETURN(WireConfig cfg, c.driver().read_config());
  if (cfg.block_size == 0) return unexpected(Error{"block_size reads 0"});
  return Geometry{cfg.addr, cfg.block_size, cfg.usable_region_size / cfg.block_size,
                  cfg.requested_size / cfg.block_size, cfg.region_size / cfg.block_size};
}

// A range every device must reject with ERROR, and why.
struct BadRange {
  std::string why;
  uint64_t addr;
  uint16_t nb;
};

std::vector<BadRange> invalid_ranges(const Geometry& g) {
  const uint64_t usable_end = g.addr + g.usable_blocks * g.bs;
  std::vector<BadRange> out = {
      {"addr half a block off", g.addr + g.bs / 2, 1},
      {"addr one byte off", g.addr + 1, 1},
      {"nb_blocks 0", g.addr, 0},
      {"the block below the region", g.addr - g.bs, 1},
      {"crossing into the region from below", g.addr - g.bs, 2},
      {"crossing the usable end", usable_end - g.bs, 2},
      {"starting at the usable end", usable_end, 1},
      {"nb_blocks 65535 from the region's start", g.addr, 0xffff},
      {"the last block of the 64-bit space", 0 - g.bs, 1},
      {"wrapping 2^64 back into the region", 0 - g.bs, 0xffff},
      {"addr 0", 0, 1},
  };
  // A range whose end wraps past 2^64 and lands just inside the region: only an overflow-safe
  // check rejects it.
  if (const uint64_t nb = g.addr / g.bs + 2; nb <= 0xffff)
    out.push_back(
        {"ending inside the region after wrapping 2^64", 0 - g.bs, static_cast<uint16_t>(nb)});
  return out;
}

// DEV-26/33/46: the range rules, the same for the three request types.
Status range_errors(CheckContext& c, uint16_t type, std::string_view id) {
  VMEM_ASSIGN_OR_RETURN(Geometry g, geometry(c));
  for (const BadRange& b : invalid_ranges(g)) {
    if (b.addr == g.addr - g.bs && g.addr < g.bs) continue;  // no block below a region at 0
    VMEM_ASSIGN_OR_RETURN(WireResponse r, c.request(type, b.addr, b.nb));
    c.expect(id, r.type == VIRTIO_MEM_RESP_ERROR,
             fmt::format("{} {:#x}+{} ({}) answered {}, expected ERROR", request_type_name(type),
                         b.addr, b.nb, b.why, resp_name(r)));
  }
  return ok();
}

Status plug_requests(CheckContext& c) {
  VMEM_TRY(c.initialize());
  VMEM_ASSIGN_OR_RETURN(Geometry g, geometry(c));
  if (g.requested_blocks < 8) return unexpected(Error{"the setup requests fewer than 8 blocks"});
  VMEM_TRY(range_errors(c, VIRTIO_MEM_REQ_PLUG, "DEV-26"));

  // DEV-29/30: plugging free blocks inside the usable region and the plug limit.
  VMEM_ASSIGN_OR_RETURN(WireResponse r, c.plug(c.block(2), 2));
  c.expect("DEV-29", r.type == VIRTIO_MEM_RESP_ACK,
           fmt::format("PLUG of 2 free blocks at {:#x} answered {}", c.block(2), resp_name(r)));
  VMEM_ASSIGN_OR_RETURN(WireConfig cfg, c.driver().read_config());
  c.expect(
      "DEV-30", cfg.plugged_size == 2 * g.bs,
      fmt::format("plugged_size {:#x} after plugging 2 blocks of {:#x}", cfg.plugged_size, g.bs));

  // The last usable block: a range ending exactly at the usable end is valid.
  VMEM_ASSIGN_OR_RETURN(r, c.plug(c.block(g.usable_blocks - 1), 1));
  c.expect("DEV-29", r.type == VIRTIO_MEM_RESP_ACK,
           fmt::format("PLUG of the last usable block {:#x} answered {}",
                       c.block(g.usable_blocks - 1), resp_name(r)));

  // DEV-27: any covered block already plugged, while the request stays within requested_size
  // (so the plug limit cannot be the reason).
  for (auto [first, nb, why] : {std::tuple{2ULL, 1, "the plugged block itself"},
                                std::tuple{1ULL, 2, "a free block then a plugged one"},
                                std::tuple{3ULL, 2, "a plugged block then a free one"},
                                std::tuple{0ULL, 6, "both plugged blocks inside a free range"}}) {
    VMEM_ASSIGN_OR_RETURN(r, c.plug(c.block(first), static_cast<uint16_t>(nb)));
    c.expect("DEV-27", r.type == VIRTIO_MEM_RESP_ERROR,
             fmt::format("PLUG {:#x}+{} ({}) answered {}, expected ERROR", c.block(first), nb, why,
                         resp_name(r)));
  }

  // Fill up to requested_size, then one free block more: the plug limit (no normative rule).
  const uint64_t plugged = 3;
  const uint64_t room = g.requested_blocks - plugged;
  uint64_t next = 8, left = room;
  while (left > 0) {
    const auto nb = static_cast<uint16_t>(std::min<uint64_t>(left, 0xffff));
    VMEM_ASSIGN_OR_RETURN(r, c.plug(c.block(next), nb));
    if (!c.expect("DEV-29", r.type == VIRTIO_MEM_RESP_ACK,
                  fmt::format("PLUG {:#x}+{} up to requested_size answered {}", c.block(next), nb,
                              resp_name(r)))) {
      break;
    }
    next += nb;
    left -= nb;
  }
  if (left == 0 && next < g.usable_blocks - 1) {
    VMEM_ASSIGN_OR_RETURN(r, c.plug(c.block(next), 1));
    c.info("GEN-9", fmt::format("PLUG of a free block with plugged_size == requested_size "
                                "answered {}",
                                resp_name(r)));
    if (r.type == VIRTIO_MEM_RESP_ACK) {
      VMEM_ASSIGN_OR_RETURN(r, c.unplug(c.block(next), 1));
    }
    // Over the limit and overlapping a plugged block: the MUST of DEV-27 still decides.
    VMEM_ASSIGN_OR_RETURN(r, c.plug(c.block(2), 2));
    c.expect("DEV-27", r.type == VIRTIO_MEM_RESP_ERROR,
             fmt::format("PLUG {:#x}+2 over plugged blocks, beyond requested_size, answered {}; "
                         "DEV-27 requires ERROR{}",
                         c.block(2), resp_name(r),
                         r.type == VIRTIO_MEM_RESP_NACK
                             ? " (the plug limit was checked first, as QEMU and "
                               "cloud-hypervisor do)"
                             : ""));
    // Both invalid and over the limit: the range rule decides (ERROR).
    VMEM_ASSIGN_OR_RETURN(r, c.plug(c.block(g.usable_blocks - 1), 2));
    c.expect("DEV-26", r.type == VIRTIO_MEM_RESP_ERROR,
             fmt::format("PLUG crossing the usable end beyond requested_size answered {}",
                         resp_name(r)));
  }
  VMEM_ASSIGN_OR_RETURN(cfg, c.driver().read_config());
  c.expect("DEV-30", cfg.plugged_size == c.shadow().plugged_count() * g.bs,
           fmt::format("plugged_size {:#x} after the ACKed plugs ({} blocks)", cfg.plugged_size,
                       c.shadow().plugged_count()));
  return ok();
}

// A PLUG the host cannot back (its populate refused, as by a VFIO mapping or a memslot the host
// could not set up) is answered without ACK and changes nothing (DEV-3, DEV-48); the same PLUG
// is ACKed once the host can populate again (DEV-29). QEMU answers BUSY (DEV-28).
Status populate_refused(CheckContext& c) {
  VMEM_TRY(c.initialize());
  // Something plugged already, so that a size or bitmap left behind is told from a reset one.
  VMEM_TRY(c.plug_blocks(0, 2));
  VMEM_ASSIGN_OR_RETURN(WireConfig before, c.driver().read_config());
  VMEM_TRY(c.refuse_next_populate(0));
  VMEM_ASSIGN_OR_RETURN(WireResponse r, c.plug(c.block(4), 4));
  const std::string what = fmt::format("PLUG {:#x}+4 whose populate the host refused, answered {}",
                                       c.block(4), resp_name(r));
  c.info("DEV-28", what);
  if (r.type != VIRTIO_MEM_RESP_ACK) {
    VMEM_ASSIGN_OR_RETURN(WireConfig after, c.driver().read_config());
    c.expect("DEV-3", after.plugged_size == before.plugged_size,
             fmt::format("{}: plugged_size {:#x}, before it {:#x}", what, after.plugged_size,
                         before.plugged_size));
    VMEM_ASSIGN_OR_RETURN(WireResponse st, c.state(c.block(4), 4));
    c.expect("DEV-48", st.type == VIRTIO_MEM_RESP_ACK && st.state == VIRTIO_MEM_STATE_UNPLUGGED,
             fmt::format("{}: STATE of the range answered {} {}", what, resp_name(st),
                         to_string(static_cast<BlockState>(st.state))));
    // Only BUSY says the device met the refusal (tried to populate and backed off). After
    // any other answer the refusal may still be armed, and the retry would meet it: the
    // retry proves nothing then.
    if (r.type != VIRTIO_MEM_RESP_BUSY) {
      c.info("DEV-29", fmt::format("{}: not BUSY, so the retry is not judged (the host's "
                                   "refusal may not have been used)",
                                   what));
      return ok();
    }
    VMEM_ASSIGN_OR_RETURN(WireResponse again, c.plug(c.block(4), 4));
    c.expect("DEV-29", again.type == VIRTIO_MEM_RESP_ACK,
             fmt::format("the same PLUG, with the host populating again, answered {}",
                         resp_name(again)));
  }
  return ok();
}

Status unplug_requests(CheckContext& c) {
  VMEM_TRY(c.initialize());
  VMEM_ASSIGN_OR_RETURN(Geometry g, geometry(c));
  VMEM_TRY(range_errors(c, VIRTIO_MEM_REQ_UNPLUG, "DEV-33"));
  VMEM_TRY(c.plug_blocks(4, 4));
  WireResponse r;

  // DEV-34: any covered block already unplugged.
  for (auto [first, nb, why] :
       {std::tuple{0ULL, 1, "a free block"}, std::tuple{3ULL, 2, "a free block then a plugged one"},
        std::tuple{7ULL, 2, "a plugged block then a free one"},
        std::tuple{2ULL, 8, "a range around the plugged blocks"}}) {
    VMEM_ASSIGN_OR_RETURN(r, c.unplug(c.block(first), static_cast<uint16_t>(nb)));
    c.expect("DEV-34", r.type == VIRTIO_MEM_RESP_ERROR,
             fmt::format("UNPLUG {:#x}+{} ({}) answered {}, expected ERROR", c.block(first), nb,
                         why, resp_name(r)));
  }
  // DEV-36/37.
  VMEM_ASSIGN_OR_RETURN(r, c.unplug(c.block(5), 2));
  c.expect("DEV-36", r.type == VIRTIO_MEM_RESP_ACK,
           fmt::format("UNPLUG of 2 plugged blocks answered {}", resp_name(r)));
  VMEM_ASSIGN_OR_RETURN(WireConfig cfg, c.driver().read_config());
  c.expect("DEV-37", cfg.plugged_size == 2 * g.bs,
           fmt::format("plugged_size {:#x} after unplugging 2 of 4 blocks of {:#x}",
                       cfg.plugged_size, g.bs));
  // Unplugging is never bounded by requested_size: shrink the request below what is plugged.
  if (c.target().has(Capability::SetRequestedSize)) {
    VMEM_TRY(c.set_requested_size(0, 0));
    VMEM_ASSIGN_OR_RETURN(r, c.unplug(c.block(4), 1));
    c.expect(
        "DEV-36", r.type == VIRTIO_MEM_RESP_ACK,
        fmt::format("UNPLUG of a plugged block with requested_size 0 answered {}", resp_name(r)));
  }
  return ok();
}

Status unplug_all_requests(CheckContext& c) {
  VMEM_TRY(c.initialize());
  VMEM_ASSIGN_OR_RETURN(Geometry g, geometry(c));
  // Nothing plugged: still ACK.
  VMEM_ASSIGN_OR_RETURN(WireResponse r, c.request(VIRTIO_MEM_REQ_UNPLUG_ALL, 0, 0));
  c.expect("DEV-41", r.type == VIRTIO_MEM_RESP_ACK,
           fmt::format("UNPLUG_ALL with nothing plugged answered {}", resp_name(r)));
  VMEM_ASSIGN_OR_RETURN(r, c.plug(c.block(0), 3));
  VMEM_ASSIGN_OR_RETURN(r, c.plug(c.block(g.usable_blocks - 2), 2));
  VMEM_ASSIGN_OR_RETURN(WireConfig before, c.driver().read_config());

  // DEV-38/39: addr, nb_blocks and every padding byte ignored.
  WireRequest all;
  all.type = VIRTIO_MEM_REQ_UNPLUG_ALL;
  all.padding = {0xdead, 0xbeef, 0xffff};
  all.addr = g.addr + 1;  // misaligned: would be an ERROR for any other type
  all.nb_blocks = 0;
  all.payload_padding = {0x5555, 0xaaaa, 0x0001};
  VMEM_ASSIGN_OR_RETURN(Exchange x, c.send(all));
  if (!x.response || x.used_id != x.head) {
    c.expect("DEV-38", false,
             fmt::format("UNPLUG_ALL with garbage in addr, nb_blocks and padding: "
                         "{}",
                         to_string(x.kind)));
    return ok();
  }
  c.expect("DEV-38", x.response->type == VIRTIO_MEM_RESP_ACK,
           fmt::format("UNPLUG_ALL with garbage in addr, nb_blocks and padding answered {}",
                       resp_name(*x.response)));
  c.expect(
      "DEV-39", x.response->type == VIRTIO_MEM_RESP_ACK,
      fmt::format("UNPLUG_ALL with garbage payload padding answered {}", resp_name(*x.response)));
  VMEM_ASSIGN_OR_RETURN(WireConfig after, c.driver().read_config());
  if (x.response->type == VIRTIO_MEM_RESP_ACK) {
    c.expect("DEV-42", after.plugged_size == 0,
             fmt::format("plugged_size {:#x} after an ACKed UNPLUG_ALL", after.plugged_size));
    VMEM_ASSIGN_OR_RETURN(
        r, c.state(c.block(0), static_cast<uint16_t>(std::min<uint64_t>(g.usable_blocks, 0xffff))));
    c.expect("DEV-41", r.type == VIRTIO_MEM_RESP_ACK && r.state == VIRTIO_MEM_STATE_UNPLUGGED,
             fmt::format("STATE of the usable region after UNPLUG_ALL: {} state {}", resp_name(r),
                         r.state));
  }
  if (after.usable_region_size != before.usable_region_size) {
    c.info("DEV-43", fmt::format("UNPLUG_ALL changed usable_region_size from {:#x} to {:#x}",
                                 before.usable_region_size, after.usable_region_size));
  } else {
    c.info("DEV-43", "UNPLUG_ALL left usable_region_size unchanged");
  }
  c.expect("DEV-4", after.usable_region_size >= after.requested_size,
           fmt::format("usable_region_size {:#x} below requested_size {:#x} after UNPLUG_ALL",
                       after.usable_region_size, after.requested_size));
  return ok();
}

Status state_requests(CheckContext& c) {
  VMEM_TRY(c.initialize());
  VMEM_ASSIGN_OR_RETURN(Geometry g, geometry(c));
  VMEM_TRY(range_errors(c, VIRTIO_MEM_REQ_STATE, "DEV-46"));
  VMEM_ASSIGN_OR_RETURN(WireResponse r, c.plug(c.block(4), 4));
  struct Case {
    uint64_t first;
    uint16_t nb;
    uint16_t want;
  };
  const uint16_t all = static_cast<uint16_t>(std::min<uint64_t>(g.usable_blocks, 0xffff));
  for (const Case& k :
       {Case{0, 4, VIRTIO_MEM_STATE_UNPLUGGED}, Case{4, 4, VIRTIO_MEM_STATE_PLUGGED},
        Case{5, 1, VIRTIO_MEM_STATE_PLUGGED}, Case{3, 2, VIRTIO_MEM_STATE_MIXED},
        Case{7, 2, VIRTIO_MEM_STATE_MIXED}, Case{0, all, VIRTIO_MEM_STATE_MIXED},
        Case{8, 1, VIRTIO_MEM_STATE_UNPLUGGED}}) {
    VMEM_ASSIGN_OR_RETURN(r, c.state(c.block(k.first), k.nb));
    if (!c.expect(
            "DEV-47", r.type == VIRTIO_MEM_RESP_ACK,
            fmt::format("STATE {:#x}+{} answered {}", c.block(k.first), k.nb, resp_name(r)))) {
      continue;
    }
    c.expect("DEV-48", r.state == k.want,
             fmt::format("STATE {:#x}+{} reported {}, expected {}", c.block(k.first), k.nb, r.state,
                         k.want));
  }
  // STATE beyond requested_size but inside the usable region is still valid.
  VMEM_ASSIGN_OR_RETURN(r, c.state(c.block(g.usable_blocks - 1), 1));
  c.expect("DEV-47", r.type == VIRTIO_MEM_RESP_ACK,
           fmt::format("STATE of the last usable block answered {}", resp_name(r)));
  return ok();
}

// DEV-24/25, 31/32, 44/45: padding in the header (bytes 2-7) and payload (18-23) has no effect.
Status padding_ignored(CheckContext& c) {
  VMEM_TRY(c.initialize());
  std::mt19937_64 rng(0x5eed);
  auto garbage = [&](WireRequest& r, bool header, bool payload) {
    for (auto& p : r.padding)
      p = header ? static_cast<uint16_t>(rng() | 1) : 0;
    for (auto& p : r.payload_padding)
      p = payload ? static_cast<uint16_t>(rng() | 1) : 0;
  };
  struct Case {
    uint16_t type;
    bool header;
    const char* id;
    uint16_t want;
  };
  // Each request is valid and its clean twin would be ACKed: plug, state, unplug, in turn.
  const Case cases[] = {
      {VIRTIO_MEM_REQ_PLUG, true, "DEV-24", VIRTIO_MEM_RESP_ACK},
      {VIRTIO_MEM_REQ_STATE, true, "DEV-44", VIRTIO_MEM_RESP_ACK},
      {VIRTIO_MEM_REQ_UNPLUG, true, "DEV-31", VIRTIO_MEM_RESP_ACK},
      {VIRTIO_MEM_REQ_PLUG, false, "DEV-25", VIRTIO_MEM_RESP_ACK},
      {VIRTIO_MEM_REQ_STATE, false, "DEV-45", VIRTIO_MEM_RESP_ACK},
      {VIRTIO_MEM_REQ_UNPLUG, false, "DEV-32", VIRTIO_MEM_RESP_ACK},
  };
  for (const Case& k : cases) {
    WireRequest r;
    r.type = k.type;
    r.addr = c.block(6);
    r.nb_blocks = 2;
    garbage(r, k.header, !k.header);
    VMEM_ASSIGN_OR_RETURN(Exchange x, c.send(r));
    const std::string where = k.header ? "header padding" : "payload padding";
    if (!x.response || x.used_id != x.head) {
      c.expect(k.id, false,
               fmt::format("{} with garbage in the {}: {}", request_type_name(k.type), where,
                           to_string(x.kind)));
      return ok();
    }
    c.expect(k.id, x.response->type == k.want,
             fmt::format("{} {:#x}+2 with garbage in the {} answered {}", request_type_name(k.type),
                         r.addr, where, resp_name(*x.response)));
    if (k.type == VIRTIO_MEM_REQ_STATE) {
      c.expect(k.id, x.response->state == VIRTIO_MEM_STATE_PLUGGED,
               fmt::format("STATE with garbage in the {} reported state {}, expected PLUGGED",
                           where, x.response->state));
    }
  }
  // A request that must fail must still fail with garbage padding: the range rule decides.
  WireRequest bad;
  bad.type = VIRTIO_MEM_REQ_PLUG;
  bad.addr = c.block(6) + 1;
  bad.nb_blocks = 1;
  garbage(bad, true, true);
  VMEM_ASSIGN_OR_RETURN(Exchange x, c.send(bad));
  c.expect("DEV-24", x.response && x.response->type == VIRTIO_MEM_RESP_ERROR,
           fmt::format("misaligned PLUG with garbage padding: {}",
                       x.response ? resp_name(*x.response) : std::string(to_string(x.kind))));
  return ok();
}

// nb_blocks 65535 inside a region large enough for it.
Status large_requests(CheckContext& c) {
  VMEM_TRY(c.initialize());
  VMEM_ASSIGN_OR_RETURN(Geometry g, geometry(c));
  if (g.usable_blocks < 0xffff)
    return unexpected(Error{fmt::format("usable region of {} blocks", g.usable_blocks)});
  VMEM_ASSIGN_OR_RETURN(WireResponse r, c.state(c.block(0), 0xffff));
  c.expect("DEV-47", r.type == VIRTIO_MEM_RESP_ACK && r.state == VIRTIO_MEM_STATE_UNPLUGGED,
           fmt::format("STATE of 65535 blocks answered {} state {}", resp_name(r), r.state));
  VMEM_ASSIGN_OR_RETURN(r, c.plug(c.block(1), 0xffff));
  c.expect("DEV-29", r.type == VIRTIO_MEM_RESP_ACK,
           fmt::format("PLUG of 65535 blocks inside requested_size answered {}", resp_name(r)));
  VMEM_ASSIGN_OR_RETURN(WireConfig cfg, c.driver().read_config());
  c.expect("DEV-30", cfg.plugged_size == c.shadow().plugged_count() * g.bs,
           fmt::format("plugged_size {:#x} after plugging 65535 blocks", cfg.plugged_size));
  VMEM_ASSIGN_OR_RETURN(r, c.state(c.block(0), 0xffff));
  c.expect("DEV-48", r.type == VIRTIO_MEM_RESP_ACK && r.state == VIRTIO_MEM_STATE_MIXED,
           fmt::format("STATE of blocks 0..65534 with 1..65534 plugged: {} state {}", resp_name(r),
                       r.state));
  VMEM_ASSIGN_OR_RETURN(r, c.unplug(c.block(1), 0xffff));
  c.expect("DEV-36", r.type == VIRTIO_MEM_RESP_ACK,
           fmt::format("UNPLUG of 65535 plugged blocks answered {}", resp_name(r)));
  return ok();
}

}  // namespace

void add_request_checks(std::vector<CheckDef>& out) {
  const DeviceSetup base;
  out.push_back({"plug",
                 "PLUG: range rules, plugged blocks, the plug limit",
                 {"DEV-26", "DEV-27", "DEV-29", "DEV-30", "GEN-9"},
                 base,
                 {},
                 plug_requests});
  out.push_back({"unplug",
                 "UNPLUG: range rules, unplugged blocks, no limit",
                 {"DEV-33", "DEV-34", "DEV-36", "DEV-37"},
                 base,
                 {},
                 unplug_requests});
  out.push_back({"unplug-all",
                 "UNPLUG_ALL: ignores everything but its type; usable region",
                 {"DEV-4", "DEV-38", "DEV-39", "DEV-41", "DEV-42", "DEV-43"},
                 base,
                 {},
                 unplug_all_requests});
  out.push_back({"state",
                 "STATE: range rules and the three states",
                 {"DEV-46", "DEV-47", "DEV-48"},
                 base,
                 {},
                 state_requests});
  out.push_back({"padding",
                 "Header and payload padding have no effect",
                 {"DEV-24", "DEV-25", "DEV-31", "DEV-32", "DEV-44", "DEV-45"},
                 base,
                 {},
                 padding_ignored});
  out.push_back({"populate-refused",
                 "A PLUG whose populate the host refuses changes nothing",
                 {"DEV-3", "DEV-28", "DEV-29", "DEV-48"},
                 base,
                 {Capability::RefusePopulate},
                 populate_refused});
  DeviceSetup large;
  large.region_size = 256ULL << 30;
  large.requested_size = 0xffffULL * 2 * (1ULL << 20) + (2ULL << 20);
  out.push_back({"large-requests",
                 "nb_blocks 65535 inside a 256 GiB region",
                 {"DEV-29", "DEV-30", "DEV-36", "DEV-47", "DEV-48"},
                 large,
                 {},
                 large_requests});
}

}  // namespace vmem::conformance
