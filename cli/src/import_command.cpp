// memtrack import [--from FORMAT] IN -o OUT: a recording from PyTorch, Kineto, RMM or Nsight as
// a canonical trace.
#include "app.hpp"
#include "commands.hpp"
#include "options.hpp"

#include <memtrack/traces/importers.hpp>

#include <nlohmann/json.hpp>

namespace memtrack::cli {
namespace {

struct ImportOptions {
  std::string in;
  std::string out;
  std::string from;
  std::optional<std::uint32_t> device;
  bool json = false;
};

Outcome run_import(const ImportOptions& options, std::ostream& standard_out, std::ostream& err) {
  if (auto ok = traces::refuse_output_over_input(options.out, {options.in}); !ok) {
    return ok.error();
  }
  // With -o -, the trace is standard output and the summary goes to standard error.
  std::ostream& out = options.out == "-" ? err : standard_out;
  std::optional<traces::SourceFormat> format;
  if (!options.from.empty()) {
    auto parsed = traces::parse_source_format(options.from);
    if (!parsed) return bad_input("--from: ", parsed.error());
    format = *parsed;
  }
  traces::ImportOptions import_options;
  import_options.device = options.device;
  auto report = traces::import_file(options.in, options.out, format, import_options);
  if (!report) return report.error();
  if (options.json) {
    nlohmann::ordered_json summary;
    summary["input"] = options.in;
    summary["output"] = options.out;
    summary["events"] = report->events;
    summary["skipped"] = report->skipped;
    summary["notes"] = report->notes;
    out << summary.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    return exit_ok;
  }
  out << "memtrack import: " << options.in << " -> " << options.out << ": " << report->events
      << " events\n";
  for (const std::string& note : report->notes)
    out << "  " << note << "\n";
  return exit_ok;
}

}  // namespace

void add_import_command(CLI::App& app, Command& chosen) {
  auto options = std::make_shared<ImportOptions>();
  CLI::App* command = app.add_subcommand(
      "import",
      "Convert a recording to a memtrack trace: PyTorch memory snapshots "
      "(torch.cuda.memory._dump_snapshot), torch.profiler/Kineto JSON (profile_memory=True), RMM "
      "logging_resource_adaptor CSV, Nsight Systems SQLite exports. .gz and .zst inputs are read "
      "directly; an output ending in .zst is compressed. Exit 0 done, 2 bad input.");
  command->add_option("input", options->in, "The recording")->required();
  command
      ->add_option("-o,--output", options->out,
                   "The trace to write (- for standard output; .zst or .gz compresses)")
      ->required();
  command
      ->add_option("--from", options->from,
                   "The input format: pytorch, kineto, rmm or nsight (default: detected)")
      ->check(not_empty());
  command
      ->add_option("--device", options->device,
                   "RMM: the GPU id (default: from a .devN in the file name, else 0)")
      ->check(whole_number());
  add_json_flag(*command, options->json);
  run_when_chosen(*command, chosen, options, run_import);
}

}  // namespace memtrack::cli
