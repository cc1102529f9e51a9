// memtrack replay, fit and import on traces: exit codes, what they print, --states, --json.
#include "cli_test_support.hpp"

#include <memtrack/traces/io.hpp>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

namespace memtrack::cli {
namespace {

class TraceCommands : public ::testing::Test {
 protected:
  void SetUp() override {
    std::random_device random;
    dir_ = std::filesystem::temp_directory_path() /
           ("memtrack-cli-" + std::to_string(random()) + std::to_string(random()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& text) {
    const auto path = dir_ / name;
    std::ofstream(path, std::ios::binary) << text;
    return path.string();
  }
  [[nodiscard]] std::string path(const std::string& name) const { return (dir_ / name).string(); }

  std::filesystem::path dir_;
};

/// @return the blank-separated cells of the table row that starts with `first`
std::vector<std::string> row(const std::string& out, const std::string& first) {
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream cells(line);
    std::vector<std::string> row;
    for (std::string cell; cells >> cell;)
      row.push_back(cell);
    if (!row.empty() && row[0] == first) return row;
  }
  return {};
}

// gpu:0 limit 1000, cpu limit 500.
constexpr const char* node =
    "memtrack-trace 1\nsource unit test\nmemory_fraction 1\ncpu_memory_limit 500\n"
    "gpu 0 total=1000\nevents\n";

TEST_F(TraceCommands, ReplayAgreesAndPrintsPeaksAndCounts) {
  const std::string trace = write("a.trace", std::string(node) +
                                                 "baseline gpu:0 100\n"
                                                 "alloc gpu:0 600 addr=0x10\n"
                                                 "check gpu:0 allocated=700\n"
                                                 "free gpu:0 addr=0x10\n"
                                                 "alloc cpu 7\n"
                                                 "end 5\n");
  const CliRun r = memtrack({"replay", trace});
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("4 operations checked in lockstep"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("checkpoints: 1 verified"), std::string::npos);
  EXPECT_NE(r.out.find("1 found by address"), std::string::npos);
  // gpu:0: limit 1000, peak 700, final 100.
  EXPECT_EQ(row(r.out, "gpu:0"), (std::vector<std::string>{"gpu:0", "1000", "700", "0.00", "100"}))
      << r.out;
}

TEST_F(TraceCommands, ReplayNamesTheDevicesARecorderSaw) {
  const std::string trace =
      write("r.trace", std::string(node).replace(std::string(node).find("events\n"), 7,
                                                 "device 0 uuid=GPU-12ab free_at_start=900 "
                                                 "total_at_start=1000 name=NVIDIA Test GPU\n"
                                                 "events\n") +
                           "alloc gpu:0 10\nend 1\n");
  const CliRun r = memtrack({"replay", trace});
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_NE(
      r.out.find("recorded on: gpu:0 NVIDIA Test GPU GPU-12ab, 900 of 1000 bytes free at start"),
      std::string::npos)
      << r.out;
}

TEST_F(TraceCommands, ReplayFailedCheckpointExitsOneWithTheEventAndBothStates) {
  const std::string trace = write("b.trace", std::string(node) +
                                                 "alloc gpu:0 600\n"
                                                 "check gpu:0 allocated=601\n"
                                                 "end 2\n");
  const CliRun r = memtrack({"replay", trace});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("failed checkpoint"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(trace + ":8, event 2: check gpu:0 allocated=601"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("production tracker after it:\ngpu:0: allocated 600"), std::string::npos);
  EXPECT_NE(r.out.find("reference model after it:"), std::string::npos);
}

TEST_F(TraceCommands, ReplayBadInputExitsTwoAndWritesNoStatesFile) {
  const std::string trace =
      write("c.trace", std::string(node) + "alloc gpu:0 600\nalloc gpu:0 x\nend 2\n");
  const CliRun r = memtrack({"replay", trace, "--states", path("states.jsonl")});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find(trace + ":8: expected a byte count"), std::string::npos) << r.err;
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir_),
                          std::filesystem::directory_iterator()),
            1);  // only c.trace: no states file, no temporary
  EXPECT_EQ(memtrack({"replay", path("missing.trace")}).code, 2);
}

TEST_F(TraceCommands, StatesLineIsExactlyTheDocumentedFieldsInOrder) {
  // A refused auto allocation on a one-GPU node (gpu:0 limit 1000, the CPU 500): every field,
  // in the documented order (the GPUs, then the CPU), written compactly, byte for byte.
  const std::string trace = write("r.trace",
                                  "memtrack-trace 1\nmemory_fraction 1\ncpu_memory_limit 500\n"
                                  "gpu 0 total=1000\nevents\nalloc auto 1001 result=OutOfMemory\n"
                                  "end 1\n");
  const CliRun r = memtrack({"replay", trace, "--states", path("r.jsonl")});
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  std::ifstream in(path("r.jsonl"));
  std::string line;
  ASSERT_TRUE(std::getline(in, line));
  EXPECT_EQ(line,
            "{\"seq\":1,\"op\":\"alloc\",\"device\":\"auto\",\"bytes\":1001,\"ok\":false,"
            "\"error\":\"OutOfMemory\",\"resolved\":null,\"devices\":{\"gpu:0\":{\"allocated\":0,"
            "\"available\":1000,\"peak\":0,\"count\":0},\"cpu\":{\"allocated\":0,\"available\":"
            "500,\"peak\":0,\"count\":0}},\"total_peak\":0}");
  EXPECT_FALSE(std::getline(in, line)) << "one operation, one line";
}

TEST_F(TraceCommands, StatesHasOneJsonLinePerOperation) {
  const std::string trace = write("d.trace", std::string(node) +
                                                 "alloc auto 900\n"
                                                 "alloc auto 200\n"  // to the CPU
                                                 "mark not an operation\n"
                                                 "reset_peak\n"
                                                 "free cpu 200\n"
                                                 "end 5\n");
  const CliRun r = memtrack({"replay", trace, "--states", path("s.jsonl")});
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  std::ifstream in(path("s.jsonl"));
  std::vector<nlohmann::json> lines;
  for (std::string line; std::getline(in, line);)
    lines.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(lines.size(), 4U);
  EXPECT_EQ(lines[0]["seq"], 1);
  EXPECT_EQ(lines[0]["op"], "alloc");
  EXPECT_EQ(lines[0]["resolved"], "gpu:0");
  EXPECT_EQ(lines[0]["devices"]["gpu:0"]["allocated"], 900);
  EXPECT_EQ(lines[0]["devices"]["gpu:0"]["available"], 100);
  EXPECT_EQ(lines[1]["resolved"], "cpu");
  EXPECT_EQ(lines[1]["devices"]["cpu"]["count"], 1);
  EXPECT_EQ(lines[1]["total_peak"], 1100);
  EXPECT_EQ(lines[2]["seq"], 4);  // the mark is event 3
  EXPECT_EQ(lines[2]["op"], "reset_peak");
  EXPECT_EQ(lines[2]["device"], "all");
  EXPECT_EQ(lines[3]["op"], "free");
  EXPECT_TRUE(lines[3]["ok"]);
  EXPECT_TRUE(lines[3]["error"].is_null());
  EXPECT_EQ(lines[3]["devices"]["cpu"]["allocated"], 0);
  EXPECT_EQ(lines[3]["devices"]["cpu"]["peak"], 200);  // reset to 200 before the free
  EXPECT_EQ(lines[3]["total_peak"], 1100);
}

// A refusal the recording made differs from the replay's outcome for a reason the summary names:
// with no budget it cannot be reproduced, on budgets given it is another budget's outcome.
TEST_F(TraceCommands, ReplaySaysWhyOutcomesDifferFromTheRecording) {
  const std::string trace = write("refused.trace",
                                  "memtrack-trace 1\nevents\nalloc gpu:0 1GiB\nalloc gpu:0 40GiB "
                                  "result=OutOfMemory\nend 2\n");
  const CliRun without = memtrack({"replay", trace});
  EXPECT_EQ(without.code, 0) << without.out << without.err;
  EXPECT_NE(without.out.find("outcomes unlike the recording's (no budget: the recording's "
                             "refusals are not reproduced): 1\n"),
            std::string::npos)
      << without.out;
  const CliRun budgeted = memtrack({"replay", trace, "--gpu-budget", "0:48GiB"});
  EXPECT_EQ(budgeted.code, 0) << budgeted.out << budgeted.err;
  EXPECT_NE(budgeted.out.find("outcomes unlike the recording's (other budgets): 1\n"),
            std::string::npos)
      << budgeted.out;
}

TEST_F(TraceCommands, ReplayWithoutDevicesMeasuresOrTakesAProfile) {
  const std::string trace = write(
      "e.trace", "memtrack-trace 1\nevents\nalloc gpu:0 1GiB\ncheck gpu:0 allocated=1GiB\nend 2\n");
  const CliRun without = memtrack({"replay", trace});
  EXPECT_EQ(without.code, 0) << without.out << without.err;
  EXPECT_NE(without.out.find("budgets: no budget: measuring only"), std::string::npos)
      << without.out;
  EXPECT_NE(without.out.find("1073741824"), std::string::npos) << without.out;
  const CliRun with = memtrack({"replay", trace, "--profile", "rtx5090"});
  EXPECT_EQ(with.code, 0) << with.out << with.err;
  EXPECT_NE(with.out.find("budgets: profile rtx5090 (1 GPU)"), std::string::npos) << with.out;
}

// Without budgets a device's limit is none (text) and null (JSON), not the large number the
// tracker holds; with a profile it is the profile's budget.
TEST_F(TraceCommands, ReplayWithoutBudgetsSaysNoneAndNull) {
  const std::string trace = write(
      "e.trace", "memtrack-trace 1\nevents\nalloc gpu:0 1GiB\ncheck gpu:0 allocated=1GiB\nend 2\n");
  const CliRun text = memtrack({"replay", trace});
  ASSERT_EQ(text.code, 0) << text.out << text.err;
  EXPECT_EQ(row(text.out, "gpu:0"),
            (std::vector<std::string>{"gpu:0", "none", "1073741824", "1.00", "1073741824"}));
  EXPECT_EQ(row(text.out, "cpu"), (std::vector<std::string>{"cpu", "none", "0", "0.00", "0"}));
  const CliRun json = memtrack({"replay", trace, "--json"});
  ASSERT_EQ(json.code, 0) << json.out << json.err;
  const auto devices = nlohmann::json::parse(json.out).at("devices");
  ASSERT_EQ(devices.size(), 2U);
  for (const auto& device : devices)
    EXPECT_TRUE(device.at("budget_bytes").is_null()) << device;
  const CliRun with = memtrack({"replay", trace, "--profile", "rtx5090", "--json"});
  ASSERT_EQ(with.code, 0) << with.out << with.err;
  EXPECT_TRUE(nlohmann::json::parse(with.out).at("devices").at(0).at("budget_bytes").is_number())
      << with.out;
}

TEST_F(TraceCommands, FitSaysWhetherItFitsAndWhereItFirstFails) {
  // Recorded on a 1000-byte GPU; fit on one of 800 bytes (a profile file).
  const std::string profile = write("small.profile",
                                    "name = small\n"
                                    "display_name = Small test GPU\n"
                                    "cuda_total_bytes = 800 | measured | test\n"
                                    "memory_fraction = 1 | measured | test\n");
  const std::string trace = write("f.trace", std::string(node) +
                                                 "alloc gpu:0 500 addr=0x1\n"
                                                 "alloc gpu:0 400 addr=0x2\n"
                                                 "free gpu:0 addr=0x2\n"
                                                 "alloc gpu:0 250\n"
                                                 "end 4\n");
  const CliRun fits = memtrack({"fit", trace, "--profile", "rtx5090"});
  EXPECT_EQ(fits.code, 0) << fits.out << fits.err;
  EXPECT_NE(fits.out.find("verdict: FITS on profile rtx5090 (1 GPU)"), std::string::npos);
  const CliRun tight = memtrack({"fit", trace, "--profile", profile});
  EXPECT_EQ(tight.code, 1) << tight.out << tight.err;
  EXPECT_NE(tight.out.find("first refused: event 2 (" + trace + ":8), 400 bytes"),
            std::string::npos)
      << tight.out;
  EXPECT_NE(tight.out.find("on gpu:0 with 300 bytes"), std::string::npos) << tight.out;
  EXPECT_NE(tight.out.find("DOES NOT FIT"), std::string::npos);

  const CliRun json = memtrack({"fit", trace, "--profile", profile, "--json"});
  EXPECT_EQ(json.code, 1);
  const auto j = nlohmann::json::parse(json.out);
  EXPECT_FALSE(j["fits"]);
  EXPECT_EQ(j["first_refusal"]["event"], 2);
  EXPECT_EQ(j["first_refusal"]["available_bytes"], 300);
  EXPECT_EQ(j["devices"][0]["budget_bytes"], 800);
  EXPECT_EQ(j["devices"][0]["peak_bytes"], 750);    // replayed: 500, then 500 + 250
  EXPECT_EQ(j["devices"][0]["needed_bytes"], 900);  // nothing refused: 500 + 400
  EXPECT_TRUE(j["devices"][0]["headroom_bytes"].is_null());
  EXPECT_EQ(j["devices"][0]["shortfall_bytes"], 100);
  EXPECT_FALSE(j["devices"][0]["fits"]);
  EXPECT_NE(tight.out.find("gpu:0 needs 0.00 GiB (900 B), budget 0.00 GiB (800 B): short by 0.00 "
                           "GiB (100 B)"),
            std::string::npos)
      << tight.out;

  // Under auto, the 400 bytes go to the CPU instead.
  const CliRun placed =
      memtrack({"fit", trace, "--profile", profile, "--placement", "auto", "--json"});
  EXPECT_EQ(placed.code, 0) << placed.out << placed.err;
  const auto a = nlohmann::json::parse(placed.out);
  EXPECT_EQ(a["cpu_fallback_allocations"], 1);
  EXPECT_EQ(a["cpu_fallback_bytes"], 400);
  EXPECT_EQ(a["devices"][1]["peak_bytes"], 400);
}

TEST_F(TraceCommands, FitOfSeveralTracesStacksThem) {
  const std::string one = write("1.trace", std::string(node) + "alloc gpu:0 600\nend 1\n");
  const std::string two = write("2.trace", std::string(node) + "alloc gpu:0 300\nend 1\n");
  const CliRun both = memtrack({"fit", one, two, "--profile", "rtx5090", "--json"});
  ASSERT_EQ(both.code, 0) << both.out << both.err;
  EXPECT_EQ(nlohmann::json::parse(both.out)["devices"][0]["peak_bytes"], 900);
  EXPECT_EQ(memtrack({"fit", one, path("nope.trace"), "--profile", "rtx5090"}).code, 2);
  EXPECT_EQ(memtrack({"fit", one}).code, 2);  // --profile is required
}

TEST_F(TraceCommands, ImportWritesATraceOrNothing) {
  const std::string csv = write("rmm_log.dev1.csv",
                                "Thread,Time,Action,Pointer,Size,Stream\n"
                                "1,10:00:00.000001,allocate,0x100,4096,0x0\n"
                                "1,10:00:00.000002,free,0x100,4096,0x0\n");
  const CliRun r = memtrack({"import", csv, "-o", path("rmm.trace.zst")});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("2 events"), std::string::npos);
  EXPECT_EQ(memtrack({"replay", path("rmm.trace.zst"), "--profile", "l4", "--gpus", "2"}).code, 0);
  // Replay and fit import on the fly, too.
  EXPECT_EQ(memtrack({"fit", csv, "--profile", "l4", "--gpus", "2"}).code, 0);

  const std::string bad = write("bad.csv", "Thread,Time,Action,Pointer,Size,Stream\n1,x\n");
  const CliRun failed = memtrack({"import", bad, "-o", path("bad.trace")});
  EXPECT_EQ(failed.code, 2);
  EXPECT_NE(failed.err.find(bad + ":2: expected 6 fields"), std::string::npos) << failed.err;
  EXPECT_FALSE(std::filesystem::exists(path("bad.trace")));
  EXPECT_EQ(memtrack({"import", csv, "-o", path("x.trace"), "--from", "excel"}).code, 2);
}

TEST(RecordedTraces, TheProjectsTraceIsWhatItsCommandRecords) {
  const std::filesystem::path committed =
      std::filesystem::path(MEMTRACK_SOURCE_DIR) / "traces/recorded/serving-h100-sxm.trace.zst";
  const auto out = std::filesystem::temp_directory_path() /
                   ("memtrack-recorded-" + std::to_string(std::random_device()()) + ".trace");
  const CliRun r = memtrack({"sim", "--profile", "h100-sxm", "--workload", "serving", "--ops",
                             "20000", "--no-progress", "--record", out.string()});
  ASSERT_EQ(r.code, 0) << r.err;
  auto recorded = traces::read_all(out, 1U << 30U);
  auto expected = traces::read_all(committed, 1U << 30U);
  std::filesystem::remove(out);
  ASSERT_TRUE(recorded && expected);
  // The header names the command line, which differs only in the output path.
  EXPECT_EQ(recorded->substr(recorded->find("\nevents\n")),
            expected->substr(expected->find("\nevents\n")));
  // And it fits on the RTX 5090, as the README's main command says.
  const CliRun fit = memtrack({"fit", committed.string(), "--profile", "rtx5090"});
  EXPECT_EQ(fit.code, 0) << fit.out;
  EXPECT_NE(fit.out.find("20737062500"), std::string::npos) << fit.out;  // the peak
}

}  // namespace
}  // namespace memtrack::cli
