/**
 * @file io.hpp
 * @brief Byte streams for traces: files read with zstd or gzip decompression detected from the
 * first bytes, and outputs written to a temporary file that is renamed into place on success
 * (zstd-compressed when the name ends in `.zst`).
 */
#pragma once

#include <memtrack/result.hpp>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace memtrack::traces {

/// A readable stream of bytes (already decompressed).
class ByteSource {
 public:
  ByteSource() = default;
  ByteSource(const ByteSource&) = delete;
  ByteSource& operator=(const ByteSource&) = delete;
  virtual ~ByteSource() = default;

  /// Reads up to `size` bytes. @return how many (0 only at the end), or a located `ParseError`
  virtual Result<std::size_t> read(char* buffer, std::size_t size) = 0;
};

/// How a file is compressed, from its first bytes.
enum class Compression : std::uint8_t { None, Zstd, Gzip };

/// @return the compression that `prefix` (the file's first bytes) announces
[[nodiscard]] Compression detect_compression(std::string_view prefix);

/**
 * @brief Opens a file for reading, decompressing zstd or gzip transparently (streamed: memory
 * stays a few buffers whatever the length).
 *
 * Only a regular file is opened: a FIFO, pipe, socket or device is refused at once with the
 * reason (opening a FIFO would wait for a writer, and readers open their input more than once).
 */
[[nodiscard]] Result<std::unique_ptr<ByteSource>> open_source(const std::filesystem::path& path);

/// A source over bytes in memory (decompressing them if they are zstd or gzip).
[[nodiscard]] std::unique_ptr<ByteSource> memory_source(std::string bytes, std::string name);

/**
 * @brief Reads a whole file, decompressed, refusing more than `max_bytes` (checked while
 * reading, so a compressed bomb is stopped at the bound).
 */
[[nodiscard]] Result<std::string> read_all(const std::filesystem::path& path,
                                           std::uint64_t max_bytes);
/// The same for a source; `name` is used in the error.
[[nodiscard]] Result<std::string> read_all(ByteSource& source, std::string_view name,
                                           std::uint64_t max_bytes);

/// How many bytes (decompressed) format detection reads: a file that is no recording is refused
/// before it is read whole.
inline constexpr std::size_t format_head_bytes = 4096;

/// @return the first `n` bytes of a file (fewer if it is shorter), decompressed
[[nodiscard]] Result<std::string> read_head(const std::filesystem::path& path, std::size_t n);

/**
 * @brief Refuses an output that is the same file as one of the inputs (same device and inode,
 * through any path or link), before anything is read or written.
 * @return nothing, or a `ParseError` naming both
 */
[[nodiscard]] Result<void> refuse_output_over_input(
    const std::filesystem::path& output, const std::vector<std::filesystem::path>& inputs);

/**
 * @brief An output file that appears only when complete.
 *
 * A new path or a regular file (or a link to one) is written to a temporary beside it that
 * `commit` renames into place; destroyed without `commit`, the temporary is removed. A path that
 * is not a regular file (a character device such as /dev/null, a FIFO, a socket, /dev/stdout)
 * is written in place and never renamed over; `-` is standard output. A name ending in `.zst`
 * compresses with zstd, `.gz` with gzip; other compressed extensions (`.xz`, `.bz2`, ...) are
 * refused rather than written uncompressed.
 */
class AtomicOutput {
 public:
  /// @param path the final name, or `-` for standard output
  [[nodiscard]] static Result<AtomicOutput> create(const std::filesystem::path& path);

  AtomicOutput(AtomicOutput&&) noexcept;
  AtomicOutput& operator=(AtomicOutput&&) noexcept;
  AtomicOutput(const AtomicOutput&) = delete;
  AtomicOutput& operator=(const AtomicOutput&) = delete;
  ~AtomicOutput();

  /// Appends bytes (buffered). @return nothing, or an error naming the file
  Result<void> write(std::string_view bytes);
  /// Flushes, closes and renames into place.
  Result<void> commit();

  [[nodiscard]] const std::filesystem::path& path() const;
  /// @return whether the bytes go to standard output (`-`): messages then go to standard error
  [[nodiscard]] bool is_standard_output() const;

 private:
  struct State;
  explicit AtomicOutput(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

/**
 * @brief A temporary file that nobody else can see: written once, then read from its start by
 * any number of readers.
 *
 * What replay needs of a recording imported on the fly (its canonical trace, each event's place
 * in the source) is kept here rather than in memory, so memory stays flat whatever the length.
 * The file is made in the temporary folder (`TMPDIR`, else /tmp) and unlinked at once: it goes
 * when the last holder closes it, even after a crash.
 */
class Spool {
 public:
  /// @param what what it holds, for errors ("the imported trace of FILE")
  [[nodiscard]] static Result<std::shared_ptr<Spool>> create(std::string what);

  Spool(const Spool&) = delete;
  Spool& operator=(const Spool&) = delete;
  ~Spool();

  /// Appends bytes (buffered). @return nothing, or an error naming the folder (a full disk...)
  Result<void> write(std::string_view bytes);
  /// Writes out what is buffered: the bytes written so far can then be read.
  Result<void> flush();
  /// @return the bytes written and flushed: those that can be read
  [[nodiscard]] std::uint64_t flushed() const noexcept { return written_; }

  /// @return a source of the flushed bytes, from the first (it holds the spool open)
  [[nodiscard]] static std::unique_ptr<ByteSource> reader(std::shared_ptr<const Spool> spool);
  /// Reads `size` flushed bytes at `offset`. @return nothing, or an error (past the end...)
  Result<void> read_at(std::uint64_t offset, char* out, std::size_t size) const;

 private:
  Spool(int fd, std::string what) : fd_(fd), what_(std::move(what)) {}
  [[nodiscard]] Error failed(std::string_view doing, int error) const;

  int fd_;
  std::string what_;
  std::string buffer_;
  std::uint64_t written_{0};  ///< bytes in the file (flushed)
};

}  // namespace memtrack::traces
