// memtrack report TRACE [--profile P] [--gpus N] -o report.html: memory over time, the peak, the
// budget, refusals and what was alive at the peak, per device, in one self-contained file.
#include "app.hpp"
#include "commands.hpp"
#include "options.hpp"
#include "report.hpp"
#include "summary_json.hpp"

#include <memtrack/traces/io.hpp>
#include <memtrack/units.hpp>

#include <nlohmann/json.hpp>

namespace memtrack::cli {
namespace {

struct ReportCommandOptions {
  report::ReportOptions report;
  std::string output;
  std::string format;  ///< empty: from the output's name (.svg), else html
  bool json = false;
};

/// @return html or svg: --format, else from the output's name; bad input for anything else
Result<std::string> check_report_options(const ReportCommandOptions& options) {
  std::vector<std::filesystem::path> inputs = profile_files(options.report.profile);
  inputs.emplace_back(options.report.file);
  if (!options.report.compare.empty()) inputs.emplace_back(options.report.compare);
  if (auto ok = traces::refuse_output_over_input(options.output, inputs); !ok) return ok.error();
  std::string format = options.format;
  if (format.empty()) format = options.output.ends_with(".svg") ? "svg" : "html";
  if (format != "html" && format != "svg") {
    return Error::parse_error("--format '" + format + "': expected html or svg");
  }
  if (format == "svg" && !options.report.compare.empty()) {
    return Error::parse_error(
        "--compare draws a section of the HTML report; the SVG holds the charts alone (use -o "
        "FILE.html, or memtrack compare for text)");
  }
  if (options.report.columns < 10 || options.report.columns > 20000) {
    return Error::parse_error("--columns " + std::to_string(options.report.columns) +
                              ": expected 10 to 20000 pixel columns");
  }
  return format;
}

Result<void> write_atomically(const std::string& path, const std::string& text) {
  auto output = traces::AtomicOutput::create(path);
  if (!output) return output.error();
  if (auto written = output->write(text); !written) return written.error();
  return output->commit();
}

/// What `report --json` says: the summary the text prints, from the same Report.
void print_report_json(const ReportCommandOptions& options, const std::string& format,
                       std::size_t size, const report::Report& built, std::ostream& out) {
  const bool budgets = !built.measuring_only;
  nlohmann::ordered_json json;
  json["output"] = options.output;
  json["format"] = format;
  json["output_bytes"] = size;
  json["trace"] = options.report.file;
  json["budgets"] = built.budgets;
  json["events"] = built.events;
  json["operations"] = built.operations;
  json["events_per_column"] = built.events_per_column;
  json["refused"] = built.refused;
  json["devices"] = nlohmann::ordered_json::array();
  for (const report::DeviceReport& d : built.devices) {
    json["devices"].push_back(
        {{"device", d.device.to_string()},
         {"budget_bytes", number_or_null(budgets, d.budget)},
         {"needed_bytes", d.needed},
         {"peak_bytes", d.peak},
         {"peak_event", d.peak_event},
         {"headroom_bytes", number_or_null(budgets && d.shortfall == 0, d.headroom)},
         {"shortfall_bytes", number_or_null(budgets && d.shortfall != 0, d.shortfall)},
         {"final_bytes", d.final_bytes},
         {"refused", d.refused}});
  }
  json["first_refusal"] = text_or_null(built.first_refusal);
  json["failure"] = text_or_null(built.failure);
  json["inconsistencies"] = text_or_null(built.inconsistencies);
  out << json.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) << "\n";
}

void print_report_text(const ReportCommandOptions& options, const std::string& format,
                       std::size_t size, const report::Report& built, std::ostream& out) {
  out << "memtrack report: " << options.output << " (" << format << ", " << report::grouped(size)
      << " bytes): " << report::grouped(built.events) << " events on " << built.budgets << ", "
      << built.events_per_column << " per pixel column\n";
  for (const report::DeviceReport& d : built.devices) {
    out << "  " << d.device.to_string() << ": peak " << d.peak << " B (" << format_gib(d.peak)
        << " GiB) at event " << d.peak_event << ", budget " << d.budget << " B, refused "
        << d.refused << "\n";
  }
  if (!built.failure.empty()) out << "  the replay failed: " << built.failure << "\n";
  if (!built.inconsistencies.empty()) out << built.inconsistencies;
}

Outcome run_report(const ReportCommandOptions& options, std::ostream& standard_out,
                   std::ostream& err) {
  auto format = check_report_options(options);
  if (!format) return format.error();
  // With -o -, the report is standard output and the summary goes to standard error.
  std::ostream& out = options.output == "-" ? err : standard_out;
  auto built = report::build_report(options.report);
  if (!built) return built.error();
  const std::string text =
      *format == "svg" ? report::render_svg(*built) : report::render_html(*built);
  if (auto written = write_atomically(options.output, text); !written) return written.error();
  if (options.json) {
    print_report_json(options, *format, text.size(), *built, out);
  } else {
    print_report_text(options, *format, text.size(), *built, out);
  }
  return exit_ok;
}

}  // namespace

void add_report_command(CLI::App& app, Command& chosen) {
  auto options = std::make_shared<ReportCommandOptions>();
  CLI::App* command = app.add_subcommand(
      "report",
      "Draw a recording: one self-contained HTML file (inline SVG and script, nothing fetched) "
      "with, per device, memory over time (exact lowest and highest in each pixel column, so "
      "the peak and every refusal stay exact however long the trace), the recording's own "
      "totals where it has them, the budget and the device's total, the peak labelled in bytes "
      "and GiB, refused allocations marked, the largest allocations alive at the peak, and the "
      "summary table `memtrack fit` prints. Hover shows a column's events, click pins it. "
      "The y axis fits the data (the budget and device total are named above the plot when "
      "they are far above it); times are relative to the first event. "
      "Exit 0 written, 2 bad input.");
  command
      ->add_option("trace", options->report.file,
                   "The recording (a memtrack trace or anything `memtrack import` reads)")
      ->required();
  command
      ->add_option("-o,--output", options->output,
                   "The file to write (atomically; - for standard output)")
      ->required();
  add_profile_flags(*command, options->report.profile, options->report.gpus);
  add_device_flags(*command, options->report.devices);
  add_allocator_flags(*command, options->report.allocator);
  command
      ->add_option("--format", options->format,
                   "html (default) or svg: the charts alone, one standalone SVG for CI "
                   "summaries (default: svg when the output ends in .svg)")
      ->check(not_empty());
  command
      ->add_option("--compare", options->report.compare,
                   "Another recording (B) to set beside this one (A): per device what each "
                   "needs, its peak and final bytes, and the allocation sizes made a different "
                   "number of times, as `memtrack compare A B` prints them")
      ->check(not_empty());
  command
      ->add_option("--columns", options->report.columns,
                   "Pixel columns of each chart (default 1200)")
      ->check(whole_number());
  command
      ->add_option("--largest", options->report.largest,
                   "How many of the allocations alive at the peak to list (default 20)")
      ->check(whole_number());
  add_json_flag(*command, options->json);
  run_when_chosen(*command, chosen, options, run_report);
}

}  // namespace memtrack::cli
