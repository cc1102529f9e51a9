#include "app.hpp"

#include "commands.hpp"
#include "examples.hpp"
#include "terminal.hpp"

#include <memtrack/error.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <exception>
#include <string_view>

namespace memtrack::cli {

CLI::Validator whole_number() {
  return {[](std::string& text) -> std::string {
            if (text.empty()) return "expected a whole number, got nothing";
            if (text.find_first_not_of("0123456789") != std::string::npos) {
              return "expected a whole number (digits only, no sign), got '" + text + "'";
            }
            if (text.size() > 20 || (text.size() == 20 && text > "18446744073709551615")) {
              return "'" + text + "' is larger than 18446744073709551615";
            }
            return {};
          },
          "UINT"};
}

CLI::Validator not_empty() {
  return {[](std::string& text) -> std::string {
            return text.empty() ? "expected a value, got nothing" : std::string();
          },
          "TEXT"};
}

CLI::Validator gpu_count() {
  return {[](std::string& text) -> std::string {
            std::string problem = whole_number()(text);
            if (!problem.empty()) return problem;
            if (text.size() > 4 || std::stoul(text) < 1 || std::stoul(text) > max_gpus_per_node) {
              return "'" + text + "': expected 1 to " + std::to_string(max_gpus_per_node) + " GPUs";
            }
            return {};
          },
          "1.." + std::to_string(max_gpus_per_node)};
}

Error bad_input(std::string_view context, const Error& error) {
  return Error::parse_error(std::string(context) + error.to_string());
}

namespace {

/// How much of what stderr said a JSON error carries.
constexpr std::size_t max_json_error_bytes = 64 * 1024;

int parse_and_run(CLI::App& app, const std::vector<std::string>& args, Command& chosen,
                  std::ostream& out, std::ostream& err) {
  std::vector<std::string> reversed(args.rbegin(), args.rend());  // CLI11 parses from the back
  try {
    app.parse(reversed);
  } catch (const CLI::ParseError& e) {
    // Also --help, for the app or a subcommand: CLI11 prints the selected one's help.
    const int code = app.exit(e, out, err);
    return code == 0 ? exit_ok : exit_bad_input;
  }
  try {
    const Outcome outcome = chosen.run(out, err);
    if (!outcome) {
      err << "memtrack " << chosen.name << ": " << outcome.error().to_string() << "\n";
      return exit_bad_input;
    }
    return *outcome;
  } catch (const BadResultAccess& e) {
    err << "memtrack: " << e.what() << "\n";
    return exit_bad_input;
  } catch (const std::exception& e) {
    err << "memtrack: internal error: " << e.what() << "\n";
    return exit_bad_input;
  }
}

/// `{"error": MESSAGE, "exit_code": 2}`: the message is what stderr said, its lines joined.
void write_json_error(std::ostream& out, std::string_view said) {
  std::string message;
  for (const char ch : said) {
    if (ch == '\n') {
      if (!message.empty() && message.back() != ' ') message += ' ';
    } else {
      message += ch;
    }
  }
  while (!message.empty() && message.back() == ' ')
    message.pop_back();
  if (message.empty()) message = "bad input";
  nlohmann::ordered_json error;
  error["error"] = message;
  error["exit_code"] = static_cast<int>(exit_bad_input);
  out << error.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
}

}  // namespace

int run(const std::vector<std::string>& args, std::ostream& raw_out, std::ostream& raw_err) {
  // Everything printed passes through the terminal escaping: a recording's text (tags, actions,
  // file names) cannot move the cursor, recolour the terminal or reverse a line.
  EscapingStream out(raw_out);
  EscapingStream err(raw_err);
  CLI::App app{
      "memtrack: byte-exact accounts of GPU and CPU memory, checked against an arbitrary-precision "
      "reference model.",
      "memtrack"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("memtrack ") + MEMTRACK_VERSION,
                       "Print memtrack's version and exit");
  app.footer(
      "Run 'memtrack SUBCOMMAND --help' for a subcommand's options.\n"
      "Exit codes: 0 success, 1 the check failed, 2 bad input.");
  Command chosen;
  add_budget_command(app, chosen);
  add_profiles_command(app, chosen);
  add_sim_command(app, chosen);
  add_replay_command(app, chosen);
  add_fit_command(app, chosen);
  add_import_command(app, chosen);
  add_record_command(app, chosen);
  add_probe_command(app, chosen);
  add_report_command(app, chosen);
  add_compare_command(app, chosen);
  for (CLI::App* command : app.get_subcommands({})) {
    command->footer(examples_footer(command->get_name()));
  }

  // Under --json, bad input is answered on standard output too, as JSON (what stderr says).
  const bool json = std::find(args.begin(), args.end(), "--json") != args.end();
  if (json) err.keep_first(max_json_error_bytes);
  const int code = parse_and_run(app, args, chosen, out, err);
  if (json && code == exit_bad_input && out.written() == 0) {
    write_json_error(out, err.kept());
  }
  return code;
}

}  // namespace memtrack::cli
