// One libFuzzer target; MEMTRACK_FUZZ_ENTRY names the parser (set by CMake per executable).
#include "fuzz_entries.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  memtrack::traces::fuzz::MEMTRACK_FUZZ_ENTRY(data, size);
  return 0;
}
