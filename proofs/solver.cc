#include "proofs/solver.h"

#include <fmt/format.h>

#include <chrono>

VMEM_NAMESPACE_BEGIN
namespace proofs {

using Expr = z3::expr;

ProofResult decide(const std::string& name, const std::string& covers, z3::solver& s,
                   const Expr& negated_claim,
                   const std::vector<std::pair<std::string, Expr>>& shown) {
  const auto start = std::chrono::steady_clock::now();
  s.add(negated_claim);
  ProofResult r;
  r.name = name;
  r.covers = covers;
  switch (s.check()) {
    case z3::unsat:
      r.outcome = Outcome::Proved;
      break;
    case z3::sat: {
      r.outcome = Outcome::Failed;
      const z3::model model = s.get_model();
      for (const auto& [label, e] : shown) {
        const Expr v = model.eval(e, true);
        uint64_t n = 0;
        if (v.is_bool()) {
          r.counterexample += fmt::format("{}={} ", label, v.is_true() ? "true" : "false");
        } else if (v.is_numeral_u64(n)) {
          r.counterexample += fmt::format("{}={:#x} ", label, n);
        } else {
          r.counterexample += fmt::format("{}={} ", label, v.to_string());
        }
      }
      break;
    }
    case z3::unknown:
      r.outcome = Outcome::Unknown;
      r.counterexample = s.reason_unknown();
      break;
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

z3::solver make_solver(z3::context& c, const ProofOptions& o) {
  return z3::try_for(z3::tactic(c, "qfbv"), o.timeout_ms).mk_solver();
}

uint64_t u64(const z3::model& model, const Expr& e) {
  uint64_t v = 0;
  (void)model.eval(e, true).is_numeral_u64(v);
  return v;
}

bool truth(const z3::model& model, const Expr& e) {
  return model.eval(e, true).is_true();
}

z3::solver make_int_solver(z3::context& c, const ProofOptions& o) {
  z3::solver s(c);
  z3::params p(c);
  p.set("timeout", static_cast<unsigned>(o.timeout_ms));
  s.set(p);
  return s;
}

ProofResult decide_each(const std::string& name, const std::string& covers, z3::solver& s,
                        const std::vector<Expr>& claims,
                        const std::vector<std::pair<std::string, Expr>>& shown, bool chain) {
  ProofResult r;
  double seconds = 0;
  for (const Expr& claim : claims) {
    s.push();
    r = decide(name, covers, s, !claim, shown);
    s.pop();
    seconds += r.seconds;
    if (r.outcome != Outcome::Proved) break;
    if (chain) s.add(claim);  // proved: the later claims may use it
  }
  r.seconds = seconds;
  return r;
}

Expr pow2(const Z3Word& m, const Expr& x) {
  return m.both(m.negate(m.eq(x, m.lit(0))), m.eq(m.bit_and(x, m.sub(x, m.lit(1))), m.lit(0)));
}
Expr aligned(const Z3Word& m, const Expr& x, const Expr& block_size) {
  return m.eq(m.bit_and(x, m.sub(block_size, m.lit(1))), m.lit(0));
}

Expr blocks_in_word(const Z3Word& m, unsigned w, const Expr& first, const Expr& end) {
  const Expr lo_w = m.lit(64ULL * w), hi_w = m.lit(64ULL * w + 64);
  const Expr lo = z3::ite(z3::ult(first, lo_w), lo_w, first);
  const Expr hi = z3::ite(z3::ult(end, hi_w), end, hi_w);
  return z3::ite(z3::ult(lo, hi), hi - lo, m.lit(0));
}

}  // namespace proofs
VMEM_NAMESPACE_END
