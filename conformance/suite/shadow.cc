#include "conformance/suite/shadow.h"

#include <algorithm>
#include <iterator>

namespace vmem::conformance {

Shadow::Shadow(const WireConfig& c)
    : addr_(c.addr),
      block_size_(c.block_size),
      blocks_(c.block_size ? c.region_size / c.block_size : 0) {}

bool Shadow::contains(uint64_t gpa, uint64_t n) const {
  if (block_size_ == 0 || gpa < addr_ || (gpa - addr_) % block_size_ != 0) return false;
  const uint64_t first = (gpa - addr_) / block_size_;
  return first <= blocks_ && n <= blocks_ - first;
}

void Shadow::apply(const WireRequest& r, const WireResponse& response) {
  if (response.type != VIRTIO_MEM_RESP_ACK) return;
  if (r.type == VIRTIO_MEM_REQ_UNPLUG_ALL) {
    unplug_all();
    return;
  }
  if (r.type != VIRTIO_MEM_REQ_PLUG && r.type != VIRTIO_MEM_REQ_UNPLUG) return;
  // An ACK for a range outside the region is a verdict for the checks; the model ignores it.
  if (!contains(r.addr, r.nb_blocks) || r.nb_blocks == 0) return;
  const uint64_t first = (r.addr - addr_) / block_size_;
  set(first, first + r.nb_blocks, r.type == VIRTIO_MEM_REQ_PLUG);
}

void Shadow::set(uint64_t first, uint64_t end, bool plugged) {
  // Carve [first, end) out of every run it meets, keeping what lies outside it.
  auto it = runs_.lower_bound(first);
  if (it != runs_.begin()) {
    auto before = std::prev(it);
    if (before->second > first) {
      const uint64_t run_end = before->second;
      before->second = first;
      plugged_count_ -= run_end - first;
      if (run_end > end) {
        runs_.emplace(end, run_end);
        plugged_count_ += run_end - end;
      }
    }
  }
  while (it != runs_.end() && it->first < end) {
    plugged_count_ -= it->second - it->first;
    if (it->second > end) {
      runs_.emplace(end, it->second);
      plugged_count_ += it->second - end;
    }
    it = runs_.erase(it);
  }
  if (!plugged) return;

  auto run = runs_.emplace(first, end).first;
  plugged_count_ += end - first;
  if (auto next = std::next(run); next != runs_.end() && next->first == end) {
    run->second = next->second;
    runs_.erase(next);
  }
  if (run != runs_.begin()) {
    if (auto before = std::prev(run); before->second == first) {
      before->second = run->second;
      runs_.erase(run);
    }
  }
}

bool Shadow::plugged(uint64_t block) const {
  auto it = runs_.upper_bound(block);
  return it != runs_.begin() && block < std::prev(it)->second;
}

BlockState Shadow::state(uint64_t first, uint64_t n) const {
  const uint64_t end = first < blocks_ ? first + std::min(n, blocks_ - first) : first;
  uint64_t on = 0;
  auto it = runs_.upper_bound(first);
  if (it != runs_.begin()) --it;
  for (; it != runs_.end() && it->first < end; ++it) {
    const uint64_t lo = std::max(it->first, first);
    const uint64_t hi = std::min(it->second, end);
    if (hi > lo) on += hi - lo;
  }
  if (on == 0) return BlockState::Unplugged;
  return on == n ? BlockState::Plugged : BlockState::Mixed;
}

}  // namespace vmem::conformance
