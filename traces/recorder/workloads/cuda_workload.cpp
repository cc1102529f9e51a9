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

  std::vector<Step> steps;
  std::uint64_t held = 0;
  std::uint64_t pinned = 0;
  std::uint64_t peak = 0;
  std::uint64_t allocations = 0;
  const auto record = [&](const std::string& name) {
    cudaDeviceSynchronize();
    Step step{name, held, pinned, 0, 0};
    cudaMemGetInfo(&step.free, &step.total);
    steps.push_back(step);
    if (held > peak) peak = held;
  };
  record("start");

  cudaStream_t streams[3];
  for (auto& stream : streams)
    cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking);

  // cudaMalloc, odd sizes on purpose
  const std::uint64_t sizes[] = {1 << 20, (10 << 20) + 1, 100 << 20, 4096, (64 << 20) - 3};
  std::vector<void*> plain;
  for (const std::uint64_t size : sizes) {
    void* p = nullptr;
    if (auto s = cudaMalloc(&p, size); s != cudaSuccess) return fail("cudaMalloc", s);
    plain.push_back(p);
    held += size;
    ++allocations;
  }
  record("cudaMalloc x5");

  // cudaMallocAsync on three streams, from the device's default pool
  std::vector<std::pair<void*, cudaStream_t>> pooled;
  for (int round = 0; round < 4; ++round) {
    for (int i = 0; i < 3; ++i) {
      const std::uint64_t size =
          (static_cast<std::uint64_t>(round + 1) << 20U) * static_cast<std::uint64_t>(i + 1) + 256;
      void* p = nullptr;
      if (auto s = cudaMallocAsync(&p, size, streams[i]); s != cudaSuccess) {
        return fail("cudaMallocAsync", s);
      }
      pooled.emplace_back(p, streams[i]);
      held += size;
      ++allocations;
    }
  }
  record("cudaMallocAsync x12 on 3 streams");

  // virtual memory: create, reserve, map, set access
  decltype(&::cuMemGetAllocationGranularity) granularity_of = nullptr;
  decltype(&::cuMemCreate) mem_create = nullptr;
  decltype(&::cuMemAddressReserve) reserve = nullptr;
  decltype(&::cuMemMap) map = nullptr;
  decltype(&::cuMemSetAccess) set_access = nullptr;
  decltype(&::cuMemUnmap) unmap = nullptr;
  decltype(&::cuMemAddressFree) address_free = nullptr;
  decltype(&::cuMemRelease) release = nullptr;
  const bool vmm = driver_call("cuMemGetAllocationGranularity", granularity_of) &&
                   driver_call("cuMemCreate", mem_create) &&
                   driver_call("cuMemAddressReserve", reserve) && driver_call("cuMemMap", map) &&
                   driver_call("cuMemSetAccess", set_access) && driver_call("cuMemUnmap", unmap) &&
                   driver_call("cuMemAddressFree", address_free) &&
                   driver_call("cuMemRelease", release);
  CUmemGenericAllocationHandle handle{};
  CUdeviceptr va = 0;
  std::size_t vmm_size = 0;
  if (vmm) {
    CUmemAllocationProp prop{};
    prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
    prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    prop.location.id = 0;
    std::size_t granularity = 0;
    granularity_of(&granularity, &prop, CU_MEM_ALLOC_GRANULARITY_MINIMUM);
    vmm_size = 8 * granularity;
    if (mem_create(&handle, vmm_size, &prop, 0) != CUDA_SUCCESS ||
        reserve(&va, vmm_size, 0, 0, 0) != CUDA_SUCCESS ||
        map(va, vmm_size, 0, handle, 0) != CUDA_SUCCESS) {
      std::fprintf(stderr, "memtrack_cuda_workload: virtual-memory allocation failed\n");
      return 1;
    }
    CUmemAccessDesc access{};
    access.location = prop.location;
    access.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
    set_access(va, vmm_size, &access, 1);
    held += vmm_size;
    ++allocations;
    record("cuMemCreate+cuMemMap");
    // released while still mapped: the memory goes at the unmap
    release(handle);
    record("cuMemRelease (still mapped)");
  }

  void* host = nullptr;
  if (auto s = cudaHostAlloc(&host, 8 << 20, cudaHostAllocDefault); s != cudaSuccess) {
    return fail("cudaHostAlloc", s);
  }
  pinned += 8 << 20;
  record("cudaHostAlloc 8 MiB");

  // frees: half the pooled ones on their streams, all the plain ones
  for (std::size_t i = 0; i < pooled.size(); i += 2) {
    cudaFreeAsync(pooled[i].first, pooled[i].second);
    const std::uint64_t round = i / 3;
    const std::uint64_t lane = i % 3;
    held -= ((round + 1) << 20) * (lane + 1) + 256;
  }
  record("cudaFreeAsync x6");
  for (std::size_t i = 0; i < plain.size(); ++i) {
    cudaFree(plain[i]);
    held -= sizes[i];
  }
  record("cudaFree x5");
  if (vmm) {
    unmap(va, vmm_size);
    address_free(va, vmm_size);
    held -= vmm_size;
    record("cuMemUnmap");
  }
  for (std::size_t i = 1; i < pooled.size(); i += 2) {
    cudaFreeAsync(pooled[i].first, pooled[i].second);
    const std::uint64_t round = i / 3;
    const std::uint64_t lane = i % 3;
    held -= ((round + 1) << 20) * (lane + 1) + 256;
  }
  cudaFreeHost(host);
  pinned = 0;
  for (auto& stream : streams)
    cudaStreamDestroy(stream);
  record("end");

  std::ofstream out(argv[1]);
  out << "{\n  \"workload\": \"cuda\",\n  \"allocations\": " << allocations
      << ",\n  \"peak_held_bytes\": " << peak << ",\n  \"vmm_bytes\": " << vmm_size
      << ",\n  \"steps\": [\n";
  for (std::size_t i = 0; i < steps.size(); ++i) {
    const Step& s = steps[i];
    out << "    {\"name\": \"" << s.name << "\", \"held_bytes\": " << s.device_held
        << ", \"pinned_bytes\": " << s.host_pinned << ", \"free\": " << s.free
        << ", \"total\": " << s.total << "}" << (i + 1 < steps.size() ? ",\n" : "\n");
  }
  out << "  ]\n}\n";
  return out ? 0 : 1;
}
