#include <memtrack/recorder/cupti_convert.hpp>

#include <algorithm>
#include <cstdio>
#include <set>
#include <utility>

namespace memtrack::recorder {
namespace {

using traces::TraceEvent;

std::string hex(std::uint64_t value) {
  char text[24];
  std::snprintf(text, sizeof text, "0x%llx", static_cast<unsigned long long>(value));
  return text;
}

std::string_view pool_operation(CUpti_ActivityMemoryPoolOperationType type) {
  switch (type) {
    case CUPTI_ACTIVITY_MEMORY_POOL_OPERATION_TYPE_CREATED:
      return "created";
    case CUPTI_ACTIVITY_MEMORY_POOL_OPERATION_TYPE_DESTROYED:
      return "destroyed";
    case CUPTI_ACTIVITY_MEMORY_POOL_OPERATION_TYPE_TRIMMED:
      return "trimmed";
    default:
      return "changed";
  }
}

}  // namespace

void CuptiConverter::push(TraceEvent event, std::uint64_t time_ns) {
  Timed timed;
  timed.time_ns = time_ns;
  timed.event = std::move(event);
  push(std::move(timed));
}

void CuptiConverter::push(Timed timed) {
  timed.sequence = sequence_++;
  events_.push_back(std::move(timed));
}

void CuptiConverter::add_device(const traces::DeviceRecord& device, std::uint64_t time_ns) {
  devices_.emplace(device.id, device);  // the header describes the device at its first context
  if (device.total_at_start && device.free_at_start &&
      *device.total_at_start >= *device.free_at_start) {
    Timed created;
    created.kind = Timed::Kind::ContextCreated;
    created.time_ns = time_ns;
    created.device = device.id;
    created.used = *device.total_at_start - *device.free_at_start;
    push(std::move(created));
  }
}

void CuptiConverter::on_context_destroyed(std::uint32_t context_id, std::uint32_t device,
                                          std::uint64_t time_ns) {
  ++counts_.contexts_destroyed;
  Timed destroyed;
  destroyed.kind = Timed::Kind::ContextDestroyed;
  destroyed.time_ns = time_ns;
  destroyed.context_id = context_id;
  destroyed.device = device;
  push(std::move(destroyed));
}

std::optional<std::string> CuptiConverter::subscriber_problem() const {
  const ConversionCounts& c = counts_;
  if (c.allocation_records >= c.allocation_calls && c.release_records >= c.free_calls) {
    return std::nullopt;
  }
  return "CUPTI delivered " + std::to_string(c.allocation_records) + " MEMORY2 device allocation " +
         "records for " + std::to_string(c.allocation_calls) + " allocation calls and " +
         std::to_string(c.release_records) + " release records for " +
         std::to_string(c.free_calls) + " free calls: another CUPTI user (a torch.profiler / " +
         "Kineto, Nsight) took the activity buffers";
}

void CuptiConverter::forget_events() {
  events_.clear();
  handles_.clear();
  mapped_.clear();
  const std::uint64_t host = host_memory_;
  counts_ = ConversionCounts{};
  host_memory_ = host;
}

void CuptiConverter::consume(const CUpti_Activity& record) {
  if (record.kind == CUPTI_ACTIVITY_KIND_MEMORY_POOL) {
    consume_pool(reinterpret_cast<const CUpti_ActivityMemoryPool3&>(record));
  } else if (record.kind == CUPTI_ACTIVITY_KIND_MEMORY2) {
    consume_memory(reinterpret_cast<const CUpti_ActivityMemory4&>(record));
  } else {
    ++counts_.other_records;
  }
}

void CuptiConverter::consume_pool(const CUpti_ActivityMemoryPool3& pool) {
  ++counts_.pool_records;
  TraceEvent mark;
  mark.kind = TraceEvent::Kind::Mark;
  mark.text = "pool " + std::string(pool_operation(pool.memoryPoolOperationType)) +
              " gpu:" + std::to_string(pool.deviceId) + " pool=" + hex(pool.address) +
              " size=" + std::to_string(pool.size) +
              " utilized=" + std::to_string(pool.utilizedSize) +
              " release_threshold=" + std::to_string(pool.releaseThreshold) +
              " t=" + std::to_string(pool.timestamp);
  Timed timed;
  timed.time_ns = pool.timestamp;
  timed.event = std::move(mark);
  timed.device = pool.deviceId;
  if (pool.memoryPoolType == CUPTI_ACTIVITY_MEMORY_POOL_TYPE_LOCAL && pool.address != 0) {
    timed.pool = pool.address;
    timed.pool_size =
        pool.memoryPoolOperationType == CUPTI_ACTIVITY_MEMORY_POOL_OPERATION_TYPE_DESTROYED
            ? 0
            : pool.size;
  }
  push(std::move(timed));
}

namespace {

/// Where a memory record's bytes count, and its tag; nothing for memory no budget counts
/// (managed, pageable, unknown kinds).
std::optional<std::pair<DevicePlacement, std::string>> memory_kind_device(
    const CUpti_ActivityMemory4& memory) {
  switch (memory.memoryKind) {
    case CUPTI_ACTIVITY_MEMORY_KIND_DEVICE:
      return std::pair{DevicePlacement{Gpu{memory.deviceId}}, std::string()};
    case CUPTI_ACTIVITY_MEMORY_KIND_DEVICE_STATIC:
      return std::pair{DevicePlacement{Gpu{memory.deviceId}}, std::string("static")};
    case CUPTI_ACTIVITY_MEMORY_KIND_ARRAY:
      return std::pair{DevicePlacement{Gpu{memory.deviceId}}, std::string("array")};
    case CUPTI_ACTIVITY_MEMORY_KIND_PINNED:
      return std::pair{DevicePlacement{Cpu{}}, std::string("pinned")};
    default:
      return std::nullopt;
  }
}

}  // namespace

void CuptiConverter::consume_memory(const CUpti_ActivityMemory4& memory) {
  ++counts_.memory_records;
  auto where = memory_kind_device(memory);
  if (!where) {
    ++counts_.unaccounted_kinds;
    return;
  }
  auto& [device, tag] = *where;
  const auto& pool = memory.memoryPoolConfig;
  if (pool.memoryPoolType != CUPTI_ACTIVITY_MEMORY_POOL_TYPE_INVALID) tag = "pool";
  TraceEvent event;
  const bool allocation =
      memory.memoryOperationType == CUPTI_ACTIVITY_MEMORY_OPERATION_TYPE_ALLOCATION;
  if (allocation) {
    event.kind = TraceEvent::Kind::Allocate;
  } else if (memory.memoryOperationType == CUPTI_ACTIVITY_MEMORY_OPERATION_TYPE_RELEASE) {
    event.kind = TraceEvent::Kind::Free;
  } else {
    ++counts_.other_records;
    return;
  }
  if (memory.memoryKind == CUPTI_ACTIVITY_MEMORY_KIND_DEVICE) {
    ++(allocation ? counts_.allocation_records : counts_.release_records);
  }
  event.device = device;
  event.bytes = memory.bytes;
  event.address = memory.address;
  event.time_ns = memory.timestamp;
  if (memory.isAsync != 0) event.stream = memory.streamId;
  event.tag = std::move(tag);
  Timed timed;
  timed.time_ns = memory.timestamp;
  timed.event = std::move(event);
  timed.context_id = memory.contextId;
  timed.device = memory.deviceId;
  // Only a local pool's record carries its size (an imported pool's holds the exporter's pid).
  if (pool.memoryPoolType == CUPTI_ACTIVITY_MEMORY_POOL_TYPE_LOCAL && pool.address != 0) {
    timed.pool = pool.address;
    timed.pool_size = pool.pool.size;
  }
  push(std::move(timed));
}

Result<std::uint64_t> CuptiConverter::consume_buffer(std::uint8_t* buffer,
                                                     std::size_t valid_bytes) {
  std::uint64_t records = 0;
  if (buffer == nullptr || valid_bytes == 0) return records;  // CUPTI completes empty buffers too
  CUpti_Activity* record = nullptr;
  for (;;) {
    const CUptiResult status = cuptiActivityGetNextRecord(buffer, valid_bytes, &record);
    if (status == CUPTI_ERROR_MAX_LIMIT_REACHED) return records;
    if (status == CUPTI_ERROR_INVALID_KIND) {  // as NVIDIA's samples: the end of what is readable
      ++counts_.invalid_kind_stops;
      return records;
    }
    if (status != CUPTI_SUCCESS) {
      const char* text = nullptr;
      cuptiGetResultString(status, &text);
      return Error::parse_error(
          "cuptiActivityGetNextRecord: " + std::string(text != nullptr ? text : "unknown error") +
          " after " + std::to_string(records) + " records");
    }
    consume(*record);
    ++records;
  }
}

void CuptiConverter::free_handle(std::uint64_t handle, const Handle& state, std::uint64_t time_ns) {
  TraceEvent event = TraceEvent::free(state.device, state.size);
  event.time_ns = time_ns;
  event.tag = "vmm";
  push(std::move(event), time_ns);
  handles_.erase(handle);
}

void CuptiConverter::on_vmm(const VmmCall& call) {
  switch (call.kind) {
    case VmmCall::Kind::Create: {
      ++counts_.vmm_creates;
      handles_[call.handle] = Handle{call.size, call.device, 0, false};
      TraceEvent event = TraceEvent::allocate(call.device, call.size);
      event.time_ns = call.time_ns;
      event.tag = "vmm";
      push(std::move(event), call.time_ns);
      return;
    }
    case VmmCall::Kind::Map: {
      ++counts_.vmm_maps;
      const auto found = handles_.find(call.handle);
      if (found == handles_.end()) {
        ++counts_.vmm_unknown_handles;
        return;
      }
      ++found->second.mappings;
      mapped_[call.address] = call.handle;
      return;
    }
    case VmmCall::Kind::Unmap: {
      ++counts_.vmm_unmaps;
      // One cuMemUnmap may cover several contiguous mappings: every one starting in the range.
      const std::uint64_t end =
          call.address + call.size < call.address ? UINT64_MAX : call.address + call.size;
      auto it = mapped_.lower_bound(call.address);
      if (it == mapped_.end() || it->first >= end) {
        ++counts_.vmm_unknown_handles;
        return;
      }
      while (it != mapped_.end() && it->first < end) {
        const std::uint64_t handle = it->second;
        it = mapped_.erase(it);
        const auto found = handles_.find(handle);
        if (found == handles_.end()) continue;
        if (found->second.mappings > 0) --found->second.mappings;
        if (found->second.released && found->second.mappings == 0) {
          free_handle(handle, found->second, call.time_ns);
        }
      }
      return;
    }
    case VmmCall::Kind::Release: {
      ++counts_.vmm_releases;
      const auto found = handles_.find(call.handle);
      if (found == handles_.end()) {
        ++counts_.vmm_unknown_handles;
        return;
      }
      found->second.released = true;
      if (found->second.mappings == 0) free_handle(call.handle, found->second, call.time_ns);
      return;
    }
  }
}

/// What depends on the order of events, derived once they are sorted: the bytes the trace holds
/// on each device (for baselines), the live MEMORY2 allocations (for 0-byte releases and
/// teardowns) and each local pool's reserve (its size beyond the requested bytes live in it).
class CuptiConverter::Ordered {
 public:
  explicit Ordered(std::vector<TraceEvent>& out) : out_(out) {}

  void take(const Timed& timed) {
    switch (timed.kind) {
      case Timed::Kind::ContextCreated:
        baseline(timed);
        return;
      case Timed::Kind::ContextDestroyed:
        teardown(timed);
        return;
      case Timed::Kind::Event:
        event(timed);
        return;
    }
  }

 private:
  struct Live {
    std::uint64_t bytes{0};
    DevicePlacement device{};
    std::uint32_t context{0};
    std::uint64_t pool{0};
  };
  struct Pool {
    std::uint32_t device{0};
    std::uint32_t context{0};
    std::uint64_t live{0};     ///< requested bytes of its allocations still live
    std::uint64_t reserve{0};  ///< what the trace holds for it beyond them
  };
  using Key = std::pair<std::int64_t, std::uint64_t>;  ///< (gpu id, or -1 for the host; address)

  static Key key(const DevicePlacement& device, std::uint64_t address) {
    return {device.is_gpu() ? static_cast<std::int64_t>(device.gpu_id()) : -1, address};
  }

  void emit(TraceEvent event) {
    if (event.device.is_gpu() && event.bytes) {
      std::uint64_t& held = held_[event.device.gpu_id()];
      if (event.kind == TraceEvent::Kind::Free) {
        held -= std::min(held, *event.bytes);
      } else if (event.kind != TraceEvent::Kind::Mark) {
        held = *event.bytes > UINT64_MAX - held ? UINT64_MAX : held + *event.bytes;
      }
    }
    out_.push_back(std::move(event));
  }

  /// A context appeared: what was in use beyond what the trace holds on its device.
  void baseline(const Timed& timed) {
    const std::uint64_t held = held_[timed.device];
    if (timed.used <= held) return;
    TraceEvent event;
    event.kind = TraceEvent::Kind::Baseline;
    event.device = Gpu{timed.device};
    event.bytes = timed.used - held;
    event.time_ns = timed.time_ns;
    emit(std::move(event));
  }

  void event(const Timed& timed) {
    TraceEvent event = timed.event;
    if (event.kind == TraceEvent::Kind::Free && event.address &&
        torn_down_.erase(key(event.device, *event.address)) != 0) {
      return;  // CUPTI's own release of what a teardown already freed: not freed twice
    }
    if (event.kind == TraceEvent::Kind::Allocate && event.address && event.bytes) {
      torn_down_.erase(key(event.device, *event.address));
      live_[key(event.device, *event.address)] =
          Live{*event.bytes, event.device, timed.context_id, timed.pool};
      if (timed.pool != 0) {
        Pool& pool = pools_[timed.pool];
        pool.device = timed.device;
        pool.context = timed.context_id;
        pool.live += *event.bytes;
      }
    } else if (event.kind == TraceEvent::Kind::Free && event.address) {
      const auto found = live_.find(key(event.device, *event.address));
      if (found != live_.end()) {
        // a release record carrying 0 bytes frees what was allocated there
        if (event.bytes.value_or(0) == 0) event.bytes = found->second.bytes;
        if (found->second.pool != 0) {
          Pool& pool = pools_[found->second.pool];
          pool.live -= std::min(pool.live, found->second.bytes);
        }
        live_.erase(found);
      } else if (event.bytes == 0U) {
        event.bytes.reset();  // unknown size: the replay resolves it by address, or skips it
      }
    }
    if (timed.pool == 0 || !timed.pool_size) {
      emit(std::move(event));
      return;
    }
    // The pool held `pool_size` after this record. The reserve moves first when it shrinks (an
    // allocation taken from it) and after the event when it grows, so the trace never holds
    // more than the pool did.
    Pool& pool = pools_[timed.pool];
    pool.device = timed.device;
    const std::uint64_t size = *timed.pool_size;
    const std::uint64_t target = size > pool.live ? size - pool.live : 0;
    if (target < pool.reserve) reserve(pool, target, timed.time_ns);
    emit(std::move(event));
    if (target > pool.reserve) reserve(pool, target, timed.time_ns);
  }

  /// The trace holds `target` bytes for the pool beyond its live allocations.
  void reserve(Pool& pool, std::uint64_t target, std::uint64_t time_ns) {
    if (target == pool.reserve) return;
    TraceEvent event = target > pool.reserve
                           ? TraceEvent::allocate(Gpu{pool.device}, target - pool.reserve)
                           : TraceEvent::free(Gpu{pool.device}, pool.reserve - target);
    event.time_ns = time_ns;
    event.tag = "pool-reserve";
    pool.reserve = target;
    emit(std::move(event));
  }

  /// A context went away with everything it held (cudaDeviceReset, cuCtxDestroy).
  void teardown(const Timed& timed) {
    for (auto it = live_.begin(); it != live_.end();) {
      if (it->second.context != timed.context_id) {
        ++it;
        continue;
      }
      TraceEvent event = TraceEvent::free(it->second.device, it->second.bytes);
      event.address = it->first.second;
      event.time_ns = timed.time_ns;
      event.tag = "teardown";
      if (it->second.pool != 0) {
        Pool& pool = pools_[it->second.pool];
        pool.live -= std::min(pool.live, it->second.bytes);
      }
      torn_down_.insert(it->first);
      it = live_.erase(it);
      emit(std::move(event));
    }
    for (auto& [address, pool] : pools_) {
      if (pool.context != timed.context_id || pool.reserve == 0) continue;
      TraceEvent event = TraceEvent::free(Gpu{pool.device}, pool.reserve);
      event.time_ns = timed.time_ns;
      event.tag = "teardown";
      pool.reserve = 0;
      emit(std::move(event));
    }
  }

  std::vector<TraceEvent>& out_;
  std::map<std::uint32_t, std::uint64_t> held_;
  std::map<Key, Live> live_;
  std::set<Key> torn_down_;  ///< freed by a teardown, in case CUPTI reports their release too
  std::map<std::uint64_t, Pool> pools_;
};

Conversion CuptiConverter::finish(const std::string& source, bool check_subscriber) const {
  Conversion conversion;
  conversion.header.source = source;
  GpuConfig config;
  config.memory_fraction = Fraction::of(1, 1).value();
  if (host_memory_ != 0) config.cpu_memory_limit = host_memory_;
  for (const auto& [id, device] : devices_) {
    GpuSpec gpu;
    gpu.id = id;
    gpu.total_bytes = device.total_at_start.value_or(device.total_global_mem.value_or(0));
    gpu.name = device.name;
    if (gpu.total_bytes != 0) config.gpus.push_back(std::move(gpu));
    conversion.header.devices.push_back(device);
  }
  conversion.header.config = std::move(config);

  std::vector<const Timed*> order;
  order.reserve(events_.size());
  for (const Timed& timed : events_)
    order.push_back(&timed);
  std::sort(order.begin(), order.end(), [](const Timed* a, const Timed* b) {
    return a->time_ns != b->time_ns ? a->time_ns < b->time_ns : a->sequence < b->sequence;
  });
  conversion.events.reserve(order.size() + 2);
  Ordered ordered(conversion.events);
  for (const Timed* timed : order)
    ordered.take(*timed);
  const auto incomplete = [&conversion](std::string why) {
    TraceEvent mark;
    mark.kind = TraceEvent::Kind::Mark;
    mark.text = "incomplete: " + std::move(why);
    conversion.events.push_back(std::move(mark));
  };
  if (counts_.dropped_records != 0) {
    incomplete("CUPTI dropped " + std::to_string(counts_.dropped_records) +
               " activity records (buffers full)");
  }
  if (check_subscriber) {
    if (auto problem = subscriber_problem()) incomplete(*problem);
  }
  return conversion;
}

}  // namespace memtrack::recorder
