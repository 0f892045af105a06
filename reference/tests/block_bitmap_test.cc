#include "reference/mem/block_bitmap.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>

namespace vmem {
namespace {

TEST(BlockBitmapTest, StartsUnplugged) {
  BlockBitmap b(1000);
  EXPECT_EQ(b.count(), 0u);
  EXPECT_TRUE(b.is_range_unplugged(0, 1000));
  EXPECT_FALSE(b.is_range_plugged(0, 1));
}

TEST(BlockBitmapTest, RangesAcrossWordBoundariesKeepTheCount) {
  BlockBitmap b(300);
  b.set_range_plugged(60, 10);  // words 0 and 1
  EXPECT_EQ(b.count(), 10u);
  EXPECT_TRUE(b.is_range_plugged(60, 10));
  EXPECT_FALSE(b.is_range_plugged(59, 2));
  EXPECT_FALSE(b.is_range_unplugged(59, 2));
  EXPECT_EQ(b.count_plugged(0, 300), 10u);
  b.set_range_plugged(65, 100);  // overlaps: the count grows only by the new blocks
  EXPECT_EQ(b.count(), 10u + 95u);
  b.set_range_unplugged(0, 300);
  EXPECT_EQ(b.count(), 0u);
}

TEST(BlockBitmapTest, RunsAreMaximal) {
  BlockBitmap b(200);
  b.set_range_plugged(3, 5);
  b.set_range_plugged(64, 70);
  b.set_range_plugged(199, 1);
  std::vector<std::pair<uint64_t, uint64_t>> runs;
  b.for_each_run(true, 0, 200, [&](uint64_t f, uint64_t n) {
    runs.emplace_back(f, n);
    return true;
  });
  EXPECT_EQ(runs, (std::vector<std::pair<uint64_t, uint64_t>>{{3, 5}, {64, 70}, {199, 1}}));
  runs.clear();
  b.for_each_run(false, 0, 200, [&](uint64_t f, uint64_t n) {
    runs.emplace_back(f, n);
    return true;
  });
  EXPECT_EQ(runs, (std::vector<std::pair<uint64_t, uint64_t>>{{0, 3}, {8, 56}, {134, 65}}));
}

TEST(BlockBitmapTest, ClearAllOnLargeSparseBitmap) {
  BlockBitmap b(1ULL << 28);  // 1 TiB of 4 KiB blocks
  b.set_range_plugged(12345, 65535);
  b.set_range_plugged((1ULL << 28) - 1, 1);
  EXPECT_EQ(b.count(), 65536u);
  b.clear_all();
  EXPECT_EQ(b.count(), 0u);
  EXPECT_EQ(b.find_next(true, 0, b.size()), b.size());
  b.set_range_plugged((1ULL << 28) - 1, 1);
  EXPECT_EQ(b.find_next(true, 0, 1ULL << 20), 1ULL << 20);
  EXPECT_EQ(b.find_next(true, 1ULL << 20, b.size()), (1ULL << 28) - 1);
}

TEST(BlockBitmapTest, FromWordsRejectsWrongLengthAndTailBits) {
  EXPECT_FALSE(BlockBitmap::from_words(100, {0}).has_value());
  EXPECT_FALSE(BlockBitmap::from_words(100, {0, 1ULL << 36}).has_value());
  auto ok = BlockBitmap::from_words(100, {5, 1ULL << 35});
  ASSERT_TRUE(ok.has_value());
  EXPECT_EQ(ok->count(), 3u);
}

}  // namespace
}  // namespace vmem

namespace vmem {
namespace {

TEST(BlockBitmapTest, RandomUpdatesMatchANaiveModel) {
  std::mt19937_64 rng(11);
  const uint64_t n = 20000;
  BlockBitmap b(n);
  std::vector<bool> model(n, false);
  for (int i = 0; i < 3000; ++i) {
    const uint64_t first = rng() % n;
    const uint64_t len = 1 + rng() % std::min<uint64_t>(n - first, i % 10 == 0 ? 5000 : 70);
    const bool plug = rng() % 3 != 0;
    if (plug) {
      b.set_range_plugged(first, len);
    } else {
      b.set_range_unplugged(first, len);
    }
    for (uint64_t k = first; k < first + len; ++k)
      model[k] = plug;
    if (i % 97 == 0) {
      b.clear_all();
      std::fill(model.begin(), model.end(), false);
    }
    const uint64_t probe = rng() % n;
    uint64_t next = probe;
    while (next < n && !model[next])
      ++next;
    ASSERT_EQ(b.find_next(true, probe, n), next);
    // A search bounded short of the end (one memslot of a region) stops at its bound, however
    // many empty words lie before a plugged block past it.
    const uint64_t end = probe + rng() % (n - probe + 1);
    ASSERT_EQ(b.find_next(true, probe, end), std::min(next, end));
  }
  uint64_t count = 0;
  std::vector<bool> rebuilt(n, false);
  b.for_each_run(true, 0, n, [&](uint64_t f, uint64_t len) {
    for (uint64_t k = f; k < f + len; ++k)
      rebuilt[k] = true;
    count += len;
    return true;
  });
  EXPECT_EQ(rebuilt, model);
  EXPECT_EQ(b.count(), count);
}

}  // namespace
}  // namespace vmem
