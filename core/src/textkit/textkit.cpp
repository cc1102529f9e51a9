#include "textkit.hpp"

#include <fstream>
#include <sstream>

namespace memtrack::textkit {

Result<std::string> read_text_file(const std::filesystem::path& path, std::uintmax_t max_bytes,
                                   std::string_view what) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) return Error::parse_error(path.string() + ": cannot read: " + ec.message());
  if (size > max_bytes) {
    return Error::parse_error(path.string() + ": " + std::to_string(size) +
                              " bytes, more than the " + std::to_string(max_bytes) + " bytes " +
                              std::string(what) + " may have");
  }
  std::ifstream in(path, std::ios::binary);
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (!in && !in.eof()) return Error::parse_error(path.string() + ": read failed");
  return buffer.str();
}

}  // namespace memtrack::textkit
