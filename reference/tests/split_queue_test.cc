#include "reference/virtqueue/split_queue.h"

#include <gtest/gtest.h>

#include "reference/virtqueue/driver_queue.h"

namespace vmem {
namespace {

constexpr uint64_t kMiB = 1ULL << 20;
constexpr uint64_t kBase = 0x10000;

class SplitQueueTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(
        mem_.add_region("ram", 0, std::move(*Backing::create(BackingKind::Anonymous, 4 * kMiB)))
            .has_value());
    q_.set_size(16);
    q_.set_desc_table(drv_.desc_table());
    q_.set_avail_ring(drv_.avail_ring());
    q_.set_used_ring(drv_.used_ring());
    q_.set_ready(true);
    q_.set_indirect(true);
    ASSERT_TRUE(q_.check_layout(mem_).has_value());
  }

  // Pops one chain and returns its error, or none.
  std::optional<QueueError> pop_error() {
    auto r = q_.pop(mem_, chain_);
    if (r.has_value()) {
      EXPECT_TRUE(*r) << "queue unexpectedly empty";
      return std::nullopt;
    }
    return r.error();
  }

  uint64_t buf(int i) const { return 2 * kMiB + 4096ULL * i; }

  GuestMemory mem_;
  DriverQueue drv_{mem_, kBase, 16};
  SplitQueue q_{128};
  DescriptorChain chain_;
};

TEST_F(SplitQueueTest, EmptyQueuePopsNothing) {
  auto r = q_.pop(mem_, chain_);
  ASSERT_TRUE(r.has_value());
  EXPECT_FALSE(*r);
  EXPECT_EQ(q_.popped(), 0u);
}

TEST_F(SplitQueueTest, ChainSplitOverThreeDescriptorsIsGathered) {
  drv_.write_descriptor(0, {buf(0), 8, VIRTQ_DESC_F_NEXT, 1});
  drv_.write_descriptor(1, {buf(1), 16, VIRTQ_DESC_F_NEXT, 2});
  drv_.write_descriptor(2, {buf(2), 10, VIRTQ_DESC_F_WRITE, 0});
  std::vector<uint8_t> a(8, 1), b(16, 2);
  ASSERT_TRUE(mem_.write(buf(0), a).has_value());
  ASSERT_TRUE(mem_.write(buf(1), b).has_value());
  drv_.publish(0);
  ASSERT_EQ(pop_error(), std::nullopt);
  EXPECT_EQ(chain_.readable_bytes(), 24u);
  EXPECT_EQ(chain_.writable_bytes(), 10u);
  std::array<uint8_t, 24> got{};
  ASSERT_TRUE(chain_.read(mem_, got));
  EXPECT_EQ(got[7], 1);
  EXPECT_EQ(got[8], 2);
  EXPECT_EQ(got[23], 2);
  ASSERT_TRUE(q_.add_used(mem_, chain_.head(), 10).has_value());
  auto used = drv_.pop_used();
  ASSERT_TRUE(used.has_value());
  EXPECT_EQ(used->id, 0u);
  EXPECT_EQ(used->len, 10u);
}

TEST_F(SplitQueueTest, IndirectTableIsFollowed) {
  const uint64_t table = buf(10);
  drv_.write_descriptor(table, 0, {buf(0), 24, VIRTQ_DESC_F_NEXT, 1});
  drv_.write_descriptor(table, 1, {buf(1), 10, VIRTQ_DESC_F_WRITE, 0});
  drv_.write_descriptor(3, {table, 32, VIRTQ_DESC_F_INDIRECT, 0});
  drv_.publish(3);
  ASSERT_EQ(pop_error(), std::nullopt);
  EXPECT_EQ(chain_.head(), 3);
  EXPECT_EQ(chain_.buffers().size(), 2u);
}

struct Malformed {
  const char* name;
  std::vector<std::pair<uint16_t, Descriptor>> descs;  // in the ring's table
  uint16_t head;
  QueueError expected;
  std::vector<Descriptor> indirect = {};  // written at buf(10)
};

void PrintTo(const Malformed& m, std::ostream* os) {
  *os << m.name;
}

class MalformedChainTest : public SplitQueueTest,
                           public ::testing::WithParamInterface<Malformed> {};

TEST_P(MalformedChainTest, IsRefusedConsumedAndDetached) {
  const Malformed& m = GetParam();
  for (const auto& [i, d] : m.descs)
    drv_.write_descriptor(i, d);
  for (std::size_t i = 0; i < m.indirect.size(); ++i) {
    drv_.write_descriptor(buf(10), static_cast<uint16_t>(i), m.indirect[i]);
  }
  drv_.publish(m.head);
  EXPECT_EQ(pop_error(), m.expected) << m.name;
  EXPECT_EQ(q_.popped(), 1u);
  EXPECT_EQ(q_.detached(), 1u);
  EXPECT_EQ(drv_.device_used_idx(), 0u);
}

constexpr uint64_t B0 = 2 * kMiB, B1 = 2 * kMiB + 4096, TBL = 2 * kMiB + 40960;
constexpr uint16_t N = VIRTQ_DESC_F_NEXT, WR = VIRTQ_DESC_F_WRITE, IND = VIRTQ_DESC_F_INDIRECT;

INSTANTIATE_TEST_SUITE_P(
    Chains, MalformedChainTest,
    ::testing::Values(
        Malformed{
            "LoopOfTwo", {{0, {B0, 12, N, 1}}, {1, {B1, 12, N, 0}}}, 0, QueueError::ChainTooLong},
        Malformed{"SelfLoop", {{0, {B0, 24, N, 0}}}, 0, QueueError::ChainTooLong},
        Malformed{"HeadOutOfRange", {}, 16, QueueError::HeadOutOfRange},
        Malformed{"NextOutOfRange", {{0, {B0, 24, N, 16}}}, 0, QueueError::NextOutOfRange},
        Malformed{
            "BufferOutsideMemory", {{0, {64 * kMiB, 24, 0, 0}}}, 0, QueueError::BufferOutOfMemory},
        Malformed{"BufferWrapsAround",
                  {{0, {~uint64_t{0} - 8, 24, 0, 0}}},
                  0,
                  QueueError::BufferOutOfMemory},
        Malformed{"ZeroLength", {{0, {B0, 0, 0, 0}}}, 0, QueueError::ZeroLengthDescriptor},
        Malformed{"ReadableAfterWritable",
                  {{0, {B1, 10, N | WR, 1}}, {1, {B0, 24, 0, 0}}},
                  0,
                  QueueError::ReadableAfterWritable},
        Malformed{"IndirectZeroLength", {{0, {TBL, 0, IND, 0}}}, 0, QueueError::IndirectBadLength},
        Malformed{"IndirectOddLength", {{0, {TBL, 20, IND, 0}}}, 0, QueueError::IndirectBadLength},
        Malformed{
            "IndirectWithNext", {{0, {TBL, 32, IND | N, 1}}}, 0, QueueError::IndirectWithNext},
        Malformed{"IndirectNested",
                  {{0, {TBL, 32, IND, 0}}},
                  0,
                  QueueError::IndirectNested,
                  {{TBL, 32, IND, 0}}},
        Malformed{"IndirectLoop",
                  {{0, {TBL, 32, IND, 0}}},
                  0,
                  QueueError::ChainTooLong,
                  {{B0, 12, N, 1}, {B1, 12, N, 0}}},
        Malformed{"IndirectNextOutsideTable",
                  {{0, {TBL, 32, IND, 0}}},
                  0,
                  QueueError::NextOutOfRange,
                  {{B0, 24, N, 2}}},
        Malformed{"IndirectTableOutsideMemory",
                  {{0, {64 * kMiB, 32, IND, 0}}},
                  0,
                  QueueError::BufferOutOfMemory},
        Malformed{"HugeBufferOutsideMemory",
                  {{0, {0, 0xffffffff, N, 1}}, {1, {0, 0xffffffff, 0, 0}}},
                  0,
                  QueueError::BufferOutOfMemory}),
    [](const auto& p) { return std::string(p.param.name); });

TEST(SplitQueueLimitsTest, ChainOfMoreThan4GiBIsRefused) {
  // Two 4 GiB - 1 buffers in a reserved, never-touched 9 GiB region.
  GuestMemory mem;
  ASSERT_TRUE(
      mem.add_region("ram", 0, std::move(*Backing::create(BackingKind::Anonymous, 9ULL << 30)))
          .has_value());
  DriverQueue drv(mem, kBase, 16);
  SplitQueue q(16);
  q.set_desc_table(drv.desc_table());
  q.set_avail_ring(drv.avail_ring());
  q.set_used_ring(drv.used_ring());
  q.set_ready(true);
  drv.write_descriptor(0, {1ULL << 30, 0xffffffff, VIRTQ_DESC_F_NEXT, 1});
  drv.write_descriptor(1, {5ULL << 30, 0xffffffff, 0, 0});
  drv.publish(0);
  DescriptorChain chain;
  auto r = q.pop(mem, chain);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error(), QueueError::ChainTooLarge);
}

// Linux builds indirect tables longer than the queue; like QEMU we take up to 1024 entries.
TEST_F(SplitQueueTest, IndirectTableLongerThanTheQueueIsFine) {
  const uint64_t table = buf(100);
  const uint16_t n = 20;  // the queue has 16 entries
  for (uint16_t i = 0; i < n; ++i) {
    const bool last = i + 1 == n;
    drv_.write_descriptor(
        table, i,
        {buf(i), 8, static_cast<uint16_t>(last ? VIRTQ_DESC_F_WRITE : VIRTQ_DESC_F_NEXT),
         static_cast<uint16_t>(i + 1)});
  }
  drv_.write_descriptor(0, {table, n * 16u, VIRTQ_DESC_F_INDIRECT, 0});
  drv_.publish(0);
  ASSERT_EQ(pop_error(), std::nullopt);
  EXPECT_EQ(chain_.buffers().size(), n);
}

TEST_F(SplitQueueTest, IndirectChainOfMoreThan1024IsRefused) {
  const uint64_t table = 3 * kMiB;
  for (uint16_t i = 0; i < 1100; ++i) {
    drv_.write_descriptor(table, i, {buf(0), 8, VIRTQ_DESC_F_NEXT, static_cast<uint16_t>(i + 1)});
  }
  drv_.write_descriptor(0, {table, 1100 * 16u, VIRTQ_DESC_F_INDIRECT, 0});
  drv_.publish(0);
  EXPECT_EQ(pop_error(), QueueError::ChainTooLong);
}

TEST_F(SplitQueueTest, AvailEventReportsChainsThatRaced) {
  q_.set_event_idx(true);
  q_.publish_avail_event(mem_);
  EXPECT_FALSE(q_.publish_avail_event(mem_)) << "nothing new";
  drv_.write_descriptor(0, {buf(0), 24, VIRTQ_DESC_F_NEXT, 1});
  drv_.write_descriptor(1, {buf(1), 10, VIRTQ_DESC_F_WRITE, 0});
  drv_.publish(0);  // as if the driver added it after the device's last look
  EXPECT_TRUE(q_.publish_avail_event(mem_));
}

TEST_F(SplitQueueTest, IndirectNeedsTheFeature) {
  q_.set_indirect(false);
  drv_.write_descriptor(0, {buf(10), 32, VIRTQ_DESC_F_INDIRECT, 0});
  drv_.publish(0);
  EXPECT_EQ(pop_error(), QueueError::IndirectNotNegotiated);
}

TEST_F(SplitQueueTest, AvailIndexTooFarAheadIsAnError) {
  drv_.set_avail_idx(17);
  EXPECT_EQ(pop_error(), QueueError::AvailIndexTooFar);
}

TEST_F(SplitQueueTest, LayoutChecks) {
  SplitQueue q(128);
  q.set_size(12);
  EXPECT_EQ(q.check_layout(mem_).error(), QueueError::BadQueueSize);
  q.set_size(256);
  EXPECT_EQ(q.check_layout(mem_).error(), QueueError::BadQueueSize);
  q.set_size(16);
  q.set_desc_table(8);
  EXPECT_EQ(q.check_layout(mem_).error(), QueueError::RingMisaligned);
  q.set_desc_table(64 * kMiB);
  EXPECT_EQ(q.check_layout(mem_).error(), QueueError::RingOutOfMemory);
}

TEST_F(SplitQueueTest, NoInterruptFlagSuppressesNotification) {
  drv_.write_descriptor(0, {buf(0), 24, VIRTQ_DESC_F_NEXT, 1});
  drv_.write_descriptor(1, {buf(1), 10, VIRTQ_DESC_F_WRITE, 0});
  drv_.publish(0);
  ASSERT_EQ(pop_error(), std::nullopt);
  ASSERT_TRUE(q_.add_used(mem_, 0, 10).has_value());
  EXPECT_TRUE(q_.should_notify(mem_));
  drv_.set_avail_flags(VIRTQ_AVAIL_F_NO_INTERRUPT);
  EXPECT_FALSE(q_.should_notify(mem_));
}

TEST_F(SplitQueueTest, EventIdxNotifiesOnlyWhenUsedEventIsPassed) {
  q_.set_event_idx(true);
  drv_.write_descriptor(0, {buf(0), 24, VIRTQ_DESC_F_NEXT, 1});
  drv_.write_descriptor(1, {buf(1), 10, VIRTQ_DESC_F_WRITE, 0});
  // The driver asks to be told only when the used index passes 2.
  drv_.set_used_event(2);
  for (int i = 0; i < 4; ++i) {
    drv_.publish(0);
    ASSERT_EQ(pop_error(), std::nullopt);
    ASSERT_TRUE(q_.add_used(mem_, 0, 10).has_value());
    const bool notify = q_.should_notify(mem_);
    // First call always notifies; then only when used idx goes from 2 to 3.
    EXPECT_EQ(notify, i == 0 || i == 2) << "after used element " << i;
  }
  q_.publish_avail_event(mem_);
  EXPECT_EQ(drv_.avail_event(), 4);
}

}  // namespace
}  // namespace vmem
