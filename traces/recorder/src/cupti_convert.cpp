#include <memtrack/recorder/cupti_convert.hpp>

#include <algorithm>
#include <cstdio>

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
  events_.push_back(Timed{time_ns, sequence_++, std::move(event)});
}

void CuptiConverter::add_device(const traces::DeviceRecord& device, std::uint64_t time_ns) {
  if (!devices_.emplace(device.id, device).second) return;  // its first context only
  if (device.total_at_start && device.free_at_start &&
      *device.total_at_start >= *device.free_at_start) {
    TraceEvent baseline;
    baseline.kind = TraceEvent::Kind::Baseline;
    baseline.device = Gpu{device.id};
    baseline.bytes = *device.total_at_start - *device.free_at_start;
    baseline.time_ns = time_ns;
    push(std::move(baseline), time_ns);
  }
}

void CuptiConverter::consume(const CUpti_Activity& record) {
  if (record.kind == CUPTI_ACTIVITY_KIND_MEMORY_POOL) {
    ++counts_.pool_records;
    const auto& pool = reinterpret_cast<const CUpti_ActivityMemoryPool3&>(record);
    TraceEvent mark;
    mark.kind = TraceEvent::Kind::Mark;
    mark.text = "pool " + std::string(pool_operation(pool.memoryPoolOperationType)) +
                " gpu:" + std::to_string(pool.deviceId) + " pool=" + hex(pool.address) +
                " size=" + std::to_string(pool.size) +
                " utilized=" + std::to_string(pool.utilizedSize) +
                " release_threshold=" + std::to_string(pool.releaseThreshold) +
                " t=" + std::to_string(pool.timestamp);
    push(std::move(mark), pool.timestamp);
    return;
  }
  if (record.kind != CUPTI_ACTIVITY_KIND_MEMORY2) {
    ++counts_.other_records;
    return;
  }
  ++counts_.memory_records;
  const auto& memory = reinterpret_cast<const CUpti_ActivityMemory4&>(record);
  DevicePlacement device;
  std::string tag;
  switch (memory.memoryKind) {
    case CUPTI_ACTIVITY_MEMORY_KIND_DEVICE:
      device = Gpu{memory.deviceId};
      break;
    case CUPTI_ACTIVITY_MEMORY_KIND_DEVICE_STATIC:
      device = Gpu{memory.deviceId};
      tag = "static";
      break;
    case CUPTI_ACTIVITY_MEMORY_KIND_ARRAY:
      device = Gpu{memory.deviceId};
      tag = "array";
      break;
    case CUPTI_ACTIVITY_MEMORY_KIND_PINNED:
      device = Cpu{};
      tag = "pinned";
      break;
    default:  // managed, pageable, unknown: not device memory the budget counts
      ++counts_.unaccounted_kinds;
      return;
  }
  if (memory.memoryPoolConfig.memoryPoolType != CUPTI_ACTIVITY_MEMORY_POOL_TYPE_INVALID) {
    tag = "pool";
  }
  TraceEvent event;
  if (memory.memoryOperationType == CUPTI_ACTIVITY_MEMORY_OPERATION_TYPE_ALLOCATION) {
    event.kind = TraceEvent::Kind::Allocate;
  } else if (memory.memoryOperationType == CUPTI_ACTIVITY_MEMORY_OPERATION_TYPE_RELEASE) {
    event.kind = TraceEvent::Kind::Free;
  } else {
    ++counts_.other_records;
    return;
  }
  event.device = device;
  event.bytes = memory.bytes;
  event.address = memory.address;
  event.time_ns = memory.timestamp;
  if (memory.isAsync != 0) event.stream = memory.streamId;
  event.tag = std::move(tag);
  push(std::move(event), memory.timestamp);
}

Result<std::uint64_t> CuptiConverter::consume_buffer(std::uint8_t* buffer,
                                                     std::size_t valid_bytes) {
  std::uint64_t records = 0;
  if (buffer == nullptr || valid_bytes == 0) return records;  // CUPTI completes empty buffers too
  CUpti_Activity* record = nullptr;
  for (;;) {
    const CUptiResult status = cuptiActivityGetNextRecord(buffer, valid_bytes, &record);
    if (status == CUPTI_ERROR_MAX_LIMIT_REACHED) return records;
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

Conversion CuptiConverter::finish(const std::string& source) const {
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
  conversion.events.reserve(order.size() + 1);
  for (const Timed* timed : order)
    conversion.events.push_back(timed->event);
  if (counts_.dropped_records != 0) {
    TraceEvent mark;
    mark.kind = TraceEvent::Kind::Mark;
    mark.text = "incomplete: CUPTI dropped " + std::to_string(counts_.dropped_records) +
                " activity records (buffers full)";
    conversion.events.push_back(std::move(mark));
  }
  return conversion;
}

}  // namespace memtrack::recorder
