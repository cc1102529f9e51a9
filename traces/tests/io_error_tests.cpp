// A file the system will not open, read, write or rename is an I/O error (ErrorKind::IoError),
// not a parse error: the caller can tell "fix the file" from "fix the path or the permissions".
#include <memtrack/traces/io.hpp>

#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace memtrack::traces {
namespace {

class IoErrors : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    folder_ =
        std::filesystem::temp_directory_path() /
        (std::string("memtrack-io-errors-") + info->name() + "-" + std::to_string(::getpid()));
    std::filesystem::remove_all(folder_);
    std::filesystem::create_directories(folder_);
  }
  void TearDown() override { std::filesystem::remove_all(folder_); }

  std::filesystem::path folder_;
};

TEST_F(IoErrors, AFileThatIsNotThereCannotBeOpened) {
  const auto missing = folder_ / "missing.trace";
  auto source = open_source(missing);
  ASSERT_FALSE(source);
  EXPECT_EQ(source.error().kind, ErrorKind::IoError);
  EXPECT_EQ(source.error().to_string(), missing.string() + ": cannot open: no such file");
}

TEST_F(IoErrors, AFolderIsNotARecording) {
  auto source = open_source(folder_);
  ASSERT_FALSE(source);
  EXPECT_EQ(source.error().kind, ErrorKind::IoError);
  EXPECT_EQ(source.error().to_string(), folder_.string() + ": is a directory, expected a file");
}

TEST_F(IoErrors, AnOutputInAFolderThatIsNotThereCannotBeWritten) {
  const auto target = folder_ / "no-such-folder" / "out.trace";
  auto output = AtomicOutput::create(target);
  ASSERT_FALSE(output);
  EXPECT_EQ(output.error().kind, ErrorKind::IoError);
  EXPECT_NE(output.error().to_string().find(target.string()), std::string::npos)
      << output.error().to_string();
  EXPECT_FALSE(std::filesystem::exists(target));
}

TEST_F(IoErrors, AnOutputThatIsAFolderIsRefusedAsOne) {
  auto output = AtomicOutput::create(folder_);
  ASSERT_FALSE(output);
  EXPECT_EQ(output.error().kind, ErrorKind::IoError);
  EXPECT_EQ(output.error().to_string(), folder_.string() + ": is a folder, not a file");
}

TEST_F(IoErrors, ARecordingWithBadContentIsStillAParseError) {
  // The kind follows the cause: a file that opens and reads but is not a trace stays ParseError.
  const auto path = folder_ / "bad.trace.zst";
  std::ofstream(path, std::ios::binary) << "\x28\xb5\x2f\xfd not really zstd";
  auto source = open_source(path);
  if (!source) {
    EXPECT_EQ(source.error().kind, ErrorKind::ParseError) << source.error().to_string();
    return;
  }
  char buffer[256];
  auto read = (*source)->read(buffer, sizeof buffer);
  ASSERT_FALSE(read);
  EXPECT_EQ(read.error().kind, ErrorKind::ParseError) << read.error().to_string();
}

}  // namespace
}  // namespace memtrack::traces
