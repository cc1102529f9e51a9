/**
 * @file result.hpp
 * @brief `Result<T>`: a value or an `Error`, with the shape of C++23's `std::expected`.
 *
 * memtrack builds as C++20 so that it compiles with g++ 12 and clang 19 alike (clang's support for
 * libstdc++'s `<expected>` depends on versions we do not control). `Result` keeps the member names
 * of `std::expected` (`has_value`, `value`, `error`, `operator*`) so that moving to it later is a
 * rename.
 */
#pragma once

#include <memtrack/error.hpp>

#include <optional>
#include <type_traits>
#include <utility>
#include <variant>

namespace memtrack {

/// Throws `BadResultAccess` carrying `error`.
[[noreturn]] void throw_bad_result_access(const Error& error);

/// Either a `T` or an `Error`.
template <class T>
class [[nodiscard]] Result {
 public:
  using value_type = T;

  Result(T value) : storage_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit
  Result(const Error& error) : storage_(std::in_place_index<1>, error) {}  // NOLINT: implicit

  [[nodiscard]] bool has_value() const noexcept { return storage_.index() == 0; }
  explicit operator bool() const noexcept { return has_value(); }

  /// @return the value
  /// @throws BadResultAccess if this holds an error
  [[nodiscard]] const T& value() const& {
    if (!has_value()) throw_bad_result_access(std::get<1>(storage_));
    return std::get<0>(storage_);
  }
  [[nodiscard]] T& value() & {
    if (!has_value()) throw_bad_result_access(std::get<1>(storage_));
    return std::get<0>(storage_);
  }
  [[nodiscard]] T&& value() && {
    if (!has_value()) throw_bad_result_access(std::get<1>(storage_));
    return std::get<0>(std::move(storage_));
  }

  /// @return the error; precondition: `!has_value()`
  [[nodiscard]] const Error& error() const& { return std::get<1>(storage_); }

  [[nodiscard]] const T& operator*() const& { return std::get<0>(storage_); }
  [[nodiscard]] T& operator*() & { return std::get<0>(storage_); }
  [[nodiscard]] const T* operator->() const { return &std::get<0>(storage_); }
  [[nodiscard]] T* operator->() { return &std::get<0>(storage_); }

  /// @return the value, or `fallback` when this holds an error
  template <class U>
  [[nodiscard]] T value_or(U&& fallback) const& {
    return has_value() ? std::get<0>(storage_) : static_cast<T>(std::forward<U>(fallback));
  }

 private:
  std::variant<T, Error> storage_;
};

/// Success without a value, or an `Error`.
template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(const Error& error) : error_(error) {}  // NOLINT: implicit like std::unexpected

  [[nodiscard]] bool has_value() const noexcept { return !error_.has_value(); }
  explicit operator bool() const noexcept { return has_value(); }

  /// @throws BadResultAccess if this holds an error
  void value() const {
    if (error_) throw_bad_result_access(*error_);
  }

  /// @return the error; precondition: `!has_value()`
  [[nodiscard]] const Error& error() const& { return *error_; }

 private:
  std::optional<Error> error_;
};

}  // namespace memtrack
