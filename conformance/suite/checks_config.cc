// Checks of the device configuration (DEV-2..10, GEN-5, GEN-7): its invariants on every read,
// the generation counter, and the notifications of host resizes (decisions D9: counted by ISR
// bit and generation, never by interrupt lines).
#include <fmt/format.h>

#include "conformance/suite/check.h"
#include "conformance/suite/checks.h"
#include "reference/virtio/virtio_device.h"

namespace vmem::conformance {

namespace {

constexpr uint8_t kIsrConfig = 0x2;

// The invariants every snapshot must satisfy, judged against the first snapshot `first`.
void judge_snapshot(CheckContext& c, const WireConfig& first, const WireConfig& now,
                    std::string_view when) {
  c.expect("DEV-2",
           now.block_size == first.block_size && now.node_id == first.node_id &&
               now.addr == first.addr && now.region_size == first.region_size,
           fmt::format("{}: block_size/node_id/addr/region_size {:#x}/{}/{:#x}/{:#x}, first read "
                       "{:#x}/{}/{:#x}/{:#x}",
                       when, now.block_size, now.node_id, now.addr, now.region_size,
                       first.block_size, first.node_id, first.addr, first.region_size));
  c.expect("DEV-4", now.usable_region_size >= now.requested_size,
           fmt::format("{}: usable_region_size {:#x} < requested_size {:#x}", when,
                       now.usable_region_size, now.requested_size));
  const uint64_t bs = now.block_size;
  c.expect("DEV-5", bs != 0 && (bs & (bs - 1)) == 0,
           fmt::format("{}: block_size {:#x} is not a power of two", when, bs));
  if (bs != 0 && (bs & (bs - 1)) == 0) {
    const bool aligned = now.addr % bs == 0 && now.region_size % bs == 0 &&
                         now.usable_region_size % bs == 0 && now.plugged_size % bs == 0 &&
                         now.requested_size % bs == 0;
    c.expect("DEV-6", aligned,
             fmt::format("{}: addr {:#x}, region {:#x}, usable {:#x}, plugged {:#x}, requested "
                         "{:#x} not all multiples of block_size {:#x}",
                         when, now.addr, now.region_size, now.usable_region_size, now.plugged_size,
                         now.requested_size, bs));
  }
  if (now.region_size == 0) c.info("DEV-7", fmt::format("{}: region_size is 0", when));
}

// DEV-2..6 on every read, GEN-7 before FEATURES_OK, DEV-8 across requests.
Status config_fields(CheckContext& c) {
  MemDriver& d = c.driver();
  VMEM_TRY(d.reset());
  TransportDriver& t = d.transport();
  VMEM_TRY(t.set_status(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER));
  VMEM_ASSIGN_OR_RETURN(WireConfig early, d.read_config());
  c.expect("GEN-7", early.block_size != 0 && early.region_size != 0,
           fmt::format("before FEATURES_OK the configuration reads block_size {:#x}, region_size "
                       "{:#x}",
                       early.block_size, early.region_size));
  judge_snapshot(c, early, early, "before FEATURES_OK");
  VMEM_TRY(c.initialize());
  VMEM_ASSIGN_OR_RETURN(WireConfig first, d.read_config());
  c.expect("GEN-7", first == early,
           "the configuration read before FEATURES_OK differs from the one after DRIVER_OK");
  judge_snapshot(c, first, first, "after DRIVER_OK");

  const uint64_t bs = first.block_size;
  uint64_t usable = first.usable_region_size;
  int step = 0;
  auto after = [&](std::string_view what) -> Status {
    VMEM_ASSIGN_OR_RETURN(WireConfig now, d.read_config());
    judge_snapshot(c, first, now, fmt::format("after {}", what));
    c.expect("DEV-3", now.plugged_size == c.shadow().plugged_count() * bs,
             fmt::format("after {}: plugged_size {:#x}, acknowledged blocks {}", what,
                         now.plugged_size, c.shadow().plugged_count()));
    c.expect("DEV-8", now.usable_region_size >= usable,
             fmt::format("after {}: usable_region_size shrank from {:#x} to {:#x}", what, usable,
                         now.usable_region_size));
    usable = now.usable_region_size;
    ++step;
    return ok();
  };
  VMEM_ASSIGN_OR_RETURN(WireResponse r, c.plug(c.block(0), 4));
  VMEM_TRY(after("PLUG of 4 blocks"));
  VMEM_ASSIGN_OR_RETURN(r, c.plug(c.block(10), 1));
  VMEM_TRY(after("PLUG of 1 block"));
  VMEM_ASSIGN_OR_RETURN(r, c.unplug(c.block(1), 2));
  VMEM_TRY(after("UNPLUG of 2 blocks"));
  VMEM_ASSIGN_OR_RETURN(r, c.plug(c.block(0) + 1, 1));
  VMEM_TRY(after("a misaligned PLUG"));
  VMEM_ASSIGN_OR_RETURN(r, c.state(c.block(0), 16));
  VMEM_TRY(after("STATE"));
  VMEM_TRY(d.reset());
  VMEM_TRY(c.initialize());
  VMEM_TRY(after("a device reset"));
  if (c.target().has(Capability::SetRequestedSize)) {
    VMEM_TRY(c.set_requested_size(0, first.requested_size + 8 * bs));
    VMEM_TRY(after("a host resize up"));
    VMEM_TRY(c.set_requested_size(0, bs));
    VMEM_TRY(after("a host resize down below plugged_size"));
  }
  return ok();
}

// GEN-5 across requests, DEV-10: a plug changes plugged_size only, which the generation shows
// and no notification announces.
Status plug_generation(CheckContext& c) {
  MemDriver& d = c.driver();
  VMEM_TRY(c.initialize());
  TransportDriver& t = d.transport();
  for (int i = 0; i < 3; ++i) {
    VMEM_ASSIGN_OR_RETURN(WireConfig before, d.read_config());
    VMEM_ASSIGN_OR_RETURN(uint32_t g0, t.config_generation());
    VMEM_ASSIGN_OR_RETURN(uint8_t isr0, t.take_isr());
    (void)isr0;
    const bool plug = i != 1;
    VMEM_ASSIGN_OR_RETURN(WireResponse r,
                          plug ? c.plug(c.block(4 * i), 2) : c.unplug(c.block(0), 1));
    const char* what = plug ? "PLUG" : "UNPLUG";
    VMEM_ASSIGN_OR_RETURN(uint8_t isr, t.take_isr());
    VMEM_ASSIGN_OR_RETURN(uint32_t g1, t.config_generation());
    VMEM_ASSIGN_OR_RETURN(WireConfig now, d.read_config());
    if (r.type != VIRTIO_MEM_RESP_ACK) {
      return unexpected(Error{fmt::format("set-up {} answered {}", what, resp_name(r))});
    }
    c.expect("GEN-5", now == before || g1 != g0,
             fmt::format("an ACKed {} changed plugged_size {:#x} -> {:#x} but config_generation "
                         "stayed {}",
                         what, before.plugged_size, now.plugged_size, g0));
    c.expect("DEV-10", !(isr & kIsrConfig),
             fmt::format("an ACKed {} that changed only plugged_size raised ISR {:#x} (a "
                         "configuration change notification)",
                         what, isr));
  }
  return ok();
}

// DEV-9, GEN-5: host resizes after DRIVER_OK are notified; DEV-11: an unchanged one may be.
Status resize_notification(CheckContext& c) {
  MemDriver& d = c.driver();
  VMEM_TRY(c.initialize());
  TransportDriver& t = d.transport();
  VMEM_ASSIGN_OR_RETURN(WireConfig first, d.read_config());
  const uint64_t bs = first.block_size;
  const uint64_t sizes[] = {first.requested_size + 16 * bs, first.requested_size / 2,
                            first.requested_size / 2, 0, first.requested_size};
  uint64_t current = first.requested_size;
  for (uint64_t size : sizes) {
    VMEM_ASSIGN_OR_RETURN(uint8_t stale, t.take_isr());
    (void)stale;
    VMEM_ASSIGN_OR_RETURN(uint32_t g0, t.config_generation());
    VMEM_TRY(c.set_requested_size(0, size));
    VMEM_ASSIGN_OR_RETURN(bool line, t.interrupt_line());
    VMEM_ASSIGN_OR_RETURN(uint8_t isr, t.take_isr());
    VMEM_ASSIGN_OR_RETURN(uint32_t g1, t.config_generation());
    VMEM_ASSIGN_OR_RETURN(WireConfig now, d.read_config());
    const std::string what = fmt::format("host resize {:#x} -> {:#x}", current, size);
    if (size == current) {
      c.info("DEV-11", fmt::format("{} (no change): {} configuration change notification, "
                                   "config_generation {}",
                                   what, (isr & kIsrConfig) ? "a" : "no",
                                   g1 != g0 ? "changed" : "unchanged"));
      continue;
    }
    c.expect("DEV-9", now.requested_size == size,
             fmt::format("{}: requested_size reads {:#x}", what, now.requested_size));
    c.expect("DEV-9", (isr & kIsrConfig) != 0,
             fmt::format("{}: ISR {:#x}, no configuration change notification", what, isr));
    if (c.target().has(Capability::Interrupts)) {
      c.expect("DEV-9", line || !(isr & kIsrConfig),
               fmt::format("{}: ISR bit 1 set but the interrupt line is not asserted", what));
    }
    c.expect("GEN-5", g1 != g0,
             fmt::format("{}: config_generation stayed {} while requested_size changed", what, g0));
    current = size;
  }
  return ok();
}

// GEN-5 and DEV-9 for a change made before DRIVER_OK (decisions D9).
Status resize_before_driver_ok(CheckContext& c) {
  MemDriver& d = c.driver();
  TransportDriver& t = d.transport();
  VMEM_ASSIGN_OR_RETURN(uint8_t s, d.negotiate());
  if (s != (VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK))
    return unexpected(Error{fmt::format("status {:#x} after FEATURES_OK", s)});
  VMEM_ASSIGN_OR_RETURN(WireConfig before, d.read_config());
  VMEM_ASSIGN_OR_RETURN(uint32_t g0, t.config_generation());
  const uint64_t size = before.requested_size + 8 * before.block_size;
  VMEM_TRY(c.set_requested_size(0, size));
  VMEM_ASSIGN_OR_RETURN(uint32_t g1, t.config_generation());
  VMEM_ASSIGN_OR_RETURN(WireConfig now, d.read_config());
  c.expect("GEN-5", now == before || g1 != g0,
           fmt::format("a host resize before DRIVER_OK changed requested_size {:#x} -> {:#x} "
                       "but config_generation stayed {}",
                       before.requested_size, now.requested_size, g0));
  VMEM_TRY(d.setup_queue());
  VMEM_ASSIGN_OR_RETURN(s, d.driver_ok());
  VMEM_ASSIGN_OR_RETURN(uint8_t isr, t.take_isr());
  c.expect("DEV-9", (isr & kIsrConfig) != 0 || now == before,
           fmt::format("a host resize before DRIVER_OK was never notified: ISR {:#x} after "
                       "DRIVER_OK",
                       isr));
  return ok();
}

// DEV-8, DEV-4: a host shrink below plugged_size unplugs nothing and never shrinks the usable
// region.
Status resize_shrink(CheckContext& c) {
  MemDriver& d = c.driver();
  VMEM_TRY(c.initialize());
  VMEM_ASSIGN_OR_RETURN(WireConfig first, d.read_config());
  VMEM_TRY(c.plug_blocks(0, 8));
  VMEM_TRY(c.set_requested_size(0, 2 * first.block_size));
  VMEM_ASSIGN_OR_RETURN(WireConfig now, d.read_config());
  c.expect("DEV-8", now.usable_region_size >= first.usable_region_size,
           fmt::format("a host shrink made usable_region_size {:#x} -> {:#x}",
                       first.usable_region_size, now.usable_region_size));
  c.expect("DEV-4", now.usable_region_size >= now.requested_size,
           fmt::format("usable_region_size {:#x} < requested_size {:#x}", now.usable_region_size,
                       now.requested_size));
  c.expect("DEV-3", now.plugged_size == 8 * first.block_size,
           fmt::format("plugged_size {:#x} after a host shrink; the device must not unplug on its "
                       "own",
                       now.plugged_size));
  return ok();
}

// DEV-4 against a host that asks for more than the region holds: the host interface refuses it
// (QEMU's requested-size setter does), or the device keeps usable_region_size >= requested_size
// anyway. A refusal is told apart from a target that died by reading the configuration after it.
Status resize_beyond_region(CheckContext& c) {
  MemDriver& d = c.driver();
  VMEM_TRY(c.initialize());
  VMEM_ASSIGN_OR_RETURN(WireConfig first, d.read_config());
  if (first.region_size > ~uint64_t{0} - first.block_size) {
    c.info("DEV-4",
           fmt::format("region_size {:#x} leaves no larger size to ask for", first.region_size));
    return ok();
  }
  const uint64_t size = first.region_size + first.block_size;
  const Status resized = c.set_requested_size(0, size);
  auto now = d.read_config();
  if (!now.has_value()) {
    return unexpected(Error{fmt::format(
        "the target stopped answering after a host resize to {:#x} ({}): {}", size,
        resized.has_value() ? "accepted" : resized.error().message, now.error().message)});
  }
  const std::string what = fmt::format(
      "host resize to {:#x}, a block past region_size {:#x}, {}", size, first.region_size,
      resized.has_value() ? "accepted" : "refused (" + resized.error().message + ")");
  c.expect("DEV-4", now->usable_region_size >= now->requested_size,
           fmt::format("{}: usable_region_size {:#x}, requested_size {:#x}", what,
                       now->usable_region_size, now->requested_size));
  return ok();
}

// DEV-4/6 with a block size larger than QEMU's usable-region extent: the usable region must be
// rounded up to whole blocks.
Status big_blocks(CheckContext& c) {
  VMEM_TRY(c.initialize());
  VMEM_ASSIGN_OR_RETURN(WireConfig cfg, c.driver().read_config());
  judge_snapshot(c, cfg, cfg, "with 1 GiB blocks");
  VMEM_ASSIGN_OR_RETURN(WireResponse r, c.plug(c.block(0), 1));
  c.expect("DEV-29", r.type == VIRTIO_MEM_RESP_ACK,
           "PLUG of one 1 GiB block answered " + resp_name(r));
  if (c.target().has(Capability::SetRequestedSize)) {
    VMEM_TRY(c.set_requested_size(0, 2 * cfg.block_size));
    VMEM_ASSIGN_OR_RETURN(WireConfig now, c.driver().read_config());
    judge_snapshot(c, cfg, now, "after a resize with 1 GiB blocks");
  }
  return ok();
}

}  // namespace

void add_config_checks(std::vector<CheckDef>& out) {
  const DeviceSetup base;
  out.push_back({"config-fields",
                 "Configuration invariants on every read",
                 {"DEV-2", "DEV-3", "DEV-4", "DEV-5", "DEV-6", "DEV-8", "GEN-7"},
                 base,
                 {},
                 config_fields});
  DeviceSetup big;
  big.block_size = 1ULL << 30;
  big.region_size = 8ULL << 30;
  big.requested_size = 1ULL << 30;
  out.push_back({"big-blocks",
                 "1 GiB blocks: usable region in whole blocks",
                 {"DEV-4", "DEV-5", "DEV-6", "DEV-29"},
                 big,
                 {},
                 big_blocks});
  out.push_back({"config-generation",
                 "Plugs change the generation, not the notification",
                 {"GEN-5", "DEV-10"},
                 base,
                 {},
                 plug_generation});
  out.push_back({"resize-notification",
                 "Host resizes after DRIVER_OK are notified",
                 {"DEV-9", "DEV-11", "GEN-5"},
                 base,
                 {Capability::SetRequestedSize},
                 resize_notification});
  out.push_back({"resize-before-driver-ok",
                 "A host resize before DRIVER_OK (D9)",
                 {"DEV-9", "GEN-5"},
                 base,
                 {Capability::SetRequestedSize},
                 resize_before_driver_ok});
  out.push_back({"resize-shrink",
                 "A host shrink below plugged_size",
                 {"DEV-3", "DEV-4", "DEV-8"},
                 base,
                 {Capability::SetRequestedSize},
                 resize_shrink});
  out.push_back({"resize-beyond-region",
                 "A host resize past region_size is refused or kept usable",
                 {"DEV-4"},
                 base,
                 {Capability::SetRequestedSize},
                 resize_beyond_region});
}

}  // namespace vmem::conformance
