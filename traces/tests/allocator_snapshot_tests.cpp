// The caching allocator model against reality: PyTorch snapshots recorded on real GPUs
// (../shared/traces/pytorch) are replayed through `PytorchModel`, which must put every allocation
// at the address PyTorch chose, produce the recorded segment events, and end with the snapshot's
// segments block for block. A snapshot recorded from an empty allocator is checked whole; one whose
// trace began mid-run starts from a reconstructed state, and what that state leaves undetermined is
// counted and printed. Skips where the folder is absent.
#include <memtrack/sim/allocators/pytorch_model.hpp>
#include <memtrack/traces/allocator_start.hpp>

#include "pickle.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

namespace memtrack::traces {
namespace {

using namespace memtrack::sim::allocators;
using pickle::Value;

std::filesystem::path shared_traces() {
  if (const char* dir = std::getenv("MEMTRACK_SHARED_TRACES")) return dir;
  return MEMTRACK_SHARED_TRACES_DIR;
}

using Entry = AllocatorTraceEntry;

struct Snapshot {
  AllocatorSettings settings;
  std::map<std::uint64_t, std::vector<SegmentInfo>> segments;  ///< by device
  std::map<std::uint64_t, std::vector<Entry>> traces;          ///< by device
};

std::uint64_t unsigned_of(const Value* value) {
  if (value == nullptr) return 0;
  if (value->is(Value::Kind::Int) && value->negative) return 0;
  return value->as_unsigned().value_or(0);
}

std::string text_of(const Value* value) {
  return value != nullptr && value->is(Value::Kind::String) ? std::string(value->text)
                                                            : std::string{};
}

AllocatorSettings settings_of(const Value* dict) {
  AllocatorSettings settings;
  if (dict == nullptr || !dict->is(Value::Kind::Dict)) return settings;
  if (const Value* v = dict->get("expandable_segments"); v != nullptr && v->is(Value::Kind::Bool)) {
    settings.expandable_segments = v->boolean;
  }
  if (const Value* v = dict->get("max_split_size"); v != nullptr && !v->negative) {
    settings.max_split_size = v->as_unsigned().value_or(UINT64_MAX);
  }
  if (const Value* v = dict->get("garbage_collection_threshold");
      v != nullptr && v->is(Value::Kind::Float) && v->number > 0) {
    settings.garbage_collection_threshold = Fraction::from_double(v->number).value();
  }
  if (const Value* v = dict->get("roundup_power2_divisions");
      v != nullptr && v->is(Value::Kind::Dict)) {
    // Keyed by each interval's start in MiB: "1", "2", "4", ... "32768".
    for (std::size_t index = 0; index < roundup_intervals; ++index) {
      settings.roundup_power2_divisions[index] = unsigned_of(v->get(std::to_string(1ULL << index)));
    }
  }
  return settings;
}

BlockState state_of(const std::string& state) {
  // A block whose free was requested but not completed is still held by the allocator.
  if (state == "active_allocated" || state == "active_pending_free") return BlockState::allocated;
  if (state == "inactive") return BlockState::free;
  return BlockState::unmapped;
}

Snapshot load(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  std::string bytes(static_cast<std::size_t>(in.tellg()), '\0');
  in.seekg(0);
  in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  auto document = pickle::parse(bytes, path.string());
  EXPECT_TRUE(document.has_value()) << document.error().to_string();
  Snapshot snapshot;
  const Value& root = *document->root;
  snapshot.settings = settings_of(root.get("allocator_settings"));
  for (const Value* s : root.get("segments")->items) {
    SegmentInfo segment;
    segment.address = unsigned_of(s->get("address"));
    segment.size = unsigned_of(s->get("total_size"));
    segment.stream = unsigned_of(s->get("stream"));
    segment.pool = text_of(s->get("segment_type")) == "small" ? PoolKind::small : PoolKind::large;
    const Value* expandable = s->get("is_expandable");
    segment.expandable = expandable != nullptr && expandable->boolean;
    for (const Value* b : s->get("blocks")->items) {
      segment.blocks.push_back(BlockInfo{unsigned_of(b->get("address")) - segment.address,
                                         unsigned_of(b->get("size")),
                                         state_of(text_of(b->get("state")))});
    }
    snapshot.segments[unsigned_of(s->get("device"))].push_back(std::move(segment));
  }
  const Value* traces = root.get("device_traces");
  for (std::size_t device = 0; traces != nullptr && device < traces->items.size(); ++device) {
    for (const Value* e : traces->items[device]->items) {
      snapshot.traces[device].push_back(
          Entry{text_of(e->get("action")), unsigned_of(e->get("addr")), unsigned_of(e->get("size")),
                unsigned_of(e->get("stream"))});
    }
  }
  for (auto& [device, segments] : snapshot.segments) {
    std::sort(segments.begin(), segments.end(),
              [](const SegmentInfo& a, const SegmentInfo& b) { return a.address < b.address; });
  }
  return snapshot;
}

/// What one device's replay verified, and what it could not.
struct Tally {
  bool from_empty{false};
  std::uint64_t allocations_verified{0};
  std::uint64_t frees_verified{0};
  std::uint64_t segment_events_verified{0};
  std::uint64_t end_segments_verified{0};
  std::uint64_t end_blocks_verified{0};
  std::uint64_t end_blocks_total{0};
  std::uint64_t start_blocks_undetermined{0};  ///< sizes the mid-run start leaves open
  std::uint64_t entries_unverifiable{0};       ///< oom entries (the device's size is unknown)
  std::uint64_t differences{0};
  std::string first_difference;

  void differ(const std::string& what) {
    if (differences++ == 0) first_difference = what;
  }
};

/// Hands the model the recorded segment addresses, and checks its segment events against the
/// recorded ones, in order.
class RecordedSegments : public SegmentAddressSource {
 public:
  RecordedSegments(const std::vector<Entry>& recorded, Tally& tally)
      : recorded_(recorded), tally_(tally) {}

  std::uint64_t segment_address(std::uint64_t size, std::uint64_t stream,
                                bool expandable) override {
    static_cast<void>(stream);
    const char* wanted = expandable ? "segment_map" : "segment_alloc";
    if (consumed_ < recorded_.size() && recorded_[consumed_].action == wanted &&
        (expandable || recorded_[consumed_].size == size)) {
      return recorded_[consumed_].addr;
    }
    tally_.differ("the model asked for a new segment of " + std::to_string(size) +
                  " bytes that the recording does not have");
    return fallback_.segment_address(size, stream, expandable);
  }

  void segment_event(const SegmentEvent& event) override {
    const Entry* expected = consumed_ < recorded_.size() ? &recorded_[consumed_] : nullptr;
    if (expected != nullptr && expected->action == to_string(event.kind) &&
        expected->addr == event.address && expected->size == event.size) {
      ++tally_.segment_events_verified;
    } else {
      tally_.differ("modelled " + std::string(to_string(event.kind)) + " at " +
                    std::to_string(event.address) + " of " + std::to_string(event.size) +
                    (expected != nullptr ? ", recorded " + expected->action + " at " +
                                               std::to_string(expected->addr) + " of " +
                                               std::to_string(expected->size)
                                         : ", none recorded"));
    }
    ++consumed_;
  }

  [[nodiscard]] std::size_t consumed() const { return consumed_; }

 private:
  const std::vector<Entry>& recorded_;
  Tally& tally_;
  std::size_t consumed_{0};
  SequentialAddressSource fallback_{1ULL << 62U};
};

Tally replay_device(const Snapshot& snapshot, std::uint64_t device) {
  Tally tally;
  static const std::vector<SegmentInfo> none;
  static const std::vector<Entry> no_trace;
  const auto& end = snapshot.segments.contains(device) ? snapshot.segments.at(device) : none;
  const auto& trace = snapshot.traces.contains(device) ? snapshot.traces.at(device) : no_trace;
  std::vector<Entry> recorded_segment_events;
  for (const Entry& e : trace) {
    if (e.action.starts_with("segment_")) recorded_segment_events.push_back(e);
  }
  tally.from_empty = !began_mid_run(end, trace);

  RecordedSegments source(recorded_segment_events, tally);
  // The device's size is not in a snapshot: a capacity nothing recorded comes near.
  PytorchModel model(snapshot.settings, DeviceLimits{1ULL << 50U, 1ULL << 50U}, &source);
  if (!tally.from_empty) {
    try {
      const AllocatorStart start = reconstruct_start(snapshot.settings, end, trace);
      tally.start_blocks_undetermined += start.undetermined;
      model.restore(start.segments);
    } catch (const std::invalid_argument& error) {
      tally.differ(std::string("the reconstructed start is inconsistent: ") + error.what());
      return tally;
    }
  }
  std::size_t seen = 0;
  auto settle = [&](std::size_t index) {
    // Recorded segment_free entries no allocation explains: an empty_cache() happened.
    if (source.consumed() < seen) model.empty_cache();
    if (source.consumed() != seen) {
      tally.differ("entry " + std::to_string(index) + ": " + std::to_string(seen) +
                   " segment events recorded so far, the model made " +
                   std::to_string(source.consumed()));
    }
  };
  for (std::size_t i = 0; i < trace.size(); ++i) {
    const Entry& e = trace[i];
    if (e.action.starts_with("segment_")) {
      ++seen;
    } else if (e.action == "alloc") {
      const auto outcome = model.allocate(e.stream, e.size);
      const auto* placed = std::get_if<Allocation>(&outcome);
      if (placed != nullptr && placed->address == e.addr) {
        ++tally.allocations_verified;
      } else {
        tally.differ("entry " + std::to_string(i) + ": alloc of " + std::to_string(e.size) +
                     " recorded at " + std::to_string(e.addr) + ", modelled " +
                     (placed != nullptr ? "at " + std::to_string(placed->address)
                                        : std::string("out of memory")));
      }
      settle(i);
    } else if (e.action == "free_completed") {
      settle(i);
      if (model.free(e.addr)) {
        ++tally.frees_verified;
      } else {
        tally.differ("entry " + std::to_string(i) + ": free_completed at " +
                     std::to_string(e.addr) + " names no modelled allocation");
      }
    } else if (e.action == "oom") {
      ++tally.entries_unverifiable;
    }
  }
  settle(trace.size());
  const auto modelled = model.segments();
  std::map<std::uint64_t, const SegmentInfo*> by_address;
  for (const auto& s : modelled)
    by_address[s.address] = &s;
  for (const SegmentInfo& s : end) {
    tally.end_blocks_total += s.blocks.size();
    const auto found = by_address.find(s.address);
    if (found == by_address.end()) {
      tally.differ("snapshot segment at " + std::to_string(s.address) + " is not modelled");
      continue;
    }
    const SegmentInfo& m = *found->second;
    if (m.size == s.size && m.pool == s.pool && m.stream == s.stream) ++tally.end_segments_verified;
    for (std::size_t b = 0; b < s.blocks.size(); ++b) {
      if (b < m.blocks.size() && m.blocks[b] == s.blocks[b]) {
        ++tally.end_blocks_verified;
      } else {
        tally.differ("segment at " + std::to_string(s.address) + " block " + std::to_string(b) +
                     ": recorded offset " + std::to_string(s.blocks[b].offset) + " size " +
                     std::to_string(s.blocks[b].size) + " " +
                     std::string(to_string(s.blocks[b].state)));
      }
    }
  }
  if (modelled.size() != end.size()) {
    tally.differ("the model ends with " + std::to_string(modelled.size()) +
                 " segments, the snapshot " + std::to_string(end.size()));
  }
  return tally;
}

void print(const std::string& name, std::uint64_t device, const Tally& t) {
  std::cout << name << " gpu:" << device
            << (t.from_empty ? " (recorded from an empty allocator)" : " (began mid-run)")
            << ": verified " << t.allocations_verified << " allocations at the recorded address, "
            << t.frees_verified << " frees, " << t.segment_events_verified << " segment events, "
            << t.end_segments_verified << " end segments and " << t.end_blocks_verified << " of "
            << t.end_blocks_total << " end blocks; undetermined: " << t.start_blocks_undetermined
            << " start blocks, " << t.entries_unverifiable
            << " oom entries; differences: " << t.differences
            << (t.differences > 0 ? " (first: " + t.first_difference + ")" : std::string{}) << "\n";
}

TEST(AllocatorSnapshots, EmptyStartSnapshotIsReproducedExactly) {
  const auto path = shared_traces() / "pytorch" / "silmont_mem_snapshot.pickle";
  if (!std::filesystem::exists(path)) {
    GTEST_SKIP() << "skipped: " << path.string()
                 << " is absent (the shared real-GPU traces are not in a fresh checkout; set "
                    "MEMTRACK_SHARED_TRACES to their folder to run this test)";
  }
  const Snapshot snapshot = load(path);
  const Tally tally = replay_device(snapshot, 0);
  print(path.filename().string(), 0, tally);
  EXPECT_TRUE(tally.from_empty);
  EXPECT_EQ(tally.differences, 0U) << tally.first_difference;
  // The recording's own figures: 36 allocs, 26 frees, 9 segment_allocs, 9 segments at the end.
  EXPECT_EQ(tally.allocations_verified, 36U);
  EXPECT_EQ(tally.frees_verified, 26U);
  EXPECT_EQ(tally.segment_events_verified, 9U);
  EXPECT_EQ(tally.end_segments_verified, 9U);
  EXPECT_EQ(tally.end_blocks_verified, tally.end_blocks_total);
  EXPECT_GT(tally.end_blocks_total, 9U);
}

TEST(AllocatorSnapshots, EverySharedSnapshotReportsVerifiedAndUndetermined) {
  const auto folder = shared_traces() / "pytorch";
  if (!std::filesystem::exists(folder)) {
    GTEST_SKIP() << "skipped: " << folder.string()
                 << " is absent (set MEMTRACK_SHARED_TRACES to the shared traces to run this test)";
  }
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(folder)) {
    if (entry.path().extension() == ".pickle") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  for (const auto& file : files) {
    const Snapshot snapshot = load(file);
    std::set<std::uint64_t> devices;
    for (const auto& [device, trace] : snapshot.traces) {
      if (!trace.empty()) devices.insert(device);
    }
    for (const auto& [device, segments] : snapshot.segments)
      devices.insert(device);
    for (const std::uint64_t device : devices) {
      const Tally tally = replay_device(snapshot, device);
      print(file.filename().string(), device, tally);
      // From an empty allocator everything is determined, so everything must match.
      if (tally.from_empty) {
        EXPECT_EQ(tally.differences, 0U) << file << ": " << tally.first_difference;
      }
    }
  }
}

}  // namespace
}  // namespace memtrack::traces
