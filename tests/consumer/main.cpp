// Uses the public API of memtrack::core and memtrack::sim; exits 0 when both agree.
#include <memtrack/memtrack.hpp>
#include <memtrack/sim/lockstep.hpp>

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
  return tracker.available(memtrack::Gpu{0}) == 0 ? 0 : 1;
}
