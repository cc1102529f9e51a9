// The caching allocator's own truth in the trace format: segment events, layouts (segments and
// their blocks), oom, and the header's allocator_settings. Every line round trips; every malformed
// form is refused with its line and what was expected.
#include "test_support.hpp"

#include <memtrack/traces/reader.hpp>
#include <memtrack/traces/trace.hpp>
#include <memtrack/traces/writer.hpp>

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <string>
#include <vector>

namespace memtrack::traces {
namespace {

using sim::allocators::BlockState;
using sim::allocators::PoolKind;
using testing::read_events;
using testing::reader_of;
using Kind = TraceEvent::Kind;

constexpr std::uint64_t operator""_MiB(unsigned long long n) {
  return n << 20U;
}

std::string trace_of(const std::vector<std::string>& lines) {
  std::string text = "memtrack-trace 1\nevents\n";
  for (const std::string& line : lines)
    text += line + "\n";
  return text + "end " + std::to_string(lines.size()) + "\n";
}

/// Parses `line`, expects `format_event` to give it back exactly, and returns the event.
TraceEvent round_trip(const std::string& line) {
  auto event = parse_event(line);
  EXPECT_TRUE(event) << line << ": " << event.error().to_string();
  if (!event) return {};
  EXPECT_EQ(format_event(*event), line);
  auto again = parse_event(format_event(*event));
  EXPECT_TRUE(again && *again == *event) << line;
  return *event;
}

TEST(AllocatorEvents, SegmentEventsRoundTrip) {
  const std::pair<const char*, Kind> kinds[] = {{"segment_alloc", Kind::SegmentAlloc},
                                                {"segment_free", Kind::SegmentFree},
                                                {"segment_map", Kind::SegmentMap},
                                                {"segment_unmap", Kind::SegmentUnmap}};
  for (const auto& [word, kind] : kinds) {
    const TraceEvent event =
        round_trip(std::string(word) + " gpu:1 20971520 addr=0x7f0000000000 stream=7");
    EXPECT_EQ(event.kind, kind);
    EXPECT_EQ(event.device, DevicePlacement(Gpu{1}));
    EXPECT_EQ(event.bytes, 20_MiB);
    EXPECT_EQ(event.address, 0x7f0000000000U);
    EXPECT_EQ(event.stream, 7U);
    EXPECT_FALSE(event.time_ns.has_value());
    EXPECT_FALSE(event.stack.has_value());
  }
  const TraceEvent timed =
      round_trip("segment_alloc gpu:0 2097152 t=5000 addr=0x10000 stream=0 stack=3");
  EXPECT_EQ(timed.time_ns, 5000U);
  EXPECT_EQ(timed.stack, 3U);
  EXPECT_EQ(timed.bytes, 2_MiB);
}

TEST(AllocatorEvents, LayoutSegmentBlockRoundTrip) {
  const TraceEvent start = round_trip("layout gpu:0 start segments=3 undetermined=2");
  EXPECT_EQ(start.kind, Kind::Layout);
  EXPECT_EQ(start.phase, TraceEvent::LayoutPhase::start);
  EXPECT_EQ(start.count, 3U);
  EXPECT_EQ(start.undetermined, 2U);
  const TraceEvent check = round_trip("layout gpu:2 check segments=9");
  EXPECT_EQ(check.phase, TraceEvent::LayoutPhase::check);
  EXPECT_EQ(check.device, DevicePlacement(Gpu{2}));
  EXPECT_EQ(check.count, 9U);
  EXPECT_FALSE(check.undetermined.has_value());

  const TraceEvent segment =
      round_trip("segment gpu:0 2097152 addr=0x7f0000200000 stream=0 pool=small blocks=4");
  EXPECT_EQ(segment.kind, Kind::Segment);
  EXPECT_EQ(segment.bytes, 2_MiB);
  EXPECT_EQ(segment.address, 0x7f0000200000U);
  EXPECT_EQ(segment.pool, PoolKind::small);
  EXPECT_EQ(segment.count, 4U);
  EXPECT_FALSE(segment.expandable);
  const TraceEvent expandable = round_trip(
      "segment gpu:0 41943040 addr=0x7f0000000000 stream=3 pool=large expandable=1 "
      "blocks=1");
  EXPECT_TRUE(expandable.expandable);
  EXPECT_EQ(expandable.pool, PoolKind::large);
  EXPECT_EQ(expandable.stream, 3U);

  const std::pair<const char*, BlockState> states[] = {{"allocated", BlockState::allocated},
                                                       {"free", BlockState::free},
                                                       {"unmapped", BlockState::unmapped}};
  for (const auto& [name, state] : states) {
    const TraceEvent block =
        round_trip("block gpu:0 512 addr=0x7f0000200200 state=" + std::string(name));
    EXPECT_EQ(block.kind, Kind::Block);
    EXPECT_EQ(block.bytes, 512U);
    EXPECT_EQ(block.address, 0x7f0000200200U);
    EXPECT_EQ(block.block_state, state);
  }
  // expandable=0 is the default, written as nothing.
  auto plain = parse_event("segment gpu:0 512 addr=0x0 stream=0 pool=small expandable=0 blocks=1");
  ASSERT_TRUE(plain);
  EXPECT_FALSE(plain->expandable);
}

TEST(AllocatorEvents, OomRoundTrip) {
  const TraceEvent oom = round_trip("oom gpu:0 20971520 stream=0 device_free=1048576 reserved=123");
  EXPECT_EQ(oom.kind, Kind::Oom);
  EXPECT_EQ(oom.bytes, 20_MiB);
  EXPECT_EQ(oom.stream, 0U);
  EXPECT_EQ(oom.device_free, 1_MiB);
  EXPECT_EQ(oom.check_reserved, 123U);
  const TraceEvent bare = round_trip("oom gpu:1 1 t=99 stream=2 device_free=0 stack=0");
  EXPECT_FALSE(bare.check_reserved.has_value());
  EXPECT_EQ(bare.time_ns, 99U);
  EXPECT_EQ(bare.stack, 0U);
  EXPECT_EQ(bare.device_free, 0U);
}

TEST(AllocatorEvents, StackOnOperations) {
  EXPECT_EQ(round_trip("alloc gpu:0 4096 addr=0x100 stream=0 stack=12").stack, 12U);
  EXPECT_EQ(round_trip("free gpu:0 4096 addr=0x100 stack=1").stack, 1U);
  EXPECT_EQ(round_trip("baseline gpu:0 4096 addr=0x100 stack=0").stack, 0U);
}

TEST(AllocatorEvents, RefusesMalformedLinesSayingWhatWasExpected) {
  const std::pair<const char*, const char*> bad[] = {
      {"segment_alloc cpu 512 addr=0x0 stream=0", "needs a GPU"},
      {"segment_alloc gpu:0 512 stream=0", "needs addr="},
      {"segment_free gpu:0 512 addr=0x0", "needs stream="},
      {"segment_map gpu:0 addr=0x0 stream=0", "needs its bytes"},
      {"segment_unmap gpu:0 0 addr=0x0 stream=0", "of 0 bytes"},
      {"segment_alloc gpu:0 512 addr=0xffffffffffffff00 stream=0", "beyond 2^64 - 1"},
      {"segment_alloc gpu:0 512 addr=0x0 stream=0 tag=x", "unknown field 'tag='"},
      {"segment_alloc gpu:0 512 addr=0x0 stream=0 stack=x", "stack="},
      {"layout gpu:0 segments=3", "start|check"},
      {"layout gpu:0 middle segments=3", "start|check"},
      {"layout gpu:0 start", "needs segments="},
      {"layout gpu:0 check segments=2 undetermined=1", "'layout DEVICE start'"},
      {"layout cpu start segments=1", "needs a GPU"},
      {"layout gpu:0 start segments=1 blocks=2", "unknown field 'blocks='"},
      {"segment gpu:0 512 addr=0x0 stream=0 blocks=1", "needs pool="},
      {"segment gpu:0 512 addr=0x0 stream=0 pool=medium blocks=1", "pool=small or pool=large"},
      {"segment gpu:0 512 addr=0x0 stream=0 pool=small", "needs blocks="},
      {"segment gpu:0 512 addr=0x0 stream=0 pool=small blocks=0", "at least one block"},
      {"segment gpu:0 512 addr=0x0 stream=0 pool=small expandable=yes blocks=1", "expandable=1"},
      {"segment gpu:0 512 stream=0 pool=small blocks=1", "needs addr="},
      {"block gpu:0 512 addr=0x0", "needs state="},
      {"block gpu:0 512 addr=0x0 state=busy", "state=allocated, free or unmapped"},
      {"block gpu:0 512 state=free", "needs addr="},
      {"block gpu:0 0 addr=0x0 state=free", "of 0 bytes"},
      {"block gpu:0 512 addr=0x0 state=free stream=1", "unknown field 'stream='"},
      {"oom gpu:0 512 device_free=0", "needs stream="},
      {"oom gpu:0 512 stream=0", "needs device_free="},
      {"oom gpu:0 stream=0 device_free=0", "needs its bytes"},
      {"oom auto 512 stream=0 device_free=0", "concrete device"},
      {"oom gpu:0 512 stream=0 device_free=0 addr=0x10", "unknown field 'addr='"},
      {"alloc gpu:0 512 device_free=3", "unknown field 'device_free='"},
      {"alloc gpu:0 512 pool=small", "unknown field 'pool='"},
      {"check gpu:0 allocated=1 stack=2", "unknown field 'stack='"},
      {"alloc gpu:0 512 stack=1 stack=2", "given twice"},
  };
  for (const auto& [line, expected] : bad) {
    auto event = parse_event(line);
    ASSERT_FALSE(event) << line << " was accepted";
    EXPECT_NE(event.error().to_string().find(expected), std::string::npos)
        << line << ": " << event.error().to_string();
  }
}

RC_GTEST_PROP(AllocatorEvents, EveryAllocatorEventFormatsAndParsesBack, ()) {
  TraceEvent event;
  event.kind =
      *rc::gen::element(Kind::SegmentAlloc, Kind::SegmentFree, Kind::SegmentMap, Kind::SegmentUnmap,
                        Kind::Layout, Kind::Segment, Kind::Block, Kind::Oom);
  event.device = Gpu{*rc::gen::inRange<std::uint32_t>(0, 256)};
  const auto maybe = [] {
    return *rc::gen::arbitrary<bool>() ? std::optional<std::uint64_t>{}
                                       : *rc::gen::arbitrary<std::uint64_t>();
  };
  const std::uint64_t bytes = *rc::gen::inRange<std::uint64_t>(1, UINT64_MAX);
  const std::uint64_t address = *rc::gen::inRange<std::uint64_t>(0, UINT64_MAX - bytes + 1);
  switch (event.kind) {
    case Kind::Layout:
      event.phase =
          *rc::gen::element(TraceEvent::LayoutPhase::start, TraceEvent::LayoutPhase::check);
      event.count = *rc::gen::arbitrary<std::uint64_t>();
      if (event.phase == TraceEvent::LayoutPhase::start) event.undetermined = maybe();
      break;
    case Kind::Segment:
      event.bytes = bytes;
      event.address = address;
      event.stream = *rc::gen::arbitrary<std::uint64_t>();
      event.pool = *rc::gen::element(PoolKind::small, PoolKind::large);
      event.expandable = *rc::gen::arbitrary<bool>();
      event.count = *rc::gen::inRange<std::uint64_t>(1, UINT64_MAX);
      break;
    case Kind::Block:
      event.bytes = bytes;
      event.address = address;
      event.block_state =
          *rc::gen::element(BlockState::allocated, BlockState::free, BlockState::unmapped);
      break;
    case Kind::Oom:
      event.bytes = *rc::gen::arbitrary<std::uint64_t>();
      event.stream = *rc::gen::arbitrary<std::uint64_t>();
      event.device_free = *rc::gen::arbitrary<std::uint64_t>();
      event.check_reserved = maybe();
      event.time_ns = maybe();
      event.stack = maybe();
      break;
    default:  // segment events
      event.bytes = bytes;
      event.address = address;
      event.stream = *rc::gen::arbitrary<std::uint64_t>();
      event.time_ns = maybe();
      event.stack = maybe();
      break;
  }
  const std::string line = format_event(event);
  auto parsed = parse_event(line);
  RC_ASSERT(parsed.has_value());
  RC_ASSERT(*parsed == event);
}

// ---- the reader's check of a layout group ----

const std::vector<std::string> good_layout = {
    "alloc gpu:0 512 addr=0x1000 stream=0",
    "layout gpu:0 check segments=2",
    "segment gpu:0 2097152 addr=0x0 stream=0 pool=small blocks=2",
    "block gpu:0 512 addr=0x0 state=allocated",
    "block gpu:0 2096640 addr=0x200 state=free",
    "segment gpu:0 20971520 addr=0x200000 stream=0 pool=large expandable=1 blocks=1",
    "block gpu:0 20971520 addr=0x200000 state=unmapped",
    "layout gpu:1 start segments=0",
    "free gpu:0 512 addr=0x1000",
};

TEST(AllocatorEvents, ReaderReturnsAWellFormedLayout) {
  auto events = read_events(trace_of(good_layout));
  ASSERT_TRUE(events) << events.error().to_string();
  ASSERT_EQ(events->size(), good_layout.size());
  for (std::size_t i = 0; i < good_layout.size(); ++i)
    EXPECT_EQ(format_event((*events)[i]), good_layout[i]);
}

/// Replaces line `index` of the good layout (or inserts before it) and expects a refusal at
/// trace line `line` (two header lines come first) saying `expected`.
void expect_refused(std::vector<std::string> lines, std::uint64_t line,
                    const std::string& expected) {
  auto events = read_events(trace_of(lines));
  ASSERT_FALSE(events) << "accepted: " << trace_of(lines);
  const std::string message = events.error().to_string();
  EXPECT_NE(message.find("t.trace:" + std::to_string(line) + ": "), std::string::npos) << message;
  EXPECT_NE(message.find(expected), std::string::npos) << message;
}

TEST(AllocatorEvents, ReaderRefusesMalformedLayoutsAtTheirLine) {
  // Events are on trace lines 3.. (line 3 is good_layout[0]).
  auto lines = good_layout;
  lines[3] = "block gpu:0 512 addr=0x200 state=allocated";  // does not start the segment
  expect_refused(lines, 6, "expected the next block at 0x0");

  lines = good_layout;
  lines[4] = "block gpu:0 2096641 addr=0x200 state=free";  // past the segment's end
  expect_refused(lines, 7, "ends past its segment's end 0x200000");

  lines = good_layout;
  lines[4] = "block gpu:0 1024 addr=0x200 state=free";  // leaves a hole at the end
  expect_refused(lines, 7, "short of the segment's end 0x200000");

  lines = good_layout;
  lines[4] = "alloc gpu:0 512";  // an event inside the group
  expect_refused(lines, 7, "expected a block line (1 more of the current segment)");

  lines = good_layout;
  lines[5] = "free gpu:0 512 addr=0x1000";  // segment 2 missing
  expect_refused(lines, 8, "expected segment 2 of 2 of the layout at line 4");

  lines = good_layout;
  lines[3] = "block gpu:1 512 addr=0x0 state=allocated";  // another device
  expect_refused(lines, 6, "which is of gpu:0");

  lines = good_layout;
  lines[2] = "segment gpu:1 2097152 addr=0x0 stream=0 pool=small blocks=2";
  expect_refused(lines, 5, "which is of gpu:0");

  lines = good_layout;
  lines[5] = "segment gpu:0 20971520 addr=0x100000 stream=0 pool=large blocks=1";  // overlaps
  lines[6] = "block gpu:0 20971520 addr=0x100000 state=free";
  expect_refused(lines, 8, "ascending address order without overlap");

  lines = good_layout;
  lines.insert(lines.begin(), "block gpu:0 512 addr=0x0 state=free");  // no layout before it
  expect_refused(lines, 3, "block outside a layout");

  lines = good_layout;
  lines.insert(lines.begin(), "segment gpu:0 512 addr=0x0 stream=0 pool=small blocks=1");
  expect_refused(lines, 3, "segment outside a layout");

  // Cut short before the trailer: no allocation from the count, a clear refusal.
  expect_refused({"layout gpu:0 start segments=18446744073709551615",
                  "segment gpu:0 512 addr=0x0 stream=0 pool=small blocks=18446744073709551615",
                  "block gpu:0 512 addr=0x0 state=free"},
                 6, "the layout at line 3 is cut short: 18446744073709551615 of its");
  expect_refused(
      {"layout gpu:0 start segments=2", "segment gpu:0 512 addr=0x0 stream=0 pool=small blocks=1",
       "block gpu:0 512 addr=0x0 state=free"},
      6, "the layout at line 3 is cut short: 1 of its 2 segments");
}

TEST(AllocatorEvents, HeaderCarriesAllocatorSettings) {
  const std::string text =
      "memtrack-trace 1\nallocator_settings expandable_segments:True,max_split_size_mb:512\n"
      "events\nalloc gpu:0 1\nend 1\n";
  auto reader = reader_of(text);
  ASSERT_TRUE(reader) << reader.error().to_string();
  ASSERT_TRUE(reader->header().allocator_settings.has_value());
  const auto& settings = *reader->header().allocator_settings;
  EXPECT_TRUE(settings.expandable_segments);
  EXPECT_EQ(settings.max_split_size, 512_MiB);
  // Written back in PyTorch's syntax, read back equal.
  const std::string written = format_header(reader->header());
  EXPECT_NE(written.find("\nallocator_settings "), std::string::npos) << written;
  auto again = reader_of(written + "end 0\n");
  ASSERT_TRUE(again) << again.error().to_string();
  EXPECT_EQ(again->header().allocator_settings, settings);

  // The defaults: an empty text.
  auto defaults = reader_of("memtrack-trace 1\nallocator_settings\nevents\nend 0\n");
  ASSERT_TRUE(defaults) << defaults.error().to_string();
  EXPECT_EQ(defaults->header().allocator_settings, sim::allocators::AllocatorSettings{});
  // None given: none known.
  auto absent = reader_of("memtrack-trace 1\nevents\nend 0\n");
  ASSERT_TRUE(absent);
  EXPECT_FALSE(absent->header().allocator_settings.has_value());

  auto unknown = reader_of("memtrack-trace 1\nallocator_settings colour:blue\nevents\nend 0\n");
  ASSERT_FALSE(unknown);
  EXPECT_NE(unknown.error().to_string().find("t.trace:2: "), std::string::npos);
  EXPECT_NE(unknown.error().to_string().find("colour"), std::string::npos)
      << unknown.error().to_string();
  auto twice =
      reader_of("memtrack-trace 1\nallocator_settings\nallocator_settings\nevents\nend 0\n");
  ASSERT_FALSE(twice);
  EXPECT_NE(twice.error().to_string().find("t.trace:3: allocator_settings given twice"),
            std::string::npos);
}

}  // namespace
}  // namespace memtrack::traces
