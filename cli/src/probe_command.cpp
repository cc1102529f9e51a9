// memtrack probe: measure real devices into profiles (`sim/profiles/` format, marked measured),
// or check a profile against a real device.
#include "app.hpp"
#include "commands.hpp"
#include "options.hpp"
#include "summary_json.hpp"
#include "table.hpp"

#include <memtrack/recorder/probe.hpp>
#include <memtrack/traces/io.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>

namespace memtrack::cli {
namespace {

namespace fs = std::filesystem;

Result<void> write_atomically(const fs::path& path, const std::string& text) {
  auto output = traces::AtomicOutput::create(path);
  if (!output) return output.error();
  if (auto written = output->write(text); !written) return written;
  return output->commit();
}

/// The profile `--check` names, if any.
Result<std::optional<sim::DeviceProfile>> checked_profile(const ProbeCommandOptions& options) {
  if (options.check.empty()) return std::optional<sim::DeviceProfile>();
  auto profile = sim::find_profile(options.check);
  if (!profile) return bad_input("--check: ", profile.error());
  return std::optional<sim::DeviceProfile>(std::move(*profile));
}

/// The devices to probe (`--device`, default all), checked against the count and `-o`.
Result<std::vector<std::uint32_t>> chosen_devices(const ProbeCommandOptions& options,
                                                  std::uint32_t count) {
  std::vector<std::uint32_t> devices = options.devices;
  if (devices.empty()) {
    for (std::uint32_t i = 0; i < count; ++i)
      devices.push_back(i);
  }
  for (const std::uint32_t device : devices) {
    if (device >= count) {
      return Error::parse_error("--device " + std::to_string(device) + ": there are " +
                                std::to_string(count) + " devices (0 to " +
                                std::to_string(count - 1) + ")");
    }
  }
  if (!options.output.empty() && devices.size() > 1 && !fs::is_directory(options.output)) {
    return Error::parse_error("-o " + options.output + ": " + std::to_string(devices.size()) +
                              " devices are probed; -o must name an existing folder (or choose "
                              "one with --device)");
  }
  return devices;
}

/// A measurement that could not be made (no device, a noisy one): exit 1, said as text on
/// standard error or, under --json, as `{"error", "exit_code": 1}` on standard output.
ExitCode probe_failed(const ProbeCommandOptions& options, const std::string& why, std::ostream& out,
                      std::ostream& err) {
  if (!options.json) {
    err << "memtrack probe: " << why << "\n";
    return exit_failure;
  }
  nlohmann::ordered_json json;
  json["error"] = why;
  json["exit_code"] = static_cast<int>(exit_failure);
  out << json.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  return exit_failure;
}

void print_samples(const recorder::ProbedDevice& probed, std::ostream& err) {
  Table table({">requested bytes", ">free memory dropped by", ">rounded to granularity"});
  for (const auto& sample : probed.samples) {
    const std::uint64_t g = probed.granularity;
    const std::uint64_t rounded = (sample.requested + g - 1) / g * g;
    table.add_row({std::to_string(sample.requested), std::to_string(sample.free_drop),
                   std::to_string(rounded)});
  }
  table.print(err);
}

/// One device's entry in probe's JSON: what was measured, bytes as numbers.
nlohmann::ordered_json measured_json(std::uint32_t device, const recorder::ProbedDevice& probed,
                                     bool samples) {
  nlohmann::ordered_json json;
  json["device"] = device;
  json["name"] = probed.identity.name;
  json["uuid"] = probed.identity.uuid;
  json["compute_capability"] =
      std::to_string(probed.identity.cc_major) + "." + std::to_string(probed.identity.cc_minor);
  json["cuda_total_bytes"] = probed.cuda_total;
  json["free_at_start_bytes"] = probed.free_at_start;
  json["context_overhead_bytes"] = probed.context_bytes;  // a minimum: a bare context
  json["allocation_granularity_bytes"] = probed.granularity;
  if (samples) {
    json["samples"] = nlohmann::ordered_json::array();
    for (const auto& sample : probed.samples) {
      json["samples"].push_back(
          {{"requested_bytes", sample.requested}, {"free_drop_bytes", sample.free_drop}});
    }
  }
  return json;
}

/// Compares the device with the checked profile, as a table or into `json`.
/// @return whether every field agrees
bool check_device(const sim::DeviceProfile& checked, std::uint32_t device,
                  const recorder::ProbedDevice& probed, const ProbeCommandOptions& options,
                  nlohmann::ordered_json& json, std::ostream& out) {
  const auto rows = recorder::compare_profile(checked, probed);
  const bool agrees =
      std::all_of(rows.begin(), rows.end(), [](const auto& row) { return row.agrees; });
  if (options.json) {
    json["agrees"] = agrees;
    json["checks"] = nlohmann::ordered_json::array();
    for (const auto& row : rows) {
      json["checks"].push_back({{"field", row.field},
                                {"profile", text_or_null(row.profile_value)},
                                {"provenance", text_or_null(row.provenance)},
                                {"device", row.device_value},
                                {"agrees", row.agrees},
                                {"note", row.note}});
    }
    return agrees;
  }
  out << "device " << device << " (" << probed.identity.name << ", " << probed.identity.uuid
      << ") against profile " << checked.name << " (" << checked.file << "):\n";
  Table table({"field", ">profile", "provenance", ">device", "verdict", "note"});
  for (const auto& row : rows) {
    table.add_row({row.field, row.profile_value.empty() ? "-" : row.profile_value,
                   row.provenance.empty() ? "-" : row.provenance, row.device_value,
                   row.agrees ? "agrees" : "DIFFERS", row.note});
  }
  table.print(out);
  return agrees;
}

/// Prints the measured profile, or writes it to `-o` (a file, or NAME.profile in a folder).
Result<void> save_profile(std::uint32_t device, std::size_t device_count,
                          const recorder::ProbedDevice& probed, const ProbeCommandOptions& options,
                          nlohmann::ordered_json& json, std::ostream& out, std::ostream& err) {
  std::string name =
      options.name.empty() ? recorder::profile_name_for(probed.identity.name) : options.name;
  if (device_count > 1) name += "-gpu" + std::to_string(device);  // one file per device
  const std::string text = recorder::format_probed_profile(probed, name);
  json["profile"] = name;
  if (options.output.empty()) {
    json["file"] = nullptr;
    json["profile_text"] = text;
    if (!options.json) out << text;
    return {};
  }
  const fs::path path = fs::is_directory(options.output)
                            ? fs::path(options.output) / (name + ".profile")
                            : fs::path(options.output);
  if (auto written = write_atomically(path, text); !written) return written;
  json["file"] = path.string();
  json["profile_text"] = nullptr;
  err << "memtrack probe: wrote " << path.string() << " (profile " << name << ")\n";
  return {};
}

}  // namespace

Outcome run_probe(recorder::ProbeBackend& backend, const ProbeCommandOptions& options,
                  std::ostream& out, std::ostream& err) {
  auto checked = checked_profile(options);
  if (!checked) return checked.error();
  auto count = backend.device_count();
  if (!count)
    return probe_failed(options, "no CUDA device: " + count.error().to_string(), out, err);
  if (*count == 0)
    return probe_failed(options, "no CUDA device: the driver reports 0 devices", out, err);
  auto devices = chosen_devices(options, *count);
  if (!devices) return devices.error();

  recorder::ProbeOptions probe_options;
  probe_options.progress = [&err](const std::string& line) {
    err << "memtrack probe: " << line << "\n";
  };
  bool all_agree = true;
  nlohmann::ordered_json json;
  if (*checked) {
    json["profile"] = (*checked)->name;
    json["profile_file"] = (*checked)->file;
  }
  json["devices"] = nlohmann::ordered_json::array();
  for (const std::uint32_t device : *devices) {
    auto probed = recorder::probe_device(backend, device, probe_options);
    if (!probed) {
      return probe_failed(options,
                          "device " + std::to_string(device) + ": " + probed.error().to_string(),
                          out, err);
    }
    if (options.samples && !options.json) print_samples(*probed, err);
    nlohmann::ordered_json entry = measured_json(device, *probed, options.samples);
    if (*checked) {
      all_agree = check_device(**checked, device, *probed, options, entry, out) && all_agree;
    } else if (auto saved =
                   save_profile(device, devices->size(), *probed, options, entry, out, err);
               !saved) {
      return saved.error();
    }
    json["devices"].push_back(std::move(entry));
  }
  if (*checked) json["agrees"] = all_agree;
  if (options.json) {
    out << json.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  } else if (*checked) {
    out << (all_agree ? "memtrack probe: the profile agrees with the device\n"
                      : "memtrack probe: the profile differs from the device (see DIFFERS)\n");
  }
  return *checked && !all_agree ? exit_failure : exit_ok;
}

void add_probe_command(CLI::App& app, Command& chosen) {
  auto options = std::make_shared<ProbeCommandOptions>();
  CLI::App* command = app.add_subcommand(
      "probe",
      "Measure real GPUs into device profiles (the sim/profiles format, every measured field "
      "marked measured, with driver and CUDA versions): name, UUID, compute capability, CUDA "
      "total, free memory at start, the minimum a bare context costs, and the allocation "
      "granularity "
      "(cudaMalloc of 1 B to 1 GiB, watching cudaMemGetInfo). With --check, compare a profile "
      "with the device instead and report every difference. Needs a CUDA build (the cuda "
      "preset) and a GPU. Exit 0 done / all agree, 1 a difference or no device, 2 bad input.");
  command->add_option("--device", options->devices, "Probe only these devices (default: all)");
  command->add_option("-o,--output", options->output,
                      "Write the profile to this file (one device) or folder (NAME.profile each); "
                      "default: print it");
  command->add_option("--name", options->name,
                      "The profile's name (default: from the device name, e.g. rtx5090)");
  command->add_option("--check", options->check,
                      "Compare this profile (a built-in name or a .profile path) with the device");
  command->add_flag("--samples", options->samples,
                    "Also print every granularity measurement (requested bytes, free memory drop)");
  add_json_flag(*command, options->json,
                "what was measured: {devices: [{device, name, uuid, compute_capability, "
                "cuda_total_bytes, free_at_start_bytes, context_overhead_bytes (a minimum), "
                "allocation_granularity_bytes, samples with --samples; then profile, file and "
                "profile_text (null when written to a file), or with --check agrees and checks "
                "(field, profile, provenance, device, agrees, note)}]}, with --check also profile, "
                "profile_file and agrees; a failed measurement as {error, exit_code: 1}");
  run_when_chosen(*command, chosen, options,
                  [](const ProbeCommandOptions& o, std::ostream& out, std::ostream& err) {
                    auto backend = recorder::make_cuda_probe_backend();
                    if (!backend) return Outcome(backend.error());
                    return run_probe(**backend, o, out, err);
                  });
}

}  // namespace memtrack::cli
