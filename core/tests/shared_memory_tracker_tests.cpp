#include <memtrack/shared_memory_tracker.hpp>

#include <gtest/gtest.h>

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

// The races themselves (no window between check and record, per-device linearizability) are
// tested in proptests/concurrency_tests.cpp, which also runs under ThreadSanitizer.

}  // namespace
}  // namespace memtrack
