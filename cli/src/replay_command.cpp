// memtrack replay TRACE: a recording through the production tracker and the reference model in
// lockstep, verifying the recording's own checkpoints and outcomes. What 'memtrack sim' and the
// property tests write (a divergence, a regression) are traces too.
#include "app.hpp"
#include "commands.hpp"
#include "options.hpp"
#include "state_json.hpp"
#include "summary_json.hpp"
#include "table.hpp"
#include "terminal.hpp"
#include "trace_support.hpp"

#include <memtrack/memtrack.hpp>
#include <memtrack/traces/io.hpp>

#include <fstream>
#include <set>

namespace memtrack::cli {
namespace {

struct ReplayOptions {
  std::string file;
  std::string states;
  std::string profile;
  std::optional<std::uint32_t> gpus;
  bool production_only = false;
  bool allow_inconsistent = false;
  DeviceFlags devices;
  AllocatorFlags allocator;
  bool json = false;
};

// Without budgets (measuring only) each device's limit is "none": the tracker's limit then is
// only a number too large to reach.
void print_devices(std::ostream& out, const MemoryTracker& tracker,
                   const traces::ReplaySummary& summary, bool unlimited) {
  Table table({"device", ">limit bytes", ">peak bytes", ">peak GiB", ">final bytes"});
  std::vector<DevicePlacement> devices;
  for (const std::uint32_t id : tracker.gpu_ids())
    devices.emplace_back(Gpu{id});
  devices.emplace_back(Cpu{});
  for (const DevicePlacement d : devices) {
    const std::uint64_t peak = summary.high_water.at(d);
    table.add_row({d.to_string(), unlimited ? "none" : std::to_string(tracker.limit(d)),
                   std::to_string(peak), format_gib(peak), std::to_string(tracker.allocated(d))});
  }
  table.print(out);
}

void print_replay_json(std::ostream& out, const ReplayOptions& options, const OpenedTrace& trace,
                       const Budgets& budgets, const traces::Replayer& replayer,
                       const traces::ReplaySummary& s, bool agree) {
  nlohmann::ordered_json json;
  json["trace"] = options.file;
  json["imported_from"] = trace.imported_from;
  json["source"] = trace.reader.header().source;
  json["budgets"] = budgets.description;
  json["allocator"] = std::string(traces::to_string(s.allocator));
  json["lockstep"] = !options.production_only;
  json["agree"] = agree;
  json["events"] = s.events;
  json["operations"] = s.operations;
  json["ok"] = s.ok;
  json["refused"] = s.refused;
  json["other_errors"] = s.other_errors;
  json["checkpoints_verified"] = s.checkpoints_verified;
  json["checkpoints_skipped"] = s.checkpoints_skipped;
  json["outcome_differences"] = s.outcome_differences;
  json["frees"] = {{"by_address", s.frees_by_address},
                   {"of_unseen_address", s.frees_of_unseen_address},
                   {"unresolved", s.frees_unresolved},
                   {"of_refused", s.frees_of_refused}};
  json["devices"] = nlohmann::ordered_json::array();
  const MemoryTracker& tracker = replayer.tracker();
  const std::set<DevicePlacement> uncapped = uncapped_devices(budgets, tracker, s);
  for (const DeviceFit& d : fit_summary(replayer)) {
    nlohmann::ordered_json device =
        device_usage_json(d.device, number_or_null(!budgets.unlimited, tracker.limit(d.device)),
                          s.high_water.at(d.device), tracker.allocated(d.device));
    device["needed_bytes"] = d.needed;
    device["requested_needed_bytes"] = d.requested_needed;
    if (const auto m = s.modelled.find(d.device); m != s.modelled.end()) {
      device["allocator"] = modelled_json(m->second);
      if (uncapped.contains(d.device)) {
        device["allocator"]["capacity_bytes"] = nullptr;
      }
    }
    json["devices"].push_back(std::move(device));
  }
  json["first_refusal"] = refusal_json(s.first_refusal);
  add_oom_json(json, s);
  add_consistency_json(json, s, options.allow_inconsistent);
  json["failure"] = s.failure ? nlohmann::ordered_json(s.failure->to_string()) : nullptr;
  out << json.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) << "\n";
}

/// What a replay runs: the recording, the budgets and GPU map it runs on, and its replayer.
struct ReplayPlan {
  OpenedTrace opened;
  Budgets budgets;
  std::map<std::uint32_t, std::uint32_t> gpu_map;
  std::optional<traces::Replayer> replayer;
};

// --states must not replace an input nor share standard output with --json.
Result<void> check_states_output(const ReplayOptions& options) {
  if (options.json && options.states == "-") {
    return Error::parse_error("--json and --states - would both write to standard output");
  }
  if (!options.states.empty()) {
    std::vector<std::filesystem::path> inputs = profile_files(options.profile);
    inputs.emplace_back(options.file);
    if (auto ok = traces::refuse_output_over_input(options.states, inputs); !ok) {
      return bad_input("--states: ", ok.error());
    }
  }
  return {};
}

Result<ReplayPlan> plan_replay(const ReplayOptions& options) {
  if (auto ok = check_states_output(options); !ok) return ok.error();
  auto opened = open_trace(options.file);
  if (!opened) return opened.error();
  auto budgets = choose_budgets(*opened, options.profile, options.gpus, options.devices);
  if (!budgets) return budgets.error();
  auto gpu_map = gpu_map_for(*opened, *budgets);
  if (!gpu_map) return gpu_map.error();
  traces::ReplayOptions replay_options;
  replay_options.lockstep = !options.production_only;
  replay_options.recorded_budgets = budgets->recorded;
  if (auto chosen =
          choose_allocator(*opened, *budgets, *gpu_map, options.allocator, replay_options);
      !chosen) {
    return chosen.error();
  }
  auto replayer = traces::Replayer::create(budgets->config, replay_options);
  if (!replayer) return bad_input(options.file + ": ", replayer.error());
  return ReplayPlan{std::move(*opened), std::move(*budgets), std::move(*gpu_map),
                    std::move(*replayer)};
}

/// `--states FILE`: every step's state as a JSON line, written atomically once the replay ends.
class StatesOutput {
 public:
  static Result<std::optional<StatesOutput>> open(const std::string& path) {
    if (path.empty()) return std::optional<StatesOutput>();
    auto output = traces::AtomicOutput::create(path);
    if (!output) return bad_input("--states: ", output.error());
    return std::optional<StatesOutput>(StatesOutput(std::move(*output)));
  }

  void add(const traces::ReplayStep& step, const std::vector<DevicePlacement>& devices) {
    buffer_ += state_json(step, devices);
    buffer_ += '\n';
    if (buffer_.size() > (1U << 20U) && !error_) {
      if (auto ok = output_.write(buffer_); !ok) error_ = ok.error();
      buffer_.clear();
    }
  }

  /// @return the first write error, or nothing once the file is in place
  Result<void> commit() {
    if (!error_) {
      if (auto ok = output_.write(buffer_); !ok) error_ = ok.error();
    }
    if (!error_) {
      if (auto ok = output_.commit(); !ok) error_ = ok.error();
    }
    if (error_) return bad_input("--states: ", *error_);
    return {};
  }

 private:
  explicit StatesOutput(traces::AtomicOutput output) : output_(std::move(output)) {}
  traces::AtomicOutput output_;
  std::string buffer_;
  std::optional<Error> error_;
};

/// Replays the recording (writing --states as it goes); @return the summary, positions located
Result<traces::ReplaySummary> replay_recording(const ReplayOptions& options, ReplayPlan& plan) {
  auto states = StatesOutput::open(options.states);
  if (!states) return states.error();
  const std::vector<DevicePlacement> devices = plan.replayer->devices();
  std::function<void(const traces::ReplayStep&)> on_step;
  if (*states) {
    on_step = [&](const traces::ReplayStep& step) { (*states)->add(step, devices); };
  }
  auto replayed = plan.replayer->replay(plan.opened.reader, plan.gpu_map, on_step);
  if (!replayed) return replayed.error();  // the states file is not written: its temporary goes
  if (*states) {
    if (auto ok = (*states)->commit(); !ok) return ok.error();
  }
  traces::ReplaySummary summary = plan.replayer->summary();
  locate_positions({&plan.opened}, summary);
  return summary;
}

// The head: the recording, where it was recorded, the budgets and how much was replayed.
void print_replay_head(const ReplayOptions& options, const ReplayPlan& plan,
                       const traces::ReplaySummary& s, std::ostream& out) {
  const traces::TraceHeader& header = plan.opened.reader.header();
  out << "memtrack replay: " << one_line(options.file);
  if (!plan.opened.imported_from.empty()) {
    out << " (imported from " << plan.opened.imported_from << ")";
  }
  out << "\n  source: " << (header.source.empty() ? "(not given)" : header.source) << "\n";
  for (const traces::DeviceRecord& device : header.devices) {
    out << "  recorded on: gpu:" << device.id << " " << (device.name.empty() ? "?" : device.name);
    if (!device.uuid.empty()) out << " " << device.uuid;
    if (device.free_at_start && device.total_at_start) {
      out << ", " << *device.free_at_start << " of " << *device.total_at_start
          << " bytes free at start";
    }
    out << "\n";
  }
  out << "  budgets: " << plan.budgets.description << "\n  " << s.events << " events, "
      << s.operations << " operations "
      << (options.production_only ? "(production tracker only)"
                                  : "checked in lockstep with the reference model")
      << "\n\n";
}

// The counts under the table: outcomes, checkpoints, frees, the allocator, the states file.
/// Why a replay's outcomes may differ from the recording's without failing it.
std::string_view why_outcomes_differ(const Budgets& budgets) {
  if (budgets.unlimited) return "no budget: the recording's refusals are not reproduced";
  if (!budgets.recorded) return "other budgets";
  return "auto placement, or budgets the recording does not state";
}

void print_replay_counts(const ReplayOptions& options, const traces::ReplaySummary& s,
                         const Budgets& budgets, const std::set<DevicePlacement>& uncapped,
                         std::ostream& out) {
  out << "\noutcomes: " << s.ok << " ok, " << s.refused << " refused (out of memory), "
      << s.other_errors << " other errors\n"
      << "checkpoints: " << s.checkpoints_verified << " verified, " << s.checkpoints_skipped
      << " skipped (after the replay left the recording)\n"
      << "frees: " << s.frees_by_address << " found by address, " << s.frees_of_unseen_address
      << " of addresses never allocated in the trace (applied by size), " << s.frees_unresolved
      << " unresolved (no size, unknown address: not applied, inconsistent), " << s.frees_of_refused
      << " of refused allocations (skipped)\n";
  if (s.outcome_differences != 0) {
    out << "outcomes unlike the recording's (" << why_outcomes_differ(budgets)
        << "): " << s.outcome_differences << "\n";
  }
  print_allocator(out, s, 1, uncapped);
  if (!options.states.empty()) {
    out << "states: " << (options.states == "-" ? "standard output" : options.states) << "\n";
  }
  print_inconsistencies(out, s, options.allow_inconsistent);
}

void print_replay_verdict(const ReplayOptions& options, const traces::ReplaySummary& s,
                          std::ostream& out) {
  if (s.failure) {
    out << "verdict: FAILED, " << s.failure->to_string();
    return;
  }
  if (s.unlanded != 0 || (s.inconsistencies != 0 && !options.allow_inconsistent)) {
    out << "verdict: FAILED: "
        << (s.unlanded != 0 ? "operations landed on no device"
                            : "the recording is inconsistent (--allow-inconsistent accepts it)")
        << "\n";
    return;
  }
  if (options.production_only) {
    out << "verdict: the production tracker"
        << (s.checkpoints_verified != 0 ? " and the recording's checkpoints agree"
                                        : " replayed every event")
        << " (the reference model did not run: --production-only)\n";
    return;
  }
  out << "verdict: the production tracker, the reference model"
      << (s.checkpoints_verified != 0 ? " and the recording's checkpoints" : "")
      << " agree on every event\n";
}

Outcome run_replay(const ReplayOptions& options, std::ostream& standard_out, std::ostream& err) {
  // With --states -, the states are standard output and the summary goes to standard error.
  std::ostream& out = options.states == "-" ? err : standard_out;
  auto plan = plan_replay(options);
  if (!plan) return plan.error();
  auto summary = replay_recording(options, *plan);
  if (!summary) return summary.error();
  const traces::ReplaySummary& s = *summary;
  const bool agree =
      !s.failure && s.unlanded == 0 && (s.inconsistencies == 0 || options.allow_inconsistent);
  if (options.json) {
    print_replay_json(out, options, plan->opened, plan->budgets, *plan->replayer, s, agree);
  } else {
    print_replay_head(options, *plan, s, out);
    print_devices(out, plan->replayer->tracker(), s, plan->budgets.unlimited);
    print_replay_counts(options, s, plan->budgets,
                        uncapped_devices(plan->budgets, plan->replayer->tracker(), s), out);
    print_replay_verdict(options, s, out);
  }
  return agree ? exit_ok : exit_failure;
}

}  // namespace

void add_replay_command(CLI::App& app, Command& chosen) {
  auto options = std::make_shared<ReplayOptions>();
  CLI::App* replay = app.add_subcommand(
      "replay",
      "Replay a recording (a memtrack trace, .zst or .gz, as record, sim and the property tests "
      "write; a PyTorch snapshot, Kineto JSON, RMM CSV or Nsight SQLite, imported on the fly) "
      "through the production tracker and the reference model in lockstep, byte for byte, "
      "verifying the recording's own checkpoints. Exit 0 all agree, 1 a divergence or failed "
      "checkpoint, 2 bad input.");
  replay->add_option("file", options->file, "The recording to replay")->required();
  replay
      ->add_option("--states", options->states,
                   "Write the full state after every operation as JSON Lines to this file (- for "
                   "standard output; .zst or .gz compresses)")
      ->check(not_empty());
  add_profile_flags(*replay, options->profile, options->gpus);
  add_device_flags(*replay, options->devices);
  add_allocator_flags(*replay, options->allocator);
  add_json_flag(*replay, options->json);
  replay->add_flag("--allow-inconsistent", options->allow_inconsistent,
                   "Accept a recording that frees what it never allocated (double frees, frees "
                   "of unknown addresses): counted, left unapplied, and exit 0");
  add_production_only_flag(*replay, options->production_only);
  run_when_chosen(*replay, chosen, options, run_replay);
}

}  // namespace memtrack::cli
