// Private helpers shared by the importers. Not installed.
#pragma once

#include <memtrack/result.hpp>
#include <memtrack/traces/io.hpp>
#include <memtrack/traces/trace.hpp>

#include "huge_pages.hpp"
#include "textkit.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace memtrack::traces::detail {

// The text toolkit's, under the names the importers and the trace format use.
using textkit::hex;
using textkit::next_word;
using textkit::trim;

/// `read_all` into huge pages (an importer's input read whole): the same bound and error, with
/// one page fault per 2 MiB instead of one per 4 KiB and no second copy of the bytes.
[[nodiscard]] Result<HugeBytes> read_all_in_huge_pages(ByteSource& source, std::string_view name,
                                                       std::uint64_t max_bytes);

/// Appends `format_event(event)` to `out` (the writers' buffers, without a string per event).
void append_event(std::string& out, const TraceEvent& event);

/**
 * @brief Reads the lines of nearly every trace in one pass: `alloc|free|baseline DEVICE [BYTES]`
 * and `check DEVICE allocated=N`, with `t=`, `addr=`, `stream=`, `stack=`, `tag=`, `result=`,
 * `resolved=` (and a check's `reserved=`) each once, numbers in digits: what `parse_event` makes
 * of them, faster. A `stack=` is not checked against the frame table (the reader does that).
 * @return false for any other line (a comment, a CR, another kind, a field twice...): `event` then
 * holds a part of it, and `parse_event` must read the line
 */
[[nodiscard]] bool parse_hot_operation(std::string_view line, TraceEvent& event);

/// `parse_event` without the one-pass reading of `parse_hot_operation` first: the general
/// parser, which decides every line (the tests' oracle for the one-pass reading).
[[nodiscard]] Result<void> parse_general_event(std::string_view line, TraceEvent& event);

/// @return `text` fit for one header line: control characters and '#' become '_', at most 200
inline std::string printable(std::string_view text) {
  std::string out(text.substr(0, 200));
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || c == '#' || c == 0x7F) c = '_';
  }
  return std::string(trim(out));
}

/// @return `text` as a decimal count, or a `ParseError` naming `what`
inline Result<std::uint64_t> parse_decimal(std::string_view text, std::string_view what) {
  if (const auto value = textkit::parse_u64(text)) [[likely]] {
    return *value;
  }
  return Error::parse_error("expected " + std::string(what) +
                            " as a decimal number of at most 2^64 - 1, got '" + std::string(text) +
                            "'");
}

/// Bytes in memory as a source: the streaming importers' entry points for bytes read them so.
class ViewSource final : public ByteSource {
 public:
  explicit ViewSource(std::string_view bytes) : rest_(bytes) {}
  Result<std::size_t> read(char* buffer, std::size_t size) override {
    const std::size_t n = std::min(size, rest_.size());
    if (n != 0) std::memcpy(buffer, rest_.data(), n);
    rest_.remove_prefix(n);
    return n;
  }

 private:
  std::string_view rest_;
};

}  // namespace memtrack::traces::detail
