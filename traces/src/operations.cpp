#include <memtrack/traces/operations.hpp>

#include <memtrack/sim/lockstep.hpp>
#include <memtrack/sim/reference_tracker.hpp>
#include <memtrack/traces/writer.hpp>

#include <optional>

namespace memtrack::traces {

namespace {

TraceHeader operations_header(const sim::Scenario& scenario, const std::string& source) {
  TraceHeader header;
  header.source = source;
  header.config = scenario.config;
  return header;
}

}  // namespace

std::vector<TraceEvent> operation_events(const sim::Scenario& scenario) {
  std::optional<sim::ReferenceTracker> model = sim::ReferenceTracker::create(scenario.config);
  std::vector<TraceEvent> events;
  events.reserve(scenario.operations.size());
  for (const sim::Operation& operation : scenario.operations) {
    TraceEvent event;
    event.device = operation.device;
    switch (operation.kind) {
      case sim::Operation::Kind::Allocate:
        event.kind = TraceEvent::Kind::Allocate;
        event.bytes = operation.bytes;
        break;
      case sim::Operation::Kind::Deallocate:
        event.kind = TraceEvent::Kind::Free;
        event.bytes = operation.bytes;
        break;
      case sim::Operation::Kind::ResetPeakAll:
        event.kind = TraceEvent::Kind::ResetPeakAll;
        event.device = DevicePlacement{};
        break;
      case sim::Operation::Kind::ResetPeak:
        event.kind = TraceEvent::Kind::ResetPeak;
        break;
    }
    if (model) {
      const sim::ReferenceOutcome outcome = sim::apply_to_reference(*model, operation);
      if (!outcome.ok) {
        event.recorded_error = outcome.error_kind;
      } else if (operation.kind == sim::Operation::Kind::Allocate && operation.device.is_auto()) {
        event.recorded_resolved = outcome.resolved;
      }
    }
    events.push_back(std::move(event));
  }
  return events;
}

std::string format_operations(const sim::Scenario& scenario, const std::string& source) {
  return format_trace(operations_header(scenario, source), operation_events(scenario));
}

Result<void> write_operations(const std::filesystem::path& path, const sim::Scenario& scenario,
                              const std::string& source) {
  auto writer = TraceWriter::create(path, operations_header(scenario, source));
  if (!writer) return writer.error();
  for (const TraceEvent& event : operation_events(scenario)) {
    if (auto ok = writer->write(event); !ok) return ok;
  }
  return writer->finish();
}

}  // namespace memtrack::traces
