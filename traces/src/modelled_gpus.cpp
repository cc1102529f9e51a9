#include "modelled_gpus.hpp"

#include "import_support.hpp"

#include <memtrack/units.hpp>

#include <algorithm>
#include <deque>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>
#include <utility>

namespace memtrack::traces::detail {
namespace {

using sim::allocators::Allocation;
using sim::allocators::AllocatorSettings;
using sim::allocators::BlockInfo;
using sim::allocators::BlockState;
using sim::allocators::DeviceLimits;
using sim::allocators::OutOfMemory;
using sim::allocators::PytorchModel;
using sim::allocators::SegmentEvent;
using sim::allocators::SegmentInfo;
using sim::allocators::SequentialAddressSource;

/// A device without limit: where the second model finds what a device needs.
constexpr std::uint64_t unlimited = std::uint64_t{1} << 62U;
/// New segments of a model whose recording gives none live far from any recorded address.
constexpr std::uint64_t unrecorded_base = std::uint64_t{3} << 62U;

std::optional<SegmentEvent::Kind> segment_kind(TraceEvent::Kind kind) {
  switch (kind) {
    case TraceEvent::Kind::SegmentAlloc:
      return SegmentEvent::Kind::alloc;
    case TraceEvent::Kind::SegmentFree:
      return SegmentEvent::Kind::free;
    case TraceEvent::Kind::SegmentMap:
      return SegmentEvent::Kind::map;
    case TraceEvent::Kind::SegmentUnmap:
      return SegmentEvent::Kind::unmap;
    default:
      return std::nullopt;
  }
}

std::string describe(const SegmentEvent& event) {
  return std::string(to_string(event.kind)) + " at " + hex(event.address) + " of " +
         std::to_string(event.size) + " bytes";
}

/**
 * @brief Hands the model the recording's segment addresses while the replay keeps to the
 * recording, and compares every segment event the model makes with the recorded ones, in order.
 */
class RecordedSegments final : public sim::allocators::SegmentAddressSource {
 public:
  std::deque<SegmentEvent> pending;  ///< recorded, not yet reproduced
  bool checking{false};
  std::uint64_t verified{0};
  std::optional<std::string> mismatch;

  std::uint64_t segment_address(std::uint64_t size, std::uint64_t stream,
                                bool expandable) override {
    const auto wanted = expandable ? SegmentEvent::Kind::map : SegmentEvent::Kind::alloc;
    if (checking && !pending.empty() && pending.front().kind == wanted &&
        (expandable || pending.front().size == size)) {
      return pending.front().address;
    }
    if (checking && !mismatch) {
      mismatch = "the model obtains a new segment of " + std::to_string(size) +
                 " bytes on stream " + std::to_string(stream) + "; the recording " +
                 (pending.empty() ? std::string("has no segment event here")
                                  : "has " + describe(pending.front()) + " next");
    }
    return fallback_.segment_address(size, stream, expandable);
  }

  void segment_event(const SegmentEvent& event) override {
    if (!checking) return;
    if (pending.empty()) {
      if (!mismatch) mismatch = "the model makes " + describe(event) + "; the recording none";
      return;
    }
    const SegmentEvent& recorded = pending.front();
    if (recorded.kind == event.kind && recorded.address == event.address &&
        recorded.size == event.size) {
      ++verified;
    } else if (!mismatch) {
      mismatch = "the model makes " + describe(event) + "; the recording " + describe(recorded);
    }
    pending.pop_front();
  }

 private:
  SequentialAddressSource fallback_{unrecorded_base};
};

/// A layout being read: its segments and their blocks.
struct LayoutReading {
  TraceEvent::LayoutPhase phase{TraceEvent::LayoutPhase::check};
  std::uint64_t segments_left{0};
  std::uint64_t blocks_left{0};
  std::uint64_t undetermined{0};
  std::vector<SegmentInfo> segments;
};

std::string describe(const SegmentInfo& segment, std::size_t block) {
  const BlockInfo& b = segment.blocks[block];
  return "block " + std::to_string(block) + " of the segment at " + hex(segment.address) +
         " (offset " + std::to_string(b.offset) + ", " + std::to_string(b.size) + " bytes, " +
         std::string(to_string(b.state)) + ")";
}

/// @return the first difference between the recorded layout and the model's, or nothing
std::optional<std::string> compare_layouts(const std::vector<SegmentInfo>& recorded,
                                           const std::vector<SegmentInfo>& modelled,
                                           std::uint64_t& segments_verified,
                                           std::uint64_t& blocks_verified) {
  std::unordered_map<std::uint64_t, const SegmentInfo*> by_address;
  for (const SegmentInfo& s : modelled)
    by_address.emplace(s.address, &s);
  for (const SegmentInfo& s : recorded) {
    const auto found = by_address.find(s.address);
    if (found == by_address.end()) {
      return "the recording has a segment of " + std::to_string(s.size) + " bytes at " +
             hex(s.address) + "; the model none";
    }
    const SegmentInfo& m = *found->second;
    if (m.size != s.size || m.stream != s.stream || m.pool != s.pool ||
        m.expandable != s.expandable) {
      return "the segment at " + hex(s.address) + ": recorded " + std::to_string(s.size) +
             " bytes, stream " + std::to_string(s.stream) + ", " + std::string(to_string(s.pool)) +
             " pool; modelled " + std::to_string(m.size) + " bytes, stream " +
             std::to_string(m.stream) + ", " + std::string(to_string(m.pool)) + " pool";
    }
    for (std::size_t b = 0; b < s.blocks.size(); ++b) {
      if (b >= m.blocks.size() || m.blocks[b] != s.blocks[b]) {
        return "recorded " + describe(s, b) + "; modelled " +
               (b < m.blocks.size() ? describe(m, b) : std::string("no such block"));
      }
      ++blocks_verified;
    }
    if (m.blocks.size() != s.blocks.size()) {
      return "the segment at " + hex(s.address) + ": recorded " + std::to_string(s.blocks.size()) +
             " blocks; modelled " + std::to_string(m.blocks.size());
    }
    ++segments_verified;
  }
  if (modelled.size() != recorded.size()) {
    return "the recording has " + std::to_string(recorded.size()) + " segments; the model " +
           std::to_string(modelled.size());
  }
  return std::nullopt;
}

}  // namespace

struct ModelledGpus::Gpu {
  /// An allocation: its block in the model (none when refused) and in the model without limit.
  struct Handle {
    std::optional<std::uint64_t> main;
    std::uint64_t shadow{0};
  };

  std::uint32_t id{0};
  AllocatorSettings settings;
  RecordedSegments source;
  std::unique_ptr<PytorchModel> main;
  /// The same program on a device without limit; started when `main` first nears its capacity
  /// (until then the two are the same), for what the device needs.
  std::unique_ptr<PytorchModel> shadow;
  std::unordered_map<std::uint64_t, Handle> by_key;
  std::unordered_map<std::uint64_t, std::vector<Handle>> by_size;
  std::unordered_set<std::uint64_t> unclaimed;  ///< allocated blocks of the start layout
  std::optional<LayoutReading> reading;
  ModelledDevice figures;
  std::uint64_t shadow_peak{0};
  bool operated{false};
  bool departed{false};
  bool baseline_seen{false};
  bool layout_start{false};

  [[nodiscard]] bool checking() const { return figures.verifying && !departed; }
  /// Recorded addresses are used, and segment events compared, only while checking.
  void sync() { source.checking = checking(); }

  void start_shadow() {
    AllocatorSettings unbounded = settings;
    unbounded.per_process_memory_fraction.reset();
    unbounded.garbage_collection_threshold.reset();
    shadow = std::make_unique<PytorchModel>(unbounded, DeviceLimits{unlimited, unlimited});
    shadow->restore(main->segments());
    shadow_peak = shadow->reserved();
  }

  /// @return whether an allocation of `bytes` might take `main` to its capacity (and so into the
  /// allocator's failure path, which gives cached segments back)
  [[nodiscard]] bool near_capacity(std::uint64_t bytes) const {
    const auto rounded = PytorchModel::round_size(settings, bytes);
    const auto segment = rounded ? PytorchModel::segment_size(*rounded) : std::nullopt;
    const std::uint64_t worst =
        segment ? checked_add(*segment, settings.expandable_segments ? 20ULL << 20U : 0)
                      .value_or(UINT64_MAX)
                : UINT64_MAX;
    return settings.per_process_memory_fraction.has_value() || worst > main->capacity() ||
           main->reserved() > main->capacity() - worst;
  }

  /// Starts the model without limit before an allocation that might take `main` to its capacity.
  void before_allocation(std::uint64_t bytes) {
    if (!shadow && near_capacity(bytes)) start_shadow();
  }

  /// Recorded segments given back before an allocation that cannot reach the failure path were
  /// given back by the program: `torch.cuda.empty_cache()`, before the allocation.
  void release_before(std::uint64_t bytes) {
    if (source.pending.empty() || near_capacity(bytes)) return;
    const auto kind = source.pending.front().kind;
    if (kind != SegmentEvent::Kind::free && kind != SegmentEvent::Kind::unmap) return;
    main->empty_cache();
    if (shadow) shadow->empty_cache();
  }

  void update() {
    ModelledDevice& f = figures;
    f.allocated_peak = std::max(f.allocated_peak, main->allocated());
    if (main->reserved() > f.reserved_peak) {
      f.reserved_peak = main->reserved();
      f.allocated_at_reserved_peak = main->allocated();
      f.largest_free_at_reserved_peak = main->largest_free_block();
    }
    if (shadow) shadow_peak = std::max(shadow_peak, shadow->reserved());
  }

  /// Recorded segment events still pending after an operation: freed segments no allocation
  /// explains are an `empty_cache()` of the program; anything else is a difference.
  Difference settle() {
    if (!source.pending.empty() &&
        std::all_of(source.pending.begin(), source.pending.end(), [](const SegmentEvent& e) {
          return e.kind == SegmentEvent::Kind::free || e.kind == SegmentEvent::Kind::unmap;
        })) {
      main->empty_cache();
      if (shadow) shadow->empty_cache();
    }
    Difference difference = std::move(source.mismatch);
    source.mismatch.reset();
    if (!difference && !source.pending.empty() && checking()) {
      difference =
          "the recording's " + describe(source.pending.front()) + " is not reproduced by the model";
    }
    source.pending.clear();
    if (!checking()) difference.reset();
    return difference;
  }

  /// Reads a `layout`, `segment` or `block` event into `reading`.
  void read_layout(const TraceEvent& event) {
    if (event.kind == TraceEvent::Kind::Layout) {
      reading = LayoutReading{event.phase.value_or(TraceEvent::LayoutPhase::check),
                              event.count.value_or(0),
                              0,
                              event.undetermined.value_or(0),
                              {}};
    } else if (event.kind == TraceEvent::Kind::Segment && reading) {
      SegmentInfo segment;
      segment.address = event.address.value_or(0);
      segment.size = event.bytes.value_or(0);
      segment.stream = event.stream.value_or(0);
      segment.pool = event.pool.value_or(sim::allocators::PoolKind::large);
      segment.expandable = event.expandable;
      reading->segments.push_back(std::move(segment));
      reading->blocks_left = event.count.value_or(0);
      if (reading->segments_left > 0) --reading->segments_left;
    } else if (event.kind == TraceEvent::Kind::Block && reading && !reading->segments.empty()) {
      SegmentInfo& segment = reading->segments.back();
      const std::uint64_t address = event.address.value_or(0);
      segment.blocks.push_back(BlockInfo{address - segment.address, event.bytes.value_or(0),
                                         event.block_state.value_or(BlockState::free)});
      if (reading->blocks_left > 0) --reading->blocks_left;
    }
  }

  /// Starts from the recording's start layout (verifying from then on when `verify`).
  /// @return a difference where the layout comes too late or no allocator can hold it
  Difference start_from(const LayoutReading& layout, bool verify) {
    if (operated) {
      return std::string(
          "a start layout after the device's first operation: the allocator's "
          "starting state must come before it");
    }
    layout_start = true;
    figures.verifying = verify;
    sync();
    figures.start_blocks_undetermined += layout.undetermined;
    std::uint64_t mapped = 0;
    for (const SegmentInfo& segment : layout.segments) {
      for (const BlockInfo& block : segment.blocks) {
        if (block.state != BlockState::unmapped)
          mapped = checked_add(mapped, block.size).value_or(UINT64_MAX);
      }
    }
    if (mapped > main->capacity()) {
      // A starting state that does not fit this device: it starts empty, and the recording's
      // memory from before is allocated (and refused) as its baseline comes.
      departed = true;
      sync();
      return std::nullopt;
    }
    try {
      main->restore(layout.segments);
    } catch (const std::invalid_argument& error) {
      departed = true;
      sync();
      return std::string("the start layout is not one an allocator can hold: ") + error.what();
    }
    if (shadow) shadow->restore(layout.segments);
    for (const SegmentInfo& s : layout.segments) {
      for (const BlockInfo& b : s.blocks) {
        if (b.state == BlockState::allocated) unclaimed.insert(s.address + b.offset);
      }
    }
    update();
    return std::nullopt;
  }
};

ModelledGpus::ModelledGpus(const PytorchReplayOptions& options,
                           const std::vector<std::pair<std::uint32_t, std::uint64_t>>& gpus)
    : options_(options) {
  for (const auto& [id, limit] : gpus) {
    auto gpu = std::make_unique<Gpu>();
    gpu->id = id;
    gpu->settings = options.settings;
    const auto named = options.limits.find(id);
    const DeviceLimits limits =
        named != options.limits.end() ? named->second : DeviceLimits{limit, limit};
    gpu->main = std::make_unique<PytorchModel>(options.settings, limits, &gpu->source);
    gpu->figures.capacity = limits.capacity;
    if (const auto context = options.context_bytes.find(id); context != options.context_bytes.end())
      gpu->figures.context_bytes = context->second;
    if (options.settings.garbage_collection_threshold) gpu->start_shadow();
    gpus_.push_back(std::move(gpu));
  }
}

ModelledGpus::~ModelledGpus() = default;

ModelledGpus::Gpu* ModelledGpus::find(std::uint32_t gpu) {
  for (const auto& g : gpus_) {
    if (g->id == gpu) return g.get();
  }
  return nullptr;
}

ModelledGpus::Placed ModelledGpus::allocate(std::uint32_t gpu, std::optional<std::uint64_t> key,
                                            std::uint64_t stream, std::uint64_t bytes,
                                            bool baseline) {
  Placed placed;
  Gpu* g = find(gpu);
  if (g == nullptr) return placed;
  if (baseline && key && g->unclaimed.erase(*key) != 0) {
    // Memory from before the recording that the start layout already holds.
    g->by_key[*key] = Gpu::Handle{*key, *key};
    placed.ok = true;
    return placed;
  }
  if (baseline) g->baseline_seen = true;
  g->operated = true;
  g->release_before(bytes);
  g->before_allocation(bytes);
  Gpu::Handle handle;
  const auto outcome = g->main->allocate(stream, bytes);
  if (const auto* block = std::get_if<Allocation>(&outcome)) {
    placed.ok = true;
    handle.main = block->address;
    handle.shadow = block->address;
    if (key && g->checking()) {
      if (block->address == *key) {
        ++g->figures.addresses_verified;
      } else {
        placed.difference = "the recording placed this allocation at " + hex(*key) +
                            "; the model at " + hex(block->address);
      }
    }
  } else {
    // Refused: from here the replay leaves the recording on this device.
    placed.refused = std::get<OutOfMemory>(outcome);
    ++g->figures.refused;
    g->departed = true;
    g->sync();
  }
  if (g->shadow) {
    const auto unbounded = g->shadow->allocate(stream, bytes);
    if (const auto* block = std::get_if<Allocation>(&unbounded)) handle.shadow = block->address;
  }
  if (key) {
    g->by_key[*key] = handle;
  } else {
    g->by_size[bytes].push_back(handle);
  }
  // A segment the recording does not have explains a misplaced block: it is named first.
  if (Difference settled = g->settle()) placed.difference = std::move(settled);
  g->update();
  return placed;
}

ModelledGpus::Difference ModelledGpus::free(std::uint32_t gpu, std::optional<std::uint64_t> key,
                                            std::uint64_t bytes) {
  Gpu* g = find(gpu);
  if (g == nullptr) return std::nullopt;
  g->operated = true;
  Gpu::Handle handle;
  if (key) {
    const auto found = g->by_key.find(*key);
    if (found == g->by_key.end() && g->unclaimed.erase(*key) != 0) {
      handle = Gpu::Handle{*key, *key};  // memory from before the recording, in the start layout
    } else if (found == g->by_key.end()) {
      if (g->checking()) {
        return "the recording frees " + hex(*key) + ", where the model has no allocation";
      }
      return std::nullopt;
    } else {
      handle = found->second;
      g->by_key.erase(found);
    }
  } else {
    const auto found = g->by_size.find(bytes);
    if (found == g->by_size.end() || found->second.empty()) return std::nullopt;
    handle = found->second.back();
    found->second.pop_back();
  }
  Difference difference = g->settle();
  if (handle.main && !g->main->free(*handle.main) && !difference && g->checking()) {
    difference = "the model has no allocation at " + hex(*handle.main) + " to free";
  }
  if (g->shadow) static_cast<void>(g->shadow->free(handle.shadow));
  g->update();
  return difference;
}

ModelledGpus::Difference ModelledGpus::allocator_event(std::uint32_t gpu, const TraceEvent& event) {
  Gpu* g = find(gpu);
  if (g == nullptr) return std::nullopt;
  if (const auto kind = segment_kind(event.kind)) {
    if (!g->operated && !g->departed && options_.verify) g->figures.verifying = true;
    g->sync();
    if (g->checking()) {
      g->source.pending.push_back(SegmentEvent{*kind, event.address.value_or(0),
                                               event.bytes.value_or(0), event.stream.value_or(0)});
    }
    return std::nullopt;
  }
  g->read_layout(event);
  if (!g->reading || g->reading->segments_left > 0 || g->reading->blocks_left > 0) {
    return std::nullopt;
  }
  // The layout is complete.
  LayoutReading layout = std::move(*g->reading);
  g->reading.reset();
  if (layout.phase == TraceEvent::LayoutPhase::start) return g->start_from(layout, options_.verify);
  if (!g->checking()) {
    ++g->figures.layouts_skipped;
    return std::nullopt;
  }
  Difference difference = g->settle();
  if (difference) return difference;
  return compare_layouts(layout.segments, g->main->segments(), g->figures.layout_segments_verified,
                         g->figures.layout_blocks_verified);
}

ModelledGpus::Difference ModelledGpus::recorded_oom(std::uint32_t gpu, const TraceEvent& event,
                                                    std::optional<bool>& reproduced) {
  Gpu* g = find(gpu);
  if (g == nullptr || !options_.recorded_capacity || g->departed) return std::nullopt;
  const std::uint64_t bytes = event.bytes.value_or(0);
  const auto outcome = g->main->allocate(event.stream.value_or(0), bytes);
  Difference difference = g->settle();
  if (const auto* block = std::get_if<Allocation>(&outcome)) {
    reproduced = false;
    const std::uint64_t reserved = g->main->reserved();
    static_cast<void>(g->main->free(block->address));
    g->departed = true;
    g->sync();
    {  // the segment the model took is not in the recording because the recording failed here
      difference = "the recording ran out of memory allocating " + std::to_string(bytes) +
                   " bytes here; the model placed them at " + hex(block->address) + " (reserved " +
                   std::to_string(reserved) + " of a capacity of " +
                   std::to_string(g->main->capacity()) + ")";
    }
  } else {
    reproduced = true;
  }
  g->update();
  return difference;
}

ModelledGpus::Difference ModelledGpus::reserved_check(std::uint32_t gpu, std::uint64_t reserved) {
  Gpu* g = find(gpu);
  if (g == nullptr) return std::nullopt;
  g->figures.recorded_reserved_peak = std::max(g->figures.recorded_reserved_peak, reserved);
  if (!options_.verify) return std::nullopt;
  const bool start_known = g->layout_start || !g->baseline_seen;
  if (!start_known || g->departed) {
    ++g->figures.reserved_checks_undetermined;
    return std::nullopt;
  }
  if (g->main->reserved() != reserved) {
    return "the recording says " + std::to_string(reserved) + " bytes were reserved; the model " +
           std::to_string(g->main->reserved());
  }
  ++g->figures.reserved_checks_verified;
  return std::nullopt;
}

void ModelledGpus::depart(std::uint32_t gpu) {
  if (Gpu* g = find(gpu)) {
    g->departed = true;
    g->sync();
    g->source.pending.clear();
  }
}

ModelledGpus::Difference ModelledGpus::finish() {
  for (const auto& g : gpus_) {
    if (Difference difference = g->settle()) return difference;
  }
  return std::nullopt;
}

std::map<DevicePlacement, ModelledDevice> ModelledGpus::figures() const {
  std::map<DevicePlacement, ModelledDevice> result;
  for (const auto& g : gpus_) {
    ModelledDevice f = g->figures;
    f.segment_events_verified = g->source.verified;
    f.reserved_final = g->main->reserved();
    f.allocated_final = g->main->allocated();
    f.reserved_needed = std::max(f.reserved_peak, g->shadow_peak);
    if (g->shadow && f.refused == 0) f.reserved_needed = f.reserved_peak;
    result.emplace(DevicePlacement(memtrack::Gpu{g->id}), f);
  }
  return result;
}

}  // namespace memtrack::traces::detail
