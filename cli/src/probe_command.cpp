// memtrack probe: measure real devices into profiles (`sim/profiles/` format, marked measured),
// or check a profile against a real device.
#include "app.hpp"
#include "commands.hpp"
#include "table.hpp"

#include <memtrack/recorder/probe.hpp>
#include <memtrack/traces/io.hpp>

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

}  // namespace

int run_probe(recorder::ProbeBackend& backend, const ProbeCommandOptions& options,
              std::ostream& out, std::ostream& err) {
  std::optional<sim::DeviceProfile> checked;
  if (!options.check.empty()) {
    auto profile = sim::find_profile(options.check);
    if (!profile) {
      err << "memtrack probe: --check: " << profile.error().to_string() << "\n";
      return exit_bad_input;
    }
    checked = std::move(*profile);
  }
  auto count = backend.device_count();
  if (!count) {
    err << "memtrack probe: no CUDA device: " << count.error().to_string() << "\n";
    return exit_failure;
  }
  if (*count == 0) {
    err << "memtrack probe: no CUDA device: the driver reports 0 devices\n";
    return exit_failure;
  }
  std::vector<std::uint32_t> devices = options.devices;
  if (devices.empty()) {
    for (std::uint32_t i = 0; i < *count; ++i)
      devices.push_back(i);
  }
  for (const std::uint32_t device : devices) {
    if (device >= *count) {
      err << "memtrack probe: --device " << device << ": there are " << *count << " devices (0 to "
          << *count - 1 << ")\n";
      return exit_bad_input;
    }
  }
  if (!options.output.empty() && devices.size() > 1 && !fs::is_directory(options.output)) {
    err << "memtrack probe: -o " << options.output << ": " << devices.size()
        << " devices are probed; -o must name an existing folder (or choose one with --device)\n";
    return exit_bad_input;
  }

  recorder::ProbeOptions probe_options;
  probe_options.progress = [&err](const std::string& line) {
    err << "memtrack probe: " << line << "\n";
  };
  bool all_agree = true;
  for (const std::uint32_t device : devices) {
    auto probed = recorder::probe_device(backend, device, probe_options);
    if (!probed) {
      err << "memtrack probe: device " << device << ": " << probed.error().to_string() << "\n";
      return exit_failure;
    }
    if (options.samples) {
      Table table({">requested bytes", ">free memory dropped by", ">rounded to granularity"});
      for (const auto& sample : probed->samples) {
        const std::uint64_t g = probed->granularity;
        const std::uint64_t rounded = (sample.requested + g - 1) / g * g;
        table.add_row({std::to_string(sample.requested), std::to_string(sample.free_drop),
                       std::to_string(rounded)});
      }
      table.print(err);
    }
    if (checked) {
      out << "device " << device << " (" << probed->identity.name << ", " << probed->identity.uuid
          << ") against profile " << checked->name << " (" << checked->file << "):\n";
      Table table({"field", ">profile", "provenance", ">device", "verdict", "note"});
      for (const auto& row : recorder::compare_profile(*checked, *probed)) {
        all_agree = all_agree && row.agrees;
        table.add_row({row.field, row.profile_value.empty() ? "-" : row.profile_value,
                       row.provenance.empty() ? "-" : row.provenance, row.device_value,
                       row.agrees ? "agrees" : "DIFFERS", row.note});
      }
      table.print(out);
      continue;
    }
    std::string name =
        options.name.empty() ? recorder::profile_name_for(probed->identity.name) : options.name;
    if (devices.size() > 1) name += "-gpu" + std::to_string(device);  // one file per device
    const std::string text = recorder::format_probed_profile(*probed, name);
    if (options.output.empty()) {
      out << text;
      continue;
    }
    const fs::path path = fs::is_directory(options.output)
                              ? fs::path(options.output) / (name + ".profile")
                              : fs::path(options.output);
    if (auto written = write_atomically(path, text); !written) {
      err << "memtrack probe: " << written.error().to_string() << "\n";
      return exit_bad_input;
    }
    err << "memtrack probe: wrote " << path.string() << " (profile " << name << ")\n";
  }
  if (checked) {
    out << (all_agree ? "memtrack probe: the profile agrees with the device\n"
                      : "memtrack probe: the profile differs from the device (see DIFFERS)\n");
    return all_agree ? exit_ok : exit_failure;
  }
  return exit_ok;
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
  run_when_chosen(*command, chosen, options,
                  [](const ProbeCommandOptions& o, std::ostream& out, std::ostream& err) {
                    auto backend = recorder::make_cuda_probe_backend();
                    if (!backend) return Outcome(backend.error());
                    return as_outcome(run_probe(**backend, o, out, err));
                  });
}

}  // namespace memtrack::cli
