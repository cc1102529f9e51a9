// torch.profiler (Kineto) Chrome-trace JSON with profile_memory=True: the "[memory]" instant
// events, per device, sorted by time; "Total Allocated" after each event becomes a checkpoint.
#include <memtrack/traces/importers.hpp>

#include <memtrack/units.hpp>

#include "import_support.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <map>
#include <utility>

namespace memtrack::traces {
namespace {

using nlohmann::json;

struct MemoryEvent {
  std::size_t index{0};  ///< position among the memory events, in file order
  double ts{0};
  std::optional<std::uint64_t> ts_integer;  ///< exact when the file has an integer
  DevicePlacement device{};
  std::int64_t bytes{0};
  std::uint64_t address{0};
  std::optional<std::uint64_t> total_allocated;
  std::optional<std::uint64_t> total_reserved;
};

std::optional<std::int64_t> integer(const json& object, std::string_view key) {
  const auto it = object.find(key);
  if (it == object.end()) return std::nullopt;
  if (it->is_number_integer()) return it->get<std::int64_t>();
  if (it->is_number_unsigned()) {
    const auto value = it->get<std::uint64_t>();
    if (value <= static_cast<std::uint64_t>(INT64_MAX)) return static_cast<std::int64_t>(value);
  }
  return std::nullopt;
}

}  // namespace

Result<ImportReport> import_kineto(std::string_view bytes, std::string_view name, TraceSink& sink) {
  const std::string file(name);
  // Keep only what is needed: "[memory]" events and deviceProperties; drop the rest while
  // parsing, so memory follows the memory events, not the whole trace.
  std::string top_key;
  bool top_is_array = false;
  const json::parser_callback_t keep = [&](int depth, json::parse_event_t event, json& parsed) {
    if (depth == 0 && event == json::parse_event_t::array_start) top_is_array = true;
    if (depth == 1 && event == json::parse_event_t::key) top_key = parsed.get<std::string>();
    const bool is_event = top_is_array ? depth == 1 : (depth == 2 && top_key == "traceEvents");
    if (is_event && event == json::parse_event_t::object_end) {
      const auto it = parsed.find("name");
      return it != parsed.end() && it->is_string() && *it == "[memory]";
    }
    return true;
  };
  json document;
  try {
    document = json::parse(bytes.begin(), bytes.end(), keep);
  } catch (const json::parse_error& e) {
    return Error::parse_error(
        file + ": byte " + std::to_string(e.byte) +
        ": not valid JSON (expected a Chrome trace from torch.profiler): " + e.what());
  }
  const json* events = nullptr;
  if (document.is_array()) {
    events = &document;
  } else if (document.is_object() && document.contains("traceEvents") &&
             document["traceEvents"].is_array()) {
    events = &document["traceEvents"];
  } else {
    return Error::parse_error(file +
                              ": expected a Chrome trace: an object with 'traceEvents' or "
                              "an array of events");
  }

  ImportReport report;
  std::vector<MemoryEvent> memory;
  std::map<std::int64_t, std::uint64_t> other_device_types;
  for (std::size_t i = 0; i < events->size(); ++i) {
    const json& e = (*events)[i];
    if (!e.is_object()) continue;
    const auto name_it = e.find("name");
    if (name_it == e.end() || *name_it != "[memory]") continue;
    const std::string where = file + ": [memory] event " + std::to_string(memory.size() + 1);
    const auto args = e.find("args");
    if (args == e.end() || !args->is_object()) return Error::parse_error(where + ": no 'args'");
    const auto type = integer(*args, "Device Type");
    const auto id = integer(*args, "Device Id");
    const auto delta = integer(*args, "Bytes");
    if (!type || !id || !delta) {
      return Error::parse_error(where +
                                ": expected integer args 'Device Type', 'Device Id' and 'Bytes'");
    }
    MemoryEvent event;
    event.index = memory.size();
    if (*type == 1) {
      if (*id < 0 || *id > INT32_MAX) {
        return Error::parse_error(where + ": CUDA 'Device Id' " + std::to_string(*id) +
                                  " out of range");
      }
      event.device = Gpu{static_cast<std::uint32_t>(*id)};
    } else if (*type == 0) {
      event.device = Cpu{};
    } else {
      ++other_device_types[*type];
      continue;
    }
    const auto ts = e.find("ts");
    if (ts == e.end() || !ts->is_number()) return Error::parse_error(where + ": no numeric 'ts'");
    event.ts = ts->get<double>();
    if (const auto exact = integer(e, "ts"); exact && *exact >= 0) {
      event.ts_integer = static_cast<std::uint64_t>(*exact);
    }
    event.bytes = *delta;
    if (const auto address = integer(*args, "Addr")) {
      event.address = static_cast<std::uint64_t>(*address);
    }
    const auto total = integer(*args, "Total Allocated");
    if (total) {
      if (*total < 0) return Error::parse_error(where + ": negative 'Total Allocated'");
      event.total_allocated = static_cast<std::uint64_t>(*total);
    }
    if (const auto reserved = integer(*args, "Total Reserved"); reserved && *reserved >= 0) {
      event.total_reserved = static_cast<std::uint64_t>(*reserved);
    }
    memory.push_back(event);
  }
  for (const auto& [type, count] : other_device_types) {
    report.skipped += count;
    report.notes.push_back(std::to_string(count) + " [memory] events on Device Type " +
                           std::to_string(type) + " (neither CPU 0 nor CUDA 1): not imported");
  }
  // Events are written per thread; their time orders them (ties keep file order).
  std::stable_sort(memory.begin(), memory.end(),
                   [](const MemoryEvent& a, const MemoryEvent& b) { return a.ts < b.ts; });

  // Devices: deviceProperties gives each GPU's total; the recording ran on the whole device.
  TraceHeader header;
  header.source = "kineto " + file + " (" + std::to_string(memory.size()) + " [memory] events)";
  if (document.is_object() && document.contains("deviceProperties") &&
      document["deviceProperties"].is_array()) {
    GpuConfig config;
    config.memory_fraction = Fraction::of(1, 1).value();
    for (const json& device : document["deviceProperties"]) {
      if (!device.is_object()) continue;
      const auto id = integer(device, "id");
      const auto total = integer(device, "totalGlobalMem");
      if (!id || !total || *id < 0 || *id > INT32_MAX || *total <= 0) continue;
      GpuSpec gpu;
      gpu.id = static_cast<std::uint32_t>(*id);
      gpu.total_bytes = static_cast<std::uint64_t>(*total);
      if (const auto it = device.find("name"); it != device.end() && it->is_string()) {
        gpu.name = it->get<std::string>();
      }
      config.gpus.push_back(std::move(gpu));
    }
    bool every_gpu_declared = true;
    for (const MemoryEvent& event : memory) {
      if (!event.device.is_gpu()) continue;
      every_gpu_declared =
          every_gpu_declared &&
          std::any_of(config.gpus.begin(), config.gpus.end(),
                      [&](const GpuSpec& gpu) { return gpu.id == event.device.gpu_id(); });
    }
    if (every_gpu_declared && !config.gpus.empty() && validate(config)) {
      header.config = std::move(config);
    } else {
      report.notes.emplace_back(
          "deviceProperties does not describe every device used: no device table (replay with "
          "--profile)");
    }
  }
  if (auto ok = sink.header(header); !ok) return ok.error();
  const auto emit = [&](const TraceEvent& event) -> Result<void> {
    ++report.events;
    return sink.event(event);
  };

  // Memory in use before the first event: its "Total Allocated" minus its own change.
  std::map<DevicePlacement, bool> seen;
  for (const MemoryEvent& event : memory) {
    if (seen[event.device] || !event.total_allocated) continue;
    seen[event.device] = true;
    const std::int64_t before = static_cast<std::int64_t>(*event.total_allocated) - event.bytes;
    if (before < 0) {
      return Error::parse_error(file + ": [memory] event " + std::to_string(event.index + 1) +
                                ": 'Total Allocated' " + std::to_string(*event.total_allocated) +
                                " is less than the bytes it frees");
    }
    if (before > 0) {
      TraceEvent baseline = TraceEvent::allocate(event.device, static_cast<std::uint64_t>(before));
      baseline.kind = TraceEvent::Kind::Baseline;
      if (auto ok = emit(baseline); !ok) return ok.error();
      report.notes.push_back("baseline: " + std::to_string(before) +
                             " bytes already allocated on " + event.device.to_string() +
                             " when the recording started");
    }
  }

  for (const MemoryEvent& m : memory) {
    const std::uint64_t size = m.bytes < 0 ? static_cast<std::uint64_t>(-(m.bytes + 1)) + 1
                                           : static_cast<std::uint64_t>(m.bytes);
    TraceEvent event =
        m.bytes < 0 ? TraceEvent::free(m.device, size) : TraceEvent::allocate(m.device, size);
    event.address = m.address;
    if (m.ts_integer) {
      event.time_ns = checked_mul(*m.ts_integer, 1000);
    } else if (m.ts >= 0 && m.ts < 1.8e16) {  // microseconds that fit in 64-bit nanoseconds
      event.time_ns = static_cast<std::uint64_t>(m.ts * 1000.0 + 0.5);
    }
    if (auto ok = emit(event); !ok) return ok.error();
    if (m.total_allocated) {
      TraceEvent check;
      check.kind = TraceEvent::Kind::Check;
      check.device = m.device;
      check.check_allocated = m.total_allocated;
      check.check_reserved = m.total_reserved;
      if (auto ok = emit(check); !ok) return ok.error();
    }
  }
  return report;
}

}  // namespace memtrack::traces
