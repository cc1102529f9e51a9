// Helpers for the traces tests: a scratch folder, and traces built from text.
#pragma once

#include <memtrack/traces/io.hpp>
#include <memtrack/traces/reader.hpp>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

namespace memtrack::traces::testing {

/// A fresh folder under the system temporary directory, removed at the end of the test.
class ScratchDir {
 public:
  ScratchDir() {
    std::random_device random;
    path_ = std::filesystem::temp_directory_path() /
            ("memtrack-test-" + std::to_string(random()) + std::to_string(random()));
    std::filesystem::create_directories(path_);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  [[nodiscard]] std::filesystem::path operator/(const std::string& name) const {
    return path_ / name;
  }
  [[nodiscard]] const std::filesystem::path& path() const { return path_; }
  /// @return the names of the files in the folder
  [[nodiscard]] std::vector<std::string> files() const {
    std::vector<std::string> names;
    for (const auto& entry : std::filesystem::directory_iterator(path_)) {
      names.push_back(entry.path().filename().string());
    }
    return names;
  }

 private:
  std::filesystem::path path_;
};

inline void write_bytes(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
}

inline std::string read_bytes(const std::filesystem::path& path) {
  std::string bytes(static_cast<std::size_t>(std::filesystem::file_size(path)), '\0');
  std::ifstream(path, std::ios::binary)
      .read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return bytes;
}

/// A reader over trace text (the name `t.trace` appears in errors).
inline Result<TraceReader> reader_of(const std::string& text, std::string name = "t.trace") {
  return TraceReader::from_source(memory_source(text, name), name);
}

/// Reads every event; @return the events, or the first error
inline Result<std::vector<TraceEvent>> read_events(const std::string& text) {
  auto reader = reader_of(text);
  if (!reader) return reader.error();
  std::vector<TraceEvent> events;
  TraceEvent event;
  for (;;) {
    auto more = reader->next(event);
    if (!more) return more.error();
    if (!*more) return events;
    events.push_back(event);
  }
}

}  // namespace memtrack::traces::testing
