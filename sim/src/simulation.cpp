#include <memtrack/sim/simulation.hpp>

namespace memtrack::sim {

std::uint64_t shard_seed(std::uint64_t seed, std::uint64_t index) {
  if (index == 0) return seed;  // shard 0 (or no sharding) runs the seed as given
  SplitMix64 mix(seed ^ (index * 0xD1B54A32D192ED03ULL));
  return mix.next();
}

void SimulationResult::count(const Operation& operation, const CoreOutcome& outcome,
                             bool gpu_node) {
  if (outcome.ok) {
    ++ok;
    if (operation.device.is_auto() && gpu_node && outcome.resolved == DevicePlacement{Cpu{}}) {
      ++fallback_to_cpu;
    }
  } else if (outcome.error->kind == ErrorKind::OutOfMemory) {
    ++refused;
  } else {
    ++other_errors;
  }
}

}  // namespace memtrack::sim
