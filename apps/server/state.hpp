// Private to the service: the state shared by the route files, and helpers they all use.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>

#include "faceguard/apikeys.hpp"
#include "faceguard/audit.hpp"
#include "faceguard/consent.hpp"
#include "faceguard/gallery.hpp"
#include "faceguard/models.hpp"
#include "faceguard/pipeline.hpp"
#include "faceguard/policy.hpp"
#include "http.hpp"
#include "metrics.hpp"
#include "rate_limiter.hpp"
#include "service.hpp"
#include "worker_pool.hpp"

namespace faceguard::server {

using nlohmann::json;

struct Service::State {
  ServiceConfig cfg;
  std::unique_ptr<HttpServer> http;
  std::unique_ptr<ApiKeyStore> keys;
  std::optional<PolicyEngine> policy;
  DeploymentProfile profile;
  // The trail, with group commit (AuditOptions::group_commit: a background fdatasync). Enrol/delete decisions
  // are durable before the gallery changes. The decision of a detect, verify or identify is written at once
  // and its fdatasync starts then, overlapping the inference; the answer waits for it (observed() ->
  // sync_through). Their result/outcome records and every request's access record ("request") are written
  // before the response and reach the disk about one fdatasync later (a result with matches pending human
  // review is durable before the answer): a process crash loses none, a power loss may lose the last few
  // milliseconds' outcome and access records, never a decision that was answered.
  std::optional<AuditLog> audit;
  std::optional<ConsentRegistry> consents;
  std::unique_ptr<PolicyGuard> guard;
  SecretKey master_key;
  std::optional<ModelPack> models;
  std::string model_id;  // the embedder's, once loaded
  int dim = 0;

  // One Pipeline per compute worker, created on that worker's thread.
  std::vector<std::unique_ptr<Pipeline>> pipelines;
  std::atomic<int> pipelines_ready{0};
  std::atomic<bool> load_failed{false};
  mutable std::mutex load_mu;
  std::string load_error_;
  void fail_loading(const std::string& why) {
    std::lock_guard lock(load_mu);
    if (load_error_.empty()) load_error_ = why;
    load_failed = true;
  }
  std::string load_error() const {
    std::lock_guard lock(load_mu);
    return load_error_;
  }
  std::unique_ptr<WorkerPool> pool;

  std::mutex galleries_mu;
  // Shared: a request keeps its gallery alive even if DELETE /v1/galleries/{g} closes it meanwhile.
  std::map<std::string, std::shared_ptr<Gallery>> galleries;

  Metrics metrics;
  RateLimiter limiter;
  std::atomic<std::uint64_t> request_counter{0};
  std::thread runner;
  std::atomic<bool> stopping{false};

  bool ready() const { return pipelines_ready.load() == static_cast<int>(pipelines.size()) && !pipelines.empty(); }
  void log(const std::string& line) const {
    if (cfg.log) cfg.log(line);
  }
  std::filesystem::path gallery_dir() const { return cfg.data_dir / "galleries"; }
};

// ---- responses ----
HttpResponse json_response(int status, const json& body);
HttpResponse error_response(int status, const std::string& code, const std::string& message,
                            const json& extra = json::object());
// Maps a library error to its HTTP status (400/403/404/409/413/415/422/500/503).
int http_status_for(ErrorCode code);
HttpResponse from_error(const Error& e);
// Logs a failed audit write that follows a committed operation (the operation is not undone).
inline void log_failure(const Service::State& st, const Status& s) {
  if (!s) st.log("audit write failed: " + s.error().message);
}
// A 500 with a fresh incident id, logged with its detail.
HttpResponse internal_error(Service::State& st, const std::string& detail);

// ---- requests ----
// The JSON body (or the "json" field of a multipart form) as an object; kInvalidArgument when malformed.
Result<json> body_json(const HttpRequest& req);
// An uploaded image: multipart part `name`, or base64 in JSON field `name`. kInvalidArgument when absent.
Result<std::string> image_bytes(const HttpRequest& req, const json& body, const std::string& name);
Result<cv::Mat> decode_upload(const Service::State& st, const std::string& bytes);

// The policy context: deployment profile + the key's identity + the request's "context" object.
Result<RequestContext> request_context(const Service::State& st, const ApiKeyInfo& who, const json& body);

// The policy gate of a face operation: nullopt and `out` filled when allowed; otherwise the response to send
// (403 policy_denied naming the rule, its citation and the decision; 400 for a bad context). The decision
// record is in the audit trail either way.
std::optional<HttpResponse> authorize(Service::State& st, Operation op, const ApiKeyInfo& who, const json& body,
                                      Authorization& out, const std::string& gallery = {},
                                      const std::string& subject = {});

// Metrics + the "request" audit record of one request.
void record_request(Service::State& st, const HttpRequest& req, const std::string& route, int status,
                    const std::string& key_id, const std::string& operator_id, double seconds);

// Run fn on a compute worker with its Pipeline; 503 + Retry-After when saturated or when no worker took
// it within the request timeout. Server-Timing's compute span is all of fn.
HttpResponse run_on_worker(Service::State& st, std::function<HttpResponse(Pipeline&)> fn);
// The same for a computation that leaves its results in the caller's variables, so that building the answer
// and auditing it happen outside the compute span (the library-call part is then exactly `compute`).
// nullopt when it ran (*server_timing = "queue;dur=.., compute;dur=.., respond;dur=.., handback;dur=.."); else
// the response to send (503, 500). `then`, when given, runs on the same worker right after compute, outside
// its span (Server-Timing "respond"): building the answer and its audit records there, on a thread that is
// running, instead of on the request thread after it slept through the inference (a thread that has slept
// ~100 ms runs its next 100 us of work several times slower on this VM).
std::optional<HttpResponse> compute_on_worker(Service::State& st, std::function<void(Pipeline&)> compute,
                                              std::string* server_timing, std::function<void()> then = {});

// Open (or create) a gallery by name; names are [A-Za-z0-9_-]{1,64}.
using GalleryRef = std::shared_ptr<Gallery>;
Result<GalleryRef> gallery_for(Service::State& st, const std::string& name, bool create);

// Roles: the route's minimum role set.
bool role_allows(ApiRole role, std::initializer_list<ApiRole> allowed);

// Route registration, one per file.
using Authed = std::function<HttpResponse(const HttpRequest&, const ApiKeyInfo&)>;
void add_route(Service::State& st, const std::string& method, const std::string& pattern,
               std::initializer_list<ApiRole> roles, Authed handler);
void register_recognition_routes(Service::State& st);
void register_gallery_routes(Service::State& st);
void register_governance_routes(Service::State& st);

// The OpenAPI 3 document served at /openapi.json (apps/server/openapi.json, embedded at build time).
const std::string& openapi_document();

}  // namespace faceguard::server
