// Rules 1 and 2 of docs/semantics.md: limits computed exactly, invalid configs rejected.
#include <memtrack/gpu_config.hpp>
#include <memtrack/memory_tracker.hpp>

#include <gtest/gtest.h>

namespace memtrack {
namespace {

Fraction fraction(std::string_view text) {
  return Fraction::parse(text).value();
}

TEST(Rule1Limit, FloorOfTotalTimesFraction) {
  // 32 GiB x 9/10 = 30923764531.2 -> 30923764531.
  EXPECT_EQ(gpu_limit(GpuSpec{.id = 0, .total_bytes = 32_GiB}, fraction("0.9")), 30923764531ULL);
  // The RTX 5090's CUDA total x 0.9 = 30312411955.2 -> 30312411955.
  EXPECT_EQ(gpu_limit(GpuSpec{.id = 0, .total_bytes = 33680457728ULL}, fraction("0.9")),
            30312411955ULL);
  EXPECT_EQ(gpu_limit(GpuSpec{.id = 0, .total_bytes = 10}, fraction("0.95")), 9U);
}

TEST(Rule1Limit, ExactWhereADoubleProductRoundsWrong) {
  // 10^14 x 0.7: in double 69999999999999.99 floors to 69999999999999; exactly it is 7 x 10^13.
  EXPECT_EQ(gpu_limit(GpuSpec{.id = 0, .total_bytes = 100000000000000ULL}, fraction("0.7")),
            70000000000000ULL);
  // 2^53 x 0.9: in double the product rounds up to 8106479329266893; exactly it is
  // floor(8106479329266892.8) = 8106479329266892. A double would grant one byte too many.
  EXPECT_EQ(gpu_limit(GpuSpec{.id = 0, .total_bytes = 1ULL << 53U}, fraction("0.9")),
            8106479329266892ULL);
  // With the double 0.9 itself (exactly 8106479329266893 / 2^53) the exact product is its
  // numerator: the double's own value, taken exactly.
  EXPECT_EQ(gpu_limit(GpuSpec{.id = 0, .total_bytes = 1ULL << 53U}, Fraction(0.9)),
            8106479329266893ULL);
}

TEST(Rule1Limit, FractionOneWithTotalTwoToThe64MinusOne) {
  EXPECT_EQ(gpu_limit(GpuSpec{.id = 0, .total_bytes = max_bytes}, fraction("1")), max_bytes);
  EXPECT_EQ(gpu_limit(GpuSpec{.id = 0, .total_bytes = max_bytes}, fraction("0.9")),
            16602069666338596453ULL);
}

TEST(Rule1Limit, UsableCapAndPerGpuFraction) {
  // RTX 5090 with the default 24 GiB cap: min(30312411955, 25769803776).
  EXPECT_EQ(gpu_limit(GpuSpec{.id = 0, .total_bytes = 33680457728ULL, .usable_bytes = 24_GiB},
                      fraction("0.9")),
            24_GiB);
  // A cap above the fraction's share does not raise the limit.
  EXPECT_EQ(gpu_limit(GpuSpec{.id = 0, .total_bytes = 100, .usable_bytes = 95}, fraction("0.9")),
            90U);
  // The GPU's own fraction wins over the default.
  EXPECT_EQ(gpu_limit(GpuSpec{.id = 0, .total_bytes = 100, .memory_fraction = fraction("0.5")},
                      fraction("0.9")),
            50U);
  EXPECT_EQ(gpu_limit(GpuSpec{.id = 0, .total_bytes = 100, .usable_bytes = 0}, fraction("1")), 0U);
}

TEST(Rule1Limit, CpuLimitIsTheConfiguredValue) {
  GpuConfig config;
  EXPECT_EQ(config.cpu_memory_limit, 17179869184ULL);
  EXPECT_EQ(config.memory_fraction, fraction("0.9"));
  config.cpu_memory_limit = 12345;
  const auto tracker = MemoryTracker::create(config).value();
  EXPECT_EQ(tracker.limit(Cpu{}), 12345U);
}

TEST(Rule2Validation, RejectsDuplicateIds) {
  GpuConfig config{.gpus = {{.id = 3, .total_bytes = 1_GiB}, {.id = 3, .total_bytes = 2_GiB}}};
  const auto result = MemoryTracker::create(config);
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().kind, ErrorKind::InvalidConfig);
  EXPECT_EQ(result.error().device, DevicePlacement{Gpu{3}});
  EXPECT_EQ(result.error().to_string(), "invalid config: gpu:3: GPU id 3 is configured twice");
}

TEST(Rule2Validation, RejectsZeroTotal) {
  GpuConfig config{.gpus = {{.id = 0, .total_bytes = 1_GiB}, {.id = 7, .total_bytes = 0}}};
  const auto result = MemoryTracker::create(config);
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().device, DevicePlacement{Gpu{7}});
}

TEST(Rule2Validation, RejectsLimitsSummingPastTwoToThe64) {
  // cpu 1 + gpu (2^64 - 1) x 1 = 2^64: one byte too many.
  GpuConfig over{.gpus = {{.id = 0, .total_bytes = max_bytes}},
                 .memory_fraction = fraction("1"),
                 .cpu_memory_limit = 1};
  const auto result = MemoryTracker::create(over);
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().kind, ErrorKind::InvalidConfig);
  // Exactly 2^64 - 1 in total is accepted.
  GpuConfig exact{.gpus = {{.id = 0, .total_bytes = max_bytes}},
                  .memory_fraction = fraction("1"),
                  .cpu_memory_limit = 0};
  const auto tracker = MemoryTracker::create(exact);
  ASSERT_TRUE(tracker.has_value()) << tracker.error().to_string();
  EXPECT_EQ(tracker->limit(Auto{}), max_bytes);
  // The sum counts limits, not totals: two huge GPUs at half fit.
  GpuConfig halves{
      .gpus = {{.id = 0, .total_bytes = max_bytes}, {.id = 1, .total_bytes = max_bytes}},
      .memory_fraction = fraction("0.5"),
      .cpu_memory_limit = 1};
  EXPECT_TRUE(MemoryTracker::create(halves).has_value());
}

TEST(Rule2Validation, FractionsOutsideTheUnitIntervalCannotBeConfigured) {
  // Fraction enforces (0, 1] when it is made, so a config can never hold such a fraction.
  EXPECT_EQ(Fraction::parse("1.1").error().kind, ErrorKind::InvalidConfig);
  EXPECT_EQ(Fraction::parse("0").error().kind, ErrorKind::InvalidConfig);
  EXPECT_EQ(Fraction::from_double(-1.0).error().kind, ErrorKind::InvalidConfig);
}

}  // namespace
}  // namespace memtrack
