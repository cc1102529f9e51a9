#include <memtrack/sim/workload.hpp>

#include <memtrack/units.hpp>

#include <algorithm>
#include <deque>
#include <map>

namespace memtrack::sim {

std::uint64_t SplitMix64::next() {
  state_ += 0x9E3779B97F4A7C15ULL;
  std::uint64_t z = state_;
  z = (z ^ (z >> 30U)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27U)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31U);
}

std::uint64_t SplitMix64::below(std::uint64_t bound) {
  // Rejection sampling: draw until the value falls in the largest multiple of `bound`.
  const std::uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
  std::uint64_t value = next();
  while (value >= limit)
    value = next();
  return value % bound;
}

std::uint64_t SplitMix64::between(std::uint64_t low, std::uint64_t high) {
  if (low == 0 && high == UINT64_MAX) return next();
  return low + below(high - low + 1);
}

const std::vector<ModelSpec>& registry_models() {
  // Approximate fp16 weights of common embedding models, plus a 10% working buffer.
  static const std::vector<ModelSpec> models = {
      {"all-MiniLM-L6-v2", 50_MB},
      {"bge-small-en-v1.5", 73_MB},
      {"e5-small-v2", 73_MB},
      {"all-mpnet-base-v2", 241_MB},
      {"bge-base-en-v1.5", 241_MB},
      {"nomic-embed-text-v1.5", 301_MB},
      {"bge-large-en-v1.5", 737_MB},
      {"e5-large-v2", 737_MB},
      {"bge-m3", 1251_MB},
      {"gte-Qwen2-1.5B-instruct", 3_GB + 400_MB},
      {"e5-mistral-7b-instruct", 15_GB + 900_MB},
      {"gte-Qwen2-7B-instruct", 16_GB + 900_MB},
  };
  return models;
}

namespace {

// A model registry serving several tenants, each with its own copy of the model set (about
// 160 GB in all, more than a node holds): requests for models (skewed toward a popular few) load
// them with `auto` placement, so they fall back to the CPU when the GPUs are full, and evict the
// least recently used model when nothing fits anywhere; a loaded model serves a batch (an
// activation buffer allocated and freed on its device); now and then one is unloaded.
class RegistryWorkload final : public Workload {
  static constexpr std::size_t tenants = 4;

 public:
  explicit RegistryWorkload(std::uint64_t seed) : random_(seed) {}

  std::optional<Operation> next(const TrackerView& /*state*/) override {
    if (pending_.empty()) plan();
    in_flight_ = pending_.front();
    pending_.pop_front();
    return in_flight_.operation;
  }

  void observe(const Operation& operation, const CoreOutcome& outcome) override {
    const Step step = in_flight_;
    if (step.kind == Step::Load) {
      if (outcome.ok) {
        loaded_[step.model] = *outcome.resolved;
        touch(step.model);
      } else if (!lru_.empty()) {
        // Nothing had room: evict the least recently used model and try again.
        const std::size_t victim = lru_.front();
        pending_.push_front({Step::Load, step.model, operation});
        pending_.push_front(unload(victim));
      }
    } else if (step.kind == Step::Activation && outcome.ok) {
      pending_.push_front(
          {Step::Free, step.model, Operation::deallocate(*outcome.resolved, operation.bytes)});
    }
  }

 private:
  struct Step {
    enum Kind { Load, Unload, Activation, Free } kind;
    std::size_t model;
    Operation operation;
  };

  void plan() {
    const auto& models = registry_models();
    if (!loaded_.empty() && random_.below(100) < 10) {
      // Unload a random loaded model.
      auto it = loaded_.begin();
      std::advance(it, static_cast<std::ptrdiff_t>(random_.below(loaded_.size())));
      pending_.push_back(unload(it->first));
      return;
    }
    // Popularity skew: the minimum of two uniform picks favours small (cheap, popular) models.
    const std::size_t count = models.size() * tenants;
    const auto model =
        static_cast<std::size_t>(std::min(random_.below(count), random_.below(count)));
    if (const auto found = loaded_.find(model); found != loaded_.end()) {
      touch(model);
      const std::uint64_t batch = std::max<std::uint64_t>(bytes_of(model) / 16, 1_MiB);
      pending_.push_back({Step::Activation, model, Operation::allocate(found->second, batch)});
      return;
    }
    pending_.push_back({Step::Load, model, Operation::allocate(Auto{}, bytes_of(model))});
  }

  Step unload(std::size_t model) {
    const DevicePlacement device = loaded_.at(model);
    loaded_.erase(model);
    lru_.erase(std::remove(lru_.begin(), lru_.end(), model), lru_.end());
    return {Step::Unload, model, Operation::deallocate(device, bytes_of(model))};
  }

  static std::uint64_t bytes_of(std::size_t model) {
    return registry_models()[model % registry_models().size()].bytes;
  }

  void touch(std::size_t model) {
    lru_.erase(std::remove(lru_.begin(), lru_.end(), model), lru_.end());
    lru_.push_back(model);
  }

  SplitMix64 random_;
  std::map<std::size_t, DevicePlacement> loaded_;
  std::vector<std::size_t> lru_;  ///< least recently used first
  std::deque<Step> pending_;
  Step in_flight_{Step::Load, 0, Operation{}};
};

// One service's fixed model set on a node: the nine small-to-large embedding models and
// e5-mistral-7b-instruct (about 19.6 GB of weights) are loaded once with `auto` placement, then
// serve batches (activation buffers of a sixteenth of the model, up to four in flight); now and
// then a model is reloaded (a new version: freed, then loaded again).
class ServingWorkload final : public Workload {
 public:
  explicit ServingWorkload(std::uint64_t seed) : random_(seed) {
    for (std::size_t i = 0; i < 9; ++i)
      to_load_.push_back(i);
    to_load_.push_back(10);  // e5-mistral-7b-instruct
  }

  std::optional<Operation> next(const TrackerView& /*state*/) override {
    if (!to_load_.empty()) {
      in_flight_ = Step{Step::Load, to_load_.front()};
      return Operation::allocate(Auto{}, bytes_of(to_load_.front()));
    }
    if (loaded_.empty()) return std::nullopt;  // nothing could be loaded: the run ends
    if (random_.below(1000) < 5) {
      // Reload: free a model; it is loaded again next.
      auto it = loaded_.begin();
      std::advance(it, static_cast<std::ptrdiff_t>(random_.below(loaded_.size())));
      const auto [model, device] = *it;
      loaded_.erase(it);
      to_load_.push_back(model);
      in_flight_ = Step{Step::Unload, model};
      return Operation::deallocate(device, bytes_of(model));
    }
    if (batches_.size() >= 4 || (!batches_.empty() && random_.below(2) == 0)) {
      const auto [device, bytes] = batches_.front();
      batches_.pop_front();
      in_flight_ = Step{Step::Free, 0};
      return Operation::deallocate(device, bytes);
    }
    // Smaller models serve more requests: the minimum of two picks.
    auto it = loaded_.begin();
    std::advance(it, static_cast<std::ptrdiff_t>(
                         std::min(random_.below(loaded_.size()), random_.below(loaded_.size()))));
    in_flight_ = Step{Step::Batch, it->first};
    return Operation::allocate(it->second,
                               std::max<std::uint64_t>(bytes_of(it->first) / 16, 1_MiB));
  }

  void observe(const Operation& operation, const CoreOutcome& outcome) override {
    if (in_flight_.kind == Step::Load) {
      to_load_.pop_front();
      if (outcome.ok) loaded_[in_flight_.model] = *outcome.resolved;
    } else if (in_flight_.kind == Step::Batch && outcome.ok) {
      batches_.emplace_back(*outcome.resolved, operation.bytes);
    }
  }

 private:
  struct Step {
    enum Kind { Load, Unload, Batch, Free } kind;
    std::size_t model;
  };

  static std::uint64_t bytes_of(std::size_t model) { return registry_models()[model].bytes; }

  SplitMix64 random_;
  std::deque<std::size_t> to_load_;
  std::map<std::size_t, DevicePlacement> loaded_;
  std::deque<std::pair<DevicePlacement, std::uint64_t>> batches_;
  Step in_flight_{Step::Load, 0};
};

// An inference server's activations: many short-lived allocations of mixed sizes (4 KiB to
// 64 MiB, log-uniform), mostly with auto placement, freed soon after in random order.
class ChurnWorkload final : public Workload {
 public:
  explicit ChurnWorkload(std::uint64_t seed) : random_(seed) {}

  std::optional<Operation> next(const TrackerView& state) override {
    if (!live_.empty() && (live_.size() >= 64 || random_.below(2) == 0)) {
      const std::size_t pick = random_.below(live_.size());
      const auto [device, bytes] = live_[pick];
      live_[pick] = live_.back();
      live_.pop_back();
      return Operation::deallocate(device, bytes);
    }
    const std::uint64_t bytes = std::uint64_t{4096} << random_.below(15);  // 4 KiB .. 64 MiB
    const std::uint64_t jitter = random_.below(bytes / 4 + 1);
    const auto& devices = state.devices();
    const DevicePlacement device =
        random_.below(10) < 7 ? DevicePlacement{Auto{}} : devices[random_.below(devices.size())];
    return Operation::allocate(device, bytes + jitter);
  }

  void observe(const Operation& operation, const CoreOutcome& outcome) override {
    if (operation.kind == Operation::Kind::Allocate && outcome.ok) {
      live_.emplace_back(*outcome.resolved, operation.bytes);
    }
  }

 private:
  SplitMix64 random_;
  std::vector<std::pair<DevicePlacement, std::uint64_t>> live_;
};

// Sizes aimed at every boundary: exact fit, one over, 0, near 2^64, over-deallocation, unknown
// devices, auto, and peak resets.
class AdversarialWorkload final : public Workload {
 public:
  explicit AdversarialWorkload(std::uint64_t seed) : random_(seed) {}

  std::optional<Operation> next(const TrackerView& state) override {
    const auto& devices = state.devices();
    std::uint32_t unknown = 0;
    for (const DevicePlacement d : devices) {
      if (d.is_gpu()) unknown = std::max(unknown, d.gpu_id() + 1);
    }
    const std::uint64_t pick = random_.below(devices.size() + 2);
    const DevicePlacement device = pick < devices.size()    ? devices[pick]
                                   : pick == devices.size() ? DevicePlacement{Auto{}}
                                                            : DevicePlacement{Gpu{unknown}};
    const std::uint64_t available = state.available(device);
    const std::uint64_t allocated = state.allocated(device);
    const std::uint64_t limit = device.is_auto() ? available : state.limit(device);
    const std::uint64_t roll = random_.below(100);
    if (roll < 3) return Operation::reset_peak_all();
    if (roll < 8) return Operation::reset_peak(device);
    if (roll < 45) {
      const std::uint64_t sizes[] = {allocated,
                                     allocated + 1 == 0 ? allocated : allocated + 1,
                                     random_.below(allocated / 2 + 1),
                                     0,
                                     max_bytes,
                                     random_.below(allocated + 1)};
      return Operation::deallocate(device, sizes[random_.below(std::size(sizes))]);
    }
    const std::uint64_t sizes[] = {0,
                                   1,
                                   available,
                                   available == max_bytes ? available : available + 1,
                                   available == 0 ? 0 : available - 1,
                                   limit,
                                   limit == max_bytes ? limit : limit + 1,
                                   max_bytes,
                                   max_bytes - allocated,
                                   max_bytes - allocated + 1 + random_.below(8),
                                   random_.below(available / 2 + 1),
                                   random_.below(available / 2 + 1),
                                   random_.next()};
    return Operation::allocate(device, sizes[random_.below(std::size(sizes))]);
  }

  void observe(const Operation& /*operation*/, const CoreOutcome& /*outcome*/) override {}

 private:
  SplitMix64 random_;
};

// Grows each device (GPUs by id, then the CPU) with power-of-two chunks, halving the chunk at
// each refusal, until not even one byte fits: finds each device's real capacity exactly.
class RampWorkload final : public Workload {
 public:
  explicit RampWorkload(std::uint64_t /*seed*/) {}

  std::optional<Operation> next(const TrackerView& state) override {
    if (order_.empty() && !started_) {
      for (const DevicePlacement d : state.devices()) {
        if (d.is_gpu()) order_.push_back(d);
      }
      order_.push_back(Cpu{});
      started_ = true;
    }
    while (index_ < order_.size()) {
      if (chunk_ == 0) {
        // Start with the largest power of two not above the device's limit.
        const std::uint64_t limit = state.limit(order_[index_]);
        if (limit == 0) {
          ++index_;
          continue;
        }
        chunk_ = std::uint64_t{1} << (63U - static_cast<unsigned>(__builtin_clzll(limit)));
      }
      return Operation::allocate(order_[index_], chunk_);
    }
    return std::nullopt;
  }

  void observe(const Operation& /*operation*/, const CoreOutcome& outcome) override {
    if (outcome.ok) return;
    chunk_ /= 2;
    if (chunk_ == 0) {
      ++index_;  // not one byte fits: this device is full
    }
  }

 private:
  std::vector<DevicePlacement> order_;
  std::size_t index_{0};
  std::uint64_t chunk_{0};
  bool started_{false};
};

}  // namespace

const std::vector<std::string_view>& workload_names() {
  static const std::vector<std::string_view> names = {"registry", "churn", "adversarial", "ramp"};
  return names;
}

Result<std::unique_ptr<Workload>> make_workload(std::string_view name, std::uint64_t seed) {
  if (name == "registry") return std::unique_ptr<Workload>(new RegistryWorkload(seed));
  if (name == "churn") return std::unique_ptr<Workload>(new ChurnWorkload(seed));
  if (name == "adversarial") return std::unique_ptr<Workload>(new AdversarialWorkload(seed));
  if (name == "ramp") return std::unique_ptr<Workload>(new RampWorkload(seed));
  if (name == "serving") return std::unique_ptr<Workload>(new ServingWorkload(seed));
  return Error::parse_error("unknown workload '" + std::string(name) +
                            "': expected registry, churn, adversarial, ramp or serving");
}

}  // namespace memtrack::sim
