// The suite's shadow model agrees with one bit per block on random acknowledged requests, and a
// region of 2^28 blocks (the most the suite models) costs it no more than the requests it saw.
#include "conformance/suite/shadow.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

namespace vmem::conformance {
namespace {

constexpr uint64_t kAddr = 1ULL << 32;
constexpr uint64_t kBlock = 2ULL << 20;

WireConfig config(uint64_t blocks) {
  WireConfig c{};
  c.addr = kAddr;
  c.block_size = kBlock;
  c.region_size = blocks * kBlock;
  return c;
}

WireRequest request(uint16_t type, uint64_t first, uint16_t n) {
  WireRequest r{};
  r.type = type;
  r.addr = kAddr + first * kBlock;
  r.nb_blocks = n;
  return r;
}

WireResponse answer(uint16_t type) {
  WireResponse r{};
  r.type = type;
  return r;
}

TEST(ShadowTest, AgreesWithOneBitPerBlockOnRandomAcknowledgedRequests) {
  constexpr uint64_t kBlocks = 300;
  std::mt19937_64 rng(7);
  Shadow s(config(kBlocks));
  std::vector<bool> naive(kBlocks, false);
  for (int step = 0; step < 20000; ++step) {
    const uint64_t first = rng() % (kBlocks + 2);
    const auto n = static_cast<uint16_t>(rng() % 40);
    const uint16_t type = rng() % 50 == 0  ? VIRTIO_MEM_REQ_UNPLUG_ALL
                          : rng() % 2 == 0 ? VIRTIO_MEM_REQ_PLUG
                                           : VIRTIO_MEM_REQ_UNPLUG;
    const uint16_t resp = rng() % 5 == 0 ? VIRTIO_MEM_RESP_ERROR : VIRTIO_MEM_RESP_ACK;
    s.apply(request(type, first, n), answer(resp));
    if (resp == VIRTIO_MEM_RESP_ACK) {
      if (type == VIRTIO_MEM_REQ_UNPLUG_ALL) {
        naive.assign(kBlocks, false);
      } else if (first + n <= kBlocks) {
        for (uint64_t b = first; b < first + n; ++b)
          naive[b] = type == VIRTIO_MEM_REQ_PLUG;
      }
    }

    uint64_t count = 0;
    for (uint64_t b = 0; b < kBlocks; ++b) {
      ASSERT_EQ(s.plugged(b), naive[b]) << "block " << b << " after step " << step;
      count += naive[b] ? 1 : 0;
    }
    ASSERT_EQ(s.plugged_count(), count) << "after step " << step;
    const uint64_t at = rng() % kBlocks;
    const uint64_t len = 1 + rng() % (kBlocks - at);
    uint64_t on = 0;
    for (uint64_t b = at; b < at + len; ++b)
      on += naive[b] ? 1 : 0;
    const BlockState want = on == 0     ? BlockState::Unplugged
                            : on == len ? BlockState::Plugged
                                        : BlockState::Mixed;
    ASSERT_EQ(s.state(at, len), want) << at << "+" << len << " after step " << step;
  }
}

TEST(ShadowTest, ARangePastTheRegionIsNeverFullyPlugged) {
  Shadow s(config(8));
  s.apply(request(VIRTIO_MEM_REQ_PLUG, 4, 4), answer(VIRTIO_MEM_RESP_ACK));
  EXPECT_EQ(s.state(4, 4), BlockState::Plugged);
  EXPECT_EQ(s.state(4, 5), BlockState::Mixed);
  EXPECT_EQ(s.state(8, 3), BlockState::Unplugged);
  // An ACK for blocks outside the region teaches the model nothing.
  s.apply(request(VIRTIO_MEM_REQ_PLUG, 6, 3), answer(VIRTIO_MEM_RESP_ACK));
  EXPECT_EQ(s.plugged_count(), 4u);
}

TEST(ShadowTest, TheLargestModelledRegionKeepsExactCountsAtItsEnds) {
  constexpr uint64_t kBlocks = 1ULL << 28;
  Shadow s(config(kBlocks));
  EXPECT_EQ(s.blocks(), kBlocks);
  s.apply(request(VIRTIO_MEM_REQ_PLUG, kBlocks - 0xffff, 0xffff), answer(VIRTIO_MEM_RESP_ACK));
  s.apply(request(VIRTIO_MEM_REQ_PLUG, 0, 0xffff), answer(VIRTIO_MEM_RESP_ACK));
  s.apply(request(VIRTIO_MEM_REQ_UNPLUG, 10, 1), answer(VIRTIO_MEM_RESP_ACK));
  EXPECT_EQ(s.plugged_count(), 2 * 0xffffULL - 1);
  EXPECT_EQ(s.state(kBlocks - 0xffff, 0xffff), BlockState::Plugged);
  EXPECT_EQ(s.state(0, 10), BlockState::Plugged);
  EXPECT_EQ(s.state(0, 11), BlockState::Mixed);
  EXPECT_EQ(s.state(0x10000, 0xffff), BlockState::Unplugged);
  EXPECT_FALSE(s.plugged(10));
  EXPECT_TRUE(s.plugged(kBlocks - 1));
  s.unplug_all();
  EXPECT_EQ(s.plugged_count(), 0u);
  EXPECT_EQ(s.state(kBlocks - 0xffff, 0xffff), BlockState::Unplugged);
}

}  // namespace
}  // namespace vmem::conformance
