// memtrack budget: the budget of every device for a config given by flags.
#include "commands.hpp"
#include "options.hpp"
#include "table.hpp"
#include "trace_support.hpp"

#include <memtrack/memtrack.hpp>

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace memtrack::cli {
namespace {

struct BudgetOptions {
  std::vector<std::string> gpus;
  std::string fraction = "0.9";
  std::string cpu_limit = "16GiB";
  bool json = false;
};

/// One GPU's budget and how it comes about.
struct GpuBudget {
  GpuSpec gpu;
  Fraction fraction;        ///< its own, else the config's
  std::uint64_t share{0};   ///< floor(total x fraction), before any usable cap
  std::uint64_t budget{0};  ///< min(share, usable cap): the tracker's limit
};

/// What `memtrack budget` answers: every device's budget for the config the flags give.
struct NodeBudgets {
  Fraction memory_fraction;
  std::vector<GpuBudget> gpus;  ///< by id, as the tracker orders them
  std::uint64_t cpu{0};
  std::uint64_t total{0};
};

Result<NodeBudgets> compute_budgets(const BudgetOptions& options) {
  GpuConfig config;
  for (const std::string& flag : options.gpus) {
    auto gpu = parse_gpu_flag(flag);
    if (!gpu) return gpu.error();
    config.gpus.push_back(*gpu);
  }
  auto fraction = Fraction::parse(options.fraction);
  if (!fraction) return bad_input("--fraction: ", fraction.error());
  config.memory_fraction = *fraction;
  auto cpu_limit = parse_byte_size(options.cpu_limit);
  if (!cpu_limit) return bad_input("--cpu-limit: ", cpu_limit.error());
  config.cpu_memory_limit = *cpu_limit;
  auto tracker = MemoryTracker::create(config);
  if (!tracker) return tracker.error();
  NodeBudgets budgets{config.memory_fraction, {}, tracker->limit(Cpu{}), tracker->limit(Auto{})};
  for (const std::uint32_t id : tracker->gpu_ids()) {
    const GpuSpec& gpu = *std::find_if(config.gpus.begin(), config.gpus.end(),
                                       [id](const GpuSpec& g) { return g.id == id; });
    GpuSpec uncapped = gpu;
    uncapped.usable_bytes.reset();
    budgets.gpus.push_back({gpu, gpu.memory_fraction.value_or(config.memory_fraction),
                            gpu_limit(uncapped, config.memory_fraction),
                            tracker->limit(Gpu{gpu.id})});
  }
  return budgets;
}

void print_budgets_json(const NodeBudgets& budgets, std::ostream& out) {
  nlohmann::ordered_json json;
  json["memory_fraction"] = budgets.memory_fraction.to_string();
  json["devices"] = nlohmann::ordered_json::array();
  for (const GpuBudget& b : budgets.gpus) {
    nlohmann::ordered_json device;
    device["device"] = DevicePlacement{Gpu{b.gpu.id}}.to_string();
    device["name"] = b.gpu.name;
    device["total_bytes"] = b.gpu.total_bytes;
    device["fraction"] = b.fraction.to_string();
    device["share_bytes"] = b.share;
    device["usable_bytes"] = b.gpu.usable_bytes ? nlohmann::ordered_json(*b.gpu.usable_bytes)
                                                : nlohmann::ordered_json(nullptr);
    device["budget_bytes"] = b.budget;
    json["devices"].push_back(device);
  }
  json["devices"].push_back(
      nlohmann::ordered_json{{"device", "cpu"}, {"budget_bytes", budgets.cpu}});
  json["total_budget_bytes"] = budgets.total;
  out << json.dump(2) << "\n";
}

void print_budgets_table(const NodeBudgets& budgets, std::ostream& out) {
  out << "Budgets: " << budgets.gpus.size() << " GPU(s), memory_fraction "
      << budgets.memory_fraction.to_string()
      << ", limit = min(floor(total x fraction), usable cap)\n\n";
  Table table({"device", "name", ">total_bytes", ">fraction", ">total x fraction", ">usable cap",
               ">limit_bytes", ">limit GiB"});
  for (const GpuBudget& b : budgets.gpus) {
    table.add_row({DevicePlacement{Gpu{b.gpu.id}}.to_string(), b.gpu.name,
                   std::to_string(b.gpu.total_bytes), b.fraction.to_string(),
                   std::to_string(b.share),
                   b.gpu.usable_bytes ? std::to_string(*b.gpu.usable_bytes) : "-",
                   std::to_string(b.budget), format_gib(b.budget)});
  }
  table.add_row(
      {"cpu", "", "-", "-", "-", "-", std::to_string(budgets.cpu), format_gib(budgets.cpu)});
  table.add_row(
      {"total", "", "", "", "", "", std::to_string(budgets.total), format_gib(budgets.total)});
  table.print(out);
}

Outcome run_budget(const BudgetOptions& options, std::ostream& out, std::ostream& /*err*/) {
  auto budgets = compute_budgets(options);
  if (!budgets) return budgets.error();
  if (options.json) {
    print_budgets_json(*budgets, out);
  } else {
    print_budgets_table(*budgets, out);
  }
  return exit_ok;
}

}  // namespace

void add_budget_command(CLI::App& app, Command& chosen) {
  auto options = std::make_shared<BudgetOptions>();
  CLI::App* budget = app.add_subcommand(
      "budget", "Print each device's budget (limit) for a config given by flags, exactly.");
  add_gpu_option(*budget, options->gpus);
  add_fraction_option(*budget, options->fraction);
  add_cpu_limit_option(*budget, options->cpu_limit);
  add_json_flag(*budget, options->json);
  run_when_chosen(*budget, chosen, options, run_budget);
}

}  // namespace memtrack::cli
