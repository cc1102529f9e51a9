/**
 * @file device_memory_model.hpp
 * @brief `DeviceMemoryModel`: how one device's memory answers allocate and free, the interface
 * replay drives. Two models implement it: `ExactModel` (requested bytes against the capacity) and
 * `PytorchModel` (PyTorch's CUDA caching allocator, see docs/allocator-model.md).
 */
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace memtrack::sim::allocators {

/// What a block of a segment holds.
enum class BlockState : std::uint8_t {
  allocated,  ///< handed out and not yet freed
  free,       ///< cached by the allocator, mapped, reusable on its segment's stream
  unmapped,   ///< address space of an expandable segment with no physical memory behind it
};

/// The pool a segment serves: requests of at most 1 MiB (after rounding) or larger ones.
enum class PoolKind : std::uint8_t { small, large };

[[nodiscard]] std::string_view to_string(BlockState state) noexcept;
[[nodiscard]] std::string_view to_string(PoolKind pool) noexcept;

/// One block of a segment. Invariant (of every model): a segment's blocks tile it exactly, in
/// address order, and no two neighbours are both free (or both unmapped).
struct BlockInfo {
  std::uint64_t offset{0};  ///< from the segment's address
  std::uint64_t size{0};
  BlockState state{BlockState::free};

  friend bool operator==(const BlockInfo&, const BlockInfo&) = default;
};

/// One segment: memory obtained by one cudaMalloc, or one expandable segment's address range.
struct SegmentInfo {
  std::uint64_t address{0};
  std::uint64_t size{0};  ///< for an expandable segment, its whole reserved address range
  std::uint64_t stream{0};
  PoolKind pool{PoolKind::large};
  bool expandable{false};
  std::vector<BlockInfo> blocks;

  friend bool operator==(const SegmentInfo&, const SegmentInfo&) = default;
};

/// A successful allocation.
struct Allocation {
  std::uint64_t address{0};    ///< 0 for a request of 0 bytes, which takes no block
  std::uint64_t size{0};       ///< the block's size (at least the request, after rounding)
  std::uint64_t requested{0};  ///< the bytes asked for

  friend bool operator==(const Allocation&, const Allocation&) = default;
};

/**
 * @brief A refused allocation, with the numbers PyTorch's OutOfMemoryError prints. Every figure is
 * taken after the allocator's failure path ran (cached segments released), as PyTorch takes them.
 */
struct OutOfMemory {
  std::uint64_t requested{0};      ///< the bytes asked for
  std::uint64_t rounded{0};        ///< the block size wanted; 2^64 - 1 when not representable
  std::uint64_t segment_bytes{0};  ///< "Tried to allocate": the new segment's size, or saturated
  std::uint64_t device_total{0};   ///< "total capacity"
  std::uint64_t device_free{0};    ///< "of which ... is free": capacity - reserved
  std::optional<std::uint64_t> allowed;  ///< per_process_memory_fraction x device_total, if set
  std::uint64_t allocated{0};            ///< "allocated by PyTorch"
  std::uint64_t reserved{0};             ///< allocated + "reserved by PyTorch but unallocated"

  /// @return PyTorch's own wording: "CUDA out of memory. Tried to allocate 20.00 MiB. GPU 0 has a
  /// total capacity of ... of which ... is free. ..."
  [[nodiscard]] std::string message(int device) const;

  friend bool operator==(const OutOfMemory&, const OutOfMemory&) = default;
};

/// What `allocate` did.
using AllocateOutcome = std::variant<Allocation, OutOfMemory>;

/// A change of the memory a model holds from the driver, in the order it happened.
struct SegmentEvent {
  enum class Kind : std::uint8_t {
    alloc,  ///< cudaMalloc of a segment
    free,   ///< cudaFree of a segment
    map,    ///< pages mapped into an expandable segment
    unmap,  ///< pages unmapped from an expandable segment
  };
  Kind kind{Kind::alloc};
  std::uint64_t address{0};
  std::uint64_t size{0};
  std::uint64_t stream{0};

  friend bool operator==(const SegmentEvent&, const SegmentEvent&) = default;
};

[[nodiscard]] std::string_view to_string(SegmentEvent::Kind kind) noexcept;

/**
 * @brief Where new segments live. cudaMalloc's choice of address is not the allocator's, so replay
 * supplies the recording's addresses; the default hands out fresh, ascending addresses.
 */
class SegmentAddressSource {
 public:
  virtual ~SegmentAddressSource() = default;

  /**
   * @brief The address of a new segment (a cudaMalloc, or an expandable segment's reservation).
   * @param size the segment's bytes
   * @param stream the stream it serves
   * @param expandable whether it is an expandable segment's address range
   */
  [[nodiscard]] virtual std::uint64_t segment_address(std::uint64_t size, std::uint64_t stream,
                                                      bool expandable) = 0;

  /// Told of every segment event, in order (after `segment_address` for an alloc).
  virtual void segment_event(const SegmentEvent& event) { static_cast<void>(event); }
};

/**
 * @brief The default source: ascending addresses from `base`, each segment aligned to 2 MiB and
 * never reused, so a run is deterministic.
 */
class SequentialAddressSource : public SegmentAddressSource {
 public:
  static constexpr std::uint64_t default_base = 0x7f0000000000ULL;

  explicit SequentialAddressSource(std::uint64_t base = default_base) noexcept : next_(base) {}

  /// @throws std::overflow_error when the address range past 2^64 is exhausted
  [[nodiscard]] std::uint64_t segment_address(std::uint64_t size, std::uint64_t stream,
                                              bool expandable) override;

 private:
  std::uint64_t next_;
};

/**
 * @brief One device's memory as a program sees it through an allocator.
 *
 * Invariant of every implementation: allocated() <= reserved() <= capacity().
 */
class DeviceMemoryModel {
 public:
  DeviceMemoryModel() = default;
  DeviceMemoryModel(const DeviceMemoryModel&) = delete;
  DeviceMemoryModel& operator=(const DeviceMemoryModel&) = delete;
  DeviceMemoryModel(DeviceMemoryModel&&) = delete;
  DeviceMemoryModel& operator=(DeviceMemoryModel&&) = delete;
  virtual ~DeviceMemoryModel() = default;

  /// @return the model's name: "exact" or "pytorch"
  [[nodiscard]] virtual std::string_view name() const noexcept = 0;

  /**
   * @brief Allocates `bytes` on `stream`.
   * @return the block, or the OutOfMemory the device would raise (the model's state may still have
   * changed: a failed allocation releases cached segments first)
   */
  [[nodiscard]] virtual AllocateOutcome allocate(std::uint64_t stream, std::uint64_t bytes) = 0;

  /**
   * @brief Frees the allocation at `address` (an address 0 is the empty allocation: a no-op).
   * @return false when no allocation starts at `address`; nothing changed then
   */
  [[nodiscard]] virtual bool free(std::uint64_t address) = 0;

  /// Gives every cached, wholly free segment back to the driver (`torch.cuda.empty_cache()`).
  virtual void empty_cache() = 0;

  /// @return the bytes of the blocks handed out (block sizes, after rounding)
  [[nodiscard]] virtual std::uint64_t allocated() const noexcept = 0;
  /// @return the bytes held from the driver (segments, or mapped pages)
  [[nodiscard]] virtual std::uint64_t reserved() const noexcept = 0;
  /// @return the bytes the driver may give this process in total
  [[nodiscard]] virtual std::uint64_t capacity() const noexcept = 0;
  /// @return the largest free block cached, 0 when none
  [[nodiscard]] virtual std::uint64_t largest_free_block() const = 0;
  /// @return every segment and its blocks, in address order
  [[nodiscard]] virtual std::vector<SegmentInfo> segments() const = 0;
};

/**
 * @brief A byte count as PyTorch's `format_size` prints it ("512 bytes", "20.00 MiB", "1.50
 * GiB"), rounded exactly (no floating point).
 */
[[nodiscard]] std::string format_pytorch_size(std::uint64_t bytes);

}  // namespace memtrack::sim::allocators
