// Verdicts (decisions D2): what a check concludes about one requirement. A broken MUST or
// MUST NOT is FAIL, a broken SHOULD is WARN, behaviour the spec leaves open is INFO (what the
// device did), SKIP when the target cannot show it; the catalog's `on_violation` says which.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace vmem::conformance {

enum class Outcome : uint8_t { Pass, Info, Skip, Warn, Fail };
const char* to_string(Outcome o);
std::optional<Outcome> outcome_from_string(std::string_view s);
// The outcome a requirement shows when several checks judged it: FAIL over WARN over INFO over
// PASS over SKIP.
Outcome combine(Outcome a, Outcome b);

struct Verdict {
  std::string id;  // DEV-n, DRV-n or GEN-n
  Outcome outcome = Outcome::Pass;
  std::string evidence;
  std::string check;  // the check that produced it
};

}  // namespace vmem::conformance
