// Allocate+deallocate pairs on the production trackers, each beside a baseline measured in the
// same run, and the lockstep checker's throughput beside the production tracker alone.
#include "ratio_reporter.hpp"

#include <memtrack/memtrack.hpp>
#include <memtrack/sim/lockstep.hpp>
#include <memtrack/sim/profile.hpp>
#include <memtrack/sim/simulation.hpp>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <mutex>
#include <random>
#include <shared_mutex>

namespace memtrack::bench {
namespace {

GpuConfig two_gpu_config() {
  return GpuConfig{.gpus = {{.id = 0, .total_bytes = 32_GiB}, {.id = 1, .total_bytes = 24_GiB}}};
}

// Baseline: the bookkeeping itself on a plain struct — check against the limit, add, raise the
// peak, count; then subtract — with no API, no error values, no device lookup.
struct BareCounter {
  std::uint64_t limit = 28_GiB;
  std::uint64_t allocated = 0;
  std::uint64_t peak = 0;
  std::uint64_t count = 0;

  bool allocate(std::uint64_t n) {
    if (n > limit - allocated) return false;
    allocated += n;
    peak = std::max(peak, allocated);
    ++count;
    return true;
  }
  void deallocate(std::uint64_t n) {
    allocated -= n;
    --count;
  }
};

void BM_BareCounter(benchmark::State& state) {
  BareCounter counter;
  std::uint64_t n = 1_MiB;
  for (auto _ : state) {
    benchmark::DoNotOptimize(n);  // the size is not a compile-time constant for either side
    benchmark::DoNotOptimize(counter.allocate(n));
    counter.deallocate(n);
    benchmark::DoNotOptimize(counter);  // the counter's memory is really updated each iteration
  }
}
BENCHMARK(BM_BareCounter);

void BM_MemoryTracker(benchmark::State& state) {
  MemoryTracker tracker = MemoryTracker::create(two_gpu_config()).value();
  const DevicePlacement device = Gpu{1};
  std::uint64_t n = 1_MiB;
  for (auto _ : state) {
    benchmark::DoNotOptimize(n);
    auto placed = tracker.allocate(device, n);
    benchmark::DoNotOptimize(placed);
    auto freed = tracker.deallocate(device, n);
    benchmark::DoNotOptimize(freed);
  }
}
BENCHMARK(BM_MemoryTracker);

BareCounter shared_counter;
std::shared_mutex shared_counter_mutex;

void BM_BareCounterUnderSharedMutex(benchmark::State& state) {
  std::uint64_t n = 1_MiB;
  for (auto _ : state) {
    {
      const std::unique_lock lock(shared_counter_mutex);
      benchmark::DoNotOptimize(shared_counter.allocate(n));
    }
    {
      const std::unique_lock lock(shared_counter_mutex);
      shared_counter.deallocate(n);
    }
  }
}
BENCHMARK(BM_BareCounterUnderSharedMutex)->Threads(1)->Threads(2)->UseRealTime();

SharedMemoryTracker* shared_tracker = nullptr;

void BM_SharedMemoryTracker(benchmark::State& state) {
  if (state.thread_index() == 0) {
    shared_tracker = new SharedMemoryTracker(MemoryTracker::create(two_gpu_config()).value());
  }
  const DevicePlacement device = Gpu{1};
  std::uint64_t n = 1_MiB;
  for (auto _ : state) {
    auto placed = shared_tracker->allocate(device, n);
    benchmark::DoNotOptimize(placed);
    auto freed = shared_tracker->deallocate(device, n);
    benchmark::DoNotOptimize(freed);
  }
  if (state.thread_index() == 0) {
    delete shared_tracker;
    shared_tracker = nullptr;
  }
}
BENCHMARK(BM_SharedMemoryTracker)->Threads(1)->Threads(2)->UseRealTime();

// A deterministic mix of allocations and frees over two GPUs, the CPU and auto.
std::vector<sim::Operation> operation_mix(std::size_t count) {
  std::mt19937_64 random(42);
  std::vector<sim::Operation> operations;
  std::vector<std::pair<DevicePlacement, std::uint64_t>> live;
  const DevicePlacement devices[] = {Gpu{0}, Gpu{1}, Cpu{}, Auto{}};
  for (std::size_t i = 0; i < count; ++i) {
    if (live.empty() || random() % 2 == 0) {
      const std::uint64_t bytes = (random() % 4096 + 1) * 1_MiB;
      const DevicePlacement device = devices[random() % 4];
      operations.push_back(sim::Operation::allocate(device, bytes));
      live.emplace_back(device.is_auto() ? DevicePlacement{Gpu{0}} : device, bytes);
    } else {
      const std::size_t pick = random() % live.size();
      operations.push_back(sim::Operation::deallocate(live[pick].first, live[pick].second));
      live.erase(live.begin() + static_cast<std::ptrdiff_t>(pick));
    }
  }
  return operations;
}

void BM_ProductionOnly(benchmark::State& state) {
  const auto operations = operation_mix(4096);
  for (auto _ : state) {
    MemoryTracker tracker = MemoryTracker::create(two_gpu_config()).value();
    for (const auto& operation : operations) {
      auto outcome = sim::apply_to_core(tracker, operation);
      benchmark::DoNotOptimize(outcome);
    }
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(operations.size()));
}
BENCHMARK(BM_ProductionOnly);

void BM_Lockstep(benchmark::State& state) {
  const auto operations = operation_mix(4096);
  for (auto _ : state) {
    auto start = sim::LockstepChecker<>::create(two_gpu_config());
    for (const auto& operation : operations) {
      auto divergence = start.checker->apply(operation);
      if (divergence) state.SkipWithError(divergence->to_string().c_str());
    }
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(operations.size()));
}
BENCHMARK(BM_Lockstep);

// memtrack sim's engine: the registry workload on 2 x rtx5090, production tracker alone and in
// lockstep with the reference model.
void run_sim_benchmark(benchmark::State& state, bool lockstep) {
  const GpuConfig config = sim::make_node("2xrtx5090").value().config;
  sim::SimulationOptions options;
  options.operations = 50000;
  options.lockstep = lockstep;
  for (auto _ : state) {
    auto result = sim::run_simulation(config, options);
    if (!result || result->divergence) state.SkipWithError("simulation failed");
    benchmark::DoNotOptimize(result);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(options.operations));
}

void BM_SimProductionOnly(benchmark::State& state) {
  run_sim_benchmark(state, false);
}
BENCHMARK(BM_SimProductionOnly)->Unit(benchmark::kMillisecond);

void BM_SimLockstep(benchmark::State& state) {
  run_sim_benchmark(state, true);
}
BENCHMARK(BM_SimLockstep)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace memtrack::bench

int main(int argc, char** argv) {
  return memtrack::bench::run_with_ratios(
      argc, argv,
      {{"BM_MemoryTracker", "BM_BareCounter", 3.0},
       {"BM_SharedMemoryTracker/real_time/threads:1",
        "BM_BareCounterUnderSharedMutex/real_time/threads:1", 2.0},
       {"BM_SharedMemoryTracker/real_time/threads:2",
        "BM_BareCounterUnderSharedMutex/real_time/threads:2", 2.0},
       {"BM_Lockstep", "BM_ProductionOnly", 0},
       {"BM_SimLockstep", "BM_SimProductionOnly", 0}});
}
