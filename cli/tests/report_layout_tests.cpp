// memtrack report's layout: the y axis fits the data, idle devices take one line, labels never
// overlap, times read in units. Figures are computed by hand; positions are read from the SVG.
#include "cli_test_support.hpp"
#include "report.hpp"

#include <memtrack/units.hpp>

#include <gtest/gtest.h>

#include <unistd.h>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace memtrack::cli {
namespace {

namespace fs = std::filesystem;
using namespace memtrack::literals;

/// One SVG or HTML element: its attributes and, for `<text>`, its text.
struct Element {
  std::map<std::string, std::string> attributes;
  std::string text;
  [[nodiscard]] double number(const std::string& name) const {
    return std::stod(attributes.at(name));
  }
};

/// Every element `<NAME ... class="CLS" ...>` in `markup` (no std::regex: gcc 12 under ASan).
std::vector<Element> elements(const std::string& markup, const std::string& name,
                              const std::string& cls) {
  std::vector<Element> found;
  const std::string open = "<" + name + " ";
  for (std::size_t at = markup.find(open); at != std::string::npos;
       at = markup.find(open, at + 1)) {
    const std::size_t end = markup.find('>', at);
    const std::string tag = markup.substr(at, end - at);
    Element element;
    for (std::size_t eq = tag.find("=\""); eq != std::string::npos; eq = tag.find("=\"", eq + 1)) {
      const std::size_t key = tag.rfind(' ', eq) + 1;
      const std::size_t close = tag.find('"', eq + 2);
      element.attributes[tag.substr(key, eq - key)] = tag.substr(eq + 2, close - eq - 2);
      eq = close;
    }
    const auto cls_of = element.attributes.find("class");
    if (cls_of == element.attributes.end() || cls_of->second != cls) continue;
    if (name == "text") {
      // the text up to </text>, without nested tags
      const std::string inner = markup.substr(end + 1, markup.find("</text>", end) - end - 1);
      bool in_tag = false;
      for (const char c : inner) {
        if (c == '<') in_tag = true;
        if (!in_tag) element.text += c;
        if (c == '>') in_tag = false;
      }
    }
    found.push_back(std::move(element));
  }
  return found;
}

/// The test's own width of 11 px sans-serif text: no glyph of a label (digits, letters, blank,
/// comma, parentheses) is wider than 0.6 em on average.
double width_of(const std::string& text) {
  return static_cast<double>(std::count_if(
             text.begin(), text.end(),
             [](char c) { return (static_cast<unsigned char>(c) & 0xC0U) != 0x80U; })) *
         6.6;
}

struct Span {
  double x0;
  double x1;
  double y0;
  double y1;
};

Span span_of(const Element& text) {
  const double x = text.number("x");
  const double width = width_of(text.text);
  const std::string anchor =
      text.attributes.count("text-anchor") ? text.attributes.at("text-anchor") : "start";
  const double x0 = anchor == "middle" ? x - width / 2 : anchor == "end" ? x - width : x;
  const double baseline = text.number("y");
  return {x0, x0 + width, baseline - 10, baseline + 3};
}

bool overlap(const Span& a, const Span& b) {
  return a.x0 < b.x1 && b.x0 < a.x1 && a.y0 < b.y1 && b.y0 < a.y1;
}

/// The markup of the chart of `device` (its `<svg class="chart" ...>` to `</svg>`).
std::string chart_of(const std::string& html, const std::string& device) {
  const std::size_t at = html.find("<svg class=\"chart\" id=\"chart-");
  for (std::size_t from = at; from != std::string::npos;
       from = html.find("<svg class=\"chart\" id=\"chart-", from + 1)) {
    const std::size_t end = html.find("</svg>", from);
    const std::string svg = html.substr(from, end - from);
    if (svg.find("data-device=\"" + device + "\"") != std::string::npos) return svg;
  }
  return {};
}

void expect_no_tick_overlaps(const std::string& svg) {
  const auto ticks = elements(svg, "text", "x-tick");
  ASSERT_GE(ticks.size(), 2U) << svg.substr(0, 300);
  std::vector<Span> spans;
  for (const Element& tick : ticks)
    spans.push_back(span_of(tick));
  std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) { return a.x0 < b.x0; });
  for (std::size_t i = 0; i + 1 < spans.size(); ++i) {
    EXPECT_LE(spans[i].x1, spans[i + 1].x0) << "tick labels " << i << " and " << i + 1;
  }
  EXPECT_GE(spans.front().x0, 0);
  EXPECT_LE(spans.back().x1, 96 + 1200 + 24);  // the picture's width
  // the labels inside the plot (peak, budget, total) overlap neither each other
  std::vector<Element> inside = elements(svg, "text", "peak-label");
  for (const std::string cls : {"line-label budget-line-label", "line-label total-line-label"}) {
    for (Element& e : elements(svg, "text", cls))
      inside.push_back(std::move(e));
  }
  for (std::size_t i = 0; i < inside.size(); ++i) {
    for (std::size_t j = i + 1; j < inside.size(); ++j) {
      EXPECT_FALSE(overlap(span_of(inside[i]), span_of(inside[j])))
          << "'" << inside[i].text << "' and '" << inside[j].text << "'";
    }
  }
}

class ReportLayout : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("memtrack-layout-" + std::to_string(::getpid()) + "-" +
                                        std::to_string(std::random_device()()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name) << text;
    return (dir_ / name).string();
  }
  std::string report(const std::vector<std::string>& args, const std::string& name = "r.html") {
    const std::string out = (dir_ / name).string();
    std::vector<std::string> all{"report"};
    all.insert(all.end(), args.begin(), args.end());
    all.insert(all.end(), {"-o", out});
    const CliRun made = memtrack(all);
    EXPECT_EQ(made.code, 0) << made.err;
    std::ifstream file(out);
    std::stringstream text;
    text << file.rdbuf();
    return text.str();
  }
  /// 3 GiB at the peak on a 32 GiB card: 1 GiB three times, at 0, 30 and 60 s; freed at 90 s.
  std::string three_gib_run() {
    return write("three.trace",
                 "memtrack-trace 1\nsource test\nmemory_fraction 1\ncpu_memory_limit 1000\n"
                 "gpu 0 total=34359738368\nevents\n"
                 "alloc gpu:0 1073741824 addr=0x1 t=5000000000\n"
                 "alloc gpu:0 1073741824 addr=0x2 t=35000000000\n"
                 "alloc gpu:0 1073741824 addr=0x3 t=65000000000\n"
                 "free gpu:0 addr=0x3 t=95000000000\n"
                 "end 4\n");
  }
  fs::path dir_;
};

TEST(ReportAxis, TheTopIsARoundStepAboveTheData) {
  // 3 GiB + 5 % = 3.15 GiB: 500 MiB steps need 7, 1 GiB steps 4
  report::ByteAxis axis = report::byte_axis(3_GiB);
  EXPECT_EQ(axis.max, 4_GiB);
  EXPECT_EQ(axis.step, 1_GiB);
  EXPECT_EQ(axis.unit_name, "GiB");
  EXPECT_EQ(axis.ticks, 4U);
  // 950 + 47 = 997: 200-byte steps, five of them
  axis = report::byte_axis(950);
  EXPECT_EQ(axis.max, 1000U);
  EXPECT_EQ(axis.step, 200U);
  EXPECT_EQ(axis.unit_name, "B");
  // 6,629,508,096 (6.17 GiB) + 5 %: 2 GiB steps, to 8 GiB
  axis = report::byte_axis(6'629'508'096);
  EXPECT_EQ(axis.max, 8_GiB);
  EXPECT_EQ(axis.step, 2_GiB);
  // 700 MiB + 35 MiB: 200 MiB steps, to 800 MiB
  axis = report::byte_axis(700_MiB);
  EXPECT_EQ(axis.max, 800_MiB);
  EXPECT_EQ(axis.unit_name, "MiB");
  EXPECT_EQ(report::byte_axis(0).max, 1U);
  // at 2^64 - 1 no round top fits in 64 bits: the maximum itself
  axis = report::byte_axis(UINT64_MAX);
  EXPECT_EQ(axis.max, UINT64_MAX);
  EXPECT_LE(axis.step * axis.ticks, UINT64_MAX);
}

TEST(ReportAxis, DurationsReadInUnits) {
  EXPECT_EQ(report::duration_label(0, 1'000'000, 200'000'000), "0 ms");
  EXPECT_EQ(report::duration_label(1'500'000'000, 1'000'000'000, 500'000'000), "1.5 s");
  EXPECT_EQ(report::duration_label(250'000'000, 1'000'000, 50'000'000), "250 ms");
  EXPECT_EQ(report::duration_label(120'000'000'000, 60'000'000'000, 30'000'000'000), "2 min");
  EXPECT_EQ(report::duration_label(90'000'000'000, 60'000'000'000, 30'000'000'000), "1.5 min");
  EXPECT_EQ(report::duration_label(1'250'000, 1'000'000, 250'000), "1.25 ms");
  EXPECT_EQ(report::duration_label(3'000, 1'000, 1'000), "3 \u00b5s");
}

TEST_F(ReportLayout, AThreeGibRunOnA32GibCardFillsTheChart) {
  const std::string html = report({three_gib_run()});
  const std::string svg = chart_of(html, "gpu:0");
  ASSERT_FALSE(svg.empty());
  const auto charts = elements(html, "svg", "chart");
  ASSERT_FALSE(charts.empty());
  const std::uint64_t y_max = std::stoull(charts.front().attributes.at("data-y-max"));
  EXPECT_GE(y_max, 3_GiB);
  EXPECT_LE(y_max, 2 * 3_GiB) << "a 3 GiB run is drawn on a scale of " << y_max;
  // the highest tick is the top of the scale, and every tick is within the data's range
  std::uint64_t highest_tick = 0;
  for (const Element& tick : elements(svg, "text", "y-tick")) {
    highest_tick =
        std::max<std::uint64_t>(highest_tick, std::stoull(tick.attributes.at("data-bytes")));
  }
  EXPECT_EQ(highest_tick, 4_GiB);
  // the budget (32 GiB) is far above: named above the plot, not drawn as a line at its top
  EXPECT_EQ(svg.find("<line class=\"budget-line\""), std::string::npos);
  const auto marker = elements(svg, "tspan", "budget-line-marker");
  ASSERT_EQ(marker.size(), 1U);
  EXPECT_EQ(marker[0].attributes.at("data-bytes"), "34359738368");
  EXPECT_NE(svg.find("above the scale"), std::string::npos);
  // the peak's marker stands at 3/4 of the plot's height (320 px from y = 34)
  const auto peak = elements(svg, "circle", "peak-marker");
  ASSERT_EQ(peak.size(), 1U);
  EXPECT_DOUBLE_EQ(peak[0].number("cy"), 34 + 320 - 320.0 * 3 / 4);
  expect_no_tick_overlaps(svg);
}

TEST_F(ReportLayout, NeededBudgetAndHeadroomOrShortfallLeadThePage) {
  std::string html = report({three_gib_run()});
  const std::size_t needs = html.find("<ul id=\"needs\">");
  ASSERT_NE(needs, std::string::npos);
  EXPECT_LT(needs, html.find("<svg"));
  // 32 - 3 = 29 GiB of headroom: 29/32 = 90.625 %, rounded half up
  EXPECT_NE(html.find("gpu:0 needs 3.00 GiB (3,221,225,472 B), budget 32.00 GiB "
                      "(34,359,738,368 B): headroom 29.00 GiB (31,138,512,896 B, 90.63 %)"),
            std::string::npos)
      << html.substr(needs, 400);
  html = report({three_gib_run(), "--gpu-budget", "0:2GiB"});
  EXPECT_NE(html.find("gpu:0 needs 3.00 GiB (3,221,225,472 B), budget 2.00 GiB "
                      "(2,147,483,648 B): short by 1.00 GiB (1,073,741,824 B)"),
            std::string::npos);
}

TEST_F(ReportLayout, ABudgetCloseAboveTheDataIsALineAndNoLabelOverlaps) {
  // a budget of 3.5 GiB: within a quarter above the 3 GiB peak, so the axis takes it in
  const std::string html = report({three_gib_run(), "--gpu-budget", "0:3584MiB"});
  const std::string svg = chart_of(html, "gpu:0");
  const auto lines = elements(svg, "line", "budget-line");
  ASSERT_EQ(lines.size(), 1U);
  EXPECT_EQ(lines[0].attributes.at("data-bytes"), std::to_string(3584_MiB));
  EXPECT_GE(lines[0].number("y1"), 34);  // inside the plot
  EXPECT_LE(lines[0].number("y1"), 34 + 320);
  expect_no_tick_overlaps(svg);
}

TEST_F(ReportLayout, TimesAreRelativeToTheFirstTimedEventInReadableUnits) {
  const std::string html = report({three_gib_run()});
  const std::string svg = chart_of(html, "gpu:0");
  const auto ticks = elements(svg, "text", "x-tick");
  ASSERT_FALSE(ticks.empty());
  // 5 s to 95 s: a 90 s span in seconds from 0
  EXPECT_EQ(ticks.front().text, "0 s");
  for (const Element& tick : ticks)
    EXPECT_TRUE(tick.text.ends_with(" s")) << tick.text;
  EXPECT_NE(svg.find("time since the first timed event (s)"), std::string::npos);
}

TEST_F(ReportLayout, ClusteredTimesAndLongEventNumbersKeepTheirLabelsApart) {
  // a thousand events within a microsecond, then one ten seconds later: every round time but
  // the first lands on the last column
  std::string text =
      "memtrack-trace 1\nsource test\nmemory_fraction 1\ncpu_memory_limit 1000\n"
      "gpu 0 total=1000000\nevents\n";
  for (int i = 0; i < 1000; ++i)
    text += "alloc gpu:0 10 t=" + std::to_string(i) + "\n";
  text += "alloc gpu:0 10 t=10000000000\nend 1001\n";
  std::string html = report({write("clustered.trace", text)});
  expect_no_tick_overlaps(chart_of(html, "gpu:0"));
  // no times: event numbers of up to nine digits' worth, on a narrow column count
  text =
      "memtrack-trace 1\nsource test\nmemory_fraction 1\ncpu_memory_limit 1000\n"
      "gpu 0 total=1000000\nevents\n";
  for (int i = 0; i < 3000; ++i)
    text += "alloc gpu:0 1\n";
  text += "end 3000\n";
  html = report({write("events.trace", text), "--columns", "10"});
  expect_no_tick_overlaps(chart_of(html, "gpu:0"));
}

TEST_F(ReportLayout, ADeviceWithNoEventsTakesOneLine) {
  const std::string trace =
      write("one-of-two.trace",
            "memtrack-trace 1\nsource test\nmemory_fraction 1\ncpu_memory_limit 1000\n"
            "gpu 0 total=4096 name=Idle\ngpu 1 total=4096\nevents\n"
            "alloc gpu:1 1024 addr=0x1\nfree gpu:1 addr=0x1\nend 2\n");
  const std::string html = report({trace});
  const std::string open = "<section class=\"device device-idle\" data-device=\"gpu:0\">";
  const std::size_t at = html.find(open);
  ASSERT_NE(at, std::string::npos);
  const std::string section =
      html.substr(at + open.size(), html.find("</section>", at) - at - open.size());
  EXPECT_EQ(section,
            "<p class=\"idle-device\" data-device=\"gpu:0\"><b>gpu:0 Idle</b>: nothing allocated "
            "(budget 4,096 B (0.00 GiB))</p>");
  EXPECT_TRUE(chart_of(html, "gpu:0").empty());
  EXPECT_FALSE(chart_of(html, "gpu:1").empty());
  // the SVG: a 26 px title, one 22 px line each for gpu:0 and the CPU, one chart of
  // 22 + 34 + 320 + 44 px for gpu:1
  const std::string svg = report({trace}, "r.svg");
  EXPECT_NE(svg.find("height=\"490.0\""), std::string::npos) << svg.substr(0, 200);
  EXPECT_EQ(elements(svg, "text", "idle-device").size(), 2U);
}

TEST_F(ReportLayout, TheCompareSectionShowsBothRecordings) {
  const std::string other =
      write("other.trace",
            "memtrack-trace 1\nsource test\nmemory_fraction 1\ncpu_memory_limit 1000\n"
            "gpu 0 total=34359738368\nevents\n"
            "alloc gpu:0 1073741824 addr=0x1\nalloc gpu:0 2048 addr=0x2\nend 2\n");
  const std::string html = report({three_gib_run(), "--compare", other});
  const auto rows = elements(html, "tr", "compare-row");
  ASSERT_EQ(rows.size(), 2U);  // gpu:0 and the CPU
  EXPECT_EQ(rows[0].attributes.at("data-device"), "gpu:0");
  EXPECT_EQ(rows[0].attributes.at("data-needed-a"), std::to_string(3_GiB));
  EXPECT_EQ(rows[0].attributes.at("data-needed-b"), std::to_string(1_GiB + 2048));
  // 1 GiB: 3 in A, 1 in B (-2 GiB); 2048: 0 in A, 1 in B (+2048)
  EXPECT_NE(html.find("<td class=\"num\">-2,147,483,648</td>"), std::string::npos);
  EXPECT_NE(html.find("<td class=\"num\">+2,048</td>"), std::string::npos);
  const std::string svg_out = (dir_ / "r.svg").string();
  EXPECT_EQ(memtrack({"report", three_gib_run(), "--compare", other, "-o", svg_out}).code,
            exit_bad_input);
}

}  // namespace
}  // namespace memtrack::cli
