// memtrack compare A B: two recordings side by side per device (what each needs, its peak, what
// is live at its end) and the allocation sizes one has more of than the other.
#pragma once

#include <memtrack/device_placement.hpp>
#include <memtrack/result.hpp>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

namespace memtrack::cli::compare {

/// One recording's figures on one device.
struct DeviceFigures {
  DevicePlacement device;        ///< as the recording names it
  std::uint64_t needed{0};       ///< its peak had nothing been refused (as `memtrack fit` says)
  std::uint64_t peak{0};         ///< the replayed peak under the recording's own budgets
  std::uint64_t final_bytes{0};  ///< allocated after its last event
  std::uint64_t allocations{0};  ///< allocations made (`alloc` events that succeeded)
};

/// Where an allocation was made: the innermost frame of the user's own code (as `fit` names a
/// refusal), else the innermost frame, where the recording has frames.
struct FrameText {
  std::string file;
  std::uint64_t line{0};
  std::string name;
  /// @return `file:line in name`
  [[nodiscard]] std::string to_string() const;
};

/// One allocation size whose count differs between the recordings.
struct SizeDifference {
  std::uint64_t bytes{0};  ///< the allocation size
  std::uint64_t count_a{0};
  std::uint64_t count_b{0};
  /// |count_b - count_a| x bytes, saturating at 2^64 - 1
  std::uint64_t difference_bytes{0};
  /// Where this size's first allocation was made, in the recording that has more of it.
  std::optional<FrameText> frame;
  [[nodiscard]] bool grew() const { return count_b > count_a; }
};

/// One device of A beside its counterpart in B (either may be absent: `nullopt`).
struct DeviceComparison {
  std::optional<DeviceFigures> a;
  std::optional<DeviceFigures> b;
  std::vector<SizeDifference> sizes;  ///< largest difference first, at most `max_sizes`
  std::uint64_t sizes_differing{0};   ///< how many sizes differ in all
  /// @return `gpu:0`, or `gpu:1/gpu:0` when the recordings name the device differently
  [[nodiscard]] std::string label() const;
};

/// What a recording is, for the heading.
struct RecordingInfo {
  std::string file;
  std::string source;
  std::string budgets;
  std::uint64_t events{0};
  std::uint64_t inconsistencies{0};  ///< frees it got wrong (not applied)
};

struct Comparison {
  RecordingInfo a;
  RecordingInfo b;
  /// `A gpu:1 with B gpu:0` per GPU pair whose ids differ (empty: the same ids)
  std::vector<std::string> pairing;
  std::vector<DeviceComparison> devices;  ///< GPU pairs ascending, then the CPU
};

struct CompareOptions {
  std::string file_a;
  std::string file_b;
  std::size_t max_sizes{20};  ///< differing sizes listed per device
};

/**
 * @brief Replays both recordings on their own budgets and compares them per device: the GPUs
 * each uses, ascending, paired with each other; the CPU with the CPU.
 * @return the comparison, or the error of a recording that cannot be read or replayed
 */
[[nodiscard]] Result<Comparison> compare_recordings(const CompareOptions& options);

/// `+1024`, `-512` or `0`: b - a in bytes, exactly (no 64-bit wrap).
[[nodiscard]] std::string signed_difference(std::uint64_t a, std::uint64_t b);

/// The text `memtrack compare` prints.
void print_comparison(std::ostream& out, const Comparison& comparison);

/// The JSON `memtrack compare --json` prints (bytes as exact JSON numbers).
[[nodiscard]] nlohmann::ordered_json comparison_json(const Comparison& comparison);

}  // namespace memtrack::cli::compare
