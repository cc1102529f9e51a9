// Uses the public API of memtrack::core, memtrack::sim and memtrack::traces; exits 0 when the
// production tracker and the model agree and a recorded trace reads back.
#include <memtrack/memtrack.hpp>
#include <memtrack/sim/lockstep.hpp>
#include <memtrack/traces/reader.hpp>
#include <memtrack/traces/recorder.hpp>

#include <filesystem>
#include <iostream>

int main() {
  using namespace memtrack::literals;
  memtrack::GpuConfig config;
  config.gpus.push_back(
      {.id = 0, .total_bytes = 32_GiB, .usable_bytes = 24_GiB, .name = "RTX 5090"});
  auto start = memtrack::sim::LockstepChecker<>::create(config);
  if (!start.checker) return 1;
  if (auto divergence =
          start.checker->apply(memtrack::sim::Operation::allocate(memtrack::Auto{}, 24_GiB))) {
    std::cerr << divergence->to_string();
    return 1;
  }
  const auto& tracker = start.checker->core();
  std::cout << "gpu:0 allocated " << tracker.allocated(memtrack::Gpu{0}) << " of "
            << tracker.limit(memtrack::Gpu{0}) << "\n";
  if (tracker.available(memtrack::Gpu{0}) != 0) return 1;

  // Record two operations and read them back.
  const auto path = std::filesystem::temp_directory_path() / "memtrack-consumer.trace.zst";
  auto recorder = memtrack::traces::TraceRecorder::create(path, config, "consumer");
  auto production = memtrack::MemoryTracker::create(config);
  if (!recorder || !production) return 1;
  production->set_observer(recorder->get());
  (void)production->allocate(memtrack::Gpu{0}, 1_GiB);
  (void)production->deallocate(memtrack::Gpu{0}, 1_GiB);
  production->set_observer(nullptr);
  if (!(*recorder)->finish()) return 1;
  auto reader = memtrack::traces::TraceReader::open(path);
  if (!reader) return 1;
  memtrack::traces::TraceEvent event;
  int events = 0;
  for (auto more = reader->next(event); more && *more; more = reader->next(event))
    ++events;
  std::filesystem::remove(path);
  std::cout << "recorded and read back " << events << " events\n";
  return events == 2 ? 0 : 1;
}
