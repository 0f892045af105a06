// The requirement catalog (conformance/catalog/requirements.json): every normative statement of
// the virtio-mem device section (DEV-n) and the driver obligations (DRV-n), in our own words, plus
// the generic virtio rules the suite checks (GEN-n). IDs are frozen (decisions D2): add, never
// renumber.
#pragma once

#include <string>
#include <vector>

#include "reference/base/result.h"

namespace vmem::conformance {

struct Requirement {
  std::string id;
  std::string section;
  std::string level;  // MUST, MUST NOT, SHOULD, SHOULD NOT, MAY
  std::vector<std::string> spec_versions;
  std::string party;  // device or driver
  std::string statement;
  std::string checkable;  // yes, host-control, partial, no, driver-obligation
  std::string how;
  std::string linux_guest;
  std::string on_violation;  // FAIL, WARN, INFO, SKIP
};

struct Catalog {
  std::vector<Requirement> requirements;
  const Requirement* find(const std::string& id) const;
};

// Parses and validates a catalog: schema and version, fields present and of known values,
// unique IDs, and the verdict each level implies (D2).
Result<Catalog> parse_catalog(const std::string& json_text);
Result<Catalog> load_catalog(const std::string& path);
// The catalog built into the program (the file as it was at build time).
const char* embedded_catalog_json();
Result<Catalog> embedded_catalog();

}  // namespace vmem::conformance
