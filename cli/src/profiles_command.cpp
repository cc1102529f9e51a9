// memtrack profiles [show NAME]: the device profiles and their budget arithmetic.
#include "app.hpp"
#include "commands.hpp"
#include "options.hpp"
#include "table.hpp"

#include <memtrack/memtrack.hpp>
#include <memtrack/sim/profile.hpp>

#include <nlohmann/json.hpp>

namespace memtrack::cli {
namespace {

std::string sourced_line(std::string_view value, sim::Provenance provenance,
                         const std::string& source) {
  return std::string(value) + "  [" + std::string(sim::to_string(provenance)) + "] " + source;
}

// How well the CUDA total is known: "1 B" (to the byte) or "1 MiB", and how many other figures.
std::string known_to(const sim::DeviceProfile& profile) {
  const std::size_t figures = sim::cuda_total_figures(profile).size();
  std::string text = profile.cuda_total_precision_bytes
                         ? sim::format_precision(profile.cuda_total_precision_bytes->value)
                         : std::string("1 B");
  if (figures > 1) text += ", " + std::to_string(figures - 1) + " other";
  return text;
}

template <class T>
nlohmann::ordered_json sourced_json(const sim::Sourced<T>& field, nlohmann::ordered_json value) {
  nlohmann::ordered_json json;
  json["value"] = std::move(value);
  json["provenance"] = std::string(sim::to_string(field.provenance));
  json["source"] = field.source;
  return json;
}

// One profile for machines: its figures, the budget at its own fraction and cap, and (with
// `sources`) every field with its provenance and source.
nlohmann::ordered_json profile_json(const sim::DeviceProfile& profile, bool sources) {
  nlohmann::ordered_json json;
  json["name"] = profile.name;
  json["device"] = profile.display_name;
  json["cpu"] = profile.is_cpu;
  if (profile.is_cpu) {
    json["budget_bytes"] = profile.cpu_memory_limit_bytes->value;
  } else {
    const GpuSpec gpu = profile.gpu_spec(0);
    json["cuda_total_bytes"] = profile.cuda_total_bytes->value;
    json["cuda_total_precision_bytes"] =
        profile.cuda_total_precision_bytes ? profile.cuda_total_precision_bytes->value : 1U;
    json["budget_bytes"] =
        gpu_limit(gpu, gpu.memory_fraction.value_or(GpuConfig{}.memory_fraction));
    const sim::TotalRange range = sim::cuda_total_range(profile);
    json["cuda_total_lowest_bytes"] = range.lowest.bytes;
    json["cuda_total_highest_bytes"] = range.highest.bytes;
  }
  if (!sources) return json;
  nlohmann::ordered_json fields = nlohmann::ordered_json::object();
  const auto add = [&](std::string_view key, const auto& field) {
    if (field) fields[std::string(key)] = sourced_json(*field, field->value);
  };
  add("cuda_total_bytes", profile.cuda_total_bytes);
  add("cuda_total_precision_bytes", profile.cuda_total_precision_bytes);
  add("nvidia_smi_total_mib", profile.nvidia_smi_total_mib);
  add("compute_capability", profile.compute_capability);
  add("memory_bandwidth_gbps", profile.memory_bandwidth_gbps);
  if (profile.memory_fraction) {
    fields["memory_fraction"] =
        sourced_json(*profile.memory_fraction, profile.memory_fraction->value.to_string());
  }
  add("usable_bytes", profile.usable_bytes);
  add("context_overhead_bytes", profile.context_overhead_bytes);
  add("allocation_granularity_bytes", profile.allocation_granularity_bytes);
  add("cpu_memory_limit_bytes", profile.cpu_memory_limit_bytes);
  if (profile.cuda_total_variants) {
    nlohmann::ordered_json figures = nlohmann::ordered_json::array();
    for (const sim::TotalFigure& figure : profile.cuda_total_variants->value) {
      figures.push_back({{"bytes", figure.bytes},
                         {"precision_bytes", figure.precision_bytes},
                         {"driver", figure.driver}});
    }
    fields["cuda_total_variants"] = sourced_json(*profile.cuda_total_variants, figures);
  }
  json["cuda_total_driver"] = profile.cuda_total_driver;
  json["file"] = profile.file;
  json["fields"] = std::move(fields);
  return json;
}

void print_json(std::ostream& out, const nlohmann::ordered_json& json) {
  out << json.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
}

Outcome list_profiles(bool json, std::ostream& out) {
  auto profiles = sim::load_builtin_profiles();
  if (!profiles) return profiles.error();
  if (json) {
    nlohmann::ordered_json list;
    list["folder"] = sim::profiles_dir().string();
    list["profiles"] = nlohmann::ordered_json::array();
    for (const auto& profile : *profiles)
      list["profiles"].push_back(profile_json(profile, false));
    print_json(out, list);
    return exit_ok;
  }
  out << "Device profiles in " << sim::profiles_dir().string()
      << " (limit = min(floor(CUDA total x fraction), usable cap)):\n\n";
  Table table({"name", "device", ">CUDA total bytes", ">GiB", "known to", ">nvidia-smi MiB", ">CC",
               ">GB/s", ">limit bytes", ">limit GiB"});
  for (const auto& profile : *profiles) {
    if (profile.is_cpu) {
      const std::uint64_t limit = profile.cpu_memory_limit_bytes->value;
      table.add_row({profile.name, profile.display_name, "-", "-", "-", "-", "-", "-",
                     std::to_string(limit), format_gib(limit)});
      continue;
    }
    const std::uint64_t total = profile.cuda_total_bytes->value;
    const std::uint64_t limit = gpu_limit(profile.gpu_spec(0), GpuConfig{}.memory_fraction);
    table.add_row(
        {profile.name, profile.display_name, std::to_string(total), format_gib(total),
         known_to(profile),
         profile.nvidia_smi_total_mib ? std::to_string(profile.nvidia_smi_total_mib->value) : "-",
         profile.compute_capability ? profile.compute_capability->value : "-",
         profile.memory_bandwidth_gbps ? std::to_string(profile.memory_bandwidth_gbps->value) : "-",
         std::to_string(limit), format_gib(limit)});
  }
  table.print(out);
  out << "\nknown to: the CUDA total to the byte (1 B) or only to ± 1 MiB (1 MiB), and how many "
         "other figures other drivers report (profiles show NAME lists them).\n"
      << "Nodes: N x profile (2xrtx5090), mixed (rtx5090+rtx4090), or a .profile file path.\n";
  return exit_ok;
}

// Under cuda_total_bytes: the driver it was seen under, how precisely it is known, and every
// other figure seen, with its driver.
void print_total_figures(const sim::DeviceProfile& profile, std::ostream& out) {
  const std::string indent(32, ' ');
  out << indent << "seen under "
      << (profile.cuda_total_driver.empty() ? std::string("an unrecorded driver")
                                            : profile.cuda_total_driver)
      << "\n";
  if (const auto& precision = profile.cuda_total_precision_bytes) {
    out << "  cuda_total_precision_bytes    "
        << sourced_line(std::to_string(precision->value) + " (known only to ± " +
                            sim::format_precision(precision->value) + ")",
                        precision->provenance, precision->source)
        << "\n";
  }
  if (const auto& variants = profile.cuda_total_variants) {
    out << "  cuda_total_variants           "
        << sourced_line(std::to_string(variants->value.size()) + " other figure" +
                            (variants->value.size() == 1 ? "" : "s"),
                        variants->provenance, variants->source)
        << "\n";
    for (const sim::TotalFigure& figure : variants->value) {
      out << indent << figure.bytes << " (" << format_gib(figure.bytes) << " GiB"
          << (figure.precision_bytes != 0 ? ", ± " + sim::format_precision(figure.precision_bytes)
                                          : std::string())
          << ") under " << figure.driver << "\n";
    }
  }
}

// What the variance means for the budget: the limit at the lowest and highest known total.
void print_total_variance(const sim::DeviceProfile& profile, const Fraction& fraction,
                          std::uint64_t limit, std::ostream& out) {
  const sim::TotalRange range = sim::cuda_total_range(profile);
  GpuSpec low = profile.gpu_spec(0);
  GpuSpec high = low;
  low.total_bytes = range.lowest.bytes;
  high.total_bytes = range.highest.bytes;
  const std::uint64_t low_limit = gpu_limit(low, fraction);
  const std::uint64_t high_limit = gpu_limit(high, fraction);
  if (range.lowest.bytes == range.highest.bytes) {
    out << "\nOne CUDA total is known, to the byte: the budget does not vary with the driver.\n";
    return;
  }
  out << "\nAcross the known CUDA totals (they vary with the driver):\n";
  out << "  lowest   " << range.lowest.bytes << " bytes, "
      << sim::describe_figure(range.lowest.figure)
      << (range.lowest.figure.precision_bytes != 0 ? " less its precision" : "") << ": limit "
      << low_limit << " bytes (" << format_gib(low_limit) << " GiB)\n";
  out << "  highest  " << range.highest.bytes << " bytes, "
      << sim::describe_figure(range.highest.figure)
      << (range.highest.figure.precision_bytes != 0 ? " plus its precision" : "") << ": limit "
      << high_limit << " bytes (" << format_gib(high_limit) << " GiB)\n";
  if (low_limit == high_limit) {
    out << "  the limit is " << limit
        << " bytes at every known total: the driver does not change whether a recording fits\n";
  } else {
    out << "  the limit varies by " << high_limit - low_limit
        << " bytes: a recording that needs between " << low_limit + 1 << " and " << high_limit
        << " bytes fits under one driver and not another (memtrack fit says which)\n";
  }
}

// A profile's fields, each with its source, and its budget arithmetic.
void print_profile_text(const sim::DeviceProfile& found, std::ostream& out) {
  const sim::DeviceProfile* profile = &found;
  out << profile->name << ": " << profile->display_name << " (" << profile->file << ")\n\n";
  if (profile->is_cpu) {
    const auto& limit = *profile->cpu_memory_limit_bytes;
    out << "  cpu_memory_limit_bytes  "
        << sourced_line(std::to_string(limit.value) + " (" + format_gib(limit.value) + " GiB)",
                        limit.provenance, limit.source)
        << "\n";
    return;
  }
  const auto bytes_row = [&](std::string_view key, const auto& field, bool gib) {
    if (!field) return;
    std::string value = std::to_string(field->value);
    if (gib) value += " (" + format_gib(field->value) + " GiB)";
    out << "  " << key << std::string(30 - key.size(), ' ')
        << sourced_line(value, field->provenance, field->source) << "\n";
  };
  bytes_row("cuda_total_bytes", profile->cuda_total_bytes, true);
  print_total_figures(*profile, out);
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
  print_total_variance(*profile, fraction, limit, out);
}

Outcome show_profile(const std::string& name, bool json, std::ostream& out) {
  auto profile = sim::find_profile(name);
  if (!profile) return profile.error();
  if (json) {
    print_json(out, profile_json(*profile, true));
  } else {
    print_profile_text(*profile, out);
  }
  return exit_ok;
}

}  // namespace

void add_profiles_command(CLI::App& app, Command& chosen) {
  auto name = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  CLI::App* profiles = app.add_subcommand(
      "profiles", "List the device profiles (CUDA totals, limits), or show one with its sources.");
  add_json_flag(*profiles, *json);
  CLI::App* show =
      profiles->add_subcommand("show", "Show one profile's fields, sources and budget arithmetic");
  show->add_option("name", *name, "Profile name (e.g. rtx5090) or .profile file")->required();
  add_json_flag(*show, *json);
  profiles->callback([show, name, json, &chosen] {
    chosen.name = show->parsed() ? "profiles show" : "profiles";
    chosen.run = [show, name, json](std::ostream& out, std::ostream& /*err*/) {
      return show->parsed() ? show_profile(*name, *json, out) : list_profiles(*json, out);
    };
  });
}

}  // namespace memtrack::cli
