// faceguard/consent.hpp - the consent registry, the erasure interface the gallery implements, retention.
//
//   auto reg = faceguard::ConsentRegistry::open("consent.db");
//   auto c = reg->add({.subject_id = "emp-17", .kind = "written_release", .purpose = "access_control",
//                      .term = "P3Y", .evidence_sha256 = *faceguard::sha256_file("release.pdf"),
//                      .signed_at = *faceguard::parse_timestamp("2024-03-01")});
//   reg->revoke(c->id, now, &gallery_sink, &audit);   // erases the subject's templates, logs each erasure
//   faceguard::run_retention(gallery_sink, &*reg, &audit, now, /*dry_run=*/false);
//
// The registry is one SQLite file (WAL, a schema_version table). A template store (the gallery) implements
// ErasureSink so that this area never depends on its code: it lists what it retains and erases one template
// (crypto-shredding in the gallery) when told, returning only once the erasure is durable.
// Thread safety: ConsentRegistry serialises its connection internally; several processes may share the file.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <set>
#include <optional>
#include <string>
#include <vector>

#include "faceguard/policy.hpp"
#include "faceguard/result.hpp"

namespace faceguard {

class AuditLog;

struct ConsentRecord {
  std::string id;               // generated ("c-<16 hex>") when empty on add()
  std::string subject_id;       // who consented
  std::string kind;             // written_release, explicit, informed_notice, public_image, ...
  std::string purpose;          // RequestContext::purpose vocabulary
  std::string term;             // ISO 8601 duration ("P3Y"); empty: until revoked
  std::string evidence_sha256;  // hash of the written release (BIPA 15(b)(3)); required for written_release
  Timestamp signed_at;
  std::optional<Timestamp> revoked_at;
  Consent as_context() const;   // the RequestContext::consent it stands for
};

// Whether a consent covers an instant: signed at or before it, not revoked by then, within its term.
bool consent_active(const Consent& c, TimePoint at);
// signed_at + term; nullopt when either is absent or the term does not parse.
std::optional<TimePoint> consent_expiry(const Consent& c);

// One stored template as the store reports it.
struct RetainedTemplate {
  std::string template_id;
  std::string subject_id;
  std::string consent_id;                   // empty when not bound to a consent
  std::optional<TimePoint> enrolled_at;
  std::optional<TimePoint> retention_deadline;  // from the enrol decision's obligations
};

class ErasureSink {
 public:
  virtual ~ErasureSink() = default;
  virtual Result<std::vector<RetainedTemplate>> retained_templates() = 0;
  // Erases one template for good (and its key); a template already gone is not an error.
  virtual Status erase_template(const RetainedTemplate& t, const std::string& reason) = 0;
};

struct Erasure {
  RetainedTemplate target;
  std::string reason;  // "retention deadline ...", "consent c-... revoked", ...
  bool done = false;   // false in a dry run or when the sink failed (see error)
  std::string error;
};

struct ErasureReport {
  bool dry_run = false;
  std::size_t examined = 0;
  std::vector<Erasure> erasures;
  std::vector<std::string> warnings;  // e.g. a template bound to a consent the registry does not know
  std::size_t failures() const;
};

class ConsentRegistry {
 public:
  static Result<ConsentRegistry> open(const std::filesystem::path& db_file);
  ConsentRegistry(ConsentRegistry&&) noexcept;
  ConsentRegistry& operator=(ConsentRegistry&&) noexcept;
  ~ConsentRegistry();

  // kInvalidArgument for an unknown kind/purpose, a bad term, a written_release without evidence hash;
  // kConflict for a duplicate id.
  Result<ConsentRecord> add(ConsentRecord record);
  Result<ConsentRecord> get(const std::string& id) const;
  Result<std::vector<ConsentRecord>> list(const std::string& subject_id = {}) const;
  // Marks the consent revoked at `at`, then erases through `sink` every template of the subject bound to
  // this consent (or to no consent), logging the revocation and each erasure to `audit` when given.
  // Revoking twice is kConflict.
  Result<ErasureReport> revoke(const std::string& id, const Timestamp& at, ErasureSink* sink, AuditLog* audit);

 private:
  struct Impl;
  explicit ConsentRegistry(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Erases every template past its retention deadline, or whose consent is revoked or expired (BIPA 15(a):
// destroy once the purpose is satisfied), logging one "erasure" record each. dry_run lists without erasing.
Result<ErasureReport> run_retention(ErasureSink& sink, const ConsentRegistry* consents, AuditLog* audit,
                                    TimePoint now, bool dry_run);

// SHA-256 (libsodium) of a file's bytes, lower-case hex: the written-release evidence hash.
Result<std::string> sha256_file(const std::filesystem::path& file);

// ErasureSink over any store with the Gallery shape (list(), show(id)->templates{id, created_at, retain_until,
// consent_id}, remove(id)) - header-only, so this area does not link against the gallery:
//   faceguard::SubjectErasureSink<faceguard::Gallery> sink(*gallery);
// The gallery erases whole subjects (crypto-shredding the subject's key), so erasing one template of a
// subject erases all of its templates: more than asked, never less.
template <typename Store>
class SubjectErasureSink final : public ErasureSink {
 public:
  explicit SubjectErasureSink(Store& store) : store_(store) {}

  Result<std::vector<RetainedTemplate>> retained_templates() override {
    auto subjects = store_.list();
    if (!subjects) return subjects.error();
    std::vector<RetainedTemplate> out;
    for (const auto& s : *subjects) {
      auto info = store_.show(s.subject_id);
      if (!info) {
        if (info.error().code == ErrorCode::kNotFound) continue;  // removed meanwhile
        return info.error();
      }
      for (const auto& t : info->templates) {
        RetainedTemplate r;
        r.template_id = std::to_string(t.id);
        r.subject_id = s.subject_id;
        r.consent_id = t.consent_id;
        r.enrolled_at = TimePoint{std::chrono::seconds{t.created_at}};
        if (t.retain_until) r.retention_deadline = TimePoint{std::chrono::seconds{*t.retain_until}};
        out.push_back(std::move(r));
      }
    }
    return out;
  }

  Status erase_template(const RetainedTemplate& t, const std::string& /*reason*/) override {
    if (erased_.count(t.subject_id)) return ok_status();
    auto r = store_.remove(t.subject_id);
    if (!r && r.error().code != ErrorCode::kNotFound) return r.error();
    erased_.insert(t.subject_id);
    return ok_status();
  }

  const std::set<std::string>& erased_subjects() const { return erased_; }

 private:
  Store& store_;
  std::set<std::string> erased_;
};

}  // namespace faceguard
