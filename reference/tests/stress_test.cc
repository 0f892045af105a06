// The iothread under load (decisions D12): requests on the iothread, and on other threads a host
// resizing and opening busy windows, listeners registering and leaving, invariant checks and
// migration saves, all with seeded yields. Every operation takes an order stamp at its
// linearization point; the history, sorted by stamp, must replay on a single-threaded reference
// with the same answers and end in the same state, and every check on the way must pass.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "reference/check/invariants.h"
#include "reference/discard/discard_manager.h"
#include "reference/discard/recording_listener.h"
#include "reference/mem/iothread.h"
#include "reference/tests/testbed.h"

namespace vmem::testing {
namespace {

constexpr uint64_t kBlocks = 128;  // the part of the region the guest works on

// Yields at random points, from a seeded generator, to shake out interleavings.
class Yielder {
 public:
  explicit Yielder(uint64_t seed) : rng_(seed) {}
  void maybe() {
    if (rng_() % 4 == 0) std::this_thread::yield();
  }
  std::mt19937_64& rng() { return rng_; }

 private:
  std::mt19937_64 rng_;
};

// A recording listener that yields inside its callbacks.
class YieldingListener final : public RamDiscardListener {
 public:
  YieldingListener(std::string name, uint64_t blocks, uint64_t bs, uint64_t seed)
      : inner_(std::move(name), blocks, bs), yield_(seed) {}
  Status notify_populate(const Section& s) override {
    yield_.maybe();
    return inner_.notify_populate(s);
  }
  void notify_discard(const Section& s) override {
    yield_.maybe();
    inner_.notify_discard(s);
  }
  const RecordingListener& recording() const { return inner_; }

 private:
  RecordingListener inner_;
  Yielder yield_;
};

enum class Kind { Request, Resize, Busy, Register, Unregister, SystemReset };

struct Event {
  uint64_t stamp = 0;
  Kind kind = Kind::Request;
  WireRequest request;  // Request
  Response response;    // Request
  uint64_t value = 0;   // Resize: size; Busy: 0/1; (Un)Register: listener id
  Section section;      // Register
  bool ok = true;       // Resize accepted
};

class History {
 public:
  void add(Event e) {
    std::lock_guard<std::mutex> g(mu_);
    events_.push_back(e);
  }
  std::vector<Event> sorted() {
    std::lock_guard<std::mutex> g(mu_);
    std::vector<Event> v = events_;
    std::sort(v.begin(), v.end(), [](const Event& a, const Event& b) { return a.stamp < b.stamp; });
    return v;
  }

 private:
  std::mutex mu_;
  std::vector<Event> events_;
};

DeviceOptions stress_options() {
  DeviceOptions o = small_options();
  o.requested_size = 64 * kMiB;  // 32 blocks: plugs hit the limit often
  return o;
}

void run_stress(uint64_t seed, int guest_ops) {
  Testbed t = make_testbed(stress_options(), BackingKind::Anonymous, /*init=*/false);
  VirtioMemDevice& dev = t.dev();
  DiscardPermission permission;
  auto manager = std::move(*DiscardManager::attach(dev, permission));
  InvariantChecker checker(dev);
  IoThread io(dev);
  t.drv().set_notifier([&] { io.kick_and_wait(); });
  ASSERT_EQ(io.with_core([&] { return t.drv().initialize(); }), 0x0f);

  History history;
  std::atomic<bool> guest_done{false};
  uint64_t resets_seen = 0;  // the guest thread's
  std::vector<std::string> failures;
  std::mutex failures_mu;
  auto fail = [&](std::string m) {
    std::lock_guard<std::mutex> g(failures_mu);
    failures.push_back(std::move(m));
  };

  // Listeners, owned here, registered and unregistered by the listener thread only.
  std::map<uint64_t, std::unique_ptr<YieldingListener>> listeners;
  std::map<uint64_t, Section> sections;

  std::thread guest([&] {
    Yielder y(seed * 7 + 1);
    for (int i = 0; i < guest_ops; ++i) {
      WireRequest r;
      const uint64_t kind = y.rng()() % 10;
      r.type = kind < 4   ? VIRTIO_MEM_REQ_PLUG
               : kind < 8 ? VIRTIO_MEM_REQ_UNPLUG
               : kind < 9 ? VIRTIO_MEM_REQ_STATE
                          : VIRTIO_MEM_REQ_UNPLUG_ALL;
      r.addr = t.block(y.rng()() % kBlocks);
      r.nb_blocks = static_cast<uint16_t>(1 + y.rng()() % 4);
      auto res = t.drv().send(r);
      if (!res.has_value()) {
        // A system reset took the queue away before the iothread got to the request: like a
        // Linux guest after a reboot, start over. The request was never processed.
        if (io.with_core([&] { return t.drv().initialize(); }) != 0x0f) {
          fail("re-initialization after a reset failed: " + res.error().message);
          break;
        }
        ++resets_seen;
        continue;
      }
      history.add({dev.last_stamp(), Kind::Request, r, res->response, 0, {}, true});
      y.maybe();
      // Leave the control threads room now and then, so the run interleaves however loaded
      // the machine is.
      if (i % 16 == 0) std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
    guest_done = true;
  });

  std::thread host([&] {
    Yielder y(seed * 7 + 2);
    const uint64_t sizes[] = {0, 32 * kMiB, 64 * kMiB, 128 * kMiB};
    // A bounded number of host actions, spread over the guest's run.
    for (int step = 0; step < guest_ops && !guest_done; ++step) {
      if (y.rng()() % 25 == 0) {
        uint64_t stamp = 0;
        io.with_core([&] { dev.system_reset(&stamp); });
        history.add({stamp, Kind::SystemReset, {}, {}, 0, {}, true});
      } else if (y.rng()() % 3 == 0) {
        uint64_t stamp = 0;
        const bool busy = y.rng()() % 4 == 0;
        dev.set_busy(busy, &stamp);
        history.add({stamp, Kind::Busy, {}, {}, busy ? 1u : 0u, {}, true});
      } else {
        uint64_t stamp = 0;
        const uint64_t size = sizes[y.rng()() % 4];
        const bool ok = dev.set_requested_size(size, &stamp).has_value();
        history.add({stamp, Kind::Resize, {}, {}, size, {}, ok});
      }
      y.maybe();
      std::this_thread::sleep_for(std::chrono::microseconds(y.rng()() % 200));
    }
    uint64_t stamp = 0;
    dev.set_busy(false, &stamp);
    history.add({stamp, Kind::Busy, {}, {}, 0, {}, true});
  });

  std::thread lister([&] {
    Yielder y(seed * 7 + 3);
    uint64_t next_id = 0;
    for (int step = 0; step < guest_ops / 4 && !guest_done; ++step) {
      if (listeners.size() < 3 || (y.rng()() % 2 == 0 && listeners.size() < 6)) {
        const uint64_t first = y.rng()() % kBlocks;
        const uint64_t n = 1 + y.rng()() % (kBlocks - first);
        const Section s{first * 2 * kMiB, n * 2 * kMiB};
        auto l = std::make_unique<YieldingListener>(
            "l" + std::to_string(next_id), dev.bitmap().size(), 2 * kMiB, seed * 100 + next_id);
        const auto quiet = dev.quiesce();
        const uint64_t stamp = dev.next_stamp();
        if (!manager->register_listener(*l, s).has_value()) fail("registration refused");
        history.add({stamp, Kind::Register, {}, {}, next_id, s, true});
        sections[next_id] = s;
        listeners[next_id++] = std::move(l);
      } else if (!listeners.empty()) {
        auto it = std::next(listeners.begin(), static_cast<long>(y.rng()() % listeners.size()));
        const auto quiet = dev.quiesce();
        const uint64_t stamp = dev.next_stamp();
        manager->unregister_listener(*it->second);
        history.add({stamp, Kind::Unregister, {}, {}, it->first, {}, true});
        listeners.erase(it);
      }
      y.maybe();
      std::this_thread::sleep_for(std::chrono::microseconds(y.rng()() % 500));
    }
  });

  std::thread inspector([&] {
    Yielder y(seed * 7 + 4);
    while (!guest_done) {
      for (const Violation& v : checker.check_full())
        fail("invariant: " + to_string(v));
      // A migration save in the middle of it all: the device core (the queue's indices) is the
      // iothread's while it processes, so saving takes the core lock, as QEMU stops the VM.
      const auto stream = io.with_core([&] { return dev.save(); });
      if (stream.size() < 8) fail("empty migration stream");
      y.maybe();
      std::this_thread::sleep_for(std::chrono::microseconds(y.rng()() % 2000));
    }
  });

  guest.join();
  host.join();
  lister.join();
  inspector.join();
  for (const auto& f : failures)
    ADD_FAILURE() << "seed " << seed << ": " << f;
  if (!failures.empty()) return;

  // Every listener still registered sees exactly plugged ∩ its section.
  {
    const auto quiet = dev.quiesce();
    for (const auto& [id, l] : listeners) {
      const Section s = sections[id];
      for (uint64_t b = s.offset / (2 * kMiB); b < s.end() / (2 * kMiB); ++b) {
        ASSERT_EQ(l->recording().view().test(b), dev.bitmap().test(b))
            << "listener " << id << " block " << b;
      }
    }
  }

  // Replay the history, in stamp order, on a single-threaded reference.
  Testbed ref = make_testbed(stress_options(), BackingKind::Null, /*init=*/false);
  DiscardPermission ref_permission;
  auto ref_manager = std::move(*DiscardManager::attach(ref.dev(), ref_permission));
  std::map<uint64_t, std::unique_ptr<RecordingListener>> shadows;
  const auto events = history.sorted();
  uint64_t requests = 0;
  for (std::size_t i = 0; i < events.size(); ++i) {
    const Event& e = events[i];
    if (i > 0) {
      ASSERT_LT(events[i - 1].stamp, e.stamp) << "two operations with one stamp";
    }
    switch (e.kind) {
      case Kind::Request: {
        ++requests;
        const Response r = ref.dev().process(e.request);
        ASSERT_EQ(r, e.response) << "seed " << seed << ", stamp " << e.stamp << ": "
                                 << request_type_name(e.request.type)
                                 << " nb=" << e.request.nb_blocks << " answered "
                                 << to_string(e.response.type) << " concurrently, "
                                 << to_string(r.type) << " sequentially";
        break;
      }
      case Kind::Resize:
        ASSERT_EQ(ref.dev().set_requested_size(e.value).has_value(), e.ok);
        break;
      case Kind::Busy:
        ref.dev().set_busy(e.value != 0);
        break;
      case Kind::SystemReset:
        ref.dev().system_reset();
        break;
      case Kind::Register: {
        auto l = std::make_unique<RecordingListener>("shadow", ref.dev().bitmap().size(), 2 * kMiB);
        ASSERT_TRUE(ref_manager->register_listener(*l, e.section).has_value());
        shadows[e.value] = std::move(l);
        break;
      }
      case Kind::Unregister:
        ref_manager->unregister_listener(*shadows.at(e.value));
        shadows.erase(e.value);
        break;
    }
  }
  EXPECT_EQ(requests + resets_seen, static_cast<uint64_t>(guest_ops));
  // The run must actually have interleaved: control-plane actions between requests.
  uint64_t first_request = ~uint64_t{0}, last_request = 0, interleaved = 0;
  for (const Event& e : events) {
    if (e.kind != Kind::Request) continue;
    first_request = std::min(first_request, e.stamp);
    last_request = std::max(last_request, e.stamp);
  }
  for (const Event& e : events) {
    if (e.kind != Kind::Request && e.stamp > first_request && e.stamp < last_request) ++interleaved;
  }
  EXPECT_GE(interleaved, 20u) << "seed " << seed << ": too little concurrency to mean anything";
  uint64_t resets = 0;
  for (const Event& e : events)
    resets += e.kind == Kind::SystemReset;
  std::cout << "seed " << seed << ": " << events.size() << " events, " << requests << " requests, "
            << interleaved << " control actions between requests, " << resets << " system resets ("
            << resets_seen << " requests lost to one)\n";
  EXPECT_EQ(ref.dev().bitmap(), dev.bitmap());
  EXPECT_EQ(ref.cfg().plugged_size, t.cfg().plugged_size);
  EXPECT_EQ(ref.cfg().usable_region_size, t.cfg().usable_region_size);
  for (const auto& [id, l] : listeners) {
    EXPECT_EQ(shadows.at(id)->view(), l->recording().view()) << "listener " << id;
  }
  for (const Violation& v : checker.check_full())
    ADD_FAILURE() << to_string(v);
}

// The configuration generation protocol under a concurrent host: a driver that reads
// generation, fields, generation and retries on a change never sees a torn pair (DEV-4 would
// then look broken: requested_size above usable_region_size).
TEST(ConfigGenerationStressTest, StableGenerationMeansConsistentFields) {
  Testbed t = make_testbed(small_options(), BackingKind::Null);
  IoThread io(t.dev());
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> consistent_reads{0};
  // The host keeps changing the configuration until the driver has read it a hundred times
  // meanwhile: on a loaded machine the driver's thread may not run at all during 20,000 changes.
  // Bounded, so a driver that never runs fails the test instead of hanging it.
  std::thread host([&] {
    for (int i = 0; i < 20000 || (consistent_reads < 100 && i < 2'000'000); ++i) {
      (void)t.dev().set_requested_size(i % 2 ? 0 : 1 * kGiB);
      if (i % 64 == 0) {
        io.with_core([&] { (void)t.dev().process({VIRTIO_MEM_REQ_UNPLUG_ALL, {}, 0, 0, {}}); });
      }
    }
    stop = true;
  });
  while (!stop) {
    const uint32_t g1 = t.dev().config_generation();
    const uint64_t usable = t.dev().read_config(config_offset::usable_region_size, 8);
    const uint64_t requested = t.dev().read_config(config_offset::requested_size, 8);
    const uint32_t g2 = t.dev().config_generation();
    if (g1 != g2) continue;
    ++consistent_reads;
    if (requested > usable) {
      ADD_FAILURE() << "a torn read passed the generation check: requested_size " << requested
                    << " > usable_region_size " << usable;
      break;
    }
  }
  host.join();
  EXPECT_GE(consistent_reads, 100u);
}

class IoThreadStressTest : public ::testing::TestWithParam<uint64_t> {};

TEST_P(IoThreadStressTest, HistoryLinearizesToTheSequentialReference) {
  run_stress(GetParam(), 1500);
}

INSTANTIATE_TEST_SUITE_P(Seeds, IoThreadStressTest, ::testing::Values(1, 2, 3));

}  // namespace
}  // namespace vmem::testing
