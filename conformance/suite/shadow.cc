#include "conformance/suite/shadow.h"

#include <algorithm>

namespace vmem::conformance {

Shadow::Shadow(const WireConfig& c)
    : addr_(c.addr),
      block_size_(c.block_size),
      plugged_(c.block_size ? c.region_size / c.block_size : 0, false) {}

bool Shadow::contains(uint64_t gpa, uint64_t n) const {
  if (block_size_ == 0 || gpa < addr_ || (gpa - addr_) % block_size_ != 0) return false;
  const uint64_t first = (gpa - addr_) / block_size_;
  return first <= plugged_.size() && n <= plugged_.size() - first;
}

void Shadow::apply(const WireRequest& r, const WireResponse& response) {
  if (response.type != VIRTIO_MEM_RESP_ACK) return;
  if (r.type == VIRTIO_MEM_REQ_UNPLUG_ALL) {
    unplug_all();
    return;
  }
  if (r.type != VIRTIO_MEM_REQ_PLUG && r.type != VIRTIO_MEM_REQ_UNPLUG) return;
  // An ACK for a range outside the region is a verdict for the checks; the model ignores it.
  if (!contains(r.addr, r.nb_blocks)) return;
  const uint64_t first = (r.addr - addr_) / block_size_;
  std::fill_n(plugged_.begin() + static_cast<std::ptrdiff_t>(first), r.nb_blocks,
              r.type == VIRTIO_MEM_REQ_PLUG);
}

uint64_t Shadow::plugged_count() const {
  return static_cast<uint64_t>(std::count(plugged_.begin(), plugged_.end(), true));
}

BlockState Shadow::state(uint64_t first, uint64_t n) const {
  uint64_t on = 0;
  for (uint64_t b = first; b < first + n && b < plugged_.size(); ++b)
    on += plugged_[b] ? 1 : 0;
  if (on == 0) return BlockState::Unplugged;
  return on == n ? BlockState::Plugged : BlockState::Mixed;
}

}  // namespace vmem::conformance
