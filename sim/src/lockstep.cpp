#include <memtrack/sim/lockstep.hpp>

#include <algorithm>
#include <set>
#include <sstream>

namespace memtrack::sim {

template class LockstepChecker<MemoryTracker>;

ReferenceOutcome apply_to_reference(ReferenceTracker& model, const Operation& operation) {
  switch (operation.kind) {
    case Operation::Kind::Allocate:
      return model.allocate(operation.device, operation.bytes);
    case Operation::Kind::Deallocate:
      return model.deallocate(operation.device, operation.bytes);
    case Operation::Kind::ResetPeakAll:
      model.reset_peak();
      return ReferenceOutcome{};
    case Operation::Kind::ResetPeak:
      return model.reset_peak(operation.device);
  }
  return ReferenceOutcome{};
}

std::optional<std::string> compare_outcomes(const CoreOutcome& core,
                                            const ReferenceOutcome& reference) {
  const auto core_text = [&] {
    if (core.ok) return "ok" + (core.resolved ? " -> " + core.resolved->to_string() : "");
    return core.error->to_string() + " [" + std::string(to_string(core.error->kind)) + "]";
  };
  const auto differ = [&](std::string_view what) {
    return std::string(what) + ": production '" + core_text() + "', reference '" +
           reference.to_string() + "'";
  };
  if (core.ok != reference.ok) return differ("outcome differs");
  if (core.ok) {
    if (core.resolved != reference.resolved) return differ("resolved device differs");
    return std::nullopt;
  }
  const Error& error = *core.error;
  if (error.kind != reference.error_kind) return differ("error kind differs");
  if (error.device != reference.device) return differ("error device differs");
  if (reference.requested != error.requested_bytes) return differ("error requested bytes differ");
  if (reference.available != error.available_bytes) return differ("error available bytes differ");
  if (reference.limit != error.limit_bytes) return differ("error limit bytes differ");
  if (reference.allocated != error.allocated_bytes) return differ("error allocated bytes differ");
  return std::nullopt;
}

std::string describe_difference(std::string_view what, std::uint64_t core,
                                const BigInt& reference) {
  std::ostringstream out;
  out << what << ": production " << core << ", reference " << reference;
  if (reference > max_u64()) out << " (beyond 2^64 - 1: the production tracker wrapped)";
  return out.str();
}

std::string describe_state(const ReferenceTracker& model) {
  std::ostringstream out;
  for (const auto& [device, account] : model.accounts()) {
    out << device.to_string() << ": allocated " << account.allocated << ", available "
        << account.limit - account.allocated << ", peak " << account.peak << ", limit "
        << account.limit << ", count " << account.count << "\n";
  }
  out << "auto: allocated " << model.allocated(Auto{}) << ", available " << model.available(Auto{})
      << ", total_peak " << model.total_peak() << ", limit " << model.limit(Auto{}) << "\n";
  return out.str();
}

std::optional<std::uint32_t> unconfigured_gpu_id(const GpuConfig& config) {
  std::set<std::uint32_t> ids;
  for (const GpuSpec& gpu : config.gpus)
    ids.insert(gpu.id);
  std::uint32_t candidate = 0;
  for (const std::uint32_t id : ids) {
    if (id != candidate) break;
    if (candidate == UINT32_MAX) return std::nullopt;
    ++candidate;
  }
  return candidate;
}

std::string Divergence::to_string() const {
  std::ostringstream out;
  out << "divergence at step " << step << " (" << operation << "): " << what << "\n";
  // Both states side by side, one device a line.
  std::vector<std::string> left{"production"};
  std::vector<std::string> right{"reference"};
  std::istringstream core_lines(core_state);
  std::istringstream reference_lines(reference_state);
  for (std::string line; std::getline(core_lines, line);)
    left.push_back(line);
  for (std::string line; std::getline(reference_lines, line);)
    right.push_back(line);
  std::size_t width = 0;
  for (const auto& line : left)
    width = std::max(width, line.size());
  for (std::size_t i = 0; i < std::max(left.size(), right.size()); ++i) {
    const std::string l = i < left.size() ? left[i] : "";
    const std::string r = i < right.size() ? right[i] : "";
    out << "  " << l << std::string(width - l.size(), ' ') << "  |  " << r << "\n";
  }
  return out.str();
}

}  // namespace memtrack::sim
