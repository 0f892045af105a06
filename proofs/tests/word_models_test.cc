// Decisions D3: the concrete (U64) and symbolic (Z3) models of the same templates must agree.
// Every rule of reference/mem/rules.h is evaluated on edge vectors with both, the Z3 result
// simplified to a constant, and the two compared. The integer model (z3_int_word.h) is held to
// the same primitives and to the memslot templates it proves.
#include <gtest/gtest.h>

#include <vector>

#include "proofs/z3_int_word.h"
#include "proofs/z3_word.h"
#include "reference/mem/consumer_rules.h"
#include "reference/mem/rules.h"

namespace vmem::proofs {
namespace {

constexpr uint64_t kMiB = 1ULL << 20;

class WordModelsTest : public ::testing::Test {
 protected:
  uint64_t value(const z3::expr& e) {
    const z3::expr s = e.simplify();
    uint64_t v = 0;
    EXPECT_TRUE(s.is_numeral_u64(v)) << s;
    return v;
  }
  bool truth(const z3::expr& e) {
    const z3::expr s = e.simplify();
    EXPECT_TRUE(s.is_true() || s.is_false()) << s;
    return s.is_true();
  }

  z3::context ctx_;
  Z3Word z_{ctx_};
  Z3IntWord i_{ctx_};
  U64 u_;
};

const uint64_t kEdges[] = {0,
                           1,
                           2,
                           4095,
                           4096,
                           2 * kMiB,
                           (1ULL << 63) - 1,
                           1ULL << 63,
                           ~uint64_t{0} - 2 * kMiB + 1,  // 2^64 - block_size
                           ~uint64_t{0} - 1,
                           ~uint64_t{0}};

TEST_F(WordModelsTest, PrimitiveOperationsAgree) {
  for (uint64_t a : kEdges) {
    for (uint64_t b : kEdges) {
      const auto A = z_.lit(a), B = z_.lit(b);
      ASSERT_EQ(value(z_.add(A, B)), u_.add(a, b));
      ASSERT_EQ(value(z_.sub(A, B)), u_.sub(a, b));
      ASSERT_EQ(value(z_.mul(A, B)), u_.mul(a, b));
      if (b != 0) {
        ASSERT_EQ(value(z_.udiv(A, B)), u_.udiv(a, b));
        ASSERT_EQ(value(z_.urem(A, B)), u_.urem(a, b));
      }
      if (b < 64) {
        ASSERT_EQ(value(z_.shl(A, B)), u_.shl(a, b));
        ASSERT_EQ(value(z_.lshr(A, B)), u_.lshr(a, b));
      }
      ASSERT_EQ(truth(z_.ult(A, B)), u_.ult(a, b)) << a << " " << b;
      ASSERT_EQ(truth(z_.ule(A, B)), u_.ule(a, b));
      ASSERT_EQ(truth(z_.add_overflows(A, B)), u_.add_overflows(a, b)) << a << " + " << b;
      ASSERT_EQ(truth(z_.mul_overflows(A, B)), u_.mul_overflows(a, b)) << a << " * " << b;
    }
    ASSERT_EQ(value(z_.popcount(z_.lit(a))), u_.popcount(a));
  }
}

// Every operation, division and remainder by zero included (SMT-LIB's answers, which the integer
// model copies; U64 has none, so those two are checked against the bit-vector model).
TEST_F(WordModelsTest, IntegerModelAgreesOnEveryPrimitive) {
  for (uint64_t a : kEdges) {
    for (uint64_t b : kEdges) {
      const auto A = i_.lit(a), B = i_.lit(b);
      ASSERT_EQ(value(i_.add(A, B)), u_.add(a, b)) << a << " + " << b;
      ASSERT_EQ(value(i_.sub(A, B)), u_.sub(a, b)) << a << " - " << b;
      ASSERT_EQ(value(i_.mul(A, B)), u_.mul(a, b)) << a << " * " << b;
      ASSERT_EQ(value(i_.udiv(A, B)), value(z_.udiv(z_.lit(a), z_.lit(b)))) << a << " / " << b;
      ASSERT_EQ(value(i_.urem(A, B)), value(z_.urem(z_.lit(a), z_.lit(b)))) << a << " % " << b;
      if (b < 64) {
        ASSERT_EQ(value(i_.shl(A, B)), u_.shl(a, b));
        ASSERT_EQ(value(i_.lshr(A, B)), u_.lshr(a, b));
      }
      ASSERT_EQ(value(i_.bit_and(A, B)), u_.bit_and(a, b));
      ASSERT_EQ(value(i_.bit_or(A, B)), u_.bit_or(a, b));
      ASSERT_EQ(truth(i_.eq(A, B)), u_.eq(a, b));
      ASSERT_EQ(truth(i_.ult(A, B)), u_.ult(a, b));
      ASSERT_EQ(truth(i_.ule(A, B)), u_.ule(a, b));
      ASSERT_EQ(truth(i_.add_overflows(A, B)), u_.add_overflows(a, b)) << a << " + " << b;
      ASSERT_EQ(truth(i_.mul_overflows(A, B)), u_.mul_overflows(a, b)) << a << " * " << b;
    }
    ASSERT_EQ(value(i_.bit_not(i_.lit(a))), u_.bit_not(a));
    ASSERT_EQ(value(i_.popcount(i_.lit(a))), u_.popcount(a));
  }
}

// The memslot templates the proofs run on the integer model (memslot_indices) and on bit-vectors
// (memslot_geometry), on the three models.
TEST_F(WordModelsTest, MemslotTemplatesAgree) {
  constexpr uint64_t kGiB = 1ULL << 30;
  const uint64_t regions[] = {2 * kMiB, kGiB, 3 * kGiB + 2 * kMiB, 256 * kGiB, 1ULL << 48};
  for (uint64_t region : regions) {
    for (uint64_t limit : {uint64_t{0}, uint64_t{1}, uint64_t{2}, uint64_t{7}, uint64_t{256}}) {
      const auto g = rules::decide_memslots(u_, region, 2 * kMiB, limit);
      const auto z = rules::decide_memslots(z_, z_.lit(region), z_.lit(2 * kMiB), z_.lit(limit));
      ASSERT_EQ(value(z.size), g.size);
      ASSERT_EQ(value(z.count), g.count);
      ASSERT_EQ(value(rules::memslot_count(i_, i_.lit(region), i_.lit(g.size))),
                rules::memslot_count(u_, region, g.size));
      for (uint64_t offset :
           {uint64_t{0}, 2 * kMiB, g.size - 2 * kMiB, g.size, region - 2 * kMiB}) {
        for (uint64_t size : {2 * kMiB, region - offset}) {
          if (offset >= region || size == 0 || size > region - offset) continue;
          const auto r = rules::memslots_of(u_, offset, size, g.size);
          const auto ri = rules::memslots_of(i_, i_.lit(offset), i_.lit(size), i_.lit(g.size));
          const auto rz = rules::memslots_of(z_, z_.lit(offset), z_.lit(size), z_.lit(g.size));
          ASSERT_EQ(value(ri.first), r.first);
          ASSERT_EQ(value(ri.end), r.end);
          ASSERT_EQ(value(rz.first), r.first);
          ASSERT_EQ(value(rz.end), r.end);
          ASSERT_LE(r.end, g.count);
        }
      }
    }
  }
}

TEST_F(WordModelsTest, ValidRangeAgreesOnEdgeVectors) {
  const uint64_t bs = 2 * kMiB;
  struct Geometry {
    uint64_t addr, usable;
  };
  const Geometry geometries[] = {
      {4ULL << 30, 256 * kMiB}, {0, 0}, {0, 1ULL << 40}, {0 - (64ULL << 30) - bs, 64ULL << 30}};
  for (const Geometry& g : geometries) {
    std::vector<uint64_t> gpas = {
        g.addr, g.addr + bs, g.addr + g.usable - bs, g.addr + g.usable, g.addr - bs, g.addr + 1};
    for (uint64_t e : kEdges)
      gpas.push_back(e);
    for (uint64_t gpa : gpas) {
      for (uint64_t nb : {uint64_t{0}, uint64_t{1}, uint64_t{2}, uint64_t{65535}}) {
        const bool concrete = rules::valid_range(u_, g.addr, g.usable, bs, gpa, nb);
        const bool symbolic = truth(rules::valid_range(z_, z_.lit(g.addr), z_.lit(g.usable),
                                                       z_.lit(bs), z_.lit(gpa), z_.lit(nb)));
        ASSERT_EQ(concrete, symbolic)
            << std::hex << "addr=" << g.addr << " gpa=" << gpa << " nb=" << nb;
      }
    }
  }
}

TEST_F(WordModelsTest, VerdictOrderAgreesForEveryProfileAndInput) {
  for (Profile p : {Profile::Spec, Profile::Qemu, Profile::Qemu72}) {
    for (unsigned bits = 0; bits < 16; ++bits) {
      const bool v = bits & 1, o = bits & 2, w = bits & 4, b = bits & 8;
      ASSERT_EQ(
          value(rules::plug_verdict(z_, p, z_.truth(v), z_.truth(o), z_.truth(w), z_.truth(b))),
          rules::plug_verdict(u_, p, v, o, w, b));
      ASSERT_EQ(value(rules::unplug_verdict(z_, z_.truth(v), z_.truth(w), z_.truth(b))),
                rules::unplug_verdict(u_, v, w, b));
    }
    for (uint64_t plugged : {uint64_t{0}, 2 * kMiB}) {
      for (bool busy : {false, true}) {
        ASSERT_EQ(value(rules::unplug_all_verdict(z_, p, z_.truth(busy), z_.lit(plugged))),
                  rules::unplug_all_verdict(u_, p, busy, plugged));
      }
    }
  }
}

TEST_F(WordModelsTest, UsableRegionAgrees) {
  const uint64_t bs = 2 * kMiB;
  const uint64_t regions[] = {0, bs, 4ULL << 30, (1ULL << 63)};
  const uint64_t extents[] = {0, 1, 256 * kMiB, ~uint64_t{0}};
  for (uint64_t region : regions) {
    for (uint64_t extent : extents) {
      for (uint64_t req : {uint64_t{0}, bs, region}) {
        if (req > region) continue;
        for (uint64_t cur : {uint64_t{0}, region}) {
          for (bool shrink : {false, true}) {
            ASSERT_EQ(
                value(rules::resized_usable_region(z_, z_.lit(region), z_.lit(bs), z_.lit(extent),
                                                   z_.lit(req), z_.lit(cur), z_.truth(shrink))),
                rules::resized_usable_region(u_, region, bs, extent, req, cur, shrink));
          }
        }
      }
    }
  }
}

TEST_F(WordModelsTest, BitmapOperationsAgree) {
  const std::vector<uint64_t> words = {0x0123456789abcdefULL, 0, ~uint64_t{0}};
  for (uint64_t first = 0; first < 192; first += 7) {
    for (uint64_t end = first + 1; end <= 192; end += 11) {
      std::vector<z3::expr> zw;
      for (uint64_t w : words)
        zw.push_back(z_.lit(w));
      for (bool plugged : {false, true}) {
        ASSERT_EQ(truth(rules::range_is(z_, std::span<const z3::expr>(zw), 0, z_.lit(first),
                                        z_.lit(end), plugged)),
                  rules::range_is(u_, std::span<const uint64_t>(words), 0, first, end, plugged));
      }
      ASSERT_EQ(value(rules::count_plugged(z_, std::span<const z3::expr>(zw), 0, z_.lit(first),
                                           z_.lit(end))),
                rules::count_plugged(u_, std::span<const uint64_t>(words), 0, first, end));
      std::vector<uint64_t> uw = words;
      rules::set_range(z_, std::span<z3::expr>(zw), 0, z_.lit(first), z_.lit(end), true);
      rules::set_range(u_, std::span<uint64_t>(uw), 0, first, end, true);
      for (std::size_t i = 0; i < uw.size(); ++i)
        ASSERT_EQ(value(zw[i]), uw[i]);
    }
  }
}

}  // namespace
}  // namespace vmem::proofs
