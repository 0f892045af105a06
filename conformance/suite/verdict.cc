#include "conformance/suite/verdict.h"

namespace vmem::conformance {

const char* to_string(Outcome o) {
  switch (o) {
    case Outcome::Pass:
      return "PASS";
    case Outcome::Info:
      return "INFO";
    case Outcome::Skip:
      return "SKIP";
    case Outcome::Warn:
      return "WARN";
    case Outcome::Fail:
      return "FAIL";
  }
  return "?";
}

std::optional<Outcome> outcome_from_string(std::string_view s) {
  for (Outcome o : {Outcome::Pass, Outcome::Info, Outcome::Skip, Outcome::Warn, Outcome::Fail}) {
    if (s == to_string(o)) return o;
  }
  return std::nullopt;
}

Outcome combine(Outcome a, Outcome b) {
  auto rank = [](Outcome o) {
    switch (o) {
      case Outcome::Skip:
        return 0;
      case Outcome::Pass:
        return 1;
      case Outcome::Info:
        return 2;
      case Outcome::Warn:
        return 3;
      case Outcome::Fail:
        return 4;
    }
    return 0;
  };
  return rank(a) >= rank(b) ? a : b;
}

}  // namespace vmem::conformance
