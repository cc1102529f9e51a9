#include <memtrack/sim/profile.hpp>
#include <memtrack/sim/simulation.hpp>

#include <gtest/gtest.h>

namespace memtrack::sim {
namespace {

GpuConfig two_rtx5090() {
  return make_node("2xrtx5090").value().config;
}

std::vector<Operation> operations_of(std::string_view workload, std::uint64_t seed,
                                     std::uint64_t count) {
  // Drive the workload against a real tracker and record what it emits.
  auto tracker = MemoryTracker::create(two_rtx5090()).value();
  auto generator = make_workload(workload, seed).value();
  const TrackerViewOf<MemoryTracker> view(tracker, {Cpu{}, Gpu{0}, Gpu{1}});
  std::vector<Operation> operations;
  for (std::uint64_t i = 0; i < count; ++i) {
    const auto operation = generator->next(view);
    if (!operation) break;
    operations.push_back(*operation);
    generator->observe(*operation, apply_to_core(tracker, *operation));
  }
  return operations;
}

TEST(Workloads, SameSeedSameSequenceDifferentSeedDifferentSequence) {
  for (const auto name : workload_names()) {
    const auto first = operations_of(name, 7, 5000);
    EXPECT_EQ(first, operations_of(name, 7, 5000)) << name;
    if (name != "ramp") {
      EXPECT_NE(first, operations_of(name, 8, 5000)) << name;
    }
  }
}

TEST(Workloads, SplitMix64IsTheReferenceSequence) {
  // SplitMix64 from seed 0: the first outputs of the published reference implementation.
  SplitMix64 random(0);
  EXPECT_EQ(random.next(), 0xE220A8397B1DCDAFULL);
  EXPECT_EQ(random.next(), 0x6E789E6AA1B965F4ULL);
  EXPECT_EQ(random.next(), 0x06C45D188009454FULL);
  SplitMix64 bounded(42);
  for (int i = 0; i < 1000; ++i)
    EXPECT_LT(bounded.below(7), 7U);
}

TEST(Simulation, SameSeedSameResult) {
  SimulationOptions options;
  options.operations = 20000;
  options.seed = 5;
  const auto first = run_simulation(two_rtx5090(), options);
  const auto second = run_simulation(two_rtx5090(), options);
  ASSERT_TRUE(first.has_value());
  ASSERT_TRUE(second.has_value());
  EXPECT_FALSE(first->divergence.has_value());
  EXPECT_EQ(first->operations, 20000U);
  EXPECT_EQ(first->ok, second->ok);
  EXPECT_EQ(first->refused, second->refused);
  EXPECT_EQ(first->fallback_to_cpu, second->fallback_to_cpu);
  EXPECT_EQ(first->total_peak, second->total_peak);
  for (std::size_t i = 0; i < first->devices.size(); ++i) {
    EXPECT_EQ(first->devices[i].peak, second->devices[i].peak);
    EXPECT_EQ(first->devices[i].final_allocated, second->devices[i].final_allocated);
  }
  // The registry overflows a 2 x 24 GiB node: it must see refusals and CPU fallback.
  EXPECT_GT(first->refused, 0U);
  EXPECT_GT(first->fallback_to_cpu, 0U);
}

TEST(Simulation, RampFindsTheExactCapacity) {
  SimulationOptions options;
  options.workload = "ramp";
  const auto result = run_simulation(two_rtx5090(), options);
  ASSERT_TRUE(result.has_value());
  EXPECT_LT(result->operations, 1000U);  // it finishes on its own
  for (const DeviceStats& device : result->devices) {
    EXPECT_EQ(device.final_allocated, device.limit) << device.device.to_string();
  }
  EXPECT_EQ(result->devices[0].limit, 25769803776ULL);
}

// A tracker that is wrong once a GPU holds more than 20 GiB: it reports one byte less.
class WrongAbove20GiB {
 public:
  static Result<WrongAbove20GiB> create(const GpuConfig& config) {
    auto inner = MemoryTracker::create(config);
    if (!inner) return inner.error();
    return WrongAbove20GiB(std::move(*inner));
  }
  bool can_allocate(DevicePlacement p, std::uint64_t n) const { return inner_.can_allocate(p, n); }
  Result<DevicePlacement> allocate(DevicePlacement p, std::uint64_t n) {
    return inner_.allocate(p, n);
  }
  Result<void> deallocate(DevicePlacement p, std::uint64_t n) { return inner_.deallocate(p, n); }
  void reset_peak() { inner_.reset_peak(); }
  Result<void> reset_peak(DevicePlacement p) { return inner_.reset_peak(p); }
  std::uint64_t available(DevicePlacement p) const { return inner_.available(p); }
  std::uint64_t allocated(DevicePlacement p) const {
    const std::uint64_t value = inner_.allocated(p);
    return p.is_gpu() && value > (20ULL << 30U) ? value - 1 : value;
  }
  std::uint64_t peak(DevicePlacement p) const { return inner_.peak(p); }
  std::uint64_t limit(DevicePlacement p) const { return inner_.limit(p); }
  std::uint64_t allocation_count(DevicePlacement p) const { return inner_.allocation_count(p); }
  MemorySummary summary() const { return inner_.summary(); }
  Result<GpuMemoryInfo> gpu_info(std::uint32_t id) const { return inner_.gpu_info(id); }

 private:
  explicit WrongAbove20GiB(MemoryTracker inner) : inner_(std::move(inner)) {}
  MemoryTracker inner_;
};

TEST(Simulation, PlantedDivergenceIsFoundShrunkAndReplayable) {
  SimulationOptions options;
  options.operations = 100000;
  const auto result = run_simulation<WrongAbove20GiB>(two_rtx5090(), options);
  ASSERT_TRUE(result.has_value());
  ASSERT_TRUE(result->divergence.has_value());
  EXPECT_NE(result->divergence->what.find("allocated"), std::string::npos);
  ASSERT_TRUE(result->minimal.has_value());
  // A few allocations that together pass 20 GiB on one GPU are enough.
  std::string operations;
  for (const Operation& operation : result->minimal->operations)
    operations += operation.to_string() + "\n";
  EXPECT_LE(result->minimal->operations.size(), 5U) << operations;
  EXPECT_GE(result->minimal->operations.size(), 1U);
  // The minimal sequence still fails against the wrong tracker and passes against the real one.
  // (Written to a file it is a trace: proptests/regression_replay_tests.cpp replays those.)
  EXPECT_TRUE(run_scenario<WrongAbove20GiB>(*result->minimal).has_value());
  EXPECT_FALSE(run_scenario<MemoryTracker>(*result->minimal).has_value());
}

TEST(Simulation, ShardSeedsDiffer) {
  EXPECT_EQ(shard_seed(42, 0), 42U);
  EXPECT_NE(shard_seed(42, 1), shard_seed(42, 2));
  EXPECT_NE(shard_seed(42, 1), 42U);
  EXPECT_EQ(shard_seed(42, 3), shard_seed(42, 3));
}

}  // namespace
}  // namespace memtrack::sim
