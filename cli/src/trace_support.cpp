#include "trace_support.hpp"

#include <memtrack/sim/profile.hpp>

#include <algorithm>

namespace memtrack::cli {

Result<OpenedTrace> open_trace(const std::string& path) {
  // Peek at the start to tell a canonical trace from a recording to import.
  auto head = traces::read_head(path, traces::format_head_bytes);
  if (!head) return head.error();
  auto format = traces::detect_format(*head, path);
  if (!format) return format.error();  // refused from the first bytes, never read whole
  if (format && *format == traces::SourceFormat::Canonical) {
    // One pass to learn which GPUs it uses (the map onto a node needs them before the replay),
    // then the reader the replay streams from.
    auto scan = traces::TraceReader::open(path);
    if (!scan) return scan.error();
    auto used = traces::used_gpus(*scan);
    if (!used) return used.error();
    auto reader = traces::TraceReader::open(path);
    if (!reader) return reader.error();
    const std::uint64_t events = scan->events_read();
    return OpenedTrace{std::move(*reader), "", std::move(*used), events, {}, {}};
  }
  if (format && *format == traces::SourceFormat::Scenario) {
    return Error::parse_error(path + ": a scenario file, not a trace");
  }
  auto bytes = traces::read_all(path, traces::max_import_bytes);
  if (!bytes) return bytes.error();
  const auto detected = format;
  traces::MemorySink sink;
  auto report = traces::import_bytes(*detected, *bytes, path, sink);
  if (!report) return report.error();
  std::set<std::uint32_t> used;
  for (const traces::TraceEvent& event : sink.events_) {
    const bool operation = event.kind != traces::TraceEvent::Kind::Mark &&
                           event.kind != traces::TraceEvent::Kind::Check &&
                           event.kind != traces::TraceEvent::Kind::ResetPeakAll;
    if (operation && event.device.is_gpu()) used.insert(event.device.gpu_id());
  }
  auto reader = traces::TraceReader::from_source(
      traces::memory_source(traces::format_trace(sink.header_, sink.events_), path), path);
  if (!reader) return reader.error();
  return OpenedTrace{std::move(*reader),       std::string(traces::to_string(*detected)),
                     std::move(used),          sink.events_.size(),
                     std::move(sink.origins_), report->origin_unit};
}

Result<Budgets> choose_budgets(const OpenedTrace& trace, const std::string& profile,
                               std::optional<std::uint32_t> gpus) {
  const traces::TraceHeader& header = trace.reader.header();
  if (profile.empty()) {
    if (header.config) return Budgets{*header.config, "the recording's own devices", true};
    if (!header.profile.empty()) {
      auto node = sim::make_node(header.profile);
      if (!node) return node.error();
      return Budgets{node->config, "the recording's profile " + header.profile, true};
    }
    // No devices recorded and none asked for: measure only. Each device the recording uses gets
    // a limit no recording reaches (the limits still sum within 64 bits).
    const std::uint64_t unlimited = UINT64_MAX / (trace.used_gpus.size() + 2);
    GpuConfig config;
    config.memory_fraction = Fraction::of(1, 1).value();
    config.cpu_memory_limit = unlimited;
    for (const std::uint32_t id : trace.used_gpus)
      config.gpus.push_back({.id = id, .total_bytes = unlimited});
    return Budgets{config, "no budget: measuring only (give --profile to fit a device)", true};
  }
  return profile_budgets(profile, gpus, trace.used_gpus.size());
}

Result<Budgets> profile_budgets(const std::string& profile, std::optional<std::uint32_t> gpus,
                                std::size_t declared_gpus) {
  auto node = sim::make_node(profile);
  if (!node) return node.error();
  const std::size_t wanted = gpus ? *gpus : std::max<std::size_t>(declared_gpus, 1);
  if (node->config.gpus.size() == 1 && wanted != 1) {
    node = sim::make_node(profile, static_cast<std::uint32_t>(wanted));
    if (!node) return node.error();
  } else if (gpus && node->config.gpus.size() != *gpus) {
    return Error::parse_error("--gpus " + std::to_string(*gpus) + " with the node '" + profile +
                              "', which has " + std::to_string(node->config.gpus.size()) +
                              " GPUs: give a single-GPU profile to repeat");
  }
  return Budgets{node->config,
                 "profile " + profile + " (" + std::to_string(node->config.gpus.size()) + " GPU" +
                     (node->config.gpus.size() == 1 ? "" : "s") + ")",
                 false};
}

Result<std::map<std::uint32_t, std::uint32_t>> gpu_map_for(
    const OpenedTrace& trace, const Budgets& budgets,
    const std::map<std::uint32_t, std::uint32_t>& explicit_map) {
  if (budgets.recorded && explicit_map.empty()) return std::map<std::uint32_t, std::uint32_t>{};
  auto map = traces::map_used_gpus(trace.used_gpus, budgets.config, explicit_map);
  if (!map) return Error::parse_error(trace.reader.name() + ": " + map.error().detail);
  return map;
}

std::vector<DeviceFit> fit_summary(const traces::Replayer& replayer) {
  const traces::ReplaySummary& s = replayer.summary();
  std::vector<DeviceFit> devices;
  for (const DevicePlacement d : replayer.devices()) {
    const auto peak = s.high_water.find(d);
    const std::uint64_t replayed = peak == s.high_water.end() ? 0 : peak->second;
    const auto needed = s.needed.find(d);
    devices.push_back({d, replayer.tracker().limit(d), replayed,
                       needed == s.needed.end() ? replayed : needed->second});
  }
  return devices;
}

void locate_positions(const std::vector<const OpenedTrace*>& traces,
                      traces::ReplaySummary& summary) {
  const auto locate = [&traces](traces::TracePosition& at) {
    for (const OpenedTrace* trace : traces) {
      if (trace->reader.name() != at.trace || trace->origin_unit.empty()) continue;
      // Event numbers count every event of the trace, 1-based, as the sink received them.
      if (at.event == 0 || at.event > trace->origins.size()) return;
      const std::uint64_t origin = trace->origins[at.event - 1];
      if (origin != 0)
        at.origin = at.trace + " " + trace->origin_unit + " " + std::to_string(origin - 1);
      return;
    }
  };
  if (summary.first_refusal) locate(summary.first_refusal->at);
  if (summary.first_inconsistency) locate(summary.first_inconsistency->at);
  if (summary.first_unlanded) locate(summary.first_unlanded->at);
  if (summary.failure) locate(summary.failure->at);
}

void print_inconsistencies(std::ostream& out, const traces::ReplaySummary& summary, bool allowed) {
  if (summary.inconsistencies != 0) {
    const traces::Inconsistency& first = *summary.first_inconsistency;
    out << "inconsistent recording: " << summary.inconsistencies
        << " frees of memory it never allocated or had already freed, not applied"
        << (allowed ? " (allowed by --allow-inconsistent)" : "") << "; first at event "
        << first.at.event << " (" << first.at.to_string() << "): " << first.what << "\n";
  }
  if (summary.unlanded != 0) {
    const traces::Inconsistency& first = *summary.first_unlanded;
    out << "not replayed whole: " << summary.unlanded
        << " operations landed on no device; first at event " << first.at.event << " ("
        << first.at.to_string() << "): " << first.what << "\n";
  }
}

Result<std::map<std::uint32_t, std::uint32_t>> parse_gpu_map(
    const std::vector<std::string>& entries) {
  std::map<std::uint32_t, std::uint32_t> map;
  for (const std::string& entry : entries) {
    const std::size_t equals = entry.find('=');
    auto from = DevicePlacement::parse(entry.substr(0, equals));
    auto to = equals == std::string::npos ? from : DevicePlacement::parse(entry.substr(equals + 1));
    if (equals == std::string::npos || !from || !to || !from->is_gpu() || !to->is_gpu()) {
      return Error::parse_error("--map '" + entry +
                                "': expected TRACE_GPU=NODE_GPU, e.g. gpu:1=gpu:0");
    }
    if (!map.emplace(from->gpu_id(), to->gpu_id()).second) {
      return Error::parse_error("--map '" + entry + "': gpu:" + std::to_string(from->gpu_id()) +
                                " is mapped twice");
    }
  }
  return map;
}

}  // namespace memtrack::cli
