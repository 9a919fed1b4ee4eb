// Consent registry, revocation-driven erasure and retention runs, against a real gallery whose raw database
// is read afterwards.
#include <gtest/gtest.h>

#include <sqlite3.h>
#include <unistd.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "faceguard/audit.hpp"
#include "faceguard/consent.hpp"
#include "faceguard/gallery.hpp"

namespace faceguard {
namespace {

namespace fs = std::filesystem;

Timestamp ts(const char* s) { return *parse_timestamp(s); }

class ConsentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("fg-consent-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  ConsentRecord release(const std::string& subject, const char* signed_at = "2024-01-10T09:00:00-06:00") {
    ConsentRecord r;
    r.subject_id = subject;
    r.kind = "written_release";
    r.purpose = "timekeeping";
    r.term = "P2Y";
    r.evidence_sha256 = std::string(64, 'a');
    r.signed_at = ts(signed_at);
    return r;
  }

  std::unique_ptr<Gallery> gallery() {
    GalleryOptions o;
    o.master_key = generate_secret_key();
    o.create = true;
    o.model_id = "test-model@1";
    o.dim = 4;
    auto g = Gallery::open(dir_ / "people.fgdb", o);
    EXPECT_TRUE(g.ok()) << (g ? "" : g.error().message);
    return g ? std::move(*g) : nullptr;
  }

  static void enroll(Gallery& g, const std::string& id, std::optional<std::int64_t> retain_until,
                     const std::string& consent_id) {
    TemplateInput t;
    t.embedding = {"test-model@1", {0.5f, 0.5f, 0.5f, id.size() % 2 ? 0.5f : -0.5f}};
    t.source_sha256 = std::string(64, 'b');
    t.retain_until = retain_until;
    t.consent_id = consent_id;
    auto r = g.enroll({id, "Name " + id, "{}"}, std::span<const TemplateInput>(&t, 1));
    ASSERT_TRUE(r.ok()) << r.error().message;
  }

  // Rows mentioning a subject in the raw gallery file, read with plain SQLite (no faceguard code).
  std::int64_t raw_count(const std::string& sql) {
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open_v2((dir_ / "people.fgdb").c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
    sqlite3_stmt* st = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
    std::int64_t n = -1;
    if (sqlite3_step(st) == SQLITE_ROW) n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
  }
  std::int64_t raw_templates_of(const std::string& subject) {
    return raw_count("SELECT COUNT(*) FROM templates t JOIN subjects s ON t.subject = s.id WHERE s.subject_id = '" +
                     subject + "'");
  }
  std::int64_t raw_subjects(const std::string& subject) {
    return raw_count("SELECT COUNT(*) FROM subjects WHERE subject_id = '" + subject + "'");
  }

  fs::path dir_;
};

TEST_F(ConsentTest, AddGetListAndValidation) {
  auto reg = ConsentRegistry::open(dir_ / "consent.db");
  ASSERT_TRUE(reg.ok()) << reg.error().message;
  auto a = reg->add(release("emp-1"));
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_EQ(a->id.rfind("c-", 0), 0u);
  auto got = reg->get(a->id);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->subject_id, "emp-1");
  EXPECT_EQ(format_timestamp(got->signed_at), "2024-01-10T09:00:00-06:00");
  EXPECT_EQ(reg->list("emp-1")->size(), 1u);
  EXPECT_EQ(reg->list("nobody")->size(), 0u);
  EXPECT_EQ(reg->get("c-missing").error().code, ErrorCode::kNotFound);

  ConsentRecord dup = release("emp-1");
  dup.id = a->id;
  EXPECT_EQ(reg->add(dup).error().code, ErrorCode::kConflict);
  ConsentRecord no_evidence = release("emp-2");
  no_evidence.evidence_sha256.clear();
  EXPECT_EQ(reg->add(no_evidence).error().code, ErrorCode::kInvalidArgument);
  ConsentRecord bad_term = release("emp-2");
  bad_term.term = "two years";
  EXPECT_FALSE(reg->add(bad_term).ok());
  ConsentRecord bad_purpose = release("emp-2");
  bad_purpose.purpose = "anything";
  EXPECT_FALSE(reg->add(bad_purpose).ok());

  // Survives reopening; the term decides activity.
  auto again = ConsentRegistry::open(dir_ / "consent.db");
  ASSERT_TRUE(again.ok());
  const Consent c = again->get(a->id)->as_context();
  EXPECT_TRUE(consent_active(c, ts("2025-06-01T00:00:00Z").utc));
  EXPECT_FALSE(consent_active(c, ts("2026-01-11T00:00:00Z").utc));
  EXPECT_FALSE(consent_active(c, ts("2024-01-01T00:00:00Z").utc));  // before it was signed
}

TEST_F(ConsentTest, RevocationErasesTheSubjectFromTheRawGalleryAndIsLogged) {
  auto reg = ConsentRegistry::open(dir_ / "consent.db");
  ASSERT_TRUE(reg.ok());
  auto c = reg->add(release("emp-1"));
  ASSERT_TRUE(c.ok());
  auto g = gallery();
  ASSERT_TRUE(g);
  enroll(*g, "emp-1", std::nullopt, c->id);
  enroll(*g, "emp-22", std::nullopt, "");
  ASSERT_EQ(raw_templates_of("emp-1"), 1);
  const std::int64_t keys_before = [&] {
    sqlite3* db = nullptr;
    sqlite3_open_v2((dir_ / "people.fgdb.keys").c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
    sqlite3_stmt* st = nullptr;
    sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM subject_keys", -1, &st, nullptr);
    sqlite3_step(st);
    const auto n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
  }();

  auto audit = AuditLog::open(dir_ / "audit.jsonl");
  ASSERT_TRUE(audit.ok());
  SubjectErasureSink<Gallery> sink(*g);
  auto r = reg->revoke(c->id, ts("2024-03-01T10:00:00-06:00"), &sink, &*audit);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->erasures.size(), 1u);
  EXPECT_TRUE(r->erasures[0].done) << r->erasures[0].error;
  EXPECT_EQ(r->failures(), 0u);

  EXPECT_EQ(raw_subjects("emp-1"), 0);
  EXPECT_EQ(raw_templates_of("emp-1"), 0);
  EXPECT_EQ(raw_subjects("emp-22"), 1);  // others stay
  sqlite3* db = nullptr;
  sqlite3_open_v2((dir_ / "people.fgdb.keys").c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM subject_keys", -1, &st, nullptr);
  sqlite3_step(st);
  EXPECT_EQ(sqlite3_column_int64(st, 0), keys_before - 1);  // the subject's key is gone (crypto-shredding)
  sqlite3_finalize(st);
  sqlite3_close(db);

  EXPECT_TRUE(reg->get(c->id)->revoked_at.has_value());
  EXPECT_EQ(reg->revoke(c->id, ts("2024-03-02T10:00:00Z"), &sink, nullptr).error().code, ErrorCode::kConflict);
  auto records = audit->read_all();
  ASSERT_TRUE(records.ok());
  ASSERT_EQ(records->size(), 2u);
  EXPECT_EQ((*records)[0].kind, "consent");
  EXPECT_EQ((*records)[1].kind, "erasure");
  EXPECT_NE((*records)[1].body_json.find("emp-1"), std::string::npos);
  EXPECT_TRUE(verify_audit_log(dir_ / "audit.jsonl")->ok);
}

TEST_F(ConsentTest, RetentionErasesPastDeadlinesAndEndedConsentsDryRunFirst) {
  auto reg = ConsentRegistry::open(dir_ / "consent.db");
  ASSERT_TRUE(reg.ok());
  auto short_term = release("emp-short");
  short_term.term = "P30D";
  auto c_short = reg->add(short_term);
  auto c_long = reg->add(release("emp-long"));
  ASSERT_TRUE(c_short.ok() && c_long.ok());
  auto g = gallery();
  ASSERT_TRUE(g);
  const std::int64_t deadline = ts("2024-06-01T00:00:00Z").utc.time_since_epoch().count();
  enroll(*g, "emp-due", deadline, "");           // past its retention deadline at the run
  enroll(*g, "emp-short", std::nullopt, c_short->id);  // consent term ended
  enroll(*g, "emp-long", std::nullopt, c_long->id);    // still fine
  enroll(*g, "emp-future", ts("2030-01-01T00:00:00Z").utc.time_since_epoch().count(), "");
  const TimePoint now = ts("2024-07-01T00:00:00Z").utc;

  SubjectErasureSink<Gallery> sink(*g);
  auto dry = run_retention(sink, &*reg, nullptr, now, /*dry_run=*/true);
  ASSERT_TRUE(dry.ok()) << dry.error().message;
  EXPECT_EQ(dry->examined, 4u);
  ASSERT_EQ(dry->erasures.size(), 2u);
  EXPECT_EQ(raw_subjects("emp-due"), 1);  // a dry run changes nothing
  EXPECT_EQ(raw_subjects("emp-short"), 1);

  auto audit = AuditLog::open(dir_ / "audit.jsonl");
  ASSERT_TRUE(audit.ok());
  auto run = run_retention(sink, &*reg, &*audit, now, /*dry_run=*/false);
  ASSERT_TRUE(run.ok()) << run.error().message;
  ASSERT_EQ(run->erasures.size(), 2u);
  EXPECT_EQ(run->failures(), 0u);
  EXPECT_EQ(raw_subjects("emp-due"), 0);
  EXPECT_EQ(raw_templates_of("emp-due"), 0);
  EXPECT_EQ(raw_subjects("emp-short"), 0);
  EXPECT_EQ(raw_subjects("emp-long"), 1);
  EXPECT_EQ(raw_subjects("emp-future"), 1);
  auto records = audit->read_all();
  ASSERT_TRUE(records.ok());
  ASSERT_EQ(records->size(), 3u);  // two erasures and the run's summary
  EXPECT_EQ((*records)[0].kind, "erasure");
  EXPECT_EQ((*records)[2].kind, "retention");

  // A second run finds nothing left to do.
  auto again = run_retention(sink, &*reg, nullptr, now, false);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->erasures.empty());
}

TEST_F(ConsentTest, UnknownConsentIsReportedNotErased) {
  auto reg = ConsentRegistry::open(dir_ / "consent.db");
  ASSERT_TRUE(reg.ok());
  auto g = gallery();
  ASSERT_TRUE(g);
  enroll(*g, "emp-x", std::nullopt, "c-from-another-registry");
  SubjectErasureSink<Gallery> sink(*g);
  auto r = run_retention(sink, &*reg, nullptr, ts("2024-07-01T00:00:00Z").utc, false);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->erasures.empty());
  ASSERT_EQ(r->warnings.size(), 1u);
  EXPECT_EQ(raw_subjects("emp-x"), 1);
}

// A store that keeps templates in memory: the erasure logic without the gallery.
class MemorySink final : public ErasureSink {
 public:
  std::vector<RetainedTemplate> held;
  std::vector<std::string> erased;
  bool fail_next = false;
  Result<std::vector<RetainedTemplate>> retained_templates() override { return held; }
  Status erase_template(const RetainedTemplate& t, const std::string&) override {
    if (fail_next) {
      fail_next = false;
      return make_error(ErrorCode::kIoError, "disk full");
    }
    erased.push_back(t.template_id);
    std::erase_if(held, [&](const RetainedTemplate& h) { return h.template_id == t.template_id; });
    return ok_status();
  }
};

TEST_F(ConsentTest, RevocationErasesOnlyTheSubjectsTemplatesBoundToIt) {
  auto reg = ConsentRegistry::open(dir_ / "consent.db");
  ASSERT_TRUE(reg.ok());
  auto c1 = reg->add(release("emp-1"));
  auto c2 = reg->add(release("emp-1"));
  ASSERT_TRUE(c1.ok() && c2.ok());
  MemorySink sink;
  sink.held = {{"t1", "emp-1", c1->id, {}, {}}, {"t2", "emp-1", c2->id, {}, {}}, {"t3", "emp-1", "", {}, {}},
               {"t4", "emp-9", c1->id, {}, {}}};
  auto r = reg->revoke(c1->id, ts("2024-03-01T00:00:00Z"), &sink, nullptr);
  ASSERT_TRUE(r.ok()) << r.error().message;
  // Bound to the revoked consent, or to none: gone. Another consent of the subject, or another subject: kept.
  EXPECT_EQ(sink.erased, (std::vector<std::string>{"t1", "t3"}));
}

TEST_F(ConsentTest, RetentionReportsAFailedErasureAndLogsIt) {
  auto audit = AuditLog::open(dir_ / "audit.jsonl");
  ASSERT_TRUE(audit.ok());
  MemorySink sink;
  const TimePoint past = ts("2024-01-01T00:00:00Z").utc;
  sink.held = {{"t1", "s1", "", {}, past}, {"t2", "s2", "", {}, past}, {"t3", "s3", "", {}, std::nullopt}};
  sink.fail_next = true;
  auto r = run_retention(sink, nullptr, &*audit, ts("2024-02-01T00:00:00Z").utc, false);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->erasures.size(), 2u);
  EXPECT_EQ(r->failures(), 1u);
  EXPECT_EQ(r->erasures[0].error, "disk full");
  EXPECT_EQ(sink.erased, (std::vector<std::string>{"t2"}));
  auto recs = audit->read_all();
  ASSERT_TRUE(recs.ok());
  ASSERT_EQ(recs->size(), 3u);
  EXPECT_NE((*recs)[0].body_json.find("\"done\":false"), std::string::npos) << (*recs)[0].body_json;
}

TEST_F(ConsentTest, EvidenceHashIsSha256OfTheFile) {
  const fs::path f = dir_ / "release.txt";
  std::ofstream(f) << "abc";
  auto h = sha256_file(f);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(*h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");  // FIPS 180-2 "abc"
  EXPECT_EQ(sha256_file(dir_ / "none").error().code, ErrorCode::kNotFound);
}

}  // namespace
}  // namespace faceguard
