// The symbolic WordModel (decisions D3): 64-bit Z3 bit-vectors. The reference's decision
// templates (reference/mem/rules.h) instantiated with this model build the formula of exactly
// the code the device runs.
//
// z3++'s <, <=, / and % are *signed* on bit-vectors; this model never uses them. Constants are
// built with bv_val(k, 64), never by mixing an expression with a C++ integer, which z3++ may
// silently truncate.
#pragma once

#include <z3++.h>

#include <cstdint>

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
  Word popcount(const Word& a) const {
    Word n = lit(0);
    for (unsigned i = 0; i < 64; ++i)
      n = n + z3::zext(a.extract(i, i), 63);
    return n;
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
