// memtrack compare: figures and size differences computed by hand from traces written here.
#include "cli_test_support.hpp"

#include <memtrack/traces/io.hpp>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <unistd.h>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>

namespace memtrack::cli {
namespace {

namespace fs = std::filesystem;

class Compare : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("memtrack-compare-" + std::to_string(::getpid()) + "-" +
                                        std::to_string(std::random_device()()));
    fs::create_directories(dir_);
    // A: gpu:0 holds 100 + 100 + 300 = 500 at its peak, frees one 100 (400 at the end); the
    // CPU one allocation of 10, freed.
    a_ = write("a.trace",
               "memtrack-trace 1\nsource test-a\nmemory_fraction 1\ncpu_memory_limit 1000\n"
               "gpu 0 total=10000\nevents\n"
               "alloc gpu:0 100 addr=0x1\n"
               "alloc gpu:0 100 addr=0x2\n"
               "alloc gpu:0 300 addr=0x3\n"
               "free gpu:0 addr=0x1\n"
               "alloc cpu 10 addr=0x9\n"
               "free cpu addr=0x9\n"
               "end 6\n");
    // B: two GPUs declared, only gpu:1 used: 100 + 300 + 300 + 2000 = 2700 at the peak, the
    // 2000 freed (700 at the end). A refused 5000 (over the 4000 total) is needed, not made.
    b_ = write("b.trace",
               "memtrack-trace 1\nsource test-b\nmemory_fraction 1\ncpu_memory_limit 1000\n"
               "gpu 0 total=4000\ngpu 1 total=4000\nevents\n"
               "alloc gpu:1 100 addr=0x1\n"
               "alloc gpu:1 300 addr=0x2\n"
               "alloc gpu:1 300 addr=0x3\n"
               "alloc gpu:1 2000 addr=0x4\n"
               "alloc gpu:1 5000 addr=0x5 result=OutOfMemory\n"
               "free gpu:1 addr=0x4\n"
               "end 6\n");
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name) << text;
    return (dir_ / name).string();
  }
  fs::path dir_;
  std::string a_;
  std::string b_;
};

TEST_F(Compare, JsonHasEachDevicesFiguresAndTheSizesThatDiffer) {
  const CliRun r = memtrack({"compare", a_, b_, "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto json = nlohmann::json::parse(r.out);
  EXPECT_EQ(json["a"]["file"], a_);
  EXPECT_EQ(json["b"]["events"].get<std::uint64_t>(), 6U);
  EXPECT_EQ(json["gpu_pairs_renamed"], nlohmann::json::array({"A gpu:0 with B gpu:1"}));
  ASSERT_EQ(json["devices"].size(), 2U);  // the GPU pair, then the CPU
  const auto& gpu = json["devices"][0];
  EXPECT_EQ(gpu["device"], "gpu:0/gpu:1");
  EXPECT_EQ(gpu["a"]["needed_bytes"].get<std::uint64_t>(), 500U);
  EXPECT_EQ(gpu["a"]["peak_bytes"].get<std::uint64_t>(), 500U);
  EXPECT_EQ(gpu["a"]["final_bytes"].get<std::uint64_t>(), 400U);
  EXPECT_EQ(gpu["a"]["allocations"].get<std::uint64_t>(), 3U);
  // 2700 held, and the refused 5000 on top of it: 7700 needed
  EXPECT_EQ(gpu["b"]["needed_bytes"].get<std::uint64_t>(), 7700U);
  EXPECT_EQ(gpu["b"]["peak_bytes"].get<std::uint64_t>(), 2700U);
  EXPECT_EQ(gpu["b"]["final_bytes"].get<std::uint64_t>(), 700U);
  EXPECT_EQ(gpu["b"]["allocations"].get<std::uint64_t>(), 4U);
  // sizes: 2000 (0 -> 1: +2000), 300 (1 -> 2: +300), 100 (2 -> 1: -100); 5000 was never made
  EXPECT_EQ(gpu["sizes_differing"].get<std::uint64_t>(), 3U);
  ASSERT_EQ(gpu["sizes"].size(), 3U);
  const std::uint64_t expected[3][4] = {{2000, 0, 1, 2000}, {300, 1, 2, 300}, {100, 2, 1, 100}};
  for (std::size_t i = 0; i < 3; ++i) {
    const auto& size = gpu["sizes"][i];
    EXPECT_EQ(size["bytes"].get<std::uint64_t>(), expected[i][0]) << i;
    EXPECT_EQ(size["count_a"].get<std::uint64_t>(), expected[i][1]) << i;
    EXPECT_EQ(size["count_b"].get<std::uint64_t>(), expected[i][2]) << i;
    EXPECT_EQ(size["difference_bytes"].get<std::uint64_t>(), expected[i][3]) << i;
    EXPECT_EQ(size["grew"].get<bool>(), i < 2) << i;
    EXPECT_TRUE(size["frame"].is_null());  // these traces have no frames
  }
  EXPECT_EQ(gpu["sizes_left_off"].get<std::uint64_t>(), 0U);
  const auto& cpu = json["devices"][1];
  EXPECT_EQ(cpu["device"], "cpu");
  EXPECT_EQ(cpu["a"]["needed_bytes"].get<std::uint64_t>(), 10U);
  EXPECT_EQ(cpu["a"]["final_bytes"].get<std::uint64_t>(), 0U);
  EXPECT_EQ(cpu["b"]["needed_bytes"].get<std::uint64_t>(), 0U);
  ASSERT_EQ(cpu["sizes"].size(), 1U);
  EXPECT_EQ(cpu["sizes"][0]["bytes"].get<std::uint64_t>(), 10U);
  EXPECT_FALSE(cpu["sizes"][0]["grew"].get<bool>());
}

TEST_F(Compare, TextIsAnAlignedTableAndTheListIsCapped) {
  const CliRun r = memtrack({"compare", a_, b_, "--sizes", "1"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("A gpu:0 with B gpu:1"), std::string::npos) << r.out;
  // the GPU row: needed 500 and 7700 (+7200), peaks 500 and 2700, finals 400 and 700
  std::istringstream lines(r.out);
  std::string line;
  std::string header;
  std::string gpu_row;
  while (std::getline(lines, line)) {
    if (line.starts_with("device")) header = line;
    if (line.starts_with("gpu:0/gpu:1 ")) gpu_row = line;
  }
  std::istringstream cells(gpu_row);
  std::vector<std::string> words;
  for (std::string word; cells >> word;)
    words.push_back(word);
  EXPECT_EQ(words, (std::vector<std::string>{"gpu:0/gpu:1", "500", "7700", "+7200", "0.00", "500",
                                             "2700", "400", "700"}))
      << r.out;
  // right-aligned: each figure ends where its header ends
  ASSERT_FALSE(header.empty());
  EXPECT_EQ(gpu_row.find("7700") + 4, header.find("needed B") + 8) << r.out;
  EXPECT_NE(r.out.find("gpu:0/gpu:1: 3 allocation sizes made a different number of times"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("2000        0        1      +2000\nand 2 more\n"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("cpu: 1 allocation size made"), std::string::npos) << r.out;
}

TEST_F(Compare, TheSameRecordingDiffersInNothing) {
  const CliRun r = memtrack({"compare", a_, a_, "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto json = nlohmann::json::parse(r.out);
  EXPECT_TRUE(json["gpu_pairs_renamed"].empty());
  for (const auto& device : json["devices"]) {
    EXPECT_EQ(device["sizes_differing"].get<std::uint64_t>(), 0U);
    EXPECT_EQ(device["a"], device["b"]);
  }
}

TEST_F(Compare, EachDifferingSizeIsNamedByItsFirstAllocationsInnermostFrame) {
  // the frame table: 4096 is first made in forward (model.py:12, called from train.py:40, under
  // a C++ frame that is not the user's code), then again from elsewhere; 512 only in B, in embed
  const std::string framed =
      write("framed.trace",
            "memtrack-trace 1\nsource framed\nmemory_fraction 1\ncpu_memory_limit 1000\n"
            "gpu 0 total=100000\nevents\n"
            "frame 0 line=12 name=forward file=model.py\n"
            "frame 1 line=40 name=main file=train.py\n"
            "frame 2 line=7 name=embed file=layers.py\n"
            "frame 3 line=0 name=torch::unwind::unwind() file=??\n"
            "stack 0 frames=3,0,1\nstack 1 frames=2,1\n"
            "alloc gpu:0 4096 addr=0x1 stack=0\n"
            "alloc gpu:0 4096 addr=0x2 stack=1\n"
            "alloc gpu:0 512 addr=0x3 stack=1\n"
            "end 9\n");
  const std::string plain =
      write("plain.trace",
            "memtrack-trace 1\nsource plain\nmemory_fraction 1\ncpu_memory_limit 1000\n"
            "gpu 0 total=100000\nevents\n"
            "alloc gpu:0 4096 addr=0x1\nend 1\n");
  const CliRun r = memtrack({"compare", plain, framed, "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto sizes = nlohmann::json::parse(r.out)["devices"][0]["sizes"];
  ASSERT_EQ(sizes.size(), 2U);
  EXPECT_EQ(sizes[0]["bytes"].get<std::uint64_t>(), 4096U);  // 1 -> 2: +4096 before +512
  EXPECT_EQ(sizes[0]["frame"],
            nlohmann::json({{"file", "model.py"}, {"line", 12}, {"name", "forward"}}));
  EXPECT_EQ(sizes[1]["frame"]["name"], "embed");
  const CliRun text = memtrack({"compare", plain, framed});
  EXPECT_NE(text.out.find("      4096        1        2      +4096  model.py:12 in forward\n"),
            std::string::npos)
      << text.out;
  // the other way round, the sizes shrank: still named in the recording that has more of them
  const CliRun back = memtrack({"compare", framed, plain, "--json"});
  EXPECT_EQ(nlohmann::json::parse(back.out)["devices"][0]["sizes"][0]["frame"]["file"], "model.py");
}

TEST_F(Compare, AGpuOnlyOneRecordingUsesIsComparedWithNothing) {
  const std::string two =
      write("two.trace",
            "memtrack-trace 1\nsource two\nmemory_fraction 1\ncpu_memory_limit 1000\n"
            "gpu 0 total=1000\ngpu 3 total=1000\nevents\n"
            "alloc gpu:0 64 addr=0x1\nalloc gpu:3 32 addr=0x2\nend 2\n");
  const CliRun r = memtrack({"compare", two, a_, "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto json = nlohmann::json::parse(r.out);
  ASSERT_EQ(json["devices"].size(), 3U);
  EXPECT_EQ(json["devices"][0]["device"], "gpu:0");
  EXPECT_EQ(json["devices"][1]["device"], "gpu:3/-");
  EXPECT_TRUE(json["devices"][1]["b"].is_null());
  EXPECT_EQ(json["devices"][1]["a"]["needed_bytes"].get<std::uint64_t>(), 32U);
  EXPECT_EQ(json["devices"][1]["sizes"][0]["bytes"].get<std::uint64_t>(), 32U);
}

TEST_F(Compare, BytesStayExactAt2To64) {
  // two allocations of 2^63 on a GPU of 2^64 - 2 bytes: the difference (2 x 2^63) saturates
  const std::string big =
      write("big.trace",
            "memtrack-trace 1\nsource big\nmemory_fraction 1\ncpu_memory_limit 1\n"
            "gpu 0 total=18446744073709551614\nevents\n"
            "alloc gpu:0 9223372036854775808 addr=0x1\nfree gpu:0 addr=0x1\n"
            "alloc gpu:0 9223372036854775808 addr=0x1\nend 3\n");
  const CliRun r = memtrack({"compare", a_, big, "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto json = nlohmann::json::parse(r.out);
  const auto& gpu = json["devices"][0];
  EXPECT_EQ(gpu["b"]["needed_bytes"].get<std::uint64_t>(), 9223372036854775808ULL);
  EXPECT_EQ(gpu["sizes"][0]["bytes"].get<std::uint64_t>(), 9223372036854775808ULL);
  EXPECT_EQ(gpu["sizes"][0]["difference_bytes"].get<std::uint64_t>(), UINT64_MAX);
  const CliRun text = memtrack({"compare", a_, big});
  EXPECT_NE(text.out.find("+9223372036854775308"), std::string::npos) << text.out;  // 2^63 - 500
}

TEST_F(Compare, BadInputExitsTwoNamingTheFile) {
  const std::string missing = (dir_ / "missing.trace").string();
  CliRun r = memtrack({"compare", a_, missing});
  EXPECT_EQ(r.code, exit_bad_input);
  EXPECT_NE(r.err.find("missing.trace"), std::string::npos) << r.err;
  const std::string bad = write("bad.trace", "memtrack-trace 1\nevents\nalloc gpu:0 x\nend 1\n");
  r = memtrack({"compare", bad, a_});
  EXPECT_EQ(r.code, exit_bad_input);
  EXPECT_NE(r.err.find("bad.trace:3:"), std::string::npos) << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(memtrack({"compare", a_}).code, exit_bad_input);
  EXPECT_EQ(memtrack({"compare", a_, b_, "--sizes", "-1"}).code, exit_bad_input);
}

}  // namespace
}  // namespace memtrack::cli
