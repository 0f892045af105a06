// A second symbolic WordModel (decisions D3): unsigned 64-bit words as Z3 integers in
// [0, 2^64), with the exact wrap-around semantics of uint64_t.
//
// Why a second one: the bit-vector model (z3_word.h) turns every udiv with a symbolic divisor
// into a 64-bit divider circuit, and a claim that chains two of them (the memslot a range's last
// byte falls in, against the number of memslots) gives the SAT solver no answer in minutes. Over
// the integers the same claim is a question of nonlinear arithmetic, where Z3 reasons about
// quotients directly. Nothing is bridged: the templates run on this model as they do on the
// others, and each operation means what it means on uint64_t. An addition is a + b, less 2^64
// when it carries; a division by zero gives 2^64 - 1 and a remainder by zero the dividend, as
// SMT-LIB's bvudiv and bvurem do. The bitwise operations go through int2bv/bv2int: exact, and
// slow, so the proofs that use this model run templates without them.
//
// Every variable must be constrained to [0, 2^64) by the caller (`in_range`).
// reference/tests cannot link Z3, so proofs/tests/z3_int_word_test.cc checks this model against
// U64 on edge values.
#pragma once

#include <z3++.h>

#include <cstdint>

namespace vmem::proofs {

class Z3IntWord {
 public:
  using Word = z3::expr;
  using Bool = z3::expr;

  explicit Z3IntWord(z3::context& ctx) : ctx_(ctx), two64_(ctx.int_val("18446744073709551616")) {}
  z3::context& context() const { return ctx_; }

  Word lit(uint64_t k) const { return ctx_.int_val(k); }
  Bool truth(bool b) const { return ctx_.bool_val(b); }
  Word var(const char* name) const { return ctx_.int_const(name); }
  Bool in_range(const Word& a) const { return a >= 0 && a < two64_; }

  Word add(const Word& a, const Word& b) const {
    const Word s = a + b;
    return z3::ite(s >= two64_, s - two64_, s);
  }
  Word sub(const Word& a, const Word& b) const {
    const Word d = a - b;
    return z3::ite(d < 0, d + two64_, d);
  }
  Word mul(const Word& a, const Word& b) const { return z3::mod(a * b, two64_); }
  Word udiv(const Word& a, const Word& b) const {
    return z3::ite(b == 0, two64_ - 1, a / b);  // integer division: both are non-negative
  }
  Word urem(const Word& a, const Word& b) const { return z3::ite(b == 0, a, z3::mod(a, b)); }
  Word shl(const Word& a, const Word& s) const { return from_bv(z3::shl(bv(a), bv(s))); }
  Word lshr(const Word& a, const Word& s) const { return from_bv(z3::lshr(bv(a), bv(s))); }
  Word bit_and(const Word& a, const Word& b) const { return from_bv(bv(a) & bv(b)); }
  Word bit_or(const Word& a, const Word& b) const { return from_bv(bv(a) | bv(b)); }
  Word bit_not(const Word& a) const { return two64_ - 1 - a; }
  Word popcount(const Word& a) const {
    Word n = ctx_.int_val(0);
    const z3::expr v = bv(a);
    for (unsigned i = 0; i < 64; ++i)
      n = n + z3::ite(v.extract(i, i) == ctx_.bv_val(1, 1), ctx_.int_val(1), ctx_.int_val(0));
    return n;
  }
  Bool eq(const Word& a, const Word& b) const { return a == b; }
  Bool ult(const Word& a, const Word& b) const { return a < b; }
  Bool ule(const Word& a, const Word& b) const { return a <= b; }
  Bool add_overflows(const Word& a, const Word& b) const { return a + b >= two64_; }
  Bool mul_overflows(const Word& a, const Word& b) const { return a * b >= two64_; }
  Word select(const Bool& c, const Word& a, const Word& b) const { return z3::ite(c, a, b); }
  Bool both(const Bool& a, const Bool& b) const { return a && b; }
  Bool either(const Bool& a, const Bool& b) const { return a || b; }
  Bool negate(const Bool& a) const { return !a; }

 private:
  z3::expr bv(const Word& a) const { return z3::int2bv(64, a); }
  Word from_bv(const z3::expr& v) const { return z3::bv2int(v, false); }

  z3::context& ctx_;
  z3::expr two64_;
};

}  // namespace vmem::proofs
