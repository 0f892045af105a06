// The conformance suite against the reference: it passes where the reference follows the spec,
// reports exactly the profile differences of docs/profiles.md, survives hostile targets, and
// writes reports that say the same thing in every format.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "conformance/suite/checks.h"
#include "conformance/suite/report.h"
#include "conformance/suite/runner.h"
#include "conformance/target/reference_target.h"
#include "reference/transport/virtio_mmio.h"

namespace vmem::conformance {
namespace {

const Catalog& catalog() {
  static const Catalog c = *embedded_catalog();
  return c;
}

Report run(Target& t, std::vector<std::string> filters = {}, int timeout_ms = 200) {
  RunOptions o;
  o.filters = std::move(filters);
  o.completion_timeout = std::chrono::milliseconds(timeout_ms);
  return run_suite(t, catalog(), all_checks(), o);
}

Report run_reference(Transport transport, Profile profile) {
  ReferenceTarget t({transport, profile, "", BackingKind::Anonymous});
  return run(t);
}

bool checkable(const Requirement& r) {
  return r.checkable == "yes" || r.checkable == "host-control" || r.checkable == "partial";
}

std::string summary(const Report& r) {
  std::string out;
  for (const RequirementResult& q : r.requirements) {
    if (q.outcome == Outcome::Fail || q.outcome == Outcome::Warn)
      out += q.requirement.id + " " + to_string(q.outcome) + ": " + q.evidence + "\n";
  }
  for (const CheckResult& c : r.checks) {
    for (const std::string& v : c.violations)
      out += "[" + c.name + "] " + v + "\n";
  }
  return out;
}

TEST(ChecksTest, EveryCheckableRequirementHasACheck) {
  std::set<std::string> covered;
  for (const CheckDef& c : all_checks()) {
    covered.insert(c.covers.begin(), c.covers.end());
    for (const std::string& id : c.covers)
      EXPECT_NE(catalog().find(id), nullptr) << c.name << " covers unknown " << id;
  }
  for (const Requirement& r : catalog().requirements) {
    if (checkable(r)) {
      EXPECT_TRUE(covered.count(r.id)) << r.id << " is checkable but no check covers it";
    }
  }
}

TEST(ChecksTest, TheRequirementsPageIsTheGeneratedOne) {
  std::ifstream f(std::string(VMEM_SOURCE_DIR) + "/docs/requirements.md");
  std::stringstream page;
  page << f.rdbuf();
  EXPECT_EQ(page.str(), requirements_markdown(catalog(), all_checks()))
      << "regenerate it: vmemcheck requirements --markdown > docs/requirements.md";
}

TEST(ChecksTest, NamesAreUniqueAndStable) {
  std::set<std::string> names;
  for (const CheckDef& c : all_checks()) {
    EXPECT_TRUE(names.insert(c.name).second) << c.name;
    EXPECT_EQ(c.name.find(' '), std::string::npos) << c.name;
    EXPECT_FALSE(c.covers.empty()) << c.name;
  }
}

// The whole run: every checkable requirement is judged (the reference has every capability).
TEST(SpecProfileTest, EveryCheckableRequirementIsJudged) {
  for (Transport t : {Transport::Pci, Transport::Mmio}) {
    const Report r = run_reference(t, Profile::Spec);
    for (const RequirementResult& q : r.requirements) {
      if (checkable(q.requirement) && q.requirement.id != "DEV-12") {
        EXPECT_NE(q.outcome, Outcome::Skip) << q.requirement.id << ": " << q.evidence;
      }
    }
  }
}

// One ctest per (transport, check): the reference in profile `spec` gets no FAIL and no WARN
// from it, its invariant checker finds nothing, and the check runs to its end.
class SpecCheckTest : public ::testing::TestWithParam<std::tuple<Transport, std::string>> {};

TEST_P(SpecCheckTest, PassesWithoutFailOrWarn) {
  const auto& [transport, check] = GetParam();
  ReferenceTarget t({transport, Profile::Spec, "", BackingKind::Anonymous});
  const Report r = run(t, {check});
  ASSERT_EQ(r.checks.size(), 1u);
  EXPECT_FALSE(r.has(Outcome::Fail)) << summary(r);
  EXPECT_FALSE(r.has(Outcome::Warn)) << summary(r);
  EXPECT_EQ(r.violations(), 0u) << summary(r);
  EXPECT_TRUE(r.checks[0].stopped.empty()) << r.checks[0].stopped;
  EXPECT_FALSE(r.checks[0].verdicts.empty());
}

std::vector<std::string> check_names() {
  std::vector<std::string> out;
  for (const CheckDef& c : all_checks())
    out.push_back(c.name);
  return out;
}

INSTANTIATE_TEST_SUITE_P(Reference, SpecCheckTest,
                         ::testing::Combine(::testing::Values(Transport::Pci, Transport::Mmio),
                                            ::testing::ValuesIn(check_names())),
                         [](const auto& p) {
                           std::string n =
                               std::get<0>(p.param) == Transport::Pci ? "Pci_" : "Mmio_";
                           for (char ch : std::get<1>(p.param))
                             n += ch == '-' ? '_' : ch;
                           return n;
                         });

// docs/profiles.md lists every behaviour in which the profiles differ; the suite must show each
// one that a driver can observe, and nothing else.
struct Difference {
  Outcome outcome;
  std::string evidence;  // a substring of the deciding evidence
};

void expect_differences(Profile p, const std::map<std::string, Difference>& want) {
  const Report spec = run_reference(Transport::Pci, Profile::Spec);
  const Report other = run_reference(Transport::Pci, p);
  ASSERT_EQ(spec.requirements.size(), other.requirements.size());
  std::set<std::string> seen;
  for (std::size_t i = 0; i < spec.requirements.size(); ++i) {
    const RequirementResult& a = spec.requirements[i];
    const RequirementResult& b = other.requirements[i];
    const std::string& id = a.requirement.id;
    if (a.outcome == b.outcome && a.evidence == b.evidence) continue;
    seen.insert(id);
    auto it = want.find(id);
    if (it == want.end()) {
      ADD_FAILURE() << id << " differs from spec but is not in the profile table: "
                    << to_string(b.outcome) << " " << b.evidence;
      continue;
    }
    EXPECT_EQ(b.outcome, it->second.outcome) << id << ": " << b.evidence;
    EXPECT_NE(b.evidence.find(it->second.evidence), std::string::npos) << id << ": " << b.evidence;
  }
  for (const auto& [id, d] : want)
    EXPECT_TRUE(seen.count(id)) << id << " should differ from spec";
  EXPECT_EQ(other.violations(), 0u) << summary(other);
}

TEST(ProfileDifferencesTest, QemuShowsExactlyTheTableRows) {
  expect_differences(Profile::Qemu,
                     {
                         {"DEV-27", {Outcome::Fail, "answered NACK"}},            // row 1
                         {"GEN-5", {Outcome::Fail, "config_generation stayed"}},  // rows 4, 5
                         {"DEV-9", {Outcome::Fail, "before DRIVER_OK was never notified"}},  // 5
                         {"DEV-11", {Outcome::Info, "(no change): a configuration"}},  // row 6
                         {"GEN-4", {Outcome::Fail, "before DRIVER_OK was consumed"}},  // row 7
                     });
}

TEST(ProfileDifferencesTest, Qemu72ShowsExactlyTheTableRows) {
  expect_differences(Profile::Qemu72,
                     {
                         {"DEV-27", {Outcome::Fail, "answered NACK"}},
                         {"GEN-5", {Outcome::Fail, "config_generation stayed"}},
                         {"DEV-9", {Outcome::Fail, "before DRIVER_OK was never notified"}},
                         {"DEV-11", {Outcome::Info, "(no change): a configuration"}},
                         {"GEN-4", {Outcome::Fail, "before DRIVER_OK was consumed"}},
                         {"DEV-40", {Outcome::Info, "nothing plugged answered BUSY"}},  // row 2
                         {"DEV-15", {Outcome::Info, "not offered"}},                    // row 10
                         {"DEV-23", {Outcome::Info, "no longer all plugged"}},          // row 11
                     });
}

// --- Hostile targets --------------------------------------------------------------------

// Forwards everything to a reference-mmio target, so a test can break one thing.
class Hostile : public Target {
 public:
  Hostile() : inner_({Transport::Mmio, Profile::Spec, "", BackingKind::Anonymous}) {}
  std::string name() const override { return "hostile"; }
  bool has(Capability c) const override { return inner_.has(c); }
  Result<MachineLayout> start(const DeviceSetup& s) override { return inner_.start(s); }
  Result<uint32_t> io_read(uint16_t p, unsigned n) override { return inner_.io_read(p, n); }
  Status io_write(uint16_t p, unsigned n, uint32_t v) override { return inner_.io_write(p, n, v); }
  Result<uint64_t> mmio_read(uint64_t a, unsigned n) override { return inner_.mmio_read(a, n); }
  Status mmio_write(uint64_t a, unsigned n, uint64_t v) override {
    return inner_.mmio_write(a, n, v);
  }
  Status mem_read(uint64_t a, std::span<uint8_t> o) override { return inner_.mem_read(a, o); }
  Status mem_write(uint64_t a, std::span<const uint8_t> i) override {
    return inner_.mem_write(a, i);
  }
  Status mem_fill(uint64_t a, uint64_t n, uint8_t b) override { return inner_.mem_fill(a, n, b); }
  Result<bool> interrupt_asserted(unsigned i) override { return inner_.interrupt_asserted(i); }
  Status set_requested_size(unsigned i, uint64_t s) override {
    return inner_.set_requested_size(i, s);
  }
  Status system_reset() override { return inner_.system_reset(); }
  Status set_busy(bool b) override { return inner_.set_busy(b); }
  Status suspend_resume() override { return inner_.suspend_resume(); }
  Status refuse_next_populate(unsigned index) override {
    return inner_.refuse_next_populate(index);
  }

 protected:
  static bool is_notify(uint64_t gpa) {
    return gpa == ReferenceTarget::kMmioBase + mmio::kQueueNotify;
  }
  ReferenceTarget inner_;
};

// Every failure is a FAIL with a reason; the run ends; the harness does not crash.
void expect_fails_cleanly(const Report& r, std::string_view reason) {
  EXPECT_TRUE(r.has(Outcome::Fail));
  bool found = false;
  for (const RequirementResult& q : r.requirements)
    found = found || (q.outcome == Outcome::Fail && q.evidence.find(reason) != std::string::npos);
  EXPECT_TRUE(found) << "no FAIL says \"" << reason << "\"\n" << summary(r);
  EXPECT_EQ(r.checks.size(), all_checks().size());
}

TEST(HostileTargetTest, ADeviceThatNeverCompletesFailsWithAReason) {
  struct Silent : Hostile {
    Status mmio_write(uint64_t a, unsigned n, uint64_t v) override {
      if (is_notify(a)) return ok();  // the notification is lost
      return Hostile::mmio_write(a, n, v);
    }
  } t;
  const Report r = run(t, {}, 20);
  expect_fails_cleanly(r, "no used element and no DEVICE_NEEDS_RESET");
  EXPECT_EQ(r.find("GEN-2")->outcome, Outcome::Warn);
}

TEST(HostileTargetTest, AShortUsedLengthFailsWithAReason) {
  struct Short : Hostile {
    Status mmio_write(uint64_t a, unsigned n, uint64_t v) override {
      VMEM_TRY(Hostile::mmio_write(a, n, v));
      if (!is_notify(a)) return ok();
      // Rewrite every used element's length to 3, after the device wrote it.
      const uint64_t used = used_ring();
      for (uint16_t i = 0; i < 64; ++i) {
        const std::array<uint8_t, 4> three = {3, 0, 0, 0};
        VMEM_TRY(Hostile::mem_write(used + 4 + 8ULL * i + 4, three));
      }
      return ok();
    }
    static uint64_t used_ring() {
      struct Nowhere : DriverMemory {
        bool read(uint64_t, std::span<uint8_t>) override { return false; }
        bool write(uint64_t, std::span<const uint8_t>) override { return false; }
      } nowhere;
      return DriverQueue(nowhere, ReferenceTarget::kScratchBase, 64).used_ring();
    }
  } t;
  const Report r = run(t);
  expect_fails_cleanly(r, "used length 3");
  EXPECT_EQ(r.find("GEN-8")->outcome, Outcome::Fail);
}

TEST(HostileTargetTest, GarbageConfigurationFailsTheConfigRules) {
  struct Garbage : Hostile {
    Result<uint64_t> mmio_read(uint64_t a, unsigned n) override {
      const uint64_t cfg = ReferenceTarget::kMmioBase + mmio::kConfig;
      if (a >= cfg && a < cfg + kConfigSize)
        return 0x1234567890abcdefULL * (a - cfg + 1) >> (64 - 8 * n);
      return Hostile::mmio_read(a, n);
    }
  } t;
  const Report r = run(t);
  EXPECT_EQ(r.find("DEV-5")->outcome, Outcome::Fail) << summary(r);
  EXPECT_EQ(r.find("DEV-6")->outcome, Outcome::Fail) << summary(r);
  EXPECT_EQ(r.checks.size(), all_checks().size());
}

TEST(HostileTargetTest, ATargetThatDiesMidRunFailsEveryCheckAfterwards) {
  struct Dying : Hostile {
    int calls = 0;
    Result<uint64_t> mmio_read(uint64_t a, unsigned n) override {
      if (++calls > 400) return unexpected(Error{"target died: connection reset"});
      return Hostile::mmio_read(a, n);
    }
  } t;
  const Report r = run(t);
  expect_fails_cleanly(r, "target died: connection reset");
  EXPECT_FALSE(r.checks.back().stopped.empty());
}

TEST(HostileTargetTest, ATargetThatCannotStartFailsWithItsReason) {
  struct NoStart : Hostile {
    Result<MachineLayout> start(const DeviceSetup&) override {
      return unexpected(Error{"qemu-system-x86_64: not found"});
    }
  } t;
  const Report r = run(t);
  expect_fails_cleanly(r, "qemu-system-x86_64: not found");
}

TEST(HostileTargetTest, MissingCapabilitiesAreSkipsWithTheReason) {
  struct Plain : Hostile {
    bool has(Capability c) const override {
      return c != Capability::SuspendResume && c != Capability::BusyWindow &&
             c != Capability::RefusePopulate;
    }
  } t;
  const Report r = run(t);
  // DEV-28 is judged only by checks that need a busy window or a refused populate.
  EXPECT_EQ(r.find("DEV-28")->outcome, Outcome::Skip);
  const std::string& why = r.find("DEV-28")->evidence;
  EXPECT_TRUE(why.find("busy window") != std::string::npos ||
              why.find("refused populate") != std::string::npos)
      << why;
  EXPECT_FALSE(r.has(Outcome::Fail)) << summary(r);
}

// A device may NACK the refused PLUG before it populates (here: the PLUG goes past a small
// requested_size), so the host's refusal is still armed: the retry would meet it, and
// `populate-refused` must not blame the device for that (DEV-29).
TEST(HostileTargetTest, ARefusalTheDeviceNeverMetIsNotBlamedOnTheRetry) {
  struct SmallRequest : Hostile {
    Result<MachineLayout> start(const DeviceSetup& s) override {
      DeviceSetup small = s;
      small.requested_size = 4 * s.block_size;  // the check plugs 2 blocks, then asks for 4
      return Hostile::start(small);
    }
  } t;
  const Report r = run(t, {"populate-refused"});
  EXPECT_FALSE(r.has(Outcome::Fail)) << summary(r);
  const std::vector<Verdict>& dev29 = r.find("DEV-29")->verdicts;
  EXPECT_TRUE(std::any_of(dev29.begin(), dev29.end(), [](const Verdict& v) {
    return v.outcome == Outcome::Info &&
           v.evidence.find("the retry is not judged") != std::string::npos;
  })) << summary(r);
}

// --- Reports ----------------------------------------------------------------------------

TEST(ReportTest, JsonJunitAndTextAgree) {
  ReferenceTarget t({Transport::Pci, Profile::Qemu, "", BackingKind::Anonymous});
  const Report r = run(t, {"plug"});
  const auto j = to_json(r);
  EXPECT_EQ(j["schema"], "vmemcheck-conformance-report");
  EXPECT_EQ(j["version"], kReportSchemaVersion);
  std::size_t fails = 0;
  for (const auto& q : j["requirements"])
    fails += q["outcome"] == "FAIL" ? 1 : 0;
  EXPECT_EQ(fails, r.counts().at(Outcome::Fail));
  const std::string junit = to_junit(r);
  EXPECT_NE(junit.find("failures=\"" + std::to_string(fails) + "\""), std::string::npos);
  EXPECT_NE(junit.find("<failure message=\"PLUG 0x"), std::string::npos);
  EXPECT_NE(format_text(r, false).find("DEV-27  FAIL"), std::string::npos);
}

TEST(ReportTest, BaselineMatchesItselfAndReportsDriftBothWays) {
  ReferenceTarget qemu({Transport::Pci, Profile::Qemu, "", BackingKind::Anonymous});
  const Report r = run(qemu, {"plug"});
  const auto baseline = nlohmann::json::parse(to_baseline(r).dump());
  auto same = compare_with_baseline(r, baseline);
  ASSERT_TRUE(same.has_value());
  EXPECT_TRUE(same->empty());

  // Better than the baseline is drift too (D15): the spec profile no longer FAILs DEV-27.
  ReferenceTarget spec({Transport::Pci, Profile::Spec, "", BackingKind::Anonymous});
  auto better = compare_with_baseline(run(spec, {"plug"}), baseline);
  ASSERT_TRUE(better.has_value());
  ASSERT_FALSE(better->empty());
  EXPECT_NE((*better)[0].find("DEV-27: PASS now, FAIL in the baseline"), std::string::npos)
      << (*better)[0];

  auto broken = compare_with_baseline(r, nlohmann::json{{"schema", "something else"}});
  EXPECT_FALSE(broken.has_value());
}

}  // namespace
}  // namespace vmem::conformance
