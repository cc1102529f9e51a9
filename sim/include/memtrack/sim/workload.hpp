/**
 * @file workload.hpp
 * @brief Workload generators: deterministic operation streams from a seed.
 *
 * The same seed gives the same operations on every machine: the random numbers come from
 * SplitMix64 and are turned into ranges by exact integer arithmetic, never by the standard
 * library's distributions (whose results differ between implementations).
 */
#pragma once

#include <memtrack/device_placement.hpp>
#include <memtrack/sim/lockstep.hpp>
#include <memtrack/sim/operation.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace memtrack::sim {

/// SplitMix64: a small, fast generator with identical output everywhere.
class SplitMix64 {
 public:
  explicit SplitMix64(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next();
  /// @return a uniform value in [0, bound) (bound > 0), without modulo bias
  std::uint64_t below(std::uint64_t bound);
  /// @return a uniform value in [low, high]
  std::uint64_t between(std::uint64_t low, std::uint64_t high);

 private:
  std::uint64_t state_;
};

/// Read access to the tracker a workload drives (the production tracker or the model).
class TrackerView {
 public:
  virtual ~TrackerView() = default;
  [[nodiscard]] virtual std::uint64_t available(DevicePlacement device) const = 0;
  [[nodiscard]] virtual std::uint64_t allocated(DevicePlacement device) const = 0;
  [[nodiscard]] virtual std::uint64_t limit(DevicePlacement device) const = 0;
  /// @return the concrete devices: the CPU, then GPUs by id
  [[nodiscard]] virtual const std::vector<DevicePlacement>& devices() const = 0;
};

/// A `TrackerView` of any tracker with the MemoryTracker queries.
template <class Tracker>
class TrackerViewOf final : public TrackerView {
 public:
  explicit TrackerViewOf(const Tracker& tracker, std::vector<DevicePlacement> devices)
      : tracker_(tracker), devices_(std::move(devices)) {}
  std::uint64_t available(DevicePlacement d) const override { return tracker_.available(d); }
  std::uint64_t allocated(DevicePlacement d) const override { return tracker_.allocated(d); }
  std::uint64_t limit(DevicePlacement d) const override { return tracker_.limit(d); }
  const std::vector<DevicePlacement>& devices() const override { return devices_; }

 private:
  const Tracker& tracker_;
  std::vector<DevicePlacement> devices_;
};

/// A stream of operations that may react to what happened to the previous ones.
class Workload {
 public:
  virtual ~Workload() = default;
  /// @return the next operation, or nothing when the workload is finished (ramp)
  virtual std::optional<Operation> next(const TrackerView& state) = 0;
  /// Tells the workload how its last operation turned out.
  virtual void observe(const Operation& operation, const CoreOutcome& outcome) = 0;
};

/// The workloads, by name: registry, churn, adversarial, ramp, serving.
[[nodiscard]] const std::vector<std::string_view>& workload_names();

/// @return a workload by name, seeded, or a `ParseError` naming the known ones
[[nodiscard]] Result<std::unique_ptr<Workload>> make_workload(std::string_view name,
                                                              std::uint64_t seed);

/// An embedding model the registry workload loads: its name and weight bytes.
struct ModelSpec {
  std::string_view name;
  std::uint64_t bytes;
};

/// The registry's model set: embedding models from tens of MB to several GB (fp16 weights plus
/// a working buffer, approximate sizes).
[[nodiscard]] const std::vector<ModelSpec>& registry_models();

}  // namespace memtrack::sim
