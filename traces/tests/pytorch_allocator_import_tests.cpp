// The PyTorch importer carries the allocator's own truth: segment events, the oom entry as an
// `oom` event (with the reserved bytes when the start is known), the start layout of a trace that
// began mid-run, the end layout, the allocator settings, and every entry's frames.
#include "pickle.hpp"
#include "pickle_writer.hpp"
#include "test_support.hpp"

#include <memtrack/traces/importers.hpp>
#include <memtrack/traces/reader.hpp>
#include <memtrack/traces/writer.hpp>

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace memtrack::traces {
namespace {

using testing::pickle_of;
using testing::Py;
using testing::PyDict;
using testing::PyList;
using testing::ScratchDir;

constexpr std::int64_t two_mib = 2 << 20;
constexpr std::int64_t twenty_mib = 20 << 20;

PyDict frame(const char* file, std::int64_t line, const char* name) {
  return PyDict{{"filename", file}, {"line", line}, {"name", name}};
}

PyDict entry(const char* action, std::int64_t addr, std::int64_t size, std::int64_t time,
             PyList frames = {}) {
  return PyDict{{"action", action}, {"addr", addr},    {"size", size},
                {"stream", 0},      {"time_us", time}, {"frames", std::move(frames)}};
}

PyDict block(std::int64_t address, std::int64_t size, const char* state) {
  return PyDict{{"address", address}, {"size", size}, {"requested_size", size}, {"state", state}};
}

PyDict segment(std::int64_t address, std::int64_t size, const char* type, PyList blocks) {
  return PyDict{
      {"device", 0},          {"address", address},     {"total_size", size},         {"stream", 0},
      {"segment_type", type}, {"is_expandable", false}, {"blocks", std::move(blocks)}};
}

std::vector<std::string> lines_of(const MemorySink& sink) {
  std::vector<std::string> lines;
  for (const TraceEvent& event : sink.events())
    lines.push_back(format_event(event));
  return lines;
}

/// The `alloc` lines of what an import wrote.
std::vector<std::string> alloc_lines(const MemorySink& sink) {
  std::vector<std::string> allocs;
  for (const std::string& line : lines_of(sink)) {
    if (line.starts_with("alloc ")) allocs.push_back(line);
  }
  return allocs;
}

/// A run from an empty allocator: a small segment, two allocations, a free, a large segment
/// allocated and released, then an OOM. Frames on some entries.
std::string from_empty_snapshot() {
  const PyList model_stack = {Py(frame("model.py", 12, "forward")),
                              Py(frame("train loop.py", 3, "<module>"))};
  return pickle_of(PyDict{
      {"segments", PyList{segment(0x100000, two_mib, "small",
                                  PyList{block(0x100000, 512, "inactive"),
                                         block(0x100200, 1024, "active_allocated"),
                                         block(0x100600, two_mib - 1536, "inactive")})}},
      {"device_traces",
       PyList{Py(PyList{
           entry("segment_alloc", 0x100000, two_mib, 1, model_stack),
           entry("alloc", 0x100000, 512, 2, model_stack),
           entry("alloc", 0x100200, 1024, 3, PyList{Py(frame("??", 0, "at::empty"))}),
           entry("free_requested", 0x100000, 512, 4),
           entry("free_completed", 0x100000, 512, 5),
           entry("segment_alloc", 0x400000, twenty_mib, 6),
           entry("segment_free", 0x400000, twenty_mib, 7),
           PyDict{{"action", "oom"},
                  {"size", 4 * two_mib},
                  {"stream", 0},
                  {"device_free", 1048576},
                  {"time_us", 8},
                  {"frames", PyList{Py(frame("train loop.py", 3, "<module>"))}}},
       })}},
      {"allocator_settings", PyDict{{"PYTORCH_CUDA_ALLOC_CONF", ""},
                                    {"max_split_size", 536870912},
                                    {"garbage_collection_threshold", 0.0},
                                    {"expandable_segments", false}}},
  });
}

TEST(PytorchAllocatorImport, SegmentEventsOomEndLayoutSettingsAndFrames) {
  MemorySink sink;
  auto report = import_pytorch_snapshot(from_empty_snapshot(), "run.pickle", sink);
  ASSERT_TRUE(report) << report.error().to_string();
  // Reserved at the oom: 2 MiB (the 20 MiB segment was allocated and freed again).
  const std::vector<std::string> expected = {
      "segment_alloc gpu:0 2097152 t=1000 addr=0x100000 stream=0 stack=0",
      "alloc gpu:0 512 t=2000 addr=0x100000 stream=0 stack=0",
      "alloc gpu:0 1024 t=3000 addr=0x100200 stream=0 stack=1",
      "free gpu:0 512 t=5000 addr=0x100000 stream=0",
      "segment_alloc gpu:0 20971520 t=6000 addr=0x400000 stream=0",
      "segment_free gpu:0 20971520 t=7000 addr=0x400000 stream=0",
      "oom gpu:0 8388608 t=8000 stream=0 device_free=1048576 reserved=2097152 stack=2",
      "check gpu:0 allocated=1024",
      "layout gpu:0 check segments=1",
      "segment gpu:0 2097152 addr=0x100000 stream=0 pool=small blocks=3",
      "block gpu:0 512 addr=0x100000 state=free",
      "block gpu:0 1024 addr=0x100200 state=allocated",
      "block gpu:0 2095616 addr=0x100600 state=free",
  };
  EXPECT_EQ(lines_of(sink), expected);
  // The recording's settings, in the header.
  ASSERT_TRUE(sink.recorded_header().allocator_settings.has_value());
  EXPECT_EQ(sink.recorded_header().allocator_settings->max_split_size, 536870912U);
  EXPECT_FALSE(sink.recorded_header().allocator_settings->expandable_segments);
  // Frames: three distinct, three distinct stacks, innermost first.
  ASSERT_NE(sink.recorded_header().frames, nullptr);
  const FrameTable& frames = *sink.recorded_header().frames;
  EXPECT_EQ(frames.frame_count(), 3U);
  EXPECT_EQ(frames.stack_count(), 3U);
  const auto model = frames.stack(0);
  ASSERT_EQ(model.size(), 2U);
  EXPECT_EQ(*model[0], (Frame{"model.py", 12, "forward"}));
  EXPECT_EQ(*model[1], (Frame{"train loop.py", 3, "<module>"}));
  ASSERT_EQ(frames.stack(1).size(), 1U);
  EXPECT_EQ(frames.stack(1)[0]->name, "at::empty");
  ASSERT_EQ(frames.stack(2).size(), 1U);
  EXPECT_EQ(frames.stack(2)[0], model[1]);  // one frame, shared
}

// CPython's pickler writes an object met again as a memo reference (BINGET): entries that share
// one list of frames, and stacks that share a frame, are the same values in the document. Each
// is interned once, and every entry still gets its own stack.
std::string raw(const Py& value) {
  std::string out;
  testing::pickle_value(out, value);
  return out;
}

std::string raw_list(const std::vector<std::string>& items) {
  std::string out = "]\x94(";
  for (const std::string& item : items)
    out += item;
  return out + "e";
}

std::string raw_dict(const std::vector<std::pair<std::string, std::string>>& items) {
  std::string out = "}\x94(";
  for (const auto& [key, item] : items)
    out += raw(Py(key)) + item;
  return out + "u";
}

std::string raw_alloc(std::int64_t addr, std::int64_t time, const std::string& frames) {
  return raw_dict({{"action", raw("alloc")},
                   {"addr", raw(addr)},
                   {"size", raw(512)},
                   {"stream", raw(0)},
                   {"time_us", raw(time)},
                   {"frames", frames}});
}

/// LONG_BINPUT and LONG_BINGET of memo index 1,000,000 + `k`: past any MEMOIZE index here.
std::string put(std::uint32_t k) {
  std::string out = "r";
  testing::put_le(out, 1'000'000 + k, 4);
  return out;
}
std::string get(std::uint32_t k) {
  std::string out = "j";
  testing::put_le(out, 1'000'000 + k, 4);
  return out;
}

/// One snapshot dict, its events given.
std::string raw_snapshot(const std::vector<std::string>& events) {
  return raw_dict({{"segments", raw_list({})}, {"device_traces", raw_list({raw_list(events)})}});
}

/// Four allocations: two share one list of frames (memo 0), two another (memo 2), and the lists
/// share a frame (memo 1).
std::string shared_frames_dict() {
  const std::string first_stack = raw_list({raw(frame("model.py", 12, "forward")),
                                            raw(frame("train loop.py", 3, "<module>")) + put(1)}) +
                                  put(0);
  const std::string second_stack =
      raw_list({get(1), raw(frame("data.py", 7, "load"))}) + put(2);  // the frame again
  return raw_snapshot({raw(Py(entry("segment_alloc", 0x100000, two_mib, 1))),
                       raw_alloc(0x100000, 2, first_stack), raw_alloc(0x100200, 3, get(0)),
                       raw_alloc(0x100400, 4, second_stack), raw_alloc(0x100600, 5, get(2)),
                       raw(Py(entry("free_completed", 0x100000, 512, 6))),
                       raw(Py(entry("free_completed", 0x100200, 512, 7))),
                       raw(Py(entry("free_completed", 0x100400, 512, 8))),
                       raw(Py(entry("free_completed", 0x100600, 512, 9))),
                       raw(Py(entry("segment_free", 0x100000, two_mib, 10)))});
}

std::string shared_frames_snapshot() {
  return "\x80\x04" + shared_frames_dict() + ".";
}

TEST(PytorchAllocatorImport, SharedFramesAndStacksAreInternedOnceAndKeptApart) {
  const std::string bytes = shared_frames_snapshot();
  MemorySink sink;
  auto report = import_pytorch_snapshot(bytes, "shared.pickle", sink);
  ASSERT_TRUE(report) << report.error().to_string();
  const std::vector<std::string> allocs = alloc_lines(sink);
  const std::vector<std::string> expected = {
      "alloc gpu:0 512 t=2000 addr=0x100000 stream=0 stack=0",
      "alloc gpu:0 512 t=3000 addr=0x100200 stream=0 stack=0",
      "alloc gpu:0 512 t=4000 addr=0x100400 stream=0 stack=1",
      "alloc gpu:0 512 t=5000 addr=0x100600 stream=0 stack=1",
  };
  EXPECT_EQ(allocs, expected);
  ASSERT_NE(sink.recorded_header().frames, nullptr);
  const FrameTable& frames = *sink.recorded_header().frames;
  EXPECT_EQ(frames.frame_count(), 3U);
  EXPECT_EQ(frames.stack_count(), 2U);
  ASSERT_EQ(frames.stack(1).size(), 2U);
  EXPECT_EQ(*frames.stack(1)[0], (Frame{"train loop.py", 3, "<module>"}));
  EXPECT_EQ(frames.stack(1)[0], frames.stack(0)[1]);  // the shared frame, one entry
  EXPECT_EQ(*frames.stack(1)[1], (Frame{"data.py", 7, "load"}));
}

// What an import remembers on the document's shared values is its own: the same document
// imported again gets its frames and stacks again, in its own table.
TEST(PytorchAllocatorImport, TheSameDocumentImportedTwiceGetsItsFramesBothTimes) {
  const std::string bytes = shared_frames_snapshot();
  auto document = pickle::parse(bytes, "shared.pickle");
  ASSERT_TRUE(document) << document.error().to_string();
  MemorySink first;
  ASSERT_TRUE(import_pytorch_snapshot_value(*document->root, "shared.pickle", first));
  MemorySink second;
  ASSERT_TRUE(import_pytorch_snapshot_value(*document->root, "shared.pickle", second));
  EXPECT_EQ(lines_of(second), lines_of(first));
  for (const MemorySink* sink : {&first, &second}) {
    ASSERT_NE(sink->recorded_header().frames, nullptr);
    EXPECT_EQ(sink->recorded_header().frames->frame_count(), 3U);
    EXPECT_EQ(sink->recorded_header().frames->stack_count(), 2U);
  }
}

// Two snapshots in one document, the second referring to the first's list of frames after
// frames of its own: the slot the first import left on that list names an entry of the second
// import's that is another value's, and is not taken for it.
TEST(PytorchAllocatorImport, ASlotAnotherImportLeftIsNotTakenForThisOnes) {
  const std::string own = raw_list({raw(frame("a.py", 1, "a")), raw(frame("b.py", 2, "b")),
                                    raw(frame("c.py", 3, "c")), raw(frame("d.py", 4, "d"))});
  const std::string second = raw_snapshot(
      {raw(Py(entry("segment_alloc", 0x100000, two_mib, 1))), raw_alloc(0x100000, 2, own),
       raw_alloc(0x100200, 3, get(2)), raw(Py(entry("free_completed", 0x100000, 512, 4))),
       raw(Py(entry("free_completed", 0x100200, 512, 5))),
       raw(Py(entry("segment_free", 0x100000, two_mib, 6)))});
  const std::string bytes = "\x80\x04" + raw_list({shared_frames_dict(), second}) + ".";
  auto document = pickle::parse(bytes, "two.pickle");
  ASSERT_TRUE(document) << document.error().to_string();
  ASSERT_EQ(document->root->items.size(), 2U);
  MemorySink first;
  ASSERT_TRUE(import_pytorch_snapshot_value(*document->root->items[0], "two.pickle", first));
  MemorySink sink;
  ASSERT_TRUE(import_pytorch_snapshot_value(*document->root->items[1], "two.pickle", sink));
  const std::vector<std::string> allocs = alloc_lines(sink);
  const std::vector<std::string> expected = {
      "alloc gpu:0 512 t=2000 addr=0x100000 stream=0 stack=0",
      "alloc gpu:0 512 t=3000 addr=0x100200 stream=0 stack=1",
  };
  EXPECT_EQ(allocs, expected);
  ASSERT_NE(sink.recorded_header().frames, nullptr);
  const FrameTable& frames = *sink.recorded_header().frames;
  EXPECT_EQ(frames.frame_count(), 6U);
  ASSERT_EQ(frames.stack(1).size(), 2U);
  EXPECT_EQ(*frames.stack(1)[0], (Frame{"train loop.py", 3, "<module>"}));
  EXPECT_EQ(*frames.stack(1)[1], (Frame{"data.py", 7, "load"}));
}

TEST(PytorchAllocatorImport, SettingsPytorchsSyntaxCannotSayAreNotCarried) {
  // A max_split_size of 1000 bytes (PyTorch's syntax takes whole MiB) and divisions that differ
  // per interval: the header would not read back as written, so the importer leaves them out.
  for (const PyDict& settings :
       {PyDict{{"max_split_size", 1000}},
        PyDict{{"roundup_power2_divisions", PyDict{{"1", 4}, {"2", 8}}}}}) {
    const std::string bytes = pickle_of(PyDict{
        {"segments", PyList{}},
        {"device_traces",
         PyList{Py(PyList{entry("alloc", 0x10, 8, 1), entry("free_completed", 0x10, 8, 2)})}},
        {"allocator_settings", settings},
    });
    MemorySink sink;
    auto report = import_pytorch_snapshot(bytes, "odd.pickle", sink);
    ASSERT_TRUE(report) << report.error().to_string();
    EXPECT_FALSE(sink.recorded_header().allocator_settings.has_value());
    bool noted = false;
    for (const std::string& note : report->notes)
      noted = noted || note.starts_with("allocator_settings not carried into the trace");
    EXPECT_TRUE(noted);
  }
  // Divisions the same in every interval are said as one number.
  const std::string bytes = pickle_of(PyDict{
      {"segments", PyList{}},
      {"device_traces",
       PyList{Py(PyList{entry("alloc", 0x10, 8, 1), entry("free_completed", 0x10, 8, 2)})}},
      {"allocator_settings", PyDict{{"roundup_power2_divisions", PyDict{{"1", 4},
                                                                        {"2", 4},
                                                                        {"4", 4},
                                                                        {"8", 4},
                                                                        {"16", 4},
                                                                        {"32", 4},
                                                                        {"64", 4},
                                                                        {"128", 4},
                                                                        {"256", 4},
                                                                        {"512", 4},
                                                                        {"1024", 4},
                                                                        {"2048", 4},
                                                                        {"4096", 4},
                                                                        {"8192", 4},
                                                                        {"16384", 4},
                                                                        {"32768", 4}}}}},
  });
  MemorySink sink;
  auto report = import_pytorch_snapshot(bytes, "four.pickle", sink);
  ASSERT_TRUE(report) << report.error().to_string();
  ASSERT_TRUE(sink.recorded_header().allocator_settings.has_value());
  EXPECT_EQ(sink.recorded_header().allocator_settings->to_string(), "roundup_power2_divisions:4");
}

TEST(PytorchAllocatorImport, StacksAndNamesTooLongForALineAreCutAndSaidSo) {
  // 3000 frames (a stack line holds 2048) and a name of 10000 bytes (a frame line keeps 8192 of
  // each text): cut, noted, and the trace reads back.
  PyList deep;
  for (int i = 0; i < 3000; ++i)
    deep.push_back(Py(frame("f.py", i, "f")));
  deep.push_back(Py(frame("g.py", 1, std::string(10000, 'x').c_str())));
  const std::string bytes = pickle_of(PyDict{
      {"segments", PyList{}},
      {"device_traces",
       PyList{Py(PyList{entry("alloc", 0x10, 8, 1, deep), entry("free_completed", 0x10, 8, 2)})}},
  });
  MemorySink sink;
  auto report = import_pytorch_snapshot(bytes, "deep.pickle", sink);
  ASSERT_TRUE(report) << report.error().to_string();
  ASSERT_NE(sink.recorded_header().frames, nullptr);
  const auto stack = sink.recorded_header().frames->stack(0);
  ASSERT_EQ(stack.size(), 2048U);
  EXPECT_EQ(stack[0]->line, 0U);  // the innermost 1024 ...
  EXPECT_EQ(stack[1023]->line, 1023U);
  EXPECT_EQ(stack[1024]->line, 1977U);  // ... and the outermost 1024 (3001 frames in all)
  EXPECT_EQ(stack[2047]->name.size(), 8192U);
  bool noted = false;
  for (const std::string& note : report->notes) {
    noted = noted || note.starts_with(
                         "1 stacks deeper than 2048 frames kept their 1024 "
                         "innermost and outermost; 1 frame names or paths cut at "
                         "8192 bytes");
  }
  EXPECT_TRUE(noted);
  auto events = testing::read_events(format_trace(sink.recorded_header(), sink.events()));
  ASSERT_TRUE(events) << events.error().to_string();
}

TEST(PytorchAllocatorImport, ImportFileWritesTheFrameTableAndReadsBack) {
  ScratchDir dir;
  testing::write_bytes(dir / "run.pickle", from_empty_snapshot());
  auto report = import_file(dir / "run.pickle", dir / "run.trace", std::nullopt);
  ASSERT_TRUE(report) << report.error().to_string();
  const std::string text = testing::read_bytes(dir / "run.trace");
  EXPECT_NE(text.find("\nallocator_settings max_split_size_mb:512\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\nevents\nframe 0 line=12 name=forward file=model.py\n"
                      "frame 1 line=3 name=<module> file=train%20loop.py\n"),
            std::string::npos)
      << text;
  auto reader = TraceReader::open(dir / "run.trace");
  ASSERT_TRUE(reader) << reader.error().to_string();
  TraceEvent event;
  std::vector<std::uint64_t> stacks;
  for (;;) {
    auto more = reader->next(event);
    ASSERT_TRUE(more) << more.error().to_string();
    if (!*more) break;
    if (event.stack) stacks.push_back(*event.stack);
  }
  EXPECT_EQ(stacks, (std::vector<std::uint64_t>{0, 0, 1, 2}));
  EXPECT_EQ(reader->events_read(), 13U);
  ASSERT_EQ(reader->frames().stack(0).size(), 2U);
  EXPECT_EQ(reader->frames().stack(0)[1]->file, "train loop.py");
}

TEST(PytorchAllocatorImport, AMidRunStartGetsItsLayoutBeforeTheFirstOperation) {
  // At snapshot time one small segment: 512 bytes allocated (from before the trace, with the
  // frames of its allocation), the rest cached. The trace frees a block of 1000 requested bytes at
  // 0x200200 that it never allocated: PyTorch rounded it to 1024. Then an oom: reserved is the 2
  // MiB segment from before.
  const std::string bytes = pickle_of(PyDict{
      {"segments",
       PyList{segment(0x200000, two_mib, "small",
                      PyList{PyDict{{"address", 0x200000},
                                    {"size", 512},
                                    {"requested_size", 512},
                                    {"state", "active_allocated"},
                                    {"frames", PyList{Py(frame("init.py", 7, "load"))}}},
                             block(0x200200, two_mib - 512, "inactive")})}},
      {"device_traces",
       PyList{Py(PyList{
           entry("free_completed", 0x200200, 1000, 1),
           PyDict{
               {"action", "oom"}, {"size", 1}, {"stream", 0}, {"device_free", 5}, {"time_us", 2}},
           PyDict{{"action", "oom"}, {"size", 3}, {"stream", 0}, {"time_us", 3}}})}},
  });
  MemorySink sink;
  auto report = import_pytorch_snapshot(bytes, "mid.pickle", sink);
  ASSERT_TRUE(report) << report.error().to_string();
  const std::vector<std::string> expected = {
      "layout gpu:0 start segments=1 undetermined=0",
      "segment gpu:0 2097152 addr=0x200000 stream=0 pool=small blocks=3",
      "block gpu:0 512 addr=0x200000 state=allocated",
      "block gpu:0 1024 addr=0x200200 state=allocated",
      "block gpu:0 2095616 addr=0x200600 state=free",
      "baseline gpu:0 512 addr=0x200000 stack=0",  // the block's own frames
      "baseline gpu:0 1000 addr=0x200200",
      "free gpu:0 1000 t=1000 addr=0x200200 stream=0",
      "oom gpu:0 1 t=2000 stream=0 device_free=5 reserved=2097152",
      "mark oom gpu:0 requested=3",  // no device_free: not enough for the model, a note
      "check gpu:0 allocated=512",
      "layout gpu:0 check segments=1",
      "segment gpu:0 2097152 addr=0x200000 stream=0 pool=small blocks=2",
      "block gpu:0 512 addr=0x200000 state=allocated",
      "block gpu:0 2096640 addr=0x200200 state=free",
  };
  EXPECT_EQ(lines_of(sink), expected);
  EXPECT_FALSE(sink.recorded_header().allocator_settings.has_value());  // the snapshot gave none
  ASSERT_NE(sink.recorded_header().frames, nullptr);
  ASSERT_EQ(sink.recorded_header().frames->stack(0).size(), 1U);
  EXPECT_EQ(*sink.recorded_header().frames->stack(0)[0], (Frame{"init.py", 7, "load"}));
  // What the importer wrote reads back (the reader checks both layouts' structure).
  auto events = testing::read_events(format_trace(sink.recorded_header(), sink.events()));
  ASSERT_TRUE(events) << events.error().to_string();
  EXPECT_EQ(events->size(), expected.size());
}

TEST(PytorchAllocatorImport, ALargeBlockFreedBeforeAnyAllocationIsUndetermined) {
  // A large segment from before the trace: a block of 1 MiB + 1 requested at its start is freed
  // in the trace. PyTorch may have left up to 1 MiB unsplit behind it: its extent is a guess.
  const std::int64_t requested = (1 << 20) + 1;
  const std::string bytes = pickle_of(PyDict{
      {"segments", PyList{segment(0x4000000, twenty_mib, "large",
                                  PyList{block(0x4000000, twenty_mib, "inactive")})}},
      {"device_traces", PyList{Py(PyList{entry("free_completed", 0x4000000, requested, 1)})}},
  });
  MemorySink sink;
  auto report = import_pytorch_snapshot(bytes, "large.pickle", sink);
  ASSERT_TRUE(report) << report.error().to_string();
  ASSERT_GE(sink.events().size(), 4U);
  EXPECT_EQ(format_event(sink.events()[0]), "layout gpu:0 start segments=1 undetermined=1");
  // 1 MiB + 1 rounds to 1 MiB + 512.
  EXPECT_EQ(format_event(sink.events()[2]), "block gpu:0 1049088 addr=0x4000000 state=allocated");
  EXPECT_EQ(format_event(sink.events()[3]),
            "block gpu:0 19922432 addr=0x4100200 state=free");  // 20 MiB - (1 MiB + 512)
}

TEST(PytorchAllocatorImport, SegmentEntriesOfNoBytesAreRefusedWithTheirPlace) {
  const std::string bytes = pickle_of(PyDict{
      {"segments", PyList{}},
      {"device_traces",
       PyList{Py(PyList{entry("alloc", 0x10, 8, 1), entry("segment_alloc", 0x100000, 0, 2)})}},
  });
  MemorySink sink;
  auto report = import_pytorch_snapshot(bytes, "zero.pickle", sink);
  ASSERT_FALSE(report);
  EXPECT_NE(report.error().to_string().find(
                "(device_traces[0][1]): expected a segment of at least 1 byte"),
            std::string::npos)
      << report.error().to_string();
}

TEST(PytorchAllocatorImport, SegmentsWhoseBlocksDoNotTileGetNoLayout) {
  // A block missing from the middle of the segment: the importer says so and writes no layout
  // rather than one the reader would refuse.
  const std::string bytes = pickle_of(PyDict{
      {"segments", PyList{segment(0x200000, two_mib, "small",
                                  PyList{block(0x200000, 512, "active_allocated"),
                                         block(0x200400, two_mib - 1024, "inactive")})}},
      {"device_traces", PyList{Py(PyList{entry("segment_alloc", 0x200000, two_mib, 1),
                                         entry("alloc", 0x200000, 512, 2)})}},
  });
  MemorySink sink;
  auto report = import_pytorch_snapshot(bytes, "gap.pickle", sink);
  ASSERT_TRUE(report) << report.error().to_string();
  for (const TraceEvent& event : sink.events())
    EXPECT_NE(event.kind, TraceEvent::Kind::Layout);
  bool noted = false;
  for (const std::string& note : report->notes) {
    noted = noted || note.find(
                         "gpu:0: no end layout: segments[0]: the blocks of the segment at "
                         "0x200000 do not tile it") != std::string::npos;
  }
  EXPECT_TRUE(noted);
  EXPECT_TRUE(testing::read_events(format_trace(sink.recorded_header(), sink.events())));
}

}  // namespace
}  // namespace memtrack::traces
