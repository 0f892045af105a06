// The block-state machine of block_state.h, run on uint64_t, next to the device on random
// operation sequences: every verdict, every bitmap word, plugged_size, requested_size and
// usable_region_size must agree after every step. The proofs reason about that machine, so this
// test is what ties them to the device (issue: Z3-checked invariants).
//
// Built twice: against the reference (the clean machine matches the clean device, in every
// profile) and against the mutants build, where the clean machine must *disagree* with each
// transition mutant of the catalog, or the check could not tell a faulty transition from a
// correct one; and the machine run with the same fault must agree wherever it models the fault.
#include "reference/mem/block_state.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <optional>
#include <random>
#include <set>
#include <string>

#include "reference/tests/testbed.h"

namespace vmem::testing {
namespace {

using Machine64 = rules::BlockState<U64>;

// Refuses the next populate when told to.
class RefusingHooks final : public DiscardHooks {
 public:
  bool refuse_next = false;
  Status populate(uint64_t, uint64_t) override {
    if (!refuse_next) return ok();
    refuse_next = false;
    return unexpected(Error{"refused by the test"});
  }
  void discard(uint64_t, uint64_t) override {}
  void discard_all() override {}
};

constexpr uint64_t kBlocks = 256;  // four bitmap words, as the proofs

DeviceOptions options_for(Profile p, Fault f) {
  DeviceOptions o;
  o.addr = 4 * kGiB;
  o.block_size = 2 * kMiB;
  o.region_size = kBlocks * o.block_size;
  o.requested_size = 64 * o.block_size;
  o.usable_extent = 32 * o.block_size + 1 * kMiB;  // not block-aligned: the device rounds
  o.profile = p;
  o.fault = std::string(fault_name(f));
  return o;
}

struct Pair {
  Testbed t;
  RefusingHooks hooks;
  rules::Geometry<U64> g;
  Machine64 s;
  bool busy = false;
  Fault model_fault;

  Pair(Profile p, Fault device_fault, Fault fault_of_model)
      : t(make_testbed(options_for(p, device_fault), BackingKind::Null)),
        model_fault(fault_of_model) {
    const DeviceOptions& o = t.dev().options();
    t.dev().set_discard_hooks(&hooks);
    g = {o.addr, o.region_size, o.block_size, o.usable_extent, p};
    const WireConfig c = t.cfg();
    s.words.assign(kBlocks / 64, 0);
    s.plugged_size = c.plugged_size;
    s.requested_size = c.requested_size;
    s.usable_region_size = c.usable_region_size;
  }

  rules::HostInput<U64> host(bool populate_ok) const { return {busy, populate_ok, true}; }

  // Where the two disagree, or nothing.
  std::optional<std::string> compare(const std::string& step) {
    const WireConfig c = t.cfg();
    const auto words = t.dev().bitmap().words();
    for (std::size_t i = 0; i < s.words.size(); ++i) {
      if (words[i] != s.words[i]) {
        return fmt::format("after {}: bitmap word {} is {:#x}, the machine says {:#x}", step, i,
                           words[i], s.words[i]);
      }
    }
    if (c.plugged_size != s.plugged_size || c.requested_size != s.requested_size ||
        c.usable_region_size != s.usable_region_size) {
      return fmt::format(
          "after {}: device plugged/requested/usable {:#x}/{:#x}/{:#x}, machine {:#x}/{:#x}/{:#x}",
          step, c.plugged_size, c.requested_size, c.usable_region_size, s.plugged_size,
          s.requested_size, s.usable_region_size);
    }
    return std::nullopt;
  }
};

std::optional<std::string> run_steps(Profile p, Fault device_fault, Fault model_fault,
                                     uint64_t seed, int steps, std::set<std::string>& reached) {
  Pair x(p, device_fault, model_fault);
  const U64 m;
  std::mt19937_64 rng(seed);
  auto pick = [&](uint64_t n) { return std::uniform_int_distribution<uint64_t>(0, n - 1)(rng); };
  const uint64_t bs = x.g.block_size;
  // Addresses around the region and the usable end, mostly block-aligned.
  auto addr = [&] {
    const uint64_t anchor = pick(2) != 0 ? x.g.addr : x.g.addr + x.s.usable_region_size;
    const uint64_t a = anchor + pick(kBlocks) * bs - (pick(2) != 0 ? 16 * bs : 0);
    return pick(16) == 0 ? a + 4096 : a;
  };
  auto nb = [&] {
    return static_cast<uint16_t>(pick(8) == 0    ? pick(kBlocks + 2)
                                 : pick(16) == 0 ? 0
                                                 : 1 + pick(8));
  };

  for (int i = 0; i < steps; ++i) {
    std::string step;
    switch (pick(12)) {
      case 0:
      case 1:
      case 2:
      case 3: {
        const uint64_t a = addr();
        const uint16_t n = nb();
        const bool refuse = pick(6) == 0;
        x.hooks.refuse_next = refuse;
        const RespType got = x.t.plug(a, n);
        x.hooks.refuse_next = false;
        reached.insert(fmt::format("PLUG {}{}", static_cast<int>(got), refuse ? " refused" : ""));
        const auto want = rules::plug(m, x.g, x.s, a, uint64_t{n}, x.host(!refuse), x.model_fault);
        step = fmt::format("PLUG {:#x}+{} (populate {})", a, n, refuse ? "refused" : "ok");
        if (static_cast<uint64_t>(got) != want.response)
          return fmt::format("{}: device {}, machine {}", step, static_cast<int>(got),
                             want.response);
        break;
      }
      case 4:
      case 5:
      case 6: {
        const uint64_t a = addr();
        const uint16_t n = nb();
        const RespType got = x.t.unplug(a, n);
        reached.insert(fmt::format("UNPLUG {}", static_cast<int>(got)));
        const auto want = rules::unplug(m, x.g, x.s, a, uint64_t{n}, x.host(true), x.model_fault);
        step = fmt::format("UNPLUG {:#x}+{}", a, n);
        if (static_cast<uint64_t>(got) != want.response)
          return fmt::format("{}: device {}, machine {}", step, static_cast<int>(got),
                             want.response);
        break;
      }
      case 7: {
        const RespType got = x.t.unplug_all();
        reached.insert(fmt::format("UNPLUG_ALL {}", static_cast<int>(got)));
        const auto want = rules::unplug_all(m, x.g, x.s, x.host(true), x.model_fault);
        step = "UNPLUG_ALL";
        if (static_cast<uint64_t>(got) != want.response)
          return fmt::format("{}: device {}, machine {}", step, static_cast<int>(got),
                             want.response);
        break;
      }
      case 8: {
        const uint64_t a = addr();
        const uint16_t n = nb();
        const Response got = x.t.state(a, n);
        reached.insert(got.type == RespType::Ack
                           ? fmt::format("STATE 0 {}", static_cast<int>(got.state))
                           : fmt::format("STATE {}", static_cast<int>(got.type)));
        const auto want = rules::state(m, x.g, x.s, a, uint64_t{n}, x.model_fault);
        step = fmt::format("STATE {:#x}+{}", a, n);
        if (static_cast<uint64_t>(got.type) != want.response ||
            (got.type == RespType::Ack && static_cast<uint64_t>(got.state) != want.state)) {
          return fmt::format("{}: device {}/{}, machine {}/{}", step, static_cast<int>(got.type),
                             static_cast<int>(got.state), want.response, want.state);
        }
        break;
      }
      case 9: {
        // Aligned sizes up to past the region, and now and then an unaligned one.
        uint64_t size = pick(kBlocks + 16) * bs;
        if (pick(10) == 0) size += 4096;
        const bool got = x.t.dev().set_requested_size(size).has_value();
        reached.insert(fmt::format("resize {}", got));
        const bool want = rules::host_resize(m, x.g, x.s, size, x.model_fault);
        step = fmt::format("resize {:#x}", size);
        if (got != want) return fmt::format("{}: device {}, machine {}", step, got, want);
        break;
      }
      case 10: {
        x.busy = pick(2) != 0;
        x.t.dev().set_busy(x.busy);
        step = fmt::format("busy {}", x.busy);
        break;
      }
      default: {
        switch (pick(3)) {
          case 0:
            x.t.dev().system_reset();
            rules::system_reset(m, x.g, x.s, x.host(true), x.model_fault);
            step = "system reset";
            break;
          case 1:
            x.t.dev().reset();
            (void)rules::device_reset(m, x.g, x.s, x.host(true), x.model_fault);
            step = "device reset";
            break;
          default:
            x.t.dev().wakeup_reset();
            rules::wakeup_reset(m, x.g, x.s, x.host(true), x.model_fault);
            step = "wake-up";
            break;
        }
        if (x.t.cfg().plugged_size != 0) reached.insert(step + " keeps plugged blocks");
        // A reset that unplugs under DeviceResetUnplugs leaves the device not busy.
        if (faulty(device_fault, Fault::DeviceResetUnplugs)) x.busy = false;
        if (x.t.drv().initialize() != 0x0f) return fmt::format("{}: driver re-init failed", step);
        break;
      }
    }
    if (auto d = x.compare(step)) return d;
  }
  return std::nullopt;
}

struct PairRun {
  std::optional<std::string> mismatch;  // the first disagreement
  std::set<std::string> reached;        // "PLUG 0" ...: request and response code seen
};

// Runs `steps` random operations, up to the first disagreement.
PairRun run_pair(Profile p, Fault device_fault, Fault model_fault, uint64_t seed, int steps) {
  PairRun run;
  run.mismatch = run_steps(p, device_fault, model_fault, seed, steps, run.reached);
  return run;
}
constexpr int kSteps = 3000;

TEST(BlockStateTest, MachineMatchesTheDeviceInEveryProfile) {
  for (Profile p : {Profile::Spec, Profile::Qemu, Profile::Qemu72}) {
    std::set<std::string> reached;
    for (uint64_t seed = 1; seed <= 4; ++seed) {
      const PairRun r = run_pair(p, Fault::None, Fault::None, seed, kSteps);
      EXPECT_FALSE(r.mismatch.has_value())
          << profile_name(p) << " seed " << seed << ": " << r.mismatch.value_or("");
      reached.insert(r.reached.begin(), r.reached.end());
    }
    // The sequences reach every answer that changes the state, and every one that must not.
    for (const char* want :
         {"PLUG 0", "PLUG 1", "PLUG 2", "PLUG 3", "PLUG 2 refused", "UNPLUG 0", "UNPLUG 2",
          "UNPLUG 3", "UNPLUG_ALL 0", "UNPLUG_ALL 2", "STATE 0 0", "STATE 0 1", "STATE 0 2",
          "STATE 3", "resize true", "resize false", "system reset keeps plugged blocks",
          "device reset keeps plugged blocks"}) {
      EXPECT_TRUE(reached.count(want) != 0) << profile_name(p) << " never reached " << want;
    }
  }
}

#if VMEM_MUTANTS
// The transition mutants of the catalog: the faults that change a bitmap word, plugged_size,
// requested_size or usable_region_size on some step.
struct TransitionMutant {
  Fault fault;
  bool modelled;  // block_state.h applies the fault too, so machine and device agree with it
};
constexpr TransitionMutant kTransitionMutants[] = {
    {Fault::RangeEndOffByOne, true},         {Fault::NbBlocksZeroAccepted, true},
    {Fault::UnplugStateCheckSkipped, true},  {Fault::PlugStateCheckSkipped, true},
    {Fault::UnplugPluggedSizeStale, true},   {Fault::PlugSizeNotRolledBack, true},
    {Fault::PlugBitmapKeptOnRefusal, true},  {Fault::UnplugAllUsableBelowRequested, true},
    {Fault::UsableRegionNotRounded, true},   {Fault::ResizeShrinksUsable, true},
    {Fault::HostResizeBeyondRegion, true},   {Fault::DeviceResetUnplugs, true},
    {Fault::SystemResetKeepsBlocks, true},   {Fault::WakeupUnplugs, true},
    {Fault::UnplugAllKeepsLastBlock, false},
};

TEST(BlockStateTest, CleanMachineCatchesEveryTransitionMutant) {
  for (const TransitionMutant& t : kTransitionMutants) {
    bool caught = false;
    for (uint64_t seed = 1; seed <= 4 && !caught; ++seed) {
      caught = run_pair(Profile::Spec, t.fault, Fault::None, seed, kSteps).mismatch.has_value();
    }
    EXPECT_TRUE(caught) << fault_name(t.fault) << " agrees with the clean machine";
  }
}

TEST(BlockStateTest, MachineWithTheSameFaultMatchesTheMutant) {
  for (const TransitionMutant& t : kTransitionMutants) {
    if (!t.modelled) continue;
    for (uint64_t seed = 1; seed <= 2; ++seed) {
      const PairRun r = run_pair(Profile::Spec, t.fault, t.fault, seed, kSteps);
      EXPECT_FALSE(r.mismatch.has_value())
          << fault_name(t.fault) << " seed " << seed << ": " << r.mismatch.value_or("");
    }
  }
}

#endif  // VMEM_MUTANTS

}  // namespace
}  // namespace vmem::testing
