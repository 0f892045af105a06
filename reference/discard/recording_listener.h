// A RamDiscardListener that remembers, block by block, what it was told is populated, and can be
// told to refuse. It stands for any consumer in tests and fuzzers, and lets the invariant
// checker compare its view with the device's bitmap.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "reference/discard/discard_manager.h"
#include "reference/mem/block_bitmap.h"

VMEM_NAMESPACE_BEGIN

class RecordingListener final : public RamDiscardListener {
 public:
  RecordingListener(std::string name, uint64_t region_blocks, uint64_t block_size,
                    bool double_discard = false)
      : name_(std::move(name)),
        view_(region_blocks),
        block_size_(block_size),
        double_discard_(double_discard) {}

  Status notify_populate(const Section& s) override {
    ++populates_;
    if (refuse_after_ && *refuse_after_ == 0) {
      refuse_after_.reset();
      ++refusals_;
      return unexpected(Error{name_ + " refused"});
    }
    if (refuse_after_) --*refuse_after_;
    const uint64_t first = s.offset / block_size_;
    const uint64_t n = s.size / block_size_;
    // A populate of something already populated is a protocol error of the manager.
    if (!view_.is_range_unplugged(first, n)) ++double_populates_;
    view_.set_range_plugged(first, n);
    return ok();
  }

  void notify_discard(const Section& s) override {
    ++discards_;
    const uint64_t first = s.offset / block_size_;
    const uint64_t n = s.size / block_size_;
    if (!double_discard_ && !view_.is_range_plugged(first, n)) ++double_discards_;
    view_.set_range_unplugged(first, n);
  }

  bool double_discard_supported() const override { return double_discard_; }

  // The n-th populate from now (0 = the next) is refused; the others succeed.
  void refuse_after(uint64_t n) { refuse_after_ = n; }
  bool refusal_armed() const { return refuse_after_.has_value(); }

  const std::string& name() const { return name_; }
  const BlockBitmap& view() const { return view_; }
  uint64_t populates() const { return populates_; }
  uint64_t discards() const { return discards_; }
  uint64_t refusals() const { return refusals_; }
  // Protocol errors seen: populate of populated blocks, discard of unpopulated ones (when
  // double discards were not announced as fine).
  uint64_t double_populates() const { return double_populates_; }
  uint64_t double_discards() const { return double_discards_; }

 private:
  std::string name_;
  BlockBitmap view_;
  uint64_t block_size_;
  bool double_discard_;
  std::optional<uint64_t> refuse_after_;
  uint64_t populates_ = 0, discards_ = 0, refusals_ = 0;
  uint64_t double_populates_ = 0, double_discards_ = 0;
};

VMEM_NAMESPACE_END
