// An allocator for the few large buffers an importer fills front to back (the Kineto importer's
// memory events, which it keeps to sort by time, and its read windows).
//
// Each new page costs a fault the first time it is written, and on a virtual machine a fault costs
// microseconds: importing a 300k-event Kineto trace took 28k faults, a third of its time. Blocks of
// 2 MiB and more are therefore mapped on their own, aligned to 2 MiB and marked for transparent
// huge pages (`madvise(MADV_HUGEPAGE)`: advice, which a kernel with THP off ignores), so that
// filling them takes one fault per 2 MiB. Smaller blocks come from `operator new`, and so does
// everything in a build with AddressSanitizer, which only checks the bounds of memory it allocated.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <string_view>
#include <utility>

namespace memtrack::traces::detail {

/// The size of a transparent huge page on x86-64 and the usual arm64 kernels.
inline constexpr std::size_t huge_page_bytes = std::size_t{2} << 20U;

#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool huge_pages_enabled = false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr bool huge_pages_enabled = false;
#else
inline constexpr bool huge_pages_enabled = true;
#endif
#else
inline constexpr bool huge_pages_enabled = true;
#endif

/// @return whether a block of `bytes` is mapped on its own, in huge pages
[[nodiscard]] constexpr bool is_huge_block(std::size_t bytes) noexcept {
  return huge_pages_enabled && bytes >= huge_page_bytes;
}

/// @return `bytes` rounded up to whole huge pages (`bytes` at least one huge page, at most
/// SIZE_MAX minus one)
[[nodiscard]] constexpr std::size_t whole_huge_pages(std::size_t bytes) noexcept {
  return (bytes + (huge_page_bytes - 1)) & ~(huge_page_bytes - 1);
}

/// Where a huge block lies in the mapping made for it: the block at a 2 MiB boundary, the pages
/// before it (`head`) and after it (`tail`), both unmapped.
struct HugeBlockCut {
  std::uintptr_t block{0};
  std::size_t head{0};
  std::size_t tail{0};
};

/// @return the cut of a block of `length` (whole huge pages) in a mapping of `span` bytes at
/// `start` (a page boundary; `span` at least `length` plus a huge page less a page)
[[nodiscard]] constexpr HugeBlockCut cut_huge_block(std::uintptr_t start, std::size_t span,
                                                    std::size_t length) noexcept {
  const std::uintptr_t block =
      (start + (huge_page_bytes - 1)) & ~std::uintptr_t{huge_page_bytes - 1};
  return {block, block - start, (start + span) - (block + length)};
}

/**
 * @brief Maps `bytes` (at least one huge page) at a 2 MiB boundary, marked for huge pages.
 * @throws std::bad_alloc when the mapping fails
 */
inline void* map_huge_block(std::size_t bytes) {
  if (bytes > SIZE_MAX - 2 * huge_page_bytes) throw std::bad_alloc();
  const std::size_t length = whole_huge_pages(bytes);
  // Enough to hold a 2 MiB boundary with `length` after it wherever the mapping starts (no
  // multiple of 2 MiB: a kernel since 6.7 would align such a mapping itself, older ones would not,
  // so this code aligns it on every kernel); the pages before the boundary and after the block
  // are unmapped.
  const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  const std::size_t span = length + huge_page_bytes - page;
  void* mapped = ::mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mapped == MAP_FAILED) throw std::bad_alloc();
  const HugeBlockCut cut = cut_huge_block(reinterpret_cast<std::uintptr_t>(mapped), span, length);
  auto* block = reinterpret_cast<char*>(cut.block);
  if (cut.head > 0) ::munmap(mapped, cut.head);
  if (cut.tail > 0) ::munmap(block + length, cut.tail);
  ::madvise(block, length, MADV_HUGEPAGE);
  return block;
}

/// Unmaps a block `map_huge_block(bytes)` returned.
inline void unmap_huge_block(void* block, std::size_t bytes) noexcept {
  ::munmap(block, whole_huge_pages(bytes));
}

/// A standard allocator that maps blocks of 2 MiB and more in huge pages (see above); stateless,
/// so any two compare equal.
template <class T>
class HugePageAllocator {
 public:
  static_assert(alignof(T) <= alignof(std::max_align_t));
  using value_type = T;

  HugePageAllocator() noexcept = default;
  template <class U>
  HugePageAllocator(const HugePageAllocator<U>& /*other*/) noexcept {}  // NOLINT: rebinding

  [[nodiscard]] T* allocate(std::size_t n) {
    if (n > SIZE_MAX / sizeof(T)) throw std::bad_array_new_length();
    const std::size_t bytes = n * sizeof(T);
    if (is_huge_block(bytes)) return static_cast<T*>(map_huge_block(bytes));
    return static_cast<T*>(::operator new(bytes));
  }

  void deallocate(T* p, std::size_t n) noexcept {
    const std::size_t bytes = n * sizeof(T);
    if (is_huge_block(bytes)) {
      unmap_huge_block(p, bytes);
    } else {
      ::operator delete(p);
    }
  }

  template <class U>
  friend bool operator==(const HugePageAllocator& /*a*/, const HugePageAllocator<U>& /*b*/) {
    return true;
  }
};

/**
 * @brief Bytes filled front to back (a whole file read into memory), in huge pages: at least
 * 2 MiB (or the limit given), grown by doubling, without the zeroing of a vector's `resize` and
 * without the copy of reading through a second buffer (the caller reads straight into `room`).
 */
class HugeBytes {
 public:
  HugeBytes() noexcept = default;
  HugeBytes(const HugeBytes&) = delete;
  HugeBytes& operator=(const HugeBytes&) = delete;
  HugeBytes(HugeBytes&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)),
        size_(std::exchange(other.size_, 0)),
        capacity_(std::exchange(other.capacity_, 0)) {}
  HugeBytes& operator=(HugeBytes&& other) noexcept {
    HugeBytes taken(std::move(other));
    std::swap(data_, taken.data_);
    std::swap(size_, taken.size_);
    std::swap(capacity_, taken.capacity_);
    return *this;
  }
  ~HugeBytes() {
    if (data_ != nullptr) HugePageAllocator<char>().deallocate(data_, capacity_);
  }

  [[nodiscard]] std::string_view view() const noexcept { return {data_, size_}; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }

  /**
   * @brief Makes room after the bytes held for at least `wanted` more, but not past `limit` bytes
   * in all (growing the block to twice its size, or to what is needed, within `limit`).
   * @return where to write the next bytes, and how many fit there (0 only when `size()` has
   * reached `limit`); `commit` then counts what was written
   * @throws std::bad_alloc when the block cannot grow
   */
  [[nodiscard]] std::pair<char*, std::size_t> room(std::size_t wanted, std::size_t limit) {
    if (size_ >= limit) return {data_ + size_, 0};
    if (wanted > limit - size_) wanted = limit - size_;
    if (capacity_ - size_ < wanted) {
      // Twice the block, and at least one huge page (a smaller block would take a fault per
      // 4 KiB, and its bytes would be copied again), within `limit`.
      std::size_t grown = capacity_ <= limit / 2 ? capacity_ * 2 : limit;
      if (grown < huge_page_bytes) grown = huge_page_bytes < limit ? huge_page_bytes : limit;
      if (grown < size_ + wanted) grown = size_ + wanted;
      reallocate(grown);
    }
    return {data_ + size_, capacity_ - size_ < limit - size_ ? capacity_ - size_ : limit - size_};
  }
  /// Counts `n` more bytes written at `room` (at most what it gave).
  void commit(std::size_t n) noexcept { size_ += n; }

 private:
  void reallocate(std::size_t capacity) {
    HugePageAllocator<char> allocator;
    char* grown = allocator.allocate(capacity);
    if (size_ > 0) std::memcpy(grown, data_, size_);
    if (data_ != nullptr) allocator.deallocate(data_, capacity_);
    data_ = grown;
    capacity_ = capacity;
  }

  char* data_{nullptr};
  std::size_t size_{0};
  std::size_t capacity_{0};
};

}  // namespace memtrack::traces::detail
