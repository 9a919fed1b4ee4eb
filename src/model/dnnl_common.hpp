// Internal: small pieces shared by the engine's oneDNN code (model/dnnl_net.cpp, embed/dlib_resnet_dnnl.cpp).
// Only included where FG_HAVE_DNNL is defined (it needs OpenMP's omp.h, which Debian's oneDNN runs on).
#pragma once

#include <omp.h>

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <memory>

namespace faceguard::model {

// Arena alignment: a cache line and one AVX-512 vector, what oneDNN's own allocator uses.
constexpr std::size_t kDnnlArenaAlign = 64;

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};
using DnnlArena = std::unique_ptr<std::byte, FreeDeleter>;

// Bytes rounded up to the arena alignment (each tensor's offset in an arena stays aligned).
constexpr std::size_t dnnl_arena_round(std::size_t bytes) {
  return (bytes + kDnnlArenaAlign - 1) / kDnnlArenaAlign * kDnnlArenaAlign;
}

// An arena of at least `bytes` (never zero), aligned for oneDNN; null when memory is exhausted.
inline DnnlArena make_dnnl_arena(std::size_t bytes) {
  const std::size_t n = dnnl_arena_round(bytes == 0 ? 1 : bytes);
  return DnnlArena(static_cast<std::byte*>(std::aligned_alloc(kDnnlArenaAlign, n)));
}

// omp_set_num_threads for one scope (oneDNN runs its parallel regions on the calling thread's OpenMP
// team, and fixes a primitive's thread count when it is created); the previous value is restored so that
// other OpenMP users (FAISS) are unaffected.
class OmpThreads {
 public:
  explicit OmpThreads(int n) : saved_(omp_get_max_threads()) { omp_set_num_threads(n); }
  ~OmpThreads() { omp_set_num_threads(saved_); }
  OmpThreads(const OmpThreads&) = delete;
  OmpThreads& operator=(const OmpThreads&) = delete;

 private:
  int saved_;
};

}  // namespace faceguard::model
