#include <memtrack/traces/trace.hpp>

#include <memtrack/units.hpp>

#include "import_support.hpp"
#include "swar.hpp"
#include "textkit.hpp"

#include <array>
#include <charconv>
#include <cstring>
#include <limits>

namespace memtrack::traces {
namespace {

using detail::parse_decimal;
using textkit::next_word;

Result<std::uint64_t> parse_bytes(std::string_view text) {
  if (const auto value = textkit::parse_u64(text)) [[likely]] {
    return *value;
  }
  auto bytes = parse_byte_size(text);  // also 24GiB, 512MiB...
  if (!bytes) {
    return Error::parse_error("expected a byte count (e.g. 1024 or 24GiB), got '" +
                              std::string(text) + "'");
  }
  return *bytes;
}

Result<std::uint64_t> parse_hex(std::string_view text) {
  const auto bad = [&text] {
    return Error::parse_error("expected addr=0x followed by 1 to 16 hexadecimal digits, got '" +
                              std::string(text) + "'");
  };
  const auto value = textkit::parse_0x_hex(text);
  if (!value) return bad();
  return *value;
}

Result<DevicePlacement> parse_device(std::string_view text) {
  // The devices of almost every line, without DevicePlacement::parse's Result: a line each.
  if (text == "cpu") return DevicePlacement(Cpu{});
  if (text.starts_with("gpu:")) [[likely]] {
    const auto id = textkit::parse_canonical_u64(text.substr(4));
    if (id && *id <= UINT32_MAX) return DevicePlacement(Gpu{static_cast<std::uint32_t>(*id)});
  }
  auto device = DevicePlacement::parse(text);
  if (!device) {
    return Error::parse_error("expected a device (cpu, gpu:N or auto), got '" + std::string(text) +
                              "'");
  }
  return *device;
}

using Kind = TraceEvent::Kind;

bool is_segment_event(Kind kind) {
  return kind == Kind::SegmentAlloc || kind == Kind::SegmentFree || kind == Kind::SegmentMap ||
         kind == Kind::SegmentUnmap;
}

/// The allocator's own kinds (segment events, layouts and their lines, oom): strict fields.
bool is_allocator_kind(Kind kind) {
  return is_segment_event(kind) || kind == Kind::Layout || kind == Kind::Segment ||
         kind == Kind::Block || kind == Kind::Oom;
}

/// @return the fields an allocator kind's line takes, for errors
std::string_view allocator_fields(Kind kind) {
  switch (kind) {
    case Kind::Layout:
      return "segments=, undetermined= (start only)";
    case Kind::Segment:
      return "addr=, stream=, pool=, blocks=, expandable=";
    case Kind::Block:
      return "addr=, state=";
    case Kind::Oom:
      return "stream=, device_free=, reserved=, t=, stack=";
    default:
      return "addr=, stream=, t=, stack=";
  }
}

/// @return whether `key=` belongs on a line of an allocator kind
bool allocator_field_allowed(Kind kind, std::string_view key) {
  switch (kind) {
    case Kind::Layout:
      return key == "segments" || key == "undetermined";
    case Kind::Segment:
      return key == "addr" || key == "stream" || key == "pool" || key == "blocks" ||
             key == "expandable";
    case Kind::Block:
      return key == "addr" || key == "state";
    case Kind::Oom:
      return key == "stream" || key == "device_free" || key == "reserved" || key == "t" ||
             key == "stack";
    default:
      return key == "addr" || key == "stream" || key == "t" || key == "stack";
  }
}

/// Sets a field that a line may give once. @return the parse's error, or "KEY= given twice"
Result<void> set_once(std::string_view key, std::optional<std::uint64_t>& field,
                      Result<std::uint64_t> parsed) {
  if (!parsed) return parsed.error();
  if (field) return Error::parse_error(std::string(key) + "= given twice");
  field = *parsed;
  return {};
}

/// Refuses a field that does not belong on the line's kind (allocator fields on operations,
/// operation fields on allocator lines).
Result<void> check_field_allowed(std::string_view key, const TraceEvent& event) {
  if (is_allocator_kind(event.kind)) {
    if (allocator_field_allowed(event.kind, key)) return {};
    return Error::parse_error("unknown field '" + std::string(key) + "=' on a " +
                              std::string(keyword(event.kind)) + " line: expected " +
                              std::string(allocator_fields(event.kind)));
  }
  const bool allocator_only = key == "device_free" || key == "segments" || key == "blocks" ||
                              key == "undetermined" || key == "pool" || key == "expandable" ||
                              key == "state";
  if (allocator_only || (key == "stack" && event.kind == Kind::Check)) {
    return Error::parse_error("unknown field '" + std::string(key) + "=' on a " +
                              std::string(keyword(event.kind)) + " line");
  }
  return {};
}

/// The numeric fields. @return nothing when `key` is not one of them
std::optional<Result<void>> parse_number_field(std::string_view key, std::string_view value,
                                               TraceEvent& event) {
  if (key == "t") return set_once(key, event.time_ns, parse_decimal(value, "t= (nanoseconds)"));
  if (key == "addr") return set_once(key, event.address, parse_hex(value));
  if (key == "stream") return set_once(key, event.stream, parse_decimal(value, "stream="));
  if (key == "stack") {
    return set_once(key, event.stack, parse_decimal(value, "stack= (a stack id)"));
  }
  if (key == "requested") return set_once(key, event.requested, parse_bytes(value));
  if (key == "allocated" && event.kind == Kind::Check) {
    return set_once(key, event.check_allocated, parse_bytes(value));
  }
  if (key == "reserved" && (event.kind == Kind::Check || event.kind == Kind::Oom)) {
    return set_once(key, event.check_reserved, parse_bytes(value));
  }
  if (key == "device_free") return set_once(key, event.device_free, parse_bytes(value));
  if (key == "segments" || key == "blocks") {
    if (key == "segments" ? event.kind != Kind::Layout : event.kind != Kind::Segment) {
      return Error::parse_error(std::string(key) + "= belongs on a " +
                                (key == "segments" ? "layout" : "segment") + " line");
    }
    return set_once(key, event.count, parse_decimal(value, std::string(key) + "="));
  }
  if (key == "undetermined") {
    if (event.phase != TraceEvent::LayoutPhase::start) {
      return Error::parse_error("undetermined= belongs on a 'layout DEVICE start' line only");
    }
    return set_once(key, event.undetermined, parse_decimal(value, "undetermined="));
  }
  return std::nullopt;
}

/// The allocator's words: pool=, expandable=, state=. @return nothing for another key
std::optional<Result<void>> parse_allocator_word(std::string_view key, std::string_view value,
                                                 TraceEvent& event) {
  using sim::allocators::BlockState;
  using sim::allocators::PoolKind;
  if (key == "pool") {
    if (event.pool) return Error::parse_error("pool= given twice");
    if (value != "small" && value != "large") {
      return Error::parse_error("expected pool=small or pool=large, got '" + std::string(value) +
                                "'");
    }
    event.pool = value == "small" ? PoolKind::small : PoolKind::large;
    return Result<void>{};
  }
  if (key == "expandable") {
    if (value != "0" && value != "1") {
      return Error::parse_error("expected expandable=1 (or 0), got '" + std::string(value) + "'");
    }
    event.expandable = value == "1";
    return Result<void>{};
  }
  if (key != "state") return std::nullopt;
  if (event.block_state) return Error::parse_error("state= given twice");
  if (value == "allocated") {
    event.block_state = BlockState::allocated;
  } else if (value == "free") {
    event.block_state = BlockState::free;
  } else if (value == "unmapped") {
    event.block_state = BlockState::unmapped;
  } else {
    return Error::parse_error("expected state=allocated, free or unmapped, got '" +
                              std::string(value) + "'");
  }
  return Result<void>{};
}

/// What the source said of the operation: tag=, result=, resolved=. @return nothing for another
/// key
std::optional<Result<void>> parse_outcome_field(std::string_view key, std::string_view value,
                                                TraceEvent& event) {
  if (key == "tag") {
    if (value.empty()) return Error::parse_error("expected tag=NAME with a non-empty NAME");
    event.tag = std::string(value);
    return Result<void>{};
  }
  if (key == "result") {
    auto kind = parse_error_kind(value);
    if (!kind) {
      return Error::parse_error(
          "expected result= an error kind (OutOfMemory, UnknownDevice, "
          "AmbiguousDevice, InvalidDeallocation), got '" +
          std::string(value) + "'");
    }
    event.recorded_error = *kind;
    return Result<void>{};
  }
  if (key != "resolved") return std::nullopt;
  auto device = parse_device(value);
  if (!device) return Result<void>(device.error());
  if (device->is_auto()) return Error::parse_error("resolved= must name a concrete device");
  event.recorded_resolved = *device;
  return Result<void>{};
}

/// One `KEY=VALUE` item after a line's device (and bytes).
Result<void> parse_attribute(std::string_view item, TraceEvent& event) {
  const std::size_t equals = item.find('=');
  if (equals == std::string_view::npos) {
    return Error::parse_error("expected KEY=VALUE, got '" + std::string(item) + "'");
  }
  const std::string_view key = item.substr(0, equals);
  const std::string_view value = item.substr(equals + 1);
  if (auto ok = check_field_allowed(key, event); !ok) return ok;
  if (auto parsed = parse_number_field(key, value, event)) return *parsed;
  if (auto parsed = parse_allocator_word(key, value, event)) return *parsed;
  if (auto parsed = parse_outcome_field(key, value, event)) return *parsed;
  return Error::parse_error("unknown field '" + std::string(key) +
                            "=': expected t=, addr=, stream=, tag=, requested=, result=, "
                            "resolved=, stack= (and allocated=, reserved= on check lines)");
}

/// What an allocator kind's line must carry, once its fields are read.
Result<void> check_allocator_line(std::string_view word, const TraceEvent& event) {
  const auto need = [&word](bool present, std::string_view field) -> Result<void> {
    if (present) return {};
    return Error::parse_error(std::string(word) + " needs " + std::string(field));
  };
  const auto& e = event;
  switch (e.kind) {
    case Kind::SegmentAlloc:
    case Kind::SegmentFree:
    case Kind::SegmentMap:
    case Kind::SegmentUnmap:
      if (auto ok = need(e.address.has_value(), "addr=0xHEX"); !ok) return ok;
      if (auto ok = need(e.stream.has_value(), "stream=N"); !ok) return ok;
      break;
    case Kind::Layout:
      return need(e.count.has_value(), "segments=N");
    case Kind::Segment:
      if (auto ok = need(e.address.has_value(), "addr=0xHEX"); !ok) return ok;
      if (auto ok = need(e.stream.has_value(), "stream=N"); !ok) return ok;
      if (auto ok = need(e.pool.has_value(), "pool=small|large"); !ok) return ok;
      if (auto ok = need(e.count.has_value(), "blocks=M"); !ok) return ok;
      if (*e.count == 0) return Error::parse_error("a segment has at least one block (blocks=0)");
      break;
    case Kind::Block:
      if (auto ok = need(e.address.has_value(), "addr=0xHEX"); !ok) return ok;
      if (auto ok = need(e.block_state.has_value(), "state=allocated|free|unmapped"); !ok) {
        return ok;
      }
      break;
    case Kind::Oom:
      if (auto ok = need(e.stream.has_value(), "stream=N"); !ok) return ok;
      return need(e.device_free.has_value(), "device_free=BYTES");
    default:
      return {};
  }
  if (*e.bytes == 0) return Error::parse_error(std::string(word) + " of 0 bytes");
  if (*e.address > UINT64_MAX - *e.bytes) {
    return Error::parse_error(std::string(word) + " at " + std::to_string(*e.address) + " of " +
                              std::to_string(*e.bytes) + " bytes ends beyond 2^64 - 1");
  }
  return {};
}

}  // namespace

std::optional<ErrorKind> parse_error_kind(std::string_view name) {
  for (auto kind :
       {ErrorKind::InvalidConfig, ErrorKind::UnknownDevice, ErrorKind::OutOfMemory,
        ErrorKind::AmbiguousDevice, ErrorKind::InvalidDeallocation, ErrorKind::ParseError}) {
    if (to_string(kind) == name) return kind;
  }
  return std::nullopt;
}

std::string_view keyword(TraceEvent::Kind kind) {
  switch (kind) {
    case TraceEvent::Kind::Baseline:
      return "baseline";
    case TraceEvent::Kind::Allocate:
      return "alloc";
    case TraceEvent::Kind::Free:
      return "free";
    case TraceEvent::Kind::ResetPeakAll:
    case TraceEvent::Kind::ResetPeak:
      return "reset_peak";
    case TraceEvent::Kind::Check:
      return "check";
    case TraceEvent::Kind::Mark:
      return "mark";
    case TraceEvent::Kind::SegmentAlloc:
      return "segment_alloc";
    case TraceEvent::Kind::SegmentFree:
      return "segment_free";
    case TraceEvent::Kind::SegmentMap:
      return "segment_map";
    case TraceEvent::Kind::SegmentUnmap:
      return "segment_unmap";
    case TraceEvent::Kind::Layout:
      return "layout";
    case TraceEvent::Kind::Segment:
      return "segment";
    case TraceEvent::Kind::Block:
      return "block";
    case TraceEvent::Kind::Oom:
      return "oom";
  }
  return "?";
}

namespace {

/// Appends ` KEY=VALUE` (`key` a literal such as "t=", or "" for the bytes), when there is a
/// value: the blank, the key and the digits at once (every event's numbers pass here).
template <std::size_t KeySize>
void append_number(std::string& line, const char (&key)[KeySize],
                   std::optional<std::uint64_t> value) {
  static_assert(KeySize <= 17, "a key of at most 16 characters");
  if (!value) return;
  char field[KeySize + textkit::max_decimal_digits];  // the blank takes the key's '\0'
  field[0] = ' ';
  std::memcpy(field + 1, key, KeySize - 1);
  char* const end = textkit::write_decimal(field + KeySize, *value);
  line.append(field, static_cast<std::size_t>(end - field));
}
/// ` addr=0x...` when there is an address.
void append_address(std::string& line, std::optional<std::uint64_t> address) {
  if (!address) return;
  line += " addr=";
  textkit::append_hex(line, *address);
}

/// The fields of an operation after its bytes and before its stack: t=, addr=, stream=,
/// requested=, tag=, result=, resolved= (each when it has one).
void append_outcome_fields(std::string& line, const TraceEvent& event) {
  append_number(line, "t=", event.time_ns);
  append_address(line, event.address);
  append_number(line, "stream=", event.stream);
  append_number(line, "requested=", event.requested);
  if (!event.tag.empty()) line += " tag=" + event.tag;
  if (event.recorded_error) line += " result=" + std::string(to_string(*event.recorded_error));
  if (event.recorded_resolved) line += " resolved=" + event.recorded_resolved->to_string();
}

/// The fields after the device of the allocator's events (check, layout, segment, block, oom).
/// @return false, writing nothing, for the other events
bool append_allocator_fields(std::string& line, const TraceEvent& event) {
  switch (event.kind) {
    case Kind::Check:
      append_number(line, "allocated=", event.check_allocated);
      append_number(line, "reserved=", event.check_reserved);
      append_outcome_fields(line, event);  // what a check may carry too (no bytes, no stack)
      return true;
    case Kind::Layout:
      if (event.phase) {
        line += event.phase == TraceEvent::LayoutPhase::start ? " start" : " check";
      }
      append_number(line, "segments=", event.count);
      append_number(line, "undetermined=", event.undetermined);
      return true;
    case Kind::Segment:
      append_number(line, "", event.bytes);
      append_address(line, event.address);
      append_number(line, "stream=", event.stream);
      if (event.pool) line += " pool=" + std::string(sim::allocators::to_string(*event.pool));
      if (event.expandable) line += " expandable=1";
      append_number(line, "blocks=", event.count);
      return true;
    case Kind::Block:
      append_number(line, "", event.bytes);
      append_address(line, event.address);
      if (event.block_state) {
        line += " state=" + std::string(sim::allocators::to_string(*event.block_state));
      }
      return true;
    case Kind::Oom:
      append_number(line, "", event.bytes);
      append_number(line, "t=", event.time_ns);
      append_number(line, "stream=", event.stream);
      append_number(line, "device_free=", event.device_free);
      append_number(line, "reserved=", event.check_reserved);
      append_number(line, "stack=", event.stack);
      return true;
    default:
      return false;
  }
}

/// The fields after the device of an operation (baseline, alloc, free, segment events).
void append_operation_fields(std::string& line, const TraceEvent& event) {
  append_number(line, "", event.bytes);
  append_outcome_fields(line, event);
  append_number(line, "stack=", event.stack);
}

}  // namespace

namespace detail {

void append_event(std::string& line, const TraceEvent& event) {
  line += keyword(event.kind);
  switch (event.kind) {
    case Kind::ResetPeakAll:
      return;
    case Kind::Mark:
      if (!event.text.empty()) line += ' ' + event.text;
      return;
    case Kind::ResetPeak:
      line += ' ' + event.device.to_string();
      if (event.recorded_error) line += " result=" + std::string(to_string(*event.recorded_error));
      return;
    default:
      break;
  }
  line += ' ';
  if (event.device.is_gpu()) [[likely]] {
    line += "gpu:";
    textkit::append_decimal(line, event.device.gpu_id());
  } else {
    line += event.device.to_string();
  }
  if (!append_allocator_fields(line, event)) append_operation_fields(line, event);
}

}  // namespace detail

std::string format_event(const TraceEvent& event) {
  std::string line;
  detail::append_event(line, event);
  return line;
}

Result<TraceEvent> parse_event(std::string_view line) {
  TraceEvent event;
  if (auto ok = parse_event(line, event); !ok) return ok.error();
  return event;
}

namespace {

/// @return the kind an event keyword names (not `reset_peak` and `mark`, parsed apart)
std::optional<Kind> event_kind(std::string_view word) {
  static constexpr std::array<std::pair<std::string_view, Kind>, 12> kinds = {{
      {"alloc", Kind::Allocate},
      {"free", Kind::Free},
      {"baseline", Kind::Baseline},
      {"check", Kind::Check},
      {"segment_alloc", Kind::SegmentAlloc},
      {"segment_free", Kind::SegmentFree},
      {"segment_map", Kind::SegmentMap},
      {"segment_unmap", Kind::SegmentUnmap},
      {"layout", Kind::Layout},
      {"segment", Kind::Segment},
      {"block", Kind::Block},
      {"oom", Kind::Oom},
  }};
  for (const auto& [name, kind] : kinds) {
    if (name == word) return kind;
  }
  return std::nullopt;
}

void reset(TraceEvent& event) {
  // Without giving back the strings' capacity.
  event.device = DevicePlacement{};
  event.bytes.reset();
  event.requested.reset();
  event.time_ns.reset();
  event.address.reset();
  event.stream.reset();
  event.tag.clear();
  event.recorded_error.reset();
  event.recorded_resolved.reset();
  event.check_allocated.reset();
  event.check_reserved.reset();
  event.text.clear();
  event.stack.reset();
  event.phase.reset();
  event.count.reset();
  event.undetermined.reset();
  event.pool.reset();
  event.expandable = false;
  event.block_state.reset();
  event.device_free.reset();
}

/// A free or reset_peak on `auto` is always refused (no single device): the line says so.
Result<void> refused_on_auto(std::string_view word, const TraceEvent& event) {
  if (!event.device.is_auto() || event.recorded_error == ErrorKind::AmbiguousDevice) return {};
  return Error::parse_error(std::string(word) +
                            " auto is always refused: expected result=AmbiguousDevice (or a "
                            "device, cpu or gpu:N)");
}

/// The rest of a `reset_peak` line: nothing (every device), or a device and an optional
/// `result=KIND`.
Result<void> parse_reset_peak(std::string_view rest, TraceEvent& event) {
  const std::string_view device = next_word(rest);
  if (device.empty()) {
    event.kind = Kind::ResetPeakAll;
    return {};
  }
  event.kind = Kind::ResetPeak;
  auto parsed = parse_device(device);
  if (!parsed) return parsed.error();
  event.device = *parsed;
  const std::string_view result = next_word(rest);
  if (!result.empty()) {
    if (!result.starts_with("result=") || !next_word(rest).empty()) {
      return Error::parse_error("reset_peak takes at most a device and result=KIND");
    }
    if (auto ok = parse_attribute(result, event); !ok) return ok.error();
  }
  return refused_on_auto("reset_peak", event);
}

/// What a line of `word`'s kind must carry, once its fields are read.
Result<void> check_complete_line(std::string_view word, const TraceEvent& event) {
  if (!event.bytes) {
    if (event.kind == Kind::Free) {
      if (!event.address) {
        return Error::parse_error("free needs its bytes or addr= (to find the allocation)");
      }
    } else if (event.kind != Kind::Check && event.kind != Kind::Layout) {
      return Error::parse_error(std::string(word) + " needs its bytes after the device");
    }
  }
  if (event.kind == Kind::Check && !event.check_allocated) {
    return Error::parse_error("check needs allocated=BYTES");
  }
  if (is_allocator_kind(event.kind)) return check_allocator_line(word, event);
  if (event.kind == Kind::Free) return refused_on_auto(word, event);
  return {};
}

/**
 * @brief A cursor over one hot line: each token is scanned once, its digits read as they are
 * met (no word split first, no second pass). Every method returns false for anything the
 * general parser must judge: the cursor then stops, and the caller gives up the line.
 */
class HotCursor {
 public:
  explicit HotCursor(std::string_view line) noexcept
      : p_(line.data()), end_(line.data() + line.size()) {}

  [[nodiscard]] bool at_end() const noexcept { return p_ == end_; }
  [[nodiscard]] char peek() const noexcept { return *p_; }

  /// Takes `text` if the line continues with it.
  bool take(std::string_view text) noexcept {
    if (static_cast<std::size_t>(end_ - p_) < text.size() ||
        std::memcmp(p_, text.data(), text.size()) != 0) {
      return false;
    }
    p_ += text.size();
    return true;
  }

  /// The end of a token: one or more blanks, or the end of the line.
  bool token_end() noexcept {
    if (p_ == end_) return true;
    if (!textkit::is_word_blank(*p_)) return false;
    do {
      ++p_;
    } while (p_ != end_ && textkit::is_word_blank(*p_));
    return true;
  }

  /// One or more decimal digits (`parse_u64`'s rule; `canonical`: no leading zero) ending the
  /// token.
  [[gnu::always_inline]] bool decimal(std::uint64_t& value, bool canonical = false) noexcept {
    const char* const start = p_;
    std::uint64_t v = 0;
    // 19 digits stay below 10^19 < 2^64: no overflow check (a chain of multiplications) for them,
    // read eight at a time while eight of them remain in the line, then one at a time.
    const char* const unchecked = end_ - p_ > 19 ? p_ + 19 : end_;
    while (unchecked - p_ >= 8) {
      const std::uint64_t word = swar::load8(p_);
      const unsigned run = swar::leading_run(swar::non_digits(word));
      if (run != 0) v = v * swar::powers_of_ten[run] + swar::digits_value(word, run);
      p_ += run;
      if (run < 8) break;  // at a byte that is not a digit: the loops below stop on it
    }
    for (; p_ != unchecked; ++p_) {
      const auto digit = static_cast<unsigned>(static_cast<unsigned char>(*p_)) - unsigned{'0'};
      if (digit > 9) break;
      v = v * 10 + digit;
    }
    for (; p_ != end_; ++p_) {
      const auto digit = static_cast<unsigned>(static_cast<unsigned char>(*p_)) - unsigned{'0'};
      if (digit > 9) break;
      if (__builtin_mul_overflow(v, std::uint64_t{10}, &v) ||
          __builtin_add_overflow(v, std::uint64_t{digit}, &v)) {
        return false;
      }
    }
    if (p_ == start || (canonical && *start == '0' && p_ - start > 1)) return false;
    value = v;
    return token_end();
  }

  /// `0x` and 1 to 16 hexadecimal digits of either case (`parse_0x_hex`'s rule) ending the token.
  [[gnu::always_inline]] bool hex(std::uint64_t& value) noexcept {
    if (!take("0x")) return false;
    const char* const start = p_;
    std::uint64_t v = 0;
    // Eight digits at a time while eight bytes of the first 16 remain in the line.
    const char* const words_end = end_ - p_ > 16 ? p_ + 16 : end_;
    while (words_end - p_ >= 8) {
      const std::uint64_t word = swar::load8(p_);
      const unsigned run = swar::leading_run(swar::non_hex_digits(word));
      if (run != 0) v = (v << (4 * run)) | swar::hex_digits_value(word, run);
      p_ += run;
      if (run < 8) break;  // at a byte that is not a digit: the loop below stops on it
    }
    for (; p_ != end_; ++p_) {
      const std::uint8_t digit = textkit::hex_digit_values[static_cast<unsigned char>(*p_)];
      if (digit > 15) break;
      v = (v << 4U) | digit;
    }
    const auto digits = static_cast<std::size_t>(p_ - start);
    if (digits == 0 || digits > textkit::max_hex_digits) return false;
    value = v;
    return token_end();
  }

  /// A device that ends its token: `gpu:N` (no leading zero, N < 2^32) or `cpu`.
  bool concrete_device(DevicePlacement& device) noexcept {
    if (take("gpu:")) {
      std::uint64_t id = 0;
      if (!decimal(id, true) || id > UINT32_MAX) return false;
      device = Gpu{static_cast<std::uint32_t>(id)};
      return true;
    }
    if (take("cpu") && token_end()) {
      device = Cpu{};
      return true;
    }
    return false;
  }

  /// A word of one or more printable ASCII characters other than `#` (what `tag=` holds as the
  /// general parser reads it: a `#` starts a comment, and a CR or another control character is
  /// left to it) ending the token.
  bool word(std::string_view& value) noexcept {
    const char* const start = p_;
    while (p_ != end_ && *p_ > ' ' && *p_ < 0x7F && *p_ != '#')
      ++p_;
    if (p_ == start) return false;
    value = std::string_view(start, static_cast<std::size_t>(p_ - start));
    return token_end();
  }

 private:
  const char* p_;
  const char* end_;
};

/// Sets a field of a hot line. @return false when it was given before (the general parser
/// decides what a repeated field means)
bool set_hot(std::optional<std::uint64_t>& field, std::uint64_t value) noexcept {
  if (field.has_value()) return false;
  field = value;
  return true;
}

/// A field of a hot line: `t=`, `addr=`, `stream=`, `stack=` (not on a check) and a check's
/// `allocated=` and `reserved=` in digits, at most once each; `tag=`, `result=` and `resolved=`,
/// the last one given (as the general parser reads them).
bool parse_hot_field(HotCursor& line, TraceEvent& event) {
  std::uint64_t value = 0;
  const bool check = event.kind == Kind::Check;
  if (line.take("addr=")) return line.hex(value) && set_hot(event.address, value);
  if (line.take("t=")) return line.decimal(value) && set_hot(event.time_ns, value);
  if (line.take("stream=")) return line.decimal(value) && set_hot(event.stream, value);
  if (check) {
    if (line.take("allocated="))
      return line.decimal(value) && set_hot(event.check_allocated, value);
    if (line.take("reserved=")) return line.decimal(value) && set_hot(event.check_reserved, value);
  } else if (line.take("stack=")) {
    return line.decimal(value) && set_hot(event.stack, value);
  }
  std::string_view text;
  if (line.take("tag=")) {
    if (!line.word(text)) return false;
    event.tag.assign(text);
    return true;
  }
  if (line.take("result=")) {
    if (!line.word(text)) return false;
    event.recorded_error = parse_error_kind(text);
    return event.recorded_error.has_value();
  }
  if (line.take("resolved=")) {
    DevicePlacement device;
    if (!line.concrete_device(device)) return false;
    event.recorded_resolved = device;
    return true;
  }
  return false;
}

/**
 * @brief The lines of nearly every trace, read in one pass: `alloc|free|baseline DEVICE [BYTES]`
 * and `check DEVICE` with the fields `parse_hot_field` reads, each once, numbers in digits, a
 * concrete device (or `auto` on an alloc): the general parser's checks refuse none of them.
 * @return false for any other line (`event` then holds a part of it): the general parser reads
 * it, and says what is wrong
 */
bool parse_common_operation(std::string_view text, TraceEvent& event) {
  HotCursor line(text);
  Kind kind = Kind::Allocate;
  if (line.take("free")) {
    kind = Kind::Free;
  } else if (line.take("check")) {
    kind = Kind::Check;
  } else if (line.take("baseline")) {
    kind = Kind::Baseline;
  } else if (!line.take("alloc")) {
    return false;
  }
  if (line.at_end() || !line.token_end() || line.at_end()) return false;
  reset(event);
  event.kind = kind;
  if (kind == Kind::Allocate && line.take("auto")) {
    if (!line.token_end()) return false;
    event.device = Auto{};
  } else if (!line.concrete_device(event.device)) {
    return false;  // auto elsewhere, or not a device
  }
  if (kind != Kind::Check && !line.at_end() && textkit::is_digit(line.peek())) {
    std::uint64_t bytes = 0;
    if (!line.decimal(bytes)) return false;  // a size with a unit, or not a number
    event.bytes = bytes;
  }
  while (!line.at_end()) {
    if (!parse_hot_field(line, event)) return false;
  }
  // A check needs its allocated bytes; a free its bytes or its address; the others their bytes.
  if (kind == Kind::Check) return event.check_allocated.has_value();
  return event.bytes.has_value() || (kind == Kind::Free && event.address.has_value());
}

}  // namespace

bool detail::parse_hot_operation(std::string_view line, TraceEvent& event) {
  return parse_common_operation(line, event);
}

Result<void> parse_event(std::string_view line, TraceEvent& event) {
  if (parse_common_operation(line, event)) [[likely]]
    return {};
  return detail::parse_general_event(line, event);
}

Result<void> detail::parse_general_event(std::string_view line, TraceEvent& event) {
  std::string_view rest = line;
  const std::string_view word = next_word(rest);
  reset(event);
  if (word == "reset_peak") return parse_reset_peak(rest, event);
  if (word == "mark") {
    event.kind = Kind::Mark;
    while (!rest.empty() && (rest.front() == ' ' || rest.front() == '\t'))
      rest.remove_prefix(1);
    event.text = std::string(rest);
    return {};
  }
  const auto kind = event_kind(word);
  if (!kind) {
    return Error::parse_error(
        "expected an event (baseline, alloc, free, reset_peak, check, mark, segment_alloc, "
        "segment_free, segment_map, segment_unmap, layout, segment, block, oom or the trailer "
        "'end N'), got '" +
        std::string(word) + "'");
  }
  event.kind = *kind;
  auto device = parse_device(next_word(rest));
  if (!device) return device.error();
  event.device = *device;
  if (event.kind != Kind::Allocate && event.kind != Kind::Free && device->is_auto()) {
    return Error::parse_error(std::string(word) + " needs a concrete device (cpu or gpu:N)");
  }
  const bool allocator = is_allocator_kind(event.kind);
  if (allocator && !device->is_gpu()) {
    return Error::parse_error(std::string(word) + " needs a GPU (gpu:N), got '" +
                              device->to_string() + "'");
  }
  std::string_view item = next_word(rest);
  if (event.kind == Kind::Layout) {
    if (item == "start") {
      event.phase = TraceEvent::LayoutPhase::start;
    } else if (item == "check") {
      event.phase = TraceEvent::LayoutPhase::check;
    } else {
      return Error::parse_error("expected 'layout DEVICE start|check segments=N', got '" +
                                std::string(item) + "' after the device");
    }
    item = next_word(rest);
  } else if (event.kind != Kind::Check && !item.empty() &&
             item.find('=') == std::string_view::npos) {
    auto bytes = parse_bytes(item);
    if (!bytes) return bytes.error();
    event.bytes = *bytes;
    item = next_word(rest);
  }
  for (; !item.empty(); item = next_word(rest)) {
    if (auto ok = parse_attribute(item, event); !ok) return ok.error();
  }
  return check_complete_line(word, event);
}

std::string format_device_record(const DeviceRecord& record) {
  std::string line = "device " + std::to_string(record.id);
  // Appended piece by piece (GCC 12 warns falsely about the temporaries of a `+` chain here).
  const auto add = [&line](std::string_view key, std::string_view value) {
    if (value.empty()) return;
    line += ' ';
    line += key;
    line += '=';
    line += value;
  };
  const auto add_number = [&add](std::string_view key, const std::optional<std::uint64_t>& value) {
    if (value) add(key, textkit::decimal(*value));
  };
  add("uuid", record.uuid);
  add("cc", record.compute_capability);
  add_number("total_global_mem", record.total_global_mem);
  add_number("free_at_start", record.free_at_start);
  add_number("total_at_start", record.total_at_start);
  add("name", record.name);
  return line;
}

Result<DeviceRecord> parse_device_record(std::string_view line) {
  std::string_view rest = line;
  if (next_word(rest) != "device") {
    return Error::parse_error("expected 'device ID [key=value]... [name=TEXT]'");
  }
  DeviceRecord record;
  const std::string_view id_text = next_word(rest);
  auto id = parse_decimal(id_text, "a device id");
  if (!id) return id.error();
  if (*id > std::numeric_limits<std::uint32_t>::max()) {
    return Error::parse_error("device id '" + std::string(id_text) + "' is too large");
  }
  record.id = static_cast<std::uint32_t>(*id);
  for (;;) {
    const std::string_view before = rest;
    const std::string_view item = next_word(rest);
    if (item.empty()) break;
    const std::size_t equals = item.find('=');
    if (equals == std::string_view::npos) {
      return Error::parse_error("expected key=value in a device line, got '" + std::string(item) +
                                "'");
    }
    const std::string_view key = item.substr(0, equals);
    const std::string_view value = item.substr(equals + 1);
    if (key == "name") {  // to the end of the line: names have blanks
      const std::size_t at = before.find("name=");
      std::string_view name = before.substr(at + 5);
      while (!name.empty() && (name.back() == ' ' || name.back() == '\t'))
        name.remove_suffix(1);
      record.name = std::string(name);
      break;
    }
    std::optional<std::uint64_t>* number = nullptr;
    if (key == "uuid") {
      record.uuid = std::string(value);
    } else if (key == "cc") {
      record.compute_capability = std::string(value);
    } else if (key == "total_global_mem") {
      number = &record.total_global_mem;
    } else if (key == "free_at_start") {
      number = &record.free_at_start;
    } else if (key == "total_at_start") {
      number = &record.total_at_start;
    } else {
      return Error::parse_error("unknown device attribute '" + std::string(key) +
                                "': expected uuid, cc, total_global_mem, free_at_start, "
                                "total_at_start or name");
    }
    if (number != nullptr) {
      auto parsed = parse_decimal(value, key);
      if (!parsed) return parsed.error();
      *number = *parsed;
    }
  }
  return record;
}

}  // namespace memtrack::traces
