// Model-based property: random configs and operation sequences, core and reference in lockstep.
#include "driver.hpp"
#include "generators.hpp"
#include "harness.hpp"

#include <memtrack/sim/shrink.hpp>

#include <gtest/gtest.h>
#include <rapidcheck.h>

#include <chrono>
#include <iostream>

namespace memtrack::proptest {
namespace {

// Each shard runs this many cases by default; two shards check well over 1,000,000 operations.
constexpr int cases_per_shard = 9000;
constexpr std::uint64_t operations_per_shard = 500'000;

void run_shard(const std::string& name, std::uint64_t shard) {
  Coverage coverage;
  std::optional<sim::Scenario> last_failure;
  const auto started = std::chrono::steady_clock::now();
  const bool held = check_property(
      cases_per_shard,
      [&] {
        const GpuConfig config = *gen_config();
        const std::vector<AbstractOp> operations = *gen_operations();
        RunResult result = run_abstract(config, operations, coverage);
        if (result.divergence) {
          last_failure = result.scenario;
          RC_FAIL(result.divergence->to_string());
        }
      },
      shard);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::cout << name << ": " << coverage.operations_checked << " operations checked in lockstep in "
            << coverage.scenarios << " scenarios (longest " << coverage.longest_sequence
            << " operations), " << seconds << " s\n";
  for (std::size_t i = 0; i < covered_classes; ++i) {
    std::cout << "  " << to_string(static_cast<Covered>(i)) << ": " << coverage.hits[i] << "\n";
  }

  // With shrinking off (RC_PARAMS=noshrink=1, as the mutation check runs), report and stop.
  if (!held && last_failure && !rc::detail::configuration().testParams.disableShrinking) {
    // RapidCheck shrank the generated case; shrink the concrete operations further and keep them.
    const sim::Scenario minimal = sim::shrink_scenario(
        *last_failure, [](const sim::Scenario& s) { return sim::run_scenario(s).has_value(); });
    const auto path = save_regression(name, minimal);
    ADD_FAILURE() << "minimal failing scenario (" << minimal.operations.size()
                  << " operations) written to " << path.string()
                  << "\nreplay it with: memtrack_proptests --gtest_filter='Regressions.*'\n"
                  << sim::run_scenario(minimal).value_or(sim::Divergence{}).to_string();
  }
  if (!held) return;
  if (scaled_cases(cases_per_shard) >= cases_per_shard && !std::getenv("RC_PARAMS")) {
    for (std::size_t i = 0; i < covered_classes; ++i) {
      EXPECT_GT(coverage.hits[i], 0U)
          << "the default run never reached '" << to_string(static_cast<Covered>(i))
          << "': the generators no longer aim at that boundary";
    }
    EXPECT_GE(coverage.operations_checked, operations_per_shard);
  }
}

TEST(LockstepProperty, Shard0) {
  run_shard("lockstep-shard0", 0);
}
TEST(LockstepProperty, Shard1) {
  run_shard("lockstep-shard1", 1);
}

// k / 10^places as decimal text, e.g. (925, 3) -> "0.925", (5, 0) -> "5".
std::string decimal_text(std::uint64_t k, int places) {
  std::uint64_t scale = 1;
  for (int i = 0; i < places; ++i)
    scale *= 10;
  if (places == 0) return std::to_string(k);
  const std::string fraction = std::to_string(k % scale);
  return std::to_string(k / scale) + "." +
         std::string(static_cast<std::size_t>(places) - fraction.size(), '0') + fraction;
}

TEST(FractionProperty, DecimalTextParsesToTheExactRational) {
  check_property(2000, [] {
    const int places = *rc::gen::inRange(1, 19);
    std::uint64_t scale = 1;
    for (int i = 0; i < places; ++i)
      scale *= 10;
    const std::uint64_t k = *rc::gen::inRange<std::uint64_t>(1, scale + 1);
    // The same value as a decimal ("0.925") or, with two places fewer, a percentage ("92.5%").
    const bool percent = places >= 2 && *rc::gen::arbitrary<bool>();
    const std::string text = percent ? decimal_text(k, places - 2) + "%" : decimal_text(k, places);
    const boost::multiprecision::cpp_rational expected{sim::BigInt(k), sim::BigInt(scale)};
    const auto parsed = Fraction::parse(text);
    RC_ASSERT(parsed.has_value());
    const bool exact =
        boost::multiprecision::cpp_rational(sim::BigInt(parsed->numerator()),
                                            sim::BigInt(parsed->denominator())) == expected;
    RC_ASSERT(exact);
    RC_ASSERT(Fraction::parse(parsed->to_string()).value() == *parsed);
  });
}

TEST(FractionProperty, DoubleConvertsToItsExactBinaryValue) {
  check_property(2000, [] {
    // Any double in (2^-10, 1]: its exact value always has a 64-bit denominator.
    const double value =
        *rc::gen::map(rc::gen::inRange<std::uint64_t>(1, (1ULL << 53U) + 1),
                      [](std::uint64_t m) { return static_cast<double>(m) / 9007199254740992.0; });
    const auto fraction = Fraction::from_double(value);
    if (value < 1.0 / 1024) {
      RC_SUCCEED("below 2^-10");
    }
    RC_ASSERT(fraction.has_value());
    const bool exact = boost::multiprecision::cpp_rational(sim::BigInt(fraction->numerator()),
                                                           sim::BigInt(fraction->denominator())) ==
                       boost::multiprecision::cpp_rational(value);
    RC_ASSERT(exact);
  });
}

}  // namespace
}  // namespace memtrack::proptest
