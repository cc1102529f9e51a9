// Recordings made by others on real GPUs (../shared/traces, see its SOURCES.md): every one is
// imported and replayed in lockstep, and must match its own recorded truth byte for byte.
// Corrupted copies must be refused with a located error. Skips where the folder is absent.
#include "test_support.hpp"

#include <memtrack/traces/importers.hpp>
#include <memtrack/traces/replay.hpp>

#include <gtest/gtest.h>

#include <cstdlib>

namespace memtrack::traces {
namespace {

using testing::ScratchDir;

std::filesystem::path shared_traces() {
  if (const char* dir = std::getenv("MEMTRACK_SHARED_TRACES")) return dir;
  return MEMTRACK_SHARED_TRACES_DIR;
}

#define SKIP_WITHOUT(path)                                                                 \
  if (!std::filesystem::exists(path)) {                                                    \
    GTEST_SKIP() << "skipped: " << (path).string()                                         \
                 << " is absent (the shared real-GPU traces are not in a fresh checkout; " \
                    "set MEMTRACK_SHARED_TRACES to their folder to run this test)";        \
  }

struct Replayed {
  ReplaySummary summary;
  std::uint64_t final_gpu0{0};
  std::uint64_t final_gpu1{0};
};

/// Imports `file` to a canonical trace, reads it back, and replays it in lockstep.
Replayed import_and_replay(const std::filesystem::path& file, const ScratchDir& dir,
                           const std::optional<GpuConfig>& budgets = std::nullopt) {
  const auto out = dir / (file.filename().string() + ".trace.zst");
  auto report = import_file(file, out, std::nullopt);
  EXPECT_TRUE(report) << report.error().to_string();
  auto reader = TraceReader::open(out);
  EXPECT_TRUE(reader) << reader.error().to_string();
  const GpuConfig config = budgets ? *budgets : *reader->header().config;
  auto replayer = Replayer::create(config, {});
  EXPECT_TRUE(replayer);
  auto ok = replayer->replay(*reader, {});
  EXPECT_TRUE(ok) << ok.error().to_string();
  return {replayer->summary(), replayer->tracker().allocated(Gpu{0}),
          replayer->tracker().allocated(Gpu{1})};
}

TEST(RealTraces, KinetoEveryTotalAllocatedCheckpointMatches) {
  const auto file = shared_traces() / "kineto" / "hta_df_index_resolver.json.gz";
  SKIP_WITHOUT(file);
  ScratchDir dir;
  const Replayed r = import_and_replay(file, dir);
  EXPECT_FALSE(r.summary.failure) << r.summary.failure->to_string();
  // SOURCES.md: 28,010 [memory] events, 26,770 on CUDA device 1 and 1,240 on the CPU; each
  // carries a "Total Allocated", and every one is verified.
  EXPECT_EQ(r.summary.checkpoints_verified, 28010U);
  EXPECT_EQ(r.summary.checkpoints_skipped, 0U);
  EXPECT_EQ(r.summary.operations, 28010U + 1);  // + the baseline of gpu:1
  EXPECT_EQ(r.summary.ok, r.summary.operations);
}

struct Snapshot {
  const char* file;
  std::uint64_t active_requested_bytes;  ///< sum of requested_size of its active blocks
  bool mid_run;                          ///< the trace ring buffer started mid-run
};

// Active-block totals computed with Python's own pickle module from each file:
//   sum(b['requested_size'] for s in d['segments'] for b in s['blocks']
//       if b['state'].startswith('active'))
constexpr Snapshot snapshots[] = {
    {"bcrafton_memory_snapshot.pickle", 3064418304ULL, true},
    {"silmont_mem_snapshot.pickle", 31719428ULL, false},
    {"silmont_memory_forward_fp32_128.pickle", 523811840ULL, true},
    {"sketchkv2_my_snapshot.pickle", 16380108168ULL, true},
};

TEST(RealTraces, SnapshotsEndExactlyAtTheirActiveBlocks) {
  SKIP_WITHOUT(shared_traces() / "pytorch");
  ScratchDir dir;
  GpuConfig h100;  // any device large enough: 80 GiB, the whole of it
  h100.memory_fraction = Fraction::of(1, 1).value();
  h100.gpus.push_back({0, 80ULL << 30U});
  for (const Snapshot& s : snapshots) {
    const auto file = shared_traces() / "pytorch" / s.file;
    const Replayed r = import_and_replay(file, dir, h100);
    EXPECT_FALSE(r.summary.failure) << s.file << ": " << r.summary.failure->to_string();
    EXPECT_EQ(r.final_gpu0, s.active_requested_bytes) << s.file;
    EXPECT_EQ(r.summary.checkpoints_verified, 1U) << s.file;
    EXPECT_EQ(r.summary.frees_of_unseen_address + r.summary.frees_unresolved, 0U) << s.file;
    EXPECT_EQ(r.summary.refused + r.summary.other_errors, 0U) << s.file;
  }
}

/// @return the error importing `bytes` under `name` (empty when it imported)
std::string import_error(const ScratchDir& dir, const std::string& name, const std::string& bytes) {
  testing::write_bytes(dir / name, bytes);
  auto report = import_file(dir / name, dir / (name + ".out.trace"), std::nullopt);
  EXPECT_FALSE(std::filesystem::exists(dir / (name + ".out.trace"))) << name;
  return report ? std::string() : report.error().to_string();
}

TEST(RealTraces, CorruptedCopiesAreRefusedWithALocatedError) {
  SKIP_WITHOUT(shared_traces());
  ScratchDir dir;
  // Kineto (gzip): truncated, a byte flipped in the compressed data, and a count too large
  // for 64 bits in the JSON itself.
  const std::string kineto =
      testing::read_bytes(shared_traces() / "kineto" / "hta_df_index_resolver.json.gz");
  std::string message = import_error(dir, "cut.json.gz", kineto.substr(0, kineto.size() / 2));
  EXPECT_NE(message.find("cut.json.gz: compressed byte"), std::string::npos) << message;
  std::string flipped = kineto;
  flipped[flipped.size() / 3] = static_cast<char>(flipped[flipped.size() / 3] ^ 0x20);
  message = import_error(dir, "flip.json.gz", flipped);
  EXPECT_NE(message.find("flip.json.gz:"), std::string::npos) << message;
  EXPECT_FALSE(message.empty());
  message =
      import_error(dir, "huge.json",
                   R"({"traceEvents": [{"name": "[memory]", "ts": 1, "args": {"Device Type": 1,
                            "Device Id": 0, "Bytes": 99999999999999999999999999}}]})");
  EXPECT_NE(message.find("huge.json: traceEvents index 0 ([memory] event 1)"), std::string::npos)
      << message;

  for (const Snapshot& s : snapshots) {
    const std::string bytes = testing::read_bytes(shared_traces() / "pytorch" / s.file);
    message = import_error(dir, "cut.pickle", bytes.substr(0, bytes.size() / 2));
    EXPECT_NE(message.find("cut.pickle: byte "), std::string::npos) << s.file << ": " << message;
    // The first opcode after PROTO, flipped to one a snapshot never has.
    std::string bad = bytes;
    bad[2] = static_cast<char>(0xF0);
    message = import_error(dir, "flip.pickle", bad);
    EXPECT_NE(message.find("flip.pickle: byte 2: opcode 0xf0"), std::string::npos)
        << s.file << ": " << message;
    // A string length of 2 GiB where the first short string is: refused, not allocated.
    const std::size_t string_at = bytes.find('\x8c');
    ASSERT_NE(string_at, std::string::npos);
    bad = bytes.substr(0, string_at) + std::string("X\xff\xff\xff\x7f", 5) +
          bytes.substr(string_at + 2);
    message = import_error(dir, "huge.pickle", bad);
    EXPECT_NE(message.find("huge.pickle: byte " + std::to_string(string_at) +
                           ": truncated: needs 2147483647"),
              std::string::npos)
        << s.file << ": " << message;
  }
}

}  // namespace
}  // namespace memtrack::traces
