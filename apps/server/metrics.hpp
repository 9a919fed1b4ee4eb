// Prometheus text-format metrics for the service: request counts and latency histograms per route,
// policy decisions by effect, gallery sizes. Thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <tuple>

namespace faceguard::server {

class Metrics {
 public:
  void observe_request(const std::string& method, const std::string& route, int status, double seconds);
  void count_decision(const std::string& effect);
  void count_rejection(const std::string& reason);  // rate_limited, saturated, timeout
  void set_gallery_size(const std::string& gallery, double templates);
  void set_gauge(const std::string& name, double value);
  std::string render() const;  // text/plain; version=0.0.4

 private:
  static constexpr std::array<double, 12> kBuckets = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                      0.1,   0.25,   0.5,   1.0,  2.5,   10.0};
  struct Histogram {
    std::array<std::uint64_t, kBuckets.size()> counts{};
    std::uint64_t count = 0;
    double sum = 0;
  };
  mutable std::mutex mu_;
  std::map<std::tuple<std::string, std::string, int>, std::uint64_t> requests_;
  std::map<std::string, Histogram> latency_;
  std::map<std::string, std::uint64_t> decisions_;
  std::map<std::string, std::uint64_t> rejections_;
  std::map<std::string, double> gallery_sizes_;
  std::map<std::string, double> gauges_;
};

}  // namespace faceguard::server
