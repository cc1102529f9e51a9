// memtrack._memtrack: the Python extension module. The tracker (core/) bound as it is, the
// recordings (traces/) opened by the same code as the command line, and the command line itself
// runnable in-process (fit, replay and report in memtrack/__init__.py run it with --json).
//
// Byte counts cross the boundary as Python ints only: checked against 0 and 2^64 - 1 here, never
// converted through a float.
#include "app.hpp"
#include "pickle.hpp"
#include "trace_support.hpp"

#include <memtrack/memtrack.hpp>
#include <memtrack/sim/profile.hpp>
#include <memtrack/traces/importers.hpp>
#include <memtrack/traces/trace.hpp>
#include <memtrack/traces/writer.hpp>

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace py = pybind11;

namespace memtrack::python {
namespace {

// ---------------------------------------------------------------------------------------------
// Errors: every memtrack::Error becomes an instance of the matching class of memtrack._errors,
// with the numbers as attributes.

/// The exception classes of memtrack._errors, looked up once. Leaked on purpose: Python objects
/// must not be released after the interpreter has finalized.
struct ErrorClasses {
  py::object error, invalid_config, unknown_device, out_of_memory, ambiguous_device,
      invalid_deallocation, parse_error, io_error;
};

ErrorClasses& error_classes() {
  static ErrorClasses* classes = [] {
    const py::module_ errors = py::module_::import("memtrack._errors");
    return new ErrorClasses{errors.attr("Error"),           errors.attr("InvalidConfig"),
                            errors.attr("UnknownDevice"),   errors.attr("OutOfMemory"),
                            errors.attr("AmbiguousDevice"), errors.attr("InvalidDeallocation"),
                            errors.attr("ParseError"),      errors.attr("IoError")};
  }();
  return *classes;
}

py::object device_or_none(const Error& error) {
  return error.device ? py::object(py::str(error.device->to_string())) : py::object(py::none());
}

/// Raises `error` as its Python exception (the GIL must be held).
[[noreturn]] void raise(const Error& error) {
  const ErrorClasses& classes = error_classes();
  const py::str message(error.to_string());
  py::object exception;
  switch (error.kind) {
    case ErrorKind::InvalidConfig:
      exception = classes.invalid_config(error.detail, device_or_none(error), message);
      break;
    case ErrorKind::UnknownDevice:
      exception = classes.unknown_device(device_or_none(error), message);
      break;
    case ErrorKind::OutOfMemory:
      exception = classes.out_of_memory(device_or_none(error), error.requested_bytes,
                                        error.available_bytes, error.limit_bytes, message);
      break;
    case ErrorKind::AmbiguousDevice:
      exception = classes.ambiguous_device(error.detail, message);
      break;
    case ErrorKind::InvalidDeallocation:
      exception = classes.invalid_deallocation(device_or_none(error), error.requested_bytes,
                                               error.allocated_bytes, message);
      break;
    case ErrorKind::ParseError:
      exception = classes.parse_error(error.detail, message);
      break;
    case ErrorKind::IoError:
      exception = classes.io_error(error.detail, message);
      break;
  }
  PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(exception.ptr())), exception.ptr());
  throw py::error_already_set();
}

template <class T>
T value_or_raise(Result<T> result) {
  if (!result) raise(result.error());
  return std::move(*result);
}

void ok_or_raise(const Result<void>& result) {
  if (!result) raise(result.error());
}

// ---------------------------------------------------------------------------------------------
// Byte counts and placements from Python.

/// A byte count: a Python int from 0 to 2^64 - 1. A float, a bool or anything else is a
/// TypeError (never rounded), a negative int a ValueError, a larger one an OverflowError.
std::uint64_t to_bytes(py::handle object, const char* what) {
  PyObject* raw = object.ptr();
  if (!PyLong_Check(raw) || PyBool_Check(raw)) {
    throw py::type_error(std::string(what) + ": expected an int (bytes), got " +
                         std::string(py::str(py::type::handle_of(object).attr("__name__"))));
  }
  const unsigned long long value = PyLong_AsUnsignedLongLong(raw);
  if (value == static_cast<unsigned long long>(-1) && PyErr_Occurred() != nullptr) {
    PyErr_Clear();
    if (PyObject_RichCompareBool(raw, py::int_(0).ptr(), Py_LT) == 1) {
      throw py::value_error(std::string(what) + ": a byte count cannot be negative, got " +
                            std::string(py::str(object)));
    }
    PyErr_Format(PyExc_OverflowError, "%s: %S is larger than 2^64 - 1 = 18446744073709551615", what,
                 raw);
    throw py::error_already_set();
  }
  return static_cast<std::uint64_t>(value);
}

std::optional<std::uint64_t> to_optional_bytes(py::handle object, const char* what) {
  if (object.is_none()) return std::nullopt;
  return to_bytes(object, what);
}

/// A placement: a DevicePlacement, or its text (`cpu`, `gpu:N`, `auto`).
DevicePlacement convert_placement(py::handle object) {
  if (py::isinstance<DevicePlacement>(object)) return object.cast<DevicePlacement>();
  if (py::isinstance<py::str>(object)) {
    return value_or_raise(DevicePlacement::parse(object.cast<std::string>()));
  }
  throw py::type_error("expected a device: 'cpu', 'gpu:N', 'auto' or a DevicePlacement, got " +
                       std::string(py::str(py::type::handle_of(object).attr("__name__"))));
}

/// The same, remembering the last object converted: placements and strings are immutable, and
/// the reference kept makes its identity unique while it is remembered, so a loop that passes
/// one device again and again converts it once (the type lookup costs as much as the tracker's
/// own work). Guarded by the GIL, which every caller holds here.
DevicePlacement to_placement(py::handle object) {
  static PyObject* last_object = nullptr;
  static DevicePlacement last_value;
  if (object.ptr() == last_object) return last_value;
  const DevicePlacement value = convert_placement(object);
  PyObject* previous = last_object;
  last_object = object.inc_ref().ptr();
  last_value = value;
  Py_XDECREF(previous);
  return value;
}

/// The Python object for a placement. Placements are immutable, so the objects for `cpu`,
/// `auto` and GPUs 0 to 255 are made once and shared (allocate returns one on every call).
/// Leaked on purpose, like the error classes.
py::object placement_object(DevicePlacement placement) {
  constexpr std::size_t cached_gpus = 256;
  static auto* cache = new std::vector<py::object>(cached_gpus + 2);  // GPUs, cpu, auto
  std::size_t index = cached_gpus + (placement.is_cpu() ? 0U : 1U);
  if (placement.is_gpu()) {
    if (placement.gpu_id() >= cached_gpus) return py::cast(placement);
    index = placement.gpu_id();
  }
  py::object& slot = (*cache)[index];
  if (!slot) slot = py::cast(placement);
  return slot;
}

/// A fraction, exactly: text (`0.9`, `90%`, `9/10`), a fractions.Fraction, or the int 1.
Fraction to_fraction(py::handle object) {
  if (py::isinstance<py::str>(object)) {
    return value_or_raise(Fraction::parse(object.cast<std::string>()));
  }
  if (PyFloat_Check(object.ptr())) {
    throw py::type_error(
        "memory_fraction: a float is not exact; give text ('0.9', '90%', '9/10') or a "
        "fractions.Fraction");
  }
  if (py::hasattr(object, "numerator") && py::hasattr(object, "denominator")) {
    return value_or_raise(Fraction::of(to_bytes(object.attr("numerator"), "numerator"),
                                       to_bytes(object.attr("denominator"), "denominator")));
  }
  throw py::type_error(
      "memory_fraction: expected text ('0.9', '90%', '9/10') or a "
      "fractions.Fraction");
}

py::object fraction_object(const Fraction& fraction) {
  return py::module_::import("fractions")
      .attr("Fraction")(fraction.numerator(), fraction.denominator());
}

// ---------------------------------------------------------------------------------------------
// The trackers.

py::dict summary_dict(const MemorySummary& summary) {
  py::dict gpu_allocated;
  py::dict gpu_available;
  for (const auto& [id, bytes] : summary.gpu_allocated)
    gpu_allocated[py::int_(id)] = bytes;
  for (const auto& [id, bytes] : summary.gpu_available)
    gpu_available[py::int_(id)] = bytes;
  py::dict result;
  result["gpu_allocated"] = gpu_allocated;
  result["gpu_available"] = gpu_available;
  result["cpu_allocated"] = summary.cpu_allocated;
  result["cpu_available"] = summary.cpu_available;
  result["total_peak"] = summary.total_peak;
  return result;
}

py::dict gpu_info_dict(const GpuMemoryInfo& info) {
  py::dict result;
  result["allocated"] = info.allocated;
  result["peak"] = info.peak;
  result["allocation_count"] = info.allocation_count;
  return result;
}

/// The same methods on MemoryTracker and SharedMemoryTracker. The shared tracker's calls run
/// with the GIL released: a thread waiting for its lock lets the others run Python.
template <class Tracker, bool release_gil>
using ReleaseFor = std::conditional_t<release_gil, py::gil_scoped_release, std::monostate>;

/// can_allocate, allocate, deallocate, reset_peak.
template <class Tracker, bool release_gil>
void bind_tracker_operations(py::class_<Tracker>& cls) {
  using Release = ReleaseFor<Tracker, release_gil>;
  cls.def(
         "can_allocate",
         [](const Tracker& t, py::handle device, py::handle bytes) {
           const DevicePlacement p = to_placement(device);
           const std::uint64_t n = to_bytes(bytes, "bytes");
           [[maybe_unused]] const Release release;
           return t.can_allocate(p, n);
         },
         py::arg("device"), py::arg("bytes"), "Whether allocate(device, bytes) would succeed now.")
      .def(
          "allocate",
          [](Tracker& t, py::handle device, py::handle bytes) {
            const DevicePlacement p = to_placement(device);
            const std::uint64_t n = to_bytes(bytes, "bytes");
            Result<DevicePlacement> where = [&] {
              [[maybe_unused]] const Release release;
              return t.allocate(p, n);
            }();
            if (!where) raise(where.error());
            return placement_object(*where);
          },
          py::arg("device"), py::arg("bytes"),
          "Records an allocation; returns the device used (auto: the first GPU with room, else the "
          "CPU). Raises OutOfMemory or UnknownDevice, changing nothing.")
      .def(
          "deallocate",
          [](Tracker& t, py::handle device, py::handle bytes) {
            const DevicePlacement p = to_placement(device);
            const std::uint64_t n = to_bytes(bytes, "bytes");
            Result<void> done = [&] {
              [[maybe_unused]] const Release release;
              return t.deallocate(p, n);
            }();
            ok_or_raise(done);
          },
          py::arg("device"), py::arg("bytes"),
          "Records a free on a concrete device. Raises InvalidDeallocation, AmbiguousDevice or "
          "UnknownDevice, changing nothing.")
      .def(
          "reset_peak",
          [](Tracker& t, py::handle device) {
            if (device.is_none()) {
              [[maybe_unused]] const Release release;
              t.reset_peak();
              return;
            }
            const DevicePlacement p = to_placement(device);
            Result<void> done = [&] {
              [[maybe_unused]] const Release release;
              return t.reset_peak(p);
            }();
            ok_or_raise(done);
          },
          py::arg("device") = py::none(),
          "Sets the peak of one device (or, without one, of every device) to what is allocated.");
}

/// summary, gpu_info and the per-device queries.
template <class Tracker, bool release_gil>
void bind_tracker_queries(py::class_<Tracker>& cls) {
  using Release = ReleaseFor<Tracker, release_gil>;
  cls.def("summary",
          [](const Tracker& t) {
            const MemorySummary summary = [&] {
              [[maybe_unused]] const Release release;
              return t.summary();
            }();
            return summary_dict(summary);
          })
      .def(
          "gpu_info",
          [](const Tracker& t, std::uint32_t gpu_id) {
            Result<GpuMemoryInfo> info = [&] {
              [[maybe_unused]] const Release release;
              return t.gpu_info(gpu_id);
            }();
            return gpu_info_dict(value_or_raise(std::move(info)));
          },
          py::arg("gpu_id"), "One GPU's allocated, peak and allocation_count.");
  // The queries: each a number of bytes (or allocations) for one device.
  const auto query = [&cls](const char* name,
                            std::uint64_t (Tracker::*member)(DevicePlacement) const) {
    cls.def(
        name,
        [member](const Tracker& t, py::handle device) {
          const DevicePlacement p = to_placement(device);
          [[maybe_unused]] const Release release;
          return (t.*member)(p);
        },
        py::arg("device"));
  };
  query("available", &Tracker::available);
  query("allocated", &Tracker::allocated);
  query("peak", &Tracker::peak);
  query("limit", &Tracker::limit);
  query("allocation_count", &Tracker::allocation_count);
}

template <class Tracker, bool release_gil>
void bind_tracker_methods(py::class_<Tracker>& cls) {
  bind_tracker_operations<Tracker, release_gil>(cls);
  bind_tracker_queries<Tracker, release_gil>(cls);
}

void bind_device_placement(py::module_& m) {
  py::class_<DevicePlacement>(
      m, "DevicePlacement",
      "A device: 'cpu', 'gpu:N' or 'auto' (the first GPU with room, else the CPU).")
      .def(py::init([](py::handle text) { return to_placement(text); }), py::arg("text"))
      .def_static("parse", [](py::handle text) { return to_placement(text); })
      .def_property_readonly("kind",
                             [](const DevicePlacement& p) {
                               return p.is_cpu() ? "cpu" : p.is_gpu() ? "gpu" : "auto";
                             })
      .def_property_readonly("gpu_id",
                             [](const DevicePlacement& p) {
                               return p.is_gpu() ? py::object(py::int_(p.gpu_id())) : py::none();
                             })
      .def_property_readonly("is_cpu", &DevicePlacement::is_cpu)
      .def_property_readonly("is_gpu", &DevicePlacement::is_gpu)
      .def_property_readonly("is_auto", &DevicePlacement::is_auto)
      .def("__str__", &DevicePlacement::to_string)
      .def("__repr__",
           [](const DevicePlacement& p) { return "DevicePlacement('" + p.to_string() + "')"; })
      .def("__hash__", [](const DevicePlacement& p) { return py::hash(py::str(p.to_string())); })
      .def("__eq__",
           [](const DevicePlacement& p, py::handle other) {
             if (py::isinstance<DevicePlacement>(other)) return p == other.cast<DevicePlacement>();
             if (py::isinstance<py::str>(other)) return p.to_string() == other.cast<std::string>();
             return false;
           })
      .def("__lt__", [](const DevicePlacement& a, py::handle b) { return a < to_placement(b); })
      .def("__le__", [](const DevicePlacement& a, py::handle b) { return a <= to_placement(b); })
      .def("__gt__", [](const DevicePlacement& a, py::handle b) { return a > to_placement(b); })
      .def("__ge__", [](const DevicePlacement& a, py::handle b) { return a >= to_placement(b); });
}

void bind_gpu_spec(py::module_& m) {
  py::class_<GpuSpec>(m, "GpuSpec",
                      "One GPU: id, total bytes, an optional usable cap and fraction, a name.")
      .def(py::init([](std::uint32_t id, py::handle total_bytes, py::handle usable_bytes,
                       py::handle memory_fraction, std::string name) {
             GpuSpec spec;
             spec.id = id;
             spec.total_bytes = to_bytes(total_bytes, "total_bytes");
             spec.usable_bytes = to_optional_bytes(usable_bytes, "usable_bytes");
             if (!memory_fraction.is_none()) spec.memory_fraction = to_fraction(memory_fraction);
             spec.name = std::move(name);
             return spec;
           }),
           py::arg("id"), py::arg("total_bytes"), py::arg("usable_bytes") = py::none(),
           py::arg("memory_fraction") = py::none(), py::arg("name") = "")
      .def_readonly("id", &GpuSpec::id)
      .def_readonly("total_bytes", &GpuSpec::total_bytes)
      .def_readonly("usable_bytes", &GpuSpec::usable_bytes)
      .def_property_readonly("memory_fraction",
                             [](const GpuSpec& s) {
                               return s.memory_fraction ? fraction_object(*s.memory_fraction)
                                                        : py::object(py::none());
                             })
      .def_readonly("name", &GpuSpec::name)
      .def("__eq__", [](const GpuSpec& a, const GpuSpec& b) { return a == b; })
      .def("__repr__", [](const GpuSpec& s) {
        return "GpuSpec(id=" + std::to_string(s.id) +
               ", total_bytes=" + std::to_string(s.total_bytes) +
               ", usable_bytes=" + (s.usable_bytes ? std::to_string(*s.usable_bytes) : "None") +
               ", memory_fraction=" +
               (s.memory_fraction ? "'" + s.memory_fraction->to_string() + "'" : "None") +
               ", name='" + s.name + "')";
      });
}

void bind_gpu_config(py::module_& m) {
  py::class_<GpuConfig>(m, "GpuConfig",
                        "Every device of a tracker: the GPUs, the default fraction (9/10) and the "
                        "CPU limit (16 GiB).")
      .def(py::init([](std::vector<GpuSpec> gpus, py::handle memory_fraction,
                       py::handle cpu_memory_limit) {
             GpuConfig config;
             config.gpus = std::move(gpus);
             config.memory_fraction = to_fraction(memory_fraction);
             config.cpu_memory_limit = to_bytes(cpu_memory_limit, "cpu_memory_limit");
             return config;
           }),
           py::arg("gpus") = std::vector<GpuSpec>{}, py::arg("memory_fraction") = "0.9",
           py::arg("cpu_memory_limit") = GpuConfig::default_cpu_memory_limit)
      .def_readonly("gpus", &GpuConfig::gpus)
      .def_property_readonly("memory_fraction",
                             [](const GpuConfig& c) { return fraction_object(c.memory_fraction); })
      .def_readonly("cpu_memory_limit", &GpuConfig::cpu_memory_limit)
      .def("validate", [](const GpuConfig& c) { ok_or_raise(validate(c)); })
      .def(
          "gpu_limit",
          [](const GpuConfig& c, std::uint32_t gpu_id) -> std::uint64_t {
            for (const GpuSpec& gpu : c.gpus) {
              if (gpu.id == gpu_id) return gpu_limit(gpu, c.memory_fraction);
            }
            raise(Error::unknown_device(Gpu{gpu_id}));
          },
          py::arg("gpu_id"))
      .def("__eq__", [](const GpuConfig& a, const GpuConfig& b) { return a == b; });
}

/// MemoryTracker, SharedMemoryTracker, parse_size.
void bind_trackers(py::module_& m) {
  py::class_<MemoryTracker> tracker(m, "MemoryTracker",
                                    "Byte-exact accounts per device against exact budgets; an "
                                    "operation that fails changes nothing.");
  tracker
      .def(py::init([](const GpuConfig& config) {
             return value_or_raise(MemoryTracker::create(config));
           }),
           py::arg("config"))
      .def_property_readonly("config", &MemoryTracker::config)
      .def_property_readonly("gpu_ids", &MemoryTracker::gpu_ids);
  bind_tracker_methods<MemoryTracker, false>(tracker);

  py::class_<SharedMemoryTracker> shared(m, "SharedMemoryTracker",
                                         "A MemoryTracker behind a reader-writer lock for threads; "
                                         "the GIL is released while a call waits for it.");
  shared
      .def(py::init([](py::handle source) {
             if (py::isinstance<MemoryTracker>(source)) {
               return std::make_unique<SharedMemoryTracker>(source.cast<MemoryTracker>());
             }
             return std::make_unique<SharedMemoryTracker>(
                 value_or_raise(MemoryTracker::create(source.cast<GpuConfig>())));
           }),
           py::arg("config"))
      .def("snapshot", [](const SharedMemoryTracker& t) {
        const py::gil_scoped_release release;
        return t.snapshot();
      });
  bind_tracker_methods<SharedMemoryTracker, true>(shared);

  m.def(
      "parse_size", [](const std::string& text) { return value_or_raise(parse_byte_size(text)); },
      py::arg("text"));
  // The benchmark's baseline: a call into this module that does nothing with its arguments.
  m.def("_noop", [](py::handle, py::handle) {});
}

void bind_tracker(py::module_& m) {
  bind_device_placement(m);
  bind_gpu_spec(m);
  bind_gpu_config(m);
  bind_trackers(m);
}

// ---------------------------------------------------------------------------------------------
// Recordings.

template <class T>
py::object optional_object(const std::optional<T>& value) {
  return value ? py::cast(*value) : py::none();
}

py::dict event_dict(const traces::TraceEvent& e) {
  py::dict d;
  d["kind"] = std::string(traces::keyword(e.kind));
  d["device"] = e.device.to_string();
  d["bytes"] = optional_object(e.bytes);
  d["requested"] = optional_object(e.requested);
  d["time_ns"] = optional_object(e.time_ns);
  d["address"] = optional_object(e.address);
  d["stream"] = optional_object(e.stream);
  d["tag"] = e.tag;
  d["recorded_error"] = e.recorded_error
                            ? py::object(py::str(std::string(to_string(*e.recorded_error))))
                            : py::object(py::none());
  d["recorded_resolved"] = e.recorded_resolved
                               ? py::object(py::str(e.recorded_resolved->to_string()))
                               : py::object(py::none());
  d["check_allocated"] = optional_object(e.check_allocated);
  d["check_reserved"] = optional_object(e.check_reserved);
  d["text"] = e.text;
  d["stack"] = optional_object(e.stack);
  d["count"] = optional_object(e.count);
  d["undetermined"] = optional_object(e.undetermined);
  d["pool"] = e.pool ? py::object(py::str(std::string(sim::allocators::to_string(*e.pool))))
                     : py::object(py::none());
  d["expandable"] = e.expandable;
  d["block_state"] =
      e.block_state ? py::object(py::str(std::string(sim::allocators::to_string(*e.block_state))))
                    : py::object(py::none());
  d["device_free"] = optional_object(e.device_free);
  return d;
}

/// A recording: opened from a file (read again on each iteration, as the command line reads
/// it) or imported in memory (`from_snapshot`).
struct Trace {
  std::string path;  ///< empty for a trace in memory
  std::string format;
  traces::TraceHeader header;
  std::uint64_t event_count{0};
  std::shared_ptr<const std::vector<traces::TraceEvent>> events;  ///< in memory only
  std::vector<std::string> notes;
};

/// Iterates a trace's events: from a reader (a file) or from the events in memory.
struct EventIterator {
  std::optional<cli::OpenedTrace> opened;
  std::shared_ptr<const std::vector<traces::TraceEvent>> events;
  std::size_t next{0};

  traces::TraceEvent advance() {
    if (events) {
      if (next >= events->size()) throw py::stop_iteration();
      return (*events)[next++];
    }
    traces::TraceEvent event;
    const bool more = value_or_raise(opened->reader.next(event));
    if (!more) throw py::stop_iteration();
    return event;
  }
};

Trace open_recording(const std::string& path) {
  auto opened = value_or_raise(cli::open_trace(path));
  Trace trace;
  trace.path = path;
  trace.format = opened.imported_from.empty() ? "canonical" : opened.imported_from;
  trace.header = opened.reader.header();
  trace.event_count = opened.events;
  return trace;
}

/// Builds the pickle reader's values from a Python object tree, so that the PyTorch importer
/// interprets a snapshot dict by the very code that interprets a pickle. Containers shared in
/// the tree stay shared (as the pickle memo keeps them); a cycle is refused.
class ValueBuilder {
 public:
  const traces::pickle::Value& build(py::handle object, const std::string& where,
                                     std::uint64_t depth) {
    using traces::pickle::Value;
    if (depth > traces::pickle::max_depth) {
      throw py::value_error("from_snapshot: " + where + ": nested deeper than " +
                            std::to_string(traces::pickle::max_depth));
    }
    PyObject* raw = object.ptr();
    const bool container = PyList_Check(raw) || PyTuple_Check(raw) || PyDict_Check(raw);
    if (container) {
      if (const auto found = done_.find(raw); found != done_.end()) return *found->second;
      if (!on_path_.insert(raw).second) {
        throw py::value_error("from_snapshot: " + where + ": the snapshot contains itself");
      }
    }
    Value& value = values_.emplace_back();
    fill(value, object, where, depth);
    if (container) {
      on_path_.erase(raw);
      done_.emplace(raw, &value);
    }
    return value;
  }

  std::deque<traces::pickle::Value> values_;

 private:
  /// The texts values_ view (a pickle's stay in its bytes; these are copied out of Python).
  std::deque<std::string> texts_;

  void fill(traces::pickle::Value& value, py::handle object, const std::string& where,
            std::uint64_t depth) {
    using Kind = traces::pickle::Value::Kind;
    PyObject* raw = object.ptr();
    if (object.is_none()) {
      value.kind = Kind::None;
    } else if (PyBool_Check(raw)) {
      value.kind = Kind::Bool;
      value.boolean = raw == Py_True;
    } else if (PyLong_Check(raw)) {
      fill_int(value, object);
    } else if (PyFloat_Check(raw)) {
      value.kind = Kind::Float;
      value.number = PyFloat_AsDouble(raw);
    } else if (PyUnicode_Check(raw)) {
      value.kind = Kind::String;
      value.text = texts_.emplace_back(object.cast<std::string>());
    } else if (PyBytes_Check(raw)) {
      value.kind = Kind::Bytes;
      value.text = texts_.emplace_back(std::string(object.cast<py::bytes>()));
    } else if (PyList_Check(raw) || PyTuple_Check(raw)) {
      value.kind = PyList_Check(raw) ? Kind::List : Kind::Tuple;
      std::size_t i = 0;
      for (py::handle item : object) {
        value.items.push_back(&build(item, where + "[" + std::to_string(i++) + "]", depth + 1));
      }
    } else if (PyDict_Check(raw)) {
      value.kind = Kind::Dict;
      for (auto [key, item] : object.cast<py::dict>()) {
        value.items.push_back(&build(key, where + " key", depth + 1));
        value.items.push_back(
            &build(item, where + "[" + std::string(py::repr(key)) + "]", depth + 1));
      }
    } else {
      throw py::type_error("from_snapshot: " + where +
                           ": expected plain data (dict, list, "
                           "tuple, str, bytes, int, float, bool, None), got " +
                           std::string(py::str(py::type::handle_of(object).attr("__name__"))));
    }
  }

  static void fill_int(traces::pickle::Value& value, py::handle object) {
    value.kind = traces::pickle::Value::Kind::Int;
    value.negative = PyObject_RichCompareBool(object.ptr(), py::int_(0).ptr(), Py_LT) == 1;
    const py::object magnitude =
        value.negative ? py::reinterpret_steal<py::object>(PyNumber_Negative(object.ptr()))
                       : py::reinterpret_borrow<py::object>(object);
    const unsigned long long bits = PyLong_AsUnsignedLongLong(magnitude.ptr());
    if (bits == static_cast<unsigned long long>(-1) && PyErr_Occurred() != nullptr) {
      PyErr_Clear();
      value.wide = true;  // as the pickle reader marks an integer beyond 64 bits
      return;
    }
    value.magnitude = bits;
  }

  std::unordered_map<PyObject*, const traces::pickle::Value*> done_;
  std::unordered_set<PyObject*> on_path_;
};

/// The importer's errors name a byte offset in a pickle; a dict has none: `NAME: byte 0 (WHERE):
/// WHAT` becomes `NAME: WHERE: WHAT`.
Error without_offset(Error error, const std::string& name) {
  const std::string prefix = name + ": byte 0 (";
  if (error.detail.starts_with(prefix)) {
    const std::size_t close = error.detail.find("): ", prefix.size());
    if (close != std::string::npos) {
      error.detail = name + ": " + error.detail.substr(prefix.size(), close - prefix.size()) +
                     ": " + error.detail.substr(close + 3);
    }
  }
  return error;
}

Trace from_snapshot(py::handle snapshot, const std::string& name) {
  ValueBuilder builder;
  const traces::pickle::Value& root = builder.build(snapshot, "snapshot", 0);
  traces::MemorySink sink;
  auto report = traces::import_pytorch_snapshot_value(root, name, sink);
  if (!report) raise(without_offset(report.error(), name));
  Trace trace;
  trace.format = "pytorch";
  trace.header = sink.recorded_header();
  trace.event_count = sink.events().size();
  trace.notes = report->notes;
  trace.events = std::make_shared<const std::vector<traces::TraceEvent>>(sink.take_events());
  return trace;
}

void save_trace(const Trace& trace, const std::string& path) {
  auto writer = value_or_raise(traces::TraceWriter::create(path, trace.header));
  EventIterator it;
  if (trace.events) {
    it.events = trace.events;
  } else {
    it.opened.emplace(value_or_raise(cli::open_trace(trace.path)));
  }
  while (true) {
    traces::TraceEvent event;
    try {
      event = it.advance();
    } catch (const py::stop_iteration&) {
      break;
    }
    ok_or_raise(writer.write(event));
  }
  ok_or_raise(writer.finish());
}

py::list header_gpus(const traces::TraceHeader& header) {
  py::list gpus;
  if (header.config) {
    for (const GpuSpec& gpu : header.config->gpus)
      gpus.append(py::cast(gpu));
  }
  return gpus;
}

void bind_recordings(py::module_& m) {
  py::class_<traces::TraceEvent>(m, "Event",
                                 "One event of a trace: kind (alloc, free, baseline, check, mark, "
                                 "...), device, bytes, address, ...")
      .def_property_readonly("kind",
                             [](const traces::TraceEvent& e) { return traces::keyword(e.kind); })
      .def_property_readonly("device",
                             [](const traces::TraceEvent& e) { return placement_object(e.device); })
      .def_readonly("bytes", &traces::TraceEvent::bytes)
      .def_readonly("requested", &traces::TraceEvent::requested)
      .def_readonly("time_ns", &traces::TraceEvent::time_ns)
      .def_readonly("address", &traces::TraceEvent::address)
      .def_readonly("stream", &traces::TraceEvent::stream)
      .def_readonly("tag", &traces::TraceEvent::tag)
      .def_readonly("check_allocated", &traces::TraceEvent::check_allocated)
      .def_readonly("check_reserved", &traces::TraceEvent::check_reserved)
      .def_readonly("text", &traces::TraceEvent::text)
      .def_property_readonly("line", &traces::format_event)
      .def("to_dict", &event_dict)
      .def("__eq__",
           [](const traces::TraceEvent& a, const traces::TraceEvent& b) { return a == b; })
      .def("__repr__",
           [](const traces::TraceEvent& e) { return "Event('" + traces::format_event(e) + "')"; });

  py::class_<EventIterator>(m, "_EventIterator")
      .def("__iter__", [](py::object self) { return self; })
      .def("__next__", &EventIterator::advance);

  py::class_<Trace>(m, "Trace", "A recording as a canonical trace: iterate it for its events.")
      .def_property_readonly("path",
                             [](const Trace& t) {
                               return t.path.empty() ? py::object(py::none())
                                                     : py::object(py::str(t.path));
                             })
      .def_readonly("format", &Trace::format)
      .def_property_readonly("source", [](const Trace& t) { return t.header.source; })
      .def_property_readonly("profile", [](const Trace& t) { return t.header.profile; })
      .def_property_readonly("gpus", [](const Trace& t) { return header_gpus(t.header); })
      .def_readonly("notes", &Trace::notes)
      .def("__len__", [](const Trace& t) { return t.event_count; })
      .def("__iter__",
           [](const Trace& t) {
             EventIterator it;
             if (t.events) {
               it.events = t.events;
             } else {
               it.opened.emplace(value_or_raise(cli::open_trace(t.path)));
             }
             return it;
           })
      .def("save", &save_trace, py::arg("path"))
      .def("__repr__", [](const Trace& t) {
        return "Trace(" + (t.path.empty() ? std::string("in memory") : "'" + t.path + "'") +
               ", format='" + t.format + "', events=" + std::to_string(t.event_count) + ")";
      });

  m.def("open", &open_recording, py::arg("path"),
        "Opens any recording memtrack import reads (memtrack trace, PyTorch snapshot, Kineto, RMM, "
        "Nsight).");
  m.def("from_snapshot", &from_snapshot, py::arg("snapshot"), py::arg("name") = "snapshot dict",
        "The trace of a PyTorch snapshot given as the dict torch.cuda.memory._snapshot() returns, "
        "by the pickle importer's rules.");
}

// ---------------------------------------------------------------------------------------------
// Profiles and the command line.

py::dict profile_dict(const sim::DeviceProfile& profile) {
  py::dict d;
  d["name"] = profile.name;
  d["display_name"] = profile.display_name;
  d["is_cpu"] = profile.is_cpu;
  d["cuda_total_bytes"] = profile.cuda_total_bytes
                              ? py::object(py::int_(profile.cuda_total_bytes->value))
                              : py::object(py::none());
  d["limit_bytes"] =
      profile.is_cpu
          ? py::object(py::int_(profile.cpu_memory_limit_bytes->value))
          : py::object(py::int_(gpu_limit(profile.gpu_spec(0), GpuConfig{}.memory_fraction)));
  d["nvidia_smi_total_mib"] = profile.nvidia_smi_total_mib
                                  ? py::object(py::int_(profile.nvidia_smi_total_mib->value))
                                  : py::object(py::none());
  d["compute_capability"] = profile.compute_capability
                                ? py::object(py::str(profile.compute_capability->value))
                                : py::object(py::none());
  d["memory_bandwidth_gbps"] = profile.memory_bandwidth_gbps
                                   ? py::object(py::int_(profile.memory_bandwidth_gbps->value))
                                   : py::object(py::none());
  d["file"] = profile.file;
  return d;
}

void bind_cli(py::module_& m) {
  m.def("_profiles", [] {
    py::list list;
    for (const sim::DeviceProfile& profile : value_or_raise(sim::load_builtin_profiles()))
      list.append(profile_dict(profile));
    return list;
  });
  // `memtrack ARGS...` in-process, its output captured: (exit code, stdout, stderr).
  m.def(
      "_run_cli",
      [](const std::vector<std::string>& args) {
        std::ostringstream out;
        std::ostringstream err;
        int code = 0;
        {
          const py::gil_scoped_release release;
          code = cli::run(args, out, err);
        }
        return py::make_tuple(code, py::bytes(out.str()), py::bytes(err.str()));
      },
      py::arg("args"));
  // `memtrack ARGS...` on the process's own standard output and error (python3 -m memtrack).
  m.def(
      "_main",
      [](const std::vector<std::string>& args) {
        const py::gil_scoped_release release;
        const int code = cli::run(args, std::cout, std::cerr);
        std::cout.flush();
        std::cerr.flush();
        return code;
      },
      py::arg("args"));
}

}  // namespace
}  // namespace memtrack::python

PYBIND11_MODULE(_memtrack, m) {
  m.doc() = "memtrack's C++ core: the tracker, recordings and the command line (see memtrack)";
  memtrack::python::bind_tracker(m);
  memtrack::python::bind_recordings(m);
  memtrack::python::bind_cli(m);
}
