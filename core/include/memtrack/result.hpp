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

#include <memory>
#include <optional>
#include <utility>

namespace memtrack {

/// Throws `BadResultAccess` carrying `error`.
[[noreturn]] void throw_bad_result_access(const Error& error);

namespace detail {
/// An optional `Error` on the heap that copies deeply: the one place `Result` keeps its error.
class ErrorBox {
 public:
  ErrorBox() = default;
  explicit ErrorBox(const Error& error) : error_(std::make_unique<Error>(error)) {}
  ErrorBox(const ErrorBox& other)
      : error_(other.error_ ? std::make_unique<Error>(*other.error_) : nullptr) {}
  ErrorBox(ErrorBox&&) noexcept = default;
  ErrorBox& operator=(const ErrorBox& other) {
    if (this != &other) *this = ErrorBox(other);
    return *this;
  }
  ErrorBox& operator=(ErrorBox&&) noexcept = default;
  ~ErrorBox() = default;

  [[nodiscard]] bool empty() const noexcept { return error_ == nullptr; }
  [[nodiscard]] const Error& operator*() const { return *error_; }

 private:
  std::unique_ptr<Error> error_;
};
}  // namespace detail

/// Either a `T` or an `Error`.
///
/// The error lives on the heap: the success path, which every tracker operation takes in the
/// common case, then costs no more than the value itself (no large variant to build, copy or
/// destroy). Errors are rare and already carry strings.
template <class T>
class [[nodiscard]] Result {
 public:
  using value_type = T;

  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit, like std::expected
  Result(const Error& error) : error_(error) {}  // NOLINT: implicit

  [[nodiscard]] bool has_value() const noexcept { return value_.has_value(); }
  explicit operator bool() const noexcept { return has_value(); }

  /// @return the value
  /// @throws BadResultAccess if this holds an error
  [[nodiscard]] const T& value() const& {
    if (!has_value()) throw_bad_result_access(*error_);
    return *value_;
  }
  [[nodiscard]] T& value() & {
    if (!has_value()) throw_bad_result_access(*error_);
    return *value_;
  }
  [[nodiscard]] T&& value() && {
    if (!has_value()) throw_bad_result_access(*error_);
    return std::move(*value_);
  }

  /// @return the error; precondition: `!has_value()`
  [[nodiscard]] const Error& error() const& { return *error_; }

  [[nodiscard]] const T& operator*() const& { return *value_; }
  [[nodiscard]] T& operator*() & { return *value_; }
  [[nodiscard]] const T* operator->() const { return &*value_; }
  [[nodiscard]] T* operator->() { return &*value_; }

  /// @return the value, or `fallback` when this holds an error
  template <class U>
  [[nodiscard]] T value_or(U&& fallback) const& {
    return has_value() ? *value_ : static_cast<T>(std::forward<U>(fallback));
  }

 private:
  std::optional<T> value_;  // Invariant: exactly one of value_ and error_ is set.
  detail::ErrorBox error_;
};

/// Success without a value, or an `Error`.
template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(const Error& error) : error_(error) {}  // NOLINT: implicit

  [[nodiscard]] bool has_value() const noexcept { return error_.empty(); }
  explicit operator bool() const noexcept { return has_value(); }

  /// @throws BadResultAccess if this holds an error
  void value() const {
    if (!has_value()) throw_bad_result_access(*error_);
  }

  /// @return the error; precondition: `!has_value()`
  [[nodiscard]] const Error& error() const& { return *error_; }

 private:
  detail::ErrorBox error_;  // empty on success
};

}  // namespace memtrack
