// Internal: a thin RAII layer over the SQLite C API - connections, cached prepared statements with bound
// parameters (never string-built SQL), immediate transactions, and SQLite result codes mapped to ErrorCode.
// Thread safety: a Database is used by one thread at a time (the Gallery serialises access).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "faceguard/result.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace faceguard::gallery {

// SQLITE_FULL -> kIoError (disk full / size limit), IOERR -> kIoError, CORRUPT/NOTADB -> kCorruptData,
// BUSY/LOCKED -> kUnavailable, CONSTRAINT -> kConflict, READONLY -> kPermissionDenied, else kInternal.
ErrorCode error_code_for_sqlite(int rc);

class Statement {
 public:
  Statement(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement();

  // Parameters are 1-based, as in SQLite.
  Statement& bind(int i, std::int64_t v);
  Statement& bind(int i, std::string_view text);
  Statement& bind(int i, const char* text) { return bind(i, std::string_view(text)); }
  Statement& bind(int i, const std::string& text) { return bind(i, std::string_view(text)); }
  Statement& bind(int i, std::optional<std::int64_t> v);
  Statement& bind_blob(int i, std::span<const std::uint8_t> blob);
  Statement& bind_zeroblob(int i, int bytes);

  // true: a row is ready; false: done. Errors carry the SQLite message.
  Result<bool> step();
  // Step to completion, then reset.
  Status run();
  void reset();

  std::int64_t column_int(int i) const;
  std::optional<std::int64_t> column_opt_int(int i) const;
  std::string column_text(int i) const;
  std::vector<std::uint8_t> column_blob(int i) const;
  std::span<const std::uint8_t> column_blob_view(int i) const;  // valid until the next step/reset

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_;
};

class Database {
 public:
  struct OpenFlags {
    bool read_only = false;
    bool create = false;
  };
  static Result<std::unique_ptr<Database>> open(const std::filesystem::path& path, OpenFlags flags);
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;
  ~Database();

  Status exec(const std::string& sql);
  // A cached statement, reset and with bindings cleared.
  Result<Statement*> prepare(const std::string& sql);
  Result<std::int64_t> query_int(const std::string& sql);
  void clear_cache() { cache_.clear(); }  // first column of the first row
  std::int64_t last_insert_rowid() const;
  int changes() const;
  Error error(int rc, std::string_view what) const;
  sqlite3* handle() const { return db_; }
  const std::filesystem::path& path() const { return path_; }

 private:
  Database(sqlite3* db, std::filesystem::path path) : db_(db), path_(std::move(path)) {}
  sqlite3* db_;
  std::filesystem::path path_;
  std::unordered_map<std::string, std::unique_ptr<Statement>> cache_;
};

// BEGIN IMMEDIATE ... COMMIT; rolls back on destruction unless committed.
class Transaction {
 public:
  static Result<std::unique_ptr<Transaction>> begin(Database& db);
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction();
  Status commit();

 private:
  explicit Transaction(Database& db) : db_(db) {}
  Database& db_;
  bool done_ = false;
};

}  // namespace faceguard::gallery
