#include "reference/mem/device.h"

#include <fmt/format.h>

#include <algorithm>

#include "reference/mem/block_state.h"
#include "reference/mem/rules.h"

VMEM_NAMESPACE_BEGIN

namespace {

constexpr uint16_t kGuestRequestQueue = 0;

ConfigNotifyPolicy policy_of(Profile p) {
  return p == Profile::Spec ? ConfigNotifyPolicy::Spec : ConfigNotifyPolicy::Qemu;
}

bool resolve(Tristate t, bool automatic) {
  return t == Tristate::Auto ? automatic : t == Tristate::On;
}

}  // namespace

Result<std::unique_ptr<VirtioMemDevice>> VirtioMemDevice::create(const DeviceOptions& options,
                                                                 GuestMemory& mem,
                                                                 Backing& region) {
  VMEM_TRY(validate(options));
  if (region.size() != options.region_size) {
    return unexpected(Error{fmt::format("backing is {:#x} bytes, the region needs {:#x}",
                                        region.size(), options.region_size)});
  }
  // QEMU 7.2 resolves unplugged-inaccessible=auto to off when the backend has a shared zero page
  // (private anonymous memory), and to on otherwise; later machine types default to on.
  const bool ui =
      resolve(options.unplugged_inaccessible,
              options.profile != Profile::Qemu72 || region.kind() != BackingKind::Anonymous);
  const bool ps = resolve(options.persistent_suspend, options.profile != Profile::Qemu72);
  return std::unique_ptr<VirtioMemDevice>(
      new VirtioMemDevice(options, *fault_from_name(options.fault), ui, ps, mem, region));
}

VirtioMemDevice::VirtioMemDevice(const DeviceOptions& options, Fault fault,
                                 bool unplugged_inaccessible, bool persistent_suspend,
                                 GuestMemory& mem, Backing& region)
    : VirtioDevice(VIRTIO_ID_MEM, mem, 1, options.queue_size, policy_of(options.profile)),
      options_(options),
      fault_(fault),
      region_(region),
      bitmap_(options.region_size / options.block_size),
      requested_size_(options.requested_size) {
  offered_features_ = feature_bit(VIRTIO_F_VERSION_1);
  if (options.indirect_desc) offered_features_ |= feature_bit(VIRTIO_F_INDIRECT_DESC);
  if (options.event_idx) offered_features_ |= feature_bit(VIRTIO_F_EVENT_IDX);
  if (options.acpi_pxm) offered_features_ |= feature_bit(VIRTIO_MEM_F_ACPI_PXM);
  if (unplugged_inaccessible) offered_features_ |= feature_bit(VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE);
  if (persistent_suspend) offered_features_ |= feature_bit(VIRTIO_MEM_F_PERSISTENT_SUSPEND);
  region_.advise_block_size(options.block_size);
  // On first power-on every block is unplugged, and the host memory is given back.
  (void)region_.discard(0, region_.size());
  resize_usable_region(true);
  sync_config(false, false);
}

bool VirtioMemDevice::accept_features(uint64_t features) const {
  // DEV-12: a device that offers UNPLUGGED_INACCESSIBLE may refuse to work without it; QEMU
  // fails FEATURES_OK, and so do we.
  const uint64_t ui = feature_bit(VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE);
  return !(offered_features_ & ui) || (features & ui);
}

WireConfig VirtioMemDevice::config() const {
  auto lock = lock_state();
  return config_locked();
}

WireConfig VirtioMemDevice::config_locked() const {
  WireConfig c;
  c.block_size = options_.block_size;
  c.node_id = options_.node_id;
  c.addr = options_.addr;
  c.region_size = options_.region_size;
  c.usable_region_size = usable_region_size_;
  c.plugged_size = plugged_size_;
  c.requested_size = requested_size_;
  return c;
}

void VirtioMemDevice::sync_config(bool changed, bool notify) {
  config_bytes_ = encode_config(config_locked());
  if (changed || notify) config_changed(notify);
}

// ---------------------------------------------------------------------------------------------
// Threading (decisions D12).

void VirtioMemDevice::enable_threading() {
  threaded_ = true;
  VirtioDevice::enable_threading();
}

VirtioMemDevice::Quiesced::Quiesced(const VirtioMemDevice& d) {
  if (!d.threaded_) return;
  {
    std::lock_guard<std::mutex> g(d.mu_);
    // On the request path, inside its own reservation, everything is already stable.
    if (d.in_flight_ && d.in_flight_thread_ == std::this_thread::get_id()) return;
  }
  control_ = std::unique_lock<std::recursive_mutex>(d.control_mu_);
  std::unique_lock<std::mutex> l(d.mu_);
  ++d.quiescers_;
  d.cv_.wait(l, [&] { return !d.in_flight_; });
  device_ = &d;
}

VirtioMemDevice::Quiesced::~Quiesced() {
  if (device_ == nullptr) return;
  std::lock_guard<std::mutex> g(device_->mu_);
  --device_->quiescers_;
  device_->cv_.notify_all();
}

std::unique_lock<std::mutex> VirtioMemDevice::begin_request() {
  auto lock = lock_state();
  if (threaded_) cv_.wait(lock, [&] { return quiescers_ == 0; });
  return lock;
}

void VirtioMemDevice::start_in_flight(std::unique_lock<std::mutex>& lock) {
  if (!threaded_) return;
  in_flight_ = true;
  in_flight_thread_ = std::this_thread::get_id();
  lock.unlock();
}

void VirtioMemDevice::end_in_flight() {
  if (!threaded_) return;
  std::lock_guard<std::mutex> g(mu_);
  in_flight_ = false;
  in_flight_thread_ = {};
  cv_.notify_all();
}

VirtioMemDevice::ControlFlight::ControlFlight(VirtioMemDevice& d, uint64_t* stamp) : device_(d) {
  auto lock = d.lock_state();
  if (d.threaded_) {
    d.in_flight_ = true;
    d.in_flight_thread_ = std::this_thread::get_id();
  }
  if (stamp != nullptr) *stamp = ++d.version_;
}

VirtioMemDevice::ControlFlight::~ControlFlight() {
  device_.end_in_flight();
}

std::unique_lock<std::mutex> VirtioMemDevice::wait_for_requests() {
  auto lock = lock_state();
  // A request in flight decided with the sizes and the busy flag of its verdict; changing them
  // before it publishes would make the two disagree.
  if (threaded_) cv_.wait(lock, [&] { return !in_flight_; });
  return lock;
}

void VirtioMemDevice::count_protocol_violation() {
  auto lock = lock_state();
  ++counters_.protocol_violations;
}

uint64_t VirtioMemDevice::last_stamp() const {
  auto lock = lock_state();
  return last_stamp_;
}

uint64_t VirtioMemDevice::next_stamp() {
  auto lock = lock_state();
  return ++version_;
}

bool VirtioMemDevice::busy() const {
  auto lock = lock_state();
  return busy_;
}

void VirtioMemDevice::set_busy(bool busy, uint64_t* stamp) {
  auto lock = wait_for_requests();
  busy_ = busy;
  if (stamp != nullptr) *stamp = ++version_;
}

void VirtioMemDevice::on_config_write(uint64_t, unsigned, uint64_t) {
  // DRV-1: the configuration is read-only for the driver; writes are dropped.
}

// ---------------------------------------------------------------------------------------------
// The guest-request queue.

void VirtioMemDevice::handle_queue(uint16_t index) {
  if (index != kGuestRequestQueue) return;
  SplitQueue& q = queue(index);
  for (;;) {
    if (drain_queue(q)) used_buffers_added(index);
    // Chains that arrived while avail_event was being published get no kick: take them now.
    if (broken() || !q.publish_avail_event(memory())) return;
  }
}

// Handles every available request; returns whether any response was added to the used ring.
bool VirtioMemDevice::drain_queue(SplitQueue& q) {
  GuestMemory& mem = memory();
  bool added = false;

  while (!broken()) {
    auto popped = q.pop(mem, chain_);
    if (!popped.has_value()) {
      count_protocol_violation();
      needs_reset(fmt::format("virtio-mem: {}", to_string(popped.error())));
      break;
    }
    if (!*popped) break;

    // D8: a request is the chain's readable bytes, a response its writable bytes, however the
    // driver split them.
    std::array<uint8_t, kRequestSize> raw{};
    if (chain_.readable_bytes() < kRequestSize || !chain_.read(mem, raw)) {
      q.detach(chain_);
      count_protocol_violation();
      needs_reset("virtio-mem protocol violation: invalid request size");
      break;
    }
    if (chain_.writable_bytes() < kResponseSize) {
      q.detach(chain_);
      count_protocol_violation();
      needs_reset("virtio-mem protocol violation: not enough space for response");
      break;
    }
    const WireRequest req = decode_request(raw);
    // GEN-10 leaves unknown types open; cloud-hypervisor answers them with ERROR (the mutant).
    if (req.type > VIRTIO_MEM_REQ_STATE && !faulty(fault_, Fault::UnknownTypeAnsweredError)) {
      q.detach(chain_);
      count_protocol_violation();
      needs_reset(fmt::format("virtio-mem protocol violation: unknown request type: {}", req.type));
      break;
    }

    const Response r = process(req);
    if (faulty(fault_, Fault::StateChainNotReturned) && req.type == VIRTIO_MEM_REQ_STATE) continue;
    WireResponse wire;
    wire.type = static_cast<uint16_t>(r.type);
    wire.state = static_cast<uint16_t>(r.state);
    if (!chain_.write(mem, encode_response(wire))) {
      q.detach(chain_);
      needs_reset("virtio-mem: response buffer not writable");
      break;
    }
    // QEMU reports the response size as the used length whatever the request type (GEN-8).
    const auto used_len =
        faulty(fault_, Fault::UsedLenWholeChain)
            ? static_cast<uint32_t>(chain_.readable_bytes() + chain_.writable_bytes())
            : static_cast<uint32_t>(kResponseSize);
    if (!q.add_used(mem, chain_.head(), used_len).has_value()) {
      needs_reset("virtio-mem: used ring not writable");
      break;
    }
    added = true;
  }
  return added;
}

Response VirtioMemDevice::process(const WireRequest& req) {
  // DEV-24/25, 31/32, 38/39, 44/45: only the type and the payload fields count; padding is never
  // read.
  Response r;
  switch (req.type) {
    case VIRTIO_MEM_REQ_PLUG:
      r = plug(req.addr, req.nb_blocks);
      break;
    case VIRTIO_MEM_REQ_UNPLUG:
      r = unplug(req.addr, req.nb_blocks);
      break;
    case VIRTIO_MEM_REQ_UNPLUG_ALL:
      r = unplug_all();
      break;
    case VIRTIO_MEM_REQ_STATE:
      r = state(req.addr, req.nb_blocks);
      break;
    default:
      count_protocol_violation();
      return Response{RespType::Error, BlockState::Unplugged};
  }
  auto lock = lock_state();
  ++counters_.by_type_and_response[req.type][static_cast<uint16_t>(r.type)];
  return r;
}

bool VirtioMemDevice::valid_range(uint64_t gpa, uint16_t nb_blocks) const {
  return rules::valid_range(U64{}, options_.addr, usable_region_size_, options_.block_size, gpa,
                            uint64_t{nb_blocks}, fault_);
}

Response VirtioMemDevice::plug(uint64_t gpa, uint16_t nb_blocks) {
  auto lock = begin_request();
  const bool valid = valid_range(gpa, nb_blocks);
  const uint64_t size = uint64_t{nb_blocks} * options_.block_size;
  // Block states are only looked at for a valid range: an invalid one may lie outside the bitmap.
  // (Blocks past the region, reachable only through a faulty range check, count as unplugged.)
  const uint64_t in_bitmap = valid ? blocks_in_region(gpa, nb_blocks) : 0;
  bool wrong_state = in_bitmap != 0 && !bitmap_.is_range_unplugged(block_of(gpa), in_bitmap);
  if (faulty(fault_, Fault::PlugStateCheckSkipped)) wrong_state = false;
  const bool over_quota = rules::exceeds_requested(U64{}, plugged_size_, size, requested_size_);
  const auto verdict = static_cast<RespType>(
      rules::plug_verdict(U64{}, options_.profile, valid, over_quota, wrong_state, busy_, fault_));
  last_stamp_ = ++version_;
  if (verdict != RespType::Ack) return {verdict};

  const uint64_t offset = gpa - options_.addr;
  const uint64_t blocks = blocks_in_region(gpa, nb_blocks);
  const uint64_t in_region = blocks * options_.block_size;
  start_in_flight(lock);  // from here to the bitmap update, without the lock
  if (hooks_ != nullptr && !hooks_->populate(offset, in_region).has_value()) {
    // The hook rolled back its own work; give back whatever memory was populated meanwhile.
    (void)region_.discard(offset, in_region);
    hooks_->unplugged(offset, in_region);
    {
      auto relock = lock_state();
      ++counters_.populate_refusals;
      touched_.add(block_of(gpa), blocks);
      // The mutants: blocks marked plugged before the populate and left so (cloud-hypervisor's
      // order), or plugged_size grown before it and not taken back.
      if (faulty(fault_, Fault::PlugBitmapKeptOnRefusal) && blocks != 0) {
        bitmap_.set_range_plugged(block_of(gpa), blocks);
      }
      const uint64_t kept = rules::size_after_refused_plug(U64{}, plugged_size_, size, fault_);
      if (kept != plugged_size_) {
        plugged_size_ = kept;
        sync_config(true, false);
      }
    }
    end_in_flight();
    return {RespType::Busy};
  }
  {
    auto relock = lock_state();
    if (blocks != 0) bitmap_.set_range_plugged(block_of(gpa), blocks);
    touched_.add(block_of(gpa), blocks);
    plugged_size_ = rules::size_after_plug(U64{}, plugged_size_, size);  // DEV-30
    // GEN-5: the generation changes; DEV-10: plugged_size alone is not notified.
    sync_config(!faulty(fault_, Fault::PlugGenerationUnchanged),
                faulty(fault_, Fault::PlugNotifiesConfig));
  }
  end_in_flight();
  return {RespType::Ack};
}

Response VirtioMemDevice::unplug(uint64_t gpa, uint16_t nb_blocks) {
  auto lock = begin_request();
  const bool valid = valid_range(gpa, nb_blocks);
  const uint64_t in_bitmap = valid ? blocks_in_region(gpa, nb_blocks) : 0;
  bool wrong_state =
      valid && (in_bitmap < nb_blocks || !bitmap_.is_range_plugged(block_of(gpa), in_bitmap));
  if (faulty(fault_, Fault::UnplugStateCheckSkipped)) wrong_state = false;
  const auto verdict =
      static_cast<RespType>(rules::unplug_verdict(U64{}, valid, wrong_state, busy_));
  last_stamp_ = ++version_;
  if (verdict != RespType::Ack) return {verdict};

  const uint64_t offset = gpa - options_.addr;
  const uint64_t blocks = blocks_in_region(gpa, nb_blocks);
  const uint64_t size = blocks * options_.block_size;
  start_in_flight(lock);
  // Memory is discarded first and listeners are told after (QEMU's order); a failed discard
  // changes nothing and answers BUSY.
  if (!faulty(fault_, Fault::UnplugSkipsDiscard) && !region_.discard(offset, size).has_value()) {
    {
      auto relock = lock_state();
      ++counters_.discard_failures;
    }
    end_in_flight();
    return {RespType::Busy};
  }
  if (hooks_ != nullptr) hooks_->discard(offset, size);
  {
    auto relock = lock_state();
    if (blocks != 0) bitmap_.set_range_unplugged(block_of(gpa), blocks);
    touched_.add(block_of(gpa), blocks);
    plugged_size_ =
        rules::size_after_unplug(U64{}, plugged_size_, uint64_t{nb_blocks} * options_.block_size,
                                 fault_);  // DEV-37
    sync_config(true, false);
  }
  if (hooks_ != nullptr) hooks_->unplugged(offset, size);
  end_in_flight();
  return {RespType::Ack};
}

Response VirtioMemDevice::unplug_all() {
  auto lock = begin_request();
  const auto verdict = static_cast<RespType>(
      rules::unplug_all_verdict(U64{}, options_.profile, busy_, plugged_size_, fault_));
  last_stamp_ = ++version_;
  if (verdict != RespType::Ack) return {verdict};  // DEV-40
  start_in_flight(lock);
  const bool done = unplug_everything(/*check_busy=*/false);  // the verdict checked it
  end_in_flight();
  return {done ? RespType::Ack : RespType::Busy};  // DEV-41, DEV-42
}

// Runs either on the request path inside its reservation, or on the control path under
// quiesce(): nobody else changes the bitmap meanwhile, so it is read without the lock.
bool VirtioMemDevice::unplug_everything(bool check_busy) {
  uint64_t usable_before = 0;
  uint64_t plugged_before = 0;
  {
    auto lock = lock_state();
    usable_before = usable_region_size_;
    plugged_before = plugged_size_;
    if (check_busy && busy_ && (options_.profile == Profile::Qemu72 || bitmap_.count() != 0)) {
      return false;
    }
  }
  if (options_.profile == Profile::Qemu72) {
    // QEMU 7.2 busy-checks and discards the whole backend even with nothing plugged.
    if (!region_.discard(0, region_.size()).has_value()) {
      auto lock = lock_state();
      ++counters_.discard_failures;
      return false;
    }
  } else if (bitmap_.count() != 0) {
    // One discard from the first to the last plugged block: all or nothing, as QEMU's single
    // discard of the RAM block, and the unplugged blocks in between lose nothing. (The
    // equivalent mutant discards the whole region: what lies outside the span is unplugged, so
    // already discarded.)
    const bool whole = faulty(fault_, Fault::UnplugAllDiscardsWholeRegion);
    const uint64_t first = whole ? 0 : bitmap_.find_next(true, 0, bitmap_.size());
    const uint64_t last = whole ? bitmap_.size() - 1 : bitmap_.find_last_plugged();
    const uint64_t bs = options_.block_size;
    if (!region_.discard(first * bs, (last + 1 - first) * bs).has_value()) {
      auto lock = lock_state();
      ++counters_.discard_failures;
      return false;
    }
  }
  const bool had_plugged = bitmap_.count() != 0;
  if (hooks_ != nullptr && had_plugged) hooks_->discard_all();
  bool changed = false;
  {
    auto lock = lock_state();
    if (faulty(fault_, Fault::UnplugAllKeepsLastBlock) && had_plugged) {
      // The mutant's clear stops one block short of the last plugged block.
      const uint64_t last = bitmap_.find_last_plugged();
      if (last != 0) bitmap_.set_range_unplugged(0, last);
    } else {
      bitmap_.clear_all();
    }
    touched_.add(0, bitmap_.size());
    plugged_size_ = 0;
    // DEV-43: the usable region may shrink here, without a notification.
    resize_usable_region(true);
    changed = usable_region_size_ != usable_before || plugged_size_ != plugged_before;
    sync_config(changed, false);
  }
  if (hooks_ != nullptr && had_plugged) hooks_->unplugged(0, options_.region_size);
  return true;
}

Response VirtioMemDevice::state(uint64_t gpa, uint16_t nb_blocks) {
  auto lock = begin_request();
  last_stamp_ = ++version_;
  // The mutant computes a state even for an invalid range (cloud-hypervisor before 1dd588fa6);
  // blocks_in_region() keeps it inside the bitmap.
  const bool valid = valid_range(gpa, nb_blocks) || faulty(fault_, Fault::StateRangeCheckIgnored);
  const auto verdict = static_cast<RespType>(rules::state_verdict(U64{}, valid));
  if (verdict != RespType::Ack) return {verdict};  // DEV-46
  const uint64_t first = block_of(gpa);
  const uint64_t n = blocks_in_region(gpa, nb_blocks);
  if (n == 0) return {RespType::Ack, BlockState::Unplugged};
  const auto s = static_cast<BlockState>(rules::state_of(
      U64{}, bitmap_.is_range_plugged(first, n), bitmap_.is_range_unplugged(first, n), fault_));
  if (faulty(fault_, Fault::StateNotifiesDiscard) && hooks_ != nullptr) {
    // The mutant runs the unplug notification for a STATE (no device lock: listeners may look).
    if (lock.owns_lock()) lock.unlock();
    hooks_->discard(gpa - options_.addr, n * options_.block_size);
  }
  return {RespType::Ack, s};  // DEV-47, DEV-48
}

uint64_t VirtioMemDevice::blocks_in_region(uint64_t gpa, uint64_t nb_blocks) const {
  // Always nb_blocks for a range valid_range() accepted, except in the mutants build, where a
  // faulty range check may accept one that leaves the region: the bitmap and the backing must
  // still never be touched outside it, while the faulty verdict stays visible.
  const uint64_t first = block_of(gpa);
  if (first >= bitmap_.size()) return 0;
  return std::min(nb_blocks, bitmap_.size() - first);
}

void VirtioMemDevice::resize_usable_region(bool can_shrink) {
  usable_region_size_ = rules::resized_usable_region(
      U64{}, options_.region_size, options_.block_size, options_.usable_extent, requested_size_,
      usable_region_size_, can_shrink, fault_);
}

// ---------------------------------------------------------------------------------------------
// The host side.

Status VirtioMemDevice::set_requested_size(uint64_t size, uint64_t* stamp) {
  if (!rules::host_resize_allowed(U64{}, options_.region_size, options_.block_size, size, fault_)) {
    if (size % options_.block_size != 0) {
      return unexpected(Error{fmt::format(
          "'requested-size' has to be multiples of 'block-size' ({:#x})", options_.block_size)});
    }
    return unexpected(Error{fmt::format(
        "'requested-size' cannot exceed the memory backend size({:#x})", options_.region_size)});
  }
  {
    auto lock = wait_for_requests();
    const bool changed = size != requested_size_;
    requested_size_ = size;
    // DEV-8: grow only (the mutant lets it shrink).
    if (changed) {
      usable_region_size_ = rules::usable_after_host_resize(
          U64{}, options_.region_size, options_.block_size, options_.usable_extent, requested_size_,
          usable_region_size_, fault_);
    }
    // DEV-9. QEMU notifies on every successful set, even an unchanged one (DEV-11 allows it).
    const bool notify = (changed || options_.profile != Profile::Spec) &&
                        !faulty(fault_, Fault::ResizeWithoutNotification);
    sync_config(changed, notify);
    if (stamp != nullptr) *stamp = ++version_;
  }
  return ok();
}

void VirtioMemDevice::on_reset() {
  // DEV-13, DEV-14: a device reset leaves every block, and its contents, as they were.
  if (faulty(fault_, Fault::DeviceResetUnplugs)) {
    {
      auto lock = lock_state();
      busy_ = false;
    }
    (void)unplug_everything(true);
  }
}

void VirtioMemDevice::system_reset(uint64_t* stamp) {
  const auto quiet = quiesce();
  const ControlFlight flight(*this, stamp);
  reset();
  // DEV-22; skipped while busy, as QEMU does: the driver then sends UNPLUG_ALL itself (DRV-5).
  if (!faulty(fault_, Fault::SystemResetKeepsBlocks)) (void)unplug_everything(true);
}

void VirtioMemDevice::wakeup_reset(uint64_t* stamp) {
  const auto quiet = quiesce();
  const ControlFlight flight(*this, stamp);
  reset();
  // DEV-23. QEMU before 9.2 ran its unplug-all hook on every reset, wake-up included.
  if (options_.profile == Profile::Qemu72 || faulty(fault_, Fault::WakeupUnplugs)) {
    (void)unplug_everything(true);
  }
}

VMEM_NAMESPACE_END
