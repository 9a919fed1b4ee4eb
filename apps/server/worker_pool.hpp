// A bounded compute pool: a fixed number of workers (sized to the cores) and a bounded queue.
// submit() refuses work when the queue is full, so the service answers 503 + Retry-After instead of
// queueing without limit. Thread safety: all members may be called from any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

namespace faceguard::server {

class WorkerPool {
 public:
  // init runs once on each worker thread (e.g. to create that worker's Pipeline).
  WorkerPool(int workers, std::size_t max_queue, std::function<void(int)> init = {})
      : max_queue_(max_queue) {
    for (int i = 0; i < workers; ++i)
      threads_.emplace_back([this, i, init] {
        if (init) init(i);
        loop();
      });
  }
  ~WorkerPool() { shutdown(); }
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Runs fn(worker_index) on a worker. nullopt when saturated or shutting down.
  template <typename F>
  auto submit(F fn) -> std::optional<std::future<decltype(fn(0))>> {
    using R = decltype(fn(0));
    auto task = std::make_shared<std::packaged_task<R(int)>>(std::move(fn));
    auto fut = task->get_future();
    {
      std::lock_guard lock(mu_);
      if (stopping_ || queue_.size() >= max_queue_) return std::nullopt;
      queue_.emplace_back([task](int w) { (*task)(w); });
    }
    cv_.notify_one();
    return fut;
  }

  std::size_t queued() const {
    std::lock_guard lock(mu_);
    return queue_.size();
  }
  int busy() const { return busy_.load(); }
  int workers() const { return static_cast<int>(threads_.size()); }

  // Finishes everything queued, then joins.
  void shutdown() {
    {
      std::lock_guard lock(mu_);
      if (stopping_ && threads_.empty()) return;
      stopping_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_)
      if (t.joinable()) t.join();
    threads_.clear();
  }

 private:
  void loop() {
    const int index = next_index_++;
    for (;;) {
      std::function<void(int)> job;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return;  // stopping and drained
        job = std::move(queue_.front());
        queue_.pop_front();
      }
      ++busy_;
      job(index);
      --busy_;
    }
  }

  const std::size_t max_queue_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void(int)>> queue_;
  std::vector<std::thread> threads_;
  std::atomic<int> busy_{0};
  std::atomic<int> next_index_{0};
  bool stopping_ = false;
};

}  // namespace faceguard::server
