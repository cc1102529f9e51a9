#include "state_json.hpp"

#include <memtrack/memory_tracker.hpp>

#include <nlohmann/json.hpp>

#include <string_view>

namespace memtrack::cli {
namespace {

std::string_view op_name(sim::Operation::Kind kind) {
  switch (kind) {
    case sim::Operation::Kind::Allocate:
      return "alloc";
    case sim::Operation::Kind::Deallocate:
      return "free";
    case sim::Operation::Kind::ResetPeakAll:
    case sim::Operation::Kind::ResetPeak:
      return "reset_peak";
  }
  return "?";
}

}  // namespace

std::string state_json(const traces::ReplayStep& step,
                       const std::vector<DevicePlacement>& devices) {
  const MemoryTracker& t = *step.after;
  const sim::Operation& operation = step.operation;
  nlohmann::ordered_json line;
  line["seq"] = step.event;
  line["op"] = op_name(operation.kind);
  line["device"] = operation.kind == sim::Operation::Kind::ResetPeakAll
                       ? std::string("all")
                       : operation.device.to_string();
  line["bytes"] = operation.bytes;
  line["ok"] = step.outcome.ok;
  line["error"] = step.outcome.ok ? nlohmann::ordered_json(nullptr)
                                  : nlohmann::ordered_json(to_string(step.outcome.error->kind));
  line["resolved"] = step.outcome.resolved
                         ? nlohmann::ordered_json(step.outcome.resolved->to_string())
                         : nlohmann::ordered_json(nullptr);
  // The one device order (docs/glossary.md): the GPUs ascending, then the CPU.
  nlohmann::ordered_json& states = line["devices"] = nlohmann::ordered_json::object();
  for (const DevicePlacement d : devices) {
    states[d.to_string()] = {{"allocated", t.allocated(d)},
                             {"available", t.available(d)},
                             {"peak", t.peak(d)},
                             {"count", t.allocation_count(d)}};
  }
  line["total_peak"] = t.peak(Auto{});
  return line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace memtrack::cli
