// libmemtrack_inject.so loaded for real: what it exports, how it fails where it cannot record,
// and, on a machine with a GPU, a recording of the native workload checked against what the
// workload itself asked for.
#include <memtrack/recorder/recording.hpp>
#include <memtrack/traces/reader.hpp>
#include <memtrack/traces/replay.hpp>

#include <dlfcn.h>
#include <gtest/gtest.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace memtrack::recorder {
namespace {

namespace fs = std::filesystem;

class ScratchDir {
 public:
  ScratchDir()
      : path_(fs::temp_directory_path() / ("memtrack-inject-" + std::to_string(::getpid()) + "-" +
                                           std::to_string(counter_++))) {
    fs::create_directories(path_);
  }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  [[nodiscard]] const fs::path& path() const { return path_; }

 private:
  static inline int counter_ = 0;
  fs::path path_;
};

std::string slurp(const fs::path& path) {
  std::ifstream file(path);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

using Initialize = int (*)();

TEST(InjectLibrary, LoadsWithoutADriverAndExportsOnlyItsEntryPoint) {
  void* library = dlopen(MEMTRACK_INJECT_PATH, RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(library, nullptr) << dlerror();
  EXPECT_NE(dlsym(library, "InitializeInjection"), nullptr);
  // memtrack's own code stays inside: a program's libraries of the same names never meet it
  EXPECT_EQ(dlsym(library, "_ZN8memtrack6traces12format_eventERKNS0_10TraceEventE"), nullptr);
  EXPECT_EQ(dlsym(library, "_ZN8memtrack8recorder13format_statusB5cxx11ERKNS0_15RecordingStatusE"),
            nullptr);
  dlclose(library);
}

class InjectInitialize : public ::testing::Test {
 protected:
  void SetUp() override {
    library_ = dlopen(MEMTRACK_INJECT_PATH, RTLD_NOW | RTLD_LOCAL);
    ASSERT_NE(library_, nullptr) << dlerror();
    initialize_ = reinterpret_cast<Initialize>(dlsym(library_, "InitializeInjection"));
    ASSERT_NE(initialize_, nullptr);
    if (dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD) != nullptr) {
      GTEST_SKIP() << "libcuda.so.1 is loaded in this test process; the no-driver path cannot be "
                      "checked here";
    }
  }
  void TearDown() override {
    ::unsetenv(output_env);
    ::unsetenv(status_env);
    if (library_ != nullptr) dlclose(library_);
  }
  void* library_{nullptr};
  Initialize initialize_{nullptr};
};

TEST_F(InjectInitialize, WithoutTheDriverLoadedItSaysSoAndRecordsNothing) {
  ScratchDir dir;
  const fs::path trace = dir.path() / "out.trace";
  const fs::path status = dir.path() / "status";
  ::setenv(output_env, trace.c_str(), 1);
  ::setenv(status_env, status.c_str(), 1);
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(initialize_(), 0);
  const std::string said = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(said.find("memtrack: not recording: the CUDA driver (libcuda.so.1) is not loaded"),
            std::string::npos)
      << said;
  EXPECT_EQ(std::count(said.begin(), said.end(), '\n'), 1) << said;  // one line
  auto parsed = parse_status(slurp(status));
  ASSERT_TRUE(parsed) << slurp(status);
  EXPECT_FALSE(parsed->ok);
  EXPECT_NE(parsed->message.find("CUDA_INJECTION64_PATH"), std::string::npos);
  EXPECT_FALSE(fs::exists(trace));
}

TEST_F(InjectInitialize, WithoutAnOutputItNamesTheWayToRecord) {
  ScratchDir dir;
  const fs::path status = dir.path() / "status";
  ::unsetenv(output_env);
  ::setenv(status_env, status.c_str(), 1);
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(initialize_(), 0);
  const std::string said = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(said.find("memtrack record -o FILE"), std::string::npos) << said;
  EXPECT_FALSE(parse_status(slurp(status))->ok);
}

/// @return why there is no GPU to record on, or nothing when there is one
std::optional<std::string> no_gpu() {
  void* driver = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (driver == nullptr) return std::string("no CUDA driver (libcuda.so.1) on this machine");
  dlclose(driver);
  if (!fs::exists("/dev/nvidia0") && !fs::exists("/dev/nvidiactl")) {
    return std::string("no /dev/nvidia* device");
  }
  return std::nullopt;
}

TEST(InjectOnAGpu, RecordsTheNativeWorkloadByteForByte) {
  if (auto why = no_gpu()) GTEST_SKIP() << "needs an NVIDIA GPU: " << *why;
  ScratchDir dir;
  const fs::path trace = dir.path() / "cuda.trace";
  const fs::path status = dir.path() / "status";
  const fs::path report = dir.path() / "workload.json";
  const std::string command = std::string(injection_env) + "='" + MEMTRACK_INJECT_PATH + "' " +
                              output_env + "='" + trace.string() + "' " + status_env + "='" +
                              status.string() + "' '" + MEMTRACK_CUDA_WORKLOAD + "' '" +
                              report.string() + "'";
  ASSERT_EQ(std::system(command.c_str()), 0) << command;
  auto recorded = parse_status(slurp(status));
  ASSERT_TRUE(recorded && recorded->ok) << slurp(status);

  const auto truth = nlohmann::json::parse(slurp(report));
  auto reader = traces::TraceReader::open(trace);
  ASSERT_TRUE(reader) << reader.error().to_string();
  ASSERT_FALSE(reader->header().devices.empty());
  auto replayer = traces::Replayer::create(*reader->header().config, traces::ReplayOptions{});
  ASSERT_TRUE(replayer);
  std::uint64_t baseline = 0;
  std::uint64_t reserve = 0;  // what the cudaMallocAsync pool holds beyond the requests
  std::uint64_t peak_above_baseline = 0;
  auto replayed = replayer->replay(*reader, {}, [&](const traces::ReplayStep& step) {
    const traces::TraceEvent& event = *step.trace_event;
    if (event.kind == traces::TraceEvent::Kind::Baseline &&
        step.operation.device == DevicePlacement(Gpu{0})) {
      baseline += *event.bytes;
    }
    if (event.tag == "pool-reserve" && event.bytes) {
      reserve = event.kind == traces::TraceEvent::Kind::Free ? reserve - *event.bytes
                                                             : reserve + *event.bytes;
    }
    const std::uint64_t now = step.after->allocated(Gpu{0});
    if (now >= baseline + reserve) {
      peak_above_baseline = std::max(peak_above_baseline, now - baseline - reserve);
    }
  });
  ASSERT_TRUE(replayed) << replayed.error().to_string();
  EXPECT_FALSE(replayer->summary().failure.has_value());
  // what the program asked for, at its peak, is what the trace holds at its peak; all freed at the
  // end
  EXPECT_EQ(peak_above_baseline, truth["peak_held_bytes"].get<std::uint64_t>());
  EXPECT_EQ(replayer->tracker().allocated(Gpu{0}), baseline + reserve);
  EXPECT_EQ(replayer->tracker().allocated(Cpu{}), 0U);
}

}  // namespace
}  // namespace memtrack::recorder
