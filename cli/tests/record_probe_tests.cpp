// memtrack record and memtrack probe, without a GPU: the environment record sets up, its exit
// codes and messages; probe's output on a simulated device, and what it says without CUDA.
#include "cli_test_support.hpp"
#include "commands.hpp"
#include "simulated_device.hpp"

#include <memtrack/sim/profile.hpp>

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace memtrack::cli {
namespace {

namespace fs = std::filesystem;

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
  ASSERT_EQ(run_probe(device, options, out, err), exit_ok) << err.str();
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
  ASSERT_EQ(run_probe(device, options, out, err), exit_ok) << err.str();
  for (const char* file : {"lab-gpu0.profile", "lab-gpu1.profile"}) {
    auto profile = sim::load_profile(dir / file);
    ASSERT_TRUE(profile) << file << ": " << profile.error().to_string();
    EXPECT_EQ(profile->cuda_total_bytes->provenance, sim::Provenance::Measured);
  }
  // several devices and a file name: refused before measuring anything
  options.output = (dir / "one.profile").string();
  EXPECT_EQ(run_probe(device, options, out, err), exit_bad_input);
  options.devices = {5};
  options.output.clear();
  EXPECT_EQ(run_probe(device, options, out, err), exit_bad_input);
  fs::remove_all(dir);
}

TEST(ProbeCommand, CheckReportsDifferencesAndFailsOnThem) {
  recorder::testing::SimulatedDevice device;
  std::ostringstream out;
  std::ostringstream err;
  ProbeCommandOptions options;
  options.devices = {0};
  options.check = "h100-sxm";
  EXPECT_EQ(run_probe(device, options, out, err), exit_failure) << err.str();
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
    ASSERT_EQ(run_probe(same, write, text, err), exit_ok);
    std::ofstream(file) << text.str();
  }
  recorder::testing::SimulatedDevice again;
  std::ostringstream agreed;
  options.check = file.string();
  EXPECT_EQ(run_probe(again, options, agreed, err), exit_ok) << agreed.str();
  EXPECT_EQ(agreed.str().find("DIFFERS"), std::string::npos) << agreed.str();
  fs::remove(file);

  options.check = "no-such-profile";
  EXPECT_EQ(run_probe(again, options, agreed, err), exit_bad_input);
}

}  // namespace
}  // namespace memtrack::cli
