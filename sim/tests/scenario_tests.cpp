#include <memtrack/sim/scenario.hpp>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace memtrack::sim {
namespace {

Scenario sample() {
  Scenario scenario;
  scenario.config.gpus = {
      {.id = 7, .total_bytes = 1000, .usable_bytes = 900, .name = "RTX 5090 (test)"},
      {.id = 0, .total_bytes = 50, .memory_fraction = Fraction::parse("1/3").value()}};
  scenario.config.memory_fraction = Fraction::parse("0.925").value();
  scenario.config.cpu_memory_limit = 12345;
  scenario.operations = {Operation::allocate(Auto{}, 10), Operation::deallocate(Gpu{7}, 3),
                         Operation::reset_peak_all(), Operation::reset_peak(Cpu{})};
  return scenario;
}

TEST(Scenario, TextRoundTrips) {
  const Scenario scenario = sample();
  const auto parsed = parse_scenario(to_text(scenario), "sample");
  ASSERT_TRUE(parsed.has_value()) << parsed.error().to_string();
  EXPECT_EQ(*parsed, scenario);
}

TEST(Scenario, CommentsAndBlankLinesAreIgnored) {
  const auto parsed = parse_scenario(
      "# a regression\nmemtrack-scenario 1\n\ngpu 0 total=1GiB  # one GPU\nalloc gpu:0 1\n", "x");
  ASSERT_TRUE(parsed.has_value()) << parsed.error().to_string();
  EXPECT_EQ(parsed->config.gpus.at(0).total_bytes, 1073741824U);
  EXPECT_EQ(parsed->operations.size(), 1U);
  // Defaults apply where the file is silent.
  EXPECT_EQ(parsed->config.cpu_memory_limit, GpuConfig::default_cpu_memory_limit);
}

TEST(Scenario, ErrorsNameFileAndLine) {
  const struct {
    const char* text;
    const char* expected;
  } cases[] = {
      {"", "f.scenario:1: empty file"},
      {"memtrack-scenario 2\n", "f.scenario:1: expected the header"},
      {"memtrack-scenario 1\ngpu x total=1\n", "f.scenario:2: expected 'gpu ID"},
      {"memtrack-scenario 1\ngpu 0\n", "f.scenario:2: gpu 0 has no total="},
      {"memtrack-scenario 1\ngpu 0 total=1 speed=9\n", "f.scenario:2: unknown gpu field"},
      {"memtrack-scenario 1\nmemory_fraction 1.5\n",
       "f.scenario:2: invalid config: invalid fraction"},
      {"memtrack-scenario 1\n\nalloc gpu:0\n", "f.scenario:3: invalid operation"},
      {"memtrack-scenario 1\nalloc cpu 1\ngpu 0 total=1\n", "f.scenario:3: gpu lines must come"},
  };
  for (const auto& c : cases) {
    const auto parsed = parse_scenario(c.text, "f.scenario");
    ASSERT_FALSE(parsed.has_value()) << c.text;
    EXPECT_EQ(parsed.error().to_string().rfind(c.expected, 0), 0U)
        << parsed.error().to_string() << " does not start with " << c.expected;
  }
}

TEST(Scenario, SaveWritesAtomicallyAndLoadReadsBack) {
  const auto folder = std::filesystem::temp_directory_path() / "memtrack-scenario-test";
  std::filesystem::create_directories(folder);
  const auto path = folder / "one.scenario";
  ASSERT_TRUE(save_scenario(path, sample()));
  EXPECT_FALSE(std::filesystem::exists(path.string() + ".tmp"));
  const auto loaded = load_scenario(path);
  ASSERT_TRUE(loaded.has_value()) << loaded.error().to_string();
  EXPECT_EQ(*loaded, sample());
  const auto missing = load_scenario(folder / "missing.scenario");
  ASSERT_FALSE(missing.has_value());
  EXPECT_NE(missing.error().to_string().find("missing.scenario"), std::string::npos);
  std::filesystem::remove_all(folder);
}

}  // namespace
}  // namespace memtrack::sim
