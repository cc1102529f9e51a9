// The exact model: requested bytes against the capacity, nothing cached.
#include <memtrack/sim/allocators/exact_model.hpp>
#include <memtrack/units.hpp>

#include <algorithm>

namespace memtrack::sim::allocators {

ExactModel::ExactModel(std::uint64_t capacity, SegmentAddressSource* addresses)
    : capacity_(capacity), addresses_(addresses) {
  if (addresses_ == nullptr) {
    own_addresses_ = std::make_unique<SequentialAddressSource>();
    addresses_ = own_addresses_.get();
  }
}

AllocateOutcome ExactModel::allocate(std::uint64_t stream, std::uint64_t bytes) {
  if (bytes == 0) return Allocation{0, 0, 0};
  const std::uint64_t room = capacity_ - allocated_;
  if (bytes > room) {
    return OutOfMemory{bytes, bytes, bytes, capacity_, room, std::nullopt, allocated_, allocated_};
  }
  const std::uint64_t address = addresses_->segment_address(bytes, stream, false);
  live_.emplace(address, Live{bytes, stream});
  allocated_ += bytes;
  return Allocation{address, bytes, bytes};
}

bool ExactModel::free(std::uint64_t address) {
  if (address == 0) return true;
  const auto found = live_.find(address);
  if (found == live_.end()) return false;
  allocated_ -= found->second.size;
  live_.erase(found);
  return true;
}

std::vector<SegmentInfo> ExactModel::segments() const {
  std::vector<SegmentInfo> result;
  result.reserve(live_.size());
  for (const auto& [address, live] : live_) {
    result.push_back(SegmentInfo{address,
                                 live.size,
                                 live.stream,
                                 PoolKind::large,
                                 false,
                                 {BlockInfo{0, live.size, BlockState::allocated}}});
  }
  std::sort(result.begin(), result.end(),
            [](const SegmentInfo& a, const SegmentInfo& b) { return a.address < b.address; });
  return result;
}

}  // namespace memtrack::sim::allocators
