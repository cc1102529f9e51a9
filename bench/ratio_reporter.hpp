// A Google Benchmark reporter that, after the usual table, prints each benchmark's time as a
// ratio of a baseline measured in the same run.
#pragma once

#include <benchmark/benchmark.h>

#include <map>
#include <string>
#include <vector>

namespace memtrack::bench {

struct Comparison {
  std::string subject;    ///< benchmark name (as reported, e.g. "BM_SharedTracker/threads:2")
  std::string baseline;   ///< benchmark name of its baseline
  double target;          ///< the ratio the subject should stay under (0: report only)
  bool wall_time{false};  ///< compare wall time even where both measure CPU time (file reads)
};

class RatioReporter : public benchmark::ConsoleReporter {
 public:
  explicit RatioReporter(std::vector<Comparison> comparisons)
      : comparisons_(std::move(comparisons)) {}

  void ReportRuns(const std::vector<Run>& runs) override;
  void Finalize() override;

 private:
  std::vector<Comparison> comparisons_;
  std::map<std::string, Run> runs_;
};

/// Runs every registered benchmark, then prints the ratios. @return the process exit code
int run_with_ratios(int argc, char** argv, std::vector<Comparison> comparisons);

}  // namespace memtrack::bench
