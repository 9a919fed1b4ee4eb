#include "gallery/sqlite_db.hpp"

#include <sqlite3.h>

namespace faceguard::gallery {

ErrorCode error_code_for_sqlite(int rc) {
  switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_ROW:
    case SQLITE_DONE: return ErrorCode::kOk;
    case SQLITE_FULL:
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN: return ErrorCode::kIoError;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB: return ErrorCode::kCorruptData;
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return ErrorCode::kUnavailable;
    case SQLITE_CONSTRAINT: return ErrorCode::kConflict;
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH: return ErrorCode::kPermissionDenied;
    default: return ErrorCode::kInternal;
  }
}

namespace {
Error make_sqlite_error(sqlite3* db, int rc, std::string_view what) {
  std::string msg(what);
  msg += ": ";
  if ((rc & 0xff) == SQLITE_FULL) msg += "disk full or gallery size limit reached: ";
  msg += db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  return make_error(error_code_for_sqlite(rc), std::move(msg));
}
}  // namespace

Statement::~Statement() { sqlite3_finalize(stmt_); }

Statement& Statement::bind(int i, std::int64_t v) {
  sqlite3_bind_int64(stmt_, i, v);
  return *this;
}
Statement& Statement::bind(int i, std::string_view text) {
  sqlite3_bind_text(stmt_, i, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
  return *this;
}
Statement& Statement::bind(int i, std::optional<std::int64_t> v) {
  if (v) sqlite3_bind_int64(stmt_, i, *v);
  else sqlite3_bind_null(stmt_, i);
  return *this;
}
Statement& Statement::bind_blob(int i, std::span<const std::uint8_t> blob) {
  // A zero-length blob must still be a blob, not NULL.
  static const std::uint8_t kEmpty = 0;
  sqlite3_bind_blob(stmt_, i, blob.empty() ? &kEmpty : blob.data(), static_cast<int>(blob.size()),
                    SQLITE_TRANSIENT);
  return *this;
}
Statement& Statement::bind_zeroblob(int i, int bytes) {
  sqlite3_bind_zeroblob(stmt_, i, bytes);
  return *this;
}

Result<bool> Statement::step() {
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  Error e = make_sqlite_error(db_, rc, "sqlite");
  sqlite3_reset(stmt_);
  return e;
}

Status Statement::run() {
  for (;;) {
    auto r = step();
    if (!r) {
      reset();
      return r.error();
    }
    if (!*r) break;
  }
  reset();
  return ok_status();
}

void Statement::reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

std::int64_t Statement::column_int(int i) const { return sqlite3_column_int64(stmt_, i); }
std::optional<std::int64_t> Statement::column_opt_int(int i) const {
  if (sqlite3_column_type(stmt_, i) == SQLITE_NULL) return std::nullopt;
  return sqlite3_column_int64(stmt_, i);
}
std::string Statement::column_text(int i) const {
  const auto* p = sqlite3_column_text(stmt_, i);
  const int n = sqlite3_column_bytes(stmt_, i);
  return p ? std::string(reinterpret_cast<const char*>(p), static_cast<std::size_t>(n)) : std::string();
}
std::span<const std::uint8_t> Statement::column_blob_view(int i) const {
  const auto* p = static_cast<const std::uint8_t*>(sqlite3_column_blob(stmt_, i));
  const int n = sqlite3_column_bytes(stmt_, i);
  return p ? std::span<const std::uint8_t>(p, static_cast<std::size_t>(n)) : std::span<const std::uint8_t>();
}
std::vector<std::uint8_t> Statement::column_blob(int i) const {
  auto v = column_blob_view(i);
  return {v.begin(), v.end()};
}

Result<std::unique_ptr<Database>> Database::open(const std::filesystem::path& path, OpenFlags flags) {
  int f = SQLITE_OPEN_NOMUTEX;
  f |= flags.read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE;
  if (flags.create && !flags.read_only) f |= SQLITE_OPEN_CREATE;
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &db, f, nullptr);
  if (rc != SQLITE_OK) {
    Error e = make_sqlite_error(db, rc, "cannot open " + path.string());
    sqlite3_close(db);
    return e;
  }
  sqlite3_extended_result_codes(db, 1);
  return std::unique_ptr<Database>(new Database(db, path));
}

Database::~Database() {
  cache_.clear();  // statements must be finalized before the connection closes
  sqlite3_close(db_);
}

Status Database::exec(const std::string& sql) {
  char* msg = nullptr;
  const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &msg);
  if (rc != SQLITE_OK) {
    std::string m = msg ? msg : sqlite3_errstr(rc);
    sqlite3_free(msg);
    Error e = make_sqlite_error(nullptr, rc, sql.substr(0, 40));
    e.message += " (" + m + ")";
    return e;
  }
  return ok_status();
}

Result<Statement*> Database::prepare(const std::string& sql) {
  auto it = cache_.find(sql);
  if (it != cache_.end()) {
    it->second->reset();
    return it->second.get();
  }
  sqlite3_stmt* stmt = nullptr;
  const int rc = sqlite3_prepare_v3(db_, sql.c_str(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT,
                                    &stmt, nullptr);
  if (rc != SQLITE_OK) return make_sqlite_error(db_, rc, "prepare");
  auto* raw = new Statement(db_, stmt);
  cache_.emplace(sql, std::unique_ptr<Statement>(raw));
  return raw;
}

Result<std::int64_t> Database::query_int(const std::string& sql) {
  FG_ASSIGN_OR_RETURN(Statement * st, prepare(sql));
  FG_ASSIGN_OR_RETURN(bool row, st->step());
  const std::int64_t v = row ? st->column_int(0) : 0;
  st->reset();
  return v;
}

std::int64_t Database::last_insert_rowid() const { return sqlite3_last_insert_rowid(db_); }
int Database::changes() const { return sqlite3_changes(db_); }
Error Database::error(int rc, std::string_view what) const { return make_sqlite_error(db_, rc, what); }

Result<std::unique_ptr<Transaction>> Transaction::begin(Database& db) {
  FG_TRY_STATUS(db.exec("BEGIN IMMEDIATE"));
  return std::unique_ptr<Transaction>(new Transaction(db));
}

Transaction::~Transaction() {
  if (!done_) (void)db_.exec("ROLLBACK");
}

Status Transaction::commit() {
  auto s = db_.exec("COMMIT");
  if (!s) {
    // A failed COMMIT (e.g. SQLITE_FULL) may leave the transaction open; roll it back explicitly.
    if (!sqlite3_get_autocommit(db_.handle())) (void)db_.exec("ROLLBACK");
    done_ = true;
    return s;
  }
  done_ = true;
  return ok_status();
}

}  // namespace faceguard::gallery
