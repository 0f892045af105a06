// The virtio-mem request model. Every rule cites where it comes from: the spec notes
// (/work/shared/notes/virtio-mem-spec.md, "DEV-n" and section numbers) or the behaviour table
// (docs/profiles.md, "row n" or "same in every profile").
#include "fuzz/model/spec_model.h"

#include <algorithm>
#include <iterator>
#include <stdexcept>

// The wire constants only (header-only; it pulls reference/base/endian.h and abi.h).
#include "reference/mem/wire.h"

namespace vmem::model {
namespace {

__extension__ typedef unsigned __int128 u128;  // __extension__: -Wpedantic
constexpr u128 kTwoTo64 = u128{1} << 64;

bool is_power_of_two(uint64_t v) {
  return v != 0 && (v & (v - 1)) == 0;
}

Answer answer(uint16_t type) {
  return Answer{type, 0};
}

}  // namespace

SpecModel::SpecModel(Profile p, Geometry g, uint64_t requested_size,
                     bool persistent_suspend_negotiated)
    : profile_(p),
      geometry_(g),
      // Row 10: qemu-7.2 has no PERSISTENT_SUSPEND bit, so it cannot have been negotiated.
      persistent_suspend_(persistent_suspend_negotiated && p != Profile::Qemu72),
      requested_size_(requested_size) {
  // §2 / §5.4: block_size is a power of two; addr and the sizes are multiples of it.
  if (!is_power_of_two(g.block_size)) throw std::invalid_argument("block_size: not a power of two");
  if (g.addr % g.block_size != 0) throw std::invalid_argument("addr: not block-aligned");
  if (g.region_size % g.block_size != 0)
    throw std::invalid_argument("region_size: not a block multiple");
  if (u128{g.addr} + g.region_size > kTwoTo64)
    throw std::invalid_argument("region: ends beyond 2^64");
  // §5.4 (QEMU specifics): requested_size is a block multiple no larger than region_size.
  if (requested_size % g.block_size != 0 || requested_size > g.region_size)
    throw std::invalid_argument("requested_size: not a block multiple or above region_size");
  // §5.2: on first power-on every block is unplugged; the usable region fits requested_size.
  usable_region_size_ = usable_target();
}

// "Usable region: min(region_size, requested_size + extent) rounded up to the block size, 0 if
// nothing is requested" (same in every profile). region_size is block-aligned, so rounding the
// minimum up never passes it.
uint64_t SpecModel::usable_target() const {
  if (requested_size_ == 0) return 0;
  const u128 bs = geometry_.block_size;
  const u128 want =
      std::min<u128>(u128{requested_size_} + geometry_.usable_extent, u128{geometry_.region_size});
  return static_cast<uint64_t>((want + bs - 1) / bs * bs);
}

// "Range validity (DEV-26/33/46): aligned, nb_blocks != 0, no wrap-around of
// addr + nb_blocks * block_size past 2^64, inside [addr, addr + usable_region_size); a range
// ending exactly at the usable end is valid." (same in every profile). Computed in 128 bits.
bool SpecModel::range_valid(uint64_t addr, uint16_t nb_blocks) const {
  if (addr % geometry_.block_size != 0) return false;
  if (nb_blocks == 0) return false;
  const u128 end = u128{addr} + u128{nb_blocks} * geometry_.block_size;
  if (end > kTwoTo64) return false;
  if (addr < geometry_.addr) return false;
  return end <= u128{geometry_.addr} + usable_region_size_;
}

Answer SpecModel::request(uint16_t type, uint64_t addr, uint16_t nb_blocks, bool populate_refused) {
  switch (type) {
    case VIRTIO_MEM_REQ_PLUG:
      return plug(addr, nb_blocks, populate_refused);
    case VIRTIO_MEM_REQ_UNPLUG:
      return unplug(addr, nb_blocks);
    case VIRTIO_MEM_REQ_UNPLUG_ALL:
      return unplug_all();
    case VIRTIO_MEM_REQ_STATE:
      return state(addr, nb_blocks);
    default:
      // "Protocol violations (... unknown type ...): no response" (same in every profile).
      throw std::invalid_argument("unknown request type: a protocol violation, not modelled");
  }
}

// Row 1: spec: range -> block states (ERROR) -> plug limit (NACK) -> busy -> ACK;
//        qemu, qemu-7.2: range -> plug limit (NACK) -> block states (ERROR) -> busy -> ACK.
// Then the populate (discard_hooks.h): a refusal rolls back and answers BUSY.
Answer SpecModel::plug(uint64_t addr, uint16_t nb_blocks, bool populate_refused) {
  if (!range_valid(addr, nb_blocks)) return answer(VIRTIO_MEM_RESP_ERROR);  // DEV-26
  const uint64_t first = (addr - geometry_.addr) / geometry_.block_size;
  // DEV-27: ERROR when any covered block is already plugged.
  const bool any_plugged = count_plugged(first, nb_blocks) != 0;
  // "The plug limit: NACK when plugged_size + size > requested_size" (same in every profile).
  const bool over_limit =
      u128{plugged_blocks_} * geometry_.block_size + u128{nb_blocks} * geometry_.block_size >
      u128{requested_size_};
  if (profile_ == Profile::Spec) {
    if (any_plugged) return answer(VIRTIO_MEM_RESP_ERROR);
    if (over_limit) return answer(VIRTIO_MEM_RESP_NACK);
  } else {
    if (over_limit) return answer(VIRTIO_MEM_RESP_NACK);
    if (any_plugged) return answer(VIRTIO_MEM_RESP_ERROR);
  }
  // "Busy window: PLUG, UNPLUG answer BUSY after the range, plug-limit and state checks."
  if (busy_) return answer(VIRTIO_MEM_RESP_BUSY);
  // discard_hooks.h: a refused populate -> the device rolls back and answers BUSY.
  if (populate_refused) return answer(VIRTIO_MEM_RESP_BUSY);
  mark_plugged(first, nb_blocks);  // DEV-29/30
  return answer(VIRTIO_MEM_RESP_ACK);
}

// DEV-33 range -> DEV-34 block states -> busy -> ACK. "UNPLUG is never limited."
Answer SpecModel::unplug(uint64_t addr, uint16_t nb_blocks) {
  if (!range_valid(addr, nb_blocks)) return answer(VIRTIO_MEM_RESP_ERROR);
  const uint64_t first = (addr - geometry_.addr) / geometry_.block_size;
  if (count_plugged(first, nb_blocks) != nb_blocks) return answer(VIRTIO_MEM_RESP_ERROR);
  if (busy_) return answer(VIRTIO_MEM_RESP_BUSY);
  mark_unplugged(first, nb_blocks);  // DEV-36/37
  return answer(VIRTIO_MEM_RESP_ACK);
}

// Row 2: in a busy window spec and qemu answer BUSY only if something is plugged (else ACK);
// qemu-7.2 answers BUSY whenever busy. Only ACK or BUSY exist for UNPLUG_ALL (DEV-38..43).
// An ACK unplugs everything (DEV-41/42) and lets the usable region shrink to fit
// requested_size (DEV-43, "may shrink only in UNPLUG_ALL or at a system reset").
Answer SpecModel::unplug_all() {
  if (busy_ && (profile_ == Profile::Qemu72 || plugged_blocks_ != 0))
    return answer(VIRTIO_MEM_RESP_BUSY);
  unplug_everything_and_resize();
  return answer(VIRTIO_MEM_RESP_ACK);
}

// DEV-46 range -> DEV-47/48 ACK with the aggregate state; never BUSY, never NACK.
Answer SpecModel::state(uint64_t addr, uint16_t nb_blocks) {
  if (!range_valid(addr, nb_blocks)) return answer(VIRTIO_MEM_RESP_ERROR);
  const uint64_t first = (addr - geometry_.addr) / geometry_.block_size;
  const uint64_t n = count_plugged(first, nb_blocks);
  const uint16_t s = n == 0           ? VIRTIO_MEM_STATE_UNPLUGGED
                     : n == nb_blocks ? VIRTIO_MEM_STATE_PLUGGED
                                      : VIRTIO_MEM_STATE_MIXED;
  return Answer{VIRTIO_MEM_RESP_ACK, s};
}

// "Usable region: ... grows on a resize" (same in every profile); DEV-8: never shrinks here.
bool SpecModel::set_requested_size(uint64_t size) {
  // §5.4: "requested_size is rejected unless it is a multiple of block_size and no larger than
  // region_size."
  if (size % geometry_.block_size != 0 || size > geometry_.region_size) return false;
  requested_size_ = size;
  usable_region_size_ = std::max(usable_region_size_, usable_target());
  return true;
}

// "System reset is ... an UNPLUG_ALL without a guest ... unless UNPLUG_ALL would answer BUSY
// (row 2), in which case nothing changes at all" (docs/profiles.md, same in every profile).
void SpecModel::system_reset() {
  device_reset();
  (void)unplug_all();
}

// "Device reset keeps every block and its contents (DEV-13/14)." DEV-2 keeps the constant
// fields, DEV-8 forbids shrinking the usable region, requested_size is the host's.
void SpecModel::device_reset() {}

// Row 11: spec and qemu keep every block (DEV-23); qemu-7.2 unplugs every block because
// "QEMU <= 9.1 ran its legacy reset hook on wake-up too", i.e. the system-reset handling
// (including its busy-window exception and the usable-region recomputation).
void SpecModel::wakeup_reset() {
  device_reset();
  if (profile_ == Profile::Qemu72) system_reset();
}

void SpecModel::set_busy(bool busy) {
  busy_ = busy;
}

Config SpecModel::config() const {
  return Config{
      .block_size = geometry_.block_size,
      .addr = geometry_.addr,
      .region_size = geometry_.region_size,
      .usable_region_size = usable_region_size_,
      .plugged_size = plugged_blocks_ * geometry_.block_size,
      .requested_size = requested_size_,
  };
}

bool SpecModel::plugged(uint64_t block) const {
  auto it = runs_.upper_bound(block);
  if (it == runs_.begin()) return false;
  --it;
  return block < it->second;
}

void SpecModel::unplug_everything_and_resize() {
  runs_.clear();
  plugged_blocks_ = 0;
  usable_region_size_ = usable_target();
}

// --- The run set ---

uint64_t SpecModel::count_plugged(uint64_t first, uint64_t n) const {
  const uint64_t end = first + n;  // first + n <= region blocks: range_valid checked it
  auto it = runs_.upper_bound(first);
  if (it != runs_.begin() && std::prev(it)->second > first) --it;
  uint64_t count = 0;
  for (; it != runs_.end() && it->first < end; ++it)
    count += std::min(end, it->second) - std::max(first, it->first);
  return count;
}

void SpecModel::mark_plugged(uint64_t first, uint64_t n) {
  uint64_t begin = first;
  uint64_t end = first + n;
  auto next = runs_.lower_bound(end);  // a run starting exactly at `end` merges
  if (next != runs_.end() && next->first == end) {
    end = next->second;
    next = runs_.erase(next);
  }
  if (next != runs_.begin()) {
    auto prev = std::prev(next);
    if (prev->second == begin) {  // a run ending exactly at `first` merges
      begin = prev->first;
      runs_.erase(prev);
    }
  }
  runs_.emplace(begin, end);
  plugged_blocks_ += n;
}

void SpecModel::mark_unplugged(uint64_t first, uint64_t n) {
  const uint64_t end = first + n;
  // Runs never touch, so a fully plugged range lies inside one run.
  auto it = std::prev(runs_.upper_bound(first));
  const uint64_t run_begin = it->first;
  const uint64_t run_end = it->second;
  runs_.erase(it);
  if (run_begin < first) runs_.emplace(run_begin, first);
  if (end < run_end) runs_.emplace(end, run_end);
  plugged_blocks_ -= n;
}

}  // namespace vmem::model
