/**
 * @file profile.hpp
 * @brief Device profiles (the .profile files in sim/profiles) and nodes built from them
 * (`2xrtx5090`).
 *
 * A profile file has one `key = value | provenance | source` line per field, where provenance
 * is `measured`, `published` or `estimated` and source says where the number comes from; `#`
 * starts a comment. `name` and `display_name` take a bare value.
 */
#pragma once

#include <memtrack/gpu_config.hpp>
#include <memtrack/result.hpp>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace memtrack::sim {

/// Where a profile's number comes from.
enum class Provenance : std::uint8_t { Measured, Published, Estimated };

[[nodiscard]] std::string_view to_string(Provenance provenance);

/// A value with its provenance and source.
template <class T>
struct Sourced {
  T value{};
  Provenance provenance{Provenance::Estimated};
  std::string source;

  friend bool operator==(const Sourced&, const Sourced&) = default;
};

/// One device model.
struct DeviceProfile {
  std::string name;          ///< short name, e.g. "rtx5090"
  std::string display_name;  ///< e.g. "NVIDIA GeForce RTX 5090"
  bool is_cpu{false};        ///< the CPU host profile: no GPU, only a CPU limit
  std::optional<Sourced<std::uint64_t>>
      cuda_total_bytes;  ///< totalGlobalMem / cudaMemGetInfo total
  std::optional<Sourced<std::uint64_t>> nvidia_smi_total_mib;
  std::optional<Sourced<std::string>> compute_capability;
  std::optional<Sourced<std::uint64_t>> memory_bandwidth_gbps;
  std::optional<Sourced<Fraction>> memory_fraction;
  std::optional<Sourced<std::uint64_t>> usable_bytes;
  std::optional<Sourced<std::uint64_t>> context_overhead_bytes;
  std::optional<Sourced<std::uint64_t>> allocation_granularity_bytes;
  std::optional<Sourced<std::uint64_t>> cpu_memory_limit_bytes;  ///< cpu profile only
  std::string file;                                              ///< where it was read from

  /// @return this GPU as a `GpuSpec` with the given id (its fraction and cap included)
  [[nodiscard]] GpuSpec gpu_spec(std::uint32_t id) const;
};

/**
 * @brief Parses a profile file's text.
 * @return the profile, or a `ParseError` of the form `FILE:LINE: what was expected`
 */
[[nodiscard]] Result<DeviceProfile> parse_profile(std::string_view text, std::string_view file);

/// Reads and parses a profile file (at most 1 MiB).
/**
 * @brief The profile in the `.profile` format, `parse_profile` reads back field for field (`file`
 * aside): `key = value | provenance | source`, one field a line, after `comment` lines (`# ` is
 * added). A `|` or line break inside a source becomes a blank.
 */
[[nodiscard]] std::string format_profile(const DeviceProfile& profile,
                                         const std::vector<std::string>& comment = {});

[[nodiscard]] Result<DeviceProfile> load_profile(const std::filesystem::path& path);

/// The folder of built-in profiles: `MEMTRACK_PROFILES_DIR` when set, else the installed or
/// source-tree `profiles` folder.
[[nodiscard]] std::filesystem::path profiles_dir();

/// Every built-in profile, sorted by name.
[[nodiscard]] Result<std::vector<DeviceProfile>> load_builtin_profiles();

/// A built-in profile by name, or a profile file by path (anything containing '/' or ending in
/// `.profile`).
[[nodiscard]] Result<DeviceProfile> find_profile(std::string_view name_or_path);

/// A node: the config to track, and the profile behind each GPU.
struct Node {
  GpuConfig config;
  std::vector<DeviceProfile> gpus;  ///< by GPU id 0, 1, ...
  std::string spec;                 ///< the spec it was made from
};

/**
 * @brief Builds a node from a spec: `rtx5090`, `2xrtx5090`, `rtx5090+rtx4090`, `2xh100-sxm+l4`,
 * `cpu`, or a profile file path in place of a name (`2x./my.profile`). GPUs are numbered 0, 1,
 * ... in the order given; `gpus`, when set, repeats a single-profile spec that many times.
 * @param cpu_memory_limit overrides the CPU limit (default: the cpu profile's, 16 GiB)
 */
[[nodiscard]] Result<Node> make_node(std::string_view spec, std::optional<std::uint32_t> gpus = {},
                                     std::optional<std::uint64_t> cpu_memory_limit = {});

}  // namespace memtrack::sim
