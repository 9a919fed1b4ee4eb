// run_retention: erase what may no longer be kept - past the retention deadline the enrol decision set, or
// bound to a consent that was revoked or whose term ended (BIPA 740 ILCS 14/15(a): destroy once the purpose
// is satisfied; Texas Bus. & Com. Code 503.001(c)(3); GDPR Art. 17).
#include <nlohmann/json.hpp>

#include "faceguard/audit.hpp"
#include "faceguard/consent.hpp"

namespace faceguard {

namespace {

// Why a template must go now, or empty when it may stay.
std::string erasure_reason(const RetainedTemplate& t, const ConsentRegistry* consents, TimePoint now,
                           std::vector<std::string>& warnings) {
  if (t.retention_deadline && *t.retention_deadline <= now)
    return "retention deadline " + format_utc(*t.retention_deadline) + " passed";
  if (!t.consent_id.empty() && consents) {
    auto c = consents->get(t.consent_id);
    if (!c) {
      // An unknown consent is reported, not acted on: a wrong registry path must not wipe a gallery.
      warnings.push_back("template " + t.template_id + ": " + c.error().message);
      return {};
    }
    if (c->revoked_at && c->revoked_at->utc <= now) return "consent " + t.consent_id + " revoked";
    const Consent ctx = c->as_context();
    if (auto e = consent_expiry(ctx); e && *e <= now) return "consent " + t.consent_id + " term ended " + format_utc(*e);
  }
  return {};
}

Result<ErasureReport> run_retention_impl(ErasureSink& sink, const ConsentRegistry* consents, AuditLog* audit,
                                         TimePoint now, bool dry_run) {
  FG_ASSIGN_OR_RETURN(std::vector<RetainedTemplate> held, sink.retained_templates());
  ErasureReport report;
  report.dry_run = dry_run;
  report.examined = held.size();
  std::vector<std::string>& warnings = report.warnings;
  for (const auto& t : held) {
    std::string reason = erasure_reason(t, consents, now, warnings);
    if (reason.empty()) continue;
    Erasure e{t, std::move(reason), false, {}};
    if (!dry_run) {
      Status s = sink.erase_template(t, e.reason);
      e.done = s.ok();
      if (!s) e.error = s.error().message;
      if (audit) {
        nlohmann::json b{{"template_id", t.template_id}, {"subject_id", t.subject_id}, {"consent_id", t.consent_id},
                         {"reason", e.reason}, {"done", e.done}, {"by", "retention"}};
        if (!e.done) b["error"] = e.error;
        FG_TRY_STATUS(audit->append("erasure", b.dump()));
      }
    }
    report.erasures.push_back(std::move(e));
  }
  if (audit && !dry_run) {
    nlohmann::json b{{"examined", report.examined}, {"erased", report.erasures.size() - report.failures()},
                     {"failures", report.failures()}, {"warnings", warnings}, {"now", format_utc(now)}};
    FG_TRY_STATUS(audit->append("retention", b.dump()));
  }
  return report;
}

}  // namespace

Result<ErasureReport> run_retention(ErasureSink& sink, const ConsentRegistry* consents, AuditLog* audit,
                                    TimePoint now, bool dry_run) {
  try {
    return run_retention_impl(sink, consents, audit, now, dry_run);
  } catch (const std::exception& e) {
    return make_error(ErrorCode::kInternal, std::string("retention run: ") + e.what());
  }
}

}  // namespace faceguard
