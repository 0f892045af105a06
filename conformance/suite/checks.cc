#include "conformance/suite/checks.h"

namespace vmem::conformance {

const std::vector<CheckDef>& all_checks() {
  static const std::vector<CheckDef> checks = [] {
    std::vector<CheckDef> out;
    add_config_checks(out);
    add_request_checks(out);
    add_lifecycle_checks(out);
    add_virtqueue_checks(out);
    return out;
  }();
  return checks;
}

}  // namespace vmem::conformance
