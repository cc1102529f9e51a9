#include "fuzz_entries.hpp"

#include <memtrack/traces/importers.hpp>
#include <memtrack/traces/io.hpp>
#include <memtrack/traces/reader.hpp>
#include <memtrack/traces/replay.hpp>
#include <memtrack/traces/writer.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace memtrack::traces::fuzz {
namespace {

/// Stops the fuzzer on a broken invariant (a crash it will save).
[[noreturn]] void broken(const std::string& what) {
  std::fprintf(stderr, "fuzz invariant broken: %s\n", what.c_str());
  std::abort();
}

/// Reads a trace to its end and replays it (production tracker only: fast).
void read_and_replay(TraceReader& reader) {
  GpuConfig config;
  for (std::uint32_t id = 0; id < 4; ++id)
    config.gpus.push_back({id, std::uint64_t{1} << 40U});
  auto replayer = Replayer::create(config, ReplayOptions{false, Placement::Recorded, false});
  if (!replayer) broken("the fixed config was refused");
  (void)replayer->replay(reader, {});
}

/// An importer's output must be a valid trace: written, it reads back event for event.
void check_round_trip(const MemorySink& sink) {
  const std::string text = format_trace(sink.recorded_header(), sink.events());
  auto reader = TraceReader::from_source(memory_source(text, "round-trip"), "round-trip");
  if (!reader) broken("an imported header does not read back: " + reader.error().to_string());
  TraceEvent event;
  for (const TraceEvent& expected : sink.events()) {
    auto more = reader->next(event);
    if (!more || !*more) broken("an imported trace ends early on reading back");
    if (!(event == expected))
      broken("an imported event reads back differently: " + format_event(expected));
  }
  auto end = reader->next(event);
  if (!end || *end) broken("an imported trace does not end where it should");
}

/// The most an importer's input may decompress to here: small enough that a bomb cut at this
/// bound stays far below -rss_limit_mb, large enough for the seeds.
constexpr std::uint64_t max_decompressed = std::uint64_t{4} << 20U;

/// Decompressed first (zstd or gzip), as `memtrack import` reads a file, so that compressed
/// bombs reach the importers.
void run_importer(SourceFormat format, const std::uint8_t* data, std::size_t size) {
  auto source = memory_source(std::string(reinterpret_cast<const char*>(data), size), "fuzz-input");
  auto bytes = read_all(*source, "fuzz-input", max_decompressed);
  if (!bytes) return;
  MemorySink sink;
  ImportOptions options;
  if (auto report = import_bytes(format, *bytes, "fuzz-input", sink, options)) {
    check_round_trip(sink);
  }
}

}  // namespace

void canonical(const std::uint8_t* data, std::size_t size) {
  auto reader = TraceReader::from_source(
      memory_source(std::string(reinterpret_cast<const char*>(data), size), "fuzz"), "fuzz");
  if (reader) read_and_replay(*reader);
}

void pytorch(const std::uint8_t* data, std::size_t size) {
  run_importer(SourceFormat::PytorchSnapshot, data, size);
}
void kineto(const std::uint8_t* data, std::size_t size) {
  run_importer(SourceFormat::Kineto, data, size);
  // The windowed reader: a small window (guessed batches, values longer than it) must read what
  // one window holding the whole input reads, error for error.
  const std::string json(reinterpret_cast<const char*>(data), size);
  if (detect_compression(json) != Compression::None) return;  // (run_importer bounds those)
  const auto import_in = [&json](std::size_t window, MemorySink& sink) {
    return import_kineto(
        [&json]() -> Result<std::unique_ptr<ByteSource>> {
          return memory_source(json, "fuzz-input");
        },
        "fuzz-input", sink, window);
  };
  MemorySink whole_sink;
  MemorySink windowed_sink;
  const auto whole = import_in(kineto_window_bytes, whole_sink);
  const auto windowed = import_in(1 + size % 61, windowed_sink);
  if (whole.has_value() != windowed.has_value() ||
      (!whole && whole.error().to_string() != windowed.error().to_string())) {
    broken("a Kineto JSON read in windows of " + std::to_string(1 + size % 61) +
           " bytes is refused differently from the whole input");
  }
  if (whole && !(whole_sink.events() == windowed_sink.events() &&
                 whole_sink.origins() == windowed_sink.origins())) {
    broken("a Kineto JSON read in windows of " + std::to_string(1 + size % 61) +
           " bytes imports other events than the whole input");
  }
}
void rmm(const std::uint8_t* data, std::size_t size) {
  run_importer(SourceFormat::Rmm, data, size);
}
void nsight(const std::uint8_t* data, std::size_t size) {
  run_importer(SourceFormat::Nsight, data, size);
}

Entry entry(std::string_view name) {
  if (name == "canonical") return &canonical;
  if (name == "pytorch") return &pytorch;
  if (name == "kineto") return &kineto;
  if (name == "rmm") return &rmm;
  if (name == "nsight") return &nsight;
  return nullptr;
}

}  // namespace memtrack::traces::fuzz
