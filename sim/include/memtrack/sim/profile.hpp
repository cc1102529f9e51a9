/**
 * @file profile.hpp
 * @brief Device profiles (the .profile files in sim/profiles) and nodes built from them
 * (`2xrtx5090`).
 *
 * A profile file has one `key = value | provenance | source` line per field, where provenance
 * is `measured`, `published` or `estimated` and source says where the number comes from; `#`
 * starts a comment. `name`, `display_name`, `kind` and `cuda_total_driver` take a bare value.
 * A key may appear once. The CUDA total varies with the driver: `cuda_total_driver` names the
 * driver its figure was seen under, `cuda_total_precision_bytes` says it is known only to ± that
 * many bytes (a figure printed in whole MiB), and `cuda_total_variants` lists the other figures
 * seen, `BYTES [~ PRECISION] @ DRIVER` separated by `;`. The format is in docs/profiles.md.
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

/// One figure seen for a device's CUDA total, with what it was seen under.
struct TotalFigure {
  std::uint64_t bytes{0};            ///< totalGlobalMem / cudaMemGetInfo total
  std::uint64_t precision_bytes{0};  ///< known to ± this many bytes; 0: to the byte
  std::string driver;                ///< e.g. "driver 550.127.05", "CUDA 13.0 driver"

  friend bool operator==(const TotalFigure&, const TotalFigure&) = default;
};

/// One device model.
struct DeviceProfile {
  std::string name;          ///< short name, e.g. "rtx5090"
  std::string display_name;  ///< e.g. "NVIDIA GeForce RTX 5090"
  bool is_cpu{false};        ///< the CPU host profile: no GPU, only a CPU limit
  std::optional<Sourced<std::uint64_t>>
      cuda_total_bytes;           ///< totalGlobalMem / cudaMemGetInfo total
  std::string cuda_total_driver;  ///< the driver `cuda_total_bytes` was seen under; may be empty
  /// `cuda_total_bytes` is known only to ± this many bytes (absent: to the byte)
  std::optional<Sourced<std::uint64_t>> cuda_total_precision_bytes;
  /// the other CUDA totals seen for this model, under other drivers or systems
  std::optional<Sourced<std::vector<TotalFigure>>> cuda_total_variants;
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

/**
 * @brief Parses a `cuda_total_variants` value: `BYTES [~ PRECISION] @ DRIVER`, separated by `;`
 * (sizes as `parse_byte_size` reads them; a driver holds no `;`, `@` or `|`).
 * @return the figures in the order given, or a `ParseError` saying what was expected
 */
[[nodiscard]] Result<std::vector<TotalFigure>> parse_total_variants(std::string_view text);

/// The `cuda_total_variants` value `parse_total_variants` reads back.
[[nodiscard]] std::string format_total_variants(const std::vector<TotalFigure>& variants);

/// Every CUDA total known for a GPU profile: its own figure first, then its variants.
[[nodiscard]] std::vector<TotalFigure> cuda_total_figures(const DeviceProfile& profile);

/// A total a budget is replayed at: a figure widened by its precision, and what it is.
struct TotalBound {
  std::uint64_t bytes{0};  ///< the figure minus (lowest) or plus (highest) its precision
  TotalFigure figure;      ///< the figure it comes from
};

/// The lowest and the highest CUDA total a profile's figures allow.
struct TotalRange {
  TotalBound lowest;
  TotalBound highest;
};

/**
 * @brief The lowest and highest CUDA total a GPU profile's figures allow, each figure taken at
 * its bytes minus and plus its precision (the lowest saturates at 1 byte, the highest at
 * 2^64 - 1). On ties the earlier figure (the profile's own first) is kept.
 */
[[nodiscard]] TotalRange cuda_total_range(const DeviceProfile& profile);

/// Which end of a profile's known CUDA totals.
enum class TotalEnd : std::uint8_t { Lowest, Highest };

/**
 * @brief `config` with every GPU's total replaced by the lowest or highest total its profile's
 * figures allow (`cuda_total_range`); fractions and usable caps stay, so the budgets follow the
 * same integer rules.
 * @param profiles the profile behind each GPU of `config`, by position; a single profile stands
 * behind every GPU. A GPU without a profile keeps its total.
 */
[[nodiscard]] GpuConfig config_at_total(GpuConfig config,
                                        const std::vector<DeviceProfile>& profiles, TotalEnd end);

/// `bytes` with a comma every three digits: 25,386,352,640.
[[nodiscard]] std::string group_digits(std::uint64_t bytes);

/**
 * @brief How a figure is named in a sentence: "driver 550.127.05 (25,386,352,640 B)", or with
 * its precision "an unrecorded driver (191,502,483,456 B ± 1 MiB)".
 */
[[nodiscard]] std::string describe_figure(const TotalFigure& figure);

/// A precision as a person reads it: "1 MiB" when a whole number of MiB, else "N B".
[[nodiscard]] std::string format_precision(std::uint64_t bytes);

/// The folder of built-in profiles: `MEMTRACK_PROFILES_DIR` when set, else the installed or
/// source-tree `profiles` folder.
[[nodiscard]] std::filesystem::path profiles_dir();

/// Every built-in profile, sorted by name.
[[nodiscard]] Result<std::vector<DeviceProfile>> load_builtin_profiles();

/// A built-in profile by name, or a profile file by path (anything containing '/' or ending in
/// `.profile`).
[[nodiscard]] Result<DeviceProfile> find_profile(std::string_view name_or_path);

/// A node: the config to track, and the profile behind each GPU.
/// The most GPUs one node may have (a spec's count, `--gpus`); see docs/limits.md.
inline constexpr std::uint32_t max_gpus_per_node = 256;

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
