// Importers on small recordings built here, each checked against numbers worked out by hand.
#include "pickle_writer.hpp"
#include "test_support.hpp"

#include <memtrack/traces/importers.hpp>
#include <memtrack/traces/replay.hpp>

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>
#include <sqlite3.h>

#include <cstdio>
#include <cstring>

namespace memtrack::traces {
namespace {

using testing::pickle_of;
using testing::Py;
using testing::PyDict;
using testing::PyList;
using testing::ScratchDir;

/// Imports, then replays on `config` (or the recording's devices); @return the replayer
Replayer import_and_replay(const MemorySink& sink, const GpuConfig& config) {
  auto reader = TraceReader::from_source(
      memory_source(format_trace(sink.recorded_header(), sink.events()), "imported"), "imported");
  EXPECT_TRUE(reader) << reader.error().to_string();
  auto replayer = Replayer::create(config, {});
  EXPECT_TRUE(replayer);
  auto ok = replayer->replay(*reader, {});
  EXPECT_TRUE(ok) << ok.error().to_string();
  EXPECT_FALSE(replayer->summary().failure) << replayer->summary().failure->to_string();
  return std::move(*replayer);
}

GpuConfig one_gpu(std::uint64_t total = 1ULL << 40U) {
  GpuConfig config;
  config.memory_fraction = Fraction::of(1, 1).value();
  config.gpus.push_back({0, total});
  return config;
}

std::size_t count(const std::vector<TraceEvent>& events, TraceEvent::Kind kind) {
  return static_cast<std::size_t>(std::count_if(
      events.begin(), events.end(), [kind](const TraceEvent& e) { return e.kind == kind; }));
}

// ---- PyTorch snapshots ----

PyDict block(std::int64_t address, std::int64_t size, std::int64_t requested, const char* state) {
  return PyDict{{"address", address},
                {"size", size},
                {"requested_size", requested},
                {"state", state},
                {"frames", PyList{}}};
}

PyDict entry(const char* action, std::int64_t addr, std::int64_t size, std::int64_t time) {
  return PyDict{{"action", action}, {"addr", addr},    {"size", size},
                {"stream", 0},      {"time_us", time}, {"frames", PyList{}}};
}

TEST(PytorchSnapshot, TheBaselineIsReconstructedWhenTheRingStartedMidRun) {
  // At snapshot time: blocks at 0x1000 (100 requested, active, from before the trace), 0x2000
  // (active, allocated in the trace), 0x3000 inactive. The trace frees 0x4000 (allocated before
  // it started: 50 bytes) and allocates 0x2000 (30 bytes) and 0x5000 (7, freed again).
  const std::string bytes = pickle_of(PyDict{
      {"segments", PyList{PyDict{{"device", 0},
                                 {"address", 0x1000},
                                 {"total_size", 0x4000},
                                 {"blocks", PyList{block(0x1000, 512, 100, "active_allocated"),
                                                   block(0x2000, 512, 30, "active_pending_free"),
                                                   block(0x3000, 512, 512, "inactive")}}}}},
      {"device_traces",
       PyList{
           Py(PyList{entry("free_requested", 0x4000, 50, 1), entry("free_completed", 0x4000, 50, 2),
                     entry("segment_alloc", 0x9000, 4096, 3), entry("alloc", 0x2000, 30, 4),
                     entry("alloc", 0x5000, 7, 5), entry("free_completed", 0x5000, 7, 6)})}}});
  MemorySink sink;
  auto report = import_pytorch_snapshot(bytes, "snap.pickle", sink);
  ASSERT_TRUE(report) << report.error().to_string();
  EXPECT_FALSE(sink.recorded_header().has_devices());  // a snapshot does not say how big the GPU is
  // Baseline: 0x1000 (100) and 0x4000 (50).
  ASSERT_EQ(count(sink.events(), TraceEvent::Kind::Baseline), 2U);
  EXPECT_EQ(sink.events()[0].address, 0x1000U);
  EXPECT_EQ(sink.events()[0].bytes, 100U);
  EXPECT_EQ(sink.events()[1].bytes, 50U);
  EXPECT_EQ(count(sink.events(), TraceEvent::Kind::Allocate), 2U);
  EXPECT_EQ(count(sink.events(), TraceEvent::Kind::Free), 2U);
  EXPECT_EQ(report->skipped, 1U);  // free_requested (segment_alloc is carried)
  EXPECT_EQ(count(sink.events(), TraceEvent::Kind::SegmentAlloc), 1U);
  ASSERT_EQ(sink.events().back().kind, TraceEvent::Kind::Check);
  EXPECT_EQ(sink.events().back().check_allocated, 130U);  // 100 + 30: the active blocks
  Replayer replayer = import_and_replay(sink, one_gpu());
  EXPECT_EQ(replayer.tracker().allocated(Gpu{0}), 130U);
  EXPECT_EQ(replayer.summary().checkpoints_verified, 1U);
  EXPECT_EQ(replayer.summary().high_water.at(Gpu{0}), 150U);  // the baseline was the most
}

TEST(PytorchSnapshot, AnOomEntryWithoutAnAddressBecomesAnOomEventWithWhatPytorchRecorded) {
  // PyTorch's `oom` trace entries carry size, stream, device_free and time_us, and no addr.
  const std::string bytes = pickle_of(
      PyDict{{"segments", PyList{}},
             {"device_traces", PyList{Py(PyList{entry("alloc", 0x2000, 30, 1),
                                                PyDict{{"action", "oom"},
                                                       {"size", 8589934592},
                                                       {"stream", 0},
                                                       {"device_free", 1048576},
                                                       {"time_us", 2},
                                                       {"frames", PyList{}}},
                                                entry("free_completed", 0x2000, 30, 3)})}}});
  MemorySink sink;
  auto report = import_pytorch_snapshot(bytes, "oom.pickle", sink);
  ASSERT_TRUE(report) << report.error().to_string();
  ASSERT_EQ(count(sink.events(), TraceEvent::Kind::Oom), 1U);
  const TraceEvent& oom = sink.events()[1];
  ASSERT_EQ(oom.kind, TraceEvent::Kind::Oom);
  EXPECT_EQ(format_event(oom),
            "oom gpu:0 8589934592 t=2000 stream=0 device_free=1048576 reserved=0");
  // Each event knows its entry in the user's file: alloc 0, oom 1, free 2.
  EXPECT_EQ(report->origin_unit, "device_traces entry");
  ASSERT_EQ(sink.origins().size(), sink.events().size());
  EXPECT_EQ(sink.origins()[0], 1U);  // stored as 1 + the entry
  EXPECT_EQ(sink.origins()[1], 2U);
  EXPECT_EQ(sink.origins()[2], 3U);
}

TEST(PytorchSnapshot, ASnapshotWithNothingInItIsRefused) {
  const std::string bytes =
      pickle_of(PyDict{{"segments", PyList{}}, {"device_traces", PyList{Py(PyList{})}}});
  MemorySink sink;
  auto report = import_pytorch_snapshot(bytes, "empty.pickle", sink);
  ASSERT_FALSE(report);
  EXPECT_NE(report.error().to_string().find("empty.pickle: a PyTorch snapshot with no allocations"),
            std::string::npos)
      << report.error().to_string();
}

TEST(PytorchSnapshot, OldLayoutsBareListAndBlocksWithoutAddresses) {
  // A bare list of segments whose blocks have no address or requested_size (oldest layout).
  const std::string bytes = pickle_of(
      PyList{PyDict{{"device", 1},
                    {"address", 0x10000},
                    {"blocks", PyList{PyDict{{"size", 1024}, {"state", "active_allocated"}},
                                      PyDict{{"size", 2048}, {"state", "inactive"}},
                                      PyDict{{"size", 512}, {"state", "active_allocated"}}}}}});
  MemorySink sink;
  auto report = import_pytorch_snapshot(bytes, "old.pickle", sink);
  ASSERT_TRUE(report) << report.error().to_string();
  ASSERT_EQ(count(sink.events(), TraceEvent::Kind::Baseline), 2U);
  EXPECT_EQ(sink.events()[0].device, DevicePlacement(Gpu{1}));
  EXPECT_EQ(sink.events()[1].address, 0x10000U + 1024 + 2048);  // computed from the sizes
  EXPECT_EQ(sink.events().back().check_allocated, 1536U);
}

TEST(PytorchSnapshot, InconsistentSnapshotsAndBadFieldsAreLocated) {
  // The trace allocates 0x2000 but no active block is there at the end, and it is never freed.
  const std::string lost =
      pickle_of(PyDict{{"segments", PyList{}},
                       {"device_traces", PyList{Py(PyList{entry("alloc", 0x2000, 30, 1)})}}});
  MemorySink sink;
  auto report = import_pytorch_snapshot(lost, "lost.pickle", sink);
  ASSERT_FALSE(report);
  EXPECT_NE(report.error().to_string().find("lost.pickle: device_traces[0][0]: inconsistent"),
            std::string::npos)
      << report.error().to_string();
  const std::string bad_size = pickle_of(PyDict{
      {"segments", PyList{PyDict{{"device", 0}, {"blocks", PyList{PyDict{{"size", "big"}}}}}}}});
  report = import_pytorch_snapshot(bad_size, "bad.pickle", sink);
  ASSERT_FALSE(report);
  EXPECT_NE(report.error().to_string().find("(segments[0].blocks[0].size): expected a "
                                            "non-negative integer, got a str"),
            std::string::npos)
      << report.error().to_string();
}

// ---- Kineto ----

TEST(Kineto, MemoryEventsSortedByTimeWithBaselineAndCheckpoints) {
  // Written out of time order (two threads); 1000 bytes were allocated before the recording.
  const std::string json = R"({
    "deviceProperties": [{"id": 0, "name": "Test GPU", "totalGlobalMem": 4096}],
    "traceEvents": [
      {"ph": "X", "name": "aten::mm", "ts": 1, "dur": 5, "args": {}},
      {"ph": "i", "name": "[memory]", "ts": 30, "args": {"Device Type": 1, "Device Id": 0,
        "Addr": 16, "Bytes": -200, "Total Allocated": 1300, "Total Reserved": 2048}},
      {"ph": "i", "name": "[memory]", "ts": 10, "args": {"Device Type": 1, "Device Id": 0,
        "Addr": 16, "Bytes": 200, "Total Allocated": 1200, "Total Reserved": 2048}},
      {"ph": "i", "name": "[memory]", "ts": 20, "args": {"Device Type": 1, "Device Id": 0,
        "Addr": 32, "Bytes": 300, "Total Allocated": 1500, "Total Reserved": 2048}},
      {"ph": "i", "name": "[memory]", "ts": 25, "args": {"Device Type": 0, "Device Id": -1,
        "Addr": 48, "Bytes": 64, "Total Allocated": 64, "Total Reserved": 0}},
      {"ph": "i", "name": "[memory]", "ts": 26, "args": {"Device Type": 13, "Device Id": 0,
        "Addr": 48, "Bytes": 64, "Total Allocated": 64, "Total Reserved": 0}}
    ]})";
  MemorySink sink;
  auto report = import_kineto(json, "k.json", sink);
  ASSERT_TRUE(report) << report.error().to_string();
  EXPECT_EQ(report->skipped, 1U);  // device type 13
  ASSERT_TRUE(sink.recorded_header().config);
  EXPECT_EQ(sink.recorded_header().config->gpus.at(0).total_bytes, 4096U);
  EXPECT_EQ(sink.recorded_header().config->gpus.at(0).name, "Test GPU");
  ASSERT_EQ(sink.events().front().kind, TraceEvent::Kind::Baseline);
  EXPECT_EQ(sink.events().front().bytes, 1000U);
  EXPECT_EQ(count(sink.events(), TraceEvent::Kind::Check), 4U);
  EXPECT_EQ(sink.events()[1].time_ns, 10000U);  // the first by time, in nanoseconds
  Replayer replayer = import_and_replay(sink, *sink.recorded_header().config);
  EXPECT_EQ(replayer.summary().checkpoints_verified, 4U);
  EXPECT_EQ(replayer.summary().high_water.at(Gpu{0}), 1500U);
  EXPECT_EQ(replayer.tracker().allocated(Cpu{}), 64U);
}

TEST(Kineto, BadJsonIsLocatedByByte) {
  MemorySink sink;
  auto report = import_kineto(R"({"traceEvents": [ {"name": "[memory]", )", "k.json", sink);
  ASSERT_FALSE(report);
  EXPECT_NE(report.error().to_string().find("k.json: byte "), std::string::npos)
      << report.error().to_string();
  report = import_kineto(R"({"traceEvents": [{"name": "[memory]", "ts": 1,
      "args": {"Device Type": 1, "Device Id": 0, "Bytes": 1.5}}]})",
                         "k.json", sink);
  ASSERT_FALSE(report);
  EXPECT_NE(report.error().to_string().find(
                "k.json: traceEvents index 0 ([memory] event 1): expected integer args"),
            std::string::npos);
  report = import_kineto(R"({"traceEvents": [{"name": "[memory]", "ts": 1, "args": {
      "Device Type": 1, "Device Id": 0, "Bytes": 5, "Total Allocated": 1}}]})",
                         "k.json", sink);
  ASSERT_FALSE(report);
  EXPECT_NE(
      report.error().to_string().find(
          "k.json: traceEvents index 0: 'Total Allocated' 1 is less than its own allocation of 5"),
      std::string::npos);
}

TEST(Kineto, JsonThatHoldsNoMemoryEventsIsRefusedWithTheReason) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{}", "not a Chrome trace"},
      {R"({"name": "left-pad", "version": "1.3.0"})", "not a Chrome trace"},
      {R"({"traceEvents": [{"name": "aten::mm", "ph": "X", "ts": 1}]})", "profile_memory=True"},
      {R"([{"name": "aten::mm", "ph": "X", "ts": 1}, {"name": "x", "ph": "i", "ts": 2}])",
       "among its 2 trace events"},
  };
  for (const auto& [json, expected] : cases) {
    MemorySink sink;
    auto report = import_kineto(json, "t.json", sink);
    ASSERT_FALSE(report) << json;
    EXPECT_NE(report.error().to_string().find(expected), std::string::npos)
        << report.error().to_string();
    EXPECT_TRUE(sink.events().empty());
  }
}

TEST(Kineto, EachEventKnowsItsIndexInTheFile) {
  MemorySink sink;
  auto report = import_kineto(R"({"traceEvents": [{"name": "aten::empty", "ph": "X", "ts": 1},
      {"name": "[memory]", "ts": 2, "args": {"Device Type": 1, "Device Id": 0, "Addr": 16,
       "Bytes": 5}},
      {"name": "aten::add", "ph": "X", "ts": 3},
      {"name": "[memory]", "ts": 4, "args": {"Device Type": 1, "Device Id": 0, "Addr": 16,
       "Bytes": -5}}]})",
                              "k.json", sink);
  ASSERT_TRUE(report) << report.error().to_string();
  EXPECT_EQ(report->origin_unit, "traceEvents index");
  ASSERT_EQ(sink.events().size(), 2U);
  EXPECT_EQ(sink.origins(), (std::vector<std::uint64_t>{2, 4}));  // 1 + indexes 1 and 3
}

TEST(Kineto, IntegerAndFractionalTimesOrderTheEventsAndEqualTimesKeepFileOrder) {
  // Times as integers and as fractions, out of order; 2.5 sorts between 2 and 3, the two events
  // at 7 keep the file's order (sizes 7 then 8), a negative time orders first and has no time.
  MemorySink sink;
  auto report = import_kineto(R"({"traceEvents": [
      {"name": "[memory]", "ts": 7, "args": {"Device Type": 0, "Device Id": 0, "Bytes": 7}},
      {"name": "[memory]", "ts": 3, "args": {"Device Type": 0, "Device Id": 0, "Bytes": 3}},
      {"name": "[memory]", "ts": 2.5, "args": {"Device Type": 0, "Device Id": 0, "Bytes": 25}},
      {"name": "[memory]", "ts": 7, "args": {"Device Type": 0, "Device Id": 0, "Bytes": 8}},
      {"name": "[memory]", "ts": 2, "args": {"Device Type": 0, "Device Id": 0, "Bytes": 2}},
      {"name": "[memory]", "ts": -1.5, "args": {"Device Type": 0, "Device Id": 0, "Bytes": 1}},
      {"name": "[memory]", "ts": 9007199254740993, "args": {"Device Type": 0, "Device Id": 0,
       "Bytes": 9}}]})",
                              "k.json", sink);
  ASSERT_TRUE(report) << report.error().to_string();
  std::vector<std::uint64_t> sizes;
  std::vector<std::optional<std::uint64_t>> times;
  for (const TraceEvent& event : sink.events()) {
    sizes.push_back(event.bytes.value_or(0));
    times.push_back(event.time_ns);
  }
  EXPECT_EQ(sizes, (std::vector<std::uint64_t>{1, 2, 25, 3, 7, 8, 9}));
  // Microseconds as nanoseconds: an integer exactly (2^53 + 1 is no double), a fraction rounded.
  EXPECT_EQ(times, (std::vector<std::optional<std::uint64_t>>{std::nullopt, 2000, 2500, 3000, 7000,
                                                              7000, 9007199254740993000ULL}));
  EXPECT_EQ(sink.origins(), (std::vector<std::uint64_t>{6, 5, 3, 2, 1, 4, 7}));
}

TEST(Kineto, ACheckpointHasTheReservedTotalOnlyWhereTheFileGivesIt) {
  MemorySink sink;
  auto report = import_kineto(R"({"traceEvents": [
      {"name": "[memory]", "ts": 1, "args": {"Device Type": 1, "Device Id": 3, "Bytes": 16,
       "Total Allocated": 16, "Total Reserved": 4096}},
      {"name": "[memory]", "ts": 2, "args": {"Device Type": 1, "Device Id": 3, "Bytes": 32,
       "Total Allocated": 48}},
      {"name": "[memory]", "ts": 3, "args": {"Device Type": 1, "Device Id": 3, "Bytes": -16,
       "Total Allocated": 32, "Total Reserved": "n/a"}}]})",
                              "k.json", sink);
  ASSERT_TRUE(report) << report.error().to_string();
  std::vector<std::optional<std::uint64_t>> allocated;
  std::vector<std::optional<std::uint64_t>> reserved;
  for (const TraceEvent& event : sink.events()) {
    EXPECT_EQ(event.device, DevicePlacement(Gpu{3}));
    if (event.kind != TraceEvent::Kind::Check) continue;
    allocated.push_back(event.check_allocated);
    reserved.push_back(event.check_reserved);
  }
  EXPECT_EQ(allocated, (std::vector<std::optional<std::uint64_t>>{16, 48, 32}));
  EXPECT_EQ(reserved,
            (std::vector<std::optional<std::uint64_t>>{4096, std::nullopt, std::nullopt}));
}

TEST(Kineto, AFaultAnywhereInTheJsonIsRefusedAtItsByte) {
  // A memory event the importer would keep, after an event whose unread field is not JSON: the
  // fault is found all the same, and located (the byte after the bad token; the memory event is
  // 85 characters, so the trailing x ends at 17 + 85 + 4 = 106).
  const std::string memory =
      R"({"name": "[memory]", "ts": 5, "args": {"Device Type": 1, "Device Id": 0, "Bytes": 9}})";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"traceEvents": [{"name": "x", "dur": 12abc}, )" + memory + "]}", "byte 41: "},
      {R"({"traceEvents": [{"name": "x", "dur": tru}, )" + memory + "]}", "byte 42: "},
      {"{\"traceEvents\": [{\"name\": \"\xff\", \"ts\": 1}, " + memory + "]}", "byte 28: "},
      {R"({"traceEvents": [)" + memory + "]} x", "byte 106: "},
  };
  for (const auto& [json, where] : cases) {
    MemorySink sink;
    auto report = import_kineto(json, "k.json", sink);
    ASSERT_FALSE(report) << json;
    EXPECT_NE(report.error().to_string().find("k.json: " + where + "not valid JSON"),
              std::string::npos)
        << report.error().to_string();
    EXPECT_TRUE(sink.events().empty());
  }
}

TEST(Kineto, NestingPastTheBoundInASkippedValueIsRefusedAtTheValue) {
  // 1,100 arrays inside one another as an operator's args: the 1,026th (depth 1,025) is past
  // the bound of 1,024. The args value starts at byte 17 + 22 = 39, so that array at 39 + 1025.
  const std::string json = R"({"traceEvents": [{"name": "x", "args": )" + std::string(1100, '[') +
                           std::string(1100, ']') + "}]}";
  MemorySink sink;
  auto report = import_kineto(json, "k.json", sink);
  ASSERT_FALSE(report);
  EXPECT_NE(report.error().to_string().find("k.json: byte 1064: cannot read this JSON"),
            std::string::npos)
      << report.error().to_string();
}

TEST(Kineto, NumbersKeepTheirJsonKind) {
  // -0 is the integer 0; 1e2 and an integer past 2^63 - 1 are not integers (refused as Bytes);
  // a string where a number belongs makes the field absent (refused as well).
  const auto import_bytes_field = [](const std::string& bytes) {
    MemorySink sink;
    return import_kineto(R"({"traceEvents": [{"name": "[memory]", "ts": 5, "args": {
        "Device Type": 1, "Device Id": 0, "Addr": 16, "Bytes": )" +
                             bytes + "}}]}",
                         "k.json", sink);
  };
  auto zero = import_bytes_field("-0");
  ASSERT_TRUE(zero) << zero.error().to_string();
  EXPECT_EQ(zero->events, 1U);
  for (const char* not_integer :
       {"1e2", "9223372036854775808", "123456789012345678901234", R"("100")"}) {
    auto report = import_bytes_field(not_integer);
    ASSERT_FALSE(report) << not_integer;
    EXPECT_NE(report.error().to_string().find("expected integer args"), std::string::npos)
        << not_integer << ": " << report.error().to_string();
  }
}

TEST(Kineto, AnyJsonInAFieldNotUsedIsTakenAndEscapedKeysAreRead) {
  // Numbers past a double's range or 2^64 - 1, every escape, and keys and a name written with
  // escapes: valid JSON, so the memory event is read whatever the fields around it hold.
  const std::string json = R"({"traceEvents": [
      {"name": "x", "dur": 1e400 , "a": -123456789012345678901234567890, "b": 0.5e-999,
       "c": -0, "d": "t\u00e9\"\\\/\b\f\n\r\t", "e": 1E+2, "f": [1e999, "\ud83d\ude00"]},
      {"n\u0061me": "[mem\u006fry]", "ts": 5, "\u0061rgs": {"Device Type": 1, "Device Id": 0,
       "Addr": 16, "Byt\u0065s": 9, "x": -1e-999
      }}]})";
  MemorySink sink;
  auto report = import_kineto(json, "k.json", sink);
  ASSERT_TRUE(report) << report.error().to_string();
  ASSERT_EQ(sink.events().size(), 1U);
  EXPECT_EQ(sink.events()[0].bytes, 9U);
  EXPECT_EQ(sink.events()[0].address, 16U);
  // What is not JSON in a field not used is refused all the same, at its place.
  for (const char* bad : {"01", "00", "-01", "1.", "-", "1e", "1e+", ".5", "+1", "0x1", "1.5.2",
                          "- 1", R"("\q")", R"("\u12")", R"("a\")"}) {
    report = import_kineto(
        std::string(R"({"traceEvents": [{"name": "x", "dur": )") + bad + "}, " +
            R"({"name": "[memory]", "ts": 5, "args": {"Device Type": 1, "Device Id": 0,
            "Addr": 16, "Bytes": 9}}]})",
        "k.json", sink);
    ASSERT_FALSE(report) << bad;
    EXPECT_NE(report.error().to_string().find("k.json: byte "), std::string::npos)
        << bad << ": " << report.error().to_string();
  }
}

TEST(Kineto, AControlCharacterInAStringNotUsedIsRefusedAtItsByte) {
  // In a value (the string starts at byte 38) or a key (at byte 31), not read for accounting.
  for (const std::string bad : {"\"a\tb\"", "\"a\x01\"", "\"\x1f\""}) {
    const std::string memory = R"({"name": "[memory]", "ts": 5, "args": {"Device Type": 1,
        "Device Id": 0, "Addr": 16, "Bytes": 9}})";
    const std::size_t control = bad.find_first_of("\t\x01\x1f");  // located just after it
    MemorySink sink;
    auto report = import_kineto(
        R"({"traceEvents": [{"name": "x", "dur": )" + bad + "}, " + memory + "]}", "k.json", sink);
    ASSERT_FALSE(report) << bad;
    const std::string value_at = "k.json: byte " + std::to_string(38 + control + 1) + ": ";
    EXPECT_NE(report.error().to_string().find(value_at), std::string::npos)
        << report.error().to_string();
    report = import_kineto(R"({"traceEvents": [{"name": "x", )" + bad + ": 1}, " + memory + "]}",
                           "k.json", sink);
    ASSERT_FALSE(report) << bad;
    const std::string key_at = "k.json: byte " + std::to_string(31 + control + 1) + ": ";
    EXPECT_NE(report.error().to_string().find(key_at), std::string::npos)
        << report.error().to_string();
  }
}

/// A Chrome trace whose strings and nested values hold every delimiter the windowed reader cuts
/// at ("},", quotes after backslashes, brackets), with elements that are not objects, and members
/// before and after the event array.
const std::string hostile_kineto = R"({"schemaVersion": 1, "traceName": "a \"},{\" b \\",
 "traceEvents": [
   12, "x},{y", [1, {"a": "},"}], null,
   {"name": "aten::x", "args": {"s": "\\\"},", "n": {"a": {"b": [1, 2]}, "c": "}"}}},
   {"ph": "i", "name": "[memory]", "ts": 20, "args": {"Device Type": 1, "Device Id": 0,
     "Addr": 32, "Bytes": 300, "Total Allocated": 400}},
   {"name": "[memory]", "ts": 10, "args": {"Device Type": 1, "Device Id": 0, "Addr": 16,
     "Bytes": 100, "Total Allocated": 100}} ,
   {"name": "[memory]", "ts": 30, "args": {"Device Type": 1, "Device Id": 0, "Addr": 16,
     "Bytes": -100, "Total Allocated": 300}}
 ],
 "deviceProperties": [{"id": 0, "name": "GPU },{ \"x\"", "totalGlobalMem": 4096}],
 "after": {"k": [{"v": "},"}, {}]}
}
)";

/// `import_kineto` of `json` read in windows of `window` bytes: the trace it writes, with each
/// event's origin and the report, or its error.
std::string kineto_in_windows(const std::string& json, std::size_t window) {
  MemorySink sink;
  auto report = import_kineto(
      [&json]() -> Result<std::unique_ptr<ByteSource>> { return memory_source(json, "k.json"); },
      "k.json", sink, window);
  // (Appended piece by piece: GCC 12 warns falsely about `"..." + string` here.)
  std::string out;
  if (!report) {
    out += "error: ";
    out += report.error().to_string();
    return out;
  }
  out += format_trace(sink.recorded_header(), sink.events());
  out += "origins:";
  for (const std::uint64_t origin : sink.origins()) {
    out += ' ';
    out += std::to_string(origin);
  }
  out += "\nskipped ";
  out += std::to_string(report->skipped);
  out += '\n';
  for (const std::string& note : report->notes) {
    out += note;
    out += '\n';
  }
  return out;
}

TEST(Kineto, DelimitersInsideStringsAndNestedValuesDoNotCutTheEvents) {
  MemorySink sink;
  auto report = import_kineto(hostile_kineto, "k.json", sink);
  ASSERT_TRUE(report) << report.error().to_string();
  // In time order: 100 at 0x10 (ts 10), 300 at 0x20 (ts 20), the free of 0x10 (ts 30), each
  // with its checkpoint; the objects of the event array are indexed 0 (aten::x) to 3.
  const std::vector<TraceEvent>& events = sink.events();
  ASSERT_EQ(events.size(), 6U);
  EXPECT_EQ(events[0].kind, TraceEvent::Kind::Allocate);
  EXPECT_EQ(events[0].bytes, 100U);
  EXPECT_EQ(events[0].address, 16U);
  EXPECT_EQ(events[0].time_ns, 10000U);
  EXPECT_EQ(events[1].check_allocated, 100U);
  EXPECT_EQ(events[2].bytes, 300U);
  EXPECT_EQ(events[3].check_allocated, 400U);
  EXPECT_EQ(events[4].kind, TraceEvent::Kind::Free);
  EXPECT_EQ(events[4].bytes, 100U);
  EXPECT_EQ(events[5].check_allocated, 300U);
  EXPECT_EQ(sink.origins(), (std::vector<std::uint64_t>{3, 3, 2, 2, 4, 4}));
  ASSERT_TRUE(sink.recorded_header().config);
  EXPECT_EQ(sink.recorded_header().config->gpus.at(0).total_bytes, 4096U);
  EXPECT_EQ(sink.recorded_header().config->gpus.at(0).name, "GPU },{ \"x\"");
}

TEST(Kineto, AnyWindowReadsTheSameEventsAsTheWholeFile) {
  const std::string whole = kineto_in_windows(hostile_kineto, kineto_window_bytes);
  ASSERT_EQ(whole.find("error"), std::string::npos) << whole;
  for (std::size_t window = 1; window <= hostile_kineto.size() + 1; ++window) {
    ASSERT_EQ(kineto_in_windows(hostile_kineto, window), whole) << "window " << window;
  }
}

TEST(Kineto, EveryCutOrCorruptionIsRefusedAlikeInAnyWindow) {
  // Every prefix is cut short; every byte replaced by a quote, a bracket or a colon breaks the
  // structure or a value. A small window (its guessed batches refused and read again) and the whole
  // file must agree on each, error for error.
  for (std::size_t length = 0; length < hostile_kineto.size() - 2; ++length) {
    const std::string cut = hostile_kineto.substr(0, length);
    const std::string whole = kineto_in_windows(cut, kineto_window_bytes);
    ASSERT_NE(whole.find("error: k.json: "), std::string::npos) << length << ": " << whole;
    ASSERT_EQ(kineto_in_windows(cut, 7), whole) << "cut at " << length;
  }
  for (std::size_t at = 0; at < hostile_kineto.size(); ++at) {
    for (const char replacement : {'"', ']', '}', ':'}) {
      std::string corrupt = hostile_kineto;
      corrupt[at] = replacement;
      ASSERT_EQ(kineto_in_windows(corrupt, 7), kineto_in_windows(corrupt, kineto_window_bytes))
          << "byte " << at << " made '" << replacement << "'";
    }
  }
}

TEST(Kineto, AValueLongerThanTheWindowGrowsIt) {
  // One operator event with a 100,000-character name read in windows of 64 bytes.
  const std::string json = R"({"traceEvents": [{"name": ")" + std::string(100000, 'n') +
                           R"(", "ts": 1}, {"name": "[memory]", "ts": 5, "args": {
      "Device Type": 1, "Device Id": 0, "Addr": 16, "Bytes": 9}}]})";
  const std::string small = kineto_in_windows(json, 64);
  EXPECT_NE(small.find("alloc gpu:0 9 "), std::string::npos) << small;
  EXPECT_EQ(small, kineto_in_windows(json, kineto_window_bytes));
}

TEST(Kineto, AColonAfterAValueNotUsedIsRefusedInAnyWindow) {
  // A value the importer does not use, then a ':' where a ',' belongs (and the brace the rest
  // of the object would need to be read as more fields of it): not JSON, whether the event is
  // read in a batch of a window's elements (windows of 64 bytes and more, with events after it
  // in later windows) or alone.
  const std::string memory = R"({"name": "[memory]", "ts": 5, "args": {"Device Type": 1,
      "Device Id": 0, "Addr": 16, "Bytes": 9}})";
  for (const std::string bad : {R"("cat": "a": 1}, "k": 5)", R"("dur": 5: 1}, "k": 5)",
                                R"("cat": "a": 1, "k": 5)", R"("args": {"s": "a": 1}}, "k": 5)"}) {
    std::string json = R"({"traceEvents": [{"name": "x", )" + bad + "}";
    for (int i = 0; i < 20; ++i)
      json += ", " + memory;
    json += "]}";
    const std::string alone = kineto_in_windows(json, 7);
    EXPECT_NE(alone.find("error: k.json: byte "), std::string::npos) << bad << ": " << alone;
    for (const std::size_t window : {64U, 100U, 128U, 256U, 512U, 1024U, 4096U}) {
      EXPECT_EQ(kineto_in_windows(json, window), alone) << bad << " in windows of " << window;
    }
  }
}

// ---- RMM ----

TEST(Rmm, AllocationsFreesAndFailuresFromTheCsv) {
  const std::string csv =
      "Thread,Time,Action,Pointer,Size,Stream\n"
      "23110,22:30:49.650739,allocate,0x7f141ba00000,1024,0x0\n"
      "23110,22:30:49.650800,allocate failure,(nil),99999999999,0x0\n"
      "23111,22:30:49.650900,allocate,0x7f141ba00400,2048,0x1\n"
      "23110,22:30:49.651000,free,0x7f141ba00000,1024,0x0\n";
  MemorySink sink;
  auto report = import_rmm(csv, "rmm_log.dev3.csv", sink);
  ASSERT_TRUE(report) << report.error().to_string();
  ASSERT_EQ(sink.events().size(), 4U);
  EXPECT_EQ(sink.events()[0].device, DevicePlacement(Gpu{3}));  // from .dev3
  EXPECT_EQ(sink.events()[0].time_ns, (22ULL * 3600 + 30 * 60 + 49) * 1'000'000'000 + 650739000);
  EXPECT_EQ(sink.events()[1].recorded_error, ErrorKind::OutOfMemory);
  EXPECT_EQ(sink.events()[2].stream, 1U);
  EXPECT_FALSE(sink.events()[2].recorded_error);  // the failure before it does not stay
  EXPECT_EQ(sink.events()[3].kind, TraceEvent::Kind::Free);
  GpuConfig config = one_gpu(1ULL << 30U);
  config.gpus[0].id = 3;
  Replayer replayer = import_and_replay(sink, config);
  EXPECT_EQ(replayer.tracker().allocated(Gpu{3}), 2048U);
  EXPECT_EQ(replayer.summary().refused, 1U);  // refused here too: 99999999999 > 1 GiB
}

TEST(Rmm, BadRowsNameTheLine) {
  MemorySink sink;
  auto report = import_rmm(
      "Thread,Time,Action,Pointer,Size,Stream\n1,10:00:00.1,allocate,0x1,"
      "12x,0x0\n",
      "r.csv", sink);
  ASSERT_FALSE(report);
  EXPECT_NE(report.error().to_string().find("r.csv:2: expected Size"), std::string::npos);
  report = import_rmm("Thread,Time\n", "r.csv", sink);
  ASSERT_FALSE(report);
  EXPECT_NE(report.error().to_string().find("r.csv:1: expected the RMM log header"),
            std::string::npos);
  report = import_rmm("Thread,Time,Action,Pointer,Size,Stream\n1,10:00:00,resize,0x1,1,0\n",
                      "r.csv", sink);
  ASSERT_FALSE(report);
  EXPECT_NE(report.error().to_string().find("r.csv:2: expected Action"), std::string::npos);
}

/// Bytes handed out a few at a time (`step` per read), as a pipe or a decompressor may.
class TrickleSource final : public ByteSource {
 public:
  TrickleSource(std::string bytes, std::size_t step) : bytes_(std::move(bytes)), step_(step) {}
  Result<std::size_t> read(char* buffer, std::size_t size) override {
    const std::size_t n = std::min({size, step_, bytes_.size() - at_});
    std::copy_n(bytes_.data() + at_, n, buffer);
    at_ += n;
    return n;
  }

 private:
  std::string bytes_;
  std::size_t step_;
  std::size_t at_{0};
};

TEST(Rmm, StreamedRowsCutAnywhereByTheReadsImportAlike) {
  // Rows split across reads of 1 to 13 bytes, a blank line, CRLF endings, and a row whose
  // eighth field (RMM logs have six; more are allowed) is longer than the line buffer's 1 MiB.
  const std::string csv =
      "Thread,Time,Action,Pointer,Size,Stream\r\n"
      "23110,22:30:49.650739,allocate,0x7f141ba00000,1024,0x0\r\n"
      "\n"
      "23110,22:30:49.650800,allocate failure,(nil),99999999999,0x0\n"
      "23111,22:30:49.650900,allocate,0x7f141ba00400,2048,0x1,x," +
      std::string((1U << 20U) + 100, 'z') +
      "\n"
      "23110,22:30:49.651000,free,0x7f141ba00000,1024,0x0\n";
  for (std::size_t step = 1; step <= 13; ++step) {
    TrickleSource source(csv, step);
    MemorySink sink;
    auto report = import_rmm(source, "rmm_log.dev3.csv", sink);
    ASSERT_TRUE(report) << step << ": " << report.error().to_string();
    ASSERT_EQ(sink.events().size(), 4U) << step;
    EXPECT_EQ(sink.events()[0].bytes, 1024U);
    EXPECT_EQ(sink.events()[0].address, 0x7f141ba00000U);
    EXPECT_EQ(sink.events()[1].recorded_error, ErrorKind::OutOfMemory);
    EXPECT_FALSE(sink.events()[1].address);  // (nil): the failure's pointer is not kept
    EXPECT_EQ(sink.events()[2].bytes, 2048U);
    EXPECT_EQ(sink.events()[2].address, 0x7f141ba00400U);
    EXPECT_FALSE(sink.events()[2].recorded_error);  // the failure before it does not stay
    EXPECT_EQ(sink.events()[2].stream, 1U);
    EXPECT_EQ(sink.events()[3].kind, TraceEvent::Kind::Free);
    EXPECT_EQ(sink.origins(), (std::vector<std::uint64_t>{3, 5, 6, 7}));  // 1 + CSV line
  }
  // The last row cut short is refused wherever the reads end.
  for (std::size_t step = 1; step <= 5; ++step) {
    TrickleSource source(csv.substr(0, csv.size() - 1), step);
    MemorySink sink;
    auto report = import_rmm(source, "r.csv", sink);
    ASSERT_FALSE(report);
    EXPECT_NE(report.error().to_string().find("r.csv:6: truncated"), std::string::npos)
        << report.error().to_string();
  }
}

/// `value` in decimal, or in lowercase hexadecimal after `0x`.
std::string rmm_number(std::uint64_t value, bool hex) {
  char text[32];
  std::snprintf(text, sizeof text, hex ? "0x%llx" : "%llu", static_cast<unsigned long long>(value));
  return text;
}

/// A value of any length: most have few digits, some all 20 (up to 2^64 - 1).
rc::Gen<std::uint64_t> rmm_value() {
  return rc::gen::oneOf(
      rc::gen::inRange<std::uint64_t>(0, 100000), rc::gen::arbitrary<std::uint64_t>(),
      rc::gen::element<std::uint64_t>(UINT64_MAX, 9999999999999999999ULL, 10000000000000000000ULL));
}

/// One field: as RMM writes it (most often) or in another form: one of `valid`, or in a hostile
/// row also one of `invalid` or `usual` with one byte replaced by a byte at the edge of a digit's
/// or a letter's range. Any form may have blanks around it (the reader trims them).
std::string rmm_field(bool hostile, const std::string& usual, const std::vector<std::string>& valid,
                      const std::vector<std::string>& invalid) {
  if (*rc::gen::inRange(0, 3) != 0) return usual;
  std::string field = usual;
  switch (*rc::gen::inRange(0, hostile ? 3 : 1)) {
    case 0:
      if (!valid.empty()) field = *rc::gen::elementOf(valid);
      break;
    case 1:
      if (!invalid.empty()) field = *rc::gen::elementOf(invalid);
      break;
    default:
      if (!usual.empty()) {
        field[*rc::gen::inRange<std::size_t>(0, usual.size())] = *rc::gen::element(
            '/', ':', ';', '?', '@', 'G', 'g', '`', '\x7f', '\x80', '\xc3', '\xfa', '\xff', '\0');
      }
      break;
  }
  if (*rc::gen::inRange(0, 8) == 0) field = " " + field + "\t";
  return field;
}

/// An RMM row, ending with its newline: each field as RMM writes it, or in one of the other
/// forms a log may hold (a decimal pointer, `0X`, 20 digits, a failure, extra fields, a CR...);
/// a hostile row also has invalid forms (a value over 2^64 - 1, an hour of 24, a fraction of
/// ten digits, a blank field, a stray byte...).
std::string any_rmm_row(bool hostile) {
  const std::uint64_t big = *rmm_value();
  const std::string thread =
      rmm_field(hostile, std::to_string(*rc::gen::inRange<std::uint64_t>(1, 1ULL << 48U)),
                {rmm_number(big, false), "00000000000000000000007"},
                {"18446744073709551616", "", "12a", "-1"});
  const auto two = [](int value) {
    char text[8];
    std::snprintf(text, sizeof text, "%02d", value);
    return std::string(text);
  };
  std::string time = two(*rc::gen::inRange(0, hostile ? 25 : 24)) + ":" +
                     two(*rc::gen::inRange(0, hostile ? 61 : 60)) + ":" +
                     two(*rc::gen::inRange(0, hostile ? 62 : 61));
  const int fraction_digits = *rc::gen::inRange(0, hostile ? 11 : 10);
  if (fraction_digits > 0 || (hostile && *rc::gen::inRange(0, 10) == 0)) {
    time += ".";
    for (int i = 0; i < fraction_digits; ++i)
      time += static_cast<char>('0' + *rc::gen::inRange(0, 10));
  }
  time = rmm_field(hostile, time, {}, {"1:02:03.5", "01:02:03.x", "01-02-03"});
  const std::string action =
      rmm_field(hostile, *rc::gen::element<std::string>("allocate", "free"),
                {"allocate failure", "allocate_failure"}, {"Allocate", "resize", "fre", ""});
  const std::uint64_t address = *rmm_value();
  const std::string pointer =
      rmm_field(hostile, rmm_number(address, true), {rmm_number(address, false), "0X7F00"},
                {"0x", "0x10000000000000000", "(nil)", "0x7f00 0"});
  const std::string size =
      rmm_field(hostile, std::to_string(*rc::gen::inRange<std::uint64_t>(0, 1U << 30U)),
                {rmm_number(big, false), "012"}, {"18446744073709551616", "", "1e3", "0x10"});
  const std::string stream =
      rmm_field(hostile, rmm_number(*rc::gen::inRange<std::uint64_t>(0, 4), true),
                {rmm_number(big, true), "7", "0x1,extra", "0x1\r"}, {"", "0x"});
  return thread + "," + time + "," + action + "," + pointer + "," + size + "," + stream + "\n";
}

RC_GTEST_PROP(Rmm, EveryRowReadsAsTheGeneralReaderReadsIt, ()) {
  // The common row is read in one pass; a blank before a row sends it to the general reader
  // (which trims it). Both must make the same events of every row, or the same error.
  // Most rows are valid (an error ends the import: the rows after it are not compared).
  const auto rows = *rc::gen::container<std::vector<std::string>>(
      *rc::gen::inRange<std::size_t>(1, 16),
      rc::gen::exec([] { return any_rmm_row(*rc::gen::inRange(0, 8) == 0); }));
  std::string common = "Thread,Time,Action,Pointer,Size,Stream\n";
  std::string general = common;
  for (const auto& row : rows) {
    common += row;
    general += " " + row;
  }
  MemorySink common_sink;
  MemorySink general_sink;
  const auto common_report = import_rmm(common, "r.dev1.csv", common_sink);
  const auto general_report = import_rmm(general, "r.dev1.csv", general_sink);
  RC_ASSERT(bool(common_report) == bool(general_report));
  if (!common_report) {
    RC_ASSERT(common_report.error().to_string() == general_report.error().to_string());
    return;
  }
  RC_ASSERT(common_sink.events() == general_sink.events());
  RC_ASSERT(common_sink.origins() == general_sink.origins());
  RC_ASSERT(common_report->notes == general_report->notes);
}

TEST(Rmm, EveryByteOfACommonRowChangedReadsAsTheGeneralReaderReadsIt) {
  // Each byte of two common rows (each field's digits past a word of eight) replaced by each
  // byte at an edge of what a field takes (a digit's, a letter's range, and each with its high
  // bit set), or a separator: the one-pass reader must take or refuse the row as the general
  // one does.
  const std::string header = "Thread,Time,Action,Pointer,Size,Stream\n";
  std::vector<int> edges{'\0', '\t', '\n', '\r', ' ', ',', '.', 'x', 'X', 0x7F, 0xFA, 0xFF};
  for (const int edge : {'/', '0', '9', ':', '@', 'A', 'F', 'G', '`', 'a', 'f', 'g'}) {
    edges.push_back(edge);
    edges.push_back(edge | 0x80);
  }
  for (const std::string row : {"140171302356736,22:30:49.650739,allocate,0x7f14a1ba00c0,"
                                "123456789012,0xfedcba9876\n",
                                "7,01:02:03.4,free,0xA,0,0x0\n"}) {
    for (std::size_t at = 0; at + 1 < row.size(); ++at) {
      for (const int byte : edges) {
        std::string changed = row;
        changed[at] = static_cast<char>(byte);
        MemorySink common_sink;
        MemorySink general_sink;
        const auto common = import_rmm(header + changed, "r.csv", common_sink);
        const auto general = import_rmm(header + " " + changed, "r.csv", general_sink);
        const std::string what = "byte " + std::to_string(byte) + " at " + std::to_string(at) +
                                 " of " + row.substr(0, row.size() - 1);
        ASSERT_EQ(bool(common), bool(general)) << what;
        if (common) {
          ASSERT_EQ(common_sink.events(), general_sink.events()) << what;
        } else {
          ASSERT_EQ(common.error().to_string(), general.error().to_string()) << what;
        }
      }
    }
  }
}

TEST(Rmm, TheCommonRowsValuesAreTheLogs) {
  // Every value at its widest: 19-digit thread and size, 16 hexadecimal digits (either case
  // inside), nine fraction digits, the last second of a day (and a leap second).
  MemorySink sink;
  auto report = import_rmm(
      "Thread,Time,Action,Pointer,Size,Stream\n"
      "9999999999999999999,23:59:60.123456789,allocate,0xFfFfFfFfFfFfFfFe,9999999999999999999,"
      "0xfedcba9876543210\n"
      "1,00:00:00,free,0x0,0,0x0\n"
      "2,00:00:01.5,allocate,0x1,1,0x1\n",
      "r.csv", sink);
  ASSERT_TRUE(report) << report.error().to_string();
  ASSERT_EQ(sink.events().size(), 3U);
  const TraceEvent& widest = sink.events()[0];
  EXPECT_EQ(widest.kind, TraceEvent::Kind::Allocate);
  EXPECT_EQ(widest.time_ns, (23ULL * 3600 + 59 * 60 + 60) * 1'000'000'000 + 123456789);
  EXPECT_EQ(widest.address, 0xfffffffffffffffeULL);
  EXPECT_EQ(widest.bytes, 9999999999999999999ULL);
  EXPECT_EQ(widest.stream, 0xfedcba9876543210ULL);
  EXPECT_EQ(sink.events()[1].kind, TraceEvent::Kind::Free);
  EXPECT_EQ(sink.events()[1].time_ns, 0U);
  EXPECT_EQ(sink.events()[1].address, 0U);
  EXPECT_EQ(sink.events()[1].bytes, 0U);
  EXPECT_EQ(sink.events()[2].time_ns, 1'500'000'000U);
  EXPECT_EQ(sink.events()[2].stream, 1U);
  // One field past its bound is refused as the general reader refuses it.
  for (const char* row :
       {"1,24:00:00,free,0x0,0,0x0", "1,00:60:00,free,0x0,0,0x0", "1,00:00:61,free,0x0,0,0x0",
        "1,00:00:00.1234567890,free,0x0,0,0x0", "1,00:00:00,free,0x10000000000000000,0,0x0",
        "1,00:00:00,free,0x0,18446744073709551616,0x0"}) {
    report = import_rmm("Thread,Time,Action,Pointer,Size,Stream\n" + std::string(row) + "\n",
                        "r.csv", sink);
    EXPECT_FALSE(report) << row;
  }
}

TEST(Rmm, RowsReadInPiecesAreReadFromTheirOwnBytes) {
  // 300 rows as long as the header (39 bytes), each with its own time and size, read a few
  // bytes at a time: the buffer's bytes past what was read hold an earlier row, at the same
  // place in the line, and must never complete the row being read.
  std::string csv = "Thread,Time,Action,Pointer,Size,Stream\n";
  for (int i = 0; i < 300; ++i) {
    char row[64];
    std::snprintf(row, sizeof row, "1,00:00:00.%04d,allocate,0x%02x,%04d,0x0\n", i, i % 256,
                  1000 + i);
    ASSERT_EQ(std::strlen(row), 39U) << row;
    csv += row;
  }
  for (std::size_t step = 1; step <= 80; ++step) {
    TrickleSource source(csv, step);
    MemorySink sink;
    auto report = import_rmm(source, "r.csv", sink);
    ASSERT_TRUE(report) << step << ": " << report.error().to_string();
    ASSERT_EQ(sink.events().size(), 300U) << step;
    for (std::size_t i = 0; i < 300; ++i) {
      ASSERT_EQ(sink.events()[i].bytes, 1000 + i) << "step " << step << ", row " << i;
      ASSERT_EQ(sink.events()[i].time_ns, i * 100'000) << "step " << step << ", row " << i;
    }
  }
}

// ---- Nsight ----

/// Builds an Nsight-like export. The enum ids are deliberately not NVIDIA's: the importer must
/// join by name.
std::string nsight_database(const ScratchDir& dir, bool with_stream) {
  const auto path = dir / "report.sqlite";
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  const std::string sql =
      std::string(
          "CREATE TABLE ENUM_CUDA_MEM_KIND (id INTEGER PRIMARY KEY, name TEXT, label "
          "TEXT);"
          "INSERT INTO ENUM_CUDA_MEM_KIND VALUES (7, 'CUDA_MEMOPR_MEMORY_KIND_PINNED', "
          "'Pinned'), (3, 'CUDA_MEMOPR_MEMORY_KIND_DEVICE', 'Device');"
          "CREATE TABLE ENUM_CUDA_DEV_MEM_EVENT_OPER (id INTEGER PRIMARY KEY, name TEXT, "
          "label TEXT);"
          "INSERT INTO ENUM_CUDA_DEV_MEM_EVENT_OPER VALUES (5, "
          "'CUDA_DEV_MEM_EVENT_OPR_DEALLOCATION', 'Deallocation'), (9, "
          "'CUDA_DEV_MEM_EVENT_OPR_ALLOCATION', 'Allocation');"
          "CREATE TABLE CUDA_GPU_MEMORY_USAGE_EVENTS (start INT, globalPid INT, deviceId "
          "INT, contextId INT, address INT, pc INT, bytes INT, memKind INT, "
          "memoryOperationType INT, name INT, correlationId INT") +
      (with_stream ? ", streamId INT" : "") +
      ");"
      "INSERT INTO CUDA_GPU_MEMORY_USAGE_EVENTS (start, deviceId, address, bytes, memKind, "
      "memoryOperationType) VALUES "
      "(300, 0, 4096, 1000, 3, 5),"   // free, last by time
      "(100, 0, 4096, 1000, 3, 9),"   // alloc
      "(150, 0, 8192, 64, 7, 9),"     // pinned host memory: skipped
      "(200, 1, 12288, 500, 3, 9);";  // alloc on gpu:1
  char* message = nullptr;
  EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &message), SQLITE_OK)
      << (message != nullptr ? message : "");
  sqlite3_free(message);
  sqlite3_close(db);
  return testing::read_bytes(path);
}

TEST(Nsight, EventsJoinedWithTheEnumTablesByName) {
  ScratchDir dir;
  for (const bool with_stream : {true, false}) {
    MemorySink sink;
    auto report = import_nsight(nsight_database(dir, with_stream), "report.sqlite", sink);
    ASSERT_TRUE(report) << report.error().to_string();
    EXPECT_EQ(report->skipped, 1U);
    ASSERT_EQ(sink.events().size(), 3U);
    EXPECT_EQ(sink.events()[0].kind, TraceEvent::Kind::Allocate);
    EXPECT_EQ(sink.events()[0].time_ns, 100U);
    EXPECT_EQ(sink.events()[1].device, DevicePlacement(Gpu{1}));
    EXPECT_EQ(sink.events()[2].kind, TraceEvent::Kind::Free);
    EXPECT_EQ(sink.events()[2].bytes, 1000U);
    std::filesystem::remove(dir / "report.sqlite");
  }
}

TEST(Nsight, NotADatabaseOrMissingTables) {
  MemorySink sink;
  auto report = import_nsight("SQLite format 3" + std::string(1, '\0') + std::string(200, 'x'),
                              "broken.sqlite", sink);
  ASSERT_FALSE(report);
  EXPECT_NE(report.error().to_string().find("broken.sqlite"), std::string::npos);
  ScratchDir dir;
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir / "empty.sqlite").c_str(), &db), SQLITE_OK);
  sqlite3_exec(db, "CREATE TABLE x (a INT);", nullptr, nullptr, nullptr);
  sqlite3_close(db);
  report = import_nsight(testing::read_bytes(dir / "empty.sqlite"), "empty.sqlite", sink);
  ASSERT_FALSE(report);
  EXPECT_NE(report.error().to_string().find("no table CUDA_GPU_MEMORY_USAGE_EVENTS"),
            std::string::npos);
}

// ---- detection and files ----

TEST(Import, FormatsAreDetectedFromTheContent) {
  EXPECT_EQ(detect_format("memtrack-trace 1\n", "x").value(), SourceFormat::Canonical);
  EXPECT_EQ(detect_format(pickle_of(PyList{}), "x").value(), SourceFormat::PytorchSnapshot);
  EXPECT_EQ(detect_format("  {\"traceEvents\": []}", "x").value(), SourceFormat::Kineto);
  EXPECT_EQ(detect_format("Thread,Time,Action,Pointer,Size,Stream\n", "x").value(),
            SourceFormat::Rmm);
  EXPECT_EQ(detect_format(std::string("SQLite format 3\0", 16), "x").value(), SourceFormat::Nsight);
  auto unknown = detect_format("hello", "mystery.bin");
  ASSERT_FALSE(unknown);
  EXPECT_NE(unknown.error().to_string().find("mystery.bin: byte 0"), std::string::npos);
}

TEST(Import, AFailedImportWritesNothing) {
  ScratchDir dir;
  testing::write_bytes(dir / "bad.csv", "Thread,Time,Action,Pointer,Size,Stream\n1,x,free,0,1,0\n");
  auto report = import_file(dir / "bad.csv", dir / "out.trace", std::nullopt);
  ASSERT_FALSE(report);
  const auto files = dir.files();
  EXPECT_EQ(files, std::vector<std::string>{"bad.csv"});
}

TEST(ImportBytes, ARecordingWithNoAllocationsIsRefusedWhateverItsFormat) {
  MemorySink sink;
  auto report = import_bytes(SourceFormat::Rmm, "Thread,Time,Action,Pointer,Size,Stream\n",
                             "empty.dev0.csv", sink);
  ASSERT_FALSE(report);
  EXPECT_NE(report.error().to_string().find(
                "empty.dev0.csv: a rmm recording with no device allocations or frees"),
            std::string::npos)
      << report.error().to_string();
  // One allocation is enough.
  MemorySink one;
  report = import_bytes(SourceFormat::Rmm,
                        "Thread,Time,Action,Pointer,Size,Stream\n1,10:00:00.1,allocate,0x1,64,0\n",
                        "one.dev0.csv", one);
  EXPECT_TRUE(report) << report.error().to_string();
}

}  // namespace
}  // namespace memtrack::traces
