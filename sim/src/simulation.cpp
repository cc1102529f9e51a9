#include <memtrack/sim/simulation.hpp>

namespace memtrack::sim {

std::uint64_t shard_seed(std::uint64_t seed, std::uint64_t index) {
  if (index == 0) return seed;  // shard 0 (or no sharding) runs the seed as given
  SplitMix64 mix(seed ^ (index * 0xD1B54A32D192ED03ULL));
  return mix.next();
}

}  // namespace memtrack::sim
