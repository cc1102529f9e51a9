/**
 * @file allocator_start.hpp
 * @brief The caching allocator's state before a PyTorch snapshot's trace began: whether the
 * trace began mid-run, and the segments and blocks that existed then, reconstructed from the
 * state at snapshot time and the trace (docs/trace-format.md, "Allocator events").
 */
#pragma once

#include <memtrack/sim/allocators/allocator_settings.hpp>
#include <memtrack/sim/allocators/device_memory_model.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace memtrack::traces {

/// One entry of a device's trace, as far as the allocator's start is concerned.
struct AllocatorTraceEntry {
  std::string action;  ///< `alloc`, `free_completed`, `segment_alloc`, `segment_free`, ...
  std::uint64_t addr{0};
  std::uint64_t size{0};  ///< requested bytes for alloc/free entries, as PyTorch records them
  std::uint64_t stream{0};
};

/**
 * @brief Whether a device's trace began mid-run: it frees a segment or a block it did not
 * create, or a segment at snapshot time was not created in it.
 * @param end the device's segments at snapshot time
 * @param trace the device's entries in recorded order
 */
[[nodiscard]] bool began_mid_run(const std::vector<sim::allocators::SegmentInfo>& end,
                                 const std::vector<AllocatorTraceEntry>& trace);

/// A reconstructed start, and how many of its blocks the recording does not determine.
struct AllocatorStart {
  std::vector<sim::allocators::SegmentInfo> segments;  ///< by address; blocks tile each
  /// Allocated blocks whose extent is a guess (freed in the trace before any allocation there:
  /// only the requested size is recorded, not whether PyTorch split the block), or left out
  /// (inconsistent with their neighbours).
  std::uint64_t undetermined{0};
};

/**
 * @brief The segments that existed before the trace (those at snapshot time it did not create,
 * and those it freed without creating), with the blocks known to be allocated then (still
 * allocated at snapshot time and never allocated in the trace: exact; freed in the trace before
 * any allocation at their address: the requested size rounded as `settings` round it, extended to
 * the next address the recording shows in use within PyTorch's unsplit remainder); the rest free.
 */
[[nodiscard]] AllocatorStart reconstruct_start(const sim::allocators::AllocatorSettings& settings,
                                               const std::vector<sim::allocators::SegmentInfo>& end,
                                               const std::vector<AllocatorTraceEntry>& trace);

}  // namespace memtrack::traces
