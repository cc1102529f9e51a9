// The allocator models on one generated event stream of 10,000,000 events (allocations of every
// size class on two streams, frees in random order, a bounded live set): the PyTorch caching
// allocator model against the exact model, events per second and their ratio in the same run.
#include "ratio_reporter.hpp"

#include <memtrack/sim/allocators/exact_model.hpp>
#include <memtrack/sim/allocators/pytorch_model.hpp>
#include <memtrack/units.hpp>

#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <vector>

namespace memtrack::bench {
namespace {

using namespace memtrack::sim::allocators;

constexpr std::size_t event_count = 10'000'000;
constexpr std::size_t live_limit = 4096;

/// One event, 16 bytes: an allocation of `value` bytes, or the free of live allocation
/// `value % live`.
struct Event {
  std::uint64_t value;
  std::uint32_t stream;
  bool allocate;
};

const std::vector<Event>& events() {
  static const std::vector<Event> stream = [] {
    std::mt19937_64 random(19);
    std::vector<Event> out;
    out.reserve(event_count);
    std::size_t live = 0;
    for (std::size_t i = 0; i < event_count; ++i) {
      const bool allocate = live == 0 || (live < live_limit && random() % 2 == 0);
      if (!allocate) {
        out.push_back(Event{random(), 0, false});
        --live;
        continue;
      }
      // Mostly activations and temporaries; some weights-sized blocks.
      const std::uint64_t kind = random() % 100;
      std::uint64_t bytes = 0;
      if (kind < 60) {
        bytes = 1 + random() % (1_MiB);
      } else if (kind < 90) {
        bytes = 1_MiB + random() % (9_MiB);
      } else {
        bytes = 10_MiB + random() % (190_MiB);
      }
      out.push_back(Event{bytes, static_cast<std::uint32_t>(random() % 2), true});
      ++live;
    }
    return out;
  }();
  return stream;
}

template <class Model>
void replay(benchmark::State& state, Model& model, std::vector<std::uint64_t>& live) {
  for (const Event& event : events()) {
    if (event.allocate) {
      const auto outcome = model.allocate(event.stream, event.value);
      if (const auto* placed = std::get_if<Allocation>(&outcome)) {
        live.push_back(placed->address);
      } else {
        state.SkipWithError("out of memory: the device is sized so that this never happens");
        return;
      }
    } else if (!live.empty()) {
      const std::size_t pick = event.value % live.size();
      if (!model.free(live[pick])) state.SkipWithError("a live allocation could not be freed");
      live[pick] = live.back();
      live.pop_back();
    }
  }
}

void BM_ExactModel(benchmark::State& state) {
  static_cast<void>(events());
  for (auto _ : state) {
    ExactModel model(1_TiB);
    std::vector<std::uint64_t> live;
    live.reserve(live_limit);
    replay(state, model, live);
    benchmark::DoNotOptimize(model.allocated());
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(event_count));
}
BENCHMARK(BM_ExactModel)->Unit(benchmark::kMillisecond);

void BM_PytorchModel(benchmark::State& state) {
  static_cast<void>(events());
  std::size_t blocks = 0;
  std::uint64_t reserved = 0;
  for (auto _ : state) {
    PytorchModel model(AllocatorSettings{}, DeviceLimits{1_TiB, 0});
    std::vector<std::uint64_t> live;
    live.reserve(live_limit);
    replay(state, model, live);
    blocks = model.block_count();
    reserved = model.reserved();
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(event_count));
  // Memory follows the blocks that exist (live ones and the cached pieces between them).
  state.counters["blocks_at_end"] = static_cast<double>(blocks);
  state.counters["reserved_GiB"] = static_cast<double>(reserved) / static_cast<double>(1_GiB);
}
BENCHMARK(BM_PytorchModel)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace memtrack::bench

int main(int argc, char** argv) {
  return memtrack::bench::run_with_ratios(argc, argv, {{"BM_PytorchModel", "BM_ExactModel", 3.0}});
}
