// faceguard/policy.hpp - the policy decision point in front of every operation that touches a face.
//
//   auto engine = faceguard::PolicyEngine::load(*faceguard::policy_search_path({}, argv0));  // law packs
//   auto profile = faceguard::load_profile("deployment.yaml");     // what is fixed for this installation
//   auto ctx = faceguard::merge_context(*profile, request_json);    // + what the request says
//   auto audit = faceguard::AuditLog::open("audit.jsonl", {...});
//   faceguard::PolicyGuard guard(*engine, &*audit);
//   auto auth = guard.authorize(faceguard::Operation::kIdentify, *ctx);  // writes the decision record
//   if (!auth) return auth.error();                                     // kPolicyDenied names rule + citation
//   auto shown = guard.apply(*auth, candidates);   // obligations enforced: threshold, top-k, review, notice
//
// Policy packs are YAML data (policies/*.yaml, docs/policy.md): `format: 1`, one pack per jurisdiction, each
// rule with an id, a citation, an effective window, a condition over the request context and an effect.
// Semantics: every applicable pack is evaluated; any deny wins; obligations add up; retention takes the
// shortest deadline; rules are evaluated at the capture time. Conditions use three-valued logic: a deny rule
// that cannot be ruled out because the context lacks a field denies ("missing context is a denial").
//
// Thread safety: PolicyEngine is immutable after load(); decide() may be called from many threads.
// PolicyGuard serialises its own audit writes (the AuditLog is internally locked); one guard may be shared.
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "faceguard/result.hpp"

namespace faceguard {

class AuditLog;
class ConsentRegistry;

// The operations the law distinguishes (POLICY.md, "Operations the law distinguishes").
enum class Operation { kDetect, kAttributes, kEnroll, kVerify, kIdentify, kTrack, kCluster, kExport, kDelete };
std::string_view to_string(Operation op) noexcept;
Result<Operation> parse_operation(std::string_view name);

using TimePoint = std::chrono::sys_seconds;

// A stated time with the UTC offset it was stated in; the offset decides the local calendar date that
// effective windows compare against (a capture at 23:30 on 2022-12-31 in Baltimore is still 2022).
struct Timestamp {
  TimePoint utc{};
  int offset_minutes = 0;
};
// ISO 8601: "2022-06-01", "2022-06-01T14:30:00Z", "2022-06-01T14:30:00.250-04:00". No offset means UTC.
Result<Timestamp> parse_timestamp(std::string_view text);
std::string format_timestamp(const Timestamp& t);  // "2022-06-01T14:30:00-04:00" / "...Z"
std::string format_utc(TimePoint t);               // "2022-06-01T18:30:00Z"

struct Authorisation {
  std::string type;    // judicial, independent_administrative, warrant, court_order, exigent
  std::string id;
  std::string issuer;
  std::string scope;
  std::optional<Timestamp> requested_at;
  std::optional<Timestamp> granted_at;
  std::optional<Timestamp> refused_at;  // EU AI Act Art. 5(3): if refused, stop and delete
};

struct CaseFile {
  std::string id;
  std::string offence;
  std::optional<bool> probable_cause;       // attested by the requester (Maine 25 MRSA ch. 701)
  std::optional<bool> serious_crime;        // Maine: "serious crime"
  std::optional<double> max_sentence_years; // EU AI Act Art. 5(1)(h)(iii): Annex II offence, >= 4 years
};

struct Consent {
  std::string id;
  std::string kind;     // written_release, explicit, informed_notice, public_image, self_published_image
  std::string purpose;  // same vocabulary as RequestContext::purpose
  std::string term;     // ISO 8601 duration, e.g. "P3Y"; empty: until revoked
  std::optional<Timestamp> signed_at;
  std::optional<Timestamp> revoked_at;
};

// Everything a decision may depend on (POLICY.md, "Decision shape"). Empty string / nullopt = not stated.
// Closed vocabularies (roles, location types, purposes, ...) are checked on parse so a typo cannot slip
// past a rule; docs/policy.md lists them.
struct RequestContext {
  struct Operator {
    std::string id, org, role;  // role: individual, private_business, city_agency, law_enforcement, ...
  } op;
  struct Jurisdiction {
    std::string country;  // ISO 3166-1 alpha-2, upper case ("US", "DE")
    std::string state;    // upper-case code ("MD", "ME")
    std::string city;     // lower case ("baltimore", "san francisco")
  } jurisdiction;
  std::string location_type;  // public_space, public_accommodation, workplace, school, access_control, ...
  std::optional<Operation> operation;
  std::string timing;     // real_time | retrospective
  std::string source;     // live | stored | still
  std::string targeting;  // targeted | untargeted
  std::string via;        // direct | bmv | fbi | mirs | third_party: which system runs the search
  std::string gallery_id;
  std::string gallery_provenance;  // consented, employees, government_id, internet_scrape, cctv_scrape, ...
  std::string purpose;
  std::string legal_basis;
  std::vector<std::string> attributes;  // traits to infer (operation attributes): age, emotion, race, ...
  std::vector<std::string> targets;     // subject ids of a target list, when the search is restricted
  std::string subject_id;               // the data subject of enrol / delete
  std::optional<Authorisation> authorisation;
  std::optional<CaseFile> case_file;
  std::optional<Consent> consent;
  std::optional<Timestamp> capture_time;  // when the image was taken; decisions are evaluated then
  std::map<std::string, std::string> extra;  // deployment facts for user packs: `extra.<key>` in conditions
};

// Deployment profile: the fixed part of the context plus where things live. Request fields may add to it but
// never contradict it (a request cannot move the camera to another jurisdiction).
struct DeploymentProfile {
  RequestContext fixed;
  std::vector<std::string> fixed_fields;  // dotted paths the profile set, e.g. "jurisdiction.country"
  std::string policy_dir;     // extra pack folder
  std::string audit_log;      // audit trail path
  std::string audit_key;      // Ed25519 secret key file (public key beside it, ".pub")
  std::string consent_db;     // consent registry (SQLite)
  int checkpoint_every = 0;   // 0: AuditOptions default
};

Result<DeploymentProfile> load_profile(const std::filesystem::path& yaml_file);
Result<DeploymentProfile> parse_profile(std::string_view yaml_text);
// Request JSON -> context (strict: unknown keys and values outside the vocabularies are errors).
Result<RequestContext> parse_context_json(std::string_view json_text);
// Profile + request. kInvalidArgument when the request contradicts a fixed field.
Result<RequestContext> merge_context(const DeploymentProfile& profile, const RequestContext& request);
// Canonical JSON of a context (the document conditions are evaluated on, without derived fields).
std::string context_to_json(const RequestContext& ctx);

// What an allow comes with. Each member is already the combination over all fired rules.
struct Obligations {
  std::optional<float> min_similarity;   // drop matches below (compare.hpp similarity, 0.5 = model threshold)
  std::optional<int> top_k;              // at most this many candidates shown
  std::vector<std::string> notices;      // attached to every result, e.g. the not-sole-basis notice
  int human_reviewers = 0;               // a match is pending until this many distinct named people confirm
  bool restrict_to_targets = false;      // search only RequestContext::targets
  bool require_liveness = false;
  bool require_consent = false;          // the stored template must be bound to RequestContext::consent
  std::optional<TimePoint> retention_deadline;      // erase stored templates by then (shortest wins)
  std::optional<TimePoint> authorisation_deadline;  // pending authorisation: stop and delete if not granted
  std::vector<std::string> logs;         // extra log shapes required, e.g. "eu-ai-act-art12"
  bool empty() const;
};

enum class Effect { kAllow, kAllowWithObligations, kDeny };
std::string_view to_string(Effect e) noexcept;

struct FiredRule {
  std::string pack;
  std::string id;
  std::string title;
  std::string citation;
  Effect effect = Effect::kDeny;
  bool conclusive = true;             // false: fired because the context could not rule it out
  std::vector<std::string> missing;   // the context fields that would have decided it
};

struct Decision {
  Effect effect = Effect::kDeny;
  std::vector<FiredRule> rules;       // every rule that fired (denies first), with citations
  Obligations obligations;
  std::vector<std::string> reasons;   // one human sentence per fired rule / missing field
  std::vector<std::string> packs;     // packs that applied
  std::string evaluated_at;           // the capture time the windows were checked against
  std::string decided_at;
  bool denied() const { return effect == Effect::kDeny; }
  const FiredRule* first_deny() const;
};
std::string decision_to_json(const Decision& d);  // one JSON object

// One loaded pack (opaque; see docs/policy.md for the file format).
struct PackInfo {
  std::string id, name, version, source, file;
  int rule_count = 0;
};

// Where packs are looked up. The installed law packs come first: the first folder that exists of
// <exe dir>/../share/faceguard/policies, <exe dir>/policies, <exe dir>/../policies, <source_dir>/policies
// (kNotFound when none does: running without the law is never silent). Then every folder of
// $FACEGUARD_POLICY_DIR (':'-separated), then `extra_dirs` (--policy-dir, the profile's policy_dir): user
// packs that add rules. A user pack cannot replace a law pack (same id = kConflict on load).
Result<std::vector<std::filesystem::path>> policy_search_path(const std::vector<std::filesystem::path>& extra_dirs,
                                                              const std::filesystem::path& executable = {},
                                                              const std::filesystem::path& source_dir = {});

class PolicyEngine {
 public:
  // Loads every *.yaml in the given folders (a later pack with the same id is an error: kConflict).
  static Result<PolicyEngine> load(const std::vector<std::filesystem::path>& dirs);
  // Loads packs from YAML texts (name -> text), e.g. for tests and fuzzing.
  static Result<PolicyEngine> from_texts(const std::vector<std::pair<std::string, std::string>>& packs);

  PolicyEngine(PolicyEngine&&) noexcept;
  PolicyEngine& operator=(PolicyEngine&&) noexcept;
  ~PolicyEngine();

  // now: the decision time (clocks such as "authorisation requested within 24 h" count from it).
  Decision decide(const RequestContext& ctx, std::optional<TimePoint> now = std::nullopt) const;
  std::vector<PackInfo> packs() const;
  // YAML of one pack as loaded (for `policy show`); kNotFound for an unknown id.
  Result<std::string> pack_text(const std::string& id) const;

 private:
  struct Impl;
  explicit PolicyEngine(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Parses one pack and reports errors with the file position; used by the loader and the fuzzer.
Status validate_pack_text(std::string_view yaml_text);

// ----- enforcement -----

struct Authorization {
  std::uint64_t audit_seq = 0;  // the decision record in the audit trail (0: no audit log)
  bool deferred = false;        // from authorize_deferred: its records are appended AuditLog::Sync::kDeferred
  Operation operation = Operation::kDetect;
  RequestContext context;
  Decision decision;
  const Obligations& obligations() const { return decision.obligations; }
};

// A candidate answer of a search or a comparison, before obligations are applied.
struct MatchCandidate {
  std::string subject_id;
  float similarity = 0.f;  // compare.hpp similarity in [0,1]
};

enum class ReviewState { kNotRequired, kPending, kConfirmed, kRejected };
std::string_view to_string(ReviewState s) noexcept;

struct GuardedMatch {
  std::string match_id;   // "<decision seq>-<rank>", the handle for review()
  std::string subject_id;
  float similarity = 0.f;
  ReviewState review = ReviewState::kNotRequired;
};

struct GuardedResult {
  std::vector<GuardedMatch> matches;
  std::vector<std::string> notices;
  std::size_t dropped_below_threshold = 0;
  std::size_t dropped_by_top_k = 0;
  std::size_t dropped_outside_targets = 0;
};

// Applies obligations to candidates (pure: no audit): restricts to targets, drops matches below the minimum
// similarity, caps top-k (best first), attaches notices, marks matches pending when review is required.
GuardedResult apply_obligations(const Authorization& auth, std::vector<MatchCandidate> candidates);

// What a template stored under an enrol authorisation must carry: the consent it was collected under and
// its erase-by deadline. The deadline is the shortest of the decision's retention obligation and the end of
// the consent's term (a template cannot outlive the consent it rests on). kPolicyDenied when the decision
// requires consent and the request names none, or names one that is not in force at the capture time.
struct TemplateBinding {
  std::string consent_id;
  std::optional<TimePoint> retain_until;
};
Result<TemplateBinding> template_binding(const Authorization& auth, std::optional<TimePoint> now = std::nullopt);

// kPolicyDenied when liveness is required and was not shown to pass.
Status enforce_liveness(const Obligations& obligations, std::optional<bool> liveness_passed);

struct ReviewStatus {
  std::string match_id;
  ReviewState state = ReviewState::kNotRequired;
  int required = 0;
  std::vector<std::string> confirmed_by;  // distinct reviewer ids
  std::vector<std::string> rejected_by;
};

class PolicyGuard {
 public:
  // audit may be null only for dry evaluations (explain); consents, when given, is the source of truth for
  // the consent a request names (its fields replace what the request states).
  PolicyGuard(const PolicyEngine& engine, AuditLog* audit, const ConsentRegistry* consents = nullptr);

  // Decides and appends the decision record (who/what/when/where/why, effect, rule ids). A deny returns
  // kPolicyDenied with "denied by <rule> (<citation>)"; a failed audit write returns its error (no log, no
  // operation). The decision is evaluated at ctx.capture_time (default: now).
  Result<Authorization> authorize(Operation op, RequestContext ctx, std::optional<TimePoint> now = std::nullopt);
  // The same for an operation whose only effect is its answer (detect, verify, identify): the decision record
  // is written (a killed process keeps it) but not yet fdatasync'ed, and so are the result/outcome records
  // that follow it (apply, record_outcome), except a result holding matches that await human review, which
  // a later review looks up. Before answering, the caller makes the decision durable with
  // AuditLog::sync_through(audit_seq); with AuditOptions::group_commit that fdatasync has been running since
  // the record was written (overlapping the operation) and the later records follow about one fdatasync
  // after they are written; without it they become durable with the next synced append. A denial is synced
  // at once. Only detect, attributes, verify and identify (else kInvalidArgument): an enrolment's,
  // deletion's or export's decision must be on disk before the data changes or leaves.
  Result<Authorization> authorize_deferred(Operation op, RequestContext ctx, std::optional<TimePoint> now = std::nullopt);
  // Whether authorize_deferred accepts op: the operations whose only effect is their answer.
  static bool may_defer(Operation op);

  // Applies the obligations and appends a result record (gallery searched, summary: subject ids and
  // scores only, never templates or images). Matches needing review are recorded as pending.
  Result<GuardedResult> apply(const Authorization& auth, std::vector<MatchCandidate> candidates,
                              const std::string& input_ref = {});

  // Any other operation's outcome (enrol, delete, detect counts...) for the trail: a short JSON summary.
  Status record_outcome(const Authorization& auth, const std::string& summary_json);

  // Human review of a pending match: distinct named reviewers, not the operator who ran the search
  // (EU AI Act Art. 14(5): verified "separately"). Each call appends a review record.
  Result<ReviewStatus> review(const std::string& match_id, const std::string& reviewer_id, bool confirm,
                              const std::string& note = {});
  Result<ReviewStatus> review_status(const std::string& match_id) const;

 private:
  Result<Authorization> authorize_impl(Operation op, RequestContext ctx, std::optional<TimePoint> now, bool deferred);
  Result<GuardedResult> apply_impl(const Authorization& auth, std::vector<MatchCandidate> candidates,
                                   const std::string& input_ref);
  Result<ReviewStatus> review_impl(const std::string& match_id, const std::string& reviewer_id, bool confirm,
                                   const std::string& note);

  const PolicyEngine& engine_;
  AuditLog* audit_;
  const ConsentRegistry* consents_;
};

// ----- one object for a command or a server: profile + engine + audit trail + consents + guard -----

struct PolicySessionOptions {
  std::filesystem::path profile;                   // empty: $FACEGUARD_PROFILE, else no profile
  std::vector<std::filesystem::path> policy_dirs;  // --policy-dir (user packs, added to the law packs)
  std::filesystem::path executable;                // argv[0], to find the installed packs
  std::filesystem::path source_dir;                // source tree fallback for uninstalled builds
  // Override the profile; empty: profile, then $FACEGUARD_AUDIT_LOG / $FACEGUARD_AUDIT_KEY /
  // $FACEGUARD_CONSENT_DB, then $XDG_STATE_HOME/faceguard (default ~/.local/state/faceguard)/audit.jsonl,
  // audit.key (used when it exists), consent.db.
  std::filesystem::path audit_log, audit_key, consent_db;
  bool open_audit = true;     // false for dry evaluations (policy explain)
  bool open_consents = true;
};

class PolicySession {
 public:
  static Result<PolicySession> open(const PolicySessionOptions& options);
  PolicySession(PolicySession&&) noexcept;
  PolicySession& operator=(PolicySession&&) noexcept;
  ~PolicySession();

  const DeploymentProfile& profile() const;
  const PolicyEngine& engine() const;
  AuditLog* audit();                 // null when !open_audit
  const ConsentRegistry* consents() const;  // null when !open_consents
  ConsentRegistry* consents();
  PolicyGuard& guard();
  std::filesystem::path audit_key_path() const;  // the signing key in use (empty: none)

  // The request context: the profile's fixed part, then a request file (JSON, or YAML for .yaml/.yml), then
  // `path=value` assignments (lists comma-separated). Contradicting the profile is kInvalidArgument.
  Result<RequestContext> context(const std::filesystem::path& context_file,
                                 const std::vector<std::string>& assignments) const;

 private:
  struct Impl;
  explicit PolicySession(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// `path=value` assignments onto a request document (exposed for tests and other front ends).
Result<RequestContext> context_from_assignments(const std::string& base_json, const std::vector<std::string>& assignments);

}  // namespace faceguard
