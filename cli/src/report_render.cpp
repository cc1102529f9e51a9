// memtrack report's output: inline SVG charts, the tables, and a small script for hover and
// click. Nothing is fetched: fonts are the browser's own, data is inline.
#include "report.hpp"

#include <nlohmann/json.hpp>

#include <memtrack/units.hpp>

#include <algorithm>
#include <array>
#include <cstdio>
#include <optional>

namespace memtrack::cli::report {
namespace {

constexpr double plot_width = 1200;
constexpr double plot_height = 320;
constexpr double left = 96;
constexpr double right = 24;
constexpr double top = 34;
constexpr double bottom = 44;

std::string esc(std::string_view text) {
  std::string out;
  for (const char c : text) {
    if (c == '&') {
      out += "&amp;";
    } else if (c == '<') {
      out += "&lt;";
    } else if (c == '>') {
      out += "&gt;";
    } else if (c == '"') {
      out += "&quot;";
    } else {
      out += c;
    }
  }
  return out;
}

std::string num(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f", value);
  return text;
}

std::string hex(std::uint64_t value) {
  char text[24];
  std::snprintf(text, sizeof text, "0x%llx", static_cast<unsigned long long>(value));
  return text;
}

std::string bytes_label(std::uint64_t bytes) {
  return grouped(bytes) + " B (" + format_gib(bytes) + " GiB)";
}

/// Text of the charts: 11 px sans-serif. No glyph of it is wider than this on average over a
/// label (digits are 0.56 em, 6.2 px), so boxes computed with it contain the drawn text.
constexpr double char_width = 6.6;
constexpr double line_height = 13;

/// A label's box: x from `x0` to `x1`, y from `y0` (top) to `y1`.
struct Box {
  double x0{0};
  double x1{0};
  double y0{0};
  double y1{0};
  [[nodiscard]] bool overlaps(const Box& other, double gap = 0) const {
    return x0 < other.x1 + gap && other.x0 < x1 + gap && y0 < other.y1 && other.y0 < y1;
  }
};

double text_width(std::string_view text) {
  // UTF-8 continuation bytes take no width of their own
  const auto glyphs = std::count_if(text.begin(), text.end(), [](char c) {
    return (static_cast<unsigned char>(c) & 0xC0U) != 0x80U;
  });
  return static_cast<double>(glyphs) * char_width;
}

/// The box of a text drawn at (x, baseline) with `anchor` (start, middle or end).
Box text_box(double x, double baseline, std::string_view anchor, std::string_view text) {
  const double width = text_width(text);
  const double x0 = anchor == "start" ? x : anchor == "end" ? x - width : x - width / 2;
  return {x0, x0 + width, baseline - 10, baseline + 3};
}

/// Pixel geometry of one chart: bytes and events to coordinates (drawing only; every number
/// shown is the exact integer).
struct Scale {
  ByteAxis axis;
  std::size_t columns{1};
  double y(std::uint64_t bytes) const {
    return top + plot_height -
           static_cast<double>(bytes) / static_cast<double>(axis.max) * plot_height;
  }
  double x(std::size_t column) const {
    return left + static_cast<double>(column) * plot_width / static_cast<double>(columns);
  }
  [[nodiscard]] bool shows(std::uint64_t bytes) const { return bytes <= axis.max; }
};

/// The highest value a chart's series reach (what the y axis fits).
std::uint64_t highest_drawn(const DeviceReport& device) {
  std::uint64_t highest = device.peak;
  for (const auto* series : {&device.allocated, &device.recorded, &device.reserved}) {
    for (const Column& c : *series)
      highest = std::max(highest, c.max);
  }
  return highest;
}

/// Lines close above the data (within a quarter) are worth the room: the axis takes them in.
/// Further up they stay as markers above the plot, so a 3 GiB run on a 32 GiB card fills it.
Scale scale_for(const DeviceReport& device, bool draw_budget) {
  std::uint64_t highest = highest_drawn(device);
  const std::uint64_t near = highest + highest / 4;
  for (const std::uint64_t line : {device.budget, device.total}) {
    if (draw_budget && (line <= near || highest == 0)) highest = std::max(highest, line);
  }
  Scale scale;
  scale.axis = byte_axis(highest);
  scale.columns = std::max<std::size_t>(device.allocated.size(), 1);
  return scale;
}

/// The band between each column's minimum and maximum, as a closed path; and the maximum's edge.
std::pair<std::string, std::string> band(const std::vector<Column>& columns, const Scale& s) {
  std::string upper;
  std::string outline;
  std::size_t first = 0;  // nothing is drawn before the series' first value
  while (first < columns.size() && !columns[first].defined)
    ++first;
  for (std::size_t i = first; i < columns.size(); ++i) {
    const std::string y = num(s.y(columns[i].max));
    upper += i == first ? 'M' : 'L';
    upper += num(s.x(i)) + " " + y + " L" + num(s.x(i + 1)) + " " + y + " ";
  }
  if (upper.empty()) return {"", ""};
  outline = upper;
  std::string lower;
  for (std::size_t i = columns.size(); i-- > first;) {
    const std::string y = num(s.y(columns[i].min));
    lower += "L" + num(s.x(i + 1)) + " " + y + " L" + num(s.x(i)) + " " + y + " ";
  }
  return {upper + lower + "Z", outline};
}

/// Labels already drawn in a chart, so that no two overlap.
struct Layout {
  std::vector<Box> taken;
  [[nodiscard]] bool free(const Box& box) const {
    return std::none_of(taken.begin(), taken.end(),
                        [&box](const Box& other) { return box.overlaps(other, 2); });
  }
};

std::string tick_label(std::uint64_t bytes, const ByteAxis& axis) {
  return bytes == 0 ? std::string("0") : std::to_string(bytes / axis.unit) + " " + axis.unit_name;
}

/// A horizontal line across the plot with its label at the right end: above the line, or
/// below it, or further off when another label is there.
std::string horizontal(const Scale& s, std::uint64_t bytes, const std::string& cls,
                       const std::string& label, Layout& layout) {
  const double line_y = s.y(bytes);
  const std::string y = num(line_y);
  std::string svg = "<line class=\"" + cls + "\" x1=\"" + num(left) + "\" x2=\"" +
                    num(left + plot_width) + "\" y1=\"" + y + "\" y2=\"" + y + "\" data-bytes=\"" +
                    std::to_string(bytes) + "\"/>";
  const double x = left + plot_width - 4;
  double baseline = line_y - 4;
  for (const double offset : {-4.0, 13.0, -4.0 - line_height, 13.0 + line_height,
                              -4.0 - 2 * line_height, 13.0 + 2 * line_height}) {
    baseline = std::clamp(line_y + offset, top + 11, top + plot_height - 4);
    if (layout.free(text_box(x, baseline, "end", label))) break;
  }
  layout.taken.push_back(text_box(x, baseline, "end", label));
  return svg + "<text class=\"line-label " + cls + "-label\" x=\"" + num(x) + "\" y=\"" +
         num(baseline) + "\" text-anchor=\"end\">" + esc(label) + "</text>";
}

/// A label under the plot at `x` (its middle), kept inside the picture.
struct Tick {
  double x{0};
  std::string text;
};

/// The ticks that fit: in order, each dropped when its label would touch one kept before.
std::string x_ticks(const std::vector<Tick>& ticks) {
  const double baseline = top + plot_height + 16;
  const double picture = left + plot_width + right;
  std::vector<Box> kept;
  std::string svg;
  for (const Tick& tick : ticks) {
    const double width = text_width(tick.text);
    const double middle = std::clamp(tick.x, width / 2 + 2, picture - width / 2 - 2);
    const Box box = text_box(middle, baseline, "middle", tick.text);
    if (std::any_of(kept.begin(), kept.end(),
                    [&box](const Box& other) { return box.overlaps(other, 8); })) {
      continue;
    }
    kept.push_back(box);
    svg += "<line x1=\"" + num(tick.x) + "\" x2=\"" + num(tick.x) + "\" y1=\"" +
           num(top + plot_height) + "\" y2=\"" + num(top + plot_height + 4) +
           "\" stroke=\"#999\"/><text class=\"x-tick\" x=\"" + num(middle) + "\" y=\"" +
           num(baseline) + "\" text-anchor=\"middle\">" + esc(tick.text) + "</text>";
  }
  return svg;
}

/// Nanoseconds in each readable unit, and its name.
constexpr std::array<std::pair<std::uint64_t, const char*>, 6> time_units{{
    {1, "ns"},
    {1'000, "\u00b5s"},
    {1'000'000, "ms"},
    {1'000'000'000, "s"},
    {60'000'000'000, "min"},
    {3'600'000'000'000, "h"},
}};

/// Steps between time ticks, in nanoseconds: 1, 2, 5 x 10^k up to 10 s, then what clocks use.
std::vector<std::uint64_t> time_steps() {
  std::vector<std::uint64_t> steps;
  for (std::uint64_t decade = 1; decade <= 1'000'000'000; decade *= 10) {
    for (const std::uint64_t m : {1ULL, 2ULL, 5ULL})
      steps.push_back(m * decade);
  }
  for (const std::uint64_t seconds :
       {10ULL, 15ULL, 30ULL, 60ULL, 120ULL, 300ULL, 600ULL, 900ULL, 1800ULL, 3600ULL, 7200ULL,
        10800ULL, 21600ULL, 43200ULL, 86400ULL, 172800ULL, 432000ULL, 864000ULL}) {
    steps.push_back(seconds * 1'000'000'000);
  }
  return steps;
}

/// Ticks at round times since the recording's first timed event, placed at the first column
/// that reaches each (the x axis counts events; time labels it where the trace has times).
std::vector<Tick> time_ticks(const Report& report, const Scale& s, std::string& unit_name) {
  std::optional<std::uint64_t> start;
  std::uint64_t end = 0;
  for (const Column& c : report.times) {
    if (!c.defined) continue;
    start = std::min(start.value_or(c.min), c.min);
    end = std::max(end, c.max);
  }
  if (!start || end <= *start) return {};
  const std::uint64_t span = end - *start;
  std::uint64_t step = 0;
  for (const std::uint64_t candidate : time_steps()) {
    if (span / candidate <= 8) {
      step = candidate;
      break;
    }
  }
  if (step == 0) return {};  // beyond 10 days in 8 steps: left to the event numbers
  std::uint64_t unit = 1;
  // the largest unit the span reaches (minutes and hours from two of them: 90 s, not 1.5 min)
  for (const auto& [ns, name] : time_units) {
    if (span >= (ns >= 60'000'000'000 ? 2 * ns : ns)) {
      unit = ns;
      unit_name = name;
    }
  }
  std::vector<Tick> ticks;
  std::size_t column = 0;
  for (std::uint64_t t = 0; t <= span; t += step) {
    while (column < report.times.size() &&
           (!report.times[column].defined || report.times[column].max - *start < t)) {
      ++column;
    }
    if (column == report.times.size()) break;
    ticks.push_back({s.x(column), duration_label(t, unit, step)});
  }
  return ticks;
}

std::vector<Tick> event_ticks(const Report& report, const DeviceReport& device, const Scale& s) {
  std::vector<Tick> ticks;
  for (std::size_t i = 0; i <= 8; ++i) {
    const std::size_t column = s.columns * i / 8;
    const std::uint64_t event =
        column < device.allocated.size() ? device.allocated[column].first_event : report.events;
    ticks.push_back({s.x(column), grouped(event)});
  }
  return ticks;
}

// The chart's frame: the svg element, the plot area and the y axis in round steps of the
// largest unit that keeps them whole.
std::string chart_frame(const DeviceReport& device, std::size_t index, const Scale& s) {
  const double width = left + plot_width + right;
  const double height = top + plot_height + bottom;
  std::string svg = "<svg class=\"chart\" id=\"chart-" + std::to_string(index) +
                    "\" data-device=\"" + device.device.to_string() + "\" data-y-max=\"" +
                    std::to_string(s.axis.max) +
                    "\" xmlns=\"http://www.w3.org/2000/svg\" width=\"" + num(width) +
                    "\" height=\"" + num(height) + "\" viewBox=\"0 0 " + num(width) + " " +
                    num(height) + "\" font-family=\"sans-serif\" font-size=\"11\">";
  svg += "<rect class=\"plot\" x=\"" + num(left) + "\" y=\"" + num(top) + "\" width=\"" +
         num(plot_width) + "\" height=\"" + num(plot_height) +
         "\" fill=\"#fbfbfd\" stroke=\"#ccc\"/>";
  for (std::uint64_t i = 0; i <= s.axis.ticks; ++i) {
    const std::uint64_t bytes = s.axis.step * i;
    if (bytes > s.axis.max || (i != 0 && bytes / i != s.axis.step)) break;
    const std::string y = num(s.y(bytes));
    svg += "<line x1=\"" + num(left - 4) + "\" x2=\"" + num(left + plot_width) + "\" y1=\"" + y +
           "\" y2=\"" + y + "\" stroke=\"#eee\"/><text class=\"y-tick\" data-bytes=\"" +
           std::to_string(bytes) + "\" x=\"" + num(left - 6) + "\" y=\"" + num(s.y(bytes) + 4) +
           "\" text-anchor=\"end\">" + tick_label(bytes, s.axis) + "</text>";
  }
  return svg;
}

// The x axis: time since the first timed event where the recording has times, else events.
std::string x_axis(const Report& report, const DeviceReport& device, const Scale& s) {
  std::string unit_name;
  std::vector<Tick> ticks = time_ticks(report, s, unit_name);
  const bool timed = !ticks.empty();
  if (!timed) ticks = event_ticks(report, device, s);
  std::string svg = x_ticks(ticks);
  const std::string axis_title = timed ? "time since the first timed event (" + unit_name +
                                             "); events 1 to " + grouped(report.events) + ", " +
                                             grouped(report.events_per_column) + " per column"
                                       : "event (" + grouped(report.events) + " events, " +
                                             grouped(report.events_per_column) + " per column)";
  svg += "<text class=\"x-title\" x=\"" + num(left + plot_width / 2) + "\" y=\"" +
         num(top + plot_height + 34) + "\" text-anchor=\"middle\" fill=\"#555\">" +
         esc(axis_title) + "</text>";
  return svg;
}

// The series: allocated as a band, the recording's own totals and reserved bytes dashed.
std::string series_paths(const DeviceReport& device, const Scale& s) {
  std::string svg;
  if (!device.allocated.empty()) {
    const auto [area, outline] = band(device.allocated, s);
    svg += "<path class=\"series series-allocated\" d=\"" + area +
           "\" fill=\"#1f77b4\" fill-opacity=\"0.35\" stroke=\"none\"/>";
    svg += "<path class=\"series-edge\" d=\"" + outline +
           "\" fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"1.2\"/>";
  }
  for (const auto& [series, cls, colour] :
       {std::tuple{&device.recorded, "series-recorded", "#2ca02c"},
        std::tuple{&device.reserved, "series-reserved", "#9467bd"}}) {
    if (series->empty()) continue;
    svg += "<path class=\"series " + std::string(cls) + "\" d=\"" + band(*series, s).second +
           "\" fill=\"none\" stroke=\"" + colour +
           "\" stroke-dasharray=\"4 3\" stroke-width=\"1.2\"/>";
  }
  return svg;
}

// The peak, marked and labelled at the first column that reaches it.
std::string peak_label(const DeviceReport& device, const Scale& s, Layout& layout) {
  for (std::size_t i = 0; i < device.allocated.size(); ++i) {
    if (device.allocated[i].max != device.peak || device.peak == 0) continue;
    const double x = (s.x(i) + s.x(i + 1)) / 2;
    const double y = s.y(device.peak);
    const bool right_half = x > left + plot_width * 0.6;
    const std::string text =
        "peak " + bytes_label(device.peak) + " at event " + grouped(device.peak_event);
    const double label_x = right_half ? x - 8 : x + 8;
    const double baseline = std::max(y - 8, top + 12);
    layout.taken.push_back(text_box(label_x, baseline, right_half ? "end" : "start", text));
    return "<circle class=\"peak-marker\" cx=\"" + num(x) + "\" cy=\"" + num(y) +
           "\" r=\"4\" fill=\"#ff7f0e\" stroke=\"#fff\"/>" +
           "<text class=\"peak-label\" data-device=\"" + device.device.to_string() +
           "\" data-bytes=\"" + std::to_string(device.peak) + "\" data-event=\"" +
           std::to_string(device.peak_event) + "\" x=\"" + num(label_x) + "\" y=\"" +
           num(baseline) + "\" text-anchor=\"" + (right_half ? "end" : "start") +
           "\" font-weight=\"bold\" fill=\"#c45a00\">" + esc(text) + "</text>";
  }
  return {};
}

// The budget and the device's total: lines where the axis reaches them, else named above.
std::string budget_lines(const DeviceReport& device, const Scale& s, Layout& layout) {
  std::string svg;
  std::vector<std::string> above;
  const auto line = [&](std::uint64_t bytes, const std::string& cls, const std::string& name) {
    if (s.shows(bytes)) {
      svg += horizontal(s, bytes, cls, name + " " + bytes_label(bytes), layout);
    } else {
      above.push_back("<tspan class=\"" + cls + "-marker\" data-bytes=\"" + std::to_string(bytes) +
                      "\">" + name + " " + bytes_label(bytes) + "</tspan>");
    }
  };
  line(device.budget, "budget-line", "budget");
  if (device.total != device.budget) line(device.total, "total-line", "device total");
  if (!above.empty()) {
    std::string text;
    for (std::size_t i = 0; i < above.size(); ++i)
      text += (i == 0 ? "" : ", ") + above[i];
    svg += "<text class=\"off-scale\" x=\"" + num(left) + "\" y=\"14\" fill=\"#555\">\u2191 " +
           text + ": above the scale</text>";
  }
  return svg;
}

// Refusals: a red triangle above the plot each (or each column's, with its count).
std::string refusal_markers(const Report& report, const DeviceReport& device, const Scale& s) {
  std::string svg;
  const std::uint64_t per_column = std::max<std::uint64_t>(report.events_per_column, 1);
  for (const RefusalMarker& r : device.refusals) {
    const std::size_t column = static_cast<std::size_t>((r.event - 1) / per_column);
    const double x = (s.x(column) + s.x(column + 1)) / 2;
    svg += "<path class=\"refusal\" data-event=\"" + std::to_string(r.event) + "\" data-bytes=\"" +
           std::to_string(r.bytes) + "\" data-count=\"" + std::to_string(r.count) + "\" d=\"M" +
           num(x - 4) + " " + num(top - 12) + " L" + num(x + 4) + " " + num(top - 12) + " L" +
           num(x) + " " + num(top - 3) + " Z\" fill=\"#d62728\"><title>" +
           (r.count == 1 ? "refused" : grouped(r.count) + " refused from") + " event " +
           grouped(r.event) + ": " + bytes_label(r.bytes) +
           (r.where.empty() ? std::string() : ", allocated in " + esc(r.where)) + "</title></path>";
  }
  return svg;
}

std::string chart(const Report& report, const DeviceReport& device, std::size_t index) {
  const bool budget = !report.measuring_only;
  const Scale s = scale_for(device, budget);
  std::string svg = chart_frame(device, index, s);
  svg += x_axis(report, device, s);
  svg += series_paths(device, s);
  Layout layout;
  svg += peak_label(device, s, layout);
  if (budget) svg += budget_lines(device, s, layout);
  svg += refusal_markers(report, device, s);
  svg += "<line class=\"guide\" x1=\"0\" x2=\"0\" y1=\"" + num(top) + "\" y2=\"" +
         num(top + plot_height) +
         "\" stroke=\"#333\" stroke-dasharray=\"2 2\" visibility=\"hidden\"/>";
  svg += "</svg>";
  return svg;
}

/// The columns as JSON for the script; bytes as strings (exact past 2^53).
std::string series_json(const Report& report, const DeviceReport& device) {
  nlohmann::ordered_json columns = nlohmann::ordered_json::array();
  for (const Column& c : device.allocated) {
    columns.push_back({std::to_string(c.first_event), std::to_string(c.last_event),
                       std::to_string(c.min), std::to_string(c.max), std::to_string(c.max_event),
                       c.max_op, std::to_string(c.max_op_bytes), std::to_string(c.last)});
  }
  const nlohmann::ordered_json json{{"device", device.device.to_string()},
                                    {"left", left},
                                    {"width", plot_width},
                                    {"events_per_column", std::to_string(report.events_per_column)},
                                    {"columns", std::move(columns)}};
  return json.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

constexpr const char* style = R"(
body { font-family: sans-serif; margin: 24px; color: #222; max-width: 1400px; }
h1 { font-size: 20px; } h2 { font-size: 16px; margin-top: 28px; }
table { border-collapse: collapse; margin: 8px 0; font-size: 13px; }
th, td { border-bottom: 1px solid #ddd; padding: 3px 10px; text-align: left; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.verdict-fits { color: #1a7f37; font-weight: bold; } .verdict-fails { color: #c62828; font-weight: bold; }
.info { font-family: monospace; font-size: 12px; min-height: 1.4em; background: #f4f6fa; padding: 4px 8px; }
.legend span { margin-right: 16px; font-size: 12px; }
.swatch { display: inline-block; width: 12px; height: 3px; vertical-align: middle; margin-right: 4px; }
line.budget-line { stroke: #d62728; stroke-dasharray: 6 4; stroke-width: 1.3; }
line.total-line { stroke: #7f7f7f; stroke-width: 1; }
text.budget-line-label { fill: #d62728; } text.total-line-label { fill: #555; }
svg.chart { cursor: crosshair; }
)";

constexpr const char* script = R"(
(function () {
  function group(s) { return s.replace(/\B(?=(\d{3})+(?!\d))/g, ","); }
  document.querySelectorAll("svg.chart").forEach(function (svg) {
    var index = svg.id.replace("chart-", "");
    var data = JSON.parse(document.getElementById("series-" + index).textContent);
    var info = document.getElementById("info-" + index);
    var guide = svg.querySelector("line.guide");
    var pinned = false;
    function column(event) {
      var box = svg.getBoundingClientRect();
      var x = (event.clientX - box.left) * (svg.viewBox.baseVal.width / box.width);
      var i = Math.floor((x - data.left) / (data.width / data.columns.length));
      return i >= 0 && i < data.columns.length ? i : -1;
    }
    function show(i) {
      var c = data.columns[i];
      var x = data.left + (i + 0.5) * data.width / data.columns.length;
      guide.setAttribute("x1", x); guide.setAttribute("x2", x);
      guide.setAttribute("visibility", "visible");
      var range = c[0] === c[1] ? "event " + group(c[0]) : "events " + group(c[0]) + "-" + group(c[1]);
      var text = data.device + ", " + range + ": allocated " + group(c[2]) + " to " + group(c[3]) + " B";
      if (c[4] !== "0") {
        text += "; highest after event " + group(c[4]) + " (" + c[5] + " " + group(c[6]) +
                " B), allocated after it " + group(c[3]) + " B";
      }
      info.textContent = text;
    }
    svg.addEventListener("mousemove", function (e) {
      if (pinned) return;
      var i = column(e); if (i >= 0) show(i);
    });
    svg.addEventListener("click", function (e) {
      var target = e.target;
      if (target.classList && target.classList.contains("refusal")) {
        info.textContent = data.device + ": refused " + (target.dataset.count === "1" ? "" :
          group(target.dataset.count) + " allocations from ") + "event " +
          group(target.dataset.event) + ", " + group(target.dataset.bytes) + " B";
        pinned = true; return;
      }
      var i = column(e); if (i < 0) return;
      pinned = !pinned; show(i);
    });
  });
})();
)";

std::string summary_table(const Report& report) {
  std::string html =
      "<table id=\"summary\"><tr><th>device</th><th class=\"num\">budget bytes</th><th "
      "class=\"num\">needed bytes</th><th class=\"num\">needed GiB</th><th "
      "class=\"num\">headroom bytes</th><th class=\"num\">headroom %</th><th "
      "class=\"num\">short by bytes</th><th class=\"num\">replayed peak bytes</th><th "
      "class=\"num\">refused</th><th class=\"num\">final bytes</th></tr>";
  for (const DeviceReport& d : report.devices) {
    const bool fits = d.needed <= d.budget;
    const bool headroom = fits && !report.measuring_only;  // no budget: no headroom either
    html += "<tr class=\"device-row\" data-device=\"" + d.device.to_string() + "\" data-budget=\"" +
            std::to_string(d.budget) + "\" data-needed=\"" + std::to_string(d.needed) +
            "\" data-peak=\"" + std::to_string(d.peak) + "\" data-headroom=\"" +
            std::to_string(d.headroom) + "\" data-shortfall=\"" + std::to_string(d.shortfall) +
            "\" data-refused=\"" + std::to_string(d.refused) + "\"><td>" + esc(d.name) +
            "</td><td class=\"num\">" +
            (report.measuring_only ? std::string("none") : grouped(d.budget)) +
            "</td><td class=\"num\">" + grouped(d.needed) + "</td><td class=\"num\">" +
            format_gib(d.needed) + "</td><td class=\"num\">" +
            (headroom ? grouped(d.headroom) : "-") + "</td><td class=\"num\">" +
            (headroom ? format_percent(d.headroom, d.budget) : "-") + "</td><td class=\"num\">" +
            (fits ? "-" : grouped(d.shortfall)) + "</td><td class=\"num\">" + grouped(d.peak) +
            "</td><td class=\"num\">" + grouped(d.refused) + "</td><td class=\"num\">" +
            grouped(d.final_bytes) + "</td></tr>";
  }
  html += "</table>";
  html += "<p id=\"totals\" data-refused=\"" + std::to_string(report.refused) +
          "\" data-cpu-fallback-bytes=\"" + std::to_string(report.cpu_fallback_bytes) +
          "\">refused allocations: " + grouped(report.refused) +
          "; CPU fallback: " + grouped(report.cpu_fallback_allocations) + " allocations, " +
          grouped(report.cpu_fallback_bytes) + " bytes (" + format_gib(report.cpu_fallback_bytes) +
          " GiB) over the run</p>";
  if (!report.first_refusal.empty()) {
    html += "<p>first refused: " + esc(report.first_refusal) + "</p>";
  }
  return html;
}

std::string largest_table(const DeviceReport& d) {
  if (d.peak == 0) return "<p>nothing was allocated on this device.</p>";
  std::string html = "<p>The " + std::to_string(d.largest_at_peak.size()) + " largest of the " +
                     grouped(d.live_at_peak) + " allocations alive at the peak (event " +
                     grouped(d.peak_event) + "):</p><table class=\"largest\" data-device=\"" +
                     d.device.to_string() +
                     "\"><tr><th class=\"num\">bytes</th><th class=\"num\">GiB</th><th>tag or "
                     "address</th><th class=\"num\">allocated at event</th><th "
                     "class=\"num\">time (ns)</th>";
  const bool frames = std::any_of(d.largest_at_peak.begin(), d.largest_at_peak.end(),
                                  [](const LiveAllocation& a) { return !a.where.empty(); });
  html += frames ? "<th>allocated in</th></tr>" : "</tr>";
  for (const LiveAllocation& a : d.largest_at_peak) {
    std::string what = a.tag;
    if (a.address) what += (what.empty() ? "" : " ") + hex(*a.address);
    html += "<tr><td class=\"num\">" + grouped(a.bytes) + "</td><td class=\"num\">" +
            format_gib(a.bytes) + "</td><td>" + esc(what.empty() ? "-" : what) +
            "</td><td class=\"num\">" + grouped(a.event) + "</td><td class=\"num\">" +
            (a.time_ns ? std::to_string(*a.time_ns) : std::string("-")) + "</td>";
    if (frames) html += "<td>" + esc(a.where.empty() ? "-" : a.where) + "</td>";
    html += "</tr>";
  }
  return html + "</table>";
}

/// What each device needs beside its budget: the line `memtrack fit` prints, one per device.
std::string need_line(const Report& report, const DeviceReport& d) {
  std::string line = d.device.to_string() + " needs " + format_gib(d.needed) + " GiB (" +
                     grouped(d.needed) + " B)";
  if (report.measuring_only) return line + "; no budget: measuring only";
  line += ", budget " + format_gib(d.budget) + " GiB (" + grouped(d.budget) + " B): ";
  if (d.needed <= d.budget) {
    return line + "headroom " + format_gib(d.headroom) + " GiB (" + grouped(d.headroom) + " B, " +
           format_percent(d.headroom, d.budget) + " %)";
  }
  return line + "short by " + format_gib(d.shortfall) + " GiB (" + grouped(d.shortfall) + " B)";
}

std::string needs(const Report& report) {
  std::string html = "<ul id=\"needs\">";
  for (const DeviceReport& d : report.devices) {
    if (idle(d)) continue;
    const bool fits = report.measuring_only || d.needed <= d.budget;
    html += "<li class=\"need " + std::string(fits ? "need-fits" : "need-short") +
            "\" data-device=\"" + d.device.to_string() + "\">" + esc(need_line(report, d)) +
            "</li>";
  }
  return html + "</ul>";
}

/// A device with nothing on it: one line instead of a chart.
std::string idle_line(const Report& report, const DeviceReport& d) {
  return "<p class=\"idle-device\" data-device=\"" + d.device.to_string() + "\"><b>" + esc(d.name) +
         "</b>: nothing allocated" +
         (report.measuring_only ? std::string() : " (budget " + bytes_label(d.budget) + ")") +
         "</p>";
}

std::string signed_cell(std::uint64_t a, std::uint64_t b) {
  std::string text = compare::signed_difference(a, b);
  if (text.size() > 1) text = text.substr(0, 1) + grouped(std::stoull(text.substr(1)));
  return text;
}

/// `--compare B`: the figures of both recordings per device and the sizes that differ.
std::string comparison_section(const compare::Comparison& c) {
  std::string html = "<section id=\"compare\"><h2>Compared with " + esc(c.b.file) +
                     "</h2><p>A = " + esc(c.a.file) + " (" + grouped(c.a.events) + " events, " +
                     esc(c.a.budgets) + "); B = " + esc(c.b.file) + " (" + grouped(c.b.events) +
                     " events, " + esc(c.b.budgets) +
                     "). Each replayed on its own budgets; the GPUs each uses paired in "
                     "ascending order";
  for (std::size_t i = 0; i < c.pairing.size(); ++i)
    html += (i == 0 ? ": " : ", ") + esc(c.pairing[i]);
  html +=
      ".</p><table id=\"compare-devices\"><tr><th>device</th><th class=\"num\">needed A</th><th "
      "class=\"num\">needed B</th><th class=\"num\">B - A</th><th class=\"num\">peak A</th><th "
      "class=\"num\">peak B</th><th class=\"num\">final A</th><th class=\"num\">final "
      "B</th></tr>";
  const auto cell = [](const std::optional<compare::DeviceFigures>& f,
                       std::uint64_t compare::DeviceFigures::*field) {
    return "<td class=\"num\">" + (f ? grouped((*f).*field) : std::string("-")) + "</td>";
  };
  for (const compare::DeviceComparison& d : c.devices) {
    const std::uint64_t needed_a = d.a ? d.a->needed : 0;
    const std::uint64_t needed_b = d.b ? d.b->needed : 0;
    html += "<tr class=\"compare-row\" data-device=\"" + esc(d.label()) + "\" data-needed-a=\"" +
            std::to_string(needed_a) + "\" data-needed-b=\"" + std::to_string(needed_b) +
            "\"><td>" + esc(d.label()) + "</td>" + cell(d.a, &compare::DeviceFigures::needed) +
            cell(d.b, &compare::DeviceFigures::needed) + "<td class=\"num\">" +
            signed_cell(needed_a, needed_b) + "</td>" + cell(d.a, &compare::DeviceFigures::peak) +
            cell(d.b, &compare::DeviceFigures::peak) +
            cell(d.a, &compare::DeviceFigures::final_bytes) +
            cell(d.b, &compare::DeviceFigures::final_bytes) + "</tr>";
  }
  html += "</table>";
  for (const compare::DeviceComparison& d : c.devices) {
    if (d.sizes_differing == 0) continue;
    html += "<p>" + esc(d.label()) + ": " + grouped(d.sizes_differing) +
            " allocation sizes made a different number of times (largest difference in bytes "
            "first):</p><table class=\"compare-sizes\" data-device=\"" +
            esc(d.label()) +
            "\"><tr><th class=\"num\">size bytes</th><th class=\"num\">count A</th><th "
            "class=\"num\">count B</th><th class=\"num\">bytes B - A</th><th>first allocated "
            "at</th></tr>";
    for (const compare::SizeDifference& size : d.sizes) {
      html += "<tr data-bytes=\"" + std::to_string(size.bytes) + "\"><td class=\"num\">" +
              grouped(size.bytes) + "</td><td class=\"num\">" + grouped(size.count_a) +
              "</td><td class=\"num\">" + grouped(size.count_b) + "</td><td class=\"num\">" +
              (size.grew() ? "+" : "-") + grouped(size.difference_bytes) + "</td><td>" +
              esc(size.frame ? size.frame->to_string() : "-") + "</td></tr>";
    }
    html += "</table>";
    if (d.sizes_differing > d.sizes.size()) {
      html += "<p>and " + grouped(d.sizes_differing - d.sizes.size()) + " more</p>";
    }
  }
  return html + "</section>";
}

std::string verdict(const Report& report) {
  if (!report.failure.empty()) {
    return "<p class=\"verdict-fails\" id=\"verdict\">REPLAY FAILED: " + esc(report.failure) +
           "</p>";
  }
  if (!report.inconsistencies.empty()) {
    return "<p class=\"verdict-fails\" id=\"verdict\">NOT FITTED: " + esc(report.inconsistencies) +
           "</p>";
  }
  if (report.refused != 0) {
    return "<p class=\"verdict-fails\" id=\"verdict\">DOES NOT FIT on " + esc(report.budgets) +
           "</p>";
  }
  return "<p class=\"verdict-fits\" id=\"verdict\">FITS on " + esc(report.budgets) + "</p>";
}

}  // namespace

std::string render_html(const Report& report) {
  std::string html = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>";
  html +=
      "memtrack report: " + esc(report.file) + "</title><style>" + style + "</style></head><body>";
  html += "<h1>memtrack report: " + esc(report.file) + "</h1>";
  html += "<p>source: " + esc(report.source.empty() ? "(not given)" : report.source) +
          "<br>budgets: " + esc(report.budgets) + "<br>" + grouped(report.events) + " events, " +
          grouped(report.operations) + " operations</p>";
  html += verdict(report) + needs(report) + summary_table(report);
  html +=
      "<p class=\"legend\"><span><i class=\"swatch\" style=\"background:#1f77b4\"></i>allocated "
      "(band: lowest to highest in each pixel column, exact)</span><span><i class=\"swatch\" "
      "style=\"background:#2ca02c\"></i>recorded total (the trace's checks)</span><span><i "
      "class=\"swatch\" style=\"background:#9467bd\"></i>recorded reserved</span><span><i "
      "class=\"swatch\" style=\"background:#d62728\"></i>budget; refused "
      "allocations above the plot</span><span><i class=\"swatch\" "
      "style=\"background:#7f7f7f\"></i>device total</span></p>";
  for (std::size_t i = 0; i < report.devices.size(); ++i) {
    const DeviceReport& d = report.devices[i];
    if (idle(d)) {
      html += "<section class=\"device device-idle\" data-device=\"" + d.device.to_string() +
              "\">" + idle_line(report, d) + "</section>";
      continue;
    }
    html += "<section class=\"device\" data-device=\"" + d.device.to_string() + "\"><h2>" +
            esc(d.name) + "</h2>" + chart(report, d, i) + "<div class=\"info\" id=\"info-" +
            std::to_string(i) +
            "\">hover over the chart for the events of a column; click to pin</div>";
    html += "<script type=\"application/json\" id=\"series-" + std::to_string(i) + "\">" +
            series_json(report, d) + "</script>";
    html += largest_table(d) + "</section>";
  }
  if (report.comparison) html += comparison_section(*report.comparison);
  html += "<script>" + std::string(script) + "</script></body></html>\n";
  return html;
}

std::string render_svg(const Report& report) {
  const double chart_height = top + plot_height + bottom;
  const double title = 22;
  const double width = left + plot_width + right;
  double height = title + 4;
  for (const DeviceReport& d : report.devices)
    height += idle(d) ? title : chart_height + title;
  std::string svg =
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" "
      "width=\"" +
      num(width) + "\" height=\"" + num(height) + "\" viewBox=\"0 0 " + num(width) + " " +
      num(height) + "\" font-family=\"sans-serif\" font-size=\"11\">";
  svg +=
      "<style>line.budget-line{stroke:#d62728;stroke-dasharray:6 4;stroke-width:1.3}"
      "line.total-line{stroke:#7f7f7f}text.budget-line-label{fill:#d62728}</style>";
  svg += "<rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>";
  svg += "<text x=\"8\" y=\"16\" font-size=\"13\" font-weight=\"bold\">memtrack report: " +
         esc(report.file) + " on " + esc(report.budgets) + " (" +
         (report.refused == 0 ? std::string("fits") : grouped(report.refused) + " refused") +
         ")</text>";
  double y = title + 4;
  for (std::size_t i = 0; i < report.devices.size(); ++i) {
    const DeviceReport& d = report.devices[i];
    if (idle(d)) {  // one line
      svg += "<text class=\"idle-device\" data-device=\"" + d.device.to_string() +
             "\" x=\"8\" y=\"" + num(y + 14) + "\">" + esc(d.name) + ": nothing allocated</text>";
      y += title;
      continue;
    }
    svg += "<text class=\"need\" data-device=\"" + d.device.to_string() + "\" x=\"8\" y=\"" +
           num(y + 14) + "\" font-weight=\"bold\">" + esc(d.name) + ": " +
           esc(need_line(report, d)) + "</text>";
    std::string inner = chart(report, d, i);
    svg += "<g transform=\"translate(0 " + num(y + title) + ")\">" + inner + "</g>";
    y += chart_height + title;
  }
  return svg + "</svg>\n";
}

ByteAxis byte_axis(std::uint64_t highest) {
  static constexpr std::array<std::pair<std::uint64_t, const char*>, 7> units{{
      {1, "B"},
      {1ULL << 10, "KiB"},
      {1ULL << 20, "MiB"},
      {1ULL << 30, "GiB"},
      {1ULL << 40, "TiB"},
      {1ULL << 50, "PiB"},
      {1ULL << 60, "EiB"},
  }};
  const std::uint64_t target = std::max<std::uint64_t>(
      checked_add(highest, highest / 20).value_or(max_bytes), 1);  // 5 % room above the data
  // steps ascending: 1 B, 2 B, 5 B, ... 500 B, 1 KiB, ... (500 units stay below the next unit)
  for (const auto& [unit, name] : units) {
    for (const std::uint64_t multiple :
         {1ULL, 2ULL, 5ULL, 10ULL, 20ULL, 50ULL, 100ULL, 200ULL, 500ULL}) {
      const auto step = checked_mul(multiple, unit);
      if (!step) continue;
      const std::uint64_t ticks = target / *step + (target % *step != 0 ? 1 : 0);
      if (ticks > 5) continue;
      const auto top_value = checked_mul(ticks, *step);
      if (!top_value) continue;
      return {*top_value, *step, unit, name, ticks};
    }
  }
  // within 2^64 no round top fits: ticks every 2^62 bytes (4 EiB) under the 64-bit maximum
  return {max_bytes, 1ULL << 62, 1ULL << 60, "EiB", 3};
}

std::string duration_label(std::uint64_t ns, std::uint64_t unit_ns, std::uint64_t step_ns) {
  unit_ns = std::max<std::uint64_t>(unit_ns, 1);
  const char* name = "ns";
  for (const auto& [unit, unit_name] : time_units) {
    if (unit == unit_ns) name = unit_name;
  }
  // as many decimals as the step needs (up to 3): 0.5 s steps print 1.5 s, not 1 s
  unsigned decimals = 0;
  std::uint64_t scale = 1;
  while (decimals < 3) {
    const auto scaled = checked_mul(step_ns, scale);
    if (scaled && *scaled % unit_ns == 0) break;
    ++decimals;
    scale *= 10;
  }
  std::string text = std::to_string(ns / unit_ns);
  if (decimals != 0) {
    const std::uint64_t fraction =
        mul_div_floor(ns % unit_ns, scale, unit_ns).value_or(0);  // < scale: fits
    std::string digits = std::to_string(fraction);
    digits.insert(0, decimals - digits.size(), '0');
    while (!digits.empty() && digits.back() == '0')
      digits.pop_back();
    if (!digits.empty()) text += "." + digits;
  }
  return text + " " + name;
}

}  // namespace memtrack::cli::report
