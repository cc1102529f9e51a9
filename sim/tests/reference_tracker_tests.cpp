// The reference model against values computed by hand, so that a misunderstanding shared by the
// model and the core still shows.
#include <memtrack/sim/reference_tracker.hpp>

#include <memtrack/units.hpp>

#include <gtest/gtest.h>

namespace memtrack::sim {
namespace {

Fraction fraction(std::string_view text) {
  return Fraction::parse(text).value();
}

ReferenceTracker model_of(const GpuConfig& config) {
  auto model = ReferenceTracker::create(config);
  EXPECT_TRUE(model.has_value());
  return *model;
}

TEST(ReferenceTracker, LimitsByHand) {
  // 32 GiB x 0.9 = 34359738368 x 9 / 10 = 30923764531.2 -> 30923764531.
  // 33680457728 x 0.9 = 30312411955.2, capped at 24 GiB = 25769803776.
  // 2^53 x 0.9 = 8106479329266892.8 -> 8106479329266892.
  const auto model = model_of(GpuConfig{
      .gpus = {{.id = 0, .total_bytes = 32_GiB},
               {.id = 1, .total_bytes = 33680457728ULL, .usable_bytes = 24_GiB},
               {.id = 5, .total_bytes = 1ULL << 53U},
               {.id = 6, .total_bytes = 1000, .memory_fraction = fraction("0.925")}},
  });
  EXPECT_EQ(model.limit(Gpu{0}), BigInt("30923764531"));
  EXPECT_EQ(model.limit(Gpu{1}), BigInt("25769803776"));
  EXPECT_EQ(model.limit(Gpu{5}), BigInt("8106479329266892"));
  EXPECT_EQ(model.limit(Gpu{6}), BigInt(925));
  EXPECT_EQ(model.limit(Cpu{}), BigInt("17179869184"));
}

TEST(ReferenceTracker, RejectsConfigsByHand) {
  ReferenceOutcome rejection;
  // (2^64 - 1) + 1 = 2^64 > 2^64 - 1.
  EXPECT_FALSE(ReferenceTracker::create(GpuConfig{.gpus = {{.id = 2, .total_bytes = max_bytes}},
                                                  .memory_fraction = fraction("1"),
                                                  .cpu_memory_limit = 1},
                                        &rejection));
  EXPECT_EQ(rejection.error_kind, ErrorKind::InvalidConfig);
  EXPECT_EQ(rejection.device, DevicePlacement{Gpu{2}});
  EXPECT_FALSE(ReferenceTracker::create(
      GpuConfig{.gpus = {{.id = 1, .total_bytes = 5}, {.id = 1, .total_bytes = 6}}}, &rejection));
  EXPECT_EQ(rejection.device, DevicePlacement{Gpu{1}});
  EXPECT_FALSE(ReferenceTracker::create(GpuConfig{.gpus = {{.id = 4, .total_bytes = 0}}}));
}

TEST(ReferenceTracker, AllocateAutoAndPeaksByHand) {
  // Limits: gpu:0 100, gpu:3 300, cpu 50.
  auto model =
      model_of(GpuConfig{.gpus = {{.id = 3, .total_bytes = 300}, {.id = 0, .total_bytes = 100}},
                         .memory_fraction = fraction("1"),
                         .cpu_memory_limit = 50});
  EXPECT_EQ(model.allocate(Auto{}, 100).resolved, DevicePlacement{Gpu{0}});
  EXPECT_EQ(model.allocate(Auto{}, 250).resolved, DevicePlacement{Gpu{3}});
  EXPECT_EQ(model.allocate(Auto{}, 51).resolved, std::nullopt);  // 0, 50, 50 available
  EXPECT_EQ(model.allocate(Auto{}, 50).resolved, DevicePlacement{Gpu{3}});
  EXPECT_EQ(model.allocate(Auto{}, 1).resolved, DevicePlacement{Cpu{}});
  // allocated: 100 + 300 + 1 = 401 = total_peak.
  EXPECT_EQ(model.allocated(Auto{}), BigInt(401));
  EXPECT_EQ(model.total_peak(), BigInt(401));
  EXPECT_TRUE(model.deallocate(Gpu{3}, 300).ok);
  // Peaks stay: gpu:3 300; total_peak 401.
  EXPECT_EQ(model.peak(Gpu{3}), BigInt(300));
  EXPECT_EQ(model.total_peak(), BigInt(401));
  model.reset_peak();
  EXPECT_EQ(model.peak(Gpu{3}), BigInt(0));
  EXPECT_EQ(model.total_peak(), BigInt(101));
}

TEST(ReferenceTracker, ErrorsCarryTheNumbersByHand) {
  auto model = model_of(GpuConfig{.gpus = {{.id = 0, .total_bytes = 100}},
                                  .memory_fraction = fraction("1"),
                                  .cpu_memory_limit = 10});
  ASSERT_TRUE(model.allocate(Gpu{0}, 60).ok);
  const auto oom = model.allocate(Gpu{0}, 41);
  EXPECT_FALSE(oom.ok);
  EXPECT_EQ(oom.error_kind, ErrorKind::OutOfMemory);
  EXPECT_EQ(oom.requested, BigInt(41));
  EXPECT_EQ(oom.available, BigInt(40));
  EXPECT_EQ(oom.limit, BigInt(100));
  const auto over = model.deallocate(Gpu{0}, 61);
  EXPECT_EQ(over.error_kind, ErrorKind::InvalidDeallocation);
  EXPECT_EQ(over.allocated, BigInt(60));
  EXPECT_EQ(model.deallocate(Auto{}, 1).error_kind, ErrorKind::AmbiguousDevice);
  EXPECT_EQ(model.deallocate(Gpu{9}, 1).error_kind, ErrorKind::UnknownDevice);
  EXPECT_FALSE(model.can_allocate(Gpu{9}, 0));
  EXPECT_TRUE(model.can_allocate(Auto{}, 40));
  EXPECT_FALSE(model.can_allocate(Auto{}, 41));
}

TEST(ReferenceTracker, SeesBeyondTwoToThe64) {
  auto model = model_of(GpuConfig{.gpus = {{.id = 0, .total_bytes = max_bytes}},
                                  .memory_fraction = fraction("1"),
                                  .cpu_memory_limit = 0});
  ASSERT_TRUE(model.allocate(Gpu{0}, max_bytes).ok);
  // A request the core must refuse: the model computes the would-be sum exactly.
  EXPECT_FALSE(model.can_allocate(Gpu{0}, BigInt(1)));
  EXPECT_EQ(model.allocated(Gpu{0}) + 1, max_u64() + 1);
}

}  // namespace
}  // namespace memtrack::sim
