// --json on every command that prints a result, and bad input answered as JSON on standard
// output under --json (issue 18 item 4). Expected figures are the profiles' own files and
// numbers worked out by hand.
#include "cli_test_support.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <vector>

namespace memtrack::cli {
namespace {

namespace fs = std::filesystem;

const fs::path source_dir = MEMTRACK_SOURCE_DIR;

TEST(Json, BadInputIsAJsonErrorOnStandardOutputUnderJson) {
  const std::string missing = "/nonexistent/memtrack-json-test.trace";
  const std::vector<std::vector<std::string>> runs{
      {"fit", missing, "--profile", "rtx5090", "--json"},
      {"replay", missing, "--json"},
      {"compare", missing, missing, "--json"},
      {"import", missing, "-o", "/nonexistent/out.trace", "--json"},
      {"budget", "--gpu", "0:lots", "--json"},
      {"profiles", "show", "no-such-gpu", "--json"},
      {"sim", "--profile", "no-such-gpu", "--json"},
      {"fit", missing, "--profile", "rtx5090", "--no-such-flag", "--json"},
  };
  for (const auto& args : runs) {
    const CliRun run = memtrack(args);
    const std::string line = args.front() + " " + args[1];
    EXPECT_EQ(run.code, exit_bad_input) << line;
    ASSERT_TRUE(nlohmann::json::accept(run.out)) << line << ": " << run.out;
    const auto json = nlohmann::json::parse(run.out);
    ASSERT_TRUE(json.contains("error")) << line << ": " << run.out;
    EXPECT_EQ(json["exit_code"], 2) << line;
    // The JSON says what stderr says, on one line.
    const std::string error = json["error"];
    EXPECT_EQ(error.find('\n'), std::string::npos) << error;
    EXPECT_FALSE(error.empty()) << line;
    EXPECT_NE(run.err.find(error.substr(0, error.find(' ', 20))), std::string::npos)
        << line << ": " << error << " | " << run.err;
  }
  // The message names what was wrong.
  const CliRun fit = memtrack({"fit", missing, "--profile", "rtx5090", "--json"});
  EXPECT_NE(nlohmann::json::parse(fit.out)["error"].get<std::string>().find(missing),
            std::string::npos);
  // Without --json, standard output stays empty.
  EXPECT_EQ(memtrack({"fit", missing, "--profile", "rtx5090"}).out, "");
}

TEST(Json, ProfilesListsEveryProfileFileWithItsBudget) {
  const CliRun run = memtrack({"profiles", "--json"});
  ASSERT_EQ(run.code, 0) << run.err;
  const auto json = nlohmann::json::parse(run.out);
  std::size_t files = 0;
  for (const auto& entry : fs::directory_iterator(source_dir / "sim/profiles")) {
    if (entry.path().extension() == ".profile") ++files;
  }
  ASSERT_EQ(json["profiles"].size(), files);
  bool seen_rtx5090 = false;
  bool seen_cpu = false;
  for (const auto& profile : json["profiles"]) {
    if (profile["name"] == "rtx5090") {
      seen_rtx5090 = true;
      EXPECT_EQ(profile["budget_bytes"].get<std::uint64_t>(), 24ULL << 30U);  // the usable cap
      EXPECT_EQ(profile["cuda_total_bytes"].get<std::uint64_t>(), 33680457728ULL);
      EXPECT_EQ(profile["cpu"], false);
    }
    if (profile["name"] == "cpu") {
      seen_cpu = true;
      EXPECT_EQ(profile["budget_bytes"].get<std::uint64_t>(), 16ULL << 30U);
      EXPECT_FALSE(profile.contains("cuda_total_bytes"));
    }
  }
  EXPECT_TRUE(seen_rtx5090 && seen_cpu) << run.out;
}

TEST(Json, ProfilesShowGivesEveryFieldWithItsProvenanceAndSource) {
  const CliRun run = memtrack({"profiles", "show", "h100-sxm", "--json"});
  ASSERT_EQ(run.code, 0) << run.err;
  const auto json = nlohmann::json::parse(run.out);
  EXPECT_EQ(json["name"], "h100-sxm");
  // floor(85045477376 x 9/10) = 76540929638.4 -> 76540929638, no usable cap.
  EXPECT_EQ(json["budget_bytes"].get<std::uint64_t>(), 76540929638ULL);
  const auto& fields = json["fields"];
  ASSERT_TRUE(fields.contains("cuda_total_bytes")) << run.out;
  EXPECT_EQ(fields["cuda_total_bytes"]["value"].get<std::uint64_t>(), 85045477376ULL);
  for (const auto& [key, field] : fields.items()) {
    EXPECT_TRUE(field.contains("provenance") && field.contains("source")) << key;
    EXPECT_FALSE(field["source"].get<std::string>().empty()) << key;
  }
}

TEST(Json, ImportSummarisesWhatItWrote) {
  const fs::path out = fs::temp_directory_path() / "memtrack-json-import-test.trace";
  const CliRun run =
      memtrack({"import", (source_dir / "traces/fuzz/corpus/rmm/rmm_log.dev0.csv").string(), "-o",
                out.string(), "--json"});
  ASSERT_EQ(run.code, 0) << run.err;
  const auto json = nlohmann::json::parse(run.out);
  fs::remove(out);
  // The CSV has three rows: an allocate, an allocate failure (kept, refused) and a free.
  EXPECT_EQ(json["events"].get<std::uint64_t>(), 3U);
  EXPECT_EQ(json["skipped"].get<std::uint64_t>(), 0U);
  EXPECT_EQ(json["output"], out.string());
  ASSERT_EQ(json["notes"].size(), 1U);
  EXPECT_NE(json["notes"][0].get<std::string>().find("allocate failure"), std::string::npos);
}

TEST(Json, VersionAndHelpAreNotErrors) {
  EXPECT_EQ(memtrack({"fit", "--help", "--json"}).code, 0);
  EXPECT_FALSE(nlohmann::json::accept(memtrack({"fit", "--help", "--json"}).out));
}

}  // namespace
}  // namespace memtrack::cli
