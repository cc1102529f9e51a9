// PyTorch's CUDA caching allocator. Each member below is one step of c10's DeviceCachingAllocator
// (named after it), re-derived from its behaviour; docs/allocator-model.md explains each rule.
#include <memtrack/sim/allocators/pytorch_model.hpp>
#include <memtrack/units.hpp>

#include <algorithm>
#include <array>
#include <bit>
#include <map>
#include <memory>
#include <memory_resource>
#include <new>
#include <set>
#include <stdexcept>
#include <vector>

namespace memtrack::sim::allocators {
namespace {

struct Segment;
struct Block;

/// A search key: the smallest block of `stream` with at least `size` bytes.
struct Key {
  std::uint64_t stream;
  std::uint64_t size;
  std::uint64_t address;
};

/// (stream, size, address) order, as BlockComparatorSize.
[[nodiscard]] inline bool key_less(const Key& a, const Key& b) noexcept {
  const bool size_less = (a.size < b.size) | ((a.size == b.size) & (a.address < b.address));
  return (a.stream < b.stream) | ((a.stream == b.stream) & size_less);
}

/**
 * @brief Cached blocks in best-fit order, (stream, size, address) as BlockComparatorSize. Each
 * stream's blocks are binned by size (8 bins per power of two, a bitmap of the bins that hold
 * any), each bin a sorted array: a best fit is a bitmap step and a binary search of one short
 * array, not a walk down a tree of every cached block. An insert or erase moves the entries of
 * its bin above it (bins hold blocks of nearly one size: few, unless many blocks of one size are
 * cached at once).
 *
 * `Cursor`s walk all of it in key order: an insert invalidates them; an erase leaves valid the
 * positions before the erased entry.
 */
class FreeIndex {
 public:
  static constexpr std::size_t bin_count = 16 + 60 * 8;  ///< sizes 0-15, then 8 per power of two

  /// @return the bin of `size`: bins are ascending, each a contiguous range of sizes
  [[nodiscard]] static std::size_t bin_of(std::uint64_t size) noexcept {
    if (size < 16) return static_cast<std::size_t>(size);
    const auto exponent = static_cast<unsigned>(std::bit_width(size) - 1);  // 4..63
    return 16 + (exponent - 4) * 8 + static_cast<std::size_t>((size >> (exponent - 3)) & 7U);
  }

  struct Cursor {
    std::size_t stream{0};  ///< the stream's place in streams_; streams_.size() at the end
    std::size_t bin{0};
    std::size_t at{0};  ///< in the bin
    friend bool operator==(const Cursor&, const Cursor&) = default;
  };

  FreeIndex() = default;
  FreeIndex(const FreeIndex&) = delete;
  FreeIndex& operator=(const FreeIndex&) = delete;
  FreeIndex(FreeIndex&&) = delete;
  FreeIndex& operator=(FreeIndex&&) = delete;
  ~FreeIndex() = default;

  [[nodiscard]] Cursor end() const noexcept { return {streams_.size(), 0, 0}; }
  [[nodiscard]] Cursor begin() const noexcept { return first_from(0); }
  [[nodiscard]] Key key(const Cursor& at) const noexcept {
    const Entry& entry = streams_[at.stream]->bins[at.bin][at.at];
    return Key{ids_[at.stream], entry.size, entry.address};
  }
  [[nodiscard]] Block* block(const Cursor& at) const noexcept {
    return streams_[at.stream]->bins[at.bin][at.at].block;
  }

  /// Precondition: `at` is not end().
  [[nodiscard]] Cursor next(Cursor at) const noexcept {
    if (++at.at < streams_[at.stream]->bins[at.bin].size()) return at;
    return first_of_bins_from(at.stream, at.bin + 1);
  }

  /// Precondition: `at` is not begin().
  [[nodiscard]] Cursor prev(Cursor at) const noexcept {
    if (at.at != 0) {
      --at.at;
      return at;
    }
    std::size_t stream = at.stream;
    std::size_t below = at.bin;  // look at the bins below this one
    while (true) {
      if (stream < streams_.size()) {
        const Stream& s = *streams_[stream];
        if (const auto bin = last_bin_below(s, below)) {
          return {stream, *bin, s.bins[*bin].size() - 1};
        }
      }
      --stream;
      below = bin_count;
    }
  }

  /// @return the first entry not below `key`, or end()
  [[nodiscard]] Cursor lower_bound(const Key& key) const noexcept {
    const std::size_t stream = stream_slot(key.stream);
    if (stream == streams_.size()) return end();
    if (ids_[stream] != key.stream) return first_from(stream);
    const std::size_t bin = bin_of(key.size);
    const std::vector<Entry>& in = streams_[stream]->bins[bin];
    const std::size_t at = lower_bound_in(in, key);
    if (at != in.size()) return {stream, bin, at};
    return first_of_bins_from(stream, bin + 1);
  }

  /// Precondition: no entry has `key`.
  void insert(const Key& key, Block* block) {
    const std::size_t stream = stream_slot(key.stream);
    if (stream == streams_.size() || ids_[stream] != key.stream) {
      const auto place = static_cast<std::ptrdiff_t>(stream);
      streams_.insert(streams_.begin() + place,
                      spare_ != nullptr ? std::move(spare_) : std::make_unique<Stream>());
      ids_.insert(ids_.begin() + place, key.stream);
    }
    Stream& s = *streams_[stream];
    const std::size_t bin = bin_of(key.size);
    std::vector<Entry>& in = s.bins[bin];
    const std::size_t at = lower_bound_in(in, key);
    in.insert(in.begin() + static_cast<std::ptrdiff_t>(at), Entry{key.size, key.address, block});
    s.occupied[bin / 64] |= std::uint64_t{1} << (bin % 64);
  }

  /// Precondition: `at` is not end().
  void erase(const Cursor& at) noexcept {
    Stream& s = *streams_[at.stream];
    std::vector<Entry>& bin = s.bins[at.bin];
    bin.erase(bin.begin() + static_cast<std::ptrdiff_t>(at.at));
    if (!bin.empty()) return;
    s.occupied[at.bin / 64] &= ~(std::uint64_t{1} << (at.bin % 64));
    if (std::any_of(s.occupied.begin(), s.occupied.end(), [](std::uint64_t w) { return w != 0; }))
      return;
    // The stream has no cached block left: its bins go (one set is kept for the next stream).
    const auto place = static_cast<std::ptrdiff_t>(at.stream);
    spare_ = std::move(streams_[at.stream]);
    streams_.erase(streams_.begin() + place);
    ids_.erase(ids_.begin() + place);
  }

  /// Removes the entry of `key`.
  /// @throws std::logic_error when there is none (the model's bookkeeping is broken)
  void erase(const Key& key) {
    const Cursor at = lower_bound(key);
    if (at == end() || key_less(key, this->key(at))) {
      throw std::logic_error("allocator model: a cached block is missing from its pool");
    }
    erase(at);
  }

  void clear() noexcept {
    for (auto& s : streams_) {
      for (std::vector<Entry>& bin : s->bins)
        bin.clear();
      s->occupied = {};
      spare_ = std::move(s);
    }
    streams_.clear();
    ids_.clear();
  }

 private:
  static constexpr std::size_t words = (bin_count + 63) / 64;
  /// A cached block of a bin (whose stream is its Stream's).
  struct Entry {
    std::uint64_t size;
    std::uint64_t address;
    Block* block;
  };
  struct Stream {
    std::array<std::uint64_t, words> occupied{};     ///< bit b: bins[b] is not empty
    std::array<std::vector<Entry>, bin_count> bins;  ///< each in key order
  };

  /// @return the place of the first stream not below `stream` in ids_
  [[nodiscard]] std::size_t stream_slot(std::uint64_t stream) const noexcept {
    std::size_t i = 0;
    while (i < ids_.size() && ids_[i] < stream)
      ++i;
    return i;
  }

  /// @return the place in `bin` of the first entry not below (key.size, key.address): a count
  /// of the entries below it in a short bin (independent loads, no jumps), else a binary search
  [[nodiscard]] static std::size_t lower_bound_in(const std::vector<Entry>& bin,
                                                  const Key& key) noexcept {
    auto below = [&](const Entry& e) {
      return (e.size < key.size) | ((e.size == key.size) & (e.address < key.address));
    };
    const Entry* entries = bin.data();
    std::size_t n = bin.size();
    if (n <= 16) {
      std::size_t count = 0;
      for (std::size_t i = 0; i < n; ++i)
        count += below(entries[i]) ? 1U : 0U;
      return count;
    }
    const Entry* base = entries;
    while (n > 1) {  // the answer lies in [base, base + n]
      const std::size_t half = n / 2;
      base = below(base[half]) ? base + half : base;
      n -= half;
    }
    return static_cast<std::size_t>(base - entries) + (below(*base) ? 1U : 0U);
  }

  /// @return the first occupied bin of `s` at or above `bin`
  [[nodiscard]] static std::optional<std::size_t> first_bin_from(const Stream& s,
                                                                 std::size_t bin) noexcept {
    for (std::size_t word = bin / 64; word < words; ++word) {
      std::uint64_t bits = s.occupied[word];
      if (word == bin / 64) bits &= ~std::uint64_t{0} << (bin % 64);
      if (bits != 0) return word * 64 + static_cast<std::size_t>(std::countr_zero(bits));
    }
    return std::nullopt;
  }

  /// @return the last occupied bin of `s` below `bin`
  [[nodiscard]] static std::optional<std::size_t> last_bin_below(const Stream& s,
                                                                 std::size_t bin) noexcept {
    for (std::size_t word = (bin + 63) / 64; word-- > 0;) {
      std::uint64_t bits = s.occupied[word];
      if (word == bin / 64) bits &= (std::uint64_t{1} << (bin % 64)) - 1;
      if (bits != 0) return word * 64 + static_cast<std::size_t>(std::bit_width(bits) - 1);
    }
    return std::nullopt;
  }

  /// @return the first entry in a bin of streams_[stream] at or above `bin`, else further on
  [[nodiscard]] Cursor first_of_bins_from(std::size_t stream, std::size_t bin) const noexcept {
    if (bin < bin_count) {
      if (const auto found = first_bin_from(*streams_[stream], bin)) {
        return {stream, *found, 0};
      }
    }
    return first_from(stream + 1);
  }

  /// @return the first entry of streams_[stream] or a later stream, else end()
  [[nodiscard]] Cursor first_from(std::size_t stream) const noexcept {
    for (; stream < streams_.size(); ++stream) {
      if (const auto found = first_bin_from(*streams_[stream], 0)) {
        return {stream, *found, 0};
      }
    }
    return end();
  }

  /// The streams with a cached block, ascending (memory follows the streams in use).
  std::vector<std::uint64_t> ids_;
  std::vector<std::unique_ptr<Stream>> streams_;  ///< the bins of ids_[i]
  std::unique_ptr<Stream> spare_;  ///< the bins of the stream emptied last, all empty, for reuse
};

struct Block {
  std::uint64_t address{0};
  std::uint64_t size{0};
  std::uint64_t stream{0};
  Segment* segment{nullptr};
  Block* prev{nullptr};      ///< the neighbour below in the segment
  Block* next{nullptr};      ///< the neighbour above
  std::uint64_t gc_base{0};  ///< the pool's free-block lookups when the block was last cached
  bool allocated{false};
  bool mapped{true};
  PoolKind pool{PoolKind::large};  ///< its segment's, copied: the hot path reads no segment
  bool expandable{false};          ///< its segment's, copied

  [[nodiscard]] Key key() const noexcept { return Key{stream, size, address}; }
  [[nodiscard]] bool is_split() const noexcept { return prev != nullptr || next != nullptr; }
};

struct Segment {
  std::uint64_t address{0};
  std::uint64_t size{0};
  std::uint64_t stream{0};
  PoolKind pool{PoolKind::large};
  bool expandable{false};
  std::uint64_t page{0};  ///< an expandable segment's mapping granularity
  Block* head{nullptr};   ///< Invariant: the block at `address` (head->prev == nullptr).
};

/// Unmapped ranges by (stream, address), as BlockComparatorAddress.
struct ByAddress {
  using is_transparent = void;
  static std::pair<std::uint64_t, std::uint64_t> key(const Block* b) noexcept {
    return {b->stream, b->address};
  }
  static std::pair<std::uint64_t, std::uint64_t> key(const Key& k) noexcept {
    return {k.stream, k.address};
  }
  template <class A, class B>
  bool operator()(const A& a, const B& b) const noexcept {
    return key(a) < key(b);
  }
};

struct Pool {
  Pool(bool is_small, std::pmr::memory_resource* memory) : small(is_small), unmapped(memory) {}

  bool small{false};
  FreeIndex blocks;                           ///< cached free (mapped) blocks
  std::pmr::set<Block*, ByAddress> unmapped;  ///< unmapped ranges of expandable segments
  std::uint64_t free_block_lookups{0};        ///< get_free_blocks_call_count, for the GC's ages

  void insert_into_blocks(Block* block) {
    block->gc_base = free_block_lookups;
    blocks.insert(block->key(), block);
  }
};

/**
 * @brief The allocated blocks by address: open addressing with linear probing, so a lookup
 * touches one slot array instead of a chain of nodes. Deletion shifts the run back (no
 * tombstones). Invariant: at most half the slots are used.
 */
class LiveBlocks {
 public:
  void insert(std::uint64_t address, Block* block) {
    if ((used_ + 1) * 2 > slots_.size()) grow();
    std::size_t i = home(address);
    while (slots_[i].block != nullptr)
      i = (i + 1) & mask();
    slots_[i] = Slot{address, block};
    ++used_;
  }

  /// @return the block at `address` after removing it, or null when there is none
  Block* take(std::uint64_t address) noexcept {
    if (slots_.empty()) return nullptr;
    std::size_t i = home(address);
    while (slots_[i].block != nullptr && slots_[i].address != address)
      i = (i + 1) & mask();
    Block* found = slots_[i].block;
    if (found == nullptr) return nullptr;
    // Shift later members of the run back into the hole when their home allows it.
    std::size_t hole = i;
    for (std::size_t j = (i + 1) & mask(); slots_[j].block != nullptr; j = (j + 1) & mask()) {
      const std::size_t want = home(slots_[j].address);
      if (((j - want) & mask()) >= ((j - hole) & mask())) {
        slots_[hole] = slots_[j];
        hole = j;
      }
    }
    slots_[hole] = Slot{};
    --used_;
    return found;
  }

  void clear() noexcept {
    slots_.clear();
    used_ = 0;
  }

 private:
  struct Slot {
    std::uint64_t address{0};
    Block* block{nullptr};
  };
  [[nodiscard]] std::size_t mask() const noexcept { return slots_.size() - 1; }
  [[nodiscard]] std::size_t home(std::uint64_t address) const noexcept {
    // Fibonacci hashing: addresses are 512-byte aligned, so the low bits carry nothing.
    return static_cast<std::size_t>((address * 0x9E3779B97F4A7C15ULL) >> 32U) & mask();
  }
  void grow() {
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(old.empty() ? 64 : old.size() * 2, Slot{});
    used_ = 0;
    for (const Slot& slot : old) {
      if (slot.block != nullptr) insert(slot.address, slot.block);
    }
  }

  std::vector<Slot> slots_;  ///< a power of two in size, or empty
  std::size_t used_{0};
};

/**
 * @brief Memory for the model's fixed-size pieces (blocks, index nodes): a free list per size, so
 * that taking and giving back a piece is a pointer swap. Pieces go back to the system when the
 * model goes; the model holds at most as many as it ever had blocks at once.
 */
class PieceResource final : public std::pmr::memory_resource {
 public:
  PieceResource() = default;
  PieceResource(const PieceResource&) = delete;
  PieceResource& operator=(const PieceResource&) = delete;
  PieceResource(PieceResource&&) = delete;
  PieceResource& operator=(PieceResource&&) = delete;
  ~PieceResource() override {
    for (void* chunk : chunks_)
      ::operator delete(chunk);
  }

 private:
  struct FreePiece {
    FreePiece* next;
  };
  struct SizeClass {
    std::size_t bytes{0};
    FreePiece* free{nullptr};
  };
  static constexpr std::size_t pieces_per_chunk = 256;

  SizeClass& size_class(std::size_t bytes) {
    for (SizeClass& c : classes_) {
      if (c.bytes == bytes) return c;
    }
    classes_.push_back(SizeClass{bytes, nullptr});
    return classes_.back();
  }

  void* do_allocate(std::size_t bytes, std::size_t alignment) override {
    if (alignment > alignof(std::max_align_t))
      return std::pmr::new_delete_resource()->allocate(bytes, alignment);
    bytes = std::max(bytes, sizeof(FreePiece));
    bytes = (bytes + alignof(std::max_align_t) - 1) / alignof(std::max_align_t) *
            alignof(std::max_align_t);
    SizeClass& c = size_class(bytes);
    if (c.free == nullptr) {
      auto* chunk = static_cast<char*>(::operator new(bytes* pieces_per_chunk));
      chunks_.push_back(chunk);
      for (std::size_t i = pieces_per_chunk; i-- > 0;) {
        c.free = new (chunk + i * bytes) FreePiece{c.free};
      }
    }
    FreePiece* piece = c.free;
    c.free = piece->next;
    return piece;
  }

  void do_deallocate(void* pointer, std::size_t bytes, std::size_t alignment) override {
    if (alignment > alignof(std::max_align_t)) {
      std::pmr::new_delete_resource()->deallocate(pointer, bytes, alignment);
      return;
    }
    bytes = std::max(bytes, sizeof(FreePiece));
    bytes = (bytes + alignof(std::max_align_t) - 1) / alignof(std::max_align_t) *
            alignof(std::max_align_t);
    SizeClass& c = size_class(bytes);
    c.free = new (pointer) FreePiece{c.free};
  }

  [[nodiscard]] bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
    return this == &other;
  }

  std::vector<SizeClass> classes_;  ///< a handful: one per kind of piece
  std::vector<void*> chunks_;
};

// The two size rules, inline in the allocation path (GCC keeps them out of line otherwise).
#if defined(__GNUC__)
#define MEMTRACK_ALWAYS_INLINE [[gnu::always_inline]] inline
#else
#define MEMTRACK_ALWAYS_INLINE inline
#endif

/// PytorchModel::round_size
MEMTRACK_ALWAYS_INLINE std::optional<std::uint64_t> rounded_size(const AllocatorSettings& settings,
                                                                 std::uint64_t bytes) noexcept {
  if (bytes < min_block_size) return min_block_size;
  // The interval: sizes below 2 MiB use entry 0, [2^(20+k), 2^(21+k)) entry k, the last the rest.
  const auto log2 = static_cast<std::uint64_t>(std::bit_width(bytes) - 1);
  const std::uint64_t index =
      std::min<std::uint64_t>(log2 > 20 ? log2 - 20 : 0, roundup_intervals - 1);
  const std::uint64_t divisions = settings.roundup_power2_divisions[index];
  if (divisions > 1 && bytes > min_block_size * divisions) {
    if (std::has_single_bit(bytes)) return bytes;
    const std::uint64_t floor = std::bit_floor(bytes);
    const std::uint64_t step = floor >> static_cast<unsigned>(std::bit_width(divisions) - 1);
    if (step == 0) return checked_mul(floor, 2);
    const std::uint64_t below = bytes & ~(step - 1);
    return below == bytes ? std::optional<std::uint64_t>(bytes) : checked_add(below, step);
  }
  const auto padded = checked_add(bytes, min_block_size - 1);
  if (!padded) return std::nullopt;
  return *padded / min_block_size * min_block_size;
}

/// PytorchModel::segment_size
MEMTRACK_ALWAYS_INLINE std::optional<std::uint64_t> segment_bytes_for(
    std::uint64_t rounded) noexcept {
  if (rounded <= small_size) return small_buffer;
  if (rounded < min_large_alloc) return large_buffer;
  const auto padded = checked_add(rounded, round_large - 1);
  if (!padded) return std::nullopt;
  return *padded / round_large * round_large;
}

#undef MEMTRACK_ALWAYS_INLINE

std::uint64_t add_or_throw(std::uint64_t a, std::uint64_t b) {
  const auto sum = checked_add(a, b);
  if (!sum) throw std::overflow_error("allocator model: byte count past 2^64 - 1");
  return *sum;
}

}  // namespace

struct PytorchModel::State {
  AllocatorSettings settings;
  std::uint64_t capacity{0};
  std::uint64_t device_total{0};
  std::optional<std::uint64_t> allowed;       ///< per_process_memory_fraction x device_total
  std::optional<std::uint64_t> gc_threshold;  ///< garbage_collection_threshold x allowed
  std::unique_ptr<SequentialAddressSource> own_addresses;
  SegmentAddressSource* addresses{nullptr};

  // Blocks and the nodes of the sets and maps below come from here: an operation then costs a
  // few pointer moves instead of calls to the general-purpose allocator.
  PieceResource memory;
  Pool small_pool{true, &memory};
  Pool large_pool{false, &memory};
  std::map<std::uint64_t, std::unique_ptr<Segment>> segments;  ///< by address
  LiveBlocks live;                                             ///< allocated blocks by address
  std::uint64_t allocated{0};  ///< Invariant: the sum of the allocated blocks' sizes.
  std::uint64_t reserved{0};   ///< Invariant: the sum of segments' sizes (mapped pages).
  std::size_t blocks{0};

  Pool& pool_of(PoolKind kind) noexcept {
    return kind == PoolKind::small ? small_pool : large_pool;
  }
  Pool& pool_of(const Block* b) noexcept { return pool_of(b->pool); }

  [[nodiscard]] bool gc_enabled() const noexcept { return gc_threshold.has_value(); }

  Block* new_block(Segment* segment, std::uint64_t address, std::uint64_t size) {
    void* place = memory.allocate(sizeof(Block), alignof(Block));
    auto* block = new (place) Block{.address = address,
                                    .size = size,
                                    .stream = segment->stream,
                                    .segment = segment,
                                    .pool = segment->pool,
                                    .expandable = segment->expandable};
    ++blocks;
    return block;
  }
  /// new_block in the segment of `like`, read from `like` (in cache) rather than the segment.
  Block* new_block_like(const Block* like, std::uint64_t address, std::uint64_t size) {
    void* place = memory.allocate(sizeof(Block), alignof(Block));
    auto* block = new (place) Block{.address = address,
                                    .size = size,
                                    .stream = like->stream,
                                    .segment = like->segment,
                                    .pool = like->pool,
                                    .expandable = like->expandable};
    ++blocks;
    return block;
  }
  void delete_block(Block* block) noexcept {
    block->~Block();
    memory.deallocate(block, sizeof(Block), alignof(Block));
    --blocks;
  }

  // --- Choosing a cached block -------------------------------------------------------------------

  /// get_free_block: the best fit on the stream, unless an oversize block would be wasted.
  Block* get_free_block(Pool& pool, std::uint64_t stream, std::uint64_t size) {
    if (gc_enabled()) ++pool.free_block_lookups;
    FreeIndex& index = pool.blocks;
    auto it = index.lower_bound(Key{stream, size, 0});
    if (it == index.end() || index.key(it).stream != stream) return nullptr;
    if (index.block(it)->expandable) {
      // A block followed by unmapped pages can grow: its size for best fit is what it can become.
      auto expandable_size = [](const Block* b) {
        return b->size + (b->next != nullptr && !b->next->mapped ? b->next->size : 0);
      };
      auto next = index.next(it);
      while (index.block(it)->expandable && next != index.end() &&
             index.key(next).stream == stream &&
             expandable_size(index.block(next)) < expandable_size(index.block(it))) {
        it = next;
        next = index.next(next);
      }
    }
    const Block* found = index.block(it);
    const std::uint64_t max_split = settings.max_split_size;
    if (size < max_split && found->size >= max_split) return nullptr;
    if (size >= max_split) {
      const auto limit = checked_add(size, settings.max_non_split_rounding);
      if (limit && found->size >= *limit) return nullptr;
    }
    Block* block = index.block(it);
    index.erase(it);
    return block;
  }

  // --- Getting memory from the driver ------------------------------------------------------------

  /// alloc_block: a new segment (or pages of an expandable one), if the device has room.
  Block* alloc_block(Pool& pool, std::uint64_t stream, std::uint64_t size,
                     std::uint64_t segment_bytes) {
    if (allowed) {
      const auto after = checked_add(reserved, segment_bytes);
      if (!after || *after > *allowed) return nullptr;
    }
    if (settings.expandable_segments) return try_allocate_expandable_block(pool, stream, size);
    const auto after = checked_add(reserved, segment_bytes);
    if (!after || *after > capacity) return nullptr;
    const std::uint64_t address = addresses->segment_address(segment_bytes, stream, false);
    auto segment = std::make_unique<Segment>();
    *segment = Segment{
        address, segment_bytes, stream, pool.small ? PoolKind::small : PoolKind::large, false,
        0,       nullptr};
    Block* block = new_block(segment.get(), address, segment_bytes);
    segment->head = block;
    if (!segments.emplace(address, std::move(segment)).second) {
      throw std::logic_error("allocator model: two segments at one address");
    }
    reserved = *after;
    addresses->segment_event({SegmentEvent::Kind::alloc, address, segment_bytes, stream});
    return block;
  }

  /// try_allocate_expandable_block: map pages until a free block of `size` exists, lowest first.
  Block* try_allocate_expandable_block(Pool& pool, std::uint64_t stream, std::uint64_t size) {
    Block* candidate = find_expandable_block(pool, stream, size);
    if (!candidate->mapped && !map_block(candidate, std::min(candidate->size, size)))
      return nullptr;
    while (candidate->size < size) {
      // candidate is free and followed by unmapped pages: map enough of them (they merge into it).
      Block* next = candidate->next;
      if (!map_block(next, std::min(size - candidate->size, next->size))) return nullptr;
      candidate = next;
    }
    pool.blocks.erase(candidate->key());
    return candidate;
  }

  /// find_expandable_block: the lowest unmapped range (with a free block before it) that can hold
  /// `size`, else a new expandable segment's address range.
  Block* find_expandable_block(Pool& pool, std::uint64_t stream, std::uint64_t size) {
    auto allocatable = [](const Block* b) { return b != nullptr && !b->allocated; };
    auto has_room = [&](const Block* b) {
      std::uint64_t bytes = 0;
      while (bytes < size && allocatable(b)) {
        bytes = add_or_throw(bytes, b->size);
        b = b->next;
      }
      return bytes >= size;
    };
    for (auto it = pool.unmapped.lower_bound(Key{stream, 0, 0});
         it != pool.unmapped.end() && (*it)->stream == stream; ++it) {
      Block* candidate = *it;
      if (allocatable(candidate->prev)) candidate = candidate->prev;
      if (has_room(candidate)) return candidate;
    }
    // Address space for 1 1/8 of the device, in whole pages.
    const std::uint64_t page = pool.small ? small_buffer : large_buffer;
    const std::uint64_t wanted = add_or_throw(device_total, device_total / 8);
    const std::uint64_t pages = wanted / page + (wanted % page != 0 ? 1 : 0);
    const auto bytes = checked_mul(pages, page);
    if (!bytes) throw std::overflow_error("allocator model: expandable segment past 2^64 - 1");
    const std::uint64_t address = addresses->segment_address(*bytes, stream, true);
    auto segment = std::make_unique<Segment>();
    *segment = Segment{address, *bytes, stream, pool.small ? PoolKind::small : PoolKind::large,
                       true,    page,   nullptr};
    Block* block = new_block(segment.get(), address, *bytes);
    block->mapped = false;
    segment->head = block;
    if (!segments.emplace(address, std::move(segment)).second) {
      throw std::logic_error("allocator model: two segments at one address");
    }
    pool.unmapped.insert(block);
    return block;
  }

  /// map_block: back the first `size` bytes of an unmapped range (whole pages) with memory.
  bool map_block(Block* to_map, std::uint64_t size) {
    const Segment& segment = *to_map->segment;
    // Unmapped ranges start on a page boundary; map whole pages covering `size`.
    const std::uint64_t pages = size / segment.page + (size % segment.page != 0 ? 1 : 0);
    const std::uint64_t bytes = pages * segment.page;  // <= to_map->size: both whole pages
    const auto after = checked_add(reserved, bytes);
    if (!after || *after > capacity) return false;
    Pool& pool = pool_of(to_map);
    pool.unmapped.erase(to_map);
    to_map->mapped = true;
    const std::uint64_t mapped_address = to_map->address;
    if (bytes < to_map->size) {
      Block* rest = new_block(to_map->segment, to_map->address + bytes, to_map->size - bytes);
      rest->mapped = false;
      splice(rest, to_map, to_map->next);
      pool.unmapped.insert(rest);
      to_map->size = bytes;
    }
    try_merge_blocks(to_map, to_map->prev, pool);
    try_merge_blocks(to_map, to_map->next, pool);
    pool.insert_into_blocks(to_map);
    reserved = *after;
    addresses->segment_event({SegmentEvent::Kind::map, mapped_address, bytes, segment.stream});
    return true;
  }

  /// unmap_block: give back the whole pages inside a free block of an expandable segment.
  void unmap_block(Block* block) {
    Segment& segment = *block->segment;
    const std::uint64_t offset = block->address - segment.address;
    const std::uint64_t first_page = offset / segment.page + (offset % segment.page != 0 ? 1 : 0);
    const std::uint64_t end_page = (offset + block->size) / segment.page;
    if (first_page >= end_page) return;
    Pool& pool = pool_of(block);
    pool.blocks.erase(block->key());
    const std::uint64_t start = segment.address + first_page * segment.page;
    const std::uint64_t bytes = (end_page - first_page) * segment.page;
    const std::uint64_t before = start - block->address;
    if (before > 0) {
      Block* below = new_block(&segment, block->address, before);
      splice(below, block->prev, block);
      pool.insert_into_blocks(below);
    }
    const std::uint64_t after = block->size - before - bytes;
    if (after > 0) {
      Block* above = new_block(&segment, start + bytes, after);
      splice(above, block, block->next);
      pool.insert_into_blocks(above);
    }
    block->address = start;
    block->size = bytes;
    block->mapped = false;
    try_merge_blocks(block, block->prev, pool);
    try_merge_blocks(block, block->next, pool);
    pool.unmapped.insert(block);
    reserved -= bytes;
    addresses->segment_event({SegmentEvent::Kind::unmap, start, bytes, segment.stream});
  }

  void splice(Block* block, Block* before, Block* after) noexcept {
    if (before != nullptr) before->next = block;
    block->prev = before;
    if (after != nullptr) after->prev = block;
    block->next = after;
    if (before == nullptr) block->segment->head = block;
  }

  // --- Giving memory back ------------------------------------------------------------------------

  /// release_block: cudaFree of a wholly free, unsplit segment.
  void release_block(Block* block) {
    Pool& pool = pool_of(block);
    pool.blocks.erase(block->key());
    const Segment& segment = *block->segment;
    const SegmentEvent event{SegmentEvent::Kind::free, segment.address, segment.size,
                             segment.stream};
    reserved -= segment.size;
    const std::uint64_t address = segment.address;
    delete_block(block);
    segments.erase(address);
    addresses->segment_event(event);
  }

  /// release_expandable_segment: an expandable segment with nothing mapped any more.
  void release_expandable_segment(Block* block) {
    pool_of(block).unmapped.erase(block);
    const std::uint64_t address = block->segment->address;
    delete_block(block);
    segments.erase(address);
  }

  /// release_available_cached_blocks: free oversize cached segments, one large enough or the
  /// largest ones, before the failure path frees everything.
  bool release_available_cached_blocks(Pool& pool, std::uint64_t stream, std::uint64_t size) {
    const std::uint64_t max_split = settings.max_split_size;
    if (max_split == UINT64_MAX) return false;
    const std::uint64_t wanted = std::max(size, max_split);
    FreeIndex& index = pool.blocks;
    auto it = index.lower_bound(Key{stream, wanted, 0});
    if (it != index.end() && index.key(it).stream == stream && !index.block(it)->expandable) {
      release_block(index.block(it));
      return true;
    }
    // No single block is large enough: release the largest oversize ones of the stream. Each
    // release erases the entry after `it`, which leaves `it` valid.
    if (it == index.begin()) return false;
    it = index.prev(it);
    std::uint64_t released = 0;
    while (released < wanted && index.key(it).size >= max_split && index.key(it).stream == stream) {
      Block* current = index.block(it);
      const bool first = it == index.begin();
      if (!first) it = index.prev(it);
      if (!current->expandable) {
        released = add_or_throw(released, current->size);
        release_block(current);
      }
      if (first) break;
    }
    return released >= wanted;
  }

  /// release_cached_blocks: every unsplit cached segment (large pool first), and every whole free
  /// page of the expandable segments.
  void release_cached_blocks() {
    release_blocks(large_pool);
    release_blocks(small_pool);
  }

  void release_blocks(Pool& pool) {
    std::vector<Block*> to_unmap;
    FreeIndex& index = pool.blocks;
    for (auto it = index.begin(); it != index.end();) {
      Block* block = index.block(it);
      if (block->expandable) {
        to_unmap.push_back(block);
      } else if (!block->is_split()) {
        // Its entry goes: the next one is the first above its key.
        const Key key = index.key(it);
        release_block(block);
        it = index.lower_bound(key);
        continue;
      }
      it = index.next(it);
    }
    for (Block* block : to_unmap) {
      unmap_block(block);
      if (!block->mapped && !block->is_split()) release_expandable_segment(block);
    }
  }

  /// garbage_collect_cached_blocks: above the threshold, release unsplit large cached segments
  /// whose age (free-block lookups since cached) is at least the average, until enough is back.
  void garbage_collect_cached_blocks() {
    if (reserved <= *gc_threshold) return;
    const std::uint64_t target = reserved - *gc_threshold;
    Pool& pool = large_pool;
    auto age = [&](const Block* b) { return pool.free_block_lookups - b->gc_base; };
    std::uint64_t total_age = 0;
    std::uint64_t freeable = 0;
    for (auto it = pool.blocks.begin(); it != pool.blocks.end(); it = pool.blocks.next(it)) {
      const Block* block = pool.blocks.block(it);
      if (!block->is_split()) {
        total_age = add_or_throw(total_age, age(block));
        ++freeable;
      }
    }
    std::uint64_t reclaimed = 0;
    bool freed = true;
    while (reclaimed < target && freed && freeable > 0) {
      // A block at least as old as the average: age >= total_age / freeable, compared exactly.
      const detail::uint128 threshold_total = total_age;
      const detail::uint128 threshold_count = freeable;
      freed = false;
      for (auto it = pool.blocks.begin(); it != pool.blocks.end();) {
        Block* block = pool.blocks.block(it);
        if (block->is_split() ||
            static_cast<detail::uint128>(age(block)) * threshold_count < threshold_total) {
          it = pool.blocks.next(it);
          continue;
        }
        freed = true;
        reclaimed = add_or_throw(reclaimed, block->size);
        total_age -= age(block);
        --freeable;
        // Its entry goes: the next one is the first above its key.
        const Key key = pool.blocks.key(it);
        release_block(block);
        it = pool.blocks.lower_bound(key);
      }
    }
  }

  // --- Handing out and taking back ---------------------------------------------------------------

  /// try_merge_blocks: `src` joins `dst` if both are free (or both unmapped).
  void try_merge_blocks(Block* dst, Block* src, Pool& pool) {
    if (src == nullptr || src->allocated || dst->mapped != src->mapped) return;
    if (dst->prev == src) {
      dst->address = src->address;
      dst->prev = src->prev;
      if (dst->prev != nullptr) {
        dst->prev->next = dst;
      } else {
        dst->segment->head = dst;
      }
    } else {
      dst->next = src->next;
      if (dst->next != nullptr) dst->next->prev = dst;
    }
    dst->size += src->size;
    if (src->mapped) {
      pool.blocks.erase(src->key());
    } else {
      pool.unmapped.erase(src);
    }
    delete_block(src);
  }

  /// should_split: small pool (or expandable segments): a remainder of 512 bytes or more; large
  /// pool: a request below max_split_size leaving more than 1 MiB.
  [[nodiscard]] bool should_split(const Block* block, std::uint64_t size) const noexcept {
    const std::uint64_t remaining = block->size - size;
    if (block->pool == PoolKind::small || settings.expandable_segments) {
      return remaining >= min_block_size;
    }
    return size < settings.max_split_size && remaining > small_size;
  }

  /// alloc_found_block: the low `size` bytes of the block are handed out, the rest stays cached.
  Allocation alloc_found_block(Pool& pool, Block* block, std::uint64_t size,
                               std::uint64_t requested) {
    if (should_split(block, size)) {
      // The block keeps its low `size` bytes; a new block above it holds the rest. (Splicing the
      // new block in above touches the neighbour above, if any, never the segment.)
      Block* remaining = new_block_like(block, block->address + size, block->size - size);
      splice(remaining, block, block->next);
      block->size = size;
      pool.insert_into_blocks(remaining);
    }
    block->allocated = true;
    live.insert(block->address, block);
    allocated += block->size;
    return Allocation{block->address, block->size, requested};
  }

  AllocateOutcome allocate(std::uint64_t stream, std::uint64_t bytes) {
    if (bytes == 0) return Allocation{0, 0, 0};
    const auto rounded = rounded_size(settings, bytes);
    const auto segment_bytes = rounded ? segment_bytes_for(*rounded) : std::nullopt;
    if (!segment_bytes) return out_of_memory(bytes, rounded.value_or(UINT64_MAX), UINT64_MAX);
    Pool& pool = *rounded <= small_size ? small_pool : large_pool;
    Block* block = get_free_block(pool, stream, *rounded);
    if (block == nullptr) {
      if (gc_enabled()) garbage_collect_cached_blocks();
      block = alloc_block(pool, stream, *rounded, *segment_bytes);
      if (block == nullptr && release_available_cached_blocks(pool, stream, *rounded)) {
        block = alloc_block(pool, stream, *rounded, *segment_bytes);
      }
      if (block == nullptr) {
        release_cached_blocks();
        block = alloc_block(pool, stream, *rounded, *segment_bytes);
      }
      if (block == nullptr) return out_of_memory(bytes, *rounded, *segment_bytes);
    }
    return alloc_found_block(pool, block, *rounded, bytes);
  }

  [[nodiscard]] OutOfMemory out_of_memory(std::uint64_t requested, std::uint64_t rounded,
                                          std::uint64_t segment_bytes) const {
    return OutOfMemory{requested,           rounded, segment_bytes, device_total,
                       capacity - reserved, allowed, allocated,     reserved};
  }

  bool free(std::uint64_t address) {
    if (address == 0) return true;
    Block* block = live.take(address);
    if (block == nullptr) return false;
    allocated -= block->size;
    block->allocated = false;
    Pool& pool = pool_of(block);
    try_merge_blocks(block, block->prev, pool);
    try_merge_blocks(block, block->next, pool);
    pool.insert_into_blocks(block);
    return true;
  }

  [[nodiscard]] std::uint64_t largest_free_block() const {
    std::uint64_t largest = 0;
    for (const Pool* pool : {&small_pool, &large_pool}) {
      // The last block of each stream is its largest: hop from stream to stream, high to low.
      const FreeIndex& index = pool->blocks;
      auto it = index.end();
      while (it != index.begin()) {
        it = index.prev(it);
        largest = std::max(largest, index.key(it).size);
        it = index.lower_bound(Key{index.key(it).stream, 0, 0});
      }
    }
    return largest;
  }

  void clear() noexcept {
    for (auto& [address, segment] : segments) {
      Block* block = segment->head;
      while (block != nullptr) {
        Block* next = block->next;
        delete_block(block);
        block = next;
      }
    }
    segments.clear();
    live.clear();
    for (Pool* pool : {&small_pool, &large_pool}) {
      pool->blocks.clear();
      pool->unmapped.clear();
    }
    allocated = 0;
    reserved = 0;
  }

  void restore(const SegmentInfo& info) {
    auto bad = [&](const std::string& what) {
      return std::invalid_argument("allocator model: segment at " + std::to_string(info.address) +
                                   ": " + what);
    };
    auto segment = std::make_unique<Segment>();
    *segment = Segment{info.address,    info.size,
                       info.stream,     info.pool,
                       info.expandable, info.pool == PoolKind::small ? small_buffer : large_buffer,
                       nullptr};
    const auto end = checked_add(info.address, info.size);
    const auto above = segments.lower_bound(info.address);
    if (!end || info.size == 0 || (above != segments.end() && above->first < *end) ||
        (above != segments.begin() &&
         std::prev(above)->first + std::prev(above)->second->size > info.address)) {
      throw bad("overlaps another segment or ends past 2^64");
    }
    Pool& pool = pool_of(info.pool);
    Segment* owner = segment.get();
    segments.emplace(info.address, std::move(segment));
    std::uint64_t offset = 0;
    Block* previous = nullptr;
    for (const BlockInfo& b : info.blocks) {
      if (b.offset != offset || b.size == 0 || b.size > info.size - offset) {
        throw bad("blocks do not tile it");
      }
      Block* block = new_block(owner, info.address + offset, b.size);
      splice(block, previous, nullptr);
      offset += b.size;
      if (previous != nullptr && b.state != BlockState::allocated &&
          (previous->allocated
               ? BlockState::allocated
               : (previous->mapped ? BlockState::free : BlockState::unmapped)) == b.state) {
        throw bad("two free (or unmapped) neighbours");
      }
      previous = block;
      if (b.state == BlockState::unmapped) {
        if (!info.expandable) throw bad("unmapped block in a segment that is not expandable");
        block->mapped = false;
        pool.unmapped.insert(block);
        continue;
      }
      reserved = add_or_throw(reserved, b.size);
      if (b.state == BlockState::allocated) {
        block->allocated = true;
        live.insert(block->address, block);
        allocated += b.size;
      } else {
        pool.insert_into_blocks(block);
      }
    }
    if (offset != info.size) throw bad("blocks do not cover it");
    if (reserved > capacity) throw bad("mapped bytes exceed the capacity");
  }

  ~State() { clear(); }
};

PytorchModel::PytorchModel(const AllocatorSettings& settings, DeviceLimits limits,
                           SegmentAddressSource* addresses)
    : state_(std::make_unique<State>()) {
  if (limits.device_total == 0) limits.device_total = limits.capacity;
  if (limits.device_total < limits.capacity) {
    throw std::invalid_argument("allocator model: device total below the capacity");
  }
  State& s = *state_;
  s.settings = settings;
  s.capacity = limits.capacity;
  s.device_total = limits.device_total;
  if (settings.per_process_memory_fraction) {
    s.allowed =
        *mul_div_floor(limits.device_total, settings.per_process_memory_fraction->numerator(),
                       settings.per_process_memory_fraction->denominator());
    if (settings.garbage_collection_threshold) {
      s.gc_threshold =
          *mul_div_floor(*s.allowed, settings.garbage_collection_threshold->numerator(),
                         settings.garbage_collection_threshold->denominator());
    }
  }
  if (addresses == nullptr) {
    s.own_addresses = std::make_unique<SequentialAddressSource>();
    addresses = s.own_addresses.get();
  }
  s.addresses = addresses;
}

PytorchModel::~PytorchModel() = default;

AllocateOutcome PytorchModel::allocate(std::uint64_t stream, std::uint64_t bytes) {
  return state_->allocate(stream, bytes);
}

bool PytorchModel::free(std::uint64_t address) {
  return state_->free(address);
}

void PytorchModel::empty_cache() {
  state_->release_cached_blocks();
}

std::uint64_t PytorchModel::allocated() const noexcept {
  return state_->allocated;
}

std::uint64_t PytorchModel::reserved() const noexcept {
  return state_->reserved;
}

std::uint64_t PytorchModel::capacity() const noexcept {
  return state_->capacity;
}

std::uint64_t PytorchModel::largest_free_block() const {
  return state_->largest_free_block();
}

void PytorchModel::restore(const std::vector<SegmentInfo>& segments) {
  state_->clear();
  try {
    for (const SegmentInfo& segment : segments)
      state_->restore(segment);
  } catch (...) {
    state_->clear();
    throw;
  }
}

std::size_t PytorchModel::block_count() const noexcept {
  return state_->blocks;
}

std::vector<SegmentInfo> PytorchModel::segments() const {
  std::vector<SegmentInfo> result;
  result.reserve(state_->segments.size());
  for (const auto& [address, segment] : state_->segments) {
    SegmentInfo info{segment->address, segment->size,       segment->stream,
                     segment->pool,    segment->expandable, {}};
    for (const Block* block = segment->head; block != nullptr; block = block->next) {
      const BlockState state = block->allocated ? BlockState::allocated
                               : block->mapped  ? BlockState::free
                                                : BlockState::unmapped;
      info.blocks.push_back(BlockInfo{block->address - segment->address, block->size, state});
    }
    result.push_back(std::move(info));
  }
  return result;
}

std::optional<std::uint64_t> PytorchModel::round_size(const AllocatorSettings& settings,
                                                      std::uint64_t bytes) noexcept {
  return rounded_size(settings, bytes);
}

std::optional<std::uint64_t> PytorchModel::segment_size(std::uint64_t rounded) noexcept {
  return segment_bytes_for(rounded);
}

}  // namespace memtrack::sim::allocators
