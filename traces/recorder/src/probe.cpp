#include <memtrack/recorder/probe.hpp>

#include <memtrack/units.hpp>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <numeric>

namespace memtrack::recorder {
namespace {

Error failure(std::string what) {
  return Error::parse_error(std::move(what));
}

std::string today() {
  const auto days = std::chrono::floor<std::chrono::days>(std::chrono::system_clock::now());
  const std::chrono::year_month_day date{days};
  char text[16];
  std::snprintf(text, sizeof text, "%04d-%02u-%02u", static_cast<int>(date.year()),
                static_cast<unsigned>(date.month()), static_cast<unsigned>(date.day()));
  return text;
}

/// @return `bytes` rounded up to a multiple of `granularity`, or nothing past 2^64 - 1
std::optional<std::uint64_t> round_up(std::uint64_t bytes, std::uint64_t granularity) {
  const std::uint64_t rest = bytes % granularity;
  if (rest == 0) return bytes;
  auto up = checked_add(bytes, granularity - rest);
  if (!up) return std::nullopt;
  return *up;
}

/// One pass over the sizes: allocate, read the drop, free.
Result<std::vector<GranularitySample>> measure_samples(ProbeBackend& backend,
                                                       std::uint64_t free_now) {
  std::vector<GranularitySample> samples;
  for (const std::uint64_t size : granularity_probe_sizes()) {
    if (size > free_now / 2) break;  // leave the device usable
    auto before = backend.mem_info();
    if (!before) return before.error();
    auto handle = backend.allocate(size);
    if (!handle) return handle.error();
    auto after = backend.mem_info();
    auto released = backend.release(*handle);
    if (!after) return after.error();
    if (!released) return released.error();
    const std::uint64_t drop = before->free > after->free ? before->free - after->free : 0;
    samples.push_back({size, drop});
  }
  return samples;
}

std::string version_line(const VersionInfo& versions) {
  std::string text = "driver ";
  text +=
      versions.driver_release.empty() ? std::string("(release unknown)") : versions.driver_release;
  text += " supporting CUDA " + cuda_version_text(versions.driver_cuda) + ", CUDA runtime " +
          cuda_version_text(versions.runtime);
  return text;
}

}  // namespace

std::string cuda_version_text(int version) {
  if (version <= 0) return "unknown";
  return std::to_string(version / 1000) + "." + std::to_string((version % 1000) / 10);
}

std::vector<std::uint64_t> granularity_probe_sizes() {
  std::vector<std::uint64_t> sizes{1, 512, 4_KiB, 64_KiB, 512_KiB};
  for (std::uint64_t size = 1_MiB; size <= 1_GiB; size *= 2) {
    sizes.push_back(size - 1);
    sizes.push_back(size);
    sizes.push_back(size + 1);
  }
  sizes.push_back(3_MiB);
  sizes.push_back(3_MiB + 1);
  std::sort(sizes.begin(), sizes.end());
  sizes.erase(std::unique(sizes.begin(), sizes.end()), sizes.end());
  while (!sizes.empty() && sizes.back() > 1_GiB)
    sizes.pop_back();
  return sizes;
}

Result<std::uint64_t> infer_granularity(const std::vector<GranularitySample>& samples) {
  std::uint64_t granularity = 0;
  for (const GranularitySample& sample : samples) {
    granularity = std::gcd(granularity, sample.free_drop);
  }
  if (granularity == 0) {
    return failure("no allocation changed the free memory cudaMemGetInfo reports");
  }
  for (const GranularitySample& sample : samples) {
    const auto expected = round_up(sample.requested, granularity);
    const bool consistent =
        sample.requested >= granularity
            ? expected && sample.free_drop == *expected
            : sample.free_drop % granularity == 0 && sample.free_drop <= granularity;
    if (!consistent) {
      return failure("a " + std::to_string(sample.requested) + "-byte allocation took " +
                     std::to_string(sample.free_drop) + " bytes, which no granularity " +
                     "explains with the others (granularity " + std::to_string(granularity) +
                     "); was another process allocating?");
    }
  }
  return granularity;
}

Result<ProbedDevice> probe_device(ProbeBackend& backend, std::uint32_t device,
                                  const ProbeOptions& options) {
  const auto say = [&options, device](const std::string& what) {
    if (options.progress) options.progress("device " + std::to_string(device) + ": " + what);
  };
  ProbedDevice probed;
  probed.date = today();
  auto versions = backend.versions();
  if (!versions) return versions.error();
  probed.versions = *versions;
  auto identity = backend.identify(device);
  if (!identity) return identity.error();
  probed.identity = *identity;
  say(probed.identity.name + " (" + probed.identity.uuid + "), compute capability " +
      std::to_string(probed.identity.cc_major) + "." + std::to_string(probed.identity.cc_minor));
  if (auto used = backend.use(device); !used) return used.error();
  auto start = backend.mem_info();
  if (!start) return start.error();
  probed.cuda_total = start->total;
  probed.free_at_start = start->free;
  say("CUDA total " + std::to_string(start->total) + " bytes, " + std::to_string(start->free) +
      " free with the primary context");

  std::vector<std::uint64_t> context_costs;
  for (int i = 0; i < 3; ++i) {
    auto before = backend.mem_info();
    if (!before) return before.error();
    if (auto created = backend.create_context(); !created) return created.error();
    auto after = backend.mem_info();
    auto destroyed = backend.destroy_context();
    if (!after) return after.error();
    if (!destroyed) return destroyed.error();
    context_costs.push_back(before->free > after->free ? before->free - after->free : 0);
  }
  std::sort(context_costs.begin(), context_costs.end());
  probed.context_bytes = context_costs[1];
  say("a bare context takes at least " + std::to_string(probed.context_bytes) + " bytes (" +
      std::string(context_minimum_note) + ")");

  const int attempts = std::max(1, options.attempts);
  for (int attempt = 1;; ++attempt) {
    auto now = backend.mem_info();
    if (!now) return now.error();
    auto samples = measure_samples(backend, now->free);
    if (!samples) return samples.error();
    auto granularity = infer_granularity(*samples);
    if (granularity) {
      probed.samples = std::move(*samples);
      probed.granularity = *granularity;
      break;
    }
    if (attempt >= attempts) {
      return failure("device " + std::to_string(device) +
                     ": allocation granularity: " + granularity.error().to_string() + " (" +
                     std::to_string(attempts) + " attempts)");
    }
    say("granularity attempt " + std::to_string(attempt) + " inconsistent (" +
        granularity.error().to_string() + "); measuring again");
  }
  probed.vmm_granularity = backend.vmm_granularity();
  say("allocation granularity " + std::to_string(probed.granularity) + " bytes (" +
      std::to_string(probed.samples.size()) + " allocations, 1 B to " +
      std::to_string(probed.samples.back().requested) + " B)");
  return probed;
}

std::string profile_name_for(const std::string& device_name) {
  std::string name;
  for (const char c : device_name) {
    if (std::isalnum(static_cast<unsigned char>(c)) != 0) {
      name += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    } else if (!name.empty() && name.back() != '-') {
      name += '-';
    }
  }
  for (const std::string_view prefix : {"nvidia-", "geforce-", "tesla-", "quadro-"}) {
    if (name.starts_with(prefix)) name.erase(0, prefix.size());
  }
  // "rtx-5090" -> "rtx5090", as the built-in profiles are named
  for (const std::string_view family : {"rtx-", "gtx-"}) {
    if (name.starts_with(family)) name.erase(3, 1);
  }
  while (!name.empty() && name.back() == '-')
    name.pop_back();
  return name.empty() ? std::string("gpu") : name;
}

sim::DeviceProfile make_profile(const ProbedDevice& device, const std::string& name) {
  const std::string on = "device " + std::to_string(device.identity.index) + " " +
                         device.identity.uuid + ", " + version_line(device.versions) +
                         ", memtrack probe " + device.date;
  sim::DeviceProfile profile;
  profile.name = name;
  profile.display_name = device.identity.name;
  profile.cuda_total_bytes = sim::Sourced<std::uint64_t>{
      device.cuda_total, sim::Provenance::Measured, "cudaMemGetInfo total on " + on};
  // The total depends on the driver: the measured figure names the one it was seen under.
  profile.cuda_total_driver =
      device.versions.driver_release.empty()
          ? "driver supporting CUDA " + cuda_version_text(device.versions.driver_cuda)
          : "driver " + device.versions.driver_release;
  profile.compute_capability = sim::Sourced<std::string>{
      std::to_string(device.identity.cc_major) + "." + std::to_string(device.identity.cc_minor),
      sim::Provenance::Measured, "cudaDeviceProp major.minor on " + on};
  profile.memory_fraction = sim::Sourced<Fraction>{
      Fraction::of(9, 10).value(), sim::Provenance::Estimated,
      "memtrack default share of the CUDA total, leaving room for the CUDA context and "
      "fragmentation"};
  profile.context_overhead_bytes = sim::Sourced<std::uint64_t>{
      device.context_bytes, sim::Provenance::Measured,
      "minimum (bare cuCtxCreate): cudaMemGetInfo free before minus after one more context "
      "(median of 3) under lazy loading, no module loaded, no cuBLAS or NCCL handle; a program's "
      "context costs more, on " +
          on};
  std::string granularity_source =
      "smallest step of cudaMemGetInfo free over " + std::to_string(device.samples.size()) +
      " cudaMalloc sizes (1 B to " +
      std::to_string(device.samples.empty() ? 0 : device.samples.back().requested) + " B) on " + on;
  if (device.vmm_granularity) {
    granularity_source +=
        "; cuMemGetAllocationGranularity minimum " + std::to_string(*device.vmm_granularity);
  }
  profile.allocation_granularity_bytes = sim::Sourced<std::uint64_t>{
      device.granularity, sim::Provenance::Measured, std::move(granularity_source)};
  return profile;
}

std::string format_probed_profile(const ProbedDevice& device, const std::string& name) {
  const sim::DeviceProfile profile = make_profile(device, name);
  std::vector<std::string> comment{
      "memtrack device profile: " + device.identity.name,
      "Format: key = value | measured, published or estimated | source",
      "Measured by memtrack probe on " + device.date + ": " + version_line(device.versions),
      "Device " + std::to_string(device.identity.index) + " " + device.identity.uuid +
          ", totalGlobalMem " + std::to_string(device.identity.total_global_mem) +
          ", free at start " + std::to_string(device.free_at_start) + " of " +
          std::to_string(device.cuda_total)};
  return sim::format_profile(profile, comment);
}

std::vector<ProfileComparison> compare_profile(const sim::DeviceProfile& profile,
                                               const ProbedDevice& device) {
  std::vector<ProfileComparison> rows;
  const auto exact = [&rows](std::string field, const auto& sourced, std::string measured,
                             std::string note) {
    ProfileComparison row;
    row.field = std::move(field);
    row.device_value = std::move(measured);
    if (sourced) {
      if constexpr (std::is_same_v<std::decay_t<decltype(sourced->value)>, std::string>) {
        row.profile_value = sourced->value;
      } else {
        row.profile_value = std::to_string(sourced->value);
      }
      row.provenance = std::string(sim::to_string(sourced->provenance));
    }
    row.agrees = sourced.has_value() && row.profile_value == row.device_value;
    row.note = sourced ? std::move(note) : "not in the profile";
    rows.push_back(std::move(row));
  };
  exact("cuda_total_bytes", profile.cuda_total_bytes, std::to_string(device.cuda_total),
        "cudaMemGetInfo total");
  exact("compute_capability", profile.compute_capability,
        std::to_string(device.identity.cc_major) + "." + std::to_string(device.identity.cc_minor),
        "cudaDeviceProp major.minor");
  // The device's figure is a minimum (a bare context): a profile at or above it agrees.
  {
    ProfileComparison row;
    row.field = "context_overhead_bytes";
    row.device_value = "at least " + std::to_string(device.context_bytes);
    if (const auto& sourced = profile.context_overhead_bytes) {
      row.profile_value = std::to_string(sourced->value);
      row.provenance = std::string(sim::to_string(sourced->provenance));
      row.agrees = sourced->value >= device.context_bytes;
      row.note = "minimum (bare cuCtxCreate): " + std::string(context_minimum_note);
    } else {
      row.note = "not in the profile";
    }
    rows.push_back(std::move(row));
  }
  exact("allocation_granularity_bytes", profile.allocation_granularity_bytes,
        std::to_string(device.granularity), "cudaMalloc steps");

  // The budget the profile gives this device: does it fit in what is free right now?
  const sim::DeviceProfile& p = profile;
  if (p.cuda_total_bytes) {
    const std::uint64_t limit = gpu_limit(p.gpu_spec(0), GpuConfig{}.memory_fraction);
    ProfileComparison row;
    row.field = "budget";
    row.profile_value = std::to_string(limit);
    row.provenance = "derived";
    row.device_value = std::to_string(device.free_at_start) + " free";
    row.agrees = limit <= device.free_at_start;
    row.note = row.agrees ? "the budget fits in the memory free at start (headroom " +
                                std::to_string(device.free_at_start - limit) + " bytes)"
                          : "the budget exceeds the memory free at start by " +
                                std::to_string(limit - device.free_at_start) +
                                " bytes (the context and other processes use the rest)";
    rows.push_back(std::move(row));
  }
  return rows;
}

}  // namespace memtrack::recorder
