#include "faceguard/apikeys.hpp"

#include <sodium.h>
#include <sqlite3.h>

#include <chrono>
#include <mutex>

namespace faceguard {
namespace {

constexpr std::string_view kPrefix = "fgk_";
constexpr std::size_t kIdBytes = 8;       // 16 hex chars
constexpr std::size_t kSecretBytes = 32;  // 64 hex chars
constexpr int kSchemaVersion = 1;

std::string to_hex(const unsigned char* p, std::size_t n) {
  std::string out(n * 2 + 1, '\0');
  sodium_bin2hex(out.data(), out.size(), p, n);
  out.pop_back();
  return out;
}

std::int64_t now_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

Error db_error(sqlite3* db, const std::string& what) {
  const int code = sqlite3_errcode(db);
  const ErrorCode ec = (code == SQLITE_CORRUPT || code == SQLITE_NOTADB) ? ErrorCode::kCorruptData
                       : (code == SQLITE_BUSY || code == SQLITE_LOCKED) ? ErrorCode::kUnavailable
                                                                         : ErrorCode::kIoError;
  return make_error(ec, "api keys: " + what + ": " + sqlite3_errmsg(db));
}

// RAII prepared statement.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) : db_(db) { rc_ = sqlite3_prepare_v2(db, sql, -1, &s_, nullptr); }
  ~Stmt() { sqlite3_finalize(s_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  bool ok() const { return rc_ == SQLITE_OK; }
  sqlite3_stmt* get() { return s_; }
  void bind(int i, std::string_view v) { sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT); }
  void bind(int i, std::int64_t v) { sqlite3_bind_int64(s_, i, v); }
  void bind(int i, double v) { sqlite3_bind_double(s_, i, v); }
  int step() { return sqlite3_step(s_); }
  std::string text(int i) {
    auto p = sqlite3_column_text(s_, i);
    return p ? reinterpret_cast<const char*>(p) : "";
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* s_ = nullptr;
  int rc_;
};

ApiKeyInfo row_to_info(Stmt& s) {
  ApiKeyInfo k;
  k.id = s.text(0);
  k.operator_id = s.text(1);
  k.organisation = s.text(2);
  k.role = parse_api_role(s.text(3)).ok() ? *parse_api_role(s.text(3)) : ApiRole::kAuditor;
  k.operator_kind = s.text(4);
  k.label = s.text(5);
  k.requests_per_second = sqlite3_column_double(s.get(), 6);
  k.burst = sqlite3_column_double(s.get(), 7);
  k.created_at = sqlite3_column_int64(s.get(), 8);
  if (sqlite3_column_type(s.get(), 9) != SQLITE_NULL) k.revoked_at = sqlite3_column_int64(s.get(), 9);
  return k;
}

constexpr const char* kSelectCols =
    "SELECT id, operator_id, organisation, role, operator_kind, label, rps, burst, created_at, revoked_at FROM api_keys";

}  // namespace

std::string_view to_string(ApiRole role) {
  switch (role) {
    case ApiRole::kAdmin: return "admin";
    case ApiRole::kOperator: return "operator";
    case ApiRole::kAuditor: return "auditor";
  }
  return "auditor";
}

Result<ApiRole> parse_api_role(std::string_view name) {
  if (name == "admin") return ApiRole::kAdmin;
  if (name == "operator") return ApiRole::kOperator;
  if (name == "auditor") return ApiRole::kAuditor;
  return make_error(ErrorCode::kInvalidArgument, "unknown role '" + std::string(name) + "' (admin, operator, auditor)");
}

struct ApiKeyStore::Impl {
  sqlite3* db = nullptr;
  mutable std::mutex mu;
  ~Impl() {
    if (db) sqlite3_close_v2(db);
  }
};

ApiKeyStore::ApiKeyStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ApiKeyStore::~ApiKeyStore() = default;

Result<std::unique_ptr<ApiKeyStore>> ApiKeyStore::open(const std::filesystem::path& path) {
  if (sodium_init() < 0) return make_error(ErrorCode::kInternal, "libsodium failed to initialise");
  auto impl = std::make_unique<Impl>();
  if (sqlite3_open_v2(path.c_str(), &impl->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                      nullptr) != SQLITE_OK)
    return db_error(impl->db, "cannot open " + path.string());
  sqlite3_busy_timeout(impl->db, 5000);
  char* err = nullptr;
  const char* ddl =
      "PRAGMA journal_mode=WAL;"
      "CREATE TABLE IF NOT EXISTS schema_version(version INTEGER NOT NULL);"
      "CREATE TABLE IF NOT EXISTS api_keys("
      " id TEXT PRIMARY KEY, secret_hash BLOB NOT NULL, operator_id TEXT NOT NULL, organisation TEXT NOT NULL,"
      " role TEXT NOT NULL, operator_kind TEXT NOT NULL, label TEXT NOT NULL, rps REAL NOT NULL, burst REAL NOT NULL,"
      " created_at INTEGER NOT NULL, revoked_at INTEGER);";
  if (sqlite3_exec(impl->db, ddl, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string m = err ? err : "unknown";
    sqlite3_free(err);
    return make_error(ErrorCode::kCorruptData, "api keys: " + path.string() + " is not a key store: " + m);
  }
  {
    Stmt s(impl->db, "SELECT version FROM schema_version");
    if (!s.ok()) return db_error(impl->db, "schema");
    if (s.step() == SQLITE_ROW) {
      const auto v = sqlite3_column_int(s.get(), 0);
      if (v != kSchemaVersion)
        return make_error(ErrorCode::kUnsupportedFormat,
                          "api keys: schema version " + std::to_string(v) + " is not supported (expected 1)");
    } else {
      Stmt ins(impl->db, "INSERT INTO schema_version(version) VALUES (1)");
      if (!ins.ok() || ins.step() != SQLITE_DONE) return db_error(impl->db, "schema");
    }
  }
  return std::unique_ptr<ApiKeyStore>(new ApiKeyStore(std::move(impl)));
}

Result<IssuedApiKey> ApiKeyStore::create(const ApiKeyRequest& r) {
  if (r.operator_id.empty() || r.organisation.empty())
    return make_error(ErrorCode::kInvalidArgument, "an API key needs an operator id and an organisation");
  if (r.requests_per_second < 0 || r.burst < 0)
    return make_error(ErrorCode::kInvalidArgument, "rate limits must not be negative");
  unsigned char id[kIdBytes], secret[kSecretBytes], hash[crypto_generichash_BYTES];
  randombytes_buf(id, sizeof id);
  randombytes_buf(secret, sizeof secret);
  crypto_generichash(hash, sizeof hash, secret, sizeof secret, nullptr, 0);
  IssuedApiKey out;
  out.info.id = to_hex(id, sizeof id);
  out.info.operator_id = r.operator_id;
  out.info.organisation = r.organisation;
  out.info.role = r.role;
  out.info.operator_kind = r.operator_kind;
  out.info.label = r.label;
  out.info.requests_per_second = r.requests_per_second;
  out.info.burst = r.burst;
  out.info.created_at = now_seconds();
  out.secret = std::string(kPrefix) + out.info.id + "_" + to_hex(secret, sizeof secret);
  sodium_memzero(secret, sizeof secret);
  std::lock_guard lock(impl_->mu);
  Stmt s(impl_->db,
         "INSERT INTO api_keys(id, secret_hash, operator_id, organisation, role, operator_kind, label, rps, burst,"
         " created_at) VALUES (?,?,?,?,?,?,?,?,?,?)");
  if (!s.ok()) return db_error(impl_->db, "create");
  s.bind(1, out.info.id);
  sqlite3_bind_blob(s.get(), 2, hash, sizeof hash, SQLITE_TRANSIENT);
  s.bind(3, r.operator_id);
  s.bind(4, r.organisation);
  s.bind(5, to_string(r.role));
  s.bind(6, r.operator_kind);
  s.bind(7, r.label);
  s.bind(8, r.requests_per_second);
  s.bind(9, r.burst);
  s.bind(10, out.info.created_at);
  if (s.step() != SQLITE_DONE) return db_error(impl_->db, "create");
  return out;
}

Result<ApiKeyInfo> ApiKeyStore::authenticate(std::string_view key) const {
  const auto denied = make_error(ErrorCode::kPermissionDenied, "invalid API key");
  // fgk_<16 hex>_<64 hex>
  if (key.size() != kPrefix.size() + kIdBytes * 2 + 1 + kSecretBytes * 2 || key.substr(0, kPrefix.size()) != kPrefix ||
      key[kPrefix.size() + kIdBytes * 2] != '_')
    return denied;
  const std::string id(key.substr(kPrefix.size(), kIdBytes * 2));
  const std::string hex(key.substr(kPrefix.size() + kIdBytes * 2 + 1));
  unsigned char secret[kSecretBytes];
  std::size_t len = 0;
  if (sodium_hex2bin(secret, sizeof secret, hex.data(), hex.size(), nullptr, &len, nullptr) != 0 ||
      len != kSecretBytes)
    return denied;
  unsigned char hash[crypto_generichash_BYTES];
  crypto_generichash(hash, sizeof hash, secret, sizeof secret, nullptr, 0);
  sodium_memzero(secret, sizeof secret);
  std::lock_guard lock(impl_->mu);
  Stmt s(impl_->db,
         "SELECT id, operator_id, organisation, role, operator_kind, label, rps, burst, created_at, revoked_at,"
         " secret_hash FROM api_keys WHERE id = ?");
  if (!s.ok()) return db_error(impl_->db, "authenticate");
  s.bind(1, id);
  if (s.step() != SQLITE_ROW) return denied;
  const void* stored = sqlite3_column_blob(s.get(), 10);
  if (sqlite3_column_bytes(s.get(), 10) != static_cast<int>(sizeof hash) ||
      sodium_memcmp(stored, hash, sizeof hash) != 0)
    return denied;
  ApiKeyInfo info = row_to_info(s);
  if (info.revoked_at) return make_error(ErrorCode::kPermissionDenied, "API key " + info.id + " was revoked");
  return info;
}

Status ApiKeyStore::revoke(std::string_view id) {
  std::lock_guard lock(impl_->mu);
  Stmt s(impl_->db, "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL");
  if (!s.ok()) return db_error(impl_->db, "revoke");
  s.bind(1, now_seconds());
  s.bind(2, id);
  if (s.step() != SQLITE_DONE) return db_error(impl_->db, "revoke");
  if (sqlite3_changes(impl_->db) == 0)
    return make_error(ErrorCode::kNotFound, "no active API key with id '" + std::string(id) + "'");
  return {};
}

Result<std::vector<ApiKeyInfo>> ApiKeyStore::list() const {
  std::lock_guard lock(impl_->mu);
  Stmt s(impl_->db, (std::string(kSelectCols) + " ORDER BY created_at, id").c_str());
  if (!s.ok()) return db_error(impl_->db, "list");
  std::vector<ApiKeyInfo> out;
  int rc;
  while ((rc = s.step()) == SQLITE_ROW) out.push_back(row_to_info(s));
  if (rc != SQLITE_DONE) return db_error(impl_->db, "list");
  return out;
}

}  // namespace faceguard
