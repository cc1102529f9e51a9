// The spool: a temporary file no name leads to, written once and read back by several readers.
#include "test_support.hpp"

#include <memtrack/traces/io.hpp>
#include <memtrack/traces/writer.hpp>

#include <gtest/gtest.h>

#include <cstdlib>
#include <optional>
#include <string>

namespace memtrack::traces {
namespace {

using testing::ScratchDir;

/// Points TMPDIR at a folder for the test's length.
class TemporaryFolder {
 public:
  explicit TemporaryFolder(const std::filesystem::path& folder) {
    if (const char* old = std::getenv("TMPDIR")) old_ = old;
    ::setenv("TMPDIR", folder.c_str(), 1);
  }
  TemporaryFolder(const TemporaryFolder&) = delete;
  TemporaryFolder& operator=(const TemporaryFolder&) = delete;
  ~TemporaryFolder() {
    if (old_) {
      ::setenv("TMPDIR", old_->c_str(), 1);
    } else {
      ::unsetenv("TMPDIR");
    }
  }

 private:
  std::optional<std::string> old_;
};

/// @return every byte a source gives, read `step` bytes at a time
std::string drain(ByteSource& source, std::size_t step) {
  std::string all;
  std::string buffer(step, '\0');
  for (;;) {
    auto got = source.read(buffer.data(), buffer.size());
    EXPECT_TRUE(got) << got.error().to_string();
    if (!got || *got == 0) return all;
    all.append(buffer, 0, *got);
  }
}

TEST(Spool, WhatIsWrittenIsReadBackByEachReaderFromItsStart) {
  ScratchDir dir;
  const TemporaryFolder tmp(dir.path());
  auto spool = Spool::create("test bytes");
  ASSERT_TRUE(spool) << spool.error().to_string();
  // 3 MiB in pieces of 1,000 bytes: past the write buffer's 1 MiB, so flushed on the way.
  std::string written;
  for (int i = 0; written.size() < (3U << 20U); ++i) {
    std::string piece(1000, static_cast<char>('a' + i % 26));
    piece += std::to_string(i);
    ASSERT_TRUE((*spool)->write(piece));
    written += piece;
  }
  EXPECT_LT((*spool)->flushed(), written.size());  // the last piece is still buffered
  ASSERT_TRUE((*spool)->flush());
  EXPECT_EQ((*spool)->flushed(), written.size());
  // No name leads to it: the temporary folder stays empty.
  EXPECT_TRUE(dir.files().empty());

  auto first = Spool::reader(*spool);
  auto second = Spool::reader(*spool);
  spool->reset();  // the readers keep it open
  EXPECT_EQ(drain(*first, 4096), written);
  EXPECT_EQ(drain(*second, 7), written);
}

TEST(Spool, ReadsByOffsetStayWithinWhatWasFlushed) {
  ScratchDir dir;
  const TemporaryFolder tmp(dir.path());
  auto spool = Spool::create("the origins");
  ASSERT_TRUE(spool) << spool.error().to_string();
  ASSERT_TRUE((*spool)->write("0123456789"));
  char out[4] = {};
  auto unflushed = (*spool)->read_at(0, out, 1);
  ASSERT_FALSE(unflushed);
  EXPECT_NE(unflushed.error().to_string().find("the origins: byte 0: reading 1 bytes past the 0 "
                                               "written"),
            std::string::npos)
      << unflushed.error().to_string();
  ASSERT_TRUE((*spool)->flush());
  ASSERT_TRUE((*spool)->read_at(6, out, 4));
  EXPECT_EQ(std::string(out, 4), "6789");
  EXPECT_FALSE((*spool)->read_at(7, out, 4));
  EXPECT_FALSE((*spool)->read_at(UINT64_MAX, out, 2));  // no wrap past 2^64 - 1
}

TEST(Spool, AFolderItCannotWriteIsNamedWithTheRemedy) {
  ScratchDir dir;
  const TemporaryFolder tmp(dir / "missing");
  auto spool = Spool::create("the trace imported from log.csv");
  ASSERT_FALSE(spool);
  EXPECT_NE(spool.error().to_string().find("the trace imported from log.csv: "), std::string::npos)
      << spool.error().to_string();
  EXPECT_NE(spool.error().to_string().find("TMPDIR"), std::string::npos)
      << spool.error().to_string();
}

TEST(Spool, ATraceWrittenIntoItIsTheTraceWrittenAsText) {
  ScratchDir dir;
  const TemporaryFolder tmp(dir.path());
  TraceHeader header;
  header.source = "test";
  std::vector<TraceEvent> events;
  for (std::uint64_t i = 0; i < 50000; ++i) {
    TraceEvent event =
        i % 2 == 0 ? TraceEvent::allocate(Gpu{0}, 512 + i) : TraceEvent::free(Gpu{0}, 512 + i - 1);
    event.address = 0x1000 + i - i % 2;
    events.push_back(event);
  }
  auto spool = Spool::create("a trace");
  ASSERT_TRUE(spool) << spool.error().to_string();
  auto writer = TraceWriter::create(*spool, header);
  ASSERT_TRUE(writer) << writer.error().to_string();
  for (const TraceEvent& event : events)
    ASSERT_TRUE(writer->write(event));
  ASSERT_TRUE(writer->finish());
  auto reader = Spool::reader(*spool);
  EXPECT_EQ(drain(*reader, 65536), format_trace(header, events));
}

}  // namespace
}  // namespace memtrack::traces
