// Runs RapidCheck properties with memtrack's budgets, and persists shrunk counterexamples.
#pragma once

#include <memtrack/sim/scenario.hpp>

#include <gtest/gtest.h>
#include <rapidcheck.h>

#include <filesystem>
#include <optional>
#include <sstream>
#include <string>

namespace memtrack::proptest {

/**
 * @brief The number of test cases a property runs: `default_cases` scaled by the environment.
 *
 * `MEMTRACK_PROPTEST_SCALE=N` multiplies it (a soak), `MEMTRACK_PROPTEST_SCALE=1/N` divides it
 * (sanitizer builds). When `RC_PARAMS` sets `max_success`, that wins.
 */
[[nodiscard]] int scaled_cases(int default_cases);

/// The folder regressions are written to and replayed from: `MEMTRACK_REGRESSIONS_DIR`, else
/// `proptests/regressions` in the source tree.
[[nodiscard]] std::filesystem::path regressions_dir();

/// Writes a failing scenario to the regressions folder as a trace (`NAME-HASH.trace`, named by
/// its content): its configuration, then each operation with the reference model's outcome.
/// @return the path written
std::filesystem::path save_regression(const std::string& property, const sim::Scenario& scenario);

/**
 * @brief Checks a RapidCheck property as the current GoogleTest test, with `scaled_cases` cases.
 * Honors `RC_PARAMS` (seed, max_size, noshrink, reproduce...); `seed_offset` gives each shard
 * of a property its own cases. Fails the test with RapidCheck's
 * report, which includes the `reproduce` string.
 * @return whether the property held
 */
template <class Testable>
bool check_property(int default_cases, Testable&& testable, std::uint64_t seed_offset = 0) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  rc::detail::TestMetadata metadata;
  metadata.id = std::string(info->test_suite_name()) + "/" + info->name();
  metadata.description = info->name();
  rc::detail::TestParams params = rc::detail::configuration().testParams;
  params.maxSuccess = scaled_cases(default_cases);
  // Shards of one property explore different cases, reproducibly from the one seed.
  params.seed += seed_offset * 0x9E3779B97F4A7C15ULL;
  // RapidCheck's Debian build misbehaves with max_size above 100.
  if (params.maxSize > 100) params.maxSize = 100;
  const auto result = rc::detail::checkTestable(std::forward<Testable>(testable), metadata, params);
  if (result.template is<rc::detail::SuccessResult>()) return true;
  std::ostringstream report;
  rc::detail::printResultMessage(result, report);
  ADD_FAILURE() << report.str();
  return false;
}

}  // namespace memtrack::proptest
