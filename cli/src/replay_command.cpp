// memtrack replay FILE: a recorded sequence, production tracker and reference model in lockstep.
// Reads scenario files (what 'memtrack sim' and the property tests write); the canonical trace
// format and the importers come with the traces library.
#include "commands.hpp"
#include "table.hpp"

#include <memtrack/memtrack.hpp>
#include <memtrack/sim/lockstep.hpp>
#include <memtrack/sim/scenario.hpp>

namespace memtrack::cli {
namespace {

int run_replay(const std::string& file, std::ostream& out, std::ostream& err) {
  auto scenario = sim::load_scenario(file);
  if (!scenario) {
    err << "memtrack replay: " << scenario.error().to_string() << "\n";
    return 2;
  }
  auto start = sim::LockstepChecker<>::create(scenario->config);
  if (start.divergence) {
    out << "memtrack replay: " << file << "\n" << start.divergence->to_string();
    return 1;
  }
  if (!start.checker) {
    err << "memtrack replay: " << file << ": " << start.rejection->to_string() << "\n";
    return 2;
  }
  std::uint64_t ok = 0;
  std::uint64_t refused = 0;
  std::uint64_t other = 0;
  for (std::size_t i = 0; i < scenario->operations.size(); ++i) {
    if (auto divergence = start.checker->apply(scenario->operations[i])) {
      out << "memtrack replay: " << file << ": operation " << i + 1 << " of "
          << scenario->operations.size() << "\n"
          << divergence->to_string();
      return 1;
    }
    const sim::CoreOutcome& outcome = start.checker->last_core_outcome();
    if (outcome.ok) {
      ++ok;
    } else if (outcome.error->kind == ErrorKind::OutOfMemory) {
      ++refused;
    } else {
      ++other;
    }
  }
  const MemoryTracker& tracker = start.checker->core();
  out << "memtrack replay: " << file << ": " << scenario->operations.size()
      << " operations checked in lockstep\n\n";
  Table table({"device", ">limit bytes", ">peak bytes", ">final bytes"});
  std::vector<DevicePlacement> devices;
  for (const std::uint32_t id : tracker.gpu_ids())
    devices.emplace_back(Gpu{id});
  devices.emplace_back(Cpu{});
  for (const DevicePlacement d : devices) {
    table.add_row({d.to_string(), std::to_string(tracker.limit(d)), std::to_string(tracker.peak(d)),
                   std::to_string(tracker.allocated(d))});
  }
  table.print(out);
  out << "\noutcomes: " << ok << " ok, " << refused << " refused (out of memory), " << other
      << " other errors\nverdict: the production tracker and the reference model agree\n";
  return 0;
}

}  // namespace

void add_replay_command(CLI::App& app, Command& chosen) {
  auto file = std::make_shared<std::string>();
  CLI::App* replay = app.add_subcommand(
      "replay",
      "Replay a recorded sequence (a scenario file, as 'memtrack sim' writes for a divergence) "
      "through the production tracker and the reference model in lockstep.");
  replay->add_option("file", *file, "The file to replay")->required();
  replay->callback([file, &chosen] {
    chosen.run = [file](std::ostream& out, std::ostream& err) {
      return run_replay(*file, out, err);
    };
  });
}

}  // namespace memtrack::cli
