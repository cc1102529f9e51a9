// memtrack record and memtrack probe, without a GPU: the environment record sets up, its exit
// codes and messages; probe's output on a simulated device, and what it says without CUDA.
#include "cli_test_support.hpp"
#include "commands.hpp"
#include "simulated_device.hpp"

#include <memtrack/sim/profile.hpp>

#include <gtest/gtest.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace memtrack::cli {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

/// The exit code of a run that printed its result (bad input is checked with EXPECT_FALSE).
int code(const Outcome& outcome) {
  return outcome ? static_cast<int>(*outcome) : -1;
}

class RecordCommand : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("memtrack-record-test-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    library_ = dir_ / "libfake_inject.so";
    std::ofstream(library_) << "not a library: the commands below never load CUDA";
  }
  void TearDown() override { fs::remove_all(dir_); }

  static std::string slurp(const fs::path& path) {
    std::ifstream file(path);
    std::stringstream text;
    text << file.rdbuf();
    return text.str();
  }

  fs::path dir_;
  fs::path library_;
};

TEST_F(RecordCommand, SetsUpTheInjectionAndReportsWhatTheRecorderWrote) {
  const fs::path out = dir_ / "run.trace";
  // a stand-in for a CUDA program with the recorder: it writes what the library would
  const auto run =
      memtrack({"record", "-o", out.string(), "--inject", library_.string(), "--", "sh", "-c",
                "printf 'ok 42 2\\n' > \"$MEMTRACK_RECORD_STATUS\"; "
                "printf '%s' \"$CUDA_INJECTION64_PATH\" > \"$MEMTRACK_RECORD_OUTPUT\"; "
                "[ \"$MEMTRACK_RECORD_PID\" = \"$$\" ] && "
                "touch \"$(dirname \"$MEMTRACK_RECORD_OUTPUT\")/run.pid99.trace\""});
  EXPECT_EQ(run.code, 0) << run.err;
  EXPECT_EQ(slurp(out), fs::absolute(library_).string());
  EXPECT_NE(run.err.find("42 events on 2 devices"), std::string::npos) << run.err;
  // the command is the recorded process; a child's trace beside it is named
  EXPECT_NE(run.err.find("also " + (dir_ / "run.pid99.trace").string() + " (a child process)"),
            std::string::npos)
      << run.err;
}

TEST_F(RecordCommand, ItsExitCodeIsTheCommands) {
  const auto run =
      memtrack({"record", "-o", (dir_ / "t").string(), "--inject", library_.string(), "--", "sh",
                "-c", "printf 'ok 1 1\\n' > \"$MEMTRACK_RECORD_STATUS\"; exit 7"});
  EXPECT_EQ(run.code, 7);
  EXPECT_NE(run.err.find("exited with 7"), std::string::npos) << run.err;
}

TEST_F(RecordCommand, NothingRecordedIsAFailureEvenWhenTheCommandSucceeds) {
  const auto no_cuda = memtrack(
      {"record", "-o", (dir_ / "t").string(), "--inject", library_.string(), "--", "true"});
  EXPECT_EQ(no_cuda.code, exit_failure);
  EXPECT_NE(no_cuda.err.find("never initialised CUDA"), std::string::npos) << no_cuda.err;
  EXPECT_FALSE(fs::exists(dir_ / "t"));

  const auto taken = memtrack({"record", "-o", (dir_ / "t").string(), "--inject", library_.string(),
                               "--", "sh", "-c",
                               "printf 'error CUPTI is already taken by another subscriber\\n' > "
                               "\"$MEMTRACK_RECORD_STATUS\""});
  EXPECT_EQ(taken.code, exit_failure);
  EXPECT_NE(taken.err.find("nothing recorded: CUPTI is already taken"), std::string::npos)
      << taken.err;

  const auto failed = memtrack({"record", "-o", (dir_ / "t").string(), "--inject",
                                library_.string(), "--", "sh", "-c", "exit 5"});
  EXPECT_EQ(failed.code, 5);  // the command's failure comes first
}

TEST_F(RecordCommand, AWrapperThatNeverUsesCudaNamesItsChildrensTraces) {
  // torchrun's agent, `bash -c`: the command itself never loads the recorder (no status), the
  // processes it starts write their .pidN traces
  const fs::path out = dir_ / "run.trace";
  const auto run =
      memtrack({"record", "-o", out.string(), "--inject", library_.string(), "--", "sh", "-c",
                "sh -c 'touch \"$(dirname \"$MEMTRACK_RECORD_OUTPUT\")/run.pid77.trace\"; "
                "touch \"$(dirname \"$MEMTRACK_RECORD_OUTPUT\")/run.pid78.trace\"'"});
  EXPECT_EQ(run.code, 0) << run.err;
  EXPECT_EQ(run.err.find("nothing recorded"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("'sh' never initialised CUDA itself (a launcher or wrapper); its child "
                         "processes wrote 2 traces"),
            std::string::npos)
      << run.err;
  EXPECT_NE(run.err.find("also " + (dir_ / "run.pid77.trace").string() + " (a child process)"),
            std::string::npos)
      << run.err;
  EXPECT_NE(run.err.find("also " + (dir_ / "run.pid78.trace").string()), std::string::npos);
  // a stale .pidN from an earlier run is not this run's
  const fs::path old = dir_ / "run.pid5.trace";
  std::ofstream(old) << "old";
  fs::last_write_time(old, fs::file_time_type::clock::now() - std::chrono::hours(1));
  const auto again =
      memtrack({"record", "-o", out.string(), "--inject", library_.string(), "--", "true"});
  EXPECT_EQ(again.code, exit_failure);
  EXPECT_NE(again.err.find("nothing recorded"), std::string::npos) << again.err;
  EXPECT_EQ(again.err.find("run.pid5"), std::string::npos) << again.err;
}

TEST_F(RecordCommand, AnIncompleteTraceIsNamedSoAndFails) {
  const fs::path out = dir_ / "run.trace";
  const auto run = memtrack(
      {"record", "-o", out.string(), "--inject", library_.string(), "--", "sh", "-c",
       "printf 'error incomplete: CUPTI delivered 1 MEMORY2 device allocation records for 3 "
       "allocation calls\\n' > \"$MEMTRACK_RECORD_STATUS\"; touch \"$MEMTRACK_RECORD_OUTPUT\""});
  EXPECT_EQ(run.code, exit_failure);
  EXPECT_NE(run.err.find(out.string() + " is incomplete: CUPTI delivered 1 MEMORY2"),
            std::string::npos)
      << run.err;
  EXPECT_EQ(run.err.find("nothing recorded"), std::string::npos) << run.err;
}

TEST_F(RecordCommand, BadArgumentsAreRefusedBeforeAnythingRuns) {
  const fs::path marker = dir_ / "ran";
  const std::string touch = "touch " + marker.string();
  const auto no_command =
      memtrack({"record", "-o", (dir_ / "t").string(), "--inject", library_.string()});
  EXPECT_EQ(no_command.code, exit_bad_input);
  EXPECT_NE(no_command.err.find("no command"), std::string::npos);
  const auto no_library = memtrack({"record", "-o", (dir_ / "t").string(), "--inject",
                                    (dir_ / "missing.so").string(), "--", "sh", "-c", touch});
  EXPECT_EQ(no_library.code, exit_bad_input);
  EXPECT_NE(no_library.err.find("does not exist"), std::string::npos);
  const auto no_folder = memtrack({"record", "-o", (dir_ / "nowhere" / "t").string(), "--inject",
                                   library_.string(), "--", "sh", "-c", touch});
  EXPECT_EQ(no_folder.code, exit_bad_input);
  EXPECT_NE(no_folder.err.find("does not exist"), std::string::npos);
  EXPECT_FALSE(fs::exists(marker));
  const auto missing = memtrack({"record", "-o", (dir_ / "t").string(), "--inject",
                                 library_.string(), "--", "/no/such/program"});
  EXPECT_EQ(missing.code, 127);
}

TEST_F(RecordCommand, JsonSaysWhatWasRecorded) {
  const fs::path out = dir_ / "run.trace";
  const auto run = memtrack(
      {"record", "-o", out.string(), "--inject", library_.string(), "--json", "--", "sh", "-c",
       "printf 'ok 42 2\\n' > \"$MEMTRACK_RECORD_STATUS\"; "
       "touch \"$(dirname \"$MEMTRACK_RECORD_OUTPUT\")/run.pid99.trace\"; exit 3"});
  EXPECT_EQ(run.code, 3) << run.err;
  const Json expected = {{"output", out.string()},
                         {"command", "sh"},
                         {"result", "recorded"},
                         {"events", 42},
                         {"devices", 2},
                         {"command_exit_code", 3},
                         {"child_traces", {(dir_ / "run.pid99.trace").string()}},
                         {"problem", nullptr}};
  EXPECT_EQ(Json::parse(run.out), expected) << run.out;
  EXPECT_EQ(run.err, "");  // the text summary is not printed as well
}

TEST_F(RecordCommand, JsonSaysWhyNothingWasRecorded) {
  const fs::path out = dir_ / "run.trace";
  const auto none = memtrack({"record", "-o", out.string(), "--inject", library_.string(), "--json",
                              "--", "sh", "-c", "exit 5"});
  EXPECT_EQ(none.code, 5);
  const Json expected = {
      {"output", out.string()},
      {"command", "sh"},
      {"result", "nothing recorded"},
      {"events", nullptr},
      {"devices", nullptr},
      {"command_exit_code", 5},
      {"child_traces", Json::array()},
      {"problem",
       "'sh' never initialised CUDA (the driver loads the recorder at cuInit); it exited with 5"}};
  EXPECT_EQ(Json::parse(none.out), expected) << none.out;

  const auto incomplete = memtrack(
      {"record", "-o", out.string(), "--inject", library_.string(), "--json", "--", "sh", "-c",
       "printf 'error incomplete: 1 of 3 records\\n' > \"$MEMTRACK_RECORD_STATUS\""});
  EXPECT_EQ(incomplete.code, exit_failure);
  const Json said = Json::parse(incomplete.out);
  EXPECT_EQ(said["result"], "incomplete");
  EXPECT_EQ(said["problem"], "1 of 3 records");

  const auto bad =
      memtrack({"record", "-o", out.string(), "--inject", library_.string(), "--json"});
  EXPECT_EQ(bad.code, exit_bad_input);
  const Json error = {
      {"error",
       "memtrack record: no command: expected 'memtrack record -o OUT -- COMMAND ARGS...'"},
      {"exit_code", 2}};
  EXPECT_EQ(Json::parse(bad.out), error) << bad.out;
}

TEST(ProbeCommand, WithoutCudaOrADeviceItSaysWhy) {
  const auto run = memtrack({"probe"});
#ifdef MEMTRACK_WITH_CUDA
  // a CUDA build: on this machine either there is a GPU, or probe says there is none
  if (run.code == exit_failure) {
    EXPECT_NE(run.err.find("no CUDA device"), std::string::npos) << run.err;
  } else {
    GTEST_SKIP() << "a GPU is present: probe ran (" << run.code << ")";
  }
#else
  EXPECT_EQ(run.code, exit_bad_input);
  EXPECT_NE(run.err.find("built without CUDA"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("--preset cuda"), std::string::npos) << run.err;
#endif
}

TEST(ProbeCommand, PrintsAMeasuredProfileThatLoads) {
  recorder::testing::SimulatedDevice device;
  std::ostringstream out;
  std::ostringstream err;
  ProbeCommandOptions options;
  options.devices = {0};
  ASSERT_EQ(code(run_probe(device, options, out, err)), exit_ok) << err.str();
  auto profile = sim::parse_profile(out.str(), "stdout");
  ASSERT_TRUE(profile) << profile.error().to_string() << "\n" << out.str();
  EXPECT_EQ(profile->name, "h100-80gb-hbm3");
  EXPECT_EQ(profile->allocation_granularity_bytes->value, 2_MiB);
  EXPECT_NE(
      err.str().find(
          "memtrack probe: device 0: a bare context takes at least 555745280 bytes (a minimum: "),
      std::string::npos)
      << err.str();
}

TEST(ProbeCommand, WritesOneFilePerDeviceIntoAFolder) {
  const fs::path dir =
      fs::temp_directory_path() / ("memtrack-probe-test-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  recorder::testing::SimulatedDevice device;
  std::ostringstream out;
  std::ostringstream err;
  ProbeCommandOptions options;
  options.output = dir.string();
  options.name = "lab";
  ASSERT_EQ(code(run_probe(device, options, out, err)), exit_ok) << err.str();
  for (const char* file : {"lab-gpu0.profile", "lab-gpu1.profile"}) {
    auto profile = sim::load_profile(dir / file);
    ASSERT_TRUE(profile) << file << ": " << profile.error().to_string();
    EXPECT_EQ(profile->cuda_total_bytes->provenance, sim::Provenance::Measured);
  }
  // several devices and a file name: refused before measuring anything
  options.output = (dir / "one.profile").string();
  EXPECT_FALSE(run_probe(device, options, out, err));
  options.devices = {5};
  options.output.clear();
  EXPECT_FALSE(run_probe(device, options, out, err));
  fs::remove_all(dir);
}

TEST(ProbeCommand, CheckReportsDifferencesAndFailsOnThem) {
  recorder::testing::SimulatedDevice device;
  std::ostringstream out;
  std::ostringstream err;
  ProbeCommandOptions options;
  options.devices = {0};
  options.check = "h100-sxm";
  EXPECT_EQ(code(run_probe(device, options, out, err)), exit_failure) << err.str();
  EXPECT_NE(out.str().find("DIFFERS"), std::string::npos) << out.str();
  EXPECT_NE(out.str().find("context_overhead_bytes"), std::string::npos);
  EXPECT_NE(out.str().find("the profile differs from the device"), std::string::npos);

  // a profile probed from the device itself agrees
  const fs::path file = fs::temp_directory_path() /
                        ("memtrack-probe-self-" + std::to_string(::getpid()) + ".profile");
  {
    recorder::testing::SimulatedDevice same;
    std::ostringstream text;
    ProbeCommandOptions write;
    write.devices = {0};
    ASSERT_EQ(code(run_probe(same, write, text, err)), exit_ok);
    std::ofstream(file) << text.str();
  }
  recorder::testing::SimulatedDevice again;
  std::ostringstream agreed;
  options.check = file.string();
  EXPECT_EQ(code(run_probe(again, options, agreed, err)), exit_ok) << agreed.str();
  EXPECT_EQ(agreed.str().find("DIFFERS"), std::string::npos) << agreed.str();
  fs::remove(file);

  options.check = "no-such-profile";
  EXPECT_FALSE(run_probe(again, options, agreed, err));
}

TEST(ProbeCommand, JsonHasTheMeasuredFiguresAsNumbers) {
  recorder::testing::SimulatedDevice device;  // 80 GiB, 3 GiB used by others, contexts 530 MiB
  std::ostringstream out;
  std::ostringstream err;
  ProbeCommandOptions options;
  options.devices = {0};
  options.json = true;
  ASSERT_EQ(code(run_probe(device, options, out, err)), exit_ok) << err.str();
  Json said = Json::parse(out.str());
  ASSERT_EQ(said["devices"].size(), 1U) << out.str();
  Json& entry = said["devices"][0];
  // the profile's text is the one probe prints without --json, which loads
  auto profile = sim::parse_profile(entry["profile_text"].get<std::string>(), "profile_text");
  ASSERT_TRUE(profile) << profile.error().to_string();
  EXPECT_EQ(profile->cuda_total_bytes->value, 80_GiB);
  entry.erase("profile_text");
  const Json expected = {{"devices",
                          {{{"device", 0},
                            {"name", "NVIDIA H100 80GB HBM3"},
                            {"uuid", "GPU-0123"},
                            {"compute_capability", "9.0"},
                            {"cuda_total_bytes", 85899345920ULL},     // 80 GiB
                            {"free_at_start_bytes", 82122375168ULL},  // 80 GiB - 3 GiB - 530 MiB
                            {"context_overhead_bytes", 555745280},    // 530 MiB
                            {"allocation_granularity_bytes", 2097152},
                            {"profile", "h100-80gb-hbm3"},
                            {"file", nullptr}}}}};
  EXPECT_EQ(said, expected) << said.dump(2);
}

TEST(ProbeCommand, JsonCheckSaysWhichFieldsDiffer) {
  recorder::testing::SimulatedDevice device;
  std::ostringstream out;
  std::ostringstream err;
  ProbeCommandOptions options;
  options.devices = {0};
  options.check = "h100-sxm";
  options.json = true;
  EXPECT_EQ(code(run_probe(device, options, out, err)), exit_failure) << err.str();
  const Json said = Json::parse(out.str());
  EXPECT_EQ(said["profile"], "h100-sxm");
  EXPECT_EQ(said["agrees"], false);
  EXPECT_EQ(said["devices"][0]["agrees"], false);
  EXPECT_EQ(said["devices"][0]["cuda_total_bytes"], 80_GiB);
  std::vector<std::string> fields;
  for (const Json& check : said["devices"][0]["checks"])
    fields.push_back(check["field"].get<std::string>());
  EXPECT_EQ(fields, (std::vector<std::string>{"cuda_total_bytes", "compute_capability",
                                              "context_overhead_bytes",
                                              "allocation_granularity_bytes", "budget"}));
  EXPECT_EQ(said["devices"][0]["checks"][2]["device"], "at least 555745280");
  EXPECT_EQ(out.str().find("DIFFERS"), std::string::npos);  // no table under --json
}

/// A machine whose driver sees no GPU.
class NoDevice final : public recorder::ProbeBackend {
 public:
  Result<recorder::VersionInfo> versions() override { return recorder::VersionInfo{}; }
  Result<std::uint32_t> device_count() override { return 0U; }
  Result<recorder::DeviceIdentity> identify(std::uint32_t) override { return none(); }
  Result<void> use(std::uint32_t) override { return none(); }
  Result<recorder::MemInfo> mem_info() override { return none(); }
  Result<void> create_context() override { return none(); }
  Result<void> destroy_context() override { return none(); }
  Result<std::uint64_t> allocate(std::uint64_t) override { return none(); }
  Result<void> release(std::uint64_t) override { return none(); }
  std::optional<std::uint64_t> vmm_granularity() override { return std::nullopt; }

 private:
  static Error none() { return Error::io_error("no device"); }
};

TEST(ProbeCommand, JsonSaysAFailedMeasurementAsAnErrorWithExitCodeOne) {
  NoDevice backend;
  std::ostringstream out;
  std::ostringstream err;
  ProbeCommandOptions options;
  options.json = true;
  EXPECT_EQ(code(run_probe(backend, options, out, err)), exit_failure);
  const Json expected = {{"error", "no CUDA device: the driver reports 0 devices"},
                         {"exit_code", 1}};
  EXPECT_EQ(Json::parse(out.str()), expected) << out.str();
  EXPECT_EQ(err.str(), "");

  options.json = false;
  std::ostringstream text;
  EXPECT_EQ(code(run_probe(backend, options, text, err)), exit_failure);
  EXPECT_EQ(err.str(), "memtrack probe: no CUDA device: the driver reports 0 devices\n");
}

TEST(ProbeCommand, HelpSaysWhatJsonPrints) {
  const auto help = memtrack({"probe", "--help"});
  EXPECT_NE(help.out.find("free_at_start_bytes"), std::string::npos) << help.out;
  const auto record = memtrack({"record", "--help"});
  EXPECT_NE(record.out.find("command_exit_code"), std::string::npos) << record.out;
}

}  // namespace
}  // namespace memtrack::cli
