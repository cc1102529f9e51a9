// Rules 3-9 of docs/semantics.md, each at its boundary, and the seed's original checks.
#include <memtrack/memory_tracker.hpp>

#include <gtest/gtest.h>

namespace memtrack {
namespace {

Fraction fraction(std::string_view text) {
  return Fraction::parse(text).value();
}

/// Two GPUs with limits of exactly 1000 and 2000 bytes, and a 500-byte CPU.
MemoryTracker small_tracker() {
  GpuConfig config{.gpus = {{.id = 0, .total_bytes = 1000}, {.id = 1, .total_bytes = 2000}},
                   .memory_fraction = fraction("1"),
                   .cpu_memory_limit = 500};
  return MemoryTracker::create(config).value();
}

/// Sparse ids {0, 3, 7} with limits 100, 300, 700 and a 50-byte CPU.
MemoryTracker sparse_tracker() {
  GpuConfig config{.gpus = {{.id = 7, .total_bytes = 700},
                            {.id = 0, .total_bytes = 100},
                            {.id = 3, .total_bytes = 300}},
                   .memory_fraction = fraction("1"),
                   .cpu_memory_limit = 50};
  return MemoryTracker::create(config).value();
}

// --- The seed's checks -------------------------------------------------------------------------

TEST(Seed, CanAllocateFalsePastTheLimit) {
  auto tracker = small_tracker();
  EXPECT_TRUE(tracker.can_allocate(Gpu{0}, 1000));
  EXPECT_FALSE(tracker.can_allocate(Gpu{0}, 1001));
}

TEST(Seed, AllocateFailsOverBudget) {
  auto tracker = small_tracker();
  const auto result = tracker.allocate(Gpu{0}, 1001);
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error(), Error::out_of_memory(Gpu{0}, 1001, 1000, 1000));
}

TEST(Seed, DeallocateReduces) {
  auto tracker = small_tracker();
  ASSERT_TRUE(tracker.allocate(Gpu{1}, 700));
  ASSERT_TRUE(tracker.deallocate(Gpu{1}, 300));
  EXPECT_EQ(tracker.allocated(Gpu{1}), 400U);
}

TEST(Seed, AvailableIsLimitMinusAllocated) {
  auto tracker = small_tracker();
  ASSERT_TRUE(tracker.allocate(Gpu{1}, 123));
  EXPECT_EQ(tracker.available(Gpu{1}), 2000U - 123U);
  EXPECT_EQ(tracker.available(Gpu{1}), tracker.limit(Gpu{1}) - tracker.allocated(Gpu{1}));
}

TEST(Seed, GpusTrackedIndependently) {
  auto tracker = small_tracker();
  ASSERT_TRUE(tracker.allocate(Gpu{0}, 600));
  EXPECT_EQ(tracker.allocated(Gpu{1}), 0U);
  EXPECT_EQ(tracker.available(Gpu{1}), 2000U);
  EXPECT_EQ(tracker.peak(Gpu{1}), 0U);
  ASSERT_TRUE(tracker.allocate(Gpu{1}, 1500));
  EXPECT_EQ(tracker.allocated(Gpu{0}), 600U);
}

TEST(Seed, PeakIsExact) {
  auto tracker = small_tracker();
  ASSERT_TRUE(tracker.allocate(Gpu{0}, 300));
  ASSERT_TRUE(tracker.allocate(Gpu{0}, 401));
  ASSERT_TRUE(tracker.deallocate(Gpu{0}, 500));
  EXPECT_EQ(tracker.peak(Gpu{0}), 701U);
  EXPECT_EQ(tracker.allocated(Gpu{0}), 201U);
}

// --- Rule 3: unknown GPU ids ---------------------------------------------------------------------

TEST(Rule3UnknownGpu, QueriesAreZeroAndChangesFail) {
  auto tracker = sparse_tracker();
  const DevicePlacement unknown = Gpu{1};
  EXPECT_FALSE(tracker.can_allocate(unknown, 0));
  EXPECT_EQ(tracker.allocate(unknown, 0).error(), Error::unknown_device(unknown));
  EXPECT_EQ(tracker.deallocate(unknown, 0).error(), Error::unknown_device(unknown));
  EXPECT_EQ(tracker.reset_peak(unknown).error(), Error::unknown_device(unknown));
  EXPECT_EQ(tracker.gpu_info(1).error(), Error::unknown_device(unknown));
  EXPECT_EQ(tracker.available(unknown), 0U);
  EXPECT_EQ(tracker.allocated(unknown), 0U);
  EXPECT_EQ(tracker.peak(unknown), 0U);
}

TEST(Rule3UnknownGpu, NotTreatedAsGpuZero) {
  auto tracker = sparse_tracker();
  ASSERT_TRUE(tracker.allocate(Gpu{0}, 10));
  EXPECT_EQ(tracker.allocated(Gpu{4}), 0U);
  EXPECT_EQ(tracker.available(Gpu{UINT32_MAX}), 0U);
  EXPECT_EQ(tracker.allocated(Gpu{0}), 10U);
}

// --- Rule 4: allocate ---------------------------------------------------------------------------

TEST(Rule4Allocate, ExactlyAtTheLimitSucceedsOneByteOverFails) {
  auto tracker = small_tracker();
  ASSERT_TRUE(tracker.allocate(Gpu{0}, 400));
  EXPECT_EQ(tracker.allocate(Gpu{0}, 601).error(), Error::out_of_memory(Gpu{0}, 601, 600, 1000));
  EXPECT_EQ(tracker.allocate(Gpu{0}, 600).value(), DevicePlacement{Gpu{0}});
  EXPECT_EQ(tracker.available(Gpu{0}), 0U);
  EXPECT_EQ(tracker.allocate(Gpu{0}, 1).error(), Error::out_of_memory(Gpu{0}, 1, 0, 1000));
}

TEST(Rule4Allocate, ZeroBytesIsLegalAndCounted) {
  auto tracker = small_tracker();
  EXPECT_EQ(tracker.allocate(Cpu{}, 0).value(), DevicePlacement{Cpu{}});
  EXPECT_EQ(tracker.allocation_count(Cpu{}), 1U);
  EXPECT_EQ(tracker.allocated(Cpu{}), 0U);
  // Even on a full device.
  ASSERT_TRUE(tracker.allocate(Cpu{}, 500));
  EXPECT_TRUE(tracker.allocate(Cpu{}, 0).has_value());
}

TEST(Rule4Allocate, TwoToThe64MinusOneRefusedWithoutWrapping) {
  auto tracker = small_tracker();
  ASSERT_TRUE(tracker.allocate(Gpu{1}, 1));
  EXPECT_EQ(tracker.allocate(Gpu{1}, max_bytes).error(),
            Error::out_of_memory(Gpu{1}, max_bytes, 1999, 2000));
  // allocated + request would wrap to 0 in 64 bits: still refused.
  EXPECT_FALSE(tracker.allocate(Gpu{1}, max_bytes - 0).has_value());
  EXPECT_EQ(tracker.allocated(Gpu{1}), 1U);
}

TEST(Rule4Allocate, HugeDeviceNearTwoToThe64) {
  GpuConfig config{.gpus = {{.id = 0, .total_bytes = max_bytes}},
                   .memory_fraction = fraction("1"),
                   .cpu_memory_limit = 0};
  auto tracker = MemoryTracker::create(config).value();
  ASSERT_TRUE(tracker.allocate(Gpu{0}, max_bytes - 1));
  EXPECT_FALSE(tracker.allocate(Gpu{0}, 2).has_value());
  ASSERT_TRUE(tracker.allocate(Gpu{0}, 1));
  EXPECT_EQ(tracker.allocated(Gpu{0}), max_bytes);
  EXPECT_EQ(tracker.peak(Auto{}), max_bytes);
  EXPECT_EQ(tracker.allocated(Auto{}), max_bytes);
  EXPECT_EQ(tracker.available(Gpu{0}), 0U);
}

TEST(Rule4Allocate, AutoTakesTheLowestIdGpuWithRoom) {
  auto tracker = sparse_tracker();  // limits gpu:0 100, gpu:3 300, gpu:7 700, cpu 50
  EXPECT_EQ(tracker.allocate(Auto{}, 100).value(), DevicePlacement{Gpu{0}});
  EXPECT_EQ(tracker.allocate(Auto{}, 1).value(), DevicePlacement{Gpu{3}});
  EXPECT_EQ(tracker.allocate(Auto{}, 299).value(), DevicePlacement{Gpu{3}});
  EXPECT_EQ(tracker.allocate(Auto{}, 300).value(), DevicePlacement{Gpu{7}});
}

TEST(Rule4Allocate, AutoFallsThroughGpusToTheCpu) {
  auto tracker = sparse_tracker();
  ASSERT_TRUE(tracker.allocate(Gpu{7}, 690));
  ASSERT_TRUE(tracker.allocate(Gpu{3}, 290));
  ASSERT_TRUE(tracker.allocate(Gpu{0}, 90));
  // Every GPU has 10 left, the CPU 50.
  EXPECT_EQ(tracker.allocate(Auto{}, 11).value(), DevicePlacement{Cpu{}});
  EXPECT_EQ(tracker.allocated(Cpu{}), 11U);
  EXPECT_EQ(tracker.allocate(Auto{}, 10).value(), DevicePlacement{Gpu{0}});
}

TEST(Rule4Allocate, AutoWithNoGpusUsesTheCpu) {
  auto tracker = MemoryTracker::create(GpuConfig{.cpu_memory_limit = 8}).value();
  EXPECT_EQ(tracker.allocate(Auto{}, 8).value(), DevicePlacement{Cpu{}});
  EXPECT_EQ(tracker.allocate(Auto{}, 1).error(), Error::out_of_memory(Auto{}, 1, 0, 0));
}

TEST(Rule4Allocate, AutoOutOfMemoryReportsTheLargestAvailable) {
  auto tracker = sparse_tracker();
  const auto result = tracker.allocate(Auto{}, 701);
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error(), Error::out_of_memory(Auto{}, 701, 700, 0));
  EXPECT_EQ(tracker.allocated(Auto{}), 0U);
}

TEST(Rule4Allocate, PeakCountAndTotalPeakUpdate) {
  auto tracker = small_tracker();
  ASSERT_TRUE(tracker.allocate(Gpu{0}, 100));
  ASSERT_TRUE(tracker.allocate(Gpu{1}, 200));
  ASSERT_TRUE(tracker.deallocate(Gpu{0}, 100));
  ASSERT_TRUE(tracker.allocate(Gpu{1}, 50));
  EXPECT_EQ(tracker.peak(Gpu{0}), 100U);
  EXPECT_EQ(tracker.peak(Gpu{1}), 250U);
  // total_peak is the peak of the sum (300 after step 2), not the sum of peaks (350).
  EXPECT_EQ(tracker.peak(Auto{}), 300U);
  EXPECT_EQ(tracker.allocation_count(Gpu{1}), 2U);
  EXPECT_EQ(tracker.allocation_count(Gpu{0}), 0U);
  EXPECT_EQ(tracker.gpu_info(1).value(), (GpuMemoryInfo{250, 250, 2}));
}

// --- Rule 5: deallocate -------------------------------------------------------------------------

TEST(Rule5Deallocate, AutoIsAmbiguous) {
  auto tracker = small_tracker();
  ASSERT_TRUE(tracker.allocate(Gpu{0}, 10));
  EXPECT_EQ(tracker.deallocate(Auto{}, 10).error(), Error::ambiguous_device("deallocate"));
  EXPECT_EQ(tracker.reset_peak(Auto{}).error(), Error::ambiguous_device("reset_peak"));
  EXPECT_EQ(tracker.allocated(Gpu{0}), 10U);
}

TEST(Rule5Deallocate, OverDeallocationRefusedNotClamped) {
  auto tracker = small_tracker();
  ASSERT_TRUE(tracker.allocate(Gpu{0}, 100));
  EXPECT_EQ(tracker.deallocate(Gpu{0}, 101).error(), Error::invalid_deallocation(Gpu{0}, 101, 100));
  EXPECT_EQ(tracker.allocated(Gpu{0}), 100U);
  EXPECT_TRUE(tracker.deallocate(Gpu{0}, 100));
  EXPECT_EQ(tracker.allocated(Gpu{0}), 0U);
  EXPECT_EQ(tracker.deallocate(Gpu{0}, 1).error(), Error::invalid_deallocation(Gpu{0}, 1, 0));
}

TEST(Rule5Deallocate, CountSaturatesAtZeroAndPeaksStay) {
  auto tracker = small_tracker();
  ASSERT_TRUE(tracker.allocate(Cpu{}, 100));
  ASSERT_TRUE(tracker.deallocate(Cpu{}, 40));
  ASSERT_TRUE(tracker.deallocate(Cpu{}, 60));
  EXPECT_EQ(tracker.allocation_count(Cpu{}), 0U);
  ASSERT_TRUE(tracker.deallocate(Cpu{}, 0));
  EXPECT_EQ(tracker.allocation_count(Cpu{}), 0U);
  EXPECT_EQ(tracker.peak(Cpu{}), 100U);
  EXPECT_EQ(tracker.peak(Auto{}), 100U);
}

// --- Rule 6: failures change nothing ------------------------------------------------------------

TEST(Rule6FailuresChangeNothing, EveryFailingOperation) {
  auto tracker = sparse_tracker();
  ASSERT_TRUE(tracker.allocate(Gpu{3}, 30));
  ASSERT_TRUE(tracker.allocate(Cpu{}, 5));
  const MemorySummary before = tracker.summary();
  const auto count_before = tracker.allocation_count(Gpu{3});
  EXPECT_FALSE(tracker.allocate(Gpu{3}, 271).has_value());
  EXPECT_FALSE(tracker.allocate(Auto{}, 701).has_value());
  EXPECT_FALSE(tracker.allocate(Gpu{5}, 1).has_value());
  EXPECT_FALSE(tracker.deallocate(Gpu{3}, 31).has_value());
  EXPECT_FALSE(tracker.deallocate(Auto{}, 1).has_value());
  EXPECT_FALSE(tracker.reset_peak(Gpu{5}).has_value());
  EXPECT_EQ(tracker.summary(), before);
  EXPECT_EQ(tracker.allocation_count(Gpu{3}), count_before);
  EXPECT_EQ(tracker.peak(Gpu{3}), 30U);
}

// --- Rule 7: available, and the Auto pool view
// ----------------------------------------------------

TEST(Rule7Available, AutoIsThePoolView) {
  auto tracker = sparse_tracker();
  ASSERT_TRUE(tracker.allocate(Gpu{7}, 650));  // gpu:7 has 50 left; gpu:3 has 300.
  ASSERT_TRUE(tracker.allocate(Gpu{0}, 20));
  EXPECT_EQ(tracker.available(Auto{}), 300U);
  EXPECT_EQ(tracker.allocated(Auto{}), 670U);
  EXPECT_EQ(tracker.peak(Auto{}), 670U);
  EXPECT_TRUE(tracker.can_allocate(Auto{}, 300));
  EXPECT_FALSE(tracker.can_allocate(Auto{}, 301));
}

TEST(Rule7Available, CanAllocateIffAtMostAvailableForEveryPlacement) {
  auto tracker = sparse_tracker();
  ASSERT_TRUE(tracker.allocate(Gpu{3}, 123));
  for (const DevicePlacement p :
       {DevicePlacement{Cpu{}}, DevicePlacement{Gpu{0}}, DevicePlacement{Gpu{3}},
        DevicePlacement{Gpu{7}}, DevicePlacement{Auto{}}}) {
    const std::uint64_t available = tracker.available(p);
    EXPECT_TRUE(tracker.can_allocate(p, available)) << p.to_string();
    EXPECT_FALSE(tracker.can_allocate(p, available + 1)) << p.to_string();
    EXPECT_TRUE(tracker.can_allocate(p, 0)) << p.to_string();
  }
}

TEST(Rule7Available, SummaryMatchesQueries) {
  auto tracker = sparse_tracker();
  ASSERT_TRUE(tracker.allocate(Gpu{3}, 100));
  ASSERT_TRUE(tracker.allocate(Cpu{}, 7));
  const MemorySummary summary = tracker.summary();
  EXPECT_EQ(summary.gpu_allocated,
            (std::map<std::uint32_t, std::uint64_t>{{0, 0}, {3, 100}, {7, 0}}));
  EXPECT_EQ(summary.gpu_available,
            (std::map<std::uint32_t, std::uint64_t>{{0, 100}, {3, 200}, {7, 700}}));
  EXPECT_EQ(summary.cpu_allocated, 7U);
  EXPECT_EQ(summary.cpu_available, 43U);
  EXPECT_EQ(summary.total_peak, 107U);
}

// --- Rule 8: reset_peak --------------------------------------------------------------------------

TEST(Rule8ResetPeak, AfterADropResetsToCurrentNotZero) {
  auto tracker = small_tracker();
  ASSERT_TRUE(tracker.allocate(Gpu{0}, 800));
  ASSERT_TRUE(tracker.allocate(Gpu{1}, 100));
  ASSERT_TRUE(tracker.deallocate(Gpu{0}, 500));
  EXPECT_EQ(tracker.peak(Gpu{0}), 800U);
  tracker.reset_peak();
  EXPECT_EQ(tracker.peak(Gpu{0}), 300U);
  EXPECT_EQ(tracker.peak(Gpu{1}), 100U);
  EXPECT_EQ(tracker.peak(Auto{}), 400U);
}

TEST(Rule8ResetPeak, OneDeviceLeavesOthersAndTotalPeak) {
  auto tracker = small_tracker();
  ASSERT_TRUE(tracker.allocate(Gpu{0}, 800));
  ASSERT_TRUE(tracker.allocate(Gpu{1}, 900));
  ASSERT_TRUE(tracker.deallocate(Gpu{0}, 800));
  ASSERT_TRUE(tracker.deallocate(Gpu{1}, 400));
  ASSERT_TRUE(tracker.reset_peak(Gpu{0}));
  EXPECT_EQ(tracker.peak(Gpu{0}), 0U);
  EXPECT_EQ(tracker.peak(Gpu{1}), 900U);
  EXPECT_EQ(tracker.peak(Auto{}), 1700U);
  ASSERT_TRUE(tracker.reset_peak(Cpu{}));
  EXPECT_EQ(tracker.peak(Cpu{}), 0U);
}

// --- Rule 9: invariants --------------------------------------------------------------------------

void expect_invariants(const MemoryTracker& tracker) {
  std::uint64_t allocated_sum = 0;
  std::vector<DevicePlacement> devices{Cpu{}};
  for (const auto id : tracker.gpu_ids())
    devices.emplace_back(Gpu{id});
  for (const DevicePlacement d : devices) {
    EXPECT_LE(tracker.allocated(d), tracker.peak(d)) << d.to_string();
    EXPECT_LE(tracker.peak(d), tracker.limit(d)) << d.to_string();
    allocated_sum += tracker.allocated(d);
  }
  EXPECT_EQ(tracker.allocated(Auto{}), allocated_sum);
  EXPECT_LE(allocated_sum, tracker.peak(Auto{}));
  EXPECT_LE(tracker.peak(Auto{}), tracker.limit(Auto{}));
}

TEST(Rule9Invariants, HoldAfterEveryStepOfAMixedSequence) {
  auto tracker = sparse_tracker();
  expect_invariants(tracker);
  const std::uint64_t sizes[] = {0, 1, 50, 99, 100, 101, 299, 700, max_bytes};
  for (const std::uint64_t n : sizes) {
    for (const DevicePlacement p : {DevicePlacement{Auto{}}, DevicePlacement{Gpu{3}},
                                    DevicePlacement{Cpu{}}, DevicePlacement{Gpu{9}}}) {
      (void)tracker.allocate(p, n);
      expect_invariants(tracker);
      (void)tracker.deallocate(p, n / 2);
      expect_invariants(tracker);
    }
    tracker.reset_peak();
    expect_invariants(tracker);
  }
}

TEST(Rule9Invariants, AllocationCountSaturatesInsteadOfWrapping) {
  // Counting to 2^64 - 1 by allocating is impractical; the saturation at the bottom is tested in
  // Rule5Deallocate. Here: many zero-byte allocations keep counting monotonically.
  auto tracker = small_tracker();
  for (int i = 0; i < 1000; ++i)
    ASSERT_TRUE(tracker.allocate(Gpu{0}, 0));
  EXPECT_EQ(tracker.allocation_count(Gpu{0}), 1000U);
}

TEST(MemoryTracker, GpuIdsAreSortedAndConfigKept) {
  const auto tracker = sparse_tracker();
  EXPECT_EQ(tracker.gpu_ids(), (std::vector<std::uint32_t>{0, 3, 7}));
  EXPECT_EQ(tracker.config().cpu_memory_limit, 50U);
  EXPECT_EQ(tracker.limit(Gpu{3}), 300U);
  EXPECT_EQ(tracker.limit(Auto{}), 1150U);
}

// index_of is public: a replay keeps its per-device figures in the tracker's account order.
TEST(MemoryTracker, IndexOfIsTheAccountOrderGpusAscendingThenTheCpu) {
  constexpr std::size_t npos = MemoryTracker::npos;

  const auto dense = small_tracker();  // gpu:0, gpu:1, then the CPU
  EXPECT_EQ(dense.index_of(Gpu{0}), 0U);
  EXPECT_EQ(dense.index_of(Gpu{1}), 1U);
  EXPECT_EQ(dense.index_of(Cpu{}), 2U);
  EXPECT_EQ(dense.index_of(Gpu{2}), npos);  // one past the dense ids
  EXPECT_EQ(dense.index_of(Auto{}), npos);

  const auto sparse = sparse_tracker();  // configured as 7, 0, 3: kept as 0, 3, 7
  EXPECT_EQ(sparse.index_of(Gpu{0}), 0U);
  EXPECT_EQ(sparse.index_of(Gpu{3}), 1U);
  EXPECT_EQ(sparse.index_of(Gpu{7}), 2U);
  EXPECT_EQ(sparse.index_of(Cpu{}), 3U);
  for (const std::uint32_t missing : {1U, 2U, 4U, 8U, UINT32_MAX}) {
    EXPECT_EQ(sparse.index_of(Gpu{missing}), npos) << "gpu:" << missing;
  }
  EXPECT_EQ(sparse.index_of(Auto{}), npos);

  // A dense prefix, then a gap: gpu:1 sits at its own index, gpu:9 does not.
  GpuConfig gapped{.gpus = {{.id = 9, .total_bytes = 90},
                            {.id = 1, .total_bytes = 10},
                            {.id = 0, .total_bytes = 10}},
                   .memory_fraction = fraction("1"),
                   .cpu_memory_limit = 5};
  const auto prefix = MemoryTracker::create(gapped).value();
  EXPECT_EQ(prefix.index_of(Gpu{0}), 0U);
  EXPECT_EQ(prefix.index_of(Gpu{1}), 1U);
  EXPECT_EQ(prefix.index_of(Gpu{9}), 2U);
  EXPECT_EQ(prefix.index_of(Cpu{}), 3U);
  EXPECT_EQ(prefix.index_of(Gpu{2}), npos);

  const auto cpu_only =
      MemoryTracker::create(GpuConfig{.memory_fraction = fraction("1"), .cpu_memory_limit = 5})
          .value();
  EXPECT_EQ(cpu_only.index_of(Cpu{}), 0U);
  EXPECT_EQ(cpu_only.index_of(Gpu{0}), npos);
  EXPECT_EQ(cpu_only.index_of(Auto{}), npos);
}

}  // namespace
}  // namespace memtrack
