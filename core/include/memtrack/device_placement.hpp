/**
 * @file device_placement.hpp
 * @brief Where an allocation goes: the CPU, one GPU, or `Auto` (first GPU with room, else CPU).
 */
#pragma once

#include <compare>
#include <cstdint>
#include <string>
#include <string_view>

namespace memtrack {

template <class T>
class Result;

/// The host (CPU) memory pool.
struct Cpu {
  friend constexpr bool operator==(Cpu, Cpu) noexcept { return true; }
};

/// One GPU, named by its configured id (ids may be sparse, e.g. {0, 3, 7}).
struct Gpu {
  std::uint32_t id{};
  friend constexpr bool operator==(Gpu, Gpu) noexcept = default;
};

/// Let the tracker choose: the lowest-id GPU with room, else the CPU.
struct Auto {
  friend constexpr bool operator==(Auto, Auto) noexcept { return true; }
};

/**
 * @brief A device placement: `Cpu`, `Gpu{id}` or `Auto`.
 *
 * Text forms are `cpu`, `gpu:N` (N a canonical decimal uint32: no sign, no leading zeros) and
 * `auto`; `parse(to_string(p)) == p` for every placement.
 */
class DevicePlacement {
 public:
  enum class Kind : std::uint8_t { Cpu, Gpu, Auto };

  constexpr DevicePlacement() noexcept = default;                ///< `Auto`
  constexpr DevicePlacement(Cpu) noexcept : kind_(Kind::Cpu) {}  // NOLINT: implicit by design
  constexpr DevicePlacement(Gpu gpu) noexcept : kind_(Kind::Gpu), gpu_id_(gpu.id) {}  // NOLINT
  constexpr DevicePlacement(Auto) noexcept : kind_(Kind::Auto) {}  // NOLINT: implicit by design

  [[nodiscard]] constexpr Kind kind() const noexcept { return kind_; }
  [[nodiscard]] constexpr bool is_cpu() const noexcept { return kind_ == Kind::Cpu; }
  [[nodiscard]] constexpr bool is_gpu() const noexcept { return kind_ == Kind::Gpu; }
  [[nodiscard]] constexpr bool is_auto() const noexcept { return kind_ == Kind::Auto; }
  /// @return the GPU id; 0 unless `is_gpu()`
  [[nodiscard]] constexpr std::uint32_t gpu_id() const noexcept { return gpu_id_; }

  /// @return `cpu`, `gpu:N` or `auto`
  [[nodiscard]] std::string to_string() const;

  /**
   * @brief Parses `cpu`, `gpu:N` or `auto`. (Declared here, defined with `Result` in result.hpp,
   * which error.hpp needs this header for: include <memtrack/result.hpp> to call it.)
   * @return the placement, or an `ErrorKind::ParseError` naming the bad text
   */
  [[nodiscard]] static Result<DevicePlacement> parse(std::string_view text);

  friend constexpr bool operator==(const DevicePlacement&,
                                   const DevicePlacement&) noexcept = default;
  /// Orders `cpu` < `gpu:0` < `gpu:1` < ... < `auto` (for stable output).
  friend constexpr auto operator<=>(const DevicePlacement&,
                                    const DevicePlacement&) noexcept = default;

 private:
  Kind kind_{Kind::Auto};
  std::uint32_t gpu_id_{0};  // Invariant: 0 unless kind_ == Kind::Gpu.
};

}  // namespace memtrack
