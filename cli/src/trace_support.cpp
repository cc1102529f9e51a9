#include "trace_support.hpp"

#include "options.hpp"
#include "table.hpp"
#include "terminal.hpp"

#include <memtrack/memtrack.hpp>
#include <memtrack/sim/profile.hpp>
#include <memtrack/traces/writer.hpp>

#include <algorithm>
#include <cstring>
#include <optional>
#include <set>

namespace memtrack::cli {

Result<GpuSpec> parse_gpu_flag(const std::string& text) {
  const auto bad = [&](const std::string& why) {
    return Error::parse_error("--gpu '" + text + "': " + why +
                              " (expected ID:TOTAL[,usable=SIZE][,fraction=F][,name=TEXT], "
                              "e.g. 0:32GiB,usable=24GiB)");
  };
  const std::size_t colon = text.find(':');
  if (colon == std::string::npos) return bad("no ':' between the GPU id and its total");
  auto placement = DevicePlacement::parse("gpu:" + text.substr(0, colon));
  if (!placement) return bad("'" + text.substr(0, colon) + "' is not a GPU id");
  GpuSpec gpu;
  gpu.id = placement->gpu_id();
  std::vector<std::string> parts;
  std::string rest = text.substr(colon + 1);
  for (std::size_t comma; (comma = rest.find(',')) != std::string::npos;) {
    parts.push_back(rest.substr(0, comma));
    rest = rest.substr(comma + 1);
  }
  parts.push_back(rest);
  auto total = parse_byte_size(parts.front());
  if (!total) return bad(total.error().to_string());
  gpu.total_bytes = *total;
  std::set<std::string> seen;
  for (std::size_t i = 1; i < parts.size(); ++i) {
    const std::string& part = parts[i];
    const std::size_t equals = part.find('=');
    const std::string key = part.substr(0, equals);
    const std::string value = equals == std::string::npos ? "" : part.substr(equals + 1);
    if (!seen.insert(key).second) return bad("'" + key + "' given twice");
    if (key == "usable") {
      auto usable = parse_byte_size(value);
      if (!usable) return bad(usable.error().to_string());
      gpu.usable_bytes = *usable;
    } else if (key == "fraction") {
      auto fraction = Fraction::parse(value);
      if (!fraction) return bad(fraction.error().to_string());
      gpu.memory_fraction = *fraction;
    } else if (key == "name") {
      gpu.name = value;
    } else {
      return bad("unknown field '" + key + "'");
    }
  }
  return gpu;
}

namespace {

/// @return "1 block", "2 blocks": a count and its noun, singular or plural
std::string counted(std::uint64_t count, std::string_view noun) {
  return std::to_string(count) + " " + std::string(noun) + (count == 1 ? "" : "s");
}

/// What the pre-scan of a trace keeps of an event: the GPUs operations name, and the capacity a
/// recorded `oom` implies.
void note_event(const traces::TraceEvent& event, traces::UsedGpus& used,
                std::map<std::uint32_t, std::uint64_t>& oom_capacity) {
  used.note(event);
  if (event.kind == traces::TraceEvent::Kind::Oom && event.device.is_gpu() &&
      event.check_reserved && event.device_free) {
    if (const auto total = checked_add(*event.check_reserved, *event.device_free)) {
      oom_capacity.emplace(event.device.gpu_id(), *total);
    }
  }
}

/// Streams an import into temporary files: its canonical trace and each event's origin, noting
/// what the pre-scan of a trace keeps as the events go by.
class SpoolSink final : public traces::TraceSink {
 public:
  SpoolSink(std::shared_ptr<traces::Spool> trace, std::shared_ptr<traces::Spool> origins)
      : trace_(std::move(trace)), origins_(std::move(origins)) {}

  Result<void> header(const traces::TraceHeader& header) override {
    auto writer = traces::TraceWriter::create(trace_, header);
    if (!writer) return writer.error();
    writer_.emplace(std::move(*writer));
    return {};
  }
  Result<void> event(const traces::TraceEvent& event) override {
    if (!writer_)
      return Error::parse_error("an importer wrote an event before its header (a memtrack bug)");
    note_event(event, used, oom_capacity);
    ++events;
    char bytes[sizeof origin_];
    std::memcpy(bytes, &origin_, sizeof origin_);
    if (auto ok = origins_->write(std::string_view(bytes, sizeof bytes)); !ok) return ok;
    return writer_->write(event);
  }
  void origin(std::uint64_t where) override { origin_ = where + 1; }
  Result<void> finish() {
    if (!writer_) return Error::parse_error("an importer wrote no header (a memtrack bug)");
    if (auto ok = writer_->finish(); !ok) return ok;
    return origins_->flush();
  }

  traces::UsedGpus used;
  std::map<std::uint32_t, std::uint64_t> oom_capacity;
  std::uint64_t events{0};

 private:
  std::shared_ptr<traces::Spool> trace_;
  std::shared_ptr<traces::Spool> origins_;
  std::optional<traces::TraceWriter> writer_;
  std::uint64_t origin_{0};
};

}  // namespace

Result<std::uint64_t> OpenedTrace::origin(std::uint64_t index) const {
  if (!origins || index >= origins->flushed() / sizeof(std::uint64_t)) return std::uint64_t{0};
  char bytes[sizeof(std::uint64_t)];
  if (auto ok = origins->read_at(index * sizeof bytes, bytes, sizeof bytes); !ok) {
    return ok.error();
  }
  std::uint64_t value = 0;
  std::memcpy(&value, bytes, sizeof value);
  return value;
}

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
    traces::UsedGpus used;
    std::map<std::uint32_t, std::uint64_t> oom_capacity;
    for (traces::TraceEvent event;;) {
      auto more = scan->next(event);
      if (!more) return more.error();
      if (!*more) break;
      note_event(event, used, oom_capacity);
    }
    auto reader = traces::TraceReader::open(path);
    if (!reader) return reader.error();
    const std::uint64_t events = scan->events_read();
    return OpenedTrace{std::move(*reader),      "",   used.ids(), events, {}, {},
                       std::move(oom_capacity), path, nullptr};
  }
  // Imported into temporary files as it is read: memory stays flat whatever the recording's
  // length, and the pre-scan is done on the way.
  auto trace_spool = traces::Spool::create("the trace imported from " + path);
  if (!trace_spool) return trace_spool.error();
  auto origin_spool = traces::Spool::create("the event origins imported from " + path);
  if (!origin_spool) return origin_spool.error();
  SpoolSink sink(*trace_spool, *origin_spool);
  auto report = traces::import_path(*format, path, sink);
  if (!report) return report.error();
  if (auto ok = sink.finish(); !ok) return ok.error();
  auto reader = traces::TraceReader::from_source(traces::Spool::reader(*trace_spool), path);
  if (!reader) return reader.error();
  return OpenedTrace{std::move(*reader),
                     std::string(traces::to_string(*format)),
                     sink.used.ids(),
                     sink.events,
                     *origin_spool,
                     report->origin_unit,
                     std::move(sink.oom_capacity),
                     path,
                     *trace_spool};
}

Result<traces::TraceReader> reopen(const OpenedTrace& trace) {
  if (trace.imported_trace) {
    return traces::TraceReader::from_source(traces::Spool::reader(trace.imported_trace),
                                            trace.path);
  }
  return traces::TraceReader::open(trace.path);
}

Result<Budgets> choose_budgets(const OpenedTrace& trace, const std::string& profile,
                               std::optional<std::uint32_t> gpus, const DeviceFlags& flags) {
  auto given = budgets_from_flags(flags, profile);
  if (!given) return given.error();
  if (*given) return **given;
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
    Budgets budgets{config, "no budget: measuring only (give --profile to fit a device)", true};
    budgets.unlimited = true;
    return budgets;
  }
  return profile_budgets(profile, gpus, trace.used_gpus.size());
}

bool DeviceFlags::given() const {
  return !gpus.empty() || !gpu_budgets.empty() || !fraction.empty() || !cpu_limit.empty();
}

Result<std::optional<Budgets>> budgets_from_flags(const DeviceFlags& flags,
                                                  const std::string& profile) {
  if (!flags.given()) return std::optional<Budgets>{};
  if (!profile.empty()) {
    return Error::parse_error(
        "--profile and --gpu/--gpu-budget/--fraction/--cpu-limit both name the devices: give one");
  }
  if (flags.gpus.empty() && flags.gpu_budgets.empty()) {
    return Error::parse_error(
        "--fraction or --cpu-limit without a GPU: give --gpu ID:TOTAL or --gpu-budget ID:SIZE");
  }
  GpuConfig config;
  std::string description;
  for (const std::string& flag : flags.gpus) {
    auto gpu = parse_gpu_flag(flag);
    if (!gpu) return gpu.error();
    config.gpus.push_back(*gpu);
  }
  for (const std::string& flag : flags.gpu_budgets) {
    // ID:SIZE: that GPU's limit is exactly SIZE (a total of SIZE at fraction 1).
    const std::size_t colon = flag.find(':');
    auto id = colon == std::string::npos ? Result<DevicePlacement>(Error::parse_error("no ':'"))
                                         : DevicePlacement::parse("gpu:" + flag.substr(0, colon));
    auto size = colon == std::string::npos ? Result<std::uint64_t>(Error::parse_error("no ':'"))
                                           : parse_byte_size(flag.substr(colon + 1));
    if (!id || !id->is_gpu() || !size) {
      return Error::parse_error("--gpu-budget '" + flag +
                                "': expected ID:SIZE, e.g. 0:20GiB (that GPU's budget, exactly)");
    }
    GpuSpec gpu;
    gpu.id = id->gpu_id();
    gpu.total_bytes = *size;
    gpu.memory_fraction = Fraction::of(1, 1).value();
    config.gpus.push_back(gpu);
  }
  if (!flags.fraction.empty()) {
    auto fraction = Fraction::parse(flags.fraction);
    if (!fraction) return Error::parse_error("--fraction: " + fraction.error().detail);
    config.memory_fraction = *fraction;
  }
  if (!flags.cpu_limit.empty()) {
    auto cpu = parse_byte_size(flags.cpu_limit);
    if (!cpu) return Error::parse_error("--cpu-limit: " + cpu.error().detail);
    config.cpu_memory_limit = *cpu;
  }
  if (config.gpus.size() > sim::max_gpus_per_node) {
    return Error::parse_error("more than " + std::to_string(sim::max_gpus_per_node) +
                              " GPUs in one node");
  }
  if (auto valid = validate(config); !valid) return valid.error();
  return std::optional<Budgets>(Budgets{config,
                                        "the devices given (" + std::to_string(config.gpus.size()) +
                                            " GPU" + (config.gpus.size() == 1 ? "" : "s") + ")",
                                        false});
}

void add_device_flags(CLI::App& command, DeviceFlags& flags) {
  add_gpu_option(command, flags.gpus);
  command.add_option("--gpu-budget", flags.gpu_budgets,
                     "Instead of --profile: a GPU whose budget is exactly SIZE, ID:SIZE (e.g. "
                     "0:20GiB, as vLLM's kv_cache_memory_bytes or TensorRT-LLM's "
                     "max_gpu_total_bytes give it; repeat per GPU)");
  add_fraction_option(command, flags.fraction);
  add_cpu_limit_option(command, flags.cpu_limit);
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
  Budgets budgets{node->config,
                  "profile " + profile + " (" + std::to_string(node->config.gpus.size()) + " GPU" +
                      (node->config.gpus.size() == 1 ? "" : "s") + ")",
                  false};
  for (std::size_t i = 0; i < node->gpus.size() && i < node->config.gpus.size(); ++i) {
    const sim::DeviceProfile& gpu = node->gpus[i];
    if (!gpu.cuda_total_bytes) continue;
    budgets.cuda_total_and_context[node->config.gpus[i].id] = {
        gpu.cuda_total_bytes->value,
        gpu.context_overhead_bytes ? gpu.context_overhead_bytes->value : 0};
  }
  return budgets;
}

void add_allocator_flags(CLI::App& command, AllocatorFlags& flags) {
  command
      .add_option("--allocator", flags.allocator,
                  "How GPU memory answers allocations: 'pytorch' (PyTorch's CUDA caching "
                  "allocator: rounding, 2/20 MiB segments, fragmentation, the CUDA context; the "
                  "default for PyTorch snapshots and Kineto traces) or 'exact' (requested bytes "
                  "against the budget; the default otherwise)")
      ->check(CLI::IsMember({"exact", "pytorch"}));
  command.add_option("--alloc-conf", flags.alloc_conf,
                     "With the pytorch allocator: its settings in PYTORCH_CUDA_ALLOC_CONF syntax, "
                     "e.g. 'expandable_segments:True,max_split_size_mb:512' (default: the "
                     "recording's own allocator_settings, else PyTorch's defaults)");
}

Result<void> choose_allocator(const OpenedTrace& trace, const Budgets& budgets,
                              const std::map<std::uint32_t, std::uint32_t>& gpu_map,
                              const AllocatorFlags& flags, traces::ReplayOptions& options) {
  const traces::TraceHeader& header = trace.reader.header();
  const bool from_pytorch =
      header.source.starts_with("pytorch-snapshot ") || header.source.starts_with("kineto ");
  const bool pytorch = flags.allocator.empty() ? from_pytorch : flags.allocator == "pytorch";
  if (!pytorch) {
    if (!flags.alloc_conf.empty()) {
      return Error::parse_error(
          "--alloc-conf needs the pytorch allocator model (--allocator "
          "pytorch); the exact model has no settings");
    }
    options.allocator = traces::AllocatorModel::exact;
    return {};
  }
  if (options.placement == traces::Placement::Auto) {
    if (!flags.allocator.empty()) {
      return Error::parse_error(
          "--allocator pytorch replays each allocation on the GPU the "
          "recording names: it does not combine with --auto");
    }
    options.allocator = traces::AllocatorModel::exact;
    return {};
  }
  options.allocator = traces::AllocatorModel::pytorch;
  const sim::allocators::AllocatorSettings recorded =
      header.allocator_settings.value_or(sim::allocators::AllocatorSettings{});
  options.pytorch.settings = recorded;
  if (!flags.alloc_conf.empty()) {
    auto settings = sim::allocators::AllocatorSettings::parse(flags.alloc_conf);
    if (!settings) return Error::parse_error("--alloc-conf: " + settings.error().detail);
    options.pytorch.settings = *settings;
  }
  options.pytorch.verify = options.pytorch.settings == recorded;
  for (const GpuSpec& gpu : budgets.config.gpus) {
    const std::uint64_t limit = gpu_limit(gpu, budgets.config.memory_fraction);
    sim::allocators::DeviceLimits limits{limit, limit};
    if (const auto profile = budgets.cuda_total_and_context.find(gpu.id);
        profile != budgets.cuda_total_and_context.end()) {
      // The budget holds everything the process has on the device, the CUDA context included.
      const auto [total, context] = profile->second;
      const std::uint64_t budget = std::min(limit, total);
      limits.capacity = budget > context ? budget - context : 0;
      limits.device_total = std::max(total, limits.capacity);
      options.pytorch.context_bytes[gpu.id] = context;
    }
    options.pytorch.limits[gpu.id] = limits;
  }
  if (budgets.unlimited && !trace.oom_capacity.empty()) {
    // No budget: a device the recording ran out of memory on gets the capacity that implies.
    options.pytorch.recorded_capacity = true;
    for (const auto& [trace_gpu, capacity] : trace.oom_capacity) {
      const auto mapped = gpu_map.find(trace_gpu);
      const std::uint32_t id = mapped == gpu_map.end() ? trace_gpu : mapped->second;
      options.pytorch.limits[id] = sim::allocators::DeviceLimits{capacity, capacity};
    }
  }
  return {};
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
    DeviceFit fit{d, replayer.tracker().limit(d), replayed,
                  needed == s.needed.end() ? replayed : needed->second};
    fit.requested_needed = fit.needed;
    if (const auto m = s.modelled.find(d); m != s.modelled.end()) {
      // Under the pytorch model a device holds what its allocator reserved, and the context.
      const traces::ModelledDevice& model = m->second;
      const auto with_context = [&](std::uint64_t bytes) {
        return checked_add(bytes, model.context_bytes).value_or(UINT64_MAX);
      };
      fit.modelled = true;
      fit.budget = with_context(model.capacity);
      fit.needed = with_context(model.reserved_needed);
      fit.peak = with_context(model.reserved_peak);
    }
    devices.push_back(fit);
  }
  return devices;
}

std::vector<std::filesystem::path> profile_files(const std::string& spec) {
  std::vector<std::filesystem::path> files;
  std::string_view rest = spec;
  while (!rest.empty()) {
    const std::size_t plus = rest.find('+');
    std::string_view part = rest.substr(0, plus);
    rest = plus == std::string_view::npos ? std::string_view{} : rest.substr(plus + 1);
    const std::size_t x = part.find('x');
    if (x != std::string_view::npos &&
        part.substr(0, x).find_first_not_of("0123456789") == std::string_view::npos) {
      part.remove_prefix(x + 1);
    }
    std::error_code ec;
    if (part.empty()) continue;
    if (std::filesystem::exists(std::filesystem::path(part), ec)) files.emplace_back(part);
    const auto builtin = sim::profiles_dir() / (std::string(part) + ".profile");
    if (std::filesystem::exists(builtin, ec)) files.push_back(builtin);
  }
  return files;
}

void locate_positions(const std::vector<const OpenedTrace*>& traces,
                      traces::ReplaySummary& summary) {
  const auto locate = [&traces](traces::TracePosition& at) {
    for (const OpenedTrace* trace : traces) {
      if (trace->reader.name() != at.trace || trace->origin_unit.empty()) continue;
      // Event numbers count every event of the trace, 1-based, as the sink received them.
      if (at.event == 0) return;
      const auto origin = trace->origin(at.event - 1);
      if (origin && *origin != 0)
        at.origin = at.trace + " " + trace->origin_unit + " " + std::to_string(*origin - 1);
      return;
    }
  };
  if (summary.first_refusal) locate(summary.first_refusal->at);
  if (summary.first_inconsistency) locate(summary.first_inconsistency->at);
  if (summary.first_unlanded) locate(summary.first_unlanded->at);
  if (summary.failure) locate(summary.failure->at);
  if (summary.first_model_oom) locate(summary.first_model_oom->at);
  if (summary.first_recorded_oom) locate(summary.first_recorded_oom->at);
}

void print_inconsistencies(std::ostream& out, const traces::ReplaySummary& summary, bool allowed) {
  if (summary.inconsistencies != 0) {
    const traces::Inconsistency& first = *summary.first_inconsistency;
    out << "inconsistent recording: " << summary.inconsistencies
        << " frees of memory it never allocated or had already freed, not applied"
        << (allowed ? " (allowed by --allow-inconsistent)" : "") << "; first at event "
        << first.at.event << " (" << one_line(first.at.to_string()) << "): " << first.what << "\n";
  }
  if (summary.unlanded != 0) {
    const traces::Inconsistency& first = *summary.first_unlanded;
    out << "not replayed whole: " << summary.unlanded
        << " operations landed on no device; first at event " << first.at.event << " ("
        << one_line(first.at.to_string()) << "): " << first.what << "\n";
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

std::string describe_frame(const traces::Frame& frame) {
  std::string text = frame.file.empty() ? std::string("??") : frame.file;
  if (frame.line != 0) text += ":" + std::to_string(frame.line);
  if (!frame.name.empty()) text += " in " + frame.name;
  return text;
}

std::optional<std::size_t> user_frame(const std::vector<traces::Frame>& frames) {
  std::optional<std::size_t> python;
  for (std::size_t i = 0; i < frames.size(); ++i) {
    const std::string& file = frames[i].file;
    if (!file.ends_with(".py")) continue;
    if (!python) python = i;
    const bool library = file.find("/site-packages/") != std::string::npos ||
                         file.find("/dist-packages/") != std::string::npos ||
                         file.find("/lib/python3") != std::string::npos;
    if (!library) return i;
  }
  return python;
}

void print_frames(std::ostream& out, const std::vector<traces::Frame>& frames,
                  std::uint32_t count) {
  if (frames.empty()) return;
  if (const auto user = user_frame(frames)) {
    out << "  allocated at " << escape_for_terminal(describe_frame(frames[*user]))
        << (count <= 1 ? " (--frames N shows its stack)" : "") << "\n";
  } else {
    out << "  allocated with no Python frame on its stack (a C++ thread, such as autograd's "
           "backward pass)"
        << (count <= 1 ? "; --frames N shows its stack" : "") << "\n";
  }
  if (count <= 1) return;
  const std::size_t shown = std::min<std::size_t>(count, frames.size());
  out << "  stack, innermost first (" << shown << " of " << frames.size() << " frames):\n";
  for (std::size_t i = 0; i < shown; ++i)
    out << "    " << escape_for_terminal(describe_frame(frames[i])) << "\n";
}

std::set<DevicePlacement> uncapped_devices(const Budgets& budgets, const MemoryTracker& tracker,
                                           const traces::ReplaySummary& summary) {
  std::set<DevicePlacement> uncapped;
  if (!budgets.unlimited) return uncapped;
  for (const auto& [device, m] : summary.modelled) {
    if (m.capacity == tracker.limit(device)) uncapped.insert(device);
  }
  return uncapped;
}

void print_allocator(std::ostream& out, const traces::ReplaySummary& summary, std::uint32_t frames,
                     const std::set<DevicePlacement>& uncapped) {
  const auto gib = [](std::uint64_t bytes) { return format_gib(bytes) + " GiB"; };
  if (summary.allocator == traces::AllocatorModel::pytorch) {
    out << "allocator: pytorch (PyTorch's CUDA caching allocator; docs/allocator-model.md)\n";
    Table table({"device", ">allocated peak", ">reserved peak", ">frag. at peak", ">largest free",
                 ">context", ">capacity"});
    for (const auto& [device, m] : summary.modelled) {
      table.add_row({device.to_string(), gib(m.allocated_peak), gib(m.reserved_peak),
                     gib(m.reserved_peak - m.allocated_at_reserved_peak),
                     gib(m.largest_free_at_reserved_peak), gib(m.context_bytes),
                     uncapped.contains(device) ? "no limit" : gib(m.capacity)});
    }
    table.print(out);
    if (summary.unmodelled != 0) {
      out << "  " << summary.unmodelled
          << " auto allocations the recording did not place were accounted exactly, outside the "
             "allocator model\n";
    }
    for (const auto& [device, m] : summary.modelled) {
      if (m.recorded_reserved_peak > m.reserved_peak) {
        out << "  " << device.to_string() << ": the recording itself reserved up to "
            << gib(m.recorded_reserved_peak) << " (" << m.recorded_reserved_peak
            << " B), more than the model: its allocator's cache from before the recording is "
               "unknown to the model\n";
      }
    }
    for (const auto& [device, m] : summary.modelled) {
      if (!m.verifying && m.reserved_checks_verified == 0 && m.reserved_checks_undetermined == 0) {
        continue;
      }
      out << "  " << device.to_string()
          << " against the recording's allocator: " << counted(m.addresses_verified, "allocation")
          << " at the recorded address, " << counted(m.segment_events_verified, "segment event")
          << ", " << counted(m.layout_segments_verified, "segment") << " and "
          << counted(m.layout_blocks_verified, "block") << " verified";
      if (m.layouts_skipped != 0) {
        out << "; " << m.layouts_skipped << " layouts not checked (the replay left the recording)";
      }
      if (m.start_blocks_undetermined != 0) {
        out << "; " << m.start_blocks_undetermined
            << " blocks from before the recording undetermined";
      }
      if (m.reserved_checks_verified != 0 || m.reserved_checks_undetermined != 0) {
        out << "; reserved checkpoints: " << m.reserved_checks_verified << " verified, "
            << m.reserved_checks_undetermined
            << " undetermined (the recording began mid-run: the allocator's cache then is "
               "unknown)";
      }
      out << "\n";
    }
    if (summary.first_model_oom) {
      const traces::ModelOutOfMemory& oom = *summary.first_model_oom;
      out << "first out of memory, at " << oom.at.to_string() << ", event " << oom.at.event << ": "
          << escape_for_terminal(oom.event_text) << "\n  " << oom.message() << "\n";
      print_frames(out, oom.frames, frames);
    }
  }
  if (summary.first_recorded_oom) {
    const traces::RecordedOutOfMemory& oom = *summary.first_recorded_oom;
    out << "the recording ran out of memory " << summary.recorded_ooms
        << (summary.recorded_ooms == 1 ? " time" : " times") << "; first at " << oom.at.to_string()
        << ": " << oom.requested << " bytes requested on " << oom.device.to_string() << " with "
        << oom.device_free << " bytes free";
    if (oom.reserved) out << " and " << *oom.reserved << " reserved";
    if (oom.reproduced) {
      out << (*oom.reproduced ? " (the model refuses it too)" : " (the model does not)");
    }
    out << "\n";
  }
}

}  // namespace memtrack::cli
