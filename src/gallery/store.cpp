#include "gallery/store.hpp"

#include <sqlite3.h>

#include <cmath>
#include <ctime>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "gallery/crypto.hpp"

namespace faceguard::gallery {

namespace fs = std::filesystem;

bool valid_subject_id(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                    c == '_' || c == ':' || c == '@' || c == '-';
    if (!ok) return false;
  }
  return true;
}

namespace {

constexpr const char* kKekContext = "faceguard/gallery/kek/v1";

std::int64_t now_seconds() { return static_cast<std::int64_t>(std::time(nullptr)); }

bool is_hex64(std::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

Status quick_check(Database& db, const std::string& what) {
  FG_ASSIGN_OR_RETURN(Statement * st, db.prepare("PRAGMA quick_check"));
  auto row = st->step();
  if (!row) return make_error(ErrorCode::kCorruptData, what + " is corrupt: " + row.error().message);
  const std::string first = *row ? st->column_text(0) : std::string("no result");
  st->reset();
  if (first != "ok") return make_error(ErrorCode::kCorruptData, what + " failed its integrity check: " + first);
  return ok_status();
}

Result<int> schema_version_of(Database& db, const std::string& what) {
  FG_ASSIGN_OR_RETURN(std::int64_t has,
                      db.query_int("SELECT count(*) FROM sqlite_master WHERE type='table' AND name='schema_version'"));
  if (has == 0)
    return make_error(ErrorCode::kCorruptData, what + " is not a faceguard file (no schema_version table)");
  FG_ASSIGN_OR_RETURN(Statement * st, db.prepare("SELECT version FROM schema_version"));
  FG_ASSIGN_OR_RETURN(bool row, st->step());
  if (!row) return make_error(ErrorCode::kCorruptData, what + ": schema_version is empty");
  const auto v = st->column_int(0);
  st->reset();
  return static_cast<int>(v);
}

Result<std::string> read_meta(Database& db, const std::string& key, const std::string& what) {
  FG_ASSIGN_OR_RETURN(Statement * st, db.prepare("SELECT value FROM meta WHERE key = ?"));
  st->bind(1, key);
  FG_ASSIGN_OR_RETURN(bool row, st->step());
  if (!row) return make_error(ErrorCode::kCorruptData, what + ": meta '" + key + "' is missing");
  std::string v = st->column_text(0);
  st->reset();
  return v;
}

Status write_meta(Database& db, const std::string& key, const std::string& value) {
  FG_ASSIGN_OR_RETURN(Statement * st,
                      db.prepare("INSERT INTO meta(key, value) VALUES(?, ?) "
                                 "ON CONFLICT(key) DO UPDATE SET value = excluded.value"));
  st->bind(1, key).bind(2, value);
  return st->run();
}

Bytes hex_to_bytes(const std::string& hex) {
  Bytes out;
  if (hex.size() % 2) return out;
  for (std::size_t i = 0; i < hex.size(); i += 2) out.push_back(static_cast<std::uint8_t>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  return out;
}

// Overwrite, then delete, a wrapped key (secure_delete zeroes the freed cell; the UPDATE makes sure the bytes
// are gone from the live page even where a freelist page would not be rewritten).
Result<int> shred_key(Database& keys, const std::string& key_uuid) {
  FG_ASSIGN_OR_RETURN(auto tx, Transaction::begin(keys));
  FG_ASSIGN_OR_RETURN(Statement * up,
                      keys.prepare("UPDATE subject_keys SET wrapped = zeroblob(length(wrapped)) WHERE key_uuid = ?"));
  up->bind(1, key_uuid);
  FG_TRY_STATUS(up->run());
  FG_ASSIGN_OR_RETURN(Statement * del, keys.prepare("DELETE FROM subject_keys WHERE key_uuid = ?"));
  del->bind(1, key_uuid);
  FG_TRY_STATUS(del->run());
  const int n = keys.changes();
  FG_TRY_STATUS(tx->commit());
  return n;
}

Result<bool> checkpoint_truncate(Database& db) {
  FG_ASSIGN_OR_RETURN(Statement * st, db.prepare("PRAGMA wal_checkpoint(TRUNCATE)"));
  FG_ASSIGN_OR_RETURN(bool row, st->step());
  const bool ok = row && st->column_int(0) == 0;  // column 0: 1 when blocked by readers
  st->reset();
  return ok;
}

}  // namespace

Store::~Store() = default;

Result<std::unique_ptr<Store>> Store::open(const fs::path& path, const GalleryOptions& options) {
  if (options.master_key.empty())
    return make_error(ErrorCode::kInvalidArgument,
                      "a master key is required (key file or FACEGUARD_MASTER_KEY; `faceguard gallery keygen`)");
  if (!sodium_ready()) return make_error(ErrorCode::kInternal, "libsodium failed to initialise");
  std::unique_ptr<Store> s(new Store());
  s->path_ = path;
  s->key_path_ = options.key_store.empty() ? fs::path(path.string() + ".keys") : options.key_store;
  s->read_only_ = options.read_only;
  std::error_code ec;
  const bool exists = fs::exists(path, ec);
  if (options.create) {
    if (options.read_only) return make_error(ErrorCode::kInvalidArgument, "cannot create a gallery read-only");
    if (exists) return make_error(ErrorCode::kConflict, "a file already exists at " + path.string());
    if (fs::exists(s->key_path_, ec))
      return make_error(ErrorCode::kConflict, "a key store already exists at " + s->key_path_.string() +
                                                  " (left from an earlier gallery? remove it deliberately)");
    if (options.model_id.empty() || options.dim <= 0 || options.dim > 4096)
      return make_error(ErrorCode::kInvalidArgument, "a new gallery needs a model id and a template size (1..4096)");
  } else {
    if (!exists)
      return make_error(ErrorCode::kNotFound,
                        "no gallery at " + path.string() + " (create one with `faceguard gallery init`)");
    if (fs::is_regular_file(path, ec) && fs::file_size(path, ec) == 0)
      return make_error(ErrorCode::kCorruptData, path.string() + " is empty: not a gallery (it is left as it is)");
    if (!fs::exists(s->key_path_, ec))
      return make_error(ErrorCode::kNotFound, "key store " + s->key_path_.string() +
                                                  " is missing: the gallery cannot be decrypted without it");
  }
  const Database::OpenFlags flags{options.read_only, options.create};
  // The key store first: on create, a crash before the gallery exists leaves no half gallery.
  FG_ASSIGN_OR_RETURN(s->keys_, Database::open(s->key_path_, flags));
  FG_TRY_STATUS(s->configure(*s->keys_, options));
  FG_ASSIGN_OR_RETURN(s->db_, Database::open(path, flags));
  FG_TRY_STATUS(s->configure(*s->db_, options));
  if (options.max_bytes > 0) {
    FG_ASSIGN_OR_RETURN(std::int64_t page, s->db_->query_int("PRAGMA page_size"));
    const auto pages = std::max<std::uint64_t>(1, options.max_bytes / static_cast<std::uint64_t>(page));
    FG_TRY_STATUS(s->db_->exec("PRAGMA max_page_count = " + std::to_string(pages)));
  }
  if (options.create) FG_TRY_STATUS(s->create_schema(options));
  FG_TRY_STATUS(s->validate(options));
  if (!options.read_only) FG_TRY_STATUS(s->purge_orphan_keys());
  return s;
}

Status Store::configure(Database& db, const GalleryOptions& options) {
  sqlite3_busy_timeout(db.handle(), std::max(0, options.busy_timeout_ms));
  FG_TRY_STATUS(db.exec("PRAGMA foreign_keys = ON"));
  // Freed pages and cells are overwritten with zeros, so deleted keys and templates do not linger in the file.
  FG_TRY_STATUS(db.exec("PRAGMA secure_delete = ON"));
  if (!options.read_only) {
    FG_ASSIGN_OR_RETURN(Statement * st, db.prepare("PRAGMA journal_mode = WAL"));
    FG_ASSIGN_OR_RETURN(bool row, st->step());
    const std::string mode = row ? st->column_text(0) : std::string();
    st->reset();
    if (mode != "wal") return make_error(ErrorCode::kIoError, db.path().string() + ": cannot enable WAL mode");
    // FULL: a commit survives power loss too, which the two-file ordering protocol relies on.
    FG_TRY_STATUS(db.exec("PRAGMA synchronous = FULL"));
  }
  return ok_status();
}

Status Store::create_schema(const GalleryOptions& options) {
  uuid_ = random_uuid();
  {
    FG_ASSIGN_OR_RETURN(auto tx, Transaction::begin(*keys_));
    FG_TRY_STATUS(keys_->exec(
        "CREATE TABLE schema_version(version INTEGER NOT NULL);"
        "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        "CREATE TABLE subject_keys(key_uuid TEXT PRIMARY KEY, wrapped BLOB NOT NULL, created_at INTEGER NOT NULL);"));
    FG_TRY_STATUS(keys_->exec("INSERT INTO schema_version VALUES(" + std::to_string(kKeyStoreSchemaVersion) + ")"));
    FG_TRY_STATUS(write_meta(*keys_, "gallery_uuid", uuid_));
    FG_TRY_STATUS(tx->commit());
  }
  FG_ASSIGN_OR_RETURN(auto tx, Transaction::begin(*db_));
  FG_TRY_STATUS(db_->exec(
      "CREATE TABLE schema_version(version INTEGER NOT NULL);"
      "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
      "CREATE TABLE subjects("
      "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
      "  subject_id TEXT NOT NULL UNIQUE,"
      "  key_uuid TEXT NOT NULL UNIQUE,"
      "  profile BLOB NOT NULL,"
      "  created_at INTEGER NOT NULL);"
      "CREATE TABLE templates("
      "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
      "  subject INTEGER NOT NULL REFERENCES subjects(id) ON DELETE CASCADE,"
      "  model_id TEXT NOT NULL,"
      "  created_at INTEGER NOT NULL,"
      "  source_sha256 TEXT NOT NULL,"
      "  retain_until INTEGER,"
      "  consent_id TEXT NOT NULL,"
      "  sealed BLOB NOT NULL);"
      "CREATE INDEX templates_subject ON templates(subject);"
      "CREATE TABLE deleted_templates("
      "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
      "  template_id INTEGER NOT NULL,"
      "  subject INTEGER NOT NULL);"));
  FG_TRY_STATUS(db_->exec("INSERT INTO schema_version VALUES(" + std::to_string(kSchemaVersion) + ")"));
  FG_TRY_STATUS(write_meta(*db_, "gallery_uuid", uuid_));
  FG_TRY_STATUS(write_meta(*db_, "model_id", options.model_id));
  FG_TRY_STATUS(write_meta(*db_, "dim", std::to_string(options.dim)));
  FG_TRY_STATUS(write_meta(*db_, "created_at", std::to_string(now_seconds())));
  FG_TRY_STATUS(write_meta(*db_, "key_check", to_hex(key_check_value(options.master_key, uuid_))));
  return tx->commit();
}

Status Store::validate(const GalleryOptions& options) {
  const std::string gname = "gallery " + path_.string();
  const std::string kname = "key store " + key_path_.string();
  FG_TRY_STATUS(quick_check(*db_, gname));
  FG_TRY_STATUS(quick_check(*keys_, kname));
  FG_ASSIGN_OR_RETURN(int v, schema_version_of(*db_, gname));
  if (v != kSchemaVersion)
    return make_error(ErrorCode::kUnsupportedFormat, gname + " has schema version " + std::to_string(v) +
                                                         "; this build reads version " +
                                                         std::to_string(kSchemaVersion));
  FG_ASSIGN_OR_RETURN(int kv, schema_version_of(*keys_, kname));
  if (kv != kKeyStoreSchemaVersion)
    return make_error(ErrorCode::kUnsupportedFormat, kname + " has schema version " + std::to_string(kv));
  FG_ASSIGN_OR_RETURN(uuid_, read_meta(*db_, "gallery_uuid", gname));
  FG_ASSIGN_OR_RETURN(model_id_, read_meta(*db_, "model_id", gname));
  FG_ASSIGN_OR_RETURN(std::string dim, read_meta(*db_, "dim", gname));
  FG_ASSIGN_OR_RETURN(std::string kcv_hex, read_meta(*db_, "key_check", gname));
  try {
    dim_ = std::stoi(dim);
  } catch (const std::exception&) {
    dim_ = 0;
  }
  if (dim_ <= 0 || dim_ > 4096) return make_error(ErrorCode::kCorruptData, gname + ": bad template size " + dim);
  const Bytes kcv = key_check_value(options.master_key, uuid_);
  if (!equal_constant_time(kcv, hex_to_bytes(kcv_hex)))
    return make_error(ErrorCode::kPermissionDenied, "wrong master key for " + gname);
  FG_ASSIGN_OR_RETURN(std::string key_uuid, read_meta(*keys_, "gallery_uuid", kname));
  if (key_uuid != uuid_)
    return make_error(ErrorCode::kInvalidArgument, kname + " belongs to another gallery");
  if (!options.model_id.empty() && options.model_id != model_id_)
    return make_error(ErrorCode::kInvalidArgument, gname + " is bound to model " + model_id_ + ", not " +
                                                       options.model_id);
  kek_ = derive_key(options.master_key, kKekContext);
  return ok_status();
}

Status Store::purge_orphan_keys() {
  // Holding the gallery write lock: no enrolment is between its key commit and its row commit now.
  FG_ASSIGN_OR_RETURN(auto tx, Transaction::begin(*db_));
  // Find orphans with the gallery attached read-only for the query, then detach before writing: a write
  // transaction on the keys connection would otherwise want the (held) gallery write lock too.
  FG_ASSIGN_OR_RETURN(Statement * attach, keys_->prepare("ATTACH DATABASE ? AS g"));
  attach->bind(1, path_.string());
  FG_TRY_STATUS(attach->run());
  std::vector<std::string> orphans;
  auto find = [&]() -> Status {
    FG_ASSIGN_OR_RETURN(Statement * st, keys_->prepare(
        "SELECT key_uuid FROM main.subject_keys WHERE key_uuid NOT IN (SELECT key_uuid FROM g.subjects)"));
    for (;;) {
      FG_ASSIGN_OR_RETURN(bool row, st->step());
      if (!row) break;
      orphans.push_back(st->column_text(0));
    }
    st->reset();
    return ok_status();
  };
  Status s = find();
  keys_->clear_cache();  // statements that name the attached database must go before DETACH
  (void)keys_->exec("DETACH DATABASE g");
  FG_TRY_STATUS(s);
  for (const auto& k : orphans) {
    FG_ASSIGN_OR_RETURN(int n, shred_key(*keys_, k));
    orphans_purged_ += static_cast<std::size_t>(n);
  }
  FG_TRY_STATUS(tx->commit());
  if (orphans_purged_ > 0) {
    bool truncated = false;
    FG_TRY_STATUS(checkpoint(&truncated));
  }
  return ok_status();
}

Status Store::checkpoint(bool* truncated) {
  FG_ASSIGN_OR_RETURN(bool a, checkpoint_truncate(*db_));
  FG_ASSIGN_OR_RETURN(bool b, checkpoint_truncate(*keys_));
  *truncated = a && b;
  return ok_status();
}

Result<const Store::SubjectKey*> Store::subject_key(std::int64_t subject_row) {
  if (auto it = keys_cache_.find(subject_row); it != keys_cache_.end()) return &it->second;
  FG_ASSIGN_OR_RETURN(Statement * st, db_->prepare("SELECT subject_id, key_uuid FROM subjects WHERE id = ?"));
  st->bind(1, subject_row);
  FG_ASSIGN_OR_RETURN(bool row, st->step());
  if (!row) return make_error(ErrorCode::kNotFound, "no subject row " + std::to_string(subject_row));
  SubjectKey entry;
  entry.subject_id = st->column_text(0);
  entry.key_uuid = st->column_text(1);
  st->reset();
  FG_ASSIGN_OR_RETURN(Statement * kst, keys_->prepare("SELECT wrapped FROM subject_keys WHERE key_uuid = ?"));
  kst->bind(1, entry.key_uuid);
  FG_ASSIGN_OR_RETURN(bool krow, kst->step());
  if (!krow)
    return make_error(ErrorCode::kPermissionDenied, "the data key of subject '" + entry.subject_id +
                                                        "' is gone (deleted; rows from an older copy of the "
                                                        "gallery cannot be decrypted)");
  const Bytes wrapped = kst->column_blob(0);
  kst->reset();
  auto raw = open_sealed(kek_, wrapped, subject_key_aad(uuid_, entry.key_uuid));
  if (!raw || raw->size() != SecretKey::kSize)
    return make_error(ErrorCode::kCorruptData, "the wrapped key of subject '" + entry.subject_id +
                                                   "' failed authentication (key store corrupt or tampered)");
  entry.key = SecretKey{std::span<const std::uint8_t, SecretKey::kSize>(raw->data(), SecretKey::kSize)};
  wipe(*raw);
  auto [it, _] = keys_cache_.emplace(subject_row, std::move(entry));
  return &it->second;
}


Result<bool> Store::changed_elsewhere() {
  FG_ASSIGN_OR_RETURN(std::int64_t v, db_->query_int("PRAGMA data_version"));
  return v != data_version_;
}

Result<StoreDelta> Store::read_changes() {
  StoreDelta delta;
  // One read transaction: the templates and the tombstones come from the same snapshot.
  FG_TRY_STATUS(db_->exec("BEGIN"));
  auto body = [&]() -> Status {
    FG_ASSIGN_OR_RETURN(Statement * st,
                        db_->prepare("SELECT id, subject, model_id, sealed FROM templates WHERE id > ? ORDER BY id"));
    st->bind(1, last_template_id_);
    std::int64_t last = last_template_id_;
    for (;;) {
      auto row = st->step();
      if (!row) return row.error();
      if (!*row) break;
      LoadedTemplate t;
      t.id = st->column_int(0);
      t.subject = st->column_int(1);
      const std::string model = st->column_text(2);
      last = t.id;
      if (model != model_id_)
        return make_error(ErrorCode::kCorruptData, "template " + std::to_string(t.id) + " is of model " + model +
                                                       " in a gallery bound to " + model_id_);
      auto key = subject_key(t.subject);
      if (!key) {
        if (key.error().code == ErrorCode::kPermissionDenied) continue;  // shredded: counted by counts()
        return key.error();
      }
      auto plain = open_sealed((*key)->key, st->column_blob_view(3),
                               template_aad(uuid_, (*key)->subject_id, t.id, model_id_));
      if (!plain)
        return make_error(ErrorCode::kCorruptData, "template " + std::to_string(t.id) + " of subject '" +
                                                       (*key)->subject_id + "': " + plain.error().message);
      FG_ASSIGN_OR_RETURN(t.values, bytes_to_floats(*plain, dim_));
      delta.added.push_back(std::move(t));
    }
    st->reset();
    FG_ASSIGN_OR_RETURN(Statement * ts, db_->prepare(
        "SELECT seq, template_id, subject FROM deleted_templates WHERE seq > ? ORDER BY seq"));
    ts->bind(1, last_tombstone_seq_);
    std::int64_t last_seq = last_tombstone_seq_;
    for (;;) {
      auto row = ts->step();
      if (!row) return row.error();
      if (!*row) break;
      last_seq = ts->column_int(0);
      delta.removed.push_back(ts->column_int(1));
      keys_cache_.erase(ts->column_int(2));
    }
    ts->reset();
    FG_ASSIGN_OR_RETURN(data_version_, db_->query_int("PRAGMA data_version"));
    last_template_id_ = last;
    last_tombstone_seq_ = last_seq;
    return ok_status();
  };
  Status s = body();
  (void)db_->exec(s ? "COMMIT" : "ROLLBACK");
  FG_TRY_STATUS(s);
  return delta;
}

Result<EnrollResult> Store::enroll(const SubjectInput& subject, std::span<const TemplateInput> templates,
                                   std::vector<LoadedTemplate>* added) {
  const EnrollItem item{subject, templates};
  FG_ASSIGN_OR_RETURN(auto results, enroll_batch(std::span<const EnrollItem>(&item, 1), added));
  return std::move(results.front());
}

namespace {

Status validate_enrolment(const EnrollItem& item, const std::string& model_id, int dim) {
  const SubjectInput& subject = item.subject;
  if (!valid_subject_id(subject.subject_id))
    return make_error(ErrorCode::kInvalidArgument,
                      "subject id must be 1-128 characters of [A-Za-z0-9._:@-]: '" + subject.subject_id + "'");
  try {
    const auto meta = nlohmann::json::parse(subject.metadata_json.empty() ? std::string("{}") : subject.metadata_json);
    if (!meta.is_object()) return make_error(ErrorCode::kInvalidArgument, "metadata must be a JSON object");
  } catch (const std::exception& e) {
    return make_error(ErrorCode::kInvalidArgument, std::string("metadata is not JSON: ") + e.what());
  }
  if (item.templates.empty()) return make_error(ErrorCode::kInvalidArgument, "enrolment needs at least one template");
  for (const auto& t : item.templates) {
    if (t.embedding.model_id != model_id)
      return make_error(ErrorCode::kInvalidArgument, "template of model '" + t.embedding.model_id +
                                                         "' cannot join a gallery bound to '" + model_id + "'");
    if (t.embedding.values.size() != static_cast<std::size_t>(dim))
      return make_error(ErrorCode::kInvalidArgument, "template has " + std::to_string(t.embedding.values.size()) +
                                                         " values, the gallery holds " + std::to_string(dim));
    double norm = 0;
    for (float f : t.embedding.values) {
      if (!std::isfinite(f)) return make_error(ErrorCode::kInvalidArgument, "template holds a non-finite value");
      norm += static_cast<double>(f) * f;
    }
    if (norm <= 0) return make_error(ErrorCode::kInvalidArgument, "template is all zeros");
    if (!t.source_sha256.empty() && !is_hex64(t.source_sha256))
      return make_error(ErrorCode::kInvalidArgument, "source must be a lower-case hex SHA-256");
  }
  return ok_status();
}

}  // namespace

Result<std::vector<EnrollResult>> Store::enroll_batch(std::span<const EnrollItem> items,
                                                      std::vector<LoadedTemplate>* added) {
  if (read_only_) return make_error(ErrorCode::kPermissionDenied, "the gallery was opened read-only");
  std::unordered_set<std::string> ids;
  for (const auto& item : items) {
    FG_TRY_STATUS(validate_enrolment(item, model_id_, dim_));
    if (!ids.insert(item.subject.subject_id).second)
      return make_error(ErrorCode::kInvalidArgument, "subject '" + item.subject.subject_id + "' twice in one batch");
  }

  // The gallery write lock first, held until the rows are committed (see the ordering protocol).
  FG_ASSIGN_OR_RETURN(auto tx, Transaction::begin(*db_));
  FG_ASSIGN_OR_RETURN(std::int64_t seq_before,
                      db_->query_int("SELECT COALESCE(MAX(seq), 0) FROM sqlite_sequence WHERE name = 'templates'"));
  struct Plan {
    std::int64_t row = 0;
    bool exists = false;
    SecretKey key;
    std::string key_uuid;
    Bytes wrapped;
  };
  std::vector<Plan> plans(items.size());
  bool any_new = false;
  for (std::size_t i = 0; i < items.size(); ++i) {
    FG_ASSIGN_OR_RETURN(Statement * find, db_->prepare("SELECT id FROM subjects WHERE subject_id = ?"));
    find->bind(1, items[i].subject.subject_id);
    FG_ASSIGN_OR_RETURN(bool exists, find->step());
    plans[i].exists = exists;
    plans[i].row = exists ? find->column_int(0) : 0;
    find->reset();
    if (exists) {
      FG_ASSIGN_OR_RETURN(const SubjectKey* k, subject_key(plans[i].row));
      plans[i].key = k->key;
    } else {
      plans[i].key_uuid = random_uuid();
      plans[i].key = generate_secret_key();
      plans[i].wrapped = seal(kek_, std::span<const std::uint8_t>(plans[i].key.data(), SecretKey::kSize),
                              subject_key_aad(uuid_, plans[i].key_uuid));
      any_new = true;
    }
  }
  auto shred_new_keys = [&] {
    for (const auto& p : plans)
      if (!p.exists) (void)shred_key(*keys_, p.key_uuid);  // else an orphan, purged on the next writable open
  };
  if (any_new) {
    // New keys are committed before any row refers to them.
    auto put_keys = [&]() -> Status {
      FG_ASSIGN_OR_RETURN(auto ktx, Transaction::begin(*keys_));
      FG_ASSIGN_OR_RETURN(Statement * ins,
                          keys_->prepare("INSERT INTO subject_keys(key_uuid, wrapped, created_at) VALUES(?, ?, ?)"));
      for (const auto& p : plans) {
        if (p.exists) continue;
        ins->bind(1, p.key_uuid).bind_blob(2, p.wrapped).bind(3, now_seconds());
        FG_TRY_STATUS(ins->run());
      }
      return ktx->commit();
    };
    FG_TRY_STATUS(put_keys());
  }

  std::vector<EnrollResult> results(items.size());
  auto write_rows = [&]() -> Status {
    const std::int64_t now = now_seconds();
    for (std::size_t i = 0; i < items.size(); ++i) {
      const SubjectInput& subject = items[i].subject;
      Plan& plan = plans[i];
      EnrollResult& result = results[i];
      result.subject_id = subject.subject_id;
      result.created = !plan.exists;
      if (!plan.exists) {
        const auto meta = nlohmann::json::parse(subject.metadata_json.empty() ? std::string("{}") : subject.metadata_json);
        const std::string text = nlohmann::json{{"display_name", subject.display_name}, {"metadata", meta}}.dump();
        const Bytes sealed = seal(plan.key, std::span<const std::uint8_t>(
                                                reinterpret_cast<const std::uint8_t*>(text.data()), text.size()),
                                  profile_aad(uuid_, subject.subject_id));
        FG_ASSIGN_OR_RETURN(Statement * ins, db_->prepare(
            "INSERT INTO subjects(subject_id, key_uuid, profile, created_at) VALUES(?, ?, ?, ?)"));
        ins->bind(1, subject.subject_id).bind(2, plan.key_uuid).bind_blob(3, sealed).bind(4, now);
        FG_TRY_STATUS(ins->run());
        plan.row = db_->last_insert_rowid();
      }
      for (const auto& t : items[i].templates) {
        const Bytes plain = floats_to_bytes(t.embedding.values);
        FG_ASSIGN_OR_RETURN(Statement * ins, db_->prepare(
            "INSERT INTO templates(subject, model_id, created_at, source_sha256, retain_until, consent_id, sealed) "
            "VALUES(?, ?, ?, ?, ?, ?, zeroblob(?))"));
        ins->bind(1, plan.row).bind(2, model_id_).bind(3, now).bind(4, t.source_sha256).bind(5, t.retain_until)
            .bind(6, t.consent_id).bind(7, static_cast<std::int64_t>(plain.size() + kSealOverhead));
        FG_TRY_STATUS(ins->run());
        const std::int64_t tid = db_->last_insert_rowid();
        // The template id is part of the associated data, so the row is sealed once its id is known.
        const Bytes sealed = seal(plan.key, plain, template_aad(uuid_, subject.subject_id, tid, model_id_));
        FG_ASSIGN_OR_RETURN(Statement * up, db_->prepare("UPDATE templates SET sealed = ? WHERE id = ?"));
        up->bind_blob(1, sealed).bind(2, tid);
        FG_TRY_STATUS(up->run());
        result.template_ids.push_back(tid);
      }
    }
    return tx->commit();
  };
  Status st = write_rows();
  if (!st) {
    tx.reset();  // rolls back if still open
    shred_new_keys();
    return st.error();
  }
  std::int64_t last_id = 0;
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (!plans[i].exists)
      keys_cache_.emplace(plans[i].row, SubjectKey{items[i].subject.subject_id, plans[i].key_uuid, plans[i].key});
    if (!results[i].template_ids.empty()) last_id = results[i].template_ids.back();
    if (added) {
      for (std::size_t j = 0; j < items[i].templates.size(); ++j)
        added->push_back(LoadedTemplate{results[i].template_ids[j], plans[i].row, items[i].templates[j].embedding.values});
    }
  }
  // Nobody else wrote templates since our last read: what we just wrote need not be read back.
  if (seq_before == last_template_id_ && last_id > 0) last_template_id_ = last_id;
  return results;
}

Result<DeleteReport> Store::remove(const std::string& subject_id, std::vector<std::int64_t>* removed) {
  if (read_only_) return make_error(ErrorCode::kPermissionDenied, "the gallery was opened read-only");
  DeleteReport report;
  report.subject_id = subject_id;
  std::string key_uuid;
  {
    FG_ASSIGN_OR_RETURN(auto tx, Transaction::begin(*db_));
    FG_ASSIGN_OR_RETURN(std::int64_t seq_before, db_->query_int(
        "SELECT COALESCE(MAX(seq), 0) FROM sqlite_sequence WHERE name = 'deleted_templates'"));
    FG_ASSIGN_OR_RETURN(Statement * find, db_->prepare("SELECT id, key_uuid FROM subjects WHERE subject_id = ?"));
    find->bind(1, subject_id);
    FG_ASSIGN_OR_RETURN(bool exists, find->step());
    if (!exists) return make_error(ErrorCode::kNotFound, "no subject '" + subject_id + "'");
    const std::int64_t row = find->column_int(0);
    key_uuid = find->column_text(1);
    find->reset();
    std::vector<std::int64_t> ids;
    FG_ASSIGN_OR_RETURN(Statement * list, db_->prepare("SELECT id FROM templates WHERE subject = ? ORDER BY id"));
    list->bind(1, row);
    for (;;) {
      FG_ASSIGN_OR_RETURN(bool r, list->step());
      if (!r) break;
      ids.push_back(list->column_int(0));
    }
    list->reset();
    FG_ASSIGN_OR_RETURN(Statement * tomb,
                        db_->prepare("INSERT INTO deleted_templates(template_id, subject) VALUES(?, ?)"));
    for (auto id : ids) {
      tomb->bind(1, id).bind(2, row);
      FG_TRY_STATUS(tomb->run());
    }
    std::int64_t last_seq = db_->last_insert_rowid();
    FG_ASSIGN_OR_RETURN(Statement * del_t, db_->prepare("DELETE FROM templates WHERE subject = ?"));
    del_t->bind(1, row);
    FG_TRY_STATUS(del_t->run());
    FG_ASSIGN_OR_RETURN(Statement * del_s, db_->prepare("DELETE FROM subjects WHERE id = ?"));
    del_s->bind(1, row);
    FG_TRY_STATUS(del_s->run());
    FG_TRY_STATUS(tx->commit());
    keys_cache_.erase(row);
    if (seq_before == last_tombstone_seq_ && !ids.empty()) last_tombstone_seq_ = last_seq;
    report.templates_deleted = static_cast<int>(ids.size());
    if (removed) *removed = ids;
  }
  auto shredded = shred_key(*keys_, key_uuid);
  if (!shredded)
    return make_error(shredded.error().code,
                      "subject '" + subject_id + "' was deleted but its key could not be destroyed yet (" +
                          shredded.error().message + "); it is purged on the next writable open");
  report.key_destroyed = *shredded > 0;
  FG_TRY_STATUS(checkpoint(&report.wal_truncated));
  return report;
}

Result<DeleteReport> Store::remove_template(std::int64_t template_id, std::vector<std::int64_t>* removed) {
  if (read_only_) return make_error(ErrorCode::kPermissionDenied, "the gallery was opened read-only");
  std::string subject_id;
  std::int64_t row = 0, count = 0;
  {
    FG_ASSIGN_OR_RETURN(Statement * find, db_->prepare(
        "SELECT s.subject_id, s.id, (SELECT count(*) FROM templates t2 WHERE t2.subject = s.id)"
        " FROM templates t JOIN subjects s ON s.id = t.subject WHERE t.id = ?"));
    find->bind(1, template_id);
    FG_ASSIGN_OR_RETURN(bool exists, find->step());
    if (!exists) return make_error(ErrorCode::kNotFound, "no template " + std::to_string(template_id));
    subject_id = find->column_text(0);
    row = find->column_int(1);
    count = find->column_int(2);
    find->reset();
  }
  // The last template: delete the subject, destroying its data key (crypto-shredding).
  if (count <= 1) return remove(subject_id, removed);
  DeleteReport report;
  report.subject_id = subject_id;
  {
    FG_ASSIGN_OR_RETURN(auto tx, Transaction::begin(*db_));
    FG_ASSIGN_OR_RETURN(std::int64_t seq_before, db_->query_int(
        "SELECT COALESCE(MAX(seq), 0) FROM sqlite_sequence WHERE name = 'deleted_templates'"));
    FG_ASSIGN_OR_RETURN(Statement * tomb,
                        db_->prepare("INSERT INTO deleted_templates(template_id, subject) VALUES(?, ?)"));
    tomb->bind(1, template_id).bind(2, row);
    FG_TRY_STATUS(tomb->run());
    const std::int64_t last_seq = db_->last_insert_rowid();
    FG_ASSIGN_OR_RETURN(Statement * del, db_->prepare("DELETE FROM templates WHERE id = ?"));
    del->bind(1, template_id);
    FG_TRY_STATUS(del->run());
    FG_TRY_STATUS(tx->commit());
    if (seq_before == last_tombstone_seq_) last_tombstone_seq_ = last_seq;
  }
  // secure_delete overwrote the row's ciphertext; the subject's key stays for its other templates.
  report.templates_deleted = 1;
  if (removed) removed->push_back(template_id);
  FG_TRY_STATUS(checkpoint(&report.wal_truncated));
  return report;
}

Result<SubjectInfo> Store::read_subject(std::int64_t subject_row, bool with_templates) {
  FG_ASSIGN_OR_RETURN(Statement * st,
                      db_->prepare("SELECT subject_id, profile, created_at FROM subjects WHERE id = ?"));
  st->bind(1, subject_row);
  FG_ASSIGN_OR_RETURN(bool row, st->step());
  if (!row) return make_error(ErrorCode::kNotFound, "no subject row " + std::to_string(subject_row));
  SubjectInfo info;
  info.subject_id = st->column_text(0);
  const Bytes sealed = st->column_blob(1);
  info.created_at = st->column_int(2);
  st->reset();
  FG_ASSIGN_OR_RETURN(const SubjectKey* key, subject_key(subject_row));
  FG_ASSIGN_OR_RETURN(Bytes plain, open_sealed(key->key, sealed, profile_aad(uuid_, info.subject_id)));
  try {
    auto j = nlohmann::json::parse(plain.begin(), plain.end());
    info.display_name = j.at("display_name").get<std::string>();
    info.metadata_json = j.at("metadata").dump();
  } catch (const std::exception& e) {
    return make_error(ErrorCode::kCorruptData, "profile of '" + info.subject_id + "' is not valid: " + e.what());
  }
  if (with_templates) {
    FG_ASSIGN_OR_RETURN(Statement * ts, db_->prepare(
        "SELECT id, model_id, created_at, source_sha256, retain_until, consent_id FROM templates "
        "WHERE subject = ? ORDER BY id"));
    ts->bind(1, subject_row);
    for (;;) {
      FG_ASSIGN_OR_RETURN(bool r, ts->step());
      if (!r) break;
      info.templates.push_back(TemplateInfo{ts->column_int(0), ts->column_text(1), ts->column_int(2),
                                            ts->column_text(3), ts->column_opt_int(4), ts->column_text(5)});
    }
    ts->reset();
  }
  return info;
}

namespace {
Result<std::vector<std::int64_t>> subject_rows(Database& db) {
  std::vector<std::int64_t> rows;
  FG_ASSIGN_OR_RETURN(Statement * st, db.prepare("SELECT id FROM subjects ORDER BY subject_id"));
  for (;;) {
    FG_ASSIGN_OR_RETURN(bool r, st->step());
    if (!r) break;
    rows.push_back(st->column_int(0));
  }
  st->reset();
  return rows;
}
}  // namespace

Result<std::vector<SubjectInfo>> Store::list() {
  FG_ASSIGN_OR_RETURN(auto rows, subject_rows(*db_));
  std::vector<SubjectInfo> out;
  out.reserve(rows.size());
  for (auto r : rows) {
    auto info = read_subject(r, true);
    if (!info) {
      if (info.error().code == ErrorCode::kPermissionDenied) continue;  // key destroyed: not a subject any more
      return info.error();
    }
    out.push_back(std::move(*info));
  }
  return out;
}

Result<SubjectInfo> Store::show(const std::string& subject_id) {
  FG_ASSIGN_OR_RETURN(Statement * find, db_->prepare("SELECT id FROM subjects WHERE subject_id = ?"));
  find->bind(1, subject_id);
  FG_ASSIGN_OR_RETURN(bool exists, find->step());
  if (!exists) return make_error(ErrorCode::kNotFound, "no subject '" + subject_id + "'");
  const std::int64_t row = find->column_int(0);
  find->reset();
  return read_subject(row, true);
}

Result<bool> Store::subject_exists(const std::string& subject_id) {
  FG_ASSIGN_OR_RETURN(Statement * find, db_->prepare("SELECT 1 FROM subjects WHERE subject_id = ?"));
  find->bind(1, subject_id);
  FG_ASSIGN_OR_RETURN(bool exists, find->step());
  find->reset();
  return exists;
}

Result<std::vector<float>> Store::template_values(std::int64_t template_id) {
  FG_ASSIGN_OR_RETURN(Statement * st, db_->prepare("SELECT subject, model_id, sealed FROM templates WHERE id = ?"));
  st->bind(1, template_id);
  FG_ASSIGN_OR_RETURN(bool row, st->step());
  if (!row) return make_error(ErrorCode::kNotFound, "no template " + std::to_string(template_id));
  const std::int64_t subject = st->column_int(0);
  const std::string model = st->column_text(1);
  const Bytes sealed = st->column_blob(2);
  st->reset();
  FG_ASSIGN_OR_RETURN(const SubjectKey* key, subject_key(subject));
  FG_ASSIGN_OR_RETURN(Bytes plain, open_sealed(key->key, sealed, template_aad(uuid_, key->subject_id, template_id, model)));
  return bytes_to_floats(plain, dim_);
}

std::string Store::subject_id_of(std::int64_t subject_row) const {
  auto it = keys_cache_.find(subject_row);
  return it == keys_cache_.end() ? std::string() : it->second.subject_id;
}

Result<std::string> Store::display_name_of(std::int64_t subject_row) {
  FG_ASSIGN_OR_RETURN(SubjectInfo info, read_subject(subject_row, false));
  return info.display_name;
}

Status Store::for_each_subject(
    const std::function<Status(const SubjectInfo&, const std::vector<std::vector<float>>&)>& fn) {
  // One read transaction: the export is a consistent snapshot even while another process writes.
  FG_TRY_STATUS(db_->exec("BEGIN"));
  auto body = [&]() -> Status {
    FG_ASSIGN_OR_RETURN(auto rows, subject_rows(*db_));
    for (auto r : rows) {
      auto info = read_subject(r, true);
      if (!info) {
        if (info.error().code == ErrorCode::kPermissionDenied) continue;
        return info.error();
      }
      std::vector<std::vector<float>> values;
      for (const auto& t : info->templates) {
        FG_ASSIGN_OR_RETURN(auto v, template_values(t.id));
        values.push_back(std::move(v));
      }
      FG_TRY_STATUS(fn(*info, values));
    }
    return ok_status();
  };
  Status s = body();
  (void)db_->exec("COMMIT");
  return s;
}

Result<std::optional<std::string>> Store::get_meta(const std::string& key) {
  FG_ASSIGN_OR_RETURN(Statement * st, db_->prepare("SELECT value FROM meta WHERE key = ?"));
  st->bind(1, key);
  FG_ASSIGN_OR_RETURN(bool row, st->step());
  std::optional<std::string> v;
  if (row) v = st->column_text(0);
  st->reset();
  return v;
}

Status Store::set_meta(const std::string& key, const std::string& value) {
  if (read_only_) return make_error(ErrorCode::kPermissionDenied, "the gallery was opened read-only");
  return write_meta(*db_, key, value);
}

Result<StoreCounts> Store::counts() {
  StoreCounts c;
  FG_ASSIGN_OR_RETURN(std::int64_t t, db_->query_int("SELECT count(*) FROM templates"));
  c.templates = static_cast<std::size_t>(t);
  FG_ASSIGN_OR_RETURN(Statement * st, db_->prepare("SELECT key_uuid FROM subjects"));
  FG_ASSIGN_OR_RETURN(Statement * k, keys_->prepare("SELECT 1 FROM subject_keys WHERE key_uuid = ?"));
  for (;;) {
    FG_ASSIGN_OR_RETURN(bool r, st->step());
    if (!r) break;
    k->bind(1, st->column_text(0));
    FG_ASSIGN_OR_RETURN(bool has, k->step());
    k->reset();
    if (has) ++c.subjects;
    else ++c.unrecoverable_subjects;
  }
  st->reset();
  return c;
}

}  // namespace faceguard::gallery
