// The device side of a split virtqueue (virtio 1.2+, section 2.7), and nothing else: it knows no
// device type and no transport.
//
// The queue pops descriptor chains from the available ring, validates them completely before the
// device sees them (bounds, loops, indirect tables, direction order), and puts completed chains
// on the used ring. Every chain it pops ends exactly once: put on the used ring, or detached
// (consumed without a used entry, as QEMU does before it marks a device broken). The counters
// popped() == used() + detached() + in flight let tests check that.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "reference/base/result.h"
#include "reference/memory/guest_memory.h"

VMEM_NAMESPACE_BEGIN

// Descriptor flags and ring flags (virtio 1.2, 2.7.5 and 2.7.6).
inline constexpr uint16_t VIRTQ_DESC_F_NEXT = 1;
inline constexpr uint16_t VIRTQ_DESC_F_WRITE = 2;
inline constexpr uint16_t VIRTQ_DESC_F_INDIRECT = 4;
inline constexpr uint16_t VIRTQ_USED_F_NO_NOTIFY = 1;
inline constexpr uint16_t VIRTQ_AVAIL_F_NO_INTERRUPT = 1;
inline constexpr uint64_t kDescriptorSize = 16;
inline constexpr uint16_t kMaxQueueSize = 32768;
inline constexpr uint64_t kMaxIndirectDescriptors = 1024;  // QEMU's VIRTQUEUE_MAX_SIZE

enum class QueueError : uint8_t {
  NotReady,
  BadQueueSize,      // not a power of two, or above the device's maximum
  RingMisaligned,    // descriptor table 16, available ring 2, used ring 4 bytes (2.7)
  RingOutOfMemory,   // a ring is not inside guest memory
  AvailIndexTooFar,  // the driver moved avail->idx more than queue size ahead
  HeadOutOfRange,
  NextOutOfRange,
  ChainTooLong,  // more descriptors than the queue size: a loop, or a driver bug
  IndirectNotNegotiated,
  IndirectBadLength,      // 0, or not a multiple of 16
  IndirectNested,         // an indirect descriptor inside an indirect table
  IndirectWithNext,       // INDIRECT together with NEXT
  ZeroLengthDescriptor,   // QEMU refuses zero-sized buffers; so do we
  BufferOutOfMemory,      // a buffer is not inside guest memory
  ReadableAfterWritable,  // device-readable descriptors must come first (2.7.4.2)
  ChainTooLarge,          // more than 2^32 bytes in one chain
  UsedHeadOutOfRange,     // add_used with a head the queue never handed out
};
const char* to_string(QueueError e);

// One buffer of a chain: guest-physical, already bounds-checked.
struct Buffer {
  uint64_t addr = 0;
  uint32_t len = 0;
  bool writable = false;
};

// A validated chain. Readable buffers come before writable ones.
class DescriptorChain {
 public:
  uint16_t head() const { return head_; }
  std::span<const Buffer> buffers() const { return buffers_; }
  uint64_t readable_bytes() const { return readable_; }
  uint64_t writable_bytes() const { return writable_; }

  // Gathers the first out.size() device-readable bytes, however the driver split them (D8).
  // Fails if the chain has fewer readable bytes.
  bool read(const GuestMemory& mem, std::span<uint8_t> out) const;
  // Scatters `in` over the first device-writable bytes. Fails if there is not enough room.
  bool write(GuestMemory& mem, std::span<const uint8_t> in) const;

 private:
  friend class SplitQueue;
  void clear(uint16_t head) {
    head_ = head;
    buffers_.clear();
    readable_ = writable_ = 0;
  }
  uint16_t head_ = 0;
  std::vector<Buffer> buffers_;
  uint64_t readable_ = 0;
  uint64_t writable_ = 0;
};

// What migration saves of a queue (decisions D13).
struct QueueState {
  uint16_t size = 0;
  bool ready = false;
  uint64_t desc_table = 0;
  uint64_t avail_ring = 0;
  uint64_t used_ring = 0;
  uint16_t next_avail = 0;
  uint16_t next_used = 0;
  uint16_t signalled_used = 0;
  bool signalled_used_valid = false;
  friend bool operator==(const QueueState&, const QueueState&) = default;
};

class SplitQueue {
 public:
  explicit SplitQueue(uint16_t max_size);

  // --- Configuration, as the driver writes it through the transport ---
  uint16_t max_size() const { return max_size_; }
  uint16_t size() const { return s_.size; }
  void set_size(uint16_t n) { s_.size = n; }
  uint64_t desc_table() const { return s_.desc_table; }
  uint64_t avail_ring() const { return s_.avail_ring; }
  uint64_t used_ring() const { return s_.used_ring; }
  void set_desc_table(uint64_t a) { s_.desc_table = a; }
  void set_avail_ring(uint64_t a) { s_.avail_ring = a; }
  void set_used_ring(uint64_t a) { s_.used_ring = a; }
  bool ready() const { return s_.ready; }
  void set_ready(bool r) { s_.ready = r; }
  // Negotiated features that change how the rings are read.
  void set_event_idx(bool on) { event_idx_ = on; }
  void set_indirect(bool on) { indirect_ = on; }

  // Checks size and ring placement: a power of two no larger than the maximum, rings aligned
  // and inside guest memory.
  Result<void, QueueError> check_layout(const GuestMemory& mem) const;

  // --- Device side ---
  // Pops the next available chain into `chain`. Returns false when the ring is empty. A chain
  // that fails validation is consumed and detached, and its error returned.
  Result<bool, QueueError> pop(const GuestMemory& mem, DescriptorChain& chain);
  // Puts a popped chain on the used ring with `len` bytes written.
  Result<void, QueueError> add_used(GuestMemory& mem, uint16_t head, uint32_t len);
  // Ends a popped chain without a used entry.
  void detach(const DescriptorChain& chain);
  // Whether the driver wants a used-buffer notification for what was added since the last call
  // (NO_INTERRUPT, or used_event with VIRTIO_F_EVENT_IDX, 2.7.10).
  bool should_notify(const GuestMemory& mem);
  // With VIRTIO_F_EVENT_IDX, asks the driver to notify once it adds past what was consumed.
  // Returns true if chains arrived meanwhile (the caller must process them: no kick will come).
  bool publish_avail_event(GuestMemory& mem);

  // Back to the reset state: disabled, size = max, addresses and indices 0.
  void reset();

  QueueState state() const;
  void restore(const QueueState& s);

  uint64_t popped() const { return popped_; }
  uint64_t used() const { return used_; }
  uint64_t detached() const { return detached_; }

 private:
  Result<void, QueueError> walk_chain(const GuestMemory& mem, uint16_t head,
                                      DescriptorChain& chain) const;

  uint16_t max_size_;
  QueueState s_;  // what the driver configured and where the device is in the rings
  bool event_idx_ = false;
  bool indirect_ = false;
  uint64_t popped_ = 0;
  uint64_t used_ = 0;
  uint64_t detached_ = 0;
};

VMEM_NAMESPACE_END
