// PolicyGuard: decide, log, and enforce obligations on results; human review of matches.
#include <algorithm>
#include <set>

#include <nlohmann/json.hpp>

#include "faceguard/audit.hpp"
#include "faceguard/consent.hpp"
#include "faceguard/policy.hpp"
#include "policy/time_util.hpp"

namespace faceguard {

using nlohmann::json;

namespace {

json decision_body(const Authorization& a) {
  const RequestContext& c = a.context;
  const Decision& d = a.decision;
  json rules = json::array();
  for (const auto& r : d.rules) {
    json x{{"id", r.id}, {"citation", r.citation}, {"effect", std::string(to_string(r.effect))}, {"conclusive", r.conclusive}};
    if (!r.missing.empty()) x["missing"] = r.missing;
    rules.push_back(std::move(x));
  }
  json b{
      {"operation", std::string(to_string(a.operation))},
      {"who", {{"id", c.op.id}, {"org", c.op.org}, {"role", c.op.role}}},
      {"where", {{"country", c.jurisdiction.country}, {"state", c.jurisdiction.state}, {"city", c.jurisdiction.city},
                 {"location_type", c.location_type}}},
      {"when", {{"capture_time", d.evaluated_at}, {"decided_at", d.decided_at}}},
      {"why", {{"purpose", c.purpose}, {"legal_basis", c.legal_basis},
               {"case_id", c.case_file ? c.case_file->id : ""},
               {"authorisation_id", c.authorisation ? c.authorisation->id : ""},
               {"consent_id", c.consent ? c.consent->id : ""}}},
      {"how", {{"timing", c.timing}, {"source", c.source}, {"targeting", c.targeting}, {"via", c.via}}},
      {"gallery", c.gallery_id},
      {"subject", c.subject_id},
      {"targets", c.targets.size()},
      {"effect", std::string(to_string(d.effect))},
      {"rules", rules},
      {"packs", d.packs},
  };
  b["obligations"] = json::parse(decision_to_json(d))["obligations"];
  return b;
}

std::string deny_message(const Decision& d) {
  const FiredRule* r = d.first_deny();
  if (!r) return "denied";
  std::string m = "denied by " + r->id + " (" + r->citation + "): " + r->title;
  if (!r->missing.empty()) {
    m += "; the context lacks";
    for (const auto& f : r->missing) m += " " + f;
  }
  return m;
}

// Pending state of one match from the trail: its result record and the reviews after it.
struct MatchTrail {
  bool found = false;
  int required = 0;
  std::string operator_id;
  std::vector<std::string> confirmed, rejected;
};

Result<MatchTrail> trail_of(const AuditLog& log, const std::string& match_id) {
  FG_ASSIGN_OR_RETURN(std::vector<AuditRecord> records, log.read_all());
  MatchTrail t;
  for (const auto& r : records) {
    if (r.kind != "result" && r.kind != "review") continue;
    json b = json::parse(r.body_json, nullptr, false);
    if (!b.is_object()) continue;
    if (r.kind == "result" && b.contains("matches") && b["matches"].is_array()) {
      for (const auto& m : b["matches"])
        if (m.is_object() && m.value("match_id", "") == match_id) {
          t.found = true;
          t.required = b.value("review_required", 0);
          t.operator_id = b.value("operator", "");
        }
    } else if (r.kind == "review" && b.value("match_id", "") == match_id) {
      const std::string who = b.value("reviewer", "");
      auto& list = b.value("verdict", "") == "confirm" ? t.confirmed : t.rejected;
      if (std::find(list.begin(), list.end(), who) == list.end()) list.push_back(who);
    }
  }
  return t;
}

ReviewStatus status_of(const std::string& match_id, const MatchTrail& t) {
  ReviewStatus s{match_id, ReviewState::kNotRequired, t.required, t.confirmed, t.rejected};
  if (t.required == 0) return s;
  if (!t.rejected.empty()) s.state = ReviewState::kRejected;
  else if (static_cast<int>(t.confirmed.size()) >= t.required) s.state = ReviewState::kConfirmed;
  else s.state = ReviewState::kPending;
  return s;
}

}  // namespace

std::string_view to_string(ReviewState s) noexcept {
  switch (s) {
    case ReviewState::kNotRequired: return "not_required";
    case ReviewState::kPending: return "pending";
    case ReviewState::kConfirmed: return "confirmed";
    case ReviewState::kRejected: return "rejected";
  }
  return "pending";
}

GuardedResult apply_obligations(const Authorization& auth, std::vector<MatchCandidate> candidates) {
  const Obligations& o = auth.obligations();
  GuardedResult out;
  if (o.restrict_to_targets) {
    const std::set<std::string> targets(auth.context.targets.begin(), auth.context.targets.end());
    const auto before = candidates.size();
    std::erase_if(candidates, [&](const MatchCandidate& c) { return !targets.count(c.subject_id); });
    out.dropped_outside_targets = before - candidates.size();
  }
  if (o.min_similarity) {
    const auto before = candidates.size();
    std::erase_if(candidates, [&](const MatchCandidate& c) { return !(c.similarity >= *o.min_similarity); });
    out.dropped_below_threshold = before - candidates.size();
  }
  std::stable_sort(candidates.begin(), candidates.end(),
                   [](const MatchCandidate& a, const MatchCandidate& b) { return a.similarity > b.similarity; });
  if (o.top_k && candidates.size() > static_cast<std::size_t>(*o.top_k)) {
    out.dropped_by_top_k = candidates.size() - static_cast<std::size_t>(*o.top_k);
    candidates.resize(static_cast<std::size_t>(*o.top_k));
  }
  for (std::size_t i = 0; i < candidates.size(); ++i) {
    out.matches.push_back({std::to_string(auth.audit_seq) + "-" + std::to_string(i + 1), candidates[i].subject_id,
                           candidates[i].similarity,
                           o.human_reviewers > 0 ? ReviewState::kPending : ReviewState::kNotRequired});
  }
  out.notices = o.notices;
  if (o.human_reviewers > 0)
    out.notices.push_back("No action may be taken on a match until " + std::to_string(o.human_reviewers) +
                          " named reviewer(s) other than the operator have confirmed it.");
  if (o.authorisation_deadline && !(auth.context.authorisation && auth.context.authorisation->granted_at))
    out.notices.push_back("Authorisation pending: it must be granted by " + format_utc(*o.authorisation_deadline) +
                          "; if it is refused, stop and delete these results.");
  return out;
}

Status enforce_liveness(const Obligations& o, std::optional<bool> passed) {
  if (!o.require_liveness || passed.value_or(false)) return ok_status();
  return make_error(ErrorCode::kPolicyDenied,
                    passed ? "liveness check failed: the policy requires a live subject"
                           : "the policy requires a liveness check and none was made");
}

Result<TemplateBinding> template_binding(const Authorization& auth, std::optional<TimePoint> now) {
  TemplateBinding b;
  const Obligations& o = auth.obligations();
  b.retain_until = o.retention_deadline;
  const auto& consent = auth.context.consent;
  const TimePoint at = auth.context.capture_time ? auth.context.capture_time->utc
                                                 : now.value_or(std::chrono::floor<std::chrono::seconds>(
                                                       std::chrono::system_clock::now()));
  if (consent && !consent->id.empty()) {
    if (o.require_consent && !consent_active(*consent, at))
      return make_error(ErrorCode::kPolicyDenied, "consent " + consent->id +
                                                      " is not in force at the capture time (not signed yet, "
                                                      "revoked or past its term); the policy requires consent");
    b.consent_id = consent->id;
    if (auto end = consent_expiry(*consent); end && (!b.retain_until || *end < *b.retain_until)) b.retain_until = end;
  } else if (o.require_consent) {
    return make_error(ErrorCode::kPolicyDenied,
                      "the policy requires the template to be bound to a consent record and the request names "
                      "none (set consent.id, e.g. --set consent.id=ID)");
  }
  return b;
}

PolicyGuard::PolicyGuard(const PolicyEngine& engine, AuditLog* audit, const ConsentRegistry* consents)
    : engine_(engine), audit_(audit), consents_(consents) {}

namespace {
// Exceptions (allocation, a JSON library surprise) never cross the API: they become kInternal.
template <typename Fn>
auto guarded(const char* what, Fn fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const std::exception& e) {
    return make_error(ErrorCode::kInternal, std::string(what) + ": " + e.what());
  }
}
}  // namespace

Result<Authorization> PolicyGuard::authorize(Operation op, RequestContext ctx, std::optional<TimePoint> now) {
  return guarded("authorize", [&]() -> Result<Authorization> { return authorize_impl(op, std::move(ctx), now, false); });
}

bool PolicyGuard::may_defer(Operation op) {
  // Only the operations whose effect is their answer; an enrolment, deletion or export changes or releases
  // data, and its decision must be on disk before that happens.
  return op == Operation::kDetect || op == Operation::kAttributes || op == Operation::kVerify ||
         op == Operation::kIdentify;
}

Result<Authorization> PolicyGuard::authorize_deferred(Operation op, RequestContext ctx, std::optional<TimePoint> now) {
  if (!may_defer(op))
    return make_error(ErrorCode::kInvalidArgument,
                      "the decision of '" + std::string(to_string(op)) + "' is made durable before it runs, never deferred");
  return guarded("authorize", [&]() -> Result<Authorization> { return authorize_impl(op, std::move(ctx), now, true); });
}

Result<Authorization> PolicyGuard::authorize_impl(Operation op, RequestContext ctx, std::optional<TimePoint> now,
                                                  bool deferred) {
  if (ctx.operation && *ctx.operation != op)
    return make_error(ErrorCode::kInvalidArgument, "the context names operation '" + std::string(to_string(*ctx.operation)) +
                                                       "' but '" + std::string(to_string(op)) + "' was requested");
  ctx.operation = op;
  if (consents_ && ctx.consent && !ctx.consent->id.empty()) {
    // The registry, not the request, says what a consent covers. An unknown consent, or one given by someone
    // else, keeps only its id: rules that need a consent then see none.
    auto rec = consents_->get(ctx.consent->id);
    if (rec && (ctx.subject_id.empty() || rec->subject_id == ctx.subject_id)) {
      ctx.consent = rec->as_context();
      if (ctx.subject_id.empty()) ctx.subject_id = rec->subject_id;
    } else {
      ctx.consent = Consent{ctx.consent->id, {}, {}, {}, std::nullopt, std::nullopt};
    }
  }
  Authorization a;
  a.operation = op;
  a.deferred = deferred;
  a.decision = engine_.decide(ctx, now);
  a.context = std::move(ctx);
  if (audit_) {
    // A denial is answered at once: nothing follows it to carry the fdatasync, so it is synced now.
    const bool defer = deferred && !a.decision.denied();
    FG_ASSIGN_OR_RETURN(a.audit_seq, audit_->append("decision", decision_body(a).dump(),
                                                    defer ? AuditLog::Sync::kDeferred : AuditLog::Sync::kNow));
  }
  if (a.decision.denied()) return make_error(ErrorCode::kPolicyDenied, deny_message(a.decision));
  return a;
}

Result<GuardedResult> PolicyGuard::apply(const Authorization& auth, std::vector<MatchCandidate> candidates,
                                         const std::string& input_ref) {
  return guarded("apply", [&]() -> Result<GuardedResult> { return apply_impl(auth, std::move(candidates), input_ref); });
}

Result<GuardedResult> PolicyGuard::apply_impl(const Authorization& auth, std::vector<MatchCandidate> candidates,
                                              const std::string& input_ref) {
  const std::size_t offered = candidates.size();
  GuardedResult r = apply_obligations(auth, std::move(candidates));
  if (audit_) {
    json matches = json::array();
    for (const auto& m : r.matches)
      matches.push_back({{"match_id", m.match_id}, {"subject_id", m.subject_id}, {"similarity", m.similarity},
                         {"review", std::string(to_string(m.review))}});
    json b{{"decision_seq", auth.audit_seq},
           {"operation", std::string(to_string(auth.operation))},
           {"operator", auth.context.op.id},
           {"gallery", auth.context.gallery_id},
           {"input", input_ref},
           {"started_at", auth.decision.decided_at},
           {"candidates", offered},
           {"matches", matches},
           {"dropped", {{"below_threshold", r.dropped_below_threshold}, {"top_k", r.dropped_by_top_k},
                        {"outside_targets", r.dropped_outside_targets}}},
           {"review_required", auth.obligations().human_reviewers},
           {"notices", r.notices.size()}};
    // A pending review is looked up in the trail later (review()): that result is durable before the answer.
    const bool defer = auth.deferred && std::none_of(r.matches.begin(), r.matches.end(), [](const auto& m) {
                         return m.review == ReviewState::kPending;
                       });
    FG_TRY_STATUS(audit_->append("result", b.dump(), defer ? AuditLog::Sync::kDeferred : AuditLog::Sync::kNow));
  }
  return r;
}

Status PolicyGuard::record_outcome(const Authorization& auth, const std::string& summary_json) {
  if (!audit_) return ok_status();
  json s = json::parse(summary_json, nullptr, false);
  if (s.is_discarded() || !s.is_object()) return make_error(ErrorCode::kInvalidArgument, "outcome summary must be a JSON object");
  json b{{"decision_seq", auth.audit_seq}, {"operation", std::string(to_string(auth.operation))},
         {"operator", auth.context.op.id}, {"gallery", auth.context.gallery_id}, {"summary", s}};
  auto seq = audit_->append("outcome", b.dump(), auth.deferred ? AuditLog::Sync::kDeferred : AuditLog::Sync::kNow);
  if (!seq) return seq.error();
  return ok_status();
}

Result<ReviewStatus> PolicyGuard::review(const std::string& match_id, const std::string& reviewer, bool confirm,
                                         const std::string& note) {
  return guarded("review", [&]() -> Result<ReviewStatus> { return review_impl(match_id, reviewer, confirm, note); });
}

Result<ReviewStatus> PolicyGuard::review_impl(const std::string& match_id, const std::string& reviewer, bool confirm,
                                              const std::string& note) {
  if (!audit_) return make_error(ErrorCode::kInvalidArgument, "human review needs the audit trail");
  if (reviewer.empty()) return make_error(ErrorCode::kInvalidArgument, "a review needs the reviewer's name or id");
  FG_ASSIGN_OR_RETURN(MatchTrail t, trail_of(*audit_, match_id));
  if (!t.found) return make_error(ErrorCode::kNotFound, "no match '" + match_id + "' in the audit trail");
  if (t.required == 0) return make_error(ErrorCode::kInvalidArgument, "match '" + match_id + "' needs no review");
  if (reviewer == t.operator_id)
    return make_error(ErrorCode::kPermissionDenied, "the operator who ran the search cannot verify its result (EU AI Act Art. 14(5))");
  const ReviewStatus before = status_of(match_id, t);
  if (before.state != ReviewState::kPending)
    return make_error(ErrorCode::kConflict, "match '" + match_id + "' is already " + std::string(to_string(before.state)));
  auto seen = [&](const std::vector<std::string>& v) { return std::find(v.begin(), v.end(), reviewer) != v.end(); };
  if (seen(t.confirmed) || seen(t.rejected))
    return make_error(ErrorCode::kConflict, reviewer + " has already reviewed match '" + match_id + "'");
  json b{{"match_id", match_id}, {"reviewer", reviewer}, {"verdict", confirm ? "confirm" : "reject"}, {"note", note}};
  FG_TRY_STATUS(audit_->append("review", b.dump()));
  (confirm ? t.confirmed : t.rejected).push_back(reviewer);
  return status_of(match_id, t);
}

Result<ReviewStatus> PolicyGuard::review_status(const std::string& match_id) const {
  if (!audit_) return make_error(ErrorCode::kInvalidArgument, "human review needs the audit trail");
  FG_ASSIGN_OR_RETURN(MatchTrail t, trail_of(*audit_, match_id));
  if (!t.found) return make_error(ErrorCode::kNotFound, "no match '" + match_id + "' in the audit trail");
  return status_of(match_id, t);
}

}  // namespace faceguard
