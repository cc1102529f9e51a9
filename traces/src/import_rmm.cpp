// RMM logging_resource_adaptor CSV: allocate, free and allocate failure rows as trace events,
// streamed a line at a time (memory is one window of the file, whatever its length). A row as
// RMM writes nearly all of them is read in one pass, its digits eight at a time; any other row
// (and any error) goes through the general reader, which splits and trims its fields.
#include <memtrack/traces/importers.hpp>

#include <memtrack/units.hpp>

#include "import_support.hpp"
#include "swar.hpp"
#include "textkit.hpp"

#include <array>
#include <bit>
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

// ---- the common row, read in one pass ----

using swar::digits_value;
using swar::each_byte;
using swar::hex_digits_value;
using swar::leading_run;
using swar::load8;
using swar::powers_of_ten;
using textkit::is_digit;

/// Reads 1 to `most` (at most 19: no overflow) decimal digits from `p`, then `end`.
/// @param valued whether to work out `value` (a thread id is only checked)
/// @return after `end`, with `value` and `count` digits; null otherwise (more digits may still
/// be a value: the general path decides)
const char* fast_decimal(const char* p, char end, std::size_t most, bool valued,
                         std::uint64_t& value, std::size_t& count) noexcept {
  value = 0;
  count = 0;
  for (;;) {  // reads 8 bytes from a byte at most the sentinel: within its room
    const std::uint64_t word = load8(p);
    const unsigned run = leading_run(swar::non_digits(word));
    count += run;
    if (count > most) return nullptr;
    if (valued && run != 0) value = value * powers_of_ten[run] + digits_value(word, run);
    p += run;
    if (run < 8) break;
  }
  if (count == 0 || *p != end) return nullptr;
  return p + 1;
}

const char* fast_decimal(const char* p, char end, std::uint64_t& value) noexcept {
  std::size_t count = 0;
  return fast_decimal(p, end, textkit::max_decimal_digits - 1, true, value, count);
}

/// Checks decimal digits as `fast_decimal` reads them, without their value.
const char* skip_decimal(const char* p, char end) noexcept {
  std::uint64_t unused = 0;
  std::size_t count = 0;
  return fast_decimal(p, end, textkit::max_decimal_digits - 1, false, unused, count);
}

/// Reads `0x` and 1 to 16 hexadecimal digits from `p`, then `end`.
/// @return after `end`, with `value`; null otherwise
const char* fast_hex(const char* p, char end, std::uint64_t& value) noexcept {
  if (p[0] != '0' || p[1] != 'x') return nullptr;
  p += 2;
  value = 0;
  std::size_t count = 0;
  for (;;) {
    const std::uint64_t word = load8(p);
    const unsigned run = leading_run(swar::non_hex_digits(word));
    count += run;
    if (count > textkit::max_hex_digits) return nullptr;
    if (run != 0) value = (value << (4 * run)) | hex_digits_value(word, run);
    p += run;
    if (run < 8) break;
  }
  if (count == 0 || *p != end) return nullptr;
  return p + 1;
}

/// Reads `HH:MM:SS,` or `HH:MM:SS.f,` (1 to 9 fraction digits) from `p`, as `time_of_day`.
/// @return after the comma, with `ns`; null otherwise
const char* fast_time(const char* p, std::uint64_t& ns) noexcept {
  // Each test reads one byte and stops at the first that fails: never past the sentinel.
  if (!(is_digit(p[0]) && is_digit(p[1]) && p[2] == ':' && is_digit(p[3]) && is_digit(p[4]) &&
        p[5] == ':' && is_digit(p[6]) && is_digit(p[7]))) {
    return nullptr;
  }
  const auto two = [](const char* at) {
    return static_cast<std::uint64_t>(at[0] - '0') * 10 + static_cast<std::uint64_t>(at[1] - '0');
  };
  const std::uint64_t h = two(p);
  const std::uint64_t m = two(p + 3);
  const std::uint64_t s = two(p + 6);
  if (h > 23 || m > 59 || s > 60) return nullptr;
  ns = ((h * 60 + m) * 60 + s) * 1'000'000'000ULL;
  p += 8;
  if (*p == ',') return p + 1;
  if (*p != '.') return nullptr;
  std::uint64_t fraction = 0;
  std::size_t digits = 0;
  if ((p = fast_decimal(p + 1, ',', 9, true, fraction, digits)) == nullptr) return nullptr;
  for (; digits < 9; ++digits)
    fraction *= 10;
  ns += fraction;
  return p;
}

/**
 * @brief Reads a row as RMM writes nearly every one, `THREAD,HH:MM:SS.ffffff,allocate|free,
 * 0xPOINTER,SIZE,0xSTREAM` and its newline, in one pass into `event` (as `read_row`).
 *
 * `p` must be followed, at the end of what was read, by a byte no field accepts (the line
 * reader's sentinel) and 15 more bytes that may be read: a field's digits are read 8 bytes at a
 * time, each word loaded from a byte at most the sentinel, and an action compares 9 bytes.
 * @return the byte after the newline; null for any other line (blanks, a CR, a decimal pointer,
 * a failure, an error...), which `read_row` then reads
 */
const char* read_common_row(const char* p, TraceEvent& event) noexcept {
  std::uint64_t time = 0;
  std::uint64_t address = 0;
  std::uint64_t size = 0;
  std::uint64_t stream = 0;
  if ((p = skip_decimal(p, ',')) == nullptr) return nullptr;  // the thread: not kept
  if ((p = fast_time(p, time)) == nullptr) return nullptr;
  TraceEvent::Kind kind{};
  if (p[0] == 'f' && std::memcmp(p, "free,", 5) == 0) {
    kind = TraceEvent::Kind::Free;
    p += 5;
  } else if (p[0] == 'a' && std::memcmp(p, "allocate,", 9) == 0) {
    kind = TraceEvent::Kind::Allocate;
    p += 9;
  } else {
    return nullptr;
  }
  if ((p = fast_hex(p, ',', address)) == nullptr) return nullptr;
  if ((p = fast_decimal(p, ',', size)) == nullptr) return nullptr;
  if ((p = fast_hex(p, '\n', stream)) == nullptr) return nullptr;
  event.kind = kind;
  event.address = address;
  event.recorded_error.reset();
  event.bytes = size;
  event.time_ns = time;
  event.stream = stream;
  return p;
}

/// The lines of a source, without their newlines, read through one buffer (it grows for a longer
/// line, to `max_import_bytes`). What was read is followed by a sentinel byte, `\0`, with room
/// after it for a row reader that compares a few bytes at once.
class LineReader {
 public:
  static constexpr std::size_t sentinel_room = 16;  ///< a sentinel, then 8 bytes loaded at it

  explicit LineReader(ByteSource& source)
      : source_(source), buffer_((std::size_t{1} << 20U) + sentinel_room) {
    buffer_[0] = '\0';
  }

  /// @return the bytes not yet returned as lines, followed by the sentinel
  [[nodiscard]] const char* unread() const noexcept { return buffer_.data() + begin_; }
  /// Takes the unread bytes up to `to` (after a newline) as a line read.
  void consumed(const char* to) noexcept {
    begin_ = scanned_ = static_cast<std::size_t>(to - buffer_.data());
  }

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
      if (begin_ != 0) {  // a line longer than one read is not moved again at each read
        std::memmove(buffer_.data(), start, end_ - begin_);
        end_ -= begin_;
        scanned_ -= begin_;
        begin_ = 0;
      }
      if (end_ == capacity()) {
        if (capacity() >= max_import_bytes) {
          return at.fail("a line longer than " + std::to_string(max_import_bytes) +
                         " bytes: not an RMM log");
        }
        buffer_.resize(std::min<std::size_t>(capacity() * 2, max_import_bytes) + sentinel_room);
      }
      auto got = source_.read(buffer_.data() + end_, capacity() - end_);
      if (!got) return got.error();
      if (*got == 0) eof_ = true;
      end_ += *got;
      buffer_[end_] = '\0';
    }
  }

 private:
  [[nodiscard]] std::size_t capacity() const noexcept { return buffer_.size() - sentinel_room; }

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
    if (seen_header) {
      if (const char* after = read_common_row(lines.unread(), event)) [[likely]] {
        lines.consumed(after);
        ++line_number;
        ++report.events;
        sink.origin(line_number);
        if (auto ok = sink.event(event); !ok) return ok.error();
        continue;
      }
    }
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
