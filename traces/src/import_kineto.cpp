// torch.profiler (Kineto) Chrome-trace JSON with profile_memory=True: the "[memory]" instant
// events, per device, sorted by time; "Total Allocated" after each event becomes a checkpoint.
//
// Streamed: the file is read in windows (`KinetoStream`), and the event array's elements are
// parsed in batches of whole elements with simdjson's on-demand API, keeping only the memory
// events and deviceProperties. Memory follows the memory events (kept to sort them by time) and
// one window, not the size of the trace. Every value the importer does not need is still read to
// its end, so a file that is not JSON is refused wherever the fault is.
#include <memtrack/traces/importers.hpp>

#include <memtrack/units.hpp>

#include "huge_pages.hpp"
#include "import_support.hpp"
#include "swar.hpp"
#include "textkit.hpp"

#include <simdjson.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <bit>
#include <cstring>
#include <istream>
#include <map>
#include <optional>
#include <streambuf>
#include <type_traits>
#include <utility>

namespace memtrack::traces {
namespace {

namespace ondemand = simdjson::ondemand;

/// A JSON number as the file wrote it.
struct Number {
  bool present{false};
  bool integral{false};  ///< fits in a signed 64-bit integer
  std::int64_t integer{0};
  double real{0};
};

/// One "[memory]" event, with the fields memory events use.
struct RawEvent {
  std::uint64_t index{0};  ///< its position in the file's event array, 0-based
  Number ts;
  Number device_type, device_id, address, bytes, total_allocated, total_reserved;
  bool has_args{false};
};

/// One entry of deviceProperties.
struct RawDevice {
  Number id, total;
  std::string name;
};

/// A memory event as the importer keeps it until every one is read (to sort them by time):
/// 56 bytes, as millions are held.
struct MemoryEvent {
  std::uint64_t json_index{0};  ///< position in the file's event array (file order)
  std::uint64_t ts_bits{0};     ///< the time: an exact integer (`ts_is_integer`), else a double's
  std::int64_t bytes{0};
  std::uint64_t address{0};
  std::uint64_t total_allocated{0};  ///< when `has_total_allocated`
  std::uint64_t total_reserved{0};   ///< when `has_total_reserved`
  std::uint32_t gpu_id{0};           ///< when `on_gpu`
  bool on_gpu{false};                ///< a CUDA device's, or else the CPU's
  bool ts_is_integer{false};         ///< the file wrote the time as a non-negative integer
  bool has_total_allocated{false};
  bool has_total_reserved{false};

  [[nodiscard]] DevicePlacement device() const {
    return on_gpu ? DevicePlacement(Gpu{gpu_id}) : DevicePlacement(Cpu{});
  }
  /// @return the time as a double, which orders the events (as the file's JSON reader reads it)
  [[nodiscard]] double ts() const {
    return ts_is_integer ? static_cast<double>(ts_bits) : std::bit_cast<double>(ts_bits);
  }
};
static_assert(sizeof(MemoryEvent) == 56);

/// Every memory event of a trace, in huge pages (detail::HugePageAllocator).
using MemoryEvents = std::vector<MemoryEvent, detail::HugePageAllocator<MemoryEvent>>;

/**
 * @brief One raw event as a memory event of the CPU or a CUDA device.
 * @return the event, nothing for another device type (counted in `other_device_types`), or
 * the error, placed by `where`
 */
template <class Where>
Result<std::optional<MemoryEvent>> memory_event(
    const RawEvent& e, const Where& where,
    std::map<std::int64_t, std::uint64_t>& other_device_types) {
  if (!e.has_args) return Error::parse_error(where() + ": no 'args'");
  if (!e.device_type.integral || !e.device_id.integral || !e.bytes.integral) {
    return Error::parse_error(where() +
                              ": expected integer args 'Device Type', 'Device Id' and 'Bytes'");
  }
  MemoryEvent event;
  event.json_index = e.index;
  const std::int64_t type = e.device_type.integer;
  const std::int64_t id = e.device_id.integer;
  if (type == 1) {
    if (id < 0 || id > INT32_MAX) {
      return Error::parse_error(where() + ": CUDA 'Device Id' " + std::to_string(id) +
                                " out of range");
    }
    event.on_gpu = true;
    event.gpu_id = static_cast<std::uint32_t>(id);
  } else if (type != 0) {
    ++other_device_types[type];
    return std::optional<MemoryEvent>{};
  }
  if (!e.ts.present) return Error::parse_error(where() + ": no numeric 'ts'");
  event.ts_is_integer = e.ts.integral && e.ts.integer >= 0;
  event.ts_bits = event.ts_is_integer ? static_cast<std::uint64_t>(e.ts.integer)
                                      : std::bit_cast<std::uint64_t>(e.ts.real);
  event.bytes = e.bytes.integer;
  if (event.bytes == INT64_MIN) return Error::parse_error(where() + ": 'Bytes' out of range");
  if (e.address.integral) event.address = static_cast<std::uint64_t>(e.address.integer);
  if (e.total_allocated.present) {
    if (!e.total_allocated.integral || e.total_allocated.integer < 0) {
      return Error::parse_error(where() + ": expected 'Total Allocated' as a non-negative integer");
    }
    event.has_total_allocated = true;
    event.total_allocated = static_cast<std::uint64_t>(e.total_allocated.integer);
  }
  if (e.total_reserved.integral && e.total_reserved.integer >= 0) {
    event.has_total_reserved = true;
    event.total_reserved = static_cast<std::uint64_t>(e.total_reserved.integer);
  }
  return std::optional<MemoryEvent>(event);
}

/// Thrown when the bytes are not JSON: simdjson's error and where it was found.
struct NotJson {
  simdjson::error_code code;
  const char* where;  ///< into the padded copy, or null when simdjson could not say
};

/**
 * @brief Where a file that is not JSON first goes wrong, in the words of a reader that checks
 * every byte in order (nlohmann's): simdjson finds structural faults before it reads a value and
 * cannot always say where. Run only on a file simdjson refused.
 */
class FirstJsonError final : public nlohmann::json_sax<nlohmann::json> {
 public:
  std::string error;
  std::size_t byte{0};

  bool null() override { return true; }
  bool boolean(bool /*value*/) override { return true; }
  bool number_integer(number_integer_t /*value*/) override { return true; }
  bool number_unsigned(number_unsigned_t /*value*/) override { return true; }
  bool number_float(number_float_t /*value*/, const string_t& /*text*/) override { return true; }
  bool string(string_t& /*value*/) override { return true; }
  bool binary(binary_t& /*value*/) override { return true; }
  bool key(string_t& /*value*/) override { return true; }
  bool start_object(std::size_t /*elements*/) override { return true; }
  bool end_object() override { return true; }
  bool start_array(std::size_t /*elements*/) override { return true; }
  bool end_array() override { return true; }
  bool parse_error(std::size_t position, const std::string& /*token*/,
                   const nlohmann::detail::exception& e) override {
    byte = position;
    error = e.what();
    return false;
  }
};

/**
 * @brief The memory events and devices of a Chrome trace, read in one pass.
 *
 * What it keeps, with the rules of a streaming reader: elements of the event array that are
 * objects count as events (`index`); a field seen twice takes its last value; a scalar that is
 * not a number (a string, true, null) makes a numeric field absent; objects and arrays where a
 * scalar belongs are ignored.
 */
class KinetoReader {
 public:
  explicit KinetoReader(std::string file) : file_(std::move(file)) {}

  /// The CPU and CUDA "[memory]" events, in file order, converted as they are read (until the
  /// first that cannot be: `first_error`)
  MemoryEvents memory;
  std::map<std::int64_t, std::uint64_t> other_device_types;  ///< "[memory]" events of others
  std::optional<Error> first_error;
  std::vector<RawDevice> devices;
  std::uint64_t events_seen{0};  ///< every event object of the trace, memory or not
  bool has_event_array{false};   ///< a root array, or an object with 'traceEvents'

  void read(ondemand::document& document) {
    const ondemand::json_type type = get(document.type());
    if (type == ondemand::json_type::array) {
      has_event_array = true;
      read_events(get(document.get_array()));
    } else if (type == ondemand::json_type::object) {
      for (auto field : get(document.get_object())) {
        const std::string_view key = get(field.unescaped_key());
        ondemand::value value = get(field.value());
        const ondemand::json_type field_type = get(value.type());
        if (key == "traceEvents" && field_type == ondemand::json_type::array) {
          has_event_array = true;
          read_events(get(value.get_array()));
        } else if (key == "deviceProperties" && field_type == ondemand::json_type::array) {
          read_devices(get(value.get_array()));
        } else {
          skip(value);
        }
      }
    } else {
      return;  // a scalar: no Chrome trace, refused as such
    }
    at_end(document);
  }

  /// What has been read: a batch refused part way is taken back with `restore`.
  struct Mark {
    std::size_t memory{0};
    std::map<std::int64_t, std::uint64_t> other_device_types;
    bool had_error{false};
    std::size_t devices{0};
    std::uint64_t events_seen{0};
  };
  [[nodiscard]] Mark mark() const {
    return {memory.size(), other_device_types, first_error.has_value(), devices.size(),
            events_seen};
  }
  void restore(Mark mark) {
    memory.resize(mark.memory);
    other_device_types = std::move(mark.other_device_types);
    if (!mark.had_error) first_error.reset();
    devices.resize(mark.devices);
    events_seen = mark.events_seen;
  }

  /// A batch of the event array's elements, as the array `[elements]`.
  void read_batch(ondemand::document& document) {
    read_events(get(document.get_array()));
    at_end(document);
  }

  /// One value of the root object other than the event array: deviceProperties, or skipped.
  void read_member(ondemand::document& document, bool device_properties) {
    const ondemand::json_type type = get(document.type());
    if (type != ondemand::json_type::object && type != ondemand::json_type::array) {
      skip_scalar(document);  // (a scalar document is no value to simdjson)
    } else if (device_properties && type == ondemand::json_type::array) {
      read_devices(get(document.get_array()));
    } else {
      ondemand::value value = get(document.get_value());
      skip(value);
    }
    at_end(document);
  }

  /// @return the value, or throws NotJson with simdjson's error
  template <class T>
  static T get(simdjson::simdjson_result<T>&& result) {
    T value{};
    if (const auto error = std::move(result).get(value); error != simdjson::SUCCESS) {
      throw NotJson{error, nullptr};
    }
    return value;
  }

 private:
  std::string file_;

  /// Anything after the document's value (the location is out of bounds only at the end).
  static void at_end(ondemand::document& document) {
    if (const char* rest = nullptr; document.current_location().get(rest) == simdjson::SUCCESS) {
      throw NotJson{simdjson::TRAILING_CONTENT, rest};
    }
  }

  void read_events(ondemand::array array) {
    for (auto element : array) {
      ondemand::value value = get(std::move(element));
      if (get(value.type()) != ondemand::json_type::object) {
        skip(value);
        continue;
      }
      read_event(get(value.get_object()), events_seen++);
    }
  }

  void read_event(ondemand::object object, std::uint64_t index) {
    RawEvent event;
    event.index = index;
    bool is_memory = false;
    for (auto field : object) {
      const std::string_view key = key_of(field);
      ondemand::value value = get(field.value());
      const ondemand::json_type type = get(value.type());
      if (key == "name" && type == ondemand::json_type::string) {
        is_memory = text_of(value) == "[memory]";
      } else if (key == "ts") {
        scalar(value, type, event.ts);
      } else if (key == "args" && type == ondemand::json_type::object) {
        event.has_args = true;
        read_args(get(value.get_object()), event);
      } else {
        skip(value);
      }
    }
    if (is_memory && !first_error) convert(event);
  }

  /// Keeps a "[memory]" event as the importer uses it (the file's error, or none for another
  /// device type).
  void convert(const RawEvent& e) {
    // Built only for an error: most files have millions of events and none.
    const auto where = [&] {
      return file_ + ": traceEvents index " + std::to_string(e.index) + " ([memory] event " +
             std::to_string(memory.size() + 1) + ")";
    };
    auto event = memory_event(e, where, other_device_types);
    if (!event) {
      first_error = event.error();
    } else if (*event) {
      memory.push_back(**event);
    }
  }

  void read_args(ondemand::object object, RawEvent& event) {
    for (auto field : object) {
      const std::string_view key = key_of(field);
      ondemand::value value = get(field.value());
      const ondemand::json_type type = get(value.type());
      Number* number = key == "Device Type"       ? &event.device_type
                       : key == "Device Id"       ? &event.device_id
                       : key == "Addr"            ? &event.address
                       : key == "Bytes"           ? &event.bytes
                       : key == "Total Allocated" ? &event.total_allocated
                       : key == "Total Reserved"  ? &event.total_reserved
                                                  : nullptr;
      if (number != nullptr) {
        scalar(value, type, *number);
      } else {
        skip(value);
      }
    }
  }

  void read_devices(ondemand::array array) {
    for (auto element : array) {
      ondemand::value value = get(std::move(element));
      if (get(value.type()) != ondemand::json_type::object) {
        skip(value);
        continue;
      }
      RawDevice& device = devices.emplace_back();
      for (auto field : get(value.get_object())) {
        const std::string_view key = get(field.unescaped_key());
        ondemand::value field_value = get(field.value());
        const ondemand::json_type type = get(field_value.type());
        if (key == "id") {
          scalar(field_value, type, device.id);
        } else if (key == "totalGlobalMem") {
          scalar(field_value, type, device.total);
        } else if (key == "name" && type == ondemand::json_type::string) {
          device.name = std::string(get(field_value.get_string()));
        } else {
          skip(field_value);
        }
      }
    }
  }

  /// @return the text of the string whose opening quote is just before `raw`, when it holds no
  /// escape (then it is valid JSON as it stands, nearly every string: simdjson's first stage has
  /// checked its UTF-8 and refused any control character in it)
  static std::optional<std::string_view> plain_string(const char* raw) noexcept {
    // simdjson's first stage found the closing quote: the scan ends there at the latest, and
    // the word read with it stays within simdjson's padding.
    for (const char* p = raw;; p += 8) {
      const std::uint64_t word = swar::load8(p);
      const std::uint64_t stops = swar::bytes_equal(word, '"') | swar::bytes_equal(word, '\\');
      if (stops != 0) {
        const char* at = p + std::countr_zero(stops) / 8;
        if (*at != '"') return std::nullopt;
        return std::string_view(raw, static_cast<std::size_t>(at - raw));
      }
    }
  }

  /// @return the field's key, without copying it unless it holds an escape
  template <class Field>  // an ondemand field, or simdjson's result holding one
  static std::string_view key_of(Field& field) {
    if (const auto plain = plain_string(get(field.key()).raw())) return *plain;
    return get(field.unescaped_key());
  }

  /// @return a string value's text, without copying it unless it holds an escape (either way
  /// the value is consumed: what follows it is checked as it comes, a ':' after it included)
  static std::string_view text_of(ondemand::value& value) {
    if (const auto plain = plain_string(value.raw_json_token().data() + 1)) {
      get(value.get_raw_json_string());
      return *plain;
    }
    return get(value.get_string());
  }

  /// @return whether `token` (a value's raw token: a number, and the blanks after it) is a JSON
  /// number (RFC 8259: any number of digits, any exponent)
  static bool is_json_number(std::string_view token) noexcept {
    while (!token.empty() && (token.back() == ' ' || token.back() == '\t' || token.back() == '\n' ||
                              token.back() == '\r')) {
      token.remove_suffix(1);
    }
    std::size_t i = 0;
    const auto digits = [&] {
      const std::size_t first = i;
      while (i < token.size() && textkit::is_digit(token[i]))
        ++i;
      return i > first;
    };
    if (i < token.size() && token[i] == '-') ++i;
    if (i < token.size() && token[i] == '0') {
      ++i;
    } else if (i >= token.size() || token[i] < '1' || token[i] > '9' || !digits()) {
      return false;
    }
    if (i < token.size() && token[i] == '.' && (++i, !digits())) return false;
    if (i < token.size() && (token[i] == 'e' || token[i] == 'E')) {
      ++i;
      if (i < token.size() && (token[i] == '+' || token[i] == '-')) ++i;
      if (!digits()) return false;
    }
    return i == token.size();
  }

  /// Reads a scalar into `number` (absent unless it is a number); an object or array is skipped
  /// and leaves `number` as it was.
  void scalar(ondemand::value& value, ondemand::json_type type, Number& number) {
    if (type == ondemand::json_type::object || type == ondemand::json_type::array) {
      skip(value);
      return;
    }
    if (type != ondemand::json_type::number) {
      skip_scalar(value);
      number = Number{};
      return;
    }
    number = read_number(value);
  }

  /// A number as a JSON reader that keeps 64-bit integers exact reports it: an integer that fits
  /// in int64 is integral; a larger one, or one with a fraction or an exponent, is real.
  template <class Value>  // an ondemand value or document
  static Number read_number(Value& value) {
    const std::string_view token = value.raw_json_token();
    ondemand::number number;
    if (const auto error = value.get_number().get(number); error != simdjson::SUCCESS) {
      // An integer past 2^64 - 1 is still a JSON number: its value as a double.
      double real = 0;
      if (error != simdjson::NUMBER_ERROR) {
        throw NotJson{error, token.data()};
      }
      if (const auto again = value.get_double().get(real); again != simdjson::SUCCESS) {
        throw NotJson{again, token.data()};
      }
      return Number{true, false, 0, real};
    }
    switch (number.get_number_type()) {
      case ondemand::number_type::signed_integer:
        return Number{true, true, number.get_int64(), static_cast<double>(number.get_int64())};
      case ondemand::number_type::unsigned_integer:
        return Number{true, false, 0, static_cast<double>(number.get_uint64())};
      case ondemand::number_type::floating_point_number:
        break;
    }
    return Number{true, false, 0, number.get_double()};
  }

  /// How deep objects and arrays may nest in a value the importer skips (a Chrome trace nests
  /// a few levels; the walk is recursive, so its depth is bounded).
  static constexpr int max_skip_depth = 1024;

  /// Reads a value the importer does not need to its end, so that what is not JSON is refused.
  void skip(ondemand::value& value, int depth = 0) {
    if (depth > max_skip_depth) {
      throw NotJson{simdjson::DEPTH_ERROR, value.raw_json_token().data()};
    }
    switch (get(value.type())) {
      case ondemand::json_type::object:
        for (auto field : get(value.get_object())) {
          key_of(field);
          ondemand::value inner = get(field.value());
          skip(inner, depth + 1);
        }
        break;
      case ondemand::json_type::array:
        for (auto element : get(value.get_array())) {
          ondemand::value inner = get(std::move(element));
          skip(inner, depth + 1);
        }
        break;
      default:
        skip_scalar(value);
        break;
    }
  }

  /// Reads a scalar the importer does not need, so that what is not JSON is refused: a value's
  /// number and string are checked where they stand (never converted nor copied); a document's
  /// are read, as it must be read to its end.
  template <class Value>  // an ondemand value or document
  static void skip_scalar(Value& value) {
    constexpr bool in_place = std::is_same_v<Value, ondemand::value>;
    switch (get(value.type())) {
      case ondemand::json_type::number:
        if constexpr (in_place) {
          if (const std::string_view token = value.raw_json_token(); !is_json_number(token)) {
            throw NotJson{simdjson::NUMBER_ERROR, token.data()};
          }
        } else {
          read_number(value);
        }
        break;
      case ondemand::json_type::string:
        if constexpr (in_place) {
          text_of(value);
        } else {
          get(value.get_string());
        }
        break;
      case ondemand::json_type::boolean:
        get(value.get_bool());
        break;
      case ondemand::json_type::null:
        if (!get(value.is_null())) throw NotJson{simdjson::N_ATOM_ERROR, nullptr};
        break;
      default:
        break;
    }
  }
};

}  // namespace

namespace {

static_assert(json_padding_bytes >= simdjson::SIMDJSON_PADDING);

/// The longest JSON value the window grows to hold: an event, or a member of the root object
/// (the event array is read a batch at a time).
constexpr std::size_t max_kineto_value_bytes = std::size_t{256} << 20U;

/// A `std::streambuf` over a byte source, for the byte-by-byte reader that locates a fault.
class SourceStreamBuffer final : public std::streambuf {
 public:
  explicit SourceStreamBuffer(ByteSource& source) : source_(source), buffer_(64 * 1024) {}

  /// @return the bytes read so far
  [[nodiscard]] std::uint64_t total() const { return total_; }

 protected:
  int_type underflow() override {
    auto got = source_.read(buffer_.data(), buffer_.size());
    if (!got || *got == 0) return traits_type::eof();
    total_ += *got;
    setg(buffer_.data(), buffer_.data(), buffer_.data() + *got);
    return traits_type::to_int_type(buffer_[0]);
  }

 private:
  ByteSource& source_;
  std::vector<char> buffer_;
  std::uint64_t total_{0};
};

/// Where a value that `value_extent` scans ends.
enum class Extent : std::uint8_t {
  complete,    ///< it ends before the bytes do
  incomplete,  ///< the bytes end first (read more)
  invalid,     ///< no JSON value starts here
};

[[nodiscard]] constexpr bool is_json_blank(char c) {
  return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

/**
 * @brief The end of the JSON value that starts at `p`, found without parsing it: strings (with
 * their escapes) and the nesting of objects and arrays are followed, everything else is left to
 * the parser, which reads the value afterwards. A scalar ends at a blank or a structural
 * character (or at the end of the bytes when `at_eof`).
 */
Extent value_extent(const char* p, const char* end, bool at_eof, const char*& value_end) {
  if (p == end) return at_eof ? Extent::invalid : Extent::incomplete;
  const auto after_string = [end](const char* q) -> const char* {  // q: after the opening quote
    for (;;) {
      const auto* quote =
          static_cast<const char*>(std::memchr(q, '"', static_cast<std::size_t>(end - q)));
      if (quote == nullptr) return nullptr;
      std::size_t backslashes = 0;
      for (const char* b = quote; b != q && *(b - 1) == '\\'; --b)
        ++backslashes;
      if (backslashes % 2 == 0) return quote + 1;
      q = quote + 1;
    }
  };
  const char c = *p;
  if (c == '"') {
    value_end = after_string(p + 1);
    return value_end != nullptr ? Extent::complete : Extent::incomplete;
  }
  if (c == '{' || c == '[') {
    std::size_t depth = 0;
    for (const char* q = p; q != end;) {
      const char d = *q;
      if (d == '"') {
        q = after_string(q + 1);
        if (q == nullptr) return Extent::incomplete;
        continue;
      }
      if (d == '{' || d == '[') {
        ++depth;
      } else if ((d == '}' || d == ']') && --depth == 0) {
        value_end = q + 1;
        return Extent::complete;
      }
      ++q;
    }
    return Extent::incomplete;
  }
  if (c == ',' || c == ':' || c == '}' || c == ']') return Extent::invalid;
  for (const char* q = p; q != end; ++q) {
    const char d = *q;
    if (is_json_blank(d) || d == ',' || d == ':' || d == '}' || d == ']' || d == '{' || d == '[' ||
        d == '"') {
      value_end = q;
      return Extent::complete;
    }
  }
  value_end = end;
  return at_eof ? Extent::complete : Extent::incomplete;
}

/**
 * @brief A Chrome trace read in windows: the root object's members one by one, and the event
 * array in batches of whole elements, each parsed by simdjson as the array `[elements]`.
 *
 * A batch ends where the window's last `},` is when simdjson accepts the batch that way (a cut
 * inside a string or a nested value leaves the batch unbalanced, so simdjson refuses it);
 * otherwise the elements are delimited one by one by `value_extent`. A value longer than the
 * window grows it (to `max_kineto_value_bytes`). What is not JSON is located afterwards, by a
 * reader that checks every byte in order, over the file opened again.
 */
class KinetoStream {
 public:
  KinetoStream(ByteSource& source, std::size_t window, KinetoReader& handler)
      : source_(source), handler_(handler), buffer_(std::max<std::size_t>(window, 1)) {}

  /// Reads the whole file. @return nothing, or where it stops being JSON (`fault_`)
  Result<void> read() {
    try {
      root();
    } catch (const NotJson&) {
      return Error::parse_error("not JSON");  // fault_ says where
    }
    return {};
  }

  /// Where the file stopped being JSON for simdjson or the window reader: its error, and the
  /// file offset (null: the end of the file).
  struct Fault {
    simdjson::error_code code{simdjson::SUCCESS};
    std::optional<std::uint64_t> offset;
  };
  [[nodiscard]] const Fault& fault() const { return fault_; }
  /// @return the source's own error (a corrupt compressed file), when reading failed on it
  [[nodiscard]] const std::optional<Error>& read_error() const { return read_error_; }

 private:
  // ---- the window: buffer_[begin_, end_) read and not yet consumed, at file offset base_ + i ----

  [[noreturn]] void fail(simdjson::error_code code, std::optional<std::uint64_t> offset) {
    fault_ = Fault{code, offset};
    throw NotJson{code, nullptr};
  }
  [[noreturn]] void fail_at(std::size_t i) { fail(simdjson::TAPE_ERROR, base_ + i); }

  /// Reads more behind what is unconsumed (moved to the front; the buffer doubles when it is full
  /// of it). @return false at the end of the file
  bool more() {
    if (eof_) return false;
    if (begin_ > 0) {
      std::memmove(buffer_.data(), buffer_.data() + begin_, end_ - begin_);
      base_ += begin_;
      end_ -= begin_;
      begin_ = 0;
    }
    if (end_ == buffer_.size()) {
      if (buffer_.size() >= max_kineto_value_bytes) fail(simdjson::CAPACITY, base_);
      buffer_.resize(std::min(buffer_.size() * 2, max_kineto_value_bytes));
    }
    const std::size_t before = end_;
    while (end_ < buffer_.size()) {
      auto got = source_.read(buffer_.data() + end_, buffer_.size() - end_);
      if (!got) {
        read_error_ = got.error();
        fail(simdjson::IO_ERROR, base_ + end_);
      }
      if (*got == 0) {
        eof_ = true;
        break;
      }
      end_ += *got;
    }
    return end_ > before;
  }

  /// Skips blanks, reading more as needed. @return the next byte, or nothing at the end
  std::optional<char> peek() {
    for (;;) {
      while (begin_ < end_ && is_json_blank(buffer_[begin_]))
        ++begin_;
      if (begin_ < end_) return buffer_[begin_];
      if (!more()) return std::nullopt;
    }
  }

  /// The next value whole (the window grows to hold it). @return its end in the buffer
  std::size_t whole_value() {
    for (;;) {
      const char* value_end = nullptr;
      const char* data = buffer_.data();
      switch (value_extent(data + begin_, data + end_, eof_, value_end)) {
        case Extent::complete:
          return static_cast<std::size_t>(value_end - data);
        case Extent::invalid:
          fail_at(begin_);
        case Extent::incomplete:
          if (!more()) fail(simdjson::INCOMPLETE_ARRAY_OR_OBJECT, std::nullopt);
          break;
      }
    }
  }

  // ---- parsing what the window delimits ----

  /// Parses `prefix` + buffer_[from, to) + `suffix` with simdjson, then `read` on the document.
  /// @return false when simdjson refuses it (`where`: its file offset, when simdjson says)
  template <class Read>
  bool parse(std::size_t from, std::size_t to, std::string_view prefix, std::string_view suffix,
             Read&& read, std::optional<std::uint64_t>& where, simdjson::error_code& code) {
    const std::size_t length = prefix.size() + (to - from) + suffix.size();
    if (batch_.size() < length + simdjson::SIMDJSON_PADDING) {
      batch_.resize(length + simdjson::SIMDJSON_PADDING);
    }
    char* out = batch_.data();
    // (std::copy: an empty prefix or suffix has no data to give memcpy.)
    std::copy(prefix.begin(), prefix.end(), out);
    std::copy(buffer_.data() + from, buffer_.data() + to, out + prefix.size());
    std::copy(suffix.begin(), suffix.end(), out + prefix.size() + (to - from));
    ondemand::document document;
    try {
      if (const auto error =
              parser_.iterate(simdjson::padded_string_view(out, length, batch_.size()))
                  .get(document);
          error != simdjson::SUCCESS) {
        throw NotJson{error, nullptr};
      }
      read(document);
    } catch (const NotJson& not_json) {
      code = not_json.code;
      where.reset();
      if (not_json.where != nullptr) {
        const auto at = static_cast<std::size_t>(not_json.where - out);
        const std::size_t in = at < prefix.size() ? 0 : std::min(at - prefix.size(), to - from);
        where = base_ + from + in;
      }
      return false;
    }
    return true;
  }

  /// Parses a value that must be JSON: a fault is the file's.
  template <class Read>
  void parse_or_fail(std::size_t from, std::size_t to, std::string_view prefix,
                     std::string_view suffix, Read&& read) {
    std::optional<std::uint64_t> where;
    simdjson::error_code code = simdjson::SUCCESS;
    if (!parse(from, to, prefix, suffix, std::forward<Read>(read), where, code)) fail(code, where);
  }

  // ---- the structure ----

  void root() {
    const std::optional<char> first = peek();
    if (first == '[') {
      ++begin_;
      handler_.has_event_array = true;
      event_array();
    } else if (first == '{') {
      ++begin_;
      object_members();
    } else {
      // A scalar (or not JSON): read whole as before, which refuses it.
      if (!first) fail(simdjson::EMPTY, std::nullopt);
      const std::size_t value_end = whole_value();
      parse_or_fail(begin_, value_end, {}, {},
                    [this](ondemand::document& document) { handler_.read(document); });
      begin_ = value_end;
    }
    if (peek()) fail_at(begin_);  // text after the root value
  }

  void object_members() {
    std::optional<char> next = peek();
    if (next == '}') {
      ++begin_;
      return;
    }
    for (;;) {
      if (next != '"')
        next ? fail_at(begin_) : fail(simdjson::INCOMPLETE_ARRAY_OR_OBJECT, std::nullopt);
      const std::size_t key_end = whole_value();
      std::string key;
      parse_or_fail(begin_, key_end, {}, {}, [&key](ondemand::document& document) {
        key = std::string(KinetoReader::get(document.get_string()));
      });
      begin_ = key_end;
      if (peek() != ':')
        peek() ? fail_at(begin_) : fail(simdjson::INCOMPLETE_ARRAY_OR_OBJECT, std::nullopt);
      ++begin_;
      next = peek();
      if (key == "traceEvents" && next == '[') {
        ++begin_;
        handler_.has_event_array = true;
        event_array();
      } else {
        if (!next) fail(simdjson::INCOMPLETE_ARRAY_OR_OBJECT, std::nullopt);
        const std::size_t value_end = whole_value();
        const bool devices = key == "deviceProperties";
        parse_or_fail(begin_, value_end, {}, {}, [this, devices](ondemand::document& document) {
          handler_.read_member(document, devices);
        });
        begin_ = value_end;
      }
      next = peek();
      if (next == '}') {
        ++begin_;
        return;
      }
      if (next != ',')
        next ? fail_at(begin_) : fail(simdjson::INCOMPLETE_ARRAY_OR_OBJECT, std::nullopt);
      ++begin_;
      next = peek();
    }
  }

  /// @return where a batch that starts at `from` may end: after the window's last `}` that a
  /// comma follows (`cut`), with the next element after that comma (`resume`)
  [[nodiscard]] std::optional<std::pair<std::size_t, std::size_t>> guess_cut(
      std::size_t from) const {
    const char* data = buffer_.data();
    std::size_t at = end_;
    while (at > from) {
      const auto* comma = static_cast<const char*>(memrchr(data + from, ',', at - from));
      if (comma == nullptr) return std::nullopt;
      std::size_t before = static_cast<std::size_t>(comma - data);
      at = before;
      while (before > from && is_json_blank(data[before - 1]))
        --before;
      if (before > from && data[before - 1] == '}') return std::pair{before, at + 1};
    }
    return std::nullopt;
  }

  /// What the event array expects next.
  enum class Expect : std::uint8_t { value_or_end, value, comma_or_end };

  /// The elements of the event array, after its `[`, to its `]`.
  void event_array() {
    Expect expect = Expect::value_or_end;
    const auto read_batch = [this](ondemand::document& document) { handler_.read_batch(document); };
    for (;;) {
      std::optional<char> next = peek();
      if (!next) fail(simdjson::INCOMPLETE_ARRAY_OR_OBJECT, std::nullopt);
      // Whole windows at once, cut after their last "}," where simdjson agrees.
      if (expect != Expect::comma_or_end && *next != ']' && !eof_) {
        if (const auto cut = guess_cut(begin_)) {
          std::optional<std::uint64_t> where;
          simdjson::error_code code = simdjson::SUCCESS;
          const KinetoReader::Mark mark = handler_.mark();
          if (parse(begin_, cut->first, "[", "]", read_batch, where, code)) {
            begin_ = cut->second;
            expect = Expect::value;
            continue;
          }
          handler_.restore(mark);  // what simdjson read of it before refusing it is read again
        }
      }
      // Element by element to the window's end (its end, or a fault, is then certain).
      std::size_t at = begin_;
      std::optional<std::size_t> batch_from;
      std::size_t batch_to = 0;
      bool closed = false;
      const char* data = buffer_.data();
      for (;;) {
        while (at < end_ && is_json_blank(data[at]))
          ++at;
        if (at == end_) break;
        const char c = data[at];
        if (expect == Expect::comma_or_end) {
          if (c == ',') {
            ++at;
            expect = Expect::value;
            continue;
          }
          if (c != ']') fail_at(at);
          ++at;
          closed = true;
          break;
        }
        if (c == ']' && expect == Expect::value_or_end) {
          ++at;
          closed = true;
          break;
        }
        const char* value_end = nullptr;
        const Extent extent = value_extent(data + at, data + end_, eof_, value_end);
        if (extent == Extent::invalid) fail_at(at);
        if (extent == Extent::incomplete) break;
        if (!batch_from) batch_from = at;
        at = static_cast<std::size_t>(value_end - data);
        batch_to = at;
        expect = Expect::comma_or_end;
      }
      if (batch_from) parse_or_fail(*batch_from, batch_to, "[", "]", read_batch);
      begin_ = at;
      if (closed) return;
      if (!more()) fail(simdjson::INCOMPLETE_ARRAY_OR_OBJECT, std::nullopt);
    }
  }

  ByteSource& source_;
  KinetoReader& handler_;
  std::vector<char, detail::HugePageAllocator<char>> buffer_;
  std::size_t begin_{0};
  std::size_t end_{0};
  std::uint64_t base_{0};  ///< the file offset of buffer_[0]
  bool eof_{false};
  /// What simdjson parses, with its padding.
  std::vector<char, detail::HugePageAllocator<char>> batch_;
  ondemand::parser parser_;
  Fault fault_;
  std::optional<Error> read_error_;
};

/**
 * @brief Reads the file's memory events and devices into `handler`, in windows of `window` bytes.
 * @param open opens the file (again, only to locate a fault in a file that is not JSON)
 */
Result<void> read_kineto_json(const KinetoSourceOpener& open, const std::string& file,
                              std::size_t window, KinetoReader& handler) {
  auto source = open();
  if (!source) return source.error();
  KinetoStream stream(**source, window, handler);
  if (auto ok = stream.read(); !ok) {
    if (stream.read_error()) return *stream.read_error();
    if (stream.fault().code == simdjson::CAPACITY) {
      return Error::parse_error(file + ": byte " + std::to_string(*stream.fault().offset) +
                                ": a JSON value longer than " +
                                std::to_string(max_kineto_value_bytes) +
                                " bytes, the most one event (or one member of the root object) "
                                "may hold (see docs/limits.md)");
    }
    auto again = open();
    if (!again) return again.error();
    SourceStreamBuffer buffer(**again);
    std::istream in(&buffer);
    FirstJsonError first;
    if (!nlohmann::json::sax_parse(in, &first)) {
      return Error::parse_error(
          file + ": byte " + std::to_string(first.byte) +
          ": not valid JSON (expected a Chrome trace from torch.profiler): " + first.error);
    }
    // JSON to a reader without simdjson's limits (a nesting depth past 1024, ...).
    const KinetoStream::Fault fault = stream.fault();
    const std::uint64_t byte = std::min(fault.offset.value_or(buffer.total()), buffer.total());
    return Error::parse_error(file + ": byte " + std::to_string(byte) +
                              ": cannot read this JSON (expected a Chrome trace from "
                              "torch.profiler): " +
                              simdjson::error_message(fault.code));
  }
  if (!handler.has_event_array) {
    return Error::parse_error(file +
                              ": not a Chrome trace: expected an object with 'traceEvents' or an "
                              "array of events (a torch.profiler trace exported with "
                              "export_chrome_trace)");
  }
  return {};
}

/// @return the CPU and CUDA memory events in time order (ties in file order), the others
/// counted in the report's notes; an error when there are none
Result<MemoryEvents> memory_events(KinetoReader& handler, const std::string& file,
                                   ImportReport& report) {
  if (handler.first_error) return *handler.first_error;
  MemoryEvents memory = std::move(handler.memory);
  for (const auto& [type, count] : handler.other_device_types) {
    report.skipped += count;
    report.notes.push_back(std::to_string(count) + " [memory] events on Device Type " +
                           std::to_string(type) + " (neither CPU 0 nor CUDA 1): not imported");
  }
  if (memory.empty()) {
    return Error::parse_error(file +
                              ": a JSON file with no CPU or CUDA [memory] events among its " +
                              std::to_string(handler.events_seen) +
                              " trace events: nothing to replay (record with "
                              "torch.profiler.profile(profile_memory=True))");
  }
  // Events are written per thread; their time orders them (ties keep file order).
  const auto earlier = [](const MemoryEvent& a, const MemoryEvent& b) {
    const double a_ts = a.ts();
    const double b_ts = b.ts();
    return a_ts != b_ts ? a_ts < b_ts : a.json_index < b.json_index;
  };
  if (!std::is_sorted(memory.begin(), memory.end(), earlier)) {
    std::sort(memory.begin(), memory.end(), earlier);
  }
  return memory;
}

/// The trace's header: deviceProperties gives each GPU's total (the recording ran on the whole
/// device), kept only when it describes every GPU the events use.
TraceHeader kineto_header(const KinetoReader& handler, const MemoryEvents& memory,
                          const std::string& file, ImportReport& report) {
  TraceHeader header;
  header.source = "kineto " + file + " (" + std::to_string(memory.size()) + " [memory] events)";
  if (handler.devices.empty()) return header;
  GpuConfig config;
  config.memory_fraction = Fraction::of(1, 1).value();
  for (const RawDevice& device : handler.devices) {
    if (!device.id.integral || !device.total.integral || device.id.integer < 0 ||
        device.id.integer > INT32_MAX || device.total.integer <= 0) {
      continue;
    }
    GpuSpec gpu;
    gpu.id = static_cast<std::uint32_t>(device.id.integer);
    gpu.total_bytes = static_cast<std::uint64_t>(device.total.integer);
    gpu.name = detail::printable(device.name);
    config.gpus.push_back(std::move(gpu));
  }
  bool every_gpu_declared = true;
  for (const MemoryEvent& event : memory) {
    if (!event.on_gpu) continue;
    every_gpu_declared = every_gpu_declared &&
                         std::any_of(config.gpus.begin(), config.gpus.end(),
                                     [&](const GpuSpec& gpu) { return gpu.id == event.gpu_id; });
  }
  if (every_gpu_declared && !config.gpus.empty() && validate(config)) {
    header.config = std::move(config);
  } else {
    report.notes.emplace_back(
        "deviceProperties does not describe every device used: no device table (replay with "
        "--profile)");
  }
  return header;
}

/// Writes the events to the sink, counted in the report.
struct KinetoEmitter {
  TraceSink& sink;
  ImportReport& report;

  Result<void> emit(const TraceEvent& event) {
    ++report.events;
    return sink.event(event);
  }

  /// Memory in use before each device's first event: its "Total Allocated" minus its own change.
  Result<void> baselines(const MemoryEvents& memory, const std::string& file) {
    std::map<DevicePlacement, bool> seen;
    for (const MemoryEvent& event : memory) {
      const DevicePlacement device = event.device();
      if (seen[device] || !event.has_total_allocated) continue;
      seen[device] = true;
      const std::int64_t before = static_cast<std::int64_t>(event.total_allocated) - event.bytes;
      if (before < 0) {
        return Error::parse_error(file + ": traceEvents index " + std::to_string(event.json_index) +
                                  ": 'Total Allocated' " + std::to_string(event.total_allocated) +
                                  " is less than its own allocation of " +
                                  std::to_string(event.bytes) + " bytes");
      }
      if (before == 0) continue;
      sink.origin(event.json_index);
      TraceEvent baseline = TraceEvent::allocate(device, static_cast<std::uint64_t>(before));
      baseline.kind = TraceEvent::Kind::Baseline;
      if (auto ok = emit(baseline); !ok) return ok.error();
      report.notes.push_back("baseline: " + std::to_string(before) +
                             " bytes already allocated on " + device.to_string() +
                             " when the recording started");
    }
    return {};
  }

  /// Each memory event as an alloc or a free, followed by a check of its "Total Allocated".
  Result<void> operations(const MemoryEvents& memory) {
    for (const MemoryEvent& m : memory) {
      const std::uint64_t size = m.bytes < 0 ? static_cast<std::uint64_t>(-(m.bytes + 1)) + 1
                                             : static_cast<std::uint64_t>(m.bytes);
      sink.origin(m.json_index);
      TraceEvent event =
          m.bytes < 0 ? TraceEvent::free(m.device(), size) : TraceEvent::allocate(m.device(), size);
      event.address = m.address;
      if (m.ts_is_integer) {
        event.time_ns = checked_mul(m.ts_bits, 1000);
      } else if (const double ts = m.ts(); ts >= 0 && ts < 1.8e16) {    // microseconds that fit
        event.time_ns = static_cast<std::uint64_t>(ts * 1000.0 + 0.5);  // in 64-bit nanoseconds
      }
      if (auto ok = emit(event); !ok) return ok.error();
      if (!m.has_total_allocated) continue;
      TraceEvent check;
      check.kind = TraceEvent::Kind::Check;
      check.device = m.device();
      check.check_allocated = m.total_allocated;
      if (m.has_total_reserved) check.check_reserved = m.total_reserved;
      if (auto ok = emit(check); !ok) return ok.error();
    }
    return {};
  }
};

}  // namespace

Result<ImportReport> import_kineto(const KinetoSourceOpener& open, std::string_view name,
                                   TraceSink& sink, std::size_t window_bytes) {
  const std::string file(name);
  KinetoReader handler(file);
  if (auto ok = read_kineto_json(open, file, window_bytes, handler); !ok) return ok.error();
  ImportReport report;
  report.origin_unit = "traceEvents index";
  auto memory = memory_events(handler, file, report);
  if (!memory) return memory.error();
  if (auto ok = sink.header(kineto_header(handler, *memory, file, report)); !ok) {
    return ok.error();
  }
  KinetoEmitter emitter{sink, report};
  if (auto ok = emitter.baselines(*memory, file); !ok) return ok.error();
  if (auto ok = emitter.operations(*memory); !ok) return ok.error();
  return report;
}

Result<ImportReport> import_kineto(std::string_view bytes, std::string_view name, TraceSink& sink,
                                   std::size_t /*spare_capacity*/) {
  return import_kineto(
      [bytes]() -> Result<std::unique_ptr<ByteSource>> {
        return std::unique_ptr<ByteSource>(std::make_unique<detail::ViewSource>(bytes));
      },
      name, sink);
}

}  // namespace memtrack::traces
