/**
 * @file reader.hpp
 * @brief `TraceReader`: the streaming reader of canonical traces. Memory stays bounded by one
 * line (at most `max_line_bytes`) whatever the trace's length. The writer is `writer.hpp`.
 */
#pragma once

#include <memtrack/result.hpp>
#include <memtrack/traces/frames.hpp>
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
 *
 * The reader also checks, as it streams, what spans several lines: a `layout` group (its
 * `segments=N` segments, each followed by its `blocks=M` blocks tiling it in address order, all
 * on the layout's device) and the frame table (`frame` and `stack` lines, which it keeps and
 * `next` does not return; an event's `stack=` must name a stack defined before it).
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

  /// @return the frames and stacks defined so far (`frame` and `stack` lines)
  [[nodiscard]] const FrameTable& frames() const { return frames_; }

  /**
   * @brief The raw line layer, for measuring the floor: the next line without its newline.
   * @return true with `line` set, false at the end of the bytes
   */
  Result<bool> next_line(std::string_view& line);

 private:
  TraceReader(std::unique_ptr<ByteSource> source, std::string name);
  Result<void> read_header();
  Error located(const std::string& what) const;
  Result<void> check_layout(const TraceEvent& event);

  /// Where the reader is in a `layout` group. Invariant: `segments_left > 0` while inside one;
  /// `blocks_left > 0` while inside one of its segments.
  struct LayoutState {
    std::uint64_t line{0};  ///< the `layout` line
    DevicePlacement device{};
    std::uint64_t segments{0};       ///< segments=
    std::uint64_t segments_left{0};  ///< segment lines still to come (with their blocks)
    std::uint64_t blocks_left{0};    ///< block lines of the current segment still to come
    std::uint64_t next_address{0};   ///< where the next block must start
    std::uint64_t segment_end{0};    ///< the current segment's end
    std::uint64_t min_segment{0};    ///< the next segment starts here or above
    bool any_segment{false};
  };

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
  std::uint64_t table_lines_{0};  ///< frame and stack lines read (counted by the trailer)
  FrameTable frames_;
  LayoutState layout_;
};

}  // namespace memtrack::traces
