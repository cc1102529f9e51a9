// make_cuda_probe_backend in a build without the CUDA toolkit: says how to get one that has it.
#include <memtrack/recorder/probe.hpp>

namespace memtrack::recorder {

Result<std::unique_ptr<ProbeBackend>> make_cuda_probe_backend() {
  return Error::parse_error(
      "this memtrack was built without CUDA: build it with the cuda preset (cmake --workflow "
      "--preset cuda) on a machine with the CUDA toolkit");
}

}  // namespace memtrack::recorder
