#include <memtrack/sim/scenario.hpp>

#include <memtrack/units.hpp>

#include "text_file.hpp"

#include <charconv>
#include <fstream>
#include <sstream>
#include <system_error>

namespace memtrack::sim {
namespace {

constexpr std::string_view magic = "memtrack-scenario 1";
constexpr std::uintmax_t max_file_bytes = 64_MiB;

std::string_view next_word(std::string_view& rest) {
  rest = detail::trim(rest);
  const std::size_t end = rest.find_first_of(" \t");
  const std::string_view word = rest.substr(0, end);
  rest = end == std::string_view::npos ? std::string_view{} : rest.substr(end);
  return word;
}

Result<GpuSpec> parse_gpu_line(std::string_view rest) {
  GpuSpec gpu;
  const std::string_view id_text = next_word(rest);
  std::uint32_t id = 0;
  const auto [end, ec] = std::from_chars(id_text.data(), id_text.data() + id_text.size(), id);
  if (ec != std::errc{} || end != id_text.data() + id_text.size()) {
    return Error::parse_error("expected 'gpu ID total=BYTES ...' with ID a decimal GPU id, got '" +
                              std::string(id_text) + "'");
  }
  gpu.id = id;
  bool has_total = false;
  while (!detail::trim(rest).empty()) {
    rest = detail::trim(rest);
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
    auto fraction = Fraction::parse(detail::trim(rest));
    if (!fraction) return fraction.error();
    config.memory_fraction = *fraction;
  } else if (keyword == "cpu_memory_limit") {
    auto bytes = parse_byte_size(detail::trim(rest));
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

std::string to_text(const Scenario& scenario) {
  std::ostringstream out;
  out << magic << "\n" << config_to_text(scenario.config);
  for (const Operation& operation : scenario.operations)
    out << operation.to_string() << "\n";
  return out.str();
}

Result<Scenario> parse_scenario(std::string_view text, std::string_view source_name) {
  Scenario scenario;
  std::size_t line_number = 0;
  bool seen_magic = false;
  const auto located = [&](const std::string& what) {
    return Error::parse_error(std::string(source_name) + ":" + std::to_string(line_number) + ": " +
                              what);
  };
  detail::LineReader lines(text);
  for (std::string_view line; lines.next(line);) {
    line_number = lines.line_number();
    if (!seen_magic) {
      if (line != magic) return located("expected the header '" + std::string(magic) + "'");
      seen_magic = true;
      continue;
    }
    if (line.starts_with("gpu ") && !scenario.operations.empty()) {
      return located("gpu lines must come before operations");
    }
    auto config_line = parse_config_line(line, scenario.config);
    if (!config_line) return located(config_line.error().to_string());
    if (*config_line) continue;
    auto operation = Operation::parse(line);
    if (!operation) return located(operation.error().to_string());
    scenario.operations.push_back(*operation);
  }
  if (!seen_magic) {
    line_number = 1;
    return located("empty file, expected the header '" + std::string(magic) + "'");
  }
  return scenario;
}

Result<Scenario> load_scenario(const std::filesystem::path& path) {
  auto text = detail::read_text_file(path, max_file_bytes, "a scenario");
  if (!text) return text.error();
  return parse_scenario(*text, path.string());
}

Result<void> save_scenario(const std::filesystem::path& path, const Scenario& scenario) {
  const std::filesystem::path temporary = path.string() + ".tmp";
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    out << to_text(scenario);
    out.flush();
    if (!out) {
      std::filesystem::remove(temporary);
      return Error::parse_error(temporary.string() + ": cannot write");
    }
  }
  std::error_code ec;
  std::filesystem::rename(temporary, path, ec);
  if (ec) {
    std::filesystem::remove(temporary);
    return Error::parse_error(path.string() + ": cannot rename into place: " + ec.message());
  }
  return {};
}

}  // namespace memtrack::sim
