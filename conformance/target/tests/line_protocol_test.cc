// LineChannel, QtestBus and QmpClient against a scripted peer on a socketpair (or pipes), the
// QEMU launcher against binaries that are not QEMU, and the command lines QemuTarget builds.
// Nothing here starts QEMU.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <future>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "conformance/target/line_channel.h"
#include "conformance/target/qemu_process.h"
#include "conformance/target/qemu_target.h"
#include "conformance/target/qmp_client.h"
#include "conformance/target/qtest_bus.h"

namespace vmem::conformance {
namespace {

using std::chrono::milliseconds;
using ::testing::HasSubstr;

// The far end of a connection, run by a thread: reads lines, writes raw text.
class PeerEnd {
 public:
  PeerEnd(int read_fd, int write_fd) : read_fd_(read_fd), write_fd_(write_fd) {
    // A broken test must not hang the suite.
    timeval tv{5, 0};
    setsockopt(read_fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }

  std::optional<std::string> read_line() {
    for (;;) {
      if (const auto nl = buf_.find('\n'); nl != std::string::npos) {
        std::string line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        received.push_back(line);
        return line;
      }
      char chunk[65536];
      const ssize_t n = ::read(read_fd_, chunk, sizeof chunk);
      if (n <= 0) return std::nullopt;
      buf_.append(chunk, static_cast<std::size_t>(n));
    }
  }

  void write(std::string_view text) {
    std::size_t done = 0;
    while (done < text.size()) {
      const ssize_t n = ::send(write_fd_, text.data() + done, text.size() - done, MSG_NOSIGNAL);
      if (n <= 0) return;
      done += static_cast<std::size_t>(n);
    }
  }

  void close_all() {
    if (read_fd_ >= 0) ::close(read_fd_);
    if (write_fd_ >= 0 && write_fd_ != read_fd_) ::close(write_fd_);
    read_fd_ = write_fd_ = -1;
  }

  std::vector<std::string> received;

 private:
  int read_fd_;
  int write_fd_;
  std::string buf_;
};

// A socketpair with a scripted peer thread; the channel gets the other end.
class FakePeer {
 public:
  explicit FakePeer(std::function<void(PeerEnd&)> script) {
    int fds[2];
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
    client_fd_ = fds[0];
    peer_ = std::make_unique<PeerEnd>(fds[1], fds[1]);
    thread_ = std::thread([this, script = std::move(script)] { script(*peer_); });
  }
  ~FakePeer() { join(); }

  int client_fd() const { return client_fd_; }
  void join() {
    if (thread_.joinable()) thread_.join();
    if (peer_) peer_->close_all();
  }
  // What the peer received; call after join().
  const std::vector<std::string>& received() const { return peer_->received; }

 private:
  int client_fd_ = -1;
  std::unique_ptr<PeerEnd> peer_;
  std::thread thread_;
};

// A peer that answers each line from a table (exact match), "FAIL ..." otherwise, until EOF.
std::function<void(PeerEnd&)> answering(std::vector<std::pair<std::string, std::string>> table) {
  return [table = std::move(table)](PeerEnd& p) {
    while (auto line = p.read_line()) {
      const auto it =
          std::find_if(table.begin(), table.end(), [&](const auto& e) { return e.first == *line; });
      p.write(it != table.end() ? it->second : "FAIL Unknown command '" + *line + "'\n");
    }
  };
}

LineChannel::Options quick(std::string name = "qtest") {
  LineChannel::Options o;
  o.timeout = milliseconds(2000);
  o.name = std::move(name);
  return o;
}

// --- LineChannel -------------------------------------------------------------------------------

TEST(LineChannelTest, CallReturnsTheReplyAndRecordsTheTranscript) {
  FakePeer peer(answering({{"inb 0x80", "OK 0x00ff\n"}, {"endianness", "OK little\r\n"}}));
  auto o = quick();
  o.transcript_prefix = "t ";
  o.record_replies = true;
  LineChannel ch(peer.client_fd(), peer.client_fd(), o);
  auto r = ch.call("inb 0x80");
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(*r, "OK 0x00ff");
  auto e = ch.call("endianness");
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(*e, "OK little");  // "\r\n" is a line end too (QMP)
  EXPECT_EQ(ch.take_transcript(), (std::vector<std::string>{"t inb 0x80", "# < OK 0x00ff",
                                                            "t endianness", "# < OK little"}));
  EXPECT_TRUE(ch.take_transcript().empty());
}

TEST(LineChannelTest, AsynchronousLinesBeforeTheReplyGoToTheHandler) {
  FakePeer peer(
      answering({{"writel 0xe0003000 0x0", "IRQ raise 21\nIRQ lower 21\nIRQ raise 21\nOK\n"}}));
  LineChannel ch(peer.client_fd(), peer.client_fd(), quick());
  std::vector<std::string> async;
  ch.on_async([&](std::string_view l) {
    if (!l.starts_with("IRQ ")) return false;
    async.emplace_back(l);
    return true;
  });
  auto r = ch.call("writel 0xe0003000 0x0");
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(*r, "OK");
  EXPECT_EQ(async, (std::vector<std::string>{"IRQ raise 21", "IRQ lower 21", "IRQ raise 21"}));
}

TEST(LineChannelTest, SilentPeerTimesOutAndBreaksTheChannel) {
  std::promise<void> release;
  auto released = release.get_future();
  FakePeer peer([&](PeerEnd& p) {
    p.read_line();
    released.wait();  // never answers
  });
  auto o = quick();
  o.timeout = milliseconds(200);
  LineChannel ch(peer.client_fd(), peer.client_fd(), o);
  const auto t0 = std::chrono::steady_clock::now();
  auto r = ch.call("readl 0x1000");
  const auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_FALSE(r.has_value());
  EXPECT_THAT(r.error().message, HasSubstr("no reply within 200 ms"));
  EXPECT_THAT(r.error().message, HasSubstr("readl 0x1000"));
  EXPECT_GE(took, milliseconds(190));
  EXPECT_LT(took, milliseconds(2000));
  EXPECT_FALSE(ch.healthy());
  // A late reply must never be taken for the answer to the next call.
  auto again = ch.call("readl 0x2000");
  ASSERT_FALSE(again.has_value());
  EXPECT_THAT(again.error().message, HasSubstr("no reply within 200 ms"));
  release.set_value();
}

TEST(LineChannelTest, ClosedPeerIsAnError) {
  FakePeer peer([](PeerEnd& p) {
    p.read_line();
    p.write("OK 0x");  // half a line, then gone
    p.close_all();
  });
  LineChannel ch(peer.client_fd(), peer.client_fd(), quick());
  auto r = ch.call("inl 0xcfc");
  ASSERT_FALSE(r.has_value());
  EXPECT_THAT(r.error().message, HasSubstr("closed the connection"));
  EXPECT_THAT(r.error().message, HasSubstr("unfinished line"));
}

TEST(LineChannelTest, OverlongLineIsAnError) {
  FakePeer peer([](PeerEnd& p) {
    p.read_line();
    p.write(std::string(4096, 'A'));
    p.read_line();  // hold the connection open until the channel gives up
  });
  auto o = quick();
  o.max_line = 1024;
  auto ch = std::make_unique<LineChannel>(peer.client_fd(), peer.client_fd(), o);
  auto r = ch->call("b64read 0x0 4096");
  ASSERT_FALSE(r.has_value());
  EXPECT_THAT(r.error().message, HasSubstr("longer than 1024 bytes"));
  ch.reset();  // closes the socket, which ends the peer's read
}

TEST(LineChannelTest, RefusesLinesWithLineBreaks) {
  FakePeer peer(answering({}));
  LineChannel ch(peer.client_fd(), peer.client_fd(), quick());
  auto r = ch.call("outb 0x80 0x1\noutb 0x80 0x2");
  ASSERT_FALSE(r.has_value());
  EXPECT_THAT(r.error().message, HasSubstr("line break"));
  EXPECT_TRUE(ch.healthy());
}

TEST(LineChannelTest, PipelineReadsEveryReplyAndNamesTheFirstFailure) {
  FakePeer peer(answering({{"writeb 0x0 0x1", "OK\n"},
                           {"writeb 0x1 0x2", "IRQ raise 3\nOK\n"},
                           {"endianness", "OK little\n"}}));
  LineChannel ch(peer.client_fd(), peer.client_fd(), quick());
  ch.on_async([](std::string_view l) { return l.starts_with("IRQ "); });
  const std::vector<std::string> good = {"writeb 0x0 0x1", "writeb 0x1 0x2", "writeb 0x0 0x1"};
  auto r = ch.pipeline(good);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  const std::vector<std::string> bad = {"writeb 0x0 0x1", "bogus", "writeb 0x1 0x2"};
  auto b = ch.pipeline(bad);
  ASSERT_FALSE(b.has_value());
  EXPECT_THAT(b.error().message, HasSubstr("'bogus' was answered 'FAIL Unknown command"));
  EXPECT_THAT(b.error().message, HasSubstr("line 2 of a pipeline of 3"));
  // Every reply was read, so the next call gets its own.
  EXPECT_TRUE(ch.healthy());
  auto e = ch.call("endianness");
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(*e, "OK little");
}

TEST(LineChannelTest, LongPipelineDoesNotDeadlockOnRepliesWrittenMeanwhile) {
  // 200k replies (600 KB) overflow the socket buffers: the channel must read while it writes.
  constexpr int kLines = 200000;
  FakePeer peer([](PeerEnd& p) {
    while (p.read_line())
      p.write("OK\n");
  });
  LineChannel ch(peer.client_fd(), peer.client_fd(), quick());
  std::vector<std::string> lines(kLines, "writel 0x100000 0x12345678");
  auto r = ch.pipeline(lines);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(ch.take_transcript().size(), static_cast<std::size_t>(kLines));
}

TEST(LineChannelTest, PipeWhoseReaderIsGoneIsAnErrorNotASigpipe) {
  int to_peer[2];
  int from_peer[2];
  ASSERT_EQ(pipe2(to_peer, O_CLOEXEC), 0);
  ASSERT_EQ(pipe2(from_peer, O_CLOEXEC), 0);
  ::close(to_peer[0]);  // the peer will never read
  LineChannel ch(from_peer[0], to_peer[1], quick("adapter"));
  auto r = ch.call("start");
  ASSERT_FALSE(r.has_value());
  EXPECT_THAT(r.error().message, HasSubstr("adapter: the peer closed the connection"));
  ::close(from_peer[1]);
}

TEST(LineChannelTest, WaitUntilAndDrainHandleUnpromptedLines) {
  std::promise<void> sent;
  auto sent_future = sent.get_future();
  std::promise<void> finish;
  auto finish_future = finish.get_future();
  FakePeer peer([&](PeerEnd& p) {
    p.write("IRQ raise 7\n");
    sent.set_value();
    p.read_line();  // the signal to send a stray reply
    p.write("OK\n");
    finish_future.wait();
  });
  LineChannel ch(peer.client_fd(), peer.client_fd(), quick());
  int raised = 0;
  ch.on_async([&](std::string_view l) {
    if (l != "IRQ raise 7") return false;
    ++raised;
    return true;
  });
  sent_future.wait();
  auto w = ch.wait_until([&] { return raised == 1; }, milliseconds(2000));
  ASSERT_TRUE(w.has_value());
  EXPECT_TRUE(*w);
  auto expired = ch.wait_until([] { return false; }, milliseconds(50));
  ASSERT_TRUE(expired.has_value());
  EXPECT_FALSE(*expired);
  EXPECT_TRUE(ch.healthy());  // an expired wait is not an error
  ASSERT_TRUE(ch.send("go").has_value());
  // A reply when nothing was asked means the two sides are out of step.
  auto stray = ch.wait_until([] { return false; }, milliseconds(2000));
  ASSERT_FALSE(stray.has_value());
  EXPECT_THAT(stray.error().message, HasSubstr("when nothing was asked"));
  finish.set_value();
}

// --- QtestBus ----------------------------------------------------------------------------------

TEST(QtestBusTest, ParsesValuesAndTracksInterruptLines) {
  FakePeer peer(answering({
      {"inb 0x80", "OK 0x00ff\n"},
      {"inl 0xcfc", "OK 0x10581af4\n"},
      {"readq 0x100000", "IRQ raise 21\nOK 0x0123456789abcdef\n"},
      {"readw 0x100000", "IRQ lower 21\nOK 0x000000000000beef\n"},
      {"outl 0xcf8 0x80000800", "OK\n"},
      {"writeq 0x100000 0xffffffffffffffff", "OK\n"},
      {"irq_intercept_in ioapic", "OK\n"},
  }));
  LineChannel ch(peer.client_fd(), peer.client_fd(), quick());
  QtestBus bus(ch);
  ASSERT_TRUE(bus.intercept_irqs("ioapic").has_value());
  EXPECT_EQ(bus.io_read(0x80, 1).value(), 0xffu);
  EXPECT_EQ(bus.io_read(0xcfc, 4).value(), 0x10581af4u);
  ASSERT_TRUE(bus.io_write(0xcf8, 4, 0x80000800).has_value());
  EXPECT_FALSE(bus.irq_level(21));
  EXPECT_EQ(bus.mmio_read(0x100000, 8).value(), 0x0123456789abcdefULL);
  EXPECT_TRUE(bus.irq_level(21));
  EXPECT_EQ(bus.mmio_read(0x100000, 2).value(), 0xbeefu);
  EXPECT_FALSE(bus.irq_level(21));
  EXPECT_EQ(bus.irq_raises(21), 1u);
  ASSERT_TRUE(bus.mmio_write(0x100000, 8, ~0ULL).has_value());
}

TEST(QtestBusTest, RejectsFailuresAndGarbage) {
  FakePeer peer(answering({
      {"inb 0x80", "OK 0x1ff\n"},                   // more than a byte
      {"inw 0x80", "OK 0xzz\n"},                    // not hex
      {"readl 0x0", "OK 0x00000000000000000\n"},    // 17 digits
      {"readb 0x0", "OK0x00\n"},                    // no space
      {"read 0x0 4", "OK 0x010203\n"},              // 3 bytes for 4
      {"b64read 0x0 65", "OK AAAA\n"},              // 3 bytes for 65
      {"outb 0x80 0x1", "ERR invalid argument\n"},  // not OK
      {"readb 0x8", "IRQ raise x\n"},               // not a valid IRQ line: a reply, and garbage
  }));
  LineChannel ch(peer.client_fd(), peer.client_fd(), quick());
  QtestBus bus(ch);
  auto e1 = bus.io_read(0x80, 1);
  ASSERT_FALSE(e1.has_value());
  EXPECT_THAT(e1.error().message, HasSubstr("'inb 0x80' was answered 'OK 0x1ff'"));
  EXPECT_FALSE(bus.io_read(0x80, 2).has_value());
  EXPECT_FALSE(bus.mmio_read(0x0, 4).has_value());
  EXPECT_FALSE(bus.mmio_read(0x0, 1).has_value());
  std::vector<uint8_t> four(4);
  EXPECT_FALSE(bus.mem_read(0x0, four).has_value());
  std::vector<uint8_t> big(65);
  EXPECT_FALSE(bus.mem_read(0x0, big).has_value());
  auto e7 = bus.io_write(0x80, 1, 1);
  ASSERT_FALSE(e7.has_value());
  EXPECT_THAT(e7.error().message, HasSubstr("ERR invalid argument"));
  auto irq = bus.mmio_read(0x8, 1);
  ASSERT_FALSE(irq.has_value());
  EXPECT_THAT(irq.error().message, HasSubstr("was answered 'IRQ raise x'"));
  auto unknown = bus.mmio_read(0x4, 4);
  ASSERT_FALSE(unknown.has_value());
  EXPECT_THAT(unknown.error().message, HasSubstr("FAIL Unknown command 'readl 0x4'"));
  EXPECT_TRUE(ch.healthy());  // bad replies are not channel errors
}

TEST(QtestBusTest, ValidatesArgumentsBeforeSendingAnything) {
  FakePeer peer(answering({}));
  auto ch = std::make_unique<LineChannel>(peer.client_fd(), peer.client_fd(), quick());
  QtestBus bus(*ch);
  EXPECT_FALSE(bus.io_read(0x80, 3).has_value());
  EXPECT_FALSE(bus.io_read(0x80, 8).has_value());
  EXPECT_FALSE(bus.io_write(0x80, 1, 0x100).has_value());
  EXPECT_FALSE(bus.io_write(0x80, 2, 0x10000).has_value());
  EXPECT_FALSE(bus.mmio_read(0x1000, 0).has_value());
  EXPECT_FALSE(bus.mmio_write(0x1000, 4, 0x100000000ULL).has_value());
  EXPECT_FALSE(bus.mmio_read(~0ULL - 2, 8).has_value());  // wraps
  std::vector<uint8_t> two(2);
  EXPECT_FALSE(bus.mem_read(~0ULL, two).has_value());
  EXPECT_FALSE(bus.mem_fill(~0ULL - 10, 100, 0).has_value());
  EXPECT_FALSE(bus.intercept_irqs("").has_value());
  EXPECT_FALSE(bus.intercept_irqs("io apic").has_value());
  // Zero-length transfers are answered here: qtest aborts QEMU on `read ADDR 0`.
  EXPECT_TRUE(bus.mem_read(0x1000, std::span<uint8_t>()).has_value());
  EXPECT_TRUE(bus.mem_write(0x1000, std::span<const uint8_t>()).has_value());
  EXPECT_TRUE(bus.mem_fill(0x1000, 0, 0xaa).has_value());
  // The last byte of the address space is a valid range: it goes out (and this peer fails it).
  EXPECT_FALSE(bus.mem_read(~0ULL, std::span<uint8_t>(two.data(), 1)).has_value());
  ch.reset();  // EOF for the peer
  peer.join();
  EXPECT_EQ(peer.received(), (std::vector<std::string>{"read 0xffffffffffffffff 1"}));
}

TEST(QtestBusTest, TransfersUseHexForShortAndBase64ForLongBuffers) {
  std::vector<uint8_t> long_data(100);
  for (std::size_t i = 0; i < long_data.size(); ++i)
    long_data[i] = static_cast<uint8_t>(i * 7);
  const std::string long_b64 = base64_encode(long_data);
  FakePeer peer(answering({
      {"write 0x1000 4 0x01020304", "OK\n"},
      {"b64write 0x2000 100 " + long_b64, "OK\n"},
      {"read 0x1000 4", "OK 0x01020304\n"},
      {"b64read 0x2000 100", "OK " + long_b64 + "\n"},
      {"memset 0x3000 16777216 0xaa", "OK\n"},
      {"memset 0x1003000 16777216 0xaa", "OK\n"},
      {"memset 0x2003000 5 0xaa", "OK\n"},
  }));
  LineChannel ch(peer.client_fd(), peer.client_fd(), quick());
  QtestBus bus(ch);
  const std::vector<uint8_t> short_data = {1, 2, 3, 4};
  ASSERT_TRUE(bus.mem_write(0x1000, short_data).has_value());
  ASSERT_TRUE(bus.mem_write(0x2000, long_data).has_value());
  std::vector<uint8_t> back(4);
  ASSERT_TRUE(bus.mem_read(0x1000, back).has_value());
  EXPECT_EQ(back, short_data);
  std::vector<uint8_t> long_back(100);
  ASSERT_TRUE(bus.mem_read(0x2000, long_back).has_value());
  EXPECT_EQ(long_back, long_data);
  auto fill = bus.mem_fill(0x3000, 2 * QtestBus::kFillChunk + 5, 0xaa);
  ASSERT_TRUE(fill.has_value()) << fill.error().message;
}

TEST(QtestBusTest, IrqLevelNowTakesInLinesSentMeanwhile) {
  std::promise<void> sent;
  auto sent_future = sent.get_future();
  std::promise<void> finish;
  auto finish_future = finish.get_future();
  FakePeer peer([&](PeerEnd& p) {
    p.write("IRQ raise 22\n");
    sent.set_value();
    finish_future.wait();
  });
  LineChannel ch(peer.client_fd(), peer.client_fd(), quick());
  QtestBus bus(ch);
  sent_future.wait();
  std::this_thread::sleep_for(milliseconds(20));  // the line is in the socket by now
  EXPECT_FALSE(bus.irq_level(22));
  auto level = bus.irq_level_now(22);
  ASSERT_TRUE(level.has_value());
  EXPECT_TRUE(*level);
  finish.set_value();
}

TEST(Base64Test, RoundTripsAndDecodesStrictly) {
  for (std::size_t n = 0; n < 10; ++n) {
    std::vector<uint8_t> data(n);
    for (std::size_t i = 0; i < n; ++i)
      data[i] = static_cast<uint8_t>(0xf0 + i);
    auto back = base64_decode(base64_encode(data));
    ASSERT_TRUE(back.has_value());
    EXPECT_EQ(*back, data);
  }
  const std::string foobar = "foobar";
  EXPECT_EQ(base64_encode(std::span(reinterpret_cast<const uint8_t*>(foobar.data()), 6)),
            "Zm9vYmFy");
  EXPECT_EQ(base64_encode(std::span(reinterpret_cast<const uint8_t*>(foobar.data()), 4)),
            "Zm9vYg==");
  EXPECT_FALSE(base64_decode("Zm9").has_value());
  EXPECT_FALSE(base64_decode("Zm9v!A==").has_value());
  EXPECT_FALSE(base64_decode("Z===").has_value());
  EXPECT_FALSE(base64_decode("Zg==Zm9v").has_value());  // padding only at the end
  EXPECT_FALSE(base64_decode("Zg=v").has_value());
}

// --- QmpClient ---------------------------------------------------------------------------------

TEST(QmpClientTest, HandshakeCommandsErrorsAndEvents) {
  FakePeer peer([](PeerEnd& p) {
    p.write(R"({"QMP": {"version": {"qemu": {"major": 7}}, "capabilities": ["oob"]}})"
            "\r\n");
    while (auto line = p.read_line()) {
      if (line->find("qmp_capabilities") != std::string::npos) {
        p.write("{\"return\": {}}\r\n");
      } else if (line->find("system_reset") != std::string::npos) {
        // The event overtakes the reply, as QEMU 7.2 was seen to do.
        p.write(R"({"timestamp": {"seconds": 1, "microseconds": 2}, "event": "RESET", )"
                R"("data": {"guest": false}})"
                "\r\n{\"return\": {}}\r\n");
      } else if (line->find("qom-set") != std::string::npos) {
        p.write(R"js({"error": {"class": "GenericError", "desc": "'requested-size' has to be )js"
                R"js(multiples of 'block-size' (0x200000)"}})js"
                "\r\n");
      } else if (line->find("query-status") != std::string::npos) {
        p.write(R"({"return": {"status": "prelaunch", "running": false}})"
                "\r\n");
      } else {
        p.write("not json\r\n");
      }
    }
  });
  auto o = quick("QMP");
  o.transcript_prefix = "qmp ";
  QmpClient qmp(std::make_unique<LineChannel>(peer.client_fd(), peer.client_fd(), o));
  auto h = qmp.handshake();
  ASSERT_TRUE(h.has_value()) << h.error().message;
  EXPECT_EQ(qmp.greeting()["QMP"]["version"]["qemu"]["major"], 7);

  auto status = qmp.execute("query-status");
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ((*status)["status"], "prelaunch");

  auto bad = qmp.execute(
      "qom-set",
      {{"path", "/machine/peripheral/vm0"}, {"property", "requested-size"}, {"value", 12345}});
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().message,
            "QMP qom-set: GenericError: 'requested-size' has to be multiples of 'block-size' "
            "(0x200000)");

  ASSERT_TRUE(qmp.execute("system_reset").has_value());
  auto reset = qmp.wait_event("RESET", milliseconds(1000));
  ASSERT_TRUE(reset.has_value()) << reset.error().message;
  EXPECT_EQ((*reset)["data"]["guest"], false);

  auto none = qmp.wait_event("RESET", milliseconds(50));
  ASSERT_FALSE(none.has_value());
  EXPECT_THAT(none.error().message, HasSubstr("no RESET event within 50 ms"));
  EXPECT_TRUE(qmp.channel().healthy());

  auto garbage = qmp.execute("quit");
  ASSERT_FALSE(garbage.has_value());
  EXPECT_THAT(garbage.error().message, HasSubstr("not a JSON object"));

  const auto transcript = qmp.channel().take_transcript();
  ASSERT_FALSE(transcript.empty());
  EXPECT_EQ(transcript.front(), R"(qmp {"execute":"qmp_capabilities"})");
}

// --- The launcher and the command line, without QEMU -------------------------------------------

TEST(QemuProcessTest, MissingBinaryIsReported) {
  QemuProcess::Options o;
  o.binary = "vmemcheck-no-such-qemu";
  auto p = QemuProcess::start(o);
  ASSERT_FALSE(p.has_value());
  EXPECT_THAT(p.error().message, HasSubstr("not found in PATH"));
  o.binary = "/nonexistent/qemu-system-x86_64";
  p = QemuProcess::start(o);
  ASSERT_FALSE(p.has_value());
  EXPECT_THAT(p.error().message, HasSubstr("No such file"));
}

TEST(QemuProcessTest, ProcessThatExitsEarlyIsReportedWithItsStatusAndOutput) {
  QemuProcess::Options o;
  o.binary = "sh";  // "sh -qtest ..." complains on stderr and exits 2
  o.connect_timeout = milliseconds(5000);
  const auto t0 = std::chrono::steady_clock::now();
  auto p = QemuProcess::start(o);
  ASSERT_FALSE(p.has_value());
  EXPECT_LT(std::chrono::steady_clock::now() - t0, milliseconds(4000));  // not the timeout
  EXPECT_THAT(p.error().message, HasSubstr("exited with status"));
  EXPECT_THAT(p.error().message, HasSubstr("before connecting"));
  EXPECT_THAT(p.error().message, HasSubstr("its stderr ends:"));
}

TEST(QemuProcessTest, ShellQuoting) {
  EXPECT_EQ(shell_quote("virtio-mem-pci,id=vm0"), "virtio-mem-pci,id=vm0");
  EXPECT_EQ(shell_quote(""), "''");
  EXPECT_EQ(shell_quote("exec:cat > /dev/null"), "'exec:cat > /dev/null'");
  EXPECT_EQ(shell_quote("it's"), "'it'\\''s'");
}

TEST(QemuProcessTest, ProcessAliveSeesThisProcessAndNotADeadOne) {
  EXPECT_TRUE(process_alive(getpid()));
  EXPECT_FALSE(process_alive(0x3fffffff));
}

bool contains(const std::vector<std::string>& args, const std::string& a) {
  return std::find(args.begin(), args.end(), a) != args.end();
}

TEST(QemuTargetArgsTest, DefaultSetup) {
  QemuTargetOptions o;
  DeviceSetup s;
  auto a = QemuTarget::machine_args(o, s, "tcg");
  ASSERT_TRUE(a.has_value());
  EXPECT_TRUE(contains(*a, "-S"));
  EXPECT_TRUE(contains(*a, "-nodefaults"));
  EXPECT_TRUE(contains(*a, "q35"));
  EXPECT_TRUE(contains(*a, "tcg"));
  EXPECT_TRUE(contains(*a, "128M,maxmem=1154M"));
  EXPECT_TRUE(contains(*a, "memory-backend-ram,id=mem0,size=1G,reserve=off"));
  EXPECT_TRUE(contains(*a,
                       "virtio-mem-pci,id=vm0,memdev=mem0,bus=pcie.0,addr=0x1,block-size=2M,"
                       "requested-size=256M,unplugged-inaccessible=off"));
  EXPECT_FALSE(contains(*a, "-cpu"));
  EXPECT_FALSE(contains(*a, "-numa"));
}

TEST(QemuTargetArgsTest, TwoDevicesNumaAndUnpluggedInaccessible) {
  QemuTargetOptions o;
  o.extra_args = {"-global", "foo.bar=1"};
  DeviceSetup s;
  s.devices = 2;
  s.acpi_pxm = true;
  s.node_id = 2;
  s.unplugged_inaccessible = true;
  auto a = QemuTarget::machine_args(o, s, "kvm");
  ASSERT_TRUE(a.has_value());
  EXPECT_TRUE(contains(*a, "node,nodeid=0,memdev=ram-node0"));
  EXPECT_TRUE(contains(*a, "node,nodeid=1"));
  EXPECT_TRUE(contains(*a, "node,nodeid=2"));
  EXPECT_TRUE(contains(*a,
                       "virtio-mem-pci,id=vm1,memdev=mem1,bus=pcie.0,addr=0x2,block-size=2M,"
                       "requested-size=256M,unplugged-inaccessible=on,node=2"));
  EXPECT_EQ(a->back(), "foo.bar=1");
  s.node_id = 128;
  EXPECT_FALSE(QemuTarget::machine_args(o, s, "kvm").has_value());
  s.devices = 3;
  s.node_id = 0;
  EXPECT_FALSE(QemuTarget::machine_args(o, s, "kvm").has_value());
}

TEST(QemuTargetArgsTest, LargeRegionsGetPhysBits48) {
  QemuTargetOptions o;
  DeviceSetup s;
  s.region_size = 900ULL << 30;  // just below the 1012 GiB HyperTransport hole with the slack
  auto a = QemuTarget::machine_args(o, s, "tcg");
  ASSERT_TRUE(a.has_value());
  EXPECT_FALSE(contains(*a, "-cpu"));
  s.region_size = 1ULL << 40;
  a = QemuTarget::machine_args(o, s, "tcg");
  ASSERT_TRUE(a.has_value());
  EXPECT_TRUE(contains(*a, "qemu64,phys-bits=48"));
  EXPECT_TRUE(contains(*a, "memory-backend-ram,id=mem0,size=1T,reserve=off"));
}

TEST(QemuTargetArgsTest, CapabilitiesAndNoSuspend) {
  QemuTarget t;
  EXPECT_TRUE(t.has(Capability::SetRequestedSize));
  EXPECT_TRUE(t.has(Capability::Interrupts));
  EXPECT_FALSE(t.has(Capability::SuspendResume));
  EXPECT_FALSE(t.suspend_resume().has_value());
  // Nothing runs before start().
  auto r = t.io_read(0xcfc, 4);
  ASSERT_FALSE(r.has_value());
  EXPECT_THAT(r.error().message, HasSubstr("call start() first"));
  QemuTargetOptions pc;
  pc.machine = "pc";
  EXPECT_FALSE(QemuTarget(pc).has(Capability::Interrupts));
}

}  // namespace
}  // namespace vmem::conformance
