#include <memtrack/device_placement.hpp>
#include <memtrack/result.hpp>

#include <gtest/gtest.h>

#include <cstdint>
#include <string>

namespace memtrack {
namespace {

TEST(DevicePlacement, ParsesEachForm) {
  EXPECT_EQ(DevicePlacement::parse("cpu").value(), DevicePlacement{Cpu{}});
  EXPECT_EQ(DevicePlacement::parse("auto").value(), DevicePlacement{Auto{}});
  EXPECT_EQ(DevicePlacement::parse("gpu:0").value(), DevicePlacement{Gpu{0}});
  EXPECT_EQ(DevicePlacement::parse("gpu:7").value(), DevicePlacement{Gpu{7}});
  EXPECT_EQ(DevicePlacement::parse("gpu:4294967295").value(), DevicePlacement{Gpu{UINT32_MAX}});
}

TEST(DevicePlacement, PrintsAndRoundTrips) {
  for (const DevicePlacement p :
       {DevicePlacement{Cpu{}}, DevicePlacement{Auto{}}, DevicePlacement{Gpu{0}},
        DevicePlacement{Gpu{3}}, DevicePlacement{Gpu{UINT32_MAX}}}) {
    EXPECT_EQ(DevicePlacement::parse(p.to_string()).value(), p) << p.to_string();
  }
  EXPECT_EQ(DevicePlacement{Gpu{12}}.to_string(), "gpu:12");
  EXPECT_EQ(DevicePlacement{Cpu{}}.to_string(), "cpu");
  EXPECT_EQ(DevicePlacement{Auto{}}.to_string(), "auto");
}

TEST(DevicePlacement, RejectsAnythingElseNamingTheText) {
  for (const std::string bad : {"", "CPU", "gpu", "gpu:", "gpu:-1", "gpu:+1", "gpu:01", "gpu: 1",
                                "gpu:4294967296", "gpu:1x", "cuda:0", "cpu ", "Auto", "gpu0"}) {
    const auto parsed = DevicePlacement::parse(bad);
    ASSERT_FALSE(parsed.has_value()) << bad;
    EXPECT_EQ(parsed.error().kind, ErrorKind::ParseError);
    EXPECT_NE(parsed.error().to_string().find("'" + bad + "'"), std::string::npos)
        << parsed.error().to_string();
  }
}

TEST(DevicePlacement, KindAccessors) {
  const DevicePlacement gpu = Gpu{5};
  EXPECT_TRUE(gpu.is_gpu());
  EXPECT_FALSE(gpu.is_cpu());
  EXPECT_FALSE(gpu.is_auto());
  EXPECT_EQ(gpu.gpu_id(), 5U);
  EXPECT_TRUE(DevicePlacement{}.is_auto());
  EXPECT_NE(DevicePlacement{Gpu{1}}, DevicePlacement{Gpu{2}});
}

}  // namespace
}  // namespace memtrack
