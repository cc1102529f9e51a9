#include "driver.hpp"

#include <memtrack/sim/reference_tracker.hpp>

#include <algorithm>

namespace memtrack::proptest {
namespace {

using sim::BigInt;
using sim::Operation;

std::uint64_t clamp_to_u64(const BigInt& value) {
  if (value < 0) return 0;
  if (value > sim::max_u64()) return max_bytes;
  return sim::to_u64(value);
}

// The device an abstract choice names: cpu and GPUs, then auto, then an unknown GPU.
DevicePlacement pick_device(const sim::ReferenceTracker& model, std::uint8_t choice,
                            std::optional<std::uint32_t> unknown_gpu) {
  const std::size_t concrete = model.accounts().size();
  const std::size_t index = choice % (concrete + 2);
  if (index < concrete) {
    auto it = model.accounts().begin();
    std::advance(it, static_cast<std::ptrdiff_t>(index));
    return it->first;
  }
  if (index == concrete || !unknown_gpu) return Auto{};
  return Gpu{*unknown_gpu};
}

std::uint64_t pick_size(const sim::ReferenceTracker& model, DevicePlacement device,
                        const AbstractOp& op) {
  const BigInt available = model.available(device);
  const BigInt allocated = model.allocated(device);
  const BigInt limit = device.is_auto() ? available : model.limit(device);
  const BigInt random = op.random;
  switch (op.size) {
    case SizeChoice::Zero:
      return 0;
    case SizeChoice::One:
      return 1;
    case SizeChoice::ExactAvailable:
      return clamp_to_u64(available);
    case SizeChoice::AvailableMinusOne:
      return clamp_to_u64(available - 1);
    case SizeChoice::AvailablePlusOne:
      return clamp_to_u64(available + 1);
    case SizeChoice::Limit:
      return clamp_to_u64(limit);
    case SizeChoice::LimitMinusOne:
      return clamp_to_u64(limit - 1);
    case SizeChoice::LimitPlusOne:
      return clamp_to_u64(limit + 1);
    case SizeChoice::Max:
      return max_bytes;
    case SizeChoice::MaxMinusAllocated:
      return clamp_to_u64(sim::max_u64() - allocated);
    // allocated + n lands just past 2^64: wraps to a small number in 64-bit arithmetic.
    case SizeChoice::WrappingSum:
      return clamp_to_u64(sim::max_u64() + 1 - allocated + random % 8);
    case SizeChoice::SmallRandom:
      return op.random % 4096;
    case SizeChoice::LargeRandom:
      return op.random;
    case SizeChoice::ShareOfAvailable:
      return clamp_to_u64(random % (available + 1));
    case SizeChoice::ExactAllocated:
      return clamp_to_u64(allocated);
    case SizeChoice::ShareOfAllocated:
      return clamp_to_u64(random % (allocated + 1));
    case SizeChoice::AllocatedPlusOne:
      return clamp_to_u64(allocated + 1);
  }
  return 0;
}

bool some_peak_above_allocated(const sim::ReferenceTracker& model,
                               std::optional<DevicePlacement> only) {
  for (const auto& [device, account] : model.accounts()) {
    if (only && device != *only) continue;
    if (account.peak > account.allocated) return true;
  }
  return false;
}

}  // namespace

std::string_view to_string(Covered covered) {
  switch (covered) {
    case Covered::ExactFitAllocation:
      return "exact-fit allocation";
    case Covered::OneOverRefusal:
      return "one-over refusal";
    case Covered::AutoFallbackToCpu:
      return "auto falling back to the CPU";
    case Covered::AutoRefusal:
      return "auto refusal";
    case Covered::OverDeallocation:
      return "over-deallocation";
    case Covered::RequestNearTwoToThe64:
      return "request near 2^64";
    case Covered::ResetPeakAfterFree:
      return "reset_peak after memory was freed";
    case Covered::RejectedConfig:
      return "rejected config";
    case Covered::Count_:
      break;
  }
  return "?";
}

RunResult run_abstract(const GpuConfig& config, const std::vector<AbstractOp>& operations,
                       Coverage& coverage) {
  RunResult result;
  result.scenario.config = config;
  ++coverage.scenarios;
  coverage.longest_sequence = std::max<std::uint64_t>(coverage.longest_sequence, operations.size());
  auto start = sim::LockstepChecker<>::create(config);
  if (start.divergence) {
    result.divergence = std::move(start.divergence);
    return result;
  }
  if (!start.checker) {
    coverage.add(Covered::RejectedConfig);
    return result;
  }
  auto& checker = *start.checker;
  const auto unknown_gpu = sim::unconfigured_gpu_id(config);
  const bool has_gpus = !config.gpus.empty();
  for (const AbstractOp& abstract : operations) {
    const sim::ReferenceTracker& model = checker.reference();
    const DevicePlacement device = pick_device(model, abstract.device, unknown_gpu);
    Operation operation;
    switch (abstract.op) {
      case OpChoice::Allocate:
        operation = Operation::allocate(device, pick_size(model, device, abstract));
        break;
      case OpChoice::Deallocate:
        operation = Operation::deallocate(device, pick_size(model, device, abstract));
        break;
      case OpChoice::ResetPeakAll:
        operation = Operation::reset_peak_all();
        break;
      case OpChoice::ResetPeak:
        operation = Operation::reset_peak(device);
        break;
    }
    // Classify against the state before the operation.
    const BigInt available_before = model.available(device);
    const bool peak_above = operation.kind == Operation::Kind::ResetPeakAll
                                ? some_peak_above_allocated(model, std::nullopt)
                                : some_peak_above_allocated(model, device);
    result.scenario.operations.push_back(operation);
    ++coverage.operations_checked;
    if (auto divergence = checker.apply(operation)) {
      result.divergence = std::move(divergence);
      return result;
    }
    const sim::ReferenceOutcome& outcome = checker.last_reference_outcome();
    if (operation.kind == Operation::Kind::Allocate) {
      if (outcome.ok && operation.bytes > 0 && available_before == operation.bytes &&
          !device.is_auto()) {
        coverage.add(Covered::ExactFitAllocation);
      }
      if (!outcome.ok && outcome.error_kind == ErrorKind::OutOfMemory &&
          available_before + 1 == operation.bytes) {
        coverage.add(Covered::OneOverRefusal);
      }
      if (device.is_auto() && outcome.ok && has_gpus &&
          outcome.resolved == DevicePlacement{Cpu{}}) {
        coverage.add(Covered::AutoFallbackToCpu);
      }
      if (device.is_auto() && !outcome.ok) coverage.add(Covered::AutoRefusal);
      if (operation.bytes >= (std::uint64_t{1} << 63U))
        coverage.add(Covered::RequestNearTwoToThe64);
    }
    if (operation.kind == Operation::Kind::Deallocate && !outcome.ok &&
        outcome.error_kind == ErrorKind::InvalidDeallocation) {
      coverage.add(Covered::OverDeallocation);
    }
    if ((operation.kind == Operation::Kind::ResetPeakAll ||
         (operation.kind == Operation::Kind::ResetPeak && outcome.ok)) &&
        peak_above) {
      coverage.add(Covered::ResetPeakAfterFree);
    }
  }
  return result;
}

}  // namespace memtrack::proptest
