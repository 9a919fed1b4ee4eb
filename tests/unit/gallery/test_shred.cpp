// Crypto-shredding: after a delete, a copy of the gallery file taken before it cannot bring the subject back.
#include <sqlite3.h>

#include <cstring>

#include "gallery/crypto.hpp"
#include "gallery_fixture.hpp"

namespace faceguard::test {
namespace {

namespace fs = std::filesystem;

// The sealed blob of the first template of a subject, read directly with SQLite from a gallery file.
std::vector<std::uint8_t> sealed_template(const fs::path& file, std::int64_t template_id) {
  sqlite3* db = nullptr;
  std::vector<std::uint8_t> out;
  if (sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_stmt* st = nullptr;
    sqlite3_prepare_v2(db, "SELECT sealed FROM templates WHERE id = ?", -1, &st, nullptr);
    sqlite3_bind_int64(st, 1, template_id);
    if (sqlite3_step(st) == SQLITE_ROW) {
      const auto* p = static_cast<const std::uint8_t*>(sqlite3_column_blob(st, 0));
      out.assign(p, p + sqlite3_column_bytes(st, 0));
    }
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  return out;
}

// Every wrapped key in a key store.
std::vector<std::vector<std::uint8_t>> wrapped_keys(const fs::path& file) {
  sqlite3* db = nullptr;
  std::vector<std::vector<std::uint8_t>> out;
  if (sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_stmt* st = nullptr;
    sqlite3_prepare_v2(db, "SELECT wrapped FROM subject_keys", -1, &st, nullptr);
    while (sqlite3_step(st) == SQLITE_ROW) {
      const auto* p = static_cast<const std::uint8_t*>(sqlite3_column_blob(st, 0));
      out.emplace_back(p, p + sqlite3_column_bytes(st, 0));
    }
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  return out;
}

std::vector<std::pair<std::string, std::vector<std::uint8_t>>> keyed_wrapped(const fs::path& file) {
  sqlite3* db = nullptr;
  std::vector<std::pair<std::string, std::vector<std::uint8_t>>> out;
  if (sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_stmt* st = nullptr;
    sqlite3_prepare_v2(db, "SELECT key_uuid, wrapped FROM subject_keys", -1, &st, nullptr);
    while (sqlite3_step(st) == SQLITE_ROW) {
      const auto* p = static_cast<const std::uint8_t*>(sqlite3_column_blob(st, 1));
      out.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)),
                       std::vector<std::uint8_t>(p, p + sqlite3_column_bytes(st, 1)));
    }
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  return out;
}

std::string meta_value(const fs::path& file, const char* key) {
  sqlite3* db = nullptr;
  std::string out;
  if (sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_stmt* st = nullptr;
    sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = ?", -1, &st, nullptr);
    sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(st) == SQLITE_ROW) out = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  return out;
}

void copy_with_wal(const fs::path& from, const fs::path& to) {
  fs::copy_file(from, to);
  for (const char* ext : {"-wal", "-shm"})
    if (fs::exists(from.string() + ext)) fs::copy_file(from.string() + ext, to.string() + ext);
}

TEST(CryptoShredding, BackupCopyCannotBringDeletedSubjectBack) {
  ScratchDir dir;
  const auto path = dir / "g.fgdb";
  const auto keys = dir / "g.fgdb.keys";
  Synth s(11);
  auto g = Gallery::open(path, create_options(test_key()));
  ASSERT_TRUE(g);
  const auto alice_centre = s.centre();
  const auto alice = s.around(alice_centre);
  auto enrolled = (*g)->enroll({"alice", "Alice Secret-Name", R"({"badge":"A-12345"})"}, std::vector{tmpl(alice)});
  ASSERT_TRUE(enrolled);
  const std::int64_t alice_tid = enrolled->template_ids.at(0);
  ASSERT_TRUE((*g)->enroll({"bob", "Bob", "{}"}, std::vector{tmpl(s.around(s.centre()))}));
  const auto wrapped_before = wrapped_keys(keys);
  ASSERT_EQ(wrapped_before.size(), 2u);

  // The backups, taken while the gallery is open (WAL and all).
  copy_with_wal(path, dir / "backup.fgdb");
  copy_with_wal(keys, dir / "backup-keys.keys");

  auto del = (*g)->remove("alice");
  ASSERT_TRUE(del) << del.error().message;
  EXPECT_EQ(del->templates_deleted, 1);
  EXPECT_TRUE(del->key_destroyed);
  EXPECT_TRUE(del->wal_truncated);
  EXPECT_EQ((*g)->show("alice").error().code, ErrorCode::kNotFound);
  auto who = (*g)->identify(Embedding{kModel, s.around(alice_centre)}, {.top_k = 5});
  ASSERT_TRUE(who);
  for (const auto& c : who->candidates) EXPECT_NE(c.subject_id, "alice");

  // 1. The old gallery copy still holds Alice's ciphertext...
  const auto sealed = sealed_template(dir / "backup.fgdb", alice_tid);
  ASSERT_FALSE(sealed.empty());
  // ...but opened with the live key store, Alice is not there: her key is gone.
  auto o = open_options(test_key());
  o.read_only = true;
  o.key_store = keys;
  auto restored = Gallery::open(dir / "backup.fgdb", o);
  ASSERT_TRUE(restored) << restored.error().message;
  EXPECT_EQ((*restored)->show("alice").error().code, ErrorCode::kPermissionDenied);
  EXPECT_EQ((*restored)->template_values(alice_tid).error().code, ErrorCode::kPermissionDenied);
  auto rs = (*restored)->stats();
  ASSERT_TRUE(rs);
  EXPECT_EQ(rs->subjects, 1u);
  EXPECT_EQ(rs->unrecoverable_subjects, 1u);
  auto rwho = (*restored)->identify(Embedding{kModel, s.around(alice_centre)}, {.top_k = 5});
  ASSERT_TRUE(rwho);
  for (const auto& c : rwho->candidates) EXPECT_NE(c.subject_id, "alice");
  restored->reset();

  // 2. No key left in the live key store opens the copy's ciphertext.
  const SecretKey kek = gallery::derive_key(test_key(), "faceguard/gallery/kek/v1");
  const std::string guuid = meta_value(path, "gallery_uuid");
  const auto wrapped_after = wrapped_keys(keys);
  EXPECT_EQ(wrapped_after.size(), 1u);
  int unwrapped = 0;
  for (const auto& [uuid, w] : keyed_wrapped(keys)) {
    auto data_key = gallery::open_sealed(kek, w, gallery::subject_key_aad(guuid, uuid));
    ASSERT_TRUE(data_key);  // Bob's key unwraps fine...
    ++unwrapped;
    const SecretKey dk{std::span<const std::uint8_t, 32>(data_key->data(), 32)};
    // ...but does not open Alice's template.
    EXPECT_FALSE(gallery::open_sealed(dk, sealed, gallery::template_aad(guuid, "alice", alice_tid, kModel)));
  }
  EXPECT_EQ(unwrapped, 1);

  // 3. The raw bytes of the live files (and their WAL) hold neither Alice's wrapped key, nor her template in
  //    clear, nor her name.
  std::vector<std::uint8_t> alice_wrapped;
  for (const auto& w : wrapped_before)
    if (std::find(wrapped_after.begin(), wrapped_after.end(), w) == wrapped_after.end()) alice_wrapped = w;
  ASSERT_EQ(alice_wrapped.size(), 32u + gallery::kSealOverhead);
  for (const fs::path f : {path, keys, fs::path(path.string() + "-wal"), fs::path(keys.string() + "-wal")}) {
    if (!fs::exists(f)) continue;
    const auto bytes = read_bytes(f);
    EXPECT_FALSE(contains_bytes(bytes, alice_wrapped.data() + 24, 32)) << f;  // the wrapped key's ciphertext
    EXPECT_FALSE(contains_bytes(bytes, alice.data(), 64)) << f;               // template floats in clear
    EXPECT_FALSE(contains_bytes(bytes, "Secret-Name", 11)) << f;
  }
  // Never in clear even in the backup taken before the delete.
  for (const fs::path f : {dir / "backup.fgdb", dir / "backup.fgdb-wal"}) {
    if (!fs::exists(f)) continue;
    const auto bytes = read_bytes(f);
    EXPECT_FALSE(contains_bytes(bytes, alice.data(), 64)) << f;
    EXPECT_FALSE(contains_bytes(bytes, "Secret-Name", 11)) << f;
  }

  // 4. The limit, shown so the test above can fail: a backup of the key store too does decrypt the copy.
  auto both = open_options(test_key());
  both.read_only = true;
  both.key_store = dir / "backup-keys.keys";
  auto old = Gallery::open(dir / "backup.fgdb", both);
  ASSERT_TRUE(old) << old.error().message;
  auto values = (*old)->template_values(alice_tid);
  ASSERT_TRUE(values) << values.error().message;
  EXPECT_EQ(*values, alice);
}

TEST(CryptoShredding, OrphanKeyFromAnInterruptedEnrolmentIsPurged) {
  ScratchDir dir;
  const auto path = dir / "g.fgdb";
  ASSERT_TRUE(Gallery::open(path, create_options(test_key())));
  // A key committed whose rows never were (a crash between the two commits of an enrolment).
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir / "g.fgdb.keys").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "INSERT INTO subject_keys VALUES('deadbeef', x'00112233', 0)", nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  EXPECT_EQ(wrapped_keys(dir / "g.fgdb.keys").size(), 1u);
  auto g = Gallery::open(path, open_options(test_key()));
  ASSERT_TRUE(g);
  auto st = (*g)->stats();
  ASSERT_TRUE(st);
  EXPECT_EQ(st->orphan_keys_purged, 1u);
  EXPECT_TRUE(wrapped_keys(dir / "g.fgdb.keys").empty());
}

}  // namespace
}  // namespace faceguard::test
