// PolicyEngine: loads packs and decides. Semantics in faceguard/policy.hpp and docs/policy.md.
#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>

#include "policy/context_doc.hpp"
#include "policy/pack.hpp"

namespace faceguard {

using policy::Evaluation;
using policy::Pack;
using policy::Tri;

struct PolicyEngine::Impl {
  std::vector<Pack> packs;
};

namespace {

// A capture stated more than this far in the future is refused: clocks drift, cameras do not see ahead.
constexpr auto kFutureTolerance = std::chrono::minutes(5);
constexpr const char* kEngineCitation = "faceguard docs/policy.md (missing or inconsistent context is a denial)";

void add_obligations(Obligations& o, const policy::ObligationSpec& s, const nlohmann::json& doc, TimePoint capture) {
  if (s.min_similarity) o.min_similarity = std::max(o.min_similarity.value_or(0.f), *s.min_similarity);
  if (s.top_k) o.top_k = std::min(o.top_k.value_or(*s.top_k), *s.top_k);
  for (const auto& n : s.notices)
    if (std::find(o.notices.begin(), o.notices.end(), n) == o.notices.end()) o.notices.push_back(n);
  o.human_reviewers = std::max(o.human_reviewers, s.human_review);
  o.restrict_to_targets |= s.restrict_to_targets;
  o.require_liveness |= s.require_liveness;
  o.require_consent |= s.require_consent;
  auto deadline = [&](const policy::DeadlineSpec& d) -> std::optional<TimePoint> {
    TimePoint base = capture;
    if (!d.from_field.empty()) {
      const nlohmann::json* v = policy::lookup(doc, d.from_field);
      if (!v || !v->is_string()) return std::nullopt;  // e.g. no consent term: that clock does not run
      auto t = parse_timestamp(v->get<std::string>());
      if (!t) return std::nullopt;
      base = t->utc;
    }
    return policy::add_span(base, d.span);
  };
  auto earliest = [](std::optional<TimePoint>& slot, std::optional<TimePoint> t) {
    if (t && (!slot || *t < *slot)) slot = t;
  };
  for (const auto& r : s.retention) earliest(o.retention_deadline, deadline(r));
  for (const auto& a : s.authorisation_deadline) earliest(o.authorisation_deadline, deadline(a));
  for (const auto& l : s.logs)
    if (std::find(o.logs.begin(), o.logs.end(), l) == o.logs.end()) o.logs.push_back(l);
}

std::string join(const std::set<std::string>& s) {
  std::string out;
  for (const auto& x : s) out += (out.empty() ? "" : ", ") + x;
  return out;
}

int rank(const FiredRule& r) {
  if (r.effect == Effect::kDeny) return r.conclusive ? 0 : 1;
  return r.effect == Effect::kAllowWithObligations ? 2 : 3;
}

Result<std::string> read_text(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return make_error(ErrorCode::kIoError, "cannot read " + p.string());
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Status check_unique(const std::vector<Pack>& packs) {
  std::map<std::string, std::string> pack_ids, rule_ids;
  for (const auto& p : packs) {
    if (auto [it, fresh] = pack_ids.emplace(p.id, p.file); !fresh)
      return make_error(ErrorCode::kConflict, "pack id '" + p.id + "' is defined by both " + it->second + " and " + p.file);
    for (const auto& r : p.rules)
      if (auto [it, fresh] = rule_ids.emplace(r.id, p.file); !fresh)
        return make_error(ErrorCode::kConflict, "rule id '" + r.id + "' is defined by both " + it->second + " and " + p.file);
  }
  return ok_status();
}

}  // namespace

bool Obligations::empty() const {
  return !min_similarity && !top_k && notices.empty() && human_reviewers == 0 && !restrict_to_targets &&
         !require_liveness && !require_consent && !retention_deadline && !authorisation_deadline && logs.empty();
}

std::string_view to_string(Effect e) noexcept {
  switch (e) {
    case Effect::kAllow: return "allow";
    case Effect::kAllowWithObligations: return "allow_with_obligations";
    case Effect::kDeny: return "deny";
  }
  return "deny";
}

const FiredRule* Decision::first_deny() const {
  for (const auto& r : rules)
    if (r.effect == Effect::kDeny) return &r;
  return nullptr;
}

PolicyEngine::PolicyEngine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PolicyEngine::PolicyEngine(PolicyEngine&&) noexcept = default;
PolicyEngine& PolicyEngine::operator=(PolicyEngine&&) noexcept = default;
PolicyEngine::~PolicyEngine() = default;

Result<PolicyEngine> PolicyEngine::from_texts(const std::vector<std::pair<std::string, std::string>>& texts) {
  std::vector<Pack> packs;
  for (const auto& [name, text] : texts) {
    FG_ASSIGN_OR_RETURN(Pack p, policy::parse_pack(text, name));
    packs.push_back(std::move(p));
  }
  FG_TRY_STATUS(check_unique(packs));
  auto impl = std::make_unique<Impl>();
  impl->packs = std::move(packs);
  return PolicyEngine(std::move(impl));
}

Result<PolicyEngine> PolicyEngine::load(const std::vector<std::filesystem::path>& dirs) {
  std::vector<std::pair<std::string, std::string>> texts;
  for (const auto& dir : dirs) {
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec))
      return make_error(ErrorCode::kNotFound, "policy folder " + dir.string() + " does not exist");
    std::vector<std::filesystem::path> files;
    for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
      const auto ext = e.path().extension();
      if (e.is_regular_file() && (ext == ".yaml" || ext == ".yml")) files.push_back(e.path());
    }
    if (ec) return make_error(ErrorCode::kIoError, "cannot list " + dir.string() + ": " + ec.message());
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      FG_ASSIGN_OR_RETURN(std::string t, read_text(f));
      texts.emplace_back(f.string(), std::move(t));
    }
  }
  return from_texts(texts);
}

std::vector<PackInfo> PolicyEngine::packs() const {
  std::vector<PackInfo> out;
  for (const auto& p : impl_->packs)
    out.push_back({p.id, p.name, p.version, p.source, p.file, static_cast<int>(p.rules.size())});
  return out;
}

Result<std::string> PolicyEngine::pack_text(const std::string& id) const {
  for (const auto& p : impl_->packs)
    if (p.id == id) return p.text;
  return make_error(ErrorCode::kNotFound, "no policy pack '" + id + "'");
}

Decision PolicyEngine::decide(const RequestContext& ctx, std::optional<TimePoint> now_opt) const {
  const TimePoint now = now_opt.value_or(policy::now_seconds());
  const Timestamp capture = ctx.capture_time.value_or(Timestamp{now, 0});
  const nlohmann::json doc = policy::evaluation_document(ctx, now);
  Decision d;
  d.decided_at = format_utc(now);
  d.evaluated_at = format_timestamp(capture);
  auto engine_deny = [&](const std::string& id, const std::string& title, std::set<std::string> missing) {
    FiredRule r{"faceguard", id, title, kEngineCitation, Effect::kDeny, false, {missing.begin(), missing.end()}};
    d.reasons.push_back("deny: " + title);
    d.rules.push_back(std::move(r));
  };
  if (!ctx.operation) engine_deny("faceguard.context.operation", "the operation is not stated", {"operation"});
  if (capture.utc > now + kFutureTolerance)
    engine_deny("faceguard.context.capture-time", "the stated capture time " + d.evaluated_at + " is in the future", {});

  // A rule is in force when its window holds the capture date or the decision date: "use" bans bind at the
  // time of use, and stating an old capture time must not escape a rule in force now.
  const auto capture_day = policy::local_date(capture);
  const auto decision_day = policy::local_date(Timestamp{now, capture.offset_minutes});
  auto in_force = [&](const policy::Window& w) { return w.contains(capture_day) || w.contains(decision_day); };

  for (const auto& p : impl_->packs) {
    if (!in_force(p.effective)) continue;
    const Evaluation applies = policy::evaluate(p.applies_to, doc, now);
    if (applies.value == Tri::kFalse) continue;
    if (applies.value == Tri::kUnknown) {
      FiredRule r{p.id, p.id + ".applicability", "cannot tell whether " + p.name + " applies", p.source,
                  Effect::kDeny, false, {applies.missing.begin(), applies.missing.end()}};
      d.reasons.push_back("deny: the context lacks " + join(applies.missing) + ", so it cannot be ruled out that " +
                          p.name + " applies [" + r.id + "]");
      d.rules.push_back(std::move(r));
      continue;
    }
    d.packs.push_back(p.id);
    bool pack_allowed = false;
    for (const auto& rule : p.rules) {
      if (!in_force(rule.effective)) continue;
      const Evaluation e = policy::evaluate(rule.when, doc, now);
      if (e.value == Tri::kFalse) continue;
      const bool conclusive = e.value == Tri::kTrue;
      if (!conclusive && rule.effect == Effect::kAllow) continue;  // an unproven exception grants nothing
      FiredRule fr{p.id, rule.id, rule.title, rule.citation, rule.effect, conclusive, {e.missing.begin(), e.missing.end()}};
      const std::string tag = " [" + rule.id + "; " + rule.citation + "]";
      if (rule.effect == Effect::kDeny) {
        d.reasons.push_back(conclusive ? "deny: " + rule.title + tag
                                       : "deny: the context lacks " + join(e.missing) + ", so '" + rule.title +
                                             "' cannot be ruled out" + tag);
      } else if (rule.effect == Effect::kAllowWithObligations) {
        // Obligations that may apply are applied: more duties is the safe side of doubt.
        add_obligations(d.obligations, rule.obligations, doc, capture.utc);
        d.reasons.push_back((conclusive ? "obligations: " : "obligations (context cannot rule them out): ") +
                            rule.title + tag);
        pack_allowed |= conclusive;
      } else {
        d.reasons.push_back("allow: " + rule.title + tag);
        pack_allowed = true;
      }
      d.rules.push_back(std::move(fr));
    }
    if (p.default_effect == Effect::kDeny && !pack_allowed) {
      FiredRule r{p.id, p.id + ".default", p.name + " allows only what one of its rules allows", p.source,
                  Effect::kDeny, true, {}};
      d.reasons.push_back("deny: no rule of " + p.name + " allows this [" + r.id + "]");
      d.rules.push_back(std::move(r));
    }
  }
  std::stable_sort(d.rules.begin(), d.rules.end(), [](const FiredRule& a, const FiredRule& b) { return rank(a) < rank(b); });
  if (std::any_of(d.rules.begin(), d.rules.end(), [](const FiredRule& r) { return r.effect == Effect::kDeny; }))
    d.effect = Effect::kDeny;
  else
    d.effect = d.obligations.empty() ? Effect::kAllow : Effect::kAllowWithObligations;
  return d;
}

std::string decision_to_json(const Decision& d) {
  nlohmann::json j;
  j["effect"] = std::string(to_string(d.effect));
  j["evaluated_at"] = d.evaluated_at;
  j["decided_at"] = d.decided_at;
  j["packs"] = d.packs;
  j["reasons"] = d.reasons;
  auto& rules = j["rules"] = nlohmann::json::array();
  for (const auto& r : d.rules) {
    nlohmann::json x{{"pack", r.pack}, {"id", r.id}, {"title", r.title}, {"citation", r.citation},
                     {"effect", std::string(to_string(r.effect))}, {"conclusive", r.conclusive}};
    if (!r.missing.empty()) x["missing"] = r.missing;
    rules.push_back(std::move(x));
  }
  const Obligations& o = d.obligations;
  nlohmann::json ob = nlohmann::json::object();
  if (o.min_similarity) ob["min_similarity"] = *o.min_similarity;
  if (o.top_k) ob["top_k"] = *o.top_k;
  if (!o.notices.empty()) ob["notices"] = o.notices;
  if (o.human_reviewers) ob["human_reviewers"] = o.human_reviewers;
  if (o.restrict_to_targets) ob["restrict_to_targets"] = true;
  if (o.require_liveness) ob["require_liveness"] = true;
  if (o.require_consent) ob["require_consent"] = true;
  if (o.retention_deadline) ob["retention_deadline"] = format_utc(*o.retention_deadline);
  if (o.authorisation_deadline) ob["authorisation_deadline"] = format_utc(*o.authorisation_deadline);
  if (!o.logs.empty()) ob["logs"] = o.logs;
  j["obligations"] = ob;
  return j.dump();
}

Status validate_pack_text(std::string_view yaml_text) {
  auto p = policy::parse_pack(yaml_text, "<pack>");
  if (!p) return p.error();
  return ok_status();
}

Result<std::vector<std::filesystem::path>> policy_search_path(const std::vector<std::filesystem::path>& extra_dirs,
                                                              const std::filesystem::path& executable,
                                                              const std::filesystem::path& source_dir) {
  std::vector<std::filesystem::path> candidates;
  std::error_code ec;
  if (!executable.empty()) {
    auto exe = std::filesystem::weakly_canonical(executable, ec);
    if (ec) exe = executable;
    const auto dir = exe.parent_path();
    candidates = {dir / ".." / "share" / "faceguard" / "policies", dir / "policies", dir / ".." / "policies"};
  }
  if (!source_dir.empty()) candidates.push_back(source_dir / "policies");
  std::vector<std::filesystem::path> out;
  for (const auto& c : candidates) {
    if (std::filesystem::is_directory(c, ec)) {
      out.push_back(c.lexically_normal());
      break;
    }
  }
  if (out.empty())
    return make_error(ErrorCode::kNotFound,
                      "the installed policy packs were not found (looked beside the executable and in the source "
                      "tree); reinstall faceguard");
  if (const char* env = std::getenv("FACEGUARD_POLICY_DIR"); env && *env) {
    std::stringstream ss(env);
    std::string item;
    while (std::getline(ss, item, ':'))
      if (!item.empty()) out.emplace_back(item);
  }
  for (const auto& d : extra_dirs)
    if (!d.empty()) out.push_back(d);
  // The same folder named twice would load each pack twice (a conflict): keep the first.
  std::vector<std::filesystem::path> unique;
  for (const auto& d : out) {
    auto canon = std::filesystem::weakly_canonical(d, ec);
    if (ec) canon = d;
    bool seen = false;
    for (const auto& u : unique) {
      auto cu = std::filesystem::weakly_canonical(u, ec);
      if (!ec && cu == canon) seen = true;
    }
    if (!seen) unique.push_back(d);
  }
  return unique;
}

}  // namespace faceguard
