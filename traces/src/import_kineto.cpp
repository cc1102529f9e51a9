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

/// A JSON number as the file wrote it.
struct Number {
  bool present{false};
  bool integral{false};  ///< fits in a signed 64-bit integer
  std::int64_t integer{0};
  double real{0};
};

/// One Chrome-trace event, with the fields memory events use.
struct RawEvent {
  std::uint64_t index{0};  ///< its position in the file's event array, 0-based
  std::string name;
  Number ts;
  Number device_type, device_id, address, bytes, total_allocated, total_reserved;
  bool has_args{false};
};

/// One entry of deviceProperties.
struct RawDevice {
  Number id, total;
  std::string name;
};

/**
 * @brief A SAX handler that keeps only "[memory]" events and deviceProperties: memory follows
 * the memory events, not the size of the trace, and the work is linear in the file.
 */
class KinetoHandler final : public nlohmann::json_sax<json> {
 public:
  std::vector<RawEvent> events;
  std::vector<RawDevice> devices;
  std::uint64_t events_seen{0};  ///< every event of the trace, memory or not
  bool has_event_array{false};   ///< a root array, or an object with 'traceEvents'

  std::string error;
  std::size_t error_byte{0};

  bool null() override { return scalar(Number{}, nullptr); }
  bool boolean(bool /*value*/) override { return scalar(Number{}, nullptr); }
  bool number_integer(number_integer_t value) override {
    return scalar(Number{true, true, value, static_cast<double>(value)}, nullptr);
  }
  bool number_unsigned(number_unsigned_t value) override {
    const bool fits = value <= static_cast<std::uint64_t>(INT64_MAX);
    return scalar(
        Number{true, fits, fits ? static_cast<std::int64_t>(value) : 0, static_cast<double>(value)},
        nullptr);
  }
  bool number_float(number_float_t value, const string_t& /*text*/) override {
    return scalar(Number{true, false, 0, value}, nullptr);
  }
  bool string(string_t& value) override { return scalar(Number{}, &value); }
  bool binary(binary_t& /*value*/) override { return scalar(Number{}, nullptr); }
  bool key(string_t& value) override {
    key_ = value;
    return true;
  }
  bool start_object(std::size_t /*elements*/) override {
    Frame next = Frame::Ignored;
    switch (top()) {
      case Frame::Start:
        next = Frame::RootObject;
        break;
      case Frame::RootArray:
      case Frame::EventsArray:
        next = Frame::Event;
        events.emplace_back();
        events.back().index = events_seen++;
        break;
      case Frame::Event:
        if (key_ == "args") {
          next = Frame::Args;
          events.back().has_args = true;
        }
        break;
      case Frame::DevicesArray:
        next = Frame::Device;
        devices.emplace_back();
        break;
      default:
        break;
    }
    frames_.push_back(next);
    return true;
  }
  bool end_object() override {
    const Frame done = top();
    frames_.pop_back();
    // Drop every event that is not a memory event as soon as it ends.
    if (done == Frame::Event && events.back().name != "[memory]") events.pop_back();
    return true;
  }
  bool start_array(std::size_t /*elements*/) override {
    Frame next = Frame::Ignored;
    if (top() == Frame::Start) {
      next = Frame::RootArray;
      has_event_array = true;
    } else if (top() == Frame::RootObject && key_ == "traceEvents") {
      next = Frame::EventsArray;
      has_event_array = true;
    } else if (top() == Frame::RootObject && key_ == "deviceProperties") {
      next = Frame::DevicesArray;
    }
    frames_.push_back(next);
    return true;
  }
  bool end_array() override {
    frames_.pop_back();
    return true;
  }
  bool parse_error(std::size_t position, const std::string& /*token*/,
                   const nlohmann::detail::exception& e) override {
    error_byte = position;
    error = e.what();
    return false;
  }

 private:
  enum class Frame : std::uint8_t {
    Start,
    RootObject,
    RootArray,
    EventsArray,
    Event,
    Args,
    DevicesArray,
    Device,
    Ignored
  };

  [[nodiscard]] Frame top() const { return frames_.empty() ? Frame::Start : frames_.back(); }

  bool scalar(const Number& number, const std::string* text) {
    switch (top()) {
      case Frame::Event:
        if (key_ == "name" && text != nullptr) events.back().name = *text;
        if (key_ == "ts") events.back().ts = number;
        break;
      case Frame::Args: {
        RawEvent& e = events.back();
        if (key_ == "Device Type") e.device_type = number;
        if (key_ == "Device Id") e.device_id = number;
        if (key_ == "Addr") e.address = number;
        if (key_ == "Bytes") e.bytes = number;
        if (key_ == "Total Allocated") e.total_allocated = number;
        if (key_ == "Total Reserved") e.total_reserved = number;
        break;
      }
      case Frame::Device:
        if (key_ == "id") devices.back().id = number;
        if (key_ == "totalGlobalMem") devices.back().total = number;
        if (key_ == "name" && text != nullptr) devices.back().name = *text;
        break;
      default:
        break;
    }
    return true;
  }

  std::vector<Frame> frames_;
  std::string key_;
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

Result<ImportReport> import_kineto(std::string_view bytes, std::string_view name, TraceSink& sink) {
  const std::string file(name);
  KinetoHandler handler;
  const bool parsed = json::sax_parse(bytes.begin(), bytes.end(), &handler);
  if (!parsed) {
    return Error::parse_error(
        file + ": byte " + std::to_string(handler.error_byte) +
        ": not valid JSON (expected a Chrome trace from torch.profiler): " + handler.error);
  }
  if (!handler.has_event_array) {
    return Error::parse_error(file +
                              ": not a Chrome trace: expected an object with 'traceEvents' or an "
                              "array of events (a torch.profiler trace exported with "
                              "export_chrome_trace)");
  }

  ImportReport report;
  report.origin_unit = "traceEvents index";
  std::vector<MemoryEvent> memory;
  std::map<std::int64_t, std::uint64_t> other_device_types;
  for (const RawEvent& e : handler.events) {
    const std::string where = file + ": traceEvents index " + std::to_string(e.index) +
                              " ([memory] event " + std::to_string(memory.size() + 1) + ")";
    if (!e.has_args) return Error::parse_error(where + ": no 'args'");
    if (!e.device_type.integral || !e.device_id.integral || !e.bytes.integral) {
      return Error::parse_error(where +
                                ": expected integer args 'Device Type', 'Device Id' and 'Bytes'");
    }
    MemoryEvent event;
    event.index = memory.size();
    event.json_index = e.index;
    const std::int64_t type = e.device_type.integer;
    const std::int64_t id = e.device_id.integer;
    if (type == 1) {
      if (id < 0 || id > INT32_MAX) {
        return Error::parse_error(where + ": CUDA 'Device Id' " + std::to_string(id) +
                                  " out of range");
      }
      event.device = Gpu{static_cast<std::uint32_t>(id)};
    } else if (type == 0) {
      event.device = Cpu{};
    } else {
      ++other_device_types[type];
      continue;
    }
    if (!e.ts.present) return Error::parse_error(where + ": no numeric 'ts'");
    event.ts = e.ts.real;
    if (e.ts.integral && e.ts.integer >= 0) {
      event.ts_integer = static_cast<std::uint64_t>(e.ts.integer);
    }
    event.bytes = e.bytes.integer;
    if (event.bytes == INT64_MIN) return Error::parse_error(where + ": 'Bytes' out of range");
    if (e.address.integral) event.address = static_cast<std::uint64_t>(e.address.integer);
    if (e.total_allocated.present) {
      if (!e.total_allocated.integral || e.total_allocated.integer < 0) {
        return Error::parse_error(where + ": expected 'Total Allocated' as a non-negative integer");
      }
      event.total_allocated = static_cast<std::uint64_t>(e.total_allocated.integer);
    }
    if (e.total_reserved.integral && e.total_reserved.integer >= 0) {
      event.total_reserved = static_cast<std::uint64_t>(e.total_reserved.integer);
    }
    memory.push_back(event);
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

  // Devices: deviceProperties gives each GPU's total; the recording ran on the whole device.
  TraceHeader header;
  header.source = "kineto " + file + " (" + std::to_string(memory.size()) + " [memory] events)";
  if (!handler.devices.empty()) {
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
      return Error::parse_error(file + ": traceEvents index " + std::to_string(event.json_index) +
                                ": 'Total Allocated' " + std::to_string(*event.total_allocated) +
                                " is less than its own allocation of " +
                                std::to_string(event.bytes) + " bytes");
    }
    if (before > 0) {
      sink.origin(event.json_index);
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
