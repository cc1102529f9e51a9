#include <memtrack/shared_memory_tracker.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace memtrack {
namespace {

SharedMemoryTracker make_shared_tracker(std::uint64_t gpu_bytes) {
  GpuConfig config{.gpus = {{.id = 0, .total_bytes = gpu_bytes}},
                   .memory_fraction = Fraction::parse("1").value(),
                   .cpu_memory_limit = 0};
  return SharedMemoryTracker(MemoryTracker::create(config).value());
}

TEST(SharedMemoryTracker, ForwardsEveryOperation) {
  auto shared = make_shared_tracker(100);
  EXPECT_TRUE(shared.can_allocate(Gpu{0}, 100));
  EXPECT_EQ(shared.allocate(Auto{}, 60).value(), DevicePlacement{Gpu{0}});
  EXPECT_EQ(shared.allocated(Gpu{0}), 60U);
  EXPECT_EQ(shared.available(Gpu{0}), 40U);
  EXPECT_EQ(shared.limit(Gpu{0}), 100U);
  EXPECT_EQ(shared.allocation_count(Gpu{0}), 1U);
  EXPECT_EQ(shared.allocate(Gpu{0}, 41).error(), Error::out_of_memory(Gpu{0}, 41, 40, 100));
  ASSERT_TRUE(shared.deallocate(Gpu{0}, 50));
  EXPECT_EQ(shared.peak(Gpu{0}), 60U);
  ASSERT_TRUE(shared.reset_peak(Gpu{0}));
  EXPECT_EQ(shared.peak(Gpu{0}), 10U);
  shared.reset_peak();
  EXPECT_EQ(shared.summary().total_peak, 10U);
  EXPECT_EQ(shared.gpu_info(0).value(), (GpuMemoryInfo{10, 10, 0}));
  EXPECT_EQ(shared.snapshot().allocated(Gpu{0}), 10U);
  EXPECT_EQ(shared.deallocate(Auto{}, 1).error().kind, ErrorKind::AmbiguousDevice);
}

// Many threads race for a device that holds exactly `slots` allocations. Because check and record
// are one step, the number of granted, not yet freed allocations never exceeds `slots`, and the
// tracker never reports more than its limit.
TEST(SharedMemoryTracker, NoRaceBetweenCheckAndRecord) {
  constexpr std::uint64_t block = 64;
  constexpr std::uint64_t slots = 3;
  auto shared = make_shared_tracker(block * slots);
  std::atomic<std::uint64_t> outstanding{0};
  std::atomic<std::uint64_t> worst{0};
  std::atomic<bool> over_limit{false};
  const unsigned threads = std::max(4U, std::thread::hardware_concurrency());
  std::vector<std::thread> workers;
  for (unsigned t = 0; t < threads; ++t) {
    workers.emplace_back([&] {
      for (int i = 0; i < 20000; ++i) {
        if (!shared.allocate(Gpu{0}, block)) continue;
        const std::uint64_t now = outstanding.fetch_add(1) + 1;
        std::uint64_t seen = worst.load();
        while (now > seen && !worst.compare_exchange_weak(seen, now)) {
        }
        if (shared.allocated(Gpu{0}) > block * slots) over_limit = true;
        outstanding.fetch_sub(1);
        ASSERT_TRUE(shared.deallocate(Gpu{0}, block));
      }
    });
  }
  for (auto& worker : workers)
    worker.join();
  EXPECT_LE(worst.load(), slots);
  EXPECT_FALSE(over_limit.load());
  EXPECT_EQ(shared.allocated(Gpu{0}), 0U);
  EXPECT_EQ(shared.peak(Gpu{0}), block * slots);
}

}  // namespace
}  // namespace memtrack
