/**
 * @file pickle.hpp
 * @brief A restricted pickle reader for PyTorch memory snapshots: it accepts only the opcodes
 * that encode plain data (dicts, lists, tuples, strings, bytes, ints, floats, booleans, None,
 * the memo) and refuses any that would import a name, build an object or call code.
 */
#pragma once

#include <memtrack/result.hpp>

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace memtrack::traces::pickle {

/// One value of the pickled data. Values live in their `Document`; containers point at them.
struct Value {
  enum class Kind : std::uint8_t { None, Bool, Int, Float, String, Bytes, List, Tuple, Dict };

  Kind kind{Kind::None};
  bool boolean{false};
  std::int64_t integer{0};
  double number{0};
  std::string text;                                            ///< String (UTF-8) or Bytes
  std::vector<const Value*> items;                             ///< List, Tuple
  std::vector<std::pair<const Value*, const Value*>> entries;  ///< Dict, in order
  std::uint64_t offset{0};  ///< the byte offset of the opcode that made it

  [[nodiscard]] bool is(Kind k) const { return kind == k; }
  /// @return a Dict's value for a string key, or null
  [[nodiscard]] const Value* get(std::string_view key) const;
  /// @return the kind's name, for errors
  [[nodiscard]] std::string_view kind_name() const;
};

/// The result of parsing: every value, and the top one.
struct Document {
  std::deque<Value> values;
  const Value* root{nullptr};
};

/**
 * @brief Parses pickle protocol 2-5 data.
 * @param name used in errors, which have the form `NAME: byte N: what`
 */
[[nodiscard]] Result<Document> parse(std::string_view bytes, std::string_view name);

}  // namespace memtrack::traces::pickle
