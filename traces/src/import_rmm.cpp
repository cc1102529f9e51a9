// RMM logging_resource_adaptor CSV: allocate, free and allocate failure rows as trace events,
// streamed a line at a time (memory is one window of the file, whatever its length).
#include <memtrack/traces/importers.hpp>

#include <memtrack/units.hpp>

#include "import_support.hpp"
#include "textkit.hpp"

#include <array>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <vector>

namespace memtrack::traces {
namespace {

using textkit::parse_u64;

/// `0x7f14...` (hex), or a decimal.
std::optional<std::uint64_t> pointer(std::string_view text) {
  if (text.starts_with("0x") || text.starts_with("0X")) {
    return textkit::parse_hex_digits(text.substr(2));
  }
  return parse_u64(text);
}

/// `HH:MM:SS.ffffff` to nanoseconds since midnight.
std::optional<std::uint64_t> time_of_day(std::string_view text) {
  if (text.size() < 8 || text[2] != ':' || text[5] != ':') return std::nullopt;
  const auto h = parse_u64(text.substr(0, 2));
  const auto m = parse_u64(text.substr(3, 2));
  const auto s = parse_u64(text.substr(6, 2));
  if (!h || !m || !s || *h > 23 || *m > 59 || *s > 60) return std::nullopt;
  std::uint64_t ns = ((*h * 60 + *m) * 60 + *s) * 1'000'000'000ULL;
  if (text.size() > 8) {
    if (text[8] != '.' || text.size() > 18 || text.size() == 9) return std::nullopt;
    const std::string_view digits = text.substr(9);
    const auto fraction = parse_u64(digits);
    if (!fraction) return std::nullopt;
    std::uint64_t scaled = *fraction;
    for (std::size_t i = digits.size(); i < 9; ++i)
      scaled *= 10;
    ns += scaled;
  }
  return ns;
}

/// One CSV row's fields, trimmed, without allocating (a log has millions of rows): the first
/// `kept` are held, `count` is how many the row has.
struct CsvFields {
  static constexpr std::size_t kept = 6;
  std::array<std::string_view, kept> field;
  std::size_t count{0};
};

CsvFields split_csv(std::string_view line) {
  CsvFields fields;
  for (;;) {
    const std::size_t comma = line.find(',');
    if (fields.count < CsvFields::kept)
      fields.field[fields.count] = detail::trim(line.substr(0, comma));
    ++fields.count;
    if (comma == std::string_view::npos) return fields;
    line.remove_prefix(comma + 1);
  }
}

/// The GPU the log is of: the option, else the file name's last `.devN` (RMM's per-device logs
/// are named NAME.devN...), else 0.
Result<std::uint32_t> device_of(const std::string& file, const ImportOptions& options) {
  if (options.device) return *options.device;
  const std::string base = std::filesystem::path(file).filename().string();
  for (std::size_t at = base.rfind(".dev"); at != std::string::npos;
       at = at == 0 ? std::string::npos : base.rfind(".dev", at - 1)) {
    std::size_t end = at + 4;
    while (end < base.size() && base[end] >= '0' && base[end] <= '9')
      ++end;
    if (end == at + 4) continue;
    const auto id = parse_u64(std::string_view(base).substr(at + 4, end - at - 4));
    if (!id || *id > UINT32_MAX) {
      return Error::parse_error(file + ": device id in '.devN' too large");
    }
    return static_cast<std::uint32_t>(*id);
  }
  return 0;
}

/// Where a row is, for its errors.
struct RowAt {
  const std::string& file;
  std::uint64_t line;
  [[nodiscard]] Error fail(const std::string& what) const {
    return Error::parse_error(file + ":" + std::to_string(line) + ": " + what);
  }
};

/// Reads one row after the header into `event`, which holds the previous row's (only the fields
/// a row sets change: the event is not built anew for each of millions of rows).
Result<void> read_row(std::string_view line, const RowAt& at, TraceEvent& event) {
  const CsvFields row = split_csv(line);
  if (row.count < 6) {
    return at.fail("expected 6 fields (Thread,Time,Action,Pointer,Size,Stream), got " +
                   std::to_string(row.count));
  }
  const auto& fields = row.field;
  if (!parse_u64(fields[0])) {
    return at.fail("expected Thread as a decimal thread id, got '" + detail::printable(fields[0]) +
                   "'");
  }
  const auto time = time_of_day(fields[1]);
  if (!time)
    return at.fail("expected Time as HH:MM:SS.ffffff, got '" + std::string(fields[1]) + "'");
  const auto size = parse_u64(fields[4]);
  if (!size)
    return at.fail("expected Size as a decimal byte count, got '" + std::string(fields[4]) + "'");
  const std::string_view action = fields[2];
  if (action == "allocate" || action == "free") {
    const auto address = pointer(fields[3]);
    if (!address) {
      return at.fail("expected Pointer as 0x followed by hexadecimal digits, got '" +
                     std::string(fields[3]) + "'");
    }
    event.kind = action == "allocate" ? TraceEvent::Kind::Allocate : TraceEvent::Kind::Free;
    event.address = *address;
    event.recorded_error.reset();
  } else if (action == "allocate failure" || action == "allocate_failure") {
    event.kind = TraceEvent::Kind::Allocate;
    event.address.reset();
    event.recorded_error = ErrorKind::OutOfMemory;
  } else {
    return at.fail("expected Action 'allocate', 'free' or 'allocate failure', got '" +
                   std::string(action) + "'");
  }
  event.bytes = *size;
  event.time_ns = *time;
  const auto stream = pointer(fields[5]);
  if (!stream) {
    return at.fail("expected Stream as 0x followed by hexadecimal digits (or a decimal), got '" +
                   detail::printable(fields[5]) + "'");
  }
  event.stream = *stream;
  return {};
}

/// The lines of a source, without their newlines, read through one buffer (it grows for a longer
/// line, to `max_import_bytes`).
class LineReader {
 public:
  explicit LineReader(ByteSource& source) : source_(source), buffer_(std::size_t{1} << 20U) {}

  /**
   * @brief The next line.
   * @param newline set to whether it ended with a newline (the source's last line may not)
   * @param at the line's place, for the error of one too long
   * @return true with `line`, false after the last line, or the source's error
   */
  Result<bool> next(std::string_view& line, bool& newline, const RowAt& at) {
    for (;;) {
      const char* start = buffer_.data() + begin_;
      if (const void* found = std::memchr(buffer_.data() + scanned_, '\n', end_ - scanned_)) {
        const auto* end = static_cast<const char*>(found);
        line = std::string_view(start, static_cast<std::size_t>(end - start));
        newline = true;
        begin_ = scanned_ = static_cast<std::size_t>(end - buffer_.data()) + 1;
        return true;
      }
      scanned_ = end_;
      if (eof_) {
        if (begin_ == end_) return false;
        line = std::string_view(start, end_ - begin_);
        newline = false;
        begin_ = scanned_ = end_;
        return true;
      }
      std::memmove(buffer_.data(), start, end_ - begin_);
      end_ -= begin_;
      scanned_ -= begin_;
      begin_ = 0;
      if (end_ == buffer_.size()) {
        if (buffer_.size() >= max_import_bytes) {
          return at.fail("a line longer than " + std::to_string(max_import_bytes) +
                         " bytes: not an RMM log");
        }
        buffer_.resize(std::min<std::size_t>(buffer_.size() * 2, max_import_bytes));
      }
      auto got = source_.read(buffer_.data() + end_, buffer_.size() - end_);
      if (!got) return got.error();
      if (*got == 0) eof_ = true;
      end_ += *got;
    }
  }

 private:
  ByteSource& source_;
  std::vector<char> buffer_;
  std::size_t begin_{0};    ///< the next line starts here
  std::size_t scanned_{0};  ///< no newline in [begin_, scanned_)
  std::size_t end_{0};
  bool eof_{false};
};

}  // namespace

Result<ImportReport> import_rmm(ByteSource& source, std::string_view name, TraceSink& sink,
                                const ImportOptions& options) {
  const std::string file(name);
  const auto device = device_of(file, options);
  if (!device) return device.error();
  ImportReport report;
  report.origin_unit = "line";
  TraceHeader header;
  header.source = "rmm " + file + " (gpu:" + std::to_string(*device) +
                  "; the log does not record device totals: replay with --profile)";
  if (auto ok = sink.header(header); !ok) return ok.error();

  LineReader lines(source);
  std::uint64_t line_number = 0;
  bool seen_header = false;
  std::uint64_t failures = 0;
  TraceEvent event = TraceEvent::allocate(Gpu{*device}, 0);
  for (;;) {
    std::string_view raw;
    bool newline = false;
    auto more = lines.next(raw, newline, RowAt{file, line_number + 1});
    if (!more) return more.error();
    if (!*more) break;
    const std::string_view line = detail::trim(raw);
    ++line_number;
    const RowAt at{file, line_number};
    if (line.empty()) continue;
    // RMM ends every row with a newline: a last row without one was cut, perhaps inside a field.
    if (!newline) return at.fail("truncated: the last line has no newline (the log was cut short)");
    if (!seen_header) {
      if (line.find("Thread,Time,Action,Pointer,Size,Stream") != 0) {
        return at.fail("expected the RMM log header 'Thread,Time,Action,Pointer,Size,Stream'");
      }
      seen_header = true;
      continue;
    }
    if (auto ok = read_row(line, at, event); !ok) return ok.error();
    if (event.recorded_error) ++failures;
    ++report.events;
    sink.origin(line_number);  // refusals point at the CSV line
    if (auto ok = sink.event(event); !ok) return ok.error();
  }
  if (!seen_header) {
    return Error::parse_error(file +
                              ":1: empty, expected the header "
                              "'Thread,Time,Action,Pointer,Size,Stream'");
  }
  if (failures != 0) {
    report.notes.push_back(std::to_string(failures) +
                           " 'allocate failure' rows: kept as allocations the source refused "
                           "(result=OutOfMemory)");
  }
  return report;
}

Result<ImportReport> import_rmm(std::string_view bytes, std::string_view name, TraceSink& sink,
                                const ImportOptions& options) {
  detail::ViewSource source(bytes);
  return import_rmm(source, name, sink, options);
}

}  // namespace memtrack::traces
