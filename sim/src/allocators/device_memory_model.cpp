// The values every device memory model shares, and PyTorch's way of printing sizes.
#include <memtrack/sim/allocators/device_memory_model.hpp>
#include <memtrack/units.hpp>

#include <stdexcept>

namespace memtrack::sim::allocators {

std::string_view to_string(BlockState state) noexcept {
  switch (state) {
    case BlockState::allocated:
      return "allocated";
    case BlockState::free:
      return "free";
    case BlockState::unmapped:
      return "unmapped";
  }
  return "?";
}

std::string_view to_string(PoolKind pool) noexcept {
  return pool == PoolKind::small ? "small" : "large";
}

std::string_view to_string(SegmentEvent::Kind kind) noexcept {
  switch (kind) {
    case SegmentEvent::Kind::alloc:
      return "segment_alloc";
    case SegmentEvent::Kind::free:
      return "segment_free";
    case SegmentEvent::Kind::map:
      return "segment_map";
    case SegmentEvent::Kind::unmap:
      return "segment_unmap";
  }
  return "?";
}

std::uint64_t SequentialAddressSource::segment_address(std::uint64_t size, std::uint64_t stream,
                                                       bool expandable) {
  static_cast<void>(stream);
  static_cast<void>(expandable);
  constexpr std::uint64_t alignment = 2ULL << 20;
  const std::uint64_t address = next_;
  const auto end = checked_add(address, size);
  const auto aligned = end ? checked_add(*end, alignment - 1) : std::nullopt;
  if (!aligned) throw std::overflow_error("segment addresses exhausted past 2^64 - 1");
  next_ = *aligned / alignment * alignment;
  return address;
}

std::string format_pytorch_size(std::uint64_t bytes) {
  // PyTorch prints bytes / unit with two decimals (std::fixed): the exact quotient, rounded half
  // to even, which integer arithmetic reproduces without floating point.
  if (bytes <= 1024) return std::to_string(bytes) + " bytes";
  const char* unit_name = "GiB";
  std::uint64_t unit = 1ULL << 30;
  if (bytes <= (1ULL << 20)) {
    unit_name = "KiB";
    unit = 1ULL << 10;
  } else if (bytes <= (1ULL << 30)) {
    unit_name = "MiB";
    unit = 1ULL << 20;
  }
  const detail::uint128 scaled = static_cast<detail::uint128>(bytes) * 100;
  auto hundredths = static_cast<std::uint64_t>(scaled / unit);
  const auto remainder = static_cast<std::uint64_t>(scaled % unit);
  if (remainder * 2 > unit || (remainder * 2 == unit && hundredths % 2 == 1)) ++hundredths;
  const std::uint64_t cents = hundredths % 100;
  return std::to_string(hundredths / 100) + "." + (cents < 10 ? "0" : "") + std::to_string(cents) +
         " " + unit_name;
}

std::string OutOfMemory::message(int device) const {
  std::string text = "CUDA out of memory. Tried to allocate " + format_pytorch_size(segment_bytes) +
                     ". GPU " + std::to_string(device) + " has a total capacity of " +
                     format_pytorch_size(device_total) + " of which " +
                     format_pytorch_size(device_free) + " is free. ";
  if (allowed) text += format_pytorch_size(*allowed) + " allowed; ";
  text += "Of the allocated memory " + format_pytorch_size(allocated) +
          " is allocated by PyTorch, and " + format_pytorch_size(reserved - allocated) +
          " is reserved by PyTorch but unallocated. If reserved but unallocated memory is large "
          "try setting PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True to avoid fragmentation.";
  return text;
}

}  // namespace memtrack::sim::allocators
