// Replay speed on a generated 10,000,000-event trace: a plain read of the same file (its lines,
// through the same decompressing reader: the floor), production-only replay and lockstep replay,
// with the growth of peak memory for a trace a tenth as long beside the full one (flat: memory
// follows live allocations, not the trace's length).
//
//   MEMTRACK_TRACE_EVENTS=1000000 build/release/bin/memtrack_trace_bench   a shorter trace
#include "ratio_reporter.hpp"
#include "report.hpp"

#include <memtrack/sim/workload.hpp>
#include <memtrack/traces/reader.hpp>
#include <memtrack/traces/replay.hpp>
#include <memtrack/traces/writer.hpp>

#include <benchmark/benchmark.h>

#include <unistd.h>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <unordered_map>
#include <vector>

namespace {

using namespace memtrack;
using namespace memtrack::traces;

std::uint64_t event_count() {
  const char* text = std::getenv("MEMTRACK_TRACE_EVENTS");
  return text != nullptr ? std::strtoull(text, nullptr, 10) : 10'000'000ULL;
}

GpuConfig bench_config() {
  GpuConfig config;
  config.gpus.push_back({0, 80ULL << 30U});
  config.gpus.push_back({1, 80ULL << 30U});
  return config;
}

/// Writes a trace of `events` events: allocations of 4 KiB to 16 MiB on two GPUs and the CPU,
/// at most 1024 live, freed by address (half of them without a size).
std::filesystem::path generate(std::uint64_t events) {
  const auto path =
      std::filesystem::temp_directory_path() /
      ("memtrack-bench-" + std::to_string(getpid()) + "-" + std::to_string(events) + ".trace");
  if (std::filesystem::exists(path)) return path;
  TraceHeader header;
  header.source = "memtrack_trace_bench synthetic";
  header.config = bench_config();
  auto writer = TraceWriter::create(path, header);
  sim::SplitMix64 random(42);
  std::vector<std::pair<std::uint64_t, TraceEvent>> live;
  std::uint64_t next_address = 0x7f0000000000ULL;
  for (std::uint64_t i = 0; i < events; ++i) {
    if (!live.empty() && (live.size() >= 1024 || random.below(2) == 0)) {
      const std::size_t pick = random.below(live.size());
      TraceEvent free = TraceEvent::free(live[pick].second.device, live[pick].second.bytes);
      free.address = live[pick].first;
      if (random.below(2) == 0) free.bytes.reset();
      live[pick] = live.back();
      live.pop_back();
      (void)writer->write(free);
      continue;
    }
    const std::uint64_t roll = random.below(10);
    const DevicePlacement device = roll < 4   ? DevicePlacement(Gpu{0})
                                   : roll < 8 ? DevicePlacement(Gpu{1})
                                              : DevicePlacement(Cpu{});
    TraceEvent alloc = TraceEvent::allocate(device, 4096ULL << random.below(13));
    alloc.address = next_address;
    next_address += 1ULL << 25U;
    live.emplace_back(*alloc.address, alloc);
    (void)writer->write(alloc);
  }
  (void)writer->finish();
  return path;
}

/// Peak resident memory since the last reset, in KiB.
std::uint64_t peak_rss_kib() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.starts_with("VmHWM:")) return std::strtoull(line.c_str() + 6, nullptr, 10);
  }
  return 0;
}
std::uint64_t rss_kib() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.starts_with("VmRSS:")) return std::strtoull(line.c_str() + 6, nullptr, 10);
  }
  return 0;
}
void reset_peak_rss() {
  std::ofstream("/proc/self/clear_refs") << "5";
}

void BM_PlainRead(benchmark::State& state) {
  const auto path = generate(static_cast<std::uint64_t>(state.range(0)));
  std::uint64_t lines = 0;
  for (auto _ : state) {
    auto reader = TraceReader::open(path);
    std::string_view line;
    for (auto more = reader->next_line(line); more && *more; more = reader->next_line(line)) {
      ++lines;
    }
    benchmark::DoNotOptimize(lines);
  }
  state.SetItemsProcessed(state.range(0) * state.iterations());
}

// Parsing every event, without replaying: where the time between the floor and a replay goes.
void BM_ReadEvents(benchmark::State& state) {
  const auto path = generate(static_cast<std::uint64_t>(state.range(0)));
  for (auto _ : state) {
    auto reader = TraceReader::open(path);
    TraceEvent event;
    std::uint64_t bytes = 0;
    for (auto more = reader->next(event); more && *more; more = reader->next(event)) {
      bytes += event.bytes.value_or(0);
    }
    benchmark::DoNotOptimize(bytes);
  }
  state.SetItemsProcessed(state.range(0) * state.iterations());
}

void replay(benchmark::State& state, bool lockstep) {
  const auto path = generate(static_cast<std::uint64_t>(state.range(0)));
  std::uint64_t growth = 0;
  for (auto _ : state) {
    reset_peak_rss();
    const std::uint64_t before = rss_kib();
    auto reader = TraceReader::open(path);
    auto replayer =
        Replayer::create(bench_config(), ReplayOptions{lockstep, Placement::Recorded, true});
    auto ok = replayer->replay(*reader, {});
    if (!ok || replayer->summary().failure ||
        replayer->summary().events != static_cast<std::uint64_t>(state.range(0))) {
      state.SkipWithError("the replay failed");
      return;
    }
    growth = peak_rss_kib() - before;
  }
  state.SetItemsProcessed(state.range(0) * state.iterations());
  state.counters["peak_growth_MiB"] = static_cast<double>(growth) / 1024.0;
}

void BM_ReplayProductionOnly(benchmark::State& state) {
  replay(state, false);
}
void BM_ReplayLockstep(benchmark::State& state) {
  replay(state, true);
}

/// memtrack report: two replays (the series; then, up to the last peak, what was alive at each
/// device's peak) and the HTML.
void BM_Report(benchmark::State& state) {
  const auto path = generate(static_cast<std::uint64_t>(state.range(0)));
  std::size_t bytes = 0;
  for (auto _ : state) {
    memtrack::cli::report::ReportOptions options;
    options.file = path.string();
    auto built = memtrack::cli::report::build_report(options);
    if (!built) {
      state.SkipWithError(built.error().to_string().c_str());
      return;
    }
    bytes = memtrack::cli::report::render_html(*built).size();
  }
  state.SetItemsProcessed(state.range(0) * state.iterations());
  state.counters["html_MiB"] = static_cast<double>(bytes) / (1024.0 * 1024.0);
}

const auto events = static_cast<std::int64_t>(event_count());
BENCHMARK(BM_PlainRead)->Arg(events)->Iterations(1)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ReadEvents)->Arg(events)->Iterations(1)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ReplayProductionOnly)
    ->Arg(events / 10)
    ->Arg(events)
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ReplayLockstep)->Arg(events)->Iterations(1)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Report)->Arg(events)->Iterations(1)->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) {
  const std::string n = std::to_string(events);
  std::cout << "generating a " << n << "-event trace (once; in the temporary folder)...\n";
  const int code = memtrack::bench::run_with_ratios(
      argc, argv,
      {{"BM_ReadEvents/" + n + "/iterations:1", "BM_PlainRead/" + n + "/iterations:1", 0},
       {"BM_ReplayProductionOnly/" + n + "/iterations:1", "BM_PlainRead/" + n + "/iterations:1",
        3.0},
       {"BM_ReplayLockstep/" + n + "/iterations:1", "BM_PlainRead/" + n + "/iterations:1", 0},
       // a report replays twice (the second up to the last peak) and draws: within 3x of one
       // production-only replay
       {"BM_Report/" + n + "/iterations:1", "BM_ReplayProductionOnly/" + n + "/iterations:1",
        3.0}});
  for (const auto& entry :
       std::filesystem::directory_iterator(std::filesystem::temp_directory_path())) {
    const std::string name = entry.path().filename().string();
    if (name.starts_with("memtrack-bench-" + std::to_string(getpid()) + "-")) {
      std::filesystem::remove(entry.path());
    }
  }
  return code;
}
