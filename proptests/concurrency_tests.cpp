// Several threads drive one SharedMemoryTracker. Checked: no limit is exceeded at any moment; every
// recorded history is linearizable per device against the sequential reference model (a
// Wing-Gong search with memoization, partitioned by device); and the final state equals the
// model's after applying the same operations in that order. Runs under the tsan preset in CI.
#include <memtrack/shared_memory_tracker.hpp>
#include <memtrack/sim/lockstep.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <random>
#include <set>
#include <thread>
#include <tuple>
#include <vector>

namespace memtrack::proptest {
namespace {

using sim::Operation;

struct Event {
  Operation operation;
  sim::CoreOutcome outcome;
  std::uint64_t invoked{0};   ///< logical time just before the call
  std::uint64_t returned{0};  ///< logical time just after it returned
};

GpuConfig contended_config() {
  return GpuConfig{.gpus = {{.id = 0, .total_bytes = 1000}, {.id = 3, .total_bytes = 700}},
                   .memory_fraction = Fraction::parse("1").value(),
                   .cpu_memory_limit = 500};
}

const DevicePlacement devices[] = {Cpu{}, Gpu{0}, Gpu{3}};

// Wing & Gong: try every operation that may take effect first (no other pending operation
// returned before it was invoked), check its outcome against the model, recurse; a complete order
// must also end at the tracker's final peak. Failed states are memoized by (set of operations
// done, peak so far, count so far): allocated depends only on the set; the peak and the count
// also on the order (the count never goes below 0: a free while it is 0 leaves it there), so the
// order found must end at the tracker's final peak and count.
class LinearizabilityChecker {
 public:
  LinearizabilityChecker(const std::vector<Event>& history, const sim::ReferenceTracker& model,
                         DevicePlacement device, std::uint64_t final_peak,
                         std::uint64_t final_count)
      : history_(history),
        model_(model),
        device_(device),
        final_peak_(final_peak),
        final_count_(final_count) {}

  /// @return an order of the history that the sequential model accepts, if any
  std::optional<std::vector<std::size_t>> find() {
    std::vector<std::size_t> order;
    if (search(0, model_, order)) return order;
    return std::nullopt;
  }

 private:
  bool search(std::uint64_t done, const sim::ReferenceTracker& model,
              std::vector<std::size_t>& order) {
    if (order.size() == history_.size()) {
      return model.peak(device_) == final_peak_ && model.count(device_) == final_count_;
    }
    const auto key =
        std::tuple{done, sim::to_u64(model.peak(device_)), sim::to_u64(model.count(device_))};
    if (failed_.count(key) != 0) return false;
    std::uint64_t earliest_return = UINT64_MAX;
    for (std::size_t i = 0; i < history_.size(); ++i) {
      if ((done & (1ULL << i)) == 0)
        earliest_return = std::min(earliest_return, history_[i].returned);
    }
    for (std::size_t i = 0; i < history_.size(); ++i) {
      if ((done & (1ULL << i)) != 0 || history_[i].invoked > earliest_return) continue;
      sim::ReferenceTracker next = model;
      const auto outcome = sim::apply_to_reference(next, history_[i].operation);
      if (sim::compare_outcomes(history_[i].outcome, outcome)) continue;
      order.push_back(i);
      if (search(done | (1ULL << i), next, order)) return true;
      order.pop_back();
    }
    failed_.insert(key);
    return false;
  }

  const std::vector<Event>& history_;
  sim::ReferenceTracker model_;
  DevicePlacement device_;
  std::uint64_t final_peak_;
  std::uint64_t final_count_;
  std::set<std::tuple<std::uint64_t, std::uint64_t, std::uint64_t>> failed_;
};

struct RoundResult {
  std::vector<Event> events;
  bool limit_exceeded{false};
  std::string violation;
};

RoundResult run_round(SharedMemoryTracker& shared, unsigned threads, int operations_per_thread,
                      std::uint64_t seed) {
  std::atomic<std::uint64_t> clock{0};
  std::atomic<bool> go{false};
  std::atomic<unsigned> finished{0};
  std::vector<std::vector<Event>> per_thread(threads);
  RoundResult result;
  std::vector<std::thread> workers;
  for (unsigned t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      std::mt19937_64 random(seed * 1000 + t);
      std::map<DevicePlacement, std::vector<std::uint64_t>> mine;  // this thread's live blocks
      while (!go.load())
        std::this_thread::yield();
      for (int i = 0; i < operations_per_thread; ++i) {
        const DevicePlacement device = devices[random() % 3];
        Operation operation;
        auto& live = mine[device];
        if (random() % 10 < 6 || (live.empty() && random() % 2 == 0)) {
          static const std::uint64_t sizes[] = {0, 100, 200, 250, 300, 350, 500};
          operation = Operation::allocate(device, sizes[random() % 7]);
        } else if (!live.empty()) {
          operation = Operation::deallocate(device, live.back());
        } else {
          operation = Operation::deallocate(device, 1 + random() % 400);  // may be invalid
        }
        Event event{operation, {}, clock.fetch_add(1), 0};
        event.outcome = sim::apply_to_core(shared, operation);
        event.returned = clock.fetch_add(1);
        if (event.outcome.ok && operation.kind == Operation::Kind::Allocate) {
          live.push_back(operation.bytes);
        } else if (event.outcome.ok && operation.kind == Operation::Kind::Deallocate &&
                   !live.empty() && live.back() == operation.bytes) {
          live.pop_back();
        }
        per_thread[t].push_back(event);
      }
      // Free what is left so the next round starts from a known state.
      for (auto& [device, blocks] : mine) {
        for (const std::uint64_t bytes : blocks) {
          const Operation operation = Operation::deallocate(device, bytes);
          Event event{operation, {}, clock.fetch_add(1), 0};
          event.outcome = sim::apply_to_core(shared, operation);
          event.returned = clock.fetch_add(1);
          per_thread[t].push_back(event);
        }
      }
      finished.fetch_add(1);
    });
  }
  // The monitor: at every moment, every device's allocated stays within its limit, and a
  // snapshot satisfies rule 9.
  std::thread monitor([&] {
    while (!go.load())
      std::this_thread::yield();
    while (finished.load() < threads) {
      for (const DevicePlacement d : devices) {
        if (shared.allocated(d) > shared.limit(d)) {
          result.limit_exceeded = true;
          result.violation = d.to_string() + " allocated " + std::to_string(shared.allocated(d)) +
                             " > limit " + std::to_string(shared.limit(d));
        }
      }
      const MemoryTracker snapshot = shared.snapshot();
      for (const DevicePlacement d : devices) {
        if (!(snapshot.allocated(d) <= snapshot.peak(d) && snapshot.peak(d) <= snapshot.limit(d))) {
          result.limit_exceeded = true;
          result.violation = d.to_string() + " breaks allocated <= peak <= limit in a snapshot";
        }
      }
    }
  });
  go = true;
  for (auto& worker : workers)
    worker.join();
  monitor.join();
  for (auto& events : per_thread) {
    result.events.insert(result.events.end(), events.begin(), events.end());
  }
  return result;
}

TEST(Concurrency, SharedTrackerIsLinearizablePerDeviceAndNeverExceedsALimit) {
  const GpuConfig config = contended_config();
  const unsigned threads = 4;
  const int rounds = 400;
  std::size_t events_checked = 0;
  for (int round = 0; round < rounds; ++round) {
    SharedMemoryTracker shared(MemoryTracker::create(config).value());
    const RoundResult result = run_round(shared, threads, 6, static_cast<std::uint64_t>(round));
    ASSERT_FALSE(result.limit_exceeded) << "round " << round << ": " << result.violation;

    // The model after the linearized histories, device by device.
    MemoryTracker final_state = shared.snapshot();
    sim::ReferenceTracker model = *sim::ReferenceTracker::create(config);
    for (const DevicePlacement d : devices) {
      std::vector<Event> history;
      for (const Event& event : result.events) {
        if (event.operation.device == d) history.push_back(event);
      }
      ASSERT_LE(history.size(), 64U);
      const auto order = LinearizabilityChecker(history, model, d, final_state.peak(d),
                                                final_state.allocation_count(d))
                             .find();
      ASSERT_TRUE(order.has_value()) << "round " << round << ": the history on " << d.to_string()
                                     << " is not linearizable against the sequential model";
      for (const std::size_t i : *order)
        (void)sim::apply_to_reference(model, history[i].operation);
      events_checked += history.size();
    }
    // Same final state: per device (peaks included), then everything after a reset of peaks
    // (total_peak depends on how devices interleaved, which the per-device search does not fix).
    for (const DevicePlacement d : devices) {
      ASSERT_EQ(model.allocated(d), final_state.allocated(d)) << d.to_string();
      ASSERT_EQ(model.peak(d), final_state.peak(d)) << d.to_string();
      ASSERT_EQ(model.count(d), final_state.allocation_count(d)) << d.to_string();
    }
    final_state.reset_peak();
    model.reset_peak();
    const auto difference = sim::compare_state(final_state, model, 1U);
    ASSERT_FALSE(difference.has_value()) << "round " << round << ": " << *difference;
  }
  std::cout << events_checked << " concurrent events checked for linearizability\n";
}

// Many threads race for the last slots of one device. Check and record are one atomic step, so
// the number of granted, not yet freed allocations never exceeds the slots.
TEST(Concurrency, NoRaceBetweenCheckAndRecordUnderContention) {
  constexpr std::uint64_t block = 100;
  constexpr std::uint64_t slots = 2;
  SharedMemoryTracker shared(
      MemoryTracker::create(GpuConfig{.gpus = {{.id = 0, .total_bytes = block * slots}},
                                      .memory_fraction = Fraction::parse("1").value(),
                                      .cpu_memory_limit = 0})
          .value());
  std::atomic<std::uint64_t> outstanding{0};
  std::atomic<std::uint64_t> worst{0};
  std::vector<std::thread> workers;
  for (int t = 0; t < 6; ++t) {
    workers.emplace_back([&] {
      for (int i = 0; i < 30000; ++i) {
        if (!shared.allocate(Gpu{0}, block)) continue;
        const std::uint64_t now = outstanding.fetch_add(1) + 1;
        std::uint64_t seen = worst.load();
        while (now > seen && !worst.compare_exchange_weak(seen, now)) {
        }
        outstanding.fetch_sub(1);
        (void)shared.deallocate(Gpu{0}, block);
      }
    });
  }
  for (auto& worker : workers)
    worker.join();
  EXPECT_LE(worst.load(), slots);
  EXPECT_EQ(shared.allocated(Gpu{0}), 0U);
  EXPECT_LE(shared.peak(Gpu{0}), block * slots);
}

}  // namespace
}  // namespace memtrack::proptest
