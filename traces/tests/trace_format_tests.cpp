// The canonical trace format: one event a line, a header, a trailer; streaming, compressed.
#include "import_support.hpp"
#include "test_support.hpp"

#include <memtrack/traces/reader.hpp>
#include <memtrack/traces/trace.hpp>
#include <memtrack/traces/writer.hpp>

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <cctype>
#include <cstdio>

namespace memtrack::traces {
namespace {

using testing::read_events;
using testing::reader_of;
using testing::ScratchDir;

constexpr const char* header = "memtrack-trace 1\nsource test\ngpu 0 total=1024\nevents\n";

// The reader parses alloc and free lines on a path of their own (HotCursor); a number of any
// length, with leading zeros, and hexadecimal of either case, must read as written.
RC_GTEST_PROP(HotLines, NumbersOfEveryLengthAndCaseReadAsWritten, ()) {
  const auto lines = *rc::gen::inRange<std::size_t>(1, 40);
  std::string text = header;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> expected;  // bytes, address
  for (std::size_t i = 0; i < lines; ++i) {
    const auto decimal_digits = *rc::gen::inRange<int>(1, 21);
    std::uint64_t bytes = *rc::gen::arbitrary<std::uint64_t>();
    if (decimal_digits < 20) {
      std::uint64_t bound = 1;
      for (int d = 0; d < decimal_digits; ++d)
        bound *= 10;
      bytes %= bound;
    }
    const auto zeros = *rc::gen::inRange<std::size_t>(0, 3);
    const auto hex_digits = *rc::gen::inRange<unsigned>(1, 17);
    std::uint64_t address = *rc::gen::arbitrary<std::uint64_t>();
    if (hex_digits < 16) address &= (std::uint64_t{1} << (4 * hex_digits)) - 1;
    char hex[17];
    std::snprintf(hex, sizeof hex, "%llx", static_cast<unsigned long long>(address));
    for (char& c : hex) {
      if (std::isalpha(static_cast<unsigned char>(c)) != 0 && *rc::gen::arbitrary<bool>()) {
        c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      }
    }
    const bool free = *rc::gen::arbitrary<bool>();
    text += std::string(free ? "free" : "alloc") + " gpu:0 " + std::string(zeros, '0') +
            std::to_string(bytes) + " addr=0x" + hex +
            (*rc::gen::arbitrary<bool>() ? " stream=7\n" : "\n");
    expected.emplace_back(bytes, address);
  }
  text += "end " + std::to_string(lines) + "\n";
  auto events = read_events(text);
  RC_ASSERT(events.has_value());
  RC_ASSERT(events->size() == lines);
  for (std::size_t i = 0; i < lines; ++i) {
    RC_ASSERT((*events)[i].bytes == expected[i].first);
    RC_ASSERT((*events)[i].address == expected[i].second);
  }
}

TEST(HotLines, NumbersPastTheirRangeAreRefused) {
  for (const char* line :
       {"alloc gpu:0 18446744073709551616 addr=0x1", "alloc gpu:0 99999999999999999999 addr=0x1",
        "alloc gpu:0 12 addr=0x10000000000000000", "alloc gpu:0 12 addr=0x",
        "alloc gpu:0 12 addr=0x12g4", "alloc gpu:0 12 addr=0x1G", "alloc gpu:0 12 addr=0x1@",
        "alloc gpu:0 12 addr=0x1`", "alloc gpu:0 12 addr=0x1/", "alloc gpu:0 12 addr=0x1:",
        "alloc gpu:0 1x2 addr=0x1", "alloc gpu:0 1/ addr=0x1", "alloc gpu:0 1: addr=0x1"}) {
    const std::string text = std::string(header) + line + "\nend 1\n";
    EXPECT_FALSE(read_events(text)) << line;
  }
  // The largest of each reads whole.
  auto events = read_events(std::string(header) +
                            "alloc gpu:0 18446744073709551615 addr=0xFFFFffffFFFFffff\nend 1\n");
  ASSERT_TRUE(events) << events.error().to_string();
  EXPECT_EQ(events->at(0).bytes, UINT64_MAX);
  EXPECT_EQ(events->at(0).address, UINT64_MAX);
}

/// What the reader makes of a line the one-pass reading leaves: the general parser, on the line
/// without its comment and surrounding blanks.
Result<void> general(std::string_view line, TraceEvent& event) {
  return detail::parse_general_event(textkit::content(line), event);
}

/// A line of pieces that each sit near an edge of the grammar: each piece is one a valid line of
/// its kind has, most of the time, and otherwise one character or one rule off.
std::string hot_line_candidate() {
  using rc::gen::element;
  const auto off = [] { return *rc::gen::inRange(0, 16) == 0; };  // one piece in sixteen
  const std::string kind =
      off() ? *element<std::string>("allocx", "reset_peak", "mark", "Alloc", "segment_alloc")
            : *element<std::string>("alloc", "free", "check", "baseline");
  const bool check = kind == "check";
  const auto blank = [&] {
    return off() ? *element<std::string>("\t", "  ", "", "\r") : std::string(" ");
  };
  std::string line = kind + blank();
  line += off() ? *element<std::string>("auto", "gpu:01", "gpu:4294967296", "cpux", "gpu:", "GPU:0",
                                        "gpu:1x", "")
                : *element<std::string>("gpu:0", "gpu:3", "gpu:4294967295", "cpu",
                                        kind == "alloc" ? "auto" : "cpu");
  const auto number = [&] {
    return off() ? *element<std::string>("18446744073709551616", "1KiB", "", "x", "-1")
                 : *element<std::string>("0", "17", "0099", "123456789", "123456789012",
                                         "1234567890123456789", "18446744073709551615");
  };
  if (check ? off() : !off()) line += blank() + number();
  if (check && !off()) line += blank() + "allocated=" + number();
  const auto word = [&] {
    std::string text;
    for (auto length = *rc::gen::inRange(off() ? 0 : 1, 5); length > 0; --length) {
      text += off() ? *element<char>('#', '\r', '\x01', '\x7f', '\xc3', '\t')
                    : *element<char>('a', 'Z', '9', '_', '-', '=', ':', '.', '/');
    }
    return text;
  };
  for (auto fields = *rc::gen::inRange(0, 5); fields > 0; --fields) {
    line += blank();
    // 0-6: fields of every hot line (but no stack= on a check: 8, reserved=, instead)
    int field = off() ? *rc::gen::inRange(7, 11) : *rc::gen::inRange(0, 7);
    if (check && field == 3) field = 8;
    switch (field) {
      case 0:
        line +=
            "addr=0x" + (off() ? *element<std::string>("10000000000000000", "", "g", "1G")
                               : *element<std::string>("7f00", "FFFFffffFFFFffff", "0", "abcdef012",
                                                       "123456789aB", "0123456789ABCDe"));
        break;
      case 1:
        line += "t=" + number();
        break;
      case 2:
        line += "stream=" + number();
        break;
      case 3:
        line += "stack=" + number();
        break;
      case 4:
        line += "tag=" + word();
        break;
      case 5:
        line += "result=" + (off() ? *element<std::string>("OutOfMemoryX", "", "outofmemory")
                                   : *element<std::string>("OutOfMemory", "AmbiguousDevice",
                                                           "ParseError", "UnknownDevice"));
        break;
      case 6:
        line += "resolved=" + (off() ? *element<std::string>("auto", "gpu:01", "gpu:", "cpu:", "")
                                     : *element<std::string>("gpu:1", "cpu", "gpu:0"));
        break;
      case 7:
        line += "allocated=" + number();
        break;
      case 8:
        line += "reserved=" + number();
        break;
      case 9:
        line += "requested=" + number();
        break;
      default:
        line += *element<std::string>("#", "# a comment", "\r", "x=1", "pool=small", "=", "tag");
        break;
    }
  }
  if (off()) line += *element<std::string>(" ", "\r", " # note", "\t");
  return line;
}

// The one-pass reading takes a line only where the general parser reads the same event from it:
// a line it takes that the general parser refuses, or reads otherwise, is a bug.
RC_GTEST_PROP(HotLines, TakeOnlyWhatTheGeneralParserReadsTheSame, ()) {
  std::size_t taken = 0;
  for (int i = 0; i < 50; ++i) {  // many lines a case: each is cheap
    const std::string line = hot_line_candidate();
    TraceEvent hot;
    if (!detail::parse_hot_operation(line, hot)) continue;
    ++taken;
    TraceEvent expected;
    const auto read = general(line, expected);
    RC_ASSERT(read.has_value());
    RC_ASSERT(hot == expected);
  }
  RC_CLASSIFY(taken >= 10, "at least 10 of 50 lines taken");
}

// The lines memtrack's own writers make (sim and fit recordings, the recorder, the Kineto and
// PyTorch importers) are read in one pass, as the general parser reads them.
TEST(HotLines, TheLinesMemtrackWritesAreReadInOnePass) {
  for (const char* line : {
           "alloc auto 50000000 tag=serving resolved=gpu:0",
           "alloc gpu:0 3125000 tag=serving",
           "free gpu:1 18812500 tag=bert",
           "alloc auto 4096 tag=registry result=OutOfMemory",
           "alloc cpu 7 resolved=cpu",
           "check gpu:0 allocated=19653187500",
           "check cpu allocated=0 reserved=2097152",
           "check gpu:2 allocated=512 reserved=2097152 t=1700000000000000000",
           "alloc gpu:0 512 t=1 addr=0x7f0000000000 stream=7 stack=12",
           "free gpu:0 512 t=2 addr=0x7f0000000000 stream=7 stack=3",
           "baseline gpu:0 1048576 addr=0x7f1000000000 stack=0",
           "baseline cpu 64",
           "free gpu:0 addr=0x7f0000000000",
       }) {
    TraceEvent hot;
    EXPECT_TRUE(detail::parse_hot_operation(line, hot)) << line;
    TraceEvent expected;
    ASSERT_TRUE(general(line, expected)) << line;
    EXPECT_EQ(hot, expected) << line;
  }
}

// What the general parser refuses or reads otherwise is left to it: each line below differs from
// one the one-pass reading takes by a single field.
TEST(HotLines, LeaveEveryOtherLineToTheGeneralParser) {
  for (const char* line : {
           "free auto 7 result=AmbiguousDevice",   // a free on auto: the general rules
           "free auto 7",                          // refused
           "check auto allocated=1",               // refused: a check names a device
           "baseline auto 64",                     // refused
           "check gpu:0 reserved=5",               // refused: no allocated=
           "check gpu:0 5 allocated=5",            // refused: a check has no bytes
           "check gpu:0 allocated=1 stack=0",      // refused: no stack on a check
           "alloc gpu:0 5 allocated=1",            // refused: allocated= belongs on a check
           "alloc gpu:0 5 t=1 t=2",                // refused: given twice
           "check gpu:0 allocated=1 allocated=1",  // refused: given twice
           "alloc gpu:0 5 stack=1 stack=1",        // refused: given twice
           "alloc gpu:0 5 result=Nope",            // refused: no such error kind
           "alloc gpu:0 5 resolved=auto",          // refused: resolved names a device
           "alloc gpu:0 5 tag=",                   // refused: an empty tag
           "alloc gpu:0 5 tag=a#b",                // the tag ends at the comment
           "alloc gpu:0 5 tag=ab\r",               // the CR is not part of the tag
           "alloc gpu:0 5 tag=a\x01",              // a control character: the general rules
           "alloc gpu:0 5 resolved=gpu:01",        // the general rules
           "check gpu:0 allocated=1GiB",           // a size with a unit
       }) {
    TraceEvent hot;
    EXPECT_FALSE(detail::parse_hot_operation(line, hot)) << line;
  }
  // The last word of tag=, result= and resolved= counts, as the general parser reads them.
  TraceEvent hot;
  ASSERT_TRUE(
      detail::parse_hot_operation("alloc auto 5 tag=a tag=b resolved=cpu resolved=gpu:1", hot));
  EXPECT_EQ(hot.tag, "b");
  EXPECT_EQ(hot.recorded_resolved, DevicePlacement(Gpu{1}));
}

TEST(TraceEventParse, AllocWithEveryAttribute) {
  auto event = parse_event(
      "alloc gpu:3 4096 t=17 addr=0x7f00ff stream=2 requested=4000 tag=bert result=OutOfMemory");
  ASSERT_TRUE(event) << event.error().to_string();
  EXPECT_EQ(event->kind, TraceEvent::Kind::Allocate);
  EXPECT_EQ(event->device, DevicePlacement(Gpu{3}));
  EXPECT_EQ(event->bytes, 4096U);
  EXPECT_EQ(event->time_ns, 17U);
  EXPECT_EQ(event->address, 0x7f00ffU);
  EXPECT_EQ(event->stream, 2U);
  EXPECT_EQ(event->requested, 4000U);
  EXPECT_EQ(event->tag, "bert");
  EXPECT_EQ(event->recorded_error, ErrorKind::OutOfMemory);
}

TEST(TraceEventParse, FreeBySizeOrByAddress) {
  auto sized = parse_event("free cpu 12");
  ASSERT_TRUE(sized);
  EXPECT_EQ(sized->kind, TraceEvent::Kind::Free);
  EXPECT_EQ(sized->device, DevicePlacement(Cpu{}));
  EXPECT_EQ(sized->bytes, 12U);
  auto by_address = parse_event("free gpu:0 addr=0x10");
  ASSERT_TRUE(by_address);
  EXPECT_FALSE(by_address->bytes.has_value());
  EXPECT_EQ(by_address->address, 16U);
  EXPECT_FALSE(parse_event("free gpu:0"));  // neither size nor address
}

TEST(TraceEventParse, ByteSizesWithUnits) {
  auto event = parse_event("baseline gpu:0 24GiB");
  ASSERT_TRUE(event);
  EXPECT_EQ(event->kind, TraceEvent::Kind::Baseline);
  EXPECT_EQ(event->bytes, 24ULL << 30U);
}

TEST(TraceEventParse, ResetPeakCheckMark) {
  auto all = parse_event("reset_peak");
  ASSERT_TRUE(all);
  EXPECT_EQ(all->kind, TraceEvent::Kind::ResetPeakAll);
  auto one = parse_event("reset_peak gpu:1");
  ASSERT_TRUE(one);
  EXPECT_EQ(one->kind, TraceEvent::Kind::ResetPeak);
  EXPECT_EQ(one->device, DevicePlacement(Gpu{1}));
  auto check = parse_event("check gpu:1 allocated=5 reserved=9");
  ASSERT_TRUE(check);
  EXPECT_EQ(check->check_allocated, 5U);
  EXPECT_EQ(check->check_reserved, 9U);
  auto mark = parse_event("mark oom   requested=1");
  ASSERT_TRUE(mark);
  EXPECT_EQ(mark->text, "oom   requested=1");
}

TEST(TraceEventParse, RefusedOperationsCarryTheirOutcome) {
  // Every operation the tracker has, with every outcome, is a line (never a mark).
  auto free_auto = parse_event("free auto 7 result=AmbiguousDevice");
  ASSERT_TRUE(free_auto) << free_auto.error().to_string();
  EXPECT_EQ(free_auto->kind, TraceEvent::Kind::Free);
  EXPECT_TRUE(free_auto->device.is_auto());
  EXPECT_EQ(free_auto->bytes, 7U);
  EXPECT_EQ(free_auto->recorded_error, ErrorKind::AmbiguousDevice);
  auto unknown = parse_event("reset_peak gpu:9 result=UnknownDevice");
  ASSERT_TRUE(unknown) << unknown.error().to_string();
  EXPECT_EQ(unknown->kind, TraceEvent::Kind::ResetPeak);
  EXPECT_EQ(unknown->device, DevicePlacement(Gpu{9}));
  EXPECT_EQ(unknown->recorded_error, ErrorKind::UnknownDevice);
  auto peak_auto = parse_event("reset_peak auto result=AmbiguousDevice");
  ASSERT_TRUE(peak_auto) << peak_auto.error().to_string();
  EXPECT_TRUE(peak_auto->device.is_auto());
  EXPECT_EQ(peak_auto->recorded_error, ErrorKind::AmbiguousDevice);
  for (const char* line :
       {"free auto 7 result=AmbiguousDevice", "reset_peak gpu:9 result=UnknownDevice",
        "reset_peak auto result=AmbiguousDevice", "reset_peak cpu",
        "free gpu:0 5 result=InvalidDeallocation"}) {
    auto event = parse_event(line);
    ASSERT_TRUE(event) << line;
    EXPECT_EQ(format_event(*event), line);
  }
}

TEST(TraceEventParse, RefusesWhatIsNotAnEvent) {
  const char* bad[] = {
      "allocate gpu:0 1",                        // unknown keyword
      "alloc gpu:x 1",                           // bad device
      "alloc gpu:0 -1",                          // negative size
      "alloc gpu:0 18446744073709551616",        // 2^64
      "alloc gpu:0",                             // no size
      "alloc gpu:0 t=5 addr=0x10",               // no size, with fields
      "free gpu:0",                              // neither bytes nor addr=
      "free cpu t=5 stream=1",                   // neither bytes nor addr=
      "alloc gpu:4294967296 1",                  // a GPU id past 32 bits
      "alloc gpu:0 1 addr=0x1 addr=0x2",         // twice
      "free gpu:0 addr=0x1 stream=-1",           // bad stream
      "alloc gpu:0 1 addr=12",                   // address without 0x
      "alloc gpu:0 1 addr=0x12345678901234567",  // 17 hex digits
      "alloc gpu:0 1 color=red",                 // unknown field
      "alloc gpu:0 1 t=1 t=2",                   // twice
      "alloc gpu:0 1 result=Oops",               // unknown error kind
      "alloc gpu:0 1 resolved=auto",             // not concrete
      "free auto 1",                             // auto is refused: needs result=
      "reset_peak auto",                         //
      "free auto 1 result=OutOfMemory",          // not the refusal auto gets
      "reset_peak gpu:0 tag=x",                  // reset_peak takes result= only
      "reset_peak gpu:0 result=Oops",            // unknown error kind
      "reset_peak cpu result=UnknownDevice 1",   // extra
      "reset_peak gpu:0 1",                      // extra
      "check gpu:0",                             // no allocated=
      "check gpu:0 allocated=1 t=x",             // bad time
  };
  for (const char* line : bad) {
    auto event = parse_event(line);
    EXPECT_FALSE(event) << line;
    if (!event) {
      EXPECT_EQ(event.error().kind, ErrorKind::ParseError) << line;
    }
  }
}

TEST(TraceReader, ReadsHeaderEventsAndTrailer) {
  auto events = read_events(std::string(header) +
                            "# a comment\n\nalloc gpu:0 10\nfree gpu:0 10  # freed\nend 2\n");
  ASSERT_TRUE(events) << events.error().to_string();
  ASSERT_EQ(events->size(), 2U);
  EXPECT_EQ((*events)[1].kind, TraceEvent::Kind::Free);
  auto reader = reader_of(header + std::string("end 0\n"));
  ASSERT_TRUE(reader);
  EXPECT_EQ(reader->header().source, "test");
  ASSERT_TRUE(reader->header().config);
  EXPECT_EQ(reader->header().config->gpus.at(0).total_bytes, 1024U);
}

// The reader takes alloc and free lines on a fast path first, from the raw line: what it reads
// must be what the general parser reads, and every line it is not sure of goes to that parser.
TEST(TraceReader, TheFastPathReadsWhatTheGeneralParserReads) {
  auto events = read_events(std::string(header) +
                            "alloc gpu:0 0001 addr=0xABCdef t=007\n"       // zeros, either case
                            "alloc\tgpu:2   5 \t stream=3  \n"             // blanks and tabs
                            "free gpu:1 addr=0xffffffffffffffff\n"         // 16 hex digits
                            "alloc cpu 18446744073709551615 # the most\n"  // 2^64 - 1, a note
                            "free gpu:0 addr=0xabcdef\r\n"                 // a CRLF line
                            "alloc gpu:4294967295 1024KiB\n"               // a unit
                            "free gpu:0 1 addr=0x10 tag=x\n"               // a field it has not
                            "end 7\n");
  ASSERT_TRUE(events) << events.error().to_string();
  ASSERT_EQ(events->size(), 7U);
  const auto& e = *events;
  EXPECT_EQ(e[0].device, DevicePlacement(Gpu{0}));
  EXPECT_EQ(e[0].bytes, 1U);
  EXPECT_EQ(e[0].address, 0xabcdefU);
  EXPECT_EQ(e[0].time_ns, 7U);
  EXPECT_EQ(e[1].device, DevicePlacement(Gpu{2}));
  EXPECT_EQ(e[1].bytes, 5U);
  EXPECT_EQ(e[1].stream, 3U);
  EXPECT_EQ(e[2].kind, TraceEvent::Kind::Free);
  EXPECT_FALSE(e[2].bytes.has_value());
  EXPECT_EQ(e[2].address, 0xffffffffffffffffU);
  EXPECT_EQ(e[3].device, DevicePlacement(Cpu{}));
  EXPECT_EQ(e[3].bytes, 18446744073709551615U);
  EXPECT_EQ(e[4].address, 0xabcdefU);
  EXPECT_EQ(e[5].device, DevicePlacement(Gpu{4294967295U}));
  EXPECT_EQ(e[5].bytes, 1024U * 1024U);
  EXPECT_EQ(e[6].tag, "x");
  EXPECT_EQ(e[6].bytes, 1U);
  // A field the line before set is not left over on the next line.
  EXPECT_FALSE(e[3].address.has_value());
  EXPECT_FALSE(e[4].time_ns.has_value());
  EXPECT_TRUE(e[5].tag.empty());
  for (const char* bad :
       {"alloc gpu:01 1", "alloc gpu: 1", "alloc gpu:4294967296 1",
        "alloc gpu:0 18446744073709551616", "alloc gpu:0 1 addr=0x",
        "alloc gpu:0 1 addr=0x12345678901234567", "alloc gpu:0 1 t=", "alloc gpu:0 1 addr=0x1g",
        "alloc gpu:0 1x", "freeze gpu:0 1", "alloc cpux 1", "alloc gpu:0 1 t=1 t=1",
        "alloc gpu:0 1 t=5=6", "alloc gpu:0 t=5", "free cpu stream=1", "alloc gpu:0 1t=5",
        "alloc cpu 1t=5", "alloc gpu:0addr=0x1 1"}) {
    const auto read = read_events(std::string(header) + bad + "\nend 1\n");
    EXPECT_FALSE(read) << bad;
  }
}

/// @return the error message of reading `text` to the end (empty when it reads)
std::string error_of(const std::string& text) {
  auto events = read_events(text);
  return events ? std::string() : events.error().to_string();
}

TEST(TraceDeviceRecord, HeaderLinesRoundTripAndKeepTheirNames) {
  DeviceRecord record;
  record.id = 1;
  record.uuid = "GPU-5a1c0d2e-0000-1111-2222-333344445555";
  record.compute_capability = "9.0";
  record.total_global_mem = 150121545728ULL;
  record.free_at_start = 149500000256ULL;
  record.total_at_start = 150121545728ULL;
  record.name = "NVIDIA H200 NVL";
  const std::string line = format_device_record(record);
  EXPECT_EQ(line,
            "device 1 uuid=GPU-5a1c0d2e-0000-1111-2222-333344445555 cc=9.0 "
            "total_global_mem=150121545728 free_at_start=149500000256 "
            "total_at_start=150121545728 name=NVIDIA H200 NVL");
  auto parsed = parse_device_record(line);
  ASSERT_TRUE(parsed) << parsed.error().to_string();
  EXPECT_EQ(*parsed, record);

  DeviceRecord bare;
  bare.id = 0;
  EXPECT_EQ(format_device_record(bare), "device 0");
  EXPECT_EQ(parse_device_record("device 0").value(), bare);

  EXPECT_FALSE(parse_device_record("device"));
  EXPECT_FALSE(parse_device_record("device x"));
  EXPECT_FALSE(parse_device_record("device 0 free_at_start=lots"));
  EXPECT_FALSE(parse_device_record("device 0 colour=green"));
  EXPECT_FALSE(parse_device_record("device 0 uuid"));
}

TEST(TraceReader, KeepsTheDeviceTableOfARecording) {
  ScratchDir dir;
  const auto path = dir.path() / "devices.trace";
  TraceHeader recorded;
  recorded.source = "memtrack record";
  recorded.config = GpuConfig{};
  recorded.config->gpus.push_back(GpuSpec{0, 1ULL << 30U, {}, {}, "A"});
  DeviceRecord record;
  record.name = "NVIDIA A";
  record.free_at_start = 1000;
  recorded.devices.push_back(record);
  auto writer = TraceWriter::create(path, recorded);
  ASSERT_TRUE(writer) << writer.error().to_string();
  ASSERT_TRUE(writer->finish());
  auto reader = TraceReader::open(path);
  ASSERT_TRUE(reader) << reader.error().to_string();
  ASSERT_EQ(reader->header().devices.size(), 1U);
  EXPECT_EQ(reader->header().devices[0], record);

  auto bad = reader_of("memtrack-trace 1\ndevice 0 total_global_mem=-1\nevents\nend 0\n");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().to_string().find(":2:"), std::string::npos) << bad.error().to_string();
}

TEST(TraceReader, TruncationIsAnErrorWithItsLine) {
  // No trailer: the recording was cut at a line boundary.
  EXPECT_NE(error_of(std::string(header) + "alloc gpu:0 1\n")
                .find("t.trace:5: truncated: no "
                      "trailer"),
            std::string::npos)
      << error_of(std::string(header) + "alloc gpu:0 1\n");
  // Cut in the middle of a line.
  EXPECT_NE(error_of(std::string(header) + "alloc gpu:0 1\nfree gp").find("t.trace:6: truncated"),
            std::string::npos);
  // Cut inside the header.
  EXPECT_NE(error_of("memtrack-trace 1\nsource x\n").find("does not end"), std::string::npos);
}

TEST(TraceReader, TrailerMustCountTheEvents) {
  EXPECT_NE(error_of(std::string(header) + "alloc gpu:0 1\nend 2\n")
                .find("t.trace:6: the trailer "
                      "says 2 events, but 1"),
            std::string::npos);
  EXPECT_NE(error_of(std::string(header) + "end 0\nalloc gpu:0 1\n").find("after the trailer"),
            std::string::npos);
}

TEST(TraceReader, BadLinesNameFileAndLine) {
  EXPECT_NE(error_of(std::string(header) + "alloc gpu:0 1\nalloc gpu:0 lots\nend 2\n")
                .find("t.trace:6: expected a byte count"),
            std::string::npos);
  EXPECT_NE(error_of("memtrack-trace 2\nevents\nend 0\n").find("t.trace:1: trace format version"),
            std::string::npos);
  EXPECT_NE(error_of("hello\n").find("t.trace:1: expected the header"), std::string::npos);
  EXPECT_NE(error_of("").find("t.trace:1: empty"), std::string::npos);
  EXPECT_NE(error_of("memtrack-trace 1\ngpu 0 total=0\nevents\nend 0\n")
                .find("not a valid configuration"),
            std::string::npos);
  EXPECT_NE(error_of("memtrack-trace 1\nprofile rtx5090\ngpu 0 total=1\nevents\nend 0\n")
                .find("not both"),
            std::string::npos);
}

TEST(TraceReader, ConfigLinesRoundTripAndBadOnesAreLocated) {
  // What scenario files held (a configuration of sparse ids, caps, fractions and names) is a
  // trace's header now.
  TraceHeader written;
  GpuConfig& config = written.config.emplace();
  config.memory_fraction = Fraction::parse("0.925").value();
  config.cpu_memory_limit = 12345;
  config.gpus = {GpuSpec{7, 1ULL << 30U, 1000, Fraction::parse("1/2").value(), "RTX 5090"},
                 GpuSpec{0, 2048}};
  const std::string text = format_trace(written, {});
  EXPECT_NE(text.find("gpu 7 total=1073741824 usable=1000 fraction=0.5 name=RTX 5090\n"),
            std::string::npos)
      << text;
  auto reader = reader_of(text);
  ASSERT_TRUE(reader) << reader.error().to_string();
  EXPECT_EQ(reader->header().config, config);
  const struct {
    const char* line;
    const char* error;
  } cases[] = {
      {"gpu x total=1", "t.trace:2: expected 'gpu ID total=BYTES ...' with ID a decimal GPU id"},
      {"gpu 4294967296 total=1", "t.trace:2: expected 'gpu ID total=BYTES"},
      {"gpu 0", "t.trace:2: gpu 0 has no total="},
      {"gpu 0 total=1 speed=9", "t.trace:2: unknown gpu field 'speed=9'"},
      {"gpu 0 total=lots", "t.trace:2: "},
      {"memory_fraction 1.5", "t.trace:2: "},
      {"cpu_memory_limit -1", "t.trace:2: "},
  };
  for (const auto& c : cases) {
    const std::string error =
        error_of("memtrack-trace 1\n" + std::string(c.line) + "\nevents\nend 0\n");
    EXPECT_NE(error.find(c.error), std::string::npos) << c.line << ": " << error;
  }
}

TEST(TraceReader, RefusesAnOverlongLineWithoutBufferingIt) {
  const std::string text =
      std::string(header) + "mark " + std::string(max_line_bytes + 10, 'x') + "\nend 1\n";
  EXPECT_NE(error_of(text).find("t.trace:5: line longer than"), std::string::npos)
      << error_of(text);
}

TEST(TraceWriter, WritesReadableCompressedAndPlainFiles) {
  ScratchDir dir;
  TraceHeader h;
  h.source = "writer test";
  h.profile = "2xrtx5090";
  for (const char* name : {"a.trace", "a.trace.zst"}) {
    auto writer = TraceWriter::create(dir / name, h);
    ASSERT_TRUE(writer);
    for (std::uint64_t i = 0; i < 50000; ++i) {
      ASSERT_TRUE(writer->write(TraceEvent::allocate(Gpu{1}, i)));
    }
    // Nothing under the final name until finish().
    EXPECT_FALSE(std::filesystem::exists(dir / name));
    ASSERT_TRUE(writer->finish());
    auto reader = TraceReader::open(dir / name);
    ASSERT_TRUE(reader) << reader.error().to_string();
    EXPECT_EQ(reader->header().profile, "2xrtx5090");
    TraceEvent event;
    std::uint64_t n = 0;
    for (auto more = reader->next(event); more && *more; more = reader->next(event)) {
      ASSERT_EQ(event.bytes, n);
      ++n;
    }
    EXPECT_EQ(n, 50000U);
  }
  // The compressed file really is zstd, and much smaller.
  EXPECT_EQ(detect_compression(testing::read_bytes(dir / "a.trace.zst")), Compression::Zstd);
  EXPECT_LT(std::filesystem::file_size(dir / "a.trace.zst") * 4,
            std::filesystem::file_size(dir / "a.trace"));
}

TEST(TraceWriter, AnUnfinishedWriterLeavesNoFile) {
  ScratchDir dir;
  {
    auto writer = TraceWriter::create(dir / "gone.trace", TraceHeader{});
    ASSERT_TRUE(writer);
    ASSERT_TRUE(writer->write(TraceEvent::allocate(Cpu{}, 1)));
  }
  EXPECT_TRUE(dir.files().empty());
}

TEST(TraceReader, CorruptCompressedFilesGiveALocatedError) {
  ScratchDir dir;
  {
    auto writer = TraceWriter::create(dir / "c.trace.zst", TraceHeader{});
    ASSERT_TRUE(writer);
    for (int i = 0; i < 1000; ++i)
      ASSERT_TRUE(writer->write(TraceEvent::allocate(Cpu{}, 7)));
    ASSERT_TRUE(writer->finish());
  }
  const std::string good = testing::read_bytes(dir / "c.trace.zst");
  testing::write_bytes(dir / "cut.trace.zst", good.substr(0, good.size() / 2));
  std::string flipped = good;
  flipped[flipped.size() / 2] = static_cast<char>(flipped[flipped.size() / 2] ^ 0x5A);
  testing::write_bytes(dir / "flipped.trace.zst", flipped);
  for (const char* name : {"cut.trace.zst", "flipped.trace.zst"}) {
    auto reader = TraceReader::open(dir / name);
    std::string message;
    if (!reader) {
      message = reader.error().to_string();
    } else {
      TraceEvent event;
      auto more = reader->next(event);
      while (more && *more)
        more = reader->next(event);
      ASSERT_FALSE(more) << name << " was read without error";
      message = more.error().to_string();
    }
    // Located: the file and a byte offset, or the file and a line.
    const std::string prefix = (dir / name).string();
    ASSERT_EQ(message.rfind(prefix, 0), 0U) << message;
    const std::string rest = message.substr(prefix.size());
    EXPECT_TRUE(rest.starts_with(": compressed byte ") ||
                (rest.size() > 1 && rest[0] == ':' && std::isdigit(rest[1]) != 0))
        << message;
  }
}

// Any event survives format then parse: the text form loses nothing.
RC_GTEST_PROP(TraceEventText, FormatThenParseGivesTheEventBack, ()) {
  TraceEvent event;
  const auto kind = *rc::gen::element(TraceEvent::Kind::Baseline, TraceEvent::Kind::Allocate,
                                      TraceEvent::Kind::Free, TraceEvent::Kind::ResetPeakAll,
                                      TraceEvent::Kind::ResetPeak, TraceEvent::Kind::Check,
                                      TraceEvent::Kind::Mark);
  event.kind = kind;
  const auto device = [] {
    return *rc::gen::oneOf(rc::gen::just(DevicePlacement(Cpu{})),
                           rc::gen::map(rc::gen::arbitrary<std::uint32_t>(),
                                        [](std::uint32_t id) { return DevicePlacement(Gpu{id}); }));
  };
  const auto maybe = []() -> std::optional<std::uint64_t> {
    if (*rc::gen::arbitrary<bool>()) return std::nullopt;
    return *rc::gen::arbitrary<std::uint64_t>();
  };
  // The fields an operation (and a check) carries after its bytes: t=, stream=, requested=,
  // tag=, result=, and resolved= where it may have one.
  const auto outcome = [&](TraceEvent& e, bool resolved) {
    e.time_ns = maybe();
    e.stream = maybe();
    e.requested = maybe();
    if (*rc::gen::arbitrary<bool>()) e.tag = "model-" + std::to_string(*rc::gen::inRange(0, 99));
    if (*rc::gen::arbitrary<bool>()) e.recorded_error = ErrorKind::OutOfMemory;
    if (resolved && *rc::gen::arbitrary<bool>()) e.recorded_resolved = device();
  };
  switch (kind) {
    case TraceEvent::Kind::ResetPeakAll:
      break;
    case TraceEvent::Kind::ResetPeak:
      event.device = device();
      break;
    case TraceEvent::Kind::Mark:
      event.text = *rc::gen::container<std::string>(rc::gen::element('a', 'z', ' ', '=', '9'));
      while (!event.text.empty() && event.text.front() == ' ')
        event.text.erase(0, 1);
      while (!event.text.empty() && event.text.back() == ' ')
        event.text.pop_back();
      break;
    case TraceEvent::Kind::Check:
      event.device = device();
      event.check_allocated = *rc::gen::arbitrary<std::uint64_t>();
      event.check_reserved = maybe();
      // What a check line may carry beside its totals (never bytes or a stack).
      event.address = maybe();
      outcome(event, true);
      break;
    default:
      event.device =
          kind == TraceEvent::Kind::Allocate
              ? *rc::gen::oneOf(rc::gen::just(DevicePlacement(Auto{})), rc::gen::just(device()))
              : device();
      event.bytes = *rc::gen::arbitrary<std::uint64_t>();
      if (kind == TraceEvent::Kind::Free && *rc::gen::arbitrary<bool>()) {
        event.bytes.reset();
        event.address = *rc::gen::arbitrary<std::uint64_t>();
      } else {
        event.address = maybe();
      }
      outcome(event, kind == TraceEvent::Kind::Allocate);
      break;
  }
  const std::string line = format_event(event);
  auto parsed = parse_event(line);
  RC_ASSERT(parsed.has_value());
  RC_ASSERT(*parsed == event);
}

}  // namespace
}  // namespace memtrack::traces
