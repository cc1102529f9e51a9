// memtrack profiles [show NAME], and what memtrack fit says about the CUDA total's driver variance.
#include "cli_test_support.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

namespace memtrack::cli {
namespace {

class ProfileFigures : public ::testing::Test {
 protected:
  void SetUp() override {
    std::random_device random;
    dir_ = std::filesystem::temp_directory_path() /
           ("memtrack-profiles-" + std::to_string(random()) + std::to_string(random()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& text) {
    const auto path = dir_ / name;
    std::ofstream(path, std::ios::binary) << text;
    return path.string();
  }

  /// A trace that allocates `bytes` on gpu:0 and nothing else.
  std::string one_allocation(const std::string& bytes) {
    return write("one.trace",
                 "memtrack-trace 1\nsource unit test\ngpu 0 total=1000\nevents\n"
                 "alloc gpu:0 " +
                     bytes + "\nend 1\n");
  }

  std::filesystem::path dir_;
};

/// @return whether some line of `out` starts with `first` and a blank
bool has_row(const std::string& out, const std::string& first) {
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(first + " ", 0) == 0) return true;
  }
  return false;
}

TEST_F(ProfileFigures, ListsEveryProfileIncludingTheCardsDeployedNow) {
  const CliRun r = memtrack({"profiles"});
  ASSERT_EQ(r.code, 0) << r.err;
  std::size_t rows = 0;
  for (const char* name : {"rtx5090", "rtx4090", "rtx3090", "rtx6000-ada", "rtx-pro-6000-blackwell",
                           "l4", "l40s", "a100-40gb", "a100-80gb", "a100-80gb-pcie", "h100-sxm",
                           "h100-pcie", "h100-nvl", "h20", "h200", "b200", "gb200", "cpu"}) {
    EXPECT_TRUE(has_row(r.out, name)) << name << "\n" << r.out;
    rows += has_row(r.out, name) ? 1U : 0U;
  }
  EXPECT_GE(rows, 17U);
  // How well each total is known: to the byte with 3 other figures, or only to the MiB.
  EXPECT_NE(r.out.find("25386352640"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("1 B, 3 other"), std::string::npos) << r.out;       // rtx4090
  EXPECT_NE(r.out.find("  1 MiB, 1 other "), std::string::npos) << r.out;  // b200
  EXPECT_NE(r.out.find("  6 MiB "), std::string::npos) << r.out;           // gb200
  EXPECT_EQ(r.out.find("estimated"), std::string::npos) << r.out;
}

TEST_F(ProfileFigures, ShowPrintsEachFigureWithItsDriverSourceAndVariants) {
  const CliRun r = memtrack({"profiles", "show", "rtx4090"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("cuda_total_bytes              25386352640 (23.64 GiB)  [published] "
                       "deviceQuery"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("github.com/thamada/nvidia-smi gls/RTX4090_deviceQuery.py"),
            std::string::npos);
  EXPECT_NE(r.out.find("seen under driver 550.127.05\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("cuda_total_variants           3 other figures  [published] "),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("25756696576 (23.99 GiB) under CUDA 12.1 driver\n"), std::string::npos);
  EXPECT_NE(r.out.find("25250627584 (23.52 GiB) under driver 580.126.20, CUDA 13.0\n"),
            std::string::npos);
  EXPECT_NE(r.out.find("24146083840 (22.49 GiB) under Windows driver\n"), std::string::npos);
  // The budget across the figures, by hand: 24146083840 x 0.9 = 21731475456 exactly,
  // floor(25756696576 x 0.9) = 23181026918; 23181026918 - 21731475456 = 1449551462.
  EXPECT_NE(r.out.find("lowest   24146083840 bytes, Windows driver (24,146,083,840 B): limit "
                       "21731475456 bytes (20.24 GiB)"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("highest  25756696576 bytes, CUDA 12.1 driver (25,756,696,576 B): limit "
                       "23181026918 bytes (21.59 GiB)"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("the limit varies by 1449551462 bytes: a recording that needs between "
                       "21731475457 and 23181026918 bytes fits under one driver and not another"),
            std::string::npos)
      << r.out;
}

TEST_F(ProfileFigures, ShowSaysWhenTheCapMakesTheDriverIrrelevant) {
  const CliRun r = memtrack({"profiles", "show", "rtx5090"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("floor(33680457728 x 0.9) = 30312411955 bytes (28.23 GiB)"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("the limit is 25769803776 bytes at every known total"), std::string::npos)
      << r.out;
}

TEST_F(ProfileFigures, ShowMarksAFigureKnownOnlyToTheMiB) {
  const CliRun r = memtrack({"profiles", "show", "b200"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("seen under an unrecorded driver\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("cuda_total_precision_bytes    1048576 (known only to ± 1 MiB)"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("191514017792 (178.36 GiB, ± 1 MiB) under an unrecorded driver"),
            std::string::npos)
      << r.out;
  // 182631 MiB - 1 MiB = 191501434880; 182642 MiB + 1 MiB = 191515066368.
  EXPECT_NE(r.out.find("lowest   191501434880 bytes, an unrecorded driver (191,502,483,456 B ± 1 "
                       "MiB) less its precision"),
            std::string::npos)
      << r.out;
}

TEST_F(ProfileFigures, ShowAnOldProfileFileWithoutTheNewFields) {
  const std::string old = write("old.profile",
                                "name = old\ncuda_total_bytes = 1000 | measured | "
                                "my lab\n");
  const CliRun r = memtrack({"profiles", "show", old});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("seen under an unrecorded driver"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("One CUDA total is known, to the byte"), std::string::npos) << r.out;
  const std::string twice = write("twice.profile",
                                  "name = t\ncuda_total_bytes = 1000 | measured "
                                  "| a\ncuda_total_bytes = 900 | measured | b\n");
  const CliRun bad = memtrack({"profiles", "show", twice});
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.err.find(twice + ":3: 'cuda_total_bytes' given twice (first on line 2)"),
            std::string::npos)
      << bad.err;
}

TEST_F(ProfileFigures, FitSaysWhenTheVerdictDependsOnTheDriver) {
  // rtx4090: the limit is 21731475456 at the Windows figure, 22847717376 at driver 550's and
  // 23181026918 at CUDA 12.1's. 22000000000 bytes fit under the last two, not the first.
  const CliRun r = memtrack({"fit", one_allocation("22000000000"), "--profile", "rtx4090"});
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("verdict: FITS"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("driver variance: the verdict depends on the driver: fits under CUDA 12.1 "
                       "driver (25,756,696,576 B), not under Windows driver (24,146,083,840 B)\n"),
            std::string::npos)
      << r.out;

  // A profile of one's own, as in the issue: 550 fits, the CUDA 13.0 figure does not.
  const std::string own = write("own.profile",
                                "name = own\ncuda_total_bytes = 1000 | measured | lab\n"
                                "cuda_total_driver = driver 550\n"
                                "cuda_total_variants = 900 @ the CUDA 13.0 figure | published | "
                                "lab\nmemory_fraction = 1 | estimated | test\n");
  const CliRun mine = memtrack({"fit", one_allocation("950"), "--profile", own});
  EXPECT_EQ(mine.code, 0) << mine.out << mine.err;
  EXPECT_NE(mine.out.find("driver variance: the verdict depends on the driver: fits under driver "
                          "550 (1,000 B), not under the CUDA 13.0 figure (900 B)\n"),
            std::string::npos)
      << mine.out;
  // 1001 bytes fit under no figure; 850 under every one.
  const CliRun none = memtrack({"fit", one_allocation("1001"), "--profile", own});
  EXPECT_EQ(none.code, 1);
  EXPECT_NE(none.out.find("driver variance: does not fit at every known CUDA total, from the CUDA "
                          "13.0 figure (900 B) to driver 550 (1,000 B)\n"),
            std::string::npos)
      << none.out;
  const CliRun all = memtrack({"fit", one_allocation("850"), "--profile", own});
  EXPECT_EQ(all.code, 0);
  EXPECT_NE(all.out.find("driver variance: fits at every known CUDA total"), std::string::npos)
      << all.out;
}

TEST_F(ProfileFigures, FitIsQuietWhenTheDriverCannotMatterAndMarksMiBFigures) {
  // rtx5090: the 24 GiB cap sets the limit at every known total.
  const CliRun capped = memtrack({"fit", one_allocation("1GiB"), "--profile", "rtx5090"});
  EXPECT_EQ(capped.code, 0) << capped.out << capped.err;
  EXPECT_EQ(capped.out.find("driver variance"), std::string::npos) << capped.out;
  EXPECT_EQ(capped.out.find("known only"), std::string::npos) << capped.out;

  const CliRun b200 = memtrack({"fit", one_allocation("1GiB"), "--profile", "b200"});
  EXPECT_EQ(b200.code, 0) << b200.out << b200.err;
  EXPECT_NE(b200.out.find("CUDA total of b200: an unrecorded driver (191,502,483,456 B ± 1 MiB), "
                          "known only to ± 1 MiB\n"),
            std::string::npos)
      << b200.out;
  EXPECT_NE(b200.out.find("driver variance: fits at every known CUDA total"), std::string::npos)
      << b200.out;
}

}  // namespace
}  // namespace memtrack::cli
