/**
 * @file writer.hpp
 * @brief `TraceWriter`: writes canonical traces, streaming (the reader is `reader.hpp`), and the
 * text of a header or a whole trace.
 */
#pragma once

#include <memtrack/result.hpp>
#include <memtrack/traces/frames.hpp>
#include <memtrack/traces/io.hpp>
#include <memtrack/traces/trace.hpp>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <variant>
#include <vector>

namespace memtrack::traces {

/**
 * @brief Writes a canonical trace: the header (and its frame table) at `create`, events one by
 * one, and the trailer at `finish`, through a temporary file renamed into place (`.zst`
 * compresses).
 */
class TraceWriter {
 public:
  [[nodiscard]] static Result<TraceWriter> create(const std::filesystem::path& path,
                                                  const TraceHeader& header);
  /// A writer into a spool (`finish` flushes it: the trace can then be read back from it).
  [[nodiscard]] static Result<TraceWriter> create(std::shared_ptr<Spool> spool,
                                                  const TraceHeader& header);

  /// Appends one event.
  Result<void> write(const TraceEvent& event);
  /**
   * @brief Appends the frame and stack lines of `table` that this writer has not written yet
   * (call it with one table that only grows, the header's if it had one, before the events that
   * name its new stacks).
   */
  Result<void> write_frames(const FrameTable& table);
  /// Writes the trailer and renames the file into place.
  Result<void> finish();

  [[nodiscard]] std::uint64_t events_written() const { return events_; }

 private:
  using Output = std::variant<AtomicOutput, std::shared_ptr<Spool>>;
  explicit TraceWriter(Output output) : output_(std::move(output)) {}
  [[nodiscard]] static Result<TraceWriter> start(Output output, const TraceHeader& header);
  Result<void> flush();

  Output output_;
  std::string buffer_;
  std::uint64_t events_{0};
  std::uint64_t table_lines_{0};  ///< frame and stack lines written (counted by the trailer)
  std::size_t frames_written_{0};
  std::size_t stacks_written_{0};
};

/// @return the header's text, from the magic line to `events`
[[nodiscard]] std::string format_header(const TraceHeader& header);

/// @return a whole trace as text (header, the header's frame table, events, trailer)
[[nodiscard]] std::string format_trace(const TraceHeader& header,
                                       const std::vector<TraceEvent>& events);

}  // namespace memtrack::traces
