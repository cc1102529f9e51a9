/**
 * @file pytorch_model.hpp
 * @brief `PytorchModel`: PyTorch's CUDA caching allocator (c10/cuda/CUDACachingAllocator.cpp),
 * written from its documented behaviour and public source. docs/allocator-model.md lists every
 * rule with an example, and what is not modelled.
 */
#pragma once

#include <memtrack/sim/allocators/allocator_settings.hpp>
#include <memtrack/sim/allocators/device_memory_model.hpp>

#include <memory>

namespace memtrack::sim::allocators {

/// The device as the allocator sees it.
struct DeviceLimits {
  /// The bytes cudaMalloc may hand this process in total (the device minus the CUDA context and
  /// what others hold): a segment is obtained while reserved + its size <= capacity.
  std::uint64_t capacity{0};
  /// The device's total memory (what `per_process_memory_fraction` is a share of, and what an
  /// expandable segment reserves address space for); 0 means `capacity`.
  std::uint64_t device_total{0};
};

/**
 * @brief The caching allocator of one device.
 *
 * Best fit is a lookup in the cached blocks of the stream binned by size (8 bins per power of two)
 * and each bin kept in (size, address) order: a bitmap step and a binary search of one bin. An
 * operation moves at most the entries of one bin; memory is proportional to the blocks that
 * exist.
 */
class PytorchModel final : public DeviceMemoryModel {
 public:
  /**
   * @param settings the allocator's options
   * @param limits the device
   * @param addresses where new segments live; null for a `SequentialAddressSource` of its own
   * @throws std::invalid_argument when `limits.device_total` is below `limits.capacity`
   */
  PytorchModel(const AllocatorSettings& settings, DeviceLimits limits,
               SegmentAddressSource* addresses = nullptr);
  ~PytorchModel() override;
  PytorchModel(const PytorchModel&) = delete;
  PytorchModel& operator=(const PytorchModel&) = delete;
  PytorchModel(PytorchModel&&) = delete;
  PytorchModel& operator=(PytorchModel&&) = delete;

  [[nodiscard]] std::string_view name() const noexcept override { return "pytorch"; }
  [[nodiscard]] AllocateOutcome allocate(std::uint64_t stream, std::uint64_t bytes) override;
  [[nodiscard]] bool free(std::uint64_t address) override;
  void empty_cache() override;
  [[nodiscard]] std::uint64_t allocated() const noexcept override;
  [[nodiscard]] std::uint64_t reserved() const noexcept override;
  [[nodiscard]] std::uint64_t capacity() const noexcept override;
  [[nodiscard]] std::uint64_t largest_free_block() const override;
  [[nodiscard]] std::vector<SegmentInfo> segments() const override;

  /**
   * @brief Replaces the model's state with `segments` (a recording that began mid-run: the
   * segments that existed and their blocks). Free blocks are cached as if just freed.
   * @throws std::invalid_argument when the blocks do not tile a segment, two free (or unmapped)
   * blocks are neighbours, a non-expandable segment has unmapped blocks, two segments overlap, or
   * the mapped bytes exceed the capacity; the model is then empty
   */
  void restore(const std::vector<SegmentInfo>& segments);

  /// @return the number of blocks (allocated, free and unmapped) the model holds
  [[nodiscard]] std::size_t block_count() const noexcept;

  /**
   * @brief The block size PyTorch gives a request (`round_size`): 512 at least, a multiple of
   * 512, or the next of `roundup_power2_divisions` steps between powers of two.
   * @return the size, or nothing when it exceeds 2^64 - 1
   */
  [[nodiscard]] static std::optional<std::uint64_t> round_size(const AllocatorSettings& settings,
                                                               std::uint64_t bytes) noexcept;

  /// @return the size of the segment a (rounded) request gets: 2 MiB, 20 MiB, or itself rounded up
  /// to 2 MiB; nothing when that exceeds 2^64 - 1
  [[nodiscard]] static std::optional<std::uint64_t> segment_size(std::uint64_t rounded) noexcept;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace memtrack::sim::allocators
