/**
 * @file modelled_gpus.hpp
 * @brief The `pytorch` allocator model of every GPU of a replay (internal to `Replayer`): one
 * `PytorchModel` per GPU fed the recording's segment addresses, its allocator truth (segment
 * events, layouts, `oom`, `check reserved=`) verified as the replay goes, and a second model
 * without a limit, started only when the first nears its capacity, for what the device needs.
 */
#pragma once

#include <memtrack/sim/allocators/pytorch_model.hpp>
#include <memtrack/traces/replay.hpp>
#include <memtrack/traces/trace.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace memtrack::traces::detail {

class ModelledGpus {
 public:
  /**
   * @param options the settings and each GPU's limits
   * @param gpus the replay's GPU ids, with the tracker's limit of each (the capacity of a GPU the
   * options do not name)
   */
  ModelledGpus(const PytorchReplayOptions& options,
               const std::vector<std::pair<std::uint32_t, std::uint64_t>>& gpus);
  ~ModelledGpus();
  ModelledGpus(const ModelledGpus&) = delete;
  ModelledGpus& operator=(const ModelledGpus&) = delete;
  ModelledGpus(ModelledGpus&&) = delete;
  ModelledGpus& operator=(ModelledGpus&&) = delete;

  /// A determined difference between the model and the recording (the replay fails on it).
  using Difference = std::optional<std::string>;

  /// What the model did with an allocation.
  struct Placed {
    bool ok{false};
    std::optional<sim::allocators::OutOfMemory> refused;
    Difference difference;
  };

  /**
   * @brief An allocation (or a baseline) of `bytes` on replay GPU `gpu`.
   * @param key the recorded address, naming the allocation for its free; none: freed by size
   * @param baseline a `baseline` event: taken from the start layout where it holds that block
   */
  Placed allocate(std::uint32_t gpu, std::optional<std::uint64_t> key, std::uint64_t stream,
                  std::uint64_t bytes, bool baseline);

  /**
   * @brief The free of the allocation `key` (or, without one, of one of `bytes` bytes), refused by
   * the model or not.
   * @return a difference when the recording's allocator truth says otherwise
   */
  Difference free(std::uint32_t gpu, std::optional<std::uint64_t> key, std::uint64_t bytes);

  /// @brief Any allocator event of the trace (segment events, layouts, blocks), on replay GPU
  /// `gpu`.
  Difference allocator_event(std::uint32_t gpu, const TraceEvent& event);

  /**
   * @brief A recorded `oom`: with the recording's own capacity, the model must refuse the same
   * request. @param reproduced set to whether it did, when that was checked
   */
  Difference recorded_oom(std::uint32_t gpu, const TraceEvent& event,
                          std::optional<bool>& reproduced);

  /// @brief A `check reserved=`: verified where the device's start is known.
  Difference reserved_check(std::uint32_t gpu, std::uint64_t reserved);

  /// The replay left the recording on `gpu` (a refusal): its truth is no longer checked there.
  void depart(std::uint32_t gpu);

  /// @brief The end of the trace: recorded segment events not yet reproduced are a difference.
  Difference finish();

  /// @return each GPU's figures, by replay device
  [[nodiscard]] std::map<DevicePlacement, ModelledDevice> figures() const;

 private:
  struct Gpu;
  Gpu* find(std::uint32_t gpu);
  std::vector<std::unique_ptr<Gpu>> gpus_;
  PytorchReplayOptions options_;
};

}  // namespace memtrack::traces::detail
