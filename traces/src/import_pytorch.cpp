// PyTorch memory snapshots (torch.cuda.memory._dump_snapshot()): the restricted pickle reader,
// then segments/blocks for the state at snapshot time and device_traces for the events.
#include <memtrack/traces/allocator_start.hpp>
#include <memtrack/traces/importers.hpp>

#include <memtrack/units.hpp>

#include "import_support.hpp"
#include "pickle.hpp"

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <utility>

namespace memtrack::traces {
namespace {

using detail::hex;
using pickle::Value;
using sim::allocators::AllocatorSettings;
using sim::allocators::BlockInfo;
using sim::allocators::BlockState;
using sim::allocators::PoolKind;
using sim::allocators::SegmentInfo;

/// Errors name the file, the byte offset of the value and where it is in the snapshot.
class Locator {
 public:
  explicit Locator(std::string_view name) : name_(name) {}
  [[nodiscard]] Error at(const Value& value, const std::string& where,
                         const std::string& what) const {
    return Error::parse_error(std::string(name_) + ": byte " + std::to_string(value.offset) + " (" +
                              where + "): " + what);
  }

 private:
  std::string_view name_;
};

Result<std::uint64_t> unsigned_field(const Value& dict, std::string_view key,
                                     const std::string& where, const Locator& locate) {
  const Value* value = dict.get(key);
  if (value == nullptr)
    return locate.at(dict, where, "expected the key '" + std::string(key) + "'");
  const auto number = value->as_unsigned();
  if (!number) {
    return locate.at(*value, where + "." + std::string(key),
                     "expected a non-negative integer, got " + value->describe());
  }
  return *number;
}

/// A stream: PyTorch records the handle, which some builds pickle as a negative integer; kept as
/// its 64-bit two's complement, so that one stream is one number. Nothing when absent or not an
/// integer of 64 bits.
std::optional<std::uint64_t> stream_of(const Value* value) {
  if (value == nullptr || !value->is(Value::Kind::Int) || value->wide) return std::nullopt;
  return value->negative ? std::uint64_t{0} - value->magnitude : value->magnitude;
}

/// A field that plays no part in accounting: its text, or empty.
std::string text_of(const Value* value) {
  return value != nullptr && value->is(Value::Kind::String) ? std::string(value->text)
                                                            : std::string{};
}

struct Entry {
  std::string action;
  std::uint64_t address{0};
  std::uint64_t size{0};
  std::optional<std::uint64_t> stream;
  std::optional<std::uint64_t> time_us;
  std::uint32_t device{0};
  std::size_t order{0};
  std::size_t index{0};                      ///< its position in its device's trace
  std::optional<std::uint64_t> device_free;  ///< `oom`: the device's free bytes then
  std::optional<std::uint64_t> stack;        ///< its frames in the frame table
  std::string where;
};

/// The entries, in huge pages (a large snapshot holds hundreds of thousands).
using Entries = std::vector<Entry, detail::HugePageAllocator<Entry>>;

bool is_segment_action(std::string_view action) {
  return action == "segment_alloc" || action == "segment_free" || action == "segment_map" ||
         action == "segment_unmap";
}

/// Interns trace entries' `frames` ([{filename, line, name}], innermost first) into one table.
/// Frames and lists the pickle shares (its memo) are looked up once.
class FrameInterner {
 public:
  /// @return the stack of an entry's frames, or nothing when it has none
  std::optional<std::uint64_t> stack_of(const Value& entry) {
    const Value* frames = entry.get("frames");
    if (frames == nullptr || !frames->is(Value::Kind::List) || frames->items.empty()) {
      return std::nullopt;
    }
    // A list of frames many entries share is interned once.
    if (const auto known = recall(*frames)) return *known;
    ids_.clear();
    const std::size_t count = frames->items.size();
    for (std::size_t i = 0; i < count; ++i) {
      // A deeper stack keeps its innermost and outermost frames: its line must fit a trace line.
      if (count > max_stack_frames && i == max_stack_frames / 2) {
        i = count - max_stack_frames / 2;
        ++cut_stacks_;
      }
      ids_.push_back(frame_of(*frames->items[i]));
    }
    const std::uint64_t stack = table_->intern_stack(ids_);
    remember(*frames, stack);
    return stack;
  }

  [[nodiscard]] std::shared_ptr<const FrameTable> table() const { return table_; }

  /// @return a note on what was cut to fit a trace line, or empty
  [[nodiscard]] std::string cuts() const {
    if (cut_stacks_ == 0 && cut_texts_ == 0) return {};
    return std::to_string(cut_stacks_) + " stacks deeper than " + std::to_string(max_stack_frames) +
           " frames kept their " + std::to_string(max_stack_frames / 2) +
           " innermost and outermost; " + std::to_string(cut_texts_) +
           " frame names or paths cut at " + std::to_string(max_frame_text) +
           " bytes (a trace line holds at most " + std::to_string(max_line_bytes) + ")";
  }

 private:
  /// A stack line's frame ids (up to 20 digits and a comma each) stay within a trace line.
  static constexpr std::size_t max_stack_frames = max_line_bytes / 32;
  /// A frame line's name and path, each encoded at most 3 bytes a byte, stay within one too.
  static constexpr std::size_t max_frame_text = max_line_bytes / 8;

  std::string bounded(std::string text) {
    if (text.size() <= max_frame_text) return text;
    std::size_t cut = max_frame_text;
    while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0U) == 0x80U)
      --cut;  // not inside a UTF-8 sequence
    text.resize(cut);
    ++cut_texts_;
    return text;
  }

  std::uint64_t frame_of(const Value& frame) {
    // A frame is a dict, a stack a list: the two never share a value.
    if (const auto known = recall(frame)) return *known;
    Frame parsed;
    if (frame.is(Value::Kind::Dict)) {
      parsed.file = bounded(text_of(frame.get("filename")));
      parsed.name = bounded(text_of(frame.get("name")));
      // Python 3.13 builds record 2^64 - 1 for an unknown line; negative values mean the same.
      const Value* line = frame.get("line");
      parsed.line = line != nullptr ? line->as_unsigned().value_or(0) : 0;
    }
    const std::uint64_t id = table_->intern_frame(parsed);
    remember(frame, id);
    return id;
  }

  /// What this import made of a value met before: its `consumer_slot` holds k + 1 for made_[k].
  /// A slot that names no entry of this import's, or another value's, is from an earlier import
  /// of the same document, and is ignored.
  [[nodiscard]] std::optional<std::uint64_t> recall(const Value& value) const {
    const std::uint64_t slot = value.consumer_slot;
    if (slot == 0 || slot > made_.size() || made_[slot - 1].first != &value) return std::nullopt;
    return made_[slot - 1].second;
  }

  void remember(const Value& value, std::uint64_t id) {
    made_.emplace_back(&value, id);
    value.consumer_slot = made_.size();
  }

  std::shared_ptr<FrameTable> table_ = std::make_shared<FrameTable>();
  std::vector<std::uint64_t> ids_;
  std::vector<std::pair<const Value*, std::uint64_t>> made_;  ///< see recall()
  std::uint64_t cut_stacks_{0};
  std::uint64_t cut_texts_{0};
};

/// The state at snapshot time, per device.
struct EndState {
  /// Active blocks by address: the bytes PyTorch's trace records (requested).
  std::map<std::uint32_t, std::map<std::uint64_t, std::uint64_t>> active;
  std::map<std::uint32_t, std::uint64_t> active_bytes;
  /// The frames of active blocks that have them (the allocation's stack), by address.
  std::map<std::uint32_t, std::map<std::uint64_t, std::uint64_t>> active_stacks;
  /// Every segment and block, by address (when the snapshot gives their sizes).
  std::map<std::uint32_t, std::vector<SegmentInfo>> segments;
  /// Devices whose segments could not be described whole (a missing size, blocks that do not
  /// tile the segment): no layout is written for them.
  std::map<std::uint32_t, std::string> undescribed;
};

BlockState block_state_of(std::string_view state) {
  // A block whose free was requested but not completed is still held by the allocator.
  if (state == "active_allocated" || state == "active_pending_free") return BlockState::allocated;
  if (state == "inactive") return BlockState::free;
  return BlockState::unmapped;
}

/// @return why `segment`'s blocks do not describe it (they must tile it), or empty
std::string tiling_problem(const SegmentInfo& segment) {
  std::uint64_t offset = 0;
  for (const BlockInfo& block : segment.blocks) {
    if (block.offset != offset || block.size == 0 || block.size > segment.size - offset) {
      return "the blocks of the segment at " + hex(segment.address) + " do not tile it";
    }
    offset += block.size;
  }
  if (offset != segment.size || segment.blocks.empty() ||
      segment.address > UINT64_MAX - segment.size) {
    return "the blocks of the segment at " + hex(segment.address) + " do not tile it";
  }
  return {};
}

/// Reads one segment's blocks into `end` (active blocks) and `info` (every block).
Result<void> read_blocks(const Value& segment, const std::string& where, std::uint32_t device,
                         SegmentInfo& info, bool& described, EndState& end, FrameInterner& frames,
                         const Locator& locate) {
  std::uint64_t next_address = info.address;
  const Value* blocks = segment.get("blocks");
  if (blocks == nullptr || !blocks->is(Value::Kind::List)) {
    return locate.at(segment, where, "expected 'blocks' as a list");
  }
  for (std::size_t b = 0; b < blocks->items.size(); ++b) {
    const Value& block = *blocks->items[b];
    const std::string block_where = where + ".blocks[" + std::to_string(b) + "]";
    if (!block.is(Value::Kind::Dict)) return locate.at(block, block_where, "expected a dict");
    auto size = unsigned_field(block, "size", block_where, locate);
    if (!size) return size.error();
    std::uint64_t address = next_address;
    if (block.get("address") != nullptr) {
      auto given = unsigned_field(block, "address", block_where, locate);
      if (!given) return given.error();
      address = *given;
    }
    next_address = address + *size;
    const Value* state = block.get("state");
    if (state == nullptr || !state->is(Value::Kind::String)) {
      return locate.at(block, block_where, "expected 'state' as a string");
    }
    if (address < info.address) {
      described = false;
    } else {
      info.blocks.push_back(BlockInfo{address - info.address, *size, block_state_of(state->text)});
    }
    if (!state->text.starts_with("active_")) continue;  // inactive: cached, not allocated
    // PyTorch's trace records requested sizes; blocks keep both. Account requested bytes.
    std::uint64_t block_bytes = *size;
    if (block.get("requested_size") != nullptr) {
      auto requested = unsigned_field(block, "requested_size", block_where, locate);
      if (!requested) return requested.error();
      block_bytes = *requested;
    }
    if (!end.active[device].emplace(address, block_bytes).second) {
      return locate.at(block, block_where, "two active blocks at the same address");
    }
    if (const auto stack = frames.stack_of(block)) end.active_stacks[device][address] = *stack;
    auto sum = checked_add(end.active_bytes[device], block_bytes);
    if (!sum) return locate.at(block, block_where, "active bytes beyond 2^64 - 1");
    end.active_bytes[device] = *sum;
  }
  return {};
}

Result<EndState> read_end_state(const Value& segments, FrameInterner& frames,
                                const Locator& locate) {
  EndState end;
  for (std::size_t s = 0; s < segments.items.size(); ++s) {
    const Value& segment = *segments.items[s];
    const std::string where = "segments[" + std::to_string(s) + "]";
    if (!segment.is(Value::Kind::Dict)) return locate.at(segment, where, "expected a dict");
    auto device = unsigned_field(segment, "device", where, locate);
    if (!device) return device.error();
    if (*device > UINT32_MAX) return locate.at(segment, where, "device id beyond 2^32 - 1");
    const auto id = static_cast<std::uint32_t>(*device);
    SegmentInfo info;
    bool described = segment.get("address") != nullptr && segment.get("total_size") != nullptr;
    if (segment.get("address") != nullptr) {
      auto address = unsigned_field(segment, "address", where, locate);
      if (!address) return address.error();
      info.address = *address;
    }
    if (described) {
      auto size = unsigned_field(segment, "total_size", where, locate);
      if (!size) return size.error();
      info.size = *size;
    }
    info.stream = stream_of(segment.get("stream")).value_or(0);
    const std::string type = text_of(segment.get("segment_type"));
    info.pool = type == "small" || (type.empty() && info.size == sim::allocators::small_buffer)
                    ? PoolKind::small
                    : PoolKind::large;
    const Value* expandable = segment.get("is_expandable");
    info.expandable =
        expandable != nullptr && expandable->is(Value::Kind::Bool) && expandable->boolean;
    if (auto ok = read_blocks(segment, where, id, info, described, end, frames, locate); !ok) {
      return ok.error();
    }
    std::string problem = described ? tiling_problem(info) : where + " has no address or size";
    if (!problem.empty()) end.undescribed.emplace(id, where + ": " + problem);
    end.segments[id].push_back(std::move(info));
  }
  for (auto& [device, list] : end.segments) {
    std::sort(list.begin(), list.end(),
              [](const SegmentInfo& a, const SegmentInfo& b) { return a.address < b.address; });
    for (std::size_t i = 1; i < list.size(); ++i) {
      if (list[i].address - list[i - 1].address < list[i - 1].size) {
        end.undescribed.emplace(device, "segments at " + hex(list[i - 1].address) + " and " +
                                            hex(list[i].address) + " overlap");
      }
    }
  }
  return end;
}

/// `allocator_settings` as PyTorch dumps it (the effective settings, keyed by option).
AllocatorSettings settings_of(const Value& dict) {
  AllocatorSettings settings;
  if (const Value* v = dict.get("expandable_segments"); v != nullptr && v->is(Value::Kind::Bool)) {
    settings.expandable_segments = v->boolean;
  }
  if (const Value* v = dict.get("max_split_size"); v != nullptr && v->as_unsigned()) {
    settings.max_split_size = *v->as_unsigned();  // -1: unlimited, the default
  }
  if (const Value* v = dict.get("garbage_collection_threshold");
      v != nullptr && v->is(Value::Kind::Float) && v->number > 0 && v->number < 1) {
    if (auto fraction = Fraction::from_double(v->number)) {
      settings.garbage_collection_threshold = *fraction;
    }
  }
  if (const Value* v = dict.get("roundup_power2_divisions");
      v != nullptr && v->is(Value::Kind::Dict)) {
    // Keyed by each interval's start in MiB: "1", "2", "4", ... "32768".
    for (std::size_t index = 0; index < sim::allocators::roundup_intervals; ++index) {
      const Value* divisions = v->get(std::to_string(std::uint64_t{1} << index));
      if (divisions != nullptr && divisions->as_unsigned()) {
        settings.roundup_power2_divisions[index] = *divisions->as_unsigned();
      }
    }
  }
  return settings;
}

/// The device traces: the entries memtrack applies or carries, in recorded order.
struct TraceEntries {
  Entries entries;
  /// Per device, what the allocator's start is reconstructed from (recorded order).
  std::map<std::uint32_t, std::vector<AllocatorTraceEntry>> by_device;
  std::map<std::string, std::uint64_t> ignored_actions;
};

/// Reads one trace entry's fields into `entry`.
Result<void> read_entry(const Value& item, Entry& entry, const Locator& locate) {
  // An `oom` entry has no address: its size, and the device's free bytes at that moment.
  const bool oom = entry.action == "oom";
  if (!oom || item.get("addr") != nullptr) {
    auto address = unsigned_field(item, "addr", entry.where, locate);
    if (!address) return address.error();
    entry.address = *address;
  }
  if (oom && item.get("device_free") != nullptr) {
    auto free = unsigned_field(item, "device_free", entry.where, locate);
    if (!free) return free.error();
    entry.device_free = *free;
  }
  auto size = unsigned_field(item, "size", entry.where, locate);
  if (!size) return size.error();
  entry.size = *size;
  if (is_segment_action(entry.action) &&
      (entry.size == 0 || entry.address > UINT64_MAX - entry.size)) {
    return locate.at(item, entry.where,
                     "expected a segment of at least 1 byte ending below 2^64, got " +
                         std::to_string(entry.size) + " bytes at " + hex(entry.address));
  }
  entry.stream = stream_of(item.get("stream"));
  if (item.get("time_us") != nullptr) {
    auto time = unsigned_field(item, "time_us", entry.where, locate);
    if (!time) return time.error();
    entry.time_us = *time;
  }
  return {};
}

Result<TraceEntries> read_traces(const Value& device_traces, FrameInterner& frames,
                                 const Locator& locate) {
  TraceEntries read;
  if (!device_traces.is(Value::Kind::List)) {
    return locate.at(device_traces, "device_traces", "expected a list (one per device)");
  }
  for (std::size_t d = 0; d < device_traces.items.size(); ++d) {
    const Value& trace = *device_traces.items[d];
    const std::string where = "device_traces[" + std::to_string(d) + "]";
    if (!trace.is(Value::Kind::List)) return locate.at(trace, where, "expected a list");
    if (d > UINT32_MAX) return locate.at(trace, where, "device id beyond 2^32 - 1");
    const auto device = static_cast<std::uint32_t>(d);
    for (std::size_t i = 0; i < trace.items.size(); ++i) {
      const Value& item = *trace.items[i];
      Entry entry;
      entry.where = where + "[" + std::to_string(i) + "]";
      if (!item.is(Value::Kind::Dict)) return locate.at(item, entry.where, "expected a dict");
      const Value* action = item.get("action");
      if (action == nullptr || !action->is(Value::Kind::String)) {
        return locate.at(item, entry.where, "expected 'action' as a string");
      }
      entry.action = action->text;
      if (entry.action != "alloc" && entry.action != "free_completed" && entry.action != "oom" &&
          !is_segment_action(entry.action)) {
        ++read.ignored_actions[entry.action];
        continue;
      }
      if (auto ok = read_entry(item, entry, locate); !ok) return ok.error();
      entry.index = i;
      entry.device = device;
      entry.order = read.entries.size();
      entry.stack = frames.stack_of(item);
      if (entry.action != "oom") {
        read.by_device[device].push_back(
            AllocatorTraceEntry{entry.action, entry.address, entry.size, entry.stream.value_or(0)});
      }
      read.entries.push_back(std::move(entry));
    }
  }
  return read;
}

/// Per device, the bytes of each block by address.
using LiveBlocks = std::map<std::uint32_t, std::map<std::uint64_t, std::uint64_t>>;

/// Walks the trace backwards from the final state: what is live before the first entry is the
/// baseline (the ring buffer may have started mid-run).
Result<LiveBlocks> baseline_of(const EndState& end, const Entries& entries, std::string_view name) {
  auto state = end.active;
  for (auto it = entries.rbegin(); it != entries.rend(); ++it) {
    auto& live = state[it->device];
    if (it->action == "alloc") {
      const auto found = live.find(it->address);
      if (found == live.end() || found->second != it->size) {
        return Error::parse_error(
            std::string(name) + ": " + it->where + ": inconsistent snapshot: the allocation of " +
            std::to_string(it->size) + " bytes at " + hex(it->address) +
            " is neither active at snapshot time nor freed later in the trace");
      }
      live.erase(found);
    } else if (it->action == "free_completed") {
      if (!live.emplace(it->address, it->size).second) {
        return Error::parse_error(std::string(name) + ": " + it->where +
                                  ": inconsistent snapshot: a block freed while another at the "
                                  "same address is still live");
      }
    }
  }
  return state;
}

/// Passes events to the sink, counting them in the report.
class Emitter {
 public:
  Emitter(TraceSink& sink, ImportReport& report) : sink_(sink), report_(report) {}
  Result<void> operator()(const TraceEvent& event) const {
    ++report_.events;
    return sink_.event(event);
  }

 private:
  TraceSink& sink_;
  ImportReport& report_;
};

/// Writes a `layout` group: the layout line, then each segment and its blocks.
Result<void> emit_layout(std::uint32_t device, TraceEvent::LayoutPhase phase,
                         const std::vector<SegmentInfo>& segments,
                         std::optional<std::uint64_t> undetermined, const Emitter& emit) {
  TraceEvent layout;
  layout.kind = TraceEvent::Kind::Layout;
  layout.device = Gpu{device};
  layout.phase = phase;
  layout.count = segments.size();
  layout.undetermined = undetermined;
  if (auto ok = emit(layout); !ok) return ok;
  for (const SegmentInfo& segment : segments) {
    TraceEvent line;
    line.kind = TraceEvent::Kind::Segment;
    line.device = Gpu{device};
    line.bytes = segment.size;
    line.address = segment.address;
    line.stream = segment.stream;
    line.pool = segment.pool;
    line.expandable = segment.expandable;
    line.count = segment.blocks.size();
    if (auto ok = emit(line); !ok) return ok;
    for (const BlockInfo& block : segment.blocks) {
      TraceEvent block_line;
      block_line.kind = TraceEvent::Kind::Block;
      block_line.device = Gpu{device};
      block_line.bytes = block.size;
      block_line.address = segment.address + block.offset;
      block_line.block_state = block.state;
      if (auto ok = emit(block_line); !ok) return ok;
    }
  }
  return {};
}

/// @return whether `segments` make a layout the reader accepts: ascending, no overlap, tiled
bool well_formed(const std::vector<SegmentInfo>& segments) {
  for (std::size_t i = 0; i < segments.size(); ++i) {
    if (!tiling_problem(segments[i]).empty()) return false;
    if (i > 0 && segments[i].address - segments[i - 1].address < segments[i - 1].size) {
      return false;
    }
  }
  return true;
}

/// What the importer knows of each device's reserved bytes as it writes the trace.
class ReservedBytes {
 public:
  void start(std::uint32_t device, const std::vector<SegmentInfo>& segments) {
    std::optional<std::uint64_t> sum = 0;
    for (const SegmentInfo& segment : segments) {
      for (const BlockInfo& block : segment.blocks) {
        if (block.state == BlockState::unmapped || !sum) continue;
        const auto next = checked_add(*sum, block.size);
        sum = next ? std::optional<std::uint64_t>(*next) : std::nullopt;
      }
    }
    reserved_[device] = sum;
  }
  void unknown(std::uint32_t device) { reserved_[device] = std::nullopt; }
  void apply(const Entry& entry) {
    auto& reserved = reserved_[entry.device];
    if (!reserved) return;
    const bool grows = entry.action == "segment_alloc" || entry.action == "segment_map";
    const auto next =
        grows ? checked_add(*reserved, entry.size) : checked_sub(*reserved, entry.size);
    reserved = next ? std::optional<std::uint64_t>(*next) : std::nullopt;
  }
  [[nodiscard]] std::optional<std::uint64_t> of(std::uint32_t device) const {
    const auto found = reserved_.find(device);
    return found == reserved_.end() ? std::nullopt : found->second;
  }

 private:
  std::map<std::uint32_t, std::optional<std::uint64_t>> reserved_;
};

/// @return the event a trace entry becomes
TraceEvent event_of(const Entry& entry, const ReservedBytes& reserved) {
  TraceEvent event;
  if (entry.action == "oom" && (!entry.device_free || !entry.stream)) {
    // Not enough for the model to reproduce: carried as a note.
    event.kind = TraceEvent::Kind::Mark;
    event.text =
        "oom gpu:" + std::to_string(entry.device) + " requested=" + std::to_string(entry.size);
    if (entry.device_free) event.text += " device_free=" + std::to_string(*entry.device_free);
    return event;
  }
  if (entry.action == "oom") {
    event.kind = TraceEvent::Kind::Oom;
    event.device_free = entry.device_free;
    event.check_reserved = reserved.of(entry.device);
  } else if (entry.action == "alloc") {
    event.kind = TraceEvent::Kind::Allocate;
  } else if (entry.action == "free_completed") {
    event.kind = TraceEvent::Kind::Free;
  } else {
    event.kind = entry.action == "segment_alloc"  ? TraceEvent::Kind::SegmentAlloc
                 : entry.action == "segment_free" ? TraceEvent::Kind::SegmentFree
                 : entry.action == "segment_map"  ? TraceEvent::Kind::SegmentMap
                                                  : TraceEvent::Kind::SegmentUnmap;
  }
  event.device = Gpu{entry.device};
  event.bytes = entry.size;
  if (entry.action != "oom") event.address = entry.address;
  event.stream = entry.stream;
  if (is_segment_action(entry.action)) event.stream = entry.stream.value_or(0);
  event.stack = entry.stack;
  if (entry.time_us) {
    auto ns = checked_mul(*entry.time_us, 1000);
    if (ns) event.time_ns = *ns;
  }
  return event;
}

/// Where a snapshot keeps its segments and its traces.
struct SnapshotParts {
  const Value* segments{nullptr};
  const Value* device_traces{nullptr};  ///< null: no trace (the state only)
};

/// Finds the parts in any of the layouts: a dict (with or without traces) or a bare list.
Result<SnapshotParts> parts_of(const Value& root, const Locator& locate, ImportReport& report) {
  SnapshotParts parts;
  if (root.is(Value::Kind::List)) {
    parts.segments = &root;  // the oldest layout: a bare list of segments
    report.notes.emplace_back("a bare segment list (old layout): no trace, the state only");
  } else if (root.is(Value::Kind::Dict)) {
    parts.segments = root.get("segments");
    parts.device_traces = root.get("device_traces");
    if (parts.segments == nullptr) return locate.at(root, "top", "expected the key 'segments'");
  } else {
    return locate.at(root, "top",
                     "expected a dict with 'segments' or a list of segments, got a " +
                         std::string(root.kind_name()));
  }
  if (!parts.segments->is(Value::Kind::List)) {
    return locate.at(*parts.segments, "segments", "expected a list");
  }
  return parts;
}

/// Counts the trace entries not applied, with a note per action saying why.
void note_ignored_actions(const std::map<std::string, std::uint64_t>& ignored,
                          ImportReport& report) {
  for (const auto& [action, count] : ignored) {
    report.skipped += count;
    report.notes.push_back(std::to_string(count) + " '" + action + "' trace entries not applied (" +
                           (action == "free_requested" ? "the block is freed at free_completed"
                                                       : "allocator bookkeeping, not allocations") +
                           ")");
  }
}

/// @return the snapshot's allocator settings (the defaults when it has none); they go into
/// `header` only when PyTorch's syntax can say them, otherwise a note says why not
AllocatorSettings read_settings(const Value& root, TraceHeader& header, ImportReport& report) {
  const Value* settings_value =
      root.is(Value::Kind::Dict) ? root.get("allocator_settings") : nullptr;
  AllocatorSettings settings;
  if (settings_value == nullptr || !settings_value->is(Value::Kind::Dict)) return settings;
  settings = settings_of(*settings_value);
  // Carried only when PyTorch's syntax can say them (a max_split_size of whole MiB, one
  // roundup_power2_divisions for every interval): a header must read back as it was written.
  const auto written = AllocatorSettings::parse(settings.to_string());
  if (written && *written == settings) {
    header.allocator_settings = settings;
  } else {
    report.notes.push_back(
        "allocator_settings not carried into the trace: PyTorch's syntax cannot say them "
        "exactly (" +
        (written ? std::string("it would read back as '") + written->to_string() + "'"
                 : written.error().to_string()) +
        "); give them with --alloc-conf");
  }
  return settings;
}

/// @return the devices the snapshot mentions: in its segments, its traces or its baseline
std::set<std::uint32_t> devices_of(const EndState& end, const Entries& entries,
                                   const LiveBlocks& before) {
  std::set<std::uint32_t> devices;
  for (const auto& [device, list] : end.segments)
    devices.insert(device);
  for (const Entry& entry : entries)
    devices.insert(entry.device);
  for (const auto& [device, live] : before)
    devices.insert(device);
  return devices;
}

/// @return the segments of `device` at snapshot time (none when the snapshot has none)
const std::vector<SegmentInfo>& end_segments_of(const EndState& end, std::uint32_t device) {
  static const std::vector<SegmentInfo> no_segments;
  const auto found = end.segments.find(device);
  return found == end.segments.end() ? no_segments : found->second;
}

/// Writes a read snapshot as events, in order: per device its start and baseline, then the
/// trace entries, then the snapshot's own truth at the end.
class SnapshotWriter {
 public:
  SnapshotWriter(const EndState& end, const LiveBlocks& before, TraceSink& sink,
                 ImportReport& report)
      : end_(end), before_(before), sink_(sink), report_(report), emit_(sink, report) {}

  /// Per device: the allocator's state before its first operation (when its trace began
  /// mid-run), then its baseline allocations.
  Result<void> write_starts(const std::set<std::uint32_t>& devices, const TraceEntries& traces,
                            const AllocatorSettings& settings) {
    static const std::vector<AllocatorTraceEntry> no_entries;
    std::uint64_t baseline_blocks = 0;
    for (const std::uint32_t device : devices) {
      const auto found = traces.by_device.find(device);
      const auto& trace = found == traces.by_device.end() ? no_entries : found->second;
      if (auto ok = write_start(device, trace, settings); !ok) return ok;
      auto written = write_baseline(device, trace);
      if (!written) return written.error();
      baseline_blocks += *written;
    }
    if (baseline_blocks != 0) {
      report_.notes.push_back("baseline: " + std::to_string(baseline_blocks) +
                              " blocks live before the first trace entry (the ring buffer "
                              "started mid-run), reconstructed from the state at snapshot time");
    }
    return {};
  }

  /// The trace entries, devices' traces merged by time when every entry has one (stable: ties
  /// keep their order).
  Result<void> write_entries(Entries& entries) {
    const bool timed = std::all_of(entries.begin(), entries.end(),
                                   [](const Entry& e) { return e.time_us.has_value(); });
    if (timed) {
      std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
        return *a.time_us != *b.time_us ? *a.time_us < *b.time_us : a.order < b.order;
      });
    }
    std::uint64_t segment_events = 0;
    for (const Entry& entry : entries) {
      const TraceEvent event = event_of(entry, reserved_);
      if (is_segment_action(entry.action)) {
        reserved_.apply(entry);
        ++segment_events;
      }
      sink_.origin(entry.index);
      if (auto ok = emit_(event); !ok) return ok;
    }
    if (segment_events != 0) {
      report_.notes.push_back(std::to_string(segment_events) +
                              " segment events (cudaMalloc, cudaFree, map, unmap) carried for the "
                              "pytorch allocator model");
    }
    return {};
  }

  /// The snapshot's own truth: the bytes of the active blocks at the end, and every segment.
  Result<void> write_end(const std::set<std::uint32_t>& devices) {
    for (const auto& [device, total] : end_.active_bytes) {
      TraceEvent check;
      check.kind = TraceEvent::Kind::Check;
      check.device = Gpu{device};
      check.check_allocated = total;
      if (auto ok = emit_(check); !ok) return ok;
    }
    for (const std::uint32_t device : devices) {
      if (const auto problem = end_.undescribed.find(device); problem != end_.undescribed.end()) {
        report_.notes.push_back("gpu:" + std::to_string(device) +
                                ": no end layout: " + problem->second);
        continue;
      }
      if (auto ok = emit_layout(device, TraceEvent::LayoutPhase::check,
                                end_segments_of(end_, device), std::nullopt, emit_);
          !ok) {
        return ok;
      }
    }
    return {};
  }

 private:
  /// The allocator's start on `device` when its trace began mid-run; what is known of its
  /// reserved bytes from there on.
  Result<void> write_start(std::uint32_t device, const std::vector<AllocatorTraceEntry>& trace,
                           const AllocatorSettings& settings) {
    const auto& end_segments = end_segments_of(end_, device);
    if (end_.undescribed.contains(device)) {
      reserved_.unknown(device);
      return {};
    }
    if (!began_mid_run(end_segments, trace)) {
      reserved_.start(device, {});
      return {};
    }
    const AllocatorStart start = reconstruct_start(settings, end_segments, trace);
    if (!well_formed(start.segments)) {
      reserved_.unknown(device);
      report_.notes.push_back("gpu:" + std::to_string(device) +
                              ": the allocator's start could not be reconstructed consistently: "
                              "no start layout");
      return {};
    }
    reserved_.start(device, start.segments);
    if (auto ok = emit_layout(device, TraceEvent::LayoutPhase::start, start.segments,
                              start.undetermined, emit_);
        !ok) {
      return ok;
    }
    report_.notes.push_back("gpu:" + std::to_string(device) +
                            ": the trace began mid-run: the allocator's start reconstructed (" +
                            std::to_string(start.segments.size()) + " segments, " +
                            std::to_string(start.undetermined) +
                            " blocks whose extent the recording does not determine)");
    return {};
  }

  /// The blocks live on `device` before its first trace entry.
  /// @return how many
  Result<std::uint64_t> write_baseline(std::uint32_t device,
                                       const std::vector<AllocatorTraceEntry>& trace) {
    const auto live = before_.find(device);
    if (live == before_.end()) return 0;
    const auto stacks = end_.active_stacks.find(device);
    std::set<std::uint64_t> allocated_in_trace;  // their end blocks are not the baseline's
    for (const AllocatorTraceEntry& entry : trace) {
      if (entry.action == "alloc") allocated_in_trace.insert(entry.addr);
    }
    for (const auto& [address, size] : live->second) {
      TraceEvent event = TraceEvent::allocate(Gpu{device}, size);
      event.kind = TraceEvent::Kind::Baseline;
      event.address = address;
      if (stacks != end_.active_stacks.end()) {
        // A block still allocated at the end keeps the frames of its allocation.
        const auto stack = stacks->second.find(address);
        if (stack != stacks->second.end() && !allocated_in_trace.contains(address)) {
          event.stack = stack->second;
        }
      }
      if (auto ok = emit_(event); !ok) return ok.error();
    }
    return live->second.size();
  }

  const EndState& end_;
  const LiveBlocks& before_;
  TraceSink& sink_;
  ImportReport& report_;
  Emitter emit_;
  ReservedBytes reserved_;
};

/// Puts the frame table into `header`, with a note when frames were cut.
void add_frames(TraceHeader& header, const FrameInterner& frames, ImportReport& report) {
  if (!frames.table()->empty()) header.frames = frames.table();
  if (const std::string cuts = frames.cuts(); !cuts.empty()) report.notes.push_back(cuts);
}

}  // namespace

Result<ImportReport> import_pytorch_snapshot_value(const pickle::Value& root, std::string_view name,
                                                   TraceSink& sink) {
  const Locator locate(name);
  ImportReport report;
  const auto parts = parts_of(root, locate, report);
  if (!parts) return parts.error();

  FrameInterner frames;
  auto end = read_end_state(*parts->segments, frames, locate);
  if (!end) return end.error();
  TraceEntries traces;
  if (parts->device_traces != nullptr) {
    auto read = read_traces(*parts->device_traces, frames, locate);
    if (!read) return read.error();
    traces = std::move(*read);
  }
  Entries& entries = traces.entries;
  note_ignored_actions(traces.ignored_actions, report);
  auto state = baseline_of(*end, entries, name);
  if (!state) return state.error();

  if (entries.empty() && state->empty() && end->active.empty()) {
    return Error::parse_error(
        std::string(name) +
        ": a PyTorch snapshot with no allocations: no active blocks and no alloc/free trace "
        "entries, nothing to replay (record with torch.cuda.memory._record_memory_history() "
        "before the run, then _dump_snapshot())");
  }
  report.origin_unit = "device_traces entry";
  TraceHeader header;
  header.source = "pytorch-snapshot " + std::string(name) + " (" +
                  std::to_string(parts->segments->items.size()) + " segments, " +
                  std::to_string(entries.size()) + " alloc/free/segment/oom trace entries)";
  const AllocatorSettings settings = read_settings(root, header, report);
  add_frames(header, frames, report);
  if (auto ok = sink.header(header); !ok) return ok.error();

  SnapshotWriter writer(*end, *state, sink, report);
  const std::set<std::uint32_t> devices = devices_of(*end, entries, *state);
  if (auto ok = writer.write_starts(devices, traces, settings); !ok) return ok.error();
  if (auto ok = writer.write_entries(entries); !ok) return ok.error();
  if (auto ok = writer.write_end(devices); !ok) return ok.error();
  return report;
}

Result<ImportReport> import_pytorch_snapshot(std::string_view bytes, std::string_view name,
                                             TraceSink& sink) {
  auto document = pickle::parse(bytes, name);
  if (!document) return document.error();
  return import_pytorch_snapshot_value(*document->root, name, sink);
}

}  // namespace memtrack::traces
