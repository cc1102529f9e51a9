#include <memtrack/units.hpp>

#include <gtest/gtest.h>

#include <string>

namespace memtrack {
namespace {

TEST(Units, Literals) {
  EXPECT_EQ(24_GiB, 25769803776ULL);
  EXPECT_EQ(16_GiB, 17179869184ULL);
  EXPECT_EQ(1_MiB, 1048576ULL);
  EXPECT_EQ(32_GB, 32000000000ULL);
}

TEST(Units, CheckedArithmeticAtTheEdges) {
  EXPECT_EQ(checked_add(max_bytes - 1, 1), max_bytes);
  EXPECT_FALSE(checked_add(max_bytes, 1).has_value());
  EXPECT_EQ(checked_sub(5, 5), 0U);
  EXPECT_FALSE(checked_sub(4, 5).has_value());
  EXPECT_EQ(checked_mul(1ULL << 32U, (1ULL << 32U) - 1), max_bytes - ((1ULL << 32U) - 1));
  EXPECT_FALSE(checked_mul(1ULL << 32U, 1ULL << 32U).has_value());
  EXPECT_EQ(mul_div_floor(max_bytes, 9, 10), 16602069666338596453ULL);
  EXPECT_EQ(mul_div_floor(max_bytes, max_bytes, max_bytes), max_bytes);
  EXPECT_FALSE(mul_div_floor(max_bytes, 2, 1).has_value());
  EXPECT_FALSE(mul_div_floor(1, 1, 0).has_value());
}

TEST(Units, ParsesSizes) {
  EXPECT_EQ(parse_byte_size("1024").value(), 1024U);
  EXPECT_EQ(parse_byte_size("0").value(), 0U);
  EXPECT_EQ(parse_byte_size("32GiB").value(), 32_GiB);
  EXPECT_EQ(parse_byte_size("24 GiB").value(), 24_GiB);
  EXPECT_EQ(parse_byte_size("1.5GiB").value(), 1610612736U);
  EXPECT_EQ(parse_byte_size("32GB").value(), 32000000000U);
  EXPECT_EQ(parse_byte_size("100B").value(), 100U);
  EXPECT_EQ(parse_byte_size("18446744073709551615").value(), max_bytes);
  EXPECT_EQ(parse_byte_size("15EiB").value(), 15ULL << 60U);
}

TEST(Units, RejectsBadSizesNamingTheText) {
  for (const std::string bad : {"", "GiB", "-1", "1.5", "1.5B", "1GiBs", "1 gib", "0.1KiB",
                                "18446744073709551616", "16EiB", "1..2GiB", "1e9"}) {
    const auto parsed = parse_byte_size(bad);
    ASSERT_FALSE(parsed.has_value()) << bad << " gave " << *parsed;
    EXPECT_NE(parsed.error().to_string().find("'" + bad + "'"), std::string::npos);
  }
}

TEST(Units, FormatsGibAndPercentWithoutFloatingPoint) {
  EXPECT_EQ(format_gib(24_GiB), "24.00");
  EXPECT_EQ(format_gib(0), "0.00");
  EXPECT_EQ(format_gib(33680457728ULL), "31.37");
  EXPECT_EQ(format_gib(max_bytes), "17179869184.00");
  EXPECT_EQ(format_gib(1_GiB / 2, 1), "0.5");
  EXPECT_EQ(format_percent(1, 3), "33.33");
  EXPECT_EQ(format_percent(2, 3), "66.67");
  EXPECT_EQ(format_percent(5, 5), "100.00");
  EXPECT_EQ(format_percent(1, 0), "-");
}

}  // namespace
}  // namespace memtrack
