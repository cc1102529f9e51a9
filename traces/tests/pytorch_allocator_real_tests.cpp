// The PyTorch importer on the real snapshots in ../shared/traces/pytorch: every segment entry of
// the recording becomes a segment event, the end layout has every block of the snapshot, the
// output reads back (layouts and frame table checked by the reader), and a trace with frames
// stays within 2x of the snapshot's size apart from its layouts (every figure is printed). Counted
// here from the pickle itself, not from the importer. Skips where the folder is absent.
#include "pickle.hpp"
#include "test_support.hpp"

#include <memtrack/traces/importers.hpp>
#include <memtrack/traces/reader.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string_view>

namespace memtrack::traces {
namespace {

using pickle::Value;

std::filesystem::path shared_pytorch() {
  if (const char* dir = std::getenv("MEMTRACK_SHARED_TRACES")) {
    return std::filesystem::path(dir) / "pytorch";
  }
  return std::filesystem::path(MEMTRACK_SHARED_TRACES_DIR) / "pytorch";
}

/// What the snapshot itself holds, counted from its values.
struct Counted {
  std::uint64_t segment_entries{0};  ///< segment_alloc, segment_free, segment_map, segment_unmap
  std::uint64_t blocks{0};           ///< blocks of the segments at snapshot time
  std::uint64_t segments{0};
};

Counted count(const Value& root) {
  Counted counted;
  const Value* segments = root.get("segments");
  for (const Value* segment : segments->items) {
    ++counted.segments;
    counted.blocks += segment->get("blocks")->items.size();
  }
  if (const Value* traces = root.get("device_traces")) {
    for (const Value* trace : traces->items) {
      for (const Value* entry : trace->items) {
        const std::string_view action = entry->get("action")->text;
        if (action.starts_with("segment_")) ++counted.segment_entries;
      }
    }
  }
  return counted;
}

TEST(PytorchAllocatorImportReal, SegmentEventsAndEndBlocksMatchTheSnapshot) {
  const auto folder = shared_pytorch();
  if (!std::filesystem::exists(folder)) {
    GTEST_SKIP() << "skipped: " << folder.string()
                 << " is absent (set MEMTRACK_SHARED_TRACES to the shared traces to run this test)";
  }
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(folder)) {
    if (entry.path().extension() == ".pickle") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  ASSERT_FALSE(files.empty());
  testing::ScratchDir dir;
  for (const auto& file : files) {
    SCOPED_TRACE(file.filename().string());
    const std::string bytes = testing::read_bytes(file);
    auto document = pickle::parse(bytes, file.string());
    ASSERT_TRUE(document) << document.error().to_string();
    const Counted counted = count(*document->root);

    MemorySink sink;
    auto report = import_pytorch_snapshot(bytes, file.string(), sink);
    ASSERT_TRUE(report) << report.error().to_string();
    std::uint64_t segment_events = 0;
    std::uint64_t end_blocks = 0;
    std::uint64_t end_segments = 0;
    std::uint64_t start_segments = 0;
    bool in_end_layout = false;
    for (const TraceEvent& event : sink.events()) {
      switch (event.kind) {
        case TraceEvent::Kind::SegmentAlloc:
        case TraceEvent::Kind::SegmentFree:
        case TraceEvent::Kind::SegmentMap:
        case TraceEvent::Kind::SegmentUnmap:
          ++segment_events;
          break;
        case TraceEvent::Kind::Layout:
          in_end_layout = event.phase == TraceEvent::LayoutPhase::check;
          break;
        case TraceEvent::Kind::Segment:
          ++(in_end_layout ? end_segments : start_segments);
          break;
        case TraceEvent::Kind::Block:
          if (in_end_layout) ++end_blocks;
          break;
        default:
          break;
      }
    }
    EXPECT_EQ(segment_events, counted.segment_entries);
    EXPECT_EQ(end_segments, counted.segments);
    EXPECT_EQ(end_blocks, counted.blocks);

    // Written with its frames: reads back whole, and stays within 2x of the snapshot.
    const auto out = dir / (file.stem().string() + ".trace");
    auto imported = import_file(file, out, SourceFormat::PytorchSnapshot);
    ASSERT_TRUE(imported) << imported.error().to_string();
    auto events = testing::read_events(testing::read_bytes(out));
    ASSERT_TRUE(events) << events.error().to_string();
    EXPECT_EQ(events->size(), sink.events().size());
    const std::string text = testing::read_bytes(out);
    std::uint64_t layout_bytes = 0;  // the layouts' lines: two a block, where the pickle shares
    for (std::size_t at = 0; at < text.size();) {
      const std::size_t next = text.find('\n', at) + 1;
      const std::string_view line(text.data() + at, next - at);
      if (line.starts_with("layout ") || line.starts_with("segment ") ||
          line.starts_with("block ")) {
        layout_bytes += line.size();
      }
      at = next;
    }
    const std::uint64_t trace_bytes = text.size();
    const std::uint64_t frames =
        sink.recorded_header().frames ? sink.recorded_header().frames->frame_count() : 0;
    const std::uint64_t stacks =
        sink.recorded_header().frames ? sink.recorded_header().frames->stack_count() : 0;
    std::cout << file.filename().string() << ": " << counted.segment_entries << " segment events, "
              << start_segments << " start segments, " << end_segments << " end segments with "
              << end_blocks << " blocks; " << frames << " frames, " << stacks
              << " stacks; snapshot " << bytes.size() << " bytes, trace " << trace_bytes
              << " bytes (" << (trace_bytes * 100 / bytes.size()) << "%), of which layouts "
              << layout_bytes << " bytes; without them "
              << ((trace_bytes - layout_bytes) * 100 / bytes.size()) << "%\n";
    // The frames' promise (issue 14): a trace with frames within 2x of the snapshot. Measured
    // without the layouts, which carry the allocator's state block by block (a snapshot with
    // many blocks and a short trace, like sketchkv2, is dominated by them); printed whole.
    EXPECT_LE(trace_bytes - layout_bytes, 2 * bytes.size());
  }
}

}  // namespace
}  // namespace memtrack::traces
