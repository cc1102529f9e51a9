// RMM logging_resource_adaptor CSV: allocate, free and allocate failure rows as trace events.
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

/// Reads one row after the header into `event`.
Result<void> read_row(std::string_view line, std::uint32_t device, const RowAt& at,
                      TraceEvent& event) {
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
    event = action == "allocate" ? TraceEvent::allocate(Gpu{device}, *size)
                                 : TraceEvent::free(Gpu{device}, *size);
    event.address = *address;
  } else if (action == "allocate failure" || action == "allocate_failure") {
    event = TraceEvent::allocate(Gpu{device}, *size);
    event.recorded_error = ErrorKind::OutOfMemory;
  } else {
    return at.fail("expected Action 'allocate', 'free' or 'allocate failure', got '" +
                   std::string(action) + "'");
  }
  event.time_ns = *time;
  const auto stream = pointer(fields[5]);
  if (!stream) {
    return at.fail("expected Stream as 0x followed by hexadecimal digits (or a decimal), got '" +
                   detail::printable(fields[5]) + "'");
  }
  event.stream = *stream;
  return {};
}

}  // namespace

Result<ImportReport> import_rmm(std::string_view bytes, std::string_view name, TraceSink& sink,
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

  std::uint64_t line_number = 0;
  bool seen_header = false;
  std::uint64_t failures = 0;
  while (!bytes.empty()) {
    const std::size_t newline = bytes.find('\n');
    const std::string_view line = detail::trim(bytes.substr(0, newline));
    bytes = newline == std::string_view::npos ? std::string_view{} : bytes.substr(newline + 1);
    ++line_number;
    const RowAt at{file, line_number};
    if (line.empty()) continue;
    // RMM ends every row with a newline: a last row without one was cut, perhaps inside a field.
    if (newline == std::string_view::npos) {
      return at.fail("truncated: the last line has no newline (the log was cut short)");
    }
    if (!seen_header) {
      if (line.find("Thread,Time,Action,Pointer,Size,Stream") != 0) {
        return at.fail("expected the RMM log header 'Thread,Time,Action,Pointer,Size,Stream'");
      }
      seen_header = true;
      continue;
    }
    TraceEvent event;
    if (auto ok = read_row(line, *device, at, event); !ok) return ok.error();
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

}  // namespace memtrack::traces
