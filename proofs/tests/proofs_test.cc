// Every proof holds for the reference's own code.
#include <gtest/gtest.h>

#include "proofs/proof.h"

namespace vmem::proofs {
namespace {

class ProofTest : public ::testing::TestWithParam<std::size_t> {};

TEST_P(ProofTest, Holds) {
  const Proof& p = all_proofs().at(GetParam());
  const ProofResult r = p.run(ProofOptions{});
  EXPECT_EQ(r.outcome, Outcome::Proved)
      << r.name << ": " << to_string(r.outcome) << " " << r.counterexample;
  std::cout << r.name << ": " << to_string(r.outcome) << " in " << r.seconds << " s (" << r.covers
            << ")\n";
}

INSTANTIATE_TEST_SUITE_P(All, ProofTest, ::testing::Range<std::size_t>(0, all_proofs().size()),
                         [](const auto& p) {
                           std::string n = all_proofs().at(p.param).name;
                           for (char& ch : n) {
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           }
                           return n;
                         });

}  // namespace
}  // namespace vmem::proofs
