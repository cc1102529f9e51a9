// `--allocator pytorch` through the command line: reserved memory, PyTorch's OOM, `fit --suggest`,
// the recording's allocator truth verified (and every kind of difference named), and the real
// snapshots in ../shared/traces, whose figures the tests compute on their own from the pickles.
#include "cli_test_support.hpp"
#include "pickle.hpp"

#include <memtrack/sim/profile.hpp>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

namespace memtrack::cli {
namespace {

namespace fs = std::filesystem;
constexpr std::uint64_t MiB = std::uint64_t{1} << 20U;
constexpr std::uint64_t GiB = std::uint64_t{1} << 30U;

fs::path shared_traces() {
  if (const char* dir = std::getenv("MEMTRACK_SHARED_TRACES")) return dir;
  return fs::path(MEMTRACK_SOURCE_DIR) / ".." / "shared" / "traces";
}

std::string hex(std::uint64_t value) {
  std::ostringstream text;
  text << "0x" << std::hex << value;
  return text.str();
}

class AllocatorCli : public ::testing::Test {
 protected:
  void SetUp() override {
    std::random_device random;
    dir_ = fs::temp_directory_path() /
           ("memtrack-allocator-" + std::to_string(random()) + std::to_string(random()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  /// Writes a trace from its event lines (header and trailer added).
  std::string trace(const std::string& name, const std::vector<std::string>& events) {
    const auto path = dir_ / name;
    std::ofstream out(path);
    out << "memtrack-trace 1\nsource pytorch-snapshot written by the test\nevents\n";
    for (const std::string& event : events)
      out << event << "\n";
    out << "end " << events.size() << "\n";
    return path.string();
  }

  /**
   * 2000 allocations of 8 MiB (two to each 20 MiB segment), every other one freed (12 MiB free
   * in each segment that cannot be given back), then 300 of 16 MiB (each its own segment).
   */
  std::string fragmenting() {
    std::vector<std::string> events;
    for (std::uint64_t i = 0; i < 2000; ++i)
      events.push_back("alloc gpu:0 " + std::to_string(8 * MiB) +
                       " addr=" + hex(0x10000000 + i * 32 * MiB));
    for (std::uint64_t i = 0; i < 2000; i += 2)
      events.push_back("free gpu:0 addr=" + hex(0x10000000 + i * 32 * MiB));
    for (std::uint64_t i = 0; i < 300; ++i) {
      events.push_back("alloc gpu:0 " + std::to_string(16 * MiB) +
                       " addr=" + hex(0x90000000000 + i * 32 * MiB));
    }
    return trace("fragmenting.trace", events);
  }

  fs::path dir_;
};

// rtx5090: a budget of 24 GiB (the profile's usable bytes), of which the CUDA context takes
// 512 MiB (its context_overhead_bytes): cudaMalloc may hand out 24064 MiB. The 1000 segments of
// 20 MiB hold 20000 MiB, so 254 segments of 16 MiB fit (4064 MiB) and the 255th allocation of
// 16 MiB (event 2000 + 1000 + 255) is refused; 46 in all.
TEST_F(AllocatorCli, FragmentationIsRefusedWherePytorchWouldRefuseIt) {
  const std::string file = fragmenting();
  const CliRun run = memtrack({"fit", file, "--profile", "rtx5090", "--production-only"});
  EXPECT_EQ(run.code, 1) << run.out << run.err;
  EXPECT_NE(run.out.find("refused allocations: 46"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("event 3255: alloc gpu:0 16777216"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("CUDA out of memory. Tried to allocate 16.00 MiB. GPU 0 has a total "
                         "capacity of"),
            std::string::npos)
      << run.out;
  // At the refusal: 1000 x 8 MiB + 254 x 16 MiB allocated = 11.78 GiB; 1000 x 12 MiB cached.
  EXPECT_NE(run.out.find("11.78 GiB is allocated by PyTorch, and 11.72 GiB is reserved by "
                         "PyTorch but unallocated"),
            std::string::npos)
      << run.out;
}

// What the device needs is what it reserves with no limit: 1000 x 20 MiB + 300 x 16 MiB, plus
// the context: 25312 MiB, against a budget of 24 GiB.
TEST_F(AllocatorCli, NeededIsReservedWithoutLimitPlusTheContext) {
  const CliRun run =
      memtrack({"fit", fragmenting(), "--profile", "rtx5090", "--production-only", "--json"});
  ASSERT_EQ(run.code, 1) << run.err;
  const auto json = nlohmann::json::parse(run.out);
  const auto& gpu = json["devices"][0];
  EXPECT_EQ(gpu["device"], "gpu:0");
  EXPECT_EQ(gpu["needed_bytes"].get<std::uint64_t>(), (20000 + 4800 + 512) * MiB);
  EXPECT_EQ(gpu["budget_bytes"].get<std::uint64_t>(), 24 * 1024 * MiB);
  EXPECT_EQ(gpu["shortfall_bytes"].get<std::uint64_t>(), (20000 + 4800 + 512 - 24576) * MiB);
  // The requested bytes peak before the frees: 2000 x 8 MiB (after them, 8000 + 4800 MiB).
  EXPECT_EQ(gpu["requested_needed_bytes"].get<std::uint64_t>(), 16000 * MiB);
  EXPECT_EQ(gpu["allocator"]["reserved_peak_bytes"].get<std::uint64_t>(), 24064 * MiB);
  EXPECT_EQ(json["allocator"], "pytorch");
  EXPECT_EQ(json["first_oom"]["requested_bytes"].get<std::uint64_t>(), 16 * MiB);
  EXPECT_EQ(json["first_oom"]["event"].get<std::uint64_t>(), 3255U);
}

// The same recording under the exact model: 16000 MiB requested at most fits in 24 GiB.
TEST_F(AllocatorCli, TheExactModelCountsRequestedBytes) {
  const CliRun run = memtrack(
      {"fit", fragmenting(), "--profile", "rtx5090", "--production-only", "--allocator", "exact"});
  EXPECT_EQ(run.code, 0) << run.out << run.err;
  EXPECT_EQ(run.out.find("allocator: pytorch"), std::string::npos);
}

// With expandable segments the 8 MiB blocks are packed in 20 MiB pages (16000 MiB) and the
// 16 MiB ones map 4800 MiB more: 20800 MiB + 512 MiB of context = 20.81 GiB.
TEST_F(AllocatorCli, SuggestNamesTheSettingThatFits) {
  const CliRun run =
      memtrack({"fit", fragmenting(), "--profile", "rtx5090", "--production-only", "--suggest"});
  EXPECT_EQ(run.code, 1) << run.err;
  EXPECT_NE(run.out.find("suggestion: does not fit as recorded; fits with "
                         "expandable_segments:True (reserved peak 20.81 GiB"),
            std::string::npos)
      << run.out;
  const CliRun exact =
      memtrack({"fit", fragmenting(), "--profile", "rtx5090", "--allocator", "exact", "--suggest"});
  EXPECT_EQ(exact.code, 2);
  EXPECT_NE(exact.err.find("--suggest"), std::string::npos) << exact.err;
}

TEST_F(AllocatorCli, AllocConfIsParsedInPytorchSyntax) {
  const std::string file = fragmenting();
  const CliRun fits = memtrack({"fit", file, "--profile", "rtx5090", "--production-only",
                                "--alloc-conf", "expandable_segments:True"});
  EXPECT_EQ(fits.code, 0) << fits.out << fits.err;
  const CliRun unknown = memtrack({"fit", file, "--profile", "rtx5090", "--alloc-conf",
                                   "expandable_segments:True,no_such_key:1"});
  EXPECT_EQ(unknown.code, 2);
  EXPECT_NE(unknown.err.find("no_such_key"), std::string::npos) << unknown.err;
  const CliRun exact = memtrack(
      {"replay", file, "--allocator", "exact", "--alloc-conf", "expandable_segments:True"});
  EXPECT_EQ(exact.code, 2);
  EXPECT_NE(exact.err.find("--alloc-conf"), std::string::npos) << exact.err;
}

/// A recording with its allocator's truth: one 2 MiB small segment, two blocks, a free, the
/// layout after them, and an OOM for 4 MiB with 1 MiB of the device free.
std::vector<std::string> with_truth() {
  return {
      "segment_alloc gpu:0 2097152 addr=0x7f0000000000 stream=0",
      "alloc gpu:0 1000 addr=0x7f0000000000 stream=0",  // rounded to 1024
      "alloc gpu:0 3000 addr=0x7f0000000400 stream=0",  // rounded to 3072, after it
      "free gpu:0 addr=0x7f0000000000",
      "layout gpu:0 check segments=1",
      "segment gpu:0 2097152 addr=0x7f0000000000 stream=0 pool=small blocks=3",
      "block gpu:0 1024 addr=0x7f0000000000 state=free",
      "block gpu:0 3072 addr=0x7f0000000400 state=allocated",
      "block gpu:0 2093056 addr=0x7f0000001000 state=free",
      "oom gpu:0 4194304 stream=0 device_free=1048576 reserved=2097152",
  };
}

TEST_F(AllocatorCli, TheRecordingsAllocatorTruthIsVerified) {
  const CliRun run = memtrack({"replay", trace("truth.trace", with_truth())});
  EXPECT_EQ(run.code, 0) << run.out << run.err;
  EXPECT_NE(run.out.find("2 allocations at the recorded address, 1 segment event, 1 segment and "
                         "3 blocks verified"),
            std::string::npos)
      << run.out;
  // The capacity the oom implies: 2 MiB reserved + 1 MiB free; the model refuses 4 MiB too.
  EXPECT_NE(run.out.find("(the model refuses it too)"), std::string::npos) << run.out;
}

TEST_F(AllocatorCli, ReplayJsonCarriesTheVerdictAndTheAllocatorFigures) {
  const CliRun run = memtrack({"replay", trace("truth.trace", with_truth()), "--json"});
  ASSERT_EQ(run.code, 0) << run.out << run.err;
  const auto json = nlohmann::json::parse(run.out);
  EXPECT_EQ(json["agree"], true);
  EXPECT_EQ(json["allocator"], "pytorch");
  EXPECT_EQ(json["operations"].get<std::uint64_t>(), 3U);
  const auto& gpu = json["devices"][0];
  EXPECT_EQ(gpu["device"], "gpu:0");
  EXPECT_EQ(gpu["allocator"]["reserved_peak_bytes"].get<std::uint64_t>(), 2 * MiB);
  EXPECT_EQ(gpu["allocator"]["verified"]["addresses"].get<std::uint64_t>(), 2U);
  EXPECT_EQ(gpu["allocator"]["verified"]["layout_blocks"].get<std::uint64_t>(), 3U);
  EXPECT_EQ(json["recorded_oom"]["reproduced"], true);
  // No budget, but the OOM implies the capacity: 2 MiB reserved + 1 MiB the device had free.
  EXPECT_EQ(gpu["budget_bytes"], nullptr);
  EXPECT_EQ(gpu["allocator"]["capacity_bytes"].get<std::uint64_t>(), 3 * MiB);
  // Without the OOM nothing implies a capacity: null, not the stand-in limit of the replay.
  auto no_oom = with_truth();
  no_oom.pop_back();
  const CliRun unlimited = memtrack({"replay", trace("no-oom.trace", no_oom), "--json"});
  ASSERT_EQ(unlimited.code, 0) << unlimited.out << unlimited.err;
  const auto unlimited_gpu = nlohmann::json::parse(unlimited.out)["devices"][0];
  EXPECT_EQ(unlimited_gpu["budget_bytes"], nullptr);
  EXPECT_EQ(unlimited_gpu["allocator"]["capacity_bytes"], nullptr);
  // With a budget the capacity is the budget less the profile's CUDA context.
  const CliRun budgeted = memtrack(
      {"replay", trace("no-oom.trace", no_oom), "--json", "--gpus", "1", "--profile", "rtx5090"});
  ASSERT_EQ(budgeted.code, 0) << budgeted.out << budgeted.err;
  const auto budgeted_gpu = nlohmann::json::parse(budgeted.out)["devices"][0];
  const auto& allocator = budgeted_gpu["allocator"];
  EXPECT_EQ(budgeted_gpu["budget_bytes"].get<std::uint64_t>(), 24 * GiB);  // usable 24 GiB
  EXPECT_GT(allocator["context_bytes"].get<std::uint64_t>(), 0U);
  EXPECT_EQ(allocator["capacity_bytes"].get<std::uint64_t>() +
                allocator["context_bytes"].get<std::uint64_t>(),
            24 * GiB);

  auto events = with_truth();
  events[2] = "alloc gpu:0 3000 addr=0x7f0000000800 stream=0";
  const CliRun differs = memtrack({"replay", trace("differs.trace", events), "--json"});
  EXPECT_EQ(differs.code, 1);
  const auto failed = nlohmann::json::parse(differs.out);
  EXPECT_EQ(failed["agree"], false);
  EXPECT_NE(failed["failure"].get<std::string>().find("0x7f0000000800"), std::string::npos);
}

// Without a budget each device the recording uses runs on a stand-in limit that shrinks as more
// devices are used (the limits must sum within 64 bits): with 16 GPUs it is below 2^60. The text
// says "no limit" for every one of them, as the JSON gives null, and a capacity a recorded OOM
// implies is printed as the number it is.
TEST_F(AllocatorCli, EveryDeviceWithoutABudgetHasNoLimitHoweverManyThereAre) {
  std::vector<std::string> events;
  constexpr std::uint32_t gpus = 16;
  for (std::uint32_t id = 0; id < gpus; ++id) {
    events.push_back("alloc gpu:" + std::to_string(id) + " " + std::to_string(MiB) +
                     " addr=" + hex(0x7f0000000000 + std::uint64_t{id} * GiB));
  }
  const std::string file = trace("sixteen.trace", events);
  const CliRun text = memtrack({"replay", file, "--allocator", "pytorch"});
  ASSERT_EQ(text.code, 0) << text.out << text.err;
  std::size_t no_limit = 0;
  for (std::size_t at = 0; (at = text.out.find("no limit", at)) != std::string::npos; ++at)
    ++no_limit;
  EXPECT_EQ(no_limit, gpus) << text.out;
  const CliRun json = memtrack({"replay", file, "--allocator", "pytorch", "--json"});
  ASSERT_EQ(json.code, 0) << json.out << json.err;
  const auto devices = nlohmann::json::parse(json.out)["devices"];
  ASSERT_EQ(devices.size(), gpus + 1);  // and the CPU, which has no allocator model
  for (std::uint32_t id = 0; id < gpus; ++id)
    EXPECT_EQ(devices[id]["allocator"]["capacity_bytes"], nullptr) << id;

  const CliRun implied = memtrack({"replay", trace("truth.trace", with_truth())});
  ASSERT_EQ(implied.code, 0) << implied.out << implied.err;
  EXPECT_EQ(implied.out.find("no limit"), std::string::npos) << implied.out;
}

// The report names where each of the largest allocations at the peak was made: the innermost
// frame of the user's code, past the library frames inside it.
TEST_F(AllocatorCli, TheReportNamesTheFramesOfTheLargestAllocations) {
  const std::string file = trace(
      "frames.trace",
      {"frame 0 line=88 name=linear file=/usr/lib/python3/dist-packages/torch/functional.py",
       "frame 1 line=123 name=forward file=/home/me/model.py", "stack 0 frames=0,1",
       "alloc gpu:0 4096 addr=0x1000 stream=0 stack=0", "alloc gpu:0 1024 addr=0x2000 stream=0"});
  const std::string out = (dir_ / "r.html").string();
  const CliRun run = memtrack({"report", file, "-o", out, "--allocator", "exact"});
  ASSERT_EQ(run.code, 0) << run.err;
  std::ifstream in(out);
  std::ostringstream html;
  html << in.rdbuf();
  EXPECT_NE(html.str().find("<th>allocated in</th>"), std::string::npos);
  EXPECT_NE(html.str().find("<td>/home/me/model.py:123 in forward</td>"), std::string::npos);
  // A refusal says where it was made on hover.
  const CliRun refused =
      memtrack({"report", file, "-o", out, "--allocator", "exact", "--gpu-budget", "0:2048B"});
  ASSERT_EQ(refused.code, 0) << refused.err;
  std::ifstream again(out);
  std::ostringstream page;
  page << again.rdbuf();
  EXPECT_NE(page.str().find(", allocated in /home/me/model.py:123 in forward</title>"),
            std::string::npos);
}

TEST_F(AllocatorCli, EveryDifferenceFromTheRecordingIsNamed) {
  struct Case {
    std::size_t line;
    std::string replaced;
    std::string named;
  };
  const std::vector<Case> cases = {
      {2, "alloc gpu:0 3000 addr=0x7f0000000800 stream=0",
       "the recording placed this allocation at 0x7f0000000800; the model at 0x7f0000000400"},
      {0, "segment_alloc gpu:0 20971520 addr=0x7f0000000000 stream=0",
       "the model obtains a new segment of 2097152 bytes"},
      {7, "block gpu:0 3072 addr=0x7f0000000400 state=free",
       "recorded block 1 of the segment at 0x7f0000000000 (offset 1024, 3072 bytes, free)"},
      {9, "oom gpu:0 4194304 stream=0 device_free=104857600 reserved=2097152",
       "the recording ran out of memory allocating 4194304 bytes here; the model placed them"},
  };
  for (const Case& c : cases) {
    auto events = with_truth();
    events[c.line] = c.replaced;
    if (c.line == 7) events[6] = "block gpu:0 1024 addr=0x7f0000000000 state=free";
    const CliRun run = memtrack({"replay", trace("differs.trace", events)});
    EXPECT_EQ(run.code, 1) << c.replaced << "\n" << run.out << run.err;
    EXPECT_NE(run.out.find("the allocator model differs from what the recording's own allocator "
                           "did"),
              std::string::npos)
        << run.out;
    EXPECT_NE(run.out.find(c.named), std::string::npos) << c.replaced << "\n" << run.out;
  }
  // Under the exact model the allocator truth is not checked: the same recording replays.
  auto events = with_truth();
  events[2] = cases[0].replaced;
  const CliRun exact = memtrack({"replay", trace("exact.trace", events), "--allocator", "exact"});
  EXPECT_EQ(exact.code, 0) << exact.out << exact.err;
}

/// What a snapshot's own entries say, counted here from the pickle.
struct SnapshotFacts {
  std::uint64_t allocs{0};
  std::uint64_t reserved_peak{0};  ///< from the segments at the end, walked back
};

SnapshotFacts facts_of(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  const std::string bytes = text.str();
  auto document = traces::pickle::parse(bytes, path.string());
  EXPECT_TRUE(document.has_value());
  const traces::pickle::Value& root = *document->root;
  SnapshotFacts facts;
  std::uint64_t reserved = 0;
  for (const traces::pickle::Value* segment : root.get("segments")->items) {
    if (segment->get("device")->as_unsigned().value_or(0) == 0)
      reserved += segment->get("total_size")->as_unsigned().value();
  }
  const traces::pickle::Value* traces = root.get("device_traces");
  std::vector<const traces::pickle::Value*> entries;
  if (traces != nullptr && !traces->items.empty()) entries = traces->items[0]->items;
  // Walk back from the end: before a segment_alloc there was less reserved, before a free more.
  facts.reserved_peak = reserved;
  for (auto it = entries.rbegin(); it != entries.rend(); ++it) {
    const std::string action((*it)->get("action")->text);
    const std::uint64_t size = (*it)->get("size")->as_unsigned().value_or(0);
    if (action == "alloc") ++facts.allocs;
    if (action == "segment_alloc" || action == "segment_map") reserved -= size;
    if (action == "segment_free" || action == "segment_unmap") reserved += size;
    facts.reserved_peak = std::max(facts.reserved_peak, reserved);
  }
  return facts;
}

// Acceptance (issues 14 and 19): on every shared snapshot, `fit --profile all` ranks every
// profile with the recording's own reserved peak plus that profile's CUDA context as what it
// needs, and every allocation is placed at the address PyTorch chose.
TEST(AllocatorSharedSnapshots, FitAllNeedsTheRecordingsOwnReservedPeak) {
  const fs::path folder = shared_traces() / "pytorch";
  if (!fs::exists(folder)) {
    GTEST_SKIP() << "skipped: " << folder.string()
                 << " is absent (set MEMTRACK_SHARED_TRACES to the shared traces to run this test)";
  }
  auto profiles = sim::load_builtin_profiles();
  ASSERT_TRUE(profiles.has_value());
  std::map<std::string, std::uint64_t> context;
  for (const sim::DeviceProfile& p : *profiles) {
    if (!p.is_cpu) context[p.name] = p.context_overhead_bytes ? p.context_overhead_bytes->value : 0;
  }
  std::size_t checked = 0;
  for (const auto& entry : fs::directory_iterator(folder)) {
    if (entry.path().extension() != ".pickle") continue;
    const SnapshotFacts facts = facts_of(entry.path());
    const CliRun run = memtrack({"fit", entry.path().string(), "--profile", "all", "--json",
                                 "--production-only", "--allow-inconsistent"});
    ASSERT_NE(run.code, 2) << entry.path() << run.err;
    const auto json = nlohmann::json::parse(run.out);
    ASSERT_EQ(json["profiles"].size(), context.size());
    for (const auto& line : json["profiles"]) {
      const std::string name = line["profile"];
      EXPECT_EQ(line["needed_bytes"].get<std::uint64_t>(), facts.reserved_peak + context.at(name))
          << entry.path().filename() << " on " << name;
    }
    const CliRun on_h200 = memtrack({"fit", entry.path().string(), "--profile", "h200", "--json",
                                     "--production-only", "--allow-inconsistent"});
    const auto verified = nlohmann::json::parse(on_h200.out)["devices"][0]["allocator"]["verified"];
    EXPECT_EQ(verified["addresses"].get<std::uint64_t>(), facts.allocs) << entry.path().filename();
    ++checked;
  }
  EXPECT_GT(checked, 0U);
}

}  // namespace
}  // namespace memtrack::cli
