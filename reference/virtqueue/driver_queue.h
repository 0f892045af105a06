// The driver side of a split virtqueue, for tests, the trace replayer and benchmarks: it lays
// out the rings in guest memory, writes descriptors exactly as asked (malformed ones included)
// and reads the used ring back. It trusts nothing the device wrote: every read is bounds-checked
// and returned as a value.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "reference/memory/guest_memory.h"

VMEM_NAMESPACE_BEGIN

struct Descriptor {
  uint64_t addr = 0;
  uint32_t len = 0;
  uint16_t flags = 0;
  uint16_t next = 0;
};

struct UsedElement {
  uint32_t id = 0;
  uint32_t len = 0;
};

// How a chain's request and response bytes are split over descriptors (decisions D8): each
// entry is the size of one piece; the pieces must add up to the buffer's size.
struct ChainShape {
  std::vector<uint32_t> readable;  // e.g. {24}, or {8, 8, 8}
  std::vector<uint32_t> writable;  // e.g. {10}
  bool indirect = false;           // put the chain in an indirect table
};

// The memory a driver's rings and buffers live in: the reference's guest memory in this
// process, or a remote target's RAM reached through its protocol (the conformance suite).
class DriverMemory {
 public:
  virtual ~DriverMemory() = default;
  virtual bool read(uint64_t gpa, std::span<uint8_t> out) = 0;
  virtual bool write(uint64_t gpa, std::span<const uint8_t> in) = 0;
  // A pointer into the memory when it is in this process, so ring indices cost no copy.
  virtual uint8_t* direct(uint64_t /*gpa*/, std::size_t /*len*/) { return nullptr; }
};

class DriverQueue {
 public:
  // Places a queue of `size` entries at `base` (16-byte aligned): descriptor table, available
  // ring, used ring, then a data area with 256 bytes per descriptor slot.
  DriverQueue(DriverMemory& mem, uint64_t base, uint16_t size);
  DriverQueue(GuestMemory& mem, uint64_t base, uint16_t size);
  // The bytes from `base` the queue occupies.
  static uint64_t footprint(uint16_t size);

  uint16_t size() const { return size_; }
  // Zeroes the rings and forgets every index, as after a device reset.
  void reset();
  // Takes the indices from the rings in guest memory, as a driver resuming after migration.
  void adopt();
  uint64_t desc_table() const { return desc_; }
  uint64_t avail_ring() const { return avail_; }
  uint64_t used_ring() const { return used_; }

  // --- Raw access, for hostile chains ---
  bool write_descriptor(uint64_t table, uint16_t index, const Descriptor& d);
  bool write_descriptor(uint16_t index, const Descriptor& d) {
    return write_descriptor(desc_, index, d);
  }
  // Puts `head` in the available ring and publishes it (avail->idx + 1).
  bool publish(uint16_t head);
  // Moves avail->idx without writing ring entries.
  bool set_avail_idx(uint16_t idx);
  bool set_avail_flags(uint16_t flags);
  bool set_used_event(uint16_t idx);
  uint16_t avail_idx() const { return avail_idx_; }

  // --- Well-formed chains ---
  // Builds a chain in the descriptor slots starting at `first_slot`, copying `request` into its
  // readable pieces and leaving room for `response_len` writable bytes. Returns the head index,
  // or nothing if the shape does not fit.
  std::optional<uint16_t> build_chain(uint16_t first_slot, std::span<const uint8_t> request,
                                      const ChainShape& shape);
  // The writable bytes of a chain built by build_chain, gathered back.
  std::vector<uint8_t> read_response(uint16_t head, uint32_t len) const;

  // The next used element, if the device added one since the last call.
  std::optional<UsedElement> pop_used();
  uint16_t device_used_idx() const;
  uint16_t avail_event() const;
  uint64_t data_slot(uint16_t slot) const { return data_ + 256ULL * slot; }

 private:
  DriverQueue(std::unique_ptr<DriverMemory> owned, DriverMemory* mem, uint64_t base, uint16_t size);

  std::unique_ptr<DriverMemory> owned_;  // the adapter over a GuestMemory, if given one
  DriverMemory* mem_;
  uint16_t size_;
  uint64_t base_, desc_, avail_, used_, data_, end_;
  uint16_t avail_idx_ = 0;
  uint16_t last_used_ = 0;
  // Where build_chain put each head's writable pieces.
  std::vector<std::vector<std::pair<uint64_t, uint32_t>>> writable_of_;
};

VMEM_NAMESPACE_END
