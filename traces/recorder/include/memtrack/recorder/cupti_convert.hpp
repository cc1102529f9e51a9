/**
 * @file cupti_convert.hpp
 * @brief CUPTI activity records and driver callbacks to canonical trace events: the part of the
 * injection library that is pure data, tested on synthetic records without a GPU.
 *
 * What becomes what (docs/recorder.md has the full table):
 * - `CUPTI_ACTIVITY_KIND_MEMORY2` allocation / release of device memory (`DEVICE`,
 *   `DEVICE_STATIC`, `ARRAY`) -> `alloc gpu:N` / `free gpu:N` with the address, stream and time;
 *   pinned host memory -> `cpu`; managed and pageable memory is counted, not accounted. A release
 *   carrying 0 bytes takes its size from the live allocation at its address. Allocations from a
 *   `cudaMallocAsync` pool are tagged `pool` (the record's bytes: what was requested); what the
 *   pool holds beyond them (`memoryPoolConfig.pool.size` of a local pool, minus the requested
 *   bytes live in it) is `alloc` / `free` tagged `pool-reserve`, so the trace holds the pool's
 * size.
 * - `CUPTI_ACTIVITY_KIND_MEMORY_POOL` -> a `mark` with the pool's size (what the device granted)
 *   and the bytes in use from it; its size moves the pool's reserve too.
 * - A context destroyed (`cudaDeviceReset`, `cuCtxDestroy`) -> `free ... tag=teardown` of every
 *   allocation of that context still live (and of its pools' reserves).
 * - Allocation calls counted from the driver / runtime callbacks beside the `MEMORY2` records:
 *   fewer records than calls means another CUPTI user (torch.profiler's Kineto, Nsight) took the
 *   activity buffers; the trace is marked incomplete (`subscriber_problem`).
 * - `cuMemCreate` / `cuMemRelease` (driver callbacks) -> `alloc` / `free` tagged `vmm`, keyed by
 *   the allocation handle; the physical memory of a released handle still mapped is freed at its
 *   last `cuMemUnmap`. `cuMemMap` / `cuMemUnmap` themselves are counted.
 * - Each device's first context -> a `device` header line; every context created -> a `baseline`
 *   of what was in use then (cudaMemGetInfo total minus free) beyond what the trace already holds
 *   on that device (the first: everything; after a teardown: the new context's cost).
 * CUPTI hands buffers over late and out of order; `finish` sorts the events by time (ties keep the
 * order they arrived in).
 */
#pragma once

#include <memtrack/result.hpp>
#include <memtrack/traces/trace.hpp>

#include <cupti.h>

#include <cstdint>
#include <map>
#include <optional>
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
  std::uint64_t invalid_kind_stops{0};   ///< buffers whose reading stopped at an unknown kind
  /// The subscriber check: successful device allocation / free calls seen by the callbacks, and
  /// the MEMORY2 device allocation / release records that arrived.
  std::uint64_t allocation_calls{0};
  std::uint64_t free_calls{0};
  std::uint64_t allocation_records{0};
  std::uint64_t release_records{0};
  std::uint64_t contexts_destroyed{0};
};

/// The trace a conversion produced.
struct Conversion {
  traces::TraceHeader header;
  std::vector<traces::TraceEvent> events;
};

class CuptiConverter {
 public:
  /**
   * @brief A context was created on `device`: the device's identity (kept from its first context)
   * and a baseline of what was in use then beyond what the trace holds there at `time_ns`.
   */
  void add_device(const traces::DeviceRecord& device, std::uint64_t time_ns);

  /// A context is being destroyed: what it still holds is freed at `time_ns`.
  void on_context_destroyed(std::uint32_t context_id, std::uint32_t device, std::uint64_t time_ns);

  /// A successful device allocation (`true`) or free call, counted for the subscriber check.
  void count_call(bool allocation) {
    ++(allocation ? counts_.allocation_calls : counts_.free_calls);
  }

  /**
   * @brief The subscriber check: fewer MEMORY2 device records than allocation / free calls means
   * another CUPTI user took the activity buffers. Meaningful once every buffer is flushed.
   * @return nothing when they agree, else one line saying what is missing
   */
  [[nodiscard]] std::optional<std::string> subscriber_problem() const;

  /// Forgets every event (a forked child starts its own trace); the devices stay.
  void forget_events();

  /// @return how many events are kept (what a checkpoint would write)
  [[nodiscard]] std::size_t event_count() const { return events_.size(); }

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
   * CUDA reported, fraction 1, `device` lines) and the events sorted by time, then marks saying
   * why it is incomplete (dropped records; with `check_subscriber`, `subscriber_problem`).
   */
  [[nodiscard]] Conversion finish(const std::string& source, bool check_subscriber = true) const;

  [[nodiscard]] const ConversionCounts& counts() const { return counts_; }

 private:
  /// One thing that happened, kept until `finish` puts them in time order and derives what
  /// depends on the order (baselines, pool reserves, teardown frees, 0-byte releases).
  struct Timed {
    enum class Kind : std::uint8_t { Event, ContextCreated, ContextDestroyed };
    Kind kind{Kind::Event};
    std::uint64_t time_ns{0};
    std::uint64_t sequence{0};
    traces::TraceEvent event;                ///< Event
    std::uint32_t context_id{0};             ///< Event (MEMORY2), ContextDestroyed
    std::uint32_t device{0};                 ///< ContextCreated, ContextDestroyed, pool records
    std::uint64_t pool{0};                   ///< a local pool's address; 0: none
    std::optional<std::uint64_t> pool_size;  ///< what that pool held at this record
    std::uint64_t used{0};                   ///< ContextCreated: total minus free
  };
  struct Handle {
    std::uint64_t size{0};
    DevicePlacement device{};
    std::uint64_t mappings{0};
    bool released{false};
  };

  class Ordered;  ///< finish's walk over the sorted events (cupti_convert.cpp)

  void consume_pool(const CUpti_ActivityMemoryPool3& pool);
  void consume_memory(const CUpti_ActivityMemory4& memory);
  void push(traces::TraceEvent event, std::uint64_t time_ns);
  void push(Timed timed);
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
