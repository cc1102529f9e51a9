// torch.profiler (Kineto) Chrome-trace JSON with profile_memory=True: the "[memory]" instant
// events, per device, sorted by time; "Total Allocated" after each event becomes a checkpoint.
//
// Read with simdjson's on-demand API: one pass over the bytes, keeping only the memory events and
// deviceProperties (memory follows the memory events, not the size of the trace). Every value the
// importer does not need is still read to its end, so a file that is not JSON is refused
// wherever the fault is.
#include <memtrack/traces/importers.hpp>

#include <memtrack/units.hpp>

#include "import_support.hpp"

#include <simdjson.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <map>
#include <optional>
#include <utility>

namespace memtrack::traces {
namespace {

namespace ondemand = simdjson::ondemand;

/// A JSON number as the file wrote it.
struct Number {
  bool present{false};
  bool integral{false};  ///< fits in a signed 64-bit integer
  std::int64_t integer{0};
  double real{0};
};

/// One "[memory]" event, with the fields memory events use.
struct RawEvent {
  std::uint64_t index{0};  ///< its position in the file's event array, 0-based
  Number ts;
  Number device_type, device_id, address, bytes, total_allocated, total_reserved;
  bool has_args{false};
};

/// One entry of deviceProperties.
struct RawDevice {
  Number id, total;
  std::string name;
};

/// Thrown when the bytes are not JSON: simdjson's error and where it was found.
struct NotJson {
  simdjson::error_code code;
  const char* where;  ///< into the padded copy, or null when simdjson could not say
};

/**
 * @brief Where a file that is not JSON first goes wrong, in the words of a reader that checks
 * every byte in order (nlohmann's): simdjson finds structural faults before it reads a value and
 * cannot always say where. Run only on a file simdjson refused.
 */
class FirstJsonError final : public nlohmann::json_sax<nlohmann::json> {
 public:
  std::string error;
  std::size_t byte{0};

  bool null() override { return true; }
  bool boolean(bool /*value*/) override { return true; }
  bool number_integer(number_integer_t /*value*/) override { return true; }
  bool number_unsigned(number_unsigned_t /*value*/) override { return true; }
  bool number_float(number_float_t /*value*/, const string_t& /*text*/) override { return true; }
  bool string(string_t& /*value*/) override { return true; }
  bool binary(binary_t& /*value*/) override { return true; }
  bool key(string_t& /*value*/) override { return true; }
  bool start_object(std::size_t /*elements*/) override { return true; }
  bool end_object() override { return true; }
  bool start_array(std::size_t /*elements*/) override { return true; }
  bool end_array() override { return true; }
  bool parse_error(std::size_t position, const std::string& /*token*/,
                   const nlohmann::detail::exception& e) override {
    byte = position;
    error = e.what();
    return false;
  }
};

/**
 * @brief The memory events and devices of a Chrome trace, read in one pass.
 *
 * What it keeps, with the rules of a streaming reader: elements of the event array that are
 * objects count as events (`index`); a field seen twice takes its last value; a scalar that is
 * not a number (a string, true, null) makes a numeric field absent; objects and arrays where a
 * scalar belongs are ignored.
 */
class KinetoReader {
 public:
  std::vector<RawEvent> events;  ///< the "[memory]" events, in file order
  std::vector<RawDevice> devices;
  std::uint64_t events_seen{0};  ///< every event object of the trace, memory or not
  bool has_event_array{false};   ///< a root array, or an object with 'traceEvents'

  void read(ondemand::document& document) {
    const ondemand::json_type type = get(document.type());
    if (type == ondemand::json_type::array) {
      has_event_array = true;
      read_events(get(document.get_array()));
    } else if (type == ondemand::json_type::object) {
      for (auto field : get(document.get_object())) {
        const std::string_view key = get(field.unescaped_key());
        ondemand::value value = get(field.value());
        const ondemand::json_type field_type = get(value.type());
        if (key == "traceEvents" && field_type == ondemand::json_type::array) {
          has_event_array = true;
          read_events(get(value.get_array()));
        } else if (key == "deviceProperties" && field_type == ondemand::json_type::array) {
          read_devices(get(value.get_array()));
        } else {
          skip(value);
        }
      }
    } else {
      return;  // a scalar: no Chrome trace, refused as such
    }
    // Anything after the root value (the location is out of bounds only at the end).
    if (const char* rest = nullptr; document.current_location().get(rest) == simdjson::SUCCESS) {
      throw NotJson{simdjson::TRAILING_CONTENT, rest};
    }
  }

 private:
  /// @return the value, or throws NotJson with simdjson's error
  template <class T>
  static T get(simdjson::simdjson_result<T>&& result) {
    T value{};
    if (const auto error = std::move(result).get(value); error != simdjson::SUCCESS) {
      throw NotJson{error, nullptr};
    }
    return value;
  }

  void read_events(ondemand::array array) {
    for (auto element : array) {
      ondemand::value value = get(std::move(element));
      if (get(value.type()) != ondemand::json_type::object) {
        skip(value);
        continue;
      }
      read_event(get(value.get_object()), events_seen++);
    }
  }

  void read_event(ondemand::object object, std::uint64_t index) {
    RawEvent event;
    event.index = index;
    bool is_memory = false;
    for (auto field : object) {
      const std::string_view key = get(field.unescaped_key());
      ondemand::value value = get(field.value());
      const ondemand::json_type type = get(value.type());
      if (key == "name" && type == ondemand::json_type::string) {
        is_memory = get(value.get_string()) == "[memory]";
      } else if (key == "ts") {
        scalar(value, type, event.ts);
      } else if (key == "args" && type == ondemand::json_type::object) {
        event.has_args = true;
        read_args(get(value.get_object()), event);
      } else {
        skip(value);
      }
    }
    if (is_memory) events.push_back(event);
  }

  void read_args(ondemand::object object, RawEvent& event) {
    for (auto field : object) {
      const std::string_view key = get(field.unescaped_key());
      ondemand::value value = get(field.value());
      const ondemand::json_type type = get(value.type());
      Number* number = key == "Device Type"       ? &event.device_type
                       : key == "Device Id"       ? &event.device_id
                       : key == "Addr"            ? &event.address
                       : key == "Bytes"           ? &event.bytes
                       : key == "Total Allocated" ? &event.total_allocated
                       : key == "Total Reserved"  ? &event.total_reserved
                                                  : nullptr;
      if (number != nullptr) {
        scalar(value, type, *number);
      } else {
        skip(value);
      }
    }
  }

  void read_devices(ondemand::array array) {
    for (auto element : array) {
      ondemand::value value = get(std::move(element));
      if (get(value.type()) != ondemand::json_type::object) {
        skip(value);
        continue;
      }
      RawDevice& device = devices.emplace_back();
      for (auto field : get(value.get_object())) {
        const std::string_view key = get(field.unescaped_key());
        ondemand::value field_value = get(field.value());
        const ondemand::json_type type = get(field_value.type());
        if (key == "id") {
          scalar(field_value, type, device.id);
        } else if (key == "totalGlobalMem") {
          scalar(field_value, type, device.total);
        } else if (key == "name" && type == ondemand::json_type::string) {
          device.name = std::string(get(field_value.get_string()));
        } else {
          skip(field_value);
        }
      }
    }
  }

  /// Reads a scalar into `number` (absent unless it is a number); an object or array is skipped
  /// and leaves `number` as it was.
  void scalar(ondemand::value& value, ondemand::json_type type, Number& number) {
    if (type == ondemand::json_type::object || type == ondemand::json_type::array) {
      skip(value);
      return;
    }
    if (type != ondemand::json_type::number) {
      skip_scalar(value);
      number = Number{};
      return;
    }
    number = read_number(value);
  }

  /// A number as a JSON reader that keeps 64-bit integers exact reports it: an integer that fits
  /// in int64 is integral; a larger one, or one with a fraction or an exponent, is real.
  static Number read_number(ondemand::value& value) {
    const std::string_view token = value.raw_json_token();
    ondemand::number number;
    if (const auto error = value.get_number().get(number); error != simdjson::SUCCESS) {
      // An integer past 2^64 - 1 is still a JSON number: its value as a double.
      double real = 0;
      if (error != simdjson::NUMBER_ERROR) {
        throw NotJson{error, token.data()};
      }
      if (const auto again = value.get_double().get(real); again != simdjson::SUCCESS) {
        throw NotJson{again, token.data()};
      }
      return Number{true, false, 0, real};
    }
    switch (number.get_number_type()) {
      case ondemand::number_type::signed_integer:
        return Number{true, true, number.get_int64(), static_cast<double>(number.get_int64())};
      case ondemand::number_type::unsigned_integer:
        return Number{true, false, 0, static_cast<double>(number.get_uint64())};
      case ondemand::number_type::floating_point_number:
        break;
    }
    return Number{true, false, 0, number.get_double()};
  }

  /// How deep objects and arrays may nest in a value the importer skips (a Chrome trace nests
  /// a few levels; the walk is recursive, so its depth is bounded).
  static constexpr int max_skip_depth = 1024;

  /// Reads a value the importer does not need to its end, so that what is not JSON is refused.
  void skip(ondemand::value& value, int depth = 0) {
    if (depth > max_skip_depth) {
      throw NotJson{simdjson::DEPTH_ERROR, value.raw_json_token().data()};
    }
    switch (get(value.type())) {
      case ondemand::json_type::object:
        for (auto field : get(value.get_object())) {
          get(field.unescaped_key());
          ondemand::value inner = get(field.value());
          skip(inner, depth + 1);
        }
        break;
      case ondemand::json_type::array:
        for (auto element : get(value.get_array())) {
          ondemand::value inner = get(std::move(element));
          skip(inner, depth + 1);
        }
        break;
      default:
        skip_scalar(value);
        break;
    }
  }

  static void skip_scalar(ondemand::value& value) {
    switch (get(value.type())) {
      case ondemand::json_type::number:
        read_number(value);
        break;
      case ondemand::json_type::string:
        get(value.get_string());
        break;
      case ondemand::json_type::boolean:
        get(value.get_bool());
        break;
      case ondemand::json_type::null:
        if (!get(value.is_null())) throw NotJson{simdjson::N_ATOM_ERROR, nullptr};
        break;
      default:
        break;
    }
  }
};

struct MemoryEvent {
  std::size_t index{0};         ///< position among the memory events, in file order
  std::uint64_t json_index{0};  ///< position in the file's event array
  double ts{0};
  std::optional<std::uint64_t> ts_integer;  ///< exact when the file has an integer
  DevicePlacement device{};
  std::int64_t bytes{0};
  std::uint64_t address{0};
  std::optional<std::uint64_t> total_allocated;
  std::optional<std::uint64_t> total_reserved;
};

}  // namespace

namespace {

static_assert(json_padding_bytes >= simdjson::SIMDJSON_PADDING);

/**
 * @brief Reads the file's memory events and devices into `handler`.
 * @param spare readable bytes after `bytes` (a buffer's spare capacity): with simdjson's padding
 * the bytes are parsed in place, otherwise through a padded copy
 */
Result<void> read_kineto_json(std::string_view bytes, std::size_t spare, const std::string& file,
                              KinetoReader& handler) {
  // simdjson reads in blocks past the end of its input: it needs SIMDJSON_PADDING readable bytes
  // there, the buffer's own or a padded copy's (alive only while the file is read).
  std::optional<simdjson::padded_string> copy;
  if (spare < simdjson::SIMDJSON_PADDING) copy.emplace(bytes);
  const simdjson::padded_string_view json =
      copy ? simdjson::padded_string_view(*copy)
           : simdjson::padded_string_view(bytes.data(), bytes.size(), bytes.size() + spare);
  ondemand::parser parser;
  ondemand::document document;
  try {
    if (const auto error = parser.iterate(json).get(document); error != simdjson::SUCCESS) {
      throw NotJson{error, nullptr};
    }
    handler.read(document);
  } catch (const NotJson& not_json) {
    FirstJsonError first;
    if (!nlohmann::json::sax_parse(bytes.begin(), bytes.end(), &first)) {
      return Error::parse_error(
          file + ": byte " + std::to_string(first.byte) +
          ": not valid JSON (expected a Chrome trace from torch.profiler): " + first.error);
    }
    // JSON to a reader without simdjson's limits (a nesting depth past 1024, ...).
    const std::size_t byte = not_json.where != nullptr
                                 ? static_cast<std::size_t>(not_json.where - json.data())
                                 : bytes.size();
    return Error::parse_error(file + ": byte " + std::to_string(std::min(byte, bytes.size())) +
                              ": cannot read this JSON (expected a Chrome trace from "
                              "torch.profiler): " +
                              simdjson::error_message(not_json.code));
  }
  if (!handler.has_event_array) {
    return Error::parse_error(file +
                              ": not a Chrome trace: expected an object with 'traceEvents' or an "
                              "array of events (a torch.profiler trace exported with "
                              "export_chrome_trace)");
  }
  return {};
}

/**
 * @brief One raw event as a memory event of the CPU or a CUDA device.
 * @return the event, nothing for another device type (counted in `other_device_types`), or
 * the error, placed by `where`
 */
template <class Where>
Result<std::optional<MemoryEvent>> memory_event(
    const RawEvent& e, std::size_t index, const Where& where,
    std::map<std::int64_t, std::uint64_t>& other_device_types) {
  if (!e.has_args) return Error::parse_error(where() + ": no 'args'");
  if (!e.device_type.integral || !e.device_id.integral || !e.bytes.integral) {
    return Error::parse_error(where() +
                              ": expected integer args 'Device Type', 'Device Id' and 'Bytes'");
  }
  MemoryEvent event;
  event.index = index;
  event.json_index = e.index;
  const std::int64_t type = e.device_type.integer;
  const std::int64_t id = e.device_id.integer;
  if (type == 1) {
    if (id < 0 || id > INT32_MAX) {
      return Error::parse_error(where() + ": CUDA 'Device Id' " + std::to_string(id) +
                                " out of range");
    }
    event.device = Gpu{static_cast<std::uint32_t>(id)};
  } else if (type == 0) {
    event.device = Cpu{};
  } else {
    ++other_device_types[type];
    return std::optional<MemoryEvent>{};
  }
  if (!e.ts.present) return Error::parse_error(where() + ": no numeric 'ts'");
  event.ts = e.ts.real;
  if (e.ts.integral && e.ts.integer >= 0) {
    event.ts_integer = static_cast<std::uint64_t>(e.ts.integer);
  }
  event.bytes = e.bytes.integer;
  if (event.bytes == INT64_MIN) return Error::parse_error(where() + ": 'Bytes' out of range");
  if (e.address.integral) event.address = static_cast<std::uint64_t>(e.address.integer);
  if (e.total_allocated.present) {
    if (!e.total_allocated.integral || e.total_allocated.integer < 0) {
      return Error::parse_error(where() + ": expected 'Total Allocated' as a non-negative integer");
    }
    event.total_allocated = static_cast<std::uint64_t>(e.total_allocated.integer);
  }
  if (e.total_reserved.integral && e.total_reserved.integer >= 0) {
    event.total_reserved = static_cast<std::uint64_t>(e.total_reserved.integer);
  }
  return std::optional<MemoryEvent>(event);
}

/// @return the CPU and CUDA memory events in time order (ties in file order), the others
/// counted in the report's notes; an error when there are none
Result<std::vector<MemoryEvent>> memory_events(const KinetoReader& handler, const std::string& file,
                                               ImportReport& report) {
  std::vector<MemoryEvent> memory;
  std::map<std::int64_t, std::uint64_t> other_device_types;
  for (const RawEvent& e : handler.events) {
    // Built only for an error: most files have millions of events and none.
    const auto where = [&] {
      return file + ": traceEvents index " + std::to_string(e.index) + " ([memory] event " +
             std::to_string(memory.size() + 1) + ")";
    };
    auto event = memory_event(e, memory.size(), where, other_device_types);
    if (!event) return event.error();
    if (*event) memory.push_back(**event);
  }
  for (const auto& [type, count] : other_device_types) {
    report.skipped += count;
    report.notes.push_back(std::to_string(count) + " [memory] events on Device Type " +
                           std::to_string(type) + " (neither CPU 0 nor CUDA 1): not imported");
  }
  if (memory.empty()) {
    return Error::parse_error(file +
                              ": a JSON file with no CPU or CUDA [memory] events among its " +
                              std::to_string(handler.events_seen) +
                              " trace events: nothing to replay (record with "
                              "torch.profiler.profile(profile_memory=True))");
  }
  // Events are written per thread; their time orders them (ties keep file order).
  std::sort(memory.begin(), memory.end(), [](const MemoryEvent& a, const MemoryEvent& b) {
    return a.ts != b.ts ? a.ts < b.ts : a.index < b.index;
  });
  return memory;
}

/// The trace's header: deviceProperties gives each GPU's total (the recording ran on the whole
/// device), kept only when it describes every GPU the events use.
TraceHeader kineto_header(const KinetoReader& handler, const std::vector<MemoryEvent>& memory,
                          const std::string& file, ImportReport& report) {
  TraceHeader header;
  header.source = "kineto " + file + " (" + std::to_string(memory.size()) + " [memory] events)";
  if (handler.devices.empty()) return header;
  GpuConfig config;
  config.memory_fraction = Fraction::of(1, 1).value();
  for (const RawDevice& device : handler.devices) {
    if (!device.id.integral || !device.total.integral || device.id.integer < 0 ||
        device.id.integer > INT32_MAX || device.total.integer <= 0) {
      continue;
    }
    GpuSpec gpu;
    gpu.id = static_cast<std::uint32_t>(device.id.integer);
    gpu.total_bytes = static_cast<std::uint64_t>(device.total.integer);
    gpu.name = detail::printable(device.name);
    config.gpus.push_back(std::move(gpu));
  }
  bool every_gpu_declared = true;
  for (const MemoryEvent& event : memory) {
    if (!event.device.is_gpu()) continue;
    every_gpu_declared = every_gpu_declared && std::any_of(config.gpus.begin(), config.gpus.end(),
                                                           [&](const GpuSpec& gpu) {
                                                             return gpu.id == event.device.gpu_id();
                                                           });
  }
  if (every_gpu_declared && !config.gpus.empty() && validate(config)) {
    header.config = std::move(config);
  } else {
    report.notes.emplace_back(
        "deviceProperties does not describe every device used: no device table (replay with "
        "--profile)");
  }
  return header;
}

/// Writes the events to the sink, counted in the report.
struct KinetoEmitter {
  TraceSink& sink;
  ImportReport& report;

  Result<void> emit(const TraceEvent& event) {
    ++report.events;
    return sink.event(event);
  }

  /// Memory in use before each device's first event: its "Total Allocated" minus its own change.
  Result<void> baselines(const std::vector<MemoryEvent>& memory, const std::string& file) {
    std::map<DevicePlacement, bool> seen;
    for (const MemoryEvent& event : memory) {
      if (seen[event.device] || !event.total_allocated) continue;
      seen[event.device] = true;
      const std::int64_t before = static_cast<std::int64_t>(*event.total_allocated) - event.bytes;
      if (before < 0) {
        return Error::parse_error(file + ": traceEvents index " + std::to_string(event.json_index) +
                                  ": 'Total Allocated' " + std::to_string(*event.total_allocated) +
                                  " is less than its own allocation of " +
                                  std::to_string(event.bytes) + " bytes");
      }
      if (before == 0) continue;
      sink.origin(event.json_index);
      TraceEvent baseline = TraceEvent::allocate(event.device, static_cast<std::uint64_t>(before));
      baseline.kind = TraceEvent::Kind::Baseline;
      if (auto ok = emit(baseline); !ok) return ok.error();
      report.notes.push_back("baseline: " + std::to_string(before) +
                             " bytes already allocated on " + event.device.to_string() +
                             " when the recording started");
    }
    return {};
  }

  /// Each memory event as an alloc or a free, followed by a check of its "Total Allocated".
  Result<void> operations(const std::vector<MemoryEvent>& memory) {
    for (const MemoryEvent& m : memory) {
      const std::uint64_t size = m.bytes < 0 ? static_cast<std::uint64_t>(-(m.bytes + 1)) + 1
                                             : static_cast<std::uint64_t>(m.bytes);
      sink.origin(m.json_index);
      TraceEvent event =
          m.bytes < 0 ? TraceEvent::free(m.device, size) : TraceEvent::allocate(m.device, size);
      event.address = m.address;
      if (m.ts_integer) {
        event.time_ns = checked_mul(*m.ts_integer, 1000);
      } else if (m.ts >= 0 && m.ts < 1.8e16) {  // microseconds that fit in 64-bit nanoseconds
        event.time_ns = static_cast<std::uint64_t>(m.ts * 1000.0 + 0.5);
      }
      if (auto ok = emit(event); !ok) return ok.error();
      if (!m.total_allocated) continue;
      TraceEvent check;
      check.kind = TraceEvent::Kind::Check;
      check.device = m.device;
      check.check_allocated = m.total_allocated;
      check.check_reserved = m.total_reserved;
      if (auto ok = emit(check); !ok) return ok.error();
    }
    return {};
  }
};

}  // namespace

Result<ImportReport> import_kineto(std::string_view bytes, std::string_view name, TraceSink& sink,
                                   std::size_t spare_capacity) {
  const std::string file(name);
  KinetoReader handler;
  if (auto ok = read_kineto_json(bytes, spare_capacity, file, handler); !ok) return ok.error();
  ImportReport report;
  report.origin_unit = "traceEvents index";
  auto memory = memory_events(handler, file, report);
  if (!memory) return memory.error();
  if (auto ok = sink.header(kineto_header(handler, *memory, file, report)); !ok) {
    return ok.error();
  }
  KinetoEmitter emitter{sink, report};
  if (auto ok = emitter.baselines(*memory, file); !ok) return ok.error();
  if (auto ok = emitter.operations(*memory); !ok) return ok.error();
  return report;
}

}  // namespace memtrack::traces
