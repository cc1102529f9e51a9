/**
 * @file frames.hpp
 * @brief The frame table of a trace: the source lines (frames) and call stacks that events name
 * with `stack=ID`. Two kinds of lines define it, each before the first event that uses it:
 *
 *     frame 0 line=123 name=forward file=/src/model.py
 *     frame 1 line=88 name=_call_impl file=torch/nn/modules/module.py
 *     stack 0 frames=0,1
 *     alloc gpu:0 2048 addr=0x7f0000000000 stream=0 stack=0
 *
 * A stack lists its frames innermost first. Names and paths are percent-encoded where they hold a
 * blank, `#`, `%`, `=` or a control byte (docs/trace-format.md, "Frames"). The table holds each
 * distinct frame and stack once: its memory follows the table's lines, never the events.
 */
#pragma once

#include <memtrack/result.hpp>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <vector>

namespace memtrack::traces {

/// One frame of a call stack: a source line and the function it is in.
struct Frame {
  std::string file;
  std::uint64_t line{0};
  std::string name;

  friend bool operator==(const Frame&, const Frame&) = default;
};

/**
 * @brief The frames and stacks of a trace, by their ids.
 *
 * Invariant: every frame a stack names is defined; ids are unique per kind. Definition order is
 * kept, so a writer can write the definitions it has not written yet.
 */
class FrameTable {
 public:
  /**
   * @brief Defines frame `id`.
   * @return a `ParseError` when `id` is already defined
   */
  Result<void> define_frame(std::uint64_t id, Frame frame);

  /**
   * @brief Defines stack `id` from frame ids, innermost first.
   * @return a `ParseError` when `id` is already defined, `frames` is empty or names an
   * undefined frame
   */
  Result<void> define_stack(std::uint64_t id, std::span<const std::uint64_t> frames);

  /// @return the id of a frame equal to `frame` that `intern_frame` made, or a new one's
  [[nodiscard]] std::uint64_t intern_frame(const Frame& frame);

  /**
   * @brief The id of a stack of these frames that `intern_stack` made, or a new one's.
   * @param frames frame ids (defined), innermost first; at least one
   * @throws std::invalid_argument when `frames` is empty or names an undefined frame
   */
  [[nodiscard]] std::uint64_t intern_stack(std::span<const std::uint64_t> frames);

  /// @return frame `id`, or null when it is not defined
  [[nodiscard]] const Frame* frame(std::uint64_t id) const;
  /// @return whether stack `id` is defined
  [[nodiscard]] bool has_stack(std::uint64_t id) const { return stack_index_.contains(id); }
  /// @return stack `id`'s frames, innermost first (pointers into this table); empty when it is
  /// not defined
  [[nodiscard]] std::vector<const Frame*> stack(std::uint64_t id) const;

  [[nodiscard]] std::size_t frame_count() const { return frames_.size(); }
  [[nodiscard]] std::size_t stack_count() const { return stacks_.size(); }
  [[nodiscard]] bool empty() const { return frames_.empty() && stacks_.empty(); }

  /**
   * @brief Appends the definitions from the `frames_from`-th frame and the `stacks_from`-th
   * stack on (in definition order) as lines, frames first, each ending in a newline.
   * @return how many lines were appended
   */
  std::size_t format_lines(std::string& out, std::size_t frames_from = 0,
                           std::size_t stacks_from = 0) const;

  /// Equal when the same ids define equal frames and stacks.
  friend bool operator==(const FrameTable& a, const FrameTable& b);

 private:
  struct StackEntry {
    std::uint64_t id{0};
    std::size_t offset{0};  ///< into `stack_frames_`
    std::size_t length{0};
  };

  std::deque<Frame> frames_;
  std::vector<std::uint64_t> frame_ids_;                        ///< the id of each of `frames_`
  std::unordered_map<std::uint64_t, std::size_t> frame_index_;  ///< id -> index in `frames_`
  std::vector<StackEntry> stacks_;
  std::unordered_map<std::uint64_t, std::size_t> stack_index_;  ///< id -> index in `stacks_`
  std::vector<std::size_t> stack_frames_;  ///< every stack's frames, as indices in `frames_`
  std::uint64_t next_frame_id_{0};
  std::uint64_t next_stack_id_{0};
  // Only what intern_* made (a reader defines, and pays for no index by content).
  std::map<std::tuple<std::string, std::uint64_t, std::string>, std::uint64_t> interned_frames_;
  std::map<std::vector<std::uint64_t>, std::uint64_t> interned_stacks_;
};

/// @return `text` with every blank, `#`, `%`, `=` and control byte as `%XX` (uppercase hex)
[[nodiscard]] std::string percent_encode(std::string_view text);
/// @return the text `percent_encode` made; a `ParseError` for a `%` without two hex digits
[[nodiscard]] Result<std::string> percent_decode(std::string_view text);

/// @return `frame ID line=N name=NAME file=PATH`, without the newline
[[nodiscard]] std::string format_frame(std::uint64_t id, const Frame& frame);
/// @return `stack ID frames=F1,F2,...`, without the newline
[[nodiscard]] std::string format_stack(std::uint64_t id, std::span<const std::uint64_t> frames);

/// Whether a line is a frame-table line, by its keyword (`frame` or `stack`).
[[nodiscard]] bool is_frame_table_line(std::string_view line);

/**
 * @brief Parses a `frame` or `stack` line into `table`.
 * @return a `ParseError` saying what was expected (the caller adds file and line)
 */
[[nodiscard]] Result<void> parse_frame_table_line(std::string_view line, FrameTable& table);

}  // namespace memtrack::traces
