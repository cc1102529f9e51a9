// The CUDA total's variance across drivers: where each built-in figure comes from, the
// cuda_total_driver / cuda_total_precision_bytes / cuda_total_variants fields, and the lowest and
// highest totals a budget is replayed at.
#include <memtrack/sim/profile.hpp>
#include <memtrack/units.hpp>

#include <gtest/gtest.h>

#include <cctype>
#include <limits>

namespace memtrack::sim {
namespace {

using namespace memtrack::literals;

/// A source that points at a project issue ("issue #4", "#12", "memtrack issue") instead of the
/// program output the figure came from. A repository's issue URL (".../issues/311") is a place.
bool is_issue_reference(const std::string& source) {
  // Written out rather than with std::regex (gcc 12 warns inside <regex> under ASan): the pattern
  // is (^|[^/\w])(issue\s*#?\s*\d+|#\d+) or "memtrack issue", ignoring case.
  std::string text;
  for (const char c : source)
    text += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (text.find("memtrack issue") != std::string::npos) return true;
  const auto word = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; };
  const auto space = [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; };
  const auto digit = [](char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; };
  for (std::size_t at = 0; at < text.size(); ++at) {
    if (at > 0 && (text[at - 1] == '/' || word(text[at - 1]))) continue;
    std::size_t i = at;
    if (text.compare(i, 5, "issue") == 0) {
      i += 5;
      while (i < text.size() && space(text[i]))
        ++i;
      if (i < text.size() && text[i] == '#') ++i;
      while (i < text.size() && space(text[i]))
        ++i;
      if (i < text.size() && digit(text[i])) return true;
    } else if (text[i] == '#' && i + 1 < text.size() && digit(text[i + 1])) {
      return true;
    }
  }
  return false;
}

TEST(ProfileSources, TheIssueReferenceCheckRecognisesWhatItMustRefuse) {
  EXPECT_TRUE(is_issue_reference("figure given in memtrack issue"));
  EXPECT_TRUE(is_issue_reference("about 79.2 GiB (issue #4)"));
  EXPECT_TRUE(is_issue_reference("see #12"));
  EXPECT_TRUE(is_issue_reference("Issue 7"));
  EXPECT_FALSE(
      is_issue_reference("nvidia-smi in https://github.com/NVIDIA/cuda-samples/issues/311"));
  EXPECT_FALSE(is_issue_reference("github.com/thamada/gls gls/H200_deviceQuery.py"));
}

TEST(ProfileSources, EveryBuiltInFigureNamesWhereItCameFromAndNoIssue) {
  const auto profiles = load_builtin_profiles();
  ASSERT_TRUE(profiles) << profiles.error().to_string();
  std::size_t gpus = 0;
  for (const DeviceProfile& profile : *profiles) {
    std::vector<std::pair<std::string, std::string>> sources;  // field, source
    const auto add = [&](const char* key, const auto& field) {
      if (field) sources.emplace_back(key, field->source);
    };
    add("cuda_total_bytes", profile.cuda_total_bytes);
    add("cuda_total_precision_bytes", profile.cuda_total_precision_bytes);
    add("cuda_total_variants", profile.cuda_total_variants);
    add("nvidia_smi_total_mib", profile.nvidia_smi_total_mib);
    add("compute_capability", profile.compute_capability);
    add("memory_bandwidth_gbps", profile.memory_bandwidth_gbps);
    add("memory_fraction", profile.memory_fraction);
    add("usable_bytes", profile.usable_bytes);
    add("context_overhead_bytes", profile.context_overhead_bytes);
    add("allocation_granularity_bytes", profile.allocation_granularity_bytes);
    add("cpu_memory_limit_bytes", profile.cpu_memory_limit_bytes);
    for (const auto& [key, source] : sources) {
      EXPECT_FALSE(source.empty()) << profile.name << " " << key;
      EXPECT_FALSE(is_issue_reference(source)) << profile.name << " " << key << ": " << source;
    }
    if (profile.is_cpu) continue;
    ++gpus;
    // The CUDA total is a figure from program output, never an estimate, and says which program.
    const auto& total = *profile.cuda_total_bytes;
    EXPECT_NE(total.provenance, Provenance::Estimated) << profile.name;
    const bool names_output = total.source.find("deviceQuery") != std::string::npos ||
                              total.source.find("PyTorch") != std::string::npos ||
                              total.source.find("nvaccelinfo") != std::string::npos ||
                              total.source.find("cudaMemGetInfo") != std::string::npos;
    EXPECT_TRUE(names_output) << profile.name << ": " << total.source;
    // A figure without a driver is one known only roughly (PyTorch's whole MiB).
    EXPECT_TRUE(!profile.cuda_total_driver.empty() || profile.cuda_total_precision_bytes)
        << profile.name << " says neither the driver nor the precision of its CUDA total";
  }
  EXPECT_GE(gpus, 17U);
}

// The figures of the issue's table, by hand: the profile's own, then the lowest and highest.
TEST(ProfileVariance, BuiltInRangesMatchThePublishedFigures) {
  const struct {
    const char* name;
    std::uint64_t total;
    std::uint64_t lowest;
    std::uint64_t highest;
  } cases[] = {
      {"rtx4090", 25386352640ULL, 24146083840ULL, 25756696576ULL},  // Windows .. CUDA 12.1
      {"rtx5090", 33680457728ULL, 33660534784ULL, 33680457728ULL},
      {"rtx3090", 25327697920ULL, 25327697920ULL, 25447170048ULL},
      {"l4", 23570219008ULL, 23570219008ULL, 23612293120ULL},
      {"h100-sxm", 85045477376ULL, 85017755648ULL, 85045477376ULL},
      // 182631 MiB - 1 MiB .. 182642 MiB + 1 MiB
      {"b200", 191502483456ULL, 191501434880ULL, 191515066368ULL},
      {"h20", 102010716160ULL, 102009667584ULL, 102011764736ULL},    // 97285 MiB ± 1 MiB
      {"gb200", 197900894208ULL, 197894602752ULL, 197907185664ULL},  // 188733 MiB ± 6 MiB
  };
  for (const auto& c : cases) {
    const auto profile = find_profile(c.name);
    ASSERT_TRUE(profile) << profile.error().to_string();
    EXPECT_EQ(profile->cuda_total_bytes->value, c.total) << c.name;
    const TotalRange range = cuda_total_range(*profile);
    EXPECT_EQ(range.lowest.bytes, c.lowest) << c.name;
    EXPECT_EQ(range.highest.bytes, c.highest) << c.name;
  }
  const auto rtx4090 = find_profile("rtx4090");
  ASSERT_TRUE(rtx4090);
  EXPECT_EQ(rtx4090->cuda_total_driver, "driver 550.127.05");
  EXPECT_EQ(cuda_total_range(*rtx4090).lowest.figure.driver, "Windows driver");
  EXPECT_EQ(cuda_total_range(*rtx4090).highest.figure.driver, "CUDA 12.1 driver");
}

TEST(ProfileVariance, AProfileWithoutTheNewFieldsHasOneExactFigure) {
  // A profile written before drivers were recorded still reads, with one figure known exactly.
  const auto old =
      parse_profile("name = mine\ncuda_total_bytes = 24GiB | measured | my lab\n", "mine.profile");
  ASSERT_TRUE(old) << old.error().to_string();
  EXPECT_TRUE(old->cuda_total_driver.empty());
  EXPECT_FALSE(old->cuda_total_precision_bytes);
  EXPECT_FALSE(old->cuda_total_variants);
  const auto figures = cuda_total_figures(*old);
  ASSERT_EQ(figures.size(), 1U);
  EXPECT_EQ(figures[0], (TotalFigure{24_GiB, 0, ""}));
  const TotalRange range = cuda_total_range(*old);
  EXPECT_EQ(range.lowest.bytes, 24_GiB);
  EXPECT_EQ(range.highest.bytes, 24_GiB);
  EXPECT_EQ(describe_figure(range.lowest.figure), "an unrecorded driver (25,769,803,776 B)");
}

constexpr const char* new_fields_profile =
    "name = card\n"
    "cuda_total_bytes = 1000 | published | deviceQuery in github.com/o/r dq.txt\n"
    "cuda_total_driver = driver 550.127.05\n"
    "cuda_total_precision_bytes = 10 | published | printed in tens\n"
    "cuda_total_variants = 900 @ CUDA 13.0 driver; 1100 ~ 50 @ Windows driver | published | "
    "github.com/o/r more.txt\n";

TEST(ProfileVariance, NewFieldsParse) {
  const auto profile = parse_profile(new_fields_profile, "card.profile");
  ASSERT_TRUE(profile) << profile.error().to_string();
  EXPECT_EQ(profile->cuda_total_driver, "driver 550.127.05");
  ASSERT_TRUE(profile->cuda_total_precision_bytes);
  EXPECT_EQ(profile->cuda_total_precision_bytes->value, 10U);
  ASSERT_TRUE(profile->cuda_total_variants);
  EXPECT_EQ(profile->cuda_total_variants->source, "github.com/o/r more.txt");
  const std::vector<TotalFigure> expected_variants{{900, 0, "CUDA 13.0 driver"},
                                                   {1100, 50, "Windows driver"}};
  EXPECT_EQ(profile->cuda_total_variants->value, expected_variants);
  const auto figures = cuda_total_figures(*profile);
  ASSERT_EQ(figures.size(), 3U);
  EXPECT_EQ(figures[0], (TotalFigure{1000, 10, "driver 550.127.05"}));
  // Lowest: 900 exactly (1000 - 10 = 990 and 1100 - 50 = 1050 are higher); highest 1100 + 50.
  const TotalRange range = cuda_total_range(*profile);
  EXPECT_EQ(range.lowest.bytes, 900U);
  EXPECT_EQ(range.lowest.figure.driver, "CUDA 13.0 driver");
  EXPECT_EQ(range.highest.bytes, 1150U);
  EXPECT_EQ(range.highest.figure.driver, "Windows driver");
}

TEST(ProfileVariance, NewFieldsRoundTripThroughFormatProfile) {
  const auto profile = parse_profile(new_fields_profile, "card.profile");
  ASSERT_TRUE(profile) << profile.error().to_string();
  const std::string text = format_profile(*profile);
  EXPECT_NE(text.find("cuda_total_driver = driver 550.127.05\n"), std::string::npos) << text;
  EXPECT_NE(text.find("cuda_total_variants = 900 @ CUDA 13.0 driver; 1100 ~ 50 @ Windows driver "
                      "| published | github.com/o/r more.txt\n"),
            std::string::npos)
      << text;
  const auto again = parse_profile(text, "again.profile");
  ASSERT_TRUE(again) << again.error().to_string() << "\n" << text;
  EXPECT_EQ(again->cuda_total_bytes, profile->cuda_total_bytes);
  EXPECT_EQ(again->cuda_total_driver, profile->cuda_total_driver);
  EXPECT_EQ(again->cuda_total_precision_bytes, profile->cuda_total_precision_bytes);
  EXPECT_EQ(again->cuda_total_variants, profile->cuda_total_variants);
}

TEST(ProfileVariance, ADriverNameCannotBreakTheVariantList) {
  // What probe may write: a driver with the separators of the format in it.
  DeviceProfile profile;
  profile.name = "x";
  profile.cuda_total_bytes = Sourced<std::uint64_t>{1024, Provenance::Measured, "probe"};
  profile.cuda_total_driver = "driver 580.1 #2";
  profile.cuda_total_variants =
      Sourced<std::vector<TotalFigure>>{{{1000, 0, "a; b @ c | d"}}, Provenance::Published, "here"};
  const auto again = parse_profile(format_profile(profile), "x.profile");
  ASSERT_TRUE(again) << again.error().to_string() << "\n" << format_profile(profile);
  EXPECT_EQ(again->cuda_total_driver, "driver 580.1  2");
  ASSERT_TRUE(again->cuda_total_variants);
  ASSERT_EQ(again->cuda_total_variants->value.size(), 1U);
  EXPECT_EQ(again->cuda_total_variants->value[0], (TotalFigure{1000, 0, "a  b   c   d"}));
}

TEST(ProfileVariance, ADuplicateKeyIsRefusedWithBothLines) {
  const struct {
    const char* text;
    const char* expected;
  } cases[] = {
      {"name = x\ncuda_total_bytes = 5 | measured | a\n\ncuda_total_bytes = 6 | measured | b\n",
       "dup.profile:4: 'cuda_total_bytes' given twice (first on line 2)"},
      {"name = x\nname = y\ncuda_total_bytes = 5 | measured | a\n",
       "dup.profile:2: 'name' given twice (first on line 1)"},
      {"name = x\ncuda_total_bytes = 5 | measured | a\ncuda_total_driver = 550\n"
       "cuda_total_driver = 560\n",
       "dup.profile:4: 'cuda_total_driver' given twice (first on line 3)"},
      {"name = x\ncuda_total_bytes = 5 | measured | a\ncuda_total_variants = 4 @ a | published | "
       "s\n# a comment\ncuda_total_variants = 6 @ b | published | s\n",
       "dup.profile:5: 'cuda_total_variants' given twice (first on line 3)"},
  };
  for (const auto& c : cases) {
    const auto parsed = parse_profile(c.text, "dup.profile");
    ASSERT_FALSE(parsed.has_value()) << c.text;
    EXPECT_EQ(parsed.error().to_string().rfind(c.expected, 0), 0U)
        << parsed.error().to_string() << "\n  does not start with: " << c.expected;
  }
}

TEST(ProfileVariance, MalformedVariantsAndPrecisionsAreRefusedWithFileAndLine) {
  const std::string head = "name = x\ncuda_total_bytes = 1000 | measured | a\n";
  const struct {
    const char* line;
    const char* expected;
  } cases[] = {
      {"cuda_total_variants = 900 | published | s",
       "v.profile:3: cuda_total_variants: variant '900': expected 'BYTES [~ PRECISION] @ DRIVER'"},
      {"cuda_total_variants = 900 @ | published | s",
       "v.profile:3: cuda_total_variants: variant '900 @': names no driver after '@'"},
      {"cuda_total_variants = 900 @ a @ b | published | s",
       "v.profile:3: cuda_total_variants: variant '900 @ a @ b': has a second '@'"},
      {"cuda_total_variants = lots @ a | published | s",
       "v.profile:3: cuda_total_variants: variant 'lots @ a': invalid byte size 'lots'"},
      {"cuda_total_variants = 0 @ a | published | s",
       "v.profile:3: cuda_total_variants: variant '0 @ a': a CUDA total of 0 bytes"},
      {"cuda_total_variants = 900 @ a;; 800 @ b | published | s",
       "v.profile:3: cuda_total_variants: variant 2 is empty"},
      {"cuda_total_variants = 900 @ a; | published | s",
       "v.profile:3: cuda_total_variants: variant 2 is empty"},
      {"cuda_total_variants =  | published | s",
       "v.profile:3: cuda_total_variants: expected one or more 'BYTES [~ PRECISION] @ DRIVER'"},
      {"cuda_total_variants = 900 ~ 0 @ a | published | s",
       "v.profile:3: cuda_total_variants: variant '900 ~ 0 @ a': the precision after '~' must be"},
      {"cuda_total_variants = 900 ~ 900 @ a | published | s",
       "v.profile:3: cuda_total_variants: variant '900 ~ 900 @ a': the precision after '~' must "
       "be"},
      {"cuda_total_variants = 900 ~ x @ a | published | s",
       "v.profile:3: cuda_total_variants: variant '900 ~ x @ a': invalid byte size 'x'"},
      {"cuda_total_variants = 900 @ a | guessed | s", "v.profile:3: provenance 'guessed'"},
      {"cuda_total_variants = 900 @ a | published |",
       "v.profile:3: 'cuda_total_variants' has no source"},
      {"cuda_total_precision_bytes = 0 | published | s",
       "v.profile:3: cuda_total_precision_bytes is 0"},
      {"cuda_total_precision_bytes = 1000 | published | s",
       "v.profile: cuda_total_precision_bytes is not less than cuda_total_bytes"},
      {"cuda_total_driver =", "v.profile:3: 'cuda_total_driver' needs a value"},
  };
  for (const auto& c : cases) {
    const std::string text = head + c.line + "\n";
    const auto parsed = parse_profile(text, "v.profile");
    ASSERT_FALSE(parsed.has_value()) << text;
    EXPECT_EQ(parsed.error().to_string().rfind(c.expected, 0), 0U)
        << parsed.error().to_string() << "\n  does not start with: " << c.expected;
    EXPECT_EQ(parsed.error().to_string().find('\n'), std::string::npos);
  }
  // A precision just under the total is accepted.
  EXPECT_TRUE(parse_profile(head + "cuda_total_precision_bytes = 999 | published | s\n", "ok"));
  EXPECT_TRUE(parse_profile(head + "cuda_total_variants = 2 ~ 1 @ a | published | s\n", "ok"));
}

TEST(ProfileVariance, RangeSaturatesAndKeepsTheFirstOfEqualFigures) {
  DeviceProfile profile;
  profile.name = "edge";
  const std::uint64_t max = std::numeric_limits<std::uint64_t>::max();
  profile.cuda_total_bytes = Sourced<std::uint64_t>{100, Provenance::Measured, "m"};
  profile.cuda_total_driver = "own";
  profile.cuda_total_variants = Sourced<std::vector<TotalFigure>>{
      {{5, 10, "tiny"}, {max - 1, 3, "huge"}, {100, 0, "same as own"}}, Provenance::Published, "s"};
  const TotalRange range = cuda_total_range(profile);
  EXPECT_EQ(range.lowest.bytes, 1U);  // 5 - 10 stops at 1 byte
  EXPECT_EQ(range.lowest.figure.driver, "tiny");
  EXPECT_EQ(range.highest.bytes, max);  // (2^64 - 2) + 3 stops at 2^64 - 1
  EXPECT_EQ(range.highest.figure.driver, "huge");

  DeviceProfile ties = profile;
  ties.cuda_total_variants->value = {{100, 0, "same as own"}};
  EXPECT_EQ(cuda_total_range(ties).lowest.figure.driver, "own");
  EXPECT_EQ(cuda_total_range(ties).highest.figure.driver, "own");
}

TEST(ProfileVariance, ConfigAtTheLowestAndHighestTotal) {
  const auto node = make_node("2xrtx4090");
  ASSERT_TRUE(node) << node.error().to_string();
  const GpuConfig low = config_at_total(node->config, node->gpus, TotalEnd::Lowest);
  const GpuConfig high = config_at_total(node->config, node->gpus, TotalEnd::Highest);
  ASSERT_EQ(low.gpus.size(), 2U);
  for (std::size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(low.gpus[i].total_bytes, 24146083840ULL);
    EXPECT_EQ(high.gpus[i].total_bytes, 25756696576ULL);
    EXPECT_EQ(gpu_limit(low.gpus[i], low.memory_fraction), 21731475456ULL);    // x 0.9 exactly
    EXPECT_EQ(gpu_limit(high.gpus[i], high.memory_fraction), 23181026918ULL);  // floor(.4)
  }
  // One profile stands behind every GPU; the usable cap still binds (rtx5090: 24 GiB).
  const auto four = make_node("rtx5090", 4U);
  ASSERT_TRUE(four) << four.error().to_string();
  const auto rtx5090 = find_profile("rtx5090");
  ASSERT_TRUE(rtx5090);
  const GpuConfig capped = config_at_total(four->config, {*rtx5090}, TotalEnd::Lowest);
  ASSERT_EQ(capped.gpus.size(), 4U);
  for (const GpuSpec& gpu : capped.gpus) {
    EXPECT_EQ(gpu.total_bytes, 33660534784ULL);
    EXPECT_EQ(gpu_limit(gpu, capped.memory_fraction), 24_GiB);
  }
  // A mixed node: each GPU its own profile's lowest; a GPU with no profile keeps its total.
  const auto mixed = make_node("rtx4090+l4");
  ASSERT_TRUE(mixed);
  const GpuConfig mixed_low = config_at_total(mixed->config, mixed->gpus, TotalEnd::Lowest);
  EXPECT_EQ(mixed_low.gpus[0].total_bytes, 24146083840ULL);
  EXPECT_EQ(mixed_low.gpus[1].total_bytes, 23570219008ULL);
  GpuConfig three = mixed->config;
  three.gpus.push_back(three.gpus[1]);
  three.gpus[2].total_bytes = 7;
  EXPECT_EQ(config_at_total(three, mixed->gpus, TotalEnd::Highest).gpus[2].total_bytes, 7U);
}

TEST(ProfileVariance, FiguresAreWrittenForPeople) {
  EXPECT_EQ(group_digits(0), "0");
  EXPECT_EQ(group_digits(999), "999");
  EXPECT_EQ(group_digits(1000), "1,000");
  EXPECT_EQ(group_digits(25386352640ULL), "25,386,352,640");
  EXPECT_EQ(group_digits(std::numeric_limits<std::uint64_t>::max()), "18,446,744,073,709,551,615");
  EXPECT_EQ(format_precision(1_MiB), "1 MiB");
  EXPECT_EQ(format_precision(6_MiB), "6 MiB");
  EXPECT_EQ(format_precision(1_MiB + 1), "1048577 B");
  EXPECT_EQ(describe_figure({25386352640ULL, 0, "driver 550.127.05"}),
            "driver 550.127.05 (25,386,352,640 B)");
  EXPECT_EQ(describe_figure({191502483456ULL, 1_MiB, ""}),
            "an unrecorded driver (191,502,483,456 B ± 1 MiB)");
}

}  // namespace
}  // namespace memtrack::sim
