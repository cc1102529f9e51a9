/**
 * @file allocator_settings.hpp
 * @brief `AllocatorSettings`: the caching allocator's options, parsed from PyTorch's own
 * `PYTORCH_CUDA_ALLOC_CONF` syntax.
 */
#pragma once

#include <memtrack/fraction.hpp>
#include <memtrack/result.hpp>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace memtrack::sim::allocators {

/// The allocator's fixed sizes (c10/cuda/CUDACachingAllocator.cpp).
inline constexpr std::uint64_t min_block_size = 512;           ///< every size rounds to this
inline constexpr std::uint64_t small_size = 1ULL << 20;        ///< largest small-pool request
inline constexpr std::uint64_t small_buffer = 2ULL << 20;      ///< a small-pool segment
inline constexpr std::uint64_t large_buffer = 20ULL << 20;     ///< a segment for 1-10 MiB requests
inline constexpr std::uint64_t min_large_alloc = 10ULL << 20;  ///< requests from here get their own
inline constexpr std::uint64_t round_large = 2ULL << 20;       ///< ...rounded up to 2 MiB
/// roundup_power2_divisions has one entry per power-of-two interval from 1 MiB up (the last
/// covers everything from 32 GiB).
inline constexpr std::size_t roundup_intervals = 16;

/**
 * @brief The options that change where and how much the allocator reserves.
 *
 * A model takes its settings once; they do not change during its life.
 */
struct AllocatorSettings {
  /// Blocks of at least this size are never split; 2^64 - 1 (unlimited) by default.
  std::uint64_t max_split_size{UINT64_MAX};
  /// An oversize cached block serves a request only if smaller than request + this.
  std::uint64_t max_non_split_rounding{20ULL << 20};
  /// Divisions per power-of-two interval (index 0: sizes below 2 MiB, ... 15: from 32 GiB);
  /// 0 or 1 means plain 512-byte rounding.
  std::array<std::uint64_t, roundup_intervals> roundup_power2_divisions{};
  /// Reclaim cached segments once reserved exceeds this share of the allowed memory. Only in
  /// effect with `per_process_memory_fraction` set, as in PyTorch.
  std::optional<Fraction> garbage_collection_threshold;
  /// `torch.cuda.set_per_process_memory_fraction`: the share of the device total the process may
  /// reserve.
  std::optional<Fraction> per_process_memory_fraction;
  /// Segments that grow by mapping pages instead of one cudaMalloc per segment.
  bool expandable_segments{false};

  /**
   * @brief Parses PyTorch's syntax: `expandable_segments:True,max_split_size_mb:512,
   * roundup_power2_divisions:4,garbage_collection_threshold:0.8`. Also accepted:
   * `max_non_split_rounding_mb:N`, `per_process_memory_fraction:F`, `backend:native`, and the
   * options that do not touch device memory (`release_lock_on_cudamalloc`, `pinned_*`).
   * Fractions are parsed exactly. An empty text gives the defaults.
   * @return the settings, or `ErrorKind::ParseError` naming the offending key or value
   */
  [[nodiscard]] static Result<AllocatorSettings> parse(std::string_view text);

  /// @return the settings in the syntax `parse` reads (only options that differ from defaults)
  [[nodiscard]] std::string to_string() const;

  friend bool operator==(const AllocatorSettings&, const AllocatorSettings&) = default;
};

}  // namespace memtrack::sim::allocators
