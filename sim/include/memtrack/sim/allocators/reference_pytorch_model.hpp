/**
 * @file reference_pytorch_model.hpp
 * @brief `ReferencePytorchModel`: the caching allocator again, as plainly as possible, for the
 * lockstep property to hold `PytorchModel` against.
 *
 * Shares nothing with `PytorchModel` but the public value types: plain vectors of segments and
 * blocks searched by linear scans, every byte count a `boost::multiprecision::cpp_int` (so a sum
 * that wrapped in the fast model shows up as a difference). Speed is not a goal here.
 */
#pragma once

#include <memtrack/sim/allocators/allocator_settings.hpp>
#include <memtrack/sim/allocators/device_memory_model.hpp>
#include <memtrack/sim/allocators/pytorch_model.hpp>

#include <boost/multiprecision/cpp_int.hpp>

#include <memory>
#include <optional>
#include <vector>

namespace memtrack::sim::allocators {

class ReferencePytorchModel final : public DeviceMemoryModel {
 public:
  using BigInt = boost::multiprecision::cpp_int;

  /// The same parameters as `PytorchModel`'s.
  ReferencePytorchModel(const AllocatorSettings& settings, DeviceLimits limits,
                        SegmentAddressSource* addresses = nullptr);

  [[nodiscard]] std::string_view name() const noexcept override { return "pytorch-reference"; }
  [[nodiscard]] AllocateOutcome allocate(std::uint64_t stream, std::uint64_t bytes) override;
  [[nodiscard]] bool free(std::uint64_t address) override;
  void empty_cache() override;
  [[nodiscard]] std::uint64_t allocated() const noexcept override;
  [[nodiscard]] std::uint64_t reserved() const noexcept override;
  [[nodiscard]] std::uint64_t capacity() const noexcept override;
  [[nodiscard]] std::uint64_t largest_free_block() const override;
  [[nodiscard]] std::vector<SegmentInfo> segments() const override;

 private:
  struct Block {
    BigInt address;
    BigInt size;
    BlockState state{BlockState::free};
    BigInt cached_at;  ///< the pool's free-block lookups when it was last cached (GC age)
  };
  struct Segment {
    BigInt address;
    BigInt size;
    std::uint64_t stream{0};
    PoolKind pool{PoolKind::large};
    bool expandable{false};
    BigInt page;                ///< mapping granularity of an expandable segment
    std::vector<Block> blocks;  ///< in address order
  };
  /// A cached free block as best fit sees it.
  struct Cached {
    std::uint64_t stream;
    BigInt size;
    BigInt address;
    bool expandable;
    bool whole_segment;
  };

  // Each member is one rule; see the .cpp.
  [[nodiscard]] BigInt round(const BigInt& bytes) const;
  [[nodiscard]] static BigInt segment_bytes_for(const BigInt& rounded);
  [[nodiscard]] std::vector<Cached> cached(PoolKind pool) const;
  std::optional<BigInt> take_cached_block(PoolKind pool, std::uint64_t stream, const BigInt& size);
  std::optional<BigInt> new_memory(PoolKind pool, std::uint64_t stream, const BigInt& size,
                                   const BigInt& segment_bytes);
  std::optional<BigInt> grow_expandable(PoolKind pool, std::uint64_t stream, const BigInt& size);
  BigInt expandable_start(PoolKind pool, std::uint64_t stream, const BigInt& size);
  bool map(const BigInt& address, const BigInt& size);
  void unmap(const BigInt& address);
  void release_segment_of(const BigInt& address);
  bool release_oversize(PoolKind pool, std::uint64_t stream, const BigInt& size);
  void release_unsplit(PoolKind pool);
  void collect_garbage();
  void merge_around(std::size_t segment, std::size_t block);
  Allocation hand_out(const BigInt& address, const BigInt& size, std::uint64_t requested);
  [[nodiscard]] OutOfMemory refusal(std::uint64_t requested, const BigInt& rounded,
                                    const BigInt& segment_bytes) const;
  [[nodiscard]] std::pair<std::size_t, std::size_t> locate(const BigInt& address) const;
  BigInt& lookups(PoolKind pool) {
    return pool == PoolKind::small ? small_lookups_ : large_lookups_;
  }

  AllocatorSettings settings_;
  BigInt capacity_;
  BigInt device_total_;
  std::optional<BigInt> allowed_;
  std::optional<BigInt> gc_threshold_;
  std::unique_ptr<SequentialAddressSource> own_addresses_;
  SegmentAddressSource* addresses_;
  std::vector<Segment> segments_;  ///< in creation order
  BigInt small_lookups_;
  BigInt large_lookups_;
};

}  // namespace memtrack::sim::allocators
