#include "pickle.hpp"

#include <bit>
#include <cstdio>
#include <cstring>
#include <limits>
#include <optional>
#include <unordered_map>

namespace memtrack::traces::pickle {
namespace {

/// What one memo entry costs the reader (an unordered_map node and its bucket), for the bound.
constexpr std::uint64_t memo_entry_bytes = 48;

/// @return `a + b`, or the largest value when it does not fit (sizes past a bound are refused)
std::uint64_t saturating_add(std::uint64_t a, std::uint64_t b) {
  return a > std::numeric_limits<std::uint64_t>::max() - b
             ? std::numeric_limits<std::uint64_t>::max()
             : a + b;
}

class Parser {
 public:
  Parser(std::string_view bytes, std::string_view name)
      : bytes_(bytes),
        name_(name),
        max_held_(saturating_add(held_bytes_floor, bytes.size() * max_held_bytes_per_input_byte)),
        max_tree_size_(saturating_add(values_floor, bytes.size() * max_values_per_input_byte)) {}

  Result<Document> run() {
    while (true) {
      if (position_ >= bytes_.size()) return fail("truncated: the pickle ends before STOP");
      opcode_offset_ = position_;
      const auto op = static_cast<unsigned char>(bytes_[position_++]);
      if (op == '.') break;  // STOP
      if (auto ok = step(op); !ok) return ok.error();
    }
    if (stack_.size() != 1 || !marks_.empty()) {
      return fail("STOP with " + std::to_string(stack_.size()) +
                  " values on the stack, expected exactly one");
    }
    document_.root = stack_.back();
    if (auto ok = measure(); !ok) return ok.error();
    return std::move(document_);
  }

 private:
  Error fail(const std::string& what) const { return fail_at(opcode_offset_, what); }

  Error fail_at(std::uint64_t offset, const std::string& what) const {
    return Error::parse_error(std::string(name_) + ": byte " + std::to_string(offset) + ": " +
                              what);
  }

  /// Counts `bytes` more held by the reader; refuses past the bound (a bomb of small opcodes).
  [[gnu::always_inline]] Result<void> hold(std::uint64_t bytes) {
    held_ = saturating_add(held_, bytes);
    if (held_ > max_held_) [[unlikely]]
      return bomb();
    return {};
  }

  [[nodiscard]] Error bomb() const {
    return fail("the data needs more than " + std::to_string(max_held_) +
                " bytes of memory to read (at most " +
                std::to_string(max_held_bytes_per_input_byte) +
                " per input byte, see docs/limits.md): refused as a pickle bomb");
  }

  /**
   * @brief Walks the finished document once (children before parents, shared values once) to
   * give each value its tree size and to refuse cycles, nesting past `max_depth`, and data that
   * expands through shared references past the bound: a consumer may then walk it as a tree.
   */
  Result<void> measure() {
    struct Step {
      Value* value;
      std::size_t next;  ///< the next child to visit
      std::uint64_t depth;
    };
    std::vector<Step> path;
    const auto child = [](const Value& value, std::size_t i) -> const Value* {
      return i < value.items.size() ? value.items[i] : nullptr;
    };
    auto* root = const_cast<Value*>(document_.root);  // NOLINT: built by this parser
    root->visit = 1;
    path.push_back({root, 0, 1});
    while (!path.empty()) {
      Step& step = path.back();
      Value& value = *step.value;
      if (const Value* next = child(value, step.next++); next != nullptr) {
        auto* next_value = const_cast<Value*>(next);  // NOLINT: built by this parser
        if (next_value->visit == 1) {
          return fail_at(next_value->offset, "a " + std::string(next_value->kind_name()) +
                                                 " that contains itself: a memory snapshot "
                                                 "has no cycles");
        }
        if (next_value->visit == 0) {
          if (step.depth + 1 > max_depth) {
            return fail_at(next_value->offset, "nested deeper than " + std::to_string(max_depth) +
                                                   " (see docs/limits.md)");
          }
          next_value->visit = 1;
          path.push_back({next_value, 0, step.depth + 1});
        }
        continue;
      }
      // Every child is done: this value's size and height follow from theirs.
      std::uint64_t size = 1;
      std::uint64_t height = 1;
      for (std::size_t i = 0; const Value* item = child(value, i); ++i) {
        size = saturating_add(size, item->tree_size);
        height = std::max<std::uint64_t>(height, item->height + 1U);
      }
      if (size > max_tree_size_) {
        return fail_at(value.offset,
                       "the data expands through shared (memo) references to more than " +
                           std::to_string(max_tree_size_) + " values (at most " +
                           std::to_string(max_values_per_input_byte) +
                           " per input byte, see docs/limits.md): refused as a pickle bomb");
      }
      if (step.depth + height - 1 > max_depth) {
        return fail_at(value.offset,
                       "nested deeper than " + std::to_string(max_depth) + " (see docs/limits.md)");
      }
      value.tree_size = size;
      value.visit = 2;
      value.height = static_cast<std::uint16_t>(height);  // at most max_depth, checked above
      path.pop_back();
    }
    return {};
  }

  /// The next `n` bytes; past the end of the data, the error says how many were left.
  [[gnu::always_inline]] Result<std::string_view> take(std::uint64_t n) {
    if (n > bytes_.size() - position_) [[unlikely]]
      return truncated(n);
    const std::string_view out = bytes_.substr(position_, static_cast<std::size_t>(n));
    position_ += static_cast<std::size_t>(n);
    return out;
  }

  [[nodiscard]] Error truncated(std::uint64_t n) const {
    return fail("truncated: needs " + std::to_string(n) + " more bytes, " +
                std::to_string(bytes_.size() - position_) + " left");
  }

  /// The next `n` bytes (1 to 8) as a little-endian unsigned number.
  [[gnu::always_inline]] Result<std::uint64_t> unsigned_le(std::size_t n) {
    if (n > bytes_.size() - position_) [[unlikely]]
      return truncated(n);
    std::uint64_t value = 0;
    for (std::size_t i = 0; i < n; ++i) {
      value |= static_cast<std::uint64_t>(static_cast<unsigned char>(bytes_[position_ + i]))
               << (8 * i);
    }
    position_ += n;
    return value;
  }

  Result<Value*> make(Value::Kind kind) {
    if (auto ok = hold(sizeof(Value)); !ok) return ok.error();
    Value& value = document_.values.emplace_back();
    value.kind = kind;
    value.offset = opcode_offset_;
    return &value;
  }

  [[gnu::always_inline]] Result<void> push(const Value* value) {
    if (stack_.size() == stack_high_water_) [[unlikely]] {
      if (auto ok = hold(sizeof(const Value*)); !ok) return ok;
      ++stack_high_water_;
    }
    stack_.push_back(value);
    return {};
  }

  Result<void> push_new(Value::Kind kind) {
    auto value = make(kind);
    if (!value) return value.error();
    return push(*value);
  }

  Result<const Value*> pop() {
    if (stack_.empty() || (!marks_.empty() && stack_.size() == marks_.back())) {
      return fail("stack underflow (corrupt pickle)");
    }
    const Value* value = stack_.back();
    stack_.pop_back();
    return value;
  }

  Result<const Value*> top() {
    if (stack_.empty() || (!marks_.empty() && stack_.size() == marks_.back())) {
      return fail("stack underflow (corrupt pickle)");
    }
    return stack_.back();
  }

  /// Pops everything above the last MARK into `popped_` (kept from call to call: no allocation
  /// once it has grown), and the mark.
  Result<void> pop_mark() {
    if (marks_.empty()) return fail("no MARK to pop to (corrupt pickle)");
    const std::size_t mark = marks_.back();
    marks_.pop_back();
    const std::size_t count = stack_.size() - mark;
    if (count > popped_high_water_) {  // held like the stack's own slots
      if (auto ok = hold((count - popped_high_water_) * sizeof(const Value*)); !ok) return ok;
      popped_high_water_ = count;
    }
    popped_.assign(stack_.begin() + static_cast<std::ptrdiff_t>(mark), stack_.end());
    stack_.resize(mark);
    return {};
  }

  /// The container to append to: a List on the stack (values are const once pushed; the memo
  /// and stack hold the only handles, so the parser may fill its own containers).
  Result<Value*> mutable_top(Value::Kind kind, std::string_view opcode) {
    auto value = top();
    if (!value) return value.error();
    if ((*value)->kind != kind) {
      return fail(std::string(opcode) + " on a " + std::string((*value)->kind_name()) +
                  ", expected a " + (kind == Value::Kind::List ? "list" : "dict"));
    }
    return const_cast<Value*>(*value);  // NOLINT: built by this parser, in document_.values
  }

  Result<void> add_items(const std::vector<const Value*>& items) {
    auto list = mutable_top(Value::Kind::List, "APPEND(S)");
    if (!list) return list.error();
    if (auto ok = hold(items.size() * sizeof(const Value*)); !ok) return ok;
    (*list)->items.insert((*list)->items.end(), items.begin(), items.end());
    return {};
  }

  Result<void> set_items(const std::vector<const Value*>& items) {
    if (items.size() % 2 != 0) return fail("SETITEMS with an odd number of values");
    auto dict = mutable_top(Value::Kind::Dict, "SETITEM(S)");
    if (!dict) return dict.error();
    if (auto ok = hold(items.size() * sizeof(const Value*)); !ok) return ok;
    (*dict)->items.insert((*dict)->items.end(), items.begin(), items.end());
    return {};
  }

  Result<void> push_text(Value::Kind kind, std::uint64_t length) {
    auto raw = take(length);
    if (!raw) return raw.error();
    if (auto ok = hold(length); !ok) return ok;
    auto value = make(kind);
    if (!value) return value.error();
    (*value)->text = *raw;
    return push(*value);
  }

  Result<void> push_int(bool negative, std::uint64_t magnitude, bool wide = false) {
    auto value = make(Value::Kind::Int);
    if (!value) return value.error();
    (*value)->negative = negative && (wide || magnitude != 0);
    (*value)->magnitude = wide ? 0 : magnitude;
    (*value)->wide = wide;
    return push(*value);
  }

  /// LONG1 / LONG4: a little-endian two's complement integer of any width, kept as its sign and
  /// magnitude (Python 3.13 writes 2^64 - 1 as 9 bytes); the consumer decides what fits a field.
  Result<void> push_long(std::uint64_t length) {
    auto raw = take(length);
    if (!raw) return raw.error();
    const bool negative = length > 0 && (static_cast<unsigned char>((*raw)[length - 1]) & 0x80U);
    // The magnitude, byte by byte from the least significant: a negative value is negated
    // (inverted, plus one, the carry running upward).
    std::uint64_t magnitude = 0;
    bool wide = false;
    unsigned carry = negative ? 1U : 0U;
    for (std::size_t i = 0; i < length; ++i) {
      unsigned byte = static_cast<unsigned char>((*raw)[i]);
      if (negative) {
        byte = (~byte & 0xFFU) + carry;
        carry = byte >> 8U;
        byte &= 0xFFU;
      }
      if (i < 8) {
        magnitude |= static_cast<std::uint64_t>(byte) << (8 * i);
      } else if (byte != 0) {
        wide = true;
      }
    }
    return push_int(negative, magnitude, wide);
  }

  // The memo: the indexes a pickler gives in order (MEMOIZE, and BINPUT as CPython writes it) in
  // a vector, any other in a map. Together they hold what Python's memo dict would.

  Result<void> memo_put(std::uint64_t index) {
    auto value = top();
    if (!value) return value.error();
    if (index < memo_dense_.size()) {
      memo_dense_[static_cast<std::size_t>(index)] = *value;
      return {};
    }
    if (index == memo_dense_.size() && memo_.count(index) == 0) {
      memo_dense_.push_back(*value);
      return hold(sizeof(const Value*));
    }
    auto [it, added] = memo_.insert_or_assign(index, *value);
    if (added) return hold(memo_entry_bytes);
    return {};
  }

  Result<void> memo_get(std::uint64_t index) {
    if (index < memo_dense_.size()) return push(memo_dense_[static_cast<std::size_t>(index)]);
    const auto it = memo_.find(index);
    if (it == memo_.end()) return fail("memo index " + std::to_string(index) + " was never set");
    return push(it->second);
  }

  /// @return how many entries the memo has (MEMOIZE's next index)
  [[nodiscard]] std::uint64_t memo_size() const { return memo_dense_.size() + memo_.size(); }

  Result<void> make_tuple(std::vector<const Value*> items) {
    auto value = make(Value::Kind::Tuple);
    if (!value) return value.error();
    if (auto ok = hold(items.size() * sizeof(const Value*)); !ok) return ok;
    (*value)->items = std::move(items);
    return push(*value);
  }

  Result<void> step(unsigned char op) {
    switch (op) {
      case 0x80: {  // PROTO
        auto version = unsigned_le(1);
        if (!version) return version.error();
        if (*version < 2 || *version > 5) {
          return fail("pickle protocol " + std::to_string(*version) +
                      ": memtrack reads protocols 2 to 5");
        }
        return {};
      }
      case 0x95: {  // FRAME: a length hint only
        auto length = unsigned_le(8);
        if (!length) return length.error();
        return {};
      }
      case '}':
        return push_new(Value::Kind::Dict);
      case ']':
        return push_new(Value::Kind::List);
      case ')':
        return make_tuple({});
      case '(':
        if (marks_.size() >= max_depth) {
          return fail("MARKs nested deeper than " + std::to_string(max_depth) +
                      " (see docs/limits.md)");
        }
        if (marks_.size() == marks_.capacity()) {
          if (auto ok = hold(sizeof(std::size_t) * (marks_.size() + 1)); !ok) return ok;
        }
        marks_.push_back(stack_.size());
        return {};
      case 'd': {  // DICT
        if (auto ok = pop_mark(); !ok) return ok;
        if (auto ok = push_new(Value::Kind::Dict); !ok) return ok;
        return set_items(popped_);
      }
      case 'l': {  // LIST
        if (auto ok = pop_mark(); !ok) return ok;
        auto value = make(Value::Kind::List);
        if (!value) return value.error();
        if (auto ok = hold(popped_.size() * sizeof(const Value*)); !ok) return ok;
        (*value)->items = popped_;
        return push(*value);
      }
      case 't':  // TUPLE
        if (auto ok = pop_mark(); !ok) return ok;
        return make_tuple(popped_);
      case 0x85:
      case 0x86:
      case 0x87: {  // TUPLE1, TUPLE2, TUPLE3
        const std::size_t n = op - 0x84U;
        std::vector<const Value*> items(n);
        for (std::size_t i = n; i > 0; --i) {
          auto item = pop();
          if (!item) return item.error();
          items[i - 1] = *item;
        }
        return make_tuple(std::move(items));
      }
      case 's': {  // SETITEM
        auto value = pop();
        if (!value) return value.error();
        auto key = pop();
        if (!key) return key.error();
        return set_items({*key, *value});
      }
      case 'u':  // SETITEMS
        if (auto ok = pop_mark(); !ok) return ok;
        return set_items(popped_);
      case 'a': {  // APPEND
        auto value = pop();
        if (!value) return value.error();
        return add_items({*value});
      }
      case 'e':  // APPENDS
        if (auto ok = pop_mark(); !ok) return ok;
        return add_items(popped_);
      case 'J': {  // BININT
        auto raw = unsigned_le(4);
        if (!raw) return raw.error();
        const auto value = static_cast<std::int32_t>(static_cast<std::uint32_t>(*raw));
        const auto wider = static_cast<std::int64_t>(value);
        return push_int(value < 0, static_cast<std::uint64_t>(value < 0 ? -wider : wider));
      }
      case 'K':
      case 'M': {  // BININT1, BININT2
        auto raw = unsigned_le(op == 'K' ? 1 : 2);
        if (!raw) return raw.error();
        return push_int(false, *raw);
      }
      case 0x8a: {  // LONG1
        auto length = unsigned_le(1);
        if (!length) return length.error();
        return push_long(*length);
      }
      case 0x8b: {  // LONG4
        auto length = unsigned_le(4);
        if (!length) return length.error();
        return push_long(*length);
      }
      case 'G': {  // BINFLOAT, big-endian
        auto raw = take(8);
        if (!raw) return raw.error();
        std::uint64_t bits = 0;
        for (const char c : *raw)
          bits = (bits << 8U) | static_cast<unsigned char>(c);
        auto value = make(Value::Kind::Float);
        if (!value) return value.error();
        (*value)->number = std::bit_cast<double>(bits);
        return push(*value);
      }
      case 'N':
        return push_new(Value::Kind::None);
      case 0x88:
      case 0x89: {  // NEWTRUE, NEWFALSE
        auto value = make(Value::Kind::Bool);
        if (!value) return value.error();
        (*value)->boolean = op == 0x88;
        return push(*value);
      }
      case 0x8c:
      case 'C':
      case 'U': {  // SHORT_BINUNICODE, SHORT_BINBYTES, SHORT_BINSTRING
        auto length = unsigned_le(1);
        if (!length) return length.error();
        return push_text(op == 'C' ? Value::Kind::Bytes : Value::Kind::String, *length);
      }
      case 'X':
      case 'B':
      case 'T': {  // BINUNICODE, BINBYTES, BINSTRING
        auto length = unsigned_le(4);
        if (!length) return length.error();
        return push_text(op == 'B' ? Value::Kind::Bytes : Value::Kind::String, *length);
      }
      case 0x8d:
      case 0x8e: {  // BINUNICODE8, BINBYTES8
        auto length = unsigned_le(8);
        if (!length) return length.error();
        return push_text(op == 0x8e ? Value::Kind::Bytes : Value::Kind::String, *length);
      }
      case 0x94:  // MEMOIZE
        return memo_put(memo_size());
      case 'q':
      case 'r': {  // BINPUT, LONG_BINPUT
        auto index = unsigned_le(op == 'q' ? 1 : 4);
        if (!index) return index.error();
        return memo_put(*index);
      }
      case 'h':
      case 'j': {  // BINGET, LONG_BINGET
        auto index = unsigned_le(op == 'h' ? 1 : 4);
        if (!index) return index.error();
        return memo_get(*index);
      }
      case '0': {  // POP
        auto value = pop();
        if (!value) return value.error();
        return {};
      }
      case '1':  // POP_MARK
        return pop_mark();
      case '2': {  // DUP
        auto value = top();
        if (!value) return value.error();
        return push(*value);
      }
      case 'c':
      case 0x93:
      case 'R':
      case 'b':
      case 'i':
      case 'o':
      case 0x81:
      case 0x92:
      case 'P':
      case 'Q':
      case 0x82:
      case 0x83:
      case 0x84: {
        char hex[8];
        std::snprintf(hex, sizeof hex, "0x%02x", op);
        return fail(std::string("opcode ") + hex +
                    " imports a name, builds an object or calls code: refused (a memory snapshot "
                    "is plain data)");
      }
      default: {
        char hex[8];
        std::snprintf(hex, sizeof hex, "0x%02x", op);
        return fail(std::string("opcode ") + hex +
                    " is not one of the data opcodes of pickle protocols 2-5 that memory "
                    "snapshots use");
      }
    }
  }

  std::string_view bytes_;
  std::string_view name_;
  std::size_t position_{0};
  std::size_t opcode_offset_{0};
  Document document_;
  std::vector<const Value*> stack_;
  std::vector<std::size_t> marks_;
  std::vector<const Value*> popped_;      ///< what the last pop_mark took off the stack
  std::size_t popped_high_water_{0};      ///< the most it held, counted by hold()
  std::vector<const Value*> memo_dense_;  ///< the memo's indexes 0 to size - 1
  std::unordered_map<std::uint64_t, const Value*> memo_;  ///< the others
  std::size_t stack_high_water_{0};
  /// Bytes the reader holds for the document, the stack and the memo (an estimate from below
  /// of its allocations), and the most it may: invariant held_ <= max_held_ while parsing.
  std::uint64_t held_{0};
  std::uint64_t max_held_;
  std::uint64_t max_tree_size_;
};

}  // namespace

const Value* Value::get(std::string_view key) const {
  if (kind != Kind::Dict) return nullptr;
  // The last of equal keys, as Python's dict keeps it.
  for (std::size_t i = items.size(); i >= 2; i -= 2) {
    const Value* k = items[i - 2];
    if (k->kind == Kind::String && k->text == key) return items[i - 1];
  }
  return nullptr;
}

std::optional<std::uint64_t> Value::as_unsigned() const {
  if (kind != Kind::Int || wide || negative) return std::nullopt;
  return magnitude;
}

std::optional<std::int64_t> Value::as_signed() const {
  constexpr auto top = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  if (kind != Kind::Int || wide || magnitude > top + (negative ? 1 : 0)) return std::nullopt;
  if (!negative) return static_cast<std::int64_t>(magnitude);
  // -(2^63) has no positive counterpart: negate one less, then step down.
  return magnitude == 0 ? 0 : -static_cast<std::int64_t>(magnitude - 1) - 1;
}

std::string Value::describe() const {
  if (kind != Kind::Int) return "a " + std::string(kind_name());
  if (wide) return negative ? "an integer of -2^64 or less" : "an integer of 2^64 or more";
  return "the integer " + std::string(negative ? "-" : "") + std::to_string(magnitude);
}

std::string_view Value::kind_name() const {
  switch (kind) {
    case Kind::None:
      return "None";
    case Kind::Bool:
      return "bool";
    case Kind::Int:
      return "int";
    case Kind::Float:
      return "float";
    case Kind::String:
      return "str";
    case Kind::Bytes:
      return "bytes";
    case Kind::List:
      return "list";
    case Kind::Tuple:
      return "tuple";
    case Kind::Dict:
      return "dict";
  }
  return "?";
}

Result<Document> parse(std::string_view bytes, std::string_view name) {
  return Parser(bytes, name).run();
}

}  // namespace memtrack::traces::pickle
