#include "reference/virtqueue/split_queue.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>

#include "reference/base/endian.h"

VMEM_NAMESPACE_BEGIN

namespace {

// Ring layout (virtio 1.2, 2.7.6 and 2.7.8): avail = flags, idx, ring[size], used_event;
// used = flags, idx, ring[size] of {id, len}, avail_event.
constexpr uint64_t kAvailFlags = 0;
constexpr uint64_t kAvailIdx = 2;
constexpr uint64_t kAvailRing = 4;
constexpr uint64_t kUsedIdx = 2;
constexpr uint64_t kUsedRing = 4;
constexpr uint64_t kUsedElemSize = 8;
constexpr uint64_t kMaxChainBytes = 1ULL << 32;

template <class T>
Result<T, MemoryError> load(const GuestMemory& mem, uint64_t gpa) {
  std::array<uint8_t, sizeof(T)> b{};
  if (const uint8_t* p = mem.host_address(gpa, sizeof(T))) return load_le<T>(p);
  VMEM_TRY(mem.read(gpa, b));
  return load_le<T>(b.data());
}

template <class T>
Result<void, MemoryError> store(GuestMemory& mem, uint64_t gpa, T v) {
  if (uint8_t* p = mem.host_address(gpa, sizeof(T))) {
    store_le(p, v);
    return {};
  }
  std::array<uint8_t, sizeof(T)> b{};
  store_le(b.data(), v);
  return mem.write(gpa, b);
}

uint64_t avail_ring_bytes(uint16_t size) {
  return kAvailRing + 2ULL * size + 2;
}
uint64_t used_ring_bytes(uint16_t size) {
  return kUsedRing + kUsedElemSize * size + 2;
}

}  // namespace

const char* to_string(QueueError e) {
  switch (e) {
    case QueueError::NotReady:
      return "queue not ready";
    case QueueError::BadQueueSize:
      return "queue size not a power of two or above the maximum";
    case QueueError::RingMisaligned:
      return "ring misaligned";
    case QueueError::RingOutOfMemory:
      return "ring outside guest memory";
    case QueueError::AvailIndexTooFar:
      return "available index moved more than the queue size";
    case QueueError::HeadOutOfRange:
      return "chain head index out of range";
    case QueueError::NextOutOfRange:
      return "next descriptor index out of range";
    case QueueError::ChainTooLong:
      return "descriptor chain longer than the queue size (loop?)";
    case QueueError::IndirectNotNegotiated:
      return "indirect descriptor without VIRTIO_F_INDIRECT_DESC";
    case QueueError::IndirectBadLength:
      return "indirect table length 0 or not a multiple of 16";
    case QueueError::IndirectNested:
      return "indirect descriptor inside an indirect table";
    case QueueError::IndirectWithNext:
      return "descriptor with both INDIRECT and NEXT";
    case QueueError::ZeroLengthDescriptor:
      return "zero-length descriptor";
    case QueueError::BufferOutOfMemory:
      return "buffer outside guest memory";
    case QueueError::ReadableAfterWritable:
      return "device-readable descriptor after a writable one";
    case QueueError::ChainTooLarge:
      return "descriptor chain larger than 2^32 bytes";
    case QueueError::UsedHeadOutOfRange:
      return "used element head out of range";
  }
  return "?";
}

bool DescriptorChain::read(const GuestMemory& mem, std::span<uint8_t> out) const {
  uint64_t done = 0;
  for (const Buffer& b : buffers_) {
    if (done == out.size()) break;
    if (b.writable) break;
    const uint64_t n = std::min<uint64_t>(b.len, out.size() - done);
    if (!mem.read(b.addr, out.subspan(done, n)).has_value()) return false;
    done += n;
  }
  return done == out.size();
}

bool DescriptorChain::write(GuestMemory& mem, std::span<const uint8_t> in) const {
  if (writable_ < in.size()) return false;
  uint64_t done = 0;
  for (const Buffer& b : buffers_) {
    if (done == in.size()) break;
    if (!b.writable) continue;
    const uint64_t n = std::min<uint64_t>(b.len, in.size() - done);
    if (!mem.write(b.addr, in.subspan(done, n)).has_value()) return false;
    done += n;
  }
  return done == in.size();
}

SplitQueue::SplitQueue(uint16_t max_size) : max_size_(max_size) {
  s_.size = max_size;
}

Result<void, QueueError> SplitQueue::check_layout(const GuestMemory& mem) const {
  if (s_.size == 0 || s_.size > max_size_ || !std::has_single_bit(s_.size)) {
    return unexpected(QueueError::BadQueueSize);
  }
  if (s_.desc_table % 16 != 0 || s_.avail_ring % 2 != 0 || s_.used_ring % 4 != 0) {
    return unexpected(QueueError::RingMisaligned);
  }
  if (!mem.check_range(s_.desc_table, kDescriptorSize * s_.size).has_value() ||
      !mem.check_range(s_.avail_ring, avail_ring_bytes(s_.size)).has_value() ||
      !mem.check_range(s_.used_ring, used_ring_bytes(s_.size)).has_value()) {
    return unexpected(QueueError::RingOutOfMemory);
  }
  return {};
}

Result<void, QueueError> SplitQueue::walk_chain(const GuestMemory& mem, uint16_t head,
                                                DescriptorChain& chain) const {
  chain.clear(head);
  if (head >= s_.size) return unexpected(QueueError::HeadOutOfRange);

  uint64_t table = s_.desc_table;
  uint64_t table_len = s_.size;
  bool in_indirect = false;
  uint64_t index = head;
  // A chain of direct descriptors is at most queue-size long (2.7.5.3.1): this bound also ends
  // every loop.
  uint64_t budget = s_.size;
  uint64_t total = 0;

  for (;;) {
    if (budget-- == 0) return unexpected(QueueError::ChainTooLong);
    std::array<uint8_t, kDescriptorSize> raw{};
    const uint64_t at = table + index * kDescriptorSize;
    if (const uint8_t* p = mem.host_address(at, kDescriptorSize)) {
      std::copy_n(p, kDescriptorSize, raw.begin());
    } else if (!mem.read(at, raw).has_value()) {
      return unexpected(in_indirect ? QueueError::BufferOutOfMemory : QueueError::RingOutOfMemory);
    }
    const uint64_t addr = load_le<uint64_t>(&raw[0]);
    const uint32_t len = load_le<uint32_t>(&raw[8]);
    const uint16_t flags = load_le<uint16_t>(&raw[12]);
    const uint16_t next = load_le<uint16_t>(&raw[14]);

    if (flags & VIRTQ_DESC_F_INDIRECT) {
      if (!indirect_) return unexpected(QueueError::IndirectNotNegotiated);
      if (in_indirect) return unexpected(QueueError::IndirectNested);
      if (flags & VIRTQ_DESC_F_NEXT) return unexpected(QueueError::IndirectWithNext);
      if (len == 0 || len % kDescriptorSize != 0) return unexpected(QueueError::IndirectBadLength);
      if (mem.host_address(addr, len) == nullptr && !mem.check_range(addr, len).has_value()) {
        return unexpected(QueueError::BufferOutOfMemory);
      }
      table = addr;
      table_len = len / kDescriptorSize;
      in_indirect = true;
      index = 0;
      // An indirect table may hold more descriptors than the queue (Linux builds such tables);
      // like QEMU, allow up to 1024 buffers in it, which also ends every loop inside it.
      budget = std::min<uint64_t>(table_len, kMaxIndirectDescriptors);
      continue;
    }

    if (len == 0) return unexpected(QueueError::ZeroLengthDescriptor);
    // The common case, a buffer inside one region, needs no walk over the regions.
    if (mem.host_address(addr, len) == nullptr && !mem.check_range(addr, len).has_value()) {
      return unexpected(QueueError::BufferOutOfMemory);
    }
    const bool writable = (flags & VIRTQ_DESC_F_WRITE) != 0;
    if (!writable && chain.writable_ != 0) return unexpected(QueueError::ReadableAfterWritable);
    total += len;
    if (total > kMaxChainBytes) return unexpected(QueueError::ChainTooLarge);
    chain.buffers_.push_back(Buffer{addr, len, writable});
    (writable ? chain.writable_ : chain.readable_) += len;

    if (!(flags & VIRTQ_DESC_F_NEXT)) return {};
    if (next >= table_len) return unexpected(QueueError::NextOutOfRange);
    index = next;
  }
}

Result<bool, QueueError> SplitQueue::pop(const GuestMemory& mem, DescriptorChain& chain) {
  if (!s_.ready) return unexpected(QueueError::NotReady);
  auto avail_idx = load<uint16_t>(mem, s_.avail_ring + kAvailIdx);
  if (!avail_idx.has_value()) return unexpected(QueueError::RingOutOfMemory);
  const uint16_t pending = static_cast<uint16_t>(*avail_idx - s_.next_avail);
  if (pending == 0) return false;
  if (pending > s_.size) return unexpected(QueueError::AvailIndexTooFar);
  // Read the ring entry only after the index (the driver's release pairs with this acquire).
  std::atomic_thread_fence(std::memory_order_acquire);

  auto head = load<uint16_t>(mem, s_.avail_ring + kAvailRing + 2ULL * (s_.next_avail % s_.size));
  if (!head.has_value()) return unexpected(QueueError::RingOutOfMemory);
  ++s_.next_avail;
  ++popped_;
  if (auto walked = walk_chain(mem, *head, chain); !walked.has_value()) {
    ++detached_;
    return unexpected(walked.error());
  }
  return true;
}

Result<void, QueueError> SplitQueue::add_used(GuestMemory& mem, uint16_t head, uint32_t len) {
  if (head >= s_.size) return unexpected(QueueError::UsedHeadOutOfRange);
  const uint64_t elem = s_.used_ring + kUsedRing + kUsedElemSize * (s_.next_used % s_.size);
  std::array<uint8_t, kUsedElemSize> b{};
  store_le<uint32_t>(&b[0], head);
  store_le<uint32_t>(&b[4], len);
  if (!mem.write(elem, b).has_value()) return unexpected(QueueError::RingOutOfMemory);
  // The element must be visible before the index that publishes it.
  std::atomic_thread_fence(std::memory_order_release);
  ++s_.next_used;
  if (!store<uint16_t>(mem, s_.used_ring + kUsedIdx, s_.next_used).has_value()) {
    return unexpected(QueueError::RingOutOfMemory);
  }
  ++used_;
  return {};
}

void SplitQueue::detach(const DescriptorChain&) {
  ++detached_;
}

bool SplitQueue::should_notify(const GuestMemory& mem) {
  // The used index the driver will read must be visible before we read what it asked for, or
  // both sides may decide the other will act (virtio 1.2, 2.7.10).
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (!event_idx_) {
    auto flags = load<uint16_t>(mem, s_.avail_ring + kAvailFlags);
    return !flags.has_value() || !(*flags & VIRTQ_AVAIL_F_NO_INTERRUPT);
  }
  const bool valid = s_.signalled_used_valid;
  const uint16_t old_idx = s_.signalled_used;
  const uint16_t new_idx = s_.next_used;
  s_.signalled_used_valid = true;
  s_.signalled_used = new_idx;
  if (!valid) return true;
  auto used_event = load<uint16_t>(mem, s_.avail_ring + kAvailRing + 2ULL * s_.size);
  if (!used_event.has_value()) return true;
  // vring_need_event(): notify if used_event lies in [old_idx, new_idx).
  return static_cast<uint16_t>(new_idx - *used_event - 1) <
         static_cast<uint16_t>(new_idx - old_idx);
}

bool SplitQueue::publish_avail_event(GuestMemory& mem) {
  if (!event_idx_ || !s_.ready) return false;
  (void)store<uint16_t>(mem, s_.used_ring + kUsedRing + kUsedElemSize * s_.size, s_.next_avail);
  // A chain the driver added before it could see the new avail_event would get no kick: look
  // again after publishing it, as QEMU's virtio_queue_set_notification() does.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  auto idx = load<uint16_t>(mem, s_.avail_ring + kAvailIdx);
  return idx.has_value() && *idx != s_.next_avail;
}

void SplitQueue::reset() {
  s_ = QueueState{};
  s_.size = max_size_;
  event_idx_ = false;
  indirect_ = false;
}

QueueState SplitQueue::state() const {
  return s_;
}

void SplitQueue::restore(const QueueState& s) {
  s_ = s;
}

VMEM_NAMESPACE_END
