// Migration (decisions D13): a saved device loads into a fresh one and behaves the same; bad
// streams are refused with a clear error and leave the target untouched.
#include <gtest/gtest.h>

#include "reference/base/endian.h"
#include "reference/tests/testbed.h"

namespace vmem::testing {
namespace {

class PersistTest : public ::testing::Test {
 protected:
  void SetUp() override {
    src_ = make_testbed(small_options());
    ASSERT_EQ(src_.plug(src_.block(1), 3), RespType::Ack);
    ASSERT_EQ(src_.plug(src_.block(40), 2), RespType::Ack);
    ASSERT_TRUE(src_.dev().set_requested_size(256 * kMiB).has_value());
    stream_ = src_.dev().save();
  }

  // A fresh target sharing nothing with the source but a copy of the guest RAM that holds the
  // queue, as after the RAM part of a migration.
  Testbed fresh_target() {
    Testbed t = make_testbed(small_options(), BackingKind::Anonymous, false);
    std::vector<uint8_t> ram(2 * kMiB);
    EXPECT_TRUE(src_.machine->mem.read(0, ram).has_value());
    EXPECT_TRUE(t.machine->mem.write(0, ram).has_value());
    return t;
  }

  void expect_refused(std::vector<uint8_t> stream, const std::string& why) {
    Testbed t = fresh_target();
    const std::vector<uint8_t> before = t.dev().save();
    auto r = t.dev().load(stream);
    ASSERT_FALSE(r.has_value()) << "accepted a stream with " << why;
    EXPECT_FALSE(r.error().message.empty());
    EXPECT_EQ(t.dev().save(), before) << "a refused load changed the target (" << why << ")";
  }

  Testbed src_;
  std::vector<uint8_t> stream_;
};

// Offsets of fields in a version-1 stream (see persist.cc).
constexpr std::size_t kOffBlockSize = 8 + 4 + 16;
constexpr std::size_t kOffRequested = 8 + 4 + 8 * 3 + 2 + 1 + 8 + 8;
constexpr std::size_t kOffUsable = kOffRequested + 8;
constexpr std::size_t kOffPlugged = kOffUsable + 8;
constexpr std::size_t kOffStatus = kOffPlugged + 8;
constexpr std::size_t kOffDriverFeatures = kOffStatus + 1;

void put64(std::vector<uint8_t>& s, std::size_t off, uint64_t v) {
  store_le(s.data() + off, v);
}

TEST_F(PersistTest, RoundTripPreservesEverythingTheDriverSees) {
  Testbed t = fresh_target();
  ASSERT_TRUE(t.dev().load(stream_).has_value());
  EXPECT_EQ(t.cfg(), src_.cfg());
  EXPECT_EQ(t.dev().bitmap(), src_.dev().bitmap());
  EXPECT_EQ(t.dev().status(), 0x0f);
  EXPECT_EQ(t.dev().save(), stream_);
  EXPECT_EQ(t.dev().queue(0).state(), src_.dev().queue(0).state());
}

TEST_F(PersistTest, LoadedDeviceAnswersLikeTheSource) {
  Testbed t = fresh_target();
  ASSERT_TRUE(t.dev().load(stream_).has_value());
  // Re-initialize the target's driver (a driver reload after migration is allowed).
  t.driver = std::make_unique<RequestDriver>(t.dev(), kQueueBase);
  ASSERT_EQ(t.drv().initialize(), 0x0f);
  EXPECT_EQ(t.state(t.block(1), 3).state, BlockState::Plugged);
  EXPECT_EQ(t.state(t.block(0), 2).state, BlockState::Mixed);
  EXPECT_EQ(t.plug(t.block(2), 1), RespType::Error);
  EXPECT_EQ(t.unplug(t.block(40), 2), RespType::Ack);
  EXPECT_EQ(t.cfg().plugged_size, 6 * kMiB);
}

TEST_F(PersistTest, EveryTruncationIsRefused) {
  Testbed t = fresh_target();
  const auto before = t.dev().save();
  for (std::size_t n = 0; n < stream_.size(); ++n) {
    std::vector<uint8_t> cut(stream_.begin(), stream_.begin() + static_cast<std::ptrdiff_t>(n));
    auto r = t.dev().load(cut);
    ASSERT_FALSE(r.has_value()) << "accepted a stream cut at " << n;
  }
  EXPECT_EQ(t.dev().save(), before);
}

TEST_F(PersistTest, TrailingBytesAreRefused) {
  auto s = stream_;
  s.push_back(0);
  expect_refused(s, "a trailing byte");
}

TEST_F(PersistTest, BadMagicAndVersionAreRefused) {
  auto s = stream_;
  s[0] ^= 1;
  expect_refused(s, "a bad magic");
  s = stream_;
  s[8] = 2;
  expect_refused(s, "version 2");
}

TEST_F(PersistTest, ChangedGeometryIsRefused) {
  auto s = stream_;
  put64(s, kOffBlockSize, 4 * kMiB);
  Testbed t = fresh_target();
  auto r = t.dev().load(s);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message.find("block-size"), std::string::npos) << r.error().message;
}

TEST_F(PersistTest, InconsistentSizesAreRefused) {
  auto s = stream_;
  put64(s, kOffPlugged, 12 * kMiB);
  expect_refused(s, "plugged_size not matching the bitmap");
  s = stream_;
  put64(s, kOffPlugged, 10 * kMiB + 4096);
  expect_refused(s, "a misaligned plugged_size");
  s = stream_;
  put64(s, kOffUsable, 64 * kMiB);
  expect_refused(s, "usable_region_size below requested_size");
  s = stream_;
  put64(s, kOffUsable, 80 * kMiB);
  put64(s, kOffRequested, 80 * kMiB);
  expect_refused(s, "plugged blocks beyond the usable region");
  s = stream_;
  put64(s, kOffUsable, 2 * kGiB);
  expect_refused(s, "usable_region_size beyond the region");
}

TEST_F(PersistTest, BadVirtioStateIsRefused) {
  auto s = stream_;
  put64(s, kOffDriverFeatures, ~uint64_t{0});
  expect_refused(s, "driver features the device never offered");
  s = stream_;
  s[kOffStatus] = VIRTIO_CONFIG_S_DRIVER_OK;
  expect_refused(s, "DRIVER_OK without FEATURES_OK");
}

TEST_F(PersistTest, ShortBitmapIsRefused) {
  // Drop the last bitmap word and fix the word count: the length no longer fits the region.
  const std::size_t words = src_.dev().bitmap().words().size();
  ASSERT_EQ(words, 8u);  // 512 blocks of 2 MiB
  auto s = stream_;
  s.erase(s.end() - 8, s.end());
  const std::size_t count_at = s.size() - 8 * (words - 1) - 8;
  ASSERT_EQ(load_le<uint64_t>(s.data() + count_at), words);
  store_le<uint64_t>(s.data() + count_at, words - 1);
  expect_refused(s, "a bitmap one word short");
}

class RefusingHooks : public DiscardHooks {
 public:
  explicit RefusingHooks(int refuse_at) : refuse_at_(refuse_at) {}
  Status populate(uint64_t offset, uint64_t size) override {
    if (calls_++ == refuse_at_) return unexpected(Error{"refused"});
    populated_ += size;
    (void)offset;
    return ok();
  }
  void discard(uint64_t, uint64_t size) override { populated_ -= size; }
  void discard_all() override { populated_ = 0; }
  int64_t populated() const { return static_cast<int64_t>(populated_); }

 private:
  int refuse_at_;
  int calls_ = 0;
  uint64_t populated_ = 0;
};

TEST_F(PersistTest, LoadReplaysPopulateToListeners) {
  Testbed t = fresh_target();
  RefusingHooks hooks(-1);
  t.dev().set_discard_hooks(&hooks);
  ASSERT_TRUE(t.dev().load(stream_).has_value());
  EXPECT_EQ(hooks.populated(), static_cast<int64_t>(10 * kMiB));
}

TEST_F(PersistTest, RefusedPopulateReplayFailsTheLoadAndRestoresListeners) {
  Testbed t = fresh_target();
  RefusingHooks hooks(1);  // accepts the first run, refuses the second
  t.dev().set_discard_hooks(&hooks);
  const auto before = t.dev().save();
  auto r = t.dev().load(stream_);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(hooks.populated(), 0) << "the first run was not taken back";
  EXPECT_EQ(t.dev().save(), before);
}

}  // namespace
}  // namespace vmem::testing
