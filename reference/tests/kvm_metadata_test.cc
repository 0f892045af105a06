// KVM memslot metadata (docs/kvm-metadata.md): the seed figures for a 1 TiB device and a second
// geometry worked out by hand.
#include "reference/kvm/kvm_metadata.h"

#include <gtest/gtest.h>

#include "reference/mem/consumer_rules.h"

namespace vmem {
namespace {

constexpr uint64_t kMiB = 1ULL << 20;
constexpr uint64_t kGiB = 1ULL << 30;

void expect_within_5_percent(uint64_t got, double want, const char* what) {
  EXPECT_NEAR(static_cast<double>(got), want, want * 0.05) << what << ": " << got;
}

// The seed: a 1 TiB device in one big memslot costs about 2.5 GiB (5 GiB with SMM) without the
// TDP MMU and about 512 MiB (1 GiB) with it, on a kernel that allocates gfn_track up front.
TEST(KvmMetadataTest, SeedFiguresForOneTerabyteMemslot) {
  const uint64_t tib = 1ULL << 40;
  expect_within_5_percent(memslot_metadata(4 * kGiB, tib, seed_kernel(false, false)).total(),
                          2.5 * kGiB, "no TDP MMU");
  expect_within_5_percent(memslot_metadata(4 * kGiB, tib, seed_kernel(false, true)).total(),
                          5.0 * kGiB, "no TDP MMU, SMM");
  expect_within_5_percent(memslot_metadata(4 * kGiB, tib, seed_kernel(true, false)).total(),
                          512.0 * kMiB, "TDP MMU");
  expect_within_5_percent(memslot_metadata(4 * kGiB, tib, seed_kernel(true, true)).total(),
                          1.0 * kGiB, "TDP MMU, SMM");
  // A current kernel with the TDP MMU keeps only lpage_info: about 2 MiB.
  const MetadataCost now = memslot_metadata(4 * kGiB, tib, current_kernel(true, false));
  EXPECT_EQ(now.total(), now.lpage_info);
  EXPECT_EQ(now.total(), 4 * (524288u + 1024u));
}

// The second geometry of docs/kvm-metadata.md, by hand: a 64 GiB region at 4 GiB, 2 MiB blocks,
// 4 GiB plugged, a limit of 256 memslots, seed kernel without the TDP MMU.
TEST(KvmMetadataTest, SecondGeometryByHand) {
  const KvmModel model = seed_kernel(false, false);
  const MemslotComparison c = compare_memslots(4 * kGiB, 64 * kGiB, 2 * kMiB, 4 * kGiB, 256, model);
  EXPECT_EQ(c.memslots, 64u);
  EXPECT_EQ(c.memslot_size, kGiB);
  // One 1 GiB memslot: rmap 8 * (262144 + 512 + 1), lpage_info 4 * (512 + 1), gfn_track 2 * 262144.
  const MetadataCost slot = memslot_metadata(4 * kGiB, kGiB, model);
  EXPECT_EQ(slot.rmap, 2101256u);
  EXPECT_EQ(slot.lpage_info, 2052u);
  EXPECT_EQ(slot.gfn_track, 524288u);
  EXPECT_EQ(slot.total(), 2627596u);
  EXPECT_EQ(c.one_big.total(), 134480384u + 131328u + 33554432u);
  EXPECT_EQ(c.dynamic_best.total(), 4 * 2627596u);
  EXPECT_EQ(c.dynamic_worst.total(), 64 * 2627596u);
}

TEST(KvmMetadataTest, DirtyLoggingAddsTwoBitsPerPage) {
  KvmModel m = current_kernel(true, false);
  m.dirty_logging = true;
  EXPECT_EQ(memslot_metadata(0, kGiB, m).dirty_bitmap, 2 * 262144 / 8);
}

TEST(KvmMetadataTest, MemslotDecisionLimitFollowsQemu) {
  const U64 m;
  // A device that fills the whole device-memory area, with KVM's 32764 slots free: 256.
  EXPECT_EQ(rules::memslot_decision_limit(m, 32764, 32764, 0, 0, 64 * kGiB, 64 * kGiB, 0), 256u);
  // Fewer than 509 slots in total: one memslot.
  EXPECT_EQ(rules::memslot_decision_limit(m, 508, 508, 0, 0, 64 * kGiB, 64 * kGiB, 0), 1u);
  // A device taking a quarter of the area gets a quarter of what is left.
  EXPECT_EQ(rules::memslot_decision_limit(m, 32764, 32764, 0, 0, 16 * kGiB, 64 * kGiB, 0), 64u);
  // Other devices already asked for 250 memslots: 6 are left for this one.
  EXPECT_EQ(rules::memslot_decision_limit(m, 32764, 32764, 250, 250, 64 * kGiB, 64 * kGiB, 0), 6u);
  EXPECT_EQ(rules::memslot_decision_limit(m, 32764, 32764, 256, 256, 64 * kGiB, 64 * kGiB, 0), 1u);
}

}  // namespace
}  // namespace vmem
