// PyTorch memory snapshots (torch.cuda.memory._dump_snapshot()): the restricted pickle reader,
// then segments/blocks for the state at snapshot time and device_traces for the events.
#include <memtrack/traces/importers.hpp>
#include <memtrack/traces/pickle.hpp>

#include <memtrack/units.hpp>

#include "import_support.hpp"

#include <algorithm>
#include <map>
#include <utility>

namespace memtrack::traces {
namespace {

using detail::hex;
using pickle::Value;

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
  std::string where;
};

}  // namespace

Result<ImportReport> import_pytorch_snapshot_value(const pickle::Value& root, std::string_view name,
                                                   TraceSink& sink) {
  const Locator locate(name);
  ImportReport report;

  const Value* segments = nullptr;
  const Value* device_traces = nullptr;
  if (root.is(Value::Kind::List)) {
    segments = &root;  // the oldest layout: a bare list of segments
    report.notes.emplace_back("a bare segment list (old layout): no trace, the state only");
  } else if (root.is(Value::Kind::Dict)) {
    segments = root.get("segments");
    device_traces = root.get("device_traces");
    if (segments == nullptr) return locate.at(root, "top", "expected the key 'segments'");
  } else {
    return locate.at(root, "top",
                     "expected a dict with 'segments' or a list of segments, got a " +
                         std::string(root.kind_name()));
  }
  if (!segments->is(Value::Kind::List)) {
    return locate.at(*segments, "segments", "expected a list");
  }

  // The state at snapshot time: active blocks per device, by address.
  std::map<std::uint32_t, std::map<std::uint64_t, std::uint64_t>> active;
  std::map<std::uint32_t, std::uint64_t> active_bytes;
  for (std::size_t s = 0; s < segments->items.size(); ++s) {
    const Value& segment = *segments->items[s];
    const std::string where = "segments[" + std::to_string(s) + "]";
    if (!segment.is(Value::Kind::Dict)) return locate.at(segment, where, "expected a dict");
    auto device = unsigned_field(segment, "device", where, locate);
    if (!device) return device.error();
    if (*device > UINT32_MAX) return locate.at(segment, where, "device id beyond 2^32 - 1");
    std::uint64_t next_address = 0;
    if (segment.get("address") != nullptr) {
      auto address = unsigned_field(segment, "address", where, locate);
      if (!address) return address.error();
      next_address = *address;
    }
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
      if (!state->text.starts_with("active_")) continue;  // inactive: cached, not allocated
      // PyTorch's trace records requested sizes; blocks keep both. Account requested bytes.
      std::uint64_t block_bytes = *size;
      if (block.get("requested_size") != nullptr) {
        auto requested = unsigned_field(block, "requested_size", block_where, locate);
        if (!requested) return requested.error();
        block_bytes = *requested;
      }
      const auto id = static_cast<std::uint32_t>(*device);
      if (!active[id].emplace(address, block_bytes).second) {
        return locate.at(block, block_where, "two active blocks at the same address");
      }
      auto sum = checked_add(active_bytes[id], block_bytes);
      if (!sum) return locate.at(block, block_where, "active bytes beyond 2^64 - 1");
      active_bytes[id] = *sum;
    }
  }

  // The trace ring buffers, one per device.
  std::vector<Entry> entries;
  std::map<std::string, std::uint64_t> ignored_actions;
  if (device_traces != nullptr) {
    if (!device_traces->is(Value::Kind::List)) {
      return locate.at(*device_traces, "device_traces", "expected a list (one per device)");
    }
    for (std::size_t d = 0; d < device_traces->items.size(); ++d) {
      const Value& trace = *device_traces->items[d];
      const std::string where = "device_traces[" + std::to_string(d) + "]";
      if (!trace.is(Value::Kind::List)) return locate.at(trace, where, "expected a list");
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
        if (entry.action != "alloc" && entry.action != "free_completed" && entry.action != "oom") {
          ++ignored_actions[entry.action];
          continue;
        }
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
        entry.index = i;
        if (item.get("stream") != nullptr) {
          auto stream = unsigned_field(item, "stream", entry.where, locate);
          if (stream) entry.stream = *stream;  // some builds record stream handles as negative
        }
        if (item.get("time_us") != nullptr) {
          auto time = unsigned_field(item, "time_us", entry.where, locate);
          if (!time) return time.error();
          entry.time_us = *time;
        }
        entry.device = static_cast<std::uint32_t>(d);
        entry.order = entries.size();
        entries.push_back(std::move(entry));
      }
    }
  }
  for (const auto& [action, count] : ignored_actions) {
    report.skipped += count;
    report.notes.push_back(std::to_string(count) + " '" + action + "' trace entries not applied (" +
                           (action == "free_requested"
                                ? "the block is freed at free_completed"
                                : "segment and allocator bookkeeping, not allocations") +
                           ")");
  }

  // Walk the trace backwards from the final state: what is live before the first event is the
  // baseline (the ring buffer may have started mid-run).
  std::map<std::uint32_t, std::map<std::uint64_t, std::uint64_t>> state = active;
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

  if (entries.empty() && state.empty() && active.empty()) {
    return Error::parse_error(
        std::string(name) +
        ": a PyTorch snapshot with no allocations: no active blocks and no alloc/free trace "
        "entries, nothing to replay (record with torch.cuda.memory._record_memory_history() "
        "before the run, then _dump_snapshot())");
  }
  report.origin_unit = "device_traces entry";
  TraceHeader header;
  header.source = "pytorch-snapshot " + std::string(name) + " (" +
                  std::to_string(segments->items.size()) + " segments, " +
                  std::to_string(entries.size()) + " alloc/free/oom trace entries)";
  if (auto ok = sink.header(header); !ok) return ok.error();
  const auto emit = [&](const TraceEvent& event) -> Result<void> {
    ++report.events;
    return sink.event(event);
  };

  std::uint64_t baseline_blocks = 0;
  for (const auto& [device, live] : state) {
    for (const auto& [address, size] : live) {
      TraceEvent event = TraceEvent::allocate(Gpu{device}, size);
      event.kind = TraceEvent::Kind::Baseline;
      event.address = address;
      if (auto ok = emit(event); !ok) return ok.error();
      ++baseline_blocks;
    }
  }
  if (baseline_blocks != 0) {
    report.notes.push_back("baseline: " + std::to_string(baseline_blocks) +
                           " blocks live before the first trace entry (the ring buffer started "
                           "mid-run), reconstructed from the state at snapshot time");
  }

  // Devices' traces merged by time when every entry has one (stable: ties keep their order).
  const bool timed = std::all_of(entries.begin(), entries.end(),
                                 [](const Entry& e) { return e.time_us.has_value(); });
  if (timed) {
    std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
      return *a.time_us != *b.time_us ? *a.time_us < *b.time_us : a.order < b.order;
    });
  }
  for (const Entry& entry : entries) {
    TraceEvent event;
    if (entry.action == "oom") {
      event.kind = TraceEvent::Kind::Mark;
      event.text =
          "oom gpu:" + std::to_string(entry.device) + " requested=" + std::to_string(entry.size);
      if (entry.device_free) event.text += " device_free=" + std::to_string(*entry.device_free);
    } else {
      event = entry.action == "alloc" ? TraceEvent::allocate(Gpu{entry.device}, entry.size)
                                      : TraceEvent::free(Gpu{entry.device}, entry.size);
      event.address = entry.address;
      event.stream = entry.stream;
      if (entry.time_us) {
        auto ns = checked_mul(*entry.time_us, 1000);
        if (ns) event.time_ns = *ns;
      }
    }
    sink.origin(entry.index);
    if (auto ok = emit(event); !ok) return ok.error();
  }

  // The snapshot's own truth: the bytes of the active blocks at the end.
  for (const auto& [device, total] : active_bytes) {
    TraceEvent check;
    check.kind = TraceEvent::Kind::Check;
    check.device = Gpu{device};
    check.check_allocated = total;
    if (auto ok = emit(check); !ok) return ok.error();
  }
  return report;
}

Result<ImportReport> import_pytorch_snapshot(std::string_view bytes, std::string_view name,
                                             TraceSink& sink) {
  auto document = pickle::parse(bytes, name);
  if (!document) return document.error();
  return import_pytorch_snapshot_value(*document->root, name, sink);
}

}  // namespace memtrack::traces
