// An executable model of the virtio-mem device's request semantics, written independently of the
// reference device from the spec notes (virtio-mem-spec.md §2, §3, §4.1, §5.4) and the behaviour
// table (docs/profiles.md). The differential fuzzer runs one operation sequence against the
// reference device and against this model; every verdict and configuration field must agree.
//
// What it models: the verdict of PLUG, UNPLUG, UNPLUG_ALL and STATE per profile, the block
// states, and the configuration fields; the host's resize, busy window, system reset and S3
// wake-up; a device (virtio) reset. What it does not: the transport (config_generation,
// notifications, DRIVER_OK, framing), feature negotiation, memory contents, and protocol
// violations (an unknown request type is a precondition failure here, see request()).
//
// This header includes nothing from reference/, so a consumer needs no VMEM_MUTANTS setting.
// The numeric codes are the wire values (VIRTIO_MEM_RESP_*, VIRTIO_MEM_STATE_*,
// VIRTIO_MEM_REQ_* of reference/mem/wire.h).
#pragma once

#include <cstdint>
#include <map>

namespace vmem::model {

enum class Profile { Spec, Qemu, Qemu72 };

// The fixed part of the device. All of it must be consistent (the constructor checks):
// block_size a power of two; addr and region_size multiples of it; addr + region_size <= 2^64.
// usable_extent is the extra room the usable region gets beyond requested_size (256 MiB on x86
// in QEMU); it need not be block-aligned.
struct Geometry {
  uint64_t addr = 0;
  uint64_t region_size = 0;
  uint64_t block_size = 0;
  uint64_t usable_extent = 0;
};

// The configuration fields the model decides (node_id and padding are not modelled).
struct Config {
  uint64_t block_size = 0;
  uint64_t addr = 0;
  uint64_t region_size = 0;
  uint64_t usable_region_size = 0;
  uint64_t plugged_size = 0;
  uint64_t requested_size = 0;
  friend bool operator==(const Config&, const Config&) = default;
};

// `type` is a VIRTIO_MEM_RESP_* value. `state` is a VIRTIO_MEM_STATE_* value for an ACKed STATE
// request and 0 otherwise (the driver must ignore it then, DRV-17..21): compare it only for an
// ACKed STATE.
struct Answer {
  uint16_t type = 0;
  uint16_t state = 0;
  friend bool operator==(const Answer&, const Answer&) = default;
};

class SpecModel {
 public:
  // A freshly powered-on device: every block unplugged, the usable region sized for
  // requested_size. Throws std::invalid_argument if the geometry is inconsistent or
  // requested_size is not a block multiple no larger than region_size. PERSISTENT_SUSPEND is
  // never offered in qemu-7.2 (profiles.md row 10), so there it is taken as not negotiated.
  SpecModel(Profile p, Geometry g, uint64_t requested_size, bool persistent_suspend_negotiated);

  // One guest request (VIRTIO_MEM_REQ_*). `addr` and `nb_blocks` are ignored for UNPLUG_ALL.
  // `populate_refused`: the host will refuse to populate this PLUG's range; the device then rolls
  // back and answers BUSY. It only matters for a PLUG that would otherwise be ACKed.
  // Throws std::invalid_argument for a type above 3 (a protocol violation: the device sends no
  // response at all and needs a reset; the fuzzer must handle that side itself).
  Answer request(uint16_t type, uint64_t addr, uint16_t nb_blocks, bool populate_refused = false);

  // QEMU's `requested-size` property. Returns false and changes nothing when the value is not a
  // multiple of block_size or exceeds region_size. The usable region may grow, never shrink.
  bool set_requested_size(uint64_t size);
  // A whole-machine reset: unplug everything and recompute the usable region (it may shrink),
  // unless in a busy window, where nothing changes.
  void system_reset();
  // A virtio reset (status 0): blocks, contents and every config field stay as they are.
  void device_reset();
  // The reset on S3 wake-up: a device reset; in qemu-7.2 additionally the system-reset handling.
  void wakeup_reset();
  // A busy window (a migration in progress) opens or closes.
  void set_busy(bool busy);

  Config config() const;
  // Block index relative to the region start; false for a block outside the region.
  bool plugged(uint64_t block) const;

  Profile profile() const { return profile_; }
  bool busy() const { return busy_; }
  bool persistent_suspend_negotiated() const { return persistent_suspend_; }

 private:
  Answer plug(uint64_t addr, uint16_t nb_blocks, bool populate_refused);
  Answer unplug(uint64_t addr, uint16_t nb_blocks);
  Answer unplug_all();
  Answer state(uint64_t addr, uint16_t nb_blocks);

  bool range_valid(uint64_t addr, uint16_t nb_blocks) const;
  uint64_t usable_target() const;
  void unplug_everything_and_resize();

  // The plugged blocks as disjoint, non-adjacent runs: first block -> end block (exclusive).
  uint64_t count_plugged(uint64_t first, uint64_t n) const;
  void mark_plugged(uint64_t first, uint64_t n);    // none of them may be plugged
  void mark_unplugged(uint64_t first, uint64_t n);  // all of them must be plugged

  Profile profile_;
  Geometry geometry_;
  bool persistent_suspend_;
  uint64_t requested_size_ = 0;
  uint64_t usable_region_size_ = 0;
  uint64_t plugged_blocks_ = 0;
  bool busy_ = false;
  std::map<uint64_t, uint64_t> runs_;
};

}  // namespace vmem::model
