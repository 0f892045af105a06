// The trace format (decisions D7): parsing with clear errors, replay on the reference with its
// observations checked, recording, and the round trip through text.
#include "reference/trace/trace.h"

#include <gtest/gtest.h>

#include "reference/mem/wire.h"

namespace vmem {
namespace {

constexpr const char* kScenario = R"(vmemtrace 1
# A plug, a partial unplug, a resize and the state around them.
device profile=spec addr=0x100000000 region_size=0x40000000 block_size=0x200000 requested_size=0x8000000
init -> status=0xf
request plug addr=0x100000000 nb=4 -> ack used_len=10
request plug addr=0x100000000 nb=1 -> error
request state addr=0x100000000 nb=8 -> ack state=mixed
request unplug addr=0x100200000 nb=2 shape=8,8,8/10 -> ack
config -> plugged_size=0x400000 usable_region_size=0x18000000
isr -> isr=0x1
host resize 0x10000000 -> ok
isr -> isr=0x2
host resize 0x10000001 -> error
config -> requested_size=0x10000000 usable_region_size=0x20000000
request unplug_all addr=0x1234 pad=0xffffffffffff -> ack
config -> plugged_size=0x0
request 7 -> no_response needs_reset
status -> status=0x4f
)";

TEST(TraceTest, ScenarioReplaysWithEveryObservationChecked) {
  auto t = parse_trace(kScenario);
  ASSERT_TRUE(t.has_value()) << t.error().message;
  EXPECT_EQ(t->ops.size(), 15u);
  const ReplayReport r = replay_trace(*t);
  EXPECT_FALSE(r.error) << *r.error;
  EXPECT_FALSE(r.mismatch) << "line " << r.mismatch->line << ": expected " << r.mismatch->expected
                           << ", observed " << r.mismatch->observed;
  EXPECT_EQ(r.steps, 15);
}

// The one spelling of a request and its answer, which every trace writer uses and the replayer
// reads back.
TEST(TraceTest, RequestsAndAnswersAreSpelledOnce) {
  EXPECT_EQ(format_request(VIRTIO_MEM_REQ_UNPLUG_ALL, 0, 0), "request unplug_all addr=0x0 nb=0");
  EXPECT_EQ(format_request(9, 0x100000000, 65535), "request 9 addr=0x100000000 nb=65535");
  EXPECT_EQ(format_answer(VIRTIO_MEM_REQ_PLUG, VIRTIO_MEM_RESP_NACK, 0), "nack");
  EXPECT_EQ(format_answer(VIRTIO_MEM_REQ_STATE, VIRTIO_MEM_RESP_ACK, VIRTIO_MEM_STATE_MIXED),
            "ack state=mixed");
  EXPECT_EQ(format_answer(VIRTIO_MEM_REQ_STATE, VIRTIO_MEM_RESP_ACK, 7), "ack");
  EXPECT_EQ(format_answer(VIRTIO_MEM_REQ_STATE, VIRTIO_MEM_RESP_BUSY, VIRTIO_MEM_STATE_PLUGGED),
            "busy");
  EXPECT_EQ(format_answer(VIRTIO_MEM_REQ_PLUG, 4, 0), "4");
}

TEST(TraceTest, WrongObservationIsReportedWithItsLine) {
  std::string text = kScenario;
  text.replace(text.find("nb=8 -> ack state=mixed"), 23, "nb=8 -> ack state=plugged");
  auto t = parse_trace(text);
  ASSERT_TRUE(t.has_value());
  const ReplayReport r = replay_trace(*t);
  ASSERT_TRUE(r.mismatch);
  EXPECT_EQ(r.mismatch->line, 7);
  EXPECT_EQ(r.mismatch->expected, "ack state=plugged");
  EXPECT_EQ(r.mismatch->observed, "ack state=mixed used_len=10");
  EXPECT_EQ(r.steps, 4);
}

TEST(TraceTest, RecordingFillsObservationsAndRoundTrips) {
  auto t = parse_trace(R"(vmemtrace 1
device profile=qemu-7.2 region_size=0x40000000 requested_size=0x4000000
init
request plug addr=0x100000000 nb=64
request plug addr=0x100000000 nb=33
host busy on
request unplug_all
config
)");
  ASSERT_TRUE(t.has_value()) << t.error().message;
  const ReplayReport first = replay_trace(*t);
  ASSERT_TRUE(first.ok());
  const std::string text = format_trace(first.recorded);
  EXPECT_NE(text.find("request plug addr=0x100000000 nb=33 -> nack"), std::string::npos) << text;
  EXPECT_NE(text.find("request unplug_all -> busy"), std::string::npos) << text;
  auto again = parse_trace(text);
  ASSERT_TRUE(again.has_value()) << again.error().message;
  EXPECT_EQ(format_trace(*again), text);
  EXPECT_TRUE(replay_trace(*again).ok());
}

TEST(TraceTest, RegistersOverPciAndMmio) {
  auto pci = parse_trace(R"(vmemtrace 1
device transport=pci
reg pcicfg read 0x0 4 -> value=0x10581af4
reg pci read 0x2000 8 -> value=0x200000
reg pci write 0x14 1 0x3 -> ok
reg pci read 0x14 1 -> value=0x3
)");
  ASSERT_TRUE(pci.has_value()) << pci.error().message;
  EXPECT_TRUE(replay_trace(*pci).ok());
  auto mmio = parse_trace(R"(vmemtrace 1
device transport=mmio
reg mmio read 0x0 4 -> value=0x74726976
reg mmio read 0x8 4 -> value=0x18
reg mmio read 0x100 8 -> value=0x200000
)");
  ASSERT_TRUE(mmio.has_value());
  EXPECT_TRUE(replay_trace(*mmio).ok());
}

TEST(TraceTest, MigrationCarriesStateAndMemory) {
  auto t = parse_trace(R"(vmemtrace 1
device region_size=0x40000000 requested_size=0x8000000
init -> status=0xf
request plug addr=0x100000000 nb=2 -> ack
memwrite 0x100000010 deadbeef -> ok
migrate -> ok
status -> status=0xf
memread 0x100000010 4 -> deadbeef
request state addr=0x100000000 nb=2 -> ack state=plugged
request unplug addr=0x100000000 nb=1 -> ack
config -> plugged_size=0x200000
load 00 -> error
)");
  ASSERT_TRUE(t.has_value()) << t.error().message;
  const ReplayReport r = replay_trace(*t);
  EXPECT_TRUE(r.ok()) << (r.error ? *r.error : r.mismatch->expected + " / " + r.mismatch->observed);
}

struct BadTrace {
  const char* name;
  const char* text;
  const char* message;  // a part of the error
};

void PrintTo(const BadTrace& b, std::ostream* os) {
  *os << b.name;
}

class BadTraceTest : public ::testing::TestWithParam<BadTrace> {};

TEST_P(BadTraceTest, IsRejectedWithALineNumber) {
  auto t = parse_trace(GetParam().text);
  std::string message;
  if (t.has_value()) {
    const ReplayReport r = replay_trace(*t);
    ASSERT_TRUE(r.error) << "replayed a bad trace";
    message = *r.error;
  } else {
    message = t.error().message;
  }
  EXPECT_NE(message.find(GetParam().message), std::string::npos) << message;
}

INSTANTIATE_TEST_SUITE_P(
    Traces, BadTraceTest,
    ::testing::Values(
        BadTrace{"Empty", "", "empty trace"}, BadTrace{"NoHeader", "device\n", "line 1"},
        BadTrace{"FutureVersion", "vmemtrace 2\n", "version 2"},
        BadTrace{"UnknownOption", "vmemtrace 1\ndevice colour=blue\n",
                 "line 2: unknown device option"},
        BadTrace{"DeviceLate", "vmemtrace 1\nstatus\ndevice\n", "line 3"},
        BadTrace{"TwoArrows", "vmemtrace 1\nstatus -> a -> b\n", "line 2: two '->'"},
        BadTrace{"UnknownOp", "vmemtrace 1\n\nfrobnicate\n", "line 3: unknown operation"},
        BadTrace{"BadNumber", "vmemtrace 1\nhost resize 12abc\n", "line 2"},
        BadTrace{"BadGeometry", "vmemtrace 1\ndevice block_size=0x1234\n", "block-size"},
        BadTrace{"RegWithoutTransport", "vmemtrace 1\nreg pci read 0 4\n", "not pci"}),
    [](const auto& p) { return std::string(p.param.name); });

}  // namespace
}  // namespace vmem
