#include "reference/memory/guest_memory.h"

#include <gtest/gtest.h>

#include <vector>

namespace vmem {
namespace {

constexpr uint64_t kMiB = 1ULL << 20;

TEST(GuestMemoryTest, AccessesMaySpanAdjacentRegions) {
  GuestMemory mem;
  ASSERT_TRUE(mem.add_region("low", 0, std::move(*Backing::create(BackingKind::Anonymous, kMiB)))
                  .has_value());
  ASSERT_TRUE(mem.add_region("high", kMiB, std::move(*Backing::create(BackingKind::Shared, kMiB)))
                  .has_value());
  std::vector<uint8_t> in = {1, 2, 3, 4, 5, 6, 7, 8};
  ASSERT_TRUE(mem.write(kMiB - 4, in).has_value());
  std::vector<uint8_t> out(8);
  ASSERT_TRUE(mem.read(kMiB - 4, out).has_value());
  EXPECT_EQ(out, in);
  EXPECT_EQ(mem.host_address(kMiB - 4, 8), nullptr);  // not one region
  EXPECT_NE(mem.host_address(kMiB - 8, 8), nullptr);
}

TEST(GuestMemoryTest, OutOfRangeAccessIsAnErrorAndChangesNothing) {
  GuestMemory mem;
  ASSERT_TRUE(mem.add_region("ram", 0, std::move(*Backing::create(BackingKind::Anonymous, kMiB)))
                  .has_value());
  std::vector<uint8_t> in(16, 0xaa);
  auto w = mem.write(kMiB - 8, in);
  ASSERT_FALSE(w.has_value());
  EXPECT_EQ(w.error(), MemoryError::Unmapped);
  std::vector<uint8_t> out(8);
  ASSERT_TRUE(mem.read(kMiB - 8, out).has_value());
  EXPECT_EQ(out, std::vector<uint8_t>(8, 0));
  EXPECT_FALSE(mem.read(~uint64_t{0} - 2, out).has_value());  // wraps around 2^64
}

TEST(GuestMemoryTest, NullBackingIsAddressableButHoldsNothing) {
  GuestMemory mem;
  ASSERT_TRUE(
      mem.add_region("dev", 1ULL << 32, std::move(*Backing::create(BackingKind::Null, 1ULL << 40)))
          .has_value());
  std::vector<uint8_t> out(8);
  auto r = mem.read(1ULL << 32, out);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error(), MemoryError::NoBacking);
}

TEST(GuestMemoryTest, OverlappingRegionsAreRefused) {
  GuestMemory mem;
  ASSERT_TRUE(
      mem.add_region("a", 0, std::move(*Backing::create(BackingKind::Null, 2 * kMiB))).has_value());
  EXPECT_FALSE(mem.add_region("b", kMiB, std::move(*Backing::create(BackingKind::Null, 2 * kMiB)))
                   .has_value());
  EXPECT_FALSE(mem.add_region("c", ~uint64_t{0} - kMiB + 2,
                              std::move(*Backing::create(BackingKind::Null, kMiB)))
                   .has_value());
}

// Decisions D10: discarded memory is not resident, and a CPU read of a never-written page maps
// the shared zero page, which does not count.
class ResidencyTest : public ::testing::TestWithParam<BackingKind> {};

TEST_P(ResidencyTest, DiscardGivesMemoryBack) {
  auto b = Backing::create(GetParam(), 64 * kMiB);
  ASSERT_TRUE(b.has_value());
  b->advise_block_size(2 * kMiB);
  EXPECT_EQ(*b->resident_bytes(0, 64 * kMiB), 0u);
  std::fill_n(b->data() + 4 * kMiB, 2 * kMiB, 0x5a);
  EXPECT_EQ(*b->resident_bytes(4 * kMiB, 2 * kMiB), 2 * kMiB);
  EXPECT_EQ(*b->resident_bytes(0, 64 * kMiB), 2 * kMiB);
  EXPECT_GE(*b->resident_bytes_total(), 2 * kMiB);
  ASSERT_TRUE(b->discard(4 * kMiB, 2 * kMiB).has_value());
  EXPECT_EQ(*b->resident_bytes(0, 64 * kMiB), 0u);
  EXPECT_EQ(*b->resident_bytes_total(), 0u);
  EXPECT_EQ(b->data()[4 * kMiB], 0);  // discarded memory reads back as zero
}

INSTANTIATE_TEST_SUITE_P(Backings, ResidencyTest,
                         ::testing::Values(BackingKind::Anonymous, BackingKind::Shared),
                         [](const auto& p) { return std::string(to_string(p.param)); });

TEST(ResidencyTest, ReadOfNeverWrittenAnonymousMemoryIsNotResident) {
  auto b = Backing::create(BackingKind::Anonymous, 8 * kMiB);
  ASSERT_TRUE(b.has_value());
  volatile uint8_t sink = 0;
  for (uint64_t off = 0; off < 8 * kMiB; off += 4096)
    sink = sink + b->data()[off];
  EXPECT_EQ(sink, 0);
  EXPECT_EQ(*b->resident_bytes(0, 8 * kMiB), 0u);
}

}  // namespace
}  // namespace vmem
