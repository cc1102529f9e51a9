// The allocator for the importers' large buffers (traces/src/huge_pages.hpp): blocks of 2 MiB and
// more mapped on their own, aligned, marked for huge pages, and unmapped whole when freed.
#include "huge_pages.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace memtrack::traces::detail {
namespace {

constexpr std::size_t mib = std::size_t{1} << 20U;

/// @return whether every page of [block, block + bytes) is mapped (mincore refuses an unmapped one)
bool mapped(const void* block, std::size_t bytes) {
  const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  std::vector<unsigned char> resident((bytes + page - 1) / page);
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-const-cast): mincore only reads the mapping
  return ::mincore(const_cast<void*>(block), bytes, resident.data()) == 0;
}

/// @return the bytes of address space the process has mapped (/proc/self/statm, read without
/// allocating: nothing else maps or unmaps between two calls around one allocation)
std::size_t mapped_bytes() {
  const int fd = ::open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char text[128] = {};
  const ::ssize_t got = ::read(fd, text, sizeof text - 1);
  ::close(fd);
  std::size_t pages = 0;
  for (::ssize_t i = 0; i < got && text[i] >= '0' && text[i] <= '9'; ++i) {
    pages = pages * 10 + static_cast<std::size_t>(text[i] - '0');
  }
  return pages * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
}

/// One mapping of /proc/self/smaps.
struct Mapping {
  std::uintptr_t start{0};
  std::uintptr_t end{0};
  std::string flags;  ///< its VmFlags line
};

/// @return the mapping that holds `address`, from /proc/self/smaps (none: start and end 0)
Mapping mapping_of(const void* address) {
  const auto at = reinterpret_cast<std::uintptr_t>(address);
  std::ifstream smaps("/proc/self/smaps");
  Mapping found;
  bool in_it = false;
  for (std::string line; std::getline(smaps, line);) {
    std::uintptr_t start = 0;
    std::uintptr_t end = 0;
    char dash = 0;
    std::istringstream range(line);
    if (range >> std::hex >> start >> dash >> end && dash == '-') {
      in_it = start <= at && at < end;
      if (in_it) found = Mapping{start, end, {}};
    } else if (in_it && line.rfind("VmFlags:", 0) == 0) {
      found.flags = line;
    }
  }
  return found;
}

TEST(HugePages, OnlyBlocksOfAHugePageOrMoreAreMappedOnTheirOwn) {
  EXPECT_EQ(whole_huge_pages(1), 2 * mib);
  EXPECT_EQ(whole_huge_pages(2 * mib), 2 * mib);
  EXPECT_EQ(whole_huge_pages(2 * mib + 1), 4 * mib);
  if (!huge_pages_enabled) GTEST_SKIP() << "AddressSanitizer build: every block from operator new";
  EXPECT_FALSE(is_huge_block(2 * mib - 1));
  EXPECT_TRUE(is_huge_block(2 * mib));
}

TEST(HugePages, TheBlockIsCutAtTheFirst2MiBBoundaryAndTheRestGivenBack) {
  constexpr std::size_t page = 4096;
  constexpr std::size_t length = 4 * mib;
  constexpr std::size_t span = length + 2 * mib - page;
  // Wherever the mapping starts, the block is its first 2 MiB boundary; head + block + tail is
  // the whole mapping.
  for (const std::uintptr_t start : {std::uintptr_t{0x40000000}, std::uintptr_t{0x40001000},
                                     std::uintptr_t{0x40123000}, std::uintptr_t{0x401ff000}}) {
    const HugeBlockCut cut = cut_huge_block(start, span, length);
    EXPECT_EQ(cut.block % huge_page_bytes, 0U) << start;
    EXPECT_GE(cut.block, start);
    EXPECT_LT(cut.block - start, huge_page_bytes) << start;
    EXPECT_EQ(cut.head, cut.block - start) << start;
    EXPECT_EQ(cut.head + length + cut.tail, span) << start;
  }
  // Worked out by hand: aligned, one page past a boundary, one page before one.
  EXPECT_EQ(cut_huge_block(0x40000000, span, length).tail, 2 * mib - page);
  EXPECT_EQ(cut_huge_block(0x40001000, span, length).block, 0x40200000U);
  EXPECT_EQ(cut_huge_block(0x40001000, span, length).head, 2 * mib - page);
  EXPECT_EQ(cut_huge_block(0x40001000, span, length).tail, 0U);
  EXPECT_EQ(cut_huge_block(0x401ff000, span, length).head, page);
  EXPECT_EQ(cut_huge_block(0x401ff000, span, length).tail, 2 * mib - 2 * page);
}

TEST(HugePages, ALargeBlockIsAlignedMappedWholeAndUnmappedWhenFreed) {
  if (!huge_pages_enabled) GTEST_SKIP() << "AddressSanitizer build: every block from operator new";
  HugePageAllocator<std::uint64_t> allocator;
  for (const std::size_t bytes : {2 * mib, 2 * mib + 8, 5 * mib + 8, 16 * mib}) {
    const std::size_t n = bytes / sizeof(std::uint64_t);
    const std::size_t before = mapped_bytes();
    std::uint64_t* block = allocator.allocate(n);
    // Whole huge pages and nothing more: the pages around the 2 MiB boundary are given back.
    EXPECT_EQ(mapped_bytes() - before, whole_huge_pages(bytes)) << bytes;
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(block) % huge_page_bytes, 0U) << bytes;
    EXPECT_TRUE(mapped(block, whole_huge_pages(bytes))) << bytes;
    for (std::size_t i = 0; i < n; ++i)
      block[i] = i;
    for (std::size_t i = 0; i < n; i += 4096)
      ASSERT_EQ(block[i], i);
    allocator.deallocate(block, n);
    EXPECT_EQ(mapped_bytes(), before) << bytes << ": not all unmapped";
    EXPECT_FALSE(mapped(block, huge_page_bytes))
        << bytes << ": the first huge page is still mapped";
    const std::uint64_t* last = block + (whole_huge_pages(bytes) - huge_page_bytes) / 8;
    EXPECT_FALSE(mapped(last, huge_page_bytes)) << bytes << ": the last huge page is still mapped";
  }
}

TEST(HugePages, ALargeBlockIsAMappingOfItsOwnMarkedForHugePages) {
  if (!huge_pages_enabled) GTEST_SKIP() << "AddressSanitizer build: every block from operator new";
  if (!std::filesystem::exists("/sys/kernel/mm/transparent_hugepage")) {
    GTEST_SKIP() << "this kernel has no transparent huge pages";
  }
  HugePageAllocator<char> allocator;
  for (const std::size_t bytes : {2 * mib, 3 * mib, 3 * mib + 1, 8 * mib - 1}) {
    char* block = allocator.allocate(bytes);
    const Mapping mapping = mapping_of(block);
    allocator.deallocate(block, bytes);
    // Marked, it merges with no unmarked neighbour: the mapping is the block, whole huge pages.
    EXPECT_EQ(mapping.start, reinterpret_cast<std::uintptr_t>(block)) << bytes;
    EXPECT_EQ(mapping.end - mapping.start, whole_huge_pages(bytes)) << bytes;
    EXPECT_NE((mapping.flags + " ").find(" hg "), std::string::npos)  // VM_HUGEPAGE
        << bytes << ": " << mapping.flags;
  }
}

TEST(HugePages, AVectorGrownPastSeveralHugePagesKeepsEveryValue) {
  std::vector<std::uint64_t, HugePageAllocator<std::uint64_t>> values;
  constexpr std::uint64_t count = 3'000'000;  // 24 MB, grown from small blocks into large ones
  for (std::uint64_t i = 0; i < count; ++i)
    values.push_back(i * 2654435761ULL);
  for (std::uint64_t i = 0; i < count; ++i)
    ASSERT_EQ(values[i], i * 2654435761ULL) << i;
  values.resize(10);
  values.shrink_to_fit();
  EXPECT_EQ(values.back(), 9 * 2654435761ULL);
}

}  // namespace
}  // namespace memtrack::traces::detail
