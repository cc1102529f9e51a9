#include <memtrack/traces/replay.hpp>

#include "import_support.hpp"
#include "modelled_gpus.hpp"
#include "replay_internal.hpp"

#include <memtrack/units.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <set>
#include <sstream>
#include <unordered_map>
#include <unordered_set>
#include <utility>

namespace memtrack::traces {
namespace {

struct Live {
  std::uint64_t bytes{0};
  DevicePlacement device{};  ///< where it is in the replay
  std::uint64_t event{0};    ///< the event that made it (from 1)
};

/// The event a value of an `AddressMap` carries: never 0 (events count from 1), so 0 marks an
/// empty slot.
std::uint64_t event_of(const Live& live) {
  return live.event;
}
std::uint64_t event_of(std::uint64_t event) {
  return event;
}

/**
 * @brief A value by address (a live allocation, the event that freed an address): open addressing
 * with linear probing and backward-shift deletion, so a replay allocates nothing per event.
 * Memory follows the entries: the table doubles at 1/2 load and never holds more than twice the
 * most entries at once. A value's event (`event_of`, never 0) tells a used slot from an empty one:
 * no flag widens the slots (a table of freed addresses outgrows the nearest caches sooner).
 */
template <class Value>
class AddressMap {
 public:
  AddressMap() : slots_(64) {}

  [[nodiscard]] std::size_t size() const { return size_; }

  /// @return the value at `address`, or null
  Value* find(std::uint64_t address) {
    for (std::size_t i = home(address);; i = next(i)) {
      Slot& slot = slots_[i];
      if (!slot.used()) return nullptr;
      if (slot.address == address) return &slot.live;
    }
  }

  /// Inserts or replaces. Precondition: `event_of(live) != 0`. @return whether it replaced a value
  bool put(std::uint64_t address, Value live) {
    if ((size_ + 1) * 2 > slots_.size()) grow();
    for (std::size_t i = home(address);; i = next(i)) {
      Slot& slot = slots_[i];
      if (!slot.used()) {
        slot = Slot{address, live};
        ++size_;
        return false;
      }
      if (slot.address == address) {
        slot.live = live;
        return true;
      }
    }
  }

  /// Removes `address`. @return whether it was there
  bool erase(std::uint64_t address) {
    if (size_ == 0) return false;
    std::size_t i = home(address);
    for (;; i = next(i)) {
      if (!slots_[i].used()) return false;
      if (slots_[i].address == address) break;
    }
    // Backward shift: move later entries of the same run into the hole.
    std::size_t hole = i;
    for (std::size_t j = next(i); slots_[j].used(); j = next(j)) {
      const std::size_t want = home(slots_[j].address);
      // Move j to the hole unless its home lies cyclically in (hole, j].
      const bool stays = hole < j ? (want > hole && want <= j) : (want > hole || want <= j);
      if (!stays) {
        slots_[hole] = slots_[j];
        hole = j;
      }
    }
    slots_[hole] = Slot{};
    --size_;
    return true;
  }

  /// Brings the slot `address` hashes to into the cache (for a `put` or `find` soon after).
  void prefetch(std::uint64_t address) const { __builtin_prefetch(&slots_[home(address)], 1); }

  /// Calls `visit(address, live)` for every entry, in no particular order.
  template <class Visit>
  void for_each(Visit&& visit) const {
    for (const Slot& slot : slots_) {
      if (slot.used()) visit(slot.address, slot.live);
    }
  }

  /// Clears, keeping the table's size.
  void clear() {
    std::fill(slots_.begin(), slots_.end(), Slot{});
    size_ = 0;
  }

 private:
  struct Slot {
    std::uint64_t address{0};
    Value live{};
    [[nodiscard]] bool used() const { return event_of(live) != 0; }
  };

  /// Fibonacci hashing: the product's high bits, which every bit of the address reaches (GPU
  /// addresses are multiples of large powers of two: their low bits say nothing).
  [[nodiscard]] std::size_t home(std::uint64_t address) const {
    return static_cast<std::size_t>((address * 0x9E3779B97F4A7C15ULL) >> shift_);
  }
  [[nodiscard]] std::size_t next(std::size_t i) const { return (i + 1) & mask_; }

  void grow() {
    std::vector<Slot> old(slots_.size() * 2);
    old.swap(slots_);
    mask_ = slots_.size() - 1;
    --shift_;
    size_ = 0;
    for (const Slot& slot : old) {
      if (slot.used()) put(slot.address, slot.live);
    }
  }

  std::vector<Slot> slots_;
  std::size_t mask_{63};      ///< slots_.size() - 1
  unsigned shift_{64U - 6U};  ///< 64 - log2(slots_.size())
  std::size_t size_{0};
};

/**
 * @brief The addresses freed most recently, each with the event that freed it, to tell a double
 * free: two generations of at most `per_generation` addresses each. When the current one is full
 * it becomes the previous one (the older one is forgotten), so the set always remembers at least
 * the last `per_generation` frees and never more than twice that.
 *
 * A trace's frees name ever-new addresses at random places in the tables, which outgrow the
 * processor's nearest caches: a `put` only prefetches its slot and keeps the entry pending, and
 * the next call (after the next event's parse) stores it, from the cache.
 */
class RecentFrees {
 public:
  explicit RecentFrees(std::size_t per_generation) : per_generation_(per_generation) {}

  /// @return the event that freed `address`, or null when it is not remembered
  const std::uint64_t* find(std::uint64_t address) {
    store_pending();
    if (const std::uint64_t* event = current_.find(address)) return event;
    return previous_.find(address);
  }

  /// Remembers that `event` freed `address`.
  void put(std::uint64_t address, std::uint64_t event) {
    store_pending();
    if (current_.size() >= per_generation_) {
      std::swap(current_, previous_);
      current_.clear();
    }
    current_.prefetch(address);
    pending_ = Pending{address, event, true};
  }

  /// Forgets `address` (allocated again).
  void erase(std::uint64_t address) {
    store_pending();
    current_.erase(address);
    previous_.erase(address);
  }

 private:
  struct Pending {
    std::uint64_t address{0};
    std::uint64_t event{0};
    bool waiting{false};
  };

  void store_pending() {
    if (!pending_.waiting) return;
    pending_.waiting = false;
    current_.put(pending_.address, pending_.event);
  }

  std::size_t per_generation_;
  AddressMap<std::uint64_t> current_;
  AddressMap<std::uint64_t> previous_;
  Pending pending_;
};

/// Allocations made without an address are found by the device a free by size names (the
/// replay's device; under auto placement the trace's, since the free names it) and their size.
struct SizeKey {
  DevicePlacement device;
  std::uint64_t bytes{0};
  friend bool operator==(const SizeKey&, const SizeKey&) = default;
};

struct SizeKeyHash {
  std::size_t operator()(const SizeKey& key) const noexcept {
    const std::uint64_t device =
        (std::uint64_t{static_cast<std::uint8_t>(key.device.kind())} << 32U) | key.device.gpu_id();
    std::uint64_t h = (key.bytes ^ (device * 0xFF51AFD7ED558CCDULL)) * 0x9E3779B97F4A7C15ULL;
    h ^= h >> 29U;
    return static_cast<std::size_t>(h);
  }
};

/**
 * @brief What is alive in a replay, and which allocation each free releases (the rules are
 * `LiveAllocation`'s). Memory follows the live allocations.
 */
class LiveBook {
 public:
  /// What a free released: where it was and the event that made it.
  struct Taken {
    DevicePlacement device;
    std::uint64_t event{0};
    bool part{false};  ///< part of a baseline, which stays
  };

  AddressMap<Live> by_address;

  void add_unaddressed(SizeKey key, std::uint64_t event, DevicePlacement device) {
    by_size_[key].push_back({event, device});
  }
  void add_baseline(DevicePlacement key, std::uint64_t event, std::uint64_t bytes,
                    DevicePlacement device) {
    baselines_.push_back({key, device, event, bytes});
  }

  /**
   * @brief Releases what a free of `bytes` on `key` without a known address frees.
   * @param unseen_address the free names an address the recording never allocated
   * @param addressed whether an allocation made with an address may be taken (recorded
   * placement); then its address joins `freed`, with `event`
   * @return what it released, or nothing when nothing fits
   */
  std::optional<Taken> take_by_size(DevicePlacement key, std::uint64_t bytes, bool unseen_address,
                                    bool addressed, RecentFrees& freed, std::uint64_t event) {
    if (unseen_address) {
      if (auto taken = take_baseline(key, bytes)) return taken;
    }
    if (const auto it = by_size_.find({key, bytes}); it != by_size_.end()) {
      const Unaddressed latest = it->second.back();
      it->second.pop_back();
      if (it->second.empty()) by_size_.erase(it);
      return Taken{latest.device, latest.event};
    }
    if (addressed && !unseen_address) {
      std::optional<std::uint64_t> found;
      Live latest;
      by_address.for_each([&](std::uint64_t address, const Live& live) {
        if (live.device == key && live.bytes == bytes && (!found || live.event > latest.event)) {
          found = address;
          latest = live;
        }
      });
      if (found) {
        by_address.erase(*found);
        freed.put(*found, event);
        return Taken{latest.device, latest.event};
      }
    }
    return take_baseline(key, bytes);
  }

  /// Calls `visit` for every allocation alive on `device`.
  void for_each(DevicePlacement device,
                const std::function<void(const LiveAllocation&)>& visit) const {
    by_address.for_each([&](std::uint64_t address, const Live& live) {
      if (live.device == device) visit(LiveAllocation{live.event, live.bytes, address});
    });
    for (const auto& [key, stack] : by_size_) {
      for (const Unaddressed& u : stack) {
        if (u.device == device) visit(LiveAllocation{u.event, key.bytes, std::nullopt});
      }
    }
    for (const Baseline& b : baselines_) {
      if (b.device == device) visit(LiveAllocation{b.event, b.bytes, std::nullopt});
    }
  }

  void clear() {
    by_address.clear();
    by_size_.clear();
    baselines_.clear();
  }

 private:
  struct Unaddressed {
    std::uint64_t event{0};
    DevicePlacement device;  ///< where it is in the replay
  };
  struct Baseline {
    DevicePlacement key;     ///< as `SizeKey::device`
    DevicePlacement device;  ///< where it is in the replay
    std::uint64_t event{0};
    std::uint64_t bytes{0};  ///< what is left of it
  };

  /// Takes `bytes` from the baselines on `key`, the latest first (emptied ones leave).
  std::optional<Taken> take_baseline(DevicePlacement key, std::uint64_t bytes) {
    std::optional<Taken> taken;
    for (std::size_t i = baselines_.size(); i-- > 0 && bytes != 0;) {
      Baseline& b = baselines_[i];
      if (b.key != key || (taken && b.device != taken->device)) continue;
      const std::uint64_t part = std::min(bytes, b.bytes);
      if (!taken) taken = Taken{b.device, b.event, part < b.bytes};
      b.bytes -= part;
      bytes -= part;
      if (b.bytes == 0) baselines_.erase(baselines_.begin() + static_cast<std::ptrdiff_t>(i));
    }
    return taken;
  }

  std::unordered_map<SizeKey, std::vector<Unaddressed>, SizeKeyHash> by_size_;
  std::vector<Baseline> baselines_;
};

/// The most frames a refusal keeps of its call stack.
constexpr std::size_t max_refusal_frames = 256;

/// The freed addresses a replay remembers to tell a double free: at least this many of the latest
/// frees, at most twice as many (`RecentFrees`).
constexpr std::size_t max_remembered_frees = std::size_t{1} << 15U;

std::string_view failure_name(ReplayFailure::Kind kind) {
  switch (kind) {
    case ReplayFailure::Kind::Divergence:
      return "divergence between the production tracker and the reference model";
    case ReplayFailure::Kind::Checkpoint:
      return "failed checkpoint: the replay disagrees with what the recording itself recorded";
    case ReplayFailure::Kind::Outcome:
      return "the replay's outcome differs from the recording's, on the recording's own budgets";
    case ReplayFailure::Kind::Allocator:
      return "the allocator model differs from what the recording's own allocator did";
  }
  return "?";
}

}  // namespace

std::string_view to_string(AllocatorModel model) noexcept {
  return model == AllocatorModel::pytorch ? "pytorch" : "exact";
}

std::string TracePosition::to_string() const {
  if (!origin.empty()) return origin + " (imported trace line " + std::to_string(line) + ")";
  return trace + ":" + std::to_string(line);
}

std::string ReplayFailure::to_string() const {
  std::ostringstream out;
  out << failure_name(kind) << "\n"
      << "  at " << at.to_string() << ", event " << at.event << ": " << event_text << "\n"
      << "  " << what << "\n"
      << "production tracker after it:\n"
      << core_state;
  if (!reference_state.empty()) out << "reference model after it:\n" << reference_state;
  return out.str();
}

struct Replayer::State {
  class Run;  // one replay, below

  GpuConfig config;
  ReplayOptions options;
  std::optional<sim::LockstepChecker<>> checker;
  std::optional<MemoryTracker> production;
  ReplaySummary summary;
  std::vector<DevicePlacement> devices;
  std::vector<std::uint64_t> high_water;           ///< by position in `devices`
  std::vector<std::uint64_t> needed;               ///< by position in `devices`
  std::unique_ptr<detail::ModelledGpus> modelled;  ///< under `AllocatorModel::pytorch`
  LiveBook book;                                   ///< what the trace being replayed has alive

  /// Copies the high-water marks into the summary.
  void publish_high_water() {
    for (std::size_t i = 0; i < devices.size(); ++i) {
      summary.high_water[devices[i]] = high_water[i];
      if (options.placement == Placement::Recorded) summary.needed[devices[i]] = needed[i];
    }
    if (modelled) summary.modelled = modelled->figures();
  }

  [[nodiscard]] const MemoryTracker& tracker() const {
    return checker ? checker->core() : *production;
  }

  /// Applies `op`: its outcome into `outcome`, and the divergence, when lockstep finds one, into
  /// `divergence` (both kept by the caller from one operation to the next).
  void apply(const sim::Operation& op, sim::CoreOutcome& outcome,
             std::optional<sim::Divergence>& divergence) {
    if (checker) {
      divergence = checker->apply(op);
      outcome = checker->last_core_outcome();
      return;
    }
    sim::apply_to_core(*production, op, outcome);
  }

  [[nodiscard]] std::string core_state() const { return sim::describe(tracker(), devices); }
  [[nodiscard]] std::string reference_state() const {
    return checker ? sim::describe_state(checker->reference()) : std::string();
  }
};

Replayer::Replayer(std::unique_ptr<State> state) : state_(std::move(state)) {}
Replayer::Replayer(Replayer&&) noexcept = default;
Replayer& Replayer::operator=(Replayer&&) noexcept = default;
Replayer::~Replayer() = default;

Result<Replayer> Replayer::create(const GpuConfig& config, ReplayOptions options) {
  auto state = std::make_unique<State>();
  state->config = config;
  state->options = options;
  if (options.lockstep) {
    auto start = sim::LockstepChecker<>::create(config);
    if (start.divergence) {
      return Error::invalid_config(
          "the production tracker and the reference model disagree on "
          "the configuration: " +
          start.divergence->what);
    }
    if (!start.checker) return *start.rejection;
    state->checker = std::move(start.checker);
  } else {
    auto tracker = MemoryTracker::create(config);
    if (!tracker) return tracker.error();
    state->production = std::move(*tracker);
  }
  for (const std::uint32_t id : state->tracker().gpu_ids())
    state->devices.emplace_back(Gpu{id});
  state->devices.emplace_back(Cpu{});
  state->summary.allocator = options.allocator;
  if (options.allocator == AllocatorModel::pytorch) {
    std::vector<std::pair<std::uint32_t, std::uint64_t>> gpus;
    for (const std::uint32_t id : state->tracker().gpu_ids())
      gpus.emplace_back(id, state->tracker().limit(Gpu{id}));
    state->modelled = std::make_unique<detail::ModelledGpus>(options.pytorch, gpus);
  }
  state->high_water.assign(state->devices.size(), 0);
  state->needed.assign(state->devices.size(), 0);
  state->publish_high_water();
  return Replayer(std::move(state));
}

const ReplaySummary& Replayer::summary() const {
  return state_->summary;
}
const MemoryTracker& Replayer::tracker() const {
  return state_->tracker();
}
std::vector<DevicePlacement> Replayer::devices() const {
  return state_->devices;
}

void Replayer::for_each_live(DevicePlacement device,
                             const std::function<void(const LiveAllocation&)>& visit) const {
  state_->book.for_each(device, visit);
}

std::vector<LiveAllocation> Replayer::live(DevicePlacement device) const {
  std::vector<LiveAllocation> all;
  for_each_live(device, [&all](const LiveAllocation& live) { all.push_back(live); });
  std::sort(all.begin(), all.end(),
            [](const LiveAllocation& a, const LiveAllocation& b) { return a.event < b.event; });
  return all;
}

/**
 * @brief One replay of one trace: what it keeps between events and its steps (read an event,
 * turn it into an operation or check it, apply the operation, book what it did). The summary's
 * high-water marks are brought up to date however the replay ends.
 */
class Replayer::State::Run {
 public:
  using GpuMap = std::map<std::uint32_t, std::uint32_t>;
  using OnStep = std::function<void(const ReplayStep&)>;
  using OnCheck = std::function<void(std::uint64_t, const TraceEvent&, DevicePlacement)>;

  Run(State& state, TraceReader& trace, const GpuMap& map, const OnStep& step, const OnCheck& check)
      : s(state),
        summary(state.summary),
        reader(trace),
        gpu_map(map),
        on_step(step),
        on_check(check),
        auto_placement(state.options.placement == Placement::Auto),
        book(state.book),
        live_by_address(state.book.by_address),
        need_now(state.devices.size(), 0),
        modelled(auto_placement ? nullptr : state.modelled.get()),
        accounts(state.tracker()) {
    book.clear();
  }
  Run(const Run&) = delete;
  Run& operator=(const Run&) = delete;
  ~Run() { s.publish_high_water(); }

  /// Replays every event. @return nothing, or the reader's error
  Result<void> all() {
    for (;;) {
      if (reader.events_read() == s.options.last_event && s.options.last_event != 0) return {};
      auto more = reader.next(event);
      if (!more) return more.error();
      if (!*more) {
        finish();
        return {};
      }
      ++summary.events;
      sim::Operation op;
      released = 0;
      released_part = false;
      const Step step = dispatch(op);
      if (step == Step::stop || (step == Step::operate && !operate(op))) return {};
    }
  }

 private:
  // The steps an event takes are marked always_inline: the loop of `all()` compiles as one
  // function, as fast as before the replay was split into steps (issue 15 measures it).

  /// What an event's step leaves to do.
  enum class Step : std::uint8_t {
    next,     ///< nothing more: on to the next event
    operate,  ///< apply the operation
    stop,     ///< the replay failed (the summary says why)
  };

  [[gnu::always_inline]] [[nodiscard]] DevicePlacement map_device(DevicePlacement device) const {
    if (!device.is_gpu()) return device;
    const auto it = gpu_map.find(device.gpu_id());
    return it == gpu_map.end() ? device : DevicePlacement(Gpu{it->second});
  }

  /// @return `device`'s index in `s.devices` (the tracker's accounts are in the same order:
  /// GPUs ascending, then the CPU), or `no_slot` when the node does not have it (or it is `auto`)
  [[gnu::always_inline]] [[nodiscard]] std::size_t slot_of(DevicePlacement device) const {
    return accounts.index_of(device);
  }

  /// Counts `bytes` more (`add`) or fewer on what `device` would hold if nothing were refused.
  [[gnu::always_inline]] void need(DevicePlacement device, std::uint64_t bytes, bool add) {
    if (auto_placement) return;
    const std::size_t slot = slot_of(device);
    if (slot == no_slot) return;  // auto, or not on the node: counted as unlanded
    std::uint64_t& now = need_now[slot];
    now = add ? checked_add(now, bytes).value_or(UINT64_MAX) : (now >= bytes ? now - bytes : 0);
    s.needed[slot] = std::max(s.needed[slot], now);
  }

  [[nodiscard]] bool departed(DevicePlacement trace_device) const {
    return trace_device.is_gpu() ? departed_gpus.count(trace_device.gpu_id()) != 0 : departed_cpu;
  }

  /// The replay of `trace_device` leaves the recording: its checkpoints are skipped from now on.
  void depart(DevicePlacement trace_device) {
    if (modelled != nullptr && trace_device.is_gpu()) {
      modelled->depart(map_device(trace_device).gpu_id());
    }
    if (trace_device.is_gpu()) {
      departed_gpus.insert(trace_device.gpu_id());
    } else if (trace_device.is_cpu()) {
      departed_cpu = true;
    } else {  // auto: every device may have changed
      departed_cpu = true;
      for (const DevicePlacement d : s.devices) {
        if (d.is_gpu()) departed_gpus.insert(d.gpu_id());
      }
      for (const auto& [from, to] : gpu_map)
        departed_gpus.insert(from);
    }
  }

  [[nodiscard]] TracePosition position() const {
    return TracePosition{reader.name(), reader.events_read(), reader.line_number()};
  }

  void inconsistent(std::string what) {
    ++summary.inconsistencies;
    if (!summary.first_inconsistency) {
      summary.first_inconsistency = Inconsistency{position(), format_event(event), std::move(what)};
    }
  }

  void fail(ReplayFailure::Kind kind, std::string what, std::string core_state,
            std::string reference_state) {
    summary.failure = ReplayFailure{kind,
                                    position(),
                                    format_event(event),
                                    std::move(what),
                                    std::move(core_state),
                                    std::move(reference_state)};
  }
  /// Fails with the tracker's and the model's state now.
  void fail(ReplayFailure::Kind kind, std::string what) {
    fail(kind, std::move(what), s.core_state(), s.reference_state());
  }

  /// @return the event's call stack, where the trace records one (bounded)
  [[nodiscard]] std::vector<Frame> frames_of() const {
    std::vector<Frame> frames;
    if (!event.stack) return frames;
    for (const Frame* frame : reader.frames().stack(*event.stack)) {
      if (frames.size() == max_refusal_frames) break;
      frames.push_back(*frame);
    }
    return frames;
  }

  /// The free in the allocator model (of an allocation it holds, or only in its model without
  /// limit when it refused it). @return false when the replay failed on it
  bool model_free(DevicePlacement device, std::optional<std::uint64_t> key, std::uint64_t bytes) {
    if (modelled == nullptr || !device.is_gpu()) return true;
    if (auto difference = modelled->free(device.gpu_id(), key, bytes)) {
      fail(ReplayFailure::Kind::Allocator, std::move(*difference));
      return false;
    }
    return true;
  }

  /// At the end of the trace: the allocator model's last word.
  void finish() {
    if (modelled == nullptr) return;
    if (auto difference = modelled->finish()) {
      summary.failure =
          ReplayFailure{ReplayFailure::Kind::Allocator, position(),     "the end of the trace",
                        std::move(*difference),         s.core_state(), s.reference_state()};
    }
  }

  /// Turns the event into `op`, or handles it whole.
  [[gnu::always_inline]] Step dispatch(sim::Operation& op) {
    switch (event.kind) {
      case TraceEvent::Kind::Mark:
        ++summary.marks;
        return Step::next;
      case TraceEvent::Kind::SegmentAlloc:
      case TraceEvent::Kind::SegmentFree:
      case TraceEvent::Kind::SegmentMap:
      case TraceEvent::Kind::SegmentUnmap:
      case TraceEvent::Kind::Layout:
      case TraceEvent::Kind::Segment:
      case TraceEvent::Kind::Block:
        return allocator_truth();
      case TraceEvent::Kind::Oom:
        return recorded_oom();
      case TraceEvent::Kind::Check:
        return check();
      case TraceEvent::Kind::ResetPeakAll:
        op = sim::Operation::reset_peak_all();
        return Step::operate;
      case TraceEvent::Kind::ResetPeak:
        op = sim::Operation::reset_peak(map_device(event.device));
        return Step::operate;
      case TraceEvent::Kind::Baseline:
        with_baseline.insert(event.device);
        [[fallthrough]];
      case TraceEvent::Kind::Allocate:
        op = allocation();
        return Step::operate;
      case TraceEvent::Kind::Free:
        return free(op);
    }
    return Step::operate;
  }

  /// The allocator's own truth (segments, blocks): checked by the pytorch model only.
  Step allocator_truth() {
    if (modelled != nullptr && event.device.is_gpu()) {
      if (auto difference = modelled->allocator_event(map_device(event.device).gpu_id(), event)) {
        fail(ReplayFailure::Kind::Allocator, std::move(*difference));
        return Step::stop;
      }
    }
    return Step::next;
  }

  /// An out-of-memory the recording's allocator reported.
  Step recorded_oom() {
    ++summary.recorded_ooms;
    std::optional<bool> reproduced;
    if (modelled != nullptr && event.device.is_gpu()) {
      if (auto difference =
              modelled->recorded_oom(map_device(event.device).gpu_id(), event, reproduced)) {
        fail(ReplayFailure::Kind::Allocator, std::move(*difference));
        return Step::stop;
      }
    }
    if (!summary.first_recorded_oom) {
      summary.first_recorded_oom = RecordedOutOfMemory{position(),
                                                       format_event(event),
                                                       event.device,
                                                       event.bytes.value_or(0),
                                                       event.device_free.value_or(0),
                                                       event.check_reserved,
                                                       reproduced};
    }
    return Step::next;
  }

  /// A checkpoint: the recording's own totals, verified where the replay still follows it.
  Step check() {
    const DevicePlacement device = map_device(event.device);
    if (on_check) on_check(reader.events_read(), event, device);
    if (modelled != nullptr && device.is_gpu() && event.check_reserved) {
      if (departed(event.device)) {
        modelled->depart(device.gpu_id());
      }
      if (auto difference = modelled->reserved_check(device.gpu_id(), *event.check_reserved)) {
        fail(ReplayFailure::Kind::Checkpoint, std::move(*difference));
        return Step::stop;
      }
    }
    const MemoryTracker& tracker = s.tracker();
    const bool known =
        device.is_cpu() || (device.is_gpu() && tracker.limit(device) != 0) || device.is_auto();
    if (auto_placement || departed(event.device) || !known) {
      ++summary.checkpoints_skipped;
      return Step::next;
    }
    const std::uint64_t allocated = tracker.allocated(device);
    if (allocated != *event.check_allocated) {
      fail(ReplayFailure::Kind::Checkpoint,
           "the recording says " + event.device.to_string() + " had " +
               std::to_string(*event.check_allocated) + " bytes allocated; the replay has " +
               std::to_string(allocated) + " on " + device.to_string());
      return Step::stop;
    }
    ++summary.checkpoints_verified;
    return Step::next;
  }

  /// @return the allocation (or baseline) as an operation on the replay's devices
  [[gnu::always_inline]] [[nodiscard]] sim::Operation allocation() {
    DevicePlacement device = map_device(event.device);
    if (auto_placement && device.is_gpu()) device = Auto{};
    if (modelled != nullptr && device.is_auto() && event.recorded_resolved) {
      // Under the allocator model each allocation goes where the recording put it.
      device = map_device(*event.recorded_resolved);
    }
    if (modelled != nullptr && device.is_auto()) ++summary.unmodelled;
    return sim::Operation::allocate(device, *event.bytes);
  }

  /// What a free frees, as it is resolved: where and how much, and how it was found.
  struct FreeTarget {
    DevicePlacement device;
    std::optional<std::uint64_t> bytes;
    bool resolved{false};        ///< found by address among the live allocations
    bool unseen_address{false};  ///< names an address the recording never allocated
  };

  /// A free: resolved by address, then by size; skipped where it frees a refused allocation.
  [[gnu::always_inline]] Step free(sim::Operation& op) {
    FreeTarget target{map_device(event.device), event.bytes};
    if (event.address) {
      const Step step = free_by_address(target);
      if (step != Step::operate) return step;
    } else if (!target.bytes) {
      ++summary.frees_unresolved;
      inconsistent("a free with neither a size nor an address");
      return Step::next;
    }
    if (!target.resolved) {
      const Step step = free_by_size(target);
      if (step != Step::operate) return step;
    }
    op = sim::Operation::deallocate(target.device, *target.bytes);
    return Step::operate;
  }

  /// A free with an address: of a live allocation, a refused one, a freed one or an unseen one.
  [[gnu::always_inline]] Step free_by_address(FreeTarget& target) {
    const std::optional<std::uint64_t>& bytes = target.bytes;
    if (const Live* live = live_by_address.find(*event.address); live != nullptr) {
      if (!release_live(target, *live)) return Step::stop;
    } else if (const Live* refused = refused_addresses.find(*event.address); refused != nullptr) {
      need(refused->device, refused->bytes, false);
      if (!model_free(refused->device, event.address, refused->bytes)) return Step::stop;
      refused_addresses.erase(*event.address);
      ++summary.frees_of_refused;
      return Step::next;
    } else if (const std::uint64_t* freed = freed_addresses.find(*event.address);
               freed != nullptr) {
      inconsistent("a double free: " + detail::hex(*event.address) +
                   " was already freed at event " + std::to_string(*freed) +
                   " and not allocated again");
      return Step::next;
    } else if (!bytes) {
      ++summary.frees_unresolved;
      inconsistent("frees " + detail::hex(*event.address) +
                   ", which the recording never allocated, without a size");
      return Step::next;
    } else if (with_baseline.count(event.device) == 0) {
      inconsistent("frees " + detail::hex(*event.address) + " (" + std::to_string(*bytes) +
                   " bytes), which the recording never allocated, on " + event.device.to_string() +
                   ", which has no baseline of memory from before the recording");
      return Step::next;
    } else {
      ++summary.frees_of_unseen_address;
      target.unseen_address = true;
    }
    // Freed now (found by address or by size): a second free of it is a double free (while it is
    // among the latest frees remembered).
    freed_addresses.put(*event.address, reader.events_read());
    return Step::operate;
  }

  /// Releases the live allocation at the free's address (its size and device are freed).
  /// @return false when the replay failed on it
  [[gnu::always_inline]] bool release_live(FreeTarget& target, const Live live) {
    const std::optional<std::uint64_t>& bytes = target.bytes;
    if (bytes && *bytes != live.bytes) {
      inconsistent("frees " + std::to_string(*bytes) + " bytes at " + detail::hex(*event.address) +
                   ", where " + std::to_string(live.bytes) +
                   " were allocated (the allocation's size is freed)");
    } else if (!auto_placement && !event.device.is_auto() && target.device != live.device) {
      inconsistent("frees " + detail::hex(*event.address) + " on " + event.device.to_string() +
                   ", allocated on " + live.device.to_string() + " (freed where it was allocated)");
    }
    target.device = live.device;
    target.bytes = live.bytes;
    released = live.event;
    live_by_address.erase(*event.address);
    ++summary.frees_by_address;
    target.resolved = true;
    need(target.device, live.bytes, false);
    return model_free(target.device, event.address, live.bytes);
  }

  /// A free not found by address: by the size of what it frees on its device.
  [[gnu::always_inline]] Step free_by_size(FreeTarget& target) {
    DevicePlacement& device = target.device;
    const std::uint64_t bytes = *target.bytes;
    if (auto_placement) {
      // Where the allocation it frees went decides the device.
      if (const auto taken = book.take_by_size(event.device, bytes, target.unseen_address, false,
                                               freed_addresses, reader.events_read())) {
        device = taken->device;
        released = taken->event;
        released_part = taken->part;
      }
    }
    if (!event.address) {
      // A free by size of an allocation of that size the replay refused (other budgets):
      // skipped, as a free by address of one would be.
      const auto refused = refused_unaddressed.find({device, bytes});
      if (refused != refused_unaddressed.end()) {
        if (--refused->second == 0) refused_unaddressed.erase(refused);
        need(device, bytes, false);
        if (!model_free(device, std::nullopt, bytes)) return Step::stop;
        ++summary.frees_of_refused;
        return Step::next;
      }
    }
    if (!event.recorded_error && !device.is_auto() && s.tracker().limit(device) != 0 &&
        s.tracker().allocated(device) < bytes) {
      inconsistent("frees " + std::to_string(bytes) + " bytes on " + device.to_string() +
                   ", which has " + std::to_string(s.tracker().allocated(device)) + " allocated");
      return Step::next;
    }
    if (!auto_placement) {
      if (const auto taken = book.take_by_size(device, bytes, target.unseen_address, true,
                                               freed_addresses, reader.events_read())) {
        released = taken->event;
        released_part = taken->part;
      }
    }
    need(device, bytes, false);
    if (!model_free(device, event.address, bytes)) return Step::stop;
    return Step::operate;
  }

  /// Applies `op`: to the allocator model, the tracker, the summary and the book; tells
  /// `on_step`; compares with the recording's outcome. @return false when the replay failed
  [[gnu::always_inline]] bool operate(const sim::Operation& op) {
    // Under the pytorch model the caching allocator decides whether a GPU allocation fits; the
    // tracker then accounts what it placed (its budget is at least the model's capacity).
    std::optional<sim::allocators::OutOfMemory> model_refusal;
    if (!model_allocation(op, model_refusal)) return false;
    ++summary.operations;
    sim::CoreOutcome& outcome = outcome_;
    if (model_refusal) {
      refused_by_model(op, *model_refusal, outcome);
    } else {
      s.apply(op, outcome, divergence_);
    }
    if (!count_outcome(op, outcome, divergence_)) return false;
    book_operation(op, outcome);
    const MemoryTracker& tracker = s.tracker();
    if (on_step) {
      on_step(ReplayStep{reader.events_read(), &event, op, outcome, &tracker,
                         outcome.ok ? released : 0, outcome.ok && released_part});
    }
    return recorded_outcome(outcome);
  }

  /// A GPU allocation in the allocator model. @return false when the replay failed on it
  [[gnu::always_inline]] bool model_allocation(
      const sim::Operation& op, std::optional<sim::allocators::OutOfMemory>& model_refusal) {
    if (modelled == nullptr || op.kind != sim::Operation::Kind::Allocate || !op.device.is_gpu()) {
      return true;
    }
    auto by_model = modelled->allocate(op.device.gpu_id(), event.address, event.stream.value_or(0),
                                       op.bytes, event.kind == TraceEvent::Kind::Baseline);
    if (by_model.difference) {
      fail(ReplayFailure::Kind::Allocator, std::move(*by_model.difference));
      return false;
    }
    model_refusal = by_model.refused;
    if (model_refusal && !summary.first_model_oom) {
      summary.first_model_oom = ModelOutOfMemory{position(), format_event(event),
                                                 op.device.gpu_id(), *model_refusal, frames_of()};
    }
    return true;
  }

  /// The tracker's outcome for an allocation the allocator model refused.
  static void refused_by_model(const sim::Operation& op,
                               const sim::allocators::OutOfMemory& refusal,
                               sim::CoreOutcome& outcome) {
    outcome.ok = false;
    outcome.resolved.reset();
    outcome.error =
        Error::out_of_memory(op.device, op.bytes, refusal.device_free, refusal.device_total);
  }

  /// Counts the outcome in the summary. @return false at a divergence (the replay failed)
  [[gnu::always_inline]] bool count_outcome(const sim::Operation& op,
                                            const sim::CoreOutcome& outcome,
                                            const std::optional<sim::Divergence>& divergence) {
    if (!divergence && !outcome.ok && outcome.error->kind != event.recorded_error) {
      // A free the tracker refuses that the recording did not: it freed more than it had.
      if (outcome.error->kind == ErrorKind::InvalidDeallocation) {
        inconsistent("frees more than " + op.device.to_string() +
                     " has allocated: " + outcome.error->to_string());
      } else if (outcome.error->kind == ErrorKind::UnknownDevice) {
        ++summary.unlanded;
        if (!summary.first_unlanded) {
          summary.first_unlanded = Inconsistency{
              position(), format_event(event),
              "names " + op.device.to_string() + ", which the replay's node does not have"};
        }
      }
    }
    if (divergence) {
      fail(ReplayFailure::Kind::Divergence, divergence->what, divergence->core_state,
           divergence->reference_state);
      return false;
    }
    if (outcome.ok) {
      ++summary.ok;
    } else if (outcome.error->kind == ErrorKind::OutOfMemory) {
      ++summary.refused;
      if (!summary.first_refusal) {
        summary.first_refusal =
            Refusal{position(),          op.bytes,   op.device, outcome.error->available_bytes,
                    format_event(event), frames_of()};
      }
    } else {
      ++summary.other_errors;
    }
    return true;
  }

  /// Bookkeeping for later frees, the CPU fallback, the high-water marks and "needed".
  [[gnu::always_inline]] void book_operation(const sim::Operation& op,
                                             const sim::CoreOutcome& outcome) {
    const bool is_allocation = op.kind == sim::Operation::Kind::Allocate;
    if (is_allocation && outcome.ok) {
      book_allocation(op, *outcome.resolved);
    } else if (is_allocation && event.address) {
      refused_addresses.put(*event.address, Live{op.bytes, op.device, reader.events_read()});
      freed_addresses.erase(*event.address);
    } else if (is_allocation && !outcome.ok && outcome.error->kind == ErrorKind::OutOfMemory &&
               !event.recorded_error) {
      // (One the recording refused too has no free to skip: a later free of that size is another.)
      ++refused_unaddressed[{op.device, op.bytes}];
    }
    if (is_allocation && (outcome.ok || outcome.error->kind == ErrorKind::OutOfMemory)) {
      // What the device needs: every allocation counted, refused or not, where it was asked for
      // (an `auto` one where the recording or the replay put it).
      DevicePlacement asked = op.device;
      if (asked.is_auto() && event.recorded_resolved) asked = map_device(*event.recorded_resolved);
      if (asked.is_auto() && outcome.ok) asked = *outcome.resolved;
      need(asked, op.bytes, true);
    }
  }

  /// An allocation the tracker made, on `where`.
  [[gnu::always_inline]] void book_allocation(const sim::Operation& op, DevicePlacement where) {
    if (event.address) {
      // (One probe: the put says whether an allocation was still live there.)
      if (live_by_address.put(*event.address, Live{op.bytes, where, reader.events_read()})) {
        inconsistent("allocates at " + detail::hex(*event.address) +
                     ", where an allocation is still live (never freed)");
      }
      refused_addresses.erase(*event.address);
      // Its entry among the freed addresses, if any, stays: while the address is live a free finds
      // it live, and its next free replaces that entry before a double free could read it.
    } else {
      // Found again by the device a free by size names: the trace's under auto placement.
      const DevicePlacement key = auto_placement ? event.device : where;
      if (event.kind == TraceEvent::Kind::Baseline) {
        book.add_baseline(key, reader.events_read(), op.bytes, where);
      } else {
        book.add_unaddressed({key, op.bytes}, reader.events_read(), where);
      }
    }
    if (op.device.is_auto() && where.is_cpu()) {
      ++summary.cpu_fallback_allocations;
      // Saturates rather than wraps on an astronomically long trace.
      summary.cpu_fallback_bytes =
          checked_add(summary.cpu_fallback_bytes, op.bytes).value_or(UINT64_MAX);
    }
    const std::size_t slot = slot_of(where);  // resolved devices are configured ones
    s.high_water[slot] = std::max(s.high_water[slot], s.tracker().allocated(where));
  }

  /// Compares the outcome with the recording's own. @return false when the replay failed on it
  [[gnu::always_inline]] bool recorded_outcome(const sim::CoreOutcome& outcome) {
    if (event.kind == TraceEvent::Kind::ResetPeakAll) return true;
    std::string difference;
    const std::optional<ErrorKind> got =
        outcome.ok ? std::nullopt : std::optional<ErrorKind>(outcome.error->kind);
    if (got != event.recorded_error) {
      difference =
          "the recording " +
          (event.recorded_error
               ? "refused it (" + std::string(to_string(*event.recorded_error)) + ")"
               : std::string("did it")) +
          "; the replay " +
          (outcome.ok ? std::string("did it") : "refused it: " + outcome.error->to_string());
    } else if (outcome.ok && event.recorded_resolved && !auto_placement &&
               *outcome.resolved != map_device(*event.recorded_resolved)) {
      difference = "the recording placed it on " + event.recorded_resolved->to_string() +
                   "; the replay on " + outcome.resolved->to_string();
    }
    if (difference.empty()) return true;
    // A recording that declares no devices had budgets the replay does not know (it measures on
    // limits no recording reaches): a refusal it recorded cannot be reproduced, and doing the
    // allocation is a difference, not a failure.
    const bool refusal_not_reproducible = !reader.header().has_devices() && outcome.ok &&
                                          event.recorded_error == ErrorKind::OutOfMemory;
    if (s.options.recorded_budgets && !auto_placement && !refusal_not_reproducible) {
      fail(ReplayFailure::Kind::Outcome, difference);
      return false;
    }
    ++summary.outcome_differences;
    depart(event.device);
    return true;
  }

  State& s;
  ReplaySummary& summary;
  TraceReader& reader;
  const GpuMap& gpu_map;
  const OnStep& on_step;
  const OnCheck& on_check;
  const bool auto_placement;
  LiveBook& book;
  AddressMap<Live>& live_by_address;
  /// Allocations the replay refused, by address: their bytes and the (mapped) device asked for.
  AddressMap<Live> refused_addresses;
  /// Bytes of refused allocations without an address, by mapped device: frees by size of them
  /// are skipped as frees of refused allocations.
  std::map<std::pair<DevicePlacement, std::uint64_t>, std::uint64_t> refused_unaddressed;
  /// What each device would hold if nothing were refused (recorded placement): "needed".
  std::vector<std::uint64_t> need_now;
  static constexpr std::size_t no_slot = MemoryTracker::npos;
  /// Addresses freed and not allocated again since, with the event that freed them: a second
  /// free of one is a double free.
  RecentFrees freed_addresses{max_remembered_frees};
  /// Trace devices with a baseline: memory from before the recording that frees may name.
  std::set<DevicePlacement> with_baseline;
  std::unordered_set<std::uint32_t> departed_gpus;  ///< trace GPU ids whose replay left it
  bool departed_cpu = false;
  detail::ModelledGpus* const modelled;
  /// The tracker whose accounts `slot_of` indexes (the replay's devices are in their order).
  const MemoryTracker& accounts;
  TraceEvent event;           ///< the event being replayed
  sim::CoreOutcome outcome_;  ///< the tracker's outcome of the operation being applied
  /// Where lockstep found a divergence (only lockstep sets it; it ends the replay).
  std::optional<sim::Divergence> divergence_;
  std::uint64_t released{0};  ///< the allocation the event's free releases, by its event
  bool released_part{false};  ///< part of a baseline
};

Result<void> Replayer::replay(
    TraceReader& reader, const std::map<std::uint32_t, std::uint32_t>& gpu_map,
    const std::function<void(const ReplayStep&)>& on_step,
    const std::function<void(std::uint64_t, const TraceEvent&, DevicePlacement)>& on_check) {
  State::Run run(*state_, reader, gpu_map, on_step, on_check);
  return run.all();
}

std::map<std::uint32_t, std::uint32_t> detail::map_onto_first_gpus(const TraceHeader& header) {
  std::map<std::uint32_t, std::uint32_t> map;
  if (!header.config) return map;
  std::vector<std::uint32_t> ids;
  for (const GpuSpec& gpu : header.config->gpus)
    ids.push_back(gpu.id);
  std::sort(ids.begin(), ids.end());
  for (std::uint32_t i = 0; i < ids.size(); ++i)
    map[ids[i]] = i;
  return map;
}

Result<std::map<std::uint32_t, std::uint32_t>> map_used_gpus(
    const std::set<std::uint32_t>& used, const GpuConfig& node,
    const std::map<std::uint32_t, std::uint32_t>& explicit_map) {
  std::vector<std::uint32_t> targets;
  for (const GpuSpec& gpu : node.gpus)
    targets.push_back(gpu.id);
  std::sort(targets.begin(), targets.end());
  std::map<std::uint32_t, std::uint32_t> map;
  std::set<std::uint32_t> taken;
  for (const auto& [from, to] : explicit_map) {
    if (!std::binary_search(targets.begin(), targets.end(), to)) {
      return Error::parse_error("--map gpu:" + std::to_string(from) + "=gpu:" + std::to_string(to) +
                                ": the node has no gpu:" + std::to_string(to));
    }
    map[from] = to;
    taken.insert(to);
  }
  auto next = targets.begin();
  std::vector<std::uint32_t> missing;
  for (const std::uint32_t id : used) {
    if (map.count(id) != 0) continue;
    while (next != targets.end() && taken.count(*next) != 0)
      ++next;
    if (next == targets.end()) {
      missing.push_back(id);
      continue;
    }
    map[id] = *next;
    taken.insert(*next);
    ++next;
  }
  if (!missing.empty()) {
    std::string names;
    for (const std::uint32_t id : missing)
      names += (names.empty() ? "gpu:" : ", gpu:") + std::to_string(id);
    return Error::parse_error("the recording uses " + std::to_string(used.size()) + " GPU" +
                              (used.size() == 1 ? "" : "s") + " and the node has " +
                              std::to_string(node.gpus.size()) + ": no GPU left for " + names +
                              " (give --gpus " + std::to_string(used.size()) +
                              " or a larger node; every allocation must land somewhere)");
  }
  return map;
}

Result<std::set<std::uint32_t>> used_gpus(TraceReader& reader) {
  UsedGpus used;
  TraceEvent event;
  for (;;) {
    auto more = reader.next(event);
    if (!more) return more.error();
    if (!*more) return used.ids();
    used.note(event);
  }
}

}  // namespace memtrack::traces
