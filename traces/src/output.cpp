// Output files: written through a temporary and renamed into place when the path is a regular
// file (or new), written in place when it is a device, FIFO or socket (never renamed over), and
// standard output for `-`. `.zst` and `.gz` compress; other compressed extensions are refused.
#include <memtrack/traces/io.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <random>
#include <system_error>
#include <utility>
#include <vector>

namespace memtrack::traces {
namespace {

std::filesystem::path temporary_for(const std::filesystem::path& path) {
  std::random_device random;
  // 64 random bits: a name nobody can plant a link at in advance (and the file is created
  // exclusively, without following links, whatever its name).
  const std::uint64_t bits = (std::uint64_t{random()} << 32U) | random();
  std::string name = path.filename().string() + ".tmp-" + std::to_string(bits);
  return path.parent_path() / name;
}

/// Extensions of compressed formats memtrack does not write: refused rather than written plain.
constexpr std::array<std::string_view, 14> unwritable_compression{
    ".bz2",  ".xz",  ".lz4", ".lzma", ".zip", ".7z",  ".br",
    ".zstd", ".tgz", ".z",   ".sz",   ".lz",  ".lzo", ".zz"};

std::string lowercase(std::string text) {
  for (char& c : text) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return text;
}

/**
 * @brief Creates a new temporary beside `target`, exclusively: never through a link someone
 * planted at its name, never over an existing file.
 * @return the open file and its name, or a null file (errno says why)
 */
std::pair<std::FILE*, std::filesystem::path> create_temporary(const std::filesystem::path& target) {
  for (int attempt = 0; attempt < 100; ++attempt) {
    std::filesystem::path name = temporary_for(target);
    const int fd = ::open(name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
    if (fd >= 0) {
      std::FILE* file = ::fdopen(fd, "wb");
      if (file == nullptr) {
        ::close(fd);
        ::unlink(name.c_str());
        return {nullptr, {}};
      }
      return {file, std::move(name)};
    }
    if (errno != EEXIST && errno != ELOOP) return {nullptr, {}};
  }
  errno = EEXIST;
  return {nullptr, {}};
}

enum class Codec : std::uint8_t { None, Zstd, Gzip };

Result<Codec> codec_for(const std::filesystem::path& path) {
  const std::string extension = lowercase(path.extension().string());
  if (extension == ".zst") return Codec::Zstd;
  if (extension == ".gz") return Codec::Gzip;
  for (const std::string_view refused : unwritable_compression) {
    if (extension == refused) {
      return Error::parse_error(path.string() + ": memtrack cannot write " + extension +
                                " compression: name the output .zst or .gz (compressed), or "
                                "without a compression extension (plain)");
    }
  }
  return Codec::None;
}

/// How an output path is written.
struct Destination {
  bool standard_output{false};  ///< `-`
  bool atomic{false};           ///< through a temporary renamed onto `target`
  std::filesystem::path target;
};

Result<Destination> destination_for(const std::filesystem::path& path) {
  if (path == "-") return Destination{true, false, {}};
  struct stat link {};
  if (::lstat(path.c_str(), &link) != 0) {
    if (errno == ENOENT) return Destination{false, true, path};
    return Error::io_error(path.string() + ": cannot write: " + std::strerror(errno));
  }
  if (S_ISDIR(link.st_mode)) return Error::io_error(path.string() + ": is a folder, not a file");
  if (S_ISREG(link.st_mode)) return Destination{false, true, path};
  if (S_ISLNK(link.st_mode)) {
    // A link to a regular file: replace that file (never the link); to anything else (a device,
    // /dev/stdout's /proc/self/fd/1, nothing yet), write through the link in place.
    std::error_code ec;
    const std::filesystem::path resolved = std::filesystem::canonical(path, ec);
    struct stat target {};
    if (!ec && resolved.string().rfind("/proc/", 0) != 0 &&
        ::stat(resolved.c_str(), &target) == 0 && S_ISREG(target.st_mode)) {
      return Destination{false, true, resolved};
    }
  }
  // A character or block device, a FIFO, a socket: written directly, never renamed over.
  return Destination{false, false, path};
}

}  // namespace

Result<void> refuse_output_over_input(const std::filesystem::path& output,
                                      const std::vector<std::filesystem::path>& inputs) {
  if (output == "-") return {};
  struct stat out {};
  if (::stat(output.c_str(), &out) != 0) return {};  // not there yet: it cannot be an input
  if (!S_ISREG(out.st_mode)) return {};  // a device or FIFO is written in place, not replaced
  for (const std::filesystem::path& input : inputs) {
    struct stat in {};
    if (::stat(input.c_str(), &in) == 0 && in.st_dev == out.st_dev && in.st_ino == out.st_ino) {
      return Error::parse_error(output.string() + ": is the same file as the input " +
                                input.string() + ": refusing to overwrite the input");
    }
  }
  return {};
}

struct AtomicOutput::State {
  std::filesystem::path path;       ///< as the user named it
  std::filesystem::path target;     ///< where the bytes end up
  std::filesystem::path temporary;  ///< empty unless written through a temporary
  std::FILE* file{nullptr};
  bool owns_file{true};  ///< false for standard output
  Codec codec{Codec::None};
  ZSTD_CStream* zstd{nullptr};
  z_stream gzip{};
  bool gzip_open{false};
  std::vector<char> compressed;
  bool committed{false};

  State() = default;
  State(const State&) = delete;
  State& operator=(const State&) = delete;
  ~State() {
    if (zstd != nullptr) ZSTD_freeCStream(zstd);
    if (gzip_open) deflateEnd(&gzip);
    if (file != nullptr && owns_file) std::fclose(file);
    if (!committed && !temporary.empty()) {
      std::error_code ec;
      std::filesystem::remove(temporary, ec);
    }
  }

  [[nodiscard]] std::string where() const {
    return temporary.empty() ? path.string() : temporary.string();
  }

  Result<void> put(const char* data, std::size_t size) {
    if (size > 0 && std::fwrite(data, 1, size, file) != size) {
      return Error::io_error(where() + ": write failed: " + std::strerror(errno));
    }
    return {};
  }

  Result<void> compress_zstd(std::string_view bytes, ZSTD_EndDirective mode) {
    ZSTD_inBuffer in{bytes.data(), bytes.size(), 0};
    for (;;) {
      ZSTD_outBuffer out{compressed.data(), compressed.size(), 0};
      const std::size_t left = ZSTD_compressStream2(zstd, &out, &in, mode);
      if (ZSTD_isError(left) != 0U) {
        return Error::parse_error(path.string() + ": zstd: " + ZSTD_getErrorName(left));
      }
      if (auto ok = put(compressed.data(), out.pos); !ok) return ok;
      const bool done = mode == ZSTD_e_end ? left == 0 : in.pos == in.size;
      if (done) return {};
    }
  }

  Result<void> compress_gzip(std::string_view bytes, bool finish) {
    // zlib counts in uInt: feed at most 1 GiB at a time.
    do {
      const std::size_t take = std::min<std::size_t>(bytes.size(), std::size_t{1} << 30U);
      gzip.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
      gzip.avail_in = static_cast<uInt>(take);
      bytes.remove_prefix(take);
      const int flush = finish && bytes.empty() ? Z_FINISH : Z_NO_FLUSH;
      for (;;) {
        gzip.next_out = reinterpret_cast<Bytef*>(compressed.data());
        gzip.avail_out = static_cast<uInt>(compressed.size());
        const int status = deflate(&gzip, flush);
        if (status == Z_STREAM_ERROR) return Error::parse_error(path.string() + ": gzip: failed");
        if (auto ok = put(compressed.data(), compressed.size() - gzip.avail_out); !ok) return ok;
        if (flush == Z_FINISH ? status == Z_STREAM_END : gzip.avail_out != 0) break;
      }
    } while (!bytes.empty());
    return {};
  }

  Result<void> start_codec() {
    if (codec == Codec::Zstd) {
      zstd = ZSTD_createCStream();
      if (zstd == nullptr) return Error::parse_error(path.string() + ": zstd: out of memory");
      compressed.resize(ZSTD_CStreamOutSize());
      ZSTD_CCtx_setParameter(zstd, ZSTD_c_compressionLevel, 6);
      ZSTD_CCtx_setParameter(zstd, ZSTD_c_checksumFlag, 1);  // corruption is detected
    } else if (codec == Codec::Gzip) {
      // 15 + 16: a gzip wrapper (header and CRC) rather than a raw zlib stream.
      if (deflateInit2(&gzip, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        return Error::parse_error(path.string() + ": gzip: cannot start the compressor");
      }
      gzip_open = true;
      compressed.resize(256 * 1024);
    }
    return {};
  }
};

AtomicOutput::AtomicOutput(std::unique_ptr<State> state) : state_(std::move(state)) {}
AtomicOutput::AtomicOutput(AtomicOutput&&) noexcept = default;
AtomicOutput& AtomicOutput::operator=(AtomicOutput&&) noexcept = default;
AtomicOutput::~AtomicOutput() = default;

Result<AtomicOutput> AtomicOutput::create(const std::filesystem::path& path) {
  auto codec = codec_for(path);
  if (!codec) return codec.error();
  auto destination = destination_for(path);
  if (!destination) return destination.error();
  auto state = std::make_unique<State>();
  state->path = path;
  state->codec = *codec;
  if (destination->standard_output) {
    state->file = stdout;
    state->owns_file = false;
  } else if (destination->atomic) {
    state->target = destination->target;
    auto [file, temporary] = create_temporary(destination->target);
    if (file == nullptr) {
      return Error::io_error(path.string() +
                             ": cannot create a temporary file beside it: " + std::strerror(errno));
    }
    state->file = file;
    state->temporary = std::move(temporary);
  } else {
    // In place (a device, a FIFO): a FIFO without a reader is refused at once rather than
    // waited on forever (opening it for writing without blocking fails with ENXIO).
    state->target = destination->target;
    const int fd = ::open(destination->target.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
      return Error::io_error(path.string() + ": cannot open for writing: " +
                             (errno == ENXIO ? std::string("a FIFO with no reader")
                                             : std::string(std::strerror(errno))));
    }
    const int flags = ::fcntl(fd, F_GETFL);
    if (flags != -1) ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    state->file = ::fdopen(fd, "wb");
    if (state->file == nullptr) {
      ::close(fd);
      return Error::io_error(path.string() + ": cannot open for writing: " + std::strerror(errno));
    }
  }
  if (auto started = state->start_codec(); !started) return started.error();
  return AtomicOutput(std::move(state));
}

Result<void> AtomicOutput::write(std::string_view bytes) {
  switch (state_->codec) {
    case Codec::Zstd:
      return state_->compress_zstd(bytes, ZSTD_e_continue);
    case Codec::Gzip:
      return state_->compress_gzip(bytes, false);
    case Codec::None:
      break;
  }
  return state_->put(bytes.data(), bytes.size());
}

Result<void> AtomicOutput::commit() {
  State& s = *state_;
  if (s.codec == Codec::Zstd) {
    if (auto ok = s.compress_zstd({}, ZSTD_e_end); !ok) return ok;
  } else if (s.codec == Codec::Gzip) {
    if (auto ok = s.compress_gzip({}, true); !ok) return ok;
  }
  const bool flushed = std::fflush(s.file) == 0;
  const int flush_errno = errno;
  bool closed = true;
  if (s.owns_file) {
    closed = std::fclose(s.file) == 0;
    s.file = nullptr;
  }
  if (!flushed || !closed) {
    return Error::io_error(s.where() +
                           ": write failed: " + std::strerror(flushed ? errno : flush_errno));
  }
  if (!s.temporary.empty()) {
    std::error_code ec;
    std::filesystem::rename(s.temporary, s.target, ec);
    if (ec) {
      return Error::io_error(s.path.string() + ": cannot rename into place: " + ec.message());
    }
  }
  s.committed = true;
  return {};
}

const std::filesystem::path& AtomicOutput::path() const {
  return state_->path;
}

bool AtomicOutput::is_standard_output() const {
  return state_->file == stdout && !state_->owns_file;
}

}  // namespace memtrack::traces
