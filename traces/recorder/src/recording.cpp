#include <memtrack/recorder/recording.hpp>

#include "textkit.hpp"

#include <cstdlib>

namespace memtrack::recorder {
namespace {

std::uint32_t major_of(std::uint32_t version) {
  // From CUDA 13 the version is xxyyzz (130001); before it, a plain counter (v28 = 12.9 Update 1).
  return version >= 10000 ? version / 10000 : 12;
}

}  // namespace

std::string format_status(const RecordingStatus& status) {
  if (status.ok) {
    return "ok " + std::to_string(status.events) + " " + std::to_string(status.devices) + "\n";
  }
  std::string message = status.message;
  for (char& c : message) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return "error " + message + "\n";
}

Result<RecordingStatus> parse_status(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r'))
    text.remove_suffix(1);
  RecordingStatus status;
  if (text.starts_with("error ")) {
    status.message = std::string(text.substr(6));
    return status;
  }
  const auto bad = [&text] {
    return Error::parse_error("expected 'ok EVENTS DEVICES' or 'error MESSAGE', got '" +
                              std::string(text.substr(0, 80)) + "'");
  };
  if (!text.starts_with("ok ")) return bad();
  const std::string_view counts = text.substr(3);
  const std::size_t space = counts.find(' ');
  if (space == std::string_view::npos) return bad();
  const auto events = textkit::parse_u64(counts.substr(0, space));
  const auto devices = textkit::parse_u64(counts.substr(space + 1));
  if (!events || !devices || *devices > UINT32_MAX) return bad();
  status.events = *events;
  status.devices = static_cast<std::uint32_t>(*devices);
  status.ok = true;
  return status;
}

std::optional<std::string> cupti_version_problem(std::uint32_t runtime, std::uint32_t built_with) {
  if (runtime == 0) return std::string("CUPTI did not report its version");
  const std::uint32_t want = major_of(built_with);
  if (major_of(runtime) != want) {
    return "CUPTI API version " + std::to_string(runtime) + " is not the one this library was " +
           "built for (" + std::to_string(built_with) + ", CUDA " + std::to_string(want) +
           "): its activity records would be misread; use the CUPTI of CUDA " +
           std::to_string(want) + " (LD_LIBRARY_PATH) or rebuild memtrack against this toolkit";
  }
  return std::nullopt;
}

std::string gpu_uuid_text(const char* bytes) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string text = "GPU-";
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) text += '-';
    const auto byte = static_cast<unsigned char>(bytes[i]);
    text += hex[byte >> 4U];
    text += hex[byte & 15U];
  }
  return text;
}

std::string per_process_path(const std::string& output, long pid) {
  const std::string tag = ".pid" + std::to_string(pid);
  const std::size_t slash = output.rfind('/');
  const std::size_t trace = output.rfind(".trace");
  if (trace != std::string::npos && (slash == std::string::npos || trace > slash)) {
    return output.substr(0, trace) + tag + output.substr(trace);
  }
  return output + tag;
}

std::optional<std::filesystem::path> find_injection_library(
    const std::filesystem::path& executable) {
  if (const char* chosen = std::getenv("MEMTRACK_INJECT_LIBRARY"); chosen != nullptr && *chosen) {
    return std::filesystem::path(chosen);
  }
  const std::filesystem::path dir = executable.parent_path();
  for (const auto& candidate : {dir / injection_library, dir / ".." / "lib" / injection_library}) {
    std::error_code ec;
    if (std::filesystem::is_regular_file(candidate, ec)) {
      return std::filesystem::weakly_canonical(candidate, ec);
    }
  }
  return std::nullopt;
}

}  // namespace memtrack::recorder
