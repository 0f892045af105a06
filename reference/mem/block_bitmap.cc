#include "reference/mem/block_bitmap.h"

#include <fmt/format.h>

#include <algorithm>

#include "reference/mem/rules.h"

VMEM_NAMESPACE_BEGIN

namespace {

struct Window {
  rules::WordWindow w;
  uint64_t first;
  uint64_t end;
};

Window window_of(uint64_t first, uint64_t n) {
  return Window{rules::word_window(first, first + n), first, first + n};
}

}  // namespace

BlockBitmap::BlockBitmap(uint64_t nb_blocks)
    : nb_blocks_(nb_blocks),
      words_((nb_blocks + 63) / 64, 0),
      summary_((words_.size() + 63) / 64, 0) {}

Result<BlockBitmap> BlockBitmap::from_words(uint64_t nb_blocks, std::vector<uint64_t> words) {
  const uint64_t want = (nb_blocks + 63) / 64;
  if (words.size() != want) {
    return unexpected(Error{
        fmt::format("bitmap has {} words, {} blocks need {}", words.size(), nb_blocks, want)});
  }
  if (nb_blocks % 64 != 0 && (words.back() >> (nb_blocks % 64)) != 0) {
    return unexpected(
        Error{fmt::format("bitmap marks blocks past the last block {} plugged", nb_blocks - 1)});
  }
  BlockBitmap b(nb_blocks);
  b.words_ = std::move(words);
  for (uint64_t w : b.words_)
    b.count_ += static_cast<uint64_t>(std::popcount(w));
  b.update_summary(0, b.words_.size());
  return b;
}

bool BlockBitmap::is_range_plugged(uint64_t first, uint64_t n) const {
  const Window w = window_of(first, n);
  return rules::range_is(U64{},
                         std::span<const uint64_t>(words_).subspan(w.w.first_word, w.w.count),
                         w.w.first_word, w.first, w.end, true);
}

bool BlockBitmap::is_range_unplugged(uint64_t first, uint64_t n) const {
  const Window w = window_of(first, n);
  return rules::range_is(U64{},
                         std::span<const uint64_t>(words_).subspan(w.w.first_word, w.w.count),
                         w.w.first_word, w.first, w.end, false);
}

uint64_t BlockBitmap::count_plugged(uint64_t first, uint64_t n) const {
  const Window w = window_of(first, n);
  return rules::count_plugged(U64{},
                              std::span<const uint64_t>(words_).subspan(w.w.first_word, w.w.count),
                              w.w.first_word, w.first, w.end);
}

void BlockBitmap::set_range(uint64_t first, uint64_t n, bool plugged) {
  const Window w = window_of(first, n);
  std::span<uint64_t> window = std::span<uint64_t>(words_).subspan(w.w.first_word, w.w.count);
  uint64_t before = 0;
  for (uint64_t v : window)
    before += static_cast<uint64_t>(std::popcount(v));
  rules::set_range(U64{}, window, w.w.first_word, w.first, w.end, plugged);
  uint64_t after = 0;
  for (uint64_t v : window)
    after += static_cast<uint64_t>(std::popcount(v));
  count_ = count_ - before + after;
  update_summary(w.w.first_word, w.w.count);
}

void BlockBitmap::update_summary(uint64_t first_word, uint64_t count) {
  for (uint64_t i = first_word; i < first_word + count; ++i) {
    const uint64_t bit = uint64_t{1} << (i % 64);
    if (words_[i] != 0) {
      summary_[i / 64] |= bit;
    } else {
      summary_[i / 64] &= ~bit;
    }
  }
}

uint64_t BlockBitmap::next_nonzero_word(uint64_t from, uint64_t limit) const {
  limit = std::min<uint64_t>(limit, words_.size());
  while (from < limit) {
    const uint64_t s = summary_[from / 64] & (~uint64_t{0} << (from % 64));
    if (s != 0)
      return std::min(limit, (from / 64) * 64 + static_cast<uint64_t>(std::countr_zero(s)));
    from = (from / 64 + 1) * 64;
  }
  return limit;
}

void BlockBitmap::set_range_plugged(uint64_t first, uint64_t n) {
  set_range(first, n, true);
}
void BlockBitmap::set_range_unplugged(uint64_t first, uint64_t n) {
  set_range(first, n, false);
}

void BlockBitmap::clear_all() {
  for (uint64_t w = next_nonzero_word(0, words_.size()); w < words_.size();
       w = next_nonzero_word(w + 1, words_.size())) {
    words_[w] = 0;
  }
  std::fill(summary_.begin(), summary_.end(), 0);
  count_ = 0;
}

uint64_t BlockBitmap::find_last_plugged() const {
  for (uint64_t s = summary_.size(); s-- > 0;) {
    if (summary_[s] == 0) continue;
    const uint64_t w = s * 64 + 63 - static_cast<uint64_t>(std::countl_zero(summary_[s]));
    return w * 64 + 63 - static_cast<uint64_t>(std::countl_zero(words_[w]));
  }
  return 0;
}

uint64_t BlockBitmap::find_next(bool plugged, uint64_t from, uint64_t end) const {
  while (from < end) {
    if (plugged && words_[from / 64] == 0) {
      // Skip empty words through the summary, up to the word that holds `end` only: a search
      // in one memslot of a large region must not walk the summary to the region's end.
      const uint64_t end_word = (end + 63) / 64;
      const uint64_t w = next_nonzero_word(from / 64 + 1, end_word);
      if (w >= end_word) return end;
      from = w * 64;
      continue;
    }
    uint64_t w = words_[from / 64];
    if (!plugged) w = ~w;
    w &= ~uint64_t{0} << (from % 64);
    if (w != 0) return std::min(end, (from / 64) * 64 + static_cast<uint64_t>(std::countr_zero(w)));
    from = (from / 64 + 1) * 64;
  }
  return end;
}

uint64_t BlockBitmap::find_difference(const BlockBitmap& other, uint64_t from, uint64_t end) const {
  const uint64_t stop = std::min({end, nb_blocks_, other.nb_blocks_});
  while (from < stop) {
    const uint64_t w = from / 64;
    const uint64_t diff = (words_[w] ^ other.words_[w]) & (~uint64_t{0} << (from % 64));
    if (diff != 0) return std::min(end, w * 64 + static_cast<uint64_t>(std::countr_zero(diff)));
    from = (w + 1) * 64;
  }
  return end;
}

VMEM_NAMESPACE_END
