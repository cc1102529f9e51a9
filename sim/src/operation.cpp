#include <memtrack/sim/operation.hpp>

#include <memtrack/units.hpp>

#include "textkit.hpp"

#include <string>
#include <vector>

namespace memtrack::sim {
namespace {

std::vector<std::string_view> split_words(std::string_view line) {
  std::vector<std::string_view> words;
  for (auto word = textkit::next_word(line); !word.empty(); word = textkit::next_word(line))
    words.push_back(word);
  return words;
}

}  // namespace

std::string Operation::to_string() const {
  switch (kind) {
    case Kind::Allocate:
      return "alloc " + device.to_string() + " " + std::to_string(bytes);
    case Kind::Deallocate:
      return "free " + device.to_string() + " " + std::to_string(bytes);
    case Kind::ResetPeakAll:
      return "reset_peak";
    case Kind::ResetPeak:
      return "reset_peak " + device.to_string();
  }
  return "reset_peak";
}

Result<Operation> Operation::parse(std::string_view line) {
  const auto words = split_words(line);
  const auto bad = [&](std::string_view why) {
    return Error::parse_error("invalid operation '" + std::string(line) + "': " + std::string(why));
  };
  if (words.empty()) return bad("expected alloc, free or reset_peak");
  if (words[0] == "reset_peak") {
    if (words.size() == 1) return reset_peak_all();
    if (words.size() != 2) return bad("expected 'reset_peak' or 'reset_peak DEVICE'");
    auto device = DevicePlacement::parse(words[1]);
    if (!device) return bad(device.error().to_string());
    return reset_peak(*device);
  }
  if (words[0] != "alloc" && words[0] != "free") {
    return bad("expected alloc, free or reset_peak");
  }
  if (words.size() != 3) return bad("expected '" + std::string(words[0]) + " DEVICE BYTES'");
  auto device = DevicePlacement::parse(words[1]);
  if (!device) return bad(device.error().to_string());
  auto bytes = parse_byte_size(words[2]);
  if (!bytes) return bad(bytes.error().to_string());
  return words[0] == "alloc" ? allocate(*device, *bytes) : deallocate(*device, *bytes);
}

}  // namespace memtrack::sim
