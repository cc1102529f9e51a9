// Replays every scenario under proptests/regressions/ in lockstep: each one once broke something.
#include "harness.hpp"

#include <memtrack/sim/shrink.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

namespace memtrack::proptest {
namespace {

TEST(Regressions, EverySavedScenarioReplaysWithoutDivergence) {
  const auto dir = regressions_dir();
  ASSERT_TRUE(std::filesystem::is_directory(dir)) << dir << " is missing";
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() == ".scenario") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  ASSERT_FALSE(files.empty()) << "no .scenario files in " << dir;
  for (const auto& file : files) {
    const auto scenario = sim::load_scenario(file);
    ASSERT_TRUE(scenario.has_value()) << scenario.error().to_string();
    const auto divergence = sim::run_scenario(*scenario);
    EXPECT_FALSE(divergence.has_value()) << file.string() << ":\n"
                                         << (divergence ? divergence->to_string() : "");
  }
  std::cout << files.size() << " regression scenarios replayed\n";
}

}  // namespace
}  // namespace memtrack::proptest
