// A tiny pickle writer for tests: Python-like values to protocol 4 bytes, built opcode by opcode
// from the pickle specification (independent of the reader under test).
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace memtrack::traces::testing {

struct Py;
using PyList = std::vector<Py>;
using PyDict = std::vector<std::pair<std::string, Py>>;

/// A Python-like value. Note: write a list inside a list as `PyList{Py(PyList{...})}`; a bare
/// `PyList{PyList{...}}` may be taken as a copy of the inner list.
struct Py {
  std::variant<std::monostate, bool, std::int64_t, std::string, PyList, PyDict, double> value;
  Py() = default;
  Py(bool b) : value(b) {}                                      // NOLINT: implicit for brevity
  Py(int i) : value(static_cast<std::int64_t>(i)) {}            // NOLINT
  Py(std::int64_t i) : value(i) {}                              // NOLINT
  Py(std::uint64_t i) : value(static_cast<std::int64_t>(i)) {}  // NOLINT
  Py(const char* s) : value(std::string(s)) {}                  // NOLINT
  Py(std::string s) : value(std::move(s)) {}                    // NOLINT
  Py(PyList l) : value(std::move(l)) {}                         // NOLINT
  Py(PyDict d) : value(std::move(d)) {}                         // NOLINT
  Py(double d) : value(d) {}                                    // NOLINT
};

inline void put_le(std::string& out, std::uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i)
    out += static_cast<char>((value >> (8 * i)) & 0xFFU);
}

inline void pickle_value(std::string& out, const Py& py) {
  if (std::holds_alternative<std::monostate>(py.value)) {
    out += 'N';
  } else if (const bool* b = std::get_if<bool>(&py.value)) {
    out += static_cast<char>(*b ? 0x88 : 0x89);
  } else if (const std::int64_t* i = std::get_if<std::int64_t>(&py.value)) {
    if (*i >= 0 && *i < 256) {
      out += 'K';
      put_le(out, static_cast<std::uint64_t>(*i), 1);
    } else if (*i >= INT32_MIN && *i <= INT32_MAX) {
      out += 'J';
      put_le(out, static_cast<std::uint64_t>(static_cast<std::uint32_t>(*i)), 4);
    } else {
      out += static_cast<char>(0x8a);  // LONG1, 8 bytes two's complement
      out += static_cast<char>(8);
      put_le(out, static_cast<std::uint64_t>(*i), 8);
    }
  } else if (const std::string* s = std::get_if<std::string>(&py.value)) {
    if (s->size() < 256) {
      out += static_cast<char>(0x8c);  // SHORT_BINUNICODE
      out += static_cast<char>(s->size());
    } else {
      out += 'X';  // BINUNICODE, 4-byte length
      put_le(out, s->size(), 4);
    }
    out += *s;
    out += static_cast<char>(0x94);  // MEMOIZE, as Python does
  } else if (const double* d = std::get_if<double>(&py.value)) {
    out += 'G';
    std::uint64_t bits = 0;
    std::memcpy(&bits, d, sizeof bits);
    for (int k = 7; k >= 0; --k)
      out += static_cast<char>((bits >> (8 * k)) & 0xFFU);
  } else if (const PyList* l = std::get_if<PyList>(&py.value)) {
    out += ']';
    out += static_cast<char>(0x94);
    if (!l->empty()) {
      out += '(';
      for (const Py& item : *l)
        pickle_value(out, item);
      out += 'e';  // APPENDS
    }
  } else if (const PyDict* dict = std::get_if<PyDict>(&py.value)) {
    out += '}';
    out += static_cast<char>(0x94);
    if (!dict->empty()) {
      out += '(';
      for (const auto& [key, item] : *dict) {
        pickle_value(out, Py(key));
        pickle_value(out, item);
      }
      out += 'u';  // SETITEMS
    }
  }
}

/// @return `value` pickled with protocol 4
inline std::string pickle_of(const Py& value) {
  std::string out = "\x80\x04";
  pickle_value(out, value);
  out += '.';
  return out;
}

}  // namespace memtrack::traces::testing
