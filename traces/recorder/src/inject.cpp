// libmemtrack_inject.so: a CUPTI injection library. The CUDA driver loads it when
// CUDA_INJECTION64_PATH names it and calls InitializeInjection once, during cuInit. It records
// every device allocation and free of the process (activity records MEMORY2 and MEMORY_POOL, and
// the virtual-memory driver calls through callbacks) and writes the canonical trace at exit, on
// SIGINT/SIGTERM, atomically. `memtrack record` sets it up; docs/recorder.md explains it.
//
// Nothing here is exported but InitializeInjection (a version script hides the rest), so the
// program's own copies of the libraries memtrack uses do not meet ours.
#include <memtrack/recorder/cupti_convert.hpp>
#include <memtrack/recorder/recording.hpp>
#include <memtrack/traces/reader.hpp>

#include <cuda.h>
#include <cupti.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>

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
  std::mutex mutex;
  CuptiConverter converter;
  std::string output;
  std::string status;
  std::string source;
  Driver driver;
  CUpti_SubscriberHandle subscriber{};
  std::atomic<bool> recording{false};
  std::mutex write_mutex;  // one writer at a time (exit and a signal may race)
  int signal_pipe[2]{-1, -1};
  struct sigaction previous_int {};
  struct sigaction previous_term {};
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
      return;
  }
  std::lock_guard lock(state().mutex);
  state().converter.on_vmm(call);
}

void CUPTIAPI on_callback(void* /*user*/, CUpti_CallbackDomain domain, CUpti_CallbackId id,
                          const void* data) {
  if (domain == CUPTI_CB_DOMAIN_RESOURCE && id == CUPTI_CBID_RESOURCE_CONTEXT_CREATED) {
    on_context_created(static_cast<const CUpti_ResourceData*>(data)->context);
  } else if (domain == CUPTI_CB_DOMAIN_DRIVER_API) {
    on_driver_call(id, *static_cast<const CUpti_CallbackData*>(data));
  }
}

void CUPTIAPI buffer_requested(std::uint8_t** buffer, std::size_t* size, std::size_t* max_records) {
  *buffer = static_cast<std::uint8_t*>(std::aligned_alloc(buffer_alignment, buffer_bytes));
  *size = *buffer != nullptr ? buffer_bytes : 0;
  *max_records = 0;
}

void CUPTIAPI buffer_completed(CUcontext context, std::uint32_t stream, std::uint8_t* buffer,
                               std::size_t /*size*/, std::size_t valid) {
  {
    std::lock_guard lock(state().mutex);
    auto records = state().converter.consume_buffer(buffer, valid);
    if (!records) std::fprintf(stderr, "memtrack: %s\n", records.error().to_string().c_str());
    std::size_t dropped = 0;
    if (cuptiActivityGetNumDroppedRecords(context, stream, &dropped) == CUPTI_SUCCESS &&
        dropped != 0) {
      state().converter.add_dropped(dropped);
    }
  }
  std::free(buffer);
}

/// Flushes CUPTI's buffers and writes the whole trace so far (atomically: a temporary, renamed).
void write_trace() {
  if (!state().recording.load()) return;
  std::lock_guard writing(state().write_mutex);
  cuptiActivityFlushAll(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED);
  Conversion conversion;
  ConversionCounts counts;
  {
    std::lock_guard lock(state().mutex);
    conversion = state().converter.finish(state().source);
    counts = state().converter.counts();
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
  if (counts.dropped_records != 0) {
    std::fprintf(stderr, "memtrack: CUPTI dropped %llu activity records: %s is incomplete\n",
                 static_cast<unsigned long long>(counts.dropped_records), state().output.c_str());
  }
  write_status(RecordingStatus{true,
                               conversion.events.size(),
                               static_cast<std::uint32_t>(conversion.header.devices.size()),
                               {}});
}

void at_exit() {
  write_trace();
}

/// The handler only wakes the writer thread (nothing else is safe in a handler), then chains.
void on_signal(int signal) {
  const auto number = static_cast<unsigned char>(signal);
  const ssize_t ignored = ::write(state().signal_pipe[1], &number, 1);
  (void)ignored;
  const struct sigaction& previous =
      signal == SIGINT ? state().previous_int : state().previous_term;
  if ((previous.sa_flags & SA_SIGINFO) == 0 && previous.sa_handler != SIG_DFL &&
      previous.sa_handler != SIG_IGN) {
    previous.sa_handler(signal);  // the program's own handler (Python's KeyboardInterrupt...)
  }
}

void signal_writer() {
  for (;;) {
    unsigned char signal = 0;
    const ssize_t got = ::read(state().signal_pipe[0], &signal, 1);
    if (got < 0 && errno == EINTR) continue;
    if (got != 1) return;
    write_trace();
    const struct sigaction& previous =
        signal == SIGINT ? state().previous_int : state().previous_term;
    if ((previous.sa_flags & SA_SIGINFO) == 0 && previous.sa_handler == SIG_DFL) {
      // Nobody else handles it: end the process as the signal would have, trace written.
      ::signal(signal, SIG_DFL);
      ::raise(signal);
    }
  }
}

void install_signal_handlers() {
  if (::pipe2(state().signal_pipe, O_CLOEXEC) != 0) return;
  struct sigaction action {};
  action.sa_handler = on_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  for (const int signal : {SIGINT, SIGTERM}) {
    struct sigaction& previous = signal == SIGINT ? state().previous_int : state().previous_term;
    sigaction(signal, nullptr, &previous);
    if ((previous.sa_flags & SA_SIGINFO) == 0 && previous.sa_handler == SIG_IGN) continue;
    sigaction(signal, &action, nullptr);
  }
  // Blocking both signals in the writer thread keeps the handler on the program's threads.
  sigset_t blocked;
  sigemptyset(&blocked);
  sigaddset(&blocked, SIGINT);
  sigaddset(&blocked, SIGTERM);
  sigset_t old;
  pthread_sigmask(SIG_BLOCK, &blocked, &old);
  std::thread(signal_writer).detach();
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
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

int initialize() {
  State& s = state();
  const char* output = std::getenv(output_env);
  if (const char* status = std::getenv(status_env); status != nullptr) s.status = status;
  if (output == nullptr || *output == '\0') {
    fail(std::string(output_env) +
         " is not set: run the program through 'memtrack record -o FILE -- COMMAND...'");
    return 0;
  }
  s.output = output;
  if (const char* root = std::getenv(pid_env);
      root != nullptr && *root != '\0' && std::to_string(::getpid()) != root) {
    // a child of the recorded command: its own trace beside the first, no say in the status
    s.output = per_process_path(s.output, static_cast<long>(::getpid()));
    s.status.clear();
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
  const CUptiResult subscribed = cuptiSubscribe(&s.subscriber, on_callback, nullptr);
  if (subscribed == CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED) {
    fail(
        "CUPTI is already taken by another subscriber (a profiler: Nsight Systems, Nsight "
        "Compute, torch.profiler?); run without it to record");
    return 0;
  }
  if (subscribed != CUPTI_SUCCESS) {
    fail(cupti_error("cuptiSubscribe", subscribed));
    return 0;
  }
  const auto enable = [&s](CUpti_CallbackDomain domain, CUpti_CallbackId id) {
    return cuptiEnableCallback(1, s.subscriber, domain, id);
  };
  for (const auto& [domain, id] :
       {std::pair{CUPTI_CB_DOMAIN_RESOURCE, CUpti_CallbackId{CUPTI_CBID_RESOURCE_CONTEXT_CREATED}},
        std::pair{CUPTI_CB_DOMAIN_DRIVER_API,
                  CUpti_CallbackId{CUPTI_DRIVER_TRACE_CBID_cuMemCreate}},
        std::pair{CUPTI_CB_DOMAIN_DRIVER_API,
                  CUpti_CallbackId{CUPTI_DRIVER_TRACE_CBID_cuMemRelease}},
        std::pair{CUPTI_CB_DOMAIN_DRIVER_API, CUpti_CallbackId{CUPTI_DRIVER_TRACE_CBID_cuMemMap}},
        std::pair{CUPTI_CB_DOMAIN_DRIVER_API,
                  CUpti_CallbackId{CUPTI_DRIVER_TRACE_CBID_cuMemUnmap}}}) {
    if (const CUptiResult r = enable(domain, id); r != CUPTI_SUCCESS) {
      fail(cupti_error("cuptiEnableCallback", r));
      return 0;
    }
  }
  if (const CUptiResult r = cuptiActivityRegisterCallbacks(buffer_requested, buffer_completed);
      r != CUPTI_SUCCESS) {
    fail(cupti_error("cuptiActivityRegisterCallbacks", r));
    return 0;
  }
  for (const CUpti_ActivityKind kind :
       {CUPTI_ACTIVITY_KIND_MEMORY2, CUPTI_ACTIVITY_KIND_MEMORY_POOL}) {
    if (const CUptiResult r = cuptiActivityEnable(kind); r != CUPTI_SUCCESS) {
      fail(cupti_error("cuptiActivityEnable", r));
      return 0;
    }
  }
  int driver_version = 0;
  s.driver.driver_version(&driver_version);
  s.source = "memtrack record (CUPTI " + std::to_string(version) + ", driver CUDA " +
             std::to_string(driver_version / 1000) + "." +
             std::to_string((driver_version % 1000) / 10) + "): " + command_line();
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page_size = sysconf(_SC_PAGE_SIZE);
  if (pages > 0 && page_size > 0) {
    s.converter.set_host_memory(static_cast<std::uint64_t>(pages) *
                                static_cast<std::uint64_t>(page_size));
  }
  s.recording.store(true);
  std::atexit(at_exit);
  install_signal_handlers();
  return 1;
}

}  // namespace
}  // namespace memtrack::recorder

extern "C" __attribute__((visibility("default"))) int InitializeInjection() {
  try {
    return memtrack::recorder::initialize();
  } catch (const std::exception& e) {
    memtrack::recorder::fail(std::string("internal error: ") + e.what());
    return 0;
  }
}
