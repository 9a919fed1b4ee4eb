// POST /v1/detect and POST /v1/verify.
#include "faceguard/compare.hpp"
#include "faceguard/json.hpp"
#include "state.hpp"

namespace faceguard::server {
namespace {

json decision_json(const Authorization& auth) { return json::parse(decision_to_json(auth.decision)); }

}  // namespace

void register_recognition_routes(Service::State& st) {
  add_route(st, "POST", "/v1/detect", {ApiRole::kOperator, ApiRole::kAdmin},
            [&st](const HttpRequest& req, const ApiKeyInfo& who) -> HttpResponse {
              auto body = body_json(req);
              if (!body) return from_error(body.error());
              // Policy first: nothing is decoded before the decision.
              Authorization auth;
              if (auto refused = authorize(st, Operation::kDetect, who, *body, auth)) return *refused;
              auto bytes = image_bytes(req, *body, "image");
              if (!bytes) return from_error(bytes.error());
              // The worker does what a library caller does, decode + detect (the compute span); then, outside
              // that span but on the same worker, it builds the answer and its outcome record.
              std::optional<Result<std::vector<Face>>> faces;
              int width = 0, height = 0;
              std::optional<HttpResponse> answer;
              std::string timing;
              if (auto refused = compute_on_worker(
                      st,
                      [&](Pipeline& pipe) {
                        auto img = decode_upload(st, *bytes);
                        if (!img) return faces.emplace(img.error()), void();
                        width = img->cols;
                        height = img->rows;
                        faces.emplace(pipe.detect(*img));
                      },
                      &timing,
                      [&] {
                        if (!*faces) return answer.emplace(from_error(faces->error())), void();
                        json out = {{"faces", json::array()}, {"width", width}, {"height", height}};
                        for (const auto& f : **faces) out["faces"].push_back(to_json(f));
                        out["decision"] = decision_json(auth);
                        // Deferred like the decision (state.hpp); observed() waits for the decision's fdatasync.
                        log_failure(st, st.guard->record_outcome(auth, json({{"faces", (*faces)->size()}}).dump()));
                        answer.emplace(json_response(200, out));
                      }))
                return *refused;
              answer->headers.emplace_back("Server-Timing", timing);
              return std::move(*answer);
            });

  add_route(st, "POST", "/v1/verify", {ApiRole::kOperator, ApiRole::kAdmin},
            [&st](const HttpRequest& req, const ApiKeyInfo& who) -> HttpResponse {
              auto body = body_json(req);
              if (!body) return from_error(body.error());
              Authorization auth;
              if (auto refused = authorize(st, Operation::kVerify, who, *body, auth)) return *refused;
              auto a = image_bytes(req, *body, "a");
              if (!a) return from_error(a.error());
              auto b = image_bytes(req, *body, "b");
              if (!b) return from_error(b.error());
              // The worker decodes, detects and embeds (the compute span); then, outside that span on the same
              // worker, the comparison, obligations, result record and answer, as for detect.
              json out = json::object();
              Embedding emb[2];
              std::optional<HttpResponse> answer;
              std::string timing;
              auto respond = [&]() -> HttpResponse {
                auto cmp = compare(emb[0], emb[1]);
                if (!cmp) return from_error(cmp.error());
                auto guarded = st.guard->apply(auth, {MatchCandidate{"b", cmp->similarity}});
                if (!guarded) return from_error(guarded.error());
                out["distance"] = cmp->distance;
                out["similarity"] = cmp->similarity;
                out["threshold"] = cmp->threshold;
                // Obligations (minimum similarity, review) decide whether "same" may be asserted.
                const bool shown = !guarded->matches.empty();
                out["same"] = cmp->same && shown;
                out["review"] = shown ? std::string(to_string(guarded->matches[0].review)) : "not_required";
                if (shown) out["match_id"] = guarded->matches[0].match_id;
                out["notices"] = guarded->notices;
                out["decision"] = decision_json(auth);
                return json_response(200, out);
              };
              if (auto refused = compute_on_worker(
                      st,
                      [&](Pipeline& pipe) {
                        const std::string* inputs[2] = {&*a, &*b};
                        for (int i = 0; i < 2; ++i) {
                          const char* name = i == 0 ? "a" : "b";
                          auto img = decode_upload(st, *inputs[i]);
                          if (!img)
                            return answer.emplace(from_error(
                                       Error{img.error().code, std::string(name) + ": " + img.error().message})),
                                   void();
                          auto faces = pipe.analyze(*img);
                          if (!faces) return answer.emplace(from_error(faces.error())), void();
                          if (faces->empty())
                            return answer.emplace(error_response(422, "no_face", std::string("no face found in image '") +
                                                                                     name + "'")),
                                   void();
                          // The largest face is the subject of a 1:1 check; say which one was used.
                          std::size_t best = 0;
                          for (std::size_t k = 1; k < faces->size(); ++k)
                            if ((*faces)[k].face.box.area() > (*faces)[best].face.box.area()) best = k;
                          emb[i] = (*faces)[best].embedding;
                          out[name] = {{"faces", faces->size()}, {"used", to_json((*faces)[best].face)}};
                        }
                      },
                      &timing,
                      [&] {
                        if (!answer) answer.emplace(respond());
                      }))
                return *refused;
              answer->headers.emplace_back("Server-Timing", timing);
              return std::move(*answer);
            });
}

}  // namespace faceguard::server
