#include <memtrack/device_placement.hpp>
#include <memtrack/result.hpp>

#include "textkit.hpp"

#include <string>

namespace memtrack {

std::string DevicePlacement::to_string() const {
  switch (kind_) {
    case Kind::Cpu:
      return "cpu";
    case Kind::Gpu:
      return "gpu:" + std::to_string(gpu_id_);
    case Kind::Auto:
      return "auto";
  }
  return "auto";
}

Result<DevicePlacement> DevicePlacement::parse(std::string_view text) {
  if (text == "cpu") return DevicePlacement{Cpu{}};
  if (text == "auto") return DevicePlacement{Auto{}};
  constexpr std::string_view gpu_prefix = "gpu:";
  if (text.starts_with(gpu_prefix)) {
    const auto id = textkit::parse_canonical_u64(text.substr(gpu_prefix.size()));
    if (id && *id <= UINT32_MAX) return DevicePlacement{Gpu{static_cast<std::uint32_t>(*id)}};
  }
  return Error::parse_error("invalid device '" + std::string(text) +
                            "': expected cpu, auto or gpu:N (N a decimal id up to 4294967295, "
                            "no leading zeros)");
}

}  // namespace memtrack
