// RapidCheck generators for configs and operation sequences aimed at the boundaries.
#pragma once

#include <memtrack/gpu_config.hpp>

#include <rapidcheck.h>

#include <cstdint>
#include <iosfwd>
#include <vector>

namespace memtrack::proptest {

/// How a generated operation chooses its size, resolved against the state when it runs, so that
/// "exactly available" stays exact however the sequence shrinks.
enum class SizeChoice : std::uint8_t {
  Zero,
  One,
  ExactAvailable,
  AvailableMinusOne,
  AvailablePlusOne,
  Limit,
  LimitMinusOne,
  LimitPlusOne,
  Max,
  MaxMinusAllocated,
  WrappingSum,
  SmallRandom,
  LargeRandom,
  ShareOfAvailable,
  // Deallocation sizes:
  ExactAllocated,
  ShareOfAllocated,
  AllocatedPlusOne,
};

enum class OpChoice : std::uint8_t { Allocate, Deallocate, ResetPeakAll, ResetPeak };

/// An operation before it is resolved against the state.
struct AbstractOp {
  OpChoice op{OpChoice::Allocate};
  std::uint8_t device{0};  ///< modulo (devices + 2): cpu and GPUs, then auto, then an unknown GPU
  SizeChoice size{SizeChoice::Zero};
  std::uint64_t random{0};
};

void showValue(const AbstractOp& op, std::ostream& os);

/// A config: 0 to 8 GPUs with sparse ids, totals from a few bytes to near 2^64, fractions as
/// exact decimals and as doubles, optional caps, a random CPU limit; some must be rejected.
rc::Gen<GpuConfig> gen_config();

/// Sequences of 1 to 400 operations, mostly allocations and valid deallocations.
rc::Gen<std::vector<AbstractOp>> gen_operations();

}  // namespace memtrack::proptest
