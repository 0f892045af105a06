// The suite against Debian's QEMU (label qemu): the reference's qemu-7.2 profile predicts every
// verdict QEMU 7.2 gets, evidence included, except where QEMU under qtest lacks a capability
// (suspend/wake-up, decisions D14). This is the differential check of the profile table
// (docs/profiles.md) against the real thing.
#include <gtest/gtest.h>

#include "conformance/suite/checks.h"
#include "conformance/suite/runner.h"
#include "conformance/target/qemu_target.h"
#include "conformance/target/reference_target.h"

namespace vmem::conformance {
namespace {

Report run(Target& t) {
  RunOptions o;
  o.completion_timeout = std::chrono::milliseconds(2000);
  return run_suite(t, *embedded_catalog(), all_checks(), o);
}

TEST(QemuConformTest, TheQemu72ProfilePredictsEveryVerdictOfQemu) {
  QemuTarget qemu;
  const Report got = run(qemu);
  // The profile predicts QEMU where QEMU can be asked: no populate refused from outside.
  ReferenceTargetOptions o;
  o.profile = Profile::Qemu72;
  o.without = {Capability::RefusePopulate};
  ReferenceTarget model(o);
  const Report want = run(model);
  ASSERT_EQ(got.requirements.size(), want.requirements.size());
  for (std::size_t i = 0; i < got.requirements.size(); ++i) {
    const RequirementResult& q = got.requirements[i];
    const RequirementResult& r = want.requirements[i];
    if (q.outcome == Outcome::Skip && q.evidence.find("the target has no") == 0) {
      EXPECT_FALSE(qemu.has(Capability::SuspendResume));
      continue;
    }
    EXPECT_EQ(q.outcome, r.outcome)
        << q.requirement.id << ": QEMU " << q.evidence << " | qemu-7.2 profile " << r.evidence;
    EXPECT_EQ(q.evidence, r.evidence) << q.requirement.id;
  }
  for (const CheckResult& c : got.checks)
    EXPECT_TRUE(c.stopped.empty()) << c.name << ": " << c.stopped;
}

}  // namespace
}  // namespace vmem::conformance
