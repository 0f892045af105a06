// The requirement catalog: complete, graded as decisions D2 say, and the only source of the
// requirement IDs the code cites.
#include "conformance/catalog.h"

#include <gtest/gtest.h>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

namespace vmem::conformance {
namespace {

const std::string kSource = VMEM_SOURCE_DIR;

Catalog load() {
  auto c = load_catalog(kSource + "/conformance/catalog/requirements.json");
  EXPECT_TRUE(c.has_value()) << (c.has_value() ? "" : c.error().message);
  return c.has_value() ? *c : Catalog{};
}

TEST(CatalogTest, HoldsEveryDeviceAndDriverRequirementInOrder) {
  const Catalog c = load();
  std::vector<std::string> want;
  for (int i = 1; i <= 48; ++i)
    want.push_back("DEV-" + std::to_string(i));
  for (int i = 1; i <= 21; ++i)
    want.push_back("DRV-" + std::to_string(i));
  std::vector<std::string> got;
  for (const Requirement& r : c.requirements) {
    if (r.id.rfind("GEN-", 0) != 0) got.push_back(r.id);
  }
  EXPECT_EQ(got, want);
  for (const Requirement& r : c.requirements) {
    EXPECT_EQ(r.party, r.id.rfind("DRV-", 0) == 0 ? "driver" : "device") << r.id;
  }
}

TEST(CatalogTest, VirtioOnePointFourOnlyRequirements) {
  const Catalog c = load();
  for (const Requirement& r : c.requirements) {
    const bool only_14 = r.id == "DEV-15" || r.id == "DEV-23" || r.id == "DRV-16";
    if (only_14) {
      EXPECT_EQ(r.spec_versions, std::vector<std::string>{"1.4"}) << r.id;
    } else {
      EXPECT_EQ(r.spec_versions, (std::vector<std::string>{"1.2", "1.3", "1.4"})) << r.id;
    }
  }
}

TEST(CatalogTest, EveryIdTheCodeCitesIsInTheCatalog) {
  const Catalog c = load();
  std::set<std::string> missing;
  int cited = 0;
  for (const char* dir : {"reference", "proofs", "fuzz", "conformance", "cli"}) {
    for (const auto& e : std::filesystem::recursive_directory_iterator(kSource + "/" + dir)) {
      const auto ext = e.path().extension();
      if (ext != ".h" && ext != ".cc") continue;
      std::ifstream in(e.path());
      std::stringstream s;
      s << in.rdbuf();
      const std::string text = s.str();
      // Every DEV-n, DRV-n or GEN-n (not part of a longer word).
      for (std::size_t at = 0; at + 5 < text.size(); ++at) {
        const std::string prefix = text.substr(at, 4);
        if (prefix != "DEV-" && prefix != "DRV-" && prefix != "GEN-") continue;
        if (at > 0 && std::isalnum(static_cast<unsigned char>(text[at - 1]))) continue;
        std::size_t end = at + 4;
        while (end < text.size() && std::isdigit(static_cast<unsigned char>(text[end])))
          ++end;
        if (end == at + 4) continue;
        const std::string found = text.substr(at, end - at);
        ++cited;
        if (c.find(found) == nullptr)
          missing.insert(found + " (" + e.path().filename().string() + ")");
        at = end;
      }
    }
  }
  EXPECT_GT(cited, 50);
  EXPECT_TRUE(missing.empty()) << "cited but not in the catalog: "
                               << ::testing::PrintToString(missing);
}

TEST(CatalogTest, TheBuiltInCatalogIsTheFile) {
  auto built_in = embedded_catalog();
  ASSERT_TRUE(built_in.has_value()) << built_in.error().message;
  EXPECT_EQ(built_in->requirements.size(), load().requirements.size());
}

TEST(CatalogTest, BadCatalogsAreRefused) {
  const std::string good = R"({"schema":"vmemcheck-requirements","version":1,"requirements":[
    {"id":"DEV-5","section":"s","level":"MUST","spec_versions":["1.2"],"party":"device",
     "statement":"x","checkable":"yes","how":"h","linux_guest":"","on_violation":"FAIL"}]})";
  EXPECT_TRUE(parse_catalog(good).has_value());
  auto with = [&](const std::string& from, const std::string& to) {
    std::string t = good;
    t.replace(t.find(from), from.size(), to);
    return parse_catalog(t);
  };
  EXPECT_FALSE(with("\"FAIL\"", "\"WARN\"").has_value()) << "a MUST graded WARN";
  EXPECT_FALSE(with("\"MUST\"", "\"MUSTN'T\"").has_value());
  EXPECT_FALSE(with("\"statement\":\"x\",", "").has_value()) << "a missing field";
  EXPECT_FALSE(with("[\"1.2\"]", "[\"2.0\"]").has_value());
  EXPECT_FALSE(with("\"version\":1", "\"version\":2").has_value());
  EXPECT_FALSE(parse_catalog("{").has_value());
  std::string twice = good;
  const auto entry_start = twice.find("{\"id\"");
  const auto entry_end = twice.rfind('}', twice.size() - 3) + 1;
  twice.insert(entry_end, "," + twice.substr(entry_start, entry_end - entry_start));
  EXPECT_FALSE(parse_catalog(twice).has_value()) << "a duplicate ID";
}

}  // namespace
}  // namespace vmem::conformance
