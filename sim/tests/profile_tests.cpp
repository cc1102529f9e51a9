#include <memtrack/sim/profile.hpp>

#include <gtest/gtest.h>

#include <fstream>
#include <map>

namespace memtrack::sim {
namespace {

// Limits computed by hand: floor(CUDA total x 9/10), or the usable cap where it is lower.
TEST(Profiles, EveryBuiltInProfileLoadsWithItsHandComputedLimit) {
  const std::map<std::string, std::uint64_t> expected_limit = {
      {"rtx5090", 25769803776ULL},      // min(floor(33680457728 x 0.9) = 30312411955, 24 GiB)
      {"rtx4090", 22847717376ULL},      // 25386352640 x 0.9 exactly
      {"rtx3090", 22794928128ULL},      // 25327697920 x 0.9 exactly
      {"rtx6000-ada", 45902580940ULL},  // floor(51002867712 x 0.9)
      {"rtx-pro-6000-blackwell", 91776614400ULL},  // 101974016000 x 0.9 exactly
      {"l4", 21213197107ULL},                      // floor(23570219008 x 0.9)
      {"l40s", 43023237120ULL},                    // 47803596800 x 0.9 exactly
      {"a100-40gb", 38068951449ULL},               // floor(42298834944 x 0.9)
      {"a100-80gb", 76590061977ULL},               // floor(85100068864 x 0.9)
      {"a100-80gb-pcie", 76476815769ULL},          // floor(84974239744 x 0.9)
      {"h100-sxm", 76540929638ULL},                // floor(85045477376 x 0.9)
      {"h100-pcie", 76540929638ULL},               // floor(85045477376 x 0.9)
      {"h100-nvl", 89875434700ULL},                // floor(99861594112 x 0.9)
      {"h20", 91809644544ULL},                     // 97285 MiB = 102010716160, x 0.9 exactly
      {"h200", 135019560960ULL},                   // 150021734400 x 0.9 exactly
      {"b200", 172352235110ULL},                   // 182631 MiB = 191502483456, floor(x 0.9)
      {"gb200", 178110804787ULL},                  // 188733 MiB = 197900894208, floor(x 0.9)
  };
  const auto profiles = load_builtin_profiles();
  ASSERT_TRUE(profiles.has_value()) << profiles.error().to_string();
  std::size_t gpus = 0;
  for (const DeviceProfile& profile : *profiles) {
    if (profile.is_cpu) {
      EXPECT_EQ(profile.cpu_memory_limit_bytes->value, 17179869184ULL);
      continue;
    }
    ++gpus;
    ASSERT_TRUE(expected_limit.count(profile.name))
        << "no hand-computed limit for " << profile.name;
    EXPECT_EQ(gpu_limit(profile.gpu_spec(0), GpuConfig{}.memory_fraction),
              expected_limit.at(profile.name))
        << profile.name;
    // Every number carries its source.
    for (const auto* field :
         {&profile.cuda_total_bytes, &profile.nvidia_smi_total_mib, &profile.memory_bandwidth_gbps,
          &profile.context_overhead_bytes, &profile.allocation_granularity_bytes}) {
      ASSERT_TRUE(field->has_value()) << profile.name;
      EXPECT_FALSE((*field)->source.empty()) << profile.name;
    }
    ASSERT_TRUE(profile.compute_capability.has_value()) << profile.name;
    // The CUDA total is below the nvidia-smi figure, by 350-900 MiB on these cards.
    const std::uint64_t smi = profile.nvidia_smi_total_mib->value * 1048576ULL;
    EXPECT_LT(profile.cuda_total_bytes->value, smi) << profile.name;
  }
  EXPECT_EQ(gpus, expected_limit.size());
}

TEST(Profiles, NodesOfNAndMixedProfiles) {
  const auto two = make_node("2xrtx5090");
  ASSERT_TRUE(two.has_value()) << two.error().to_string();
  ASSERT_EQ(two->config.gpus.size(), 2U);
  EXPECT_EQ(two->config.gpus[1].id, 1U);
  EXPECT_EQ(two->config.gpus[1].usable_bytes, 25769803776ULL);
  EXPECT_EQ(two->config.cpu_memory_limit, 17179869184ULL);
  const auto mixed = make_node("rtx5090+2xl4+cpu");
  ASSERT_TRUE(mixed.has_value()) << mixed.error().to_string();
  ASSERT_EQ(mixed->config.gpus.size(), 3U);
  EXPECT_EQ(mixed->config.gpus[2].total_bytes, 23570219008ULL);
  const auto eight = make_node("h100-sxm", 8U, 64ULL << 30U);
  ASSERT_TRUE(eight.has_value());
  EXPECT_EQ(eight->config.gpus.size(), 8U);
  EXPECT_EQ(eight->config.cpu_memory_limit, 64ULL << 30U);
  EXPECT_FALSE(make_node("2xrtx5090", 4U).has_value());  // --gpus needs a single profile
  EXPECT_FALSE(make_node("0xrtx5090").has_value());
  EXPECT_FALSE(make_node("").has_value());
  const auto unknown = make_node("2xrtx9999");
  ASSERT_FALSE(unknown.has_value());
  EXPECT_NE(unknown.error().to_string().find("unknown profile 'rtx9999'"), std::string::npos);
  EXPECT_NE(unknown.error().to_string().find("rtx5090"), std::string::npos);  // lists the known
}

TEST(Profiles, MalformedProfileIsRefusedWithFileAndLine) {
  const struct {
    const char* text;
    const char* expected;
  } cases[] = {
      {"name = x\ncuda_total_bytes 5\n", "bad.profile:2: expected 'key = value"},
      {"name = x\ncuda_total_bytes = 5 | guessed | me\n", "bad.profile:2: provenance 'guessed'"},
      {"name = x\ncuda_total_bytes = 5 | measured |\n",
       "bad.profile:2: 'cuda_total_bytes' has no source"},
      {"name = x\ncuda_total_bytes = 5 measured\n",
       "bad.profile:2: expected 'cuda_total_bytes = VALUE"},
      {"name = x\n\ncuda_total_bytes = lots | measured | me\n",
       "bad.profile:3: invalid byte size 'lots'"},
      {"name = x\nspeed = 5 | measured | me\n", "bad.profile:2: unknown field 'speed'"},
      {"name = x\ncuda_total_bytes = 5 | measured | me\nmemory_fraction = 1.5 | estimated | me\n",
       "bad.profile:3: invalid config: invalid fraction '1.5'"},
      {"name = x\ncompute_capability = 9 | published | me\n",
       "bad.profile:2: compute_capability '9'"},
      {"name = x\n# only a comment\n", "bad.profile:2: the profile has no 'cuda_total_bytes'"},
      {"cuda_total_bytes = 5 | measured | me\n", "bad.profile:1: the profile has no 'name'"},
  };
  for (const auto& c : cases) {
    const auto parsed = parse_profile(c.text, "bad.profile");
    ASSERT_FALSE(parsed.has_value()) << c.text;
    EXPECT_EQ(parsed.error().to_string().rfind(c.expected, 0), 0U)
        << parsed.error().to_string() << "\n  does not start with: " << c.expected;
    EXPECT_EQ(parsed.error().to_string().find('\n'), std::string::npos);
  }
}

TEST(Profiles, CustomProfileFromAFile) {
  const auto path = std::filesystem::temp_directory_path() / "memtrack-custom.profile";
  {
    std::ofstream out(path);
    out << "name = custom\ncuda_total_bytes = 1000 | measured | my lab\n"
           "memory_fraction = 1/2 | estimated | policy\n";
  }
  const auto node = make_node("3x" + path.string());
  ASSERT_TRUE(node.has_value()) << node.error().to_string();
  ASSERT_EQ(node->config.gpus.size(), 3U);
  EXPECT_EQ(gpu_limit(node->config.gpus[0], node->config.memory_fraction), 500U);
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace memtrack::sim

namespace memtrack::sim {
namespace {

TEST(Profiles, EveryBuiltInProfileFormatsToTextThatParsesBackToIt) {
  auto profiles = load_builtin_profiles();
  ASSERT_TRUE(profiles) << profiles.error().to_string();
  ASSERT_FALSE(profiles->empty());
  for (const DeviceProfile& profile : *profiles) {
    const std::string text = format_profile(profile, {"written by a test", "second | line"});
    EXPECT_TRUE(text.starts_with("# written by a test\n# second   line\nname = ")) << text;
    auto again = parse_profile(text, profile.file);
    ASSERT_TRUE(again) << again.error().to_string() << "\n" << text;
    EXPECT_EQ(again->name, profile.name);
    EXPECT_EQ(again->display_name, profile.display_name);
    EXPECT_EQ(again->is_cpu, profile.is_cpu);
    EXPECT_EQ(again->cuda_total_bytes, profile.cuda_total_bytes) << profile.name;
    EXPECT_EQ(again->cuda_total_driver, profile.cuda_total_driver) << profile.name;
    EXPECT_EQ(again->cuda_total_precision_bytes, profile.cuda_total_precision_bytes)
        << profile.name;
    EXPECT_EQ(again->cuda_total_variants, profile.cuda_total_variants) << profile.name;
    EXPECT_EQ(again->nvidia_smi_total_mib, profile.nvidia_smi_total_mib) << profile.name;
    EXPECT_EQ(again->compute_capability, profile.compute_capability) << profile.name;
    EXPECT_EQ(again->memory_bandwidth_gbps, profile.memory_bandwidth_gbps) << profile.name;
    EXPECT_EQ(again->memory_fraction, profile.memory_fraction) << profile.name;
    EXPECT_EQ(again->usable_bytes, profile.usable_bytes) << profile.name;
    EXPECT_EQ(again->context_overhead_bytes, profile.context_overhead_bytes) << profile.name;
    EXPECT_EQ(again->allocation_granularity_bytes, profile.allocation_granularity_bytes)
        << profile.name;
    EXPECT_EQ(again->cpu_memory_limit_bytes, profile.cpu_memory_limit_bytes) << profile.name;
  }
}

TEST(Profiles, ABarInASourceCannotBreakTheLine) {
  DeviceProfile profile;
  profile.name = "x";
  profile.cuda_total_bytes = Sourced<std::uint64_t>{1024, Provenance::Measured, "a | b\nc #3"};
  auto again = parse_profile(format_profile(profile), "x.profile");
  ASSERT_TRUE(again) << again.error().to_string();
  EXPECT_EQ(again->cuda_total_bytes->source, "a   b c  3");  // '#' would start a comment
  EXPECT_EQ(again->cuda_total_bytes->provenance, Provenance::Measured);
}

}  // namespace
}  // namespace memtrack::sim
