#include "service.hpp"

#include <sodium.h>

#include <chrono>
#include <cstdio>
#include <random>
#include <regex>
#include <sstream>

#include "faceguard/image.hpp"
#include "state.hpp"

namespace faceguard::server {

// ---------------------------------------------------------------- responses

HttpResponse json_response(int status, const json& body) {
  HttpResponse r;
  r.status = status;
  r.body = body.dump(-1, ' ', false, json::error_handler_t::replace);
  return r;
}

HttpResponse error_response(int status, const std::string& code, const std::string& message, const json& extra) {
  json e = {{"code", code}, {"message", message}};
  for (auto it = extra.begin(); it != extra.end(); ++it) e[it.key()] = it.value();
  return json_response(status, {{"error", e}});
}

int http_status_for(ErrorCode code) {
  switch (code) {
    case ErrorCode::kOk: return 200;
    case ErrorCode::kInvalidArgument: return 400;
    case ErrorCode::kNotFound: return 404;
    case ErrorCode::kConflict: return 409;
    case ErrorCode::kUnsupportedFormat: return 415;
    case ErrorCode::kImageTooLarge:
    case ErrorCode::kCorruptData:
    case ErrorCode::kNoFace:
    case ErrorCode::kMultipleFaces: return 422;
    case ErrorCode::kPolicyDenied:
    case ErrorCode::kPermissionDenied: return 403;
    case ErrorCode::kUnavailable: return 503;
    case ErrorCode::kIoError:
    case ErrorCode::kModelError:
    case ErrorCode::kInternal: return 500;
  }
  return 500;
}

HttpResponse from_error(const Error& e) {
  return error_response(http_status_for(e.code), std::string(to_string(e.code)), e.message);
}

HttpResponse internal_error(Service::State& st, const std::string& detail) {
  unsigned char b[6];
  randombytes_buf(b, sizeof b);
  char hex[13];
  sodium_bin2hex(hex, sizeof hex, b, sizeof b);
  const std::string id = std::string("err-") + hex;
  st.log("error " + id + ": " + detail);
  return error_response(500, "internal", "internal error; quote incident id " + id, {{"incident", id}});
}

// ---------------------------------------------------------------- requests

Result<json> body_json(const HttpRequest& req) {
  std::string text;
  if (req.content_type == "application/json") {
    text = req.body;
  } else if (req.content_type == "multipart/form-data") {
    if (const auto* p = req.part("json")) text = p->data;
    else if (const auto* c = req.part("context")) text = "{\"context\":" + c->data + "}";
    else return json::object();
  } else if (req.body.empty()) {
    return json::object();
  } else {
    return make_error(ErrorCode::kUnsupportedFormat,
                      "unsupported media type '" + req.content_type + "': send application/json or multipart/form-data");
  }
  if (text.empty()) return json::object();
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded()) return make_error(ErrorCode::kInvalidArgument, "malformed JSON body");
  if (!j.is_object()) return make_error(ErrorCode::kInvalidArgument, "the JSON body must be an object");
  return j;
}

Result<std::string> image_bytes(const HttpRequest& req, const json& body, const std::string& name) {
  if (const auto* p = req.part(name)) {
    if (!p->content_type.empty() && p->content_type.rfind("image/", 0) != 0 &&
        p->content_type != "application/octet-stream")
      return make_error(ErrorCode::kUnsupportedFormat,
                        "part '" + name + "' has media type '" + p->content_type + "'; send an image");
    return p->data;
  }
  if (body.contains(name)) {
    if (!body[name].is_string()) return make_error(ErrorCode::kInvalidArgument, "'" + name + "' must be a base64 string");
    std::string b64 = body[name].get<std::string>();
    // Accept data URLs ("data:image/jpeg;base64,....").
    if (b64.rfind("data:", 0) == 0) {
      auto comma = b64.find(',');
      if (comma == std::string::npos) return make_error(ErrorCode::kInvalidArgument, "malformed data URL in '" + name + "'");
      b64 = b64.substr(comma + 1);
    }
    std::string out(b64.size() * 3 / 4 + 3, '\0');
    std::size_t len = 0;
    if (sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), b64.data(), b64.size(), " \r\n",
                          &len, nullptr, sodium_base64_VARIANT_ORIGINAL) != 0)
      return make_error(ErrorCode::kInvalidArgument, "'" + name + "' is not valid base64");
    out.resize(len);
    return out;
  }
  return make_error(ErrorCode::kInvalidArgument,
                    "missing image '" + name + "' (multipart part or base64 JSON field)");
}

Result<cv::Mat> decode_upload(const Service::State& st, const std::string& bytes) {
  DecodeOptions opt;
  opt.max_pixels = st.cfg.max_pixels;
  opt.max_bytes = st.cfg.max_body_bytes;
  return decode_image(std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()),
                      opt);
}

Result<RequestContext> request_context(const Service::State& st, const ApiKeyInfo& who, const json& body) {
  RequestContext req;
  if (body.contains("context")) {
    if (!body["context"].is_object()) return make_error(ErrorCode::kInvalidArgument, "'context' must be an object");
    const auto& c = body["context"];
    if (c.contains("operator"))
      return make_error(ErrorCode::kInvalidArgument,
                        "'context.operator' is set by the API key, not by the request");
    FG_ASSIGN_OR_RETURN(req, parse_context_json(c.dump()));
  }
  req.op.id = who.operator_id;
  req.op.org = who.organisation;
  req.op.role = who.operator_kind;
  return merge_context(st.profile, req);
}

std::optional<HttpResponse> compute_on_worker(Service::State& st, std::function<void(Pipeline&)> compute,
                                              std::string* server_timing, std::function<void()> then) {
  if (!st.ready()) {
    auto r = error_response(503, "loading", st.load_failed ? "models failed to load: " + st.load_error()
                                                             : "models are still loading");
    r.headers.emplace_back("Retry-After", "2");
    return r;
  }
  // compute refers to the caller's stack (the request, its decoded body). A job still queued when the caller
  // gives up is cancelled before it can touch them (kQueued -> kCancelled); one already running is waited
  // for, since an inference cannot be interrupted and an enrolment it commits must be reported.
  enum : int { kQueued, kRunning, kCancelled };
  struct Ran {
    std::string error;  // an exception's message; empty when compute returned
    double queue_ms = 0, compute_ms = 0, respond_ms = 0;
    std::chrono::steady_clock::time_point done;
  };
  auto phase = std::make_shared<std::atomic<int>>(kQueued);
  const auto submitted = std::chrono::steady_clock::now();
  auto fut = st.pool->submit([&st, compute, then, phase, submitted](int worker) -> std::optional<Ran> {
    int expected = kQueued;
    if (!phase->compare_exchange_strong(expected, kRunning)) return std::nullopt;
    Ran ran;
    const auto started = std::chrono::steady_clock::now();
    try {
      compute(*st.pipelines[static_cast<std::size_t>(worker)]);
    } catch (const std::exception& e) {
      ran.error = e.what();
    } catch (...) {
      ran.error = "unknown exception";
    }
    const auto computed = std::chrono::steady_clock::now();
    if (then && ran.error.empty()) {
      try {
        then();
      } catch (const std::exception& e) {
        ran.error = e.what();
      } catch (...) {
        ran.error = "unknown exception";
      }
    }
    ran.done = std::chrono::steady_clock::now();
    ran.queue_ms = std::chrono::duration<double, std::milli>(started - submitted).count();
    ran.compute_ms = std::chrono::duration<double, std::milli>(computed - started).count();
    ran.respond_ms = std::chrono::duration<double, std::milli>(ran.done - computed).count();
    return ran;
  });
  if (!fut) {
    st.metrics.count_rejection("saturated");
    auto r = error_response(503, "saturated", "all workers are busy and the queue is full; retry shortly");
    r.headers.emplace_back("Retry-After", "1");
    return r;
  }
  if (fut->wait_for(std::chrono::milliseconds(st.cfg.request_timeout_ms)) != std::future_status::ready) {
    int expected = kQueued;
    if (phase->compare_exchange_strong(expected, kCancelled)) {
      st.metrics.count_rejection("timeout");
      auto r = error_response(503, "timeout", "the request waited " + std::to_string(st.cfg.request_timeout_ms) +
                                                  " ms for a worker; retry shortly");
      r.headers.emplace_back("Retry-After", "1");
      return r;
    }
  }
  auto ran = fut->get();
  if (!ran) return internal_error(st, "worker job cancelled after it started");
  if (!ran->error.empty()) return internal_error(st, "worker: " + ran->error);
  // Server-Timing (W3C): time waiting for a worker, time computing, and the hand-back (the worker's end to
  // this thread running again), so a client can tell the service's own cost from the models'.
  const double back_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - ran->done).count();
  char timing[160];
  if (then)
    std::snprintf(timing, sizeof timing, "queue;dur=%.2f, compute;dur=%.2f, respond;dur=%.2f, handback;dur=%.2f",
                  ran->queue_ms, ran->compute_ms, ran->respond_ms, back_ms);
  else
    std::snprintf(timing, sizeof timing, "queue;dur=%.2f, compute;dur=%.2f, handback;dur=%.2f", ran->queue_ms,
                  ran->compute_ms, back_ms);
  *server_timing = timing;
  return std::nullopt;
}

HttpResponse run_on_worker(Service::State& st, std::function<HttpResponse(Pipeline&)> fn) {
  std::optional<HttpResponse> out;
  std::string timing;
  if (auto refused = compute_on_worker(st, [&out, &fn](Pipeline& pipe) { out = fn(pipe); }, &timing)) return *refused;
  out->headers.emplace_back("Server-Timing", timing);
  return std::move(*out);
}

Result<GalleryRef> gallery_for(Service::State& st, const std::string& name, bool create) {
  static const std::regex kName("^[A-Za-z0-9_-]{1,64}$");
  if (!std::regex_match(name, kName))
    return make_error(ErrorCode::kInvalidArgument, "gallery names are 1-64 characters of A-Z a-z 0-9 _ -");
  std::lock_guard lock(st.galleries_mu);
  if (auto it = st.galleries.find(name); it != st.galleries.end()) {
    if (create) return make_error(ErrorCode::kConflict, "gallery '" + name + "' already exists");
    return it->second;
  }
  const auto path = st.gallery_dir() / (name + ".fgdb");
  std::error_code ec;
  const bool exists = std::filesystem::exists(path, ec);
  if (create && exists) return make_error(ErrorCode::kConflict, "gallery '" + name + "' already exists");
  if (!create && !exists) return make_error(ErrorCode::kNotFound, "no gallery '" + name + "'");
  if (st.master_key.empty())
    return make_error(ErrorCode::kUnavailable, "the service has no gallery master key (FACEGUARD_MASTER_KEY)");
  if (st.model_id.empty()) return make_error(ErrorCode::kUnavailable, "models are still loading");
  GalleryOptions opt;
  opt.master_key = st.master_key;
  opt.create = create;
  opt.model_id = st.model_id;
  opt.dim = st.dim;
  std::filesystem::create_directories(st.gallery_dir(), ec);
  FG_ASSIGN_OR_RETURN(auto g, Gallery::open(path, opt));
  GalleryRef ref(std::move(g));
  st.galleries.emplace(name, ref);
  return ref;
}

bool role_allows(ApiRole role, std::initializer_list<ApiRole> allowed) {
  for (auto r : allowed)
    if (r == role) return true;
  return false;
}

void record_request(Service::State& st, const HttpRequest& req, const std::string& route, int status,
                    const std::string& key_id, const std::string& operator_id, double seconds) {
  st.metrics.observe_request(req.method, route, status, seconds);
  if (!st.audit) return;
  json rec = {{"method", req.method}, {"route", route}, {"path", req.path}, {"status", status},
              {"key_id", key_id}, {"operator", operator_id}, {"remote", req.remote_addr},
              {"ms", std::round(seconds * 1e5) / 100}};
  if (auto a = st.audit->append("request", rec.dump(), AuditLog::Sync::kDeferred); !a)
    st.log("audit write failed: " + a.error().message);
}

namespace {

// The highest deferred decision record (authorize_deferred) of the request this I/O thread is handling: it
// must be on disk before the answer goes out. Handlers run on the thread that called observed().
thread_local std::uint64_t t_deferred_seq = 0;
// Time this request spent in authorize() (context, decision, decision record): Server-Timing "policy".
thread_local double t_policy_ms = 0;

// Every route goes through here: it is timed, counted, audited, and no exception escapes it.
Handler observed(Service::State& st, const std::string& method, const std::string& pattern,
                 std::function<HttpResponse(const HttpRequest&, std::string& key_id, std::string& operator_id)> fn) {
  return [&st, method, pattern, fn](const HttpRequest& req) -> HttpResponse {
    const auto t0 = std::chrono::steady_clock::now();
    HttpResponse res;
    std::string key_id = "-", operator_id = "-";
    t_deferred_seq = 0;
    t_policy_ms = 0;
    try {
      res = fn(req, key_id, operator_id);
    } catch (const std::exception& e) {
      res = internal_error(st, method + " " + pattern + ": " + e.what());
    } catch (...) {
      res = internal_error(st, method + " " + pattern + ": unknown exception");
    }
    if (res.status == 500) {
      // A library error that maps to 500 (I/O, model) gets an incident id too, logged with its message.
      json body = json::parse(res.body, nullptr, false);
      if (body.is_object() && body.contains("error") && !body["error"].contains("incident")) {
        const std::string detail = body["error"].value("message", std::string());
        const auto logged = internal_error(st, req.method + " " + req.path + ": " + detail);
        body["error"]["incident"] = json::parse(logged.body)["error"]["incident"];
        res.body = body.dump();
      }
    }
    // No answer before its deferred decision record is durable. Its fdatasync (group commit) started when it
    // was written, so after an inference this is usually already done.
    if (t_deferred_seq != 0) {
      if (auto s = st.audit->sync_through(std::exchange(t_deferred_seq, 0)); !s)
        res = internal_error(st, "the decision record could not be made durable: " + s.error().message);
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    record_request(st, req, pattern, res.status, key_id, operator_id, secs);
    // Server-Timing "handler": the whole handler, from the parsed request to the response object (before
    // the bytes are written), so a client can split its round trip into transport and service time.
    char total[80];
    if (t_policy_ms > 0) std::snprintf(total, sizeof total, "policy;dur=%.2f, handler;dur=%.2f", t_policy_ms, secs * 1e3);
    else std::snprintf(total, sizeof total, "handler;dur=%.2f", secs * 1e3);
    auto timing = std::find_if(res.headers.begin(), res.headers.end(), [](const auto& h) { return h.first == "Server-Timing"; });
    if (timing == res.headers.end()) res.headers.emplace_back("Server-Timing", total);
    else timing->second += std::string(", ") + total;
    return res;
  };
}

std::string api_key_of(const HttpRequest& req) {
  if (auto key = req.header("x-api-key"); !key.empty()) return key;
  const auto auth = req.header("authorization");
  if (auth.size() > 7 && (auth.rfind("Bearer ", 0) == 0 || auth.rfind("bearer ", 0) == 0)) return auth.substr(7);
  return {};
}

}  // namespace

void add_route(Service::State& st, const std::string& method, const std::string& pattern,
               std::initializer_list<ApiRole> roles, Authed handler) {
  std::vector<ApiRole> allowed(roles);
  st.http->route(method, pattern, observed(st, method, pattern,
      [&st, allowed, handler, method, pattern](const HttpRequest& req, std::string& key_id,
                                               std::string& operator_id) -> HttpResponse {
        const std::string key = api_key_of(req);
        if (key.empty()) {
          auto res = error_response(401, "unauthenticated", "an API key is required (Authorization: Bearer <key>)");
          res.headers.emplace_back("WWW-Authenticate", "Bearer");
          return res;
        }
        auto who = st.keys->authenticate(key);
        if (!who) {
          auto res = error_response(401, "unauthenticated", who.error().message);
          res.headers.emplace_back("WWW-Authenticate", "Bearer");
          return res;
        }
        key_id = who->id;
        operator_id = who->operator_id;
        bool allowed_role = false;
        for (auto r : allowed) allowed_role |= (r == who->role);
        if (!allowed_role)
          return error_response(403, "forbidden", "role '" + std::string(to_string(who->role)) + "' may not call " +
                                                      method + " " + pattern);
        double retry = 0;
        if (!st.limiter.allow(who->id, who->requests_per_second, who->burst, &retry)) {
          st.metrics.count_rejection("rate_limited");
          auto res = error_response(429, "rate_limited", "rate limit exceeded for this API key");
          res.headers.emplace_back("Retry-After", std::to_string(std::max(1, static_cast<int>(std::ceil(retry)))));
          return res;
        }
        return handler(req, *who);
      }));
}

std::optional<HttpResponse> authorize(Service::State& st, Operation op, const ApiKeyInfo& who, const json& body,
                                      Authorization& out, const std::string& gallery, const std::string& subject) {
  struct Timed {
    std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now();
    ~Timed() { t_policy_ms += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count(); }
  } timed;
  auto ctx = request_context(st, who, body);
  if (!ctx) return from_error(ctx.error());
  if (!gallery.empty()) ctx->gallery_id = gallery;
  if (!subject.empty()) ctx->subject_id = subject;
  // An answer-only operation (PolicyGuard::may_defer; here detect, verify, identify): its decision record is
  // synced in the background while it runs, and waited for before the answer (authorize_deferred, observed()).
  const bool defer = PolicyGuard::may_defer(op);
  auto auth = defer ? st.guard->authorize_deferred(op, *ctx) : st.guard->authorize(op, *ctx);
  if (auth) {
    if (defer) t_deferred_seq = auth->audit_seq;
    st.metrics.count_decision(std::string(to_string(auth->decision.effect)));
    out = std::move(*auth);
    return std::nullopt;
  }
  if (auth.error().code != ErrorCode::kPolicyDenied) return from_error(auth.error());
  st.metrics.count_decision(std::string(to_string(Effect::kDeny)));
  // The guard says "denied by <rule> (<citation>): <title>"; the body names them as fields too. Decide again
  // on the context the guard saw (the consent registry, not the request, states what a consent covers).
  RequestContext c = *ctx;
  c.operation = op;
  if (c.consent && !c.consent->id.empty()) {
    auto rec = st.consents->get(c.consent->id);
    if (rec && (c.subject_id.empty() || rec->subject_id == c.subject_id)) c.consent = rec->as_context();
    else c.consent = Consent{c.consent->id, {}, {}, {}, std::nullopt, std::nullopt};
  }
  const Decision d = st.policy->decide(c);
  json extra = json::object();
  if (const auto* r = d.first_deny()) {
    extra["rule"] = r->id;
    extra["citation"] = r->citation;
    extra["pack"] = r->pack;
    extra["title"] = r->title;
    if (!r->missing.empty()) extra["missing"] = r->missing;
  }
  extra["decision"] = json::parse(decision_to_json(d));
  return error_response(403, "policy_denied", auth.error().message, extra);
}

// ---------------------------------------------------------------- lifecycle

Service::Service(std::unique_ptr<State> state) : state_(std::move(state)) {}

Service::~Service() {
  stop();
  wait();
}

int Service::port() const { return state_->cfg.port; }

std::vector<std::pair<std::string, std::string>> Service::routes() const { return state_->http->routes(); }

namespace {

void open_route(Service::State& st, const std::string& method, const std::string& pattern,
                std::function<HttpResponse(const HttpRequest&)> fn) {
  st.http->route(method, pattern,
                 observed(st, method, pattern, [fn](const HttpRequest& req, std::string&, std::string&) { return fn(req); }));
}

void register_open_routes(Service::State& st) {
  // Liveness and readiness: 503 "loading" until every worker has its models, so a load balancer holds
  // traffic back until the service can answer.
  open_route(st, "GET", "/health", [&st](const HttpRequest&) {
    if (st.load_failed) return error_response(503, "failed", "models failed to load: " + st.load_error());
    if (!st.ready()) {
      auto r = json_response(503, {{"status", "loading"}, {"workers_ready", st.pipelines_ready.load()},
                                   {"workers", st.cfg.workers}});
      r.headers.emplace_back("Retry-After", "1");
      return r;
    }
    return json_response(200, {{"status", "ok"}, {"model_id", st.model_id}, {"workers", st.pipelines.size()},
                               {"queued", st.pool->queued()}, {"busy", st.pool->busy()}});
  });
  open_route(st, "GET", "/metrics", [&st](const HttpRequest&) {
    {
      std::lock_guard lock(st.galleries_mu);
      for (auto& [name, g] : st.galleries)
        if (auto s = g->stats()) st.metrics.set_gallery_size(name, static_cast<double>(s->templates));
    }
    if (st.pool) {
      st.metrics.set_gauge("faceguard_worker_queue_depth", static_cast<double>(st.pool->queued()));
      st.metrics.set_gauge("faceguard_workers_busy", st.pool->busy());
    }
    st.metrics.set_gauge("faceguard_workers_ready", st.pipelines_ready.load());
    HttpResponse r;
    r.content_type = "text/plain; version=0.0.4";
    r.body = st.metrics.render();
    return r;
  });
  open_route(st, "GET", "/openapi.json", [](const HttpRequest&) {
    HttpResponse r;
    r.body = openapi_document();
    return r;
  });
  st.http->fallback(observed(st, "*", "(unmatched)", [](const HttpRequest& req, std::string&, std::string&) {
    if (req.header("x-faceguard-method-mismatch") == "1") {
      auto r = error_response(405, "method_not_allowed", req.method + " is not allowed on " + req.path);
      return r;
    }
    return error_response(404, "not_found", "no route " + req.method + " " + req.path);
  }));
  st.http->rejected([&st](const HttpRequest& req, const HttpResponse& res) {
    record_request(st, req, "(rejected)", res.status, "-", "-", 0);
  });
}

}  // namespace

Result<std::unique_ptr<Service>> Service::create(const ServiceConfig& config) {
  auto st = std::make_unique<State>();
  st->cfg = config;
  auto& cfg = st->cfg;
  if (cfg.data_dir.empty()) return make_error(ErrorCode::kInvalidArgument, "serve: a data directory is required");
  std::error_code ec;
  std::filesystem::create_directories(cfg.data_dir, ec);
  if (ec) return make_error(ErrorCode::kIoError, "cannot create " + cfg.data_dir.string() + ": " + ec.message());
  if (cfg.keys_db.empty()) cfg.keys_db = cfg.data_dir / "keys.db";
  if (cfg.workers <= 0) cfg.workers = std::max(1u, std::thread::hardware_concurrency());
  // Bounded, never unbounded: 8 jobs per worker is at most ~8 inference times of waiting (about a second for
  // verify on this machine) before a client is told 503 + Retry-After instead.
  if (cfg.queue <= 0) cfg.queue = 8 * cfg.workers;

  FG_ASSIGN_OR_RETURN(st->keys, ApiKeyStore::open(cfg.keys_db));

  if (cfg.profile.empty())
    return make_error(ErrorCode::kInvalidArgument,
                      "serve: a deployment profile is required (--profile FILE): without one no policy decision "
                      "can be made, and faceguard does not default to allow");
  FG_ASSIGN_OR_RETURN(st->profile, load_profile(cfg.profile));
  std::vector<std::filesystem::path> dirs = cfg.policy_dirs;
  if (!st->profile.policy_dir.empty()) dirs.push_back(st->profile.policy_dir);
  std::filesystem::path exe = cfg.executable;
  if (exe.empty()) exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  FG_ASSIGN_OR_RETURN(auto search, policy_search_path(dirs, exe, cfg.source_dir));
  FG_ASSIGN_OR_RETURN(auto engine, PolicyEngine::load(search));
  st->policy.emplace(std::move(engine));

  AuditOptions aopt;
  aopt.sync = cfg.fsync_audit;
  aopt.group_commit = true;  // state.hpp: what must be durable before an answer, and what follows it
  if (!st->profile.audit_key.empty()) aopt.signing_key = st->profile.audit_key;
  if (st->profile.checkpoint_every > 0) aopt.checkpoint_every = st->profile.checkpoint_every;
  const std::filesystem::path audit_path =
      st->profile.audit_log.empty() ? cfg.data_dir / "audit.jsonl" : std::filesystem::path(st->profile.audit_log);
  FG_ASSIGN_OR_RETURN(auto audit, AuditLog::open(audit_path, aopt));
  st->audit.emplace(std::move(audit));
  const std::filesystem::path consent_path =
      st->profile.consent_db.empty() ? cfg.data_dir / "consent.db" : std::filesystem::path(st->profile.consent_db);
  FG_ASSIGN_OR_RETURN(auto consents, ConsentRegistry::open(consent_path));
  st->consents.emplace(std::move(consents));
  st->guard = std::make_unique<PolicyGuard>(*st->policy, &*st->audit, &*st->consents);

  if (!cfg.master_key_hex.empty()) {
    FG_ASSIGN_OR_RETURN(st->master_key, parse_secret_key(cfg.master_key_hex));
  } else if (!cfg.master_key_file.empty()) {
    FG_ASSIGN_OR_RETURN(st->master_key, load_secret_key(cfg.master_key_file));
  } else if (auto k = master_key_from_env()) {
    st->master_key = *k;
  }

  FG_ASSIGN_OR_RETURN(auto pack, ModelPack::open(cfg.model_dir.empty() ? default_model_dir() : cfg.model_dir));
  st->models.emplace(std::move(pack));

  HttpServerOptions hopt;
  hopt.host = cfg.host;
  hopt.port = cfg.port;
  hopt.max_body_bytes = cfg.max_body_bytes;
  hopt.io_threads = cfg.io_threads;
  st->http = HttpServer::create(hopt);
  register_open_routes(*st);
  register_recognition_routes(*st);
  register_gallery_routes(*st);
  register_governance_routes(*st);
  FG_ASSIGN_OR_RETURN(int port, st->http->bind());
  cfg.port = port;
  return std::unique_ptr<Service>(new Service(std::move(st)));
}

Status Service::start() {
  auto& st = *state_;
  st.pipelines.resize(static_cast<std::size_t>(st.cfg.workers));
  State* sp = &st;
  st.pool = std::make_unique<WorkerPool>(st.cfg.workers, static_cast<std::size_t>(st.cfg.queue), [sp](int w) {
    PipelineOptions opt;
    opt.detector.threads = 1;  // one inference thread per worker: the workers are the parallelism
    opt.embedder.threads = 1;
    auto p = Pipeline::create(*sp->models, opt);
    if (!p) {
      sp->fail_loading(p.error().message);
      return;
    }
    if (w == 0) {
      // The template size, measured rather than assumed: embed one grey chip.
      const int side = (*p)->embedder().chip_size();
      auto probe = (*p)->embedder().embed(cv::Mat(side, side, CV_8UC3, cv::Scalar(128, 128, 128)));
      if (!probe) {
        sp->fail_loading(probe.error().message);
        return;
      }
      sp->dim = static_cast<int>(probe->values.size());
      sp->model_id = (*p)->embedder().model_id();
    }
    sp->pipelines[static_cast<std::size_t>(w)] = std::move(*p);
    ++sp->pipelines_ready;
  });
  st.runner = std::thread([sp] { sp->http->run(); });
  // stop() before the accept loop has started would be lost (httplib ignores it), so wait for it.
  for (int i = 0; i < 5000 && !st.http->running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  if (!st.http->running()) return make_error(ErrorCode::kIoError, "the HTTP server did not start");
  st.log("faceguard service listening on http://" + st.cfg.host + ":" + std::to_string(st.cfg.port));
  return {};
}

void Service::wait() {
  if (state_->runner.joinable()) state_->runner.join();
}

void Service::stop() {
  auto& st = *state_;
  if (st.stopping.exchange(true)) return;
  st.log("shutting down: finishing in-flight requests");
  if (st.http) st.http->stop();
  if (st.runner.joinable()) st.runner.join();
  if (st.pool) st.pool->shutdown();
  std::lock_guard lock(st.galleries_mu);
  st.galleries.clear();
}

}  // namespace faceguard::server
