// Inductive invariants of the discard manager's bookkeeping (reference/discard/listener_state.h,
// the machine that reference/tests/listener_state_test.cc ties to DiscardManager and the VFIO
// listener): every hook the device calls, run symbolically through those templates from any state
// that satisfies the invariants, ends in a state that satisfies them again.
//
// Three listeners, in the manager's order, with arbitrary sections [first, end) of a 256-block
// region (they may overlap, nest or coincide), hold views of symbolic contents; the bitmap is
// symbolic too. The invariants:
//   - every listener's view is exactly the plugged blocks of its section (what it maps or pins
//     is plugged memory, and all of it);
//   - every block a listener maps is a DMA mapping of its own, so no discard of a block-aligned
//     range can split a mapping (type1 would refuse that unmap and the memory would stay pinned);
//   - a populate fails only because a listener refused it (never on a mapping already there).
// They hold after each hook under the device's side of the contract, which the block-state
// proofs (block_invariants.cc) establish: a PLUG populates a valid range of unplugged blocks and
// marks them only when the populate succeeded; an UNPLUG discards plugged blocks before clearing
// them; UNPLUG_ALL, and the resets that unplug, discard everything before clearing it.
//
// Two kinds of listener are proved: recording listeners (any consumer; discards per plugged run)
// and VFIO listeners (map per block, take double discards), where the mapping faults apply.
#include "proofs/listener_invariants.h"

#include <fmt/format.h>
#include <z3++.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "proofs/solver.h"
#include "reference/discard/listener_state.h"
#include "reference/kvm/memslot_state.h"
#include "reference/trace/trace.h"

VMEM_NAMESPACE_BEGIN
namespace proofs {
namespace {

using Expr = z3::expr;
using View = rules::ListenerView<Z3Word>;

constexpr unsigned kWords = 2;
constexpr uint64_t kBlocks = uint64_t{kWords} * 64;
constexpr unsigned kListeners = 3;

enum class Kind { Recording, Vfio };
const char* kind_name(Kind k) {
  return k == Kind::Vfio ? "vfio" : "recording";
}

enum class Hook { Plug, Unplug, UnplugAll, Register, Unregister };
const char* hook_name(Hook h) {
  switch (h) {
    case Hook::Plug:
      return "populate";
    case Hook::Unplug:
      return "discard";
    case Hook::UnplugAll:
      return "discard_all";
    case Hook::Register:
      return "register";
    case Hook::Unregister:
      return "unregister";
  }
  return "?";
}

// What the manager's clip() gives in block numbers: [max(firsts), min(ends)) when that is not
// empty, else an empty range.
Expr clip_blocks(const Z3Word& m, const Expr& s_first, const Expr& s_end, const Expr& first,
                 const Expr& end, Fault fault) {
  const auto [p_first, p_end] = rules::detail::clip_to(m, s_first, s_end, first, end, fault);
  const Expr lo = z3::ite(z3::ult(s_first, first), first, s_first);
  const Expr hi = z3::ite(z3::ult(s_end, end), s_end, end);
  return z3::ite(z3::ult(lo, hi), p_first == lo && p_end == hi, !z3::ult(p_first, p_end));
}

// lemma_clip_blocks: over every 64-bit section and range that do not wrap.
ProofResult clip_blocks_lemma(const ProofOptions& o) {
  z3::context c;
  Z3Word m(c);
  const Expr sf = m.var("section_first"), se = m.var("section_end"), f = m.var("first"),
             e = m.var("end");
  z3::solver s = make_solver(c, o);
  s.add(z3::ule(sf, se) && z3::ule(f, e));
  return decide("lemma_clip_blocks", "section clipping in block numbers; every 64-bit input", s,
                !clip_blocks(m, sf, se, f, e, o.fault),
                {{"section_first", sf}, {"section_end", se}, {"first", f}, {"end", e}});
}

// One symbolic world: a bitmap and three listeners whose views satisfy the invariants.
struct World {
  z3::context& c;
  Z3Word m;
  const ProofOptions& options;
  Kind kind;
  std::vector<Expr> plugged;
  rules::Listeners<Z3Word> ls;
  std::vector<Expr> facts;
  std::vector<std::pair<std::string, Expr>> shown;
  // A case split the claims are decided under, case by case; the cases cover every input.
  std::vector<Expr> cases;

  World(z3::context& ctx, Kind k, const ProofOptions& o)
      : c(ctx), m(ctx), options(o), kind(k), cases{ctx.bool_val(true)} {
    for (unsigned i = 0; i < kWords; ++i) {
      plugged.push_back(m.var(fmt::format("plugged{}", i).c_str()));
      shown.emplace_back(fmt::format("plugged{}", i), plugged.back());
    }
    // The views the invariant allows, built as such: functions of the bitmap and the section.
    for (unsigned l = 0; l < kListeners; ++l)
      ls.push_back(listener(fmt::format("L{}", l), /*held=*/true));
  }

  // A listener with a symbolic section, holding what the invariant says (`held`) or nothing.
  View listener(const std::string& name, bool held) {
    View v{m.var((name + "_first").c_str()),
           m.var((name + "_end").c_str()),
           {},
           {},
           kind == Kind::Vfio,
           kind == Kind::Vfio};
    for (unsigned i = 0; i < kWords; ++i) {
      v.told.push_back(held ? plugged[i] & rules::range_mask(m, i, v.first, v.end) : m.lit(0));
      v.joined.push_back(m.lit(0));
    }
    facts.push_back(z3::ult(v.first, v.end) && z3::ule(v.end, m.lit(kBlocks)));
    shown.emplace_back(name + " section first", v.first);
    shown.emplace_back(name + " section end", v.end);
    return v;
  }

  // Word i of the listener's view is the plugged blocks of its section, each mapped on its own.
  Expr holds_word(const View& l, const std::vector<Expr>& p, unsigned i) const {
    return l.told[i] == (p[i] & rules::range_mask(m, i, l.first, l.end)) && l.joined[i] == m.lit(0);
  }

  Expr holds(const View& l, const std::vector<Expr>& p) const {
    Expr all = c.bool_val(true);
    for (unsigned i = 0; i < kWords; ++i)
      all = all && holds_word(l, p, i);
    return all;
  }

  // The invariant word by word: one claim per listener and word, decided one at a time.
  std::vector<Expr> all_hold(const rules::Listeners<Z3Word>& now,
                             const std::vector<Expr>& p) const {
    std::vector<Expr> parts;
    for (const View& l : now) {
      for (unsigned i = 0; i < kWords; ++i)
        parts.push_back(holds_word(l, p, i));
    }
    return parts;
  }

  Expr holds_nothing(const View& l) const {
    Expr none = c.bool_val(true);
    for (unsigned i = 0; i < kWords; ++i)
      none = none && l.told[i] == m.lit(0) && l.joined[i] == m.lit(0);
    return none;
  }

  // A block range [first, end) inside the region; facts say how it lies against the bitmap.
  std::pair<Expr, Expr> range(bool plugged_now) {
    const Expr first = m.var("first"), end = m.var("end");
    facts.push_back(z3::ult(first, end) && z3::ule(end, m.lit(kBlocks)));
    for (unsigned i = 0; i < kWords; ++i) {
      const Expr mask = rules::range_mask(m, i, first, end);
      facts.push_back((plugged[i] & mask) == (plugged_now ? mask : m.lit(0)));
    }
    // lemma_clip_blocks, for the range against each listener's section. Always the fault-free
    // clip's: a fault in clip() breaks the lemma (which says so), and the hooks then reason about
    // the faulty terms on their own rather than assume a false fact about them.
    for (const View& l : ls)
      facts.push_back(clip_blocks(m, l.first, l.end, first, end, Fault::None));
    shown.emplace_back("request first block", first);
    shown.emplace_back("request end block", end);
    return {first, end};
  }

  z3::solver solver() {
    z3::solver s = make_solver(c, options);
    for (const Expr& f : facts)
      s.add(f);
    return s;
  }
};

// ---------------------------------------------------------------------------------------------
// Counterexamples as traces (decisions D7): register the three listeners (the oldest first, so
// the manager's order is L0, L1, L2), plug the pre-state's blocks run by run (each listener then
// holds what the invariant says), run the hook, and check. The expectations are the fault-free
// manager's, so the trace replays cleanly on the reference and fails where the proof failed.

constexpr uint64_t kTraceBlockSize = 2ULL << 20;  // VFIO needs blocks of at least a page
constexpr uint64_t kTraceAddr = 4ULL << 30;

std::string section_kv(uint64_t first, uint64_t end) {
  return fmt::format("offset={:#x} size={:#x}", first * kTraceBlockSize,
                     (end - first) * kTraceBlockSize);
}

std::string plug_line(uint64_t first, uint64_t end, bool ok) {
  return fmt::format("request plug addr={:#x} nb={} -> {}\n", kTraceAddr + first * kTraceBlockSize,
                     end - first, ok ? "ack" : "busy");
}

std::string trace_head(const std::string& name, Kind kind, const z3::model& model, const World& w) {
  const DeviceOptions o = consumer_trace_device(kBlocks);
  std::string text = fmt::format(
      "vmemtrace 1\n# counterexample to {}\n{}\ninit -> status=0xf\nconsumers vfio={} -> ok\n",
      name, format_device_line(o, BackingKind::Null, "none"), kind == Kind::Vfio ? 1 : 0);
  for (unsigned l = kListeners; l-- > 0;) {
    const uint64_t first = u64(model, w.ls[l].first), end = u64(model, w.ls[l].end);
    text += kind == Kind::Vfio
                ? fmt::format("vfio add {} -> ok\n", section_kv(first, end))
                : fmt::format("listener add L{} {} -> ok\n", l, section_kv(first, end));
  }
  std::vector<uint64_t> p;
  for (const Expr& e : w.plugged)
    p.push_back(u64(model, e));
  for (uint64_t b = 0; b < kBlocks;) {
    if (((p[b / 64] >> (b % 64)) & 1) == 0) {
      ++b;
      continue;
    }
    uint64_t e = b;
    while (e < kBlocks && ((p[e / 64] >> (e % 64)) & 1) != 0)
      ++e;
    text += plug_line(b, e, true);
    b = e;
  }
  return text;
}

// A replayable model: VFIO sections do not overlap (a flat view's never do) and a refusal is one
// the trace can ask for (`listener refuse` for recording listeners, `vfio fail_map 1`, the next
// map call anywhere, for VFIO).
std::string find_trace(const std::string& name, World& w, const Expr& failing,
                       const std::vector<Expr>& extra,
                       const std::function<std::string(const z3::model&)>& step) {
  z3::solver s = w.solver();
  s.add(failing);
  for (const Expr& e : extra)
    s.add(e);
  if (w.kind == Kind::Vfio) {
    for (unsigned a = 0; a < w.ls.size(); ++a) {
      for (unsigned b = a + 1; b < w.ls.size(); ++b)
        s.add(z3::ule(w.ls[a].end, w.ls[b].first) || z3::ule(w.ls[b].end, w.ls[a].first));
    }
  }
  if (s.check() != z3::sat) return "";
  const z3::model model = s.get_model();
  return trace_head(name, w.kind, model, w) + step(model) + "check -> ok consistent\n";
}

std::string covers_of(Kind kind) {
  return fmt::format(
      "3 {} listeners with arbitrary sections in a {}-block region ({} words), symbolic views, "
      "bitmap, request and refusals",
      kind_name(kind), kBlocks, kWords);
}

// Decides the claims one at a time (a conjunction costs the solver far more than its parts); the
// first that fails gets a counterexample trace.
ProofResult decide_hook(const std::string& name, Kind kind, World& w,
                        const std::vector<Expr>& claims, const std::vector<Expr>& trace_constraints,
                        const std::function<std::string(const z3::model&)>& step) {
  z3::solver s = w.solver();
  ProofResult r;
  double seconds = 0;
  for (const Expr& claim : claims) {
    for (const Expr& when : w.cases) {
      s.push();
      s.add(when);
      r = decide(name, covers_of(kind), s, !claim, w.shown);
      s.pop();
      seconds += r.seconds;
      if (r.outcome == Outcome::Failed)
        r.trace = find_trace(name, w, when && !claim, trace_constraints, step);
      if (r.outcome != Outcome::Proved) {
        r.seconds = seconds;
        return r;
      }
    }
  }
  r.seconds = seconds;
  return r;
}

ProofResult hook(Hook h, Kind kind, const ProofOptions& o) {
  z3::context c;
  World w(c, kind, o);
  const Z3Word& m = w.m;
  const std::string name = fmt::format("listeners_kept[{}, {}]", hook_name(h), kind_name(kind));
  switch (h) {
    case Hook::Plug: {
      // Named copies, not structured bindings: the trace lambda captures them.
      const std::pair<Expr, Expr> request = w.range(/*plugged_now=*/false);
      const Expr first = request.first, end = request.second;
      std::vector<Expr> refuses;
      for (unsigned l = 0; l < kListeners; ++l) {
        refuses.push_back(c.bool_const(fmt::format("L{}_refuses", l).c_str()));
        w.shown.emplace_back(fmt::format("L{} refuses", l), refuses.back());
      }
      rules::Listeners<Z3Word> post = w.ls;
      const auto r = rules::populate(m, post, first, end, refuses, o.fault);
      std::vector<Expr> after = w.plugged;
      Expr someone_refused = c.bool_val(false);
      for (unsigned l = 0; l < kListeners; ++l)
        someone_refused = someone_refused || (r.asked[l] && refuses[l]);
      for (unsigned i = 0; i < kWords; ++i)
        after[i] = z3::ite(r.ok, w.plugged[i] | rules::range_mask(m, i, first, end), w.plugged[i]);
      std::vector<Expr> claim = w.all_hold(post, after);
      claim.insert(claim.begin(), r.ok == !someone_refused);
      std::vector<Expr> replayable;
      if (kind == Kind::Vfio) replayable = {refuses[0] == refuses[1], refuses[1] == refuses[2]};
      return decide_hook(name, kind, w, claim, replayable, [&](const z3::model& model) {
        std::string text;
        bool ok = true;
        for (unsigned l = 0; l < kListeners; ++l) {
          if (!truth(model, refuses[l])) continue;
          if (kind == Kind::Recording)
            text += fmt::format("listener refuse L{} after=0 -> ok\n", l);
          // The fault-free answer: the first listener whose part is not empty decides.
          ok = false;
        }
        if (kind == Kind::Vfio && !ok) text += "vfio fail_map 1 -> ok\n";
        const uint64_t f = u64(model, first), e = u64(model, end);
        rules::Listeners<U64> concrete;
        for (unsigned l = 0; l < kListeners; ++l) {
          concrete.push_back({u64(model, w.ls[l].first), u64(model, w.ls[l].end),
                              std::vector<uint64_t>(kWords), std::vector<uint64_t>(kWords, 0),
                              kind == Kind::Vfio, kind == Kind::Vfio});
          for (unsigned i = 0; i < kWords; ++i) {
            concrete.back().told[i] =
                u64(model, w.plugged[i]) &
                rules::range_mask(U64{}, i, concrete.back().first, concrete.back().end);
          }
        }
        std::vector<bool> said;
        for (unsigned l = 0; l < kListeners; ++l)
          said.push_back(truth(model, refuses[l]));
        const auto fault_free = rules::populate(U64{}, concrete, f, e, said);
        return text + plug_line(f, e, fault_free.ok);
      });
    }
    case Hook::Unplug: {
      const std::pair<Expr, Expr> request = w.range(/*plugged_now=*/true);
      const Expr first = request.first, end = request.second;
      rules::Listeners<Z3Word> post = w.ls;
      rules::discard(m, post, first, end, o.fault);
      std::vector<Expr> after = w.plugged;
      for (unsigned i = 0; i < kWords; ++i)
        after[i] = w.plugged[i] & ~rules::range_mask(m, i, first, end);
      return decide_hook(name, kind, w, w.all_hold(post, after), {}, [&](const z3::model& model) {
        return fmt::format("request unplug addr={:#x} nb={} -> ack\n",
                           kTraceAddr + u64(model, first) * kTraceBlockSize,
                           u64(model, end) - u64(model, first));
      });
    }
    case Hook::UnplugAll: {
      rules::Listeners<Z3Word> post = w.ls;
      rules::discard_all(m, post, w.plugged);
      Expr any = c.bool_val(false);
      for (const Expr& p : w.plugged)
        any = any || p != m.lit(0);
      w.facts.push_back(any);  // the device calls discard_all only with something plugged
      return decide_hook(
          name, kind, w, w.all_hold(post, std::vector<Expr>(kWords, m.lit(0))), {},
          [](const z3::model&) { return std::string("request unplug_all -> ack\n"); });
    }
    case Hook::Register: {
      View fresh = w.listener("new", /*held=*/false);
      const Expr refuses = c.bool_const("new_refuses");
      w.shown.emplace_back("new refuses", refuses);
      const Expr registered = rules::replay_to(m, fresh, w.plugged, refuses, o.fault);
      const std::vector<Expr> claim = {
          z3::ite(registered, w.holds(fresh, w.plugged), w.holds_nothing(fresh)) &&
          (registered == !(refuses && rules::detail::meets(m, w.plugged, fresh.first, fresh.end)))};
      std::vector<Expr> replayable;
      if (kind == Kind::Recording) replayable.push_back(!refuses);
      if (kind == Kind::Vfio) {
        for (const View& l : w.ls)
          replayable.push_back(z3::ule(l.end, fresh.first) || z3::ule(fresh.end, l.first));
      }
      return decide_hook(name, kind, w, claim, replayable, [&](const z3::model& model) {
        const uint64_t f = u64(model, fresh.first), e = u64(model, fresh.end);
        if (kind == Kind::Recording)
          return fmt::format("listener add L{} {} -> ok\n", kListeners, section_kv(f, e));
        const bool fails = truth(model, refuses);
        bool replays = false;
        for (uint64_t b = f; b < e; ++b)
          replays = replays || ((u64(model, w.plugged[b / 64]) >> (b % 64)) & 1) != 0;
        return fmt::format("{}vfio add {} -> {}\n", fails ? "vfio fail_map 1 -> ok\n" : "",
                           section_kv(f, e), fails && replays ? "error" : "ok");
      });
    }
    case Hook::Unregister: {
      // Each position in turn: the listener leaves holding nothing, the others keep theirs.
      std::vector<Expr> claim;
      for (unsigned k = 0; k < kListeners; ++k) {
        rules::Listeners<Z3Word> post = w.ls;
        const View gone = rules::unregister_listener(m, post, k, w.plugged, o.fault);
        claim.push_back(w.holds_nothing(gone));
        for (const Expr& e : w.all_hold(post, w.plugged))
          claim.push_back(e);
      }
      return decide_hook(name, kind, w, claim, {}, [&](const z3::model& model) {
        // The trace removes the first listener whose removal breaks the claim.
        for (unsigned k = 0; k < kListeners; ++k) {
          bool held = false;
          for (unsigned i = 0; i < kWords; ++i) {
            held = held || (u64(model, w.plugged[i]) &
                            rules::range_mask(U64{}, i, u64(model, w.ls[k].first),
                                              u64(model, w.ls[k].end))) != 0;
          }
          if (!held) continue;
          const uint64_t f = u64(model, w.ls[k].first), e = u64(model, w.ls[k].end);
          return kind == Kind::Vfio ? fmt::format("vfio del {} -> ok\n", section_kv(f, e))
                                    : fmt::format("listener del L{} -> ok\n", k);
        }
        return std::string();
      });
    }
  }
  return {};
}

// ---------------------------------------------------------------------------------------------
// Dynamic memslots (reference/kvm/memslot_state.h): a memslot is mapped exactly when it holds a
// plugged block, and the memslots a range touches are valid indices.
//
// Two memslots of `size` blocks over a region of `region` <= 128 blocks (so size < region <=
// 2 size), both symbolic, as is the bitmap. memslots_of() divides by the memslot size, which is
// not a power of two; the division is cut out of the queries (each application a fresh unknown)
// and tied to its value by lemma_small_quotient: below 2 size + 1 the quotient is 0, 1 or 2.

class QuotientWord : public Z3Word {
 public:
  struct Cut {
    Expr a, b, value;
  };
  explicit QuotientWord(z3::context& c) : Z3Word(c) {}
  Word udiv(const Word& a, const Word& b) const {
    for (const Cut& cut : cuts_) {
      if (z3::eq(cut.a, a) && z3::eq(cut.b, b)) return cut.value;
    }
    cuts_.push_back({a, b, var(fmt::format("quotient{}", cuts_.size()).c_str())});
    return cuts_.back().value;
  }
  const std::vector<Cut>& cuts() const { return cuts_; }

 private:
  mutable std::vector<Cut> cuts_;
};

// The quotient a / d for a <= 2d: 0, 1 or 2.
Expr small_quotient(const Z3Word& m, const Expr& a, const Expr& d) {
  return z3::ite(z3::ule(d + d, a), m.lit(2), z3::ite(z3::ule(d, a), m.lit(1), m.lit(0)));
}

ProofResult small_quotient_lemma(const ProofOptions& o) {
  z3::context c;
  Z3Word m(c);
  const Expr a = m.var("a"), d = m.var("d");
  z3::solver s = make_solver(c, o);
  s.add(z3::ult(m.lit(0), d) && z3::ult(d, m.lit(1ULL << 62)) && z3::ule(a, d + d));
  return decide("lemma_small_quotient", "a / d for a <= 2d, every d in [1, 2^62)", s,
                !(z3::udiv(a, d) == small_quotient(m, a, d)), {{"a", a}, {"d", d}});
}

// Mappings within the container's limit. With every listener's view plugged ∩ its section (the
// invariant the hooks keep) and each mapped block a mapping of its own, the listeners hold at
// most the blocks of their sections; the budget check VfioMemoryListener::region_add() runs
// (consumer_rules.h's section_mappings() and mapping_budget_exceeded()) admits the sections only
// if those blocks, plus the memslots that may still appear as mappings, minus the listeners, are
// within a known limit. So in every state the invariant allows, the mappings are within it.
ProofResult within_entry_limit(const ProofOptions& o) {
  z3::context c;
  World w(c, Kind::Vfio, o);
  const Z3Word& m = w.m;
  const Expr limit = m.var("dma_entry_limit"), slots = m.var("max_memslots");
  w.shown.emplace_back("dma_entry_limit", limit);
  w.shown.emplace_back("max_memslots", slots);
  QuotientWord q(c);
  Expr mappings = m.lit(0), sections = m.lit(0), blocks = m.lit(0);
  std::vector<Expr> steps;  // proved in turn, each a fact for the next (decide_each)
  for (unsigned l = 0; l < kListeners; ++l) {
    const View& v = w.ls[l];
    Expr held = m.lit(0);
    for (unsigned i = 0; i < kWords; ++i) {
      // popcount(told) as an unknown, bound by lemma_popcount_union and lemma_range_mask_exact:
      // told is inside the section's mask, whose count is the section's blocks in the word.
      const Expr count = z3::zext(c.bv_const(fmt::format("L{}_mappings{}", l, i).c_str(), 8), 56);
      w.facts.push_back(z3::ule(count, blocks_in_word(m, i, v.first, v.end)));
      held = held + count;
    }
    steps.push_back(z3::ule(held, v.end - v.first));
    mappings = mappings + held;
    blocks = blocks + (v.end - v.first);
    // In block units the granule is one block; the division by it is cut out and tied to its
    // value.
    sections = sections + rules::section_mappings(q, v.first, v.end - v.first, m.lit(1));
  }
  for (const QuotientWord::Cut& cut : q.cuts())
    w.facts.push_back(z3::implies(cut.b == m.lit(1), cut.value == cut.a));
  w.facts.push_back(
      !rules::mapping_budget_exceeded(m, sections, m.lit(kListeners), slots, limit, o.fault));
  // type1 always has a limit (a u32); each listener stands for a memslot QEMU counted.
  w.facts.push_back(limit != m.lit(0) && z3::ule(limit, m.lit(0xffffffff)) &&
                    z3::ule(m.lit(kListeners), slots));
  steps.push_back(sections == blocks);
  steps.push_back(z3::ule(sections, limit));
  steps.push_back(z3::ule(mappings, limit));
  z3::solver s = w.solver();
  ProofResult r = decide_each("listeners_within_entry_limit",
                              fmt::format("3 VFIO listeners with arbitrary sections in a "
                                          "{}-block region; every limit and memslot count",
                                          kBlocks),
                              s, steps, w.shown, /*chain=*/true);
  // A budget that admits too much shows on the first section a container takes.
  if (r.outcome == Outcome::Failed) r.trace = mapping_budget_trace(o);
  return r;
}

enum class MemslotHook { Plug, Unplug, UnplugAll };
const char* memslot_hook_name(MemslotHook h) {
  switch (h) {
    case MemslotHook::Plug:
      return "plug";
    case MemslotHook::Unplug:
      return "unplug";
    case MemslotHook::UnplugAll:
      return "unplug_all";
  }
  return "?";
}

constexpr unsigned kMemslots = 2;
constexpr uint64_t kTraceMemslotBlockSize = 16ULL << 20;  // 64 blocks make QEMU's 1 GiB minimum

ProofResult memslot_hook(MemslotHook h, const ProofOptions& o) {
  z3::context c;
  QuotientWord m(c);
  const std::string name = fmt::format("memslots_kept[{}]", memslot_hook_name(h));
  const std::string covers = fmt::format(
      "2 memslots of any size over any region of at most {} blocks, symbolic bitmap, "
      "request and refusals",
      kBlocks);
  std::vector<Expr> facts;
  std::vector<std::pair<std::string, Expr>> shown;
  rules::MemslotView<QuotientWord> view{m.var("memslot_size"), m.var("region"), {}};
  facts.push_back(z3::ult(view.size, view.region) && z3::ule(view.region, view.size + view.size) &&
                  z3::ule(view.region, m.lit(kBlocks)));
  std::vector<Expr> plugged;
  for (unsigned i = 0; i < kWords; ++i) {
    plugged.push_back(m.var(fmt::format("plugged{}", i).c_str()));
    // Nothing is plugged past the region.
    facts.push_back((plugged[i] & rules::range_mask(m, i, view.region, m.lit(kBlocks))) ==
                    m.lit(0));
    shown.emplace_back(fmt::format("plugged{}", i), plugged[i]);
  }
  shown.emplace_back("memslot size", view.size);
  shown.emplace_back("region blocks", view.region);
  // The invariant, built in: a memslot is mapped iff it holds a plugged block.
  const auto holds_plugged = [&](const std::vector<Expr>& p, std::size_t i) {
    const auto [first, end] = rules::detail::memslot_blocks(m, view, i);
    return rules::detail::meets(m, p, first, end);
  };
  for (std::size_t i = 0; i < kMemslots; ++i)
    view.mapped.push_back(holds_plugged(plugged, i));

  const Expr first = m.var("first"), end = m.var("end");
  std::vector<Expr> after = plugged;
  std::vector<Expr> refuses;
  Expr populate_ok = c.bool_val(true);
  Expr indices_valid = c.bool_val(true);
  rules::MemslotView<QuotientWord> post = view;
  if (h != MemslotHook::UnplugAll) {
    facts.push_back(z3::ult(first, end) && z3::ule(end, view.region));
    for (unsigned i = 0; i < kWords; ++i) {
      const Expr mask = rules::range_mask(m, i, first, end);
      facts.push_back((plugged[i] & mask) == (h == MemslotHook::Plug ? m.lit(0) : mask));
      after[i] = h == MemslotHook::Plug ? plugged[i] | mask : plugged[i] & ~mask;
    }
    shown.emplace_back("request first block", first);
    shown.emplace_back("request end block", end);
  }
  switch (h) {
    case MemslotHook::Plug: {
      for (unsigned i = 0; i < kMemslots; ++i) {
        refuses.push_back(c.bool_const(fmt::format("memslot{}_refused", i).c_str()));
        shown.emplace_back(fmt::format("memslot {} refused", i), refuses.back());
      }
      populate_ok = c.bool_const("populate_ok");
      shown.emplace_back("populate_ok", populate_ok);
      const auto touched = rules::memslots_of(m, first, end - first, view.size, o.fault);
      indices_valid = z3::ule(touched.first, touched.end) && z3::ule(touched.end, m.lit(kMemslots));
      const Expr mapped = rules::activate(m, post, first, end, refuses, o.fault);
      const Expr ok = mapped && populate_ok;
      for (unsigned i = 0; i < kWords; ++i)
        after[i] = z3::ite(ok, after[i], plugged[i]);
      rules::MemslotView<QuotientWord> refused = post;
      rules::deactivate_unplugged(m, refused, first, end, plugged, o.fault);
      for (std::size_t i = 0; i < kMemslots; ++i)
        post.mapped[i] = z3::ite(ok, post.mapped[i], refused.mapped[i]);
      break;
    }
    case MemslotHook::Unplug:
      rules::deactivate_unplugged(m, post, first, end, after, o.fault);
      break;
    case MemslotHook::UnplugAll:
      for (unsigned i = 0; i < kWords; ++i)
        after[i] = m.lit(0);
      facts.push_back(rules::detail::meets(m, plugged, m.lit(0), m.lit(kBlocks)));
      rules::deactivate_unplugged(m, post, m.lit(0), view.region, after, o.fault);
      break;
  }
  // lemma_small_quotient for every division by the memslot size.
  for (const QuotientWord::Cut& cut : m.cuts()) {
    facts.push_back(
        z3::implies(z3::ule(cut.a, cut.b + cut.b), cut.value == small_quotient(m, cut.a, cut.b)));
  }
  std::vector<Expr> claims = {indices_valid};
  for (std::size_t i = 0; i < kMemslots; ++i)
    claims.push_back(post.mapped[i] == holds_plugged(after, i));

  z3::solver s = make_solver(c, o);
  for (const Expr& f : facts)
    s.add(f);
  ProofResult r;
  double seconds = 0;
  for (const Expr& claim : claims) {
    s.push();
    r = decide(name, covers, s, !claim, shown);
    seconds += r.seconds;
    if (r.outcome == Outcome::Failed) {
      // A replayable model: the geometry QEMU decides for two memslots of 1 GiB blocks-worth
      // (64 blocks of 16 MiB over 65..128 blocks), no memslot refused.
      s.add(view.size == m.lit(64) && z3::ult(m.lit(64), view.region));
      for (const Expr& e : refuses)
        s.add(!e);
      if (s.check() == z3::sat) {
        const z3::model model = s.get_model();
        const DeviceOptions d = memslot_trace_device(u64(model, view.region));
        std::string text = fmt::format(
            "vmemtrace 1\n# counterexample to {}\n{}\ninit -> status=0xf\nconsumers "
            "memslots={} -> ok\nlistener add W offset=0x0 size={:#x} -> ok\n",
            name, format_device_line(d, BackingKind::Null, "none"), kMemslots, d.region_size);
        const auto gpa = [&](uint64_t b) { return d.addr + b * d.block_size; };
        for (uint64_t b = 0; b < kBlocks;) {
          if (((u64(model, plugged[b / 64]) >> (b % 64)) & 1) == 0) {
            ++b;
            continue;
          }
          uint64_t e = b;
          while (e < kBlocks && ((u64(model, plugged[e / 64]) >> (e % 64)) & 1) != 0)
            ++e;
          text += fmt::format("request plug addr={:#x} nb={} -> ack\n", gpa(b), e - b);
          b = e;
        }
        const uint64_t f = u64(model, first), e = u64(model, end);
        switch (h) {
          case MemslotHook::Plug: {
            const bool ok = truth(model, populate_ok);
            if (!ok) text += "listener refuse W after=0 -> ok\n";
            text += fmt::format("request plug addr={:#x} nb={} -> {}\n", gpa(f), e - f,
                                ok ? "ack" : "busy");
            break;
          }
          case MemslotHook::Unplug:
            text += fmt::format("request unplug addr={:#x} nb={} -> ack\n", gpa(f), e - f);
            break;
          case MemslotHook::UnplugAll:
            text += "request unplug_all -> ack\n";
            break;
        }
        r.trace = text + "check -> ok consistent\n";
      }
    }
    s.pop();
    if (r.outcome != Outcome::Proved) break;
  }
  r.seconds = seconds;
  return r;
}

// A counterexample's device: `blocks` blocks at kTraceAddr, all requested.
DeviceOptions trace_device(uint64_t blocks, uint64_t block_size) {
  DeviceOptions d;
  d.addr = kTraceAddr;
  d.block_size = block_size;
  d.region_size = blocks * block_size;
  d.requested_size = d.region_size;
  return d;
}

}  // namespace

DeviceOptions consumer_trace_device(uint64_t blocks) {
  return trace_device(blocks, kTraceBlockSize);
}

DeviceOptions memslot_trace_device(uint64_t blocks) {
  DeviceOptions d = trace_device(blocks, kTraceMemslotBlockSize);
  d.dynamic_memslots = true;
  d.unplugged_inaccessible = Tristate::On;
  return d;
}

// The budget's counterexample (listener_invariants.h): the first VFIO section of a container.
std::string mapping_budget_trace(const ProofOptions& o) {
  z3::context c;
  Z3Word m(c);
  const DeviceOptions d = consumer_trace_device(64);
  const Expr blocks = m.var("section_blocks"), limit = m.var("entry_limit");
  constexpr uint64_t kQemuMemslots = 512;  // QEMU's fallback, what ConsumerSet gives VFIO
  z3::solver s = make_solver(c, o);
  s.add(z3::ult(m.lit(0), blocks) && z3::ule(blocks, m.lit(d.region_size / d.block_size)));
  s.add(z3::ult(m.lit(0), limit) && z3::ule(limit, m.lit(0xffffffff)));
  const auto refused = [&](Fault fault) {
    return rules::mapping_budget_exceeded(m, blocks, m.lit(1), m.lit(kQemuMemslots), limit, fault);
  };
  s.add(refused(Fault::None) != refused(o.fault));
  if (s.check() != z3::sat) return {};
  const z3::model model = s.get_model();
  return fmt::format(
      "vmemtrace 1\n"
      "# the VFIO mapping budget: a section of {} blocks needs {} + {} - 1 mappings at worst\n"
      "{}\ninit -> status=0xf\nconsumers vfio=1 entry_limit={} -> ok\n"
      "vfio add offset=0x0 size={:#x} -> {}\n"
      "check -> ok consistent\n",
      u64(model, blocks), u64(model, blocks), kQemuMemslots,
      format_device_line(d, BackingKind::Null, "none"), u64(model, limit),
      u64(model, blocks) * d.block_size,
      model.eval(refused(Fault::None), true).is_true() ? "error" : "ok");
}

std::vector<Proof> listener_invariant_proofs() {
  std::vector<Proof> proofs = {
      {"lemma_clip_blocks", "section clipping in block numbers", clip_blocks_lemma},
      {"lemma_small_quotient", "memslot indices", small_quotient_lemma, true}};
  for (Hook h : {Hook::Plug, Hook::Unplug, Hook::UnplugAll, Hook::Register, Hook::Unregister}) {
    for (Kind k : {Kind::Recording, Kind::Vfio}) {
      proofs.push_back({fmt::format("listeners_kept[{}, {}]", hook_name(h), kind_name(k)),
                        covers_of(k), [h, k](const ProofOptions& o) { return hook(h, k, o); }});
    }
  }
  proofs.push_back({"listeners_within_entry_limit", "VFIO mapping budget", within_entry_limit});
  for (MemslotHook h : {MemslotHook::Plug, MemslotHook::Unplug, MemslotHook::UnplugAll}) {
    proofs.push_back({fmt::format("memslots_kept[{}]", memslot_hook_name(h)), "dynamic memslots",
                      [h](const ProofOptions& o) { return memslot_hook(h, o); }});
  }
  return proofs;
}

}  // namespace proofs
VMEM_NAMESPACE_END
