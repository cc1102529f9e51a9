#include "cli_test_support.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <sstream>

namespace memtrack::cli {
namespace {

TEST(BudgetCommand, JsonHasExactLimits) {
  const CliRun r = memtrack({"budget", "--gpu", "0:32GiB", "--gpu", "1:24GiB", "--fraction", "0.9",
                             "--cpu-limit", "16GiB", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto json = nlohmann::json::parse(r.out);
  // 32 GiB x 9/10 = 30923764531.2 -> 30923764531; 24 GiB x 9/10 = 23192823398.4 -> 23192823398.
  EXPECT_EQ(json["devices"][0]["device"], "gpu:0");
  EXPECT_EQ(json["devices"][0]["budget_bytes"], 30923764531ULL);
  EXPECT_EQ(json["devices"][1]["budget_bytes"], 23192823398ULL);
  EXPECT_EQ(json["devices"][2]["device"], "cpu");
  EXPECT_EQ(json["devices"][2]["budget_bytes"], 17179869184ULL);
  EXPECT_EQ(json["total_budget_bytes"], 30923764531ULL + 23192823398ULL + 17179869184ULL);
  EXPECT_EQ(json["memory_fraction"], "0.9");
}

TEST(BudgetCommand, UsableCapAndPerGpuFraction) {
  // RTX 5090: 33680457728 x 0.9 = 30312411955, capped at 24 GiB.
  const CliRun r = memtrack({"budget", "--gpu", "0:33680457728,usable=24GiB,name=RTX5090", "--gpu",
                             "3:1000,fraction=50%", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto json = nlohmann::json::parse(r.out);
  EXPECT_EQ(json["devices"][0]["share_bytes"], 30312411955ULL);
  EXPECT_EQ(json["devices"][0]["usable_bytes"], 25769803776ULL);
  EXPECT_EQ(json["devices"][0]["budget_bytes"], 25769803776ULL);
  EXPECT_EQ(json["devices"][0]["name"], "RTX5090");
  EXPECT_EQ(json["devices"][1]["device"], "gpu:3");
  EXPECT_EQ(json["devices"][1]["budget_bytes"], 500U);
  EXPECT_EQ(json["devices"][1]["fraction"], "0.5");
}

TEST(BudgetCommand, HumanTableShowsTheArithmetic) {
  const CliRun r = memtrack({"budget", "--gpu", "0:32GiB", "--gpu", "1:24GiB"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("30923764531"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("28.80"), std::string::npos) << r.out;  // 30923764531 / 2^30
  EXPECT_NE(r.out.find("17179869184"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("limit = min(floor(total x fraction), usable cap)"), std::string::npos);
}

TEST(BudgetCommand, BadInputIsOneLineAndExitTwo) {
  const struct {
    std::vector<std::string> args;
    const char* mentions;
  } cases[] = {
      {{"budget", "--gpu", "0:32XB"}, "--gpu '0:32XB'"},
      {{"budget", "--gpu", "32GiB"}, "no ':'"},
      {{"budget", "--gpu", "x:1GiB"}, "'x' is not a GPU id"},
      {{"budget", "--gpu", "0:1GiB,speed=3"}, "unknown field 'speed'"},
      {{"budget", "--gpu", "0:1GiB", "--gpu", "0:2GiB"}, "configured twice"},
      {{"budget", "--gpu", "0:0"}, "total_bytes is 0"},
      {{"budget", "--fraction", "1.5"}, "must be at most 1"},
      {{"budget", "--cpu-limit", "lots"}, "invalid byte size 'lots'"},
  };
  for (const auto& c : cases) {
    const CliRun r = memtrack(c.args);
    EXPECT_EQ(r.code, 2) << c.mentions;
    EXPECT_NE(r.err.find(c.mentions), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_TRUE(r.out.empty());
  }
}

TEST(Cli, HelpAndUnknownSubcommand) {
  const CliRun help = memtrack({"--help"});
  EXPECT_EQ(help.code, 0);
  EXPECT_NE(help.out.find("budget"), std::string::npos);
  const CliRun budget_help = memtrack({"budget", "--help"});
  EXPECT_EQ(budget_help.code, 0);
  EXPECT_NE(budget_help.out.find("--cpu-limit"), std::string::npos) << budget_help.out;
  EXPECT_EQ(memtrack({"frobnicate"}).code, 2);
  EXPECT_EQ(memtrack({}).code, 2);
}

}  // namespace
}  // namespace memtrack::cli
