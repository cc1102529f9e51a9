// A native CUDA workload for traces/recorder/gpu-check.sh: three streams, cudaMalloc/cudaFree,
// cudaMallocAsync/cudaFreeAsync from the default pool, a virtual-memory allocation
// (cuMemCreate, cuMemMap, cuMemUnmap, cuMemRelease) and pinned host memory. It writes what it
// asked for and what cudaMemGetInfo said after each step as JSON, for comparison with the trace
// `memtrack record` makes of it.
//
//   memtrack_cuda_workload REPORT.json
//   memtrack_cuda_workload --teardown    64 MiB and 32 MiB left allocated at a cudaDeviceReset,
//                                        then a new context with 16 MiB allocated and freed
#include <cuda.h>
#include <cuda_runtime_api.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

namespace {

int fail(const char* what, cudaError_t status) {
  std::fprintf(stderr, "memtrack_cuda_workload: %s: %s\n", what, cudaGetErrorString(status));
  return 1;
}

template <class F>
bool driver_call(const char* symbol, F& function) {
  void* address = nullptr;
  cudaDriverEntryPointQueryResult found{};
  if (cudaGetDriverEntryPointByVersion(symbol, &address, CUDA_VERSION, cudaEnableDefault, &found) !=
          cudaSuccess ||
      found != cudaDriverEntryPointSuccess) {
    return false;
  }
  function = reinterpret_cast<F>(address);
  return true;
}

struct Step {
  std::string name;
  std::uint64_t device_held{0};  // bytes of device memory this program holds (as asked for)
  std::uint64_t host_pinned{0};
  std::size_t free{0};
  std::size_t total{0};
};

/// What a recording of a context teardown must show: the two allocations live at the reset freed
/// by it (tag=teardown), and everything the program allocated freed at the end.
int teardown() {
  if (auto s = cudaSetDevice(0); s != cudaSuccess) return fail("cudaSetDevice", s);
  void* first = nullptr;
  void* second = nullptr;
  if (auto s = cudaMalloc(&first, 64U << 20U); s != cudaSuccess) return fail("cudaMalloc", s);
  if (auto s = cudaMalloc(&second, 32U << 20U); s != cudaSuccess) return fail("cudaMalloc", s);
  if (auto s = cudaDeviceReset(); s != cudaSuccess) return fail("cudaDeviceReset", s);
  void* third = nullptr;  // a new primary context
  if (auto s = cudaMalloc(&third, 16U << 20U); s != cudaSuccess) return fail("cudaMalloc", s);
  if (auto s = cudaFree(third); s != cudaSuccess) return fail("cudaFree", s);
  return 0;
}

/// The workload's steps, each recording what it holds and what cudaMemGetInfo says after it.
class Workload {
 public:
  /// The three streams of the pooled allocations.
  int create_streams() {
    for (auto& stream : streams_)
      cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking);
    return 0;
  }

  /// cudaMalloc, odd sizes on purpose.
  int plain_allocations() {
    for (const std::uint64_t size : plain_sizes) {
      void* p = nullptr;
      if (auto s = cudaMalloc(&p, size); s != cudaSuccess) return fail("cudaMalloc", s);
      plain_.push_back(p);
      allocated(size);
    }
    record("cudaMalloc x5");
    return 0;
  }

  /// cudaMallocAsync on three streams, from the device's default pool.
  int pooled_allocations() {
    for (std::size_t round = 0; round < 4; ++round) {
      for (std::size_t lane = 0; lane < 3; ++lane) {
        void* p = nullptr;
        if (auto s = cudaMallocAsync(&p, pooled_size(round * 3 + lane), streams_[lane]);
            s != cudaSuccess) {
          return fail("cudaMallocAsync", s);
        }
        pooled_.emplace_back(p, streams_[lane]);
        allocated(pooled_size(round * 3 + lane));
      }
    }
    record("cudaMallocAsync x12 on 3 streams");
    return 0;
  }

  /// Virtual memory: create, reserve, map, set access; then released while still mapped (the
  /// memory goes at the unmap). Skipped where the driver lacks an entry point.
  int map_virtual_memory() {
    vmm_ = driver_call("cuMemGetAllocationGranularity", granularity_of_) &&
           driver_call("cuMemCreate", mem_create_) &&
           driver_call("cuMemAddressReserve", reserve_) && driver_call("cuMemMap", map_) &&
           driver_call("cuMemSetAccess", set_access_) && driver_call("cuMemUnmap", unmap_) &&
           driver_call("cuMemAddressFree", address_free_) && driver_call("cuMemRelease", release_);
    if (!vmm_) return 0;
    CUmemAllocationProp prop{};
    prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
    prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    prop.location.id = 0;
    std::size_t granularity = 0;
    granularity_of_(&granularity, &prop, CU_MEM_ALLOC_GRANULARITY_MINIMUM);
    vmm_size_ = 8 * granularity;
    CUmemGenericAllocationHandle handle{};
    if (mem_create_(&handle, vmm_size_, &prop, 0) != CUDA_SUCCESS ||
        reserve_(&va_, vmm_size_, 0, 0, 0) != CUDA_SUCCESS ||
        map_(va_, vmm_size_, 0, handle, 0) != CUDA_SUCCESS) {
      std::fprintf(stderr, "memtrack_cuda_workload: virtual-memory allocation failed\n");
      return 1;
    }
    CUmemAccessDesc access{};
    access.location = prop.location;
    access.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
    set_access_(va_, vmm_size_, &access, 1);
    allocated(vmm_size_);
    record("cuMemCreate+cuMemMap");
    release_(handle);
    record("cuMemRelease (still mapped)");
    return 0;
  }

  int pin_host_memory() {
    if (auto s = cudaHostAlloc(&host_, pinned_size, cudaHostAllocDefault); s != cudaSuccess) {
      return fail("cudaHostAlloc", s);
    }
    pinned_ += pinned_size;
    record("cudaHostAlloc 8 MiB");
    return 0;
  }

  /// Half the pooled allocations on their streams, all the plain ones, the virtual memory, the
  /// other pooled half, the pinned memory.
  void free_everything() {
    free_pooled(0);
    record("cudaFreeAsync x6");
    for (std::size_t i = 0; i < plain_.size(); ++i) {
      cudaFree(plain_[i]);
      held_ -= plain_sizes[i];
    }
    record("cudaFree x5");
    if (vmm_) {
      unmap_(va_, vmm_size_);
      address_free_(va_, vmm_size_);
      held_ -= vmm_size_;
      record("cuMemUnmap");
    }
    free_pooled(1);
    cudaFreeHost(host_);
    pinned_ = 0;
    for (auto& stream : streams_)
      cudaStreamDestroy(stream);
    record("end");
  }

  void record(const std::string& name) {
    cudaDeviceSynchronize();
    Step step{name, held_, pinned_, 0, 0};
    cudaMemGetInfo(&step.free, &step.total);
    steps_.push_back(step);
    if (held_ > peak_) peak_ = held_;
  }

  [[nodiscard]] bool write_report(const char* path) const {
    std::ofstream out(path);
    out << "{\n  \"workload\": \"cuda\",\n  \"allocations\": " << allocations_
        << ",\n  \"peak_held_bytes\": " << peak_ << ",\n  \"vmm_bytes\": " << vmm_size_
        << ",\n  \"steps\": [\n";
    for (std::size_t i = 0; i < steps_.size(); ++i) {
      const Step& s = steps_[i];
      out << "    {\"name\": \"" << s.name << "\", \"held_bytes\": " << s.device_held
          << ", \"pinned_bytes\": " << s.host_pinned << ", \"free\": " << s.free
          << ", \"total\": " << s.total << "}" << (i + 1 < steps_.size() ? ",\n" : "\n");
    }
    out << "  ]\n}\n";
    return static_cast<bool>(out);
  }

 private:
  static constexpr std::uint64_t plain_sizes[] = {1 << 20, (10 << 20) + 1, 100 << 20, 4096,
                                                  (64 << 20) - 3};
  static constexpr std::uint64_t pinned_size = 8 << 20;

  /// The i-th pooled allocation's size: round i / 3 on stream i % 3.
  static std::uint64_t pooled_size(std::size_t i) {
    const std::uint64_t round = i / 3;
    const std::uint64_t lane = i % 3;
    return ((round + 1) << 20) * (lane + 1) + 256;
  }

  /// Frees every other pooled allocation, from `first`, on its own stream.
  void free_pooled(std::size_t first) {
    for (std::size_t i = first; i < pooled_.size(); i += 2) {
      cudaFreeAsync(pooled_[i].first, pooled_[i].second);
      held_ -= pooled_size(i);
    }
  }

  void allocated(std::uint64_t bytes) {
    held_ += bytes;
    ++allocations_;
  }

  std::vector<Step> steps_;
  std::uint64_t held_{0};
  std::uint64_t pinned_{0};
  std::uint64_t peak_{0};
  std::uint64_t allocations_{0};
  cudaStream_t streams_[3]{};
  std::vector<void*> plain_;
  std::vector<std::pair<void*, cudaStream_t>> pooled_;
  void* host_{nullptr};
  bool vmm_{false};
  decltype(&::cuMemGetAllocationGranularity) granularity_of_{nullptr};
  decltype(&::cuMemCreate) mem_create_{nullptr};
  decltype(&::cuMemAddressReserve) reserve_{nullptr};
  decltype(&::cuMemMap) map_{nullptr};
  decltype(&::cuMemSetAccess) set_access_{nullptr};
  decltype(&::cuMemUnmap) unmap_{nullptr};
  decltype(&::cuMemAddressFree) address_free_{nullptr};
  decltype(&::cuMemRelease) release_{nullptr};
  CUdeviceptr va_{0};
  std::size_t vmm_size_{0};
};

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && std::string(argv[1]) == "--teardown") return teardown();
  if (argc != 2) {
    std::fprintf(stderr, "usage: memtrack_cuda_workload REPORT.json | --teardown\n");
    return 2;
  }
  int count = 0;
  if (auto s = cudaGetDeviceCount(&count); s != cudaSuccess || count == 0) {
    return fail("no CUDA device", s);
  }
  if (auto s = cudaSetDevice(0); s != cudaSuccess) return fail("cudaSetDevice", s);
  if (auto s = cudaFree(nullptr); s != cudaSuccess) return fail("cudaFree(0)", s);

  Workload workload;
  workload.record("start");
  for (int (Workload::*step)() :
       {&Workload::create_streams, &Workload::plain_allocations, &Workload::pooled_allocations,
        &Workload::map_virtual_memory, &Workload::pin_host_memory}) {
    if (const int failed = (workload.*step)(); failed != 0) return failed;
  }
  workload.free_everything();
  return workload.write_report(argv[1]) ? 0 : 1;
}
