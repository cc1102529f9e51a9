#include <memtrack/traces/writer.hpp>

#include "config_lines.hpp"
#include "import_support.hpp"

namespace memtrack::traces {
namespace {

/// The buffer's size at which the writer hands its lines to the file.
constexpr std::size_t flush_bytes = 256 * 1024;

}  // namespace

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
  if (header.config) text += detail::config_to_text(*header.config);
  for (const DeviceRecord& record : header.devices) {
    text += format_device_record(record) + "\n";
  }
  if (header.allocator_settings) {
    text += "allocator_settings " + header.allocator_settings->to_string() + "\n";
  }
  text += "events\n";
  return text;
}

std::string format_trace(const TraceHeader& header, const std::vector<TraceEvent>& events) {
  std::string text = format_header(header);
  const std::size_t table_lines = header.frames ? header.frames->format_lines(text) : 0;
  for (const TraceEvent& event : events)
    text += format_event(event) + "\n";
  text += "end " + std::to_string(events.size() + table_lines) + "\n";
  return text;
}

Result<TraceWriter> TraceWriter::create(const std::filesystem::path& path,
                                        const TraceHeader& header) {
  auto output = AtomicOutput::create(path);
  if (!output) return output.error();
  return start(std::move(*output), header);
}

Result<TraceWriter> TraceWriter::create(std::shared_ptr<Spool> spool, const TraceHeader& header) {
  return start(std::move(spool), header);
}

Result<TraceWriter> TraceWriter::start(Output output, const TraceHeader& header) {
  TraceWriter writer(std::move(output));
  writer.buffer_ = format_header(header);
  if (header.frames) {
    if (auto ok = writer.write_frames(*header.frames); !ok) return ok.error();
  }
  return writer;
}

Result<void> TraceWriter::flush() {
  auto ok = std::holds_alternative<AtomicOutput>(output_)
                ? std::get<AtomicOutput>(output_).write(buffer_)
                : std::get<std::shared_ptr<Spool>>(output_)->write(buffer_);
  buffer_.clear();
  return ok;
}

Result<void> TraceWriter::write(const TraceEvent& event) {
  detail::append_event(buffer_, event);
  buffer_ += '\n';
  ++events_;
  if (buffer_.size() >= flush_bytes) return flush();
  return {};
}

Result<void> TraceWriter::write_frames(const FrameTable& table) {
  table_lines_ += table.format_lines(buffer_, frames_written_, stacks_written_);
  frames_written_ = table.frame_count();
  stacks_written_ = table.stack_count();
  if (buffer_.size() >= flush_bytes) return flush();
  return {};
}

Result<void> TraceWriter::finish() {
  buffer_ += "end " + std::to_string(events_ + table_lines_) + "\n";
  if (auto ok = flush(); !ok) return ok;
  if (auto* spool = std::get_if<std::shared_ptr<Spool>>(&output_)) return (*spool)->flush();
  return std::get<AtomicOutput>(output_).commit();
}

}  // namespace memtrack::traces
