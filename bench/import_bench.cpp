// Importers beside a plain read of the same file (its bytes, read whole; for the Kineto JSON and
// the RMM log, which are streamed, also read in windows like the importers': the floor of a
// streaming reader), on generated recordings of the size users bring: a torch.profiler (Kineto)
// JSON of memory events among operator events, and an RMM log. Each reports its peak memory growth
// beside the file's size. A real PyTorch snapshot's import is measured beside CPython's C
// `pickle.load` of the same file (skipped, saying why, without the snapshot or python3).
//
//   MEMTRACK_IMPORT_EVENTS=1000000 build/release/bin/memtrack_import_bench   the default length
#include "ratio_reporter.hpp"

#include <memtrack/traces/importers.hpp>
#include <memtrack/traces/io.hpp>

#include <benchmark/benchmark.h>

#include <unistd.h>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace {

using namespace memtrack;
using namespace memtrack::traces;

std::uint64_t event_count() {
  const char* text = std::getenv("MEMTRACK_IMPORT_EVENTS");
  return text != nullptr ? std::strtoull(text, nullptr, 10) : 1'000'000ULL;
}

std::filesystem::path temporary(const std::string& name) {
  return std::filesystem::temp_directory_path() /
         ("memtrack-import-bench-" + std::to_string(getpid()) + "-" + name);
}

/// A deterministic stream of allocations and frees: at most 1024 live, sizes 512 B to 16 MiB.
struct Churn {
  std::uint64_t state{42};
  std::vector<std::pair<std::uint64_t, std::uint64_t>> live;  // address, bytes
  std::uint64_t next_address{0x7f0000000000ULL};

  std::uint64_t random() {
    state += 0x9E3779B97F4A7C15ULL;
    std::uint64_t z = state;
    z = (z ^ (z >> 30U)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27U)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31U);
  }
  /// @return address, signed size (negative: a free)
  std::pair<std::uint64_t, std::int64_t> next() {
    if (!live.empty() && (live.size() >= 1024 || random() % 2 == 0)) {
      const std::size_t pick = random() % live.size();
      const auto freed = live[pick];
      live[pick] = live.back();
      live.pop_back();
      return {freed.first, -static_cast<std::int64_t>(freed.second)};
    }
    const std::uint64_t bytes = 512ULL << (random() % 16);
    const std::uint64_t address = next_address;
    next_address += 1ULL << 25U;
    live.emplace_back(address, bytes);
    return {address, static_cast<std::int64_t>(bytes)};
  }
};

/// torch.profiler's export_chrome_trace with profile_memory=True: per memory event, one operator
/// event around it (as aten::empty / aten::add produce them).
std::filesystem::path kineto_file(std::uint64_t events) {
  const auto path = temporary(std::to_string(events) + ".json");
  if (std::filesystem::exists(path)) return path;
  std::ofstream out(path, std::ios::binary);
  out << R"({"schemaVersion": 1, "deviceProperties": [{"id": 0, "name": "NVIDIA H100 80GB HBM3", )"
      << R"("totalGlobalMem": 85045477376, "computeMajor": 9, "computeMinor": 0}],)"
      << "\n"
      << R"("traceEvents": [)"
      << "\n";
  Churn churn;
  std::int64_t total = 0;
  for (std::uint64_t i = 0; i < events; ++i) {
    const auto [address, bytes] = churn.next();
    total += bytes;
    const std::uint64_t ts = 1700000000000ULL + i * 3;
    out << R"(  {"ph": "X", "cat": "cpu_op", "name": "aten::empty_strided", "pid": 4123, )"
        << R"("tid": 4123, "ts": )" << ts << R"(, "dur": 2, "args": {"External id": )" << i
        << R"(, "Record function id": 0, "Ev Idx": )" << i << "}},\n"
        << R"(  {"ph": "i", "cat": "cpu_instant_event", "s": "t", "name": "[memory]", )"
        << R"("pid": 4123, "tid": 4123, "ts": )" << ts + 1 << R"(, "args": {"Total Reserved": )"
        << 2 * total + (1LL << 30) << R"(, "Total Allocated": )" << total << R"(, "Bytes": )"
        << bytes << R"(, "Addr": )" << address << R"(, "Device Id": 0, "Device Type": 1}})"
        << (i + 1 < events ? ",\n" : "\n");
  }
  out << "]}\n";
  return path;
}

/// RMM's logging_resource_adaptor CSV.
std::filesystem::path rmm_file(std::uint64_t events) {
  const auto path = temporary(std::to_string(events) + ".dev0.csv");
  if (std::filesystem::exists(path)) return path;
  std::ofstream out(path, std::ios::binary);
  out << "Thread,Time,Action,Pointer,Size,Stream\n";
  Churn churn;
  char line[160];
  for (std::uint64_t i = 0; i < events; ++i) {
    const auto [address, bytes] = churn.next();
    const std::uint64_t micros = 81049000000ULL + i * 7;
    std::snprintf(line, sizeof line,
                  "140171302356736,%02llu:%02llu:%02llu.%06llu,%s,0x%llx,%lld,0x0\n",
                  static_cast<unsigned long long>(micros / 3600000000ULL % 24),
                  static_cast<unsigned long long>(micros / 60000000ULL % 60),
                  static_cast<unsigned long long>(micros / 1000000ULL % 60),
                  static_cast<unsigned long long>(micros % 1000000ULL),
                  bytes < 0 ? "free" : "allocate", static_cast<unsigned long long>(address),
                  static_cast<long long>(bytes < 0 ? -bytes : bytes));
    out << line;
  }
  return path;
}

/// Counts what an importer hands on and keeps nothing: the importer's own cost.
class CountingSink final : public TraceSink {
 public:
  Result<void> header(const TraceHeader& /*header*/) override { return {}; }
  Result<void> event(const TraceEvent& event) override {
    bytes_ += event.bytes.value_or(0);
    ++events_;
    return {};
  }
  std::uint64_t events_{0};
  std::uint64_t bytes_{0};
};

std::uint64_t status_kib(const char* field) {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.starts_with(field))
      return std::strtoull(line.c_str() + std::strlen(field), nullptr, 10);
  }
  return 0;
}
void reset_peak_rss() {
  std::ofstream("/proc/self/clear_refs") << "5";
}

void plain_read(benchmark::State& state, const std::filesystem::path& path) {
  std::size_t bytes = 0;
  for (auto _ : state) {
    auto all = read_all(path, max_import_bytes);
    if (!all) {
      state.SkipWithError(all.error().to_string().c_str());
      return;
    }
    bytes = all->size();
    benchmark::DoNotOptimize(all->data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes) * state.iterations());
  state.counters["file_MiB"] = static_cast<double>(bytes) / (1024.0 * 1024.0);
}

/// @return the CPU seconds this thread has used
double thread_cpu_seconds() {
  timespec now{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) * 1e-9;
}

/// @param cpu_as_manual_time give each iteration's CPU seconds as its manual time (beside
/// another process's CPU seconds, as `BM_PickleLoad` gives python3's)
void import(benchmark::State& state, const std::filesystem::path& path, SourceFormat format,
            bool cpu_as_manual_time = false) {
  std::size_t bytes = 0;
  std::uint64_t growth_kib = 0;
  std::uint64_t events = 0;
  for (auto _ : state) {
    const double cpu_start = thread_cpu_seconds();
    reset_peak_rss();
    const std::uint64_t before = status_kib("VmRSS:");
    auto all = read_all(path, max_import_bytes);
    if (!all) {
      state.SkipWithError(all.error().to_string().c_str());
      return;
    }
    bytes = all->size();
    CountingSink sink;
    auto report = import_bytes(format, *all, path.string(), sink);
    if (!report) {
      state.SkipWithError(report.error().to_string().c_str());
      return;
    }
    events = sink.events_;
    if (cpu_as_manual_time) state.SetIterationTime(thread_cpu_seconds() - cpu_start);
    growth_kib = status_kib("VmHWM:") - before;
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes) * state.iterations());
  state.counters["events"] = static_cast<double>(events);
  state.counters["peak_growth_MiB"] = static_cast<double>(growth_kib) / 1024.0;
}

const auto events = static_cast<std::int64_t>(event_count());

void BM_PlainReadKineto(benchmark::State& state) {
  plain_read(state, kineto_file(static_cast<std::uint64_t>(state.range(0))));
}
/// The file's bytes through the importer's source, a window of `kineto_window_bytes` at a time:
/// the floor of a streaming importer.
void plain_read_windows(benchmark::State& state, const std::filesystem::path& path) {
  std::vector<char> window(kineto_window_bytes);
  std::uint64_t bytes = 0;
  for (auto _ : state) {
    auto source = open_source(path);
    if (!source) {
      state.SkipWithError(source.error().to_string().c_str());
      return;
    }
    bytes = 0;
    for (;;) {
      auto got = (*source)->read(window.data(), window.size());
      if (!got || *got == 0) break;
      bytes += *got;
      benchmark::DoNotOptimize(window.data());
    }
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes) * state.iterations());
}
/// The import streamed from the file, as `memtrack import` reads it (`import_path`).
void import_streamed(benchmark::State& state, const std::filesystem::path& path,
                     SourceFormat format) {
  std::uint64_t growth_kib = 0;
  std::uint64_t imported = 0;
  for (auto _ : state) {
    reset_peak_rss();
    const std::uint64_t before = status_kib("VmRSS:");
    CountingSink sink;
    auto report = import_path(format, path, sink);
    if (!report) {
      state.SkipWithError(report.error().to_string().c_str());
      return;
    }
    imported = sink.events_;
    growth_kib = status_kib("VmHWM:") - before;
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(std::filesystem::file_size(path)) *
                          state.iterations());
  state.counters["events"] = static_cast<double>(imported);
  state.counters["peak_growth_MiB"] = static_cast<double>(growth_kib) / 1024.0;
}
void BM_PlainReadKinetoWindows(benchmark::State& state) {
  plain_read_windows(state, kineto_file(static_cast<std::uint64_t>(state.range(0))));
}
void BM_ImportKineto(benchmark::State& state) {
  import_streamed(state, kineto_file(static_cast<std::uint64_t>(state.range(0))),
                  SourceFormat::Kineto);
}
// The same import of the file read whole first (import_bytes, as for bytes in memory).
void BM_ImportKinetoInMemory(benchmark::State& state) {
  import(state, kineto_file(static_cast<std::uint64_t>(state.range(0))), SourceFormat::Kineto);
}
void BM_PlainReadRmm(benchmark::State& state) {
  plain_read(state, rmm_file(static_cast<std::uint64_t>(state.range(0))));
}
void BM_PlainReadRmmWindows(benchmark::State& state) {
  plain_read_windows(state, rmm_file(static_cast<std::uint64_t>(state.range(0))));
}
void BM_ImportRmm(benchmark::State& state) {
  import_streamed(state, rmm_file(static_cast<std::uint64_t>(state.range(0))), SourceFormat::Rmm);
}
/// The largest real snapshot of ../shared/traces/pytorch (3.9 MB, 15k trace entries), or the file
/// MEMTRACK_SNAPSHOT names.
std::filesystem::path snapshot_file() {
  if (const char* given = std::getenv("MEMTRACK_SNAPSHOT")) return given;
  return std::filesystem::path(MEMTRACK_SHARED_TRACES_DIR) / "pytorch" /
         "wedsonlin_medium_512_training_memory_snapshot.pickle";
}

/// @return why the PyTorch comparison cannot run here (empty: it can)
std::string snapshot_missing(const std::filesystem::path& path) {
  if (std::filesystem::exists(path)) return {};
  return "no snapshot at " + path.string() +
         ": the PyTorch import is not measured (set MEMTRACK_SNAPSHOT to a snapshot's path)";
}

void BM_ImportPytorch(benchmark::State& state) {
  const auto path = snapshot_file();
  if (const std::string missing = snapshot_missing(path); !missing.empty()) {
    state.SkipWithError(missing.c_str());
    return;
  }
  import(state, path, SourceFormat::PytorchSnapshot, true);
}

/// @return `text` as one single-quoted shell word
std::string shell_quoted(const std::string& text) {
  std::string quoted = "'";
  for (const char c : text) {
    if (c == '\'') {
      quoted += "'\\''";
    } else {
      quoted += c;
    }
  }
  return quoted + "'";
}

// CPython's C pickle.load of the same file (opened and read by it, as the import reads it): the
// CPU seconds it takes, timed by python3 itself around the call, without the interpreter's start
// (CPU time on both sides: another process's work on a shared machine stays out of it).
void BM_PickleLoad(benchmark::State& state) {
  const auto path = snapshot_file();
  if (const std::string missing = snapshot_missing(path); !missing.empty()) {
    state.SkipWithError(missing.c_str());
    return;
  }
  const std::string command =
      "python3 -c 'import pickle, sys, time\n"
      "start = time.process_time()\n"
      "with open(sys.argv[1], \"rb\") as f: pickle.load(f)\n"
      "print(time.process_time() - start)' " +
      shell_quoted(path.string()) + " 2>/dev/null";
  for (auto _ : state) {
    FILE* python = popen(command.c_str(), "r");
    char line[64] = {};
    const bool read = python != nullptr && std::fgets(line, sizeof line, python) != nullptr;
    const int status = python != nullptr ? pclose(python) : -1;
    if (!read || status != 0) {
      state.SkipWithError(
          "python3 did not run (not installed?): the comparison with CPython's "
          "pickle.load is skipped");
      return;
    }
    state.SetIterationTime(std::strtod(line, nullptr));
  }
}

BENCHMARK(BM_PlainReadKineto)->Arg(events)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_PlainReadKinetoWindows)->Arg(events)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ImportKineto)->Arg(events)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ImportKinetoInMemory)->Arg(events)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_PlainReadRmm)->Arg(events)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_PlainReadRmmWindows)->Arg(events)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ImportRmm)->Arg(events)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ImportPytorch)->Iterations(5)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_PickleLoad)->Iterations(5)->UseManualTime()->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) {
  const std::string n = std::to_string(events);
  std::printf("generating a Kineto JSON and an RMM log of %s memory events (once)...\n", n.c_str());
  const int code = memtrack::bench::run_with_ratios(
      argc, argv,
      {{"BM_ImportKineto/" + n, "BM_PlainReadKinetoWindows/" + n, 3.0},
       {"BM_ImportKineto/" + n, "BM_PlainReadKineto/" + n, 0},
       {"BM_ImportKinetoInMemory/" + n, "BM_PlainReadKineto/" + n, 0},
       {"BM_ImportRmm/" + n, "BM_PlainReadRmmWindows/" + n, 3.0},
       {"BM_ImportRmm/" + n, "BM_PlainReadRmm/" + n, 0},
       {"BM_ImportPytorch/iterations:5/manual_time", "BM_PickleLoad/iterations:5/manual_time", 1.0,
        true}});
  for (const auto& entry :
       std::filesystem::directory_iterator(std::filesystem::temp_directory_path())) {
    if (entry.path().filename().string().starts_with("memtrack-import-bench-" +
                                                     std::to_string(getpid()) + "-")) {
      std::filesystem::remove(entry.path());
    }
  }
  return code;
}
