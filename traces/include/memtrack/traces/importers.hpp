/**
 * @file importers.hpp
 * @brief Importers: recordings from PyTorch (memory snapshots), torch.profiler (Kineto / Chrome
 * trace JSON), RMM (logging_resource_adaptor CSV) and Nsight Systems (SQLite export), turned into
 * canonical traces. Each takes the recording's bytes (already decompressed) and a name for its
 * errors, and hands the header and events to a `TraceSink`.
 */
#pragma once

#include <memtrack/result.hpp>
#include <memtrack/traces/io.hpp>
#include <memtrack/traces/trace.hpp>
#include <memtrack/traces/writer.hpp>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace memtrack::traces {

namespace pickle {
struct Value;
}  // namespace pickle

/// Where imported events go.
class TraceSink {
 public:
  TraceSink() = default;
  TraceSink(const TraceSink&) = delete;
  TraceSink& operator=(const TraceSink&) = delete;
  virtual ~TraceSink() = default;
  virtual Result<void> header(const TraceHeader& header) = 0;
  virtual Result<void> event(const TraceEvent& event) = 0;
  /**
   * @brief Where in the source file the next events come from, in the unit the importer's
   * report names (`ImportReport::origin_unit`: a JSON event index, a CSV line, a row id): errors
   * and refusals then point into the user's own file, not the intermediate trace.
   */
  virtual void origin(std::uint64_t where) { static_cast<void>(where); }
};

/// Keeps everything in memory (tests, small recordings).
class MemorySink final : public TraceSink {
 public:
  Result<void> header(const TraceHeader& header) override {
    header_ = header;
    return {};
  }
  Result<void> event(const TraceEvent& event) override {
    events_.push_back(event);
    origins_.push_back(origin_);
    return {};
  }
  void origin(std::uint64_t where) override { origin_ = where + 1; }

  /// @return the header the importer wrote (default-constructed until it writes one)
  [[nodiscard]] const TraceHeader& recorded_header() const noexcept { return header_; }
  /// @return the events in the order the importer wrote them
  [[nodiscard]] const std::vector<TraceEvent>& events() const noexcept { return events_; }
  /// @return for each event, 1 + the source position `origin` last set (0: none was)
  [[nodiscard]] const std::vector<std::uint64_t>& origins() const noexcept { return origins_; }
  /// Moves the events out (the sink holds none afterwards; the origins stay).
  [[nodiscard]] std::vector<TraceEvent> take_events() noexcept { return std::move(events_); }
  /// Moves the origins out (the sink holds none afterwards; the events stay).
  [[nodiscard]] std::vector<std::uint64_t> take_origins() noexcept { return std::move(origins_); }

 private:
  TraceHeader header_;
  std::vector<TraceEvent> events_;
  /// Invariant: the same size as `events_` until one of them is taken.
  std::vector<std::uint64_t> origins_;
  std::uint64_t origin_{0};
};

/// The recording formats memtrack reads.
enum class SourceFormat : std::uint8_t { Canonical, PytorchSnapshot, Kineto, Rmm, Nsight };

/// @return `canonical`, `pytorch`, `kineto`, `rmm` or `nsight`
[[nodiscard]] std::string_view to_string(SourceFormat format);
/// @return the format named, or a `ParseError` listing the names
[[nodiscard]] Result<SourceFormat> parse_source_format(std::string_view name);
/// @return the format the bytes look like (decompressed), or a `ParseError` naming what was seen
[[nodiscard]] Result<SourceFormat> detect_format(std::string_view bytes, std::string_view name);

/// Options some importers need.
struct ImportOptions {
  /// RMM: the GPU id when the file name has no `.devN`.
  std::optional<std::uint32_t> device;
};

/// What an importer counted, for the user.
struct ImportReport {
  std::uint64_t events{0};         ///< events written
  std::uint64_t skipped{0};        ///< source records that are not device allocations (see notes)
  std::vector<std::string> notes;  ///< one line each: what was skipped or reconstructed, and why
  /// What `TraceSink::origin` positions count, e.g. `traceEvents index` or `line`; empty when
  /// the importer gives none.
  std::string origin_unit;
};

[[nodiscard]] Result<ImportReport> import_pytorch_snapshot(std::string_view bytes,
                                                           std::string_view name, TraceSink& sink);
/**
 * @brief The PyTorch importer's rules applied to a snapshot already parsed into values: what
 * `import_pytorch_snapshot` does after its pickle reader (and what the Python module's
 * `from_snapshot` calls with the values of a dict, so both paths share one interpretation).
 */
[[nodiscard]] Result<ImportReport> import_pytorch_snapshot_value(const pickle::Value& root,
                                                                 std::string_view name,
                                                                 TraceSink& sink);
/// The bytes the JSON reader may read past the end of what it parses (simdjson's padding): the
/// Kineto importer's batches carry that much after their text.
inline constexpr std::size_t json_padding_bytes = 64;
/**
 * @brief Imports a torch.profiler (Kineto) Chrome-trace JSON held in memory: `import_kineto`
 * over a source reading `bytes`.
 * @param spare_capacity not used any more (the JSON is read in windows, each through its own
 * padded copy); kept for source compatibility
 */
[[nodiscard]] Result<ImportReport> import_kineto(std::string_view bytes, std::string_view name,
                                                 TraceSink& sink, std::size_t spare_capacity = 0);
/// Opens a recording's bytes (decompressed) from their start.
using KinetoSourceOpener = std::function<Result<std::unique_ptr<ByteSource>>()>;
/// The window the Kineto importer reads a file in (it grows for a longer JSON value).
inline constexpr std::size_t kineto_window_bytes = std::size_t{4} << 20U;
/**
 * @brief Imports a torch.profiler (Kineto) Chrome-trace JSON, streamed: read in windows of
 * `window_bytes`, the event array parsed a batch of whole elements at a time. Memory follows
 * the `[memory]` events (kept to sort them by time) and one window, not the file's size.
 * @param open opens the file; called a second time only for a file that is not JSON, to
 * locate its first fault with a reader that checks every byte in order
 */
[[nodiscard]] Result<ImportReport> import_kineto(const KinetoSourceOpener& open,
                                                 std::string_view name, TraceSink& sink,
                                                 std::size_t window_bytes = kineto_window_bytes);
/// Imports an RMM log (logging_resource_adaptor CSV) held in memory: `import_rmm` over a source
/// reading `bytes`.
[[nodiscard]] Result<ImportReport> import_rmm(std::string_view bytes, std::string_view name,
                                              TraceSink& sink, const ImportOptions& options = {});
/// Imports an RMM log streamed from `source`, a line at a time: memory is one buffer of lines,
/// whatever the log's length.
[[nodiscard]] Result<ImportReport> import_rmm(ByteSource& source, std::string_view name,
                                              TraceSink& sink, const ImportOptions& options = {});
[[nodiscard]] Result<ImportReport> import_nsight(std::string_view bytes, std::string_view name,
                                                 TraceSink& sink);

/// Runs the importer for `format` (Canonical is refused: nothing to import).
[[nodiscard]] Result<ImportReport> import_bytes(SourceFormat format, std::string_view bytes,
                                                std::string_view name, TraceSink& sink,
                                                const ImportOptions& options = {});
/// `import_bytes` of a whole file read into a string (kept for source compatibility: it once let
/// a Kineto JSON be parsed in place; every importer now reads the bytes as they are).
[[nodiscard]] Result<ImportReport> import_bytes(SourceFormat format, std::string& bytes,
                                                std::string_view name, TraceSink& sink,
                                                const ImportOptions& options = {});

/// The most bytes (decompressed) an importer reads from one file whole (a Kineto JSON and an RMM
/// log are streamed: docs/limits.md gives their bounds, on one JSON value and one line).
inline constexpr std::uint64_t max_import_bytes = std::uint64_t{4} << 30U;

/**
 * @brief Imports a recording file (compressed or not) into `sink`: a Kineto JSON or an RMM log
 * streamed from the file (`import_kineto`, `import_rmm` over `open_source`), the other formats
 * read whole (`read_all`, at most `max_import_bytes`) and given to `import_bytes`.
 */
[[nodiscard]] Result<ImportReport> import_path(SourceFormat format, const std::filesystem::path& in,
                                               TraceSink& sink, const ImportOptions& options = {});

/**
 * @brief Imports a file into a canonical trace file, written through a temporary and renamed.
 * @param format the source format; detected from the content when absent
 */
[[nodiscard]] Result<ImportReport> import_file(const std::filesystem::path& in,
                                               const std::filesystem::path& out,
                                               std::optional<SourceFormat> format,
                                               const ImportOptions& options = {});

}  // namespace memtrack::traces
