#include <memtrack/memory_tracker.hpp>

#include <algorithm>
#include <utility>

namespace memtrack {

Result<MemoryTracker> MemoryTracker::create(GpuConfig config) {
  if (auto valid = validate(config); !valid) return valid.error();
  MemoryTracker tracker;
  std::vector<GpuSpec> gpus = config.gpus;
  std::sort(gpus.begin(), gpus.end(),
            [](const GpuSpec& a, const GpuSpec& b) { return a.id < b.id; });
  tracker.gpu_ids_.reserve(gpus.size());
  tracker.accounts_.reserve(gpus.size() + 1);
  for (const GpuSpec& gpu : gpus) {
    tracker.gpu_ids_.push_back(gpu.id);
    tracker.accounts_.push_back(Account{.limit = gpu_limit(gpu, config.memory_fraction)});
  }
  tracker.accounts_.push_back(Account{.limit = config.cpu_memory_limit});
  while (tracker.dense_gpu_ids_ < tracker.gpu_ids_.size() &&
         tracker.gpu_ids_[tracker.dense_gpu_ids_] == tracker.dense_gpu_ids_) {
    ++tracker.dense_gpu_ids_;
  }
  // validate() proved this sum fits in 64 bits.
  for (const Account& account : tracker.accounts_)
    tracker.total_limit_ += account.limit;
  tracker.config_ = std::move(config);
  return tracker;
}

std::size_t MemoryTracker::index_of_sparse(DevicePlacement placement) const noexcept {
  const auto found = std::lower_bound(gpu_ids_.begin(), gpu_ids_.end(), placement.gpu_id());
  if (found == gpu_ids_.end() || *found != placement.gpu_id()) return npos;
  return static_cast<std::size_t>(found - gpu_ids_.begin());
}

Result<std::size_t> MemoryTracker::plan_auto_allocation(std::uint64_t bytes) const {
  // Lowest-id GPU with room, then the CPU (last in accounts_).
  for (std::size_t i = 0; i < accounts_.size(); ++i) {
    if (bytes <= accounts_[i].limit - accounts_[i].allocated) return i;
  }
  return Error::out_of_memory(Auto{}, bytes, available(Auto{}), 0);
}

Result<DevicePlacement> MemoryTracker::allocate_auto(std::uint64_t bytes) {
  auto planned = plan_auto_allocation(bytes);
  if (!planned) return refuse_allocation(Auto{}, bytes, planned.error());
  commit_allocation(*planned, bytes);
  const DevicePlacement resolved = device_at(*planned);
  notify(ObservedEvent::Kind::Allocate, Auto{}, bytes, resolved, nullptr);
  return resolved;
}

Result<DevicePlacement> MemoryTracker::refuse_allocation(DevicePlacement placement,
                                                         std::uint64_t bytes,
                                                         const Error& error) const {
  notify(ObservedEvent::Kind::Allocate, placement, bytes, std::nullopt, &error);
  return error;
}

Result<void> MemoryTracker::refuse_deallocation(DevicePlacement placement,
                                                std::uint64_t bytes) const {
  const Error error = [&] {
    if (placement.is_auto()) return Error::ambiguous_device("deallocate");
    const std::size_t index = index_of(placement);
    if (index == npos) return Error::unknown_device(placement);
    return Error::invalid_deallocation(placement, bytes, accounts_[index].allocated);
  }();
  notify(ObservedEvent::Kind::Deallocate, placement, bytes, std::nullopt, &error);
  return error;
}

std::uint64_t MemoryTracker::available(DevicePlacement placement) const noexcept {
  if (placement.is_auto()) {
    std::uint64_t largest = 0;
    for (const Account& account : accounts_) {
      largest = std::max(largest, account.limit - account.allocated);
    }
    return largest;
  }
  const std::size_t index = index_of(placement);
  if (index == npos) return 0;
  return accounts_[index].limit - accounts_[index].allocated;
}

std::uint64_t MemoryTracker::peak(DevicePlacement placement) const noexcept {
  if (placement.is_auto()) return total_peak_;
  const std::size_t index = index_of(placement);
  return index == npos ? 0 : accounts_[index].peak;
}

std::uint64_t MemoryTracker::limit(DevicePlacement placement) const noexcept {
  if (placement.is_auto()) return total_limit_;
  const std::size_t index = index_of(placement);
  return index == npos ? 0 : accounts_[index].limit;
}

std::uint64_t MemoryTracker::allocation_count(DevicePlacement placement) const noexcept {
  const std::size_t index = index_of(placement);
  return index == npos ? 0 : accounts_[index].count;
}

void MemoryTracker::reset_peak() noexcept {
  for (Account& account : accounts_) {
    account.peak = account.allocated;
  }
  total_peak_ = total_allocated_;
  notify(ObservedEvent::Kind::ResetPeakAll, Auto{}, 0, std::nullopt, nullptr);
}

Result<void> MemoryTracker::reset_peak(DevicePlacement placement) {
  Result<void> result = apply_reset_peak(placement);
  notify(ObservedEvent::Kind::ResetPeak, placement, 0, std::nullopt,
         result ? nullptr : &result.error());
  return result;
}

Result<void> MemoryTracker::apply_reset_peak(DevicePlacement placement) {
  if (placement.is_auto()) return Error::ambiguous_device("reset_peak");
  const std::size_t index = index_of(placement);
  if (index == npos) return Error::unknown_device(placement);
  accounts_[index].peak = accounts_[index].allocated;
  return {};
}

MemorySummary MemoryTracker::summary() const {
  MemorySummary summary;
  for (std::size_t i = 0; i < gpu_ids_.size(); ++i) {
    summary.gpu_allocated.emplace(gpu_ids_[i], accounts_[i].allocated);
    summary.gpu_available.emplace(gpu_ids_[i], accounts_[i].limit - accounts_[i].allocated);
  }
  const Account& cpu = accounts_.back();
  summary.cpu_allocated = cpu.allocated;
  summary.cpu_available = cpu.limit - cpu.allocated;
  summary.total_peak = total_peak_;
  return summary;
}

Result<GpuMemoryInfo> MemoryTracker::gpu_info(std::uint32_t gpu_id) const {
  const std::size_t index = index_of(Gpu{gpu_id});
  if (index == npos) return Error::unknown_device(Gpu{gpu_id});
  const Account& account = accounts_[index];
  return GpuMemoryInfo{account.allocated, account.peak, account.count};
}

}  // namespace memtrack
