// Every seed input and every crash the fuzzers ever found, through the fuzzing entry points in
// a normal build (and under the sanitizer presets): each must return without crashing.
#include <fuzz_entries.hpp>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace memtrack::traces {
namespace {

TEST(FuzzCorpus, SeedsAndSavedCrashesRunCleanly) {
  const std::filesystem::path root = MEMTRACK_FUZZ_DIR;
  std::size_t inputs = 0;
  for (const char* target : {"canonical", "pytorch", "kineto", "rmm", "nsight"}) {
    const fuzz::Entry entry = fuzz::entry(target);
    ASSERT_NE(entry, nullptr) << target;
    std::size_t seeds = 0;
    for (const char* kind : {"corpus", "regressions"}) {
      const auto dir = root / kind / target;
      if (!std::filesystem::exists(dir)) continue;
      for (const auto& file : std::filesystem::directory_iterator(dir)) {
        if (!file.is_regular_file() || file.path().filename() == ".gitkeep") continue;
        std::string bytes(static_cast<std::size_t>(std::filesystem::file_size(file.path())), '\0');
        std::ifstream(file.path(), std::ios::binary)
            .read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
        SCOPED_TRACE(file.path().string());
        entry(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
        ++inputs;
        if (std::string(kind) == "corpus") ++seeds;
      }
    }
    EXPECT_GT(seeds, 0U) << "no seed corpus for " << target;
  }
  EXPECT_GE(inputs, 5U);
}

}  // namespace
}  // namespace memtrack::traces
