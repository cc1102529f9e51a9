/**
 * @file lockstep.hpp
 * @brief The lockstep checker: the one place that compares a production tracker with the
 * reference model, operation by operation.
 *
 * Property tests, `memtrack sim` and trace replay all use it. After every operation it compares
 * the outcome (success or error kind, resolved device, every number in the error) and then the
 * complete observable state: allocated, available, peak, limit and count of every device, the
 * `Auto` pool queries, `summary()`, `gpu_info()`, an unknown GPU, and `can_allocate` at sizes
 * around each available.
 */
#pragma once

#include <memtrack/memory_tracker.hpp>
#include <memtrack/sim/operation.hpp>
#include <memtrack/sim/reference_tracker.hpp>

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <iterator>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace memtrack::sim {

/// What a production tracker must offer to be checked (MemoryTracker, or a deliberately wrong
/// tracker in a test).
template <class T>
concept CheckableTracker = requires(T tracker, const T& view, DevicePlacement p, std::uint64_t n) {
  { T::create(GpuConfig{}) } -> std::same_as<Result<T>>;
  { tracker.allocate(p, n) } -> std::same_as<Result<DevicePlacement>>;
  { tracker.deallocate(p, n) } -> std::same_as<Result<void>>;
  { tracker.reset_peak(p) } -> std::same_as<Result<void>>;
  tracker.reset_peak();
  { view.can_allocate(p, n) } -> std::same_as<bool>;
  { view.available(p) } -> std::same_as<std::uint64_t>;
  { view.allocated(p) } -> std::same_as<std::uint64_t>;
  { view.peak(p) } -> std::same_as<std::uint64_t>;
  { view.limit(p) } -> std::same_as<std::uint64_t>;
  { view.allocation_count(p) } -> std::same_as<std::uint64_t>;
  { view.summary() } -> std::same_as<MemorySummary>;
  { view.gpu_info(std::uint32_t{}) } -> std::same_as<Result<GpuMemoryInfo>>;
};

/// A disagreement between the production tracker and the reference model.
struct Divergence {
  std::size_t step{0};          ///< 1-based operation number; 0 for the config itself
  std::string operation;        ///< the operation's text, or "create"
  std::string what;             ///< the first difference found
  std::string core_state;       ///< the production tracker's state, one device a line
  std::string reference_state;  ///< the model's state, one device a line

  /// @return a report: step, operation, difference, and both states side by side
  [[nodiscard]] std::string to_string() const;
};

/// The outcome of one operation on the production tracker, in the model's terms.
struct CoreOutcome {
  bool ok{true};
  std::optional<DevicePlacement> resolved;
  std::optional<Error> error;
};

/// Applies `operation` to a production tracker (any with allocate, deallocate and reset_peak,
/// `SharedMemoryTracker` included).
template <class Tracker>
void apply_to_core(Tracker& tracker, const Operation& operation, CoreOutcome& outcome) {
  // Into an outcome the caller keeps: a `CoreOutcome` built afresh is cleared whole first (its
  // `Error`), a replay's cost per operation (issue 15).
  outcome.ok = true;
  outcome.resolved.reset();
  outcome.error.reset();
  switch (operation.kind) {
    case Operation::Kind::Allocate: {
      auto result = tracker.allocate(operation.device, operation.bytes);
      if (result) [[likely]] {
        outcome.resolved = *result;
      } else {
        outcome.ok = false;
        outcome.error = result.error();
      }
      break;
    }
    case Operation::Kind::Deallocate: {
      auto result = tracker.deallocate(operation.device, operation.bytes);
      if (!result) [[unlikely]] {
        outcome.ok = false;
        outcome.error = result.error();
      }
      break;
    }
    case Operation::Kind::ResetPeakAll:
      tracker.reset_peak();
      break;
    case Operation::Kind::ResetPeak: {
      auto result = tracker.reset_peak(operation.device);
      if (!result) {
        outcome.ok = false;
        outcome.error = result.error();
      }
      break;
    }
  }
}

/// The same, as a new outcome.
template <class Tracker>
CoreOutcome apply_to_core(Tracker& tracker, const Operation& operation) {
  CoreOutcome outcome;
  apply_to_core(tracker, operation, outcome);
  return outcome;
}

/// Applies `operation` to the reference model.
ReferenceOutcome apply_to_reference(ReferenceTracker& model, const Operation& operation);

/// @return the first difference between the two outcomes, or nothing when they agree
std::optional<std::string> compare_outcomes(const CoreOutcome& core,
                                            const ReferenceOutcome& reference);

/**
 * @brief Describes one value that differs between the production tracker and the model.
 * @param what the value, e.g. `gpu:3 allocated`
 * @return e.g. `gpu:3 allocated: production 5, reference 6`, with a note where the model's value is
 * past 2^64 - 1 (the core wrapped)
 */
[[nodiscard]] std::string describe_difference(std::string_view what, std::uint64_t core,
                                              const BigInt& reference);

/// @return a multi-line description of the model's state: each device's allocated, available,
/// peak, limit and count, one a line, then the `auto` pool's figures (as `describe` gives a
/// production tracker's)
[[nodiscard]] std::string describe_state(const ReferenceTracker& model);

/// @return a multi-line description of a production tracker's state
template <CheckableTracker Tracker>
std::string describe(const Tracker& tracker, const std::vector<DevicePlacement>& devices) {
  std::ostringstream out;
  for (const DevicePlacement d : devices) {
    out << d.to_string() << ": allocated " << tracker.allocated(d) << ", available "
        << tracker.available(d) << ", peak " << tracker.peak(d) << ", limit " << tracker.limit(d)
        << ", count " << tracker.allocation_count(d) << "\n";
  }
  out << "auto: allocated " << tracker.allocated(Auto{}) << ", available "
      << tracker.available(Auto{}) << ", total_peak " << tracker.peak(Auto{}) << ", limit "
      << tracker.limit(Auto{}) << "\n";
  return out.str();
}

/**
 * @brief The steps of `compare_state`: each device's values, then the `auto` pool's, summary()
 * and an unknown GPU's queries; the first difference ends the comparison.
 *
 * Each value of the model is compared where it is: no arbitrary-precision arithmetic unless a
 * value differs. The model's available(d) is limit(d) - allocated(d); once its allocated(d)
 * was found equal to the core's, it equals the core's available(d) exactly when limit(d) =
 * core available + core allocated. The model's `Auto` figures are, by its rules, the sum of
 * the devices' allocated (rule 4's pool), the largest available (rule 7) and the sum of the
 * limits: taken from the devices' values once each was found equal, in 64 bits while they fit.
 */
template <CheckableTracker Tracker>
class StateComparison {
 public:
  StateComparison(const Tracker& tracker, const ReferenceTracker& model)
      : tracker_(tracker),
        model_(model),
        summary_(tracker.summary()),
        summary_allocated_(summary_.gpu_allocated.begin()),
        summary_available_(summary_.gpu_available.begin()) {}
  StateComparison(const StateComparison&) = delete;
  StateComparison& operator=(const StateComparison&) = delete;

  /**
   * @param unknown_gpu an id configured on neither, to check rule 3's queries
   * @return the first difference, or nothing when every query agrees
   */
  [[nodiscard]] std::optional<std::string> run(std::optional<std::uint32_t> unknown_gpu) {
    for (const auto& [device, account] : model_.accounts()) {
      if (auto d = compare_device(device, account)) return d;
    }
    if (auto d = compare_pool()) return d;
    const bool summary_agrees = summary_agrees_ &&
                                summary_allocated_ == summary_.gpu_allocated.end() &&
                                summary_available_ == summary_.gpu_available.end() &&
                                summary_.total_peak == model_.total_peak();
    if (!summary_agrees) {
      return std::string("summary() differs from the model's allocated/available/total_peak");
    }
    if (unknown_gpu) return compare_unknown(*unknown_gpu);
    return std::nullopt;
  }

 private:
  /// A sum of the devices' values in 64 bits.
  struct Sum {
    std::uint64_t value{0};
    bool wrapped{false};  ///< past 2^64 - 1: the model's own sum is compared instead
    void add(std::uint64_t n) {
      wrapped = wrapped || n > UINT64_MAX - value;
      value += n;
    }
  };

  /// `field` names the value after the device: "gpu:3 allocated".
  static std::optional<std::string> check(DevicePlacement device, std::string_view field,
                                          std::uint64_t core, const BigInt& reference) {
    if (reference == core) [[likely]]
      return std::nullopt;
    return describe_difference(device.to_string() + " " + std::string(field), core, reference);
  }

  static bool sums_to(std::uint64_t a, std::uint64_t b, const BigInt& total) {
    if (a <= UINT64_MAX - b) [[likely]]
      return total == a + b;
    return total == BigInt(a) + b;
  }

  template <class OfModel>
  static BigInt model_sum(const Sum& sum, OfModel&& of_model) {
    return sum.wrapped ? BigInt(of_model()) : BigInt(sum.value);
  }

  // can_allocate(p, n) must equal the model's at 0, available - 1, available, available + 1 and
  // 2^64 - 1: the places where an off-by-one or a wrap would show. The model's answer is its
  // rule 7, n <= available(p) (ReferenceTracker::can_allocate), taken from the model's available
  // once it was checked equal to the core's: the sizes are then exact in 64 bits (those outside
  // 0 .. 2^64 - 1 are skipped), and no size costs an arbitrary-precision operation.
  std::optional<std::string> check_can_allocate(DevicePlacement p, std::uint64_t available) const {
    const std::uint64_t sizes[] = {0, available - 1, available, available + 1, UINT64_MAX};
    const bool in_range[] = {true, available != 0, true, available != UINT64_MAX, true};
    for (std::size_t i = 0; i < std::size(sizes); ++i) {
      if (!in_range[i]) continue;
      const std::uint64_t n = sizes[i];
      const bool core = tracker_.can_allocate(p, n);
      if (core != (n <= available)) [[unlikely]] {
        return p.to_string() + " can_allocate(" + std::to_string(n) + "): production " +
               (core ? "true" : "false") + ", reference " + (core ? "false" : "true");
      }
    }
    return std::nullopt;
  }

  /// A configured device's values; adds them to the pool's sums and checks its summary() entry.
  std::optional<std::string> compare_device(DevicePlacement device,
                                            const ReferenceAccount& account) {
    const std::uint64_t core_allocated = tracker_.allocated(device);
    if (auto d = check(device, "allocated", core_allocated, account.allocated)) return d;
    const std::uint64_t core_available = tracker_.available(device);
    if (!sums_to(core_available, core_allocated, account.limit)) [[unlikely]] {
      return describe_difference(device.to_string() + " available", core_available,
                                 account.limit - account.allocated);
    }
    if (auto d = check(device, "peak", tracker_.peak(device), account.peak)) return d;
    const std::uint64_t core_limit = tracker_.limit(device);
    if (auto d = check(device, "limit", core_limit, account.limit)) return d;
    if (auto d = check(device, "count", tracker_.allocation_count(device), account.count)) return d;
    if (auto d = check_can_allocate(device, core_available)) return d;
    allocated_sum_.add(core_allocated);
    limit_sum_.add(core_limit);
    largest_available_ = std::max(largest_available_, core_available);
    if (device.is_gpu()) return compare_gpu(device, account, core_allocated, core_available);
    summary_agrees_ = summary_agrees_ && summary_.cpu_allocated == core_allocated &&
                      summary_.cpu_available == core_available;
    return std::nullopt;
  }

  /// A GPU's gpu_info() and its summary() entries (both ascend by GPU id).
  std::optional<std::string> compare_gpu(DevicePlacement device, const ReferenceAccount& account,
                                         std::uint64_t core_allocated,
                                         std::uint64_t core_available) {
    const auto info = tracker_.gpu_info(device.gpu_id());
    if (!info) return device.to_string() + " gpu_info: production says " + info.error().to_string();
    if (auto d = check(device, "gpu_info.allocated", info->allocated, account.allocated)) return d;
    if (auto d = check(device, "gpu_info.peak", info->peak, account.peak)) return d;
    if (auto d =
            check(device, "gpu_info.allocation_count", info->allocation_count, account.count)) {
      return d;
    }
    summary_agrees_ = summary_agrees_ && summary_allocated_ != summary_.gpu_allocated.end() &&
                      summary_allocated_->first == device.gpu_id() &&
                      summary_allocated_->second == core_allocated &&
                      summary_available_ != summary_.gpu_available.end() &&
                      summary_available_->first == device.gpu_id() &&
                      summary_available_->second == core_available;
    if (summary_agrees_) {
      ++summary_allocated_;
      ++summary_available_;
    }
    return std::nullopt;
  }

  /// The `auto` pool's values, from the devices' sums while they fit in 64 bits.
  std::optional<std::string> compare_pool() const {
    const DevicePlacement pool = Auto{};
    if (const std::uint64_t core = tracker_.allocated(Auto{});
        allocated_sum_.wrapped || core != allocated_sum_.value) [[unlikely]] {
      const BigInt reference = model_sum(allocated_sum_, [&] { return model_.allocated(Auto{}); });
      if (auto d = check(pool, "allocated", core, reference)) return d;
    }
    const std::uint64_t core_auto_available = tracker_.available(Auto{});
    if (auto d = check(pool, "available", core_auto_available, BigInt(largest_available_))) {
      return d;
    }
    if (auto d = check(pool, "peak (total_peak)", tracker_.peak(Auto{}), model_.total_peak())) {
      return d;
    }
    if (const std::uint64_t core = tracker_.limit(Auto{});
        limit_sum_.wrapped || core != limit_sum_.value) [[unlikely]] {
      const BigInt reference = model_sum(limit_sum_, [&] { return model_.limit(Auto{}); });
      if (auto d = check(pool, "limit", core, reference)) return d;
    }
    if (auto d = check(pool, "count", tracker_.allocation_count(Auto{}), model_.count(Auto{})))
      return d;
    return check_can_allocate(Auto{}, core_auto_available);
  }

  /// Rule 3: a GPU configured on neither has nothing and allows nothing.
  std::optional<std::string> compare_unknown(std::uint32_t unknown_gpu) const {
    const DevicePlacement unknown = Gpu{unknown_gpu};
    const auto name = [&] { return unknown.to_string() + " (unknown)"; };
    if (tracker_.allocated(unknown) != 0 || tracker_.available(unknown) != 0 ||
        tracker_.peak(unknown) != 0) [[unlikely]] {
      if (tracker_.allocated(unknown) != 0)
        return describe_difference(name() + " allocated", tracker_.allocated(unknown), 0);
      if (tracker_.available(unknown) != 0)
        return describe_difference(name() + " available", tracker_.available(unknown), 0);
      return describe_difference(name() + " peak", tracker_.peak(unknown), 0);
    }
    if (tracker_.can_allocate(unknown, 0))
      return name() + " can_allocate(0): production true, reference false";
    if (tracker_.gpu_info(unknown_gpu)) return name() + " gpu_info: production succeeded";
    return std::nullopt;
  }

  const Tracker& tracker_;
  const ReferenceTracker& model_;
  /// summary() is compared entry by entry with the model's accounts (both ascend by GPU id).
  const MemorySummary summary_;
  std::map<std::uint32_t, std::uint64_t>::const_iterator summary_allocated_;
  std::map<std::uint32_t, std::uint64_t>::const_iterator summary_available_;
  bool summary_agrees_{true};
  Sum allocated_sum_;
  Sum limit_sum_;
  std::uint64_t largest_available_{0};
};

/**
 * @brief Compares the complete observable state of a production tracker with the model.
 * @param unknown_gpu an id configured on neither, to check rule 3's queries
 * @return the first difference, or nothing when every query agrees
 *
 * Runs after every operation of every lockstep run, so agreement costs no string: a difference's
 * words are put together only once one is found.
 */
template <CheckableTracker Tracker>
std::optional<std::string> compare_state(const Tracker& tracker, const ReferenceTracker& model,
                                         std::optional<std::uint32_t> unknown_gpu) {
  return StateComparison<Tracker>(tracker, model).run(unknown_gpu);
}

/// @return the smallest GPU id not configured in `config`, if any
[[nodiscard]] std::optional<std::uint32_t> unconfigured_gpu_id(const GpuConfig& config);

/**
 * @brief A production tracker and the reference model driven in lockstep.
 *
 * `create` compares the config check itself; `apply` applies one operation to both and compares
 * the outcomes and then the full state. The first divergence is kept and returned.
 */
template <CheckableTracker Tracker = MemoryTracker>
class LockstepChecker {
 public:
  /// What `create` found.
  struct Start {
    std::optional<LockstepChecker> checker;  ///< when both accepted the config
    std::optional<Error> rejection;          ///< when both rejected it (the core's error)
    std::optional<Divergence> divergence;    ///< when they disagree
  };

  [[nodiscard]] static Start create(const GpuConfig& config) {
    Start start;
    ReferenceOutcome model_rejection;
    auto model = ReferenceTracker::create(config, &model_rejection);
    auto core = Tracker::create(config);
    if (core.has_value() != model.has_value()) {
      start.divergence =
          Divergence{0, "create",
                     core ? "the production tracker accepted a config the model rejects (" +
                                model_rejection.to_string() + ")"
                          : "the production tracker rejected a config the model accepts: " +
                                core.error().to_string(),
                     "", ""};
      return start;
    }
    if (!core) {
      if (core.error().kind != ErrorKind::InvalidConfig ||
          core.error().device != model_rejection.device) {
        start.divergence =
            Divergence{0, "create",
                       "both rejected the config but differently: production '" +
                           core.error().to_string() + "', reference " + model_rejection.to_string(),
                       "", ""};
        return start;
      }
      start.rejection = core.error();
      return start;
    }
    start.checker.emplace(LockstepChecker(std::move(*core), std::move(*model), config));
    if (auto difference = start.checker->compare()) {
      start.divergence = start.checker->divergence_at(0, "create", *difference);
      start.checker.reset();
    }
    return start;
  }

  /**
   * @brief Applies `operation` to both and compares outcome and full state.
   * @return the divergence, or nothing when they agree
   */
  std::optional<Divergence> apply(const Operation& operation) {
    ++steps_;
    last_core_ = apply_to_core(core_, operation);
    last_reference_ = apply_to_reference(model_, operation);
    if (auto difference = compare_outcomes(last_core_, last_reference_)) {
      return divergence_at(steps_, operation.to_string(), *difference);
    }
    if (auto difference = compare()) {
      return divergence_at(steps_, operation.to_string(), *difference);
    }
    return std::nullopt;
  }

  /// @return the production tracker
  [[nodiscard]] const Tracker& core() const { return core_; }
  /// @return the production tracker, to attach an observer (e.g. a trace recorder); changing it
  /// through this reference bypasses the check
  [[nodiscard]] Tracker& mutable_core() { return core_; }
  /// @return the reference model
  [[nodiscard]] const ReferenceTracker& reference() const { return model_; }
  /// @return the outcome of the last operation on the production tracker
  [[nodiscard]] const CoreOutcome& last_core_outcome() const { return last_core_; }
  /// @return the outcome of the last operation on the model
  [[nodiscard]] const ReferenceOutcome& last_reference_outcome() const { return last_reference_; }
  /// @return how many operations were applied
  [[nodiscard]] std::size_t steps() const { return steps_; }

 private:
  LockstepChecker(Tracker core, ReferenceTracker model, const GpuConfig& config)
      : core_(std::move(core)),
        model_(std::move(model)),
        unknown_gpu_(unconfigured_gpu_id(config)) {
    for (const auto& [device, account] : model_.accounts())
      devices_.push_back(device);
  }

  std::optional<std::string> compare() const { return compare_state(core_, model_, unknown_gpu_); }

  Divergence divergence_at(std::size_t step, std::string operation, std::string what) const {
    return Divergence{step, std::move(operation), std::move(what), describe(core_, devices_),
                      describe_state(model_)};
  }

  Tracker core_;
  ReferenceTracker model_;
  std::optional<std::uint32_t> unknown_gpu_;
  std::vector<DevicePlacement> devices_;
  std::size_t steps_{0};
  CoreOutcome last_core_;
  ReferenceOutcome last_reference_;
};

extern template class LockstepChecker<MemoryTracker>;

}  // namespace memtrack::sim
