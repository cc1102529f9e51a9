// The reference model. Each function is the rule of docs/semantics.md it names, nothing more.
#include <memtrack/sim/reference_tracker.hpp>

#include <boost/multiprecision/cpp_int.hpp>

#include <set>
#include <sstream>
#include <utility>

namespace memtrack::sim {
namespace {

using Rational = boost::multiprecision::cpp_rational;

ReferenceOutcome success(std::optional<DevicePlacement> resolved = std::nullopt) {
  ReferenceOutcome outcome;
  outcome.ok = true;
  outcome.resolved = resolved;
  return outcome;
}

ReferenceOutcome failure(ErrorKind kind, std::optional<DevicePlacement> device) {
  ReferenceOutcome outcome;
  outcome.ok = false;
  outcome.error_kind = kind;
  outcome.device = device;
  return outcome;
}

/// @return the account of a configured concrete device, or null (an unknown GPU, or `Auto`)
template <class Accounts>
auto* account_of(Accounts& accounts, DevicePlacement placement) {
  const auto found = placement.is_auto() ? accounts.end() : accounts.find(placement);
  return found == accounts.end() ? nullptr : &found->second;
}

BigInt floor_of(const Rational& value) {
  // For a non-negative rational, integer division of numerator by denominator is the floor.
  return boost::multiprecision::numerator(value) / boost::multiprecision::denominator(value);
}

}  // namespace

const BigInt& max_u64() {
  static const BigInt value = (BigInt(1) << 64) - 1;
  return value;
}

std::uint64_t to_u64(const BigInt& value) {
  return value.convert_to<std::uint64_t>();
}

std::string ReferenceOutcome::to_string() const {
  std::ostringstream out;
  if (ok) {
    out << "ok";
    if (resolved) out << " -> " << resolved->to_string();
    return out.str();
  }
  out << memtrack::to_string(error_kind);
  if (device) out << " on " << device->to_string();
  out << " (requested " << requested << ", available " << available << ", limit " << limit
      << ", allocated " << allocated << ")";
  return out.str();
}

std::optional<ReferenceTracker> ReferenceTracker::create(const GpuConfig& config,
                                                         ReferenceOutcome* rejection) {
  const Rational default_fraction(BigInt(config.memory_fraction.numerator()),
                                  BigInt(config.memory_fraction.denominator()));
  ReferenceTracker model;
  std::set<std::uint32_t> seen;
  BigInt limit_sum = config.cpu_memory_limit;
  // Rule 2, checked GPU by GPU in the order given; the first GPU that breaks it is named.
  for (const GpuSpec& gpu : config.gpus) {
    const DevicePlacement device = Gpu{gpu.id};
    const auto reject = [&]() -> std::optional<ReferenceTracker> {
      if (rejection != nullptr) *rejection = failure(ErrorKind::InvalidConfig, device);
      return std::nullopt;
    };
    if (seen.count(gpu.id) != 0) return reject();
    seen.insert(gpu.id);
    if (gpu.total_bytes == 0) return reject();
    Rational fraction = default_fraction;
    if (gpu.memory_fraction) {
      fraction = Rational(BigInt(gpu.memory_fraction->numerator()),
                          BigInt(gpu.memory_fraction->denominator()));
    }
    if (fraction <= 0 || fraction > 1) return reject();
    // Rule 1.
    BigInt limit = floor_of(Rational(BigInt(gpu.total_bytes)) * fraction);
    if (gpu.usable_bytes && BigInt(*gpu.usable_bytes) < limit) limit = *gpu.usable_bytes;
    limit_sum += limit;
    if (limit_sum > max_u64()) return reject();
    model.accounts_[device] = ReferenceAccount{limit, 0, 0, 0};
  }
  model.accounts_[Cpu{}] = ReferenceAccount{config.cpu_memory_limit, 0, 0, 0};
  return model;
}

bool ReferenceTracker::knows(DevicePlacement placement) const {
  return account_of(accounts_, placement) != nullptr;
}

BigInt ReferenceTracker::available(DevicePlacement placement) const {
  if (placement.is_auto()) {
    BigInt largest = 0;
    for (const auto& [device, account] : accounts_) {
      BigInt room = account.limit - account.allocated;
      if (room > largest) largest = std::move(room);
    }
    return largest;
  }
  const ReferenceAccount* account = account_of(accounts_, placement);
  if (account == nullptr) return 0;
  return account->limit - account->allocated;
}

BigInt ReferenceTracker::allocated(DevicePlacement placement) const {
  if (placement.is_auto()) {
    BigInt sum = 0;
    for (const auto& [device, account] : accounts_)
      sum += account.allocated;
    return sum;
  }
  const ReferenceAccount* account = account_of(accounts_, placement);
  return account != nullptr ? account->allocated : BigInt(0);
}

BigInt ReferenceTracker::peak(DevicePlacement placement) const {
  if (placement.is_auto()) return total_peak_;
  const ReferenceAccount* account = account_of(accounts_, placement);
  return account != nullptr ? account->peak : BigInt(0);
}

BigInt ReferenceTracker::limit(DevicePlacement placement) const {
  if (placement.is_auto()) {
    BigInt sum = 0;
    for (const auto& [device, account] : accounts_)
      sum += account.limit;
    return sum;
  }
  const ReferenceAccount* account = account_of(accounts_, placement);
  return account != nullptr ? account->limit : BigInt(0);
}

BigInt ReferenceTracker::count(DevicePlacement placement) const {
  const ReferenceAccount* account = account_of(accounts_, placement);
  return account != nullptr ? account->count : BigInt(0);
}

bool ReferenceTracker::can_allocate(DevicePlacement placement, const BigInt& bytes) const {
  if (placement.is_gpu() && !knows(placement)) return false;  // Rule 3.
  return bytes <= available(placement);                       // Rule 7.
}

ReferenceOutcome ReferenceTracker::allocate(DevicePlacement placement, const BigInt& bytes) {
  // Rule 4: choose the device.
  std::optional<DevicePlacement> chosen;
  if (placement.is_auto()) {
    for (const auto& [device, account] : accounts_) {
      if (device.is_gpu() && bytes <= account.limit - account.allocated) {
        chosen = device;  // accounts_ is ordered by id: the first match is the lowest id.
        break;
      }
    }
    if (!chosen && bytes <= available(Cpu{})) chosen = Cpu{};
    if (!chosen) {
      ReferenceOutcome outcome = failure(ErrorKind::OutOfMemory, Auto{});
      outcome.requested = bytes;
      outcome.available = available(Auto{});
      return outcome;
    }
  } else {
    if (!knows(placement)) return failure(ErrorKind::UnknownDevice, placement);
    if (bytes > available(placement)) {
      ReferenceOutcome outcome = failure(ErrorKind::OutOfMemory, placement);
      outcome.requested = bytes;
      outcome.available = available(placement);
      outcome.limit = limit(placement);
      return outcome;
    }
    chosen = placement;
  }
  // Rule 4: record it.
  ReferenceAccount& account = accounts_.at(*chosen);
  account.allocated += bytes;
  if (account.allocated > account.peak) account.peak = account.allocated;
  if (account.count < max_u64()) account.count += 1;
  const BigInt sum = allocated(Auto{});
  if (sum > total_peak_) total_peak_ = sum;
  return success(chosen);
}

ReferenceOutcome ReferenceTracker::deallocate(DevicePlacement placement, const BigInt& bytes) {
  // Rule 5.
  if (placement.is_auto()) return failure(ErrorKind::AmbiguousDevice, Auto{});
  if (!knows(placement)) return failure(ErrorKind::UnknownDevice, placement);
  ReferenceAccount& account = accounts_.at(placement);
  if (bytes > account.allocated) {
    ReferenceOutcome outcome = failure(ErrorKind::InvalidDeallocation, placement);
    outcome.requested = bytes;
    outcome.allocated = account.allocated;
    return outcome;
  }
  account.allocated -= bytes;
  if (account.count > 0) account.count -= 1;
  return success();
}

void ReferenceTracker::reset_peak() {
  // Rule 8.
  for (auto& [device, account] : accounts_)
    account.peak = account.allocated;
  total_peak_ = allocated(Auto{});
}

ReferenceOutcome ReferenceTracker::reset_peak(DevicePlacement placement) {
  if (placement.is_auto()) return failure(ErrorKind::AmbiguousDevice, Auto{});
  if (!knows(placement)) return failure(ErrorKind::UnknownDevice, placement);
  ReferenceAccount& account = accounts_.at(placement);
  account.peak = account.allocated;
  return success();
}

}  // namespace memtrack::sim
