// GCC HACK: GCC 12 at -O2 warns of a "potential null pointer dereference" inside CLI11's own
// CLI::detail::split (a std::vector<std::string> growing) where this small file inlines it; the
// code is CLI11's and sound, and the same calls inlined elsewhere do not warn.
#pragma GCC diagnostic ignored "-Wnull-dereference"

#include "options.hpp"

#include "commands.hpp"

namespace memtrack::cli {

void add_json_flag(CLI::App& command, bool& json, std::string_view what) {
  const std::string printed = what.empty() ? std::string("the result") : std::string(what);
  command.add_flag("--json", json,
                   "Print " + printed +
                       " as JSON for machines instead of text (bytes as exact numbers; the same "
                       "exit codes; bad input as {\"error\", \"exit_code\"})");
}

void add_production_only_flag(CLI::App& command, bool& production_only) {
  command.add_flag("--production-only", production_only,
                   "Run the production tracker alone, without the reference model (faster; a "
                   "recording's checkpoints are still verified)");
}

CLI::Option* add_profile_flags(CLI::App& command, std::string& profile,
                               std::optional<std::uint32_t>& gpus) {
  CLI::Option* option =
      command
          .add_option("--profile", profile,
                      "The node: a device profile (rtx5090), N x profile (2xrtx5090), a mix "
                      "(rtx5090+rtx4090) or a .profile file; see 'memtrack profiles' (replay, fit "
                      "and report: default the recording's own devices)")
          ->capture_default_str();
  command
      .add_option("--gpus", gpus,
                  "With a single-GPU profile: how many GPUs (default: as many as the recordings "
                  "use; one for sim)")
      ->check(gpu_count());
  return option;
}

void add_gpu_option(CLI::App& command, std::vector<std::string>& gpus) {
  command.add_option("--gpu", gpus,
                     "A GPU: ID:TOTAL[,usable=SIZE][,fraction=F][,name=TEXT], e.g. "
                     "0:32GiB,usable=24GiB (instead of --profile; repeat per GPU). Sizes take B, "
                     "KiB, MiB, GiB, TiB or KB, MB, GB, TB");
}

void add_fraction_option(CLI::App& command, std::string& fraction) {
  command.add_option("--fraction", fraction,
                     "With --gpu: the share of each GPU's total, a decimal (0.9), a percentage "
                     "(90%) or a ratio (9/10), exact, no floating point (default 0.9)");
}

void add_cpu_limit_option(CLI::App& command, std::string& cpu_limit) {
  command
      .add_option("--cpu-limit", cpu_limit, "The CPU's memory limit, e.g. 16GiB (default 16GiB)")
      ->check(CLI::Validator(
          [](std::string& text) {
            return text.empty() ? std::string("expected a size such as 16GiB, got nothing")
                                : std::string();
          },
          "SIZE"));
}

}  // namespace memtrack::cli
