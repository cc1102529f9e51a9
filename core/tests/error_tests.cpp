#include <memtrack/error.hpp>
#include <memtrack/result.hpp>
#include <memtrack/units.hpp>

#include <gtest/gtest.h>

namespace memtrack {
namespace {

TEST(Error, OutOfMemoryPrintsDeviceRequestAvailableAndLimit) {
  EXPECT_EQ(Error::out_of_memory(Gpu{1}, 2_GiB, 1_GiB, 24_GiB).to_string(),
            "gpu:1: cannot allocate 2147483648 bytes, 1073741824 of 25769803776 available");
  EXPECT_EQ(Error::out_of_memory(Auto{}, 10, 4, 0).to_string(),
            "auto: cannot allocate 10 bytes, at most 4 available on any device");
}

TEST(Error, EveryKindPrintsOneActionableLine) {
  const Error errors[] = {
      Error::invalid_config("total_bytes is 0", DevicePlacement{Gpu{3}}),
      Error::unknown_device(Gpu{9}),
      Error::out_of_memory(Cpu{}, 5, 4, 8),
      Error::ambiguous_device("deallocate"),
      Error::invalid_deallocation(Gpu{0}, 200, 100),
      Error::parse_error("invalid device 'x': expected cpu, auto or gpu:N"),
      Error::io_error("run.trace: cannot open: no such file"),
  };
  for (const Error& error : errors) {
    const std::string line = error.to_string();
    EXPECT_FALSE(line.empty());
    EXPECT_EQ(line.find('\n'), std::string::npos) << line;
  }
  EXPECT_EQ(errors[0].to_string(), "invalid config: gpu:3: total_bytes is 0");
  EXPECT_EQ(errors[1].to_string(), "gpu:9: unknown device, no GPU with id 9 is configured");
  EXPECT_EQ(errors[3].to_string(),
            "auto: deallocate needs a concrete device (cpu or gpu:N), not auto");
  EXPECT_EQ(errors[4].to_string(), "gpu:0: cannot deallocate 200 bytes, only 100 allocated");
  EXPECT_EQ(errors[6].kind, ErrorKind::IoError);
  EXPECT_EQ(errors[6].to_string(), "run.trace: cannot open: no such file");
}

TEST(Error, KindNames) {
  EXPECT_EQ(to_string(ErrorKind::OutOfMemory), "OutOfMemory");
  EXPECT_EQ(to_string(ErrorKind::InvalidDeallocation), "InvalidDeallocation");
  EXPECT_EQ(to_string(ErrorKind::AmbiguousDevice), "AmbiguousDevice");
  EXPECT_EQ(to_string(ErrorKind::UnknownDevice), "UnknownDevice");
  EXPECT_EQ(to_string(ErrorKind::InvalidConfig), "InvalidConfig");
  EXPECT_EQ(to_string(ErrorKind::ParseError), "ParseError");
  EXPECT_EQ(to_string(ErrorKind::IoError), "IoError");
}

TEST(Error, EqualityComparesEveryNumber) {
  EXPECT_EQ(Error::out_of_memory(Cpu{}, 5, 4, 8), Error::out_of_memory(Cpu{}, 5, 4, 8));
  EXPECT_NE(Error::out_of_memory(Cpu{}, 5, 4, 8), Error::out_of_memory(Cpu{}, 5, 3, 8));
  EXPECT_NE(Error::out_of_memory(Cpu{}, 5, 4, 8), Error::out_of_memory(Gpu{0}, 5, 4, 8));
}

}  // namespace
}  // namespace memtrack

namespace memtrack {
namespace {

TEST(Result, CopiesAndMovesKeepTheValueOrTheError) {
  const Result<std::uint64_t> value = std::uint64_t{7};
  const Result<std::uint64_t> failure = Error::unknown_device(Gpu{2});
  Result<std::uint64_t> copy = failure;  // a deep copy: independent of the original
  EXPECT_FALSE(copy.has_value());
  EXPECT_EQ(copy.error(), Error::unknown_device(Gpu{2}));
  copy = value;
  EXPECT_EQ(copy.value(), 7U);
  Result<std::uint64_t> moved = std::move(copy);
  EXPECT_EQ(*moved, 7U);
  EXPECT_THROW((void)failure.value(), BadResultAccess);
  EXPECT_EQ(failure.value_or(3U), 3U);

  const Result<void> ok;
  Result<void> bad = Error::ambiguous_device("deallocate");
  Result<void> bad_copy = bad;
  EXPECT_TRUE(ok.has_value());
  EXPECT_FALSE(bad_copy.has_value());
  EXPECT_EQ(bad_copy.error().kind, ErrorKind::AmbiguousDevice);
  bad_copy = ok;
  EXPECT_TRUE(bad_copy.has_value());
  EXPECT_THROW(bad.value(), BadResultAccess);
}

}  // namespace
}  // namespace memtrack
