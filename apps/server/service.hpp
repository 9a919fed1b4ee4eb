// The faceguard HTTP service: routes map to library calls (engine, galleries, policy, audit, consent).
//
//   faceguard::server::ServiceConfig cfg;  cfg.data_dir = "/var/lib/faceguard"; ...
//   auto svc = faceguard::server::Service::create(cfg);   // opens keys, policy, audit, consent; binds
//   (*svc)->start();                                      // models load on the worker threads
//   ... (*svc)->port() ...
//   (*svc)->stop();                                       // graceful: finishes in-flight requests
//
// Every request: API key -> identity and role -> rate limit -> (for face operations) policy decision with
// the deployment profile + key identity + request context -> audit record -> the operation on a bounded
// worker pool (503 + Retry-After when saturated) -> obligations applied -> response. Handlers never throw:
// an internal error is a 500 whose body carries an id that also appears in the service log.
#pragma once

#include <atomic>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "faceguard/result.hpp"

namespace faceguard::server {

struct ServiceConfig {
  std::string host = "127.0.0.1";
  int port = 8080;                      // 0: any free port
  std::filesystem::path data_dir;       // galleries/, keys.db, audit.jsonl, consent.db live here by default
  std::filesystem::path keys_db;        // default <data_dir>/keys.db
  std::filesystem::path profile;        // deployment profile YAML (required: no profile, no decisions)
  std::vector<std::filesystem::path> policy_dirs;  // extra pack folders
  // Where the law packs are found (policy_search_path): beside the executable (default /proc/self/exe),
  // else <source_dir>/policies.
  std::filesystem::path executable;
  std::filesystem::path source_dir;
  std::filesystem::path model_dir;      // default: default_model_dir()
  std::string master_key_hex;           // gallery master key (else FACEGUARD_MASTER_KEY / --master-key-file)
  std::filesystem::path master_key_file;
  int workers = 0;                      // compute workers; 0: hardware concurrency
  int queue = 0;                        // queued compute jobs beyond the workers; 0: 8 x workers
  int request_timeout_ms = 30000;
  std::size_t max_body_bytes = 32u << 20;
  std::uint64_t max_pixels = 40'000'000;
  int io_threads = 16;
  bool fsync_audit = true;
  std::function<void(const std::string&)> log;  // service log lines (the CLI prints them); may be empty
};

class Service {
 public:
  static Result<std::unique_ptr<Service>> create(const ServiceConfig& config);
  ~Service();
  int port() const;
  // (method, pattern) of every route served, e.g. ("GET", "/v1/galleries/{g}").
  std::vector<std::pair<std::string, std::string>> routes() const;
  // Starts serving on a background thread; models load on the workers (GET /health says "loading").
  Status start();
  // Blocks until stop() is called from another thread or a signal handler thread.
  void wait();
  void stop();

  struct State;

 private:
  explicit Service(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace faceguard::server
