// The suite's state model of one device: which blocks are plugged, learnt only from what the
// device acknowledged (ACKed PLUG, UNPLUG, UNPLUG_ALL) and from resets the suite caused. Every
// check ends by comparing the device with it, so a device that ACKs and does something else is
// caught even by checks about other things.
//
// It holds runs of plugged blocks, not one bit per block: a hostile device may report a region
// of 2^28 blocks, and the model must stay as cheap as the few requests the suite acknowledged.
#pragma once

#include <cstdint>
#include <map>

#include "reference/mem/wire.h"

namespace vmem::conformance {

class Shadow {
 public:
  Shadow() = default;
  // The geometry from the device's configuration.
  explicit Shadow(const WireConfig& c);

  uint64_t block_size() const { return block_size_; }
  uint64_t addr() const { return addr_; }
  uint64_t blocks() const { return blocks_; }

  // Learns from one request and the device's answer.
  void apply(const WireRequest& r, const WireResponse& response);
  void unplug_all() {
    runs_.clear();
    plugged_count_ = 0;
  }

  bool plugged(uint64_t block) const;
  uint64_t plugged_count() const { return plugged_count_; }
  // The state a STATE request for [first, first + n) must report.
  BlockState state(uint64_t first, uint64_t n) const;
  // A block index inside the region for a block-aligned gpa, or nothing.
  bool contains(uint64_t gpa, uint64_t n) const;

 private:
  // Marks [first, end) plugged or unplugged; runs stay disjoint and never touch.
  void set(uint64_t first, uint64_t end, bool plugged);

  uint64_t addr_ = 0;
  uint64_t block_size_ = 0;
  uint64_t blocks_ = 0;
  std::map<uint64_t, uint64_t> runs_;  // first block -> one past the last, of each plugged run
  uint64_t plugged_count_ = 0;
};

}  // namespace vmem::conformance
