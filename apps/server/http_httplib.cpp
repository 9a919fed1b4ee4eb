// HttpServer on cpp-httplib (Debian libcpp-httplib-dev 0.11). The only file that includes httplib.h.
#include <httplib.h>

#include <algorithm>
#include <cctype>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <string_view>
#include <thread>

#include "http.hpp"

namespace faceguard::server {
namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// httplib's own ThreadPool queues connections without limit. This one blocks the accept loop when
// `max_pending` connections already wait, so excess load backs up into the kernel's listen backlog
// (clients see a slow connect) instead of growing memory.
class BoundedTaskQueue : public httplib::TaskQueue {
 public:
  BoundedTaskQueue(int threads, std::size_t max_pending) : max_pending_(max_pending) {
    for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { loop(); });
  }
  void enqueue(std::function<void()> fn) override {
    std::unique_lock lock(mu_);
    space_.wait(lock, [this] { return shutdown_ || jobs_.size() < max_pending_; });
    jobs_.push_back(std::move(fn));
    lock.unlock();
    work_.notify_one();
  }
  void shutdown() override {
    {
      std::lock_guard lock(mu_);
      shutdown_ = true;
    }
    work_.notify_all();
    space_.notify_all();
    for (auto& t : threads_) t.join();
    threads_.clear();
  }

 private:
  void loop() {
    for (;;) {
      std::function<void()> fn;
      {
        std::unique_lock lock(mu_);
        work_.wait(lock, [this] { return shutdown_ || !jobs_.empty(); });
        if (jobs_.empty()) return;
        fn = std::move(jobs_.front());
        jobs_.pop_front();
      }
      space_.notify_one();
      fn();
    }
  }
  const std::size_t max_pending_;
  std::mutex mu_;
  std::condition_variable work_, space_;
  std::deque<std::function<void()>> jobs_;
  std::vector<std::thread> threads_;
  bool shutdown_ = false;
};

// A route pattern as path segments; "{name}" matches one non-empty segment. Compared segment by segment on
// every request instead of with std::regex, which cost microseconds per route tried.
struct Route {
  std::string method;
  std::string pattern;
  std::vector<std::string> segments;  // "" stands for a {name} parameter
  Handler handler;
};

std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  if (!path.empty() && path[0] == '/') i = 1;
  while (true) {
    const std::size_t j = path.find('/', i);
    out.push_back(path.substr(i, j == std::string_view::npos ? std::string_view::npos : j - i));
    if (j == std::string_view::npos) break;
    i = j + 1;
  }
  return out;
}

// Matches path against the route and collects its parameters; false when it does not match.
bool match_route(const Route& rt, const std::vector<std::string_view>& path, std::vector<std::string>& params) {
  if (path.size() != rt.segments.size()) return false;
  params.clear();
  for (std::size_t i = 0; i < path.size(); ++i) {
    if (rt.segments[i].empty()) {
      if (path[i].empty()) return false;
      params.emplace_back(path[i]);
    } else if (rt.segments[i] != path[i]) {
      return false;
    }
  }
  return true;
}

class HttplibServer final : public HttpServer {
 public:
  explicit HttplibServer(const HttpServerOptions& o) : opt_(o) {
    svr_.new_task_queue = [this] {
      return new BoundedTaskQueue(opt_.io_threads, static_cast<std::size_t>(opt_.max_pending_connections));
    };
    svr_.set_payload_max_length(opt_.max_body_bytes);
    svr_.set_read_timeout(opt_.read_timeout_s, 0);
    svr_.set_write_timeout(opt_.write_timeout_s, 0);
    svr_.set_keep_alive_max_count(static_cast<std::size_t>(opt_.keep_alive_max));
    svr_.set_keep_alive_timeout(2);
    // httplib writes the status line, headers and body with separate send()s; with Nagle's algorithm the
    // last small write waits for the client's delayed ACK (40 ms on Linux), which would dominate a request.
    svr_.set_tcp_nodelay(true);
    auto dispatch = [this](const httplib::Request& req, httplib::Response& res) { handle(req, res); };
    svr_.Get(".*", dispatch);
    svr_.Post(".*", dispatch);
    svr_.Put(".*", dispatch);
    svr_.Delete(".*", dispatch);
    svr_.Patch(".*", dispatch);
    svr_.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
      res.status = 500;
      res.set_content(R"({"error":{"code":"internal","message":"internal error"}})", "application/json");
    });
    // httplib calls this for every response >= 400. Ours always carry a JSON body; an empty body means
    // httplib refused the request itself (413 for an over-long body, 400 for a bad request line, 404/405
    // are never its own because every method is routed): give it our error shape and report it.
    svr_.set_error_handler(httplib::Server::HandlerWithResponse([this](const httplib::Request& req,
                                                                      httplib::Response& res) {
      if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
      const std::string code = res.status == 413 ? "payload_too_large" : res.status == 400 ? "bad_request" : "error";
      HttpResponse out;
      out.status = res.status;
      out.body = "{\"error\":{\"code\":\"" + code + "\",\"message\":\"" +
                 (res.status == 413 ? "the request body exceeds " + std::to_string(opt_.max_body_bytes) + " bytes"
                                    : "HTTP " + std::to_string(res.status)) +
                 "\"}}";
      res.set_content(out.body, "application/json");
      if (rejected_) {
        HttpRequest r = convert(req, false);
        r.route = "(rejected)";
        rejected_(r, out);
      }
      return httplib::Server::HandlerResponse::Handled;
    }));
  }

  void route(const std::string& method, const std::string& pattern, Handler handler) override {
    Route rt{method, pattern, {}, std::move(handler)};
    for (auto seg : split_path(pattern))
      rt.segments.emplace_back(seg.size() >= 2 && seg.front() == '{' && seg.back() == '}' ? std::string_view() : seg);
    routes_.push_back(std::move(rt));
  }
  void fallback(Handler handler) override { fallback_ = std::move(handler); }
  void before(std::function<std::optional<HttpResponse>(const HttpRequest&)> hook) override { before_ = std::move(hook); }
  void rejected(std::function<void(const HttpRequest&, const HttpResponse&)> hook) override { rejected_ = std::move(hook); }
  std::vector<std::pair<std::string, std::string>> routes() const override {
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& r : routes_) out.emplace_back(r.method, r.pattern);
    return out;
  }

  Result<int> bind() override {
    int port = opt_.port == 0 ? svr_.bind_to_any_port(opt_.host) : (svr_.bind_to_port(opt_.host, opt_.port) ? opt_.port : -1);
    if (port < 0)
      return make_error(ErrorCode::kIoError, "cannot listen on " + opt_.host + ":" + std::to_string(opt_.port));
    return port;
  }
  void run() override { svr_.listen_after_bind(); }
  bool running() const override { return svr_.is_running(); }
  void stop() override { svr_.stop(); }

 private:
  static HttpRequest convert(const httplib::Request& req, bool with_body) {
    HttpRequest r;
    r.method = req.method;
    r.path = req.path;
    if (with_body) r.body = req.body;
    r.remote_addr = req.remote_addr;
    for (const auto& [k, v] : req.headers) r.headers[lower(k)] = v;
    for (const auto& [k, v] : req.params) r.query[k] = v;
    const std::string ct = lower(req.get_header_value("Content-Type"));
    r.content_type = ct.substr(0, ct.find(';'));
    while (!r.content_type.empty() && r.content_type.back() == ' ') r.content_type.pop_back();
    if (with_body)
      for (const auto& [name, f] : req.files) r.parts.push_back({f.name, f.filename, lower(f.content_type), f.content});
    // A client may not pose as having hit a wrong method: the router sets this header itself.
    r.headers.erase("x-faceguard-method-mismatch");
    return r;
  }

  void handle(const httplib::Request& req, httplib::Response& res) {
    HttpRequest r = convert(req, true);
    HttpResponse out;
    bool matched = false, method_mismatch = false;
    if (before_) {
      if (auto early = before_(r)) {
        out = std::move(*early);
        matched = true;
      }
    }
    if (!matched) {
      const auto path = split_path(r.path);
      std::vector<std::string> params;
      for (const auto& rt : routes_) {
        if (!match_route(rt, path, params)) continue;
        if (rt.method != r.method) {
          method_mismatch = true;
          continue;
        }
        r.route = rt.pattern;
        r.params = std::move(params);
        out = rt.handler(r);
        matched = true;
        break;
      }
    }
    if (!matched) {
      r.route = method_mismatch ? "(method not allowed)" : "(unmatched)";
      r.headers["x-faceguard-method-mismatch"] = method_mismatch ? "1" : "0";
      if (fallback_) out = fallback_(r);
      else out.status = method_mismatch ? 405 : 404;
    }
    res.status = out.status;
    for (const auto& [k, v] : out.headers) res.set_header(k.c_str(), v);
    res.set_content(out.body, out.content_type.c_str());
  }

  HttpServerOptions opt_;
  httplib::Server svr_;
  std::vector<Route> routes_;
  Handler fallback_;
  std::function<std::optional<HttpResponse>(const HttpRequest&)> before_;
  std::function<void(const HttpRequest&, const HttpResponse&)> rejected_;
};

}  // namespace

std::unique_ptr<HttpServer> HttpServer::create(const HttpServerOptions& options) {
  return std::make_unique<HttplibServer>(options);
}

}  // namespace faceguard::server
