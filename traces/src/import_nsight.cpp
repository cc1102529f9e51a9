// Nsight Systems SQLite exports: CUDA_GPU_MEMORY_USAGE_EVENTS as trace events.
#include <memtrack/traces/importers.hpp>

#include <memtrack/units.hpp>

#include "import_support.hpp"
#include "textkit.hpp"

#include <sqlite3.h>

#include <array>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <memory>
#include <optional>

namespace memtrack::traces {
namespace {

struct SqliteCloser {
  void operator()(sqlite3* db) const { sqlite3_close(db); }
};
struct StatementCloser {
  void operator()(sqlite3_stmt* statement) const { sqlite3_finalize(statement); }
};
using Database = std::unique_ptr<sqlite3, SqliteCloser>;
using Statement = std::unique_ptr<sqlite3_stmt, StatementCloser>;

bool has_table(sqlite3* db, const char* table) {
  sqlite3_stmt* raw = nullptr;
  if (sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", -1, &raw,
                         nullptr) != SQLITE_OK) {
    return false;
  }
  const Statement statement(raw);
  sqlite3_bind_text(raw, 1, table, -1, SQLITE_STATIC);
  return sqlite3_step(raw) == SQLITE_ROW;
}

/// @return the big-endian number of `n` bytes at `at` in `bytes`
std::uint64_t big_endian(std::string_view bytes, std::size_t at, std::size_t n) {
  std::uint64_t value = 0;
  for (std::size_t i = 0; i < n; ++i)
    value = (value << 8U) | static_cast<unsigned char>(bytes[at + i]);
  return value;
}

/**
 * @brief Refuses a database file that is cut short or padded, from its header: SQLite reads a
 * truncated file without complaint (missing pages read as absent rows). The size must be a whole
 * number of pages, and as many as the header declares (when that count is valid: the
 * version-valid-for number at offset 92 equals the change counter at 24).
 */
Result<void> check_size(std::string_view bytes, const std::string& file) {
  constexpr std::size_t header_bytes = 100;
  if (bytes.size() < header_bytes) {
    return Error::parse_error(file + ": byte " + std::to_string(bytes.size()) +
                              ": truncated SQLite database (shorter than its 100-byte header)");
  }
  std::uint64_t page = big_endian(bytes, 16, 2);
  if (page == 1) page = 65536;
  if (page < 512 || page > 65536 || (page & (page - 1)) != 0) {
    return Error::parse_error(file + ": byte 16: expected an SQLite page size (a power of two " +
                              "from 512 to 65536), got " + std::to_string(page));
  }
  const bool count_valid = big_endian(bytes, 92, 4) == big_endian(bytes, 24, 4);
  const std::uint64_t declared = big_endian(bytes, 28, 4);
  if (bytes.size() % page != 0 || (count_valid && bytes.size() / page != declared)) {
    return Error::parse_error(
        file + ": byte " + std::to_string(bytes.size()) +
        ": truncated or padded SQLite database (" + std::to_string(bytes.size()) +
        " bytes, expected " +
        (count_valid ? std::to_string(declared) + " pages of " : "whole pages of ") +
        std::to_string(page) + " bytes): the export was cut short?");
  }
  return {};
}

/// Refuses a damaged database: `PRAGMA quick_check` must say ok.
Result<void> check_intact(sqlite3* db, const std::string& file) {
  sqlite3_stmt* raw = nullptr;
  if (sqlite3_prepare_v2(db, "PRAGMA quick_check", -1, &raw, nullptr) != SQLITE_OK) {
    return Error::parse_error(file + ": not a valid SQLite database: " + sqlite3_errmsg(db));
  }
  const Statement statement(raw);
  const int status = sqlite3_step(raw);
  const unsigned char* verdict = status == SQLITE_ROW ? sqlite3_column_text(raw, 0) : nullptr;
  if (verdict == nullptr || std::string_view(reinterpret_cast<const char*>(verdict)) != "ok") {
    return Error::parse_error(file + ": damaged SQLite database (PRAGMA quick_check: " +
                              (verdict != nullptr
                                   ? detail::printable(reinterpret_cast<const char*>(verdict))
                                   : std::string(sqlite3_errmsg(db))) +
                              ")");
  }
  return {};
}

/// One integer column of a row, strictly: SQLite's storage class INTEGER and in range.
class RowReader {
 public:
  RowReader(sqlite3_stmt* statement, const std::string& file, sqlite3_int64 row_id)
      : statement_(statement), file_(file), row_id_(row_id) {}

  /// @return the column as an integer from `low` to `high`, or an error naming the row and column
  Result<sqlite3_int64> integer(int column, const char* name, sqlite3_int64 low,
                                sqlite3_int64 high) const {
    const int type = sqlite3_column_type(statement_, column);
    if (type == SQLITE_INTEGER) {
      const sqlite3_int64 value = sqlite3_column_int64(statement_, column);
      if (value >= low && value <= high) return value;
      return fail(name, "expected an integer from " + std::to_string(low) + " to " +
                            std::to_string(high) + ", got " + std::to_string(value));
    }
    return fail(name, "expected an integer, got " + shown(column, type));
  }

  [[nodiscard]] bool is_null(int column) const {
    return sqlite3_column_type(statement_, column) == SQLITE_NULL;
  }

 private:
  [[nodiscard]] std::string shown(int column, int type) const {
    switch (type) {
      case SQLITE_NULL:
        return "NULL";
      case SQLITE_FLOAT:
        return "the real number " + std::to_string(sqlite3_column_double(statement_, column));
      case SQLITE_BLOB:
        return "a blob of " + std::to_string(sqlite3_column_bytes(statement_, column)) + " bytes";
      default: {
        const unsigned char* text = sqlite3_column_text(statement_, column);
        return "the text '" +
               detail::printable(text == nullptr ? "" : reinterpret_cast<const char*>(text)) + "'";
      }
    }
  }
  [[nodiscard]] Error fail(const char* name, const std::string& what) const {
    return Error::parse_error(file_ + ": CUDA_GPU_MEMORY_USAGE_EVENTS row id " +
                              std::to_string(row_id_) + ", column " + name + ": " + what);
  }

  sqlite3_stmt* statement_;
  const std::string& file_;
  sqlite3_int64 row_id_;
};

bool has_column(sqlite3* db, const char* table, const char* column) {
  sqlite3_stmt* raw = nullptr;
  const std::string sql =
      std::string("SELECT 1 FROM pragma_table_info('") + table + "') WHERE name=?";
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &raw, nullptr) != SQLITE_OK) return false;
  const Statement statement(raw);
  sqlite3_bind_text(raw, 1, column, -1, SQLITE_STATIC);
  return sqlite3_step(raw) == SQLITE_ROW;
}

/// The export's bytes as a read-only SQLite database in memory (SQLite owns its own copy).
Result<Database> open_database(std::string_view bytes, const std::string& file) {
  if (bytes.starts_with(std::string_view("SQLite format 3\0", 16))) {
    if (auto size = check_size(bytes, file); !size) return size.error();
  }
  sqlite3* raw = nullptr;
  if (sqlite3_open_v2(":memory:", &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_MEMORY, nullptr) !=
      SQLITE_OK) {
    sqlite3_close(raw);
    return Error::parse_error(file + ": cannot open an SQLite database in memory");
  }
  Database db(raw);
  auto* copy = static_cast<unsigned char*>(sqlite3_malloc64(bytes.size() == 0 ? 1 : bytes.size()));
  if (copy == nullptr) return Error::parse_error(file + ": out of memory");
  std::memcpy(copy, bytes.data(), bytes.size());
  if (sqlite3_deserialize(raw, "main", copy, static_cast<sqlite3_int64>(bytes.size()),
                          static_cast<sqlite3_int64>(bytes.size()),
                          SQLITE_DESERIALIZE_FREEONCLOSE | SQLITE_DESERIALIZE_READONLY) !=
      SQLITE_OK) {
    return Error::parse_error(file + ": not an SQLite database: " + sqlite3_errmsg(raw));
  }
  if (auto intact = check_intact(raw, file); !intact) return intact.error();
  for (const char* table :
       {"CUDA_GPU_MEMORY_USAGE_EVENTS", "ENUM_CUDA_MEM_KIND", "ENUM_CUDA_DEV_MEM_EVENT_OPER"}) {
    if (has_table(raw, table)) continue;
    if (sqlite3_errcode(raw) == SQLITE_NOTADB || sqlite3_errcode(raw) == SQLITE_CORRUPT) {
      return Error::parse_error(file + ": not a valid SQLite database: " + sqlite3_errmsg(raw));
    }
    return Error::parse_error(file + ": no table " + table +
                              " (export with 'nsys export --type sqlite' from a report recorded "
                              "with --cuda-memory-usage=true)");
  }
  return db;
}

/// The memory events in time order, with their kind's and operation's names. Columns: 0 start,
/// 1 deviceId, 2 address, 3 bytes, 4 kind, 5 operation, 6 streamId (NULL without one), 7 rowid.
Result<Statement> select_events(sqlite3* db, const std::string& file) {
  const bool has_stream = has_column(db, "CUDA_GPU_MEMORY_USAGE_EVENTS", "streamId");
  // The enum tables are joined by their names, never by NVIDIA's numbering, which changes.
  const std::string sql =
      std::string("SELECT e.start, e.deviceId, e.address, e.bytes, k.name, o.name, ") +
      (has_stream ? "e.streamId" : "NULL") + ", e.rowid" +
      " FROM CUDA_GPU_MEMORY_USAGE_EVENTS e"
      " LEFT JOIN ENUM_CUDA_MEM_KIND k ON e.memKind = k.id"
      " LEFT JOIN ENUM_CUDA_DEV_MEM_EVENT_OPER o ON e.memoryOperationType = o.id"
      " ORDER BY e.start, e.rowid";
  sqlite3_stmt* prepared = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &prepared, nullptr) != SQLITE_OK) {
    return Error::parse_error(file +
                              ": CUDA_GPU_MEMORY_USAGE_EVENTS lacks the columns start, "
                              "deviceId, address, bytes, memKind, memoryOperationType: " +
                              sqlite3_errmsg(db));
  }
  return Statement(prepared);
}

/// What the rows that are not imported were, counted by their kind or operation name.
struct Skipped {
  std::map<std::string, std::uint64_t> kinds;
  std::map<std::string, std::uint64_t> operations;

  /// Adds a note per name to `report`, and the count to its skipped events.
  void note(ImportReport& report) const {
    for (const auto& [kind, count] : kinds) {
      report.skipped += count;
      report.notes.push_back(std::to_string(count) + " events of memory kind " + kind +
                             ": not device memory, not imported");
    }
    for (const auto& [operation, count] : operations) {
      report.skipped += count;
      report.notes.push_back(std::to_string(count) + " events of operation " + operation +
                             ": neither allocation nor deallocation, not imported");
    }
  }
};

/// The current row as an event; nothing (counted in `skipped`) for memory that is not on the
/// GPU's budget or an operation that neither allocates nor frees.
Result<std::optional<TraceEvent>> event_of_row(sqlite3_stmt* row, const std::string& file,
                                               Skipped& skipped) {
  const auto text = [&](int column) {
    const unsigned char* value = sqlite3_column_text(row, column);
    return value == nullptr ? std::string("(none)")
                            : std::string(reinterpret_cast<const char*>(value));
  };
  const std::string kind = text(4);
  const std::string operation = text(5);
  // Device memory: DEVICE, DEVICE_STATIC and ARRAY; host, pinned and managed memory are not
  // on the GPU's budget.
  if (!kind.ends_with("_DEVICE") && !kind.ends_with("_DEVICE_STATIC") &&
      !kind.ends_with("_ARRAY")) {
    ++skipped.kinds[kind];
    return std::optional<TraceEvent>();
  }
  const bool is_free = operation.find("DEALLOCATION") != std::string::npos;
  const bool is_alloc = !is_free && operation.find("ALLOCATION") != std::string::npos;
  if (!is_free && !is_alloc) {
    ++skipped.operations[operation];
    return std::optional<TraceEvent>();
  }
  // Strictly typed: SQLite would turn text, NULL, a blob or a real into some integer.
  constexpr sqlite3_int64 any_low = std::numeric_limits<sqlite3_int64>::min();
  constexpr sqlite3_int64 any_high = std::numeric_limits<sqlite3_int64>::max();
  const RowReader columns(row, file, sqlite3_column_int64(row, 7));
  auto device = columns.integer(1, "deviceId", 0, INT32_MAX);
  if (!device) return device.error();
  auto size = columns.integer(3, "bytes", 0, any_high);
  if (!size) return size.error();
  auto address = columns.integer(2, "address", any_low, any_high);  // 2^63 and up: negative
  if (!address) return address.error();
  const DevicePlacement gpu = Gpu{static_cast<std::uint32_t>(*device)};
  TraceEvent event = is_alloc ? TraceEvent::allocate(gpu, static_cast<std::uint64_t>(*size))
                              : TraceEvent::free(gpu, static_cast<std::uint64_t>(*size));
  event.address = static_cast<std::uint64_t>(*address);
  if (!columns.is_null(0)) {
    auto start = columns.integer(0, "start", 0, any_high);
    if (!start) return start.error();
    event.time_ns = static_cast<std::uint64_t>(*start);
  }
  if (!columns.is_null(6)) {
    auto stream = columns.integer(6, "streamId", 0, any_high);
    if (!stream) return stream.error();
    event.stream = static_cast<std::uint64_t>(*stream);
  }
  return std::optional<TraceEvent>(std::move(event));
}

}  // namespace

Result<ImportReport> import_nsight(std::string_view bytes, std::string_view name, TraceSink& sink) {
  const std::string file(name);
  auto db = open_database(bytes, file);
  if (!db) return db.error();
  auto statement = select_events(db->get(), file);
  if (!statement) return statement.error();
  sqlite3_stmt* const row = statement->get();

  ImportReport report;
  report.origin_unit = "CUDA_GPU_MEMORY_USAGE_EVENTS row id";
  TraceHeader header;
  header.source = "nsight " + file + " (the export does not give budgets: replay with --profile)";
  if (auto ok = sink.header(header); !ok) return ok.error();
  Skipped skipped;
  for (std::uint64_t step = 1;; ++step) {
    const int status = sqlite3_step(row);
    if (status == SQLITE_DONE) break;
    if (status != SQLITE_ROW) {
      return Error::parse_error(file + ": CUDA_GPU_MEMORY_USAGE_EVENTS row " +
                                std::to_string(step) + ": " + sqlite3_errmsg(db->get()));
    }
    auto event = event_of_row(row, file, skipped);
    if (!event) return event.error();
    if (!*event) continue;
    ++report.events;
    sink.origin(static_cast<std::uint64_t>(sqlite3_column_int64(row, 7)));  // the row id
    if (auto ok = sink.event(**event); !ok) return ok.error();
  }
  skipped.note(report);
  return report;
}

}  // namespace memtrack::traces
