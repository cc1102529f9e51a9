#include "ratio_reporter.hpp"

#include <cstdio>
#include <iostream>

namespace memtrack::bench {

void RatioReporter::ReportRuns(const std::vector<Run>& runs) {
  ConsoleReporter::ReportRuns(runs);
  for (const Run& run : runs) {
    if (run.run_type == Run::RT_Iteration) runs_[run.benchmark_name()] = run;
  }
}

void RatioReporter::Finalize() {
  ConsoleReporter::Finalize();
  std::cout << "\nRatios against baselines measured in this run (time per operation):\n";
  for (const Comparison& c : comparisons_) {
    const auto subject = runs_.find(c.subject);
    const auto baseline = runs_.find(c.baseline);
    if (subject == runs_.end() || baseline == runs_.end()) continue;
    if (subject->second.error_occurred || baseline->second.error_occurred) {
      const Run& failed = subject->second.error_occurred ? subject->second : baseline->second;
      std::cout << "  " << c.subject << " / " << c.baseline
                << ": not compared: " << failed.error_message << "\n";
      continue;
    }
    // CPU time where both measure it (a shared machine's other work stays out of it); wall time
    // where either is timed by the wall (threads, I/O).
    const bool wall = c.subject.find("real_time") != std::string::npos ||
                      c.baseline.find("real_time") != std::string::npos || c.wall_time;
    const double ratio =
        wall ? subject->second.GetAdjustedRealTime() / baseline->second.GetAdjustedRealTime()
             : subject->second.GetAdjustedCPUTime() / baseline->second.GetAdjustedCPUTime();
    char line[256];
    std::snprintf(line, sizeof line, "  %-44s / %-40s = %6.2fx %s", c.subject.c_str(),
                  c.baseline.c_str(), ratio, wall ? "wall" : "cpu ");
    std::cout << line;
    if (c.target > 0)
      std::cout << (ratio <= c.target ? "  (target <= " : "  (OVER target ") << c.target << "x)";
    std::cout << "\n";
  }
}

int run_with_ratios(int argc, char** argv, std::vector<Comparison> comparisons) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  RatioReporter reporter(std::move(comparisons));
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  return 0;
}

}  // namespace memtrack::bench
