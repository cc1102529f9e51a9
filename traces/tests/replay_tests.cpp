// The replay engine: lockstep, checkpoints, frees resolved by address, budgets other than the
// recording's, auto placement; and the recorder, whose traces must replay to the same outcomes.
#include "../src/replay_internal.hpp"
#include "test_support.hpp"

#include <memtrack/shared_memory_tracker.hpp>
#include <memtrack/traces/recorder.hpp>
#include <memtrack/traces/replay.hpp>

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <map>
#include <set>
#include <sstream>
#include <thread>

namespace memtrack::traces {
namespace {

using namespace memtrack::literals;
using testing::reader_of;
using testing::ScratchDir;

/// A one-GPU node: gpu:0 limit 1000 (total 1000, fraction 1), CPU limit 500.
constexpr const char* small_node =
    "memtrack-trace 1\nmemory_fraction 1\ncpu_memory_limit 500\ngpu 0 total=1000\nevents\n";

GpuConfig small_config() {
  GpuConfig config;
  config.memory_fraction = Fraction::of(1, 1).value();
  config.cpu_memory_limit = 500;
  config.gpus.push_back({0, 1000});
  return config;
}

/// Replays `events` (lines, without the trailer) on `config`.
ReplaySummary replay_text(const std::string& head, const std::vector<std::string>& lines,
                          const GpuConfig& config, ReplayOptions options = {},
                          const std::map<std::uint32_t, std::uint32_t>& map = {}) {
  std::string text = head;
  for (const std::string& line : lines)
    text += line + "\n";
  text += "end " + std::to_string(lines.size()) + "\n";
  auto reader = reader_of(text);
  EXPECT_TRUE(reader) << reader.error().to_string();
  auto replayer = Replayer::create(config, options);
  EXPECT_TRUE(replayer);
  auto ok = replayer->replay(*reader, map);
  EXPECT_TRUE(ok) << ok.error().to_string();
  return replayer->summary();
}

TEST(Replay, CheckpointsAreVerifiedAndAFailedOneStopsTheReplay) {
  const auto good = replay_text(small_node,
                                {"baseline gpu:0 100", "check gpu:0 allocated=100",
                                 "alloc gpu:0 50", "check gpu:0 allocated=150"},
                                small_config());
  EXPECT_FALSE(good.failure);
  EXPECT_EQ(good.checkpoints_verified, 2U);
  EXPECT_EQ(good.high_water.at(Gpu{0}), 150U);

  const auto bad = replay_text(
      small_node, {"alloc gpu:0 50", "check gpu:0 allocated=51", "alloc gpu:0 1"}, small_config());
  ASSERT_TRUE(bad.failure);
  EXPECT_EQ(bad.failure->kind, ReplayFailure::Kind::Checkpoint);
  EXPECT_EQ(bad.failure->at.event, 2U);
  EXPECT_EQ(bad.failure->at.line, 7U);
  EXPECT_NE(bad.failure->what.find("51"), std::string::npos);
  EXPECT_NE(bad.failure->core_state.find("gpu:0: allocated 50"), std::string::npos);
  EXPECT_NE(bad.failure->reference_state.find("50"), std::string::npos);
  EXPECT_EQ(bad.operations, 1U);  // stopped at the checkpoint
}

TEST(Replay, ALastEventEndsTheReplayThereWithoutTheEndsChecks) {
  // Stopped after event 3 of 6: the events after it are not read (the refusal and the failed
  // checkpoint after it are not reached), and what is allocated then stays allocated.
  const std::vector<std::string> lines{
      "alloc gpu:0 100 addr=0x1", "alloc gpu:0 200 addr=0x2",
      "free gpu:0 addr=0x1",      "alloc gpu:0 5000 result=OutOfMemory",
      "check gpu:0 allocated=1",  "alloc cpu 10"};
  ReplayOptions options;
  options.last_event = 3;
  const auto stopped = replay_text(small_node, lines, small_config(), options);
  EXPECT_FALSE(stopped.failure);
  EXPECT_EQ(stopped.events, 3U);
  EXPECT_EQ(stopped.operations, 3U);
  EXPECT_EQ(stopped.refused, 0U);
  EXPECT_EQ(stopped.high_water.at(Gpu{0}), 300U);
  EXPECT_EQ(stopped.high_water.at(Cpu{}), 0U);
  // 0 (the default), or a number past the trace's end: every event.
  for (const std::uint64_t last : {0U, 7U}) {
    options.last_event = last;
    const auto whole = replay_text(small_node, lines, small_config(), options);
    EXPECT_EQ(whole.events, 5U) << last;  // the failed checkpoint stops it
    EXPECT_EQ(whole.refused, 1U) << last;
    ASSERT_TRUE(whole.failure) << last;
    EXPECT_EQ(whole.failure->kind, ReplayFailure::Kind::Checkpoint) << last;
  }
}

TEST(Replay, FreesAreResolvedByAddressAndUnknownOnesCounted) {
  const auto s = replay_text(small_node,
                             {"alloc gpu:0 300 addr=0xa", "alloc cpu 20 addr=0xb",
                              "free gpu:0 addr=0xa",     // size from the allocation
                              "free cpu addr=0xb",       // device from the allocation, too
                              "baseline gpu:0 10",       // memory from before the recording
                              "free gpu:0 10 addr=0xc",  // address never seen: by size
                              "free gpu:0 addr=0xd",     // no size, unknown address
                              "check gpu:0 allocated=0", "check cpu allocated=0"},
                             small_config());
  EXPECT_FALSE(s.failure) << s.failure->to_string();
  EXPECT_EQ(s.frees_by_address, 2U);
  EXPECT_EQ(s.frees_of_unseen_address, 1U);
  EXPECT_EQ(s.frees_unresolved, 1U);
  EXPECT_EQ(s.checkpoints_verified, 2U);
  EXPECT_EQ(s.high_water.at(Gpu{0}), 300U);
  EXPECT_EQ(s.high_water.at(Cpu{}), 20U);
}

TEST(Replay, OnTheRecordingsOwnBudgetsAnOutcomeChangeIsAFailure) {
  // The recording says this allocation succeeded; on its own budget it cannot.
  const auto s = replay_text(small_node, {"alloc gpu:0 1001"}, small_config());
  ASSERT_TRUE(s.failure);
  EXPECT_EQ(s.failure->kind, ReplayFailure::Kind::Outcome);
  // A refusal the recording also saw is no failure.
  const auto same =
      replay_text(small_node, {"alloc gpu:0 1001 result=OutOfMemory"}, small_config());
  EXPECT_FALSE(same.failure);
  EXPECT_EQ(same.refused, 1U);
}

TEST(Replay, OnOtherBudgetsRefusalsAreTheAnswer) {
  GpuConfig tight = small_config();
  tight.gpus[0].total_bytes = 400;
  ReplayOptions options;
  options.recorded_budgets = false;
  const auto s =
      replay_text(small_node,
                  {"alloc gpu:0 300 addr=0x1", "alloc gpu:0 200 addr=0x2", "free gpu:0 addr=0x2",
                   "check gpu:0 allocated=300", "free gpu:0 300 addr=0x1", "alloc gpu:0 100"},
                  tight, options);
  EXPECT_FALSE(s.failure);
  EXPECT_EQ(s.refused, 1U);
  ASSERT_TRUE(s.first_refusal);
  EXPECT_EQ(s.first_refusal->at.event, 2U);
  EXPECT_EQ(s.first_refusal->bytes, 200U);
  EXPECT_EQ(s.first_refusal->available, 100U);
  EXPECT_EQ(s.frees_of_refused, 1U);     // the free of the refused block is skipped
  EXPECT_EQ(s.checkpoints_skipped, 1U);  // gpu:0 left the recording
  EXPECT_EQ(s.outcome_differences, 1U);
  EXPECT_EQ(s.high_water.at(Gpu{0}), 300U);
}

TEST(Replay, AutoPlacementFallsBackToTheCpuAndFreesFollow) {
  GpuConfig config = small_config();
  ReplayOptions options;
  options.placement = Placement::Auto;
  options.recorded_budgets = false;
  const auto s = replay_text(small_node,
                             {"alloc gpu:0 900", "alloc gpu:0 200", "alloc gpu:0 250",
                              "free gpu:0 200", "free gpu:0 250", "check gpu:0 allocated=1"},
                             config, options);
  EXPECT_FALSE(s.failure);
  EXPECT_EQ(s.refused, 0U);
  EXPECT_EQ(s.cpu_fallback_bytes, 450U);  // 200 and 250 did not fit on gpu:0
  EXPECT_EQ(s.high_water.at(Cpu{}), 450U);
  EXPECT_EQ(s.checkpoints_skipped,
            1U);                  // placement changed: the recording's truth no longer applies
  EXPECT_EQ(s.other_errors, 0U);  // the frees found their CPU allocations
}

TEST(Replay, GpuMapPutsTraceGpusOntoTheReplaysGpus) {
  const std::string head = "memtrack-trace 1\nmemory_fraction 1\ngpu 5 total=1000\nevents\n";
  TraceHeader header;
  header.config = GpuConfig{};
  header.config->gpus.push_back({5, 1000});
  const auto map = detail::map_onto_first_gpus(header);
  ASSERT_EQ(map.at(5), 0U);
  ReplayOptions options;
  options.recorded_budgets = false;
  const auto s = replay_text(head, {"alloc gpu:5 700", "check gpu:5 allocated=700"}, small_config(),
                             options, map);
  EXPECT_FALSE(s.failure);
  EXPECT_EQ(s.checkpoints_verified, 1U);
  EXPECT_EQ(s.high_water.at(Gpu{0}), 700U);
}

// Frees by address find their allocation among many live ones (the replay's address table:
// collisions, growth, deletion in the middle of a probe run), checked against a std::map.
RC_GTEST_PROP(Replay, FreesByAddressFindTheirAllocation, ()) {
  const auto steps = *rc::gen::inRange<std::size_t>(1, 3000);
  const auto spread = *rc::gen::element<std::uint64_t>(1, 64, 4096, 1ULL << 40U);
  std::map<std::uint64_t, std::uint64_t> model;  // address -> bytes
  std::string text = small_node;
  std::uint64_t events = 0;
  std::uint64_t frees = 0;
  for (std::size_t i = 0; i < steps; ++i) {
    const std::uint64_t address = *rc::gen::inRange<std::uint64_t>(0, 512) * spread;
    if (const auto it = model.find(address); it != model.end()) {
      text += "free gpu:0 addr=0x" + [address] {
        std::ostringstream hex;
        hex << std::hex << address;
        return hex.str();
      }() + "\n";
      model.erase(it);
      ++frees;
    } else {
      const std::uint64_t bytes = *rc::gen::inRange<std::uint64_t>(0, 2);
      std::ostringstream line;
      line << "alloc gpu:0 " << bytes << " addr=0x" << std::hex << address << "\n";
      text += line.str();
      model[address] = bytes;
    }
    ++events;
  }
  text += "end " + std::to_string(events) + "\n";
  auto reader = reader_of(text);
  RC_ASSERT(reader.has_value());
  auto replayer = Replayer::create(small_config(), {});
  RC_ASSERT(replayer.has_value());
  RC_ASSERT(replayer->replay(*reader, {}).has_value());
  RC_ASSERT(!replayer->summary().failure.has_value());
  RC_ASSERT(replayer->summary().frees_by_address == frees);
  std::uint64_t live = 0;
  for (const auto& [address, bytes] : model)
    live += bytes;
  RC_ASSERT(replayer->tracker().allocated(Gpu{0}) == live);
  RC_ASSERT(replayer->tracker().allocation_count(Gpu{0}) == model.size());
}

TEST(Recorder, ATrackersRecordingReplaysToTheSameOutcomes) {
  ScratchDir dir;
  GpuConfig config;
  config.gpus.push_back({0, 10_GiB});
  config.gpus.push_back({2, 20_GiB});
  RecorderOptions options;
  options.checkpoint_every = 3;
  options.tag = "unit";
  auto recorder = TraceRecorder::create(dir / "r.trace.zst", config, "recorder test", options);
  ASSERT_TRUE(recorder);
  auto tracker = MemoryTracker::create(config);
  ASSERT_TRUE(tracker);
  tracker->set_observer(recorder->get());
  ASSERT_TRUE(tracker->allocate(Auto{}, 9_GiB));
  ASSERT_TRUE(tracker->allocate(Auto{}, 9_GiB));      // to gpu:2
  ASSERT_FALSE(tracker->allocate(Gpu{0}, 1_GiB));     // refused
  ASSERT_FALSE(tracker->deallocate(Gpu{2}, 10_GiB));  // invalid
  ASSERT_FALSE(tracker->allocate(Gpu{7}, 1));         // unknown device
  ASSERT_TRUE(tracker->deallocate(Gpu{0}, 9_GiB));
  ASSERT_FALSE(tracker->deallocate(Auto{}, 1));  // ambiguous: an event with its result=
  tracker->reset_peak();
  ASSERT_TRUE(tracker->reset_peak(Gpu{2}));
  ASSERT_FALSE(tracker->reset_peak(Gpu{9}));  // unknown device
  ASSERT_FALSE(tracker->reset_peak(Auto{}));  // ambiguous
  tracker->set_observer(nullptr);
  ASSERT_TRUE((*recorder)->finish());

  auto reader = TraceReader::open(dir / "r.trace.zst");
  ASSERT_TRUE(reader) << reader.error().to_string();
  EXPECT_EQ(reader->header().config, config);
  auto replayer = Replayer::create(config, {});
  ASSERT_TRUE(replayer);
  ASSERT_TRUE(replayer->replay(*reader, {}));
  const ReplaySummary& s = replayer->summary();
  EXPECT_FALSE(s.failure) << s.failure->to_string();
  // Every operation replayed, the refused ones to the refusal recorded (no marks).
  EXPECT_EQ(s.operations, 11U);
  EXPECT_EQ(s.ok, 5U);
  EXPECT_EQ(s.refused, 1U);
  EXPECT_EQ(s.other_errors, 5U);
  EXPECT_EQ(s.marks, 0U);
  EXPECT_EQ(s.checkpoints_verified, 3U * 3);  // after operations 3, 6 and 9: gpu:0 gpu:2 cpu
  EXPECT_EQ(replayer->tracker().allocated(Gpu{2}), 9_GiB);
  EXPECT_EQ(replayer->tracker().peak(Gpu{0}), tracker->peak(Gpu{0}));
}

TEST(Recorder, ASharedTrackersRecordingIsOrderedAcrossThreads) {
  ScratchDir dir;
  GpuConfig config;
  config.gpus.push_back({0, 1_GiB});
  auto recorder =
      TraceRecorder::create(dir / "s.trace", config, "threads", RecorderOptions{false, 0, ""});
  ASSERT_TRUE(recorder);
  auto tracker = MemoryTracker::create(config);
  ASSERT_TRUE(tracker);
  SharedMemoryTracker shared(std::move(*tracker));
  shared.set_observer(recorder->get());
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&shared, t] {
      for (int i = 0; i < 2000; ++i) {
        const std::uint64_t bytes = 1_MiB * static_cast<std::uint64_t>(1 + (i + t) % 200);
        if (shared.allocate(Auto{}, bytes)) (void)shared.deallocate(Gpu{0}, bytes);
      }
    });
  }
  for (auto& thread : threads)
    thread.join();
  shared.set_observer(nullptr);
  ASSERT_TRUE((*recorder)->finish());
  // Replayed in lockstep, every outcome (and where auto went) must be the recording's.
  auto reader = TraceReader::open(dir / "s.trace");
  ASSERT_TRUE(reader);
  auto replayer = Replayer::create(config, {});
  ASSERT_TRUE(replayer);
  ASSERT_TRUE(replayer->replay(*reader, {}));
  EXPECT_FALSE(replayer->summary().failure) << replayer->summary().failure->to_string();
  EXPECT_GE(replayer->summary().operations, 8000U);
  EXPECT_EQ(replayer->tracker().allocated(Gpu{0}), 0U);
}

TEST(Recorder, ARefusedTagIsAnError) {
  ScratchDir dir;
  auto recorder = TraceRecorder::create(dir / "x.trace", GpuConfig{}, "x",
                                        RecorderOptions{true, 0, "two words"});
  EXPECT_FALSE(recorder);
  EXPECT_TRUE(dir.files().empty());
}

// ---- needed, inconsistencies, unlanded operations, the GPU map ----

TEST(ReplayNeeded, IsThePeakHadNothingBeenRefused) {
  // Budget 1000: 600 fits, 700 is refused (needed 1300), its free and the 600's free bring the
  // need back down; 900 then fits (needed stays 1300).
  ReplayOptions options;
  options.recorded_budgets = false;
  const auto s =
      replay_text(small_node,
                  {"alloc gpu:0 600 addr=0x1", "alloc gpu:0 700 addr=0x2", "free gpu:0 addr=0x2",
                   "free gpu:0 addr=0x1", "alloc gpu:0 900", "free gpu:0 900"},
                  small_config(), options);
  EXPECT_EQ(s.refused, 1U);
  EXPECT_EQ(s.high_water.at(Gpu{0}), 900U);
  EXPECT_EQ(s.needed.at(Gpu{0}), 1300U);
  EXPECT_EQ(s.needed.at(Cpu{}), 0U);
  EXPECT_EQ(s.inconsistencies, 0U);
}

TEST(ReplayNeeded, EachDeviceKeepsItsOwnFiguresWhateverItsId) {
  // Sparse ids, one far past any dense table (the replay finds each device's figures by its id):
  // every device's high water and "needed" are its own, and `auto` lands where the tracker puts
  // it (the lowest id with room).
  GpuConfig config;
  config.memory_fraction = Fraction::of(1, 1).value();
  config.cpu_memory_limit = 500;
  config.gpus.push_back({3, 1000});
  config.gpus.push_back({70000, 2000});
  ReplayOptions options;
  options.recorded_budgets = false;
  const auto s = replay_text(
      "memtrack-trace 1\nmemory_fraction 1\ncpu_memory_limit 500\ngpu 3 total=1000\n"
      "gpu 70000 total=2000\nevents\n",
      {"alloc gpu:70000 1500 addr=0x1", "alloc gpu:3 600 addr=0x2", "alloc cpu 40 addr=0x3",
       "alloc gpu:70000 900 addr=0x4", "free gpu:70000 addr=0x1", "alloc gpu:3 700 addr=0x5",
       "alloc cpu 30 addr=0x6", "alloc auto 200 addr=0x7"},
      config, options);
  EXPECT_EQ(s.refused, 2U);  // gpu:70000's 900 (1500 + 900 > 2000) and gpu:3's 700
  EXPECT_EQ(s.high_water.at(Gpu{70000}), 1500U);
  EXPECT_EQ(s.high_water.at(Gpu{3}), 800U);  // 600, then the auto 200
  EXPECT_EQ(s.high_water.at(Cpu{}), 70U);
  EXPECT_EQ(s.needed.at(Gpu{70000}), 2400U);
  EXPECT_EQ(s.needed.at(Gpu{3}), 1500U);  // 600 + 700 + the auto 200, placed there
  EXPECT_EQ(s.needed.at(Cpu{}), 70U);
}

TEST(ReplayNeeded, AFreeBySizeOfARefusedAllocationIsSkippedNotInconsistent) {
  ReplayOptions options;
  options.recorded_budgets = false;
  const auto s = replay_text(
      small_node,
      {"alloc gpu:0 800", "alloc gpu:0 300", "free gpu:0 300", "free gpu:0 800", "alloc gpu:0 100"},
      small_config(), options);
  EXPECT_EQ(s.refused, 1U);
  EXPECT_EQ(s.frees_of_refused, 1U);
  EXPECT_EQ(s.inconsistencies, 0U);
  EXPECT_EQ(s.other_errors, 0U);
  EXPECT_EQ(s.needed.at(Gpu{0}), 1100U);
}

TEST(ReplayInconsistency, DoubleFreesAndFreesOfTheUnknownAreCountedAndNotApplied) {
  const auto s =
      replay_text(small_node,
                  {"alloc gpu:0 100 addr=0x10", "free gpu:0 addr=0x10", "alloc gpu:0 300 addr=0x20",
                   "free gpu:0 100 addr=0x10", "free gpu:0 7 addr=0x30", "free gpu:0 addr=0x40",
                   "free gpu:0 999", "alloc gpu:0 5 addr=0x10", "free gpu:0 addr=0x10"},
                  small_config());
  EXPECT_FALSE(s.failure);
  // The double free of 0x10 (event 4), 0x30 never allocated without a baseline (5), 0x40 without
  // a size (6), 999 bytes with 300 allocated (7); 0x10 allocated again frees cleanly (9).
  EXPECT_EQ(s.inconsistencies, 4U);
  ASSERT_TRUE(s.first_inconsistency);
  EXPECT_EQ(s.first_inconsistency->at.event, 4U);
  EXPECT_NE(s.first_inconsistency->what.find("double free: 0x10 was already freed at event 2"),
            std::string::npos)
      << s.first_inconsistency->what;
  EXPECT_EQ(s.frees_by_address, 2U);
  EXPECT_EQ(s.high_water.at(Gpu{0}), 305U);  // 300 stays: no inconsistent free was applied
}

// A replay remembers at least the latest 32,768 frees to tell a double free, and at most twice
// as many (docs/limits.md): memory stays flat however many addresses a trace frees.
// The production tracker alone keeps one outcome from operation to operation: a refusal must not
// leave its mark on the operations after it. Its summary is lockstep's, figure for figure.
TEST(Replay, ProductionOnlyCountsOutcomesAsLockstepDoes) {
  const std::vector<std::string> lines = {"alloc gpu:0 600 addr=0x1",
                                          "alloc gpu:0 600 addr=0x2",  // 1000 bytes: refused
                                          "alloc gpu:0 300 addr=0x3",
                                          "free gpu:0 addr=0x1",
                                          "alloc cpu 100",
                                          "free cpu 100",
                                          "alloc gpu:9 1"};  // a GPU the node does not have
  for (const bool lockstep : {true, false}) {
    ReplayOptions options;
    options.lockstep = lockstep;
    options.recorded_budgets = false;
    const auto s = replay_text(small_node, lines, small_config(), options);
    EXPECT_FALSE(s.failure) << lockstep;
    EXPECT_EQ(s.operations, 7U) << lockstep;
    EXPECT_EQ(s.ok, 5U) << lockstep;
    EXPECT_EQ(s.refused, 1U) << lockstep;
    EXPECT_EQ(s.other_errors, 1U) << lockstep;
    EXPECT_EQ(s.high_water.at(Gpu{0}), 900U) << lockstep;
    EXPECT_EQ(s.high_water.at(Cpu{}), 100U) << lockstep;
  }
}

TEST(ReplayInconsistency, ADoubleFreeIsToldWhileAmongTheLatestFrees) {
  // `before` other frees, the free of 0x10, `between` other frees, 0x10 freed again.
  const auto double_free = [](std::uint64_t before, std::uint64_t between) {
    std::vector<std::string> lines;
    const auto alloc_and_free = [&lines](std::uint64_t i) {
      const std::string address = "0x" + std::to_string(1000 + i);  // decimal digits read as hex
      lines.push_back("alloc gpu:0 8 addr=" + address);
      lines.push_back("free gpu:0 addr=" + address);
    };
    for (std::uint64_t i = 0; i < before; ++i)
      alloc_and_free(i);
    lines.emplace_back("alloc gpu:0 8 addr=0x10");
    lines.emplace_back("free gpu:0 addr=0x10");
    for (std::uint64_t i = 0; i < between; ++i)
      alloc_and_free(before + i);
    lines.emplace_back("free gpu:0 addr=0x10");
    return replay_text(small_node, lines, small_config());
  };
  // (32,767 before: the free of 0x10 fills the latest frees' set, and the next one starts anew.)
  for (const auto& [before, between] : std::vector<std::pair<std::uint64_t, std::uint64_t>>{
           {0, 0}, {0, 2}, {0, 3}, {0, 32'767}, {32'767, 1}, {32'767, 2}}) {
    const auto s = double_free(before, between);
    ASSERT_TRUE(s.first_inconsistency) << before << " " << between;
    EXPECT_EQ(s.inconsistencies, 1U) << between;
    const std::string freed_at =
        "double free: 0x10 was already freed at event " + std::to_string(2 * before + 2);
    EXPECT_NE(s.first_inconsistency->what.find(freed_at), std::string::npos)
        << before << " " << between << ": " << s.first_inconsistency->what;
  }
  // Past twice the bound it is forgotten: then a free of an address never seen (no baseline).
  const auto s = double_free(0, 65'536);
  ASSERT_TRUE(s.first_inconsistency);
  EXPECT_NE(s.first_inconsistency->what.find("which the recording never allocated"),
            std::string::npos)
      << s.first_inconsistency->what;
}

TEST(ReplayInconsistency, ABaselineCoversFreesOfAddressesFromBeforeTheRecording) {
  const auto s =
      replay_text(small_node, {"baseline gpu:0 500", "free gpu:0 200 addr=0x99"}, small_config());
  EXPECT_EQ(s.inconsistencies, 0U);
  EXPECT_EQ(s.frees_of_unseen_address, 1U);
}

TEST(ReplayGpuMap, UsedGpusAreTheIdsOperationsNameEachOnce) {
  // Ids below the bitmap's end and past it, each named again; a checkpoint, a mark and the CPU
  // name no GPU an operation uses.
  auto reader = reader_of(
      "memtrack-trace 1\nevents\nalloc gpu:1023 10\nalloc gpu:0 10\ncheck gpu:7 allocated=0\n"
      "alloc gpu:5000 10\nfree gpu:1023 10\nalloc cpu 10\nbaseline gpu:1024 10\n"
      "reset_peak gpu:2\nfree gpu:5000 10\nalloc gpu:0 10\nmark gpu:9\nend 11\n");
  ASSERT_TRUE(reader) << reader.error().to_string();
  const auto used = used_gpus(*reader);
  ASSERT_TRUE(used) << used.error().to_string();
  EXPECT_EQ(*used, (std::set<std::uint32_t>{0, 2, 1023, 1024, 5000}));
}

TEST(ReplayUnlanded, AnOperationOnAGpuTheNodeLacksIsCountedAndLocated) {
  ReplayOptions options;
  options.recorded_budgets = false;
  const auto s =
      replay_text(small_node, {"alloc gpu:0 1", "alloc gpu:4 1"}, small_config(), options);
  EXPECT_EQ(s.unlanded, 1U);
  ASSERT_TRUE(s.first_unlanded);
  EXPECT_EQ(s.first_unlanded->at.event, 2U);
}

TEST(GpuMap, TheUsedGpusGoAscendingOntoTheNodesAfterExplicitEntries) {
  GpuConfig node;
  node.gpus = {{2, 1000}, {5, 1000}, {7, 1000}};
  auto map = map_used_gpus({1, 3, 6}, node);
  ASSERT_TRUE(map);
  EXPECT_EQ(*map, (std::map<std::uint32_t, std::uint32_t>{{1, 2}, {3, 5}, {6, 7}}));
  map = map_used_gpus({1, 3, 6}, node, {{6, 2}});
  ASSERT_TRUE(map);
  EXPECT_EQ(*map, (std::map<std::uint32_t, std::uint32_t>{{1, 5}, {3, 7}, {6, 2}}));
  map = map_used_gpus({0, 1, 2, 3}, node);
  ASSERT_FALSE(map);
  EXPECT_NE(map.error().detail.find("no GPU left for gpu:3"), std::string::npos)
      << map.error().detail;
  map = map_used_gpus({0}, node, {{0, 4}});
  ASSERT_FALSE(map);
  EXPECT_NE(map.error().detail.find("the node has no gpu:4"), std::string::npos);
}

TEST(ReplayInconsistency, AnAddressAllocatedTwiceOrFreedWithAnotherSizeIsInconsistent) {
  const auto twice = replay_text(
      small_node, {"alloc gpu:0 100 addr=0x10", "alloc gpu:0 50 addr=0x10"}, small_config());
  EXPECT_EQ(twice.inconsistencies, 1U);
  EXPECT_NE(twice.first_inconsistency->what.find("still live"), std::string::npos);
  EXPECT_EQ(twice.high_water.at(Gpu{0}), 150U);  // both stay counted: nothing is dropped

  const auto resized = replay_text(
      small_node, {"alloc gpu:0 100 addr=0x10", "free gpu:0 40 addr=0x10", "alloc gpu:0 900"},
      small_config());
  EXPECT_EQ(resized.inconsistencies, 1U);
  EXPECT_NE(resized.first_inconsistency->what.find("where 100 were allocated"), std::string::npos)
      << resized.first_inconsistency->what;
  EXPECT_FALSE(resized.failure);  // the allocation's 100 were freed: 900 fits in 1000
  EXPECT_EQ(resized.refused, 0U);
}

}  // namespace
}  // namespace memtrack::traces

// ---- the replayer's book: which allocation each free released, what is alive ----

namespace memtrack::traces {
namespace {

/// A replay's book: for each free, the event of the allocation it released; each device's live
/// allocations at the end (by event); the summary.
struct Booked {
  ReplaySummary summary;
  std::map<std::uint64_t, std::uint64_t> released;  ///< free's event -> allocating event
  std::set<std::uint64_t> parts;                    ///< frees that took part of a baseline
  std::vector<LiveAllocation> gpu;
  std::vector<LiveAllocation> cpu;
  std::uint64_t gpu_allocated{0};
  std::uint64_t cpu_allocated{0};
};

Booked book_of(const std::vector<std::string>& lines, ReplayOptions options = {},
               const GpuConfig& config = small_config(), const std::string& head = small_node) {
  std::string text = head;
  for (const std::string& line : lines)
    text += line + "\n";
  text += "end " + std::to_string(lines.size()) + "\n";
  auto reader = reader_of(text);
  EXPECT_TRUE(reader) << reader.error().to_string();
  auto replayer = Replayer::create(config, options);
  EXPECT_TRUE(replayer);
  Booked booked;
  auto ok = replayer->replay(*reader, {}, [&](const ReplayStep& step) {
    if (step.operation.kind == sim::Operation::Kind::Deallocate) {
      booked.released[step.event] = step.released;
      if (step.released_part) booked.parts.insert(step.event);
    }
  });
  EXPECT_TRUE(ok) << ok.error().to_string();
  booked.summary = replayer->summary();
  booked.gpu = replayer->live(Gpu{0});
  booked.cpu = replayer->live(Cpu{});
  booked.gpu_allocated = replayer->tracker().allocated(Gpu{0});
  booked.cpu_allocated = replayer->tracker().allocated(Cpu{});
  return booked;
}

using Lives = std::vector<LiveAllocation>;

TEST(ReplayBook, AFreeByAddressReleasesThatAllocation) {
  const Booked b = book_of({"alloc gpu:0 300 addr=0xa", "alloc gpu:0 200 addr=0xb",
                            "alloc cpu 20 addr=0xc", "free gpu:0 addr=0xa"});
  EXPECT_EQ(b.released, (std::map<std::uint64_t, std::uint64_t>{{4, 1}}));
  EXPECT_EQ(b.gpu, (Lives{{2, 200, 0xb}}));
  EXPECT_EQ(b.cpu, (Lives{{3, 20, 0xc}}));
}

TEST(ReplayBook, AFreeBySizeTakesTheLatestOfThatSizeMadeWithoutAnAddressFirst) {
  const Booked b = book_of({"alloc gpu:0 100", "alloc gpu:0 100 addr=0xa", "alloc gpu:0 100",
                            "free gpu:0 100", "free gpu:0 100", "alloc gpu:0 7"});
  EXPECT_EQ(b.released, (std::map<std::uint64_t, std::uint64_t>{{4, 3}, {5, 1}}));
  EXPECT_EQ(b.gpu, (Lives{{2, 100, 0xa}, {6, 7, std::nullopt}}));
}

TEST(ReplayBook, AFreeBySizeOfAnAllocationMadeWithAnAddressTakesTheLatestOfThatSize) {
  const Booked b = book_of({"alloc gpu:0 100 addr=0xa", "alloc gpu:0 100 addr=0xb",
                            "alloc gpu:0 50 addr=0xc", "free gpu:0 100", "free gpu:0 addr=0xb"});
  EXPECT_EQ(b.released, (std::map<std::uint64_t, std::uint64_t>{{4, 2}}));
  EXPECT_EQ(b.gpu, (Lives{{1, 100, 0xa}, {3, 50, 0xc}}));
  // 0xb was released by the free by size: naming it again is a double free, not applied
  EXPECT_EQ(b.summary.inconsistencies, 1U);
  ASSERT_TRUE(b.summary.first_inconsistency);
  EXPECT_NE(b.summary.first_inconsistency->what.find("already freed at event 4"),
            std::string::npos);
  EXPECT_EQ(b.gpu_allocated, 150U);
}

TEST(ReplayBook, AFreeOfAnUnseenAddressTakesFromTheBaseline) {
  const Booked b = book_of({"baseline gpu:0 500", "alloc gpu:0 100", "baseline gpu:0 40",
                            "free gpu:0 100 addr=0xdead", "free gpu:0 30 addr=0xbeef"});
  // 100: all of the latest baseline (40), then 60 of the first; 30 more of the first
  EXPECT_EQ(b.released, (std::map<std::uint64_t, std::uint64_t>{{4, 3}, {5, 1}}));
  EXPECT_EQ(b.parts, (std::set<std::uint64_t>{5}));
  EXPECT_EQ(b.gpu, (Lives{{1, 410, std::nullopt}, {2, 100, std::nullopt}}));
  EXPECT_EQ(b.summary.frees_of_unseen_address, 2U);
  EXPECT_EQ(b.gpu_allocated, 510U);
}

TEST(ReplayBook, AFreeBySizeWithNothingOfThatSizeTakesFromTheBaseline) {
  const Booked b = book_of({"baseline gpu:0 200", "alloc gpu:0 70", "free gpu:0 50"});
  EXPECT_EQ(b.released, (std::map<std::uint64_t, std::uint64_t>{{3, 1}}));
  EXPECT_EQ(b.parts, (std::set<std::uint64_t>{3}));
  EXPECT_EQ(b.gpu, (Lives{{1, 150, std::nullopt}, {2, 70, std::nullopt}}));
}

TEST(ReplayBook, AFreeOfARefusedAllocationReleasesNothing) {
  GpuConfig tight = small_config();
  tight.gpus[0].total_bytes = 400;
  ReplayOptions options;
  options.recorded_budgets = false;
  const Booked b =
      book_of({"alloc gpu:0 300 addr=0x1", "alloc gpu:0 200 addr=0x2", "alloc gpu:0 150",
               "alloc gpu:0 50", "free gpu:0 addr=0x2", "free gpu:0 150", "free gpu:0 50"},
              options, tight);
  EXPECT_EQ(b.summary.frees_of_refused, 2U);  // 0x2 and the 150: skipped, no step
  EXPECT_EQ(b.released, (std::map<std::uint64_t, std::uint64_t>{{7, 4}}));
  EXPECT_EQ(b.gpu, (Lives{{1, 300, 0x1}}));
}

TEST(ReplayBook, AutoPlacementFindsWhereAnAllocationWentByTheTracesDevice) {
  ReplayOptions options;
  options.placement = Placement::Auto;
  options.recorded_budgets = false;
  const Booked b =
      book_of({"alloc gpu:0 900", "alloc gpu:0 200", "alloc gpu:0 200", "free gpu:0 200"}, options);
  EXPECT_EQ(b.released, (std::map<std::uint64_t, std::uint64_t>{{4, 3}}));
  EXPECT_EQ(b.gpu, (Lives{{1, 900, std::nullopt}}));
  EXPECT_EQ(b.cpu, (Lives{{2, 200, std::nullopt}}));
}

TEST(ReplayBook, EachReplayStartsItsOwnBook) {
  auto replayer = Replayer::create(small_config(), {});
  ASSERT_TRUE(replayer);
  auto first = reader_of(std::string(small_node) + "alloc gpu:0 10 addr=0x1\nend 1\n");
  auto second = reader_of(std::string(small_node) + "alloc gpu:0 20\nend 1\n");
  ASSERT_TRUE(first && second);
  ASSERT_TRUE(replayer->replay(*first, {}));
  EXPECT_EQ(replayer->live(Gpu{0}), (Lives{{1, 10, 0x1}}));
  ASSERT_TRUE(replayer->replay(*second, {}));
  EXPECT_EQ(replayer->live(Gpu{0}), (Lives{{1, 20, std::nullopt}}));
  EXPECT_EQ(replayer->tracker().allocated(Gpu{0}), 30U);  // the tracker keeps both
}

// A recording without devices (an RMM log) replayed on no budget: the allocation it refused
// cannot be refused on limits no recording reaches; an outcome difference, not a failure.
TEST(ReplayBook, ARecordedRefusalOnUnknownBudgetsIsADifferenceNotAFailure) {
  GpuConfig unlimited;
  unlimited.memory_fraction = Fraction::of(1, 1).value();
  unlimited.cpu_memory_limit = UINT64_MAX / 3;
  unlimited.gpus.push_back({0, UINT64_MAX / 3});
  const Booked b = book_of({"alloc gpu:0 1024 addr=0x1", "alloc gpu:0 99999 result=OutOfMemory",
                            "free gpu:0 1024 addr=0x1"},
                           {}, unlimited, "memtrack-trace 1\nevents\n");
  EXPECT_FALSE(b.summary.failure) << b.summary.failure->to_string();
  EXPECT_EQ(b.summary.outcome_differences, 1U);
  EXPECT_EQ(b.gpu, (Lives{{2, 99999, std::nullopt}}));
  // With devices declared the same refusal must be reproduced: a failure.
  const Booked declared = book_of({"alloc gpu:0 99999 result=OutOfMemory"}, {}, unlimited);
  ASSERT_TRUE(declared.summary.failure);
  EXPECT_EQ(declared.summary.failure->kind, ReplayFailure::Kind::Outcome);
}

}  // namespace
}  // namespace memtrack::traces

namespace memtrack::traces {
namespace {

// The case where the report's own table (before the replayer kept the book) disagreed: a free of
// an address the recording never allocated takes from the baseline (memory from before the
// recording), not from an allocation of its size made without an address; and a free by size
// takes an allocation made without an address before one made with an address.
TEST(ReplayBook, UnseenAddressesTakeFromTheBaselineAndSizesFromTheAddresslessFirst) {
  const Booked b =
      book_of({"baseline gpu:0 500", "alloc gpu:0 100", "free gpu:0 100 addr=0xdead",
               "alloc gpu:0 100 addr=0xa", "alloc gpu:0 100 addr=0xb", "free gpu:0 100"});
  EXPECT_EQ(b.released, (std::map<std::uint64_t, std::uint64_t>{{3, 1}, {6, 2}}));
  EXPECT_EQ(b.parts, (std::set<std::uint64_t>{3}));
  EXPECT_EQ(b.gpu, (Lives{{1, 400, std::nullopt}, {4, 100, 0xa}, {5, 100, 0xb}}));
  EXPECT_EQ(b.gpu_allocated, 600U);
}

// Whatever the mix of frees by address and by size, addressed and address-less allocations and
// baselines, the bytes the book has alive on a device are what the tracker has allocated there.
RC_GTEST_PROP(ReplayBook, TheLiveBytesAreWhatTheTrackerHasAllocated, ()) {
  struct Made {
    std::string device;
    std::uint64_t bytes;
    std::optional<std::uint64_t> address;
  };
  std::vector<Made> live;  // what the generator believes alive
  std::vector<std::string> lines;
  std::uint64_t next_address = 0x1000;
  const auto steps = *rc::gen::inRange<std::size_t>(1, 400);
  for (std::size_t i = 0; i < steps; ++i) {
    const auto roll = *rc::gen::inRange(0, 10);
    if (roll == 0 && lines.size() < 5) {
      lines.push_back("baseline gpu:0 " + std::to_string(*rc::gen::inRange(1, 20)));
    } else if (roll < 5 || live.empty()) {
      if (live.size() >= 60) continue;
      Made made{*rc::gen::element<std::string>("gpu:0", "cpu"),
                static_cast<std::uint64_t>(*rc::gen::inRange(1, 5)), std::nullopt};
      std::string line = "alloc " + made.device + " " + std::to_string(made.bytes);
      if (*rc::gen::arbitrary<bool>()) {
        made.address = next_address++;
        std::ostringstream hex;
        hex << std::hex << *made.address;
        line += " addr=0x" + hex.str();
      }
      lines.push_back(line);
      live.push_back(made);
    } else {
      const auto pick = *rc::gen::inRange<std::size_t>(0, live.size());
      const Made made = live[pick];
      live.erase(live.begin() + static_cast<std::ptrdiff_t>(pick));
      if (made.address && *rc::gen::arbitrary<bool>()) {
        std::ostringstream hex;
        hex << std::hex << *made.address;
        lines.push_back("free " + made.device + " addr=0x" + hex.str());
      } else {
        lines.push_back("free " + made.device + " " + std::to_string(made.bytes));
      }
    }
  }
  const Booked b = book_of(lines);
  RC_ASSERT(!b.summary.failure);
  std::uint64_t gpu = 0;
  for (const LiveAllocation& l : b.gpu)
    gpu += l.bytes;
  std::uint64_t cpu = 0;
  for (const LiveAllocation& l : b.cpu)
    cpu += l.bytes;
  RC_ASSERT(gpu == b.gpu_allocated);
  RC_ASSERT(cpu == b.cpu_allocated);
}

}  // namespace
}  // namespace memtrack::traces

namespace memtrack::traces {
namespace {

TEST(ReplayBook, ACheckIsToldWithItsDeviceOnTheReplaysDevices) {
  auto reader = reader_of(
      "memtrack-trace 1\nmemory_fraction 1\ngpu 5 total=1000\nevents\nalloc gpu:5 7\n"
      "check gpu:5 allocated=7\ncheck cpu allocated=0\nend 3\n");
  ASSERT_TRUE(reader);
  ReplayOptions options;
  options.recorded_budgets = false;
  auto replayer = Replayer::create(small_config(), options);
  ASSERT_TRUE(replayer);
  std::vector<std::pair<std::uint64_t, DevicePlacement>> told;
  ASSERT_TRUE(
      replayer->replay(*reader, {{5, 0}}, {},
                       [&](std::uint64_t event, const TraceEvent& check, DevicePlacement device) {
                         EXPECT_EQ(check.kind, TraceEvent::Kind::Check);
                         told.emplace_back(event, device);
                       }));
  EXPECT_EQ(told,
            (std::vector<std::pair<std::uint64_t, DevicePlacement>>{{2, Gpu{0}}, {3, Cpu{}}}));
  EXPECT_EQ(replayer->live(Gpu{0}), (Lives{{1, 7, std::nullopt}}));
}

}  // namespace
}  // namespace memtrack::traces
