// The allocator for the importers' large buffers (traces/src/huge_pages.hpp): blocks of 2 MiB and
// more mapped on their own, aligned, marked for huge pages, and unmapped whole when freed; and what
// is built on it: a whole file read into huge pages, and the pickle parser's store of values.
#include "huge_pages.hpp"
#include "import_support.hpp"
#include "pickle.hpp"

#include <memtrack/traces/io.hpp>

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <tuple>
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

/// The byte at `i` of a pattern with no period a buffer's growth could hide.
char pattern_at(std::size_t i) {
  return static_cast<char>((i * 2654435761U) >> 13U);
}

TEST(HugeBytes, BytesWrittenInUnevenPiecesAcrossEveryGrowthAreKeptInOrder) {
  HugeBytes bytes;
  EXPECT_EQ(bytes.size(), 0U);
  EXPECT_TRUE(bytes.view().empty());
  constexpr std::size_t total = 9 * mib + 3;
  constexpr std::size_t limit = 64 * mib;
  std::size_t piece = 1;
  while (bytes.size() < total) {
    const auto [to, room] = bytes.room(piece, limit);
    ASSERT_GE(room, std::min(piece, limit - bytes.size()));
    ASSERT_LE(bytes.size() + room, bytes.capacity());
    const std::size_t n = std::min({piece, room, total - bytes.size()});
    for (std::size_t i = 0; i < n; ++i)
      to[i] = pattern_at(bytes.size() + i);
    bytes.commit(n);
    piece = piece * 3 % 700'001 + 1;  // 1 byte to 700 KB: some pieces span a growth
  }
  ASSERT_EQ(bytes.size(), total);
  const std::string_view view = bytes.view();
  ASSERT_EQ(view.size(), total);
  for (std::size_t i = 0; i < total; ++i)
    ASSERT_EQ(view[i], pattern_at(i)) << "byte " << i;
  // Grown by doubling from one huge page: 16 MiB holds 9 MiB.
  EXPECT_EQ(bytes.capacity(), 16 * mib);

  HugeBytes moved(std::move(bytes));
  EXPECT_EQ(moved.view().size(), total);
  EXPECT_EQ(moved.view()[total - 1], pattern_at(total - 1));
  EXPECT_EQ(bytes.size(), 0U);  // NOLINT(bugprone-use-after-move): a moved-from one is empty
  EXPECT_EQ(bytes.capacity(), 0U);
  HugeBytes assigned;
  assigned = std::move(moved);
  EXPECT_EQ(assigned.view().substr(0, 3),
            (std::string{pattern_at(0), pattern_at(1), pattern_at(2)}));
}

TEST(HugeBytes, RoomNeverReachesPastTheLimit) {
  HugeBytes bytes;
  auto [to, room] = bytes.room(1000, 10);
  EXPECT_EQ(room, 10U);              // less than wanted: the limit
  EXPECT_EQ(bytes.capacity(), 10U);  // and the block no larger
  bytes.commit(4);
  std::tie(to, room) = bytes.room(1000, 10);
  EXPECT_EQ(room, 6U);
  bytes.commit(6);
  std::tie(to, room) = bytes.room(1, 10);
  EXPECT_EQ(room, 0U);  // full to the limit
  std::tie(to, room) = bytes.room(1, 100 * mib);
  EXPECT_GE(room, 1U);  // a higher limit grows it
  EXPECT_LE(room, 100 * mib - 10);
  // Large room under a smaller limit than the block holds: only up to the limit.
  HugeBytes large;
  std::tie(to, room) = large.room(1, 64 * mib);
  EXPECT_EQ(room, huge_page_bytes);
  large.commit(100);
  std::tie(to, room) = large.room(1, 200);
  EXPECT_EQ(room, 100U);
}

/// A source that gives its bytes a few at a time, in pieces of changing size.
class Trickle final : public ByteSource {
 public:
  explicit Trickle(std::string bytes) : bytes_(std::move(bytes)) {}
  Result<std::size_t> read(char* buffer, std::size_t size) override {
    piece_ = piece_ * 7 % 300'007 + 1;
    const std::size_t n = std::min({size, piece_, bytes_.size() - at_});
    std::memcpy(buffer, bytes_.data() + at_, n);
    at_ += n;
    return n;
  }

 private:
  std::string bytes_;
  std::size_t at_{0};
  std::size_t piece_{1};
};

std::string patterned(std::size_t n) {
  std::string text(n, '\0');
  for (std::size_t i = 0; i < n; ++i)
    text[i] = pattern_at(i);
  return text;
}

TEST(ReadAllInHugePages, ReadsWhatReadAllReads) {
  for (const std::size_t n :
       {std::size_t{0}, std::size_t{1}, std::size_t{256 * 1024 + 1}, 5 * mib + 17}) {
    const std::string text = patterned(n);
    Trickle trickle(text);
    auto read = read_all_in_huge_pages(trickle, "trickle", 1U << 30U);
    ASSERT_TRUE(read) << read.error().to_string();
    // == and not EXPECT_EQ: a failure would print a diff of megabytes, which takes minutes.
    EXPECT_TRUE(read->view() == text) << n << " bytes, read " << read->size();
    auto plain = memory_source(text, "plain");
    auto whole = read_all_in_huge_pages(*plain, "plain", 1U << 30U);
    ASSERT_TRUE(whole) << whole.error().to_string();
    EXPECT_TRUE(whole->view() == text) << n << " bytes, read " << whole->size();
  }
}

TEST(ReadAllInHugePages, TakesExactlyTheBoundAndRefusesOneByteMoreAsReadAllDoes) {
  const std::string text = patterned(3 * mib + 5);
  Trickle exact(text);
  auto read = read_all_in_huge_pages(exact, "exact", text.size());
  ASSERT_TRUE(read) << read.error().to_string();
  EXPECT_EQ(read->size(), text.size());

  Trickle longer(text);
  auto refused = read_all_in_huge_pages(longer, "in.pickle", text.size() - 1);
  ASSERT_FALSE(refused);
  Trickle again(text);
  auto by_read_all = read_all(again, "in.pickle", text.size() - 1);
  ASSERT_FALSE(by_read_all);
  EXPECT_EQ(refused.error().to_string(), by_read_all.error().to_string());
  EXPECT_NE(refused.error().to_string().find("in.pickle: more than 3145732 bytes"),
            std::string::npos)
      << refused.error().to_string();
}

TEST(PickleValueStore, ValuesStayWhereTheyAreAndAreCountedAcrossChunks) {
  pickle::ValueStore store;
  EXPECT_EQ(store.size(), 0U);
  // The first chunk (1024 values), two of 2 MiB, and a few in a fourth.
  const std::size_t per_huge = huge_page_bytes / sizeof(pickle::Value);
  const std::size_t count = 1024 + 2 * per_huge + 5;
  std::vector<pickle::Value*> made;
  for (std::size_t i = 0; i < count; ++i) {
    pickle::Value& value = store.emplace_back();
    ASSERT_EQ(value.magnitude, 0U);  // default-constructed
    ASSERT_TRUE(value.items.empty());
    value.magnitude = i;
    value.items.assign(i % 3, nullptr);  // owns memory: destroyed with the store
    made.push_back(&value);
    ASSERT_EQ(store.size(), i + 1);
  }
  for (std::size_t i = 0; i < count; ++i) {
    ASSERT_EQ(made[i]->magnitude, i) << i;
    ASSERT_EQ(made[i]->items.size(), i % 3) << i;
  }
  pickle::ValueStore moved(std::move(store));
  EXPECT_EQ(moved.size(), count);
  EXPECT_EQ(store.size(), 0U);  // NOLINT(bugprone-use-after-move): a moved-from one is empty
  EXPECT_EQ(made[count - 1]->magnitude, count - 1);  // moving the store moves no value
}

}  // namespace
}  // namespace memtrack::traces::detail
