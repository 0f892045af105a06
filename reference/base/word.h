// The arithmetic the device's decision logic is written in (decisions D3).
//
// Range checks, verdict order, usable-region arithmetic and bitmap range operations are written
// once, as templates over a WordModel: explicit unsigned 64-bit operations plus a boolean type.
// Two models exist: U64 here, which the device runs, and a Z3 bit-vector model in proofs/, which
// lets the proofs run the same templates symbolically. The rules for template code:
//  - no C++ operator on a Word or Bool; every operation goes through the model;
//  - select(c, a, b) instead of branching on a value (branches on concrete loop bounds are fine);
//  - overflow is a named predicate (add_overflows, mul_overflows), never silent wrap-around;
//  - udiv/urem need a non-zero divisor and shl/lshr a shift below 64: callers guarantee both,
//    and the proofs discharge them as side conditions.
#pragma once

#include <bit>
#include <concepts>
#include <cstdint>

#include "reference/base/abi.h"

VMEM_NAMESPACE_BEGIN

template <class M>
concept WordModel = requires(const M& m, typename M::Word a, typename M::Bool c, uint64_t k) {
  { m.lit(k) } -> std::same_as<typename M::Word>;
  { m.truth(true) } -> std::same_as<typename M::Bool>;
  { m.add(a, a) } -> std::same_as<typename M::Word>;
  { m.sub(a, a) } -> std::same_as<typename M::Word>;
  { m.mul(a, a) } -> std::same_as<typename M::Word>;
  { m.udiv(a, a) } -> std::same_as<typename M::Word>;
  { m.urem(a, a) } -> std::same_as<typename M::Word>;
  { m.shl(a, a) } -> std::same_as<typename M::Word>;
  { m.lshr(a, a) } -> std::same_as<typename M::Word>;
  { m.bit_and(a, a) } -> std::same_as<typename M::Word>;
  { m.bit_or(a, a) } -> std::same_as<typename M::Word>;
  { m.bit_not(a) } -> std::same_as<typename M::Word>;
  { m.popcount(a) } -> std::same_as<typename M::Word>;
  { m.eq(a, a) } -> std::same_as<typename M::Bool>;
  { m.ult(a, a) } -> std::same_as<typename M::Bool>;
  { m.ule(a, a) } -> std::same_as<typename M::Bool>;
  { m.add_overflows(a, a) } -> std::same_as<typename M::Bool>;
  { m.mul_overflows(a, a) } -> std::same_as<typename M::Bool>;
  { m.select(c, a, a) } -> std::same_as<typename M::Word>;
  { m.both(c, c) } -> std::same_as<typename M::Bool>;
  { m.either(c, c) } -> std::same_as<typename M::Bool>;
  { m.negate(c) } -> std::same_as<typename M::Bool>;
};

// The concrete model: plain uint64_t. Everything is constexpr and inlines to the obvious code.
struct U64 {
  using Word = uint64_t;
  using Bool = bool;

  static constexpr Word lit(uint64_t k) { return k; }
  static constexpr Bool truth(bool b) { return b; }
  static constexpr Word add(Word a, Word b) { return a + b; }
  static constexpr Word sub(Word a, Word b) { return a - b; }
  static constexpr Word mul(Word a, Word b) { return a * b; }
  static constexpr Word udiv(Word a, Word b) { return a / b; }
  static constexpr Word urem(Word a, Word b) { return a % b; }
  static constexpr Word shl(Word a, Word s) { return a << s; }
  static constexpr Word lshr(Word a, Word s) { return a >> s; }
  static constexpr Word bit_and(Word a, Word b) { return a & b; }
  static constexpr Word bit_or(Word a, Word b) { return a | b; }
  static constexpr Word bit_not(Word a) { return ~a; }
  static constexpr Word popcount(Word a) { return static_cast<Word>(std::popcount(a)); }
  static constexpr Bool eq(Word a, Word b) { return a == b; }
  static constexpr Bool ult(Word a, Word b) { return a < b; }
  static constexpr Bool ule(Word a, Word b) { return a <= b; }
  static constexpr Bool add_overflows(Word a, Word b) {
    Word r;
    return __builtin_add_overflow(a, b, &r);
  }
  static constexpr Bool mul_overflows(Word a, Word b) {
    Word r;
    return __builtin_mul_overflow(a, b, &r);
  }
  static constexpr Word select(Bool c, Word a, Word b) { return c ? a : b; }
  static constexpr Bool both(Bool a, Bool b) { return a && b; }
  static constexpr Bool either(Bool a, Bool b) { return a || b; }
  static constexpr Bool negate(Bool a) { return !a; }
};
static_assert(WordModel<U64>);

VMEM_NAMESPACE_END
