// What memtrack record and the injection library agree on: status lines, CUPTI versions, where
// the library is found.
#include <memtrack/recorder/recording.hpp>

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

namespace memtrack::recorder {
namespace {

TEST(RecordingStatus, OkAndErrorLinesRoundTrip) {
  const RecordingStatus ok{true, 123456789012ULL, 8, {}};
  EXPECT_EQ(format_status(ok), "ok 123456789012 8\n");
  auto parsed = parse_status(format_status(ok));
  ASSERT_TRUE(parsed) << parsed.error().to_string();
  EXPECT_TRUE(parsed->ok);
  EXPECT_EQ(parsed->events, 123456789012ULL);
  EXPECT_EQ(parsed->devices, 8U);

  const RecordingStatus error{false, 0, 0, "CUPTI is already taken\nby a profiler"};
  EXPECT_EQ(format_status(error), "error CUPTI is already taken by a profiler\n");
  auto back = parse_status(format_status(error));
  ASSERT_TRUE(back);
  EXPECT_FALSE(back->ok);
  EXPECT_EQ(back->message, "CUPTI is already taken by a profiler");
}

TEST(RecordingStatus, AnythingElseIsRefused) {
  for (const char* text : {"", "ok", "ok 1", "ok x 1", "ok 1 2 3", "fine", "ok -1 2"}) {
    EXPECT_FALSE(parse_status(text)) << text;
  }
}

TEST(RecordingPaths, ChildProcessesWriteBesideTheFirst) {
  EXPECT_EQ(per_process_path("out.trace", 42), "out.pid42.trace");
  EXPECT_EQ(per_process_path("/runs/a.b/serve.trace.zst", 7), "/runs/a.b/serve.pid7.trace.zst");
  EXPECT_EQ(per_process_path("/runs/x.trace.d/log", 7), "/runs/x.trace.d/log.pid7");
  EXPECT_EQ(per_process_path("capture", 1), "capture.pid1");
}

TEST(RecordingPaths, UuidsAsNvidiaWritesThem) {
  const char bytes[16] = {'\x5a', '\x1c', 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, '\xff'};
  EXPECT_EQ(gpu_uuid_text(bytes), "GPU-5a1c0001-0203-0405-0607-08090a0b0cff");
}

TEST(CuptiVersion, SameMajorOnly) {
  EXPECT_FALSE(cupti_version_problem(130001, 130001));
  EXPECT_FALSE(cupti_version_problem(130000, 130001));  // 13.0 GA records are 13.0 Update 1's
  EXPECT_FALSE(cupti_version_problem(130100, 130001));
  auto old = cupti_version_problem(28, 130001);  // CUDA 12.9 Update 1
  ASSERT_TRUE(old);
  EXPECT_NE(old->find("CUDA 13"), std::string::npos) << *old;
  EXPECT_TRUE(cupti_version_problem(140000, 130001));
  EXPECT_TRUE(cupti_version_problem(0, 130001));
}

TEST(InjectionLibrary, FoundBesideTheToolInItsLibFolderOrWhereTheEnvironmentSays) {
  const auto root = std::filesystem::temp_directory_path() /
                    ("memtrack-find-inject-" + std::to_string(::getpid()));
  std::filesystem::create_directories(root / "bin");
  std::filesystem::create_directories(root / "lib");
  ::unsetenv("MEMTRACK_INJECT_LIBRARY");
  EXPECT_FALSE(find_injection_library(root / "bin" / "memtrack"));
  std::ofstream(root / "lib" / injection_library) << "x";
  auto found = find_injection_library(root / "bin" / "memtrack");
  ASSERT_TRUE(found);
  EXPECT_EQ(*found, std::filesystem::canonical(root / "lib" / injection_library));
  std::ofstream(root / "bin" / injection_library) << "x";
  EXPECT_EQ(find_injection_library(root / "bin" / "memtrack").value(),
            std::filesystem::canonical(root / "bin" / injection_library));
  ::setenv("MEMTRACK_INJECT_LIBRARY", "/elsewhere/libx.so", 1);
  EXPECT_EQ(find_injection_library(root / "bin" / "memtrack").value(), "/elsewhere/libx.so");
  ::unsetenv("MEMTRACK_INJECT_LIBRARY");
  std::filesystem::remove_all(root);
}

}  // namespace
}  // namespace memtrack::recorder
