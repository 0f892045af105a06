// The suite catches broken devices (decisions D6): every named fault that breaks a checkable
// requirement makes the suite FAIL (or WARN, for a SHOULD) with a requirement the fault catalog
// expects. Faults no driver can observe are listed here with the reason, so a new fault has to
// be placed in one group or the other.
#include <gtest/gtest.h>

#include <set>

#include "conformance/suite/checks.h"
#include "conformance/suite/runner.h"
#include "conformance/target/reference_target.h"
#include "reference/mem/fault.h"

namespace vmem::conformance {
namespace {

// Why each of these is invisible to a driver.
const std::map<std::string, std::string> kUnobservable = {
    {"range-no-wrap-check",
     "a wrapping range must start inside the usable region and end past 2^64: nb_blocks <= 65535 "
     "needs a block size of 2^48 for that (the range proof kills it)"},
    {"migration-trusts-plugged-size", "only a corrupt migration stream shows it (fuzzing)"},
    {"unplug-skips-discard", "an unplugged block's contents are the device's business (DEV-17)"},
    {"rollback-clipped-to-failing-section", "VFIO listeners live in the host"},
    {"rollback-skips-first-listener", "VFIO listeners live in the host"},
    {"unregister-keeps-mappings", "VFIO listeners live in the host"},
    {"populate-maps-whole-section", "VFIO listeners live in the host"},
    {"memslot-deactivated-while-plugged", "KVM memslots live in the host"},
};

// The DEV-n and GEN-n IDs in a fault's "expected by" text (no std::regex: g++'s ASan build
// warns inside it).
std::set<std::string> expected_ids(std::string_view text) {
  std::set<std::string> out;
  for (std::size_t i = 0; i + 4 < text.size(); ++i) {
    const std::string_view head = text.substr(i, 4);
    if (head != "DEV-" && head != "GEN-") continue;
    std::size_t j = i + 4;
    while (j < text.size() && text[j] >= '0' && text[j] <= '9')
      ++j;
    if (j > i + 4) out.insert(std::string(text.substr(i, j - i)));
  }
  return out;
}

class FaultTest : public ::testing::TestWithParam<FaultInfo> {};

TEST_P(FaultTest, TheSuiteNamesTheExpectedRequirement) {
  const FaultInfo& f = GetParam();
  ReferenceTarget t({Transport::Pci, Profile::Spec, std::string(f.name), BackingKind::Anonymous});
  RunOptions o;
  o.completion_timeout = std::chrono::milliseconds(30);
  const Report r = run_suite(t, *embedded_catalog(), all_checks(), o);

  std::set<std::string> broken;
  for (const RequirementResult& q : r.requirements) {
    if (q.outcome == Outcome::Fail || q.outcome == Outcome::Warn) broken.insert(q.requirement.id);
  }
  if (kUnobservable.count(std::string(f.name))) {
    // If the suite starts seeing it, move it out of the list.
    std::set<std::string> hit;
    for (const std::string& id : expected_ids(f.expected_by))
      if (broken.count(id)) hit.insert(id);
    EXPECT_TRUE(hit.empty()) << f.name << " is listed as unobservable but the suite FAILs "
                             << *hit.begin();
    return;
  }
  const std::set<std::string> want = expected_ids(f.expected_by);
  ASSERT_FALSE(want.empty()) << f.name << ": its catalog entry names no DEV/GEN requirement ("
                             << f.expected_by << ")";
  bool killed = false;
  for (const std::string& id : want)
    killed = killed || broken.count(id);
  std::string seen;
  for (const std::string& id : broken)
    seen += id + " ";
  EXPECT_TRUE(killed) << f.name << " (" << f.bug_class << ") should break " << f.expected_by
                      << "; the suite reports: " << seen;
}

INSTANTIATE_TEST_SUITE_P(Catalog, FaultTest, ::testing::ValuesIn(fault_catalog()),
                         [](const auto& param_info) {
                           std::string n(param_info.param.name);
                           for (char& ch : n)
                             if (ch == '-') ch = '_';
                           return n;
                         });

}  // namespace
}  // namespace vmem::conformance
