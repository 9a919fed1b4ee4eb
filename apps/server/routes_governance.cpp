// Policy decide/explain, consent records, audit export/verify, retention, human review of matches.
#include <sstream>

#include "state.hpp"

namespace faceguard::server {
namespace {

json consent_json(const ConsentRecord& c) {
  json j = {{"id", c.id}, {"subject_id", c.subject_id}, {"kind", c.kind}, {"purpose", c.purpose},
            {"term", c.term}, {"evidence_sha256", c.evidence_sha256}, {"signed_at", format_timestamp(c.signed_at)}};
  j["revoked_at"] = c.revoked_at ? json(format_timestamp(*c.revoked_at)) : json(nullptr);
  return j;
}

json erasure_json(const ErasureReport& r) {
  json out = {{"dry_run", r.dry_run}, {"examined", r.examined}, {"failures", r.failures()}, {"erasures", json::array()}};
  for (const auto& e : r.erasures)
    out["erasures"].push_back({{"template_id", e.target.template_id}, {"subject_id", e.target.subject_id},
                               {"reason", e.reason}, {"done", e.done}, {"error", e.error}});
  return out;
}

Result<Timestamp> time_field(const json& body, const char* name) {
  if (!body.contains(name)) {
    const auto now = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
    return Timestamp{now, 0};
  }
  if (!body[name].is_string()) return make_error(ErrorCode::kInvalidArgument, std::string("'") + name + "' must be an ISO 8601 string");
  return parse_timestamp(body[name].get<std::string>());
}

}  // namespace

// Bridges the consent registry and retention runner to every gallery of the service.
class ServiceErasureSink final : public ErasureSink {
 public:
  explicit ServiceErasureSink(Service::State& st) : st_(st) {}
  Result<std::vector<RetainedTemplate>> retained_templates() override {
    std::vector<RetainedTemplate> out;
    std::error_code ec;
    if (!std::filesystem::is_directory(st_.gallery_dir(), ec)) return out;
    for (const auto& e : std::filesystem::directory_iterator(st_.gallery_dir(), ec)) {
      if (e.path().extension() != ".fgdb") continue;
      const std::string name = e.path().stem().string();
      FG_ASSIGN_OR_RETURN(GalleryRef g, gallery_for(st_, name, false));
      FG_ASSIGN_OR_RETURN(auto subjects, g->list());
      for (const auto& s : subjects) {
        FG_ASSIGN_OR_RETURN(auto full, g->show(s.subject_id));
        for (const auto& t : full.templates) {
          RetainedTemplate r;
          r.template_id = name + "/" + std::to_string(t.id);
          r.subject_id = s.subject_id;
          r.consent_id = t.consent_id;
          r.enrolled_at = TimePoint(std::chrono::seconds(t.created_at));
          if (t.retain_until) r.retention_deadline = TimePoint(std::chrono::seconds(*t.retain_until));
          out.push_back(std::move(r));
        }
      }
    }
    return out;
  }
  Status erase_template(const RetainedTemplate& t, const std::string&) override {
    const auto slash = t.template_id.find('/');
    if (slash == std::string::npos) return make_error(ErrorCode::kInvalidArgument, "bad template id " + t.template_id);
    FG_ASSIGN_OR_RETURN(GalleryRef g, gallery_for(st_, t.template_id.substr(0, slash), false));
    const std::int64_t id = std::stoll(t.template_id.substr(slash + 1));
    auto r = g->remove_template(id);
    if (!r && r.error().code != ErrorCode::kNotFound) return std::move(r).error();
    return {};
  }

 private:
  Service::State& st_;
};

void register_governance_routes(Service::State& st) {
  using R = ApiRole;

  // Decide without performing anything (still audited as a request); explain adds the reasons.
  for (const char* path : {"/v1/policy/decide", "/v1/policy/explain"}) {
    const bool explain = std::string(path).find("explain") != std::string::npos;
    add_route(st, "POST", path, {R::kAdmin, R::kOperator, R::kAuditor},
              [&st, explain](const HttpRequest& req, const ApiKeyInfo& who) -> HttpResponse {
                auto body = body_json(req);
                if (!body) return from_error(body.error());
                if (!body->contains("operation") || !(*body)["operation"].is_string())
                  return error_response(400, "invalid_argument", "'operation' (detect, verify, identify, ...) is required");
                auto op = parse_operation((*body)["operation"].get<std::string>());
                if (!op) return from_error(op.error());
                auto ctx = request_context(st, who, *body);
                if (!ctx) return from_error(ctx.error());
                ctx->operation = *op;
                const Decision d = st.policy->decide(*ctx);
                json out = json::parse(decision_to_json(d));
                if (explain) out["context"] = json::parse(context_to_json(*ctx));
                return json_response(200, out);
              });
  }

  add_route(st, "GET", "/v1/policy/packs", {R::kAdmin, R::kOperator, R::kAuditor},
            [&st](const HttpRequest&, const ApiKeyInfo&) {
              json out = json::array();
              for (const auto& p : st.policy->packs())
                out.push_back({{"id", p.id}, {"name", p.name}, {"version", p.version}, {"source", p.source},
                               {"rules", p.rule_count}});
              return json_response(200, {{"packs", out}});
            });

  add_route(st, "POST", "/v1/consents", {R::kAdmin}, [&st](const HttpRequest& req, const ApiKeyInfo& who) {
    auto body = body_json(req);
    if (!body) return from_error(body.error());
    ConsentRecord c;
    c.id = body->value("id", std::string());
    c.subject_id = body->value("subject_id", std::string());
    c.kind = body->value("kind", std::string());
    c.purpose = body->value("purpose", std::string());
    c.term = body->value("term", std::string());
    c.evidence_sha256 = body->value("evidence_sha256", std::string());
    auto signed_at = time_field(*body, "signed_at");
    if (!signed_at) return from_error(signed_at.error());
    c.signed_at = *signed_at;
    if (c.subject_id.empty()) return error_response(400, "invalid_argument", "'subject_id' is required");
    auto r = st.consents->add(c);
    if (!r) return from_error(r.error());
    (void)st.audit->append("consent", json({{"action", "add"}, {"consent_id", r->id}, {"subject_id", r->subject_id},
                                            {"by", who.operator_id}}).dump());
    return json_response(201, consent_json(*r));
  });

  add_route(st, "GET", "/v1/consents", {R::kAdmin, R::kAuditor}, [&st](const HttpRequest& req, const ApiKeyInfo&) {
    auto it = req.query.find("subject_id");
    auto list = st.consents->list(it == req.query.end() ? std::string() : it->second);
    if (!list) return from_error(list.error());
    json out = json::array();
    for (const auto& c : *list) out.push_back(consent_json(c));
    return json_response(200, {{"consents", out}});
  });

  add_route(st, "GET", "/v1/consents/{id}", {R::kAdmin, R::kAuditor}, [&st](const HttpRequest& req, const ApiKeyInfo&) {
    auto c = st.consents->get(req.params[0]);
    if (!c) return from_error(c.error());
    return json_response(200, consent_json(*c));
  });

  // Revoking erases the subject's templates collected under that consent, in every gallery.
  add_route(st, "POST", "/v1/consents/{id}/revoke", {R::kAdmin}, [&st](const HttpRequest& req, const ApiKeyInfo&) {
    auto body = body_json(req);
    if (!body) return from_error(body.error());
    auto at = time_field(*body, "revoked_at");
    if (!at) return from_error(at.error());
    ServiceErasureSink sink(st);
    auto r = st.consents->revoke(req.params[0], *at, &sink, &*st.audit);
    if (!r) return from_error(r.error());
    return json_response(200, erasure_json(*r));
  });

  add_route(st, "POST", "/v1/retention/run", {R::kAdmin}, [&st](const HttpRequest& req, const ApiKeyInfo&) {
    auto body = body_json(req);
    if (!body) return from_error(body.error());
    auto now = time_field(*body, "now");
    if (!now) return from_error(now.error());
    ServiceErasureSink sink(st);
    auto r = run_retention(sink, &*st.consents, &*st.audit, now->utc, body->value("dry_run", false));
    if (!r) return from_error(r.error());
    return json_response(200, erasure_json(*r));
  });

  add_route(st, "GET", "/v1/audit/export", {R::kAuditor, R::kAdmin}, [&st](const HttpRequest& req, const ApiKeyInfo&) {
    AuditExportOptions opt;
    if (auto it = req.query.find("from"); it != req.query.end()) opt.from = it->second;
    if (auto it = req.query.find("to"); it != req.query.end()) opt.to = it->second;
    std::ostringstream out;
    auto n = export_audit_log(st.audit->path(), out, opt);
    if (!n) return from_error(n.error());
    HttpResponse r;
    r.content_type = "application/x-ndjson";
    r.body = out.str();
    r.headers.emplace_back("X-Faceguard-Records", std::to_string(*n));
    return r;
  });

  add_route(st, "GET", "/v1/audit/verify", {R::kAuditor, R::kAdmin}, [&st](const HttpRequest&, const ApiKeyInfo&) {
    std::filesystem::path pub;
    if (!st.profile.audit_key.empty()) pub = st.profile.audit_key + ".pub";
    auto rep = verify_audit_log(st.audit->path(), pub);
    if (!rep) return from_error(rep.error());
    json issues = json::array();
    for (const auto& i : rep->issues) issues.push_back({{"line", i.line}, {"what", i.what}});
    return json_response(200, {{"ok", rep->ok}, {"records", rep->records}, {"checkpoints", rep->checkpoints},
                               {"checkpoints_verified", rep->checkpoints_verified}, {"last_seq", rep->last_seq},
                               {"issues", issues}});
  });

  // A named reviewer confirms or rejects a pending match (two-person rule where a policy says so).
  add_route(st, "POST", "/v1/reviews/{match}", {R::kOperator, R::kAdmin},
            [&st](const HttpRequest& req, const ApiKeyInfo& who) -> HttpResponse {
              auto body = body_json(req);
              if (!body) return from_error(body.error());
              if (!body->contains("confirm") || !(*body)["confirm"].is_boolean())
                return error_response(400, "invalid_argument", "'confirm' (true or false) is required");
              auto r = st.guard->review(req.params[0], who.operator_id, (*body)["confirm"].get<bool>(),
                                        body->value("note", std::string()));
              if (!r) return from_error(r.error());
              return json_response(200, {{"match_id", r->match_id}, {"state", std::string(to_string(r->state))},
                                         {"required", r->required}, {"confirmed_by", r->confirmed_by},
                                         {"rejected_by", r->rejected_by}});
            });
}

}  // namespace faceguard::server
