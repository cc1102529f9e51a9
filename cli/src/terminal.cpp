#include "terminal.hpp"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <iostream>

namespace memtrack::cli {
namespace {

constexpr std::string_view hex_digits = "0123456789abcdef";

void escape_byte(std::string& out, unsigned char byte) {
  out += "\\x";
  out += hex_digits[byte >> 4U];
  out += hex_digits[byte & 0xFU];
}

bool is_bidi_control(std::uint32_t code) {
  return code == 0x061C || code == 0x200E || code == 0x200F || (code >= 0x202A && code <= 0x202E) ||
         (code >= 0x2066 && code <= 0x2069);
}

/// @return the length of the UTF-8 sequence that starts with `lead`, or 0 if it cannot start one
std::size_t sequence_length(unsigned char lead) {
  if (lead < 0x80) return 1;
  if (lead >= 0xC2 && lead <= 0xDF) return 2;
  if (lead >= 0xE0 && lead <= 0xEF) return 3;
  if (lead >= 0xF0 && lead <= 0xF4) return 4;
  return 0;
}

/**
 * @brief Escapes the complete part of `text` into `out`.
 * @return how many bytes at the end were held back: the start of a sequence that may continue
 * in the next write (only when `more` is set)
 */
std::size_t escape_into(std::string& out, std::string_view text, bool more) {
  std::size_t i = 0;
  while (i < text.size()) {
    const auto lead = static_cast<unsigned char>(text[i]);
    if (lead < 0x80) {
      if ((lead < 0x20 && lead != '\n' && lead != '\t' && lead != '\r') || lead == 0x7F) {
        escape_byte(out, lead);
      } else {
        out += static_cast<char>(lead);
      }
      ++i;
      continue;
    }
    const std::size_t length = sequence_length(lead);
    if (length == 0) {
      escape_byte(out, lead);
      ++i;
      continue;
    }
    if (i + length > text.size()) {
      // Check that what is there could still be a valid start before holding it back.
      bool continuation = true;
      for (std::size_t k = i + 1; k < text.size(); ++k) {
        continuation = continuation && (static_cast<unsigned char>(text[k]) & 0xC0U) == 0x80U;
      }
      if (more && continuation) return text.size() - i;
      escape_byte(out, lead);
      ++i;
      continue;
    }
    std::uint32_t code = lead & (0xFFU >> (length + 1));
    bool valid = true;
    for (std::size_t k = 1; k < length; ++k) {
      const auto c = static_cast<unsigned char>(text[i + k]);
      valid = valid && (c & 0xC0U) == 0x80U;
      code = (code << 6U) | (c & 0x3FU);
    }
    // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
    static constexpr std::array<std::uint32_t, 5> smallest{0, 0, 0x80, 0x800, 0x10000};
    valid = valid && code >= smallest[length] && code <= 0x10FFFF &&
            !(code >= 0xD800 && code <= 0xDFFF);
    if (!valid) {
      escape_byte(out, lead);
      ++i;
      continue;
    }
    if ((code >= 0x80 && code <= 0x9F) || is_bidi_control(code)) {
      out += "\\u";
      for (int shift = 12; shift >= 0; shift -= 4)
        out += hex_digits[(code >> static_cast<unsigned>(shift)) & 0xFU];
    } else {
      out.append(text.substr(i, length));
    }
    i += length;
  }
  return 0;
}

}  // namespace

std::string one_line(std::string_view name) {
  std::string out;
  out.reserve(name.size());
  for (const char c : name) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7F) {
      escape_byte(out, byte);
    } else {
      out += c;
    }
  }
  return out;
}

std::string escape_for_terminal(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  escape_into(out, text, false);
  return out;
}

class EscapingStream::Buffer final : public std::streambuf {
 public:
  explicit Buffer(std::ostream& target) : target_(target) {}
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer() override { drain(false); }

  [[nodiscard]] std::ostream& target() const { return target_; }
  [[nodiscard]] std::uint64_t written() const { return written_; }
  [[nodiscard]] const std::string& kept() const { return kept_; }
  void keep(std::size_t limit) { keep_ = limit; }

 protected:
  int_type overflow(int_type c) override {
    if (traits_type::eq_int_type(c, traits_type::eof())) return traits_type::not_eof(c);
    const char ch = traits_type::to_char_type(c);
    note(&ch, 1);
    pending_ += ch;
    if (pending_.size() >= 4096) drain(true);
    return c;
  }
  std::streamsize xsputn(const char* data, std::streamsize count) override {
    note(data, static_cast<std::size_t>(count));
    pending_.append(data, static_cast<std::size_t>(count));
    if (pending_.size() >= 4096) drain(true);
    return count;
  }
  int sync() override {
    drain(true);
    target_.flush();
    return target_ ? 0 : -1;
  }

 private:
  void note(const char* data, std::size_t count) {
    written_ += count;
    if (kept_.size() < keep_) kept_.append(data, std::min(count, keep_ - kept_.size()));
  }

  void drain(bool more) {
    std::string out;
    const std::size_t held = escape_into(out, pending_, more);
    target_ << out;
    pending_.erase(0, pending_.size() - held);
  }

  std::ostream& target_;
  std::string pending_;
  std::uint64_t written_ = 0;
  std::size_t keep_ = 0;
  std::string kept_;  // the first keep_ bytes written, as written (before escaping)
};

EscapingStream::EscapingStream(std::ostream& target)
    : std::ostream(nullptr), buffer_(std::make_unique<Buffer>(target)) {
  rdbuf(buffer_.get());
}

EscapingStream::~EscapingStream() {
  flush();
}

std::ostream& EscapingStream::target() const {
  return buffer_->target();
}

std::uint64_t EscapingStream::written() const {
  return buffer_->written();
}

void EscapingStream::keep_first(std::size_t bytes) {
  buffer_->keep(bytes);
}

const std::string& EscapingStream::kept() const {
  return buffer_->kept();
}

bool is_terminal_stderr(const std::ostream& stream) {
  const std::ostream* end = &stream;
  if (const auto* escaping = dynamic_cast<const EscapingStream*>(end); escaping != nullptr) {
    end = &escaping->target();
  }
  return end == &std::cerr && isatty(STDERR_FILENO) == 1;
}

}  // namespace memtrack::cli
