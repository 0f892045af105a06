// The readers `vmemcheck fuzz` uses on engine logs, and the way it writes figures.
#include "cli/campaign_io.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace vmem::cli {
namespace {

TEST(CampaignIoTest, GroupedWritesThousandsAsTheDocsDo) {
  EXPECT_EQ(grouped(0), "0");
  EXPECT_EQ(grouped(999), "999");
  EXPECT_EQ(grouped(1000), "1,000");
  EXPECT_EQ(grouped(77458), "77,458");
  EXPECT_EQ(grouped(20155188), "20,155,188");
  EXPECT_EQ(grouped(18446744073709551615ULL), "18,446,744,073,709,551,615");
}

TEST(CampaignIoTest, NumberAfterReadsLibFuzzerStatusLines) {
  const std::string pulse = "#4096\tpulse  cov: 998 ft: 1851 corp: 109/3Kb exec/s: 2048 rss: 40Mb";
  EXPECT_EQ(number_after(pulse, "cov: "), 998u);
  EXPECT_EQ(number_after(pulse, "corp: "), 109u);  // the count, not the size after the slash
  EXPECT_EQ(number_after(pulse, "exec/s: "), 2048u);
  EXPECT_EQ(number_after(pulse, "#"), 4096u);
  EXPECT_FALSE(number_after(pulse, "oom/timeout/crash: ").has_value());
  EXPECT_FALSE(number_after("cov: none", "cov: ").has_value());
  EXPECT_FALSE(number_after("cov: ", "cov: ").has_value());
}

TEST(CampaignIoTest, FilesInListsInputsSortedAndSkipsAflsReadme) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("campaign_io_test." + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir / "sub");
  for (const char* name : {"b", "a", "README.txt"})
    std::ofstream(dir / name) << name;
  const auto files = files_in(dir);
  ASSERT_EQ(files.size(), 2u);
  EXPECT_EQ(files[0].filename(), "a");
  EXPECT_EQ(files[1].filename(), "b");
  EXPECT_TRUE(files_in(dir / "missing").empty());
  EXPECT_EQ(read_text(dir / "a"), "a");
  EXPECT_EQ(read_text(dir / "missing"), "");
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace vmem::cli
