// The frame table: `frame` and `stack` lines, percent-encoded names and paths, kept by the reader
// (not returned as events, counted by the trailer), written by the writer before the events.
#include "test_support.hpp"

#include <memtrack/traces/frames.hpp>
#include <memtrack/traces/reader.hpp>
#include <memtrack/traces/writer.hpp>

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

namespace memtrack::traces {
namespace {

using testing::reader_of;
using testing::ScratchDir;

TEST(Frames, PercentEncodingEscapesExactlyTheDocumentedBytes) {
  EXPECT_EQ(percent_encode("model.py"), "model.py");
  EXPECT_EQ(percent_encode("a b"), "a%20b");
  EXPECT_EQ(percent_encode("#%="), "%23%25%3D");
  EXPECT_EQ(percent_encode(std::string("\t\n\x01\x7f", 4)), "%09%0A%01%7F");
  EXPECT_EQ(percent_encode("<lambda>:ü/,"), "<lambda>:ü/,");  // UTF-8 and the rest as they are
  auto decoded = percent_decode("a%20b%2c%3d");
  ASSERT_TRUE(decoded);
  EXPECT_EQ(*decoded, "a b,=");
  for (const char* bad : {"%", "%2", "%zz", "a%2g"}) {
    auto refused = percent_decode(bad);
    ASSERT_FALSE(refused) << bad;
    EXPECT_NE(refused.error().to_string().find("%XX"), std::string::npos);
  }
}

TEST(Frames, LinesRoundTrip) {
  const Frame frame{"/src/my model.py", 18446744073709551615ULL, "forward#2"};
  const std::string line = format_frame(7, frame);
  EXPECT_EQ(line, "frame 7 line=18446744073709551615 name=forward%232 file=/src/my%20model.py");
  FrameTable table;
  ASSERT_TRUE(parse_frame_table_line(line, table));
  ASSERT_NE(table.frame(7), nullptr);
  EXPECT_EQ(*table.frame(7), frame);
  ASSERT_TRUE(parse_frame_table_line("frame 2 file=b.py line=1 name=", table));  // any order
  EXPECT_EQ(*table.frame(2), (Frame{"b.py", 1, ""}));
  const std::vector<std::uint64_t> ids = {7, 2, 7};
  EXPECT_EQ(format_stack(4, ids), "stack 4 frames=7,2,7");
  ASSERT_TRUE(parse_frame_table_line("stack 4 frames=7,2,7", table));
  const auto stack = table.stack(4);
  ASSERT_EQ(stack.size(), 3U);
  EXPECT_EQ(stack[0]->name, "forward#2");  // innermost first
  EXPECT_EQ(stack[1]->file, "b.py");
  EXPECT_EQ(stack[2], stack[0]);
  EXPECT_TRUE(table.has_stack(4));
  EXPECT_FALSE(table.has_stack(5));
  EXPECT_TRUE(table.stack(5).empty());
}

TEST(Frames, RefusesMalformedLines) {
  const std::pair<const char*, const char*> bad[] = {
      {"frame x line=1 name=a file=b", "'frame ID'"},
      {"frame 1 line=1 name=a", "needs line=, name= and file="},
      {"frame 1 line=-1 name=a file=b", "line="},
      {"frame 1 line=1 name=a file=b colour=red", "expected 'frame ID line=N name=NAME file=PATH'"},
      {"frame 1 line=1 name=a file=b name=c", "name= given twice"},
      {"frame 1 line=1 name=a%2 file=b", "%XX"},
      {"frame 0 line=1 name=a file=b", "frame 0 is defined twice"},
      {"stack 1 frames=0,9", "names frame 9, which is not defined before it"},
      {"stack 1 frames=", "a frame id in frames="},
      {"stack 1 frames=0,,0", "a frame id in frames="},
      {"stack 1", "expected 'stack ID frames=F1,F2,...'"},
      {"stack 1 frames=0 frames=0", "expected 'stack ID frames=F1,F2,...'"},
      {"stack 0 frames=0", "stack 0 is defined twice"},
  };
  for (const auto& [line, expected] : bad) {
    FrameTable table;
    ASSERT_TRUE(parse_frame_table_line("frame 0 line=1 name=a file=b", table));
    ASSERT_TRUE(parse_frame_table_line("stack 0 frames=0", table));
    auto parsed = parse_frame_table_line(line, table);
    ASSERT_FALSE(parsed) << line << " was accepted";
    EXPECT_NE(parsed.error().to_string().find(expected), std::string::npos)
        << line << ": " << parsed.error().to_string();
  }
}

TEST(Frames, InterningKeepsOneOfEach) {
  FrameTable table;
  const std::uint64_t a = table.intern_frame(Frame{"a.py", 1, "f"});
  const std::uint64_t b = table.intern_frame(Frame{"a.py", 2, "f"});
  EXPECT_NE(a, b);
  EXPECT_EQ(table.intern_frame(Frame{"a.py", 1, "f"}), a);
  EXPECT_EQ(table.frame_count(), 2U);
  const std::vector<std::uint64_t> ab = {a, b};
  const std::vector<std::uint64_t> ba = {b, a};
  const std::uint64_t s = table.intern_stack(ab);
  EXPECT_NE(table.intern_stack(ba), s);
  EXPECT_EQ(table.intern_stack(ab), s);
  EXPECT_EQ(table.stack_count(), 2U);
  const std::vector<std::uint64_t> undefined = {99};
  EXPECT_THROW(static_cast<void>(table.intern_stack(undefined)), std::invalid_argument);
}

const char* const with_frames =
    "memtrack-trace 1\n"
    "events\n"
    "frame 0 line=12 name=forward file=/src/my%20model.py\n"
    "frame 1 line=3 name=%3Cmodule%3E file=train.py\n"
    "stack 0 frames=0,1\n"
    "alloc gpu:0 512 addr=0x0 stream=0 stack=0\n"
    "stack 1 frames=1\n"
    "free gpu:0 512 addr=0x0 stack=1\n"
    "end 6\n";

TEST(Frames, ReaderKeepsTheTableAndReturnsOnlyEvents) {
  auto reader = reader_of(with_frames);
  ASSERT_TRUE(reader) << reader.error().to_string();
  TraceEvent event;
  std::vector<TraceEvent> events;
  for (;;) {
    auto more = reader->next(event);
    ASSERT_TRUE(more) << more.error().to_string();
    if (!*more) break;
    events.push_back(event);
  }
  ASSERT_EQ(events.size(), 2U);
  EXPECT_EQ(reader->events_read(), 2U);
  EXPECT_EQ(events[0].stack, 0U);
  const auto stack = reader->frames().stack(0);
  ASSERT_EQ(stack.size(), 2U);
  EXPECT_EQ(*stack[0], (Frame{"/src/my model.py", 12, "forward"}));
  EXPECT_EQ(*stack[1], (Frame{"train.py", 3, "<module>"}));
  EXPECT_EQ(reader->frames().frame_count(), 2U);
  EXPECT_EQ(reader->frames().stack_count(), 2U);
}

TEST(Frames, ReaderRefusesWhatTheTableDoesNotDefine) {
  std::string text = with_frames;
  // An event naming a stack defined only after it.
  text.replace(text.find("stack=1"), 7, "stack=2");
  auto events = testing::read_events(text);
  ASSERT_FALSE(events);
  EXPECT_NE(events.error().to_string().find(
                "t.trace:8: stack=2 names no stack defined before it (expected a line 'stack 2"),
            std::string::npos)
      << events.error().to_string();
  // The trailer counts the table's lines with the events.
  std::string miscounted = with_frames;
  miscounted.replace(miscounted.find("end 6"), 5, "end 2");
  events = testing::read_events(miscounted);
  ASSERT_FALSE(events);
  EXPECT_NE(
      events.error().to_string().find(
          "the trailer says 2 events, but 6 were read (2 events and 4 frame and stack lines)"),
      std::string::npos)
      << events.error().to_string();
  // A bad table line is refused with its line.
  std::string bad = with_frames;
  bad.replace(bad.find("frames=0,1"), 10, "frames=0,5");
  events = testing::read_events(bad);
  ASSERT_FALSE(events);
  EXPECT_NE(events.error().to_string().find("t.trace:5: stack 0 names frame 5"), std::string::npos)
      << events.error().to_string();
}

TEST(Frames, WriterWritesTheTableBeforeTheEventsThatUseIt) {
  FrameTable table;
  const std::uint64_t inner = table.intern_frame(Frame{"a b.py", 5, "f=g"});
  const std::uint64_t outer = table.intern_frame(Frame{"main.py", 1, "<module>"});
  const std::vector<std::uint64_t> frames = {inner, outer};
  TraceEvent alloc = TraceEvent::allocate(Gpu{0}, 512);
  alloc.stack = table.intern_stack(frames);

  ScratchDir dir;
  auto writer = TraceWriter::create(dir / "f.trace", TraceHeader{});
  ASSERT_TRUE(writer);
  ASSERT_TRUE(writer->write_frames(table));
  ASSERT_TRUE(writer->write(alloc));
  // Grown later: only the new definitions are written.
  const std::vector<std::uint64_t> just_outer = {outer};
  TraceEvent free = TraceEvent::free(Gpu{0}, 512);
  free.stack = table.intern_stack(just_outer);
  ASSERT_TRUE(writer->write_frames(table));
  ASSERT_TRUE(writer->write(free));
  ASSERT_TRUE(writer->finish());

  const std::string text = testing::read_bytes(dir / "f.trace");
  EXPECT_EQ(text,
            "memtrack-trace 1\nevents\n"
            "frame 0 line=5 name=f%3Dg file=a%20b.py\n"
            "frame 1 line=1 name=<module> file=main.py\n"
            "stack 0 frames=0,1\n"
            "alloc gpu:0 512 stack=0\n"
            "stack 1 frames=1\n"
            "free gpu:0 512 stack=1\n"
            "end 6\n");
  auto reader = TraceReader::open(dir / "f.trace");
  ASSERT_TRUE(reader) << reader.error().to_string();
  TraceEvent event;
  while (true) {
    auto more = reader->next(event);
    ASSERT_TRUE(more) << more.error().to_string();
    if (!*more) break;
  }
  EXPECT_TRUE(reader->frames() == table);

  // A header that carries the table: written right after it, by format_trace and the writer.
  TraceHeader header;
  header.frames = std::make_shared<const FrameTable>(table);
  const std::string expected =
      "memtrack-trace 1\nevents\n"
      "frame 0 line=5 name=f%3Dg file=a%20b.py\n"
      "frame 1 line=1 name=<module> file=main.py\n"
      "stack 0 frames=0,1\n"
      "stack 1 frames=1\n"
      "alloc gpu:0 512 stack=0\n"
      "free gpu:0 512 stack=1\n"
      "end 6\n";
  EXPECT_EQ(format_trace(header, {alloc, free}), expected);
  EXPECT_TRUE(testing::read_events(expected));
  auto from_header = TraceWriter::create(dir / "h.trace", header);
  ASSERT_TRUE(from_header);
  ASSERT_TRUE(from_header->write_frames(*header.frames));  // nothing new: nothing written
  ASSERT_TRUE(from_header->write(alloc));
  ASSERT_TRUE(from_header->write(free));
  ASSERT_TRUE(from_header->finish());
  EXPECT_EQ(testing::read_bytes(dir / "h.trace"), expected);
}

}  // namespace
}  // namespace memtrack::traces
