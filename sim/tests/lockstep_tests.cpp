#include <memtrack/sim/lockstep.hpp>

#include <gtest/gtest.h>

namespace memtrack::sim {
namespace {

Fraction fraction(std::string_view text) {
  return Fraction::parse(text).value();
}

GpuConfig two_gpus() {
  return GpuConfig{.gpus = {{.id = 0, .total_bytes = 100}, {.id = 3, .total_bytes = 300}},
                   .memory_fraction = fraction("1"),
                   .cpu_memory_limit = 50};
}

// A tracker with one planted bug, chosen per test, to show the checker catches each kind.
enum class Bug {
  None,
  CanAllocateOneOver,
  PeakNotRaised,
  CountWrapsBelowZero,
  WrongErrorNumber,
  SummaryStale,
  UnknownIsGpuZero,
  AvailableOneShort,   // a device in use says one byte less available than it has
  AutoAvailableOfCpu,  // available(auto) is the CPU's rather than the largest of any device
  AutoAllocatedStale,  // allocated(auto) stays 0
  AutoLimitOneShort,   // limit(auto) is one byte short of the sum of the limits
};
Bug planted = Bug::None;

class PlantedTracker {
 public:
  static Result<PlantedTracker> create(const GpuConfig& config) {
    auto inner = MemoryTracker::create(config);
    if (!inner) return inner.error();
    return PlantedTracker(std::move(*inner));
  }
  bool can_allocate(DevicePlacement p, std::uint64_t n) const {
    if (planted == Bug::CanAllocateOneOver && !p.is_auto() && n == inner_.available(p) + 1) {
      return true;
    }
    return inner_.can_allocate(p, n);
  }
  Result<DevicePlacement> allocate(DevicePlacement p, std::uint64_t n) {
    auto result = inner_.allocate(p, n);
    if (planted == Bug::WrongErrorNumber && !result &&
        result.error().kind == ErrorKind::OutOfMemory) {
      Error wrong = result.error();
      wrong.available_bytes += 1;
      return wrong;
    }
    return result;
  }
  Result<void> deallocate(DevicePlacement p, std::uint64_t n) {
    auto result = inner_.deallocate(p, n);
    if (result && planted == Bug::CountWrapsBelowZero && inner_.allocation_count(p) == 0) {
      wrapped_ = true;
    }
    return result;
  }
  void reset_peak() { inner_.reset_peak(); }
  Result<void> reset_peak(DevicePlacement p) { return inner_.reset_peak(p); }
  std::uint64_t available(DevicePlacement p) const {
    if (planted == Bug::AvailableOneShort && !p.is_auto() && inner_.allocated(p) > 0) {
      return inner_.available(p) - 1;
    }
    if (planted == Bug::AutoAvailableOfCpu && p.is_auto()) return inner_.available(Cpu{});
    return inner_.available(p);
  }
  std::uint64_t allocated(DevicePlacement p) const {
    if (planted == Bug::UnknownIsGpuZero && p.is_gpu() && inner_.limit(p) == 0) {
      return inner_.allocated(Gpu{0});
    }
    if (planted == Bug::AutoAllocatedStale && p.is_auto()) return 0;
    return inner_.allocated(p);
  }
  std::uint64_t peak(DevicePlacement p) const {
    if (planted == Bug::PeakNotRaised && p.is_gpu()) return 0;
    return inner_.peak(p);
  }
  std::uint64_t limit(DevicePlacement p) const {
    if (planted == Bug::AutoLimitOneShort && p.is_auto()) return inner_.limit(p) - 1;
    return inner_.limit(p);
  }
  std::uint64_t allocation_count(DevicePlacement p) const {
    if (wrapped_ && p.is_cpu()) return UINT64_MAX;
    return inner_.allocation_count(p);
  }
  MemorySummary summary() const {
    MemorySummary summary = inner_.summary();
    if (planted == Bug::SummaryStale) summary.cpu_available = inner_.limit(Cpu{});
    return summary;
  }
  Result<GpuMemoryInfo> gpu_info(std::uint32_t id) const { return inner_.gpu_info(id); }

 private:
  explicit PlantedTracker(MemoryTracker inner) : inner_(std::move(inner)) {}
  MemoryTracker inner_;
  bool wrapped_{false};
};

std::optional<Divergence> run_with(Bug bug, const std::vector<Operation>& operations) {
  planted = bug;
  auto start = LockstepChecker<PlantedTracker>::create(two_gpus());
  if (!start.checker) return start.divergence;
  for (const Operation& op : operations) {
    if (auto divergence = start.checker->apply(op)) return divergence;
  }
  return std::nullopt;
}

const std::vector<Operation> workload = {
    Operation::allocate(Gpu{0}, 60), Operation::allocate(Gpu{0}, 41),
    Operation::allocate(Cpu{}, 5),   Operation::deallocate(Cpu{}, 5),
    Operation::allocate(Cpu{}, 1),   Operation::deallocate(Gpu{0}, 60),
};

TEST(Lockstep, AgreesWithTheRealTracker) {
  EXPECT_EQ(run_with(Bug::None, workload), std::nullopt);
  auto start = LockstepChecker<>::create(two_gpus());
  ASSERT_TRUE(start.checker.has_value());
  for (const Operation& op : workload)
    ASSERT_EQ(start.checker->apply(op), std::nullopt);
  EXPECT_EQ(start.checker->steps(), workload.size());
}

TEST(Lockstep, CatchesEachPlantedBugAtTheRightStep) {
  const struct {
    Bug bug;
    std::size_t step;
    const char* mentions;
  } cases[] = {
      {Bug::CanAllocateOneOver, 0, "can_allocate"},
      {Bug::PeakNotRaised, 1, "gpu:0 peak"},
      {Bug::WrongErrorNumber, 2, "error available bytes differ"},
      {Bug::CountWrapsBelowZero, 4, "cpu count"},
      {Bug::SummaryStale, 3, "summary()"},
      {Bug::UnknownIsGpuZero, 1, "gpu:1 (unknown) allocated"},
      // gpu:0 holds 60 of its 100 bytes after step 1: available 40, said 39
      {Bug::AvailableOneShort, 1, "gpu:0 available: production 39, reference 40"},
      // from the start: the CPU's 50 bytes, where gpu:3's 300 are the largest
      {Bug::AutoAvailableOfCpu, 0, "auto available: production 50, reference 300"},
      {Bug::AutoAllocatedStale, 1, "auto allocated: production 0, reference 60"},
      // 100 + 300 + 50 bytes in all
      {Bug::AutoLimitOneShort, 0, "auto limit: production 449, reference 450"},
  };
  for (const auto& c : cases) {
    const auto divergence = run_with(c.bug, workload);
    ASSERT_TRUE(divergence.has_value()) << static_cast<int>(c.bug);
    EXPECT_EQ(divergence->step, c.step) << divergence->to_string();
    EXPECT_NE(divergence->what.find(c.mentions), std::string::npos) << divergence->to_string();
  }
}

TEST(Lockstep, ReportShowsStepOperationAndBothStates) {
  const auto divergence = run_with(Bug::PeakNotRaised, workload);
  ASSERT_TRUE(divergence.has_value());
  const std::string report = divergence->to_string();
  EXPECT_NE(report.find("divergence at step 1 (alloc gpu:0 60)"), std::string::npos) << report;
  EXPECT_NE(report.find("production"), std::string::npos);
  EXPECT_NE(report.find("|  reference"), std::string::npos) << report;
  EXPECT_NE(report.find("gpu:0: allocated 60, available 40, peak 0"), std::string::npos) << report;
  EXPECT_NE(report.find("gpu:0: allocated 60, available 40, peak 60"), std::string::npos) << report;
}

TEST(Lockstep, ConfigRejectionsAreCompared) {
  const GpuConfig duplicate{.gpus = {{.id = 1, .total_bytes = 5}, {.id = 1, .total_bytes = 5}}};
  const auto start = LockstepChecker<>::create(duplicate);
  EXPECT_FALSE(start.checker.has_value());
  EXPECT_FALSE(start.divergence.has_value());
  ASSERT_TRUE(start.rejection.has_value());
  EXPECT_EQ(start.rejection->kind, ErrorKind::InvalidConfig);
}

TEST(Lockstep, UnconfiguredGpuId) {
  EXPECT_EQ(unconfigured_gpu_id(two_gpus()), 1U);
  EXPECT_EQ(unconfigured_gpu_id(GpuConfig{}), 0U);
}

}  // namespace
}  // namespace memtrack::sim
