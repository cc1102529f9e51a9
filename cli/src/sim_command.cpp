// memtrack sim: a workload on a node, production tracker and reference model in lockstep.
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
#include <memtrack/sim/simulation.hpp>
#include <memtrack/traces/recorder.hpp>

#include <nlohmann/json.hpp>

#include <unistd.h>
#include <charconv>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <sstream>

namespace memtrack::cli {
namespace {

struct SimOptions {
  std::string profile = "2xrtx5090";
  std::optional<std::uint32_t> gpus;
  std::string workload = "registry";
  std::uint64_t operations = 1'000'000;
  std::uint64_t seed = 1;
  std::string shard;
  std::string cpu_limit;
  std::string out_dir = ".";
  std::string record;
  bool json = false;
  bool production_only = false;
  bool no_progress = false;
};

struct Shard {
  std::uint64_t index{0};
  std::uint64_t count{1};
  std::string from;  ///< where it came from: --shard or an environment variable
};

std::optional<std::uint64_t> parse_u64(std::string_view text) {
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return value;
}

// --shard i/n, else the index and count a job scheduler or test runner set.
Result<Shard> resolve_shard(const std::string& flag) {
  const auto from_pair = [](std::string_view index_text, std::string_view count_text,
                            std::string from) -> Result<Shard> {
    const auto index = parse_u64(index_text);
    // A scheduler may give the index alone (count 0: unknown); --shard must give both, n >= 1.
    const auto count = count_text.empty() && from != "--shard" ? std::optional<std::uint64_t>(0)
                                                               : parse_u64(count_text);
    // A count given is at least 1 (only a scheduler's missing count reads as unknown, 0).
    if (!index || !count || (!count_text.empty() && *count == 0) ||
        (*count != 0 && *index >= *count)) {
      return Error::parse_error(from + ": '" + std::string(index_text) + "/" +
                                std::string(count_text) +
                                "': expected INDEX/COUNT with 0 <= INDEX < COUNT and COUNT >= 1");
    }
    return Shard{*index, *count == 0 ? 0 : *count, std::move(from)};
  };
  if (!flag.empty()) {
    const std::size_t slash = flag.find('/');
    if (slash == std::string::npos) {
      return Error::parse_error("--shard '" + flag + "': expected INDEX/COUNT, e.g. 3/16");
    }
    return from_pair(std::string_view(flag).substr(0, slash),
                     std::string_view(flag).substr(slash + 1), "--shard");
  }
  const auto env = [](const char* name) -> std::string_view {
    const char* value = std::getenv(name);
    return value == nullptr ? std::string_view{} : std::string_view(value);
  };
  if (!env("GTEST_SHARD_INDEX").empty()) {
    return from_pair(env("GTEST_SHARD_INDEX"), env("GTEST_TOTAL_SHARDS"), "GTEST_SHARD_INDEX");
  }
  if (!env("SLURM_ARRAY_TASK_ID").empty()) {
    return from_pair(env("SLURM_ARRAY_TASK_ID"), env("SLURM_ARRAY_TASK_COUNT"),
                     "SLURM_ARRAY_TASK_ID");
  }
  if (!env("JOB_COMPLETION_INDEX").empty()) {
    return from_pair(env("JOB_COMPLETION_INDEX"), env("MEMTRACK_TOTAL_SHARDS"),
                     "JOB_COMPLETION_INDEX");
  }
  return Shard{};
}

std::string reproduce_command(const SimOptions& options, std::uint64_t seed,
                              std::uint64_t operations) {
  std::ostringstream command;
  command << "memtrack sim --profile " << options.profile;
  if (options.gpus) command << " --gpus " << *options.gpus;
  if (!options.cpu_limit.empty()) command << " --cpu-limit " << options.cpu_limit;
  command << " --workload " << options.workload << " --seed " << seed << " --ops " << operations;
  return command.str();
}

/// What a sim runs: the node, the shard and the simulation's options (seed, lockstep).
struct SimPlan {
  sim::Node node;
  Shard shard;
  sim::SimulationOptions run;
};

Result<SimPlan> plan_sim(const SimOptions& options) {
  if (options.operations == 0) {
    return Error::parse_error("--ops 0: expected at least 1 operation");
  }
  if (!options.record.empty()) {
    if (auto ok = traces::refuse_output_over_input(options.record, profile_files(options.profile));
        !ok) {
      return bad_input("--record: ", ok.error());
    }
  }
  std::optional<std::uint64_t> cpu_limit;
  if (!options.cpu_limit.empty()) {
    auto parsed = parse_byte_size(options.cpu_limit);
    if (!parsed) return bad_input("--cpu-limit: ", parsed.error());
    cpu_limit = *parsed;
  }
  auto node = sim::make_node(options.profile, options.gpus, cpu_limit);
  if (!node) return node.error();
  auto shard = resolve_shard(options.shard);
  if (!shard) return shard.error();
  SimPlan plan{std::move(*node), *shard, {}};
  plan.run.workload = options.workload;
  plan.run.seed = sim::shard_seed(options.seed, shard->index);
  plan.run.operations = options.operations;
  plan.run.lockstep = !options.production_only;
  return plan;
}

/// With --record: the recorder every operation of the production tracker goes to (else none).
Result<std::unique_ptr<traces::TraceRecorder>> start_recording(const SimOptions& options,
                                                               const SimPlan& plan) {
  if (options.record.empty()) return std::unique_ptr<traces::TraceRecorder>();
  traces::RecorderOptions record_options;
  record_options.timestamps = false;  // the same seed gives the same file
  record_options.checkpoint_every = 1000;
  record_options.tag = options.workload;
  auto created = traces::TraceRecorder::create(
      options.record, plan.node.config,
      reproduce_command(options, plan.run.seed, options.operations) +
          " (the production tracker, recorded by memtrack's TraceRecorder)",
      record_options);
  if (!created) return bad_input("--record: ", created.error());
  return std::move(*created);
}

/// What a sim produced: the value its text and its JSON are rendered from.
struct SimRun {
  sim::SimulationResult result;
  std::string divergence_file;  ///< where the shrunk divergence went (empty: none written)
  std::uint64_t rate{0};        ///< operations per second
};

/// Writes a divergence's minimal failing sequence as a trace; @return its path (empty: none).
std::string save_divergence(const SimOptions& options, const SimPlan& plan,
                            const sim::SimulationResult& result, std::ostream& err) {
  if (!result.divergence || !result.minimal) return {};
  std::filesystem::create_directories(options.out_dir);
  const std::string file = (std::filesystem::path(options.out_dir) /
                            ("memtrack-divergence-" + options.workload + "-seed" +
                             std::to_string(plan.run.seed) + ".trace"))
                               .string();
  if (auto saved = traces::write_operations(
          file, *result.minimal,
          "memtrack sim divergence, shrunk: " +
              reproduce_command(options, plan.run.seed, result.operations));
      !saved) {
    err << "memtrack sim: " << saved.error().to_string() << "\n";  // the verdict still stands
    return {};
  }
  return file;
}

Result<SimRun> simulate(const SimOptions& options, SimPlan& plan, std::ostream& err) {
  auto recorder = start_recording(options, plan);
  if (!recorder) return recorder.error();
  plan.run.observer = recorder->get();
  const bool terminal = is_terminal_stderr(err) && !options.no_progress;
  ProgressBar bar(err, options.operations, terminal);
  plan.run.progress = [&bar](std::uint64_t done) { bar.update(done); };
  auto result = sim::run_simulation(plan.node.config, plan.run);
  bar.finish();
  plan.run.progress = nullptr;
  plan.run.observer = nullptr;
  if (!result) return result.error();
  if (*recorder) {
    if (auto saved = (*recorder)->finish(); !saved) return bad_input("--record: ", saved.error());
  }
  SimRun run{std::move(*result), {}, 0};
  run.divergence_file = save_divergence(options, plan, run.result, err);
  run.rate = static_cast<std::uint64_t>(
      run.result.seconds > 0 ? static_cast<double>(run.result.operations) / run.result.seconds : 0);
  return run;
}

void print_sim_json(const SimOptions& options, const SimPlan& plan, const SimRun& sim_run,
                    std::ostream& out) {
  const sim::SimulationResult& result = sim_run.result;
  nlohmann::ordered_json json;
  json["node"] = options.profile;
  json["workload"] = options.workload;
  json["seed"] = plan.run.seed;
  json["shard"] = {{"index", plan.shard.index}, {"count", plan.shard.count}};
  json["mode"] = plan.run.lockstep ? "lockstep" : "production-only";
  json["operations"] = result.operations;
  json["seconds"] = result.seconds;
  json["operations_per_second"] = sim_run.rate;
  json["outcomes"] = {{"ok", result.ok},
                      {"refused", result.refused},
                      {"fallback_to_cpu", result.fallback_to_cpu},
                      {"other_errors", result.other_errors}};
  json["devices"] = nlohmann::ordered_json::array();
  for (const auto& d : result.devices) {
    json["devices"].push_back(device_usage_json(d.device, d.limit, d.peak, d.final_allocated));
  }
  json["total_peak_bytes"] = result.total_peak;
  // As replay says it: whether the production tracker and the reference model agree (null
  // when the reference model did not run).
  json["agree"] = plan.run.lockstep ? nlohmann::ordered_json(!result.divergence)
                                    : nlohmann::ordered_json(nullptr);
  if (result.divergence) {
    json["divergence"] = {
        {"step", result.divergence->step},
        {"operation", result.divergence->operation},
        {"what", result.divergence->what},
        {"minimal_operations", result.minimal ? result.minimal->operations.size() : 0},
        {"file", sim_run.divergence_file},
        {"reproduce", reproduce_command(options, plan.run.seed, result.operations)}};
  }
  out << json.dump(2) << "\n";
}

// The head, the per-device table and the outcomes.
void print_sim_table(const SimOptions& options, const SimPlan& plan, const SimRun& sim_run,
                     std::ostream& out) {
  const sim::SimulationResult& result = sim_run.result;
  out << "memtrack sim: " << options.workload << " workload on " << options.profile << " ("
      << plan.node.config.gpus.size() << " GPU(s)), seed " << plan.run.seed;
  if (plan.shard.count > 1 || !plan.shard.from.empty()) {
    out << ", shard " << plan.shard.index << "/" << plan.shard.count << " (" << plan.shard.from
        << ")";
  }
  out << "\n  " << result.operations << " operations "
      << (plan.run.lockstep ? "checked in lockstep with the reference model"
                            : "(production tracker only)")
      << " in " << result.seconds << " s: " << sim_run.rate << " ops/s\n\n";
  Table table(
      {"device", ">limit bytes", ">peak bytes", ">peak GiB", ">peak % of limit", ">final bytes"});
  for (const auto& d : result.devices) {
    table.add_row({d.device.to_string(), std::to_string(d.limit), std::to_string(d.peak),
                   format_gib(d.peak), format_percent(d.peak, d.limit),
                   std::to_string(d.final_allocated)});
  }
  table.add_row(
      {"total peak", "", std::to_string(result.total_peak), format_gib(result.total_peak), "", ""});
  table.print(out);
  out << "\noutcomes: " << result.ok << " ok, " << result.refused << " refused (out of memory), "
      << result.fallback_to_cpu << " fell back to the CPU, " << result.other_errors
      << " other errors\n";
}

void print_sim_verdict(const SimOptions& options, const SimPlan& plan, const SimRun& sim_run,
                       std::ostream& out) {
  const sim::SimulationResult& result = sim_run.result;
  if (!result.divergence && !plan.run.lockstep) {
    out << "verdict: not checked: the production tracker ran alone (--production-only); run "
           "without it to compare every operation with the reference model\n";
    return;
  }
  if (!result.divergence) {
    out << "verdict: the production tracker and the reference model agree on every operation\n";
    return;
  }
  out << "verdict: DIVERGENCE\n" << result.divergence->to_string();
  if (!sim_run.divergence_file.empty()) {
    out << "minimal failing sequence (" << result.minimal->operations.size()
        << " operations) written to " << sim_run.divergence_file << "\n";
    out << "replay it with: memtrack replay " << sim_run.divergence_file << "\n";
  }
  out << "reproduce with: " << reproduce_command(options, plan.run.seed, result.operations) << "\n";
}

Outcome run_sim(const SimOptions& options, std::ostream& standard_out, std::ostream& err) {
  // With --record -, the trace is standard output and the summary goes to standard error.
  std::ostream& out = options.record == "-" ? err : standard_out;
  auto plan = plan_sim(options);
  if (!plan) return plan.error();
  auto run = simulate(options, *plan, err);
  if (!run) return run.error();
  if (options.json) {
    print_sim_json(options, *plan, *run, out);
  } else {
    print_sim_table(options, *plan, *run, out);
    print_sim_verdict(options, *plan, *run, out);
  }
  return run->result.divergence ? exit_failure : exit_ok;
}

}  // namespace

void add_sim_command(CLI::App& app, Command& chosen) {
  auto options = std::make_shared<SimOptions>();
  CLI::App* sim = app.add_subcommand(
      "sim",
      "Run a workload on a device profile through the production tracker and the reference "
      "model in lockstep; report peaks, outcomes and any divergence.");
  add_profile_flags(*sim, options->profile, options->gpus);
  sim->add_option(
         "--workload", options->workload,
         "registry (model loading with LRU eviction), churn (activations), adversarial "
         "(boundary sizes), ramp (fill until refused), serving (one model set loaded once, then "
         "serving batches)")
      ->capture_default_str();
  sim->add_option("--ops", options->operations,
                  "Operations to run, at least 1 (ramp may finish sooner)")
      ->capture_default_str()
      ->check(whole_number());
  sim->add_option("--seed", options->seed, "Seed; the same seed gives the same run everywhere")
      ->capture_default_str()
      ->check(whole_number());
  sim->add_option("--shard", options->shard,
                  "INDEX/COUNT: run shard INDEX's seed; without it, GTEST_SHARD_INDEX, "
                  "SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX are read");
  add_cpu_limit_option(*sim, options->cpu_limit);
  sim->add_option("--out", options->out_dir,
                  "Folder for a divergence's minimal failing sequence (a trace)")
      ->check(not_empty())
      ->capture_default_str();
  sim->add_option("--record", options->record,
                  "Record every operation of the production tracker to this trace (.zst "
                  "compresses; - for standard output); replay it with 'memtrack replay', fit it "
                  "with 'memtrack fit'")
      ->check(not_empty());
  add_production_only_flag(*sim, options->production_only);
  sim->add_flag("--no-progress", options->no_progress, "No progress bar on stderr");
  add_json_flag(*sim, options->json);
  run_when_chosen(*sim, chosen, options, run_sim);
}

}  // namespace memtrack::cli
