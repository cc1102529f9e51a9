#include <memtrack/sim/operation.hpp>

#include <gtest/gtest.h>

namespace memtrack::sim {
namespace {

TEST(Operation, TextRoundTrips) {
  for (const Operation& op : {Operation::allocate(Gpu{3}, 1024), Operation::deallocate(Cpu{}, 0),
                              Operation::allocate(Auto{}, UINT64_MAX), Operation::reset_peak_all(),
                              Operation::reset_peak(Gpu{0})}) {
    EXPECT_EQ(Operation::parse(op.to_string()).value(), op) << op.to_string();
  }
  EXPECT_EQ(Operation::allocate(Gpu{3}, 1024).to_string(), "alloc gpu:3 1024");
  EXPECT_EQ(Operation::parse("alloc  gpu:1   2GiB").value(),
            Operation::allocate(Gpu{1}, 2147483648));
}

TEST(Operation, RejectsMalformedLines) {
  for (const char* bad : {"", "alloc", "alloc gpu:0", "alloc gpu:x 5", "alloc gpu:0 -5",
                          "free cpu 1 2", "reset_peak a b", "malloc cpu 1", "reset_peak gpu:"}) {
    const auto parsed = Operation::parse(bad);
    EXPECT_FALSE(parsed.has_value()) << bad;
    if (!parsed) {
      EXPECT_EQ(parsed.error().kind, ErrorKind::ParseError);
    }
  }
}

}  // namespace
}  // namespace memtrack::sim
