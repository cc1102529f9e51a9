#include "config_lines.hpp"

#include <memtrack/units.hpp>

#include "import_support.hpp"

#include <limits>
#include <sstream>

namespace memtrack::traces::detail {
namespace {

Result<GpuSpec> parse_gpu_line(std::string_view rest) {
  GpuSpec gpu;
  const std::string_view id_text = next_word(rest);
  auto id = parse_decimal(id_text, "a GPU id");
  if (!id || *id > std::numeric_limits<std::uint32_t>::max()) {
    return Error::parse_error("expected 'gpu ID total=BYTES ...' with ID a decimal GPU id, got '" +
                              std::string(id_text) + "'");
  }
  gpu.id = static_cast<std::uint32_t>(*id);
  bool has_total = false;
  while (!trim(rest).empty()) {
    rest = trim(rest);
    if (rest.starts_with("name=")) {
      gpu.name = std::string(rest.substr(5));
      break;
    }
    const std::string_view item = next_word(rest);
    const std::size_t equals = item.find('=');
    const std::string_view key = item.substr(0, equals);
    const std::string_view value = equals == std::string_view::npos ? "" : item.substr(equals + 1);
    if (key == "total" || key == "usable") {
      auto bytes = parse_byte_size(value);
      if (!bytes) return bytes.error();
      if (key == "total") {
        gpu.total_bytes = *bytes;
        has_total = true;
      } else {
        gpu.usable_bytes = *bytes;
      }
    } else if (key == "fraction") {
      auto fraction = Fraction::parse(value);
      if (!fraction) return Error::parse_error(fraction.error().to_string());
      gpu.memory_fraction = *fraction;
    } else {
      return Error::parse_error("unknown gpu field '" + std::string(item) +
                                "': expected total=, usable=, fraction= or name=");
    }
  }
  if (!has_total) return Error::parse_error("gpu " + std::to_string(gpu.id) + " has no total=");
  return gpu;
}

}  // namespace

std::string config_to_text(const GpuConfig& config) {
  std::ostringstream out;
  out << "memory_fraction " << config.memory_fraction.to_string() << "\n";
  out << "cpu_memory_limit " << config.cpu_memory_limit << "\n";
  for (const GpuSpec& gpu : config.gpus) {
    out << "gpu " << gpu.id << " total=" << gpu.total_bytes;
    if (gpu.usable_bytes) out << " usable=" << *gpu.usable_bytes;
    if (gpu.memory_fraction) out << " fraction=" << gpu.memory_fraction->to_string();
    if (!gpu.name.empty()) out << " name=" << gpu.name;
    out << "\n";
  }
  return out.str();
}

Result<bool> parse_config_line(std::string_view line, GpuConfig& config) {
  std::string_view rest = line;
  const std::string_view keyword = next_word(rest);
  if (keyword == "memory_fraction") {
    auto fraction = Fraction::parse(trim(rest));
    if (!fraction) return fraction.error();
    config.memory_fraction = *fraction;
  } else if (keyword == "cpu_memory_limit") {
    auto bytes = parse_byte_size(trim(rest));
    if (!bytes) return bytes.error();
    config.cpu_memory_limit = *bytes;
  } else if (keyword == "gpu") {
    auto gpu = parse_gpu_line(rest);
    if (!gpu) return gpu.error();
    config.gpus.push_back(std::move(*gpu));
  } else {
    return false;
  }
  return true;
}

}  // namespace memtrack::traces::detail
