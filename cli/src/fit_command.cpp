// memtrack fit TRACE... --profile P: does this recording (or model set) fit on that device?
#include "app.hpp"
#include "commands.hpp"
#include "options.hpp"
#include "progress.hpp"
#include "summary_json.hpp"
#include "table.hpp"
#include "terminal.hpp"
#include "trace_support.hpp"

#include <memtrack/memtrack.hpp>
#include <memtrack/sim/profile.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <functional>

namespace memtrack::cli {
namespace {

struct FitOptions {
  std::vector<std::string> files;
  std::string profile;
  std::optional<std::uint32_t> gpus;
  std::string placement = "recorded";
  bool json = false;
  bool production_only = false;
  bool allow_inconsistent = false;
  std::vector<std::string> map;
  DeviceFlags devices;
  AllocatorFlags allocator;
  bool suggest = false;
  std::uint32_t frames = 1;
};

// The CUDA total varies with the driver (docs/profiles.md). Replays the recordings with each GPU
// at the lowest and at the highest total its profile's figures allow (the budgets by the same
// integer rules) and says whether the verdict holds across them; a total known only to the MiB
// is named with its "± 1 MiB". Prints nothing when no profile's budget varies.
void report_driver_variance(
    const FitOptions& options, const Budgets& budgets, const traces::ReplayOptions& base,
    const std::function<std::map<std::uint32_t, std::uint32_t>(std::size_t, const OpenedTrace&)>&
        gpu_map_of,
    std::ostream& out) {
  auto node = sim::make_node(options.profile);
  if (!node) return;
  std::vector<const sim::DeviceProfile*> distinct;
  for (const sim::DeviceProfile& profile : node->gpus) {
    const bool seen = std::any_of(distinct.begin(), distinct.end(),
                                  [&](const auto* p) { return p->name == profile.name; });
    if (!seen) distinct.push_back(&profile);
  }
  for (const sim::DeviceProfile* profile : distinct) {
    if (!profile->cuda_total_precision_bytes) continue;
    out << "CUDA total of " << profile->name << ": "
        << sim::describe_figure(sim::cuda_total_figures(*profile).front()) << ", known only to ± "
        << sim::format_precision(profile->cuda_total_precision_bytes->value) << "\n";
  }
  const auto verdict_at = [&](const GpuConfig& config) -> std::optional<bool> {
    traces::ReplayOptions replay_options = base;
    replay_options.lockstep = false;  // the lockstep check ran at the profile's own total
    replay_options.recorded_budgets = false;
    if (base.allocator == traces::AllocatorModel::pytorch) {
      // The model's capacity at this total: the budget (within the total) less the context.
      for (const GpuSpec& gpu : config.gpus) {
        const auto context = base.pytorch.context_bytes.find(gpu.id);
        const std::uint64_t held =
            context == base.pytorch.context_bytes.end() ? 0 : context->second;
        const std::uint64_t budget =
            std::min(gpu_limit(gpu, config.memory_fraction), gpu.total_bytes);
        replay_options.pytorch.limits[gpu.id] = {budget > held ? budget - held : 0,
                                                 gpu.total_bytes};
      }
    }
    auto replayer = traces::Replayer::create(config, replay_options);
    if (!replayer) return std::nullopt;
    for (std::size_t i = 0; i < options.files.size(); ++i) {
      auto trace = open_trace(options.files[i]);
      if (!trace) return std::nullopt;
      if (!replayer->replay(trace->reader, gpu_map_of(i, *trace))) return std::nullopt;
      if (replayer->summary().failure) break;
    }
    return replayer->summary().refused == 0 && !replayer->summary().failure;
  };
  const auto limits_of = [](const GpuConfig& config) {
    std::vector<std::uint64_t> limits;
    for (const GpuSpec& gpu : config.gpus)
      limits.push_back(gpu_limit(gpu, config.memory_fraction));
    return limits;
  };
  const GpuConfig lowest = sim::config_at_total(budgets.config, node->gpus, sim::TotalEnd::Lowest);
  const GpuConfig highest =
      sim::config_at_total(budgets.config, node->gpus, sim::TotalEnd::Highest);
  if (limits_of(lowest) == limits_of(highest)) return;  // the driver cannot change the verdict
  const auto at_lowest = verdict_at(lowest);
  const auto at_highest = verdict_at(highest);
  if (!at_lowest || !at_highest) return;
  const auto figures = [&](sim::TotalEnd end) {
    std::string text;
    for (const sim::DeviceProfile* profile : distinct) {
      const sim::TotalRange range = sim::cuda_total_range(*profile);
      text += (text.empty() ? "" : " and ") + (distinct.size() > 1 ? profile->name + " at " : "") +
              sim::describe_figure(end == sim::TotalEnd::Lowest ? range.lowest.figure
                                                                : range.highest.figure);
    }
    return text;
  };
  const std::string low = figures(sim::TotalEnd::Lowest);
  const std::string high = figures(sim::TotalEnd::Highest);
  if (*at_lowest == *at_highest) {
    out << "driver variance: " << (*at_lowest ? "fits" : "does not fit")
        << " at every known CUDA total, from " << low << " to " << high << "\n";
  } else {
    out << "driver variance: the verdict depends on the driver: fits under "
        << (*at_highest ? high : low) << ", not under " << (*at_highest ? low : high) << "\n";
  }
}

/// One allocator setting `fit --suggest` tried.
struct Suggestion {
  std::string conf;  ///< in PYTORCH_CUDA_ALLOC_CONF syntax
  bool fits{false};
  DeviceFit tightest;  ///< the GPU with the least headroom (or the largest shortfall)
};

/// @return the settings `--suggest` tries: the recording's own with one change each
std::vector<sim::allocators::AllocatorSettings> suggested_settings(
    const sim::allocators::AllocatorSettings& base) {
  std::vector<sim::allocators::AllocatorSettings> variants;
  if (!base.expandable_segments) {
    variants.push_back(base);
    variants.back().expandable_segments = true;
  }
  for (const std::uint64_t mib : {128U, 256U, 512U}) {
    if (base.max_split_size == mib << 20U) continue;
    variants.push_back(base);
    variants.back().max_split_size = std::uint64_t{mib} << 20U;
  }
  // The threshold acts only under a per-process fraction, as in PyTorch: the whole device.
  for (const char* threshold : {"0.6", "0.8"}) {
    variants.push_back(base);
    variants.back().garbage_collection_threshold = Fraction::parse(threshold).value();
    if (!base.per_process_memory_fraction) {
      variants.back().per_process_memory_fraction = Fraction::of(1, 1).value();
    }
  }
  return variants;
}

/// The GPU with the least headroom, or the largest shortfall, of a fit summary.
DeviceFit tightest_gpu(const std::vector<DeviceFit>& devices) {
  DeviceFit tightest;
  bool first = true;
  for (const DeviceFit& d : devices) {
    if (!d.device.is_gpu()) continue;
    const bool tighter =
        first || (d.fits() != tightest.fits() ? !d.fits()
                                              : (d.fits() ? d.headroom() < tightest.headroom()
                                                          : d.shortfall() > tightest.shortfall()));
    if (tighter) tightest = d;
    first = false;
  }
  return tightest;
}

/**
 * @brief `fit --suggest`: replays the traces again under each suggested allocator setting (the
 * reference model off: the lockstep check ran as recorded).
 * @return one line per setting, or bad input
 */
Result<std::vector<Suggestion>> run_suggestions(
    const std::vector<OpenedTrace>& opened, const Budgets& budgets,
    const std::vector<std::map<std::uint32_t, std::uint32_t>>& gpu_maps,
    const traces::ReplayOptions& base) {
  std::vector<Suggestion> lines;
  for (const auto& settings : suggested_settings(base.pytorch.settings)) {
    traces::ReplayOptions replay_options = base;
    replay_options.lockstep = false;
    replay_options.pytorch.settings = settings;
    replay_options.pytorch.verify = false;
    auto replayer = traces::Replayer::create(budgets.config, replay_options);
    if (!replayer) return replayer.error();
    for (std::size_t i = 0; i < opened.size(); ++i) {
      auto reader = reopen(opened[i]);
      if (!reader) return reader.error();
      auto replayed = replayer->replay(*reader, gpu_maps[i]);
      if (!replayed) return replayed.error();
      if (replayer->summary().failure) break;
    }
    const traces::ReplaySummary& s = replayer->summary();
    const DeviceFit tightest = tightest_gpu(fit_summary(*replayer));
    lines.push_back({settings.to_string(),
                     s.refused == 0 && !s.failure && s.unlanded == 0 && tightest.fits(), tightest});
  }
  return lines;
}

void print_suggestions(std::ostream& out, const std::vector<Suggestion>& lines, bool fits,
                       const DeviceFit& as_recorded) {
  out << "\nwhat would make it fit (each allocator setting replayed; "
      << as_recorded.device.to_string() << " is the tightest GPU as recorded):\n";
  Table table({"setting", ">reserved + context", ">budget", "fits"});
  table.add_row({"as recorded", format_gib(as_recorded.needed) + " GiB",
                 format_gib(as_recorded.budget) + " GiB", fits ? "yes" : "NO"});
  for (const Suggestion& line : lines) {
    table.add_row({line.conf, format_gib(line.tightest.needed) + " GiB",
                   format_gib(line.tightest.budget) + " GiB", line.fits ? "yes" : "NO"});
  }
  table.print(out);
  const Suggestion* best = nullptr;
  for (const Suggestion& line : lines) {
    if (line.fits && (best == nullptr || line.tightest.needed < best->tightest.needed))
      best = &line;
  }
  if (fits) {
    out << "suggestion: fits as recorded";
    if (best != nullptr && best->tightest.needed < as_recorded.needed) {
      out << "; the least reserved with " << best->conf << " (" << format_gib(best->tightest.needed)
          << " GiB with the context)";
    }
    out << "\n";
  } else if (best != nullptr) {
    out << "suggestion: does not fit as recorded; fits with " << best->conf << " (reserved peak "
        << format_gib(best->tightest.needed) << " GiB with the context; set "
        << "PYTORCH_CUDA_ALLOC_CONF=" << best->conf << ")\n";
  } else {
    out << "suggestion: none of these settings makes it fit\n";
  }
}

/// One profile's line in a ranking (`--profile all` or a comma-separated list).
struct ProfileFit {
  std::string profile;
  std::size_t gpus{0};
  bool fits{false};
  std::uint64_t refused{0};
  DeviceFit tightest;  ///< the device with the least headroom (or the largest shortfall)
};

/// @return the profiles a ranking covers: every built-in GPU profile for `all`, else the list
Result<std::vector<std::string>> ranked_profiles(const std::string& spec) {
  std::vector<std::string> names;
  if (spec == "all") {
    auto profiles = sim::load_builtin_profiles();
    if (!profiles) return profiles.error();
    for (const sim::DeviceProfile& profile : *profiles) {
      if (!profile.is_cpu) names.push_back(profile.name);
    }
    return names;
  }
  std::string_view rest = spec;
  while (true) {
    const std::size_t comma = rest.find(',');
    const std::string_view name = rest.substr(0, comma);
    if (name.empty()) {
      return Error::parse_error(
          "--profile '" + spec +
          "': an empty name in the list (expected e.g. rtx5090,l40s,h100-sxm)");
    }
    names.emplace_back(name);
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  return names;
}

/// Replays every trace on one profile: the line of the ranking, or bad input.
Result<ProfileFit> fit_on(const std::string& profile, const FitOptions& options,
                          traces::Placement placement,
                          const std::map<std::uint32_t, std::uint32_t>& explicit_map,
                          std::vector<OpenedTrace>& opened) {
  std::size_t used = 0;
  for (OpenedTrace& trace : opened) {
    used = std::max(used, trace.used_gpus.size());
    // A fresh reader of the same recording: read (and imported) once, replayed per profile.
    auto reader = reopen(trace);
    if (!reader) return reader.error();
    trace.reader = std::move(*reader);
  }
  auto budgets = profile_budgets(profile, options.gpus, used);
  if (!budgets) return budgets.error();
  traces::ReplayOptions replay_options;
  replay_options.lockstep = !options.production_only;
  replay_options.placement = placement;
  replay_options.recorded_budgets = false;
  if (auto chosen =
          choose_allocator(opened.front(), *budgets, {}, options.allocator, replay_options);
      !chosen) {
    return chosen.error();
  }
  auto replayer = traces::Replayer::create(budgets->config, replay_options);
  if (!replayer) return replayer.error();
  for (OpenedTrace& trace : opened) {
    auto map = gpu_map_for(trace, *budgets, explicit_map);
    if (!map) return Error::parse_error("profile " + profile + ": " + map.error().detail);
    auto replayed = replayer->replay(trace.reader, *map);
    if (!replayed) return replayed.error();
    if (replayer->summary().failure) break;
  }
  const traces::ReplaySummary& s = replayer->summary();
  ProfileFit line;
  line.profile = profile;
  line.gpus = budgets->config.gpus.size();
  line.refused = s.refused;
  const bool consistent = s.inconsistencies == 0 || options.allow_inconsistent;
  line.fits = s.refused == 0 && !s.failure && s.unlanded == 0 && consistent;
  bool first = true;
  for (const DeviceFit& d : fit_summary(*replayer)) {
    if (!d.device.is_gpu() && d.needed == 0) continue;  // an unused CPU says nothing
    // The tightest device: the largest shortfall, else the least headroom.
    const bool tighter = first || (d.fits() != line.tightest.fits()
                                       ? !d.fits()
                                       : (d.fits() ? d.headroom() < line.tightest.headroom()
                                                   : d.shortfall() > line.tightest.shortfall()));
    if (tighter) line.tightest = d;
    first = false;
    line.fits = line.fits && d.fits();
  }
  return line;
}

/// Every profile's line, sorted by its tightest device's budget, and which fit.
struct Ranking {
  std::vector<ProfileFit> lines;
  std::optional<std::size_t> smallest;  ///< the first line that fits: the smallest budget
  std::size_t fitting{0};
  [[nodiscard]] bool all_fit() const { return fitting == lines.size(); }
};

/// Replays the traces (opened and imported once) on every profile `--profile` names.
Result<Ranking> rank_profiles(const FitOptions& options, traces::Placement placement,
                              const std::map<std::uint32_t, std::uint32_t>& explicit_map) {
  auto names = ranked_profiles(options.profile);
  if (!names) return names.error();
  std::vector<OpenedTrace> opened;
  for (const std::string& file : options.files) {
    auto trace = open_trace(file);
    if (!trace) return trace.error();
    opened.push_back(std::move(*trace));
  }
  Ranking ranking;
  for (const std::string& name : *names) {
    auto line = fit_on(name, options, placement, explicit_map, opened);
    if (!line) return line.error();
    ranking.lines.push_back(std::move(*line));
  }
  std::sort(ranking.lines.begin(), ranking.lines.end(),
            [](const ProfileFit& a, const ProfileFit& b) {
              return a.tightest.budget != b.tightest.budget ? a.tightest.budget < b.tightest.budget
                                                            : a.profile < b.profile;
            });
  for (std::size_t i = 0; i < ranking.lines.size(); ++i) {
    if (!ranking.lines[i].fits) continue;
    ++ranking.fitting;
    if (!ranking.smallest) ranking.smallest = i;
  }
  return ranking;
}

void print_ranking_json(const FitOptions& options, const Ranking& ranking, std::ostream& out) {
  nlohmann::ordered_json json;
  json["profiles_asked"] = options.profile;
  json["placement"] = options.placement;
  json["traces"] = options.files;
  json["fits"] = ranking.all_fit();
  json["fitting"] = ranking.fitting;
  json["smallest_fitting"] =
      text_or_null(ranking.smallest ? ranking.lines[*ranking.smallest].profile : std::string());
  json["profiles"] = nlohmann::ordered_json::array();
  for (const ProfileFit& line : ranking.lines) {
    const DeviceFit& d = line.tightest;
    json["profiles"].push_back({{"profile", line.profile},
                                {"gpus", line.gpus},
                                {"fits", line.fits},
                                {"device", d.device.to_string()},
                                {"budget_bytes", d.budget},
                                {"needed_bytes", d.needed},
                                {"headroom_bytes", number_or_null(d.fits(), d.headroom())},
                                {"shortfall_bytes", number_or_null(!d.fits(), d.shortfall())},
                                {"refused", line.refused}});
  }
  out << json.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) << "\n";
}

void print_ranking_text(const FitOptions& options, const Ranking& ranking, std::ostream& out) {
  const std::vector<ProfileFit>& lines = ranking.lines;
  out << "memtrack fit: " << options.files.size() << " trace"
      << (options.files.size() == 1 ? "" : "s") << " on " << lines.size() << " profiles, placement "
      << options.placement << "; per profile its tightest device\n";
  for (const std::string& file : options.files)
    out << "  " << one_line(file) << "\n";
  out << "\n";
  Table table({"profile", ">GPUs", "device", ">budget bytes", ">needed bytes", ">needed GiB",
               ">headroom bytes", ">short by bytes", "fits"});
  for (const ProfileFit& line : lines) {
    const DeviceFit& d = line.tightest;
    table.add_row({line.profile, std::to_string(line.gpus), d.device.to_string(),
                   std::to_string(d.budget), std::to_string(d.needed), format_gib(d.needed),
                   d.fits() ? std::to_string(d.headroom()) : "-",
                   d.fits() ? "-" : std::to_string(d.shortfall()), line.fits ? "yes" : "NO"});
  }
  table.print(out);
  if (ranking.smallest) {
    const ProfileFit& smallest = lines[*ranking.smallest];
    const DeviceFit& d = smallest.tightest;
    out << "\nsmallest profile that fits: " << smallest.profile << " (budget "
        << format_gib(d.budget) << " GiB, needs " << format_gib(d.needed) << " GiB, headroom "
        << format_gib(d.headroom()) << " GiB)\n";
  } else {
    out << "\nno profile fits\n";
  }
  out << "verdict: " << (ranking.all_fit() ? "FITS" : "DOES NOT FIT") << " on " << ranking.fitting
      << " of " << lines.size() << " profiles\n";
}

/// `fit --profile A,B,C` or `--profile all`: one line per profile, the smallest that fits named.
Outcome run_fit_ranking(const FitOptions& options, traces::Placement placement,
                        const std::map<std::uint32_t, std::uint32_t>& explicit_map,
                        std::ostream& out) {
  auto ranking = rank_profiles(options, placement, explicit_map);
  if (!ranking) return ranking.error();
  if (options.json) {
    print_ranking_json(options, *ranking, out);
  } else {
    print_ranking_text(options, *ranking, out);
  }
  return ranking->all_fit() ? exit_ok : exit_failure;
}

using GpuMap = std::map<std::uint32_t, std::uint32_t>;

// Everything a fit needs before its replay; bad input is reported before any replay.
struct FitPlan {
  traces::Placement placement = traces::Placement::Recorded;
  std::vector<OpenedTrace> opened;
  Budgets budgets;
  std::vector<GpuMap> gpu_maps;  // per trace: its GPUs onto the node's
  traces::ReplayOptions replay_options;
};

// What the replay answered.
struct FitOutcome {
  traces::ReplaySummary summary;
  std::vector<DeviceFit> devices;
  std::vector<Suggestion> suggestions;
  bool consistent = true;  // no inconsistent frees, or --allow-inconsistent
  bool fits = false;
};

// The traces opened, the node's budgets and where each trace's GPUs land, or bad input.
Result<FitPlan> plan_fit(const FitOptions& options, traces::Placement placement,
                         const GpuMap& explicit_map) {
  FitPlan plan;
  plan.placement = placement;
  std::size_t used_gpus = 0;
  for (const std::string& file : options.files) {
    auto trace = open_trace(file);
    if (!trace) return trace.error();
    used_gpus = std::max(used_gpus, trace->used_gpus.size());
    plan.opened.push_back(std::move(*trace));
  }
  // The node: the profile, repeated to the most GPUs any trace uses unless --gpus says.
  auto given = budgets_from_flags(options.devices, options.profile);
  if (!given) return given.error();
  auto budgets =
      *given ? Result<Budgets>(**given) : profile_budgets(options.profile, options.gpus, used_gpus);
  if (!budgets) return budgets.error();
  plan.budgets = std::move(*budgets);
  // Every trace's GPUs must land on the node's: refused before any replay.
  for (const OpenedTrace& trace : plan.opened) {
    auto map = gpu_map_for(trace, plan.budgets, explicit_map);
    if (!map) return map.error();
    plan.gpu_maps.push_back(std::move(*map));
  }
  plan.replay_options.lockstep = !options.production_only;
  plan.replay_options.placement = placement;
  plan.replay_options.recorded_budgets = false;
  if (auto chosen = choose_allocator(plan.opened.front(), plan.budgets, plan.gpu_maps.front(),
                                     options.allocator, plan.replay_options);
      !chosen) {
    return chosen.error();
  }
  return plan;
}

// Replays the traces one after another on the plan's node (with progress on a terminal), then
// the --suggest settings; or bad input.
Result<FitOutcome> replay_fit(const FitOptions& options, FitPlan& plan, std::ostream& err) {
  auto replayer = traces::Replayer::create(plan.budgets.config, plan.replay_options);
  if (!replayer) return replayer.error();
  std::uint64_t total_events = 0;
  for (const OpenedTrace& trace : plan.opened)
    total_events += trace.events;
  const bool terminal = is_terminal_stderr(err) && !options.json;
  ProgressBar bar(err, total_events, terminal, "events");
  std::uint64_t events_before = 0;
  std::function<void(const traces::ReplayStep&)> on_step;
  if (terminal) {
    on_step = [&](const traces::ReplayStep& step) {
      if ((step.event & 0xFFFU) == 0) bar.update(events_before + step.event);
    };
  }
  for (std::size_t i = 0; i < plan.opened.size(); ++i) {
    auto replayed = replayer->replay(plan.opened[i].reader, plan.gpu_maps[i], on_step);
    events_before += plan.opened[i].events;
    if (!replayed) return replayed.error();
    if (replayer->summary().failure) break;
  }
  bar.finish();

  FitOutcome outcome;
  outcome.summary = replayer->summary();
  const traces::ReplaySummary& s = outcome.summary;
  std::vector<const OpenedTrace*> traces_for_positions;
  for (const OpenedTrace& trace : plan.opened)
    traces_for_positions.push_back(&trace);
  locate_positions(traces_for_positions, outcome.summary);
  outcome.devices = fit_summary(*replayer);
  // A replay that was not whole (an operation that landed nowhere) or that rests on a
  // recording's inconsistent frees never says FITS (the latter unless asked to).
  outcome.consistent = s.inconsistencies == 0 || options.allow_inconsistent;
  outcome.fits = s.refused == 0 && !s.failure && s.unlanded == 0 && outcome.consistent;
  if (options.suggest) {
    if (s.allocator != traces::AllocatorModel::pytorch) {
      return Error::parse_error(
          "--suggest tries PyTorch allocator settings: it needs the pytorch allocator model "
          "(--allocator pytorch)");
    }
    auto tried = run_suggestions(plan.opened, plan.budgets, plan.gpu_maps, plan.replay_options);
    if (!tried) return bad_input("--suggest: ", tried.error());
    outcome.suggestions = std::move(*tried);
  }
  return outcome;
}

nlohmann::ordered_json device_fit_json(const DeviceFit& d, const traces::ReplaySummary& s) {
  nlohmann::ordered_json json{{"device", d.device.to_string()},
                              {"budget_bytes", d.budget},
                              {"needed_bytes", d.needed},
                              {"fits", d.fits()},
                              {"headroom_bytes", number_or_null(d.fits(), d.headroom())},
                              {"shortfall_bytes", number_or_null(!d.fits(), d.shortfall())},
                              {"headroom_percent", percent_number(d.headroom(), d.budget)},
                              {"peak_bytes", d.peak},
                              {"requested_needed_bytes", d.requested_needed}};
  if (const auto m = s.modelled.find(d.device); m != s.modelled.end()) {
    json["allocator"] = modelled_json(m->second);
  }
  return json;
}

void print_fit_json(const FitOptions& options, const FitPlan& plan, const FitOutcome& outcome,
                    std::ostream& out) {
  const traces::ReplaySummary& s = outcome.summary;
  nlohmann::ordered_json json;
  json["profile"] = options.profile;
  json["budgets"] = plan.budgets.description;
  json["placement"] = options.placement;
  json["traces"] = options.files;
  json["fits"] = outcome.fits;
  json["events"] = s.events;
  json["operations"] = s.operations;
  json["refused"] = s.refused;
  json["devices"] = nlohmann::ordered_json::array();
  for (const DeviceFit& d : outcome.devices)
    json["devices"].push_back(device_fit_json(d, s));
  json["allocator"] = std::string(traces::to_string(s.allocator));
  json["alloc_conf"] = plan.replay_options.pytorch.settings.to_string();
  add_oom_json(json, s);
  if (options.suggest) {
    json["suggestions"] = nlohmann::ordered_json::array();
    for (const Suggestion& line : outcome.suggestions) {
      json["suggestions"].push_back({{"alloc_conf", line.conf},
                                     {"fits", line.fits},
                                     {"device", line.tightest.device.to_string()},
                                     {"needed_bytes", line.tightest.needed},
                                     {"budget_bytes", line.tightest.budget}});
    }
  }
  json["cpu_fallback_allocations"] = s.cpu_fallback_allocations;
  json["cpu_fallback_bytes"] = s.cpu_fallback_bytes;
  json["first_refusal"] = refusal_json(s.first_refusal);
  json["failure"] = s.failure ? nlohmann::ordered_json(s.failure->to_string()) : nullptr;
  add_consistency_json(json, s, options.allow_inconsistent);
  out << json.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) << "\n";
}

// The head and the per-device table: budget, needed, headroom or shortfall.
void print_fit_table(const FitOptions& options, const FitPlan& plan, const FitOutcome& outcome,
                     std::ostream& out) {
  out << "memtrack fit: " << options.files.size() << " trace"
      << (options.files.size() == 1 ? "" : "s") << " on " << plan.budgets.description
      << ", placement " << options.placement << "\n";
  for (std::size_t i = 0; i < plan.opened.size(); ++i) {
    out << "  " << one_line(options.files[i]);
    if (!plan.opened[i].imported_from.empty())
      out << " (imported from " << plan.opened[i].imported_from << ")";
    out << "\n";
  }
  out << "  " << outcome.summary.operations << " operations replayed"
      << (options.production_only ? "" : " in lockstep with the reference model") << "\n\n";
  Table table({"device", ">budget bytes", ">needed bytes", ">needed GiB", ">headroom bytes",
               ">headroom %", ">short by bytes"});
  for (const DeviceFit& d : outcome.devices) {
    table.add_row({d.device.to_string(), std::to_string(d.budget), std::to_string(d.needed),
                   format_gib(d.needed), d.fits() ? std::to_string(d.headroom()) : "-",
                   d.fits() ? format_percent(d.headroom(), d.budget) : "-",
                   d.fits() ? "-" : std::to_string(d.shortfall())});
  }
  table.print(out);
  if (plan.placement == traces::Placement::Auto) {
    out << "(under auto placement 'needed' is the replay's peak: where an allocation goes "
           "depends on the budgets)\n";
  }
  for (const DeviceFit& d : outcome.devices) {
    if (d.fits()) continue;
    out << d.device.to_string() << " needs " << format_gib(d.needed) << " GiB (" << d.needed
        << " B), budget " << format_gib(d.budget) << " GiB (" << d.budget << " B): short by "
        << format_gib(d.shortfall()) << " GiB (" << d.shortfall() << " B)\n";
  }
}

// The verdict line (and the first refusal before it); @return the exit code it stands for.
ExitCode print_fit_verdict(const FitOptions& options, const FitPlan& plan,
                           const FitOutcome& outcome, std::ostream& out) {
  const traces::ReplaySummary& s = outcome.summary;
  if (s.failure) {
    out << "verdict: REPLAY FAILED, " << s.failure->to_string() << "\n";
    return exit_failure;
  }
  if (s.unlanded != 0) {
    out << "verdict: NOT REPLAYED WHOLE: " << s.unlanded
        << " operations named a device the node does not have\n";
    return exit_failure;
  }
  if (!outcome.consistent) {
    out << "verdict: INCONSISTENT RECORDING: not fitted (--allow-inconsistent fits it with those "
           "frees left unapplied)\n";
    return exit_failure;
  }
  if (s.first_refusal) {
    const traces::Refusal& r = *s.first_refusal;
    out << "first refused: event " << r.at.event << " (" << one_line(r.at.to_string()) << "), "
        << r.bytes << " bytes (" << format_gib(r.bytes) << " GiB) on " << r.device.to_string()
        << " with " << r.available << " bytes (" << format_gib(r.available) << " GiB) available\n";
    if (!s.first_model_oom) print_frames(out, r.frames, options.frames);
    out << "verdict: DOES NOT FIT on " << plan.budgets.description << "\n";
    return exit_failure;
  }
  out << "verdict: FITS on " << plan.budgets.description << "\n";
  return exit_ok;
}

ExitCode print_fit_text(const FitOptions& options, const FitPlan& plan, const FitOutcome& outcome,
                        std::ostream& out) {
  const traces::ReplaySummary& s = outcome.summary;
  print_fit_table(options, plan, outcome, out);
  out << "\nrefused allocations: " << s.refused << "\n";
  if (plan.placement == traces::Placement::Auto || s.cpu_fallback_allocations != 0) {
    out << "auto placed " << s.cpu_fallback_allocations
        << " allocations on the CPU: " << s.cpu_fallback_bytes << " bytes ("
        << format_gib(s.cpu_fallback_bytes)
        << " GiB) in all over the run (the CPU's peak is in the table)\n";
  }
  print_allocator(out, s, options.frames);
  print_inconsistencies(out, s, options.allow_inconsistent);
  if (!s.failure) {
    report_driver_variance(
        options, plan.budgets, plan.replay_options,
        [&](std::size_t i, const OpenedTrace&) { return plan.gpu_maps[i]; }, out);
  }
  if (options.suggest && !s.failure) {
    print_suggestions(out, outcome.suggestions, outcome.fits, tightest_gpu(outcome.devices));
  }
  return print_fit_verdict(options, plan, outcome, out);
}

Outcome run_fit(const FitOptions& options, std::ostream& out, std::ostream& err) {
  traces::Placement placement = traces::Placement::Recorded;
  if (options.placement == "auto") placement = traces::Placement::Auto;  // CLI11 checks the rest
  auto explicit_map = parse_gpu_map(options.map);
  if (!explicit_map) return explicit_map.error();
  if (options.profile.empty() && !options.devices.given()) {
    return Error::parse_error(
        "give --profile (e.g. rtx5090, or all) or the devices (--gpu ID:TOTAL or --gpu-budget "
        "ID:SIZE)");
  }
  if (options.profile == "all" || options.profile.find(',') != std::string::npos) {
    return run_fit_ranking(options, placement, *explicit_map, out);
  }
  auto plan = plan_fit(options, placement, *explicit_map);
  if (!plan) return plan.error();
  const auto outcome = replay_fit(options, *plan, err);
  if (!outcome) return outcome.error();
  if (options.json) {
    print_fit_json(options, *plan, *outcome, out);
    return outcome->fits ? exit_ok : exit_failure;
  }
  return print_fit_text(options, *plan, *outcome, out);
}

}  // namespace

void add_fit_command(CLI::App& app, Command& chosen) {
  auto options = std::make_shared<FitOptions>();
  CLI::App* fit = app.add_subcommand(
      "fit",
      "Does it fit? Replay recordings on a device profile's budgets and report, per device, the "
      "budget, what the recording needs (its peak with nothing refused), the headroom or the "
      "shortfall, and the first refused allocation. Several traces run one after another on the "
      "same devices (a model set loaded in turn). A recording that frees what it never "
      "allocated is reported and not fitted (see --allow-inconsistent). Exit 0 fits, 1 does not "
      "fit, 2 bad input.");
  fit->add_option("traces", options->files,
                  "Recordings: memtrack traces, or PyTorch / Kineto / RMM / Nsight files "
                  "(imported on the fly)")
      ->required();
  CLI::Option* profile = add_profile_flags(*fit, options->profile, options->gpus);
  profile->description(profile->get_description() +
                       ". Or several, comma-separated (rtx5090,l40s,h100-sxm), or 'all' (every "
                       "built-in profile): one line each, sorted by budget, the smallest that "
                       "fits named; exit 0 only when every one fits");
  add_device_flags(*fit, options->devices);
  add_allocator_flags(*fit, options->allocator);
  fit->add_option("--frames", options->frames,
                  "Where the first refused allocation was made: the innermost frame of your own "
                  "code (default), or N frames of its stack, innermost first (recordings with "
                  "call stacks: PyTorch snapshots recorded with stacks)")
      ->check(CLI::Range(1U, 1000U));
  fit->add_flag("--suggest", options->suggest,
                "With the pytorch allocator: replay again under other allocator settings "
                "(expandable_segments:True, max_split_size_mb 128/256/512, "
                "garbage_collection_threshold 0.6/0.8) and say which would make it fit");
  fit->add_option("--placement", options->placement,
                  "recorded: each allocation on its recorded GPU; auto: the first GPU with room, "
                  "else the CPU")
      ->check(CLI::IsMember({"recorded", "auto"}));
  add_json_flag(*fit, options->json);
  add_production_only_flag(*fit, options->production_only);
  fit->add_flag("--allow-inconsistent", options->allow_inconsistent,
                "Fit a recording that frees what it never allocated (double frees, frees of "
                "unknown addresses): those frees are counted and left unapplied");
  fit->add_option("--map", options->map,
                  "TRACE_GPU=NODE_GPU, e.g. gpu:1=gpu:0 (repeatable): put a trace's GPU on a "
                  "node's; the others the trace uses go, ascending, onto the node's free GPUs");
  run_when_chosen(*fit, chosen, options, run_fit);
}

}  // namespace memtrack::cli
