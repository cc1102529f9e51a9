// The real ProbeBackend: the CUDA runtime (linked statically, so this binary starts on machines
// without a driver and reports that instead), and driver calls through cudaGetDriverEntryPoint.
#include <memtrack/recorder/probe.hpp>
#include <memtrack/recorder/recording.hpp>

#include <cuda.h>
#include <cuda_runtime_api.h>

#include <fstream>
#include <string>

namespace memtrack::recorder {
namespace {

Error cuda_failure(const char* call, cudaError_t status) {
  return Error::parse_error(std::string(call) + ": " + cudaGetErrorName(status) + " (" +
                            cudaGetErrorString(status) + ")");
}

Error driver_failure(const char* call, CUresult status) {
  return Error::parse_error(std::string(call) + " failed with CUresult " +
                            std::to_string(static_cast<int>(status)));
}

/// The driver calls the runtime does not offer, looked up once.
struct DriverCalls {
  decltype(&::cuCtxCreate_v4) ctx_create{nullptr};
  decltype(&::cuCtxDestroy_v2) ctx_destroy{nullptr};
  decltype(&::cuCtxPushCurrent_v2) ctx_push{nullptr};
  decltype(&::cuCtxPopCurrent_v2) ctx_pop{nullptr};
  decltype(&::cuMemGetAllocationGranularity) granularity{nullptr};
};

template <class F>
Result<void> lookup(const char* symbol, F& function) {
  void* address = nullptr;
  cudaDriverEntryPointQueryResult found{};
  const cudaError_t status =
      cudaGetDriverEntryPointByVersion(symbol, &address, CUDA_VERSION, cudaEnableDefault, &found);
  if (status != cudaSuccess) return cuda_failure("cudaGetDriverEntryPointByVersion", status);
  if (found != cudaDriverEntryPointSuccess || address == nullptr) {
    return Error::parse_error(std::string("the CUDA driver has no ") + symbol);
  }
  function = reinterpret_cast<F>(address);
  return {};
}

std::string driver_release() {
  std::ifstream file("/proc/driver/nvidia/version");
  std::string line;
  if (!std::getline(file, line)) return {};
  // "NVRM version: NVIDIA UNIX x86_64 Kernel Module  580.65.06  Sun Jul 27 ..."
  const std::size_t module = line.find("Kernel Module");
  if (module == std::string::npos) return {};
  std::size_t start = line.find_first_not_of(' ', module + 13);
  if (start == std::string::npos) return {};
  const std::size_t end = line.find(' ', start);
  return line.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

class CudaProbeBackend final : public ProbeBackend {
 public:
  Result<VersionInfo> versions() override {
    VersionInfo info;
    if (auto s = cudaDriverGetVersion(&info.driver_cuda); s != cudaSuccess) {
      return cuda_failure("cudaDriverGetVersion", s);
    }
    if (auto s = cudaRuntimeGetVersion(&info.runtime); s != cudaSuccess) {
      return cuda_failure("cudaRuntimeGetVersion", s);
    }
    info.driver_release = driver_release();
    return info;
  }

  Result<std::uint32_t> device_count() override {
    int count = 0;
    if (auto s = cudaGetDeviceCount(&count); s != cudaSuccess) {
      return cuda_failure("cudaGetDeviceCount", s);
    }
    return static_cast<std::uint32_t>(count);
  }

  Result<DeviceIdentity> identify(std::uint32_t device) override {
    cudaDeviceProp properties{};
    if (auto s = cudaGetDeviceProperties(&properties, static_cast<int>(device)); s != cudaSuccess) {
      return cuda_failure("cudaGetDeviceProperties", s);
    }
    DeviceIdentity identity;
    identity.index = device;
    identity.name = properties.name;
    identity.cc_major = properties.major;
    identity.cc_minor = properties.minor;
    identity.total_global_mem = properties.totalGlobalMem;
    identity.uuid = gpu_uuid_text(properties.uuid.bytes);
    return identity;
  }

  Result<void> use(std::uint32_t device) override {
    if (auto s = cudaSetDevice(static_cast<int>(device)); s != cudaSuccess) {
      return cuda_failure("cudaSetDevice", s);
    }
    if (auto s = cudaFree(nullptr); s != cudaSuccess) return cuda_failure("cudaFree(0)", s);
    device_ = static_cast<int>(device);
    if (!driver_ready_) {
      for (auto found :
           {lookup("cuCtxCreate", driver_.ctx_create), lookup("cuCtxDestroy", driver_.ctx_destroy),
            lookup("cuCtxPushCurrent", driver_.ctx_push),
            lookup("cuCtxPopCurrent", driver_.ctx_pop)}) {
        if (!found) return found.error();
      }
      (void)lookup("cuMemGetAllocationGranularity", driver_.granularity);
      driver_ready_ = true;
    }
    return {};
  }

  Result<MemInfo> mem_info() override {
    std::size_t free = 0;
    std::size_t total = 0;
    if (auto s = cudaMemGetInfo(&free, &total); s != cudaSuccess) {
      return cuda_failure("cudaMemGetInfo", s);
    }
    return MemInfo{free, total};
  }

  Result<void> create_context() override {
    CUcontext context = nullptr;
    if (auto s = driver_.ctx_create(&context, nullptr, 0, device_); s != CUDA_SUCCESS) {
      return driver_failure("cuCtxCreate", s);
    }
    // cuCtxCreate makes it current; cudaMemGetInfo then reads through it, as it should
    extra_ = context;
    return {};
  }

  Result<void> destroy_context() override {
    if (extra_ == nullptr) return {};
    CUcontext popped = nullptr;
    (void)driver_.ctx_pop(&popped);
    const CUresult s = driver_.ctx_destroy(extra_);
    extra_ = nullptr;
    if (s != CUDA_SUCCESS) return driver_failure("cuCtxDestroy", s);
    if (auto back = cudaSetDevice(device_); back != cudaSuccess) {
      return cuda_failure("cudaSetDevice", back);
    }
    return {};
  }

  Result<std::uint64_t> allocate(std::uint64_t bytes) override {
    void* pointer = nullptr;
    if (auto s = cudaMalloc(&pointer, bytes); s != cudaSuccess)
      return cuda_failure("cudaMalloc", s);
    if (auto s = cudaDeviceSynchronize(); s != cudaSuccess) {
      return cuda_failure("cudaDeviceSynchronize", s);
    }
    return reinterpret_cast<std::uint64_t>(pointer);
  }

  Result<void> release(std::uint64_t handle) override {
    if (auto s = cudaFree(reinterpret_cast<void*>(handle)); s != cudaSuccess) {
      return cuda_failure("cudaFree", s);
    }
    if (auto s = cudaDeviceSynchronize(); s != cudaSuccess) {
      return cuda_failure("cudaDeviceSynchronize", s);
    }
    return {};
  }

  std::optional<std::uint64_t> vmm_granularity() override {
    if (driver_.granularity == nullptr) return std::nullopt;
    CUmemAllocationProp prop{};
    prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
    prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    prop.location.id = device_;
    std::size_t granularity = 0;
    if (driver_.granularity(&granularity, &prop, CU_MEM_ALLOC_GRANULARITY_MINIMUM) !=
        CUDA_SUCCESS) {
      return std::nullopt;
    }
    return granularity;
  }

 private:
  DriverCalls driver_;
  bool driver_ready_{false};
  int device_{0};
  CUcontext extra_{nullptr};
};

}  // namespace

Result<std::unique_ptr<ProbeBackend>> make_cuda_probe_backend() {
  return std::unique_ptr<ProbeBackend>(std::make_unique<CudaProbeBackend>());
}

}  // namespace memtrack::recorder
