#include <memtrack/sim/profile.hpp>

#include <memtrack/units.hpp>

#include "textkit.hpp"

#include <algorithm>
#include <cstdlib>
#include <limits>
#include <map>

namespace memtrack::sim {
namespace {

constexpr std::uintmax_t max_profile_bytes = 1_MiB;

std::optional<Provenance> parse_provenance(std::string_view text) {
  if (text == "measured") return Provenance::Measured;
  if (text == "published") return Provenance::Published;
  if (text == "estimated") return Provenance::Estimated;
  return std::nullopt;
}

constexpr std::string_view variant_syntax = "'BYTES [~ PRECISION] @ DRIVER'";

/// One `BYTES [~ PRECISION] @ DRIVER` item of a `cuda_total_variants` value.
Result<TotalFigure> parse_total_variant(std::string_view item) {
  const auto refused = [&](const std::string& what) {
    return Error::parse_error("variant '" + std::string(item) + "': " + what);
  };
  const std::size_t at = item.find('@');
  if (at == std::string_view::npos) return refused("expected " + std::string(variant_syntax));
  TotalFigure figure;
  figure.driver = std::string(textkit::trim(item.substr(at + 1)));
  if (figure.driver.empty()) return refused("names no driver after '@'");
  if (figure.driver.find('@') != std::string::npos) return refused("has a second '@'");
  const std::string_view size = textkit::trim(item.substr(0, at));
  const std::size_t tilde = size.find('~');
  auto bytes = parse_byte_size(textkit::trim(size.substr(0, tilde)));
  if (!bytes) return refused(bytes.error().detail);
  if (*bytes == 0) return refused("a CUDA total of 0 bytes");
  figure.bytes = *bytes;
  if (tilde != std::string_view::npos) {
    auto precision = parse_byte_size(textkit::trim(size.substr(tilde + 1)));
    if (!precision) return refused(precision.error().detail);
    if (*precision == 0 || *precision >= figure.bytes) {
      return refused("the precision after '~' must be more than 0 and less than the total");
    }
    figure.precision_bytes = *precision;
  }
  return figure;
}

/// A value the parser reads back unchanged: no field separator, no comment, no line break.
std::string one_line(std::string text) {
  for (char& c : text) {
    if (c == '|' || c == '#' || c == '\n' || c == '\r') c = ' ';
  }
  return text;
}

}  // namespace

Result<std::vector<TotalFigure>> parse_total_variants(std::string_view text) {
  if (textkit::trim(text).empty()) {
    return Error::parse_error("expected one or more " + std::string(variant_syntax) +
                              " separated by ';'");
  }
  std::vector<TotalFigure> variants;
  std::string_view rest = text;
  while (true) {
    const std::size_t semicolon = rest.find(';');
    const std::string_view item = textkit::trim(rest.substr(0, semicolon));
    if (item.empty()) {
      return Error::parse_error("variant " + std::to_string(variants.size() + 1) +
                                " is empty: expected " + std::string(variant_syntax));
    }
    auto figure = parse_total_variant(item);
    if (!figure) return figure.error();
    variants.push_back(std::move(*figure));
    if (semicolon == std::string_view::npos) break;
    rest = rest.substr(semicolon + 1);
  }
  return variants;
}

std::string format_total_variants(const std::vector<TotalFigure>& variants) {
  std::string text;
  for (const TotalFigure& figure : variants) {
    std::string driver = one_line(figure.driver);
    for (char& c : driver) {
      if (c == ';' || c == '@') c = ' ';
    }
    if (!text.empty()) text += "; ";
    text += std::to_string(figure.bytes);
    if (figure.precision_bytes != 0) text += " ~ " + std::to_string(figure.precision_bytes);
    text += " @ " + std::string(textkit::trim(driver));
  }
  return text;
}

std::vector<TotalFigure> cuda_total_figures(const DeviceProfile& profile) {
  std::vector<TotalFigure> figures;
  if (!profile.cuda_total_bytes) return figures;
  figures.push_back(
      {profile.cuda_total_bytes->value,
       profile.cuda_total_precision_bytes ? profile.cuda_total_precision_bytes->value : 0,
       profile.cuda_total_driver});
  if (profile.cuda_total_variants) {
    const auto& variants = profile.cuda_total_variants->value;
    figures.insert(figures.end(), variants.begin(), variants.end());
  }
  return figures;
}

TotalRange cuda_total_range(const DeviceProfile& profile) {
  TotalRange range;
  bool first = true;
  for (const TotalFigure& figure : cuda_total_figures(profile)) {
    // A figure known to ± its precision allows totals from bytes - precision (at least 1 byte) to
    // bytes + precision (at most 2^64 - 1).
    const std::uint64_t low =
        figure.bytes > figure.precision_bytes ? figure.bytes - figure.precision_bytes : 1;
    const std::uint64_t high =
        figure.bytes > std::numeric_limits<std::uint64_t>::max() - figure.precision_bytes
            ? std::numeric_limits<std::uint64_t>::max()
            : figure.bytes + figure.precision_bytes;
    if (first || low < range.lowest.bytes) range.lowest = {low, figure};
    if (first || high > range.highest.bytes) range.highest = {high, figure};
    first = false;
  }
  return range;
}

GpuConfig config_at_total(GpuConfig config, const std::vector<DeviceProfile>& profiles,
                          TotalEnd end) {
  for (std::size_t i = 0; i < config.gpus.size(); ++i) {
    const DeviceProfile* profile = profiles.size() == 1  ? &profiles[0]
                                   : i < profiles.size() ? &profiles[i]
                                                         : nullptr;
    if (profile == nullptr || !profile->cuda_total_bytes) continue;
    const TotalRange range = cuda_total_range(*profile);
    config.gpus[i].total_bytes = end == TotalEnd::Lowest ? range.lowest.bytes : range.highest.bytes;
  }
  return config;
}

std::string group_digits(std::uint64_t bytes) {
  const std::string digits = std::to_string(bytes);
  std::string grouped;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i != 0 && (digits.size() - i) % 3 == 0) grouped += ',';
    grouped += digits[i];
  }
  return grouped;
}

std::string format_precision(std::uint64_t bytes) {
  if (bytes != 0 && bytes % 1_MiB == 0) return std::to_string(bytes / 1_MiB) + " MiB";
  return std::to_string(bytes) + " B";
}

std::string describe_figure(const TotalFigure& figure) {
  std::string text = figure.driver.empty() ? std::string("an unrecorded driver") : figure.driver;
  text += " (" + group_digits(figure.bytes) + " B";
  if (figure.precision_bytes != 0) text += " ± " + format_precision(figure.precision_bytes);
  return text + ")";
}

std::string_view to_string(Provenance provenance) {
  switch (provenance) {
    case Provenance::Measured:
      return "measured";
    case Provenance::Published:
      return "published";
    case Provenance::Estimated:
      return "estimated";
  }
  return "estimated";
}

GpuSpec DeviceProfile::gpu_spec(std::uint32_t id) const {
  GpuSpec gpu;
  gpu.id = id;
  gpu.total_bytes = cuda_total_bytes ? cuda_total_bytes->value : 0;
  if (usable_bytes) gpu.usable_bytes = usable_bytes->value;
  if (memory_fraction) gpu.memory_fraction = memory_fraction->value;
  gpu.name = display_name.empty() ? name : display_name;
  return gpu;
}

namespace {

/// A field written `key = VALUE | PROVENANCE | SOURCE`, split and its provenance read.
struct SourcedText {
  std::string_view value;
  Provenance provenance{};
  std::string source;
};

/// @return the problem with a plain field (`name`, `display_name`, `kind`, `cuda_total_driver`),
/// stored in `profile`, or nothing
std::optional<std::string> set_plain_field(DeviceProfile& profile, std::string_view key,
                                           std::string_view rest) {
  if (rest.empty()) return "'" + std::string(key) + "' needs a value";
  if (key == "name") profile.name = std::string(rest);
  if (key == "display_name") profile.display_name = std::string(rest);
  if (key == "cuda_total_driver") profile.cuda_total_driver = std::string(rest);
  if (key == "kind") {
    if (rest != "cpu" && rest != "gpu") return "kind must be 'cpu' or 'gpu'";
    profile.is_cpu = rest == "cpu";
  }
  return std::nullopt;
}

/// Splits `VALUE | PROVENANCE | SOURCE`; the problem is the error's text.
Result<SourcedText> split_sourced(std::string_view key, std::string_view rest) {
  const std::size_t bar1 = rest.find('|');
  const std::size_t bar2 = bar1 == std::string_view::npos ? bar1 : rest.find('|', bar1 + 1);
  if (bar2 == std::string_view::npos) {
    return Error::parse_error("expected '" + std::string(key) +
                              " = VALUE | measured|published|estimated | SOURCE'");
  }
  const std::string_view provenance_text = textkit::trim(rest.substr(bar1 + 1, bar2 - bar1 - 1));
  const auto provenance = parse_provenance(provenance_text);
  if (!provenance) {
    return Error::parse_error("provenance '" + std::string(provenance_text) +
                              "': expected measured, published or estimated");
  }
  const std::string_view source = textkit::trim(rest.substr(bar2 + 1));
  if (source.empty()) return Error::parse_error("'" + std::string(key) + "' has no source");
  return SourcedText{textkit::trim(rest.substr(0, bar1)), *provenance, std::string(source)};
}

/// The fields that hold a byte count (or a count written as one), by key.
using BytesField = std::optional<Sourced<std::uint64_t>> DeviceProfile::*;
std::optional<BytesField> bytes_field_of(std::string_view key) {
  static const std::map<std::string_view, BytesField> fields = {
      {"cuda_total_bytes", &DeviceProfile::cuda_total_bytes},
      {"cuda_total_precision_bytes", &DeviceProfile::cuda_total_precision_bytes},
      {"nvidia_smi_total_mib", &DeviceProfile::nvidia_smi_total_mib},
      {"memory_bandwidth_gbps", &DeviceProfile::memory_bandwidth_gbps},
      {"usable_bytes", &DeviceProfile::usable_bytes},
      {"context_overhead_bytes", &DeviceProfile::context_overhead_bytes},
      {"allocation_granularity_bytes", &DeviceProfile::allocation_granularity_bytes},
      {"cpu_memory_limit_bytes", &DeviceProfile::cpu_memory_limit_bytes},
  };
  const auto found = fields.find(key);
  if (found == fields.end()) return std::nullopt;
  return found->second;
}

/// @return the problem with a sourced field, stored in `profile`, or nothing
std::optional<std::string> set_sourced_field(DeviceProfile& profile, std::string_view key,
                                             const SourcedText& field) {
  const std::string_view value = field.value;
  if (const auto member = bytes_field_of(key)) {
    auto parsed = parse_byte_size(value);
    if (!parsed) return parsed.error().to_string();
    profile.*(*member) = Sourced<std::uint64_t>{*parsed, field.provenance, field.source};
    if (key == "cuda_total_precision_bytes" && *parsed == 0) {
      return "cuda_total_precision_bytes is 0: leave it out for a total known to the byte";
    }
  } else if (key == "cuda_total_variants") {
    auto variants = parse_total_variants(value);
    if (!variants) return "cuda_total_variants: " + variants.error().detail;
    profile.cuda_total_variants =
        Sourced<std::vector<TotalFigure>>{std::move(*variants), field.provenance, field.source};
  } else if (key == "compute_capability") {
    const std::size_t dot = value.find('.');
    const bool digits =
        !value.empty() && value.find_first_not_of("0123456789.") == std::string_view::npos;
    if (dot == std::string_view::npos || !digits || dot == 0 || dot + 1 == value.size()) {
      return "compute_capability '" + std::string(value) + "': expected MAJOR.MINOR";
    }
    profile.compute_capability =
        Sourced<std::string>{std::string(value), field.provenance, field.source};
  } else if (key == "memory_fraction") {
    auto fraction = Fraction::parse(value);
    if (!fraction) return fraction.error().to_string();
    profile.memory_fraction = Sourced<Fraction>{*fraction, field.provenance, field.source};
  } else {
    return "unknown field '" + std::string(key) + "'";
  }
  return std::nullopt;
}

/// The fields a profile must have, checked once the file is read (`line`: its last line).
Result<void> check_complete(const DeviceProfile& profile, const std::string& file,
                            std::size_t line) {
  const auto missing = [&](std::string_view field) {
    return Error::parse_error(file + ":" + std::to_string(line) + ": the profile has no '" +
                              std::string(field) + "'");
  };
  if (profile.name.empty()) return missing("name");
  if (profile.is_cpu) {
    if (!profile.cpu_memory_limit_bytes) return missing("cpu_memory_limit_bytes");
    return {};
  }
  if (!profile.cuda_total_bytes) return missing("cuda_total_bytes");
  if (profile.cuda_total_bytes->value == 0) {
    return Error::parse_error(file + ": cuda_total_bytes is 0");
  }
  if (profile.cuda_total_precision_bytes &&
      profile.cuda_total_precision_bytes->value >= profile.cuda_total_bytes->value) {
    return Error::parse_error(file +
                              ": cuda_total_precision_bytes is not less than cuda_total_bytes");
  }
  return {};
}

}  // namespace

Result<DeviceProfile> parse_profile(std::string_view text, std::string_view file) {
  DeviceProfile profile;
  profile.file = std::string(file);
  const auto located = [&](std::size_t line, const std::string& what) {
    return Error::parse_error(std::string(file) + ":" + std::to_string(line) + ": " + what);
  };
  std::map<std::string, std::size_t, std::less<>> first_line;  // key -> the line it is on
  textkit::LineReader lines(text);
  for (std::string_view line; lines.next(line);) {
    const std::size_t number = lines.line_number();
    const std::size_t equals = line.find('=');
    if (equals == std::string_view::npos) {
      return located(number, "expected 'key = value | provenance | source'");
    }
    const std::string_view key = textkit::trim(line.substr(0, equals));
    const std::string_view rest = textkit::trim(line.substr(equals + 1));
    if (const auto seen = first_line.find(key); seen != first_line.end()) {
      return located(number, "'" + std::string(key) + "' given twice (first on line " +
                                 std::to_string(seen->second) + "): keep one");
    }
    first_line.emplace(std::string(key), number);
    std::optional<std::string> problem;
    if (key == "name" || key == "display_name" || key == "kind" || key == "cuda_total_driver") {
      problem = set_plain_field(profile, key, rest);
    } else if (auto field = split_sourced(key, rest); !field) {
      problem = field.error().detail;
    } else {
      problem = set_sourced_field(profile, key, *field);
    }
    if (problem) return located(number, *problem);
  }
  // a missing field is reported at the end of the file
  if (auto complete = check_complete(profile, profile.file, lines.line_number()); !complete) {
    return complete.error();
  }
  return profile;
}

std::string format_profile(const DeviceProfile& profile, const std::vector<std::string>& comment) {
  std::string text;
  for (const std::string& line : comment)
    text += "# " + one_line(line) + "\n";
  text += "name = " + profile.name + "\n";
  if (!profile.display_name.empty()) text += "display_name = " + profile.display_name + "\n";
  if (profile.is_cpu) text += "kind = cpu\n";
  const auto field = [&](std::string_view key, const auto& sourced, const std::string& value) {
    text += std::string(key) + " = " + value + " | " + std::string(to_string(sourced.provenance)) +
            " | " + one_line(sourced.source) + "\n";
  };
  const auto bytes = [&](std::string_view key, const std::optional<Sourced<std::uint64_t>>& f) {
    if (f) field(key, *f, std::to_string(f->value));
  };
  bytes("cuda_total_bytes", profile.cuda_total_bytes);
  if (!profile.cuda_total_driver.empty()) {
    text += "cuda_total_driver = " + one_line(profile.cuda_total_driver) + "\n";
  }
  bytes("cuda_total_precision_bytes", profile.cuda_total_precision_bytes);
  if (profile.cuda_total_variants && !profile.cuda_total_variants->value.empty()) {
    field("cuda_total_variants", *profile.cuda_total_variants,
          format_total_variants(profile.cuda_total_variants->value));
  }
  bytes("nvidia_smi_total_mib", profile.nvidia_smi_total_mib);
  if (profile.compute_capability) {
    field("compute_capability", *profile.compute_capability, profile.compute_capability->value);
  }
  bytes("memory_bandwidth_gbps", profile.memory_bandwidth_gbps);
  if (profile.memory_fraction) {
    field("memory_fraction", *profile.memory_fraction, profile.memory_fraction->value.to_string());
  }
  bytes("usable_bytes", profile.usable_bytes);
  bytes("context_overhead_bytes", profile.context_overhead_bytes);
  bytes("allocation_granularity_bytes", profile.allocation_granularity_bytes);
  bytes("cpu_memory_limit_bytes", profile.cpu_memory_limit_bytes);
  return text;
}

Result<DeviceProfile> load_profile(const std::filesystem::path& path) {
  auto text = textkit::read_text_file(path, max_profile_bytes, "a profile");
  if (!text) return text.error();
  return parse_profile(*text, path.string());
}

std::filesystem::path profiles_dir() {
  if (const char* dir = std::getenv("MEMTRACK_PROFILES_DIR"); dir != nullptr && *dir != '\0') {
    return dir;
  }
  // The source tree for in-tree builds, else the installed share folder.
  const std::filesystem::path source = MEMTRACK_SOURCE_PROFILES_DIR;
  if (std::filesystem::is_directory(source)) return source;
  return MEMTRACK_INSTALLED_PROFILES_DIR;
}

Result<std::vector<DeviceProfile>> load_builtin_profiles() {
  std::vector<DeviceProfile> profiles;
  const auto dir = profiles_dir();
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (entry.path().extension() != ".profile") continue;
    auto profile = load_profile(entry.path());
    if (!profile) return profile.error();
    profiles.push_back(std::move(*profile));
  }
  if (ec) return Error::parse_error(dir.string() + ": cannot list profiles: " + ec.message());
  std::sort(profiles.begin(), profiles.end(),
            [](const DeviceProfile& a, const DeviceProfile& b) { return a.name < b.name; });
  return profiles;
}

Result<DeviceProfile> find_profile(std::string_view name_or_path) {
  if (name_or_path.find('/') != std::string_view::npos || name_or_path.ends_with(".profile")) {
    return load_profile(std::filesystem::path(std::string(name_or_path)));
  }
  const auto path = profiles_dir() / (std::string(name_or_path) + ".profile");
  if (!std::filesystem::exists(path)) {
    auto all = load_builtin_profiles();
    std::string names;
    if (all) {
      for (const auto& profile : *all)
        names += (names.empty() ? "" : ", ") + profile.name;
    }
    return Error::parse_error("unknown profile '" + std::string(name_or_path) +
                              "': expected one of " + names + ", or a .profile file path");
  }
  return load_profile(path);
}

Result<Node> make_node(std::string_view spec, std::optional<std::uint32_t> gpus,
                       std::optional<std::uint64_t> cpu_memory_limit) {
  Node node;
  node.spec = std::string(spec);
  std::uint64_t cpu_limit = GpuConfig::default_cpu_memory_limit;
  if (spec.empty()) return Error::parse_error("empty node spec: expected e.g. 2xrtx5090");
  if (spec.back() == '+') {
    return Error::parse_error("node spec '" + std::string(spec) +
                              "': empty part after the last '+' (expected e.g. rtx5090+2xl4)");
  }
  std::vector<std::pair<std::uint32_t, std::string>> parts;
  std::string_view rest = spec;
  while (!rest.empty()) {
    const std::size_t plus = rest.find('+');
    std::string_view part = rest.substr(0, plus);
    rest = plus == std::string_view::npos ? std::string_view{} : rest.substr(plus + 1);
    std::uint32_t count = 1;
    const std::size_t x = part.find('x');
    if (x != std::string_view::npos && x > 0 && textkit::all_digits(part.substr(0, x))) {
      const auto parsed = textkit::parse_u64(part.substr(0, x));
      if (!parsed || *parsed == 0 || *parsed > max_gpus_per_node) {
        return Error::parse_error("node spec '" + std::string(spec) + "': count in '" +
                                  std::string(part) + "' must be 1 to " +
                                  std::to_string(max_gpus_per_node));
      }
      count = static_cast<std::uint32_t>(*parsed);
      part = part.substr(x + 1);
    }
    if (part.empty())
      return Error::parse_error("node spec '" + std::string(spec) + "': empty part");
    parts.emplace_back(count, std::string(part));
  }
  if (gpus) {
    if (parts.size() != 1 || parts[0].first != 1) {
      return Error::parse_error("--gpus needs a single profile (e.g. rtx5090), not '" +
                                std::string(spec) + "'");
    }
    parts[0].first = *gpus;
  }
  std::uint32_t next_id = 0;
  for (const auto& [count, name] : parts) {
    auto profile = find_profile(name);
    if (!profile) return profile.error();
    if (profile->is_cpu) {
      cpu_limit = profile->cpu_memory_limit_bytes->value;
      continue;
    }
    for (std::uint32_t i = 0; i < count; ++i) {
      node.config.gpus.push_back(profile->gpu_spec(next_id++));
      node.gpus.push_back(*profile);
    }
  }
  if (node.config.gpus.size() > max_gpus_per_node) {
    return Error::parse_error(
        "node spec '" + std::string(spec) + "': " + std::to_string(node.config.gpus.size()) +
        " GPUs, more than " + std::to_string(max_gpus_per_node) + " in one node");
  }
  node.config.cpu_memory_limit = cpu_memory_limit.value_or(cpu_limit);
  if (auto valid = validate(node.config); !valid) return valid.error();
  return node;
}

}  // namespace memtrack::sim
