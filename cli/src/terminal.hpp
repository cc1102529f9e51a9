// What memtrack prints is safe on a terminal: text from a recording (a tag, an action, a frame's
// file name) may hold control characters, invalid UTF-8 or bidirectional overrides (U+202E),
// which are escaped on the way out instead of being interpreted by the terminal.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <ostream>
#include <streambuf>
#include <string>
#include <string_view>

namespace memtrack::cli {

/**
 * @brief Escapes `text` for a terminal: C0 controls other than newline, tab and carriage return,
 * DEL and C1 controls as `\xNN`; invalid UTF-8 bytes as `\xNN`; bidirectional formatting
 * characters (U+061C, U+200E, U+200F, U+202A..U+202E, U+2066..U+2069) as `\uNNNN`. Valid UTF-8
 * otherwise passes unchanged. An incomplete sequence at the end is escaped byte by byte.
 */
[[nodiscard]] std::string escape_for_terminal(std::string_view text);

/**
 * @brief A name from the command line or a recording (a file name), fit for one line: every C0
 * control, newline, carriage return and tab included, as `\xNN` (then the stream's escaping
 * applies), so a file named `x\nverdict: FITS` cannot forge a line of output.
 */
[[nodiscard]] std::string one_line(std::string_view name);

/// An output stream that escapes what passes through it (see `escape_for_terminal`) into
/// another stream; a UTF-8 sequence split across writes is kept whole.
class EscapingStream final : public std::ostream {
 public:
  explicit EscapingStream(std::ostream& target);
  EscapingStream(const EscapingStream&) = delete;
  EscapingStream& operator=(const EscapingStream&) = delete;
  ~EscapingStream() override;

  [[nodiscard]] std::ostream& target() const;
  /// @return how many bytes were written to this stream (before escaping)
  [[nodiscard]] std::uint64_t written() const;
  /// Keeps a copy of the first `bytes` bytes written from now on (see `kept`).
  void keep_first(std::size_t bytes);
  /// @return the copy `keep_first` asked for, as written (before escaping)
  [[nodiscard]] const std::string& kept() const;

 private:
  class Buffer;
  std::unique_ptr<Buffer> buffer_;
};

/// @return whether `stream` ends at this process's standard error and that is a terminal
[[nodiscard]] bool is_terminal_stderr(const std::ostream& stream);

}  // namespace memtrack::cli
