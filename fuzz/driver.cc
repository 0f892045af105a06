// Fuzz target `driver`: the conformance suite's driver and checks facing a hostile device. The
// first byte picks a check; the rest is everything the device answers (ScriptedDevice): garbage
// configuration, capability lists that loop, used elements with wrong ids and lengths, status
// values that never settle, interrupt levels, host actions that fail, a device that stops
// answering mid-check.
// Oracle: no sanitizer report and no hang (every wait is bounded; the completion timeout is 0);
// the run ends with exactly that check's result; a check that stopped says why and FAILs (or
// WARNs, when it had already judged a SHOULD); every non-PASS verdict carries evidence; and the
// report renders as text, JSON and JUnit.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "conformance/suite/checks.h"
#include "conformance/suite/report.h"
#include "conformance/suite/runner.h"
#include "fuzz/common/fuzz_support.h"
#include "fuzz/common/scripted_device.h"

namespace {

using namespace vmem::conformance;

const Catalog& catalog() {
  static const Catalog c = [] {
    auto parsed = embedded_catalog();
    if (!parsed.has_value())
      vmem::fuzz::oracle_failure("driver", "catalog", parsed.error().message);
    return *parsed;
  }();
  return c;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const auto& checks = all_checks();
  const CheckDef& def = checks[data[0] % checks.size()];
  vmem::fuzz::ScriptedDevice device(data + 1, size - 1);
  RunOptions o;
  o.filters = {def.name};
  o.completion_timeout = std::chrono::milliseconds(0);
  const Report r = run_suite(device, catalog(), checks, o);

  if (r.checks.size() != 1 || r.checks[0].name != def.name)
    vmem::fuzz::oracle_failure("driver", "the run did not hold exactly the chosen check", def.name);
  const CheckResult& c = r.checks[0];
  // A stopped check names a broken rule: FAIL, or WARN where it had already judged a SHOULD.
  if (!c.stopped.empty() && c.outcome() != Outcome::Fail && c.outcome() != Outcome::Warn)
    vmem::fuzz::oracle_failure("driver", "a check stopped without a FAIL", c.stopped);
  for (const Verdict& v : c.verdicts) {
    if (v.outcome != Outcome::Pass && v.evidence.empty())
      vmem::fuzz::oracle_failure("driver", "a verdict without evidence", v.id);
    if (catalog().find(v.id) == nullptr)
      vmem::fuzz::oracle_failure("driver", "a verdict for an unknown requirement", v.id);
  }
  const std::string text = format_text(r, true);
  // VMEM_FUZZ_VERBOSE=1: what the input did (docs/fuzzing.md).
  if (std::getenv("VMEM_FUZZ_VERBOSE") != nullptr) {
    std::fprintf(stderr, "driver: check %s: %s%s\n", def.name.c_str(), to_string(c.outcome()),
                 c.stopped.empty() ? "" : (" (stopped: " + c.stopped + ")").c_str());
  }
  const std::string json = to_json(r).dump();
  const std::string junit = to_junit(r);
  if (text.empty() || json.empty() || junit.find("</testsuites>") == std::string::npos)
    vmem::fuzz::oracle_failure("driver", "a report did not render");
  return 0;
}
