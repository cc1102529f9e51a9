#include <memtrack/traces/importers.hpp>
#include <memtrack/traces/io.hpp>

#include "import_support.hpp"

#include <array>
#include <utility>

namespace memtrack::traces {
namespace {

constexpr std::array<std::pair<SourceFormat, std::string_view>, 5> format_names = {{
    {SourceFormat::Canonical, "canonical"},
    {SourceFormat::PytorchSnapshot, "pytorch"},
    {SourceFormat::Kineto, "kineto"},
    {SourceFormat::Rmm, "rmm"},
    {SourceFormat::Nsight, "nsight"},
}};

/// Writes imported events to a canonical trace file.
class WriterSink final : public TraceSink {
 public:
  explicit WriterSink(std::filesystem::path path) : path_(std::move(path)) {}

  Result<void> header(const TraceHeader& header) override {
    auto writer = TraceWriter::create(path_, header);
    if (!writer) return writer.error();
    writer_.emplace(std::move(*writer));
    return {};
  }
  Result<void> event(const TraceEvent& event) override { return writer_->write(event); }
  Result<void> finish() { return writer_->finish(); }

 private:
  std::filesystem::path path_;
  std::optional<TraceWriter> writer_;
};

}  // namespace

std::string_view to_string(SourceFormat format) {
  for (const auto& [f, name] : format_names) {
    if (f == format) return name;
  }
  return "?";
}

Result<SourceFormat> parse_source_format(std::string_view name) {
  for (const auto& [format, text] : format_names) {
    if (text == name) return format;
  }
  return Error::parse_error("unknown format '" + std::string(name) +
                            "': expected pytorch, kineto, rmm or nsight");
}

Result<SourceFormat> detect_format(std::string_view bytes, std::string_view name) {
  if (bytes.starts_with("memtrack-trace ")) return SourceFormat::Canonical;
  if (bytes.starts_with("memtrack-scenario ")) {
    return Error::parse_error(std::string(name) +
                              ": a memtrack-scenario file: that format is gone, operations are "
                              "traces now (docs/trace-format.md, \"The one operation format\", "
                              "says how to rewrite one as a memtrack-trace 1 file)");
  }
  if (bytes.starts_with(std::string_view("SQLite format 3\0", 16))) return SourceFormat::Nsight;
  if (!bytes.empty() && static_cast<unsigned char>(bytes[0]) == 0x80) {
    return SourceFormat::PytorchSnapshot;  // pickle PROTO
  }
  std::size_t first = bytes.find_first_not_of(" \t\r\n");
  if (bytes.substr(0, 3) == "\xEF\xBB\xBF") first = bytes.find_first_not_of(" \t\r\n", 3);
  if (first != std::string_view::npos && (bytes[first] == '{' || bytes[first] == '[')) {
    return SourceFormat::Kineto;
  }
  if (bytes.substr(first == std::string_view::npos ? 0 : first).starts_with("Thread,Time,Action")) {
    return SourceFormat::Rmm;
  }
  return Error::parse_error(std::string(name) +
                            ": byte 0: cannot tell the format (not a memtrack trace, PyTorch "
                            "snapshot pickle, Kineto JSON, RMM CSV or Nsight SQLite): give --from");
}

namespace {

/// Passes events on and counts the operations among them (allocations, frees, baselines).
class CountingSink final : public TraceSink {
 public:
  explicit CountingSink(TraceSink& next) : next_(next) {}
  Result<void> header(const TraceHeader& header) override { return next_.header(header); }
  Result<void> event(const TraceEvent& event) override {
    if (event.kind == TraceEvent::Kind::Allocate || event.kind == TraceEvent::Kind::Free ||
        event.kind == TraceEvent::Kind::Baseline) {
      ++operations_;
    }
    return next_.event(event);
  }
  void origin(std::uint64_t where) override { next_.origin(where); }
  [[nodiscard]] std::uint64_t operations() const { return operations_; }

 private:
  TraceSink& next_;
  std::uint64_t operations_{0};
};

Result<ImportReport> run_importer(SourceFormat format, std::string_view bytes,
                                  std::string_view name, TraceSink& sink,
                                  const ImportOptions& options) {
  switch (format) {
    case SourceFormat::PytorchSnapshot:
      return import_pytorch_snapshot(bytes, name, sink);
    case SourceFormat::Kineto:
      return import_kineto(bytes, name, sink);
    case SourceFormat::Rmm:
      return import_rmm(bytes, name, sink, options);
    case SourceFormat::Nsight:
      return import_nsight(bytes, name, sink);
    case SourceFormat::Canonical:
      break;
  }
  return Error::parse_error(std::string(name) + ": is already a memtrack " +
                            std::string(to_string(format)) +
                            " file: nothing to import (replay or fit it directly)");
}

/// Runs `run` (an importer writing into the sink it is given), counting the operations it
/// writes: a recording without any is refused.
template <class Run>
Result<ImportReport> import_counted(SourceFormat format, std::string_view name, TraceSink& sink,
                                    Run&& run) {
  CountingSink counting(sink);
  auto report = run(counting);
  if (!report) return report;
  // A recording that parses but holds no allocation is not what its format promises: refused
  // rather than fitted as an empty (and so always fitting) run.
  if (counting.operations() == 0) {
    std::string why;
    for (const std::string& note : report->notes)
      why += (why.empty() ? " (" : "; ") + note;
    if (!why.empty()) why += ")";
    return Error::parse_error(std::string(name) + ": a " + std::string(to_string(format)) +
                              " recording with no device allocations or frees: nothing to "
                              "replay" +
                              why);
  }
  return report;
}

/// import_bytes, counted.
Result<ImportReport> import_counted(SourceFormat format, std::string_view bytes,
                                    std::string_view name, TraceSink& sink,
                                    const ImportOptions& options) {
  return import_counted(format, name, sink, [&](TraceSink& counting) {
    return run_importer(format, bytes, name, counting, options);
  });
}

}  // namespace

Result<ImportReport> import_bytes(SourceFormat format, std::string_view bytes,
                                  std::string_view name, TraceSink& sink,
                                  const ImportOptions& options) {
  return import_counted(format, bytes, name, sink, options);
}

Result<ImportReport> import_bytes(SourceFormat format, std::string& bytes, std::string_view name,
                                  TraceSink& sink, const ImportOptions& options) {
  return import_counted(format, std::string_view(bytes), name, sink, options);
}

Result<ImportReport> import_path(SourceFormat format, const std::filesystem::path& in,
                                 TraceSink& sink, const ImportOptions& options) {
  if (format == SourceFormat::Kineto) {
    const std::string name = in.string();
    return import_counted(format, name, sink, [&](TraceSink& counting) {
      return import_kineto([&in] { return open_source(in); }, name, counting);
    });
  }
  if (format == SourceFormat::Rmm) {
    auto source = open_source(in);
    if (!source) return source.error();
    const std::string name = in.string();
    return import_counted(format, name, sink, [&](TraceSink& counting) {
      return import_rmm(**source, name, counting, options);
    });
  }
  if (format == SourceFormat::Canonical) {
    return import_bytes(format, {}, in.string(), sink, options);  // refused, nothing read
  }
  auto source = open_source(in);
  if (!source) return source.error();
  auto bytes = detail::read_all_in_huge_pages(**source, in.string(), max_import_bytes);
  if (!bytes) return bytes.error();
  return import_bytes(format, bytes->view(), in.string(), sink, options);
}

Result<ImportReport> import_file(const std::filesystem::path& in, const std::filesystem::path& out,
                                 std::optional<SourceFormat> format, const ImportOptions& options) {
  if (!format) {
    // From the first bytes only: what is no recording is refused before it is read whole.
    auto head = read_head(in, format_head_bytes);
    if (!head) return head.error();
    auto detected = detect_format(*head, in.string());
    if (!detected) return detected.error();
    format = *detected;
  }
  WriterSink sink(out);
  auto report = import_path(*format, in, sink, options);
  if (!report) return report.error();  // the sink's temporary is removed with it
  if (auto ok = sink.finish(); !ok) return ok.error();
  return report;
}

}  // namespace memtrack::traces
