#include <memtrack/traces/frames.hpp>

#include "import_support.hpp"
#include "textkit.hpp"

#include <stdexcept>

namespace memtrack::traces {
namespace {

using detail::next_word;
using detail::parse_decimal;

bool needs_escape(unsigned char c) {
  return c < 0x20 || c == 0x7F || c == ' ' || c == '#' || c == '%' || c == '=';
}

Result<void> parse_frame_line(std::string_view rest, FrameTable& table) {
  auto id = parse_decimal(next_word(rest), "'frame ID'");
  if (!id) return id.error();
  Frame frame;
  bool seen_line = false;
  bool seen_name = false;
  bool seen_file = false;
  for (std::string_view item = next_word(rest); !item.empty(); item = next_word(rest)) {
    const std::size_t equals = item.find('=');
    const std::string_view key = item.substr(0, equals);
    const std::string_view value =
        equals == std::string_view::npos ? std::string_view{} : item.substr(equals + 1);
    bool* seen = nullptr;
    if (equals != std::string_view::npos && key == "line") {
      seen = &seen_line;
    } else if (equals != std::string_view::npos && key == "name") {
      seen = &seen_name;
    } else if (equals != std::string_view::npos && key == "file") {
      seen = &seen_file;
    } else {
      return Error::parse_error("expected 'frame ID line=N name=NAME file=PATH', got '" +
                                std::string(item) + "'");
    }
    if (*seen) return Error::parse_error("frame: " + std::string(key) + "= given twice");
    *seen = true;
    if (key == "line") {
      auto line = parse_decimal(value, "line=");
      if (!line) return line.error();
      frame.line = *line;
      continue;
    }
    auto text = percent_decode(value);
    if (!text) return text.error();
    (key == "name" ? frame.name : frame.file) = std::move(*text);
  }
  if (!seen_line || !seen_name || !seen_file) {
    return Error::parse_error("frame " + std::to_string(*id) + " needs line=, name= and file=");
  }
  return table.define_frame(*id, std::move(frame));
}

Result<void> parse_stack_line(std::string_view rest, FrameTable& table) {
  auto id = parse_decimal(next_word(rest), "'stack ID'");
  if (!id) return id.error();
  const std::string_view item = next_word(rest);
  if (!item.starts_with("frames=") || !next_word(rest).empty()) {
    return Error::parse_error("expected 'stack ID frames=F1,F2,...' (frame ids, innermost first)");
  }
  std::vector<std::uint64_t> frames;  // bounded by the line's length
  std::string_view list = item.substr(7);
  for (;;) {
    const std::size_t comma = list.find(',');
    auto frame = parse_decimal(list.substr(0, comma), "a frame id in frames=");
    if (!frame) return frame.error();
    frames.push_back(*frame);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return table.define_stack(*id, frames);
}

}  // namespace

Result<void> FrameTable::define_frame(std::uint64_t id, Frame frame) {
  if (frame_index_.contains(id)) {
    return Error::parse_error("frame " + std::to_string(id) + " is defined twice");
  }
  frame_index_.emplace(id, frames_.size());
  frames_.push_back(std::move(frame));
  frame_ids_.push_back(id);
  if (id >= next_frame_id_) next_frame_id_ = id + 1;
  return {};
}

Result<void> FrameTable::define_stack(std::uint64_t id, std::span<const std::uint64_t> frames) {
  if (stack_index_.contains(id)) {
    return Error::parse_error("stack " + std::to_string(id) + " is defined twice");
  }
  if (frames.empty()) {
    return Error::parse_error("stack " + std::to_string(id) + " needs at least one frame");
  }
  const std::size_t offset = stack_frames_.size();
  for (const std::uint64_t frame : frames) {
    const auto found = frame_index_.find(frame);
    if (found == frame_index_.end()) {
      stack_frames_.resize(offset);
      return Error::parse_error("stack " + std::to_string(id) + " names frame " +
                                std::to_string(frame) + ", which is not defined before it");
    }
    stack_frames_.push_back(found->second);
  }
  stack_index_.emplace(id, stacks_.size());
  stacks_.push_back(StackEntry{id, offset, frames.size()});
  if (id >= next_stack_id_) next_stack_id_ = id + 1;
  return {};
}

std::uint64_t FrameTable::intern_frame(const Frame& frame) {
  auto key = std::make_tuple(frame.file, frame.line, frame.name);
  if (const auto found = interned_frames_.find(key); found != interned_frames_.end()) {
    return found->second;
  }
  const std::uint64_t id = next_frame_id_;
  static_cast<void>(define_frame(id, frame));  // a fresh id: cannot fail
  interned_frames_.emplace(std::move(key), id);
  return id;
}

std::uint64_t FrameTable::intern_stack(std::span<const std::uint64_t> frames) {
  std::vector<std::uint64_t> key(frames.begin(), frames.end());
  if (const auto found = interned_stacks_.find(key); found != interned_stacks_.end()) {
    return found->second;
  }
  const std::uint64_t id = next_stack_id_;
  if (auto ok = define_stack(id, frames); !ok) throw std::invalid_argument(ok.error().detail);
  interned_stacks_.emplace(std::move(key), id);
  return id;
}

const Frame* FrameTable::frame(std::uint64_t id) const {
  const auto found = frame_index_.find(id);
  return found == frame_index_.end() ? nullptr : &frames_[found->second];
}

std::vector<const Frame*> FrameTable::stack(std::uint64_t id) const {
  std::vector<const Frame*> frames;
  const auto found = stack_index_.find(id);
  if (found == stack_index_.end()) return frames;
  const StackEntry& entry = stacks_[found->second];
  frames.reserve(entry.length);
  for (std::size_t i = 0; i < entry.length; ++i)
    frames.push_back(&frames_[stack_frames_[entry.offset + i]]);
  return frames;
}

std::size_t FrameTable::format_lines(std::string& out, std::size_t frames_from,
                                     std::size_t stacks_from) const {
  std::size_t lines = 0;
  for (std::size_t i = frames_from; i < frames_.size(); ++i, ++lines) {
    out += format_frame(frame_ids_[i], frames_[i]);
    out += '\n';
  }
  std::vector<std::uint64_t> ids;
  for (std::size_t s = stacks_from; s < stacks_.size(); ++s, ++lines) {
    const StackEntry& entry = stacks_[s];
    ids.clear();
    for (std::size_t i = 0; i < entry.length; ++i)
      ids.push_back(frame_ids_[stack_frames_[entry.offset + i]]);
    out += format_stack(entry.id, ids);
    out += '\n';
  }
  return lines;
}

bool operator==(const FrameTable& a, const FrameTable& b) {
  if (a.frames_.size() != b.frames_.size() || a.stacks_.size() != b.stacks_.size()) return false;
  for (std::size_t i = 0; i < a.frames_.size(); ++i) {
    const Frame* other = b.frame(a.frame_ids_[i]);
    if (other == nullptr || *other != a.frames_[i]) return false;
  }
  for (const auto& entry : a.stacks_) {
    if (a.stack(entry.id).size() != b.stack(entry.id).size()) return false;
    const auto mine = a.stack(entry.id);
    const auto theirs = b.stack(entry.id);
    for (std::size_t i = 0; i < mine.size(); ++i) {
      if (*mine[i] != *theirs[i]) return false;
    }
  }
  return true;
}

std::string percent_encode(std::string_view text) {
  static constexpr char digits[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (needs_escape(byte)) {
      out += '%';
      out += digits[byte >> 4U];
      out += digits[byte & 0xFU];
    } else {
      out += c;
    }
  }
  return out;
}

Result<std::string> percent_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out += text[i];
      continue;
    }
    const auto byte = textkit::parse_hex_digits(text.substr(i + 1, 2));
    if (i + 3 > text.size() || !byte) {
      return Error::parse_error("expected %XX (two hexadecimal digits) after '%' in '" +
                                std::string(text) + "'");
    }
    out += static_cast<char>(*byte);
    i += 2;
  }
  return out;
}

std::string format_frame(std::uint64_t id, const Frame& frame) {
  return "frame " + std::to_string(id) + " line=" + std::to_string(frame.line) +
         " name=" + percent_encode(frame.name) + " file=" + percent_encode(frame.file);
}

std::string format_stack(std::uint64_t id, std::span<const std::uint64_t> frames) {
  std::string line = "stack " + std::to_string(id) + " frames=";
  for (std::size_t i = 0; i < frames.size(); ++i) {
    if (i != 0) line += ',';
    line += std::to_string(frames[i]);
  }
  return line;
}

bool is_frame_table_line(std::string_view line) {
  return line.starts_with("frame ") || line.starts_with("stack ") || line == "frame" ||
         line == "stack";
}

Result<void> parse_frame_table_line(std::string_view line, FrameTable& table) {
  std::string_view rest = line;
  const std::string_view word = next_word(rest);
  if (word == "frame") return parse_frame_line(rest, table);
  if (word == "stack") return parse_stack_line(rest, table);
  return Error::parse_error("expected a 'frame' or 'stack' line, got '" + std::string(word) + "'");
}

}  // namespace memtrack::traces
