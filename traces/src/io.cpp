#include <memtrack/traces/io.hpp>

#include "import_support.hpp"

#include <zlib.h>
#include <zstd.h>

#include <array>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <system_error>
#include <utility>
#include <vector>

namespace memtrack::traces {
namespace {

constexpr std::size_t chunk_bytes = 256 * 1024;
/// zstd reports an error only at the end of the input it was given (a whole block, up to
/// 128 KiB): fed in slices this small, the offset it names is within a slice of the fault.
constexpr std::size_t zstd_slice_bytes = 4 * 1024;

/// Raw bytes of a file, counting the offset for error messages.
class FileSource final : public ByteSource {
 public:
  FileSource(std::ifstream in, std::string name) : in_(std::move(in)), name_(std::move(name)) {}

  Result<std::size_t> read(char* buffer, std::size_t size) override {
    in_.read(buffer, static_cast<std::streamsize>(size));
    const auto got = static_cast<std::size_t>(in_.gcount());
    if (in_.bad()) {
      return Error::io_error(name_ + ": byte " + std::to_string(offset_) + ": read failed");
    }
    offset_ += got;
    return got;
  }

 private:
  std::ifstream in_;
  std::string name_;
  std::uint64_t offset_{0};
};

class MemorySource final : public ByteSource {
 public:
  explicit MemorySource(std::string bytes) : bytes_(std::move(bytes)) {}

  Result<std::size_t> read(char* buffer, std::size_t size) override {
    const std::size_t n = std::min(size, bytes_.size() - position_);
    std::memcpy(buffer, bytes_.data() + position_, n);
    position_ += n;
    return n;
  }

 private:
  std::string bytes_;
  std::size_t position_{0};
};

/// Gives back bytes already read (the sniffed prefix) before the rest of a source.
class PrefixedSource final : public ByteSource {
 public:
  PrefixedSource(std::string prefix, std::unique_ptr<ByteSource> rest)
      : prefix_(std::move(prefix)), rest_(std::move(rest)) {}

  Result<std::size_t> read(char* buffer, std::size_t size) override {
    if (position_ < prefix_.size()) {
      const std::size_t n = std::min(size, prefix_.size() - position_);
      std::memcpy(buffer, prefix_.data() + position_, n);
      position_ += n;
      return n;
    }
    return rest_->read(buffer, size);
  }

 private:
  std::string prefix_;
  std::size_t position_{0};
  std::unique_ptr<ByteSource> rest_;
};

/// Common to the decompressors: the compressed input, buffered, with its offset.
class CompressedInput {
 public:
  CompressedInput(std::unique_ptr<ByteSource> raw, std::string name)
      : raw_(std::move(raw)), name_(std::move(name)), buffer_(chunk_bytes) {}

  /// Refills when empty. @return false at the end of the compressed bytes
  Result<bool> fill() {
    if (position_ < size_) return true;
    auto got = raw_->read(buffer_.data(), buffer_.size());
    if (!got) return got.error();
    consumed_before_ += size_;
    size_ = *got;
    position_ = 0;
    return size_ > 0;
  }
  [[nodiscard]] const char* data() const { return buffer_.data() + position_; }
  [[nodiscard]] std::size_t size() const { return size_ - position_; }
  void consume(std::size_t n) { position_ += n; }
  [[nodiscard]] std::uint64_t offset() const { return consumed_before_ + position_; }
  [[nodiscard]] Error error(std::string_view what) const {
    return Error::parse_error(name_ + ": compressed byte " + std::to_string(offset()) + ": " +
                              std::string(what));
  }

 private:
  std::unique_ptr<ByteSource> raw_;
  std::string name_;
  std::vector<char> buffer_;
  std::size_t position_{0};
  std::size_t size_{0};
  std::uint64_t consumed_before_{0};
};

class ZstdSource final : public ByteSource {
 public:
  ZstdSource(std::unique_ptr<ByteSource> raw, std::string name)
      : input_(std::move(raw), std::move(name)), stream_(ZSTD_createDStream()) {}
  ZstdSource(const ZstdSource&) = delete;
  ZstdSource& operator=(const ZstdSource&) = delete;
  ~ZstdSource() override { ZSTD_freeDStream(stream_); }

  Result<std::size_t> read(char* buffer, std::size_t size) override {
    if (stream_ == nullptr) return input_.error("zstd: out of memory");
    ZSTD_outBuffer out{buffer, size, 0};
    while (out.pos == 0 && size > 0) {
      auto more = input_.fill();
      if (!more) return more.error();
      if (!*more) {
        if (frame_open_) return input_.error("truncated zstd stream (the frame does not end)");
        return std::size_t{0};
      }
      ZSTD_inBuffer in{input_.data(), std::min(input_.size(), zstd_slice_bytes), 0};
      const std::size_t hint = ZSTD_decompressStream(stream_, &out, &in);
      if (ZSTD_isError(hint) != 0U) {
        input_.consume(in.pos);  // the error names the compressed byte zstd had reached
        return input_.error(std::string("zstd: ") + ZSTD_getErrorName(hint));
      }
      input_.consume(in.pos);
      frame_open_ = hint != 0;
    }
    return out.pos;
  }

 private:
  CompressedInput input_;
  ZSTD_DStream* stream_;
  bool frame_open_{false};
};

class GzipSource final : public ByteSource {
 public:
  GzipSource(std::unique_ptr<ByteSource> raw, std::string name)
      : input_(std::move(raw), std::move(name)) {
    ok_ = inflateInit2(&stream_, 15 + 32) == Z_OK;  // 32: accept a gzip (or zlib) header
  }
  GzipSource(const GzipSource&) = delete;
  GzipSource& operator=(const GzipSource&) = delete;
  ~GzipSource() override {
    if (ok_) inflateEnd(&stream_);
  }

  Result<std::size_t> read(char* buffer, std::size_t size) override {
    if (!ok_) return input_.error("gzip: cannot initialise zlib");
    std::size_t produced = 0;
    while (produced == 0 && size > 0) {
      auto more = input_.fill();
      if (!more) return more.error();
      if (!*more) {
        if (member_open_) return input_.error("truncated gzip stream (the member does not end)");
        return std::size_t{0};
      }
      if (!member_open_) {
        inflateReset(&stream_);
        member_open_ = true;
      }
      // NOLINTNEXTLINE: zlib's API takes non-const pointers it does not write through.
      stream_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(input_.data()));
      stream_.avail_in = static_cast<uInt>(std::min<std::size_t>(input_.size(), chunk_bytes));
      stream_.next_out = reinterpret_cast<Bytef*>(buffer);
      stream_.avail_out = static_cast<uInt>(std::min<std::size_t>(size, 1U << 30U));
      const uInt avail_in_before = stream_.avail_in;
      const uInt avail_out_before = stream_.avail_out;
      const int status = inflate(&stream_, Z_NO_FLUSH);
      input_.consume(avail_in_before - stream_.avail_in);
      produced = avail_out_before - stream_.avail_out;
      if (status == Z_STREAM_END) {
        member_open_ = false;
      } else if (status != Z_OK && status != Z_BUF_ERROR) {
        return input_.error(std::string("gzip: ") +
                            (stream_.msg != nullptr ? stream_.msg : "corrupt data"));
      }
    }
    return produced;
  }

 private:
  CompressedInput input_;
  z_stream stream_{};
  bool ok_{false};
  bool member_open_{false};
};

std::unique_ptr<ByteSource> wrap(std::unique_ptr<ByteSource> raw, std::string name,
                                 std::string prefix) {
  const Compression compression = detect_compression(prefix);
  auto source = std::make_unique<PrefixedSource>(std::move(prefix), std::move(raw));
  switch (compression) {
    case Compression::Zstd:
      return std::make_unique<ZstdSource>(std::move(source), std::move(name));
    case Compression::Gzip:
      return std::make_unique<GzipSource>(std::move(source), std::move(name));
    case Compression::None:
      break;
  }
  return source;
}

}  // namespace

Compression detect_compression(std::string_view prefix) {
  if (prefix.size() >= 4 && prefix.substr(0, 4) == std::string_view("\x28\xB5\x2F\xFD", 4)) {
    return Compression::Zstd;
  }
  if (prefix.size() >= 2 && prefix.substr(0, 2) == std::string_view("\x1F\x8B", 2)) {
    return Compression::Gzip;
  }
  return Compression::None;
}

Result<std::unique_ptr<ByteSource>> open_source(const std::filesystem::path& path) {
  // Checked before opening: opening a FIFO waits for a writer (forever, if none comes), and a
  // device or socket is not a recording. Each reader may open its input more than once (to
  // detect the format, then to read), which only a regular file allows.
  std::error_code status_error;
  const auto type = std::filesystem::status(path, status_error).type();
  const auto not_regular = [&path](std::string_view what) {
    return Error::parse_error(path.string() + ": is " + std::string(what) +
                              ", expected a regular file (save the stream to a file first)");
  };
  switch (type) {
    case std::filesystem::file_type::fifo:
      return not_regular("a FIFO (named pipe) or pipe");
    case std::filesystem::file_type::socket:
      return not_regular("a socket");
    case std::filesystem::file_type::character:
      return not_regular("a character device");
    case std::filesystem::file_type::block:
      return not_regular("a block device");
    default:
      break;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::error_code ec;
    const bool exists = std::filesystem::exists(path, ec);
    return Error::io_error(path.string() + ": cannot open: " +
                           (exists ? "permission denied or not a file" : "no such file"));
  }
  if (std::filesystem::is_directory(path)) {
    return Error::io_error(path.string() + ": is a directory, expected a file");
  }
  auto raw = std::make_unique<FileSource>(std::move(in), path.string());
  std::string prefix(4, '\0');
  std::size_t got = 0;
  while (got < prefix.size()) {
    auto n = raw->read(prefix.data() + got, prefix.size() - got);
    if (!n) return n.error();
    if (*n == 0) break;
    got += *n;
  }
  prefix.resize(got);
  return wrap(std::move(raw), path.string(), std::move(prefix));
}

std::unique_ptr<ByteSource> memory_source(std::string bytes, std::string name) {
  std::string prefix = bytes.substr(0, std::min<std::size_t>(4, bytes.size()));
  bytes.erase(0, prefix.size());
  return wrap(std::make_unique<MemorySource>(std::move(bytes)), std::move(name), std::move(prefix));
}

namespace {
Error longer_than(std::string_view name, std::uint64_t max_bytes) {
  return Error::parse_error(std::string(name) + ": more than " + std::to_string(max_bytes) +
                            " bytes (decompressed), the most this reader accepts");
}
}  // namespace

Result<std::string> read_all(ByteSource& source, std::string_view name, std::uint64_t max_bytes) {
  std::string text;
  std::array<char, chunk_bytes> buffer{};
  for (;;) {
    auto n = source.read(buffer.data(), buffer.size());
    if (!n) return n.error();
    if (*n == 0) return text;
    if (text.size() + *n > max_bytes) return longer_than(name, max_bytes);
    text.append(buffer.data(), *n);
  }
}

Result<detail::HugeBytes> detail::read_all_in_huge_pages(ByteSource& source, std::string_view name,
                                                         std::uint64_t max_bytes) {
  // One byte past the bound is read, to tell a file of exactly `max_bytes` from a longer one.
  const std::size_t limit =
      max_bytes < SIZE_MAX ? static_cast<std::size_t>(max_bytes) + 1 : SIZE_MAX;
  HugeBytes bytes;
  for (;;) {
    const auto [to, room] = bytes.room(chunk_bytes, limit);
    auto n = source.read(to, room);
    if (!n) return n.error();
    if (*n == 0) return bytes;
    if (bytes.size() + *n > max_bytes) return longer_than(name, max_bytes);
    bytes.commit(*n);
  }
}

Result<std::string> read_all(const std::filesystem::path& path, std::uint64_t max_bytes) {
  auto source = open_source(path);
  if (!source) return source.error();
  return read_all(**source, path.string(), max_bytes);
}

Result<std::string> read_head(const std::filesystem::path& path, std::size_t n) {
  auto source = open_source(path);
  if (!source) return source.error();
  std::string head(n, '\0');
  std::size_t got = 0;
  while (got < n) {
    auto more = (*source)->read(head.data() + got, n - got);
    if (!more) return more.error();
    if (*more == 0) break;
    got += *more;
  }
  head.resize(got);
  return head;
}

}  // namespace memtrack::traces
