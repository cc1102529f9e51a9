/**
 * @file exact_model.hpp
 * @brief `ExactModel`: memory as one counter, each allocation exactly the bytes requested.
 */
#pragma once

#include <memtrack/sim/allocators/device_memory_model.hpp>

#include <memory>
#include <unordered_map>

namespace memtrack::sim::allocators {

/**
 * @brief The accounting memtrack did before allocator models: an allocation fits while the bytes
 * allocated plus the request stay within the capacity. Nothing is cached, so reserved equals
 * allocated, and each allocation is reported as a segment of its own.
 */
class ExactModel final : public DeviceMemoryModel {
 public:
  /**
   * @param capacity the bytes the device may hold
   * @param addresses where allocations live; null for a `SequentialAddressSource` of its own
   */
  explicit ExactModel(std::uint64_t capacity, SegmentAddressSource* addresses = nullptr);

  [[nodiscard]] std::string_view name() const noexcept override { return "exact"; }
  [[nodiscard]] AllocateOutcome allocate(std::uint64_t stream, std::uint64_t bytes) override;
  [[nodiscard]] bool free(std::uint64_t address) override;
  void empty_cache() override {}
  [[nodiscard]] std::uint64_t allocated() const noexcept override { return allocated_; }
  [[nodiscard]] std::uint64_t reserved() const noexcept override { return allocated_; }
  [[nodiscard]] std::uint64_t capacity() const noexcept override { return capacity_; }
  [[nodiscard]] std::uint64_t largest_free_block() const noexcept override { return 0; }
  [[nodiscard]] std::vector<SegmentInfo> segments() const override;

 private:
  struct Live {
    std::uint64_t size;
    std::uint64_t stream;
  };
  std::uint64_t capacity_;
  std::uint64_t allocated_{0};  ///< Invariant: the sum of live_'s sizes, <= capacity_.
  std::unique_ptr<SequentialAddressSource> own_addresses_;
  SegmentAddressSource* addresses_;
  std::unordered_map<std::uint64_t, Live> live_;  ///< by address
};

}  // namespace memtrack::sim::allocators
