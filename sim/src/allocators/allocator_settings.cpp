// PYTORCH_CUDA_ALLOC_CONF, read the way CUDAAllocatorConfig reads it.
#include <memtrack/sim/allocators/allocator_settings.hpp>

#include "textkit.hpp"

#include <bit>
#include <vector>

namespace memtrack::sim::allocators {
namespace {

constexpr std::uint64_t mib = 1ULL << 20;

using textkit::trim;

Error bad_value(std::string_view key, std::string_view value, std::string_view expected) {
  return Error::parse_error("allocator setting " + std::string(key) + ":" + std::string(value) +
                            ": expected " + std::string(expected));
}

std::optional<bool> parse_bool(std::string_view text) {
  if (text == "True" || text == "true") return true;
  if (text == "False" || text == "false") return false;
  return std::nullopt;
}

/// `max_split_size_mb` and `max_non_split_rounding_mb`: whole MiB, converted without overflow.
Result<std::uint64_t> parse_mib(std::string_view key, std::string_view value,
                                std::uint64_t minimum_exclusive) {
  const auto number = textkit::parse_u64(value);
  if (!number || *number <= minimum_exclusive) {
    return bad_value(key, value,
                     "a whole number of MiB above " + std::to_string(minimum_exclusive));
  }
  // PyTorch caps the value at what fits in bytes: anything that large means "no limit".
  if (*number > UINT64_MAX / mib) return UINT64_MAX;
  return *number * mib;
}

Result<void> apply(AllocatorSettings& settings, std::string_view key, std::string_view value) {
  if (key == "max_split_size_mb") {
    // PyTorch refuses 20 MiB and below: oversize blocks must exceed a large-pool segment.
    auto bytes = parse_mib(key, value, large_buffer / mib);
    if (!bytes) return bytes.error();
    settings.max_split_size = *bytes;
  } else if (key == "max_non_split_rounding_mb") {
    auto bytes = parse_mib(key, value, 0);
    if (!bytes) return bytes.error();
    settings.max_non_split_rounding = *bytes;
  } else if (key == "garbage_collection_threshold") {
    const auto fraction = Fraction::parse(value);
    if (!fraction || *fraction == Fraction{}) {
      return bad_value(key, value, "a fraction in (0, 1), such as 0.8");
    }
    settings.garbage_collection_threshold = *fraction;
  } else if (key == "per_process_memory_fraction") {
    const auto fraction = Fraction::parse(value);
    if (!fraction) return bad_value(key, value, "a fraction in (0, 1], such as 0.9");
    settings.per_process_memory_fraction = *fraction;
  } else if (key == "roundup_power2_divisions") {
    if (!value.empty() && value.front() == '[') {
      return bad_value(key, value, "one power of two (the per-interval list form is not modelled)");
    }
    const auto divisions = textkit::parse_u64(value);
    if (!divisions || !std::has_single_bit(*divisions)) {
      return bad_value(key, value, "a power of two, such as 4");
    }
    settings.roundup_power2_divisions.fill(*divisions);
  } else if (key == "expandable_segments") {
    const auto flag = parse_bool(value);
    if (!flag) return bad_value(key, value, "True or False");
    settings.expandable_segments = *flag;
  } else if (key == "backend") {
    if (value != "native") {
      return bad_value(key, value, "native (the cudaMallocAsync backend is not modelled)");
    }
  } else if (key == "release_lock_on_cudamalloc" || key == "pinned_use_cuda_host_register" ||
             key == "pinned_use_background_threads" || key == "graph_capture_record_stream_reuse") {
    // They change locking or pinned host memory, never what the device holds.
    if (!parse_bool(value)) return bad_value(key, value, "True or False");
  } else if (key == "pinned_num_register_threads") {
    if (!textkit::parse_u64(value)) return bad_value(key, value, "a whole number");
  } else {
    return Error::parse_error(
        "unknown allocator setting '" + std::string(key) +
        "' (known: max_split_size_mb, max_non_split_rounding_mb, roundup_power2_divisions, "
        "garbage_collection_threshold, expandable_segments, per_process_memory_fraction, backend, "
        "release_lock_on_cudamalloc, pinned_use_cuda_host_register, pinned_num_register_threads, "
        "pinned_use_background_threads, graph_capture_record_stream_reuse)");
  }
  return {};
}

}  // namespace

Result<AllocatorSettings> AllocatorSettings::parse(std::string_view text) {
  AllocatorSettings settings;
  while (!trim(text).empty()) {
    const auto comma = text.find(',');
    const std::string_view item = trim(text.substr(0, comma));
    text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
    const auto colon = item.find(':');
    if (colon == std::string_view::npos) {
      return Error::parse_error("allocator setting '" + std::string(item) +
                                "': expected key:value, such as expandable_segments:True");
    }
    auto applied = apply(settings, trim(item.substr(0, colon)), trim(item.substr(colon + 1)));
    if (!applied) return applied.error();
  }
  return settings;
}

std::string AllocatorSettings::to_string() const {
  const AllocatorSettings defaults;
  std::vector<std::string> items;
  if (expandable_segments) items.emplace_back("expandable_segments:True");
  if (max_split_size != defaults.max_split_size) {
    items.push_back("max_split_size_mb:" + std::to_string(max_split_size / mib));
  }
  if (max_non_split_rounding != defaults.max_non_split_rounding) {
    items.push_back("max_non_split_rounding_mb:" + std::to_string(max_non_split_rounding / mib));
  }
  if (roundup_power2_divisions != defaults.roundup_power2_divisions) {
    items.push_back("roundup_power2_divisions:" + std::to_string(roundup_power2_divisions[0]));
  }
  if (garbage_collection_threshold) {
    items.push_back("garbage_collection_threshold:" + garbage_collection_threshold->to_string());
  }
  if (per_process_memory_fraction) {
    items.push_back("per_process_memory_fraction:" + per_process_memory_fraction->to_string());
  }
  std::string text;
  for (const auto& item : items)
    text += (text.empty() ? "" : ",") + item;
  return text;
}

}  // namespace memtrack::sim::allocators
