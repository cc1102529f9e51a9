/**
 * @file pickle.hpp
 * @brief A restricted pickle reader for PyTorch memory snapshots: it accepts only the opcodes
 * that encode plain data (dicts, lists, tuples, strings, bytes, ints, floats, booleans, None,
 * the memo) and refuses any that would import a name, build an object or call code.
 *
 * Hostile input is bounded (docs/limits.md): the memory the reader holds is at most
 * `max_held_bytes_per_input_byte` times the input plus `held_bytes_floor`; the data may expand
 * through shared (memo) references to at most `max_values_per_input_byte` values per input byte
 * plus `values_floor`, so a consumer that walks it as a tree does bounded work; it is nested at
 * most `max_depth` deep and contains no cycle.
 *
 * Internal to the PyTorch importer (not installed); its tests and the Python module, which builds
 * values from Python objects, reach it through a private include path to traces/src.
 */
#pragma once

#include <memtrack/result.hpp>

#include "huge_pages.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace memtrack::traces::pickle {

/// The deepest nesting of containers (and of MARKs) the reader accepts.
inline constexpr std::uint64_t max_depth = 10'000;
/// The values the data may stand for when walked as a tree, per input byte (real snapshots: < 2).
inline constexpr std::uint64_t max_values_per_input_byte = 16;
/// ... plus this many, so that small inputs are never refused for sharing.
inline constexpr std::uint64_t values_floor = std::uint64_t{1} << 20U;
/// The bytes the reader may hold for its values, per input byte (real snapshots: about 8).
inline constexpr std::uint64_t max_held_bytes_per_input_byte = 32;
/// ... plus this many.
inline constexpr std::uint64_t held_bytes_floor = std::uint64_t{16} << 20U;

/// One value of the pickled data. Values live in their `Document`; containers point at them.
struct Value {
  enum class Kind : std::uint8_t { None, Bool, Int, Float, String, Bytes, List, Tuple, Dict };

  Kind kind{Kind::None};
  bool boolean{false};
  /// Int: below zero. The value is `-magnitude` or `magnitude`.
  bool negative{false};
  /// Int: the magnitude does not fit in 64 bits (`magnitude` is then 0): no field can hold it.
  bool wide{false};
  /// The reader's walk: 0 not seen, 1 on the current path, 2 done.
  std::uint8_t visit{0};
  /// The reader's walk: the deepest nesting below and including this value, once done (at most
  /// `max_depth`).
  std::uint16_t height{1};
  std::uint64_t magnitude{0};  ///< Int: |value| (unless `wide`)
  double number{0};
  /// String (UTF-8) or Bytes: a view into the parsed bytes (every text opcode holds its text
  /// as it is), valid while they are
  std::string_view text;
  /// List, Tuple: the items; Dict: its keys and values in order, alternating (key, value, ...)
  std::vector<const Value*> items;
  std::uint64_t offset{0};  ///< the byte offset of the opcode that made it
  /// How many values this one stands for walked as a tree (itself, and its contents counted
  /// once per reference), up to the reader's bound.
  std::uint64_t tree_size{1};
  /// Free for the consumer: one number it keeps for this value (0 until it sets one), such as
  /// what it made of a value that many others refer to. The reader never reads it.
  mutable std::uint64_t consumer_slot{0};

  [[nodiscard]] bool is(Kind k) const { return kind == k; }
  /// @return a Dict's value for a string key (the last given, as in Python), or null
  [[nodiscard]] const Value* get(std::string_view key) const;
  /// @return the kind's name, for errors
  [[nodiscard]] std::string_view kind_name() const;
  /// @return an Int's value when it is 0 to 2^64 - 1, else nothing (also for other kinds)
  [[nodiscard]] std::optional<std::uint64_t> as_unsigned() const;
  /// @return an Int's value when it is -2^63 to 2^63 - 1, else nothing (also for other kinds)
  [[nodiscard]] std::optional<std::int64_t> as_signed() const;
  /// @return for errors: `the integer -5`, `an integer beyond 64 bits`, or `a str`
  [[nodiscard]] std::string describe() const;
};

/// Where a document's values live: in chunks that never move. The first holds 1024 values; the
/// others are 2 MiB each, in huge pages (a large snapshot's values take one page fault per 2 MiB
/// instead of one per 4 KiB: faults were a third of a 4 MB snapshot's import).
class ValueStore {
 public:
  ValueStore() = default;
  ValueStore(const ValueStore&) = delete;
  ValueStore& operator=(const ValueStore&) = delete;
  ValueStore(ValueStore&& other) noexcept
      : chunks_(std::move(other.chunks_)), used_(std::exchange(other.used_, 0)) {
    other.chunks_.clear();
  }
  ValueStore& operator=(ValueStore&& other) noexcept {
    ValueStore taken(std::move(other));
    std::swap(chunks_, taken.chunks_);
    std::swap(used_, taken.used_);
    return *this;
  }
  ~ValueStore() {
    for (std::size_t c = 0; c < chunks_.size(); ++c) {
      const std::size_t made = c + 1 == chunks_.size() ? used_ : capacity_of(c);
      std::destroy_n(chunks_[c], made);
      detail::HugePageAllocator<char>().deallocate(reinterpret_cast<char*>(chunks_[c]),
                                                   bytes_of(c));
    }
  }

  /// @return a new value, default-constructed; it stays where it is while the store lives
  Value& emplace_back() {
    if (chunks_.empty() || used_ == capacity_of(chunks_.size() - 1)) {
      chunks_.reserve(chunks_.size() + 1);  // before the allocation, which nothing would free
      chunks_.push_back(reinterpret_cast<Value*>(
          detail::HugePageAllocator<char>().allocate(bytes_of(chunks_.size()))));
      used_ = 0;
    }
    return *::new (static_cast<void*>(chunks_.back() + used_++)) Value();
  }
  /// @return how many values it holds
  [[nodiscard]] std::size_t size() const noexcept {
    if (chunks_.size() <= 1) return used_;
    return first_values + (chunks_.size() - 2) * huge_values + used_;
  }

 private:
  static constexpr std::size_t first_values = 1024;
  static constexpr std::size_t huge_values = detail::huge_page_bytes / sizeof(Value);
  /// @return the bytes of chunk `c`
  static constexpr std::size_t bytes_of(std::size_t c) noexcept {
    return c == 0 ? first_values * sizeof(Value) : detail::huge_page_bytes;
  }
  /// @return how many values chunk `c` holds
  static constexpr std::size_t capacity_of(std::size_t c) noexcept {
    return c == 0 ? first_values : huge_values;
  }

  std::vector<Value*> chunks_;
  std::size_t used_{0};  ///< in the last chunk
};

/// The result of parsing: every value, and the top one. Its texts are views into the bytes
/// parsed: keep those alive while the document is used.
struct Document {
  ValueStore values;
  const Value* root{nullptr};
};

/**
 * @brief Parses pickle protocol 2-5 data.
 * @param name used in errors, which have the form `NAME: byte N: what`
 * @return the document, or a `ParseError` (also past the bounds above, naming the limit)
 */
[[nodiscard]] Result<Document> parse(std::string_view bytes, std::string_view name);

}  // namespace memtrack::traces::pickle
