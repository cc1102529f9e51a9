/**
 * @file cupti_convert.hpp
 * @brief CUPTI activity records and driver callbacks to canonical trace events: the part of the
 * injection library that is pure data, tested on synthetic records without a GPU.
 *
 * What becomes what (docs/recorder.md has the full table):
 * - `CUPTI_ACTIVITY_KIND_MEMORY2` allocation / release of device memory (`DEVICE`,
 *   `DEVICE_STATIC`, `ARRAY`) -> `alloc gpu:N` / `free gpu:N` with the address, stream and time;
 *   pinned host memory -> `cpu`; managed and pageable memory is counted, not accounted. Allocations
 *   from a `cudaMallocAsync` pool are tagged `pool` (the record's bytes: what was requested).
 * - `CUPTI_ACTIVITY_KIND_MEMORY_POOL` -> a `mark` with the pool's size (what the device granted)
 *   and the bytes in use from it.
 * - `cuMemCreate` / `cuMemRelease` (driver callbacks) -> `alloc` / `free` tagged `vmm`, keyed by
 *   the allocation handle; the physical memory of a released handle still mapped is freed at its
 *   last `cuMemUnmap`. `cuMemMap` / `cuMemUnmap` themselves are counted.
 * - Each device's first context -> a `device` header line and a `baseline` of what was already in
 *   use (cudaMemGetInfo total minus free).
 * CUPTI hands buffers over late and out of order; `finish` sorts the events by time (ties keep the
 * order they arrived in).
 */
#pragma once

#include <memtrack/result.hpp>
#include <memtrack/traces/trace.hpp>

#include <cupti.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace memtrack::recorder {

/// A driver virtual-memory call, as the callback saw it at API exit.
struct VmmCall {
  enum class Kind : std::uint8_t { Create, Release, Map, Unmap };
  Kind kind{Kind::Create};
  std::uint64_t handle{0};   ///< Create (the handle made), Release, Map
  std::uint64_t size{0};     ///< Create, Map, Unmap
  std::uint64_t address{0};  ///< Map, Unmap: the virtual address
  DevicePlacement device{};  ///< Create: where the physical memory lives
  std::uint64_t time_ns{0};
};

/// What the conversion skipped or could not place, for the recording's summary.
struct ConversionCounts {
  std::uint64_t memory_records{0};
  std::uint64_t pool_records{0};
  std::uint64_t other_records{0};      ///< kinds the recorder does not use
  std::uint64_t unaccounted_kinds{0};  ///< managed, pageable or unknown memory: not accounted
  std::uint64_t vmm_creates{0};
  std::uint64_t vmm_maps{0};
  std::uint64_t vmm_unmaps{0};
  std::uint64_t vmm_releases{0};
  std::uint64_t vmm_unknown_handles{0};  ///< released or unmapped without a create seen
  std::uint64_t dropped_records{0};      ///< CUPTI ran out of buffer space: the trace is partial
};

/// The trace a conversion produced.
struct Conversion {
  traces::TraceHeader header;
  std::vector<traces::TraceEvent> events;
};

class CuptiConverter {
 public:
  /// Notes a device the first time one of its contexts appears: its identity, and a baseline.
  void add_device(const traces::DeviceRecord& device, std::uint64_t time_ns);

  /// One activity record (any kind; the ones the recorder does not use are counted).
  void consume(const CUpti_Activity& record);

  /**
   * @brief Every record of a completed CUPTI buffer, through `cuptiActivityGetNextRecord`.
   * @return the number of records, or an error if CUPTI refuses the buffer
   */
  Result<std::uint64_t> consume_buffer(std::uint8_t* buffer, std::size_t valid_bytes);

  void on_vmm(const VmmCall& call);

  void add_dropped(std::uint64_t records) { counts_.dropped_records += records; }

  /// The host's memory, the `cpu` budget of the trace (pinned allocations count against it).
  void set_host_memory(std::uint64_t bytes) { host_memory_ = bytes; }

  /**
   * @brief The trace so far: the header (source, devices with their budgets at the totals
   * CUDA reported, fraction 1, `device` lines) and the events sorted by time.
   */
  [[nodiscard]] Conversion finish(const std::string& source) const;

  [[nodiscard]] const ConversionCounts& counts() const { return counts_; }

 private:
  struct Timed {
    std::uint64_t time_ns;
    std::uint64_t sequence;
    traces::TraceEvent event;
  };
  struct Handle {
    std::uint64_t size{0};
    DevicePlacement device{};
    std::uint64_t mappings{0};
    bool released{false};
  };

  void push(traces::TraceEvent event, std::uint64_t time_ns);
  void free_handle(std::uint64_t handle, const Handle& state, std::uint64_t time_ns);

  std::map<std::uint32_t, traces::DeviceRecord> devices_;
  std::vector<Timed> events_;
  std::map<std::uint64_t, Handle> handles_;        ///< VMM handles alive
  std::map<std::uint64_t, std::uint64_t> mapped_;  ///< virtual address -> handle
  std::uint64_t sequence_{0};
  std::uint64_t host_memory_{0};
  ConversionCounts counts_;
};

}  // namespace memtrack::recorder
