#include "metrics.hpp"

#include <sstream>

namespace faceguard::server {
namespace {

// Prometheus label values escape backslash, double quote and newline.
std::string esc(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '\\' || c == '"') o += '\\', o += c;
    else if (c == '\n') o += "\\n";
    else o += c;
  }
  return o;
}

}  // namespace

void Metrics::observe_request(const std::string& method, const std::string& route, int status, double seconds) {
  std::lock_guard lock(mu_);
  ++requests_[{method, route, status}];
  auto& h = latency_[route];
  for (std::size_t i = 0; i < kBuckets.size(); ++i)
    if (seconds <= kBuckets[i]) ++h.counts[i];
  ++h.count;
  h.sum += seconds;
}

void Metrics::count_decision(const std::string& effect) {
  std::lock_guard lock(mu_);
  ++decisions_[effect];
}

void Metrics::count_rejection(const std::string& reason) {
  std::lock_guard lock(mu_);
  ++rejections_[reason];
}

void Metrics::set_gallery_size(const std::string& gallery, double templates) {
  std::lock_guard lock(mu_);
  gallery_sizes_[gallery] = templates;
}

void Metrics::set_gauge(const std::string& name, double value) {
  std::lock_guard lock(mu_);
  gauges_[name] = value;
}

std::string Metrics::render() const {
  std::lock_guard lock(mu_);
  std::ostringstream o;
  o << "# HELP faceguard_http_requests_total HTTP requests by method, route and status.\n"
       "# TYPE faceguard_http_requests_total counter\n";
  for (const auto& [k, v] : requests_)
    o << "faceguard_http_requests_total{method=\"" << esc(std::get<0>(k)) << "\",route=\"" << esc(std::get<1>(k))
      << "\",status=\"" << std::get<2>(k) << "\"} " << v << "\n";
  o << "# HELP faceguard_http_request_duration_seconds Request latency by route.\n"
       "# TYPE faceguard_http_request_duration_seconds histogram\n";
  for (const auto& [route, h] : latency_) {
    for (std::size_t i = 0; i < kBuckets.size(); ++i)
      o << "faceguard_http_request_duration_seconds_bucket{route=\"" << esc(route) << "\",le=\"" << kBuckets[i]
        << "\"} " << h.counts[i] << "\n";
    o << "faceguard_http_request_duration_seconds_bucket{route=\"" << esc(route) << "\",le=\"+Inf\"} " << h.count
      << "\n";
    o << "faceguard_http_request_duration_seconds_sum{route=\"" << esc(route) << "\"} " << h.sum << "\n";
    o << "faceguard_http_request_duration_seconds_count{route=\"" << esc(route) << "\"} " << h.count << "\n";
  }
  o << "# HELP faceguard_policy_decisions_total Policy decisions by effect.\n"
       "# TYPE faceguard_policy_decisions_total counter\n";
  for (const auto& [effect, v] : decisions_)
    o << "faceguard_policy_decisions_total{effect=\"" << esc(effect) << "\"} " << v << "\n";
  o << "# HELP faceguard_rejections_total Requests refused for load: rate limit, saturated pool, queue timeout.\n"
       "# TYPE faceguard_rejections_total counter\n";
  for (const auto& [reason, v] : rejections_)
    o << "faceguard_rejections_total{reason=\"" << esc(reason) << "\"} " << v << "\n";
  o << "# HELP faceguard_gallery_templates Templates stored per gallery.\n"
       "# TYPE faceguard_gallery_templates gauge\n";
  for (const auto& [g, v] : gallery_sizes_) o << "faceguard_gallery_templates{gallery=\"" << esc(g) << "\"} " << v << "\n";
  for (const auto& [name, v] : gauges_) o << "# TYPE " << name << " gauge\n" << name << " " << v << "\n";
  return o.str();
}

}  // namespace faceguard::server
