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
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
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

  // --- Threading (decisions D12) ---
  // From now on one iothread processes requests while control-plane threads (resize, busy
  // window, listener registration, checks, migration, resets) act concurrently. No lock is held
  // across expensive work on the request path: a PLUG or UNPLUG reserves itself at its verdict
  // (under a short lock), populates or discards without the lock, and publishes its bitmap
  // update (the linearization point) under the lock again. Only one thread may call process().
  void enable_threading();

  // While one exists, no request is between its verdict and its bitmap update and none starts:
  // the bitmap, the listeners and what consumers have mapped are stable and consistent. Control
  // operations that read or change them hold one (listener registration and replays, invariant
  // checks, save, load, resets). Exclusive among control threads; a no-op on the request path
  // itself (a memslot that appears during a PLUG registers its VFIO listener from there).
  class [[nodiscard]] Quiesced {
   public:
    explicit Quiesced(const VirtioMemDevice& device);
    ~Quiesced();
    Quiesced(const Quiesced&) = delete;
    Quiesced& operator=(const Quiesced&) = delete;

   private:
    const VirtioMemDevice* device_ = nullptr;
    std::unique_lock<std::recursive_mutex> control_;
  };
  Quiesced quiesce() const { return Quiesced(*this); }

  // Order stamps for history checks: every request and host action takes the next stamp at its
  // linearization point. last_stamp() is the stamp of the last request process() handled;
  // next_stamp() takes one for an action of the caller (e.g. a registration under quiesce()).
  uint64_t last_stamp() const;
  uint64_t next_stamp();

  // --- Host control plane ---
  // QEMU's `requested-size` property: block-aligned and at most region_size, else an error.
  Status set_requested_size(uint64_t size, uint64_t* stamp = nullptr);
  // A whole-machine reset: device reset, then unplug everything (DEV-22) unless busy. With an
  // iothread, call it under IoThread::with_core (it resets the queue).
  void system_reset(uint64_t* stamp = nullptr);
  // The reset on S3 wake-up: a device reset; blocks stay plugged (DEV-23) except in qemu-7.2.
  void wakeup_reset(uint64_t* stamp = nullptr);
  // A migration in progress: PLUG, UNPLUG and UNPLUG_ALL answer BUSY (QEMU's is_busy()).
  void set_busy(bool busy, uint64_t* stamp = nullptr);
  bool busy() const;
  // Not while a request is in flight: with threading on, it quiesces first.
  void set_discard_hooks(DiscardHooks* hooks) {
    const auto quiet = quiesce();
    hooks_ = hooks;
  }

  // --- State ---
  WireConfig config() const;
  // With threading on, read it under quiesce().
  const BlockBitmap& bitmap() const { return bitmap_; }
  const DeviceOptions& options() const { return options_; }
  Profile profile() const { return options_.profile; }
  Fault fault() const { return fault_; }
  Backing& region() { return region_; }
  RequestCounters request_counters() const {
    auto lock = lock_state();
    return counters_;
  }
  // Blocks whose consumers' view changed without a request (a listener came or went): the
  // incremental invariant check must look at them.
  void mark_touched(uint64_t first_block, uint64_t n) {
    auto lock = lock_state();
    touched_.add(first_block, n);
  }
  // Returns the blocks touched since the last call, and forgets them.
  TouchedBlocks take_touched() {
    auto lock = lock_state();
    return std::exchange(touched_, TouchedBlocks{});
  }

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
  std::unique_lock<std::mutex> config_read_lock() const override { return lock_state(); }
  void on_config_write(uint64_t offset, unsigned size, uint64_t value) override;
  void handle_queue(uint16_t index) override;
  void on_reset() override;

  bool drain_queue(SplitQueue& q);
  Response plug(uint64_t gpa, uint16_t nb_blocks);
  Response unplug(uint64_t gpa, uint16_t nb_blocks);
  Response unplug_all();
  Response state(uint64_t gpa, uint16_t nb_blocks);
  bool valid_range(uint64_t gpa, uint16_t nb_blocks) const;
  uint64_t blocks_in_region(uint64_t gpa, uint64_t nb_blocks) const;
  // False if (when asked to check) busy, or if the discard failed.
  bool unplug_everything(bool check_busy);
  void resize_usable_region(bool can_shrink);
  // Re-encodes the configuration and, in the same critical section, notifies the change, so a
  // driver never reads new bytes with the old config_generation (its retry loop then works).
  void sync_config(bool changed, bool notify);
  WireConfig config_locked() const;
  // The request path's locking; all of it is free when threading is off.
  std::unique_lock<std::mutex> lock_state() const {
    return threaded_ ? std::unique_lock<std::mutex>(mu_) : std::unique_lock<std::mutex>();
  }
  // A control operation that changes the device's state (a reset) reserves it like a request,
  // so that resizes and busy windows wait for it to finish.
  class ControlFlight {
   public:
    ControlFlight(VirtioMemDevice& device, uint64_t* stamp);
    ~ControlFlight();
    ControlFlight(const ControlFlight&) = delete;
    ControlFlight& operator=(const ControlFlight&) = delete;

   private:
    VirtioMemDevice& device_;
  };
  std::unique_lock<std::mutex> begin_request();
  std::unique_lock<std::mutex> wait_for_requests();
  void count_protocol_violation();
  void start_in_flight(std::unique_lock<std::mutex>& lock);
  void end_in_flight();
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

  bool threaded_ = false;
  mutable std::mutex mu_;  // sizes, busy_, config bytes, counters, touched, the fields below
  mutable std::condition_variable cv_;
  mutable std::recursive_mutex control_mu_;
  mutable uint32_t quiescers_ = 0;
  bool in_flight_ = false;
  std::thread::id in_flight_thread_;
  uint64_t version_ = 0;
  uint64_t last_stamp_ = 0;
};

VMEM_NAMESPACE_END
