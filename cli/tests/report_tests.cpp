// memtrack report: exact columns however long the trace, and a file whose numbers are fit's.
#include "cli_test_support.hpp"
#include "report.hpp"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>

namespace memtrack::cli {
namespace {

namespace fs = std::filesystem;
using report::Column;
using report::ColumnSeries;

struct Add {
  std::uint64_t event;
  std::uint64_t value;
};

RC_GTEST_PROP(ReportColumns, EveryColumnHoldsTheExactMinimumAndMaximumOfItsEvents, ()) {
  const auto columns = *rc::gen::inRange<std::size_t>(1, 40);
  const auto steps =
      *rc::gen::container<std::vector<std::tuple<std::uint64_t, std::uint64_t, bool>>>(
          rc::gen::tuple(rc::gen::inRange<std::uint64_t>(0, 6),     // gap to the next event
                         rc::gen::inRange<std::uint64_t>(0, 1000),  // value
                         rc::gen::arbitrary<bool>()));              // a second value, same event
  std::vector<Add> adds;
  std::uint64_t event = 0;
  for (const auto& [gap, value, twice] : steps) {
    event += gap + 1;
    adds.push_back({event, value});
    if (twice) adds.push_back({event, (value * 7 + 3) % 1000});
  }
  const std::uint64_t events = event + *rc::gen::inRange<std::uint64_t>(0, 5);
  RC_PRE(events > 0);
  ColumnSeries series(columns);
  for (const Add& add : adds)
    series.add(add.event, add.value, "alloc", add.value);
  const std::vector<Column> result = series.finish(events);

  RC_ASSERT(!result.empty());
  RC_ASSERT(result.size() <= columns);
  RC_ASSERT(result.front().first_event == 1U);
  RC_ASSERT(result.back().last_event == events);
  // the value after each event, and every value an event passed through
  std::vector<std::uint64_t> after(events + 1, 0);
  std::vector<std::vector<std::uint64_t>> at(events + 1);
  for (const Add& add : adds)
    at[add.event].push_back(add.value);
  for (std::uint64_t e = 1; e <= events; ++e)
    after[e] = at[e].empty() ? after[e - 1] : at[e].back();
  const std::uint64_t first_add = adds.empty() ? events + 1 : adds.front().event;
  for (std::size_t i = 0; i < result.size(); ++i) {
    const Column& c = result[i];
    if (i > 0) RC_ASSERT(c.first_event == result[i - 1].last_event + 1);
    std::uint64_t lo = UINT64_MAX;
    std::uint64_t hi = 0;
    for (std::uint64_t e = c.first_event; e <= c.last_event; ++e) {
      if (e < first_add) continue;  // nothing held yet
      for (const std::uint64_t v : at[e]) {
        lo = std::min(lo, v);
        hi = std::max(hi, v);
      }
      if (at[e].empty()) {
        lo = std::min(lo, after[e]);
        hi = std::max(hi, after[e]);
      }
    }
    if (c.last_event < first_add) {
      RC_ASSERT(!c.defined);
      continue;
    }
    RC_ASSERT(c.defined);
    RC_ASSERT(c.min == lo);
    RC_ASSERT(c.max == hi);
    RC_ASSERT(c.last == after[c.last_event]);
    // the event named for the maximum did reach it
    bool reached = false;
    for (const std::uint64_t v : at[c.max_event])
      reached = reached || v == c.max;
    RC_ASSERT(reached);
  }
}

TEST(ReportColumns, TenMillionEventsKeepTheirPeakInBoundedColumns) {
  ColumnSeries series(1200);
  std::mt19937_64 random(7);
  std::uint64_t peak = 0;
  std::uint64_t peak_event = 0;
  for (std::uint64_t e = 1; e <= 10'000'000; ++e) {
    const std::uint64_t v = random() % 1'000'000'000'000ULL;
    if (v > peak) {
      peak = v;
      peak_event = e;
    }
    series.add(e, v, "alloc", 1);
  }
  const auto columns = series.finish(10'000'000);
  EXPECT_LE(columns.size(), 1200U);
  EXPECT_GT(columns.size(), 600U);
  std::uint64_t seen = 0;
  std::uint64_t seen_event = 0;
  for (const Column& c : columns) {
    if (c.max > seen) {
      seen = c.max;
      seen_event = c.max_event;
    }
  }
  EXPECT_EQ(seen, peak);
  EXPECT_EQ(seen_event, peak_event);
}

TEST(ReportNumbers, GroupedDigits) {
  EXPECT_EQ(report::grouped(0), "0");
  EXPECT_EQ(report::grouped(999), "999");
  EXPECT_EQ(report::grouped(1000), "1,000");
  EXPECT_EQ(report::grouped(20737062500ULL), "20,737,062,500");
  EXPECT_EQ(report::grouped(UINT64_MAX), "18,446,744,073,709,551,615");
}

class ReportCommand : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("memtrack-report-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name) << text;
    return (dir_ / name).string();
  }
  static std::string slurp(const std::string& path) {
    std::ifstream file(path);
    std::stringstream text;
    text << file.rdbuf();
    return text.str();
  }
  fs::path dir_;
};

TEST_F(ReportCommand, PeaksRefusalsAndWhatWasAliveAtThePeak) {
  const std::string trace =
      write("small.trace",
            "memtrack-trace 1\nsource test\nmemory_fraction 1\ncpu_memory_limit 100\n"
            "gpu 0 total=1000 name=Tiny\nevents\n"
            "baseline gpu:0 50\n"
            "alloc gpu:0 600 addr=0x10 tag=weights t=5\n"
            "check gpu:0 allocated=650 reserved=800\n"
            "alloc gpu:0 500 addr=0x20 result=OutOfMemory\n"
            "alloc gpu:0 300 addr=0x30 tag=kv\n"
            "free gpu:0 addr=0x30\n"
            "alloc gpu:0 2000 result=OutOfMemory\n"
            "alloc cpu 40\n"
            "end 8\n");
  report::ReportOptions options;
  options.file = trace;
  auto built = report::build_report(options);
  ASSERT_TRUE(built) << built.error().to_string();
  ASSERT_EQ(built->devices.size(), 2U);
  const report::DeviceReport& gpu = built->devices[0];
  EXPECT_EQ(gpu.peak, 950U);
  EXPECT_EQ(gpu.peak_event, 5U);
  EXPECT_EQ(gpu.budget, 1000U);
  EXPECT_EQ(gpu.refused, 2U);
  ASSERT_EQ(gpu.refusals.size(), 2U);
  EXPECT_EQ(gpu.refusals[0].event, 4U);
  EXPECT_EQ(gpu.refusals[1].bytes, 2000U);
  ASSERT_EQ(gpu.largest_at_peak.size(), 3U);
  EXPECT_EQ(gpu.largest_at_peak[0].bytes, 600U);
  EXPECT_EQ(gpu.largest_at_peak[0].tag, "weights");
  EXPECT_EQ(gpu.largest_at_peak[0].time_ns, 5U);
  EXPECT_EQ(gpu.largest_at_peak[1].tag, "kv");
  EXPECT_EQ(gpu.largest_at_peak[2].tag, "baseline");
  EXPECT_EQ(gpu.live_at_peak, 3U);
  ASSERT_FALSE(gpu.recorded.empty());
  ASSERT_FALSE(gpu.reserved.empty());
  EXPECT_EQ(gpu.reserved.back().last, 800U);
  EXPECT_EQ(built->devices[1].peak, 40U);
  EXPECT_EQ(built->refused, 2U);
}

TEST_F(ReportCommand, WhatWasAliveAtThePeakKeepsItsNotesThroughThousandsOfFreesBeforeIt) {
  // 12,000 short-lived allocations before the peak (enough for the notes of the freed to be
  // swept out several times); every 1000th is kept alive, with its own tag and time. The peak's
  // list must name each allocation alive then by its own notes.
  std::string text =
      "memtrack-trace 1\nsource test\nmemory_fraction 1\ncpu_memory_limit 100\n"
      "gpu 0 total=1000000000 name=Big\nevents\n"
      "alloc gpu:0 100000 addr=0x1 tag=weights t=7\n";
  std::uint64_t events = 1;
  for (std::uint64_t i = 1; i <= 12000; ++i) {
    const std::string address = "addr=0x" + std::to_string(1000000 + i);
    if (i % 1000 == 0) {
      text += "alloc gpu:0 " + std::to_string(i) + " " + address + " tag=kept" + std::to_string(i) +
              " t=" + std::to_string(100 + i) + "\n";
      ++events;
    } else {
      text += "alloc gpu:0 50 " + address + " tag=churn\nfree gpu:0 " + address + "\n";
      events += 2;
    }
  }
  text += "alloc gpu:0 200000 addr=0x2 tag=peak t=99\nfree gpu:0 addr=0x2\nalloc gpu:0 10\n";
  events += 3;
  text += "end " + std::to_string(events) + "\n";
  report::ReportOptions options;
  options.file = write("churn.trace", text);
  auto built = report::build_report(options);
  ASSERT_TRUE(built) << built.error().to_string();
  const report::DeviceReport& gpu = built->devices[0];
  EXPECT_EQ(gpu.peak_event, events - 2);
  EXPECT_EQ(gpu.live_at_peak, 14U);
  ASSERT_EQ(gpu.largest_at_peak.size(), 14U);
  EXPECT_EQ(gpu.largest_at_peak[0].tag, "peak");
  EXPECT_EQ(gpu.largest_at_peak[0].time_ns, 99U);
  EXPECT_EQ(gpu.largest_at_peak[1].tag, "weights");
  EXPECT_EQ(gpu.largest_at_peak[1].time_ns, 7U);
  for (std::size_t i = 2; i < 14; ++i) {
    const std::uint64_t kept = (14 - i) * 1000;  // the largest first: 12000 down to 1000
    EXPECT_EQ(gpu.largest_at_peak[i].bytes, kept) << i;
    EXPECT_EQ(gpu.largest_at_peak[i].tag, "kept" + std::to_string(kept)) << i;
    EXPECT_EQ(gpu.largest_at_peak[i].time_ns, 100 + kept) << i;
  }
}

/// The sum of the refusal markers' counts, and the device rows' numbers, in a report.
struct Drawn {
  std::uint64_t markers{0};
  std::map<std::string, std::map<std::string, std::uint64_t>> rows;
  std::vector<std::uint64_t> peak_labels;
};

/// @return the text of every start tag whose class attribute is `cls` (no std::regex: gcc 12
/// warns inside <regex> under ASan)
std::vector<std::string> tags_of_class(const std::string& html, const std::string& cls) {
  std::vector<std::string> tags;
  const std::string needle = "class=\"" + cls + "\"";
  for (std::size_t at = html.find(needle); at != std::string::npos;
       at = html.find(needle, at + 1)) {
    const std::size_t start = html.rfind('<', at);
    const std::size_t end = html.find('>', at);
    tags.push_back(html.substr(start, end - start + 1));
  }
  return tags;
}

std::string attribute(const std::string& tag, const std::string& name) {
  const std::string needle = " " + name + "=\"";
  const std::size_t at = tag.find(needle);
  if (at == std::string::npos) return {};
  const std::size_t begin = at + needle.size();
  return tag.substr(begin, tag.find('"', begin) - begin);
}

Drawn drawn(const std::string& html) {
  Drawn d;
  for (const std::string& tag : tags_of_class(html, "refusal")) {
    d.markers += std::stoull(attribute(tag, "data-count"));
  }
  for (const std::string& tag : tags_of_class(html, "device-row")) {
    d.rows[attribute(tag, "data-device")] = {
        {"budget", std::stoull(attribute(tag, "data-budget"))},
        {"peak", std::stoull(attribute(tag, "data-peak"))},
        {"headroom", std::stoull(attribute(tag, "data-headroom"))},
        {"needed", std::stoull(attribute(tag, "data-needed"))}};
  }
  for (const std::string& tag : tags_of_class(html, "peak-label")) {
    d.peak_labels.push_back(std::stoull(attribute(tag, "data-bytes")));
  }
  return d;
}

// report --json: the summary of what the HTML shows, per device, figures worked out by hand from
// the trace: on gpu:0 (budget 1000) 50 + 600 + 300 = 950 at the peak with the 500 refused; had
// nothing been refused 50 + 600 + 500 + 300 = 1450 needed, 450 short; the CPU's 40 against 100,
// 60 of headroom.
TEST_F(ReportCommand, JsonSaysWhatTheHtmlShows) {
  const std::string trace =
      write("j.trace",
            "memtrack-trace 1\nsource test\nmemory_fraction 1\ncpu_memory_limit 100\n"
            "gpu 0 total=1000 name=Tiny\nevents\n"
            "baseline gpu:0 50\n"
            "alloc gpu:0 600 addr=0x10\n"
            "alloc gpu:0 500 addr=0x20 result=OutOfMemory\n"
            "alloc gpu:0 300 addr=0x30\n"
            "free gpu:0 addr=0x30\n"
            "alloc cpu 40\n"
            "end 6\n");
  const std::string html = (dir_ / "j.html").string();
  const CliRun run = memtrack({"report", trace, "-o", html, "--json"});
  ASSERT_EQ(run.code, 0) << run.out << run.err;
  const auto json = nlohmann::json::parse(run.out);
  EXPECT_EQ(json.at("output"), html);
  EXPECT_EQ(json.at("format"), "html");
  EXPECT_EQ(json.at("output_bytes").get<std::uint64_t>(), slurp(html).size());
  EXPECT_EQ(json.at("refused"), 1);
  EXPECT_TRUE(json.at("failure").is_null());
  ASSERT_EQ(json.at("devices").size(), 2U);
  const auto& gpu = json.at("devices").at(0);
  EXPECT_EQ(gpu.at("device"), "gpu:0");
  EXPECT_EQ(gpu.at("budget_bytes"), 1000);
  EXPECT_EQ(gpu.at("peak_bytes"), 950);
  EXPECT_EQ(gpu.at("needed_bytes"), 1450);
  EXPECT_TRUE(gpu.at("headroom_bytes").is_null());
  EXPECT_EQ(gpu.at("shortfall_bytes"), 450);
  EXPECT_EQ(gpu.at("final_bytes"), 650);
  EXPECT_EQ(gpu.at("refused"), 1);
  const auto& cpu = json.at("devices").at(1);
  EXPECT_EQ(cpu.at("device"), "cpu");
  EXPECT_EQ(cpu.at("budget_bytes"), 100);
  EXPECT_EQ(cpu.at("peak_bytes"), 40);
  EXPECT_EQ(cpu.at("headroom_bytes"), 60);
  EXPECT_TRUE(cpu.at("shortfall_bytes").is_null());
}

TEST_F(ReportCommand, ItsNumbersAreFitsForTheSameInput) {
  const std::string trace =
      std::string(MEMTRACK_SOURCE_DIR) + "/traces/recorded/serving-h100-sxm.trace.zst";
  const std::string profile = std::string(MEMTRACK_SOURCE_DIR) + "/cli/tests/data/gpu16.profile";
  for (const std::string& on : {std::string("rtx5090"), profile}) {
    const std::string html = (dir_ / "r.html").string();
    const CliRun made = memtrack({"report", trace, "--profile", on, "-o", html});
    ASSERT_EQ(made.code, 0) << made.err;
    const CliRun fit = memtrack({"fit", trace, "--profile", on, "--json"});
    const auto json = nlohmann::json::parse(fit.out);
    const Drawn d = drawn(slurp(html));
    EXPECT_EQ(d.markers, json["refused"].get<std::uint64_t>()) << on;
    for (const auto& device : json["devices"]) {
      const std::string name = device["device"];
      ASSERT_EQ(d.rows.count(name), 1U) << name;
      EXPECT_EQ(d.rows.at(name).at("budget"), device["budget_bytes"].get<std::uint64_t>());
      EXPECT_EQ(d.rows.at(name).at("peak"), device["peak_bytes"].get<std::uint64_t>());
      // fit's headroom is null when the device is short; the report's row then says 0.
      const std::uint64_t headroom =
          device["headroom_bytes"].is_null() ? 0 : device["headroom_bytes"].get<std::uint64_t>();
      EXPECT_EQ(d.rows.at(name).at("headroom"), headroom);
      EXPECT_EQ(d.rows.at(name).at("needed"), device["needed_bytes"].get<std::uint64_t>());
    }
    ASSERT_FALSE(d.peak_labels.empty());
    EXPECT_EQ(d.peak_labels.front(), json["devices"][0]["peak_bytes"].get<std::uint64_t>());
    const std::string text = slurp(html);
    EXPECT_EQ(text.find("http://"), text.find("http://www.w3.org/2000/svg"))  // nothing fetched
        << "only the SVG namespace may name a URL";
    EXPECT_EQ(text.find("https://"), std::string::npos);
  }
}

TEST_F(ReportCommand, SvgFormatAndBadInput) {
  const std::string trace =
      std::string(MEMTRACK_SOURCE_DIR) + "/traces/recorded/serving-h100-sxm.trace.zst";
  const std::string svg = (dir_ / "r.svg").string();
  const CliRun made = memtrack({"report", trace, "-o", svg});
  ASSERT_EQ(made.code, 0) << made.err;
  const std::string text = slurp(svg);
  EXPECT_TRUE(text.starts_with("<?xml")) << text.substr(0, 40);
  EXPECT_EQ(text.find("<script"), std::string::npos);
  EXPECT_NE(text.find("class=\"peak-label\""), std::string::npos);

  const std::string bad = write("bad.trace", "memtrack-trace 1\nevents\nalloc gpu:0 x\nend 1\n");
  const std::string out = (dir_ / "bad.html").string();
  const CliRun refused = memtrack({"report", bad, "--profile", "rtx5090", "-o", out});
  EXPECT_EQ(refused.code, exit_bad_input);
  EXPECT_NE(refused.err.find("bad.trace:3:"), std::string::npos) << refused.err;
  EXPECT_FALSE(fs::exists(out));  // nothing half-written
  EXPECT_EQ(memtrack({"report", trace, "-o", out, "--format", "pdf"}).code, exit_bad_input);
}

}  // namespace
}  // namespace memtrack::cli
