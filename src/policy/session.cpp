// PolicySession: what a command or a server opens once - profile, packs, audit trail, consents, guard.
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "faceguard/audit.hpp"
#include "faceguard/consent.hpp"
#include "faceguard/policy.hpp"
#include "policy/context_doc.hpp"

namespace faceguard {

using nlohmann::json;

struct PolicySession::Impl {
  DeploymentProfile profile;
  std::optional<PolicyEngine> engine;
  std::optional<AuditLog> audit;
  std::optional<ConsentRegistry> consents;
  std::unique_ptr<PolicyGuard> guard;
  std::filesystem::path key;
};

namespace {

std::filesystem::path state_dir() {
  if (const char* x = std::getenv("XDG_STATE_HOME"); x && *x) return std::filesystem::path(x) / "faceguard";
  if (const char* h = std::getenv("HOME"); h && *h) return std::filesystem::path(h) / ".local" / "state" / "faceguard";
  return std::filesystem::path(".faceguard");
}

std::filesystem::path pick(const std::filesystem::path& option, const std::string& from_profile, const char* env,
                           const std::filesystem::path& fallback) {
  if (!option.empty()) return option;
  if (!from_profile.empty()) return from_profile;
  if (const char* e = std::getenv(env); e && *e) return e;
  return fallback;
}

Status ensure_parent(const std::filesystem::path& p) {
  std::error_code ec;
  if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path(), ec);
  if (ec) return make_error(ErrorCode::kIoError, "cannot create " + p.parent_path().string() + ": " + ec.message());
  return ok_status();
}

// Sets doc[a][b]... = value, typed by the schema (lists split on commas).
Status assign(json& doc, const std::string& assignment) {
  const auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0)
    return make_error(ErrorCode::kInvalidArgument, "expected path=value, got '" + assignment + "'");
  const std::string path = assignment.substr(0, eq), value = assignment.substr(eq + 1);
  const policy::FieldSpec* f = policy::field_spec(path);
  if (!f || f->derived || f->type == policy::FieldType::kObject)
    return make_error(ErrorCode::kInvalidArgument, "unknown or computed context field '" + path + "'");
  json v = value;
  if (f->type == policy::FieldType::kList) {
    v = json::array();
    std::stringstream ss(value);
    std::string item;
    while (std::getline(ss, item, ','))
      if (!item.empty()) v.push_back(item);
  }
  json* cur = &doc;
  std::size_t start = 0;
  while (true) {
    const auto dot = path.find('.', start);
    const std::string key = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (dot == std::string::npos) {
      (*cur)[key] = v;
      break;
    }
    json& next = (*cur)[key];
    if (!next.is_object()) next = json::object();
    cur = &next;
    start = dot + 1;
  }
  return ok_status();
}

}  // namespace

Result<RequestContext> context_from_assignments(const std::string& base_json, const std::vector<std::string>& assignments) {
  json doc = base_json.empty() ? json::object() : json::parse(base_json, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return make_error(ErrorCode::kInvalidArgument, "the request context is not a JSON object");
  for (const auto& a : assignments) FG_TRY_STATUS(assign(doc, a));
  return policy::context_from_json(doc);
}

PolicySession::PolicySession(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PolicySession::PolicySession(PolicySession&&) noexcept = default;
PolicySession& PolicySession::operator=(PolicySession&&) noexcept = default;
PolicySession::~PolicySession() = default;

Result<PolicySession> PolicySession::open(const PolicySessionOptions& o) {
  auto im = std::make_unique<Impl>();
  std::filesystem::path profile = o.profile;
  if (profile.empty())
    if (const char* e = std::getenv("FACEGUARD_PROFILE"); e && *e) profile = e;
  if (!profile.empty()) {
    FG_ASSIGN_OR_RETURN(im->profile, load_profile(profile));
  }
  std::vector<std::filesystem::path> extra = o.policy_dirs;
  if (!im->profile.policy_dir.empty()) extra.emplace_back(im->profile.policy_dir);
  FG_ASSIGN_OR_RETURN(auto dirs, policy_search_path(extra, o.executable, o.source_dir));
  FG_ASSIGN_OR_RETURN(PolicyEngine engine, PolicyEngine::load(dirs));
  im->engine.emplace(std::move(engine));
  const auto sd = state_dir();
  if (o.open_audit) {
    const auto log = pick(o.audit_log, im->profile.audit_log, "FACEGUARD_AUDIT_LOG", sd / "audit.jsonl");
    std::filesystem::path key = pick(o.audit_key, im->profile.audit_key, "FACEGUARD_AUDIT_KEY", {});
    std::error_code ec;
    if (key.empty() && std::filesystem::exists(sd / "audit.key", ec)) key = sd / "audit.key";
    FG_TRY_STATUS(ensure_parent(log));
    AuditOptions ao;
    ao.signing_key = key;
    if (im->profile.checkpoint_every > 0) ao.checkpoint_every = im->profile.checkpoint_every;
    FG_ASSIGN_OR_RETURN(AuditLog a, AuditLog::open(log, ao));
    im->audit.emplace(std::move(a));
    im->key = key;
  }
  if (o.open_consents) {
    const auto db = pick(o.consent_db, im->profile.consent_db, "FACEGUARD_CONSENT_DB", sd / "consent.db");
    FG_TRY_STATUS(ensure_parent(db));
    FG_ASSIGN_OR_RETURN(ConsentRegistry c, ConsentRegistry::open(db));
    im->consents.emplace(std::move(c));
  }
  im->guard = std::make_unique<PolicyGuard>(*im->engine, im->audit ? &*im->audit : nullptr,
                                            im->consents ? &*im->consents : nullptr);
  return PolicySession(std::move(im));
}

const DeploymentProfile& PolicySession::profile() const { return impl_->profile; }
const PolicyEngine& PolicySession::engine() const { return *impl_->engine; }
AuditLog* PolicySession::audit() { return impl_->audit ? &*impl_->audit : nullptr; }
const ConsentRegistry* PolicySession::consents() const { return impl_->consents ? &*impl_->consents : nullptr; }
ConsentRegistry* PolicySession::consents() { return impl_->consents ? &*impl_->consents : nullptr; }
PolicyGuard& PolicySession::guard() { return *impl_->guard; }
std::filesystem::path PolicySession::audit_key_path() const { return impl_->key; }

Result<RequestContext> PolicySession::context(const std::filesystem::path& file, const std::vector<std::string>& assignments) const {
  std::string base;
  if (!file.empty()) {
    std::ifstream in(file, std::ios::binary);
    if (!in) return make_error(ErrorCode::kNotFound, "cannot read context file " + file.string());
    std::stringstream ss;
    ss << in.rdbuf();
    base = ss.str();
    const auto ext = file.extension();
    if (ext == ".yaml" || ext == ".yml") {
      try {
        base = policy::yaml_to_json(YAML::Load(base)).dump();
      } catch (const std::exception& e) {
        return make_error(ErrorCode::kInvalidArgument, file.string() + ": " + e.what());
      }
    }
  }
  auto request = context_from_assignments(base, assignments);
  if (!request) {
    return make_error(request.error().code, (file.empty() ? std::string() : file.string() + ": ") + request.error().message);
  }
  return merge_context(impl_->profile, *request);
}

}  // namespace faceguard
