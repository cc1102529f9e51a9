// memtrack report TRACE [--profile P] [--gpus N] -o report.html: memory over time, the peak, the
// budget, refusals and what was alive at the peak, per device, in one self-contained file.
#include "app.hpp"
#include "commands.hpp"
#include "options.hpp"
#include "report.hpp"

#include <memtrack/traces/io.hpp>
#include <memtrack/units.hpp>

namespace memtrack::cli {
namespace {

struct ReportCommandOptions {
  report::ReportOptions report;
  std::string output;
  std::string format;  ///< empty: from the output's name (.svg), else html
};

int run_report(const ReportCommandOptions& options, std::ostream& standard_out, std::ostream& err) {
  std::vector<std::filesystem::path> inputs = profile_files(options.report.profile);
  inputs.emplace_back(options.report.file);
  if (!options.report.compare.empty()) inputs.emplace_back(options.report.compare);
  if (auto ok = traces::refuse_output_over_input(options.output, inputs); !ok) {
    err << "memtrack report: " << ok.error().to_string() << "\n";
    return exit_bad_input;
  }
  // With -o -, the report is standard output and the summary goes to standard error.
  std::ostream& out = options.output == "-" ? err : standard_out;
  std::string format = options.format;
  if (format.empty()) format = options.output.ends_with(".svg") ? "svg" : "html";
  if (format != "html" && format != "svg") {
    err << "memtrack report: --format '" << format << "': expected html or svg\n";
    return exit_bad_input;
  }
  if (format == "svg" && !options.report.compare.empty()) {
    err << "memtrack report: --compare draws a section of the HTML report; the SVG holds the "
           "charts alone (use -o FILE.html, or memtrack compare for text)\n";
    return exit_bad_input;
  }
  if (options.report.columns < 10 || options.report.columns > 20000) {
    err << "memtrack report: --columns " << options.report.columns
        << ": expected 10 to 20000 pixel columns\n";
    return exit_bad_input;
  }
  auto built = report::build_report(options.report);
  if (!built) {
    err << "memtrack report: " << built.error().to_string() << "\n";
    return exit_bad_input;
  }
  const std::string text =
      format == "svg" ? report::render_svg(*built) : report::render_html(*built);
  auto output = traces::AtomicOutput::create(options.output);
  if (!output) {
    err << "memtrack report: " << output.error().to_string() << "\n";
    return exit_bad_input;
  }
  if (auto written = output->write(text); !written) {
    err << "memtrack report: " << written.error().to_string() << "\n";
    return exit_bad_input;
  }
  if (auto committed = output->commit(); !committed) {
    err << "memtrack report: " << committed.error().to_string() << "\n";
    return exit_bad_input;
  }
  out << "memtrack report: " << options.output << " (" << format << ", "
      << report::grouped(text.size()) << " bytes): " << report::grouped(built->events)
      << " events on " << built->budgets << ", " << built->events_per_column
      << " per pixel column\n";
  for (const report::DeviceReport& d : built->devices) {
    out << "  " << d.device.to_string() << ": peak " << d.peak << " B (" << format_gib(d.peak)
        << " GiB) at event " << d.peak_event << ", budget " << d.budget << " B, refused "
        << d.refused << "\n";
  }
  if (!built->failure.empty()) out << "  the replay failed: " << built->failure << "\n";
  if (!built->inconsistencies.empty()) out << built->inconsistencies;
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
  run_when_chosen(*command, chosen, options, run_report);
}

}  // namespace memtrack::cli
