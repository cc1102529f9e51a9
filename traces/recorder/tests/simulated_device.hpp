// A device for `memtrack probe`'s tests: what its cudaMemGetInfo would show, without a GPU.
#pragma once

#include <memtrack/recorder/probe.hpp>
#include <memtrack/units.hpp>

#include <map>

namespace memtrack::recorder::testing {

/// A device whose cudaMalloc rounds to `granularity`, packs small requests into one chunk of it,
/// and whose contexts cost `context_bytes`.
class SimulatedDevice final : public ProbeBackend {
 public:
  std::uint64_t total{80_GiB};
  std::uint64_t used_by_others{3_GiB};
  std::uint64_t context_bytes{530_MiB};
  std::uint64_t granularity{2_MiB};
  std::uint64_t noise_every{0};  ///< every Nth mem_info, another process took 4 KiB more
  bool ignore_allocations{false};

  Result<VersionInfo> versions() override { return VersionInfo{13000, 13000, "580.65.06"}; }
  Result<std::uint32_t> device_count() override { return 2U; }
  Result<DeviceIdentity> identify(std::uint32_t device) override {
    if (device >= 2) return Error::parse_error("no such device");
    return DeviceIdentity{device, "NVIDIA H100 80GB HBM3", "GPU-0123", 9, 0, total};
  }
  Result<void> use(std::uint32_t /*device*/) override {
    if (!primary_) used_ += context_bytes;
    primary_ = true;
    return {};
  }
  Result<MemInfo> mem_info() override {
    ++reads_;
    if (noise_every != 0 && reads_ % noise_every == 0) used_ += 4_KiB;
    return MemInfo{total - used_by_others - used_, total};
  }
  Result<void> create_context() override {
    used_ += context_bytes;
    return {};
  }
  Result<void> destroy_context() override {
    used_ -= context_bytes;
    return {};
  }
  Result<std::uint64_t> allocate(std::uint64_t bytes) override {
    std::uint64_t cost = 0;
    if (!ignore_allocations) {
      if (bytes < granularity / 2) {
        cost = small_chunk_ ? 0 : granularity;  // small requests share a chunk
        small_chunk_ = true;
      } else {
        cost = (bytes + granularity - 1) / granularity * granularity;
      }
    }
    used_ += cost;
    live_[++next_] = cost;
    return next_;
  }
  Result<void> release(std::uint64_t handle) override {
    used_ -= live_.at(handle);
    live_.erase(handle);
    return {};
  }
  std::optional<std::uint64_t> vmm_granularity() override { return granularity; }

 private:
  std::uint64_t used_{0};
  bool primary_{false};
  bool small_chunk_{false};
  std::uint64_t reads_{0};
  std::uint64_t next_{0};
  std::map<std::uint64_t, std::uint64_t> live_;
};

}  // namespace memtrack::recorder::testing
