#include <memtrack/gpu_config.hpp>

#include <algorithm>
#include <string>
#include <vector>

namespace memtrack {

std::uint64_t gpu_limit(const GpuSpec& gpu, const Fraction& default_fraction) noexcept {
  const Fraction& fraction = gpu.memory_fraction ? *gpu.memory_fraction : default_fraction;
  // fraction <= 1, so the quotient is at most total_bytes and always fits.
  const std::uint64_t share =
      *mul_div_floor(gpu.total_bytes, fraction.numerator(), fraction.denominator());
  return gpu.usable_bytes ? std::min(share, *gpu.usable_bytes) : share;
}

Result<void> validate(const GpuConfig& config) {
  std::vector<std::uint32_t> ids;
  ids.reserve(config.gpus.size());
  std::uint64_t limit_sum = config.cpu_memory_limit;
  for (const GpuSpec& gpu : config.gpus) {
    const DevicePlacement device = Gpu{gpu.id};
    if (std::find(ids.begin(), ids.end(), gpu.id) != ids.end()) {
      return Error::invalid_config("GPU id " + std::to_string(gpu.id) + " is configured twice",
                                   device);
    }
    ids.push_back(gpu.id);
    if (gpu.total_bytes == 0) return Error::invalid_config("total_bytes is 0", device);
    const std::uint64_t limit = gpu_limit(gpu, config.memory_fraction);
    const auto sum = checked_add(limit_sum, limit);
    if (!sum) {
      return Error::invalid_config("the sum of all device limits exceeds 2^64 - 1 bytes (" +
                                       std::to_string(limit_sum) + " before this GPU's limit of " +
                                       std::to_string(limit) + ")",
                                   device);
    }
    limit_sum = *sum;
  }
  return {};
}

}  // namespace memtrack
