#include <memtrack/traces/allocator_start.hpp>

#include <memtrack/sim/allocators/pytorch_model.hpp>

#include <algorithm>
#include <iterator>
#include <map>
#include <set>
#include <utility>

namespace memtrack::traces {

using sim::allocators::BlockInfo;
using sim::allocators::BlockState;
using sim::allocators::PoolKind;
using sim::allocators::SegmentInfo;

bool began_mid_run(const std::vector<SegmentInfo>& end,
                   const std::vector<AllocatorTraceEntry>& trace) {
  std::set<std::uint64_t> created;
  std::set<std::uint64_t> allocated;
  for (const AllocatorTraceEntry& e : trace) {
    if (e.action == "segment_alloc") created.insert(e.addr);
    if (e.action == "segment_free" && !created.contains(e.addr)) return true;
    if (e.action == "alloc") allocated.insert(e.addr);
    if (e.action == "free_completed" && !allocated.contains(e.addr)) return true;
  }
  return !std::all_of(end.begin(), end.end(),
                      [&](const SegmentInfo& s) { return created.contains(s.address); });
}

namespace {

/// What the recording's allocator trace says about memory from before it.
struct Recorded {
  std::set<std::uint64_t> created;
  std::set<std::uint64_t> allocated_in_trace;
  std::map<std::uint64_t, std::uint64_t> freed_first;  // address -> requested bytes
  std::map<std::uint64_t, SegmentInfo> segments;       // from before the trace, without blocks
  std::set<std::uint64_t> boundaries;  // addresses where the recording shows a block starting
};

/// Blocks known in each segment: segment -> address -> (size, exact).
using KnownBlocks =
    std::map<std::uint64_t, std::map<std::uint64_t, std::pair<std::uint64_t, bool>>>;

/// Reads the trace (and the block boundaries of the end state) for what it shows of the start.
Recorded read_recorded(const std::vector<SegmentInfo>& end,
                       const std::vector<AllocatorTraceEntry>& trace) {
  Recorded r;
  for (const SegmentInfo& s : end) {
    for (const BlockInfo& b : s.blocks)
      r.boundaries.insert(s.address + b.offset);
  }
  for (const AllocatorTraceEntry& e : trace) {
    if (e.action == "alloc") r.boundaries.insert(e.addr);
    if (e.action == "segment_alloc") r.created.insert(e.addr);
    if (e.action == "alloc") r.allocated_in_trace.insert(e.addr);
    if (e.action == "free_completed" && !r.allocated_in_trace.contains(e.addr) &&
        !r.freed_first.contains(e.addr)) {
      r.freed_first[e.addr] = e.size;
    }
    if (e.action == "segment_free" && !r.created.contains(e.addr) && e.size != 0) {
      r.segments[e.addr] = SegmentInfo{
          e.addr,   e.size,
          e.stream, e.size == sim::allocators::small_buffer ? PoolKind::small : PoolKind::large,
          false,    {}};
    }
  }
  return r;
}

/// The segments the end state holds from before the trace, and the blocks known in them: the
/// end state's allocated blocks (exact) and the blocks freed before any allocation (their
/// requested size rounded).
KnownBlocks known_blocks(const sim::allocators::AllocatorSettings& settings,
                         const std::vector<SegmentInfo>& end, Recorded& r, AllocatorStart& start) {
  KnownBlocks known;
  for (const SegmentInfo& s : end) {
    if (r.created.contains(s.address)) continue;
    r.segments[s.address] = SegmentInfo{s.address, s.size, s.stream, s.pool, s.expandable, {}};
    for (const BlockInfo& b : s.blocks) {
      if (b.state == BlockState::allocated &&
          !r.allocated_in_trace.contains(s.address + b.offset)) {
        known[s.address][s.address + b.offset] = {b.size, true};
      }
    }
  }
  for (const auto& [address, requested] : r.freed_first) {
    auto holder = r.segments.upper_bound(address);
    if (holder == r.segments.begin()) continue;
    --holder;
    if (address - holder->first >= holder->second.size) continue;
    const std::uint64_t rounded =
        sim::allocators::PytorchModel::round_size(settings, requested).value_or(0);
    if (rounded == 0) {
      ++start.undetermined;  // a size no block can have: left out
      continue;
    }
    known[holder->first][address] = {rounded, false};
  }
  return known;
}

/// Lays out `segment` (at `address`): its known blocks, free ones between them.
void lay_out(std::uint64_t address, SegmentInfo& segment,
             const std::map<std::uint64_t, std::pair<std::uint64_t, bool>>& blocks,
             const std::set<std::uint64_t>& boundaries, AllocatorStart& start) {
  std::uint64_t offset = 0;
  for (auto it = blocks.begin(); it != blocks.end(); ++it) {
    const std::uint64_t at = it->first - address;
    auto [size, exact] = it->second;
    const std::uint64_t next =
        std::next(it) == blocks.end() ? segment.size : std::next(it)->first - address;
    if (at < offset || size > next || at > next - size) {
      ++start.undetermined;  // inconsistent with its neighbours: left out
      continue;
    }
    if (at > offset) segment.blocks.push_back(BlockInfo{offset, at - offset, BlockState::free});
    // A block PyTorch did not split keeps the remainder: under 512 bytes in the small pool, at
    // most 1 MiB in the large one. The recording gives only the requested size, so where such a
    // block ends is a guess: up to the next address the recording shows in use within that
    // remainder. Every such guess is counted as undetermined.
    if (!exact && segment.pool == PoolKind::large) {
      const auto boundary = boundaries.lower_bound(address + at + size);
      const std::uint64_t limit = std::min(next, at + size + sim::allocators::small_size);
      if (boundary != boundaries.end() && *boundary - address > at + size &&
          *boundary - address <= limit) {
        size = *boundary - address - at;
      }
      if (next > at + size) ++start.undetermined;
    }
    segment.blocks.push_back(BlockInfo{at, size, BlockState::allocated});
    offset = at + size;
  }
  if (offset < segment.size)
    segment.blocks.push_back(BlockInfo{offset, segment.size - offset, BlockState::free});
}

}  // namespace

AllocatorStart reconstruct_start(const sim::allocators::AllocatorSettings& settings,
                                 const std::vector<SegmentInfo>& end,
                                 const std::vector<AllocatorTraceEntry>& trace) {
  AllocatorStart start;
  Recorded recorded = read_recorded(end, trace);
  KnownBlocks known = known_blocks(settings, end, recorded, start);
  for (auto& [address, segment] : recorded.segments) {
    lay_out(address, segment, known[address], recorded.boundaries, start);
    start.segments.push_back(std::move(segment));
  }
  return start;
}

}  // namespace memtrack::traces
