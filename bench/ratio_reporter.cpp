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
    const double ratio =
        subject->second.GetAdjustedRealTime() / baseline->second.GetAdjustedRealTime();
    char line[256];
    std::snprintf(line, sizeof line, "  %-44s / %-40s = %6.2fx", c.subject.c_str(),
                  c.baseline.c_str(), ratio);
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
