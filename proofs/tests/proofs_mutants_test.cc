// Sensitivity (issue: Z3-checked invariants): each proof fails, with a counterexample, for the
// named mutants of the catalog that change the logic it covers.
#include <gtest/gtest.h>

#include "proofs/proof.h"

namespace vmem::proofs {
namespace {

static_assert(kMutantsBuild, "this test must link the mutants build");

ProofResult run(const std::string& name, Fault f) {
  for (const Proof& p : all_proofs()) {
    if (p.name == name) return p.run(ProofOptions{f, 60000});
  }
  ADD_FAILURE() << "no proof " << name;
  return {};
}

struct Case {
  const char* proof;
  Fault fault;
};

void PrintTo(const Case& c, std::ostream* os) {
  *os << c.proof << "/" << fault_name(c.fault);
}

class ProofSensitivityTest : public ::testing::TestWithParam<Case> {};

TEST_P(ProofSensitivityTest, MutantIsCaughtWithACounterexample) {
  const Case& c = GetParam();
  const ProofResult clean = run(c.proof, Fault::None);
  ASSERT_EQ(clean.outcome, Outcome::Proved) << clean.counterexample;
  const ProofResult mutant = run(c.proof, c.fault);
  EXPECT_EQ(mutant.outcome, Outcome::Failed);
  EXPECT_FALSE(mutant.counterexample.empty());
  std::cout << c.proof << " with " << fault_name(c.fault) << ": " << mutant.counterexample << "\n";
}

INSTANTIATE_TEST_SUITE_P(
    Catalog, ProofSensitivityTest,
    ::testing::Values(Case{"range_check_exact", Fault::RangeEndOffByOne},
                      Case{"range_check_exact", Fault::RangeNoWrapCheck},
                      Case{"verdict_order[spec]", Fault::NackBeforeRangeCheck},
                      Case{"verdict_order[qemu]", Fault::NackBeforeRangeCheck},
                      Case{"usable_region_bounds", Fault::UsableRegionNotRounded},
                      Case{"usable_region_bounds", Fault::UnplugAllUsableBelowRequested}),
    [](const auto& p) {
      std::string n = std::string(fault_name(p.param.fault)) + "_" + p.param.proof;
      for (char& ch : n) {
        if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
      }
      return n;
    });

}  // namespace
}  // namespace vmem::proofs
