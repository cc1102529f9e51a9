/**
 * @file probe.hpp
 * @brief `memtrack probe`: measure a real device into a profile, or check a profile against one.
 *
 * The measuring is written against `ProbeBackend`, so the arithmetic (granularity from
 * `cudaMemGetInfo` deltas, a fresh context's cost, the profile written, the differences found) is
 * tested on a simulated device; `make_cuda_probe_backend()` is the real one in CUDA builds.
 */
#pragma once

#include <memtrack/result.hpp>
#include <memtrack/sim/profile.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace memtrack::recorder {

/// What a device says about itself.
struct DeviceIdentity {
  std::uint32_t index{0};
  std::string name;  ///< cudaDeviceProp::name
  std::string uuid;  ///< GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx
  int cc_major{0};
  int cc_minor{0};
  std::uint64_t total_global_mem{0};
};

/// `cudaMemGetInfo`.
struct MemInfo {
  std::uint64_t free{0};
  std::uint64_t total{0};
};

/// The software the measurement ran on.
struct VersionInfo {
  int driver_cuda{0};          ///< cudaDriverGetVersion: the CUDA version the driver supports
  int runtime{0};              ///< cudaRuntimeGetVersion
  std::string driver_release;  ///< e.g. 580.65.06, from /proc/driver/nvidia/version; may be empty
};

/// @return a CUDA version number as text: 13000 -> "13.0", 12080 -> "12.8"
[[nodiscard]] std::string cuda_version_text(int version);

/// A device to measure: the CUDA calls `probe_device` needs, and nothing else.
class ProbeBackend {
 public:
  virtual ~ProbeBackend() = default;
  [[nodiscard]] virtual Result<VersionInfo> versions() = 0;
  [[nodiscard]] virtual Result<std::uint32_t> device_count() = 0;
  [[nodiscard]] virtual Result<DeviceIdentity> identify(std::uint32_t device) = 0;
  /// Makes `device` current, creating its primary context (the state a program starts from).
  [[nodiscard]] virtual Result<void> use(std::uint32_t device) = 0;
  /// `cudaMemGetInfo` of the current device.
  [[nodiscard]] virtual Result<MemInfo> mem_info() = 0;
  /// Creates one more context on the current device, and destroys it with `destroy_context`.
  [[nodiscard]] virtual Result<void> create_context() = 0;
  [[nodiscard]] virtual Result<void> destroy_context() = 0;
  /// `cudaMalloc` on the current device; the returned handle goes to `release`.
  [[nodiscard]] virtual Result<std::uint64_t> allocate(std::uint64_t bytes) = 0;
  [[nodiscard]] virtual Result<void> release(std::uint64_t handle) = 0;
  /// `cuMemGetAllocationGranularity` (minimum) for the current device, where the driver has it.
  [[nodiscard]] virtual std::optional<std::uint64_t> vmm_granularity() = 0;
};

/// The real device, through the CUDA runtime; in a build without CUDA, an error saying so.
[[nodiscard]] Result<std::unique_ptr<ProbeBackend>> make_cuda_probe_backend();

/// Why the probed context cost is a minimum, in one line.
inline constexpr const char* context_minimum_note =
    "a minimum: a bare cuCtxCreate under lazy loading, before any module is loaded or a cuBLAS / "
    "NCCL handle exists; a program's context costs more";

/// One allocation and what it cost the device.
struct GranularitySample {
  std::uint64_t requested{0};
  std::uint64_t free_drop{0};  ///< cudaMemGetInfo free before minus after
};

/// The allocation sizes measured, 1 B to 1 GiB: both sides of every power of two that matters.
[[nodiscard]] std::vector<std::uint64_t> granularity_probe_sizes();

/**
 * @brief The allocation granularity the samples show: the greatest common divisor of the drops,
 * checked against every sample (a request of at least that size must cost exactly the request
 * rounded up to it; a smaller one, a multiple of it or nothing).
 * @return the granularity, or an error naming the sample that disagrees (another process
 * allocating during the measurement) or saying that no sample moved the free memory
 */
[[nodiscard]] Result<std::uint64_t> infer_granularity(
    const std::vector<GranularitySample>& samples);

/// Everything `memtrack probe` measures of one device.
struct ProbedDevice {
  DeviceIdentity identity;
  VersionInfo versions;
  std::uint64_t cuda_total{0};     ///< cudaMemGetInfo total
  std::uint64_t free_at_start{0};  ///< cudaMemGetInfo free once the primary context exists
  /// The free memory one more bare context took (median of 3): a minimum, see
  /// `context_minimum_note`.
  std::uint64_t context_bytes{0};
  std::uint64_t granularity{0};  ///< from `infer_granularity`
  std::optional<std::uint64_t> vmm_granularity;
  std::vector<GranularitySample> samples;
  std::string date;  ///< YYYY-MM-DD of the measurement
};

struct ProbeOptions {
  int attempts{3};  ///< granularity measurements tried before giving up on a noisy device
  /// Progress lines ("device 0: granularity..."), for a person waiting.
  std::function<void(const std::string&)> progress;
};

/// Measures one device.
[[nodiscard]] Result<ProbedDevice> probe_device(ProbeBackend& backend, std::uint32_t device,
                                                const ProbeOptions& options = {});

/// @return a profile name from a device name: "NVIDIA GeForce RTX 5090" -> "rtx5090"
[[nodiscard]] std::string profile_name_for(const std::string& device_name);

/// The measured device as a profile (every measured field marked `measured`, with its source).
[[nodiscard]] sim::DeviceProfile make_profile(const ProbedDevice& device, const std::string& name);

/// @return the profile file's text: `make_profile` and the measurement's comment lines
[[nodiscard]] std::string format_probed_profile(const ProbedDevice& device,
                                                const std::string& name);

/// One field a profile and a device disagree on, or agree on.
struct ProfileComparison {
  std::string field;
  std::string profile_value;  ///< empty when the profile lacks the field
  std::string provenance;     ///< the profile's: measured, published or estimated
  std::string device_value;
  bool agrees{false};
  std::string note;
};

/// @return every field of `profile` that can be checked against `device`, agreeing or not
[[nodiscard]] std::vector<ProfileComparison> compare_profile(const sim::DeviceProfile& profile,
                                                             const ProbedDevice& device);

}  // namespace memtrack::recorder
