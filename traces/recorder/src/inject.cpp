// libmemtrack_inject.so: a CUPTI injection library. The CUDA driver loads it when
// CUDA_INJECTION64_PATH names it and calls InitializeInjection once, during cuInit. It records
// every device allocation and free of the process (activity records MEMORY2 and MEMORY_POOL, and
// the virtual-memory driver calls through callbacks) and writes the canonical trace at exit, on
// SIGINT/SIGTERM and at checkpoints, atomically (process_hooks.cpp holds the process: signals,
// forks, exit). `memtrack record` sets it up; docs/recorder.md explains it.
//
// Nothing here is exported but InitializeInjection (a version script hides the rest), so the
// program's own copies of the libraries memtrack uses do not meet ours.
#include <memtrack/recorder/cupti_convert.hpp>
#include <memtrack/recorder/process_hooks.hpp>
#include <memtrack/recorder/recording.hpp>
#include <memtrack/traces/writer.hpp>

#include <cuda.h>
#include <cupti.h>
#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <optional>
#include <string>

namespace memtrack::recorder {
namespace {

constexpr std::size_t buffer_bytes = 8U << 20U;
constexpr std::size_t buffer_alignment = 8;

/// The driver calls the device table needs, from the libcuda.so.1 already loaded.
struct Driver {
  decltype(&::cuCtxPushCurrent_v2) ctx_push{nullptr};
  decltype(&::cuCtxPopCurrent_v2) ctx_pop{nullptr};
  decltype(&::cuCtxGetDevice) ctx_get_device{nullptr};
  decltype(&::cuMemGetInfo_v2) mem_get_info{nullptr};
  decltype(&::cuDeviceGetName) device_name{nullptr};
  decltype(&::cuDeviceTotalMem_v2) device_total{nullptr};
  decltype(&::cuDeviceGetAttribute) device_attribute{nullptr};
  decltype(&::cuDeviceGetUuid_v2) device_uuid{nullptr};
  decltype(&::cuDriverGetVersion) driver_version{nullptr};
};

struct State {
  std::mutex mutex;  // the converter; never held while calling CUPTI (its own locks: no ABBA)
  CuptiConverter converter;
  std::string root_output;  // MEMTRACK_RECORD_OUTPUT: the recorded command's trace
  std::string output;       // this process's: root_output, or its .pidN
  std::string status;
  std::string source;
  Driver driver;
  CUpti_SubscriberHandle subscriber{};
  std::atomic<bool> recording{false};
  std::mutex write_mutex;         // one writer at a time (exit, a signal and a checkpoint may race)
  std::size_t written_events{0};  // what the last write held (a checkpoint skips when unchanged)
  bool forked{false};  // a forked child: CUPTI has no worker thread here, nothing to flush
};

State& state() {
  static State* instance = new State;  // never destroyed: used from atexit and signal threads
  return *instance;
}

void write_status(const RecordingStatus& status) {
  const std::string& path = state().status;
  if (path.empty()) return;
  std::ofstream(path, std::ios::trunc) << format_status(status);
}

/// The one line the user sees, and the status `memtrack record` reads.
void fail(const std::string& why) {
  std::fprintf(stderr, "memtrack: not recording: %s\n", why.c_str());
  write_status(RecordingStatus{false, 0, 0, why});
}

std::string cupti_error(const char* call, CUptiResult result) {
  const char* text = nullptr;
  cuptiGetResultString(result, &text);
  return std::string(call) + ": " + (text != nullptr ? text : "unknown CUPTI error");
}

template <class F>
bool resolve(void* library, const char* name, F& function) {
  function = reinterpret_cast<F>(dlsym(library, name));
  return function != nullptr;
}

bool load_driver(Driver& driver) {
  void* library = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
  if (library == nullptr) return false;
  return resolve(library, "cuCtxPushCurrent_v2", driver.ctx_push) &&
         resolve(library, "cuCtxPopCurrent_v2", driver.ctx_pop) &&
         resolve(library, "cuCtxGetDevice", driver.ctx_get_device) &&
         resolve(library, "cuMemGetInfo_v2", driver.mem_get_info) &&
         resolve(library, "cuDeviceGetName", driver.device_name) &&
         resolve(library, "cuDeviceTotalMem_v2", driver.device_total) &&
         resolve(library, "cuDeviceGetAttribute", driver.device_attribute) &&
         resolve(library, "cuDeviceGetUuid_v2", driver.device_uuid) &&
         resolve(library, "cuDriverGetVersion", driver.driver_version);
}

std::uint64_t now_ns() {
  std::uint64_t timestamp = 0;
  cuptiGetTimestamp(&timestamp);
  return timestamp;
}

/// A context was created: describe its device and what was in use then.
void on_context_created(CUcontext context) {
  const Driver& driver = state().driver;
  if (driver.ctx_push(context) != CUDA_SUCCESS) return;
  CUdevice device = 0;
  traces::DeviceRecord record;
  std::size_t free = 0;
  std::size_t total = 0;
  if (driver.ctx_get_device(&device) == CUDA_SUCCESS) {
    record.id = static_cast<std::uint32_t>(device);
    char name[256] = {};
    if (driver.device_name(name, sizeof name - 1, device) == CUDA_SUCCESS) record.name = name;
    CUuuid uuid{};
    if (driver.device_uuid(&uuid, device) == CUDA_SUCCESS) record.uuid = gpu_uuid_text(uuid.bytes);
    std::size_t global = 0;
    if (driver.device_total(&global, device) == CUDA_SUCCESS) record.total_global_mem = global;
    int major = 0;
    int minor = 0;
    if (driver.device_attribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, device) ==
            CUDA_SUCCESS &&
        driver.device_attribute(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, device) ==
            CUDA_SUCCESS) {
      record.compute_capability = std::to_string(major) + "." + std::to_string(minor);
    }
    if (driver.mem_get_info(&free, &total) == CUDA_SUCCESS) {
      record.free_at_start = free;
      record.total_at_start = total;
    }
  }
  CUcontext popped = nullptr;
  driver.ctx_pop(&popped);
  const std::uint64_t time = now_ns();
  std::lock_guard lock(state().mutex);
  state().converter.add_device(record, time);
}

/// A context is going away (cudaDeviceReset, cuCtxDestroy): what it holds goes with it.
void on_context_destroyed(CUcontext context) {
  std::uint32_t context_id = 0;
  if (cuptiGetContextId(context, &context_id) != CUPTI_SUCCESS) return;
  // CUPTI's own lookups: no driver call on a context that is going away
  std::uint32_t device = 0;
  if (cuptiGetDeviceId(context, &device) != CUPTI_SUCCESS) device = 0;
  const std::uint64_t time = now_ns();
  std::lock_guard lock(state().mutex);
  state().converter.on_context_destroyed(context_id, device, time);
}

/// Runtime calls in progress on this thread: the driver calls a runtime call makes are not
/// counted twice by the subscriber check.
thread_local int runtime_depth = 0;

void count_call(bool allocation) {
  std::lock_guard lock(state().mutex);
  state().converter.count_call(allocation);
}

/// The subscriber check's count of runtime allocation and free calls that made or freed memory.
void on_runtime_call(CUpti_CallbackId id, const CUpti_CallbackData& data) {
  if (data.callbackSite == CUPTI_API_ENTER) {
    ++runtime_depth;
    return;
  }
  --runtime_depth;
  if (data.functionReturnValue == nullptr ||
      *static_cast<const cudaError_t*>(data.functionReturnValue) != cudaSuccess) {
    return;
  }
  // Every allocation call here has `void** devPtr` first, every free `void* devPtr`.
  switch (id) {
    case CUPTI_RUNTIME_TRACE_CBID_cudaMalloc_v3020:
    case CUPTI_RUNTIME_TRACE_CBID_cudaMallocAsync_v11020:
    case CUPTI_RUNTIME_TRACE_CBID_cudaMallocAsync_ptsz_v11020:
    case CUPTI_RUNTIME_TRACE_CBID_cudaMallocFromPoolAsync_v11020:
    case CUPTI_RUNTIME_TRACE_CBID_cudaMallocFromPoolAsync_ptsz_v11020: {
      void** made = static_cast<const cudaMalloc_v3020_params*>(data.functionParams)->devPtr;
      if (made != nullptr && *made != nullptr) count_call(true);
      return;
    }
    default: {
      const void* freed = static_cast<const cudaFree_v3020_params*>(data.functionParams)->devPtr;
      if (freed != nullptr) count_call(false);  // cudaFree(nullptr) frees nothing, records nothing
      return;
    }
  }
}

/// The same for the driver's allocation calls a program makes itself (JAX / XLA, CuPy...).
void on_driver_allocation_call(CUpti_CallbackId id, const CUpti_CallbackData& data) {
  if (runtime_depth > 0) return;
  switch (id) {
    case CUPTI_DRIVER_TRACE_CBID_cuMemAlloc_v2:
    case CUPTI_DRIVER_TRACE_CBID_cuMemAllocAsync:
    case CUPTI_DRIVER_TRACE_CBID_cuMemAllocAsync_ptsz:
    case CUPTI_DRIVER_TRACE_CBID_cuMemAllocFromPoolAsync:
    case CUPTI_DRIVER_TRACE_CBID_cuMemAllocFromPoolAsync_ptsz: {
      const CUdeviceptr* made = static_cast<const cuMemAlloc_v2_params*>(data.functionParams)->dptr;
      if (made != nullptr && *made != 0) count_call(true);
      return;
    }
    default:
      if (static_cast<const cuMemFree_v2_params*>(data.functionParams)->dptr != 0)
        count_call(false);
      return;
  }
}

void on_driver_call(CUpti_CallbackId id, const CUpti_CallbackData& data) {
  if (data.callbackSite != CUPTI_API_EXIT) return;
  if (data.functionReturnValue == nullptr ||
      *static_cast<const CUresult*>(data.functionReturnValue) != CUDA_SUCCESS) {
    return;  // a failed call changed nothing
  }
  VmmCall call;
  call.time_ns = now_ns();
  switch (id) {
    case CUPTI_DRIVER_TRACE_CBID_cuMemCreate: {
      const auto* params = static_cast<const cuMemCreate_params*>(data.functionParams);
      call.kind = VmmCall::Kind::Create;
      call.handle = *params->handle;
      call.size = params->size;
      const CUmemLocation& location = params->prop->location;
      if (location.type == CU_MEM_LOCATION_TYPE_DEVICE) {
        call.device = Gpu{static_cast<std::uint32_t>(location.id)};
      } else {
        call.device = Cpu{};
      }
      break;
    }
    case CUPTI_DRIVER_TRACE_CBID_cuMemRelease: {
      const auto* params = static_cast<const cuMemRelease_params*>(data.functionParams);
      call.kind = VmmCall::Kind::Release;
      call.handle = params->handle;
      break;
    }
    case CUPTI_DRIVER_TRACE_CBID_cuMemMap: {
      const auto* params = static_cast<const cuMemMap_params*>(data.functionParams);
      call.kind = VmmCall::Kind::Map;
      call.handle = params->handle;
      call.address = params->ptr;
      call.size = params->size;
      break;
    }
    case CUPTI_DRIVER_TRACE_CBID_cuMemUnmap: {
      const auto* params = static_cast<const cuMemUnmap_params*>(data.functionParams);
      call.kind = VmmCall::Kind::Unmap;
      call.address = params->ptr;
      call.size = params->size;
      break;
    }
    default:
      on_driver_allocation_call(id, data);
      return;
  }
  std::lock_guard lock(state().mutex);
  state().converter.on_vmm(call);
}

void CUPTIAPI on_callback(void* /*user*/, CUpti_CallbackDomain domain, CUpti_CallbackId id,
                          const void* data) {
  if (domain == CUPTI_CB_DOMAIN_RESOURCE && id == CUPTI_CBID_RESOURCE_CONTEXT_CREATED) {
    on_context_created(static_cast<const CUpti_ResourceData*>(data)->context);
  } else if (domain == CUPTI_CB_DOMAIN_RESOURCE &&
             id == CUPTI_CBID_RESOURCE_CONTEXT_DESTROY_STARTING) {
    on_context_destroyed(static_cast<const CUpti_ResourceData*>(data)->context);
  } else if (domain == CUPTI_CB_DOMAIN_DRIVER_API) {
    on_driver_call(id, *static_cast<const CUpti_CallbackData*>(data));
  } else if (domain == CUPTI_CB_DOMAIN_RUNTIME_API) {
    on_runtime_call(id, *static_cast<const CUpti_CallbackData*>(data));
  }
}

void CUPTIAPI buffer_requested(std::uint8_t** buffer, std::size_t* size, std::size_t* max_records) {
  *buffer = static_cast<std::uint8_t*>(std::aligned_alloc(buffer_alignment, buffer_bytes));
  *size = *buffer != nullptr ? buffer_bytes : 0;
  *max_records = 0;
}

void CUPTIAPI buffer_completed(CUcontext context, std::uint32_t stream, std::uint8_t* buffer,
                               std::size_t /*size*/, std::size_t valid) {
  // Asked before taking the lock: CUPTI holds its own while it calls us (Kineto documents the
  // ABBA deadlock of calling it under a lock its callbacks take).
  std::size_t dropped = 0;
  if (cuptiActivityGetNumDroppedRecords(context, stream, &dropped) != CUPTI_SUCCESS) dropped = 0;
  {
    std::lock_guard lock(state().mutex);
    auto records = state().converter.consume_buffer(buffer, valid);
    if (!records) std::fprintf(stderr, "memtrack: %s\n", records.error().to_string().c_str());
    if (dropped != 0) state().converter.add_dropped(dropped);
  }
  std::free(buffer);
}

/// Flushes CUPTI's buffers and writes the whole trace so far (atomically: a temporary, renamed).
/// A checkpoint (the writer thread, every few seconds) writes only when there is something new,
/// marked incomplete: what a process that leaves with _exit leaves behind.
void write_trace(WriteReason reason) {
  if (!state().recording.load()) return;
  std::lock_guard writing(state().write_mutex);
  const bool checkpoint = reason == WriteReason::Checkpoint;
  if (!state().forked) {
    cuptiActivityFlushAll(checkpoint ? 0 : CUPTI_ACTIVITY_FLAG_FLUSH_FORCED);
  }
  Conversion conversion;
  ConversionCounts counts;
  std::optional<std::string> subscriber;
  {
    std::lock_guard lock(state().mutex);
    const std::size_t kept = state().converter.event_count();
    if (checkpoint && kept == state().written_events) return;
    // a forked child that did nothing itself writes nothing (never its parent's trace)
    if (state().forked && kept == 0) return;
    state().written_events = kept;
    conversion = state().converter.finish(state().source, !checkpoint);
    counts = state().converter.counts();
    if (!checkpoint) subscriber = state().converter.subscriber_problem();
  }
  if (checkpoint) {
    traces::TraceEvent mark;
    mark.kind = traces::TraceEvent::Kind::Mark;
    mark.text = "incomplete: a checkpoint written while the process ran (it left without exit())";
    conversion.events.push_back(std::move(mark));
  }
  auto writer = traces::TraceWriter::create(state().output, conversion.header);
  Result<void> written = writer ? Result<void>{} : Result<void>{writer.error()};
  for (std::size_t i = 0; written && i < conversion.events.size(); ++i) {
    written = writer->write(conversion.events[i]);
  }
  if (written) written = writer->finish();
  if (!written) {
    fail("writing " + state().output + ": " + written.error().to_string());
    return;
  }
  if (checkpoint) return;  // the status is the final write's
  if (counts.dropped_records != 0) {
    std::fprintf(stderr, "memtrack: CUPTI dropped %llu activity records: %s is incomplete\n",
                 static_cast<unsigned long long>(counts.dropped_records), state().output.c_str());
  }
  if (subscriber) {
    std::fprintf(stderr, "memtrack: %s is incomplete: %s\n", state().output.c_str(),
                 subscriber->c_str());
    write_status(RecordingStatus{false, 0, 0, "incomplete: " + *subscriber});
    return;
  }
  write_status(RecordingStatus{true,
                               conversion.events.size(),
                               static_cast<std::uint32_t>(conversion.header.devices.size()),
                               {}});
}

/// Nobody else may hold the locks a forked child will need.
void before_fork() {
  state().write_mutex.lock();
  state().mutex.lock();
}

void after_fork_parent() {
  state().mutex.unlock();
  state().write_mutex.unlock();
}

/// A forked child: its own .pidN trace of what it does itself (CUDA cannot run in a child forked
/// after the parent initialised it, so usually nothing), no say in the status, no CUPTI flush.
void forked_child() {
  State& s = state();
  s.mutex.unlock();
  s.write_mutex.unlock();
  s.forked = true;
  s.output = per_process_path(s.root_output, static_cast<long>(::getpid()));
  s.status.clear();
  s.converter.forget_events();
  s.written_events = 0;
}

std::string command_line() {
  std::ifstream file("/proc/self/cmdline", std::ios::binary);
  std::string text;
  std::string argument;
  while (std::getline(file, argument, '\0') && text.size() < 300) {
    if (!text.empty()) text += ' ';
    text += argument;
  }
  if (text.size() > 300) text = text.substr(0, 300) + "...";
  return text;
}

/// MEMTRACK_RECORD_CHECKPOINT seconds; by default 10 in the recorded command's children (worker
/// processes often leave with _exit), none in the command itself.
std::uint32_t checkpoint_seconds(bool child) {
  const char* text = std::getenv(checkpoint_env);
  if (text == nullptr || *text == '\0') return child ? 10 : 0;
  char* end = nullptr;
  const unsigned long seconds = std::strtoul(text, &end, 10);
  return end != nullptr && *end == '\0' ? static_cast<std::uint32_t>(std::min(seconds, 86400UL))
                                        : 0;
}

/// Subscribes to CUPTI: the callbacks and activity kinds the recorder uses.
/// @return nothing, or why recording cannot start
std::optional<std::string> subscribe(State& s) {
  const CUptiResult subscribed = cuptiSubscribe(&s.subscriber, on_callback, nullptr);
  if (subscribed == CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED) {
    return "CUPTI is already taken by another subscriber (a profiler: Nsight Systems, Nsight "
           "Compute, torch.profiler?); run without it to record";
  }
  if (subscribed != CUPTI_SUCCESS) return cupti_error("cuptiSubscribe", subscribed);
  const auto enable = [&s](CUpti_CallbackDomain domain, CUpti_CallbackId id) {
    return cuptiEnableCallback(1, s.subscriber, domain, id);
  };
  using Callback = std::pair<CUpti_CallbackDomain, CUpti_CallbackId>;
  const Callback callbacks[] = {
      {CUPTI_CB_DOMAIN_RESOURCE, CUPTI_CBID_RESOURCE_CONTEXT_CREATED},
      {CUPTI_CB_DOMAIN_RESOURCE, CUPTI_CBID_RESOURCE_CONTEXT_DESTROY_STARTING},
      {CUPTI_CB_DOMAIN_DRIVER_API, CUPTI_DRIVER_TRACE_CBID_cuMemCreate},
      {CUPTI_CB_DOMAIN_DRIVER_API, CUPTI_DRIVER_TRACE_CBID_cuMemRelease},
      {CUPTI_CB_DOMAIN_DRIVER_API, CUPTI_DRIVER_TRACE_CBID_cuMemMap},
      {CUPTI_CB_DOMAIN_DRIVER_API, CUPTI_DRIVER_TRACE_CBID_cuMemUnmap},
      // the subscriber check: allocation calls counted beside the MEMORY2 records
      {CUPTI_CB_DOMAIN_DRIVER_API, CUPTI_DRIVER_TRACE_CBID_cuMemAlloc_v2},
      {CUPTI_CB_DOMAIN_DRIVER_API, CUPTI_DRIVER_TRACE_CBID_cuMemFree_v2},
      {CUPTI_CB_DOMAIN_DRIVER_API, CUPTI_DRIVER_TRACE_CBID_cuMemAllocAsync},
      {CUPTI_CB_DOMAIN_DRIVER_API, CUPTI_DRIVER_TRACE_CBID_cuMemAllocAsync_ptsz},
      {CUPTI_CB_DOMAIN_DRIVER_API, CUPTI_DRIVER_TRACE_CBID_cuMemFreeAsync},
      {CUPTI_CB_DOMAIN_DRIVER_API, CUPTI_DRIVER_TRACE_CBID_cuMemFreeAsync_ptsz},
      {CUPTI_CB_DOMAIN_DRIVER_API, CUPTI_DRIVER_TRACE_CBID_cuMemAllocFromPoolAsync},
      {CUPTI_CB_DOMAIN_DRIVER_API, CUPTI_DRIVER_TRACE_CBID_cuMemAllocFromPoolAsync_ptsz},
      {CUPTI_CB_DOMAIN_RUNTIME_API, CUPTI_RUNTIME_TRACE_CBID_cudaMalloc_v3020},
      {CUPTI_CB_DOMAIN_RUNTIME_API, CUPTI_RUNTIME_TRACE_CBID_cudaFree_v3020},
      {CUPTI_CB_DOMAIN_RUNTIME_API, CUPTI_RUNTIME_TRACE_CBID_cudaMallocAsync_v11020},
      {CUPTI_CB_DOMAIN_RUNTIME_API, CUPTI_RUNTIME_TRACE_CBID_cudaMallocAsync_ptsz_v11020},
      {CUPTI_CB_DOMAIN_RUNTIME_API, CUPTI_RUNTIME_TRACE_CBID_cudaFreeAsync_v11020},
      {CUPTI_CB_DOMAIN_RUNTIME_API, CUPTI_RUNTIME_TRACE_CBID_cudaFreeAsync_ptsz_v11020},
      {CUPTI_CB_DOMAIN_RUNTIME_API, CUPTI_RUNTIME_TRACE_CBID_cudaMallocFromPoolAsync_v11020},
      {CUPTI_CB_DOMAIN_RUNTIME_API, CUPTI_RUNTIME_TRACE_CBID_cudaMallocFromPoolAsync_ptsz_v11020},
  };
  for (const auto& [domain, id] : callbacks) {
    if (const CUptiResult r = enable(domain, id); r != CUPTI_SUCCESS) {
      return cupti_error("cuptiEnableCallback", r);
    }
  }
  if (const CUptiResult r = cuptiActivityRegisterCallbacks(buffer_requested, buffer_completed);
      r != CUPTI_SUCCESS) {
    return cupti_error("cuptiActivityRegisterCallbacks", r);
  }
  for (const CUpti_ActivityKind kind :
       {CUPTI_ACTIVITY_KIND_MEMORY2, CUPTI_ACTIVITY_KIND_MEMORY_POOL}) {
    if (const CUptiResult r = cuptiActivityEnable(kind); r != CUPTI_SUCCESS) {
      return cupti_error("cuptiActivityEnable", r);
    }
  }
  return std::nullopt;
}

/// The trace's source line and host memory, then the process hooks that write it.
void start_recording(State& s, std::uint32_t cupti_version, bool child) {
  int driver_version = 0;
  s.driver.driver_version(&driver_version);
  s.source = "memtrack record (CUPTI " + std::to_string(cupti_version) + ", driver CUDA " +
             std::to_string(driver_version / 1000) + "." +
             std::to_string((driver_version % 1000) / 10) + "): " + command_line();
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page_size = sysconf(_SC_PAGE_SIZE);
  if (pages > 0 && page_size > 0) {
    s.converter.set_host_memory(static_cast<std::uint64_t>(pages) *
                                static_cast<std::uint64_t>(page_size));
  }
  s.recording.store(true);
  ProcessHooks hooks;
  hooks.write = write_trace;
  hooks.before_fork = before_fork;
  hooks.after_fork_parent = after_fork_parent;
  hooks.forked_child = forked_child;
  hooks.checkpoint_seconds = checkpoint_seconds(child);
  install_process_hooks(hooks);
}

int initialize() {
  State& s = state();
  const char* output = std::getenv(output_env);
  if (const char* status = std::getenv(status_env); status != nullptr) s.status = status;
  if (output == nullptr || *output == '\0') {
    fail(std::string(output_env) +
         " is not set: run the program through 'memtrack record -o FILE -- COMMAND...'");
    return 0;
  }
  s.root_output = output;
  s.output = output;
  bool child = false;
  if (const char* root = std::getenv(pid_env);
      root != nullptr && *root != '\0' && std::to_string(::getpid()) != root) {
    // a child of the recorded command: its own trace beside the first, no say in the status
    s.output = per_process_path(s.output, static_cast<long>(::getpid()));
    s.status.clear();
    child = true;
  }
  if (!load_driver(s.driver)) {
    fail(
        "the CUDA driver (libcuda.so.1) is not loaded in this process: libmemtrack_inject.so is "
        "loaded by the driver itself, through CUDA_INJECTION64_PATH (memtrack record sets it)");
    return 0;
  }
  std::uint32_t version = 0;
  cuptiGetVersion(&version);
  if (auto problem = cupti_version_problem(version, CUPTI_API_VERSION)) {
    fail(*problem);
    return 0;
  }
  if (auto problem = subscribe(s)) {
    fail(*problem);
    return 0;
  }
  start_recording(s, version, child);
  return 1;
}

}  // namespace
}  // namespace memtrack::recorder

extern "C" __attribute__((visibility("default"))) int InitializeInjection() {
  // The driver calls it once per process, but nothing stops a second cuInit path (or a program
  // calling it) from coming back: one subscription, one set of hooks.
  static std::atomic<bool> entered{false};
  if (entered.exchange(true)) return 1;
  try {
    return memtrack::recorder::initialize();
  } catch (const std::exception& e) {
    memtrack::recorder::fail(std::string("internal error: ") + e.what());
    return 0;
  }
}
