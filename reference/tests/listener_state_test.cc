// The listener bookkeeping of listener_state.h, run on uint64_t next to the real DiscardManager
// with recording listeners and a VFIO type1 container on random operation sequences: after every
// step, each listener's view (a recording listener's populated blocks; the blocks a VFIO
// listener's mappings cover, and which of them share a mapping with their predecessor) and every
// PLUG's verdict must agree. The listener proofs reason about that machine, so this test is what
// ties them to the manager (issue: Z3-checked invariants).
//
// Built twice, as block_state_test: against the reference, and against the mutants build, where
// the clean machine must disagree with each consumer mutant of the catalog and the machine run
// with the same fault must agree wherever it models the fault.
#include "reference/discard/listener_state.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <tuple>

#include "reference/discard/recording_listener.h"
#include "reference/tests/testbed.h"
#include "reference/vfio/vfio_listener.h"

namespace vmem::testing {
namespace {

using View = rules::ListenerView<U64>;

constexpr uint64_t kBlocks = 256;  // four bitmap words, as the proofs
constexpr uint64_t kWords = kBlocks / 64;
constexpr uint64_t kHva = 0x7f0000000000;

DeviceOptions options_for(Fault f) {
  DeviceOptions o;
  o.addr = 4 * kGiB;
  o.block_size = 2 * kMiB;
  o.region_size = kBlocks * o.block_size;
  o.requested_size = o.region_size;
  o.fault = std::string(fault_name(f));
  return o;
}

std::string words_text(const std::vector<uint64_t>& w) {
  return fmt::format("{:#x}", fmt::join(w, " "));
}

// One sequence: the device with its manager, up to three recording listeners and up to two VFIO
// sections, and the machine's listeners next to them.
class Pair {
 public:
  Pair(Fault device_fault, Fault model_fault, uint64_t seed)
      : t_(make_testbed(options_for(device_fault), BackingKind::Null)),
        fault_(model_fault),
        rng_(seed) {
    manager_ = std::move(*DiscardManager::attach(t_.dev(), permission_));
    vfio_ = std::move(
        *VfioMemoryListener::create(container_, *manager_, permission_, kHva, {Profile::Spec}));
  }

  // Runs `steps` random operations; returns the first disagreement.
  std::optional<std::string> run(int steps) {
    for (int i = 0; i < steps; ++i) {
      std::optional<std::string> bad = step();
      if (!bad) bad = compare();
      if (bad) return fmt::format("step {}: {}", i, *bad);
    }
    return std::nullopt;
  }

  std::set<std::string> reached;

 private:
  uint64_t below(uint64_t n) { return std::uniform_int_distribution<uint64_t>(0, n - 1)(rng_); }
  uint64_t bs() { return t_.dev().options().block_size; }
  std::vector<uint64_t> plugged() { return words_of(t_.dev().bitmap()); }
  // A random block range [first, end) inside the region, at most `most` blocks long.
  std::pair<uint64_t, uint64_t> range(uint64_t most) {
    const uint64_t first = below(kBlocks);
    return {first, std::min(kBlocks, first + 1 + below(most))};
  }
  View view(uint64_t first, uint64_t end, bool double_discard, bool maps) {
    return View{
        first,          end, std::vector<uint64_t>(kWords, 0), std::vector<uint64_t>(kWords, 0),
        double_discard, maps};
  }
  // The machine's refusal inputs: what each listener would answer to its next populate.
  std::vector<bool> refusals() {
    std::vector<bool> r;
    for (const auto& reg : manager_->listeners()) {
      auto it = pending_.find(reg.listener);
      r.push_back(it != pending_.end() || (is_vfio(reg.listener) && vfio_fails_));
    }
    return r;
  }
  void consume(const std::vector<bool>& asked) {
    // A listener asked once has used its refusal; any VFIO listener asked has made a map call.
    std::vector<const RamDiscardListener*> order;
    for (const auto& reg : manager_->listeners())
      order.push_back(reg.listener);
    for (std::size_t i = 0; i < asked.size(); ++i) {
      if (!asked[i]) continue;
      pending_.erase(order[i]);
      if (is_vfio(order[i])) vfio_fails_ = false;
    }
  }
  bool is_vfio(const RamDiscardListener* l) const {
    return dynamic_cast<const VfioRamDiscardListener*>(l) != nullptr;
  }

  std::optional<std::string> step() {
    const U64 m;
    switch (below(10)) {
      case 0:
      case 1:
      case 2: {  // PLUG of an unplugged range
        const auto [first, end] = range(8);
        if (!t_.dev().bitmap().is_range_unplugged(first, end - first)) return std::nullopt;
        const std::vector<bool> refuses = refusals();
        const auto r = rules::populate(m, ls_, first, end, refuses, fault_);
        const RespType got = t_.plug(t_.block(first), static_cast<uint16_t>(end - first));
        consume(r.asked);
        const RespType want = r.ok ? RespType::Ack : RespType::Busy;
        reached.insert(r.ok ? "plug" : "plug refused");
        if (!r.ok && std::count(r.asked.begin(), r.asked.end(), true) >= 2)
          reached.insert("rollback of another listener");
        if (got != want) {
          return fmt::format("PLUG [{}, {}) answered {}, the machine says {}", first, end,
                             to_string(got), to_string(want));
        }
        return std::nullopt;
      }
      case 3:
      case 4: {  // UNPLUG of a plugged range
        const auto [first, end] = range(8);
        if (!t_.dev().bitmap().is_range_plugged(first, end - first)) return std::nullopt;
        rules::discard(m, ls_, first, end, fault_);
        reached.insert("unplug");
        if (t_.unplug(t_.block(first), static_cast<uint16_t>(end - first)) != RespType::Ack)
          return fmt::format("UNPLUG [{}, {}) not ACKed", first, end);
        return std::nullopt;
      }
      case 5: {  // UNPLUG_ALL, now and then
        if (below(4) != 0 || t_.dev().bitmap().count() == 0) return std::nullopt;
        rules::discard_all(m, ls_, plugged());
        reached.insert("unplug_all");
        if (t_.unplug_all() != RespType::Ack) return std::string("UNPLUG_ALL not ACKed");
        return std::nullopt;
      }
      case 6: {  // a recording listener registers, or one leaves
        if (recording_.size() < 3 && below(2) == 0) return add_recording();
        return remove(/*vfio=*/false);
      }
      case 7: {  // a VFIO section appears, or one goes
        if (vfio_->listeners().size() < 2 && below(2) == 0) return add_vfio();
        return remove(/*vfio=*/true);
      }
      case 8: {  // a recording listener will refuse its next populate
        if (recording_.empty()) return std::nullopt;
        RecordingListener& l = *recording_[below(recording_.size())];
        l.refuse_after(0);
        pending_.insert(&l);
        return std::nullopt;
      }
      default: {  // the container's next map fails
        if (vfio_->listeners().empty()) return std::nullopt;
        container_.fail_nth_map(1);
        vfio_fails_ = true;
        return std::nullopt;
      }
    }
  }

  std::optional<std::string> add_recording() {
    const auto [first, end] = range(96);
    const bool dd = below(2) == 0;
    auto l = std::make_unique<RecordingListener>(fmt::format("r{}", serial_++), kBlocks, bs(), dd);
    View v = view(first, end, dd, false);
    if (!rules::replay_to(U64{}, v, plugged(), false, fault_))
      return std::string("the machine refused a recording listener");
    if (!manager_->register_listener(*l, Section{first * bs(), (end - first) * bs()}).has_value())
      return std::string("the manager refused a recording listener");
    ls_.insert(ls_.begin(), std::move(v));
    recording_.push_back(std::move(l));
    reached.insert("register");
    return std::nullopt;
  }

  std::optional<std::string> add_vfio() {
    const auto [first, end] = range(96);
    // Sections of a flat view never overlap, nor does a new one meet mappings left behind.
    for (const auto& l : vfio_->listeners()) {
      const Section& s = l->section();
      if (first * bs() < s.end() && s.offset < end * bs()) return std::nullopt;
    }
    for (const auto& [iova, map] : container_.mappings()) {
      const uint64_t b = (iova - t_.dev().options().addr) / bs();
      if (b < end && first < b + map.size / bs()) return std::nullopt;
    }
    View v = view(first, end, true, true);
    const bool fails = vfio_fails_;
    const bool registered = rules::replay_to(U64{}, v, plugged(), fails, fault_);
    if (fails && rules::detail::meets(U64{}, plugged(), first, end)) vfio_fails_ = false;
    const bool got = vfio_->region_add(Section{first * bs(), (end - first) * bs()}).has_value();
    if (got != registered) {
      return fmt::format("VFIO section [{}, {}) registered: {}, the machine says {}", first, end,
                         got, registered);
    }
    if (registered) ls_.insert(ls_.begin(), std::move(v));
    reached.insert(registered ? "register" : "register refused");
    return std::nullopt;
  }

  std::optional<std::string> remove(bool vfio) {
    const auto& regs = manager_->listeners();
    std::vector<std::size_t> candidates;
    for (std::size_t i = 0; i < regs.size(); ++i) {
      if (is_vfio(regs[i].listener) == vfio) candidates.push_back(i);
    }
    if (candidates.empty()) return std::nullopt;
    const std::size_t index = candidates[below(candidates.size())];
    const RamDiscardListener* l = regs[index].listener;
    const Section s = regs[index].section;
    const View gone = rules::unregister_listener(U64{}, ls_, index, plugged(), fault_);
    pending_.erase(l);
    reached.insert("unregister");
    if (vfio) {
      vfio_->region_del(s);
      ghosts_.push_back(gone);
      return std::nullopt;
    }
    auto it = std::find_if(recording_.begin(), recording_.end(),
                           [&](const auto& r) { return r.get() == l; });
    manager_->unregister_listener(**it);
    const std::vector<uint64_t> held = words_of((*it)->view());
    recording_.erase(it);
    if (held != gone.told) {
      return fmt::format("a recording listener left holding {}, the machine says {}",
                         words_text(held), words_text(gone.told));
    }
    return std::nullopt;
  }

  // The blocks the container's mappings cover inside [first, end), and those that share a
  // mapping with the block before.
  std::pair<std::vector<uint64_t>, std::vector<uint64_t>> mapped(uint64_t first, uint64_t end) {
    std::vector<uint64_t> told(kWords, 0), joined(kWords, 0);
    for (const auto& [iova, map] : container_.mappings()) {
      const uint64_t b0 = (iova - t_.dev().options().addr) / bs();
      for (uint64_t b = b0; b < b0 + map.size / bs(); ++b) {
        if (b < first || b >= end) continue;
        told[b / 64] |= 1ULL << (b % 64);
        if (b != b0) joined[b / 64] |= 1ULL << (b % 64);
      }
    }
    return {told, joined};
  }

  std::optional<std::string> compare() {
    const auto& regs = manager_->listeners();
    if (regs.size() != ls_.size())
      return fmt::format("{} listeners, the machine has {}", regs.size(), ls_.size());
    for (std::size_t i = 0; i < regs.size(); ++i) {
      const View& v = ls_[i];
      const Section want{v.first * bs(), (v.end - v.first) * bs()};
      if (regs[i].section != want)
        return fmt::format("listener {} is not where the machine has it", i);
      std::vector<uint64_t> told, joined(kWords, 0);
      if (auto* r = dynamic_cast<const RecordingListener*>(regs[i].listener)) {
        told = words_of(r->view());
      } else {
        std::tie(told, joined) = mapped(v.first, v.end);
      }
      if (told != v.told || joined != v.joined) {
        return fmt::format(
            "listener {} [{}, {}) holds {} (joined {}), the machine says {} (joined {})", i,
            v.first, v.end, words_text(told), words_text(joined), words_text(v.told),
            words_text(v.joined));
      }
    }
    // Mappings outside every VFIO section are what removed listeners kept.
    std::vector<uint64_t> outside = mapped(0, kBlocks).first, kept(kWords, 0);
    for (const auto& l : vfio_->listeners()) {
      const uint64_t f = l->section().offset / bs(), e = l->section().end() / bs();
      rules::detail::mark(U64{}, outside, f, e, true, false);
    }
    for (const View& g : ghosts_) {
      for (uint64_t w = 0; w < kWords; ++w)
        kept[w] |= g.told[w];
    }
    if (outside != kept) {
      return fmt::format("mappings outside the VFIO sections cover {}, the machine says {}",
                         words_text(outside), words_text(kept));
    }
    return std::nullopt;
  }

  Testbed t_;
  Fault fault_;
  std::mt19937_64 rng_;
  DiscardPermission permission_;
  std::unique_ptr<DiscardManager> manager_;
  VfioType1Container container_;
  std::unique_ptr<VfioMemoryListener> vfio_;
  std::vector<std::unique_ptr<RecordingListener>> recording_;
  rules::Listeners<U64> ls_;
  std::vector<View> ghosts_;
  std::set<const RamDiscardListener*> pending_;
  bool vfio_fails_ = false;
  uint64_t serial_ = 0;
};

constexpr int kSteps = 2000;

TEST(ListenerStateTest, MachineMatchesTheManager) {
  std::set<std::string> reached;
  for (uint64_t seed = 1; seed <= 4; ++seed) {
    Pair p(Fault::None, Fault::None, seed);
    const auto bad = p.run(kSteps);
    EXPECT_FALSE(bad.has_value()) << "seed " << seed << ": " << bad.value_or("");
    reached.insert(p.reached.begin(), p.reached.end());
  }
  for (const char* want : {"plug", "plug refused", "rollback of another listener", "unplug",
                           "unplug_all", "register", "register refused", "unregister"}) {
    EXPECT_TRUE(reached.count(want) != 0) << "never reached " << want;
  }
}

#if VMEM_MUTANTS
// The consumer mutants of the catalog: faults of the manager and the VFIO listener.
struct ConsumerMutant {
  Fault fault;
  bool modelled;  // listener_state.h applies the fault too, so machine and manager agree with it
};
constexpr ConsumerMutant kConsumerMutants[] = {
    {Fault::RollbackClippedToFailingSection, true},
    {Fault::RollbackSkipsFirstListener, true},
    {Fault::UnregisterKeepsMappings, true},
    {Fault::PopulateMapsOneRange, true},
    {Fault::PopulateMapsWholeSection, false},  // modelled on populate, not on the replay
    {Fault::ClipEndNotCapped, true},
};

TEST(ListenerStateTest, CleanMachineCatchesEveryConsumerMutant) {
  for (const ConsumerMutant& c : kConsumerMutants) {
    bool caught = false;
    for (uint64_t seed = 1; seed <= 4 && !caught; ++seed)
      caught = Pair(c.fault, Fault::None, seed).run(kSteps).has_value();
    EXPECT_TRUE(caught) << fault_name(c.fault) << " agrees with the clean machine";
  }
}

TEST(ListenerStateTest, MachineWithTheSameFaultMatchesTheMutant) {
  for (const ConsumerMutant& c : kConsumerMutants) {
    if (!c.modelled) continue;
    for (uint64_t seed = 1; seed <= 2; ++seed) {
      const auto bad = Pair(c.fault, c.fault, seed).run(kSteps);
      EXPECT_FALSE(bad.has_value())
          << fault_name(c.fault) << " seed " << seed << ": " << bad.value_or("");
    }
  }
}
#endif  // VMEM_MUTANTS

}  // namespace
}  // namespace vmem::testing
