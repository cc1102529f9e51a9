// The caching allocator's rules once more, in arbitrary precision over plain vectors. Every search
// is a scan; every cached-block order is made by sorting on the spot.
#include <memtrack/sim/allocators/reference_pytorch_model.hpp>

#include <algorithm>
#include <stdexcept>
#include <tuple>

namespace memtrack::sim::allocators {
namespace {

using BigInt = ReferencePytorchModel::BigInt;

const BigInt& u64_max() {
  static const BigInt value = (BigInt(1) << 64) - 1;
  return value;
}

std::uint64_t narrow(const BigInt& value) {
  if (value < 0 || value > u64_max()) throw std::logic_error("reference allocator: out of range");
  return value.convert_to<std::uint64_t>();
}

BigInt ceil_to(const BigInt& value, const BigInt& step) {
  return (value + step - 1) / step * step;
}

BigInt floor_share(const BigInt& whole, const Fraction& share) {
  return whole * share.numerator() / share.denominator();
}

const BigInt kib512 = 512;
const BigInt mib1 = BigInt(1) << 20;
const BigInt mib2 = BigInt(2) << 20;
const BigInt mib10 = BigInt(10) << 20;
const BigInt mib20 = BigInt(20) << 20;

}  // namespace

ReferencePytorchModel::ReferencePytorchModel(const AllocatorSettings& settings, DeviceLimits limits,
                                             SegmentAddressSource* addresses)
    : settings_(settings),
      capacity_(limits.capacity),
      device_total_(limits.device_total == 0 ? limits.capacity : limits.device_total),
      addresses_(addresses) {
  if (device_total_ < capacity_) {
    throw std::invalid_argument("reference allocator: device total below the capacity");
  }
  if (settings.per_process_memory_fraction) {
    allowed_ = floor_share(device_total_, *settings.per_process_memory_fraction);
    if (settings.garbage_collection_threshold) {
      gc_threshold_ = floor_share(*allowed_, *settings.garbage_collection_threshold);
    }
  }
  if (addresses_ == nullptr) {
    own_addresses_ = std::make_unique<SequentialAddressSource>();
    addresses_ = own_addresses_.get();
  }
}

// Rounding: 512 at least; with N divisions for the size's power-of-two interval, the next of N
// equal steps between two powers of two; otherwise the next multiple of 512.
BigInt ReferencePytorchModel::round(const BigInt& bytes) const {
  if (bytes < kib512) return kib512;
  unsigned log2 = 0;
  while ((BigInt(1) << (log2 + 1)) <= bytes)
    ++log2;
  const unsigned interval = std::min(log2 > 20 ? log2 - 20 : 0U, 15U);
  const BigInt divisions = settings_.roundup_power2_divisions[interval];
  if (divisions > 1 && bytes > kib512 * divisions) {
    const BigInt power = BigInt(1) << log2;
    if (power == bytes) return bytes;
    BigInt step = power;
    for (BigInt d = divisions; d > 1; d /= 2)
      step /= 2;
    if (step == 0) return power * 2;
    return ceil_to(bytes, step);
  }
  return ceil_to(bytes, kib512);
}

BigInt ReferencePytorchModel::segment_bytes_for(const BigInt& rounded) {
  if (rounded <= mib1) return mib2;
  if (rounded < mib10) return mib20;
  return ceil_to(rounded, mib2);
}

std::pair<std::size_t, std::size_t> ReferencePytorchModel::locate(const BigInt& address) const {
  for (std::size_t s = 0; s < segments_.size(); ++s) {
    for (std::size_t b = 0; b < segments_[s].blocks.size(); ++b) {
      const Block& block = segments_[s].blocks[b];
      if (block.address <= address && address < block.address + block.size) return {s, b};
    }
  }
  throw std::logic_error("reference allocator: no block holds that address");
}

// The cached free blocks of a pool in best-fit order: stream, then size, then address.
std::vector<ReferencePytorchModel::Cached> ReferencePytorchModel::cached(PoolKind pool) const {
  std::vector<Cached> list;
  for (const Segment& segment : segments_) {
    if (segment.pool != pool) continue;
    for (const Block& block : segment.blocks) {
      if (block.state == BlockState::free) {
        list.push_back(Cached{segment.stream, block.size, block.address, segment.expandable,
                              segment.blocks.size() == 1});
      }
    }
  }
  std::sort(list.begin(), list.end(), [](const Cached& a, const Cached& b) {
    return std::tie(a.stream, a.size, a.address) < std::tie(b.stream, b.size, b.address);
  });
  return list;
}

// Best fit on the stream; an expandable block counts the unmapped pages after it. Oversize
// blocks serve only requests that are oversize too and within the rounding limit.
std::optional<BigInt> ReferencePytorchModel::take_cached_block(PoolKind pool, std::uint64_t stream,
                                                               const BigInt& size) {
  if (gc_threshold_) lookups(pool) += 1;
  const std::vector<Cached> list = cached(pool);
  std::size_t i = 0;
  while (i < list.size() &&
         (list[i].stream < stream || (list[i].stream == stream && list[i].size < size)))
    ++i;
  if (i == list.size() || list[i].stream != stream) return std::nullopt;
  auto growable = [&](const Cached& c) {
    const auto [s, b] = locate(c.address);
    const auto& blocks = segments_[s].blocks;
    BigInt total = c.size;
    if (b + 1 < blocks.size() && blocks[b + 1].state == BlockState::unmapped)
      total += blocks[b + 1].size;
    return total;
  };
  while (list[i].expandable && i + 1 < list.size() && list[i + 1].stream == stream &&
         growable(list[i + 1]) < growable(list[i])) {
    ++i;
  }
  const BigInt max_split = settings_.max_split_size;
  if (size < max_split && list[i].size >= max_split) return std::nullopt;
  if (size >= max_split && list[i].size >= size + settings_.max_non_split_rounding)
    return std::nullopt;
  return list[i].address;
}

// A new segment from cudaMalloc, or pages mapped into an expandable segment.
std::optional<BigInt> ReferencePytorchModel::new_memory(PoolKind pool, std::uint64_t stream,
                                                        const BigInt& size,
                                                        const BigInt& segment_bytes) {
  if (allowed_ && reserved() + segment_bytes > *allowed_) return std::nullopt;
  if (settings_.expandable_segments) return grow_expandable(pool, stream, size);
  if (reserved() + segment_bytes > capacity_) return std::nullopt;
  const std::uint64_t address = addresses_->segment_address(narrow(segment_bytes), stream, false);
  Segment segment{address, segment_bytes, stream, pool, false, 0, {}};
  segment.blocks.push_back(Block{address, segment_bytes, BlockState::free, 0});
  segments_.push_back(std::move(segment));
  addresses_->segment_event({SegmentEvent::Kind::alloc, address, narrow(segment_bytes), stream});
  return BigInt(address);
}

std::optional<BigInt> ReferencePytorchModel::grow_expandable(PoolKind pool, std::uint64_t stream,
                                                             const BigInt& size) {
  BigInt address = expandable_start(pool, stream, size);
  {
    const auto [s, b] = locate(address);
    const Block& block = segments_[s].blocks[b];
    if (block.state == BlockState::unmapped && !map(address, std::min(block.size, size)))
      return std::nullopt;
  }
  for (;;) {
    const auto [s, b] = locate(address);
    const Segment& segment = segments_[s];
    const Block& block = segment.blocks[b];
    if (block.size >= size) return block.address;
    const Block& next = segment.blocks.at(b + 1);
    const BigInt next_address = next.address;
    const BigInt missing = size - block.size;
    if (!map(next_address, std::min(missing, next.size))) return std::nullopt;
    address = next_address;
  }
}

// Where an expandable allocation starts: at the lowest unmapped range of the stream (or the free
// block just before it) with room for `size` up to the next allocated block; else a new segment.
BigInt ReferencePytorchModel::expandable_start(PoolKind pool, std::uint64_t stream,
                                               const BigInt& size) {
  std::vector<std::pair<std::size_t, std::size_t>> holes;
  for (std::size_t s = 0; s < segments_.size(); ++s) {
    if (segments_[s].pool != pool || segments_[s].stream != stream) continue;
    for (std::size_t b = 0; b < segments_[s].blocks.size(); ++b) {
      if (segments_[s].blocks[b].state == BlockState::unmapped) holes.emplace_back(s, b);
    }
  }
  std::sort(holes.begin(), holes.end(), [&](const auto& x, const auto& y) {
    return segments_[x.first].blocks[x.second].address <
           segments_[y.first].blocks[y.second].address;
  });
  for (auto [s, b] : holes) {
    const auto& blocks = segments_[s].blocks;
    if (b > 0 && blocks[b - 1].state != BlockState::allocated) --b;
    BigInt room = 0;
    for (std::size_t k = b;
         k < blocks.size() && room < size && blocks[k].state != BlockState::allocated; ++k) {
      room += blocks[k].size;
    }
    if (room >= size) return blocks[b].address;
  }
  const BigInt page = pool == PoolKind::small ? mib2 : mib20;
  const BigInt bytes = ceil_to(device_total_ + device_total_ / 8, page);
  const std::uint64_t address = addresses_->segment_address(narrow(bytes), stream, true);
  Segment segment{address, bytes, stream, pool, true, page, {}};
  segment.blocks.push_back(Block{address, bytes, BlockState::unmapped, 0});
  segments_.push_back(std::move(segment));
  return address;
}

// Maps whole pages from the start of an unmapped range; the pages join free neighbours.
bool ReferencePytorchModel::map(const BigInt& address, const BigInt& size) {
  const auto [s, b] = locate(address);
  Segment& segment = segments_[s];
  const BigInt bytes = ceil_to(size, segment.page);
  if (reserved() + bytes > capacity_) return false;
  Block& block = segment.blocks[b];
  const BigInt rest = block.size - bytes;
  block.size = bytes;
  block.state = BlockState::free;
  if (rest > 0) {
    segment.blocks.insert(segment.blocks.begin() + static_cast<std::ptrdiff_t>(b) + 1,
                          Block{address + bytes, rest, BlockState::unmapped, 0});
  }
  merge_around(s, b);
  addresses_->segment_event(
      {SegmentEvent::Kind::map, narrow(address), narrow(bytes), segment.stream});
  return true;
}

// Unmaps the whole pages inside a free block of an expandable segment; the ends stay free.
void ReferencePytorchModel::unmap(const BigInt& address) {
  const auto [s, b] = locate(address);
  Segment& segment = segments_[s];
  const Block block = segment.blocks[b];
  const BigInt offset = block.address - segment.address;
  const BigInt first_page = (offset + segment.page - 1) / segment.page;
  const BigInt end_page = (offset + block.size) / segment.page;
  if (first_page >= end_page) return;
  const BigInt start = segment.address + first_page * segment.page;
  const BigInt bytes = (end_page - first_page) * segment.page;
  const BigInt now = lookups(segment.pool);
  std::vector<Block> pieces;
  if (start > block.address)
    pieces.push_back(Block{block.address, start - block.address, BlockState::free, now});
  pieces.push_back(Block{start, bytes, BlockState::unmapped, 0});
  const BigInt end = block.address + block.size;
  if (start + bytes < end)
    pieces.push_back(Block{start + bytes, end - start - bytes, BlockState::free, now});
  auto at = segment.blocks.erase(segment.blocks.begin() + static_cast<std::ptrdiff_t>(b));
  segment.blocks.insert(at, pieces.begin(), pieces.end());
  const auto [s2, b2] = locate(start);
  merge_around(s2, b2);
  addresses_->segment_event(
      {SegmentEvent::Kind::unmap, narrow(start), narrow(bytes), segment.stream});
}

// Joins the block with a neighbour in the same state (free with free, unmapped with unmapped);
// a free result is cached afresh.
void ReferencePytorchModel::merge_around(std::size_t s, std::size_t b) {
  auto& blocks = segments_[s].blocks;
  const BlockState state = blocks[b].state;
  if (b + 1 < blocks.size() && blocks[b + 1].state == state) {
    blocks[b].size += blocks[b + 1].size;
    blocks.erase(blocks.begin() + static_cast<std::ptrdiff_t>(b) + 1);
  }
  if (b > 0 && blocks[b - 1].state == state) {
    blocks[b - 1].size += blocks[b].size;
    blocks.erase(blocks.begin() + static_cast<std::ptrdiff_t>(b));
    --b;
  }
  if (state == BlockState::free) blocks[b].cached_at = lookups(segments_[s].pool);
}

void ReferencePytorchModel::release_segment_of(const BigInt& address) {
  const auto [s, b] = locate(address);
  const Segment& segment = segments_[s];
  // An expandable segment goes silently: its pages were unmapped (and reported) already.
  const SegmentEvent event{SegmentEvent::Kind::free, narrow(segment.address), narrow(segment.size),
                           segment.stream};
  const bool expandable = segment.expandable;
  segments_.erase(segments_.begin() + static_cast<std::ptrdiff_t>(s));
  if (!expandable) addresses_->segment_event(event);
}

// With max_split_size set: release one cached oversize segment large enough, else the largest
// oversize segments of the stream until as many bytes are back.
bool ReferencePytorchModel::release_oversize(PoolKind pool, std::uint64_t stream,
                                             const BigInt& size) {
  if (settings_.max_split_size == UINT64_MAX) return false;
  const BigInt max_split = settings_.max_split_size;
  const BigInt wanted = std::max(size, max_split);
  const std::vector<Cached> list = cached(pool);
  std::size_t i = 0;
  while (i < list.size() &&
         (list[i].stream < stream || (list[i].stream == stream && list[i].size < wanted)))
    ++i;
  if (i < list.size() && list[i].stream == stream && !list[i].expandable) {
    release_segment_of(list[i].address);
    return true;
  }
  if (i == 0) return false;
  BigInt released = 0;
  for (std::size_t j = i; j-- > 0;) {
    if (released >= wanted || list[j].size < max_split || list[j].stream != stream) break;
    if (!list[j].expandable) {
      released += list[j].size;
      release_segment_of(list[j].address);
    }
  }
  return released >= wanted;
}

// Every wholly free segment goes back; expandable segments give back their free whole pages, and
// go entirely once nothing in them is mapped.
void ReferencePytorchModel::release_unsplit(PoolKind pool) {
  std::vector<BigInt> to_unmap;
  for (const Cached& c : cached(pool)) {
    if (c.expandable) {
      to_unmap.push_back(c.address);
    } else if (c.whole_segment) {
      release_segment_of(c.address);
    }
  }
  for (const BigInt& address : to_unmap) {
    unmap(address);
    const auto [s, b] = locate(address);
    const Segment& segment = segments_[s];
    if (segment.blocks.size() == 1 && segment.blocks[0].state == BlockState::unmapped) {
      release_segment_of(address);
    }
  }
}

// Garbage collection: over the threshold, release wholly free large segments at least as old as
// the average age, pass after pass, until the excess is back or nothing more goes.
void ReferencePytorchModel::collect_garbage() {
  const BigInt in_use = reserved();
  if (in_use <= *gc_threshold_) return;
  const BigInt target = in_use - *gc_threshold_;
  BigInt total_age = 0;
  BigInt count = 0;
  auto age_of = [&](const Cached& c) {
    const auto [s, b] = locate(c.address);
    return large_lookups_ - segments_[s].blocks[b].cached_at;
  };
  for (const Cached& c : cached(PoolKind::large)) {
    if (c.whole_segment) {
      total_age += age_of(c);
      count += 1;
    }
  }
  BigInt reclaimed = 0;
  bool freed = true;
  while (reclaimed < target && freed && count > 0) {
    const BigInt average_total = total_age;
    const BigInt average_count = count;
    freed = false;
    for (const Cached& c : cached(PoolKind::large)) {
      if (!c.whole_segment) continue;
      const BigInt age = age_of(c);
      if (age * average_count < average_total) continue;
      freed = true;
      reclaimed += c.size;
      total_age -= age;
      count -= 1;
      release_segment_of(c.address);
    }
  }
}

// The low `size` bytes go to the caller; the rest stays cached when the pool's split rule says so.
Allocation ReferencePytorchModel::hand_out(const BigInt& address, const BigInt& size,
                                           std::uint64_t requested) {
  const auto [s, b] = locate(address);
  Segment& segment = segments_[s];
  const BigInt rest = segment.blocks[b].size - size;
  bool split = false;
  if (segment.pool == PoolKind::small || settings_.expandable_segments) {
    split = rest >= kib512;
  } else {
    split = size < BigInt(settings_.max_split_size) && rest > mib1;
  }
  if (split) {
    segment.blocks[b].size = size;
    segment.blocks.insert(segment.blocks.begin() + static_cast<std::ptrdiff_t>(b) + 1,
                          Block{address + size, rest, BlockState::free, lookups(segment.pool)});
  }
  Block& block = segment.blocks[b];
  block.state = BlockState::allocated;
  return Allocation{narrow(block.address), narrow(block.size), requested};
}

OutOfMemory ReferencePytorchModel::refusal(std::uint64_t requested, const BigInt& rounded,
                                           const BigInt& segment_bytes) const {
  const auto clamp = [](const BigInt& v) { return narrow(std::min(v, u64_max())); };
  return OutOfMemory{requested,
                     clamp(rounded),
                     clamp(segment_bytes),
                     narrow(device_total_),
                     narrow(capacity_ - reserved()),
                     allowed_ ? std::optional<std::uint64_t>(narrow(*allowed_)) : std::nullopt,
                     allocated(),
                     reserved()};
}

AllocateOutcome ReferencePytorchModel::allocate(std::uint64_t stream, std::uint64_t bytes) {
  if (bytes == 0) return Allocation{0, 0, 0};
  const BigInt rounded = round(bytes);
  const BigInt segment_bytes = segment_bytes_for(rounded);
  if (rounded > u64_max() || segment_bytes > u64_max()) return refusal(bytes, rounded, u64_max());
  const PoolKind pool = rounded <= mib1 ? PoolKind::small : PoolKind::large;
  std::optional<BigInt> found = take_cached_block(pool, stream, rounded);
  if (!found) {
    if (gc_threshold_) collect_garbage();
    found = new_memory(pool, stream, rounded, segment_bytes);
    if (!found && release_oversize(pool, stream, rounded)) {
      found = new_memory(pool, stream, rounded, segment_bytes);
    }
    if (!found) {
      empty_cache();
      found = new_memory(pool, stream, rounded, segment_bytes);
    }
    if (!found) return refusal(bytes, rounded, segment_bytes);
  }
  return hand_out(*found, rounded, bytes);
}

bool ReferencePytorchModel::free(std::uint64_t address) {
  if (address == 0) return true;
  for (std::size_t s = 0; s < segments_.size(); ++s) {
    for (std::size_t b = 0; b < segments_[s].blocks.size(); ++b) {
      Block& block = segments_[s].blocks[b];
      if (block.address == address && block.state == BlockState::allocated) {
        block.state = BlockState::free;
        merge_around(s, b);
        return true;
      }
    }
  }
  return false;
}

void ReferencePytorchModel::empty_cache() {
  release_unsplit(PoolKind::large);
  release_unsplit(PoolKind::small);
}

std::uint64_t ReferencePytorchModel::allocated() const noexcept {
  BigInt total = 0;
  for (const Segment& segment : segments_) {
    for (const Block& block : segment.blocks) {
      if (block.state == BlockState::allocated) total += block.size;
    }
  }
  return narrow(total);
}

std::uint64_t ReferencePytorchModel::reserved() const noexcept {
  BigInt total = 0;
  for (const Segment& segment : segments_) {
    for (const Block& block : segment.blocks) {
      if (block.state != BlockState::unmapped) total += block.size;
    }
  }
  return narrow(total);
}

std::uint64_t ReferencePytorchModel::capacity() const noexcept {
  return narrow(capacity_);
}

std::uint64_t ReferencePytorchModel::largest_free_block() const {
  BigInt largest = 0;
  for (const Segment& segment : segments_) {
    for (const Block& block : segment.blocks) {
      if (block.state == BlockState::free) largest = std::max(largest, block.size);
    }
  }
  return narrow(largest);
}

std::vector<SegmentInfo> ReferencePytorchModel::segments() const {
  std::vector<SegmentInfo> result;
  for (const Segment& segment : segments_) {
    SegmentInfo info{narrow(segment.address), narrow(segment.size),
                     segment.stream,          segment.pool,
                     segment.expandable,      {}};
    for (const Block& block : segment.blocks) {
      info.blocks.push_back(
          BlockInfo{narrow(block.address - segment.address), narrow(block.size), block.state});
    }
    result.push_back(std::move(info));
  }
  std::sort(result.begin(), result.end(),
            [](const SegmentInfo& a, const SegmentInfo& b) { return a.address < b.address; });
  return result;
}

}  // namespace memtrack::sim::allocators
