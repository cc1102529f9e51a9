// Both caching allocator models (the fast one and the reference) against layouts worked out by
// hand from PyTorch's rules, so that a misreading shared by the two still shows. The comment above
// each test is the hand computation.
#include <memtrack/sim/allocators/exact_model.hpp>
#include <memtrack/sim/allocators/pytorch_model.hpp>
#include <memtrack/sim/allocators/reference_pytorch_model.hpp>

#include <memtrack/units.hpp>

#include <gtest/gtest.h>

#include <memory>

namespace memtrack::sim::allocators {
namespace {

constexpr std::uint64_t base = SequentialAddressSource::default_base;

/// Records the segment events a model reports.
class RecordingSource : public SequentialAddressSource {
 public:
  void segment_event(const SegmentEvent& event) override { events.push_back(event); }
  std::vector<SegmentEvent> events;
};

AllocatorSettings settings_of(std::string_view text) {
  auto settings = AllocatorSettings::parse(text);
  EXPECT_TRUE(settings.has_value()) << (settings ? "" : settings.error().to_string());
  return settings.value_or(AllocatorSettings{});
}

class CachingAllocatorModel : public ::testing::TestWithParam<bool> {
 protected:
  std::unique_ptr<DeviceMemoryModel> make(std::string_view conf, std::uint64_t capacity,
                                          std::uint64_t device_total = 0) {
    const DeviceLimits limits{capacity, device_total};
    if (GetParam())
      return std::make_unique<ReferencePytorchModel>(settings_of(conf), limits, &source);
    return std::make_unique<PytorchModel>(settings_of(conf), limits, &source);
  }
  RecordingSource source;
};

Allocation allocation(const AllocateOutcome& outcome) {
  EXPECT_TRUE(std::holds_alternative<Allocation>(outcome))
      << std::get<OutOfMemory>(outcome).message(0);
  return std::holds_alternative<Allocation>(outcome) ? std::get<Allocation>(outcome) : Allocation{};
}

BlockInfo alloc_block(std::uint64_t offset, std::uint64_t size) {
  return {offset, size, BlockState::allocated};
}
BlockInfo free_block(std::uint64_t offset, std::uint64_t size) {
  return {offset, size, BlockState::free};
}
BlockInfo unmapped_block(std::uint64_t offset, std::uint64_t size) {
  return {offset, size, BlockState::unmapped};
}

// 1000 bytes -> 1024 (512-byte rounding), small pool, a 2 MiB segment split after it.
TEST_P(CachingAllocatorModel, SmallRequestSplitsATwoMebibyteSegment) {
  auto model = make("", 1_GiB);
  const Allocation a = allocation(model->allocate(0, 1000));
  EXPECT_EQ(a, (Allocation{base, 1024, 1000}));
  EXPECT_EQ(model->segments(),
            (std::vector<SegmentInfo>{{base,
                                       2_MiB,
                                       0,
                                       PoolKind::small,
                                       false,
                                       {alloc_block(0, 1024), free_block(1024, 2_MiB - 1024)}}}));
  EXPECT_EQ(model->allocated(), 1024U);
  EXPECT_EQ(model->reserved(), 2_MiB);
  EXPECT_EQ(model->largest_free_block(), 2_MiB - 1024);
  // 511 -> 512, 512 -> 512, 513 -> 1024: each the next block up.
  EXPECT_EQ(allocation(model->allocate(0, 511)), (Allocation{base + 1024, 512, 511}));
  EXPECT_EQ(allocation(model->allocate(0, 512)), (Allocation{base + 1536, 512, 512}));
  EXPECT_EQ(allocation(model->allocate(0, 513)), (Allocation{base + 2048, 1024, 513}));
}

// 1 MiB + 1 -> 1 MiB + 512: large pool, a 20 MiB segment, remainder 19 MiB - 512 > 1 MiB: split.
// 1 MiB exactly stays in the small pool.
TEST_P(CachingAllocatorModel, PoolBoundaryAtOneMebibyte) {
  auto model = make("", 1_GiB);
  EXPECT_EQ(allocation(model->allocate(0, 1_MiB)).size, 1_MiB);
  const Allocation large = allocation(model->allocate(0, 1_MiB + 1));
  const auto segments = model->segments();
  ASSERT_EQ(segments.size(), 2U);
  EXPECT_EQ(segments[0], (SegmentInfo{base,
                                      2_MiB,
                                      0,
                                      PoolKind::small,
                                      false,
                                      {alloc_block(0, 1_MiB), free_block(1_MiB, 1_MiB)}}));
  EXPECT_EQ(segments[1],
            (SegmentInfo{base + 2_MiB,
                         20_MiB,
                         0,
                         PoolKind::large,
                         false,
                         {alloc_block(0, 1_MiB + 512), free_block(1_MiB + 512, 19_MiB - 512)}}));
  EXPECT_EQ(large.address, base + 2_MiB);
}

// 10 MiB - 513 -> 10 MiB - 512 (< 10 MiB): a 20 MiB segment. 10 MiB - 1 -> 10 MiB, on another
// stream (on stream 0 it would take the cached 10 MiB + 512 tail, unsplit): a segment of its own,
// exactly 10 MiB. 19 MiB -> its own 20 MiB segment (rounded to 2 MiB); the 1 MiB left is
// not more than 1 MiB, so the block keeps all 20 MiB.
TEST_P(CachingAllocatorModel, SegmentSizesAtTenMebibytes) {
  auto model = make("", 1_GiB);
  static_cast<void>(allocation(model->allocate(0, 10_MiB - 513)));
  static_cast<void>(allocation(model->allocate(1, 10_MiB - 1)));
  const Allocation whole = allocation(model->allocate(0, 19_MiB));
  const auto segments = model->segments();
  ASSERT_EQ(segments.size(), 3U);
  EXPECT_EQ(segments[0].size, 20_MiB);
  EXPECT_EQ(segments[0].blocks, (std::vector<BlockInfo>{alloc_block(0, 10_MiB - 512),
                                                        free_block(10_MiB - 512, 10_MiB + 512)}));
  EXPECT_EQ(segments[1].size, 10_MiB);
  EXPECT_EQ(segments[1].blocks, (std::vector<BlockInfo>{alloc_block(0, 10_MiB)}));
  EXPECT_EQ(whole.size, 20_MiB);
  EXPECT_EQ(model->allocated(), 10_MiB - 512 + 10_MiB + 20_MiB);
  EXPECT_EQ(model->reserved(), 50_MiB);
}

// Freed blocks merge back, and serve only their own stream.
TEST_P(CachingAllocatorModel, FreedBlocksMergeAndStayOnTheirStream) {
  auto model = make("", 1_GiB);
  const Allocation a = allocation(model->allocate(0, 4_MiB));  // 20 MiB segment at base
  const Allocation b = allocation(model->allocate(0, 4_MiB));  // same segment, at +4 MiB
  EXPECT_EQ(b.address, base + 4_MiB);
  ASSERT_TRUE(model->free(a.address));
  ASSERT_TRUE(model->free(b.address));
  EXPECT_FALSE(model->free(b.address));
  EXPECT_EQ(model->segments()[0].blocks, (std::vector<BlockInfo>{free_block(0, 20_MiB)}));
  // Stream 1 cannot use stream 0's cache: a new segment after the first.
  EXPECT_EQ(allocation(model->allocate(1, 2_MiB)).address, base + 20_MiB);
  // Stream 0 reuses its own.
  EXPECT_EQ(allocation(model->allocate(0, 2_MiB)).address, base);
}

// Best fit: the smallest cached block that holds the request, lowest address among equals.
TEST_P(CachingAllocatorModel, BestFitBySizeThenAddress) {
  auto model = make("", 1_GiB);
  const Allocation big = allocation(model->allocate(0, 30_MiB));    // base, 30 MiB segment
  const Allocation small = allocation(model->allocate(0, 12_MiB));  // base + 30 MiB
  const Allocation same = allocation(model->allocate(0, 12_MiB));   // base + 42 MiB
  ASSERT_TRUE(model->free(big.address));
  ASSERT_TRUE(model->free(same.address));
  ASSERT_TRUE(model->free(small.address));
  EXPECT_EQ(allocation(model->allocate(0, 11_MiB)).address, small.address);
  EXPECT_EQ(allocation(model->allocate(0, 11_MiB)).address, same.address);
  EXPECT_EQ(allocation(model->allocate(0, 11_MiB)).address, big.address);
}

// Capacity 40 MiB: two 20 MiB segments, one freed (cached). 30 MiB does not fit beside 40 MiB
// reserved; the cached segment is released (segment_free) and 20 + 30 > 40 still: OOM, with the
// figures after the release.
TEST_P(CachingAllocatorModel, FailurePathReleasesTheCacheThenRefuses) {
  auto model = make("", 40_MiB, 80_MiB);
  const Allocation a = allocation(model->allocate(0, 20_MiB));
  static_cast<void>(allocation(model->allocate(0, 20_MiB)));
  ASSERT_TRUE(model->free(a.address));
  const auto outcome = model->allocate(0, 30_MiB);
  ASSERT_TRUE(std::holds_alternative<OutOfMemory>(outcome));
  const auto& oom = std::get<OutOfMemory>(outcome);
  EXPECT_EQ(oom,
            (OutOfMemory{30_MiB, 30_MiB, 30_MiB, 80_MiB, 20_MiB, std::nullopt, 20_MiB, 20_MiB}));
  EXPECT_EQ(oom.message(0),
            "CUDA out of memory. Tried to allocate 30.00 MiB. GPU 0 has a total capacity of 80.00 "
            "MiB of which 20.00 MiB is free. Of the allocated memory 20.00 MiB is allocated by "
            "PyTorch, and 0 bytes is reserved by PyTorch but unallocated. If reserved but "
            "unallocated memory is large try setting PYTORCH_CUDA_ALLOC_CONF=expandable_segments:"
            "True to avoid fragmentation.");
  EXPECT_EQ(source.events,
            (std::vector<SegmentEvent>{{SegmentEvent::Kind::alloc, base, 20_MiB, 0},
                                       {SegmentEvent::Kind::alloc, base + 20_MiB, 20_MiB, 0},
                                       {SegmentEvent::Kind::free, base, 20_MiB, 0}}));
  // 20 MiB fits exactly now.
  EXPECT_EQ(allocation(model->allocate(0, 20_MiB)).address, base + 40_MiB);
  EXPECT_EQ(model->reserved(), 40_MiB);
}

// max_split_size 21 MiB: a cached 40 MiB block is oversize. A 2 MiB request may not take it (new
// 20 MiB segment); 30 MiB may (40 < 30 + 20), unsplit; a cached 64 MiB block is refused to 22 MiB
// (64 >= 22 + 20).
TEST_P(CachingAllocatorModel, OversizeBlocksAreNotSplit) {
  auto model = make("max_split_size_mb:21", 1_GiB);
  const Allocation forty = allocation(model->allocate(0, 40_MiB));
  const Allocation sixty_four = allocation(model->allocate(0, 64_MiB));
  ASSERT_TRUE(model->free(forty.address));
  ASSERT_TRUE(model->free(sixty_four.address));
  EXPECT_EQ(allocation(model->allocate(0, 2_MiB)).address, base + 104_MiB);
  EXPECT_EQ(allocation(model->allocate(0, 30_MiB)), (Allocation{forty.address, 40_MiB, 30_MiB}));
  EXPECT_EQ(allocation(model->allocate(0, 22_MiB)).address, base + 124_MiB);
}

// With max_split_size set, a failed cudaMalloc first releases one cached oversize segment that is
// large enough (here the 40 MiB one, not the 2 MiB-used 20 MiB segment).
TEST_P(CachingAllocatorModel, FailurePathReleasesOneOversizeSegmentFirst) {
  auto model = make("max_split_size_mb:21", 100_MiB);
  const Allocation forty = allocation(model->allocate(0, 40_MiB));
  static_cast<void>(allocation(model->allocate(0, 2_MiB)));  // 20 MiB segment, 18 MiB cached
  const Allocation thirty = allocation(model->allocate(0, 30_MiB));
  ASSERT_TRUE(model->free(forty.address));
  ASSERT_TRUE(model->free(thirty.address));
  // 60 MiB: 90 + 60 > 100; release one oversize >= 60? none; the largest ones: 40 then 30 (70).
  const Allocation sixty = allocation(model->allocate(0, 60_MiB));
  EXPECT_EQ(model->reserved(), 80_MiB);
  EXPECT_EQ(sixty.address, base + 90_MiB);
  EXPECT_EQ(model->segments().size(), 2U);
}

// empty_cache gives back wholly free segments only.
TEST_P(CachingAllocatorModel, EmptyCacheKeepsSegmentsInUse) {
  auto model = make("", 1_GiB);
  const Allocation a = allocation(model->allocate(0, 4_MiB));
  static_cast<void>(allocation(model->allocate(0, 4_MiB)));
  const Allocation c = allocation(model->allocate(0, 30_MiB));
  ASSERT_TRUE(model->free(a.address));
  ASSERT_TRUE(model->free(c.address));
  model->empty_cache();
  EXPECT_EQ(model->reserved(), 20_MiB);
  EXPECT_EQ(model->segments(),
            (std::vector<SegmentInfo>{
                {base,
                 20_MiB,
                 0,
                 PoolKind::large,
                 false,
                 {free_block(0, 4_MiB), alloc_block(4_MiB, 4_MiB), free_block(8_MiB, 12_MiB)}}}));
}

// Expandable segments on a 100 MiB device: address space ceil(112.5 MiB / 20 MiB) = 6 pages of
// 20 MiB. 1 MiB + 1 maps one page and splits (remainder >= 512 with expandable segments).
// 30 MiB then starts in the free tail (19 MiB - 512) and maps one more page.
TEST_P(CachingAllocatorModel, ExpandableSegmentsMapPagesAndUnmapThemOnEmptyCache) {
  auto model = make("expandable_segments:True", 100_MiB);
  const Allocation a = allocation(model->allocate(0, 1_MiB + 1));
  EXPECT_EQ(a, (Allocation{base, 1_MiB + 512, 1_MiB + 1}));
  EXPECT_EQ(model->segments(), (std::vector<SegmentInfo>{{base,
                                                          120_MiB,
                                                          0,
                                                          PoolKind::large,
                                                          true,
                                                          {alloc_block(0, 1_MiB + 512),
                                                           free_block(1_MiB + 512, 19_MiB - 512),
                                                           unmapped_block(20_MiB, 100_MiB)}}}));
  const Allocation b = allocation(model->allocate(0, 30_MiB));
  EXPECT_EQ(b, (Allocation{base + 1_MiB + 512, 30_MiB, 30_MiB}));
  EXPECT_EQ(model->reserved(), 40_MiB);
  EXPECT_EQ(model->segments()[0].blocks,
            (std::vector<BlockInfo>{alloc_block(0, 1_MiB + 512), alloc_block(1_MiB + 512, 30_MiB),
                                    free_block(31_MiB + 512, 9_MiB - 512),
                                    unmapped_block(40_MiB, 80_MiB)}));
  ASSERT_TRUE(model->free(a.address));
  model->empty_cache();
  // The free first 1 MiB + 512 holds no whole page: it stays mapped.
  EXPECT_EQ(model->reserved(), 40_MiB);
  ASSERT_TRUE(model->free(b.address));
  model->empty_cache();
  EXPECT_EQ(model->reserved(), 0U);
  EXPECT_TRUE(model->segments().empty());
  EXPECT_EQ(source.events,
            (std::vector<SegmentEvent>{{SegmentEvent::Kind::map, base, 20_MiB, 0},
                                       {SegmentEvent::Kind::map, base + 20_MiB, 20_MiB, 0},
                                       {SegmentEvent::Kind::unmap, base, 40_MiB, 0}}));
}

// per_process_memory_fraction 1/2 of 100 MiB: 50 MiB allowed. 40 MiB fits; a 20 MiB segment more
// does not (60 > 50), though the device has room.
TEST_P(CachingAllocatorModel, MemoryFractionCapsReserved) {
  auto model = make("per_process_memory_fraction:0.5", 100_MiB);
  static_cast<void>(allocation(model->allocate(0, 40_MiB)));
  const auto outcome = model->allocate(0, 2_MiB);
  ASSERT_TRUE(std::holds_alternative<OutOfMemory>(outcome));
  const auto& oom = std::get<OutOfMemory>(outcome);
  EXPECT_EQ(oom.allowed, std::optional<std::uint64_t>(50_MiB));
  EXPECT_EQ(oom.segment_bytes, 20_MiB);
  EXPECT_NE(oom.message(1).find("GPU 1 has a total capacity of 100.00 MiB of which 60.00 MiB is "
                                "free. 50.00 MiB allowed; Of the allocated memory 40.00 MiB"),
            std::string::npos)
      << oom.message(1);
}

// Garbage collection, allowed 100 MiB, threshold 0.5 -> 50 MiB. Large-pool lookups: a (1), b (2),
// a freed (age base 2), c on stream 1 (3), b and c freed (base 3). The 40 MiB request is lookup 4:
// ages a 2, b 1, c 1, average 4/3: only a is released (30 MiB >= the 20 MiB excess).
TEST_P(CachingAllocatorModel, GarbageCollectionReleasesTheOldestCachedSegments) {
  auto model = make("per_process_memory_fraction:1,garbage_collection_threshold:0.5", 100_MiB);
  const Allocation a = allocation(model->allocate(0, 30_MiB));
  const Allocation b = allocation(model->allocate(0, 30_MiB));
  ASSERT_TRUE(model->free(a.address));
  const Allocation c = allocation(model->allocate(1, 10_MiB));
  ASSERT_TRUE(model->free(b.address));
  ASSERT_TRUE(model->free(c.address));
  const Allocation d = allocation(model->allocate(0, 40_MiB));
  EXPECT_EQ(d.address, base + 70_MiB);
  const auto segments = model->segments();
  ASSERT_EQ(segments.size(), 3U);
  EXPECT_EQ(segments[0].address, b.address);
  EXPECT_EQ(segments[1].address, c.address);
  EXPECT_EQ(model->reserved(), 80_MiB);
}

// Without garbage collection the same run keeps everything cached: 70 + 40 > 100, so the failure
// path releases all three cached segments.
TEST_P(CachingAllocatorModel, WithoutGarbageCollectionTheFailurePathReleasesAll) {
  auto model = make("", 100_MiB);
  const Allocation a = allocation(model->allocate(0, 30_MiB));
  const Allocation b = allocation(model->allocate(0, 30_MiB));
  ASSERT_TRUE(model->free(a.address));
  const Allocation c = allocation(model->allocate(1, 10_MiB));
  ASSERT_TRUE(model->free(b.address));
  ASSERT_TRUE(model->free(c.address));
  static_cast<void>(allocation(model->allocate(0, 40_MiB)));
  EXPECT_EQ(model->reserved(), 40_MiB);
}

// roundup_power2_divisions:4 -> 1 MiB + 1 rounds to 1.25 MiB, 3 MiB + 1 to 3.5 MiB; powers of two
// stay; 1500 (below 512 x 4) rounds to 1536 as usual.
TEST_P(CachingAllocatorModel, RoundupPowerTwoDivisions) {
  auto model = make("roundup_power2_divisions:4", 1_GiB);
  EXPECT_EQ(allocation(model->allocate(0, 1_MiB + 1)).size, 1_MiB + 256_KiB);
  EXPECT_EQ(allocation(model->allocate(0, 3_MiB + 1)).size, 3_MiB + 512_KiB);
  EXPECT_EQ(allocation(model->allocate(0, 4_MiB)).size, 4_MiB);
  EXPECT_EQ(allocation(model->allocate(0, 1500)).size, 1536U);
}

TEST_P(CachingAllocatorModel, ZeroBytesTakeNoBlockAndHugeRequestsAreRefused) {
  auto model = make("", 1_GiB);
  EXPECT_EQ(allocation(model->allocate(0, 0)), (Allocation{0, 0, 0}));
  EXPECT_TRUE(model->free(0));
  const auto outcome = model->allocate(0, UINT64_MAX - 100);
  ASSERT_TRUE(std::holds_alternative<OutOfMemory>(outcome));
  EXPECT_EQ(std::get<OutOfMemory>(outcome).rounded, UINT64_MAX);
  EXPECT_TRUE(model->segments().empty());
}

INSTANTIATE_TEST_SUITE_P(FastAndReference, CachingAllocatorModel, ::testing::Bool(),
                         [](const auto& param_info) {
                           return param_info.param ? "reference" : "fast";
                         });

TEST(ExactModel, CountsRequestedBytesAgainstTheCapacity) {
  ExactModel model(10_MiB);
  const Allocation a = allocation(model.allocate(0, 6_MiB));
  EXPECT_EQ(a, (Allocation{base, 6_MiB, 6_MiB}));
  const auto refused = model.allocate(0, 4_MiB + 1);
  ASSERT_TRUE(std::holds_alternative<OutOfMemory>(refused));
  EXPECT_EQ(std::get<OutOfMemory>(refused).device_free, 4_MiB);
  EXPECT_EQ(allocation(model.allocate(1, 4_MiB)).size, 4_MiB);
  EXPECT_EQ(model.reserved(), 10_MiB);
  ASSERT_TRUE(model.free(a.address));
  EXPECT_FALSE(model.free(a.address));
  EXPECT_EQ(model.allocated(), 4_MiB);
  EXPECT_EQ(model.segments().size(), 1U);
}

TEST(PytorchSize, PrintsLikeFormatSize) {
  EXPECT_EQ(format_pytorch_size(1024), "1024 bytes");
  EXPECT_EQ(format_pytorch_size(1025), "1.00 KiB");
  EXPECT_EQ(format_pytorch_size(1536), "1.50 KiB");
  EXPECT_EQ(format_pytorch_size(1152), "1.12 KiB");  // 1.125: a tie, to even
  EXPECT_EQ(format_pytorch_size(1408), "1.38 KiB");  // 1.375: a tie, to even
  EXPECT_EQ(format_pytorch_size(20_MiB), "20.00 MiB");
  EXPECT_EQ(format_pytorch_size(1_GiB), "1024.00 MiB");
  EXPECT_EQ(format_pytorch_size(3_GiB / 2), "1.50 GiB");
}

TEST(AllocatorSettings, ParsesPytorchSyntax) {
  const auto settings = AllocatorSettings::parse(
      "expandable_segments:True, max_split_size_mb:512,roundup_power2_divisions:4,"
      "garbage_collection_threshold:0.8");
  ASSERT_TRUE(settings.has_value()) << settings.error().to_string();
  EXPECT_TRUE(settings->expandable_segments);
  EXPECT_EQ(settings->max_split_size, 512_MiB);
  EXPECT_EQ(settings->roundup_power2_divisions[15], 4U);
  EXPECT_EQ(settings->garbage_collection_threshold, Fraction::of(4, 5).value());
  EXPECT_EQ(AllocatorSettings::parse(settings->to_string()).value(), *settings);
  EXPECT_EQ(AllocatorSettings::parse("").value(), AllocatorSettings{});
}

TEST(AllocatorSettings, RejectsWhatPytorchRejects) {
  const auto unknown = AllocatorSettings::parse("expandable_segments:True,max_split_size:512");
  ASSERT_FALSE(unknown.has_value());
  EXPECT_NE(unknown.error().to_string().find("unknown allocator setting 'max_split_size'"),
            std::string::npos)
      << unknown.error().to_string();
  for (const char* bad :
       {"max_split_size_mb:20", "roundup_power2_divisions:3", "garbage_collection_threshold:1",
        "expandable_segments:yes", "backend:cudaMallocAsync", "max_split_size_mb",
        "roundup_power2_divisions:[1:2]"}) {
    EXPECT_FALSE(AllocatorSettings::parse(bad).has_value()) << bad;
  }
}

}  // namespace
}  // namespace memtrack::sim::allocators

namespace memtrack::sim::allocators {
namespace {

// A restored state is the state: the same segments, and the next allocation lands where it would
// have in the original (the 4 MiB free hole at base + 4 MiB, by best fit).
TEST(PytorchModelRestore, RestoredStateBehavesAsTheOriginal) {
  PytorchModel original(AllocatorSettings{}, DeviceLimits{1_GiB, 0});
  // [0, 4) allocated, [4, 8) free, [8, 12) allocated, [12, 20) free.
  for (int i = 0; i < 3; ++i) {
    static_cast<void>(allocation(original.allocate(0, 4_MiB)));
  }
  ASSERT_TRUE(original.free(base + 4_MiB));
  PytorchModel restored(AllocatorSettings{}, DeviceLimits{1_GiB, 0});
  restored.restore(original.segments());
  EXPECT_EQ(restored.segments(), original.segments());
  EXPECT_EQ(restored.allocated(), 8_MiB);
  EXPECT_EQ(restored.reserved(), 20_MiB);
  EXPECT_EQ(allocation(restored.allocate(0, 3_MiB)).address, base + 4_MiB);
  EXPECT_TRUE(restored.free(base));
}

TEST(PytorchModelRestore, RefusesStatesPytorchCannotBeIn) {
  PytorchModel model(AllocatorSettings{}, DeviceLimits{1_GiB, 0});
  const auto refuse = [&](std::vector<BlockInfo> blocks, std::uint64_t size = 20_MiB) {
    EXPECT_THROW(
        model.restore({SegmentInfo{base, size, 0, PoolKind::large, false, std::move(blocks)}}),
        std::invalid_argument);
    EXPECT_TRUE(model.segments().empty());
  };
  refuse({free_block(0, 10_MiB)});                               // does not cover the segment
  refuse({free_block(0, 10_MiB), free_block(10_MiB, 10_MiB)});   // free neighbours unmerged
  refuse({alloc_block(0, 10_MiB), alloc_block(12_MiB, 8_MiB)});  // a hole
  refuse({unmapped_block(0, 20_MiB)});                           // unmapped, not expandable
  refuse({alloc_block(0, 2_GiB)}, 2_GiB);                        // beyond the capacity
}

}  // namespace
}  // namespace memtrack::sim::allocators
