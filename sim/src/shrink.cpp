#include <memtrack/sim/shrink.hpp>

#include <algorithm>

namespace memtrack::sim {

Scenario shrink_scenario(Scenario failing, const std::function<bool(const Scenario&)>& still_fails,
                         std::size_t max_tries) {
  std::size_t tries = 0;
  const auto fails = [&](const Scenario& candidate) {
    ++tries;
    return still_fails(candidate);
  };
  // Remove chunks of operations, halving the chunk size down to single operations (ddmin's
  // complement step). Each removal that keeps the failure is kept.
  for (std::size_t chunk = std::max<std::size_t>(failing.operations.size() / 2, 1); chunk >= 1;
       chunk /= 2) {
    bool removed = true;
    while (removed && tries < max_tries) {
      removed = false;
      for (std::size_t start = 0; start < failing.operations.size() && tries < max_tries;) {
        Scenario candidate = failing;
        const auto first = candidate.operations.begin() + static_cast<std::ptrdiff_t>(start);
        const auto count =
            static_cast<std::ptrdiff_t>(std::min(chunk, candidate.operations.size() - start));
        candidate.operations.erase(first, first + count);
        if (fails(candidate)) {
          failing = std::move(candidate);
          removed = true;
        } else {
          start += chunk;
        }
      }
    }
    if (chunk == 1) break;
  }
  // Remove GPUs one at a time.
  for (std::size_t i = 0; i < failing.config.gpus.size() && tries < max_tries;) {
    Scenario candidate = failing;
    candidate.config.gpus.erase(candidate.config.gpus.begin() + static_cast<std::ptrdiff_t>(i));
    if (fails(candidate)) {
      failing = std::move(candidate);
    } else {
      ++i;
    }
  }
  return failing;
}

}  // namespace memtrack::sim
