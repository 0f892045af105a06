// Checks of what survives what (DEV-12..23): device reset, system reset, suspend/wake-up, the
// contents of plugged blocks, reads of unplugged memory, UNPLUGGED_INACCESSIBLE negotiation, the
// busy window, a NUMA node, and two devices in one machine.
#include <fmt/format.h>

#include "conformance/suite/check.h"
#include "conformance/suite/checks.h"
#include "reference/virtio/virtio_device.h"

namespace vmem::conformance {

namespace {

// One byte per block, so a block that moved or was zeroed is told apart from its neighbours.
uint8_t pattern(uint64_t block) {
  return static_cast<uint8_t>(0x5a ^ (block * 37 + 11));
}

// Writes each block's pattern at its start, middle and last byte (a full block would be slow
// over qtest and proves no more).
Status write_patterns(CheckContext& c, uint64_t first, uint64_t n) {
  const uint64_t bs = c.initial().block_size;
  for (uint64_t b = first; b < first + n; ++b) {
    for (uint64_t off : {uint64_t{0}, bs / 2, bs - 64})
      VMEM_TRY(c.target().mem_fill(c.block(b) + off, 64, pattern(b)));
  }
  return ok();
}

// The first block in [first, first + n) whose pattern is not intact, with what was read.
Result<std::optional<std::string>> damaged(CheckContext& c, uint64_t first, uint64_t n) {
  const uint64_t bs = c.initial().block_size;
  std::array<uint8_t, 64> buf{};
  for (uint64_t b = first; b < first + n; ++b) {
    for (uint64_t off : {uint64_t{0}, bs / 2, bs - 64}) {
      VMEM_TRY(c.target().mem_read(c.block(b) + off, buf));
      for (uint8_t v : buf) {
        if (v != pattern(b)) {
          return std::optional<std::string>(
              fmt::format("block {} ({:#x}) offset {:#x} reads {:#04x}, written {:#04x}", b,
                          c.block(b), off, v, pattern(b)));
        }
      }
    }
  }
  return std::optional<std::string>();
}

// DEV-13/14: a device reset keeps every block's state and its contents.
Status device_reset(CheckContext& c) {
  VMEM_TRY(c.initialize());
  VMEM_TRY(c.plug_blocks(0, 3));
  VMEM_TRY(c.plug_blocks(7, 2));
  VMEM_TRY(write_patterns(c, 0, 3));
  VMEM_TRY(write_patterns(c, 7, 2));
  VMEM_ASSIGN_OR_RETURN(WireConfig before, c.driver().read_config());
  VMEM_TRY(c.driver().reset());
  VMEM_ASSIGN_OR_RETURN(WireConfig during, c.driver().read_config());
  c.expect("DEV-13", during.plugged_size == before.plugged_size,
           fmt::format("plugged_size {:#x} right after a device reset, {:#x} before",
                       during.plugged_size, before.plugged_size));
  VMEM_TRY(c.initialize());
  VMEM_ASSIGN_OR_RETURN(WireResponse r, c.state(c.block(0), 3));
  c.expect("DEV-13", r.type == VIRTIO_MEM_RESP_ACK && r.state == VIRTIO_MEM_STATE_PLUGGED,
           fmt::format("STATE of blocks plugged before a device reset: {} state {}", resp_name(r),
                       r.state));
  VMEM_ASSIGN_OR_RETURN(auto bad, damaged(c, 0, 3));
  if (!bad) {
    VMEM_ASSIGN_OR_RETURN(bad, damaged(c, 7, 2));
  }
  c.expect("DEV-14", !bad, bad ? "after a device reset, " + *bad : "");
  return ok();
}

// DEV-18/19: plugged blocks can be written and read, and requests on other blocks leave them.
Status plugged_contents(CheckContext& c) {
  VMEM_TRY(c.initialize());
  VMEM_TRY(c.plug_blocks(4, 4));
  VMEM_TRY(write_patterns(c, 4, 4));
  VMEM_ASSIGN_OR_RETURN(auto bad, damaged(c, 4, 4));
  c.expect("DEV-19", !bad, bad ? "plugged memory does not keep what was written: " + *bad : "");
  // Requests around them: neighbours plugged and unplugged, invalid requests, STATE, and an
  // UNPLUG that fails because it covers them and a free block.
  VMEM_TRY(c.plug_blocks(3, 1));
  VMEM_TRY(c.plug_blocks(8, 2));
  VMEM_ASSIGN_OR_RETURN(WireResponse r, c.unplug(c.block(3), 1));
  VMEM_ASSIGN_OR_RETURN(r, c.unplug(c.block(8), 2));
  VMEM_ASSIGN_OR_RETURN(r, c.unplug(c.block(7), 3));
  VMEM_ASSIGN_OR_RETURN(r, c.plug(c.block(5), 1));
  VMEM_ASSIGN_OR_RETURN(r, c.state(c.block(0), 16));
  VMEM_ASSIGN_OR_RETURN(bad, damaged(c, 4, 4));
  c.expect("DEV-18", !bad, bad ? "after requests on other blocks, " + *bad : "");
  return ok();
}

// DEV-20: without UNPLUGGED_INACCESSIBLE, unplugged blocks of the usable region can be read.
Status unplugged_readable(CheckContext& c) {
  VMEM_TRY(c.initialize());
  c.expect("DEV-20", !(c.driver().negotiated() & feature_bit(VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE)),
           "the device offered UNPLUGGED_INACCESSIBLE although the setup asked it not to");
  VMEM_ASSIGN_OR_RETURN(WireConfig cfg, c.driver().read_config());
  // Block numbers come from the geometry the check started with, which was validated; a
  // block_size that reads differently now (even 0) has broken DEV-2, judged elsewhere.
  const uint64_t usable_blocks = cfg.usable_region_size / c.initial().block_size;
  if (usable_blocks == 0) {
    c.skip("DEV-20", "the usable region is empty: no unplugged usable block to read");
    return ok();
  }
  const uint64_t last = usable_blocks - 1;
  std::array<uint8_t, 64> buf{};
  for (uint64_t b : {uint64_t{0}, uint64_t{5}, last}) {
    auto read = c.target().mem_read(c.block(b), buf);
    c.expect("DEV-20", read.has_value(),
             fmt::format("reading unplugged usable block {} ({:#x}) failed: {}", b, c.block(b),
                         read.has_value() ? "" : read.error().message));
  }
  // Plugging, unplugging and reading again: still readable.
  VMEM_TRY(c.plug_blocks(5, 1));
  VMEM_ASSIGN_OR_RETURN(WireResponse r, c.unplug(c.block(5), 1));
  if (r.type != VIRTIO_MEM_RESP_ACK)
    return unexpected(Error{"set-up UNPLUG answered " + resp_name(r)});
  auto read = c.target().mem_read(c.block(5), buf);
  c.expect("DEV-20", read.has_value(),
           fmt::format("reading block 5 after it was unplugged again failed: {}",
                       read.has_value() ? "" : read.error().message));
  return ok();
}

// DEV-12, GEN-3: a driver that does not accept an offered UNPLUGGED_INACCESSIBLE.
Status unplugged_inaccessible(CheckContext& c) {
  MemDriver& d = c.driver();
  VMEM_ASSIGN_OR_RETURN(uint8_t s, d.negotiate());
  const uint64_t bit = feature_bit(VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE);
  if (!(d.offered() & bit)) {
    c.skip("DEV-12", "the device does not offer UNPLUGGED_INACCESSIBLE with this setup");
    return ok();
  }
  c.expect("GEN-3", (s & VIRTIO_CONFIG_S_FEATURES_OK) != 0,
           fmt::format("FEATURES_OK refused for the offered features {:#x}", d.offered()));
  VMEM_ASSIGN_OR_RETURN(s, d.initialize(d.negotiated() & ~bit));
  if (!(s & VIRTIO_CONFIG_S_FEATURES_OK)) {
    c.info("DEV-12", "without UNPLUGGED_INACCESSIBLE the device refuses FEATURES_OK");
  } else {
    // Accepted: GEN-3 says the device must then work with that subset.
    VMEM_ASSIGN_OR_RETURN(WireResponse r, c.plug(c.block(0), 1));
    c.info("DEV-12", fmt::format("without UNPLUGGED_INACCESSIBLE the device accepts FEATURES_OK "
                                 "and answers a PLUG with {}",
                                 resp_name(r)));
    c.expect("GEN-3", r.type == VIRTIO_MEM_RESP_ACK,
             fmt::format("FEATURES_OK accepted without UNPLUGGED_INACCESSIBLE, then a valid PLUG "
                         "answered {}",
                         resp_name(r)));
  }
  // Back to a working device for the closing comparison.
  VMEM_TRY(c.initialize());
  return ok();
}

// DEV-22 (and DEV-2, DEV-4 across it): a system reset unplugs every block.
Status system_reset(CheckContext& c) {
  VMEM_TRY(c.initialize());
  VMEM_TRY(c.plug_blocks(0, 4));
  VMEM_TRY(c.plug_blocks(20, 1));
  VMEM_ASSIGN_OR_RETURN(WireConfig before, c.driver().read_config());
  VMEM_TRY(c.system_reset());
  VMEM_TRY(c.reattach());
  VMEM_ASSIGN_OR_RETURN(WireConfig after, c.driver().read_config());
  c.expect("DEV-22", after.plugged_size == 0,
           fmt::format("plugged_size {:#x} after a system reset", after.plugged_size));
  VMEM_ASSIGN_OR_RETURN(WireResponse r, c.state(c.block(0), 21));
  c.expect("DEV-22", r.type == VIRTIO_MEM_RESP_ACK && r.state == VIRTIO_MEM_STATE_UNPLUGGED,
           fmt::format("STATE of blocks plugged before a system reset: {} state {}", resp_name(r),
                       r.state));
  if (after.block_size != before.block_size || after.addr != before.addr ||
      after.region_size != before.region_size || after.node_id != before.node_id) {
    c.info("DEV-2", "the system reset gave block_size, addr, region_size or node_id new values");
  }
  c.expect("DEV-4", after.usable_region_size >= after.requested_size,
           fmt::format("after a system reset usable_region_size {:#x} < requested_size {:#x}",
                       after.usable_region_size, after.requested_size));
  return ok();
}

// DEV-15, DEV-23: suspend-to-RAM and wake-up.
Status suspend_resume(CheckContext& c) {
  VMEM_TRY(c.initialize());
  const bool persistent =
      (c.driver().negotiated() & feature_bit(VIRTIO_MEM_F_PERSISTENT_SUSPEND)) != 0;
  c.info("DEV-15", persistent ? "VIRTIO_MEM_F_PERSISTENT_SUSPEND offered and negotiated"
                              : "VIRTIO_MEM_F_PERSISTENT_SUSPEND not offered");
  VMEM_TRY(c.plug_blocks(2, 3));
  VMEM_TRY(c.suspend_resume());
  // The wake-up resets the device as the platform does; the driver starts it again.
  VMEM_TRY(c.initialize());
  VMEM_ASSIGN_OR_RETURN(WireResponse r, c.state(c.block(2), 3));
  const bool kept = r.type == VIRTIO_MEM_RESP_ACK && r.state == VIRTIO_MEM_STATE_PLUGGED;
  if (persistent) {
    c.expect("DEV-23", kept,
             fmt::format("with PERSISTENT_SUSPEND negotiated, blocks plugged before suspend: {} "
                         "state {} after wake-up",
                         resp_name(r), r.state));
  } else {
    c.info("DEV-23", fmt::format("without PERSISTENT_SUSPEND, blocks plugged before suspend are "
                                 "{} after wake-up",
                                 kept ? "still plugged" : "no longer all plugged"));
    if (!kept) {
      // Allowed without the feature: learn the device's state again.
      VMEM_ASSIGN_OR_RETURN(r, c.request(VIRTIO_MEM_REQ_UNPLUG_ALL, 0, 0));
      if (r.type != VIRTIO_MEM_RESP_ACK)
        return unexpected(Error{"UNPLUG_ALL to re-synchronize answered " + resp_name(r)});
    }
  }
  return ok();
}

// DEV-28/35/40 (BUSY is allowed), DEV-47 (never for STATE), DEV-26 (range errors still win).
Status busy_window(CheckContext& c) {
  VMEM_TRY(c.initialize());
  // With nothing plugged, UNPLUG_ALL has nothing to wait for (QEMU answers BUSY before 8.1).
  VMEM_TRY(c.set_busy(true));
  VMEM_ASSIGN_OR_RETURN(WireResponse empty, c.request(VIRTIO_MEM_REQ_UNPLUG_ALL, 0, 0));
  VMEM_TRY(c.set_busy(false));
  c.info("DEV-40", "UNPLUG_ALL in a busy window with nothing plugged answered " + resp_name(empty));

  VMEM_TRY(c.plug_blocks(0, 2));
  VMEM_TRY(c.set_busy(true));
  VMEM_ASSIGN_OR_RETURN(WireResponse plug, c.plug(c.block(4), 1));
  VMEM_ASSIGN_OR_RETURN(WireResponse unplug, c.unplug(c.block(0), 1));
  VMEM_ASSIGN_OR_RETURN(WireResponse state, c.state(c.block(0), 8));
  VMEM_ASSIGN_OR_RETURN(WireResponse bad, c.plug(c.block(4) + 1, 1));
  VMEM_ASSIGN_OR_RETURN(WireResponse all, c.request(VIRTIO_MEM_REQ_UNPLUG_ALL, 0, 0));
  VMEM_TRY(c.set_busy(false));
  c.info("DEV-28", "PLUG in a busy window answered " + resp_name(plug));
  c.info("DEV-35", "UNPLUG in a busy window answered " + resp_name(unplug));
  c.info("DEV-40", "UNPLUG_ALL in a busy window with blocks plugged answered " + resp_name(all));
  c.expect("DEV-47", state.type == VIRTIO_MEM_RESP_ACK,
           "STATE in a busy window answered " + resp_name(state));
  c.expect("DEV-26", bad.type == VIRTIO_MEM_RESP_ERROR,
           "a misaligned PLUG in a busy window answered " + resp_name(bad));
  // After the window everything works again.
  VMEM_ASSIGN_OR_RETURN(plug, c.plug(c.block(10), 1));
  c.expect("DEV-29", plug.type == VIRTIO_MEM_RESP_ACK,
           "PLUG after the busy window answered " + resp_name(plug));
  return ok();
}

// ACPI_PXM with a NUMA node: the feature is offered and node_id is the node.
Status numa_node(CheckContext& c) {
  VMEM_TRY(c.initialize());
  VMEM_ASSIGN_OR_RETURN(WireConfig cfg, c.driver().read_config());
  const bool offered = (c.driver().offered() & feature_bit(VIRTIO_MEM_F_ACPI_PXM)) != 0;
  c.info("DEV-1", fmt::format("with a NUMA node: ACPI_PXM {}, node_id {}",
                              offered ? "offered" : "not offered", cfg.node_id));
  c.expect("DEV-2", cfg.node_id == 1 || !offered,
           fmt::format("the device sits on node 1 and offers ACPI_PXM, but node_id reads {}",
                       cfg.node_id));
  VMEM_TRY(c.plug_blocks(0, 2));
  VMEM_ASSIGN_OR_RETURN(WireConfig after, c.driver().read_config());
  c.expect("DEV-2", after.node_id == cfg.node_id,
           fmt::format("node_id {} after a PLUG, {} before", after.node_id, cfg.node_id));
  return ok();
}

// Two devices: requests on one never show on the other, and their regions do not overlap.
Status two_devices(CheckContext& c) {
  VMEM_TRY(c.initialize(0));
  VMEM_TRY(c.initialize(1));
  const WireConfig& a = c.initial(0);
  const WireConfig& b = c.initial(1);
  c.expect("DEV-2", a.addr + a.region_size <= b.addr || b.addr + b.region_size <= a.addr,
           fmt::format("the regions [{:#x}, +{:#x}) and [{:#x}, +{:#x}) overlap", a.addr,
                       a.region_size, b.addr, b.region_size));
  VMEM_TRY(c.plug_blocks(0, 3, 0));
  VMEM_TRY(c.plug_blocks(5, 1, 1));
  VMEM_ASSIGN_OR_RETURN(WireConfig a1, c.driver(0).read_config());
  VMEM_ASSIGN_OR_RETURN(WireConfig b1, c.driver(1).read_config());
  c.expect("DEV-3", a1.plugged_size == 3 * a.block_size && b1.plugged_size == b.block_size,
           fmt::format("plugged_size {:#x} and {:#x} after plugging 3 and 1 blocks",
                       a1.plugged_size, b1.plugged_size));
  VMEM_ASSIGN_OR_RETURN(WireResponse r, c.request(VIRTIO_MEM_REQ_UNPLUG_ALL, 0, 0, 0));
  if (r.type != VIRTIO_MEM_RESP_ACK)
    return unexpected(Error{"UNPLUG_ALL on the first device answered " + resp_name(r)});
  VMEM_ASSIGN_OR_RETURN(b1, c.driver(1).read_config());
  c.expect("DEV-3", b1.plugged_size == b.block_size,
           fmt::format("UNPLUG_ALL on the first device left the second with plugged_size {:#x}",
                       b1.plugged_size));
  if (c.target().has(Capability::SetRequestedSize)) {
    VMEM_TRY(c.set_requested_size(1, b.requested_size + 4 * b.block_size));
    VMEM_ASSIGN_OR_RETURN(a1, c.driver(0).read_config());
    c.expect("DEV-2", a1.requested_size == a.requested_size,
             fmt::format("resizing the second device changed the first's requested_size to {:#x}",
                         a1.requested_size));
  }
  return ok();
}

}  // namespace

void add_lifecycle_checks(std::vector<CheckDef>& out) {
  const DeviceSetup base;
  out.push_back({"device-reset",
                 "A device reset keeps blocks and contents",
                 {"DEV-13", "DEV-14"},
                 base,
                 {},
                 device_reset});
  out.push_back({"plugged-contents",
                 "Plugged memory keeps its contents",
                 {"DEV-18", "DEV-19"},
                 base,
                 {},
                 plugged_contents});
  out.push_back({"unplugged-readable",
                 "Unplugged usable memory is readable without "
                 "UNPLUGGED_INACCESSIBLE",
                 {"DEV-20"},
                 base,
                 {},
                 unplugged_readable});
  DeviceSetup inaccessible = base;
  inaccessible.unplugged_inaccessible = true;
  out.push_back({"unplugged-inaccessible",
                 "A driver that refuses UNPLUGGED_INACCESSIBLE",
                 {"DEV-12", "GEN-3"},
                 inaccessible,
                 {Capability::UnpluggedInaccessible},
                 unplugged_inaccessible});
  out.push_back({"system-reset",
                 "A system reset unplugs everything",
                 {"DEV-2", "DEV-4", "DEV-22"},
                 base,
                 {Capability::SystemReset},
                 system_reset});
  out.push_back({"suspend-resume",
                 "Suspend-to-RAM and wake-up",
                 {"DEV-15", "DEV-23"},
                 base,
                 {Capability::SuspendResume},
                 suspend_resume});
  out.push_back({"busy-window",
                 "Requests while the host is busy",
                 {"DEV-26", "DEV-28", "DEV-29", "DEV-35", "DEV-40", "DEV-47"},
                 base,
                 {Capability::BusyWindow},
                 busy_window});
  DeviceSetup numa = base;
  numa.acpi_pxm = true;
  numa.node_id = 1;
  out.push_back({"numa-node",
                 "ACPI_PXM and node_id on a NUMA node",
                 {"DEV-1", "DEV-2"},
                 numa,
                 {Capability::NumaNode},
                 numa_node});
  DeviceSetup two = base;
  two.devices = 2;
  out.push_back({"two-devices",
                 "Two virtio-mem devices in one machine",
                 {"DEV-2", "DEV-3"},
                 two,
                 {Capability::TwoDevices},
                 two_devices});
}

}  // namespace vmem::conformance
