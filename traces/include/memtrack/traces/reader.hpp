/**
 * @file reader.hpp
 * @brief Streaming reader and writer of canonical traces. Memory stays bounded by one line
 * (at most `max_line_bytes`) whatever the trace's length.
 */
#pragma once

#include <memtrack/result.hpp>
#include <memtrack/traces/io.hpp>
#include <memtrack/traces/trace.hpp>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace memtrack::traces {

/**
 * @brief Reads a canonical trace one event at a time.
 *
 * `open` reads the header; `next` returns the events, then checks the `end N` trailer, so a
 * truncated trace is an error rather than a shorter recording. Every error names the file and
 * line.
 */
class TraceReader {
 public:
  /// Opens a trace file (plain, `.zst` or `.gz`) and reads its header.
  [[nodiscard]] static Result<TraceReader> open(const std::filesystem::path& path);
  /// Reads a trace from any byte source; `name` is used in errors.
  [[nodiscard]] static Result<TraceReader> from_source(std::unique_ptr<ByteSource> source,
                                                       std::string name);

  TraceReader(TraceReader&&) noexcept;
  TraceReader& operator=(TraceReader&&) noexcept;
  TraceReader(const TraceReader&) = delete;
  TraceReader& operator=(const TraceReader&) = delete;
  ~TraceReader();

  [[nodiscard]] const TraceHeader& header() const { return header_; }
  [[nodiscard]] const std::string& name() const { return name_; }

  /**
   * @brief Reads the next event.
   * @return true with `event` set, false after the trailer (the trace is complete), or a
   * `ParseError` of the form `FILE:LINE: what was expected`
   */
  Result<bool> next(TraceEvent& event);

  /// @return the line number of the last line read
  [[nodiscard]] std::uint64_t line_number() const { return line_number_; }
  /// @return how many events `next` has returned
  [[nodiscard]] std::uint64_t events_read() const { return events_; }

  /**
   * @brief The raw line layer, for measuring the floor: the next line without its newline.
   * @return true with `line` set, false at the end of the bytes
   */
  Result<bool> next_line(std::string_view& line);

 private:
  TraceReader(std::unique_ptr<ByteSource> source, std::string name);
  Result<void> read_header();
  Error located(const std::string& what) const;

  std::unique_ptr<ByteSource> source_;
  std::string name_;
  TraceHeader header_;
  std::vector<char> buffer_;
  std::size_t begin_{0};
  std::size_t end_{0};
  bool eof_{false};
  bool finished_{false};
  std::uint64_t line_number_{0};
  std::uint64_t events_{0};
};

/**
 * @brief Writes a canonical trace: the header at `create`, events one by one, and the trailer
 * at `finish`, through a temporary file renamed into place (`.zst` compresses).
 */
class TraceWriter {
 public:
  [[nodiscard]] static Result<TraceWriter> create(const std::filesystem::path& path,
                                                  const TraceHeader& header);

  /// Appends one event.
  Result<void> write(const TraceEvent& event);
  /// Writes the trailer and renames the file into place.
  Result<void> finish();

  [[nodiscard]] std::uint64_t events_written() const { return events_; }

 private:
  explicit TraceWriter(AtomicOutput output) : output_(std::move(output)) {}
  Result<void> flush();

  AtomicOutput output_;
  std::string buffer_;
  std::uint64_t events_{0};
};

/// @return the header's text, from the magic line to `events`
[[nodiscard]] std::string format_header(const TraceHeader& header);

/// @return a whole trace as text (header, events, trailer)
[[nodiscard]] std::string format_trace(const TraceHeader& header,
                                       const std::vector<TraceEvent>& events);

}  // namespace memtrack::traces
