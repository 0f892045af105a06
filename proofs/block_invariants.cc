// Inductive invariants of the block-state machine (reference/mem/block_state.h, the machine the
// device runs and reference/tests/block_state_test.cc ties to it): every transition, run
// symbolically through the device's own templates from any state that satisfies the invariants,
// ends in a state that satisfies them again.
//
// The bitmap has 256 blocks (four words) of symbolic contents; the geometry, the request and the
// host's inputs are symbolic too. A direct encoding would bit-blast four 64-bit popcounts on each
// side (a single word took tens of seconds), so popcount is decomposed into per-word lemmas,
// each proved once over every 64-bit input with the real popcount:
//   popcount_union       x & k = 0  ->  pc(x | k) = pc(x) + pc(k), pc(x) <= 64
//   popcount_difference  x & k = k  ->  pc(x & ~k) + pc(k) = pc(x)
//   range_mask_exact[w]  bit j of range_mask(w, first, end) is set iff first <= 64w+j < end,
//                        and pc(range_mask(w, first, end)) = |[first, end) ∩ word w|
// The transition queries then treat each popcount as an unknown number, bound only by instances
// of those lemmas: sound, since every instance is a proved fact, and cheap.
#include "proofs/block_invariants.h"

#include <fmt/format.h>
#include <z3++.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "proofs/solver.h"
#include "reference/mem/block_state.h"
#include "reference/trace/trace.h"

VMEM_NAMESPACE_BEGIN
namespace proofs {
namespace {

using Expr = z3::expr;

// The word model with its multiplications, divisions and overflow tests by the block size cut
// out: each distinct application is a fresh unknown, which the proof then ties to the shift it
// equals by an instance of lemma_block_arithmetic. Bit-blasting a 64-bit multiplier and divider
// next to the bitmap is what kept PLUG and UNPLUG from finishing.
class CutWord : public Z3Word {
 public:
  struct Cut {
    char op;  // '*', '/', 'o' (mul_overflows)
    Expr a, b, value;
  };

  explicit CutWord(z3::context& c) : Z3Word(c) {}

  Word mul(const Word& a, const Word& b) const { return cut('*', a, b); }
  Word udiv(const Word& a, const Word& b) const { return cut('/', a, b); }
  Bool mul_overflows(const Word& a, const Word& b) const { return cut('o', a, b); }
  const std::vector<Cut>& cuts() const { return cuts_; }

 private:
  Expr cut(char op, const Expr& a, const Expr& b) const {
    for (const Cut& c : cuts_) {
      if (c.op == op && z3::eq(c.a, a) && z3::eq(c.b, b)) return c.value;
    }
    const std::string name = fmt::format("cut{}", cuts_.size());
    Expr v = op == 'o' ? context().bool_const(name.c_str()) : var(name.c_str());
    cuts_.push_back({op, a, b, v});
    return v;
  }

  mutable std::vector<Cut> cuts_;
};

using Machine = rules::BlockState<CutWord>;

constexpr unsigned kWords = 4;
constexpr uint64_t kBlocks = uint64_t{kWords} * 64;
// Block sizes 2^0 .. 2^55: a 256-block region then stays below 2^64.
constexpr uint64_t kMaxBlockShift = 55;

// lemma_block_arithmetic, for each multiplication, division and overflow test by the block
// size that `m` cut out (with a multiplier of 16 bits, as nb_blocks is).
void tie_block_arithmetic(const CutWord& m, std::vector<Expr>& facts, const Expr& block_size,
                          const Expr& shift) {
  for (const CutWord::Cut& cut : m.cuts()) {
    if (!z3::eq(cut.b, block_size)) continue;  // left unknown: a proof would fail, not lie
    const Expr small = z3::ule(cut.a, m.lit(0xffff));
    switch (cut.op) {
      case '*':
        facts.push_back(z3::implies(small, cut.value == z3::shl(cut.a, shift)));
        break;
      case 'o':
        facts.push_back(
            z3::implies(small, cut.value == z3::ult(z3::lshr(m.lit(~0ULL), shift), cut.a)));
        break;
      case '/':
        facts.push_back(cut.value == z3::lshr(cut.a, shift));
        break;
    }
  }
}

Expr bit(const Expr& w, unsigned j) {
  return w.extract(j, j) == w.ctx().bv_val(1, 1);
}

// ---------------------------------------------------------------------------------------------
// The lemmas, with the real popcount.

// By induction over popcount's adder tree (z3_word.h), in one solver: each level's claim is
// checked with every lower level's claim already asserted, so no query has to rearrange a whole
// tree of additions (which bit-blasting cannot do in minutes). At level L, for every node:
// count(x | k) = count(x) + count(k) without wrapping, and count(x) <= 2^L.
ProofResult popcount_union(const ProofOptions& o) {
  z3::context c;
  Z3Word m(c);
  const Expr x = m.var("x"), k = m.var("k");
  z3::solver s = make_solver(c, o);
  s.add((x & k) == m.lit(0));
  const auto tx = m.popcount_tree(x), tk = m.popcount_tree(k), tu = m.popcount_tree(x | k);
  ProofResult r;
  double seconds = 0;
  for (std::size_t level = 0; level < tx.size(); ++level) {
    Expr claim = c.bool_val(true);
    const unsigned width = tx[level][0].get_sort().bv_size();
    const Expr limit = c.bv_val(uint64_t{1} << level, width + 1);
    for (std::size_t i = 0; i < tx[level].size(); ++i) {
      const Expr nx = z3::zext(tx[level][i], 1), nk = z3::zext(tk[level][i], 1),
                 nu = z3::zext(tu[level][i], 1);
      claim = claim && nu == nx + nk && z3::ule(nx, limit) && z3::ule(nk, limit);
    }
    s.push();
    r = decide("lemma_popcount_union", "per word: 64 bits, by induction over the adder tree", s,
               !claim, {{"x", x}, {"k", k}, {"level", m.lit(level)}});
    s.pop();
    seconds += r.seconds;
    if (r.outcome != Outcome::Proved) return r;
    s.add(claim);
  }
  // The top of the tree is the count.
  const Expr top =
      m.popcount(x | k) == m.popcount(x) + m.popcount(k) && z3::ule(m.popcount(x), m.lit(64));
  r = decide("lemma_popcount_union", "per word: 64 bits, by induction over the adder tree", s, !top,
             {{"x", x}, {"k", k}});
  r.seconds += seconds;
  return r;
}

// An instance of the union lemma: with k inside x, (x & ~k) and k are disjoint and make up x.
ProofResult popcount_difference(const ProofOptions& o) {
  z3::context c;
  Z3Word m(c);
  const Expr x = m.var("x"), k = m.var("k");
  z3::solver s = make_solver(c, o);
  s.add((x & k) == k);
  const Expr rest = x & ~k;
  s.add(m.popcount(rest | k) == m.popcount(rest) + m.popcount(k));  // lemma_popcount_union
  const Expr claim = m.popcount(rest) + m.popcount(k) == m.popcount(x);
  return decide("lemma_popcount_difference", "per word: 64 bits, from lemma_popcount_union", s,
                !claim, {{"x", x}, {"k", k}});
}

// The device multiplies and divides by the block size; with a power of two that is a shift.
ProofResult block_arithmetic(const ProofOptions& o) {
  z3::context c;
  Z3Word m(c);
  const Expr shift = m.var("block_shift"), a = m.var("a");
  const Expr nb = z3::zext(c.bv_const("nb_blocks", 16), 48);
  const Expr bs = z3::shl(m.lit(1), shift);
  z3::solver s = make_solver(c, o);
  s.add(z3::ult(shift, m.lit(64)));
  return decide_each("lemma_block_arithmetic", "every block size 2^0..2^63, nb_blocks < 2^16", s,
                     {m.mul(nb, bs) == z3::shl(nb, shift),
                      m.mul_overflows(nb, bs) == z3::ult(z3::lshr(m.lit(~0ULL), shift), nb),
                      m.udiv(a, bs) == z3::lshr(a, shift)},
                     {{"block_shift", shift}, {"a", a}, {"nb_blocks", nb}});
}

ProofResult range_mask_exact(unsigned w, const ProofOptions& o) {
  z3::context c;
  Z3Word m(c);
  const Expr first = m.var("first"), end = m.var("end");
  const Expr mask = rules::range_mask(m, w, first, end);
  Expr exact = c.bool_val(true);
  for (unsigned j = 0; j < 64; ++j) {
    const Expr b = m.lit(64ULL * w + j);
    exact = exact && (bit(mask, j) == (z3::ule(first, b) && z3::ult(b, end)));
  }
  const Expr claim = exact && m.popcount(mask) == blocks_in_word(m, w, first, end);
  z3::solver s = make_solver(c, o);
  return decide(fmt::format("lemma_range_mask_exact[word {}]", w),
                "bitmap range masks; every 64-bit first and end", s, !claim,
                {{"first", first}, {"end", end}, {"mask", mask}});
}

// ---------------------------------------------------------------------------------------------
// The transitions.

// The sum of the per-word counts of a block range inside the 256 blocks is its length.
ProofResult blocks_in_words_sum(const ProofOptions& o) {
  z3::context c;
  Z3Word m(c);
  const Expr first = m.var("first"), end = m.var("end");
  z3::solver s = make_solver(c, o);
  s.add(z3::ult(first, end) && z3::ule(end, m.lit(kBlocks)));
  Expr sum = blocks_in_word(m, 0, first, end);
  for (unsigned w = 1; w < kWords; ++w)
    sum = sum + blocks_in_word(m, w, first, end);
  return decide("lemma_blocks_in_words_sum", "ranges inside 256 blocks", s, !(sum == end - first),
                {{"first", first}, {"end", end}});
}

// No block is plugged exactly when every word is zero.
ProofResult count_zero(const ProofOptions& o) {
  z3::context c;
  Z3Word m(c);
  Expr sum = m.lit(0), zero = c.bool_val(true);
  std::vector<std::pair<std::string, Expr>> shown;
  for (unsigned w = 0; w < kWords; ++w) {
    const Expr word = m.var(fmt::format("word{}", w).c_str());
    sum = sum + m.popcount(word);
    zero = zero && word == m.lit(0);
    shown.emplace_back(fmt::format("word{}", w), word);
  }
  z3::solver s = make_solver(c, o);
  return decide("lemma_count_zero", "4 words", s, !((sum == m.lit(0)) == zero), shown);
}

// A shift by the block shift distributes over sums and differences (modulo 2^64, as the device's
// sizes are computed).
ProofResult shift_distributes(const ProofOptions& o) {
  z3::context c;
  Z3Word m(c);
  const Expr a = m.var("a"), b = m.var("b"), shift = m.var("block_shift");
  z3::solver s = make_solver(c, o);
  s.add(z3::ult(shift, m.lit(64)));
  return decide_each("lemma_shift_distributes", "all 64-bit inputs", s,
                     {z3::shl(a, shift) + z3::shl(b, shift) == z3::shl(a + b, shift),
                      z3::shl(a, shift) - z3::shl(b, shift) == z3::shl(a - b, shift)},
                     {{"a", a}, {"b", b}, {"block_shift", shift}});
}

// A request valid_range() accepts covers nb_blocks blocks [first, end) of the usable region,
// with first = (gpa - addr) >> block_shift as the device computes it.
ProofResult valid_range_in_blocks(const ProofOptions& o) {
  z3::context c;
  CutWord m(c);
  const Expr shift = m.var("block_shift"), addr = m.var("addr"), usable = m.var("usable"),
             gpa = m.var("gpa");
  const Expr nb = z3::zext(c.bv_const("nb_blocks", 16), 48);
  const Expr bs = z3::shl(m.lit(1), shift), region = z3::shl(m.lit(kBlocks), shift);
  z3::solver s = make_solver(c, o);
  s.add(z3::ule(shift, m.lit(kMaxBlockShift)) && aligned(m, addr, bs) &&
        m.negate(m.add_overflows(addr, region)));
  s.add(aligned(m, usable, bs) && z3::ule(usable, region));
  const Expr first = z3::lshr(gpa - addr, shift), end = first + nb;
  const Expr valid = rules::valid_range(m, addr, usable, bs, gpa, nb, o.fault);
  std::vector<Expr> facts;
  tie_block_arithmetic(m, facts, bs, shift);
  for (const Expr& f : facts)
    s.add(f);
  return decide_each("lemma_valid_range_in_blocks",
                     "DEV-26/33/46 in block units; 256 blocks, every block size 2^0..2^55", s,
                     {z3::implies(valid, z3::ult(first, end) && end - first == nb),
                      // Steps towards the claims below: the offset is whole blocks, and the
                      // request ends inside the usable region.
                      z3::implies(valid, z3::shl(first, shift) == gpa - addr),
                      z3::implies(valid, z3::ule((gpa - addr) + z3::shl(nb, shift), usable)),
                      z3::implies(valid, z3::ule(z3::shl(end, shift), usable)),
                      z3::implies(valid, z3::ule(end, z3::lshr(usable, shift))),
                      z3::ule(z3::lshr(usable, shift), m.lit(kBlocks)),
                      z3::implies(valid, z3::ule(end, m.lit(kBlocks)))},
                     {{"block_shift", shift},
                      {"addr", addr},
                      {"usable_region_size", usable},
                      {"gpa", gpa},
                      {"nb_blocks", nb}},
                     /*chain=*/true);
}

// ---------------------------------------------------------------------------------------------
// The transitions.
//
// Each transition is split into cases by what it did to the bitmap. One query checks that in
// each case every word changed as the case says (kept, cleared, the request's blocks added to
// an unplugged range, or removed from a plugged one). Then, per case, the post-state's count of
// plugged blocks follows from the pre-state's by the lemmas, with no popcount in the query:
//   kept: T' = T;  cleared: T' = 0;  plugged: T' = T + (end - first);  unplugged: T' = T - (end -
//   first)
// and a second query checks the invariants of the post-state from that count.

enum class Change { Kept, Cleared, Plugged, Unplugged };

struct Case {
  std::string name;
  Expr when;
  Change change;
};

// The trace's spelling of a response code: "ack", "nack", "busy", "error".
std::string response_name(uint64_t r) {
  return trace_word(to_string(static_cast<RespType>(r)));
}

// The failing step of a counterexample, run on the fault-free machine: returns its trace lines,
// with the machine's answers as the expectations.
struct Step {
  std::function<std::string(const U64&, const rules::Geometry<U64>&, rules::BlockState<U64>&)> run;
};

// One symbolic world: a geometry and a state satisfying the invariants, with T the number of
// plugged blocks (an unknown bound by the invariants, as popcount is by its lemmas).
struct World {
  z3::context& c;
  CutWord m;
  const ProofOptions& options;
  Expr shift;
  rules::Geometry<CutWord> g;
  Machine pre;
  Expr plugged_blocks;
  std::vector<Expr> facts;  // the preconditions, the pre-state's invariants, lemma instances
  std::vector<std::pair<std::string, Expr>> shown;
  // The request's block range, for PLUG and UNPLUG.
  std::optional<std::pair<Expr, Expr>> range;
  // The failing step as trace lines, from a model of the inputs; set by each transition.
  std::function<Step(const z3::model&)> step;

  World(z3::context& ctx, Profile p, const ProofOptions& o)
      : c(ctx),
        m(ctx),
        options(o),
        shift(m.var("block_shift")),
        g{m.var("addr"), m.lit(0), m.lit(0), m.var("extent"), p},
        pre{{}, m.var("plugged_size"), m.var("requested_size"), m.var("usable_region_size")},
        plugged_blocks(m.var("plugged_blocks")) {
    g.block_size = z3::shl(m.lit(1), shift);
    g.region_size = z3::shl(m.lit(kBlocks), shift);
    facts.push_back(z3::ule(shift, m.lit(kMaxBlockShift)));
    facts.push_back(aligned(m, g.addr, g.block_size) &&
                    m.negate(m.add_overflows(g.addr, g.region_size)));
    for (unsigned i = 0; i < kWords; ++i)
      pre.words.push_back(m.var(fmt::format("word{}", i).c_str()));
    for (const auto& [name, e] : invariants(pre, plugged_blocks))
      facts.push_back(e);
    facts.push_back((plugged_blocks == m.lit(0)) == all_zero(pre));  // lemma_count_zero
    shown = {{"block_size", g.block_size}, {"addr", g.addr}, {"extent", g.extent}};
    for (unsigned i = 0; i < kWords; ++i)
      shown.emplace_back(fmt::format("word{}", i), pre.words[i]);
    shown.emplace_back("plugged_size", pre.plugged_size);
    shown.emplace_back("requested_size", pre.requested_size);
    shown.emplace_back("usable_region_size", pre.usable_region_size);
  }

  // The invariants of a state whose bitmap holds `blocks` plugged blocks, in the spec's terms.
  std::vector<std::pair<std::string, Expr>> invariants(const Machine& s, const Expr& blocks) const {
    const Expr usable_blocks = z3::lshr(s.usable_region_size, shift);
    Expr inside = c.bool_val(true);
    for (unsigned i = 0; i < kWords; ++i) {
      for (unsigned j = 0; j < 64; ++j) {
        inside =
            inside && z3::implies(bit(s.words[i], j), z3::ult(m.lit(64ULL * i + j), usable_blocks));
      }
    }
    return {
        // At most 256 blocks: 256 << block_shift fits in 64 bits, so the product is exact.
        {"plugged_size = plugged blocks x block_size",
         z3::ule(blocks, m.lit(kBlocks)) && s.plugged_size == z3::shl(blocks, shift)},
        {"plugged blocks lie inside the usable region", inside},
        {"requested <= usable <= region, block-aligned",
         aligned(m, s.requested_size, g.block_size) &&
             aligned(m, s.usable_region_size, g.block_size) &&
             z3::ule(s.requested_size, s.usable_region_size) &&
             z3::ule(s.usable_region_size, g.region_size)},
    };
  }

  // Lemma instances for a PLUG or UNPLUG of nb_blocks at gpa.
  void request(const Expr& gpa, const Expr& nb) {
    const auto [first, end] = rules::block_range(m, g, gpa, nb);
    range = {first, end};
    // lemma_valid_range_in_blocks
    const Expr valid =
        rules::valid_range(m, g.addr, pre.usable_region_size, g.block_size, gpa, nb, options.fault);
    facts.push_back(z3::implies(valid, z3::ult(first, end) && end - first == nb &&
                                           z3::ule(end, z3::lshr(pre.usable_region_size, shift)) &&
                                           z3::ule(end, m.lit(kBlocks))));
    // lemma_range_mask_exact, bit by bit
    for (unsigned i = 0; i < kWords; ++i) {
      const Expr mask = rules::range_mask(m, i, first, end);
      for (unsigned j = 0; j < 64; ++j) {
        const Expr at = m.lit(64ULL * i + j);
        facts.push_back(bit(mask, j) == (z3::ule(first, at) && z3::ult(at, end)));
      }
    }
  }

  void tie_cuts() { tie_block_arithmetic(m, facts, g.block_size, shift); }

  Expr word_changed(Change change, unsigned i, const Machine& post) const {
    const Expr& w = pre.words[i];
    const Expr& v = post.words[i];
    switch (change) {
      case Change::Kept:
        return v == w;
      case Change::Cleared:
        return v == m.lit(0);
      case Change::Plugged: {
        const Expr mask = rules::range_mask(m, i, range->first, range->second);
        return v == (w | mask) && (w & mask) == m.lit(0);
      }
      case Change::Unplugged: {
        const Expr mask = rules::range_mask(m, i, range->first, range->second);
        return v == (w & ~mask) && (w & mask) == mask;
      }
    }
    return c.bool_val(false);
  }

  // The number of plugged blocks after a case, by lemma_popcount_union/difference,
  // lemma_range_mask_exact and lemma_blocks_in_words_sum.
  Expr blocks_after(Change change) {
    if (change == Change::Kept) return plugged_blocks;
    if (change == Change::Cleared) return m.lit(0);
    const auto& [first, end] = *range;
    // The range's length, where the sum lemma applies; elsewhere an unknown count.
    const Expr some = m.var(fmt::format("range_blocks{}", unknowns_++).c_str());
    const Expr length =
        z3::ite(z3::ult(first, end) && z3::ule(end, m.lit(kBlocks)), end - first, some);
    facts.push_back(z3::ule(some, m.lit(kBlocks)));
    return change == Change::Plugged ? plugged_blocks + length : plugged_blocks - length;
  }

  Expr all_zero(const Machine& s) const {
    Expr zero = c.bool_val(true);
    for (const Expr& v : s.words)
      zero = zero && v == m.lit(0);
    return zero;
  }

  Expr unchanged(const Machine& post) const {
    Expr same = post.plugged_size == pre.plugged_size &&
                post.requested_size == pre.requested_size &&
                post.usable_region_size == pre.usable_region_size;
    for (unsigned i = 0; i < kWords; ++i)
      same = same && post.words[i] == pre.words[i];
    return same;
  }

  Expr nothing_plugged(const Machine& post) const {
    Expr none = post.plugged_size == m.lit(0);
    for (unsigned i = 0; i < kWords; ++i)
      none = none && post.words[i] == m.lit(0);
    return none;
  }

  // A counterexample the reference can replay: a geometry it accepts and a pre-state a script can
  // build from a fresh device (the usable region spanning the region, the blocks plugged run by
  // run, then requested_size set), with the pre-state's count the real popcount. Written as a
  // trace whose expectations are the fault-free machine's answers, so it replays cleanly on the
  // reference and fails on the logic that broke the proof.
  std::string find_trace(const Expr& failing) {
    z3::solver s = solver();
    s.add(failing);
    s.add(z3::ule(m.lit(12), shift) && z3::ule(shift, m.lit(21)));  // 4 KiB .. 2 MiB blocks
    s.add(z3::ule(m.lit(1ULL << 32), g.addr) && z3::ule(g.addr, m.lit(1ULL << 40)));
    s.add(pre.usable_region_size == g.region_size && z3::ule(g.extent, m.lit(1ULL << 40)));
    Expr count = m.lit(0);
    for (const Expr& w : pre.words)
      count = count + Z3Word(c).popcount(w);
    s.add(plugged_blocks == count);
    // The shortest script first: nothing plugged before the step, then one run of blocks in the
    // first word, then a run per word, then anything.
    const auto run = [&](const Expr& w) {
      return (((w | (w - m.lit(1))) + m.lit(1)) & w) == m.lit(0);
    };
    Expr runs = c.bool_val(true);
    for (const Expr& w : pre.words)
      runs = runs && run(w);
    Expr first_only = run(pre.words[0]);
    for (unsigned i = 1; i < kWords; ++i)
      first_only = first_only && pre.words[i] == m.lit(0);
    bool found = false;
    for (const Expr& shape : {all_zero(pre), first_only, runs, c.bool_val(true)}) {
      s.push();
      s.add(shape);
      if (s.check() == z3::sat) {
        found = true;
        break;
      }
      s.pop();
    }
    if (!found) return "";
    const z3::model model = s.get_model();

    DeviceOptions o;
    o.profile = g.profile;
    o.addr = u64(model, g.addr);
    o.block_size = u64(model, g.block_size);
    o.region_size = u64(model, g.region_size);
    o.requested_size = o.region_size;
    o.usable_extent = u64(model, g.extent);
    const U64 u;
    rules::Geometry<U64> cg{o.addr, o.region_size, o.block_size, o.usable_extent, o.profile};
    rules::BlockState<U64> cs{std::vector<uint64_t>(kWords, 0), 0, o.requested_size, o.region_size};
    const rules::HostInput<U64> calm{false, true, true};
    std::string text = fmt::format(
        "vmemtrace 1\n# counterexample to {} ({})\n{}\ninit -> status=0xf\nconsumers -> ok\n",
        name_, profile_name(g.profile), format_device_line(o, BackingKind::Null, "none"));
    for (uint64_t b = 0; b < kBlocks;) {
      if (((u64(model, pre.words[b / 64]) >> (b % 64)) & 1) == 0) {
        ++b;
        continue;
      }
      uint64_t e = b;
      while (e < kBlocks && ((u64(model, pre.words[e / 64]) >> (e % 64)) & 1) != 0)
        ++e;
      const uint64_t gpa = o.addr + b * o.block_size;
      const auto r = rules::plug(u, cg, cs, gpa, e - b, calm);
      text += fmt::format("request plug addr={:#x} nb={} -> {}\n", gpa, e - b,
                          response_name(r.response));
      b = e;
    }
    const uint64_t requested = u64(model, pre.requested_size);
    if (requested != o.requested_size) {
      (void)rules::host_resize(u, cg, cs, requested);
      text += fmt::format("host resize {:#x} -> ok\n", requested);
    }
    const Step st = step(model);
    text += st.run(u, cg, cs);
    text += fmt::format(
        "config -> plugged_size={:#x} requested_size={:#x} usable_region_size={:#x}\n"
        "check -> ok consistent\n",
        cs.plugged_size, cs.requested_size, cs.usable_region_size);
    return text;
  }

  void name(const std::string& n) { name_ = n; }

  z3::solver solver() {
    z3::solver s = make_solver(c, options);
    for (const Expr& f : facts)
      s.add(f);
    return s;
  }

  // Proves, for `post`, that every case changed the words as it says and then that the
  // invariants and `also` (the transition's own rule) hold in every case.
  ProofResult prove(const std::string& name, const std::string& covers, const Machine& post,
                    const std::vector<Case>& cases, const std::pair<std::string, Expr>& also) {
    tie_cuts();
    shown.emplace_back("after: plugged_size", post.plugged_size);
    shown.emplace_back("after: requested_size", post.requested_size);
    shown.emplace_back("after: usable_region_size", post.usable_region_size);
    for (unsigned i = 0; i < kWords; ++i)
      shown.emplace_back(fmt::format("after: word{}", i), post.words[i]);

    double seconds = 0;
    Expr cases_hold = c.bool_val(true);
    Expr some_case = c.bool_val(false);
    for (const Case& k : cases) {
      Expr words = c.bool_val(true);
      for (unsigned i = 0; i < kWords; ++i)
        words = words && word_changed(k.change, i, post);
      cases_hold = cases_hold && z3::implies(k.when, words);
      some_case = some_case || k.when;
      shown.emplace_back("case: " + k.name, k.when);
    }
    {
      z3::solver s = solver();
      ProofResult r = decide(name, covers, s, !(some_case && cases_hold), shown);
      seconds += r.seconds;
      if (r.outcome != Outcome::Proved) {
        r.counterexample = "the bitmap changed as no case says: " + r.counterexample;
        if (r.outcome == Outcome::Failed) r.trace = find_trace(!(some_case && cases_hold));
        return r;
      }
    }
    for (const Case& k : cases) {
      const Expr blocks = blocks_after(k.change);
      auto parts = invariants(post, blocks);
      if (!also.first.empty()) parts.push_back(also);
      Expr all = c.bool_val(true);
      for (const auto& [label, e] : parts)
        all = all && e;
      std::vector<std::pair<std::string, Expr>> more = shown;
      for (const auto& [label, e] : parts)
        more.emplace_back("holds: " + label, e);
      z3::solver s = solver();
      // The count is that of a real bitmap of 256 blocks (the case's words), so at most 256.
      s.add(k.when && z3::ule(blocks, m.lit(kBlocks)));
      ProofResult r = decide(name, covers, s, !all, more);
      seconds += r.seconds;
      if (r.outcome != Outcome::Proved) {
        r.counterexample = fmt::format("in case '{}': {}", k.name, r.counterexample);
        r.seconds = seconds;
        if (r.outcome == Outcome::Failed) {
          r.trace = find_trace(k.when && z3::ule(blocks, m.lit(kBlocks)) && !all);
        }
        return r;
      }
    }
    ProofResult r;
    r.name = name;
    r.covers = covers;
    r.outcome = Outcome::Proved;
    r.seconds = seconds;
    return r;
  }

 private:
  unsigned unknowns_ = 0;
  std::string name_;
};

std::string covers_of(const char* what) {
  return fmt::format(
      "{}; {} blocks (4 words), every block size 2^0..2^{}, symbolic state, "
      "request and host inputs",
      what, kBlocks, kMaxBlockShift);
}

rules::HostInput<CutWord> host_inputs(World& w) {
  rules::HostInput<CutWord> h{w.c.bool_const("busy"), w.c.bool_const("populate_ok"),
                              w.c.bool_const("discard_ok")};
  w.shown.emplace_back("busy", h.busy);
  w.shown.emplace_back("populate_ok", h.populate_ok);
  w.shown.emplace_back("discard_ok", h.discard_ok);
  return h;
}

enum class Transition { Plug, Unplug, UnplugAll, HostResize, DeviceReset, SystemReset, Wakeup };

const char* transition_name(Transition t) {
  switch (t) {
    case Transition::Plug:
      return "plug";
    case Transition::Unplug:
      return "unplug";
    case Transition::UnplugAll:
      return "unplug_all";
    case Transition::HostResize:
      return "host_resize";
    case Transition::DeviceReset:
      return "device_reset";
    case Transition::SystemReset:
      return "system_reset";
    case Transition::Wakeup:
      return "wakeup";
  }
  return "?";
}

ProofResult transition(Transition t, Profile p, const ProofOptions& o) {
  z3::context c;
  World w(c, p, o);
  const CutWord& m = w.m;
  const std::string name =
      fmt::format("invariants_kept[{}, {}]", transition_name(t), profile_name(p));
  const rules::HostInput<CutWord> host = host_inputs(w);
  w.name(name);
  Machine post = w.pre;
  // The host's part of the failing step, as trace lines and as the machine's input.
  const auto host_lines = [&host](const z3::model& model, bool refusal) {
    const bool busy = model.eval(host.busy, true).is_true();
    const bool populate_ok = !refusal || model.eval(host.populate_ok, true).is_true();
    std::string lines = busy ? "host busy on -> ok\n" : "";
    if (!populate_ok) lines += "host refuse_populate -> ok\n";
    return std::pair{lines, rules::HostInput<U64>{busy, populate_ok, true}};
  };
  const auto u64 = [](const z3::model& model, const Expr& e) {
    uint64_t v = 0;
    (void)model.eval(e, true).is_numeral_u64(v);
    return v;
  };
  // The resets and UNPLUG_ALL either cleared the bitmap or left it alone.
  const auto cleared_or_kept = [&] {
    const Expr zero = w.all_zero(post);
    return std::vector<Case>{{"cleared", zero, Change::Cleared}, {"kept", !zero, Change::Kept}};
  };
  const bool reset =
      t == Transition::DeviceReset || t == Transition::SystemReset || t == Transition::Wakeup;
  if (reset) {
    w.step = [=](const z3::model& model) {
      // Named copies, not structured bindings: the lambda below captures them (clang 14).
      const auto said = host_lines(model, false);
      const std::string lines = said.first;
      const rules::HostInput<U64> h = said.second;
      return Step{[=](const U64& u, const rules::Geometry<U64>& cg, rules::BlockState<U64>& cs) {
        if (t == Transition::DeviceReset) {
          (void)rules::device_reset(u, cg, cs, h);
          return lines + "host device_reset -> ok\ninit -> status=0xf\n";
        }
        if (t == Transition::SystemReset) {
          rules::system_reset(u, cg, cs, h);
          return lines + "host system_reset -> ok\ninit -> status=0xf\n";
        }
        rules::wakeup_reset(u, cg, cs, h);
        return lines + "host wakeup -> ok\n";
      }};
    };
  }
  switch (t) {
    case Transition::Plug:
    case Transition::Unplug: {
      const Expr gpa = m.var("gpa");
      const Expr nb = z3::zext(c.bv_const("nb_blocks", 16), 48);
      w.shown.emplace_back("gpa", gpa);
      w.shown.emplace_back("nb_blocks", nb);
      w.request(gpa, nb);
      w.step = [=](const z3::model& model) {
        // Named copies, not structured bindings: the lambda below captures them (clang 14).
        const auto said = host_lines(model, t == Transition::Plug);
        const std::string lines = said.first;
        const rules::HostInput<U64> h = said.second;
        const uint64_t a = u64(model, gpa), n = u64(model, nb);
        return Step{[=](const U64& u, const rules::Geometry<U64>& cg, rules::BlockState<U64>& cs) {
          const auto r = t == Transition::Plug ? rules::plug(u, cg, cs, a, n, h)
                                               : rules::unplug(u, cg, cs, a, n, h);
          return fmt::format("{}request {} addr={:#x} nb={} -> {}\n", lines,
                             t == Transition::Plug ? "plug" : "unplug", a, n,
                             response_name(r.response));
        }};
      };
      const auto r = t == Transition::Plug ? rules::plug(m, w.g, post, gpa, nb, host, o.fault)
                                           : rules::unplug(m, w.g, post, gpa, nb, host, o.fault);
      w.shown.emplace_back("response", r.response);
      const Expr ack = r.response == m.lit(VIRTIO_MEM_RESP_ACK);
      if (t == Transition::Plug) {
        return w.prove(name, covers_of("PLUG, DEV-30, a refused populate rolled back"), post,
                       {{"ACK", ack, Change::Plugged}, {"no ACK", !ack, Change::Kept}},
                       {"a refused populate changes nothing",
                        z3::implies(!host.populate_ok, w.unchanged(post))});
      }
      return w.prove(
          name, covers_of("UNPLUG, DEV-37, a failed discard changes nothing"), post,
          {{"ACK", ack, Change::Unplugged}, {"no ACK", !ack, Change::Kept}},
          {"a failed discard changes nothing", z3::implies(!host.discard_ok, w.unchanged(post))});
    }
    case Transition::UnplugAll: {
      w.step = [=](const z3::model& model) {
        // Named copies, not structured bindings: the lambda below captures them (clang 14).
        const auto said = host_lines(model, false);
        const std::string lines = said.first;
        const rules::HostInput<U64> h = said.second;
        return Step{[=](const U64& u, const rules::Geometry<U64>& cg, rules::BlockState<U64>& cs) {
          const auto r = rules::unplug_all(u, cg, cs, h);
          return fmt::format("{}request unplug_all -> {}\n", lines, response_name(r.response));
        }};
      };
      const auto r = rules::unplug_all(m, w.g, post, host, o.fault);
      w.shown.emplace_back("response", r.response);
      return w.prove(
          name, covers_of("UNPLUG_ALL, DEV-40..DEV-43"), post, cleared_or_kept(),
          {"an ACKed UNPLUG_ALL leaves nothing plugged (DEV-42)",
           z3::implies(r.response == m.lit(VIRTIO_MEM_RESP_ACK), w.nothing_plugged(post))});
    }
    case Transition::HostResize: {
      const Expr size = m.var("size");
      w.shown.emplace_back("size", size);
      w.step = [=](const z3::model& model) {
        const uint64_t n = u64(model, size);
        return Step{[=](const U64& u, const rules::Geometry<U64>& cg, rules::BlockState<U64>& cs) {
          const bool ok = rules::host_resize(u, cg, cs, n);
          return fmt::format("host resize {:#x} -> {}\n", n, ok ? "ok" : "error");
        }};
      };
      (void)rules::host_resize(m, w.g, post, size, o.fault);
      Machine same_blocks = post;
      same_blocks.requested_size = w.pre.requested_size;
      same_blocks.usable_region_size = w.pre.usable_region_size;
      return w.prove(name, covers_of("host resize, DEV-8"), post,
                     {{"always", c.bool_val(true), Change::Kept}},
                     {"a resize plugs and unplugs nothing", w.unchanged(same_blocks)});
    }
    case Transition::DeviceReset:
      (void)rules::device_reset(m, w.g, post, host, o.fault);
      return w.prove(name, covers_of("device reset, DEV-13, DEV-14"), post,
                     {{"always", c.bool_val(true), Change::Kept}},
                     {"a device reset changes nothing", w.unchanged(post)});
    case Transition::SystemReset:
      rules::system_reset(m, w.g, post, host, o.fault);
      return w.prove(name, covers_of("system reset, DEV-22"), post, cleared_or_kept(),
                     {"a system reset outside a busy window unplugs everything (DEV-22)",
                      z3::implies(!host.busy && host.discard_ok, w.nothing_plugged(post))});
    case Transition::Wakeup:
      rules::wakeup_reset(m, w.g, post, host, o.fault);
      return w.prove(name, covers_of("S3 wake-up, DEV-23"), post, cleared_or_kept(),
                     {"a wake-up keeps every block (DEV-23; qemu-7.2 unplugs as at a system reset)",
                      p == Profile::Qemu72
                          ? z3::implies(!host.busy && host.discard_ok, w.nothing_plugged(post))
                          : w.unchanged(post)});
  }
  return {};
}

}  // namespace

std::vector<Proof> block_invariant_proofs() {
  std::vector<Proof> proofs = {
      {"lemma_popcount_union", "per word", popcount_union, true},
      {"lemma_popcount_difference", "per word", popcount_difference, true},
      {"lemma_block_arithmetic", "block size a power of two", block_arithmetic, true},
      {"lemma_count_zero", "4 words", count_zero, true},
      {"lemma_shift_distributes", "shifts", shift_distributes, true},
      {"lemma_blocks_in_words_sum", "block ranges", blocks_in_words_sum, true},
      {"lemma_valid_range_in_blocks", "DEV-26/33/46 in blocks", valid_range_in_blocks},
  };
  for (unsigned w = 0; w < kWords; ++w) {
    proofs.push_back({fmt::format("lemma_range_mask_exact[word {}]", w), "bitmap masks",
                      [w](const ProofOptions& o) { return range_mask_exact(w, o); }, true});
  }
  for (Transition t :
       {Transition::Plug, Transition::Unplug, Transition::UnplugAll, Transition::HostResize,
        Transition::DeviceReset, Transition::SystemReset, Transition::Wakeup}) {
    for (Profile p : {Profile::Spec, Profile::Qemu, Profile::Qemu72}) {
      proofs.push_back({fmt::format("invariants_kept[{}, {}]", transition_name(t), profile_name(p)),
                        "block-state invariants",
                        [t, p](const ProofOptions& o) { return transition(t, p, o); }});
    }
  }
  return proofs;
}

}  // namespace proofs
VMEM_NAMESPACE_END
