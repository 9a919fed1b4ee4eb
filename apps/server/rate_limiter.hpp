// Per-key token buckets: `rate` requests per second sustained, `burst` at once. Thread-safe.
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <string>

namespace faceguard::server {

class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;

  // True if the request may proceed; otherwise retry_after_s says when a token will be available.
  bool allow(const std::string& key, double rate, double burst, double* retry_after_s = nullptr,
             Clock::time_point now = Clock::now()) {
    if (rate <= 0) return true;  // unlimited
    if (burst < 1) burst = 1;
    std::lock_guard lock(mu_);
    auto [it, fresh] = buckets_.try_emplace(key, Bucket{burst, now});
    Bucket& b = it->second;
    if (!fresh) {
      const double dt = std::chrono::duration<double>(now - b.last).count();
      b.tokens = std::min(burst, b.tokens + dt * rate);
      b.last = now;
    }
    if (b.tokens >= 1.0) {
      b.tokens -= 1.0;
      return true;
    }
    if (retry_after_s) *retry_after_s = (1.0 - b.tokens) / rate;
    return false;
  }

 private:
  struct Bucket {
    double tokens;
    Clock::time_point last;
  };
  std::mutex mu_;
  std::map<std::string, Bucket> buckets_;
};

}  // namespace faceguard::server
