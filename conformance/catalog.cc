#include "conformance/catalog.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string_view>

namespace vmem::conformance {

namespace {

constexpr std::array<std::string_view, 5> kLevels = {"MUST", "MUST NOT", "SHOULD", "SHOULD NOT",
                                                     "MAY"};
constexpr std::array<std::string_view, 5> kCheckable = {"yes", "host-control", "partial", "no",
                                                        "driver-obligation"};
constexpr std::array<std::string_view, 4> kVerdicts = {"FAIL", "WARN", "INFO", "SKIP"};
constexpr std::array<std::string_view, 3> kVersions = {"1.2", "1.3", "1.4"};

template <std::size_t N>
bool one_of(const std::array<std::string_view, N>& set, const std::string& v) {
  return std::find(set.begin(), set.end(), v) != set.end();
}

// Decisions D2: what breaking a requirement of each level is.
std::string verdict_for(const Requirement& r) {
  if (r.party == "driver") return "SKIP";
  if (r.level == "MUST" || r.level == "MUST NOT") return "FAIL";
  if (r.level == "SHOULD" || r.level == "SHOULD NOT") return "WARN";
  return "INFO";
}

}  // namespace

const Requirement* Catalog::find(const std::string& id) const {
  for (const Requirement& r : requirements) {
    if (r.id == id) return &r;
  }
  return nullptr;
}

Result<Catalog> parse_catalog(const std::string& text) {
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return unexpected(Error{"the catalog is not valid JSON"});
  if (!j.is_object() || j.value("schema", "") != "vmemcheck-requirements" ||
      j.value("version", 0) != 1) {
    return unexpected(Error{"not a version-1 vmemcheck-requirements catalog"});
  }
  if (!j.contains("requirements") || !j["requirements"].is_array()) {
    return unexpected(Error{"no 'requirements' array"});
  }
  Catalog c;
  std::set<std::string> ids;
  for (const auto& e : j["requirements"]) {
    auto text_field = [&](const char* key) -> std::string {
      return e.contains(key) && e[key].is_string() ? e[key].get<std::string>()
                                                   : std::string("\x01");
    };
    Requirement r{text_field("id"),          text_field("section"),
                  text_field("level"),       {},
                  text_field("party"),       text_field("statement"),
                  text_field("checkable"),   text_field("how"),
                  text_field("linux_guest"), text_field("on_violation")};
    for (const std::string* f : {&r.id, &r.section, &r.level, &r.party, &r.statement, &r.checkable,
                                 &r.how, &r.linux_guest, &r.on_violation}) {
      if (*f == "\x01")
        return unexpected(Error{fmt::format("requirement '{}' lacks a text field", r.id)});
    }
    if (!e.contains("spec_versions") || !e["spec_versions"].is_array() ||
        e["spec_versions"].empty()) {
      return unexpected(Error{fmt::format("{}: no spec_versions", r.id)});
    }
    for (const auto& v : e["spec_versions"]) {
      if (!v.is_string() || !one_of(kVersions, v.get<std::string>())) {
        return unexpected(Error{fmt::format("{}: unknown spec version", r.id)});
      }
      r.spec_versions.push_back(v.get<std::string>());
    }
    if (!ids.insert(r.id).second) return unexpected(Error{fmt::format("{} appears twice", r.id)});
    if (!one_of(kLevels, r.level))
      return unexpected(Error{fmt::format("{}: unknown level '{}'", r.id, r.level)});
    if (r.party != "device" && r.party != "driver") {
      return unexpected(Error{fmt::format("{}: party must be device or driver", r.id)});
    }
    if (!one_of(kCheckable, r.checkable)) {
      return unexpected(Error{fmt::format("{}: unknown checkability '{}'", r.id, r.checkable)});
    }
    if (!one_of(kVerdicts, r.on_violation) || r.on_violation != verdict_for(r)) {
      return unexpected(
          Error{fmt::format("{}: a {} {} requirement is graded {}, decisions D2 say {}", r.id,
                            r.party, r.level, r.on_violation, verdict_for(r))});
    }
    if (r.statement.empty()) return unexpected(Error{fmt::format("{}: empty statement", r.id)});
    c.requirements.push_back(std::move(r));
  }
  return c;
}

Result<Catalog> embedded_catalog() {
  return parse_catalog(embedded_catalog_json());
}

Result<Catalog> load_catalog(const std::string& path) {
  std::ifstream in(path);
  if (!in) return unexpected(Error{fmt::format("cannot read {}", path)});
  std::stringstream s;
  s << in.rdbuf();
  return parse_catalog(s.str());
}

}  // namespace vmem::conformance
