// A temporary file, unlinked as soon as it is made, written once and read by offset.
#include <memtrack/traces/io.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>
#include <system_error>
#include <utility>

namespace memtrack::traces {
namespace {

/// Buffered writes go out in pieces of this size.
constexpr std::size_t spool_flush_bytes = 1U << 20U;

/// @return a new file in `folder` that no name leads to, open for reading and writing, or -1
/// (errno says why)
int anonymous_file(const std::filesystem::path& folder) {
#ifdef O_TMPFILE
  if (const int fd = ::open(folder.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600); fd >= 0) {
    return fd;
  }
  if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL) return -1;
#endif
  // A file system without O_TMPFILE: a unique name, removed at once.
  std::string name = (folder / "memtrack-spool-XXXXXX").string();
  const int fd = ::mkostemp(name.data(), O_CLOEXEC);
  if (fd < 0) return -1;
  ::unlink(name.c_str());
  return fd;
}

/// Reads a spool from its start, by offset (each reader has its own).
class SpoolSource final : public ByteSource {
 public:
  explicit SpoolSource(std::shared_ptr<const Spool> spool) : spool_(std::move(spool)) {}

  Result<std::size_t> read(char* buffer, std::size_t size) override {
    const std::uint64_t left = spool_->flushed() - std::min(offset_, spool_->flushed());
    const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(size, left));
    if (n == 0) return std::size_t{0};
    if (auto ok = spool_->read_at(offset_, buffer, n); !ok) return ok.error();
    offset_ += n;
    return n;
  }

 private:
  std::shared_ptr<const Spool> spool_;
  std::uint64_t offset_{0};
};

}  // namespace

Result<std::shared_ptr<Spool>> Spool::create(std::string what) {
  std::error_code ec;
  const std::filesystem::path folder = std::filesystem::temp_directory_path(ec);
  if (ec) {
    return Error::io_error(what + ": no temporary folder to keep it in (" + ec.message() +
                           "): set TMPDIR");
  }
  const int fd = anonymous_file(folder);
  if (fd < 0) {
    return Error::io_error(what + ": cannot make a temporary file in " + folder.string() + ": " +
                           std::strerror(errno) + " (set TMPDIR to a writable folder)");
  }
  return std::shared_ptr<Spool>(new Spool(fd, std::move(what)));
}

Spool::~Spool() {
  ::close(fd_);
}

Error Spool::failed(std::string_view doing, int error) const {
  return Error::io_error(what_ + ": " + std::string(doing) +
                         " its temporary file failed: " + std::strerror(error) +
                         (error == ENOSPC ? " (set TMPDIR to a folder with more room)" : ""));
}

Result<void> Spool::write(std::string_view bytes) {
  buffer_.append(bytes);
  if (buffer_.size() >= spool_flush_bytes) return flush();
  return {};
}

Result<void> Spool::flush() {
  std::size_t done = 0;
  while (done < buffer_.size()) {
    const ssize_t n =
        ::pwrite(fd_, buffer_.data() + done, buffer_.size() - done, static_cast<off_t>(written_));
    if (n <= 0) {
      if (n < 0 && errno == EINTR) continue;
      const int error = n < 0 ? errno : EIO;
      buffer_.erase(0, done);  // what was written is not written again
      return failed("writing", error);
    }
    done += static_cast<std::size_t>(n);
    written_ += static_cast<std::uint64_t>(n);
  }
  buffer_.clear();
  return {};
}

std::unique_ptr<ByteSource> Spool::reader(std::shared_ptr<const Spool> spool) {
  return std::make_unique<SpoolSource>(std::move(spool));
}

Result<void> Spool::read_at(std::uint64_t offset, char* out, std::size_t size) const {
  if (offset > written_ || size > written_ - offset) {
    return Error::io_error(what_ + ": byte " + std::to_string(offset) + ": reading " +
                           std::to_string(size) + " bytes past the " + std::to_string(written_) +
                           " written");
  }
  while (size > 0) {
    const ssize_t n = ::pread(fd_, out, size, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return failed("reading", errno);
    }
    if (n == 0) return failed("reading", EIO);  // shortened by someone else
    out += n;
    size -= static_cast<std::size_t>(n);
    offset += static_cast<std::uint64_t>(n);
  }
  return {};
}

}  // namespace memtrack::traces
