// The caching allocator model and its plain reference, driven in lockstep by random workloads:
// after every operation the outcome, every segment and block, the totals and the segment events
// must agree, and the model's state must keep the allocator's invariants.
#include "harness.hpp"

#include <memtrack/sim/allocators/pytorch_model.hpp>
#include <memtrack/sim/allocators/reference_pytorch_model.hpp>
#include <memtrack/units.hpp>

#include <gtest/gtest.h>
#include <rapidcheck.h>

#include <array>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <sstream>

namespace memtrack::proptest {
namespace {

using namespace memtrack::sim::allocators;

// Default cases; at ~25 operations each on average (up to 100) they check about 300,000.
constexpr int default_cases = 12000;
constexpr std::uint64_t minimum_operations = 200'000;

/// Where a generated size sits; resolved against the settings when the operation runs.
enum class SizeKind : std::uint8_t {
  b511,
  b512,
  b513,
  mib1_minus,
  mib1,
  mib1_plus,
  mib10_minus,
  mib10,
  mib10_plus,
  split_minus,
  split,
  split_plus,
  tiny,
  small,
  medium,
  large,
  huge,
  overflowing,
  count
};

/// The boundaries a default run must reach, and behaviours it must see.
enum class Covered : std::uint8_t {
  size_511,
  size_512,
  size_513,
  size_1mib_minus_1,
  size_1mib,
  size_1mib_plus_1,
  size_10mib_minus_1,
  size_10mib,
  size_10mib_plus_1,
  size_max_split_minus_1,
  size_max_split,
  size_max_split_plus_1,
  out_of_memory,
  cache_released_on_allocate,
  garbage_collected,
  pages_mapped,
  pages_unmapped,
  empty_cache_released,
  oversize_block_reused,
  large_block_unsplit,
  merged_both_sides,
  count
};
constexpr std::size_t covered_count = static_cast<std::size_t>(Covered::count);

const std::array<const char*, covered_count> covered_names = {
    "request 511",
    "request 512",
    "request 513",
    "request 1 MiB - 1",
    "request 1 MiB",
    "request 1 MiB + 1",
    "request 10 MiB - 1",
    "request 10 MiB",
    "request 10 MiB + 1",
    "request max_split_size - 1",
    "request max_split_size",
    "request max_split_size + 1",
    "out of memory",
    "cached segments released by a failed cudaMalloc",
    "garbage collection released a segment",
    "expandable pages mapped",
    "expandable pages unmapped",
    "empty_cache released memory",
    "oversize cached block reused",
    "large block kept unsplit",
    "free merged with both neighbours"};

struct Op {
  enum class Kind : std::uint8_t { allocate, free, free_bogus, empty_cache } kind{Kind::allocate};
  std::uint64_t stream{0};
  SizeKind size{SizeKind::tiny};
  std::uint64_t random{0};
};

void showValue(const Op& op, std::ostream& os) {
  static constexpr std::array<const char*, 4> kinds = {"allocate", "free", "free_bogus",
                                                       "empty_cache"};
  os << kinds[static_cast<std::size_t>(op.kind)] << "(stream " << op.stream << ", size kind "
     << static_cast<int>(op.size) << ", random " << op.random << ")";
}

struct Workload {
  std::string conf;
  std::uint64_t capacity{0};
  std::uint64_t device_total{0};
};

void showValue(const Workload& setup, std::ostream& os) {
  os << "conf '" << setup.conf << "', capacity " << setup.capacity << ", device total "
     << setup.device_total;
}

rc::Gen<Workload> gen_workload() {
  return rc::gen::apply(
      [](bool expandable, int split, int divisions, int fraction, int gc, int rounding,
         std::uint64_t capacity_mib, std::uint64_t extra_mib) {
        std::vector<std::string> items;
        if (expandable) items.emplace_back("expandable_segments:True");
        if (split > 0) items.push_back("max_split_size_mb:" + std::to_string(20 + split));
        if (divisions > 0)
          items.push_back("roundup_power2_divisions:" + std::to_string(1 << divisions));
        static constexpr std::array<const char*, 4> fractions = {"", "1", "0.75", "1/2"};
        if (fraction > 0)
          items.push_back(std::string("per_process_memory_fraction:") +
                          fractions[static_cast<std::size_t>(fraction)]);
        static constexpr std::array<const char*, 4> thresholds = {"", "0.5", "0.8", "1/3"};
        if (gc > 0)
          items.push_back(std::string("garbage_collection_threshold:") +
                          thresholds[static_cast<std::size_t>(gc)]);
        if (rounding > 0)
          items.push_back("max_non_split_rounding_mb:" + std::to_string(rounding * 8));
        std::string conf;
        for (const auto& item : items)
          conf += (conf.empty() ? "" : ",") + item;
        return Workload{conf, capacity_mib << 20U, (capacity_mib + extra_mib) << 20U};
      },
      rc::gen::arbitrary<bool>(), rc::gen::inRange(0, 50), rc::gen::inRange(0, 4),
      rc::gen::inRange(0, 4), rc::gen::inRange(0, 4), rc::gen::inRange(0, 3),
      rc::gen::inRange<std::uint64_t>(24, 400), rc::gen::element<std::uint64_t>(0, 0, 16, 1000));
}

rc::Gen<Op> gen_op() {
  return rc::gen::apply(
      [](int kind, std::uint64_t stream, int size, std::uint64_t random) {
        Op op;
        op.kind = kind < 55   ? Op::Kind::allocate
                  : kind < 95 ? Op::Kind::free
                  : kind < 97 ? Op::Kind::free_bogus
                              : Op::Kind::empty_cache;
        op.stream = stream;
        op.size = static_cast<SizeKind>(size);
        op.random = random;
        return op;
      },
      rc::gen::inRange(0, 100), rc::gen::inRange<std::uint64_t>(0, 3),
      rc::gen::inRange(0, static_cast<int>(SizeKind::count)), rc::gen::arbitrary<std::uint64_t>());
}

std::uint64_t resolve_size(SizeKind kind, std::uint64_t random, std::uint64_t max_split) {
  const std::uint64_t split = max_split == UINT64_MAX ? 32_MiB : max_split;
  switch (kind) {
    case SizeKind::b511:
      return 511;
    case SizeKind::b512:
      return 512;
    case SizeKind::b513:
      return 513;
    case SizeKind::mib1_minus:
      return 1_MiB - 1;
    case SizeKind::mib1:
      return 1_MiB;
    case SizeKind::mib1_plus:
      return 1_MiB + 1;
    case SizeKind::mib10_minus:
      return 10_MiB - 1;
    case SizeKind::mib10:
      return 10_MiB;
    case SizeKind::mib10_plus:
      return 10_MiB + 1;
    case SizeKind::split_minus:
      return split - 1;
    case SizeKind::split:
      return split;
    case SizeKind::split_plus:
      return split + 1;
    case SizeKind::tiny:
      return 1 + random % 4096;
    case SizeKind::small:
      return 1 + random % (2_MiB);
    case SizeKind::medium:
      return 1_MiB + random % (24_MiB);
    case SizeKind::large:
      return 10_MiB + random % (90_MiB);
    case SizeKind::huge:
      return 100_MiB + random % (1_GiB);
    case SizeKind::overflowing:
      return UINT64_MAX - random % (4_MiB);
    case SizeKind::count:
      break;
  }
  return 1;
}

/// Records the segment events a model reports.
class RecordingSource : public SequentialAddressSource {
 public:
  void segment_event(const SegmentEvent& event) override { events.push_back(event); }
  std::vector<SegmentEvent> events;
};

struct Stats {
  std::array<std::uint64_t, covered_count> hits{};
  std::uint64_t operations{0};
  std::uint64_t cases{0};
  void hit(Covered c) { ++hits[static_cast<std::size_t>(c)]; }
};

std::string describe(const AllocateOutcome& outcome) {
  std::ostringstream os;
  if (const auto* a = std::get_if<Allocation>(&outcome)) {
    os << "allocation at " << a->address << " of " << a->size << " for " << a->requested;
  } else {
    const auto& oom = std::get<OutOfMemory>(outcome);
    os << "OOM requested " << oom.requested << " rounded " << oom.rounded << " segment "
       << oom.segment_bytes << " free " << oom.device_free << " allocated " << oom.allocated
       << " reserved " << oom.reserved;
  }
  return os.str();
}

std::string describe(const std::vector<SegmentInfo>& segments) {
  std::ostringstream os;
  for (const auto& s : segments) {
    os << "\n  segment " << s.address << " size " << s.size << " stream " << s.stream << " "
       << to_string(s.pool) << (s.expandable ? " expandable" : "") << ":";
    for (const auto& b : s.blocks)
      os << " [" << b.offset << "+" << b.size << " " << to_string(b.state) << "]";
  }
  return os.str();
}

/// The allocator's invariants on a model's state; empty when they hold.
std::string invariant_violation(const DeviceMemoryModel& model,
                                const std::vector<SegmentInfo>& segments) {
  std::uint64_t allocated = 0;
  std::uint64_t reserved = 0;
  for (const auto& s : segments) {
    std::uint64_t offset = 0;
    for (std::size_t i = 0; i < s.blocks.size(); ++i) {
      const BlockInfo& b = s.blocks[i];
      if (b.offset != offset || b.size == 0)
        return "blocks do not tile segment " + std::to_string(s.address);
      offset += b.size;
      if (i > 0 && b.state != BlockState::allocated && b.state == s.blocks[i - 1].state) {
        return "two neighbours left unmerged in segment " + std::to_string(s.address);
      }
      if (b.state == BlockState::allocated) allocated += b.size;
      if (b.state != BlockState::unmapped) reserved += b.size;
      if (b.state == BlockState::unmapped && !s.expandable)
        return "unmapped block outside an expandable segment";
      if (b.state == BlockState::allocated &&
          (s.pool == PoolKind::small) != (b.size < 1_MiB + 512)) {
        if (!(s.pool == PoolKind::large && b.size > 1_MiB))
          return "allocated block in the wrong pool";
      }
    }
    if (offset != s.size) return "blocks do not cover segment " + std::to_string(s.address);
    if (!s.expandable && s.pool == PoolKind::small && s.size != 2_MiB)
      return "small segment not 2 MiB";
  }
  if (allocated != model.allocated()) return "allocated() is not the sum of allocated blocks";
  if (reserved != model.reserved()) return "reserved() is not the sum of mapped blocks";
  if (!(model.allocated() <= model.reserved() && model.reserved() <= model.capacity())) {
    return "allocated <= reserved <= capacity broken";
  }
  return {};
}

struct Live {
  std::uint64_t address;
  std::uint64_t size;
};

/// Runs one workload; returns the first difference, or nothing.
std::optional<std::string> run_workload(const Workload& setup, const std::vector<Op>& ops,
                                        Stats& stats) {
  const AllocatorSettings settings = AllocatorSettings::parse(setup.conf).value();
  const DeviceLimits limits{setup.capacity, setup.device_total};
  RecordingSource fast_source;
  RecordingSource reference_source;
  PytorchModel fast(settings, limits, &fast_source);
  ReferencePytorchModel reference(settings, limits, &reference_source);
  const bool gc = settings.garbage_collection_threshold && settings.per_process_memory_fraction;
  std::vector<Live> live;
  std::size_t blocks_before = 0;
  ++stats.cases;
  for (std::size_t step = 0; step < ops.size(); ++step) {
    const Op& op = ops[step];
    const std::size_t events_before = fast_source.events.size();
    const std::string where = "operation " + std::to_string(step) + " (" + [&] {
      std::ostringstream os;
      showValue(op, os);
      return os.str();
    }() + "): ";
    switch (op.kind) {
      case Op::Kind::allocate: {
        const std::uint64_t bytes = resolve_size(op.size, op.random, settings.max_split_size);
        const auto expected = reference.allocate(op.stream, bytes);
        const auto actual = fast.allocate(op.stream, bytes);
        if (actual != expected) {
          return where + "allocate(" + std::to_string(bytes) + ") gave " + describe(actual) +
                 ", the reference " + describe(expected);
        }
        if (op.size <= SizeKind::split_plus &&
            (op.size < SizeKind::split_minus || settings.max_split_size != UINT64_MAX)) {
          stats.hit(static_cast<Covered>(op.size));
        }
        bool released = false;
        for (std::size_t e = events_before; e < fast_source.events.size(); ++e) {
          released |= fast_source.events[e].kind == SegmentEvent::Kind::free;
        }
        if (const auto* a = std::get_if<Allocation>(&actual)) {
          if (released)
            stats.hit(gc ? Covered::garbage_collected : Covered::cache_released_on_allocate);
          live.push_back(Live{a->address, a->size});
          if (a->size >= settings.max_split_size && events_before == fast_source.events.size()) {
            stats.hit(Covered::oversize_block_reused);
          }
          if (a->size > 1_MiB && !settings.expandable_segments) {
            const auto rounded = PytorchModel::round_size(settings, bytes);
            if (rounded && a->size > *rounded) stats.hit(Covered::large_block_unsplit);
          }
        } else {
          stats.hit(Covered::out_of_memory);
          if (released) stats.hit(Covered::cache_released_on_allocate);
        }
        break;
      }
      case Op::Kind::free:
      case Op::Kind::free_bogus: {
        if (live.empty()) break;
        const std::size_t index = op.random % live.size();
        const bool bogus = op.kind == Op::Kind::free_bogus;
        const std::uint64_t address = live[index].address + (bogus ? 256 : 0);
        const bool expected = reference.free(address);
        const bool actual = fast.free(address);
        if (actual != expected || actual == bogus) {
          return where + "free(" + std::to_string(address) + ") returned " +
                 std::to_string(actual) + ", the reference " + std::to_string(expected);
        }
        if (!bogus) {
          live[index] = live.back();
          live.pop_back();
          if (fast.block_count() + 2 == blocks_before) stats.hit(Covered::merged_both_sides);
        }
        break;
      }
      case Op::Kind::empty_cache: {
        const std::uint64_t before = fast.reserved();
        reference.empty_cache();
        fast.empty_cache();
        if (fast.reserved() < before) stats.hit(Covered::empty_cache_released);
        break;
      }
    }
    for (std::size_t e = events_before; e < fast_source.events.size(); ++e) {
      if (fast_source.events[e].kind == SegmentEvent::Kind::map) stats.hit(Covered::pages_mapped);
      if (fast_source.events[e].kind == SegmentEvent::Kind::unmap)
        stats.hit(Covered::pages_unmapped);
    }
    ++stats.operations;
    blocks_before = fast.block_count();
    const auto fast_segments = fast.segments();
    const auto reference_segments = reference.segments();
    if (fast_segments != reference_segments) {
      return where + "segments differ; model:" + describe(fast_segments) +
             "\nreference:" + describe(reference_segments);
    }
    if (fast_source.events != reference_source.events) return where + "segment events differ";
    if (fast.allocated() != reference.allocated() || fast.reserved() != reference.reserved() ||
        fast.largest_free_block() != reference.largest_free_block()) {
      return where + "totals differ: allocated " + std::to_string(fast.allocated()) + " vs " +
             std::to_string(reference.allocated()) + ", reserved " +
             std::to_string(fast.reserved()) + " vs " + std::to_string(reference.reserved()) +
             ", largest free " + std::to_string(fast.largest_free_block()) + " vs " +
             std::to_string(reference.largest_free_block());
    }
    if (const std::string broken = invariant_violation(fast, fast_segments); !broken.empty()) {
      return where + broken + describe(fast_segments);
    }
  }
  return std::nullopt;
}

TEST(AllocatorLockstep, ModelMatchesReferenceOperationByOperation) {
  Stats stats;
  const auto started = std::chrono::steady_clock::now();
  const bool held = check_property(default_cases, [&] {
    const Workload setup = *gen_workload();
    const std::vector<Op> ops = *rc::gen::container<std::vector<Op>>(gen_op());
    if (const auto difference = run_workload(setup, ops, stats)) RC_FAIL(*difference);
  });
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::cout << "allocator-lockstep: " << stats.operations << " operations checked in lockstep in "
            << stats.cases << " workloads, " << seconds << " s\n";
  for (std::size_t i = 0; i < covered_count; ++i) {
    std::cout << "  " << covered_names[i] << ": " << stats.hits[i] << "\n";
  }
  if (!held) return;
  if (scaled_cases(default_cases) >= default_cases && std::getenv("RC_PARAMS") == nullptr) {
    for (std::size_t i = 0; i < covered_count; ++i) {
      EXPECT_GT(stats.hits[i], 0U) << "the default run never reached '" << covered_names[i]
                                   << "': the generators no longer aim at it";
    }
    EXPECT_GE(stats.operations, minimum_operations);
  }
}

}  // namespace
}  // namespace memtrack::proptest
