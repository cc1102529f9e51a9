// Replay under the pytorch allocator model (`Replayer` with `AllocatorModel::pytorch`): what the
// model reserves and refuses, what a device needs, and the recording's allocator truth verified
// (segment events, block addresses, layouts, an oom, reserved checkpoints), each difference named.
// The expected figures are worked out by hand from PyTorch's rules in the comments.
#include <memtrack/traces/replay.hpp>

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace memtrack::traces {
namespace {

constexpr std::uint64_t MiB = std::uint64_t{1} << 20U;

GpuConfig one_gpu(std::uint64_t total) {
  GpuConfig config;
  config.memory_fraction = Fraction::of(1, 1).value();
  config.gpus.push_back({.id = 0, .total_bytes = total});
  return config;
}

struct Replayed {
  ReplaySummary summary;
};

Replayed replay(const std::vector<std::string>& events, const GpuConfig& config,
                PytorchReplayOptions pytorch = {}, bool recorded_budgets = true) {
  std::string text = "memtrack-trace 1\nsource pytorch-snapshot test\nevents\n";
  for (const std::string& event : events)
    text += event + "\n";
  text += "end " + std::to_string(events.size()) + "\n";
  auto reader = TraceReader::from_source(memory_source(text, "test.trace"), "test.trace");
  EXPECT_TRUE(reader.has_value()) << reader.error().to_string();
  ReplayOptions options;
  options.lockstep = true;
  options.recorded_budgets = recorded_budgets;
  options.allocator = AllocatorModel::pytorch;
  options.pytorch = std::move(pytorch);
  auto replayer = Replayer::create(config, options);
  EXPECT_TRUE(replayer.has_value());
  auto done = replayer->replay(*reader, {});
  EXPECT_TRUE(done.has_value()) << done.error().to_string();
  return Replayed{replayer->summary()};
}

const ModelledDevice& gpu0(const Replayed& run) {
  return run.summary.modelled.at(DevicePlacement(Gpu{0}));
}

std::vector<std::string> with_truth() {
  return {
      "segment_alloc gpu:0 2097152 addr=0x7f0000000000 stream=0",
      "alloc gpu:0 1000 addr=0x7f0000000000 stream=0",  // a 1024-byte block at offset 0
      "alloc gpu:0 3000 addr=0x7f0000000400 stream=0",  // a 3072-byte block at offset 1024
      "free gpu:0 addr=0x7f0000000000",
      "layout gpu:0 check segments=1",
      "segment gpu:0 2097152 addr=0x7f0000000000 stream=0 pool=small blocks=3",
      "block gpu:0 1024 addr=0x7f0000000000 state=free",
      "block gpu:0 3072 addr=0x7f0000000400 state=allocated",
      "block gpu:0 2093056 addr=0x7f0000001000 state=free",
  };
}

TEST(ModelledReplay, SmallRequestsShareOneTwoMebibyteSegment) {
  const Replayed run = replay(with_truth(), one_gpu(1024 * MiB));
  ASSERT_FALSE(run.summary.failure) << run.summary.failure->to_string();
  const ModelledDevice& m = gpu0(run);
  EXPECT_EQ(m.reserved_peak, 2 * MiB);
  EXPECT_EQ(m.allocated_peak, 1024U + 3072U);  // block sizes, not the 4000 requested
  EXPECT_EQ(m.allocated_final, 3072U);
  EXPECT_EQ(m.reserved_final, 2 * MiB);
  EXPECT_EQ(m.reserved_needed, 2 * MiB);
  EXPECT_TRUE(m.verifying);
  EXPECT_EQ(m.addresses_verified, 2U);
  EXPECT_EQ(m.segment_events_verified, 1U);
  EXPECT_EQ(m.layout_segments_verified, 1U);
  EXPECT_EQ(m.layout_blocks_verified, 3U);
}

TEST(ModelledReplay, EachDifferenceFromTheRecordingFailsTheReplayAndIsNamed) {
  struct Case {
    std::size_t line;
    std::string replaced;
    std::string named;
  };
  const std::vector<Case> cases = {
      {2, "alloc gpu:0 3000 addr=0x7f0000000800 stream=0",
       "placed this allocation at 0x7f0000000800; the model at 0x7f0000000400"},
      {0, "segment_alloc gpu:0 20971520 addr=0x7f0000000000 stream=0",
       "obtains a new segment of 2097152 bytes"},
      {8, "block gpu:0 2093056 addr=0x7f0000001000 state=allocated",
       "recorded block 2 of the segment at 0x7f0000000000"},
      {5, "segment gpu:0 2097152 addr=0x7f0000000000 stream=1 pool=small blocks=3",
       "recorded 2097152 bytes, stream 1"},
  };
  for (const Case& c : cases) {
    auto events = with_truth();
    events[c.line] = c.replaced;
    const Replayed run = replay(events, one_gpu(1024 * MiB));
    ASSERT_TRUE(run.summary.failure) << c.replaced;
    EXPECT_EQ(run.summary.failure->kind, ReplayFailure::Kind::Allocator) << c.replaced;
    EXPECT_NE(run.summary.failure->what.find(c.named), std::string::npos)
        << c.replaced << ": " << run.summary.failure->what;
  }
}

TEST(ModelledReplay, ARecordedSegmentTheModelDoesNotMakeIsADifference) {
  auto events = with_truth();
  // A second segment recorded before the free: nothing in the model asks for it.
  events.insert(events.begin() + 3, "segment_alloc gpu:0 2097152 addr=0x7f0000200000 stream=0");
  const Replayed run = replay(events, one_gpu(1024 * MiB));
  ASSERT_TRUE(run.summary.failure);
  EXPECT_NE(run.summary.failure->what.find("not reproduced by the model"), std::string::npos)
      << run.summary.failure->what;
}

TEST(ModelledReplay, RecordedFreedSegmentsWithoutACauseAreAnEmptyCache) {
  const Replayed run = replay(
      {
          "segment_alloc gpu:0 2097152 addr=0x7f0000000000 stream=0",
          "alloc gpu:0 512 addr=0x7f0000000000 stream=0",
          "free gpu:0 addr=0x7f0000000000",
          "segment_free gpu:0 2097152 addr=0x7f0000000000 stream=0",  // torch.cuda.empty_cache()
          "segment_alloc gpu:0 2097152 addr=0x7f1000000000 stream=0",
          "alloc gpu:0 512 addr=0x7f1000000000 stream=0",
      },
      one_gpu(1024 * MiB));
  ASSERT_FALSE(run.summary.failure) << run.summary.failure->to_string();
  EXPECT_EQ(gpu0(run).segment_events_verified, 3U);
  EXPECT_EQ(gpu0(run).addresses_verified, 2U);
  EXPECT_EQ(gpu0(run).reserved_final, 2 * MiB);
}

// A start layout: the segment existed before the recording, with a baseline block in it.
TEST(ModelledReplay, AStartLayoutIsTheAllocatorsStartingState) {
  const Replayed run = replay(
      {
          "layout gpu:0 start segments=1 undetermined=1",
          "segment gpu:0 20971520 addr=0x7e0000000000 stream=0 pool=large blocks=2",
          "block gpu:0 4194304 addr=0x7e0000000000 state=allocated",
          "block gpu:0 16777216 addr=0x7e0000400000 state=free",
          "baseline gpu:0 4194304 addr=0x7e0000000000",
          "alloc gpu:0 6291456 addr=0x7e0000400000 stream=0",  // best fit: the cached block
          "free gpu:0 addr=0x7e0000000000",
      },
      one_gpu(1024 * MiB));
  ASSERT_FALSE(run.summary.failure) << run.summary.failure->to_string();
  const ModelledDevice& m = gpu0(run);
  EXPECT_EQ(m.reserved_peak, 20 * MiB);  // no new segment
  EXPECT_EQ(m.addresses_verified, 1U);
  EXPECT_EQ(m.start_blocks_undetermined, 1U);
  EXPECT_EQ(m.allocated_final, 6 * MiB);
}

// The capacity a recorded oom implies is 2 MiB reserved + 1 MiB free: 4 MiB is refused there.
TEST(ModelledReplay, ARecordedOomMustBeReproducedOnTheRecordingsCapacity) {
  PytorchReplayOptions own;
  own.recorded_capacity = true;
  own.limits[0] = sim::allocators::DeviceLimits{3 * MiB, 3 * MiB};
  auto events = with_truth();
  events.push_back("oom gpu:0 4194304 stream=0 device_free=1048576 reserved=2097152");
  const Replayed reproduced = replay(events, one_gpu(1024 * MiB), own);
  ASSERT_FALSE(reproduced.summary.failure) << reproduced.summary.failure->to_string();
  ASSERT_TRUE(reproduced.summary.first_recorded_oom);
  EXPECT_EQ(reproduced.summary.first_recorded_oom->reproduced, std::optional<bool>(true));
  EXPECT_EQ(reproduced.summary.recorded_ooms, 1U);

  own.limits[0] = sim::allocators::DeviceLimits{100 * MiB, 100 * MiB};
  const Replayed placed = replay(events, one_gpu(1024 * MiB), own);
  ASSERT_TRUE(placed.summary.failure);
  EXPECT_NE(placed.summary.failure->what.find("the recording ran out of memory allocating 4194304"),
            std::string::npos)
      << placed.summary.failure->what;

  // On another device's capacity a recorded oom is information, not a check.
  const Replayed elsewhere = replay(events, one_gpu(1024 * MiB));
  ASSERT_FALSE(elsewhere.summary.failure);
  EXPECT_FALSE(elsewhere.summary.first_recorded_oom->reproduced.has_value());
}

// Capacity 40 MiB: two 12 MiB requests take a 12 MiB segment each; freeing one caches it; a
// 30 MiB request finds no room (24 + 30 > 40), so the failure path gives the cached segment back
// (12 + 30 = 42 > 40 still): PyTorch's OutOfMemoryError. Without limit the device needs 54 MiB.
TEST(ModelledReplay, TheModelRefusesWhereTheCacheCannotHelp) {
  PytorchReplayOptions options;
  options.limits[0] = sim::allocators::DeviceLimits{40 * MiB, 40 * MiB};
  options.verify = false;
  ReplaySummary s = replay(
                        {
                            "alloc gpu:0 12582912 addr=0x1000 stream=0",
                            "alloc gpu:0 12582912 addr=0x2000 stream=0",
                            "free gpu:0 addr=0x1000",
                            "alloc gpu:0 31457280 addr=0x3000 stream=0",
                        },
                        one_gpu(1024 * MiB), options, false)
                        .summary;
  EXPECT_EQ(s.refused, 1U);
  ASSERT_TRUE(s.first_model_oom);
  EXPECT_EQ(s.first_model_oom->figures.requested, 30 * MiB);
  EXPECT_EQ(s.first_model_oom->figures.reserved, 12 * MiB);  // the cached segment released
  EXPECT_EQ(s.first_model_oom->figures.allocated, 12 * MiB);
  EXPECT_EQ(s.first_model_oom->at.event, 4U);
  const ModelledDevice& m = s.modelled.at(DevicePlacement(Gpu{0}));
  EXPECT_EQ(m.reserved_peak, 24 * MiB);
  EXPECT_EQ(m.reserved_needed, 54 * MiB);
  EXPECT_EQ(m.refused, 1U);
}

TEST(ModelledReplay, ReservedCheckpointsAreVerifiedWhereTheStartIsKnown) {
  const Replayed known =
      replay({"alloc gpu:0 512 addr=0x1000 stream=0", "check gpu:0 allocated=512 reserved=2097152"},
             one_gpu(1024 * MiB));
  ASSERT_FALSE(known.summary.failure) << known.summary.failure->to_string();
  EXPECT_EQ(gpu0(known).reserved_checks_verified, 1U);

  const Replayed wrong =
      replay({"alloc gpu:0 512 addr=0x1000 stream=0", "check gpu:0 allocated=512 reserved=4194304"},
             one_gpu(1024 * MiB));
  ASSERT_TRUE(wrong.summary.failure);
  EXPECT_EQ(wrong.summary.failure->kind, ReplayFailure::Kind::Checkpoint);

  // Memory from before the recording, no layout: the cache then is unknown.
  const Replayed midrun =
      replay({"baseline gpu:0 1048576 addr=0x9000", "alloc gpu:0 512 addr=0x1000 stream=0",
              "check gpu:0 allocated=1049088 reserved=8388608"},
             one_gpu(1024 * MiB));
  ASSERT_FALSE(midrun.summary.failure) << midrun.summary.failure->to_string();
  EXPECT_EQ(gpu0(midrun).reserved_checks_undetermined, 1U);
  EXPECT_EQ(gpu0(midrun).recorded_reserved_peak, 8 * MiB);
}

}  // namespace
}  // namespace memtrack::traces
