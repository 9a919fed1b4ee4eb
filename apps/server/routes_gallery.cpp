// Galleries, subjects, enrolment and 1:N identification.
#include <sodium.h>

#include <algorithm>
#include <cmath>

#include "faceguard/compare.hpp"
#include "faceguard/json.hpp"
#include "state.hpp"

namespace faceguard::server {
namespace {

std::string sha256_hex(const std::string& bytes) {
  unsigned char h[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(h, reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
  char hex[2 * sizeof h + 1];
  sodium_bin2hex(hex, sizeof hex, h, sizeof h);
  return hex;
}

json subject_json(const SubjectInfo& s, bool with_templates) {
  json j = {{"subject_id", s.subject_id}, {"display_name", s.display_name}, {"created_at", s.created_at},
            {"templates", s.templates.size()}};
  json md = json::parse(s.metadata_json, nullptr, false);
  j["metadata"] = md.is_discarded() ? json::object() : md;
  if (with_templates) {
    j["faces"] = json::array();
    for (const auto& t : s.templates) {
      json tj = {{"template_id", t.id}, {"model_id", t.model_id}, {"created_at", t.created_at},
                 {"source_sha256", t.source_sha256}};
      if (t.retain_until) tj["retain_until"] = *t.retain_until;
      if (!t.consent_id.empty()) tj["consent_id"] = t.consent_id;
      j["faces"].push_back(tj);
    }
  }
  return j;
}

}  // namespace

void register_gallery_routes(Service::State& st) {
  using R = ApiRole;

  add_route(st, "POST", "/v1/galleries", {R::kAdmin}, [&st](const HttpRequest& req, const ApiKeyInfo&) {
    auto body = body_json(req);
    if (!body) return from_error(body.error());
    if (!body->contains("name") || !(*body)["name"].is_string())
      return error_response(400, "invalid_argument", "'name' (string) is required");
    auto g = gallery_for(st, (*body)["name"].get<std::string>(), true);
    if (!g) return from_error(g.error());
    return json_response(201, {{"name", (*body)["name"]}, {"model_id", (*g)->model_id()}, {"dim", (*g)->dim()}});
  });

  add_route(st, "GET", "/v1/galleries", {R::kAdmin, R::kOperator}, [&st](const HttpRequest&, const ApiKeyInfo&) {
    json out = json::array();
    std::error_code ec;
    if (std::filesystem::is_directory(st.gallery_dir(), ec))
      for (const auto& e : std::filesystem::directory_iterator(st.gallery_dir(), ec))
        if (e.path().extension() == ".fgdb") out.push_back(e.path().stem().string());
    std::sort(out.begin(), out.end());
    return json_response(200, {{"galleries", out}});
  });

  add_route(st, "GET", "/v1/galleries/{g}", {R::kAdmin, R::kOperator}, [&st](const HttpRequest& req, const ApiKeyInfo&) {
    auto g = gallery_for(st, req.params[0], false);
    if (!g) return from_error(g.error());
    auto s = (*g)->stats();
    if (!s) return from_error(s.error());
    return json_response(200, {{"name", req.params[0]}, {"model_id", s->model_id}, {"dim", s->dim},
                               {"subjects", s->subjects}, {"templates", s->templates},
                               {"index", std::string(to_string(s->index))}, {"file_bytes", s->file_bytes},
                               {"calibration", s->calibration_source}});
  });

  add_route(st, "GET", "/v1/galleries/{g}/subjects", {R::kAdmin, R::kOperator},
            [&st](const HttpRequest& req, const ApiKeyInfo&) {
              auto g = gallery_for(st, req.params[0], false);
              if (!g) return from_error(g.error());
              auto list = (*g)->list();
              if (!list) return from_error(list.error());
              json out = json::array();
              for (const auto& s : *list) out.push_back(subject_json(s, false));
              return json_response(200, {{"subjects", out}});
            });

  add_route(st, "GET", "/v1/galleries/{g}/subjects/{s}", {R::kAdmin, R::kOperator},
            [&st](const HttpRequest& req, const ApiKeyInfo&) {
              auto g = gallery_for(st, req.params[0], false);
              if (!g) return from_error(g.error());
              auto s = (*g)->show(req.params[1]);
              if (!s) return from_error(s.error());
              return json_response(200, subject_json(*s, true));
            });

  // Enrol: one or more images of one subject (multipart parts "image", "image2", ... or JSON "images": [b64]).
  add_route(st, "POST", "/v1/galleries/{g}/subjects", {R::kAdmin, R::kOperator},
            [&st](const HttpRequest& req, const ApiKeyInfo& who) -> HttpResponse {
              auto body = body_json(req);
              if (!body) return from_error(body.error());
              const std::string sid = body->value("subject_id", std::string());
              if (sid.empty()) return error_response(400, "invalid_argument", "'subject_id' is required");
              auto g = gallery_for(st, req.params[0], false);
              if (!g) return from_error(g.error());
              Authorization auth;
              if (auto refused = authorize(st, Operation::kEnroll, who, *body, auth, req.params[0], sid)) return *refused;
              std::vector<std::string> images;
              for (const auto& p : req.parts)
                if (p.name.rfind("image", 0) == 0) images.push_back(p.data);
              if (body->contains("images")) {
                if (!(*body)["images"].is_array())
                  return error_response(400, "invalid_argument", "'images' must be a list of base64 strings");
                for (std::size_t i = 0; i < (*body)["images"].size(); ++i) {
                  json one = {{"x", (*body)["images"][i]}};
                  auto b = image_bytes(req, one, "x");
                  if (!b) return from_error(b.error());
                  images.push_back(std::move(*b));
                }
              } else if (body->contains("image")) {
                auto b = image_bytes(req, *body, "image");
                if (!b) return from_error(b.error());
                images.push_back(std::move(*b));
              }
              if (images.empty()) return error_response(400, "invalid_argument", "no image to enrol");
              // The consent the templates rest on and their erase-by deadline (shortest of the policy's
              // retention and the consent's term); a required consent that is missing or lapsed is a 403.
              auto binding = template_binding(auth);
              if (!binding) return from_error(binding.error());
              GalleryRef gal = *g;
              return run_on_worker(st, [&](Pipeline& pipe) -> HttpResponse {
                std::vector<TemplateInput> templates;
                for (std::size_t i = 0; i < images.size(); ++i) {
                  auto img = decode_upload(st, images[i]);
                  if (!img) return from_error(Error{img.error().code, "image " + std::to_string(i + 1) + ": " + img.error().message});
                  auto faces = pipe.analyze(*img);
                  if (!faces) return from_error(faces.error());
                  if (faces->size() != 1)
                    return error_response(422, faces->empty() ? "no_face" : "multiple_faces",
                                          "image " + std::to_string(i + 1) + " holds " + std::to_string(faces->size()) +
                                              " faces; enrolment needs exactly one");
                  TemplateInput t;
                  t.embedding = (*faces)[0].embedding;
                  t.source_sha256 = sha256_hex(images[i]);
                  t.consent_id = binding->consent_id;
                  if (binding->retain_until) t.retain_until = binding->retain_until->time_since_epoch().count();
                  templates.push_back(std::move(t));
                }
                SubjectInput subject{sid, body->value("display_name", sid), (*body).contains("metadata") ? (*body)["metadata"].dump() : "{}"};
                auto r = gal->enroll(subject, templates);
                if (!r) return from_error(r.error());
                log_failure(st, st.guard->record_outcome(auth, json({{"gallery", req.params[0]}, {"subject_id", sid},
                                                            {"templates", r->template_ids.size()}}).dump()));
                return json_response(r->created ? 201 : 200,
                                     {{"subject_id", r->subject_id}, {"created", r->created}, {"template_ids", r->template_ids}});
              });
            });

  add_route(st, "DELETE", "/v1/galleries/{g}/subjects/{s}", {R::kAdmin},
            [&st](const HttpRequest& req, const ApiKeyInfo& who) -> HttpResponse {
              auto body = body_json(req);
              if (!body) return from_error(body.error());
              auto g = gallery_for(st, req.params[0], false);
              if (!g) return from_error(g.error());
              Authorization auth;
              if (auto refused = authorize(st, Operation::kDelete, who, *body, auth, req.params[0], req.params[1]))
                return *refused;
              auto r = (*g)->remove(req.params[1]);
              if (!r) return from_error(r.error());
              log_failure(st, st.guard->record_outcome(auth, json({{"gallery", req.params[0]}, {"subject_id", r->subject_id},
                                                          {"templates_deleted", r->templates_deleted},
                                                          {"key_destroyed", r->key_destroyed}}).dump()));
              return json_response(200, {{"subject_id", r->subject_id}, {"templates_deleted", r->templates_deleted},
                                         {"key_destroyed", r->key_destroyed}});
            });

  // One face (template) of a subject; the subject goes with its last face, and its data key with it.
  add_route(st, "DELETE", "/v1/galleries/{g}/subjects/{s}/faces/{t}", {R::kAdmin},
            [&st](const HttpRequest& req, const ApiKeyInfo& who) -> HttpResponse {
              auto body = body_json(req);
              if (!body) return from_error(body.error());
              auto g = gallery_for(st, req.params[0], false);
              if (!g) return from_error(g.error());
              std::int64_t tid = 0;
              try {
                std::size_t used = 0;
                tid = std::stoll(req.params[2], &used);
                if (used != req.params[2].size()) throw std::invalid_argument("trailing");
              } catch (const std::exception&) {
                return error_response(400, "invalid_argument", "a face id is an integer (see GET .../subjects/{s})");
              }
              auto subject = (*g)->show(req.params[1]);
              if (!subject) return from_error(subject.error());
              const bool owned = std::any_of(subject->templates.begin(), subject->templates.end(),
                                             [&](const TemplateInfo& t) { return t.id == tid; });
              if (!owned)
                return error_response(404, "not_found", "subject '" + req.params[1] + "' has no face " + req.params[2]);
              Authorization auth;
              if (auto refused = authorize(st, Operation::kDelete, who, *body, auth, req.params[0], req.params[1]))
                return *refused;
              auto r = (*g)->remove_template(tid);
              if (!r) return from_error(r.error());
              log_failure(st, st.guard->record_outcome(auth, json({{"gallery", req.params[0]}, {"subject_id", req.params[1]},
                                                                    {"template_id", tid}, {"key_destroyed", r->key_destroyed}}).dump()));
              return json_response(200, {{"subject_id", req.params[1]}, {"template_id", tid},
                                         {"subject_deleted", r->key_destroyed}, {"key_destroyed", r->key_destroyed}});
            });

  // A whole gallery: every subject is deleted as above (its data key destroyed), then the files go.
  add_route(st, "DELETE", "/v1/galleries/{g}", {R::kAdmin},
            [&st](const HttpRequest& req, const ApiKeyInfo& who) -> HttpResponse {
              auto body = body_json(req);
              if (!body) return from_error(body.error());
              auto g = gallery_for(st, req.params[0], false);
              if (!g) return from_error(g.error());
              Authorization auth;
              if (auto refused = authorize(st, Operation::kDelete, who, *body, auth, req.params[0])) return *refused;
              auto subjects = (*g)->list();
              if (!subjects) return from_error(subjects.error());
              int templates = 0;
              for (const auto& s : *subjects) {
                auto r = (*g)->remove(s.subject_id);
                if (!r && r.error().code != ErrorCode::kNotFound) return from_error(r.error());
                if (r) templates += r->templates_deleted;
              }
              {
                // Under the lock so that no request reopens the files between the erase and the unlink.
                std::lock_guard lock(st.galleries_mu);
                st.galleries.erase(req.params[0]);
                g->reset();  // closes it unless a request in flight still holds it (it then sees no subjects)
                const auto path = st.gallery_dir() / (req.params[0] + ".fgdb");
                std::error_code ec;
                for (const char* suffix : {"", "-wal", "-shm", ".keys", ".keys-wal", ".keys-shm"})
                  std::filesystem::remove(path.string() + suffix, ec);
              }
              log_failure(st, st.guard->record_outcome(auth, json({{"gallery", req.params[0]}, {"subjects_deleted", subjects->size()},
                                                                    {"templates_deleted", templates}}).dump()));
              return json_response(200, {{"name", req.params[0]}, {"subjects_deleted", subjects->size()},
                                         {"templates_deleted", templates}});
            });

  // Identify every face in the image against the gallery; obligations applied per face.
  add_route(st, "POST", "/v1/galleries/{g}/identify", {R::kOperator, R::kAdmin},
            [&st](const HttpRequest& req, const ApiKeyInfo& who) -> HttpResponse {
              auto body = body_json(req);
              if (!body) return from_error(body.error());
              auto g = gallery_for(st, req.params[0], false);
              if (!g) return from_error(g.error());
              Authorization auth;
              if (auto refused = authorize(st, Operation::kIdentify, who, *body, auth, req.params[0])) return *refused;
              auto bytes = image_bytes(req, *body, "image");
              if (!bytes) return from_error(bytes.error());
              IdentifyOptions opt;
              opt.top_k = std::clamp(body->value("top_k", 5), 1, 100);
              if (body->contains("target_fmr")) opt.target_fmr = body->value("target_fmr", 1e-3);
              GalleryRef gal = *g;
              const Metric metric = metric_for(gal->model_id());
              const float model_threshold = default_threshold(gal->model_id());
              // The worker decodes, analyses and searches (the compute span); then, outside that span on the same
              // worker, the obligations, result records and answer, as for detect.
              std::vector<std::pair<AnalyzedFace, Identification>> found;
              std::optional<Error> failed;
              std::optional<HttpResponse> answer;
              std::string timing;
              auto respond = [&]() -> HttpResponse {
                if (failed) return from_error(*failed);
                const std::string input = sha256_hex(*bytes);
                json out = {{"faces", json::array()}};
                for (const auto& [f, id] : found) {
                  std::vector<MatchCandidate> cands;
                  // An uncalibrated gallery (no measured FMR table) has only a cosine threshold derived from the
                  // model's 1:1 threshold on the assumption of unit-length templates, which face-api's
                  // descriptors are not (impostors score 0.87-0.89 against its 0.82). Then the model's own
                  // documented 1:1 threshold, as compare() applies it, must also pass.
                  const bool calibrated = id.fmr > 0;
                  for (const auto& c : id.candidates) {
                    if (c.score < id.threshold) continue;  // open set: below threshold is "unknown"
                    // Gallery scores are cosine; policy minimums (min_similarity) are in compare() similarity,
                    // so report each candidate on that scale: the distance compare() would have measured.
                    const float distance = metric == Metric::kCosine ? 1.f - c.score : c.distance;
                    const float similarity = similarity_from_distance(distance, model_threshold, metric);
                    if (!calibrated && !(distance < model_threshold)) continue;
                    cands.push_back({c.subject_id, similarity});
                  }
                  auto guarded = st.guard->apply(auth, cands, input);
                  if (!guarded) return from_error(guarded.error());
                  json fj = to_json(f.face);
                  fj["known"] = !guarded->matches.empty();
                  fj["threshold"] = id.threshold;
                  fj["fmr"] = id.fmr;
                  fj["calibrated"] = calibrated;
                  fj["matches"] = json::array();
                  for (const auto& m : guarded->matches) {
                    json mj = {{"subject_id", m.subject_id}, {"similarity", m.similarity}, {"match_id", m.match_id},
                               {"review", std::string(to_string(m.review))}};
                    for (const auto& c : id.candidates)
                      if (c.subject_id == m.subject_id) mj["score"] = c.score, mj["display_name"] = c.display_name;
                    fj["matches"].push_back(mj);
                  }
                  fj["notices"] = guarded->notices;
                  out["faces"].push_back(fj);
                }
                out["decision"] = json::parse(decision_to_json(auth.decision));
                return json_response(200, out);
              };
              if (auto refused = compute_on_worker(
                      st,
                      [&](Pipeline& pipe) {
                        auto img = decode_upload(st, *bytes);
                        if (!img) return failed.emplace(img.error()), void();
                        auto faces = pipe.analyze(*img);
                        if (!faces) return failed.emplace(faces.error()), void();
                        for (auto& f : *faces) {
                          auto id = gal->identify(f.embedding, opt);
                          if (!id) return failed.emplace(id.error()), void();
                          found.emplace_back(std::move(f), std::move(*id));
                        }
                      },
                      &timing, [&] { answer.emplace(respond()); }))
                return *refused;
              answer->headers.emplace_back("Server-Timing", timing);
              return std::move(*answer);
            });
}

}  // namespace faceguard::server
