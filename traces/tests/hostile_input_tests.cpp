// Hostile inputs for the readers (issue 13), each generated here: bombs that must be refused in
// bounded memory (checked in a forked child under an RLIMIT_AS of 1 GiB, so that a failure kills
// the child, not the suite), inputs that must not hang, and strictly typed fields. Every refusal
// is one line naming the file and where in it, and what was expected.
#include <memtrack/traces/importers.hpp>
#include <memtrack/traces/io.hpp>
#include <memtrack/traces/reader.hpp>

#include "pickle.hpp"
#include "pickle_writer.hpp"
#include "test_support.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zstd.h>

#include <chrono>
#include <climits>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace memtrack::traces {
namespace {

using testing::ScratchDir;

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool sanitized = true;  // the sanitizers reserve terabytes of address space
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
constexpr bool sanitized = true;
#else
constexpr bool sanitized = false;
#endif
#else
constexpr bool sanitized = false;
#endif

constexpr rlim_t one_gib = rlim_t{1} << 30U;

/**
 * @brief Runs `work` in a forked child with its address space limited to `limit` bytes and an
 * alarm of `seconds`: @return the child's exit status, or 128 + the signal that ended it (a
 * bad_alloc abort, the alarm). `work` returns whether what it saw was right.
 */
int in_bounded_child(const std::function<bool()>& work, rlim_t limit = one_gib,
                     unsigned seconds = 60) {
  const pid_t child = fork();
  if (child == 0) {
    if (!sanitized) {
      const rlimit bound{limit, limit};
      setrlimit(RLIMIT_AS, &bound);
    }
    alarm(seconds);
    bool right = false;
    try {
      right = work();
    } catch (...) {
      _exit(3);
    }
    _exit(right ? 0 : 1);
  }
  int status = 0;
  waitpid(child, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// ---- pickle ----

std::string pickle_head() {
  return std::string("\x80\x04", 2);
}

/// `levels` lists, each holding 1000 references to the one before (the first to a string):
/// about 8 KB that a tree walk would see as 1000^levels values.
std::string memo_bomb(int levels) {
  std::string bytes = pickle_head() + std::string("\x8c\x01x\x94", 4) + "0";  // memo 0 = "x"; POP
  for (int level = 0; level < levels; ++level) {
    bytes += std::string("]\x94(", 3);  // memo level + 1 = a new list
    for (int i = 0; i < 1000; ++i) {
      bytes += 'h';
      bytes += static_cast<char>(level);
    }
    bytes += 'e';
    if (level + 1 < levels) bytes += '0';
  }
  return bytes + ".";
}

TEST(HostilePickle, MemoReferencesThatExpandAreRefusedInBoundedMemory) {
  const std::string bomb = memo_bomb(4);
  // Lists start at byte 7 and take 2005 bytes each ("]\x94(" + 2000 + "e0"): the third (1000^3
  // values, past 16 per input byte plus 2^20) is the first refused, at byte 7 + 2 * 2005.
  const auto check = [&bomb] {
    auto doc = pickle::parse(bomb, "bomb.pickle");
    return !doc && contains(doc.error().to_string(),
                            "bomb.pickle: byte 4017: the data expands "
                            "through shared (memo) references");
  };
  EXPECT_EQ(in_bounded_child(check), 0);
  auto doc = pickle::parse(bomb, "bomb.pickle");
  ASSERT_FALSE(doc);
  EXPECT_TRUE(contains(doc.error().to_string(), "bomb.pickle: byte 4017: "))
      << doc.error().to_string();
  // Two levels (about 10^6 values) are within the bound: sharing itself is fine.
  auto shared = pickle::parse(memo_bomb(2), "ok.pickle");
  ASSERT_TRUE(shared) << shared.error().to_string();
  EXPECT_EQ(shared->root->tree_size, 1U + 1000U * 1001U);
}

TEST(HostilePickle, SharingIsBoundedPerInputByte) {
  // Two levels of 1100 references: 1 + 1100 * 1101 = 1,211,101 values walked as a tree, over the
  // floor of 2^20 = 1,048,576. Padded with a popped 100,000-byte string, the input allows
  // 2^20 + 16 * (its size), more than that; unpadded (about 4.4 KB) it does not.
  const auto shared = [](std::size_t padding) {
    std::string bytes = pickle_head();
    if (padding > 0) {
      bytes += 'X';
      for (int i = 0; i < 4; ++i)
        bytes += static_cast<char>((padding >> (8 * i)) & 0xFFU);
      bytes += std::string(padding, 'p') + "0";
    }
    bytes += std::string("\x8c\x01x\x94", 4) + "0";
    for (int level = 0; level < 2; ++level) {
      bytes += std::string("]\x94(", 3);
      for (int i = 0; i < 1100; ++i) {
        bytes += 'h';  // BINGET
        bytes += static_cast<char>(level);
      }
      bytes += 'e';
      if (level == 0) bytes += '0';
    }
    return bytes + ".";
  };
  auto padded = pickle::parse(shared(100'000), "padded.pickle");
  ASSERT_TRUE(padded) << padded.error().to_string();
  EXPECT_EQ(padded->root->tree_size, 1U + 1100U * 1101U);
  auto unpadded = pickle::parse(shared(0), "small.pickle");
  ASSERT_FALSE(unpadded);
  EXPECT_TRUE(contains(unpadded.error().to_string(), "expands through shared (memo) references"))
      << unpadded.error().to_string();
}

TEST(HostilePickle, ManySmallValuesAreRefusedInBoundedMemory) {
  // 8 M `None` in one list: each 1 input byte, each a value the reader must hold.
  std::string bytes = pickle_head() + "](" + std::string(8'000'000, 'N') + "e.";
  const auto check = [&bytes] {
    auto doc = pickle::parse(bytes, "nones.pickle");
    return !doc && contains(doc.error().to_string(), "nones.pickle: byte ") &&
           contains(doc.error().to_string(),
                    "bytes of memory to read (at most 32 per input "
                    "byte");
  };
  EXPECT_EQ(in_bounded_child(check), 0);
}

TEST(HostilePickle, NestingPastTheLimitIsRefused) {
  const auto nested = [](std::uint64_t depth) {
    // `depth` lists, each appended to the one before: the outermost is 1 deep.
    return pickle_head() + std::string(depth, ']') + std::string(depth - 1, 'a') + ".";
  };
  auto deepest = pickle::parse(nested(pickle::max_depth), "deep.pickle");
  EXPECT_TRUE(deepest) << deepest.error().to_string();
  auto deeper = pickle::parse(nested(pickle::max_depth + 1), "deep.pickle");
  ASSERT_FALSE(deeper);
  EXPECT_TRUE(contains(deeper.error().to_string(), "deep.pickle: byte "))
      << deeper.error().to_string();
  EXPECT_TRUE(contains(deeper.error().to_string(), "nested deeper than 10000"));
  // MARKs nested past the limit; and 10 M lists to nest (20 MB), refused in bounded memory
  // (for the memory their values take, before they are nested).
  auto marks = pickle::parse(pickle_head() + std::string(10'001, '(') + ".", "marks.pickle");
  ASSERT_FALSE(marks);
  EXPECT_TRUE(contains(marks.error().to_string(),
                       "marks.pickle: byte 10002: MARKs nested deeper "
                       "than 10000"))
      << marks.error().to_string();
  const auto check = [&nested] {
    auto doc = pickle::parse(nested(10'000'000), "deep.pickle");
    return !doc && contains(doc.error().to_string(), "refused as a pickle bomb");
  };
  EXPECT_EQ(in_bounded_child(check), 0);
}

TEST(HostilePickle, ASharedValueBelowADeepPathCountsItsDepth) {
  // The root holds L (memoized: 6,000 lists deep) first, then a chain of 5,000 lists whose
  // innermost holds L again: L is measured once, on the short path, and must still count 6,000
  // below the 5,001st level: 11,001 deep in all.
  std::string bytes = pickle_head() + "]";                            // the root
  bytes += std::string(6000, ']') + std::string(5999, 'a') + "\x94";  // L, memo 0
  bytes += "a";                                                       // root.append(L)
  bytes += std::string(5000, ']') + std::string("h\x00", 2) + "a";    // innermost.append(L)
  bytes += std::string(4999, 'a') + "a.";                             // chain into root
  auto doc = pickle::parse(bytes, "shared.pickle");
  ASSERT_FALSE(doc);
  EXPECT_TRUE(contains(doc.error().to_string(), "nested deeper than 10000"))
      << doc.error().to_string();
  // The same with L 4,000 deep: 9,001 in all, read.
  std::string shallow = pickle_head() + "]" + std::string(4000, ']') + std::string(3999, 'a') +
                        "\x94"
                        "a" +
                        std::string(5000, ']') + std::string("h\x00", 2) + "a" +
                        std::string(4999, 'a') + "a.";
  auto ok = pickle::parse(shallow, "shared.pickle");
  EXPECT_TRUE(ok) << ok.error().to_string();
}

TEST(HostilePickle, ACycleIsRefused) {
  // A list memoized, then appended to itself.
  auto doc = pickle::parse(pickle_head() + std::string("]\x94h\x00"
                                                       "a.",
                                                       6),
                           "cycle.pickle");
  ASSERT_FALSE(doc);
  EXPECT_TRUE(
      contains(doc.error().to_string(), "cycle.pickle: byte 2: a list that contains itself"))
      << doc.error().to_string();
}

TEST(HostilePickle, IntegersOfAnyWidthAreRepresented) {
  const auto long1 = [](const std::string& little_endian) {
    return pickle::parse(
        pickle_head() + "\x8a" + static_cast<char>(little_endian.size()) + little_endian + ".",
        "int.pickle");
  };
  // 2^64 - 1 as Python 3.13 writes it: 9 bytes, the last 0 (a sign byte).
  auto top = long1(std::string(8, '\xff') + std::string(1, '\0'));
  ASSERT_TRUE(top) << top.error().to_string();
  EXPECT_EQ(top->root->as_unsigned(), UINT64_MAX);
  EXPECT_EQ(top->root->as_signed(), std::nullopt);
  // 2^64: beyond every field, kept as such.
  auto over = long1(std::string(8, '\0') + std::string(1, '\x01'));
  ASSERT_TRUE(over) << over.error().to_string();
  EXPECT_TRUE(over->root->wide);
  EXPECT_EQ(over->root->as_unsigned(), std::nullopt);
  // -2^63 (8 bytes 00..80) and -2^64 (9 bytes 00..00 ff) and a 200-byte 1.
  auto bottom = long1(std::string(7, '\0') + std::string(1, '\x80'));
  ASSERT_TRUE(bottom);
  EXPECT_EQ(bottom->root->as_signed(), INT64_MIN);
  EXPECT_EQ(bottom->root->describe(), "the integer -9223372036854775808");
  auto minus_2_64 = long1(std::string(8, '\0') + std::string(1, '\xff'));
  ASSERT_TRUE(minus_2_64);
  EXPECT_TRUE(minus_2_64->root->wide);
  EXPECT_TRUE(minus_2_64->root->negative);
  auto padded = long1(std::string(1, '\x01') + std::string(199, '\0'));
  ASSERT_TRUE(padded);
  EXPECT_EQ(padded->root->as_unsigned(), 1U);
}

TEST(HostilePickle, TheImporterNamesTheFieldAnIntegerDoesNotFit) {
  // A block whose size is written as BININT 0x12345678, then replaced by LONG1 encodings.
  const std::string snapshot = testing::pickle_of(testing::PyDict{
      {"segments",
       testing::PyList{testing::PyDict{
           {"device", 0}, {"blocks", testing::PyList{testing::PyDict{{"size", 0x12345678}}}}}}}});
  const std::string placeholder("J\x78\x56\x34\x12", 5);
  ASSERT_NE(snapshot.find(placeholder), std::string::npos);
  const auto with_size = [&](const std::string& long1) {
    std::string bytes = snapshot;
    return bytes.replace(bytes.find(placeholder), placeholder.size(), long1);
  };
  MemorySink sink;
  // 2^64: 9 bytes, 00 x 8 then 01.
  auto over = import_pytorch_snapshot(
      with_size(std::string("\x8a\x09", 2) + std::string(8, '\0') + "\x01"), "big.pickle", sink);
  ASSERT_FALSE(over);
  EXPECT_TRUE(contains(over.error().to_string(),
                       "(segments[0].blocks[0].size): expected a non-negative integer, got an "
                       "integer of 2^64 or more"))
      << over.error().to_string();
  // -1: two bytes ff ff.
  auto negative =
      import_pytorch_snapshot(with_size(std::string("\x8a\x02\xff\xff", 4)), "neg.pickle", sink);
  ASSERT_FALSE(negative);
  EXPECT_TRUE(contains(negative.error().to_string(),
                       "(segments[0].blocks[0].size): expected a non-negative integer, got the "
                       "integer -1"))
      << negative.error().to_string();
  // 2^64 - 1 in 9 bytes is a size the field holds: whatever else is refused, not the size.
  auto top = import_pytorch_snapshot(
      with_size(std::string("\x8a\x09", 2) + std::string(8, '\xff') + std::string(1, '\0')),
      "top.pickle", sink);
  if (!top) {
    EXPECT_FALSE(contains(top.error().to_string(), "blocks[0].size)")) << top.error().to_string();
  }
}

// ---- compressed input and format detection ----

/// Writes `size` zero bytes as one zstd frame, streamed (never all in memory).
void write_zero_zstd(const std::filesystem::path& path, const std::string& prefix,
                     std::uint64_t size) {
  ZSTD_CCtx* context = ZSTD_createCCtx();
  ZSTD_CCtx_setParameter(context, ZSTD_c_compressionLevel, 1);
  std::ofstream out(path, std::ios::binary);
  const std::string zeros(1U << 20U, '\0');
  std::vector<char> buffer(ZSTD_CStreamOutSize());
  const auto put = [&](std::string_view bytes, ZSTD_EndDirective mode) {
    ZSTD_inBuffer in{bytes.data(), bytes.size(), 0};
    for (;;) {
      ZSTD_outBuffer chunk{buffer.data(), buffer.size(), 0};
      const std::size_t left = ZSTD_compressStream2(context, &chunk, &in, mode);
      out.write(buffer.data(), static_cast<std::streamsize>(chunk.pos));
      if (mode == ZSTD_e_end ? left == 0 : in.pos == in.size) return;
    }
  };
  put(prefix, ZSTD_e_continue);
  for (std::uint64_t done = 0; done < size; done += zeros.size())
    put(zeros, ZSTD_e_continue);
  put({}, ZSTD_e_end);
  ZSTD_freeCCtx(context);
}

TEST(HostileCompressed, AZeroFilledFrameIsRefusedFromItsFirstBytes) {
  ScratchDir dir;
  const auto zeros = dir / "zeros.zst";
  write_zero_zstd(zeros, "", std::uint64_t{1536} << 20U);  // 1.5 GiB of zeros, about 50 KB
  const auto check = [&] {
    auto report = import_file(zeros, dir / "out.trace", std::nullopt);
    return !report && contains(report.error().to_string(),
                               zeros.string() + ": byte 0: cannot tell the format");
  };
  EXPECT_EQ(in_bounded_child(check), 0);
  // A canonical trace whose first event line is 1.5 GiB of zeros: streamed, refused at the line.
  const auto trace = dir / "long-line.trace.zst";
  write_zero_zstd(trace, "memtrack-trace 1\nevents\n", std::uint64_t{1536} << 20U);
  const auto read = [&] {
    auto reader = TraceReader::open(trace);
    if (!reader) return false;
    TraceEvent event;
    auto next = reader->next(event);
    return !next &&
           contains(next.error().to_string(), trace.string() + ":3: line longer than 65536 bytes");
  };
  EXPECT_EQ(in_bounded_child(read), 0);
  EXPECT_FALSE(std::filesystem::exists(dir / "out.trace"));
}

TEST(HostileCompressed, ASparseFileIsNotReadWholeToTellItsFormat) {
  ScratchDir dir;
  const auto sparse = dir / "sparse.bin";
  { std::ofstream(sparse, std::ios::binary).put('\0'); }
  std::filesystem::resize_file(sparse, std::uint64_t{1} << 30U);  // 1 GiB, a hole on disk
  const auto check = [&] {
    const auto start = std::chrono::steady_clock::now();
    auto report = import_file(sparse, dir / "out.trace", std::nullopt);
    const auto took = std::chrono::steady_clock::now() - start;
    return !report && took < std::chrono::seconds(2) &&
           contains(report.error().to_string(), "sparse.bin: byte 0: cannot tell the format");
  };
  // 256 MiB: reading the file whole would need 1 GiB.
  EXPECT_EQ(in_bounded_child(check, rlim_t{256} << 20U), 0);
  EXPECT_FALSE(std::filesystem::exists(dir / "out.trace"));
}

TEST(HostileCompressed, ZstdErrorsNameTheCompressedByte) {
  // A zstd frame made by hand: a header (magic, descriptor 0, window 1 MiB), one raw block of
  // 100,000 bytes, then a block of the reserved type 3: corrupt at byte 4 + 2 + 3 + 100,000.
  std::string frame("\x28\xB5\x2F\xFD\x00\x50", 6);
  const auto block_header = [](std::uint32_t size, std::uint32_t type, bool last) {
    const std::uint32_t word = (size << 3U) | (type << 1U) | (last ? 1U : 0U);
    return std::string{static_cast<char>(word & 0xFFU), static_cast<char>((word >> 8U) & 0xFFU),
                       static_cast<char>((word >> 16U) & 0xFFU)};
  };
  frame += block_header(100'000, 0, false) + std::string(100'000, 'a');
  const std::size_t bad = frame.size();
  ASSERT_EQ(bad, 100'009U);
  frame += block_header(16, 3, true) + std::string(16, 'b');
  auto source = memory_source(frame, "bad.zst");
  auto all = read_all(*source, "bad.zst", 1U << 30U);
  ASSERT_FALSE(all);
  const std::string message = all.error().to_string();
  const std::string marker = "bad.zst: compressed byte ";
  ASSERT_TRUE(contains(message, marker)) << message;
  const std::uint64_t offset = std::stoull(message.substr(message.find(marker) + marker.size()));
  // zstd is fed 4 KiB at a time: the offset is within the slice that holds the bad block.
  EXPECT_GE(offset + 4096, bad) << message;
  EXPECT_LE(offset, bad + 3) << message;
}

// ---- FIFOs, devices ----

TEST(HostileFiles, AFifoIsRefusedAtOnce) {
  ScratchDir dir;
  const auto fifo = dir / "pipe.trace";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  const auto check = [&] {
    auto reader = TraceReader::open(fifo);
    auto head = read_head(fifo, 16);
    auto report = import_file(fifo, dir / "out.trace", std::nullopt);
    return !reader && !head && !report &&
           contains(reader.error().to_string(),
                    fifo.string() + ": is a FIFO (named pipe) or pipe, expected a regular file") &&
           contains(report.error().to_string(), "is a FIFO");
  };
  EXPECT_EQ(in_bounded_child(check, one_gib, 10), 0);  // the alarm ends a hang: 128 + SIGALRM
  EXPECT_FALSE(std::filesystem::exists(dir / "out.trace"));
}

// ---- canonical header ----

TEST(HostileHeader, ManyGpuLinesAreRefusedQuicklyPastTheLimit) {
  std::string header = "memtrack-trace 1\n";
  for (int id = 0; id < 200'000; ++id) {
    header += "gpu " + std::to_string(id) + " total=1024\n";
  }
  header += "events\nend 0\n";
  const auto start = std::chrono::steady_clock::now();
  auto reader = testing::reader_of(header);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  ASSERT_FALSE(reader);
  // The magic is line 1, gpu lines 2 to 257 are the 256 accepted.
  EXPECT_TRUE(contains(reader.error().to_string(),
                       "t.trace:258: more than 256 gpu lines: more GPUs than a node has"))
      << reader.error().to_string();
  // Exactly the limit reads, with every GPU.
  std::string full = "memtrack-trace 1\n";
  for (std::size_t id = 0; id < max_header_gpus; ++id) {
    full += "gpu " + std::to_string(id) + " total=1024\n";
  }
  auto ok = testing::reader_of(full + "events\nend 0\n");
  ASSERT_TRUE(ok) << ok.error().to_string();
  EXPECT_EQ(ok->header().config->gpus.size(), max_header_gpus);
}

// ---- strict typing: Nsight and RMM ----

/// An Nsight-like export with one device allocation whose `bytes` and `deviceId` are given as
/// SQL literals; @return the database's bytes.
std::string nsight_with(const ScratchDir& dir, const std::string& device,
                        const std::string& bytes) {
  const auto path =
      dir / ("n" + std::to_string(std::hash<std::string>{}(device + bytes)) + ".sqlite");
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  const std::string sql =
      "CREATE TABLE ENUM_CUDA_MEM_KIND (id INTEGER PRIMARY KEY, name TEXT);"
      "INSERT INTO ENUM_CUDA_MEM_KIND VALUES (3, 'CUDA_MEMOPR_MEMORY_KIND_DEVICE');"
      "CREATE TABLE ENUM_CUDA_DEV_MEM_EVENT_OPER (id INTEGER PRIMARY KEY, name TEXT);"
      "INSERT INTO ENUM_CUDA_DEV_MEM_EVENT_OPER VALUES (9, 'CUDA_DEV_MEM_EVENT_OPR_ALLOCATION');"
      "CREATE TABLE CUDA_GPU_MEMORY_USAGE_EVENTS (start INT, deviceId INT, address INT, bytes "
      "INT, memKind INT, memoryOperationType INT);"
      "INSERT INTO CUDA_GPU_MEMORY_USAGE_EVENTS VALUES (100, 0, 4096, 64, 3, 9);"
      "INSERT INTO CUDA_GPU_MEMORY_USAGE_EVENTS VALUES (200, " +
      device + ", 8192, " + bytes + ", 3, 9);";
  char* message = nullptr;
  EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &message), SQLITE_OK)
      << (message != nullptr ? message : "");
  sqlite3_free(message);
  sqlite3_close(db);
  return testing::read_bytes(path);
}

TEST(HostileNsight, BytesAndDeviceIdsMustBeIntegersInRange) {
  ScratchDir dir;
  MemorySink sink;
  ASSERT_TRUE(import_nsight(nsight_with(dir, "0", "1048576"), "r.sqlite", sink));
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"'1048576abc'", "column bytes: expected an integer, got the text '1048576abc'"},
      {"NULL", "column bytes: expected an integer, got NULL"},
      {"x'00ff'", "column bytes: expected an integer, got a blob of 2 bytes"},
      {"1.5e30", "column bytes: expected an integer, got the real number"},
      {"-1", "column bytes: expected an integer from 0 to 9223372036854775807, got -1"},
  };
  for (const auto& [literal, expected] : cases) {
    MemorySink refused;
    auto report = import_nsight(nsight_with(dir, "0", literal), "r.sqlite", refused);
    ASSERT_FALSE(report) << literal;
    EXPECT_TRUE(contains(report.error().to_string(),
                         "r.sqlite: CUDA_GPU_MEMORY_USAGE_EVENTS row id 2, " + expected))
        << report.error().to_string();
  }
  for (const std::string device : {"'gpu0'", "NULL", "-1"}) {
    MemorySink refused;
    auto report = import_nsight(nsight_with(dir, device, "64"), "r.sqlite", refused);
    ASSERT_FALSE(report) << device;
    EXPECT_TRUE(
        contains(report.error().to_string(), "row id 2, column deviceId: expected an integer"))
        << report.error().to_string();
  }
}

TEST(HostileNsight, ATruncatedDatabaseIsRefused) {
  ScratchDir dir;
  const std::string whole = nsight_with(dir, "0", "64");
  MemorySink sink;
  ASSERT_TRUE(import_nsight(whole, "r.sqlite", sink));
  for (const std::size_t cut : {std::size_t{1}, std::size_t{4096}}) {
    MemorySink refused;
    auto report = import_nsight(whole.substr(0, whole.size() - cut), "r.sqlite", refused);
    ASSERT_FALSE(report) << cut;
    EXPECT_TRUE(contains(report.error().to_string(), "r.sqlite: byte " +
                                                         std::to_string(whole.size() - cut) +
                                                         ": truncated or padded SQLite database"))
        << report.error().to_string();
  }
}

TEST(HostileRmm, FieldsMustMatchTheFormat) {
  const std::string header = "Thread,Time,Action,Pointer,Size,Stream\n";
  MemorySink sink;
  auto bad_stream =
      import_rmm(header + "1,22:30:49.650739,allocate,0x7f00,1024,zz\n", "r.csv", sink);
  ASSERT_FALSE(bad_stream);
  EXPECT_TRUE(contains(bad_stream.error().to_string(), "r.csv:2: expected Stream as 0x"))
      << bad_stream.error().to_string();
  auto bad_thread =
      import_rmm(header + "t1,22:30:49.650739,allocate,0x7f00,1024,0x0\n", "r.csv", sink);
  ASSERT_FALSE(bad_thread);
  EXPECT_TRUE(contains(bad_thread.error().to_string(), "r.csv:2: expected Thread"));
  // Cut inside the last field: "0x" + a digit of "0x10" lost, and no newline.
  const std::string rows = header + "1,22:30:49.650739,allocate,0x7f00,1024,0x0\n" +
                           "1,22:30:49.650740,free,0x7f00,1024,0x1";
  auto cut = import_rmm(rows, "r.csv", sink);
  ASSERT_FALSE(cut);
  EXPECT_TRUE(contains(cut.error().to_string(), "r.csv:3: truncated: the last line has no newline"))
      << cut.error().to_string();
}

}  // namespace
}  // namespace memtrack::traces
