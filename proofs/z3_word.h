// The symbolic WordModel (decisions D3): 64-bit Z3 bit-vectors. The reference's decision
// templates (reference/mem/rules.h) instantiated with this model build the formula of exactly
// the code the device runs.
//
// z3++'s <, <=, / and % are *signed* on bit-vectors; this model never uses them. Constants are
// built with bv_val(k, 64), never by mixing an expression with a C++ integer, which z3++ may
// silently truncate.
#pragma once

#include <z3++.h>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace vmem::proofs {

class Z3Word {
 public:
  using Word = z3::expr;
  using Bool = z3::expr;

  explicit Z3Word(z3::context& ctx) : ctx_(ctx) {}
  z3::context& context() const { return ctx_; }

  Word lit(uint64_t k) const { return ctx_.bv_val(static_cast<uint64_t>(k), 64); }
  Bool truth(bool b) const { return ctx_.bool_val(b); }
  Word var(const char* name) const { return ctx_.bv_const(name, 64); }

  Word add(const Word& a, const Word& b) const { return a + b; }
  Word sub(const Word& a, const Word& b) const { return a - b; }
  Word mul(const Word& a, const Word& b) const { return a * b; }
  Word udiv(const Word& a, const Word& b) const { return z3::udiv(a, b); }
  Word urem(const Word& a, const Word& b) const { return z3::urem(a, b); }
  Word shl(const Word& a, const Word& s) const { return z3::shl(a, s); }
  Word lshr(const Word& a, const Word& s) const { return z3::lshr(a, s); }
  Word bit_and(const Word& a, const Word& b) const { return a & b; }
  Word bit_or(const Word& a, const Word& b) const { return a | b; }
  Word bit_not(const Word& a) const { return ~a; }
  // popcount is a balanced adder tree whose sums are only as wide as they need to be: level 0
  // holds the 64 bits, level L the 64 >> L partial counts of L + 1 bits each, level 6 the count.
  // That is about 180 full adders where a chain of 64-bit additions would take 4000, and the
  // popcount lemmas of proofs/block_invariants.cc are proved over it level by level.
  std::vector<std::vector<z3::expr>> popcount_tree(const Word& a) const {
    std::vector<std::vector<z3::expr>> levels(1);
    for (unsigned i = 0; i < 64; ++i)
      levels[0].push_back(a.extract(i, i));
    while (levels.back().size() > 1) {
      const std::vector<z3::expr>& below = levels.back();
      std::vector<z3::expr> next;
      for (std::size_t i = 0; i < below.size(); i += 2)
        next.push_back(z3::zext(below[i], 1) + z3::zext(below[i + 1], 1));
      levels.push_back(std::move(next));
    }
    return levels;
  }
  Word popcount(const Word& a) const {
    const z3::expr top = popcount_tree(a).back()[0];
    return z3::zext(top, 64 - top.get_sort().bv_size());
  }
  Bool eq(const Word& a, const Word& b) const { return a == b; }
  Bool ult(const Word& a, const Word& b) const { return z3::ult(a, b); }
  Bool ule(const Word& a, const Word& b) const { return z3::ule(a, b); }
  Bool add_overflows(const Word& a, const Word& b) const {
    return !z3::bvadd_no_overflow(a, b, false);
  }
  Bool mul_overflows(const Word& a, const Word& b) const {
    return !z3::bvmul_no_overflow(a, b, false);
  }
  Word select(const Bool& c, const Word& a, const Word& b) const { return z3::ite(c, a, b); }
  Bool both(const Bool& a, const Bool& b) const { return a && b; }
  Bool either(const Bool& a, const Bool& b) const { return a || b; }
  Bool negate(const Bool& a) const { return !a; }

 private:
  z3::context& ctx_;
};

}  // namespace vmem::proofs
