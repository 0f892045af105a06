// What every proof shares: the solver, the decision with its counterexample, and the
// preconditions' vocabulary (a power of two, alignment, 128-bit widening).
#pragma once

#include <z3++.h>

#include <string>
#include <utility>
#include <vector>

#include "proofs/proof.h"
#include "proofs/z3_word.h"

VMEM_NAMESPACE_BEGIN
namespace proofs {

// A bit-blasting solver with the options' timeout: every query here is quantifier-free
// bit-vector arithmetic, where Z3's qfbv tactic is far faster than its default strategy.
z3::solver make_solver(z3::context& c, const ProofOptions& o);
// What a model gives an expression: a number (0 if it is none), or a truth value.
uint64_t u64(const z3::model& model, const z3::expr& e);
bool truth(const z3::model& model, const z3::expr& e);

// A solver for the integer model (z3_int_word.h): Z3's default strategy, which picks nonlinear
// integer arithmetic, with the same fixed timeout.
z3::solver make_int_solver(z3::context& c, const ProofOptions& o);

// Asks whether `negated_claim` can hold under the preconditions already on `s`: unsat is a
// proof; sat a failure whose counterexample lists the `shown` expressions' values.
ProofResult decide(const std::string& name, const std::string& covers, z3::solver& s,
                   const z3::expr& negated_claim,
                   const std::vector<std::pair<std::string, z3::expr>>& shown);

// Proves each claim in turn (push/pop on one solver), with `chain` each with the ones before it
// as facts: bit-blasting a conjunction often costs far more than its parts, or a chain of steps
// towards it. The result is the first failure, or proved with the summed time.
ProofResult decide_each(const std::string& name, const std::string& covers, z3::solver& s,
                        const std::vector<z3::expr>& claims,
                        const std::vector<std::pair<std::string, z3::expr>>& shown,
                        bool chain = false);

z3::expr pow2(const Z3Word& m, const z3::expr& x);
z3::expr aligned(const Z3Word& m, const z3::expr& x, const z3::expr& block_size);
// |[first, end) ∩ [64w, 64w + 64)|: how many blocks of bitmap word w a block range covers,
// stated without the device's masks.
z3::expr blocks_in_word(const Z3Word& m, unsigned w, const z3::expr& first, const z3::expr& end);
// 64 -> 128 bits, for sums and products that must not wrap.
inline z3::expr wide(const z3::expr& x) {
  return z3::zext(x, 64);
}

}  // namespace proofs
VMEM_NAMESPACE_END
