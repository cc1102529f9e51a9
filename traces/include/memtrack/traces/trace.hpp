/**
 * @file trace.hpp
 * @brief The canonical trace format: a header (devices or a profile, and the source) and one
 * event a line. The full specification is docs/trace-format.md.
 *
 *     memtrack-trace 1
 *     source kineto hta_df_index_resolver.json.gz
 *     memory_fraction 1
 *     cpu_memory_limit 17179869184
 *     gpu 1 total=34089730048 name=Tesla V100-SXM2-32GB
 *     events
 *     baseline gpu:1 5430395904
 *     alloc gpu:1 5242880 t=1669783687464300000 addr=0x7f43e5a00000 stream=7 tag=bert
 *     free gpu:1 5242880 addr=0x7f43e5a00000
 *     free gpu:1 addr=0x7f43e5a00000
 *     alloc auto 1024 result=OutOfMemory
 *     reset_peak
 *     reset_peak gpu:1
 *     check gpu:1 allocated=5435638784 reserved=12782141440
 *     mark oom requested=1024
 *     end 10
 */
#pragma once

#include <memtrack/device_placement.hpp>
#include <memtrack/error.hpp>
#include <memtrack/gpu_config.hpp>
#include <memtrack/result.hpp>
#include <memtrack/sim/allocators/allocator_settings.hpp>
#include <memtrack/sim/allocators/device_memory_model.hpp>
#include <memtrack/sim/profile.hpp>
#include <memtrack/traces/frames.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace memtrack::traces {

/// The first line of every trace.
inline constexpr std::string_view trace_magic = "memtrack-trace 1";

/// The longest line a reader accepts (a longer one is refused as corrupt, not buffered).
inline constexpr std::size_t max_line_bytes = 64 * 1024;

/// The most `gpu` lines (and `device` lines) a trace header may have: the GPUs of one node, as
/// many as a node spec or `--gpus` may name (`sim::max_gpus_per_node`).
inline constexpr std::size_t max_header_gpus = sim::max_gpus_per_node;

/**
 * @brief A recorded device's identity and memory when the recording started: a `device` header
 * line, written by the CUPTI recorder (informational; budgets come from the `gpu` lines).
 *
 *     device 0 uuid=GPU-5a1c... cc=9.0 total_global_mem=150121545728 free_at_start=149500000256
 *         total_at_start=150121545728 name=NVIDIA H200
 */
struct DeviceRecord {
  std::uint32_t id{0};
  std::string uuid;                               ///< `uuid=`: e.g. GPU-5a1c...; no blanks
  std::string compute_capability;                 ///< `cc=`: MAJOR.MINOR
  std::optional<std::uint64_t> total_global_mem;  ///< `total_global_mem=`: cudaDeviceProp
  std::optional<std::uint64_t> free_at_start;     ///< `free_at_start=`: cudaMemGetInfo free
  std::optional<std::uint64_t> total_at_start;    ///< `total_at_start=`: cudaMemGetInfo total
  std::string name;                               ///< `name=`: last, to the end of the line

  friend bool operator==(const DeviceRecord&, const DeviceRecord&) = default;
};

/// @return the record as a header line, `device ...`, without the newline
[[nodiscard]] std::string format_device_record(const DeviceRecord& record);

/**
 * @brief Parses a `device ...` header line.
 * @return the record, or a `ParseError` saying what was expected
 */
[[nodiscard]] Result<DeviceRecord> parse_device_record(std::string_view line);

/// What a trace says about the devices and where it came from.
struct TraceHeader {
  /// Free text: the tool, file and anything else about the recording's origin.
  std::string source;
  /// The devices and budget inputs of the recording, when the source knew them.
  std::optional<GpuConfig> config;
  /// A node spec (`2xrtx5090`) naming the devices instead of `config`.
  std::string profile;
  /// What a recorder knew of each device (`device` lines), in id order.
  std::vector<DeviceRecord> devices;
  /// `allocator_settings TEXT`: the recording's caching-allocator settings in PyTorch's
  /// `PYTORCH_CUDA_ALLOC_CONF` syntax (a snapshot's `allocator_settings`), when the source knew
  /// them. The text may be empty: the defaults.
  std::optional<sim::allocators::AllocatorSettings> allocator_settings;
  /// The frame table an importer built (PyTorch's frames): a writer (`TraceWriter::create`,
  /// `format_trace`) writes its `frame` and `stack` lines right after the header, before the
  /// events. Not set by a reader: the lines it reads are in `TraceReader::frames()`.
  std::shared_ptr<const FrameTable> frames;

  /// @return whether the header says which devices the recording ran on
  [[nodiscard]] bool has_devices() const { return config.has_value() || !profile.empty(); }
};

/// One event of a trace.
struct TraceEvent {
  enum class Kind : std::uint8_t {
    Baseline,      ///< memory already in use when the recording started (applied as an allocation)
    Allocate,      ///< an allocation
    Free,          ///< a deallocation; `bytes` may be absent when `address` names the allocation
    ResetPeakAll,  ///< reset_peak() of every device
    ResetPeak,     ///< reset_peak(device)
    Check,         ///< what the source itself recorded after the previous event
    Mark,          ///< a note from the source (an OOM it saw, an annotation); not applied
    // The caching allocator's own truth (PyTorch snapshots; docs/trace-format.md, "Allocator
    // events"). Checked only when replaying with the `pytorch` allocator model.
    SegmentAlloc,  ///< `segment_alloc DEVICE BYTES addr= stream=`: a recorded cudaMalloc
    SegmentFree,   ///< `segment_free DEVICE BYTES addr= stream=`: a recorded cudaFree
    SegmentMap,    ///< `segment_map DEVICE BYTES addr= stream=`: pages mapped (expandable)
    SegmentUnmap,  ///< `segment_unmap DEVICE BYTES addr= stream=`: pages unmapped (expandable)
    /// `layout DEVICE start|check segments=N [undetermined=K]`: N `segment` events follow, each
    /// followed by its `block` events. `start`: the allocator's state before the device's first
    /// operation (a recording that began mid-run; K blocks' sizes are not determined by the
    /// recording). `check`: the state the source recorded at this point, verified whole.
    Layout,
    Segment,  ///< `segment DEVICE BYTES addr= stream= pool=small|large [expandable=1] blocks=M`
    Block,    ///< `block DEVICE BYTES addr= state=allocated|free|unmapped` (addr absolute)
    /// `oom DEVICE BYTES stream= device_free= [reserved=]`: the source's allocator refused this
    /// request (PyTorch's OutOfMemoryError); `reserved=` is what the process held then, where the
    /// importer knows it. Not an operation: the `pytorch` model must refuse the same request.
    Oom,
  };

  /// `layout`: which state the segments describe.
  enum class LayoutPhase : std::uint8_t { start, check };

  Kind kind{Kind::Allocate};
  DevicePlacement device{};
  std::optional<std::uint64_t> bytes;      ///< the bytes accounted
  std::optional<std::uint64_t> requested;  ///< requested bytes, when the source kept them apart
  std::optional<std::uint64_t> time_ns;    ///< `t=`: nanoseconds since the source's epoch
  std::optional<std::uint64_t> address;    ///< `addr=`: hexadecimal
  std::optional<std::uint64_t> stream;     ///< `stream=`
  std::string tag;                         ///< `tag=`: e.g. a model name; no blanks
  /// `result=KIND`: the source refused this operation with that error (e.g. OutOfMemory)
  std::optional<ErrorKind> recorded_error;
  /// `resolved=DEVICE`: where the source placed an `auto` allocation
  std::optional<DevicePlacement> recorded_resolved;
  std::optional<std::uint64_t> check_allocated;  ///< Check: `allocated=`
  std::optional<std::uint64_t> check_reserved;   ///< Check, Oom: `reserved=`
  std::string text;                              ///< Mark: the note
  /// `stack=ID`: the call stack of this event in the trace's frame table (`frame`/`stack` lines,
  /// consumed by the reader; see `TraceReader::frames()`).
  std::optional<std::uint64_t> stack;
  // Allocator events.
  std::optional<LayoutPhase> phase;               ///< Layout: `start` or `check`
  std::optional<std::uint64_t> count;             ///< Layout: `segments=`; Segment: `blocks=`
  std::optional<std::uint64_t> undetermined;      ///< Layout: `undetermined=`
  std::optional<sim::allocators::PoolKind> pool;  ///< Segment: `pool=`
  bool expandable{false};                         ///< Segment: `expandable=1`
  std::optional<sim::allocators::BlockState> block_state;  ///< Block: `state=`
  std::optional<std::uint64_t> device_free;                ///< Oom: `device_free=`

  [[nodiscard]] static TraceEvent allocate(DevicePlacement device, std::uint64_t bytes) {
    TraceEvent event;
    event.kind = Kind::Allocate;
    event.device = device;
    event.bytes = bytes;
    return event;
  }
  [[nodiscard]] static TraceEvent free(DevicePlacement device, std::optional<std::uint64_t> bytes) {
    TraceEvent event;
    event.kind = Kind::Free;
    event.device = device;
    event.bytes = bytes;
    return event;
  }

  friend bool operator==(const TraceEvent&, const TraceEvent&) = default;
};

/// @return the event's keyword: `baseline`, `alloc`, `free`, `reset_peak`, `check`, `mark`,
/// `segment_alloc`, `segment_free`, `segment_map`, `segment_unmap`, `layout`, `segment`, `block`
/// or `oom`
[[nodiscard]] std::string_view keyword(TraceEvent::Kind kind);

/// @return the event as one line, without the newline; `parse_event(format_event(e)) == e`
[[nodiscard]] std::string format_event(const TraceEvent& event);

/**
 * @brief Parses one event line.
 * @return the event, or a `ParseError` saying what was expected (the caller adds file and line)
 */
[[nodiscard]] Result<TraceEvent> parse_event(std::string_view line);

/// The same, into `event` (reusing its storage: the streaming reader's path).
[[nodiscard]] Result<void> parse_event(std::string_view line, TraceEvent& event);

/// @return an `ErrorKind` from its name (`OutOfMemory`), or nothing
[[nodiscard]] std::optional<ErrorKind> parse_error_kind(std::string_view name);

}  // namespace memtrack::traces
