#include "reference/mem/rules.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

namespace vmem {
namespace {

__extension__ typedef unsigned __int128 u128;
constexpr uint64_t kMiB = 1ULL << 20;

// The spec's intent in arithmetic that cannot overflow: an independent statement of DEV-26.
bool spec_valid(uint64_t region_addr, uint64_t usable, uint64_t bs, uint64_t gpa, uint64_t nb) {
  const u128 start = gpa;
  const u128 end = start + u128{nb} * bs;
  return gpa % bs == 0 && nb != 0 && start >= region_addr && end <= u128{region_addr} + usable;
}

bool valid(uint64_t region_addr, uint64_t usable, uint64_t bs, uint64_t gpa, uint64_t nb) {
  return rules::valid_range(U64{}, region_addr, usable, bs, gpa, nb);
}

struct RangeCase {
  const char* name;
  uint64_t gpa;
  uint64_t nb;
  bool valid;
};

TEST(RulesTest, Dev26RangeEdgeVectors) {
  const uint64_t addr = 4ULL << 30;
  const uint64_t usable = 256 * kMiB;
  const uint64_t bs = 2 * kMiB;
  const RangeCase cases[] = {
      {"first block", addr, 1, true},
      {"whole usable region", addr, 128, true},
      {"ends exactly at the usable end", addr + usable - bs, 1, true},
      {"crosses the usable end", addr + usable - bs, 2, false},
      {"starts at the usable end", addr + usable, 1, false},
      {"below the region", addr - bs, 1, false},
      {"straddles the region start", addr - bs, 2, false},
      {"misaligned by half a block", addr + bs / 2, 1, false},
      {"misaligned by one byte", addr + 1, 1, false},
      {"zero blocks", addr, 0, false},
      {"65535 blocks from the start", addr, 65535, false},
      {"wraps around 2^64", ~uint64_t{0} - bs + 1, 2, false},
      {"2^64 - block_size", ~uint64_t{0} - bs + 1, 1, false},
      {"address 0", 0, 1, false},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(valid(addr, usable, bs, c.gpa, c.nb), c.valid) << c.name;
    EXPECT_EQ(spec_valid(addr, usable, bs, c.gpa, c.nb), c.valid) << "oracle: " << c.name;
  }
}

TEST(RulesTest, Dev26WrapAroundAtTheTopOfTheAddressSpace) {
  // A region that ends 2 MiB below 2^64: the last block plus 65535 blocks wraps, and only the
  // wrap check rejects it (its end, reduced mod 2^64, lies below the usable end).
  const uint64_t bs = 2 * kMiB;
  const uint64_t region = 64ULL << 30;
  const uint64_t addr = 0 - region - bs;
  const uint64_t last = addr + region - bs;
  EXPECT_TRUE(valid(addr, region, bs, last, 1));
  EXPECT_FALSE(valid(addr, region, bs, last, 65535));
  EXPECT_FALSE(spec_valid(addr, region, bs, last, 65535));
}

TEST(RulesTest, Dev26HugeBlockSizeOverflowsTheSize) {
  const uint64_t bs = 1ULL << 63;
  EXPECT_FALSE(valid(0, bs, bs, 0, 2));
  EXPECT_TRUE(valid(0, bs, bs, 0, 1));
}

TEST(RulesTest, ValidRangeAgreesWithTheOracleOnRandomAndEdgeInputs) {
  std::mt19937_64 rng(42);
  const uint64_t edges[] = {0, 1, 2, (1ULL << 63) - 1, 1ULL << 63, ~uint64_t{0}, ~uint64_t{0} - 1};
  for (int i = 0; i < 200000; ++i) {
    const uint64_t bs = 1ULL << (12 + rng() % 40);
    const uint64_t region_blocks = rng() % 1024;
    const uint64_t region = region_blocks * bs;
    const uint64_t max_addr_blocks = (~uint64_t{0} - region) / bs;
    uint64_t addr = (rng() % (max_addr_blocks + 1)) * bs;
    if (i % 7 == 0) addr = max_addr_blocks * bs;  // the region at the top of the address space
    const uint64_t usable = region_blocks == 0 ? 0 : (rng() % (region_blocks + 1)) * bs;
    uint64_t gpa = 0;
    switch (rng() % 4) {
      case 0:
        gpa = addr + (rng() % (region_blocks + 2)) * bs;
        break;
      case 1:
        gpa = addr + rng() % (region + 1);
        break;
      case 2:
        gpa = edges[rng() % std::size(edges)];
        break;
      default:
        gpa = rng();
        break;
    }
    const uint64_t nb = (rng() % 3 == 0) ? rng() % 65536 : rng() % 8;
    ASSERT_EQ(valid(addr, usable, bs, gpa, nb), spec_valid(addr, usable, bs, gpa, nb))
        << std::hex << "addr=" << addr << " usable=" << usable << " bs=" << bs << " gpa=" << gpa
        << " nb=" << nb;
  }
}

TEST(RulesTest, PlugLimitIsQemus) {
  EXPECT_FALSE(rules::exceeds_requested(U64{}, 0, 4 * kMiB, 4 * kMiB));
  EXPECT_TRUE(rules::exceeds_requested(U64{}, 2 * kMiB, 4 * kMiB, 4 * kMiB));
  EXPECT_TRUE(rules::exceeds_requested(U64{}, ~uint64_t{0}, 2, ~uint64_t{0}));
}

RespType plug(Profile p, bool valid, bool over, bool wrong, bool busy) {
  return static_cast<RespType>(rules::plug_verdict(U64{}, p, valid, over, wrong, busy));
}

TEST(RulesTest, PlugVerdictOrderInSpecProfile) {
  EXPECT_EQ(plug(Profile::Spec, false, true, true, true), RespType::Error);
  EXPECT_EQ(plug(Profile::Spec, true, true, true, true), RespType::Error);  // DEV-27 before NACK
  EXPECT_EQ(plug(Profile::Spec, true, true, false, true), RespType::Nack);
  EXPECT_EQ(plug(Profile::Spec, true, false, false, true), RespType::Busy);
  EXPECT_EQ(plug(Profile::Spec, true, false, false, false), RespType::Ack);
}

TEST(RulesTest, PlugVerdictOrderInQemuProfiles) {
  for (Profile p : {Profile::Qemu, Profile::Qemu72}) {
    EXPECT_EQ(plug(p, false, true, true, true), RespType::Error);
    EXPECT_EQ(plug(p, true, true, true, true), RespType::Nack);  // NACK before the state check
    EXPECT_EQ(plug(p, true, false, true, true), RespType::Error);
    EXPECT_EQ(plug(p, true, false, false, true), RespType::Busy);
    EXPECT_EQ(plug(p, true, false, false, false), RespType::Ack);
  }
}

TEST(RulesTest, UnplugAllBusyDependsOnProfile) {
  auto v = [](Profile p, bool busy, uint64_t plugged) {
    return static_cast<RespType>(rules::unplug_all_verdict(U64{}, p, busy, plugged));
  };
  EXPECT_EQ(v(Profile::Spec, true, 0), RespType::Ack);
  EXPECT_EQ(v(Profile::Qemu, true, 0), RespType::Ack);
  EXPECT_EQ(v(Profile::Qemu72, true, 0), RespType::Busy);
  for (Profile p : {Profile::Spec, Profile::Qemu, Profile::Qemu72}) {
    EXPECT_EQ(v(p, true, 2 * kMiB), RespType::Busy);
    EXPECT_EQ(v(p, false, 2 * kMiB), RespType::Ack);
  }
}

TEST(RulesTest, StateOfARange) {
  auto s = [](bool all, bool none) { return rules::state_of(U64{}, all, none); };
  EXPECT_EQ(s(true, false), VIRTIO_MEM_STATE_PLUGGED);
  EXPECT_EQ(s(false, true), VIRTIO_MEM_STATE_UNPLUGGED);
  EXPECT_EQ(s(false, false), VIRTIO_MEM_STATE_MIXED);
}

uint64_t usable(uint64_t region, uint64_t bs, uint64_t extent, uint64_t req, uint64_t cur,
                bool shrink) {
  return rules::resized_usable_region(U64{}, region, bs, extent, req, cur, shrink);
}

TEST(RulesTest, UsableRegionGrowsToRequestedPlusExtent) {
  const uint64_t bs = 2 * kMiB;
  EXPECT_EQ(usable(4096 * kMiB, bs, 256 * kMiB, 128 * kMiB, 0, true), 384 * kMiB);
  EXPECT_EQ(usable(256 * kMiB, bs, 256 * kMiB, 128 * kMiB, 0, true), 256 * kMiB);  // capped
  EXPECT_EQ(usable(4096 * kMiB, bs, 256 * kMiB, 0, 384 * kMiB, true), 0u);  // nothing requested
  // An extent that is not block-aligned is rounded up.
  EXPECT_EQ(usable(4096 * kMiB, 64 * kMiB, 1 * kMiB, 64 * kMiB, 0, true), 128 * kMiB);
  // An extent so large that requested + extent overflows is capped at the region.
  EXPECT_EQ(usable(4096 * kMiB, bs, ~uint64_t{0}, 128 * kMiB, 0, true), 4096 * kMiB);
}

TEST(RulesTest, Dev8UsableRegionShrinksOnlyWhenAllowed) {
  const uint64_t bs = 2 * kMiB;
  EXPECT_EQ(usable(4096 * kMiB, bs, 256 * kMiB, 0, 384 * kMiB, false), 384 * kMiB);
  EXPECT_EQ(usable(4096 * kMiB, bs, 256 * kMiB, 64 * kMiB, 384 * kMiB, false), 384 * kMiB);
  EXPECT_EQ(usable(4096 * kMiB, bs, 256 * kMiB, 64 * kMiB, 384 * kMiB, true), 320 * kMiB);
  EXPECT_EQ(usable(4096 * kMiB, bs, 256 * kMiB, 1024 * kMiB, 384 * kMiB, false), 1280 * kMiB);
}

TEST(RulesTest, Dev4UsableCoversRequestedForEveryGeometry) {
  std::mt19937_64 rng(7);
  for (int i = 0; i < 100000; ++i) {
    const uint64_t bs = 1ULL << (12 + rng() % 30);
    const uint64_t region = (rng() % 4096) * bs;
    const uint64_t req = region == 0 ? 0 : (rng() % (region / bs + 1)) * bs;
    const uint64_t extent = rng() % 3 == 0 ? rng() : (rng() % 1024) * kMiB;
    const uint64_t cur = region == 0 ? 0 : (rng() % (region / bs + 1)) * bs;
    const bool shrink = rng() & 1;
    const uint64_t u = usable(region, bs, extent, req, cur, shrink);
    ASSERT_LE(req, u);
    ASSERT_LE(u, region);
    ASSERT_EQ(u % bs, 0u);
    if (!shrink) {
      ASSERT_GE(u, std::min(cur, region));
    }
  }
}

// Bitmap operations against a naive model, on windows placed anywhere in small bitmaps.
TEST(RulesTest, BitmapRangeOperationsMatchANaiveModel) {
  std::mt19937_64 rng(3);
  for (int iter = 0; iter < 20000; ++iter) {
    const uint64_t nwords = 1 + rng() % 5;
    std::vector<uint64_t> words(nwords);
    for (auto& w : words)
      w = rng() % 3 == 0 ? 0 : (rng() % 3 == 0 ? ~uint64_t{0} : rng());
    const uint64_t nbits = nwords * 64;
    const uint64_t first = rng() % nbits;
    const uint64_t end = first + 1 + rng() % (nbits - first);
    const auto win = rules::word_window(first, end);
    ASSERT_LE(win.first_word + win.count, nwords);

    bool all_set = true, all_clear = true;
    uint64_t count = 0;
    for (uint64_t b = first; b < end; ++b) {
      const bool bit = (words[b / 64] >> (b % 64)) & 1;
      all_set &= bit;
      all_clear &= !bit;
      count += bit;
    }
    std::span<const uint64_t> cw(words.data() + win.first_word, win.count);
    ASSERT_EQ(rules::range_is(U64{}, cw, win.first_word, first, end, true), all_set);
    ASSERT_EQ(rules::range_is(U64{}, cw, win.first_word, first, end, false), all_clear);
    ASSERT_EQ(rules::count_plugged(U64{}, cw, win.first_word, first, end), count);

    const bool value = rng() & 1;
    std::vector<uint64_t> expect = words;
    for (uint64_t b = first; b < end; ++b) {
      if (value) {
        expect[b / 64] |= 1ULL << (b % 64);
      } else {
        expect[b / 64] &= ~(1ULL << (b % 64));
      }
    }
    rules::set_range(U64{}, std::span<uint64_t>(words.data() + win.first_word, win.count),
                     win.first_word, first, end, value);
    ASSERT_EQ(words, expect);
  }
}

}  // namespace
}  // namespace vmem
