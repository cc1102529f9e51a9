// memtrack probe's arithmetic on a simulated device: what it measures, the profile it writes,
// the differences `--check` reports, and the noise it refuses.
#include "simulated_device.hpp"

#include <memtrack/recorder/probe.hpp>
#include <memtrack/units.hpp>

#include <gtest/gtest.h>

#include <map>

namespace memtrack::recorder {
namespace {

using testing::SimulatedDevice;

TEST(Probe, MeasuresTotalFreeContextAndGranularity) {
  SimulatedDevice device;
  std::vector<std::string> progress;
  ProbeOptions options;
  options.progress = [&progress](const std::string& line) { progress.push_back(line); };
  auto probed = probe_device(device, 1, options);
  ASSERT_TRUE(probed) << probed.error().to_string();
  EXPECT_EQ(probed->cuda_total, 80_GiB);
  EXPECT_EQ(probed->free_at_start, 80_GiB - 3_GiB - 530_MiB);
  EXPECT_EQ(probed->context_bytes, 530_MiB);
  EXPECT_EQ(probed->granularity, 2_MiB);
  EXPECT_EQ(probed->vmm_granularity, 2_MiB);
  EXPECT_EQ(probed->identity.index, 1U);
  EXPECT_EQ(probed->samples.back().requested, 1_GiB);
  EXPECT_GE(progress.size(), 4U);
  EXPECT_NE(progress.front().find("device 1: NVIDIA H100"), std::string::npos);
}

TEST(Probe, OtherGranularitiesAreFoundToo) {
  for (const std::uint64_t granularity : {64_KiB, 2_MiB, 32_MiB}) {
    SimulatedDevice device;
    device.granularity = granularity;
    auto probed = probe_device(device, 0);
    ASSERT_TRUE(probed) << probed.error().to_string();
    EXPECT_EQ(probed->granularity, granularity);
  }
}

TEST(Probe, ADeviceThatNeverMovesIsAnError) {
  SimulatedDevice device;
  device.ignore_allocations = true;
  auto probed = probe_device(device, 0);
  ASSERT_FALSE(probed);
  EXPECT_NE(probed.error().to_string().find("no allocation changed"), std::string::npos);
}

TEST(Probe, ABusyDeviceIsRetriedThenRefused) {
  SimulatedDevice device;
  device.noise_every = 7;  // another process allocating all along
  auto probed = probe_device(device, 0);
  ASSERT_FALSE(probed);
  EXPECT_NE(probed.error().to_string().find("another process"), std::string::npos)
      << probed.error().to_string();
  EXPECT_NE(probed.error().to_string().find("3 attempts"), std::string::npos);
}

TEST(InferGranularity, ChecksEverySampleAgainstTheGcd) {
  EXPECT_EQ(infer_granularity({{1, 2_MiB}, {512, 0}, {3_MiB, 4_MiB}, {5_MiB + 1, 6_MiB}}).value(),
            2_MiB);
  // 3 MiB costing 3 MiB and 4 MiB + 1 costing 5 MiB: granularity 1 MiB
  EXPECT_EQ(infer_granularity({{3_MiB, 3_MiB}, {4_MiB + 1, 5_MiB}}).value(), 1_MiB);
  EXPECT_EQ(infer_granularity({{3_MiB, 3_MiB}, {5_MiB + 1, 6_MiB}}).value(), 3_MiB);
  // a request that cost more than its rounding
  EXPECT_FALSE(infer_granularity({{2_MiB, 2_MiB}, {2_MiB + 1, 6_MiB}}));
  // a small request that cost more than one chunk
  EXPECT_FALSE(infer_granularity({{2_MiB, 2_MiB}, {1, 4_MiB}}));
  EXPECT_FALSE(infer_granularity({}));
  EXPECT_FALSE(infer_granularity({{1, 0}}));
}

TEST(Probe, SizesRunFromOneByteToOneGiB) {
  const auto sizes = granularity_probe_sizes();
  EXPECT_EQ(sizes.front(), 1U);
  EXPECT_EQ(sizes.back(), 1_GiB);
  EXPECT_TRUE(std::is_sorted(sizes.begin(), sizes.end()));
  EXPECT_NE(std::find(sizes.begin(), sizes.end(), 2_MiB + 1), sizes.end());
}

TEST(ProbeProfile, TheWrittenProfileLoadsAndSaysMeasured) {
  SimulatedDevice device;
  auto probed = probe_device(device, 0);
  ASSERT_TRUE(probed);
  const std::string name = profile_name_for(probed->identity.name);
  EXPECT_EQ(name, "h100-80gb-hbm3");
  const std::string text = format_probed_profile(*probed, name);
  EXPECT_NE(text.find("driver 580.65.06 supporting CUDA 13.0, CUDA runtime 13.0"),
            std::string::npos)
      << text;
  auto profile = sim::parse_profile(text, "probed.profile");
  ASSERT_TRUE(profile) << profile.error().to_string() << "\n" << text;
  EXPECT_EQ(profile->name, "h100-80gb-hbm3");
  EXPECT_EQ(profile->display_name, "NVIDIA H100 80GB HBM3");
  EXPECT_EQ(profile->cuda_total_bytes->value, 80_GiB);
  EXPECT_EQ(profile->cuda_total_bytes->provenance, sim::Provenance::Measured);
  EXPECT_EQ(profile->context_overhead_bytes->value, 530_MiB);
  EXPECT_EQ(profile->allocation_granularity_bytes->value, 2_MiB);
  EXPECT_EQ(profile->compute_capability->value, "9.0");
  EXPECT_NE(profile->cuda_total_bytes->source.find("GPU-0123"), std::string::npos);
  // The total varies with the driver: a measured profile names the one it was seen under.
  EXPECT_EQ(profile->cuda_total_driver, "driver 580.65.06");

  // and --check of that profile against the same device agrees on every field
  for (const ProfileComparison& row : compare_profile(*profile, *probed)) {
    EXPECT_TRUE(row.agrees) << row.field << ": " << row.profile_value << " vs " << row.device_value;
  }
}

TEST(ProbeProfile, NamesFollowTheBuiltInProfiles) {
  EXPECT_EQ(profile_name_for("NVIDIA GeForce RTX 5090"), "rtx5090");
  EXPECT_EQ(profile_name_for("NVIDIA H200"), "h200");
  EXPECT_EQ(profile_name_for("NVIDIA A100-SXM4-80GB"), "a100-sxm4-80gb");
  EXPECT_EQ(profile_name_for("Tesla V100-SXM2-32GB"), "v100-sxm2-32gb");
  EXPECT_EQ(profile_name_for("  "), "gpu");
}

TEST(ProbeCheck, TheContextCostIsAMinimumAndSaysSo) {
  SimulatedDevice device;  // a bare context costs 530 MiB
  auto probed = probe_device(device, 0);
  ASSERT_TRUE(probed);
  const sim::DeviceProfile written = make_profile(*probed, "lab");
  ASSERT_TRUE(written.context_overhead_bytes);
  EXPECT_TRUE(written.context_overhead_bytes->source.starts_with("minimum (bare cuCtxCreate)"))
      << written.context_overhead_bytes->source;
  const auto context_row = [&probed](std::uint64_t profile_bytes) {
    sim::DeviceProfile profile;
    profile.name = "p";
    profile.context_overhead_bytes =
        sim::Sourced<std::uint64_t>{profile_bytes, sim::Provenance::Estimated, "test"};
    for (const auto& row : compare_profile(profile, *probed)) {
      if (row.field == "context_overhead_bytes") return row;
    }
    return ProfileComparison{};
  };
  // a real program's context (modules, cuBLAS) costs more than the minimum: that agrees
  const ProfileComparison above = context_row(530_MiB + 300_MiB);
  EXPECT_TRUE(above.agrees);
  EXPECT_EQ(above.device_value, "at least " + std::to_string(530_MiB));
  EXPECT_NE(above.note.find("minimum (bare cuCtxCreate)"), std::string::npos) << above.note;
  EXPECT_TRUE(context_row(530_MiB).agrees);
  EXPECT_FALSE(context_row(530_MiB - 1).agrees);  // below what even a bare context takes
}

TEST(ProbeCheck, ReportsEachDifference) {
  SimulatedDevice device;
  auto probed = probe_device(device, 0);
  ASSERT_TRUE(probed);
  auto profile = sim::find_profile("h100-sxm");
  ASSERT_TRUE(profile) << profile.error().to_string();
  const auto rows = compare_profile(*profile, *probed);
  std::map<std::string, ProfileComparison> by_field;
  for (const auto& row : rows)
    by_field[row.field] = row;
  ASSERT_EQ(by_field.count("cuda_total_bytes"), 1U);
  EXPECT_FALSE(by_field["cuda_total_bytes"].agrees);  // the built-in one is not 80 GiB exactly
  EXPECT_EQ(by_field["cuda_total_bytes"].device_value, std::to_string(80_GiB));
  EXPECT_TRUE(by_field["compute_capability"].agrees);
  EXPECT_EQ(by_field["allocation_granularity_bytes"].agrees,
            profile->allocation_granularity_bytes->value == 2_MiB);
  EXPECT_FALSE(by_field["context_overhead_bytes"].agrees);  // 512 MiB estimated < 530 MiB minimum
  EXPECT_EQ(by_field["context_overhead_bytes"].provenance, "estimated");
  ASSERT_EQ(by_field.count("budget"), 1U);

  // a profile without a field says so rather than agreeing
  sim::DeviceProfile bare;
  bare.name = "bare";
  for (const auto& row : compare_profile(bare, *probed)) {
    EXPECT_FALSE(row.agrees) << row.field;
    EXPECT_EQ(row.note, "not in the profile");
  }
}

TEST(ProbeCheck, ABudgetLargerThanTheFreeMemoryIsADifference) {
  SimulatedDevice device;
  device.used_by_others = 20_GiB;
  auto probed = probe_device(device, 0);
  ASSERT_TRUE(probed);
  auto profile = sim::parse_profile(format_probed_profile(*probed, "x"), "x.profile");
  ASSERT_TRUE(profile);
  bool seen = false;
  for (const auto& row : compare_profile(*profile, *probed)) {
    if (row.field != "budget") continue;
    seen = true;
    EXPECT_FALSE(row.agrees);  // 90% of 80 GiB does not fit in the 56.5 GiB free
    EXPECT_NE(row.note.find("exceeds"), std::string::npos);
  }
  EXPECT_TRUE(seen);
}

TEST(ProbeVersions, CudaVersionNumbersAsText) {
  EXPECT_EQ(cuda_version_text(13000), "13.0");
  EXPECT_EQ(cuda_version_text(12080), "12.8");
  EXPECT_EQ(cuda_version_text(0), "unknown");
}

}  // namespace
}  // namespace memtrack::recorder
