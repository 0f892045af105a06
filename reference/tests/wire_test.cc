#include "reference/mem/wire.h"

#include <gtest/gtest.h>

namespace vmem {
namespace {

TEST(WireTest, SizesAreTheSpecs) {
  EXPECT_EQ(kRequestSize, 24u);
  EXPECT_EQ(kResponseSize, 10u);
  EXPECT_EQ(kConfigSize, 56u);
}

TEST(WireTest, RequestFieldsSitAtTheirOffsets) {
  WireRequest r;
  r.type = 0x0102;
  r.padding = {0x1111, 0x2222, 0x3333};
  r.addr = 0x0807060504030201ULL;
  r.nb_blocks = 0xfffe;
  r.payload_padding = {0x4444, 0x5555, 0x6666};
  const auto b = encode_request(r);
  EXPECT_EQ(b[0], 0x02);
  EXPECT_EQ(b[1], 0x01);
  EXPECT_EQ(b[2], 0x11);
  EXPECT_EQ(b[8], 0x01);
  EXPECT_EQ(b[15], 0x08);
  EXPECT_EQ(b[16], 0xfe);
  EXPECT_EQ(b[17], 0xff);
  EXPECT_EQ(b[18], 0x44);
  EXPECT_EQ(b[23], 0x66);
  EXPECT_EQ(decode_request(b), r);
}

TEST(WireTest, ResponseStateIsAtByteEight) {
  WireResponse r{VIRTIO_MEM_RESP_ACK, {}, VIRTIO_MEM_STATE_MIXED};
  const auto b = encode_response(r);
  EXPECT_EQ(b[8], 2);
  EXPECT_EQ(b[9], 0);
  EXPECT_EQ(decode_response(b), r);
}

TEST(WireTest, ConfigFieldsSitAtTheirOffsets) {
  WireConfig c;
  c.block_size = 0x200000;
  c.node_id = 0x0302;
  c.addr = 0x100000000ULL;
  c.region_size = 0x40000000;
  c.usable_region_size = 0x18000000;
  c.plugged_size = 0x4000000;
  c.requested_size = 0x8000000;
  const auto b = encode_config(c);
  EXPECT_EQ(load_le<uint64_t>(&b[0]), c.block_size);
  EXPECT_EQ(load_le<uint16_t>(&b[8]), c.node_id);
  EXPECT_EQ(load_le<uint64_t>(&b[16]), c.addr);
  EXPECT_EQ(load_le<uint64_t>(&b[24]), c.region_size);
  EXPECT_EQ(load_le<uint64_t>(&b[32]), c.usable_region_size);
  EXPECT_EQ(load_le<uint64_t>(&b[40]), c.plugged_size);
  EXPECT_EQ(load_le<uint64_t>(&b[48]), c.requested_size);
  EXPECT_EQ(decode_config(b), c);
}

}  // namespace
}  // namespace vmem
