// memtrack report's output: inline SVG charts, the tables, and a small script for hover and
// click. Nothing is fetched: fonts are the browser's own, data is inline.
#include "report.hpp"

#include <memtrack/units.hpp>

#include <algorithm>
#include <cstdio>

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

/// Pixel geometry of one chart: bytes and events to coordinates (drawing only; every number
/// shown is the exact integer).
struct Scale {
  std::uint64_t ymax{1};
  std::size_t columns{1};
  double y(std::uint64_t bytes) const {
    return top + plot_height - static_cast<double>(bytes) / static_cast<double>(ymax) * plot_height;
  }
  double x(std::size_t column) const {
    return left + static_cast<double>(column) * plot_width / static_cast<double>(columns);
  }
};

Scale scale_for(const DeviceReport& device) {
  std::uint64_t top_value = std::max({device.total, device.budget, device.peak, std::uint64_t{1}});
  for (const auto* series : {&device.recorded, &device.reserved}) {
    for (const Column& c : *series)
      top_value = std::max(top_value, c.max);
  }
  Scale scale;
  scale.ymax = top_value + top_value / 12 + 1;  // room above the highest line
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

std::string horizontal(const Scale& s, std::uint64_t bytes, const std::string& cls,
                       const std::string& label) {
  const std::string y = num(s.y(bytes));
  return "<line class=\"" + cls + "\" x1=\"" + num(left) + "\" x2=\"" + num(left + plot_width) +
         "\" y1=\"" + y + "\" y2=\"" + y + "\" data-bytes=\"" + std::to_string(bytes) +
         "\"/><text class=\"line-label " + cls + "-label\" x=\"" + num(left + plot_width - 4) +
         "\" y=\"" + num(s.y(bytes) - 4) + "\" text-anchor=\"end\">" + esc(label) + "</text>";
}

std::string chart(const Report& report, const DeviceReport& device, std::size_t index) {
  const Scale s = scale_for(device);
  const double width = left + plot_width + right;
  const double height = top + plot_height + bottom;
  std::string svg = "<svg class=\"chart\" id=\"chart-" + std::to_string(index) +
                    "\" data-device=\"" + device.device.to_string() +
                    "\" xmlns=\"http://www.w3.org/2000/svg\" width=\"" + num(width) +
                    "\" height=\"" + num(height) + "\" viewBox=\"0 0 " + num(width) + " " +
                    num(height) + "\" font-family=\"sans-serif\" font-size=\"11\">";
  svg += "<rect class=\"plot\" x=\"" + num(left) + "\" y=\"" + num(top) + "\" width=\"" +
         num(plot_width) + "\" height=\"" + num(plot_height) +
         "\" fill=\"#fbfbfd\" stroke=\"#ccc\"/>";
  // y axis: five ticks in GiB (labels only)
  for (int i = 0; i <= 4; ++i) {
    const std::uint64_t bytes = s.ymax / 4 * static_cast<std::uint64_t>(i);
    const std::string y = num(s.y(bytes));
    svg += "<line x1=\"" + num(left - 4) + "\" x2=\"" + num(left + plot_width) + "\" y1=\"" + y +
           "\" y2=\"" + y + "\" stroke=\"#eee\"/><text x=\"" + num(left - 6) + "\" y=\"" + y +
           "\" text-anchor=\"end\" dominant-baseline=\"middle\">" + format_gib(bytes) +
           " GiB</text>";
  }
  // x axis: event numbers
  for (int i = 0; i <= 4; ++i) {
    const std::size_t column = s.columns * static_cast<std::size_t>(i) / 4;
    const std::uint64_t event =
        column < device.allocated.size() ? device.allocated[column].first_event : report.events;
    // the end labels stay inside the picture
    const char* anchor = i == 0 ? "start" : i == 4 ? "end" : "middle";
    svg += "<text x=\"" + num(s.x(column)) + "\" y=\"" + num(top + plot_height + 16) +
           "\" text-anchor=\"" + anchor + "\">" + grouped(event) + "</text>";
  }
  svg += "<text x=\"" + num(left + plot_width / 2) + "\" y=\"" + num(top + plot_height + 34) +
         "\" text-anchor=\"middle\" fill=\"#555\">event (" + grouped(report.events) + " events, " +
         grouped(report.events_per_column) + " per column)</text>";

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
  if (device.total != device.budget) {
    svg += horizontal(s, device.total, "total-line", "total " + bytes_label(device.total));
  }
  svg += horizontal(s, device.budget, "budget-line", "budget " + bytes_label(device.budget));

  // the peak, at the first column that reaches it
  for (std::size_t i = 0; i < device.allocated.size(); ++i) {
    if (device.allocated[i].max != device.peak || device.peak == 0) continue;
    const double x = (s.x(i) + s.x(i + 1)) / 2;
    const double y = s.y(device.peak);
    const bool right_half = x > left + plot_width * 0.6;
    svg += "<circle class=\"peak-marker\" cx=\"" + num(x) + "\" cy=\"" + num(y) +
           "\" r=\"4\" fill=\"#ff7f0e\" stroke=\"#fff\"/>";
    svg += "<text class=\"peak-label\" data-device=\"" + device.device.to_string() +
           "\" data-bytes=\"" + std::to_string(device.peak) + "\" data-event=\"" +
           std::to_string(device.peak_event) + "\" x=\"" + num(right_half ? x - 8 : x + 8) +
           "\" y=\"" + num(std::max(y - 8, top + 12)) + "\" text-anchor=\"" +
           (right_half ? "end" : "start") + "\" font-weight=\"bold\" fill=\"#c45a00\">peak " +
           bytes_label(device.peak) + " at event " + grouped(device.peak_event) + "</text>";
    break;
  }
  // refusals: a red triangle above the plot each (or each column's, with its count)
  const std::uint64_t per_column = std::max<std::uint64_t>(report.events_per_column, 1);
  for (const RefusalMarker& r : device.refusals) {
    const std::size_t column = static_cast<std::size_t>((r.event - 1) / per_column);
    const double x = (s.x(column) + s.x(column + 1)) / 2;
    svg += "<path class=\"refusal\" data-event=\"" + std::to_string(r.event) + "\" data-bytes=\"" +
           std::to_string(r.bytes) + "\" data-count=\"" + std::to_string(r.count) + "\" d=\"M" +
           num(x - 4) + " " + num(top - 12) + " L" + num(x + 4) + " " + num(top - 12) + " L" +
           num(x) + " " + num(top - 3) + " Z\" fill=\"#d62728\"><title>" +
           (r.count == 1 ? "refused" : grouped(r.count) + " refused from") + " event " +
           grouped(r.event) + ": " + bytes_label(r.bytes) + "</title></path>";
  }
  svg += "<line class=\"guide\" x1=\"0\" x2=\"0\" y1=\"" + num(top) + "\" y2=\"" +
         num(top + plot_height) +
         "\" stroke=\"#333\" stroke-dasharray=\"2 2\" visibility=\"hidden\"/>";
  svg += "</svg>";
  return svg;
}

/// The columns as JSON for the script; bytes as strings (exact past 2^53).
std::string series_json(const Report& report, const DeviceReport& device) {
  std::string json = "{\"device\":\"" + device.device.to_string() + "\",\"left\":" + num(left) +
                     ",\"width\":" + num(plot_width) + ",\"events_per_column\":\"" +
                     std::to_string(report.events_per_column) + "\",\"columns\":[";
  for (std::size_t i = 0; i < device.allocated.size(); ++i) {
    const Column& c = device.allocated[i];
    if (i != 0) json += ",";
    json += "[\"" + std::to_string(c.first_event) + "\",\"" + std::to_string(c.last_event) +
            "\",\"" + std::to_string(c.min) + "\",\"" + std::to_string(c.max) + "\",\"" +
            std::to_string(c.max_event) + "\",\"" + c.max_op + "\",\"" +
            std::to_string(c.max_op_bytes) + "\",\"" + std::to_string(c.last) + "\"]";
  }
  json += "]}";
  return json;
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
    html += "<tr class=\"device-row\" data-device=\"" + d.device.to_string() + "\" data-budget=\"" +
            std::to_string(d.budget) + "\" data-needed=\"" + std::to_string(d.needed) +
            "\" data-peak=\"" + std::to_string(d.peak) + "\" data-headroom=\"" +
            std::to_string(d.headroom) + "\" data-shortfall=\"" + std::to_string(d.shortfall) +
            "\" data-refused=\"" + std::to_string(d.refused) + "\"><td>" + esc(d.name) +
            "</td><td class=\"num\">" + grouped(d.budget) + "</td><td class=\"num\">" +
            grouped(d.needed) + "</td><td class=\"num\">" + format_gib(d.needed) +
            "</td><td class=\"num\">" + (fits ? grouped(d.headroom) : "-") +
            "</td><td class=\"num\">" + (fits ? format_percent(d.headroom, d.budget) : "-") +
            "</td><td class=\"num\">" + (fits ? "-" : grouped(d.shortfall)) +
            "</td><td class=\"num\">" + grouped(d.peak) + "</td><td class=\"num\">" +
            grouped(d.refused) + "</td><td class=\"num\">" + grouped(d.final_bytes) + "</td></tr>";
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
                     "class=\"num\">time (ns)</th></tr>";
  for (const LiveAllocation& a : d.largest_at_peak) {
    std::string what = a.tag;
    if (a.address) what += (what.empty() ? "" : " ") + hex(*a.address);
    html += "<tr><td class=\"num\">" + grouped(a.bytes) + "</td><td class=\"num\">" +
            format_gib(a.bytes) + "</td><td>" + esc(what.empty() ? "-" : what) +
            "</td><td class=\"num\">" + grouped(a.event) + "</td><td class=\"num\">" +
            (a.time_ns ? std::to_string(*a.time_ns) : std::string("-")) + "</td></tr>";
  }
  return html + "</table>";
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
  html += verdict(report) + summary_table(report);
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
    html += "<section class=\"device\" data-device=\"" + d.device.to_string() + "\"><h2>" +
            esc(d.name) + "</h2>" + chart(report, d, i) + "<div class=\"info\" id=\"info-" +
            std::to_string(i) +
            "\">hover over the chart for the events of a column; click to pin</div>";
    html += "<script type=\"application/json\" id=\"series-" + std::to_string(i) + "\">" +
            series_json(report, d) + "</script>";
    html += largest_table(d) + "</section>";
  }
  html += "<script>" + std::string(script) + "</script></body></html>\n";
  return html;
}

std::string render_svg(const Report& report) {
  const double chart_height = top + plot_height + bottom;
  const double title = 22;
  const double width = left + plot_width + right;
  const double height =
      static_cast<double>(report.devices.size()) * (chart_height + title) + title + 4;
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
    svg += "<text x=\"8\" y=\"" + num(y + 14) + "\" font-weight=\"bold\">" + esc(d.name) +
           ": peak " + bytes_label(d.peak) + " of budget " + bytes_label(d.budget) + "</text>";
    std::string inner = chart(report, d, i);
    svg += "<g transform=\"translate(0 " + num(y + title) + ")\">" + inner + "</g>";
    y += chart_height + title;
  }
  return svg + "</svg>\n";
}

}  // namespace memtrack::cli::report
