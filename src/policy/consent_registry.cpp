// ConsentRegistry: one SQLite file of consents (who, purpose, term, written-release evidence, signed/revoked).
#include <sqlite3.h>
#include <sodium.h>

#include <fstream>
#include <mutex>

#include "faceguard/audit.hpp"
#include "faceguard/consent.hpp"
#include "policy/context_doc.hpp"
#include "policy/time_util.hpp"

namespace faceguard {

namespace {

constexpr int kSchemaVersion = 1;
constexpr int kBusyTimeoutMs = 5000;  // other processes (CLI, server) may hold the write lock briefly

struct Stmt {
  sqlite3_stmt* s = nullptr;
  Stmt(sqlite3* db, const char* sql) { sqlite3_prepare_v2(db, sql, -1, &s, nullptr); }
  ~Stmt() { sqlite3_finalize(s); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  void bind(int i, const std::string& v) { sqlite3_bind_text(s, i, v.c_str(), static_cast<int>(v.size()), SQLITE_TRANSIENT); }
  void bind_null(int i) { sqlite3_bind_null(s, i); }
  std::string text(int i) const {
    const unsigned char* t = sqlite3_column_text(s, i);
    return t ? reinterpret_cast<const char*>(t) : "";
  }
  bool is_null(int i) const { return sqlite3_column_type(s, i) == SQLITE_NULL; }
};

Error db_error(sqlite3* db, const std::string& what) {
  const int code = sqlite3_errcode(db);
  const ErrorCode ec = code == SQLITE_BUSY || code == SQLITE_LOCKED ? ErrorCode::kUnavailable
                       : code == SQLITE_CORRUPT || code == SQLITE_NOTADB ? ErrorCode::kCorruptData
                       : code == SQLITE_CONSTRAINT ? ErrorCode::kConflict
                                                   : ErrorCode::kIoError;
  return make_error(ec, "consent registry: " + what + ": " + sqlite3_errmsg(db));
}

std::string random_id() {
  unsigned char b[8];
  randombytes_buf(b, sizeof b);
  char h[17];
  sodium_bin2hex(h, sizeof h, b, sizeof b);
  return std::string("c-") + h;
}

Result<ConsentRecord> row_to_record(const Stmt& st) {
  ConsentRecord r;
  r.id = st.text(0);
  r.subject_id = st.text(1);
  r.kind = st.text(2);
  r.purpose = st.text(3);
  r.term = st.text(4);
  r.evidence_sha256 = st.text(5);
  auto s = parse_timestamp(st.text(6));
  if (!s) return make_error(ErrorCode::kCorruptData, "consent registry: bad signed_at for " + r.id);
  r.signed_at = *s;
  if (!st.is_null(7)) {
    auto v = parse_timestamp(st.text(7));
    if (!v) return make_error(ErrorCode::kCorruptData, "consent registry: bad revoked_at for " + r.id);
    r.revoked_at = *v;
  }
  return r;
}

constexpr const char* kSelect =
    "SELECT id, subject_id, kind, purpose, term, evidence_sha256, signed_at, revoked_at FROM consents";

}  // namespace

struct ConsentRegistry::Impl {
  sqlite3* db = nullptr;
  mutable std::mutex mu;
  ~Impl() {
    if (db) sqlite3_close_v2(db);
  }
};

Consent ConsentRecord::as_context() const {
  return Consent{id, kind, purpose, term, signed_at, revoked_at};
}

std::optional<TimePoint> consent_expiry(const Consent& c) {
  if (!c.signed_at || c.term.empty()) return std::nullopt;
  auto span = policy::parse_duration(c.term);
  if (!span) return std::nullopt;
  return policy::add_span(c.signed_at->utc, *span);
}

bool consent_active(const Consent& c, TimePoint at) {
  if (!c.signed_at || c.signed_at->utc > at) return false;
  if (c.revoked_at && c.revoked_at->utc <= at) return false;
  if (!c.term.empty()) {
    auto e = consent_expiry(c);
    if (!e || at >= *e) return false;  // an unparseable term never counts as consent
  }
  return true;
}

std::size_t ErasureReport::failures() const {
  std::size_t n = 0;
  for (const auto& e : erasures) n += (!dry_run && !e.done) ? 1 : 0;
  return n;
}

ConsentRegistry::ConsentRegistry(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ConsentRegistry::ConsentRegistry(ConsentRegistry&&) noexcept = default;
ConsentRegistry& ConsentRegistry::operator=(ConsentRegistry&&) noexcept = default;
ConsentRegistry::~ConsentRegistry() = default;

Result<ConsentRegistry> ConsentRegistry::open(const std::filesystem::path& file) {
  auto im = std::make_unique<Impl>();
  if (sqlite3_open_v2(file.c_str(), &im->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                      nullptr) != SQLITE_OK)
    return db_error(im->db, "cannot open " + file.string());
  sqlite3_busy_timeout(im->db, kBusyTimeoutMs);
  const char* schema =
      "PRAGMA journal_mode=WAL;"
      "PRAGMA foreign_keys=ON;"
      "BEGIN IMMEDIATE;"
      "CREATE TABLE IF NOT EXISTS schema_version(version INTEGER NOT NULL);"
      "CREATE TABLE IF NOT EXISTS consents("
      "  id TEXT PRIMARY KEY, subject_id TEXT NOT NULL, kind TEXT NOT NULL, purpose TEXT NOT NULL,"
      "  term TEXT NOT NULL DEFAULT '', evidence_sha256 TEXT NOT NULL DEFAULT '', signed_at TEXT NOT NULL,"
      "  revoked_at TEXT, created_at TEXT NOT NULL);"
      "CREATE INDEX IF NOT EXISTS consents_subject ON consents(subject_id);"
      "INSERT INTO schema_version(version) SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM schema_version);"
      "COMMIT;";
  char* msg = nullptr;
  if (sqlite3_exec(im->db, schema, nullptr, nullptr, &msg) != SQLITE_OK) {
    std::string m = msg ? msg : "";
    sqlite3_free(msg);
    sqlite3_exec(im->db, "ROLLBACK;", nullptr, nullptr, nullptr);
    return make_error(m.find("not a database") != std::string::npos ? ErrorCode::kCorruptData : ErrorCode::kIoError,
                      "consent registry " + file.string() + ": " + m);
  }
  Stmt v(im->db, "SELECT version FROM schema_version");
  if (!v.s || sqlite3_step(v.s) != SQLITE_ROW) return db_error(im->db, "no schema version");
  const int version = sqlite3_column_int(v.s, 0);
  if (version != kSchemaVersion)
    return make_error(ErrorCode::kUnsupportedFormat, "consent registry " + file.string() + " has schema version " +
                                                         std::to_string(version) + "; this build reads version 1");
  return ConsentRegistry(std::move(im));
}

Result<ConsentRecord> ConsentRegistry::add(ConsentRecord r) {
  auto bad = [](const std::string& m) { return make_error(ErrorCode::kInvalidArgument, "consent: " + m); };
  if (r.subject_id.empty()) return bad("subject_id is required");
  if (!policy::field_spec("consent.kind")->vocabulary->count(r.kind)) return bad("unknown kind '" + r.kind + "'");
  if (!policy::field_spec("consent.purpose")->vocabulary->count(r.purpose)) return bad("unknown purpose '" + r.purpose + "'");
  if (!r.term.empty() && !policy::parse_duration(r.term)) return bad("term is not an ISO 8601 duration: '" + r.term + "'");
  if (!r.evidence_sha256.empty() && (r.evidence_sha256.size() != 64 ||
                                     r.evidence_sha256.find_first_not_of("0123456789abcdef") != std::string::npos))
    return bad("evidence_sha256 must be 64 lower-case hex digits");
  // BIPA 740 ILCS 14/15(b)(3): a written release; we keep the hash of the signed document as its evidence.
  if (r.kind == "written_release" && r.evidence_sha256.empty()) return bad("a written_release needs its evidence hash");
  if (r.signed_at.utc.time_since_epoch().count() == 0) return bad("signed_at is required");
  if (r.revoked_at && r.revoked_at->utc < r.signed_at.utc) return bad("revoked before it was signed");
  if (r.id.empty()) r.id = random_id();
  std::lock_guard<std::mutex> lock(impl_->mu);
  Stmt st(impl_->db,
          "INSERT INTO consents(id, subject_id, kind, purpose, term, evidence_sha256, signed_at, revoked_at, created_at)"
          " VALUES(?,?,?,?,?,?,?,?,?)");
  if (!st.s) return db_error(impl_->db, "prepare");
  st.bind(1, r.id), st.bind(2, r.subject_id), st.bind(3, r.kind), st.bind(4, r.purpose), st.bind(5, r.term);
  st.bind(6, r.evidence_sha256), st.bind(7, format_timestamp(r.signed_at));
  if (r.revoked_at) st.bind(8, format_timestamp(*r.revoked_at));
  else st.bind_null(8);
  st.bind(9, format_utc(policy::now_seconds()));
  if (sqlite3_step(st.s) != SQLITE_DONE) {
    if (sqlite3_errcode(impl_->db) == SQLITE_CONSTRAINT)
      return make_error(ErrorCode::kConflict, "consent '" + r.id + "' already exists");
    return db_error(impl_->db, "insert");
  }
  return r;
}

Result<ConsentRecord> ConsentRegistry::get(const std::string& id) const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  Stmt st(impl_->db, (std::string(kSelect) + " WHERE id = ?").c_str());
  if (!st.s) return db_error(impl_->db, "prepare");
  st.bind(1, id);
  const int rc = sqlite3_step(st.s);
  if (rc == SQLITE_DONE) return make_error(ErrorCode::kNotFound, "no consent '" + id + "'");
  if (rc != SQLITE_ROW) return db_error(impl_->db, "select");
  return row_to_record(st);
}

Result<std::vector<ConsentRecord>> ConsentRegistry::list(const std::string& subject_id) const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  Stmt st(impl_->db, (std::string(kSelect) + (subject_id.empty() ? "" : " WHERE subject_id = ?") +
                      " ORDER BY signed_at, id").c_str());
  if (!st.s) return db_error(impl_->db, "prepare");
  if (!subject_id.empty()) st.bind(1, subject_id);
  std::vector<ConsentRecord> out;
  int rc;
  while ((rc = sqlite3_step(st.s)) == SQLITE_ROW) {
    FG_ASSIGN_OR_RETURN(ConsentRecord r, row_to_record(st));
    out.push_back(std::move(r));
  }
  if (rc != SQLITE_DONE) return db_error(impl_->db, "select");
  return out;
}

Result<ErasureReport> ConsentRegistry::revoke(const std::string& id, const Timestamp& at, ErasureSink* sink,
                                              AuditLog* audit) {
  try {
    FG_ASSIGN_OR_RETURN(ConsentRecord rec, get(id));
    if (rec.revoked_at) return make_error(ErrorCode::kConflict, "consent '" + id + "' was already revoked at " + format_timestamp(*rec.revoked_at));
    if (at.utc < rec.signed_at.utc) return make_error(ErrorCode::kInvalidArgument, "revocation before the consent was signed");
    {
      std::lock_guard<std::mutex> lock(impl_->mu);
      Stmt st(impl_->db, "UPDATE consents SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL");
      if (!st.s) return db_error(impl_->db, "prepare");
      st.bind(1, format_timestamp(at)), st.bind(2, id);
      if (sqlite3_step(st.s) != SQLITE_DONE) return db_error(impl_->db, "update");
      if (sqlite3_changes(impl_->db) != 1) return make_error(ErrorCode::kConflict, "consent '" + id + "' was revoked concurrently");
    }
    if (audit) {
      nlohmann::json b{{"action", "revoke"}, {"consent_id", id}, {"subject_id", rec.subject_id}, {"at", format_timestamp(at)}};
      FG_TRY_STATUS(audit->append("consent", b.dump()));
    }
    ErasureReport report;
    if (!sink) return report;
    FG_ASSIGN_OR_RETURN(std::vector<RetainedTemplate> held, sink->retained_templates());
    report.examined = held.size();
    for (const auto& t : held) {
      if (t.subject_id != rec.subject_id || (!t.consent_id.empty() && t.consent_id != id)) continue;
      Erasure e{t, "consent " + id + " revoked", false, {}};
      Status s = sink->erase_template(t, e.reason);
      e.done = s.ok();
      if (!s) e.error = s.error().message;
      if (audit) {
        nlohmann::json b{{"template_id", t.template_id}, {"subject_id", t.subject_id}, {"consent_id", t.consent_id},
                         {"reason", e.reason}, {"done", e.done}};
        if (!e.done) b["error"] = e.error;
        FG_TRY_STATUS(audit->append("erasure", b.dump()));
      }
      report.erasures.push_back(std::move(e));
    }
    return report;
  } catch (const std::exception& e) {
    return make_error(ErrorCode::kInternal, std::string("consent revoke: ") + e.what());
  }
}

Result<std::string> sha256_file(const std::filesystem::path& file) {
  if (sodium_init() < 0) return make_error(ErrorCode::kInternal, "libsodium failed to initialise");
  std::ifstream in(file, std::ios::binary);
  if (!in) return make_error(ErrorCode::kNotFound, "cannot read " + file.string());
  crypto_hash_sha256_state st;
  crypto_hash_sha256_init(&st);
  char buf[65536];
  while (in) {
    in.read(buf, sizeof buf);
    if (in.gcount() > 0)
      crypto_hash_sha256_update(&st, reinterpret_cast<const unsigned char*>(buf), static_cast<unsigned long long>(in.gcount()));
  }
  if (in.bad()) return make_error(ErrorCode::kIoError, "cannot read " + file.string());
  unsigned char h[crypto_hash_sha256_BYTES];
  crypto_hash_sha256_final(&st, h);
  char hex[2 * crypto_hash_sha256_BYTES + 1];
  sodium_bin2hex(hex, sizeof hex, h, sizeof h);
  return std::string(hex);
}

}  // namespace faceguard
