// `faceguard consent add|list|revoke`: the consent registry; revoking erases the subject's templates.
#include <iostream>
#include <memory>

#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "faceguard/gallery.hpp"
#include "policy_cli.hpp"

namespace faceguard::cli {

namespace {

struct ConsentArgs {
  PolicyCliOptions o;
  ConsentRecord rec;
  std::string signed_at, revoked_at, evidence_file;
  std::string id, subject;
  std::string gallery, master_key_file;
  bool json = false;
};

nlohmann::json to_json(const ConsentRecord& r) {
  nlohmann::json j{{"id", r.id}, {"subject_id", r.subject_id}, {"kind", r.kind}, {"purpose", r.purpose},
                   {"term", r.term}, {"evidence_sha256", r.evidence_sha256}, {"signed_at", format_timestamp(r.signed_at)}};
  j["revoked_at"] = r.revoked_at ? nlohmann::json(format_timestamp(*r.revoked_at)) : nlohmann::json(nullptr);
  if (auto e = consent_expiry(r.as_context())) j["expires_at"] = format_utc(*e);
  return j;
}

int run_add(ConsentArgs a) {
  auto s = open_policy_session(a.o, true, true);
  if (!s) return report(s.error(), "consent add");
  if (!a.evidence_file.empty()) {
    if (!a.rec.evidence_sha256.empty())
      return report(make_error(ErrorCode::kInvalidArgument, "give --evidence or --evidence-sha256, not both"), "consent add");
    auto h = sha256_file(a.evidence_file);
    if (!h) return report(h.error(), "--evidence");
    a.rec.evidence_sha256 = *h;
  }
  if (a.signed_at.empty()) {
    a.rec.signed_at = Timestamp{std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now()), 0};
  } else {
    auto t = parse_timestamp(a.signed_at);
    if (!t) return report(t.error(), "--signed-at");
    a.rec.signed_at = *t;
  }
  auto r = s->consents()->add(a.rec);
  if (!r) return report(r.error(), "consent add");
  nlohmann::json b{{"action", "add"}, {"consent_id", r->id}, {"subject_id", r->subject_id}, {"kind", r->kind},
                   {"purpose", r->purpose}, {"term", r->term}, {"evidence_sha256", r->evidence_sha256},
                   {"signed_at", format_timestamp(r->signed_at)}};
  if (auto seq = s->audit()->append("consent", b.dump()); !seq) return report(seq.error(), "consent add: audit");
  if (a.json) std::cout << to_json(*r).dump(2) << "\n";
  else std::cout << "consent " << r->id << " recorded for " << r->subject_id << " (" << r->kind << ", " << r->purpose << ")\n";
  return kExitOk;
}

int run_list(const ConsentArgs& a) {
  auto s = open_policy_session(a.o, false, true);
  if (!s) return report(s.error(), "consent list");
  auto list = s->consents()->list(a.subject);
  if (!list) return report(list.error(), "consent list");
  if (a.json) {
    nlohmann::json doc = nlohmann::json::array();
    for (const auto& r : *list) doc.push_back(to_json(r));
    std::cout << doc.dump(2) << "\n";
    return kExitOk;
  }
  const auto now = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
  for (const auto& r : *list)
    std::cout << r.id << "  " << r.subject_id << "  " << r.kind << "  " << r.purpose << "  signed "
              << format_timestamp(r.signed_at) << (r.term.empty() ? "" : "  term " + r.term)
              << (r.revoked_at ? "  REVOKED " + format_timestamp(*r.revoked_at)
                               : consent_active(r.as_context(), now) ? "  active" : "  inactive")
              << "\n";
  return kExitOk;
}

Result<std::unique_ptr<Gallery>> open_gallery(const std::string& path, const std::string& key_file) {
  auto key = key_file.empty() ? master_key_from_env() : load_secret_key(std::filesystem::path(key_file));
  if (!key)
    return make_error(key.error().code, "the gallery's master key is needed (--master-key-file or FACEGUARD_MASTER_KEY): " +
                                            key.error().message);
  GalleryOptions go;
  go.master_key = *key;
  return Gallery::open(path, go);
}

int run_revoke(const ConsentArgs& a) {
  auto s = open_policy_session(a.o, true, true);
  if (!s) return report(s.error(), "consent revoke");
  Timestamp at{std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now()), 0};
  if (!a.revoked_at.empty()) {
    auto t = parse_timestamp(a.revoked_at);
    if (!t) return report(t.error(), "--at");
    at = *t;
  }
  std::unique_ptr<Gallery> gallery;
  std::unique_ptr<SubjectErasureSink<Gallery>> sink;
  if (!a.gallery.empty()) {
    auto g = open_gallery(a.gallery, a.master_key_file);
    if (!g) return report(g.error(), "consent revoke: " + a.gallery);
    gallery = std::move(*g);
    sink = std::make_unique<SubjectErasureSink<Gallery>>(*gallery);
  }
  auto r = s->consents()->revoke(a.id, at, sink.get(), s->audit());
  if (!r) return report(r.error(), "consent revoke");
  std::cout << "consent " << a.id << " revoked at " << format_timestamp(at) << "\n";
  for (const auto& e : r->erasures)
    std::cout << (e.done ? "erased   " : "FAILED   ") << "template " << e.target.template_id << " of "
              << e.target.subject_id << (e.done ? "" : ": " + e.error) << "\n";
  if (!sink)
    std::cerr << "faceguard: no --gallery given: the subject's templates go at the next "
                 "`faceguard retention run --gallery PATH`\n";
  return r->failures() ? kExitFailure : kExitOk;
}

void setup_consent(CLI::App& app) {
  auto args = std::make_shared<ConsentArgs>();
  auto* consent = app.add_subcommand("consent", "the consent registry: record, list and revoke consents");
  consent->require_subcommand(1);

  auto* add = consent->add_subcommand("add", "record a consent (BIPA written release, GDPR explicit consent, ...)");
  add->add_option("--subject", args->rec.subject_id, "who consented (the gallery subject id)")->required();
  add->add_option("--kind", args->rec.kind, "written_release, explicit, informed_notice, public_image, self_published_image")->required();
  add->add_option("--purpose", args->rec.purpose, "what for (the context purpose vocabulary, e.g. access_control)")->required();
  add->add_option("--term", args->rec.term, "how long, ISO 8601 duration (e.g. P3Y); default: until revoked");
  add->add_option("--evidence", args->evidence_file, "the signed release document: its SHA-256 is stored, never the file");
  add->add_option("--evidence-sha256", args->rec.evidence_sha256, "the release's SHA-256 (hex) when the file is elsewhere");
  add->add_option("--signed-at", args->signed_at, "when it was signed (ISO 8601; default: now)");
  add->add_option("--id", args->rec.id, "consent id (default: generated)");
  add->add_flag("--json", args->json, "print JSON");
  add_store_options(add, args->o);
  add->callback([args] { set_exit(run_add(*args)); });

  auto* list = consent->add_subcommand("list", "list consents");
  list->add_option("--subject", args->subject, "only this subject's");
  list->add_flag("--json", args->json, "print JSON");
  add_store_options(list, args->o);
  list->callback([args] { set_exit(run_list(*args)); });

  auto* revoke = consent->add_subcommand("revoke", "revoke a consent and erase the subject's templates");
  revoke->add_option("id", args->id, "consent id")->required();
  revoke->add_option("--at", args->revoked_at, "revocation time (ISO 8601; default: now)");
  revoke->add_option("--gallery", args->gallery, "gallery holding the subject's templates: erased now");
  revoke->add_option("--master-key-file", args->master_key_file, "the gallery's master key (default: $FACEGUARD_MASTER_KEY)");
  add_store_options(revoke, args->o);
  revoke->callback([args] { set_exit(run_revoke(*args)); });
}

Registrar registrar(62, setup_consent);

}  // namespace

}  // namespace faceguard::cli
