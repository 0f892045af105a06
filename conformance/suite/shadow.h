// The suite's state model of one device: which blocks are plugged, learnt only from what the
// device acknowledged (ACKed PLUG, UNPLUG, UNPLUG_ALL) and from resets the suite caused. Every
// check ends by comparing the device with it, so a device that ACKs and does something else is
// caught even by checks about other things.
#pragma once

#include <cstdint>
#include <vector>

#include "reference/mem/wire.h"

namespace vmem::conformance {

class Shadow {
 public:
  Shadow() = default;
  // The geometry from the device's configuration.
  explicit Shadow(const WireConfig& c);

  uint64_t block_size() const { return block_size_; }
  uint64_t addr() const { return addr_; }
  uint64_t blocks() const { return plugged_.size(); }

  // Learns from one request and the device's answer.
  void apply(const WireRequest& r, const WireResponse& response);
  void unplug_all() { plugged_.assign(plugged_.size(), false); }

  bool plugged(uint64_t block) const { return block < plugged_.size() && plugged_[block]; }
  uint64_t plugged_count() const;
  // The state a STATE request for [first, first + n) must report.
  BlockState state(uint64_t first, uint64_t n) const;
  // A block index inside the region for a block-aligned gpa, or nothing.
  bool contains(uint64_t gpa, uint64_t n) const;

 private:
  uint64_t addr_ = 0;
  uint64_t block_size_ = 0;
  std::vector<bool> plugged_;
};

}  // namespace vmem::conformance
