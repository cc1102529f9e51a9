#include <memtrack/traces/reader.hpp>

#include <memtrack/sim/scenario.hpp>

#include "import_support.hpp"

#include <charconv>
#include <cstring>

namespace memtrack::traces {
namespace {

constexpr std::size_t read_chunk = 256 * 1024;
constexpr std::size_t flush_bytes = 256 * 1024;

using detail::trim;

/// @return the line without a `#` comment and surrounding blanks
std::string_view content(std::string_view line) {
  if (const std::size_t hash = line.find('#'); hash != std::string_view::npos) {
    line = line.substr(0, hash);
  }
  return trim(line);
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
      if (text != trace_magic) {
        if (text.starts_with("memtrack-trace ")) {
          return located("trace format version '" + std::string(text.substr(15)) +
                         "' is not supported: this memtrack reads version 1");
        }
        return located("expected the header '" + std::string(trace_magic) + "'");
      }
      seen_magic = true;
      continue;
    }
    if (text == "events") break;
    if (text.starts_with("source ") || text == "source") {
      header_.source = std::string(trim(line.substr(line.find("source") + 6)));
      continue;
    }
    if (text.starts_with("device ")) {
      if (header_.devices.size() >= max_header_gpus) {
        return located("more than " + std::to_string(max_header_gpus) +
                       " device lines: more GPUs than a node has (see docs/limits.md)");
      }
      auto record = parse_device_record(text);
      if (!record) return located(record.error().to_string());
      header_.devices.push_back(std::move(*record));
      continue;
    }
    if (text.starts_with("profile ")) {
      if (header_.config) return located("a header names a profile or declares devices, not both");
      header_.profile = std::string(trim(text.substr(8)));
      continue;
    }
    // Parsed in place (a copy of the configuration per line made long headers quadratic).
    const bool had_config = header_.config.has_value();
    GpuConfig& config = had_config ? *header_.config : header_.config.emplace();
    if (text.starts_with("gpu ") && config.gpus.size() >= max_header_gpus) {
      return located("more than " + std::to_string(max_header_gpus) +
                     " gpu lines: more GPUs than a node has (see docs/limits.md)");
    }
    auto handled = sim::parse_config_line(text, config);
    if (!handled || !*handled || !header_.profile.empty()) {
      if (!had_config) header_.config.reset();
    }
    if (!handled) return located(handled.error().to_string());
    if (!*handled) {
      return located(
          "expected a header line (source, profile, memory_fraction, "
          "cpu_memory_limit, gpu, device) or 'events', got '" +
          std::string(text) + "'");
    }
    if (!header_.profile.empty()) {
      return located("a header names a profile or declares devices, not both");
    }
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
    if (!*more) {
      return located("truncated: no trailer 'end N' after " + std::to_string(events_) +
                     " events (the recording was cut short)");
    }
    const std::string_view text = content(line);
    if (text.empty()) continue;
    if (text == "end" || text.starts_with("end ")) {
      std::string_view count = trim(text.substr(3));
      std::uint64_t expected = 0;
      const auto [end, ec] = std::from_chars(count.data(), count.data() + count.size(), expected);
      if (count.empty() || ec != std::errc{} || end != count.data() + count.size()) {
        return located("expected the trailer 'end N' with N the number of events");
      }
      if (expected != events_) {
        return located("the trailer says " + std::to_string(expected) + " events, but " +
                       std::to_string(events_) + " were read");
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
    if (auto parsed = parse_event(text, event); !parsed) return located(parsed.error().detail);
    ++events_;
    return true;
  }
}

// ---- writer ----

std::string format_header(const TraceHeader& header) {
  std::string text(trace_magic);
  text += '\n';
  if (!header.source.empty()) {
    std::string source = header.source;  // one line, no comment sign
    for (char& c : source) {
      if (c == '\n' || c == '\r' || c == '#') c = '_';
    }
    text += "source " + source + "\n";
  }
  if (!header.profile.empty()) text += "profile " + header.profile + "\n";
  if (header.config) text += sim::config_to_text(*header.config);
  for (const DeviceRecord& record : header.devices) {
    text += format_device_record(record) + "\n";
  }
  text += "events\n";
  return text;
}

std::string format_trace(const TraceHeader& header, const std::vector<TraceEvent>& events) {
  std::string text = format_header(header);
  for (const TraceEvent& event : events)
    text += format_event(event) + "\n";
  text += "end " + std::to_string(events.size()) + "\n";
  return text;
}

Result<TraceWriter> TraceWriter::create(const std::filesystem::path& path,
                                        const TraceHeader& header) {
  auto output = AtomicOutput::create(path);
  if (!output) return output.error();
  TraceWriter writer(std::move(*output));
  writer.buffer_ = format_header(header);
  return writer;
}

Result<void> TraceWriter::flush() {
  auto ok = output_.write(buffer_);
  buffer_.clear();
  return ok;
}

Result<void> TraceWriter::write(const TraceEvent& event) {
  buffer_ += format_event(event);
  buffer_ += '\n';
  ++events_;
  if (buffer_.size() >= flush_bytes) return flush();
  return {};
}

Result<void> TraceWriter::finish() {
  buffer_ += "end " + std::to_string(events_) + "\n";
  if (auto ok = flush(); !ok) return ok;
  return output_.commit();
}

}  // namespace memtrack::traces
