// The reference virtio-mem device (virtio device ID 24).
//
// It handles the guest-request virtqueue (PLUG, UNPLUG, UNPLUG_ALL, STATE) with the verdicts of
// the spec in the check order of its profile, keeps the block bitmap and the configuration
// space, discards unplugged memory, and answers the host's control plane: resize, system reset,
// S3 wake-up, a busy window, migration. Its decisions come from rules.h, shared with the proofs.
//
// Protocol violations (a request shorter than 24 bytes, a response buffer shorter than 10, an
// unknown request type, a malformed chain) never get a response: the chain is detached and the
// device sets DEVICE_NEEDS_RESET, as QEMU's virtio_error() does.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "reference/base/result.h"
#include "reference/mem/block_bitmap.h"
#include "reference/mem/device_options.h"
#include "reference/mem/discard_hooks.h"
#include "reference/mem/wire.h"
#include "reference/memory/backing.h"
#include "reference/virtio/virtio_device.h"

VMEM_NAMESPACE_BEGIN

// The blocks [first, end) whose state may have changed since someone last asked (the invariant
// checker's incremental mode, decisions D11). Empty when first >= end.
struct TouchedBlocks {
  uint64_t first = ~uint64_t{0};
  uint64_t end = 0;
  bool empty() const { return first >= end; }
  void add(uint64_t f, uint64_t n) {
    first = std::min(first, f);
    end = std::max(end, f + n);
  }
};

// What the guest sees for one request.
struct Response {
  RespType type = RespType::Ack;
  BlockState state = BlockState::Unplugged;  // meaningful only for an ACKed STATE
  friend bool operator==(const Response&, const Response&) = default;
};

// Per request type (indexed by VIRTIO_MEM_REQ_*): how often each response code was sent.
struct RequestCounters {
  std::array<std::array<uint64_t, 4>, 4> by_type_and_response{};
  uint64_t protocol_violations = 0;
  uint64_t populate_refusals = 0;
  uint64_t discard_failures = 0;
  uint64_t count(uint16_t type, RespType r) const {
    return by_type_and_response[type][static_cast<uint16_t>(r)];
  }
};

class VirtioMemDevice final : public VirtioDevice {
 public:
  // The device takes the guest memory its queue lives in, and the backing of its own region
  // (which must be region_size bytes; it may be part of `mem` or not).
  static Result<std::unique_ptr<VirtioMemDevice>> create(const DeviceOptions& options,
                                                         GuestMemory& mem, Backing& region);

  // --- Guest requests, without a virtqueue (unit tests, fuzzers, benchmarks) ---
  Response process(const WireRequest& request);

  // --- Host control plane ---
  // QEMU's `requested-size` property: block-aligned and at most region_size, else an error.
  Status set_requested_size(uint64_t size);
  // A whole-machine reset: device reset, then unplug everything (DEV-22) unless busy.
  void system_reset();
  // The reset on S3 wake-up: a device reset; blocks stay plugged (DEV-23) except in qemu-7.2.
  void wakeup_reset();
  // A migration in progress: PLUG, UNPLUG and UNPLUG_ALL answer BUSY (QEMU's is_busy()).
  void set_busy(bool busy) { busy_ = busy; }
  bool busy() const { return busy_; }
  void set_discard_hooks(DiscardHooks* hooks) { hooks_ = hooks; }

  // --- State ---
  WireConfig config() const;
  const BlockBitmap& bitmap() const { return bitmap_; }
  const DeviceOptions& options() const { return options_; }
  Profile profile() const { return options_.profile; }
  Fault fault() const { return fault_; }
  Backing& region() { return region_; }
  const RequestCounters& request_counters() const { return counters_; }
  // Returns the blocks touched since the last call, and forgets them.
  TouchedBlocks take_touched() { return std::exchange(touched_, TouchedBlocks{}); }

  // --- Migration (decisions D13; persist.cc) ---
  std::vector<uint8_t> save() const;
  // Loads a saved stream into this device, which must have the same geometry. Validates all of
  // it first; on any error the device is left untouched.
  Status load(std::span<const uint8_t> stream);

 private:
  VirtioMemDevice(const DeviceOptions& options, Fault fault, bool unplugged_inaccessible,
                  bool persistent_suspend, GuestMemory& mem, Backing& region);

  // VirtioDevice
  uint64_t offered_features() const override { return offered_features_; }
  bool accept_features(uint64_t features) const override;
  std::span<const uint8_t> config_bytes() const override { return config_bytes_; }
  void on_config_write(uint64_t offset, unsigned size, uint64_t value) override;
  void handle_queue(uint16_t index) override;
  void on_reset() override;

  Response plug(uint64_t gpa, uint16_t nb_blocks);
  Response unplug(uint64_t gpa, uint16_t nb_blocks);
  Response unplug_all();
  Response state(uint64_t gpa, uint16_t nb_blocks) const;
  bool valid_range(uint64_t gpa, uint16_t nb_blocks) const;
  uint64_t blocks_in_region(uint64_t gpa, uint64_t nb_blocks) const;
  bool unplug_everything();  // false if busy or the discard failed
  void resize_usable_region(bool can_shrink);
  void sync_config();
  uint64_t block_of(uint64_t gpa) const { return (gpa - options_.addr) / options_.block_size; }

  const DeviceOptions options_;
  const Fault fault_;
  uint64_t offered_features_ = 0;
  Backing& region_;
  DiscardHooks* hooks_ = nullptr;

  BlockBitmap bitmap_;
  uint64_t usable_region_size_ = 0;
  uint64_t plugged_size_ = 0;
  uint64_t requested_size_ = 0;
  bool busy_ = false;

  std::array<uint8_t, kConfigSize> config_bytes_{};
  DescriptorChain chain_;  // reused by handle_queue, so the hot path does not allocate
  RequestCounters counters_;
  TouchedBlocks touched_;
};

VMEM_NAMESPACE_END
