#include <memtrack/traces/pickle.hpp>

#include <bit>
#include <cstdio>
#include <cstring>
#include <optional>
#include <unordered_map>

namespace memtrack::traces::pickle {
namespace {

/// The most nested MARKs and values on the stack: far beyond any snapshot, and a bound on work.
constexpr std::size_t max_stack = 1U << 24U;

class Parser {
 public:
  Parser(std::string_view bytes, std::string_view name) : bytes_(bytes), name_(name) {}

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
    return std::move(document_);
  }

 private:
  Error fail(const std::string& what) const {
    return Error::parse_error(std::string(name_) + ": byte " + std::to_string(opcode_offset_) +
                              ": " + what);
  }

  Result<std::string_view> take(std::uint64_t n) {
    if (n > bytes_.size() - position_) {
      return fail("truncated: needs " + std::to_string(n) + " more bytes, " +
                  std::to_string(bytes_.size() - position_) + " left");
    }
    const std::string_view out = bytes_.substr(position_, static_cast<std::size_t>(n));
    position_ += static_cast<std::size_t>(n);
    return out;
  }

  Result<std::uint64_t> unsigned_le(std::size_t n) {
    auto raw = take(n);
    if (!raw) return raw.error();
    std::uint64_t value = 0;
    for (std::size_t i = 0; i < n; ++i) {
      value |= static_cast<std::uint64_t>(static_cast<unsigned char>((*raw)[i])) << (8 * i);
    }
    return value;
  }

  Value& make(Value::Kind kind) {
    Value& value = document_.values.emplace_back();
    value.kind = kind;
    value.offset = opcode_offset_;
    return value;
  }

  Result<void> push(const Value* value) {
    if (stack_.size() >= max_stack) return fail("stack deeper than " + std::to_string(max_stack));
    stack_.push_back(value);
    return {};
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

  /// Pops everything above the last MARK, and the mark.
  Result<std::vector<const Value*>> pop_mark() {
    if (marks_.empty()) return fail("no MARK to pop to (corrupt pickle)");
    const std::size_t mark = marks_.back();
    marks_.pop_back();
    std::vector<const Value*> items(stack_.begin() + static_cast<std::ptrdiff_t>(mark),
                                    stack_.end());
    stack_.resize(mark);
    return items;
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
    (*list)->items.insert((*list)->items.end(), items.begin(), items.end());
    return {};
  }

  Result<void> set_items(const std::vector<const Value*>& items) {
    if (items.size() % 2 != 0) return fail("SETITEMS with an odd number of values");
    auto dict = mutable_top(Value::Kind::Dict, "SETITEM(S)");
    if (!dict) return dict.error();
    for (std::size_t i = 0; i < items.size(); i += 2) {
      (*dict)->entries.emplace_back(items[i], items[i + 1]);
    }
    return {};
  }

  Result<void> push_text(Value::Kind kind, std::uint64_t length) {
    auto raw = take(length);
    if (!raw) return raw.error();
    Value& value = make(kind);
    value.text = std::string(*raw);
    return push(&value);
  }

  Result<void> push_int(std::int64_t integer) {
    Value& value = make(Value::Kind::Int);
    value.integer = integer;
    return push(&value);
  }

  Result<void> push_long(std::uint64_t length) {
    if (length > 8) {
      return fail("an integer of " + std::to_string(length) +
                  " bytes: more than the 64 bits memtrack accepts");
    }
    auto raw = unsigned_le(static_cast<std::size_t>(length));
    if (!raw) return raw.error();
    std::uint64_t value = *raw;
    if (length > 0 && length < 8 && (value >> (8 * length - 1)) != 0) {
      value |= ~std::uint64_t{0} << (8 * length);  // sign-extend
    }
    return push_int(static_cast<std::int64_t>(value));
  }

  Result<void> memo_put(std::uint64_t index) {
    auto value = top();
    if (!value) return value.error();
    if (index > max_stack * 4) return fail("memo index " + std::to_string(index) + " too large");
    memo_[index] = *value;
    return {};
  }

  Result<void> memo_get(std::uint64_t index) {
    const auto it = memo_.find(index);
    if (it == memo_.end()) return fail("memo index " + std::to_string(index) + " was never set");
    return push(it->second);
  }

  Result<void> make_tuple(std::vector<const Value*> items) {
    Value& value = make(Value::Kind::Tuple);
    value.items = std::move(items);
    return push(&value);
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
        return push(&make(Value::Kind::Dict));
      case ']':
        return push(&make(Value::Kind::List));
      case ')':
        return make_tuple({});
      case '(':
        if (marks_.size() >= max_stack) return fail("too many MARKs");
        marks_.push_back(stack_.size());
        return {};
      case 'd': {  // DICT
        auto items = pop_mark();
        if (!items) return items.error();
        if (auto ok = push(&make(Value::Kind::Dict)); !ok) return ok;
        return set_items(*items);
      }
      case 'l': {  // LIST
        auto items = pop_mark();
        if (!items) return items.error();
        Value& value = make(Value::Kind::List);
        value.items = std::move(*items);
        return push(&value);
      }
      case 't': {  // TUPLE
        auto items = pop_mark();
        if (!items) return items.error();
        return make_tuple(std::move(*items));
      }
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
      case 'u': {  // SETITEMS
        auto items = pop_mark();
        if (!items) return items.error();
        return set_items(*items);
      }
      case 'a': {  // APPEND
        auto value = pop();
        if (!value) return value.error();
        return add_items({*value});
      }
      case 'e': {  // APPENDS
        auto items = pop_mark();
        if (!items) return items.error();
        return add_items(*items);
      }
      case 'J': {  // BININT
        auto raw = unsigned_le(4);
        if (!raw) return raw.error();
        return push_int(static_cast<std::int32_t>(static_cast<std::uint32_t>(*raw)));
      }
      case 'K':
      case 'M': {  // BININT1, BININT2
        auto raw = unsigned_le(op == 'K' ? 1 : 2);
        if (!raw) return raw.error();
        return push_int(static_cast<std::int64_t>(*raw));
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
        Value& value = make(Value::Kind::Float);
        value.number = std::bit_cast<double>(bits);
        return push(&value);
      }
      case 'N':
        return push(&make(Value::Kind::None));
      case 0x88:
      case 0x89: {  // NEWTRUE, NEWFALSE
        Value& value = make(Value::Kind::Bool);
        value.boolean = op == 0x88;
        return push(&value);
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
        return memo_put(memo_.size());
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
      case '1': {  // POP_MARK
        auto items = pop_mark();
        if (!items) return items.error();
        return {};
      }
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
  std::unordered_map<std::uint64_t, const Value*> memo_;
};

}  // namespace

const Value* Value::get(std::string_view key) const {
  if (kind != Kind::Dict) return nullptr;
  for (const auto& [k, v] : entries) {
    if (k->kind == Kind::String && k->text == key) return v;
  }
  return nullptr;
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
