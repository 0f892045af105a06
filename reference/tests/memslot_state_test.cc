// The memslot bookkeeping of memslot_state.h, run on uint64_t next to MemslotMap with dynamic
// memslots on random operation sequences: after every step each memslot's mapping, and every
// PLUG's verdict, must agree. The memslot proofs reason about that machine, so this test is what
// ties them to MemslotMap (issue: Z3-checked invariants).
//
// Built twice, as block_state_test: the clean machine must disagree with each memslot mutant of
// the catalog, and the machine run with the same fault must agree with it.
#include "reference/kvm/memslot_state.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <optional>
#include <random>
#include <set>
#include <string>

#include "reference/discard/recording_listener.h"
#include "reference/kvm/memslot_map.h"
#include "reference/tests/testbed.h"

namespace vmem::testing {
namespace {

// A memory listener that refuses the next memslot it is offered when told to.
class RefusingMemoryListener final : public MemoryListener {
 public:
  bool refuse_next = false;
  Status region_add(const Section&) override {
    if (!refuse_next) return ok();
    refuse_next = false;
    return unexpected(Error{"memslot refused by the test"});
  }
  void region_del(const Section&) override {}
};

// 3.5 GiB of 2 MiB blocks: with a limit of 2, two memslots of 1.75 GiB; with 3, 1.25 GiB ones,
// the last cut short.
DeviceOptions options_for(Fault f) {
  DeviceOptions o;
  o.addr = 4 * kGiB;
  o.block_size = 2 * kMiB;
  o.region_size = 3 * kGiB + 512 * kMiB;
  o.requested_size = o.region_size;
  o.dynamic_memslots = true;
  o.unplugged_inaccessible = Tristate::On;
  o.fault = std::string(fault_name(f));
  return o;
}

class Pair {
 public:
  Pair(Fault device_fault, Fault model_fault, uint64_t limit, uint64_t seed)
      : t_(make_testbed(options_for(device_fault), BackingKind::Null)),
        fault_(model_fault),
        rng_(seed) {
    manager_ = std::move(*DiscardManager::attach(t_.dev(), permission_));
    map_ = std::make_unique<MemslotMap>(t_.dev(), true, limit);
    manager_->set_memslots(map_.get());
    (void)map_->add_listener(memory_);
    blocks_ = t_.dev().bitmap().size();
    listener_ = std::make_unique<RecordingListener>("r", blocks_, bs());
    (void)manager_->register_listener(*listener_, Section{0, t_.dev().options().region_size});
    view_.size = map_->memslot_size() / bs();
    view_.region = blocks_;
    view_.mapped.assign(map_->count(), false);
  }
  ~Pair() { manager_->set_memslots(nullptr); }

  std::optional<std::string> run(int steps) {
    if (map_->count() < 2) return std::string("fewer than two memslots");
    for (int i = 0; i < steps; ++i) {
      std::optional<std::string> bad = step();
      for (uint64_t k = 0; !bad && k < map_->count(); ++k) {
        if (map_->active(k) != view_.mapped[k]) {
          bad = fmt::format("memslot {} mapped: {}, the machine says {}", k, map_->active(k),
                            static_cast<bool>(view_.mapped[k]));
        }
      }
      if (bad) return fmt::format("step {}: {}", i, *bad);
    }
    return std::nullopt;
  }

  std::set<std::string> reached;

 private:
  uint64_t below(uint64_t n) { return std::uniform_int_distribution<uint64_t>(0, n - 1)(rng_); }
  uint64_t bs() { return t_.dev().options().block_size; }
  std::vector<uint64_t> plugged() { return words_of(t_.dev().bitmap()); }
  // A short range, mostly near a memslot boundary.
  std::pair<uint64_t, uint64_t> range() {
    const uint64_t edge = (1 + below(map_->count() - 1)) * view_.size;
    const uint64_t first = below(4) == 0 ? below(blocks_) : edge - std::min(edge, below(6));
    return {first, std::min(blocks_, first + 1 + below(8))};
  }

  std::optional<std::string> step() {
    const U64 m;
    const uint64_t kind = below(8);
    if (kind < 4) {  // PLUG; now and then a memslot or the populate is refused
      const auto [first, end] = range();
      if (!t_.dev().bitmap().is_range_unplugged(first, end - first)) return std::nullopt;
      memory_.refuse_next = below(6) == 0;
      const bool populate_refused = below(6) == 0;
      if (populate_refused) listener_->refuse_after(0);
      std::vector<bool> refuses(view_.mapped.size(), memory_.refuse_next);
      const bool mapped = rules::activate(m, view_, first, end, refuses, fault_);
      const bool ok = mapped && !populate_refused;
      if (!ok) rules::deactivate_unplugged(m, view_, first, end, plugged(), fault_);
      const RespType got = t_.plug(t_.block(first), static_cast<uint16_t>(end - first));
      if (!mapped && populate_refused) listener_->refuse_after(~0ULL);  // never asked
      memory_.refuse_next = false;
      reached.insert(ok ? "plug" : mapped ? "populate refused" : "memslot refused");
      if (got != (ok ? RespType::Ack : RespType::Busy)) {
        return fmt::format("PLUG [{}, {}) answered {}, the machine says {}", first, end,
                           to_string(got), ok ? "ACK" : "BUSY");
      }
      return std::nullopt;
    }
    if (kind < 7) {  // UNPLUG
      const auto [first, end] = range();
      if (!t_.dev().bitmap().is_range_plugged(first, end - first)) return std::nullopt;
      if (t_.unplug(t_.block(first), static_cast<uint16_t>(end - first)) != RespType::Ack)
        return fmt::format("UNPLUG [{}, {}) not ACKed", first, end);
      rules::deactivate_unplugged(m, view_, first, end, plugged(), fault_);
      reached.insert("unplug");
      return std::nullopt;
    }
    if (below(4) != 0 || t_.dev().bitmap().count() == 0) return std::nullopt;
    if (t_.unplug_all() != RespType::Ack) return std::string("UNPLUG_ALL not ACKed");
    rules::deactivate_unplugged(m, view_, uint64_t{0}, blocks_, plugged(), fault_);
    reached.insert("unplug_all");
    return std::nullopt;
  }

  Testbed t_;
  Fault fault_;
  std::mt19937_64 rng_;
  DiscardPermission permission_;
  std::unique_ptr<DiscardManager> manager_;
  std::unique_ptr<MemslotMap> map_;
  RefusingMemoryListener memory_;
  std::unique_ptr<RecordingListener> listener_;
  uint64_t blocks_ = 0;
  rules::MemslotView<U64> view_;
};

constexpr int kSteps = 2000;

TEST(MemslotStateTest, MachineMatchesTheMemslotMap) {
  std::set<std::string> reached;
  for (uint64_t limit : {2, 3}) {
    for (uint64_t seed = 1; seed <= 3; ++seed) {
      Pair p(Fault::None, Fault::None, limit, seed);
      const auto bad = p.run(kSteps);
      EXPECT_FALSE(bad.has_value())
          << limit << " memslots, seed " << seed << ": " << bad.value_or("");
      reached.insert(p.reached.begin(), p.reached.end());
    }
  }
  for (const char* want : {"plug", "populate refused", "memslot refused", "unplug", "unplug_all"})
    EXPECT_TRUE(reached.count(want) != 0) << "never reached " << want;
}

#if VMEM_MUTANTS
constexpr Fault kMemslotMutants[] = {Fault::MemslotDeactivatedWhilePlugged,
                                     Fault::MemslotEndRoundedDown};

TEST(MemslotStateTest, CleanMachineCatchesEveryMemslotMutant) {
  for (Fault f : kMemslotMutants) {
    bool caught = false;
    for (uint64_t seed = 1; seed <= 4 && !caught; ++seed)
      caught = Pair(f, Fault::None, 2, seed).run(kSteps).has_value();
    EXPECT_TRUE(caught) << fault_name(f) << " agrees with the clean machine";
  }
}

TEST(MemslotStateTest, MachineWithTheSameFaultMatchesTheMutant) {
  for (Fault f : kMemslotMutants) {
    for (uint64_t seed = 1; seed <= 2; ++seed) {
      const auto bad = Pair(f, f, 2, seed).run(kSteps);
      EXPECT_FALSE(bad.has_value())
          << fault_name(f) << " seed " << seed << ": " << bad.value_or("");
    }
  }
}
#endif  // VMEM_MUTANTS

}  // namespace
}  // namespace vmem::testing
