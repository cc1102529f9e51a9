// Golden outputs: what every command prints (text and --json, exit code, stdout and stderr) on
// the shared real recordings and the project's own, compared byte for byte with
// cli/tests/golden/NAME.out. They were recorded before issue 18's refactoring so it cannot change
// an output unnoticed; where a message improves on purpose, regenerate with
// MEMTRACK_UPDATE_GOLDEN=1 and commit the changed files in the same commit, saying why.
#include "cli_test_support.hpp"
#include "golden_support.hpp"

#include <memtrack/traces/io.hpp>

#include <gtest/gtest.h>

#include <unistd.h>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace memtrack::cli {
namespace {

namespace fs = std::filesystem;

const fs::path source_dir = MEMTRACK_SOURCE_DIR;
const fs::path golden_dir = source_dir / "cli/tests/golden";

fs::path shared_traces() {
  if (const char* dir = std::getenv("MEMTRACK_SHARED_TRACES")) return dir;
  return source_dir / "../shared/traces";
}

struct GoldenCase {
  std::string name;
  std::vector<std::string> args;  ///< with $SHARED, $SOURCE and $SCRATCH still in them
  int line = 0;                   ///< in cases.txt
};

void PrintTo(const GoldenCase& c, std::ostream* out) {
  *out << "cases.txt:" << c.line << " " << c.name;
}

std::vector<GoldenCase> load_cases() {
  std::vector<GoldenCase> cases;
  std::ifstream in(golden_dir / "cases.txt");
  int number = 0;
  for (std::string line; std::getline(in, line);) {
    ++number;
    if (line.empty() || line.starts_with("#")) continue;
    GoldenCase c;
    c.line = number;
    std::size_t at = 0;
    while (at < line.size()) {
      const std::size_t start = line.find_first_not_of(' ', at);
      if (start == std::string::npos) break;
      const std::size_t end = std::min(line.find(' ', start), line.size());
      (c.name.empty() ? c.name : c.args.emplace_back()) = line.substr(start, end - start);
      at = end;
    }
    cases.push_back(std::move(c));
  }
  return cases;
}

void replace_all(std::string& text, const std::string& from, const std::string& to) {
  if (from.empty()) return;
  for (std::size_t at = text.find(from); at != std::string::npos;
       at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
}

class Golden : public ::testing::TestWithParam<GoldenCase> {
 protected:
  void SetUp() override {
    scratch_ = fs::temp_directory_path() / ("memtrack-golden-" + std::to_string(::getpid()) + "-" +
                                            std::to_string(std::random_device()()));
    fs::create_directories(scratch_);
  }
  void TearDown() override {
    std::error_code ignored;
    fs::remove_all(scratch_, ignored);
  }

  /// The output with this machine's folders named as the golden files name them, and the one
  /// figure a run cannot repeat (how long it took) masked.
  [[nodiscard]] std::string normalized(std::string text) const {
    replace_all(text, fs::weakly_canonical(shared_traces()).string(), "$SHARED");
    replace_all(text, shared_traces().string(), "$SHARED");
    replace_all(text, scratch_.string(), "$SCRATCH");
    replace_all(text, source_dir.string(), "$SOURCE");
    // A report's size depends on the length of the paths it names.
    text = mask_number(without_timings(std::move(text)), "(html, ", "0123456789,", " bytes)", "N");
    text = mask_number(std::move(text), "(svg, ", "0123456789,", " bytes)", "N");
    return mask_number(std::move(text), "\"output_bytes\": ", "0123456789", "", "N");
  }

  fs::path scratch_;
};

TEST_P(Golden, OutputIsUnchanged) {
  const GoldenCase& c = GetParam();
  bool uses_shared = false;
  std::vector<std::string> args;
  for (std::string arg : c.args) {
    uses_shared = uses_shared || arg.find("$SHARED") != std::string::npos;
    // The same spelling wherever the checkout is (a report embeds the path it was given).
    replace_all(arg, "$SHARED", fs::weakly_canonical(shared_traces()).string());
    replace_all(arg, "$SOURCE", source_dir.string());
    replace_all(arg, "$SCRATCH", scratch_.string());
    args.push_back(arg);
  }
  if (uses_shared && !fs::exists(shared_traces())) {
    GTEST_SKIP() << "the shared real recordings are absent at " << shared_traces().string()
                 << " (set MEMTRACK_SHARED_TRACES to their folder to run this case)";
  }
  const CliRun run = memtrack(args);
  const std::string actual = "exit " + std::to_string(run.code) + "\n--- stdout\n" +
                             normalized(run.out) + "--- stderr\n" + normalized(run.err);
  expect_golden(golden_dir / (c.name + ".out"), actual,
                "cases.txt:" + std::to_string(c.line) + " (" + c.name + ")");
}

INSTANTIATE_TEST_SUITE_P(Commands, Golden, ::testing::ValuesIn(load_cases()),
                         [](const ::testing::TestParamInfo<GoldenCase>& param_info) {
                           std::string name = param_info.param.name;
                           for (char& ch : name) {
                             if (ch == '-') ch = '_';
                           }
                           return name;
                         });

TEST(GoldenCases, EveryCaseHasItsFileAndEveryFileItsCase) {
  const auto cases = load_cases();
  ASSERT_GE(cases.size(), 40U) << "cli/tests/golden/cases.txt lost its cases";
  std::set<std::string> names;
  for (const auto& c : cases)
    EXPECT_TRUE(names.insert(c.name).second) << "twice: " << c.name;
  for (const auto& entry : fs::directory_iterator(golden_dir)) {
    if (entry.path().extension() != ".out") continue;
    EXPECT_TRUE(names.contains(entry.path().stem().string()))
        << entry.path().string() << " has no case in cases.txt";
  }
}

}  // namespace
}  // namespace memtrack::cli
