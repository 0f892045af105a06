// One bit per memory block of the device region: set = plugged. Bit i of word w is block
// 64 * w + i. Range queries and updates run the generic templates of rules.h on the few words a
// range touches, so a 65535-block request on a 1 TiB region costs about a thousand word
// operations, and the proofs reason about exactly this code.
//
// A summary level (bit w set iff word w is not zero) lets searches for plugged blocks skip 4096
// empty blocks per probe: UNPLUG_ALL on a sparsely plugged 1 TiB region of 4 KiB blocks walks
// 64 Ki summary words instead of 4 Mi bitmap words.
#pragma once

#include <bit>
#include <cstdint>
#include <span>
#include <vector>

#include "reference/base/result.h"

VMEM_NAMESPACE_BEGIN

class BlockBitmap {
 public:
  explicit BlockBitmap(uint64_t nb_blocks = 0);
  // Rebuilds a bitmap from saved words; fails if the length is wrong or a bit past the end is set.
  static Result<BlockBitmap> from_words(uint64_t nb_blocks, std::vector<uint64_t> words);

  uint64_t size() const { return nb_blocks_; }
  // Number of plugged blocks, maintained on every update.
  uint64_t count() const { return count_; }
  std::span<const uint64_t> words() const { return words_; }

  // Ranges are [first, first + n), n >= 1, inside the bitmap (the caller validated them).
  bool test(uint64_t block) const { return (words_[block / 64] >> (block % 64)) & 1; }
  bool is_range_plugged(uint64_t first, uint64_t n) const;
  bool is_range_unplugged(uint64_t first, uint64_t n) const;
  uint64_t count_plugged(uint64_t first, uint64_t n) const;
  void set_range_plugged(uint64_t first, uint64_t n);
  void set_range_unplugged(uint64_t first, uint64_t n);
  void clear_all();

  // The last plugged block; only meaningful when count() != 0.
  uint64_t find_last_plugged() const;
  // The first block in [from, end) in the given state, or `end`.
  uint64_t find_next(bool plugged, uint64_t from, uint64_t end) const;
  // The first block in [from, end) whose state differs in `other` (over the blocks both hold),
  // or `end`. A word at a time: the invariant checker compares every listener's view with the
  // device after every operation.
  uint64_t find_difference(const BlockBitmap& other, uint64_t from, uint64_t end) const;

  // Calls fn(first, count) for each maximal run of blocks in the given state inside
  // [from, end), in order. Stops early and returns false if fn returns false.
  template <class Fn>
  bool for_each_run(bool plugged, uint64_t from, uint64_t end, Fn&& fn) const {
    while (from < end) {
      const uint64_t start = find_next(plugged, from, end);
      if (start == end) break;
      const uint64_t stop = find_next(!plugged, start, end);
      if (!fn(start, stop - start)) return false;
      from = stop;
    }
    return true;
  }

  friend bool operator==(const BlockBitmap&, const BlockBitmap&) = default;

 private:
  void set_range(uint64_t first, uint64_t n, bool plugged);
  void update_summary(uint64_t first_word, uint64_t count);
  // The first non-zero word in [from, limit), or `limit` (at most the number of words).
  uint64_t next_nonzero_word(uint64_t from, uint64_t limit) const;

  uint64_t nb_blocks_;
  uint64_t count_ = 0;
  std::vector<uint64_t> words_;
  std::vector<uint64_t> summary_;
};

VMEM_NAMESPACE_END
