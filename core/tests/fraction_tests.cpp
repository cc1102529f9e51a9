#include <memtrack/fraction.hpp>

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

namespace memtrack {
namespace {

void expect_fraction(const Result<Fraction>& f, std::uint64_t numerator,
                     std::uint64_t denominator) {
  ASSERT_TRUE(f.has_value()) << f.error().to_string();
  EXPECT_EQ(f->numerator(), numerator);
  EXPECT_EQ(f->denominator(), denominator);
}

TEST(Fraction, ParsesDecimalsExactly) {
  expect_fraction(Fraction::parse("0.9"), 9, 10);
  expect_fraction(Fraction::parse("0.925"), 37, 40);
  expect_fraction(Fraction::parse("1"), 1, 1);
  expect_fraction(Fraction::parse("1.000"), 1, 1);
  expect_fraction(Fraction::parse("0.70"), 7, 10);
  expect_fraction(Fraction::parse("0.9000000000000000000000000"), 9, 10);
  expect_fraction(Fraction::parse("0.0000000000000000001"), 1, 10000000000000000000ULL);
}

TEST(Fraction, ParsesPercentagesAndRatios) {
  expect_fraction(Fraction::parse("90%"), 9, 10);
  expect_fraction(Fraction::parse("92.5%"), 37, 40);
  expect_fraction(Fraction::parse("100%"), 1, 1);
  expect_fraction(Fraction::parse("9/10"), 9, 10);
  expect_fraction(Fraction::parse("2/6"), 1, 3);
}

TEST(Fraction, RejectsOutsideTheUnitIntervalAndMalformed) {
  for (const std::string bad :
       {"0",    "0.0",  "0%", "1.0000001", "101%",  "2",   "-0.5", "",
        ".",    "1.",   ".5", "1..5",      "0.9.1", "abc", "0,9",  "9e-1",
        " 0.9", "0.9 ", "%",  "1/0",       "0/5",   "3/2", "nan",  "0.00000000000000000001"}) {
    const auto parsed = Fraction::parse(bad);
    ASSERT_FALSE(parsed.has_value()) << "'" << bad << "' parsed as " << parsed->to_string();
    EXPECT_EQ(parsed.error().kind, ErrorKind::InvalidConfig);
    EXPECT_NE(parsed.error().to_string().find("'" + bad + "'"), std::string::npos)
        << parsed.error().to_string();
  }
}

TEST(Fraction, FromDoubleTakesTheExactBinaryValue) {
  // 0.9 as a double is 8106479329266893 / 2^53, slightly above 9/10.
  expect_fraction(Fraction::from_double(0.9), 8106479329266893ULL, 9007199254740992ULL);
  // 0.7 as a double is 3152519739159347 / 2^52, slightly below 7/10.
  expect_fraction(Fraction::from_double(0.7), 3152519739159347ULL, 4503599627370496ULL);
  expect_fraction(Fraction::from_double(0.5), 1, 2);
  expect_fraction(Fraction::from_double(1.0), 1, 1);
  expect_fraction(Fraction::from_double(0.75), 3, 4);
  EXPECT_EQ(Fraction(0.25), Fraction::of(1, 4).value());
}

TEST(Fraction, FromDoubleRejectsNanZeroNegativeAboveOneAndUnrepresentable) {
  for (const double bad : {std::numeric_limits<double>::quiet_NaN(), 0.0, -0.0, -0.5, 1.0000001,
                           std::numeric_limits<double>::infinity(), 1e-30,
                           std::numeric_limits<double>::denorm_min()}) {
    EXPECT_FALSE(Fraction::from_double(bad).has_value()) << bad;
  }
  EXPECT_THROW(Fraction(std::nan("")), BadResultAccess);
  // The smallest power of two whose exact denominator still fits: 2^-63.
  expect_fraction(Fraction::from_double(std::ldexp(1.0, -63)), 1, 1ULL << 63U);
  EXPECT_FALSE(Fraction::from_double(std::ldexp(1.0, -64)).has_value());
}

TEST(Fraction, OfReduces) {
  expect_fraction(Fraction::of(90, 100), 9, 10);
  expect_fraction(Fraction::of(UINT64_MAX, UINT64_MAX), 1, 1);
  EXPECT_FALSE(Fraction::of(0, 1).has_value());
  EXPECT_FALSE(Fraction::of(2, 1).has_value());
  EXPECT_FALSE(Fraction::of(1, 0).has_value());
}

TEST(Fraction, PrintsShortestExactTextThatRoundTrips) {
  EXPECT_EQ(Fraction::parse("0.9")->to_string(), "0.9");
  EXPECT_EQ(Fraction::parse("92.5%")->to_string(), "0.925");
  EXPECT_EQ(Fraction::parse("1")->to_string(), "1");
  EXPECT_EQ(Fraction::parse("1/3")->to_string(), "1/3");
  EXPECT_EQ(Fraction::parse("0.05")->to_string(), "0.05");
  for (const double d : {0.9, 0.7, 0.1, 1e-3, 0.123456789}) {
    const Fraction f = Fraction::from_double(d).value();
    EXPECT_EQ(Fraction::parse(f.to_string()).value(), f) << f.to_string();
  }
}

TEST(Fraction, DefaultIsOne) {
  EXPECT_EQ(Fraction{}, Fraction::of(1, 1).value());
}

}  // namespace
}  // namespace memtrack
