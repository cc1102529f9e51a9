#include "cli_test_support.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

namespace memtrack::cli {
namespace {

TEST(ProfilesCommand, ListsEveryProfileWithItsLimit) {
  const CliRun r = memtrack({"profiles"});
  ASSERT_EQ(r.code, 0) << r.err;
  for (const char* name : {"rtx5090", "rtx4090", "rtx3090", "l4", "l40s", "a100-40gb", "a100-80gb",
                           "h100-sxm", "h100-pcie", "h200", "b200", "cpu"}) {
    EXPECT_NE(r.out.find(name), std::string::npos) << name;
  }
  EXPECT_NE(r.out.find("25769803776"), std::string::npos);  // rtx5090's limit
}

TEST(ProfilesCommand, ShowPrintsTheBudgetArithmetic) {
  const CliRun r = memtrack({"profiles", "show", "rtx5090"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("floor(33680457728 x 0.9) = 30312411955 bytes (28.23 GiB)"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("25769803776 bytes (24.00 GiB), set by the usable cap"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("[published]"), std::string::npos);
  const CliRun unknown = memtrack({"profiles", "show", "gtx480"});
  EXPECT_EQ(unknown.code, 2);
  EXPECT_NE(unknown.err.find("unknown profile 'gtx480'"), std::string::npos);
}

TEST(SimCommand, JsonVerdictPeaksAndOutcomes) {
  const CliRun r = memtrack({"sim", "--profile", "2xrtx5090", "--workload", "registry", "--ops",
                             "20000", "--seed", "3", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto json = nlohmann::json::parse(r.out);
  EXPECT_EQ(json["agree"], true);
  EXPECT_EQ(json["operations"], 20000U);
  EXPECT_EQ(json["mode"], "lockstep");
  ASSERT_EQ(json["devices"].size(), 3U);
  EXPECT_EQ(json["devices"][0]["device"], "gpu:0");
  EXPECT_EQ(json["devices"][0]["budget_bytes"], 25769803776ULL);
  EXPECT_LE(json["devices"][0]["peak_bytes"].get<std::uint64_t>(), 25769803776ULL);
  EXPECT_EQ(json["outcomes"]["ok"].get<std::uint64_t>() +
                json["outcomes"]["refused"].get<std::uint64_t>() +
                json["outcomes"]["other_errors"].get<std::uint64_t>(),
            20000U);
}

TEST(SimCommand, ShardFromFlagAndFromTheEnvironment) {
  const auto seed_of = [](const CliRun& r) {
    return nlohmann::json::parse(r.out)["seed"].get<std::uint64_t>();
  };
  const CliRun shard0 = memtrack({"sim", "--ops", "10", "--seed", "9", "--shard", "0/4", "--json"});
  const CliRun shard3 = memtrack({"sim", "--ops", "10", "--seed", "9", "--shard", "3/4", "--json"});
  ASSERT_EQ(shard0.code, 0) << shard0.err;
  ASSERT_EQ(shard3.code, 0) << shard3.err;
  EXPECT_EQ(seed_of(shard0), 9U);
  EXPECT_NE(seed_of(shard3), 9U);
  ::setenv("SLURM_ARRAY_TASK_ID", "3", 1);
  ::setenv("SLURM_ARRAY_TASK_COUNT", "4", 1);
  const CliRun slurm = memtrack({"sim", "--ops", "10", "--seed", "9", "--json"});
  ::unsetenv("SLURM_ARRAY_TASK_ID");
  ::unsetenv("SLURM_ARRAY_TASK_COUNT");
  ASSERT_EQ(slurm.code, 0) << slurm.err;
  EXPECT_EQ(seed_of(slurm), seed_of(shard3));
  ::setenv("JOB_COMPLETION_INDEX", "3", 1);
  const CliRun k8s = memtrack({"sim", "--ops", "10", "--seed", "9", "--json"});
  ::unsetenv("JOB_COMPLETION_INDEX");
  EXPECT_EQ(seed_of(k8s), seed_of(shard3));
}

TEST(SimCommand, BadInputIsOneLineAndExitTwo) {
  const struct {
    std::vector<std::string> args;
    const char* mentions;
  } cases[] = {
      {{"sim", "--profile", "3xnope"}, "unknown profile 'nope'"},
      {{"sim", "--workload", "stampede", "--ops", "1"}, "unknown workload 'stampede'"},
      {{"sim", "--shard", "4/4", "--ops", "1"}, "--shard: '4/4'"},
      {{"sim", "--shard", "two", "--ops", "1"}, "--shard 'two'"},
      {{"sim", "--cpu-limit", "much", "--ops", "1"}, "invalid byte size 'much'"},
      {{"sim", "--profile", "2xrtx5090", "--gpus", "3"}, "--gpus needs a single profile"},
  };
  for (const auto& c : cases) {
    const CliRun r = memtrack(c.args);
    EXPECT_EQ(r.code, 2) << c.mentions;
    EXPECT_NE(r.err.find(c.mentions), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
}

}  // namespace
}  // namespace memtrack::cli

namespace memtrack::cli {
namespace {

/// Writes `text` to a file named `name` in the temporary folder. @return its path
std::filesystem::path write_temp(const std::string& name, const std::string& text) {
  const auto path = std::filesystem::temp_directory_path() / name;
  std::ofstream(path) << text;
  return path;
}

constexpr const char* small_node =
    "memtrack-trace 1\nmemory_fraction 1\ncpu_memory_limit 10\ngpu 0 total=100\nevents\n";

TEST(ReplayCommand, ReplaysOperationsWithEveryOutcomeAndTheirStates) {
  // What the property tests and a sim divergence write: each operation with its outcome.
  const auto path =
      write_temp("memtrack-replay-outcomes.trace", std::string(small_node) +
                                                       "alloc gpu:0 100\n"
                                                       "alloc gpu:0 1 result=OutOfMemory\n"
                                                       "alloc auto 10 resolved=cpu\n"
                                                       "free gpu:0 101 result=InvalidDeallocation\n"
                                                       "free auto 1 result=AmbiguousDevice\n"
                                                       "reset_peak gpu:3 result=UnknownDevice\n"
                                                       "end 6\n");
  const CliRun r = memtrack({"replay", path.string()});
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("2 ok"), std::string::npos) << r.out;
  // --states works on it: one state a line, each operation's outcome as written.
  const auto states_file = std::filesystem::temp_directory_path() / "memtrack-outcomes.jsonl";
  const CliRun states = memtrack({"replay", path.string(), "--states", states_file.string()});
  ASSERT_EQ(states.code, 0) << states.err;
  std::ifstream lines(states_file);
  std::vector<nlohmann::json> parsed;
  for (std::string line; std::getline(lines, line);)
    parsed.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(parsed.size(), 6U) << states.out;
  const char* errors[] = {nullptr,           "OutOfMemory",  nullptr, "InvalidDeallocation",
                          "AmbiguousDevice", "UnknownDevice"};
  for (std::size_t i = 0; i < parsed.size(); ++i) {
    if (errors[i] == nullptr) {
      EXPECT_TRUE(parsed[i]["error"].is_null()) << i;
    } else {
      EXPECT_EQ(parsed[i]["error"], errors[i]) << i;
    }
  }
  EXPECT_EQ(parsed[2]["resolved"], "cpu");
  EXPECT_EQ(parsed[4]["op"], "free");
  EXPECT_EQ(parsed[4]["device"], "auto");
  EXPECT_EQ(parsed[5]["op"], "reset_peak");
  EXPECT_EQ(parsed[5]["device"], "gpu:3");
  std::filesystem::remove(path);
  std::filesystem::remove(states_file);
}

TEST(ReplayCommand, APlantedWrongOutcomeFailsAtItsLine) {
  // The second allocation cannot fit: a tracker that made it would be wrong.
  const auto path = write_temp("memtrack-replay-planted.trace",
                               std::string(small_node) + "alloc gpu:0 60\nalloc gpu:0 60\nend 2\n");
  const CliRun r = memtrack({"replay", path.string()});
  EXPECT_EQ(r.code, 1) << r.out << r.err;
  const std::string all = r.out + r.err;
  EXPECT_NE(all.find(path.string() + ":7"), std::string::npos) << all;
  EXPECT_NE(all.find("the recording did it; the replay refused it"), std::string::npos) << all;
  std::filesystem::remove(path);
}

TEST(ReplayCommand, ASimRecordingReplaysWithItsStates) {
  const auto path = std::filesystem::temp_directory_path() / "memtrack-sim-record.trace";
  const CliRun sim = memtrack({"sim", "--profile", "rtx5090", "--workload", "adversarial", "--ops",
                               "300", "--seed", "5", "--record", path.string(), "--json"});
  ASSERT_EQ(sim.code, 0) << sim.err;
  const auto states_file = std::filesystem::temp_directory_path() / "memtrack-sim-record.jsonl";
  const CliRun states = memtrack({"replay", path.string(), "--states", states_file.string()});
  EXPECT_EQ(states.code, 0) << states.err;
  std::ifstream in(states_file);
  std::size_t lines = 0;
  for (std::string line; std::getline(in, line);)
    ++lines;
  EXPECT_EQ(lines, 300U) << states.out;
  std::filesystem::remove(path);
  std::filesystem::remove(states_file);
}

TEST(ReplayCommand, APropertyTestRegressionReplaysWithItsStates) {
  // The committed regression: sparse GPU ids, auto falling through to the CPU, then refusals.
  const std::string regression =
      std::string(MEMTRACK_SOURCE_DIR) + "/proptests/regressions/seed-auto-sparse-fallback.trace";
  const auto states_file = std::filesystem::temp_directory_path() / "memtrack-regression.jsonl";
  const CliRun r = memtrack({"replay", regression, "--states", states_file.string()});
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  std::ifstream in(states_file);
  std::vector<nlohmann::json> states;
  for (std::string line; std::getline(in, line);)
    states.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(states.size(), 10U) << r.out;
  EXPECT_EQ(states[3]["resolved"], "cpu");  // alloc auto 50: every GPU full
  EXPECT_EQ(states[4]["error"], "OutOfMemory");
  EXPECT_EQ(states[5]["error"], "AmbiguousDevice");  // free auto 1
  EXPECT_EQ(states[7]["error"], "UnknownDevice");    // reset_peak gpu:5
  EXPECT_EQ(states[8]["error"], "InvalidDeallocation");
  std::filesystem::remove(states_file);
}

TEST(ReplayCommand, ScenarioFilesAreGoneWithAOneLineError) {
  const auto path = write_temp("memtrack-replay-old.scenario",
                               "memtrack-scenario 1\ngpu 0 total=100\nalloc gpu:0 1\n");
  const auto states = std::filesystem::temp_directory_path() / "memtrack-old-scenario.jsonl";
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"replay", path.string()}, {"replay", path.string(), "--states", states.string()}}) {
    const CliRun r = memtrack(args);
    EXPECT_EQ(r.code, 2);
    EXPECT_NE(r.err.find(path.string() + ": a memtrack-scenario file: that format is gone"),
              std::string::npos)
        << r.err;
    EXPECT_NE(r.err.find("docs/trace-format.md"), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
    EXPECT_FALSE(std::filesystem::exists(states));  // nothing half-written
  }
  std::filesystem::remove(path);
}

TEST(ReplayCommand, BadTraceLineIsLocatedAndExitTwo) {
  const auto path =
      write_temp("memtrack-replay-bad.trace", std::string(small_node) + "free auto 1\nend 1\n");
  const CliRun r = memtrack({"replay", path.string()});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find(path.string() + ":6: free auto is always refused"), std::string::npos)
      << r.err;
  EXPECT_EQ(memtrack({"replay", "/nonexistent/file.trace"}).code, 2);
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace memtrack::cli
