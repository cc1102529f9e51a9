// memtrack profiles [show NAME]: the device profiles and their budget arithmetic.
#include "commands.hpp"
#include "table.hpp"

#include <memtrack/memtrack.hpp>
#include <memtrack/sim/profile.hpp>

namespace memtrack::cli {
namespace {

std::string sourced_line(std::string_view value, sim::Provenance provenance,
                         const std::string& source) {
  return std::string(value) + "  [" + std::string(sim::to_string(provenance)) + "] " + source;
}

int list_profiles(std::ostream& out, std::ostream& err) {
  auto profiles = sim::load_builtin_profiles();
  if (!profiles) {
    err << "memtrack profiles: " << profiles.error().to_string() << "\n";
    return 2;
  }
  out << "Device profiles in " << sim::profiles_dir().string()
      << " (limit = min(floor(CUDA total x fraction), usable cap)):\n\n";
  Table table({"name", "device", ">CUDA total bytes", ">GiB", ">nvidia-smi MiB", ">CC", ">GB/s",
               ">limit bytes", ">limit GiB"});
  for (const auto& profile : *profiles) {
    if (profile.is_cpu) {
      const std::uint64_t limit = profile.cpu_memory_limit_bytes->value;
      table.add_row({profile.name, profile.display_name, "-", "-", "-", "-", "-",
                     std::to_string(limit), format_gib(limit)});
      continue;
    }
    const std::uint64_t total = profile.cuda_total_bytes->value;
    const std::uint64_t limit = gpu_limit(profile.gpu_spec(0), GpuConfig{}.memory_fraction);
    table.add_row(
        {profile.name, profile.display_name, std::to_string(total), format_gib(total),
         profile.nvidia_smi_total_mib ? std::to_string(profile.nvidia_smi_total_mib->value) : "-",
         profile.compute_capability ? profile.compute_capability->value : "-",
         profile.memory_bandwidth_gbps ? std::to_string(profile.memory_bandwidth_gbps->value) : "-",
         std::to_string(limit), format_gib(limit)});
  }
  table.print(out);
  out << "\nNodes: N x profile (2xrtx5090), mixed (rtx5090+rtx4090), or a .profile file path.\n";
  return 0;
}

int show_profile(const std::string& name, std::ostream& out, std::ostream& err) {
  auto profile = sim::find_profile(name);
  if (!profile) {
    err << "memtrack profiles show: " << profile.error().to_string() << "\n";
    return 2;
  }
  out << profile->name << ": " << profile->display_name << " (" << profile->file << ")\n\n";
  if (profile->is_cpu) {
    const auto& limit = *profile->cpu_memory_limit_bytes;
    out << "  cpu_memory_limit_bytes  "
        << sourced_line(std::to_string(limit.value) + " (" + format_gib(limit.value) + " GiB)",
                        limit.provenance, limit.source)
        << "\n";
    return 0;
  }
  const auto bytes_row = [&](std::string_view key, const auto& field, bool gib) {
    if (!field) return;
    std::string value = std::to_string(field->value);
    if (gib) value += " (" + format_gib(field->value) + " GiB)";
    out << "  " << key << std::string(30 - key.size(), ' ')
        << sourced_line(value, field->provenance, field->source) << "\n";
  };
  bytes_row("cuda_total_bytes", profile->cuda_total_bytes, true);
  bytes_row("nvidia_smi_total_mib", profile->nvidia_smi_total_mib, false);
  if (profile->compute_capability) {
    out << "  compute_capability            "
        << sourced_line(profile->compute_capability->value, profile->compute_capability->provenance,
                        profile->compute_capability->source)
        << "\n";
  }
  bytes_row("memory_bandwidth_gbps", profile->memory_bandwidth_gbps, false);
  if (profile->memory_fraction) {
    out << "  memory_fraction               "
        << sourced_line(profile->memory_fraction->value.to_string(),
                        profile->memory_fraction->provenance, profile->memory_fraction->source)
        << "\n";
  }
  bytes_row("usable_bytes", profile->usable_bytes, true);
  bytes_row("context_overhead_bytes", profile->context_overhead_bytes, true);
  bytes_row("allocation_granularity_bytes", profile->allocation_granularity_bytes, false);

  // The budget arithmetic, exactly as the tracker does it.
  const GpuSpec gpu = profile->gpu_spec(0);
  const Fraction fraction = gpu.memory_fraction.value_or(GpuConfig{}.memory_fraction);
  GpuSpec uncapped = gpu;
  uncapped.usable_bytes.reset();
  const std::uint64_t share = gpu_limit(uncapped, fraction);
  const std::uint64_t limit = gpu_limit(gpu, fraction);
  out << "\nBudget arithmetic (exact integer arithmetic):\n";
  out << "  total x fraction  = floor(" << gpu.total_bytes << " x " << fraction.to_string()
      << ") = " << share << " bytes (" << format_gib(share) << " GiB)\n";
  out << "  usable cap        = "
      << (gpu.usable_bytes ? std::to_string(*gpu.usable_bytes) + " bytes (" +
                                 format_gib(*gpu.usable_bytes) + " GiB)"
                           : std::string("none"))
      << "\n";
  out << "  limit             = " << limit << " bytes (" << format_gib(limit) << " GiB)"
      << (gpu.usable_bytes && *gpu.usable_bytes < share ? ", set by the usable cap" : "") << "\n";
  return 0;
}

}  // namespace

void add_profiles_command(CLI::App& app, Command& chosen) {
  auto name = std::make_shared<std::string>();
  CLI::App* profiles = app.add_subcommand(
      "profiles", "List the device profiles (CUDA totals, limits), or show one with its sources.");
  CLI::App* show =
      profiles->add_subcommand("show", "Show one profile's fields, sources and budget arithmetic");
  show->add_option("name", *name, "Profile name (e.g. rtx5090) or .profile file")->required();
  profiles->callback([show, name, &chosen] {
    if (show->parsed()) {
      chosen.run = [name](std::ostream& out, std::ostream& err) {
        return show_profile(*name, out, err);
      };
    } else {
      chosen.run = [](std::ostream& out, std::ostream& err) { return list_profiles(out, err); };
    }
  });
}

}  // namespace memtrack::cli
