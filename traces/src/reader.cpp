#include <memtrack/traces/reader.hpp>

#include "config_lines.hpp"
#include "import_support.hpp"
#include "textkit.hpp"

#include <cstring>

namespace memtrack::traces {
namespace {

constexpr std::size_t read_chunk = 256 * 1024;

using detail::trim;
using textkit::content;

/// @return what is wrong with a trace's first line (empty: it is the magic line)
std::string magic_problem(std::string_view text) {
  if (text == trace_magic) return {};
  if (text.starts_with("memtrack-trace ")) {
    return "trace format version '" + std::string(text.substr(15)) +
           "' is not supported: this memtrack reads version 1";
  }
  return "expected the header '" + std::string(trace_magic) + "'";
}

// The header lines' readers below return unlocated ParseErrors: the reader adds file and line.

/// A `device` record.
Result<void> read_device_line(TraceHeader& header, std::string_view text) {
  if (header.devices.size() >= max_header_gpus) {
    return Error::parse_error("more than " + std::to_string(max_header_gpus) +
                              " device lines: more GPUs than a node has (see docs/limits.md)");
  }
  auto record = parse_device_record(text);
  if (!record) return Error::parse_error(record.error().to_string());
  header.devices.push_back(std::move(*record));
  return {};
}

/// `allocator_settings` in PyTorch's syntax.
Result<void> read_settings_line(TraceHeader& header, std::string_view text) {
  if (header.allocator_settings) return Error::parse_error("allocator_settings given twice");
  constexpr std::string_view key = "allocator_settings";
  auto settings = sim::allocators::AllocatorSettings::parse(trim(text.substr(key.size())));
  if (!settings) {
    return Error::parse_error(
        "expected 'allocator_settings' in PyTorch's syntax "
        "(expandable_segments:True,max_split_size_mb:512): " +
        settings.error().to_string());
  }
  header.allocator_settings = *settings;
  return {};
}

/// A line of the declared configuration (memory_fraction, cpu_memory_limit, gpu).
Result<void> read_config_line(TraceHeader& header, std::string_view text) {
  // Parsed in place (a copy of the configuration per line made long headers quadratic).
  const bool had_config = header.config.has_value();
  GpuConfig& config = had_config ? *header.config : header.config.emplace();
  if (text.starts_with("gpu ") && config.gpus.size() >= max_header_gpus) {
    return Error::parse_error("more than " + std::to_string(max_header_gpus) +
                              " gpu lines: more GPUs than a node has (see docs/limits.md)");
  }
  auto handled = detail::parse_config_line(text, config);
  if (!handled || !*handled || !header.profile.empty()) {
    if (!had_config) header.config.reset();
  }
  if (!handled) return Error::parse_error(handled.error().to_string());
  if (!*handled) {
    return Error::parse_error(
        "expected a header line (source, profile, memory_fraction, "
        "cpu_memory_limit, gpu, device) or 'events', got '" +
        std::string(text) + "'");
  }
  if (!header.profile.empty()) {
    return Error::parse_error("a header names a profile or declares devices, not both");
  }
  return {};
}

/// One header line after the magic and before `events`: `line` as read, `text` its content.
Result<void> read_header_line(TraceHeader& header, std::string_view line, std::string_view text) {
  if (text.starts_with("source ") || text == "source") {
    header.source = std::string(trim(line.substr(line.find("source") + 6)));
    return {};
  }
  if (text.starts_with("device ")) return read_device_line(header, text);
  if (text == "allocator_settings" || text.starts_with("allocator_settings ")) {
    return read_settings_line(header, text);
  }
  if (text.starts_with("profile ")) {
    if (header.config) {
      return Error::parse_error("a header names a profile or declares devices, not both");
    }
    header.profile = std::string(trim(text.substr(8)));
    return {};
  }
  return read_config_line(header, text);
}

}  // namespace

TraceReader::TraceReader(std::unique_ptr<ByteSource> source, std::string name)
    : source_(std::move(source)), name_(std::move(name)), buffer_(read_chunk + max_line_bytes) {}
TraceReader::TraceReader(TraceReader&&) noexcept = default;
TraceReader& TraceReader::operator=(TraceReader&&) noexcept = default;
TraceReader::~TraceReader() = default;

Result<TraceReader> TraceReader::open(const std::filesystem::path& path) {
  auto source = open_source(path);
  if (!source) return source.error();
  return from_source(std::move(*source), path.string());
}

Result<TraceReader> TraceReader::from_source(std::unique_ptr<ByteSource> source, std::string name) {
  TraceReader reader(std::move(source), std::move(name));
  if (auto ok = reader.read_header(); !ok) return ok.error();
  return reader;
}

Error TraceReader::located(const std::string& what) const {
  return Error::parse_error(name_ + ":" + std::to_string(line_number_) + ": " + what);
}

Result<bool> TraceReader::next_line(std::string_view& line) {
  for (;;) {
    const char* start = buffer_.data() + begin_;
    if (const void* newline = std::memchr(start, '\n', end_ - begin_); newline != nullptr) {
      const auto length = static_cast<std::size_t>(static_cast<const char*>(newline) - start);
      if (length > max_line_bytes) {
        ++line_number_;
        return located("line longer than " + std::to_string(max_line_bytes) +
                       " bytes: not a trace, or corrupt");
      }
      line = std::string_view(start, length);
      begin_ += length + 1;
      ++line_number_;
      return true;
    }
    if (end_ - begin_ > max_line_bytes) {
      ++line_number_;
      return located("line longer than " + std::to_string(max_line_bytes) +
                     " bytes: not a trace, or corrupt");
    }
    if (eof_) {
      if (begin_ == end_) return false;
      ++line_number_;
      return located("truncated: the last line has no newline (the file was cut short)");
    }
    // Move the partial line to the front and read more behind it.
    std::memmove(buffer_.data(), buffer_.data() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
    auto got = source_->read(buffer_.data() + end_, buffer_.size() - end_);
    if (!got) return got.error();
    if (*got == 0) eof_ = true;
    end_ += *got;
  }
}

Result<void> TraceReader::read_header() {
  std::string_view line;
  bool seen_magic = false;
  for (;;) {
    auto more = next_line(line);
    if (!more) return more.error();
    if (!*more) {
      if (!seen_magic) {
        line_number_ = std::max<std::uint64_t>(line_number_, 1);
        return located("empty, expected the header '" + std::string(trace_magic) + "'");
      }
      return located("the header does not end with the line 'events' (truncated?)");
    }
    const std::string_view text = content(line);
    if (text.empty()) continue;
    if (!seen_magic) {
      if (const std::string problem = magic_problem(text); !problem.empty()) {
        return located(problem);
      }
      seen_magic = true;
      continue;
    }
    if (text == "events") break;
    if (auto ok = read_header_line(header_, line, text); !ok) return located(ok.error().detail);
  }
  if (header_.config) {
    if (auto valid = validate(*header_.config); !valid) {
      return located("the declared devices are not a valid configuration: " +
                     valid.error().to_string());
    }
  }
  return {};
}

Result<bool> TraceReader::next(TraceEvent& event) {
  if (finished_) return false;
  std::string_view line;
  for (;;) {
    auto more = next_line(line);
    if (!more) return more.error();
    // The hot lines (alloc, free, baseline and check, outside a layout) first, read from the
    // raw line: one with a comment, a CR, a stack not defined yet or anything unusual goes on to
    // the general path below.
    if (*more && layout_.segments_left == 0 && detail::parse_hot_operation(line, event) &&
        (!event.stack || frames_.has_stack(*event.stack))) [[likely]] {
      ++events_;
      return true;
    }
    if (!*more) {
      return located("truncated: no trailer 'end N' after " + std::to_string(events_) +
                     " events (the recording was cut short)");
    }
    const std::string_view text = content(line);
    if (text.empty()) continue;
    if (text == "end" || text.starts_with("end ")) {
      const auto expected = textkit::parse_u64(trim(text.substr(3)));
      if (!expected) return located("expected the trailer 'end N' with N the number of events");
      if (layout_.segments_left > 0) {
        return located("the layout at line " + std::to_string(layout_.line) +
                       " is cut short: " + std::to_string(layout_.segments_left) + " of its " +
                       std::to_string(layout_.segments) + " segments (or their blocks) missing");
      }
      if (*expected != events_ + table_lines_) {
        return located("the trailer says " + std::to_string(*expected) + " events, but " +
                       std::to_string(events_ + table_lines_) + " were read" +
                       (table_lines_ != 0
                            ? " (" + std::to_string(events_) + " events and " +
                                  std::to_string(table_lines_) + " frame and stack lines)"
                            : std::string{}));
      }
      std::string_view after;
      for (;;) {
        auto extra = next_line(after);
        if (!extra) return extra.error();
        if (!*extra) break;
        if (!content(after).empty()) return located("text after the trailer 'end N'");
      }
      finished_ = true;
      return false;
    }
    if (is_frame_table_line(text)) {
      if (auto ok = parse_frame_table_line(text, frames_); !ok) return located(ok.error().detail);
      ++table_lines_;
      continue;
    }
    if (auto parsed = parse_event(text, event); !parsed) return located(parsed.error().detail);
    if (event.stack && !frames_.has_stack(*event.stack)) {
      return located("stack=" + std::to_string(*event.stack) +
                     " names no stack defined before it (expected a line 'stack " +
                     std::to_string(*event.stack) + " frames=...' earlier)");
    }
    if (auto ok = check_layout(event); !ok) return ok.error();
    ++events_;
    return true;
  }
}

Result<void> TraceReader::check_layout(const TraceEvent& event) {
  using Kind = TraceEvent::Kind;
  LayoutState& layout = layout_;
  if (layout.segments_left == 0) {
    if (event.kind == Kind::Segment || event.kind == Kind::Block) {
      return located(std::string(keyword(event.kind)) +
                     " outside a layout: expected 'layout DEVICE start|check segments=N' "
                     "before its segments and blocks");
    }
    if (event.kind == Kind::Layout) {
      layout = LayoutState{};
      layout.line = line_number_;
      layout.device = event.device;
      layout.segments = *event.count;
      layout.segments_left = *event.count;
    }
    return {};
  }
  const std::string group = " of the layout at line " + std::to_string(layout.line);
  const bool want_block = layout.blocks_left > 0;
  if (event.kind != (want_block ? Kind::Block : Kind::Segment)) {
    return located("expected " +
                   (want_block
                        ? "a block line (" + std::to_string(layout.blocks_left) +
                              " more of the current segment)"
                        : "segment " + std::to_string(layout.segments - layout.segments_left + 1) +
                              " of " + std::to_string(layout.segments)) +
                   group + ", got '" + std::string(keyword(event.kind)) + "'");
  }
  if (event.device != layout.device) {
    return located(std::string(keyword(event.kind)) + " on " + event.device.to_string() + group +
                   ", which is of " + layout.device.to_string());
  }
  const std::uint64_t address = *event.address;
  const std::uint64_t bytes = *event.bytes;  // address + bytes checked by the parser
  if (want_block) {
    if (address != layout.next_address) {
      return located("expected the next block at " + detail::hex(layout.next_address) +
                     " (blocks tile their segment in address order), got " + detail::hex(address));
    }
    if (bytes > layout.segment_end - address) {
      return located("the block at " + detail::hex(address) + " of " + std::to_string(bytes) +
                     " bytes ends past its segment's end " + detail::hex(layout.segment_end));
    }
    layout.next_address = address + bytes;
    if (--layout.blocks_left == 0) {
      if (layout.next_address != layout.segment_end) {
        return located("the segment's blocks end at " + detail::hex(layout.next_address) +
                       ", short of the segment's end " + detail::hex(layout.segment_end) +
                       ": its blocks= lines must tile it");
      }
      --layout.segments_left;
    }
    return {};
  }
  if (layout.any_segment && address < layout.min_segment) {
    return located("expected the segments" + group +
                   " in ascending address order without overlap: this one starts at " +
                   detail::hex(address) + ", below " + detail::hex(layout.min_segment));
  }
  layout.any_segment = true;
  layout.min_segment = address + bytes;
  layout.next_address = address;
  layout.segment_end = address + bytes;
  layout.blocks_left = *event.count;
  return {};
}

}  // namespace memtrack::traces
