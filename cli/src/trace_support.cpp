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
    auto reader = traces::TraceReader::open(path);
    if (!reader) return reader.error();
    return OpenedTrace{std::move(*reader), ""};
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
  auto reader = traces::TraceReader::from_source(
      traces::memory_source(traces::format_trace(sink.header_, sink.events_), path), path);
  if (!reader) return reader.error();
  return OpenedTrace{std::move(*reader), std::string(traces::to_string(*detected))};
}

Result<Budgets> choose_budgets(const traces::TraceHeader& header, const std::string& profile,
                               std::optional<std::uint32_t> gpus, const std::string& trace_name) {
  if (profile.empty()) {
    if (header.config) return Budgets{*header.config, "the recording's own devices", true};
    if (!header.profile.empty()) {
      auto node = sim::make_node(header.profile);
      if (!node) return node.error();
      return Budgets{node->config, "the recording's profile " + header.profile, true};
    }
    return Error::parse_error(trace_name +
                              ": the trace declares no devices (its source did not record "
                              "them): give --profile, e.g. --profile h100-sxm");
  }
  return profile_budgets(profile, gpus, header.config ? header.config->gpus.size() : 0);
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

std::map<std::uint32_t, std::uint32_t> gpu_map_for(const traces::TraceHeader& header,
                                                   const Budgets& budgets) {
  if (budgets.recorded) return {};
  return traces::map_onto_first_gpus(header);
}

}  // namespace memtrack::cli
