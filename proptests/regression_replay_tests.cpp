// Replays every regression under proptests/regressions/ (each one once broke something): a trace
// of the operations with the reference model's outcomes, replayed through memtrack::traces in
// lockstep. And the regression path itself: what save_regression writes replays to the outcomes
// it says, and a trace whose recorded outcome is wrong fails at that line.
#include "harness.hpp"

#include <memtrack/traces/operations.hpp>
#include <memtrack/traces/reader.hpp>
#include <memtrack/traces/replay.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>
#include <vector>

namespace memtrack::proptest {
namespace {

using sim::Operation;

struct Replayed {
  traces::ReplaySummary summary;
  std::vector<std::optional<ErrorKind>> errors;  ///< each operation's outcome, in order
  std::vector<std::optional<DevicePlacement>> resolved;
  std::map<DevicePlacement, std::uint64_t> allocated;  ///< at the end
};

/// Replays a trace on its own configuration, in lockstep, as `memtrack replay` does.
Replayed replay(const std::filesystem::path& path) {
  Replayed replayed;
  auto reader = traces::TraceReader::open(path);
  if (!reader) {
    ADD_FAILURE() << reader.error().to_string();
    return replayed;
  }
  if (!reader->header().config) {
    ADD_FAILURE() << path << ": a regression declares its configuration";
    return replayed;
  }
  auto replayer = traces::Replayer::create(*reader->header().config, {});
  if (!replayer) {
    ADD_FAILURE() << path << ": " << replayer.error().to_string();
    return replayed;
  }
  auto ok = replayer->replay(*reader, {}, [&](const traces::ReplayStep& step) {
    replayed.errors.push_back(step.outcome.ok ? std::nullopt
                                              : std::optional(step.outcome.error->kind));
    replayed.resolved.push_back(step.outcome.resolved);
  });
  if (!ok) ADD_FAILURE() << ok.error().to_string();
  replayed.summary = replayer->summary();
  for (const DevicePlacement device : replayer->devices())
    replayed.allocated[device] = replayer->tracker().allocated(device);
  return replayed;
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST(Regressions, EverySavedRegressionReplaysToItsOutcomes) {
  const auto dir = regressions_dir();
  ASSERT_TRUE(std::filesystem::is_directory(dir)) << dir << " is missing";
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() == ".trace") files.push_back(entry.path());
    EXPECT_NE(entry.path().extension(), ".scenario")
        << entry.path() << ": scenario files are gone; a regression is a trace (its lines are "
        << "trace events: docs/trace-format.md, \"The one operation format\")";
  }
  std::sort(files.begin(), files.end());
  ASSERT_FALSE(files.empty()) << "no .trace files in " << dir;
  for (const auto& file : files) {
    const Replayed replayed = replay(file);
    const traces::ReplaySummary& s = replayed.summary;
    EXPECT_FALSE(s.failure.has_value()) << file.string() << ":\n"
                                        << (s.failure ? s.failure->to_string() : "");
    // Every line an operation, every one applied (none skipped as the recording's mistake).
    EXPECT_EQ(s.operations, s.events) << file;
    EXPECT_EQ(s.inconsistencies, 0U) << file;
    EXPECT_EQ(s.frees_of_refused, 0U) << file;
    EXPECT_EQ(s.unlanded, 0U) << file;
  }
  std::cout << files.size() << " regression traces replayed\n";
}

// A config of two GPUs with sparse ids and a usable cap: limits gpu:0 100, gpu:2 200, cpu 50.
sim::Scenario every_outcome() {
  sim::Scenario scenario;
  scenario.config.memory_fraction = Fraction::parse("1").value();
  scenario.config.cpu_memory_limit = 50;
  scenario.config.gpus = {GpuSpec{0, 100}, GpuSpec{2, 300, 200}};
  scenario.operations = {
      Operation::allocate(Gpu{0}, 100),    // ok
      Operation::allocate(Gpu{0}, 1),      // OutOfMemory
      Operation::allocate(Auto{}, 150),    // gpu:2
      Operation::allocate(Auto{}, 50),     // gpu:2, exactly full
      Operation::allocate(Auto{}, 30),     // cpu
      Operation::allocate(Auto{}, 30),     // OutOfMemory (20 left on the CPU)
      Operation::allocate(Gpu{9}, 1),      // UnknownDevice
      Operation::deallocate(Gpu{0}, 101),  // InvalidDeallocation
      Operation::deallocate(Auto{}, 1),    // AmbiguousDevice
      Operation::deallocate(Gpu{9}, 1),    // UnknownDevice
      Operation::reset_peak(Gpu{9}),       // UnknownDevice
      Operation::reset_peak(Auto{}),       // AmbiguousDevice
      Operation::deallocate(Gpu{0}, 100),  // ok
      Operation::reset_peak(Gpu{0}),       // ok
      Operation::reset_peak_all(),         // ok
  };
  return scenario;
}

TEST(Regressions, ASavedRegressionIsATraceThatReplaysToTheSameOutcomes) {
  const auto scratch = std::filesystem::temp_directory_path() / "memtrack-regression-trace-test";
  std::filesystem::remove_all(scratch);
  ::setenv("MEMTRACK_REGRESSIONS_DIR", scratch.c_str(), 1);
  const auto path = save_regression("prop", every_outcome());
  ::unsetenv("MEMTRACK_REGRESSIONS_DIR");
  EXPECT_EQ(path.parent_path(), scratch);
  EXPECT_TRUE(path.filename().string().starts_with("prop-")) << path;
  EXPECT_EQ(path.extension(), ".trace");
  EXPECT_EQ(path.filename().string().size(), std::string("prop-0123456789abcdef.trace").size());
  // The outcomes written are the rules' (worked out by hand above), each refusal an event.
  EXPECT_EQ(read_file(path),
            "memtrack-trace 1\n"
            "source property-test regression: prop\n"
            "memory_fraction 1\n"
            "cpu_memory_limit 50\n"
            "gpu 0 total=100\n"
            "gpu 2 total=300 usable=200\n"
            "events\n"
            "alloc gpu:0 100\n"
            "alloc gpu:0 1 result=OutOfMemory\n"
            "alloc auto 150 resolved=gpu:2\n"
            "alloc auto 50 resolved=gpu:2\n"
            "alloc auto 30 resolved=cpu\n"
            "alloc auto 30 result=OutOfMemory\n"
            "alloc gpu:9 1 result=UnknownDevice\n"
            "free gpu:0 101 result=InvalidDeallocation\n"
            "free auto 1 result=AmbiguousDevice\n"
            "free gpu:9 1 result=UnknownDevice\n"
            "reset_peak gpu:9 result=UnknownDevice\n"
            "reset_peak auto result=AmbiguousDevice\n"
            "free gpu:0 100\n"
            "reset_peak gpu:0\n"
            "reset_peak\n"
            "end 15\n");
  // Replayed, every operation is applied and gets the outcome written.
  const Replayed replayed = replay(path);
  const traces::ReplaySummary& s = replayed.summary;
  EXPECT_FALSE(s.failure.has_value()) << (s.failure ? s.failure->to_string() : "");
  EXPECT_EQ(s.operations, 15U);
  EXPECT_EQ(s.ok, 7U);
  EXPECT_EQ(s.refused, 2U);
  EXPECT_EQ(s.other_errors, 6U);
  EXPECT_EQ(s.inconsistencies, 0U);
  using E = ErrorKind;
  const std::vector<std::optional<ErrorKind>> errors = {
      std::nullopt,       E::OutOfMemory,   std::nullopt,     std::nullopt,
      std::nullopt,       E::OutOfMemory,   E::UnknownDevice, E::InvalidDeallocation,
      E::AmbiguousDevice, E::UnknownDevice, E::UnknownDevice, E::AmbiguousDevice,
      std::nullopt,       std::nullopt,     std::nullopt};
  EXPECT_EQ(replayed.errors, errors);
  ASSERT_EQ(replayed.resolved.size(), 15U);
  EXPECT_EQ(replayed.resolved[2], DevicePlacement(Gpu{2}));
  EXPECT_EQ(replayed.resolved[4], DevicePlacement(Cpu{}));
  EXPECT_EQ(replayed.allocated.at(Gpu{0}), 0U);
  EXPECT_EQ(replayed.allocated.at(Gpu{2}), 200U);
  EXPECT_EQ(replayed.allocated.at(Cpu{}), 30U);
  std::filesystem::remove_all(scratch);
}

TEST(Regressions, APlantedWrongOutcomeFailsAtItsLine) {
  const auto dir = std::filesystem::temp_directory_path() / "memtrack-planted-trace-test";
  std::filesystem::create_directories(dir);
  const std::string head =
      "memtrack-trace 1\nmemory_fraction 1\ncpu_memory_limit 10\ngpu 0 total=100\nevents\n";
  const struct {
    const char* name;
    std::string events;
    std::uint64_t event;  ///< the failing one, 1-based
    const char* what;
  } cases[] = {
      // The second allocation cannot fit: a tracker that made it would be wrong.
      {"alloc", "alloc gpu:0 60\nalloc gpu:0 60\nend 2\n", 2, "the recording did it"},
      {"oom", "alloc gpu:0 100 result=OutOfMemory\nend 1\n", 1, "refused it (OutOfMemory)"},
      {"free", "free gpu:0 1\nend 1\n", 0, ""},  // the recording's mistake: not applied
      {"reset_peak", "reset_peak gpu:0 result=UnknownDevice\nend 1\n", 1,
       "refused it (UnknownDevice)"},
      {"reset_peak_unknown", "reset_peak gpu:4\nend 1\n", 1, "the recording did it"},
      {"placed", "alloc auto 10 resolved=cpu\nend 1\n", 1, "placed it on cpu"},
  };
  for (const auto& c : cases) {
    const auto path = dir / (std::string(c.name) + ".trace");
    std::ofstream(path) << head << c.events;
    const Replayed replayed = replay(path);
    const auto& failure = replayed.summary.failure;
    if (c.event == 0) {
      EXPECT_FALSE(failure.has_value()) << c.name;
      EXPECT_EQ(replayed.summary.inconsistencies, 1U) << c.name;
      continue;
    }
    ASSERT_TRUE(failure.has_value()) << c.name;
    EXPECT_EQ(failure->kind, traces::ReplayFailure::Kind::Outcome) << c.name;
    EXPECT_EQ(failure->at.event, c.event) << c.name;
    EXPECT_EQ(failure->at.line, 5 + c.event) << c.name;
    EXPECT_NE(failure->what.find(c.what), std::string::npos) << c.name << ": " << failure->what;
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace memtrack::proptest
