#include "fuzz/model/vfio_budget.h"

#include <gtest/gtest.h>

#include <vector>

namespace vmem::model {
namespace {

constexpr uint64_t k2M = 2ULL << 20;
constexpr uint64_t kGpa = 4ULL << 30;

DmaSection blocks(uint64_t first, uint64_t n, uint64_t block = k2M) {
  return {kGpa + first * block, n * block, block};
}

TEST(VfioBudgetTest, GranulesAreCountedWithinTheAddressSpace) {
  EXPECT_EQ(granules_touched(blocks(0, 1)), 1u);
  EXPECT_EQ(granules_touched(blocks(3, 100)), 100u);
  // Half a granule on each side touches two.
  EXPECT_EQ(granules_touched({kGpa + k2M / 2, k2M, k2M}), 2u);
  // A section that ends at 2^64.
  EXPECT_EQ(granules_touched({~uint64_t{0} - 2 * k2M + 1, 2 * k2M, k2M}), 2u);
}

TEST(VfioBudgetTest, TheQemuNotesExample) {
  // 256 GiB in 2 MiB blocks needs 131072 mappings: beyond type1's default 65535.
  EXPECT_FALSE(vfio_budget_admits(Profile::Qemu, {}, blocks(0, 131072), 512, 65535));
  // In 8 MiB blocks, 32768 and 511 other memslots fit.
  EXPECT_TRUE(vfio_budget_admits(Profile::Qemu, {}, blocks(0, 32768, 8ULL << 20), 512, 65535));
}

TEST(VfioBudgetTest, AnEstimateEqualToTheLimitFits) {
  // 101 mappings + 511 other memslots = 612.
  EXPECT_TRUE(vfio_budget_admits(Profile::Spec, {}, blocks(0, 101), 512, 612));
  EXPECT_FALSE(vfio_budget_admits(Profile::Spec, {}, blocks(0, 101), 512, 611));
  EXPECT_FALSE(vfio_budget_admits(Profile::Spec, {}, blocks(0, 102), 512, 612));
}

TEST(VfioBudgetTest, EverySectionStandsForOneMemslot) {
  const std::vector<DmaSection> registered{blocks(0, 101)};
  // 101 + 1 mappings + 512 memslots - 2 sections = 612.
  EXPECT_TRUE(vfio_budget_admits(Profile::Spec, registered, blocks(200, 1), 512, 612));
  EXPECT_FALSE(vfio_budget_admits(Profile::Spec, registered, blocks(200, 2), 512, 612));
  // The memslots count: without them 103 - 2 would fit easily.
  EXPECT_FALSE(vfio_budget_admits(Profile::Qemu, registered, blocks(200, 2), 512, 612));
}

TEST(VfioBudgetTest, Qemu72OnlyWarnsAndAnUnknownLimitIsNoLimit) {
  EXPECT_TRUE(vfio_budget_admits(Profile::Qemu72, {}, blocks(0, 131072), 512, 65535));
  EXPECT_TRUE(vfio_budget_admits(Profile::Spec, {}, blocks(0, 131072), 512, 0));
}

}  // namespace
}  // namespace vmem::model
