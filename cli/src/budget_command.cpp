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

int run_budget(const BudgetOptions& options, std::ostream& out, std::ostream& err) {
  GpuConfig config;
  for (const std::string& flag : options.gpus) {
    auto gpu = parse_gpu_flag(flag);
    if (!gpu) {
      err << "memtrack budget: " << gpu.error().to_string() << "\n";
      return 2;
    }
    config.gpus.push_back(*gpu);
  }
  auto fraction = Fraction::parse(options.fraction);
  if (!fraction) {
    err << "memtrack budget: --fraction: " << fraction.error().to_string() << "\n";
    return 2;
  }
  config.memory_fraction = *fraction;
  auto cpu_limit = parse_byte_size(options.cpu_limit);
  if (!cpu_limit) {
    err << "memtrack budget: --cpu-limit: " << cpu_limit.error().to_string() << "\n";
    return 2;
  }
  config.cpu_memory_limit = *cpu_limit;
  auto tracker = MemoryTracker::create(config);
  if (!tracker) {
    err << "memtrack budget: " << tracker.error().to_string() << "\n";
    return 2;
  }

  if (options.json) {
    nlohmann::ordered_json json;
    json["memory_fraction"] = config.memory_fraction.to_string();
    json["devices"] = nlohmann::ordered_json::array();
    for (const std::uint32_t id : tracker->gpu_ids()) {
      const GpuSpec& gpu = *std::find_if(config.gpus.begin(), config.gpus.end(),
                                         [id](const GpuSpec& g) { return g.id == id; });
      GpuSpec uncapped = gpu;
      uncapped.usable_bytes.reset();
      nlohmann::ordered_json device;
      device["device"] = DevicePlacement{Gpu{id}}.to_string();
      device["name"] = gpu.name;
      device["total_bytes"] = gpu.total_bytes;
      device["fraction"] = gpu.memory_fraction.value_or(config.memory_fraction).to_string();
      device["share_bytes"] = gpu_limit(uncapped, config.memory_fraction);
      device["usable_bytes"] = gpu.usable_bytes ? nlohmann::ordered_json(*gpu.usable_bytes)
                                                : nlohmann::ordered_json(nullptr);
      device["budget_bytes"] = tracker->limit(Gpu{id});
      json["devices"].push_back(device);
    }
    json["devices"].push_back(
        nlohmann::ordered_json{{"device", "cpu"}, {"budget_bytes", tracker->limit(Cpu{})}});
    json["total_budget_bytes"] = tracker->limit(Auto{});
    out << json.dump(2) << "\n";
    return 0;
  }

  out << "Budgets: " << config.gpus.size() << " GPU(s), memory_fraction "
      << config.memory_fraction.to_string()
      << ", limit = min(floor(total x fraction), usable cap)\n\n";
  Table table({"device", "name", ">total_bytes", ">fraction", ">total x fraction", ">usable cap",
               ">limit_bytes", ">limit GiB"});
  for (const std::uint32_t id : tracker->gpu_ids()) {
    const GpuSpec& gpu = *std::find_if(config.gpus.begin(), config.gpus.end(),
                                       [id](const GpuSpec& g) { return g.id == id; });
    GpuSpec uncapped = gpu;
    uncapped.usable_bytes.reset();
    const std::uint64_t limit = tracker->limit(Gpu{id});
    table.add_row({DevicePlacement{Gpu{id}}.to_string(), gpu.name, std::to_string(gpu.total_bytes),
                   gpu.memory_fraction.value_or(config.memory_fraction).to_string(),
                   std::to_string(gpu_limit(uncapped, config.memory_fraction)),
                   gpu.usable_bytes ? std::to_string(*gpu.usable_bytes) : "-",
                   std::to_string(limit), format_gib(limit)});
  }
  table.add_row({"cpu", "", "-", "-", "-", "-", std::to_string(tracker->limit(Cpu{})),
                 format_gib(tracker->limit(Cpu{}))});
  table.add_row({"total", "", "", "", "", "", std::to_string(tracker->limit(Auto{})),
                 format_gib(tracker->limit(Auto{}))});
  table.print(out);
  return 0;
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
  budget->callback([options, &chosen] {
    chosen.run = [options](std::ostream& out, std::ostream& err) {
      return run_budget(*options, out, err);
    };
  });
}

}  // namespace memtrack::cli
