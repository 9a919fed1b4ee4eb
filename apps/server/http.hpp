// The HTTP layer of the faceguard service, kept behind this one interface so that routes never see the
// HTTP library (cpp-httplib, in http_httplib.cpp). Handlers take a request value and return a response value.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "faceguard/result.hpp"

namespace faceguard::server {

struct UploadedPart {
  std::string name;
  std::string filename;
  std::string content_type;
  std::string data;
};

struct HttpRequest {
  std::string method;
  std::string path;          // without the query string
  std::string route;         // the route pattern that matched, e.g. "/v1/galleries/{id}" (for metrics)
  std::vector<std::string> params;  // captures of the route pattern
  std::map<std::string, std::string> query;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  std::string content_type;  // lower-case, without parameters
  std::vector<UploadedPart> parts;  // multipart/form-data
  std::string remote_addr;

  std::string header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? std::string() : it->second;
  }
  const UploadedPart* part(const std::string& name) const {
    for (const auto& p : parts)
      if (p.name == name) return &p;
    return nullptr;
  }
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

using Handler = std::function<HttpResponse(const HttpRequest&)>;

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                           // 0: pick a free port
  std::size_t max_body_bytes = 32u << 20;    // 413 above this
  int io_threads = 16;                       // connection threads (not compute: see WorkerPool)
  int max_pending_connections = 64;          // accepted connections waiting for an I/O thread
  int read_timeout_s = 10;
  int write_timeout_s = 10;
  int keep_alive_max = 100;
};

class HttpServer {
 public:
  virtual ~HttpServer() = default;
  static std::unique_ptr<HttpServer> create(const HttpServerOptions& options);
  // pattern: "/v1/galleries/{id}/subjects/{sid}" - each {x} matches one path segment.
  virtual void route(const std::string& method, const std::string& pattern, Handler handler) = 0;
  // Called for requests no route matches (404 or 405).
  virtual void fallback(Handler handler) = 0;
  // Called before routing on every request; a returned response short-circuits.
  virtual void before(std::function<std::optional<HttpResponse>(const HttpRequest&)> hook) = 0;
  // Called after the HTTP library itself refused a request before any route saw it (413 for a body over
  // max_body_bytes, 400 for an unparsable request line), with the response it sends: for audit and metrics.
  virtual void rejected(std::function<void(const HttpRequest&, const HttpResponse&)> hook) = 0;
  // (method, pattern) of every route, in registration order (the OpenAPI test compares them with the document).
  virtual std::vector<std::pair<std::string, std::string>> routes() const = 0;
  virtual Result<int> bind() = 0;  // returns the bound port
  virtual void run() = 0;          // blocks until stop()
  virtual bool running() const = 0;  // run() has started accepting
  virtual void stop() = 0;         // stops accepting, finishes in-flight requests
};

}  // namespace faceguard::server
