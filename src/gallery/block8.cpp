#include "gallery/block8.hpp"

#include "gallery/int8_kernel.hpp"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

namespace faceguard::gallery {

int block8_dims(int dims) { return (dims + 3) / 4 * 4; }

void block8_put(std::uint8_t* blocks, int dims, std::size_t row, const std::uint8_t* codes) {
  std::uint8_t* b = blocks + row / kBlock8Rows * block8_block_bytes(dims) + (row % kBlock8Rows) * 4;
  for (int g = 0; g < dims / 4; ++g) std::memcpy(b + g * 4 * kBlock8Rows, codes + 4 * g, 4);
}

void block8_get(const std::uint8_t* blocks, int dims, std::size_t row, std::uint8_t* codes) {
  const std::uint8_t* b = blocks + row / kBlock8Rows * block8_block_bytes(dims) + (row % kBlock8Rows) * 4;
  for (int g = 0; g < dims / 4; ++g) std::memcpy(codes + 4 * g, b + g * 4 * kBlock8Rows, 4);
}

Block8Coder::Block8Coder(int dims, const float* y, std::size_t n) : dims_(dims), lo_(static_cast<std::size_t>(dims)), step_(static_cast<std::size_t>(dims)) {
  for (int i = 0; i < dims; ++i) {
    float lo = std::numeric_limits<float>::infinity(), hi = -lo;
    for (std::size_t r = 0; r < n; ++r) {
      lo = std::min(lo, y[r * static_cast<std::size_t>(dims) + i]);
      hi = std::max(hi, y[r * static_cast<std::size_t>(dims) + i]);
    }
    if (n == 0) lo = -1.f, hi = 1.f;  // unit rows: every component lies in [-1, 1]
    // A 5% margin each side: rows enrolled after training may reach a little beyond the sample (they are
    // clamped; the exact re-rank corrects the score of a row that makes it to the candidates).
    const float m = 0.05f * (hi - lo);
    lo -= m, hi += m;
    lo_[static_cast<std::size_t>(i)] = lo;
    step_[static_cast<std::size_t>(i)] = hi > lo ? (hi - lo) / 255.f : 1.f;
  }
}

void Block8Coder::encode(const float* y, std::uint8_t* codes) const {
  for (int i = 0; i < dims_; ++i) {
    const auto c = std::lrint((y[i] - lo_[static_cast<std::size_t>(i)]) / step_[static_cast<std::size_t>(i)]);
    codes[i] = static_cast<std::uint8_t>(std::clamp<long>(c, 0, 255));
  }
  for (int i = dims_; i < block8_dims(dims_); ++i) codes[i] = 0;
}

void Block8Coder::prepare_query(const float* p, std::int8_t* w) const {
  float mx = 0.f;
  for (int i = 0; i < dims_; ++i) mx = std::max(mx, std::fabs(p[i] * step_[static_cast<std::size_t>(i)]));
  const float s = mx > 0.f ? 127.f / mx : 0.f;
  for (int i = 0; i < dims_; ++i) {
    const auto c = std::lrint(p[i] * step_[static_cast<std::size_t>(i)] * s);
    w[i] = static_cast<std::int8_t>(std::clamp<long>(c, -127, 127));
  }
  for (int i = dims_; i < block8_dims(dims_); ++i) w[i] = 0;
}

void block8_dots_reference(const std::int8_t* w, const std::uint8_t* blocks, std::size_t nblocks, int dims,
                           std::int32_t* out) {
  const std::size_t bb = block8_block_bytes(dims);
  for (std::size_t b = 0; b < nblocks; ++b)
    for (std::size_t r = 0; r < kBlock8Rows; ++r) {
      std::int32_t acc = 0;
      for (int g = 0; g < dims / 4; ++g)
        for (int i = 0; i < 4; ++i)
          acc += static_cast<std::int32_t>(w[4 * g + i]) * blocks[b * bb + static_cast<std::size_t>(g) * 64 + r * 4 + i];
      out[b * kBlock8Rows + r] = acc;
    }
}

namespace {

__attribute__((target("avx512f,avx512vnni"))) void dots_vnni(const std::int8_t* w, const std::uint8_t* blocks,
                                                             std::size_t nblocks, int dims, std::int32_t* out) {
  const int groups = dims / 4;
  __m512i q[kBlock8MaxDims / 4];
  for (int g = 0; g < groups; ++g) {
    std::int32_t v;
    std::memcpy(&v, w + 4 * g, 4);
    q[g] = _mm512_set1_epi32(v);
  }
  const std::size_t bb = block8_block_bytes(dims);
  std::size_t b = 0;
  for (; b + 2 <= nblocks; b += 2) {  // two blocks at a time: two independent accumulator chains
    const std::uint8_t* c0 = blocks + b * bb;
    const std::uint8_t* c1 = c0 + bb;
    __m512i a0 = _mm512_setzero_si512(), a1 = _mm512_setzero_si512();
    for (int g = 0; g < groups; ++g) {
      a0 = _mm512_dpbusd_epi32(a0, _mm512_loadu_si512(c0 + g * 64), q[g]);
      a1 = _mm512_dpbusd_epi32(a1, _mm512_loadu_si512(c1 + g * 64), q[g]);
    }
    _mm512_storeu_si512(out + b * kBlock8Rows, a0);
    _mm512_storeu_si512(out + (b + 1) * kBlock8Rows, a1);
  }
  for (; b < nblocks; ++b) {
    const std::uint8_t* c0 = blocks + b * bb;
    __m512i a0 = _mm512_setzero_si512();
    for (int g = 0; g < groups; ++g) a0 = _mm512_dpbusd_epi32(a0, _mm512_loadu_si512(c0 + g * 64), q[g]);
    _mm512_storeu_si512(out + b * kBlock8Rows, a0);
  }
}

__attribute__((target("avx2"))) void dots_avx2(const std::int8_t* w, const std::uint8_t* blocks, std::size_t nblocks,
                                                int dims, std::int32_t* out) {
  const int groups = dims / 4;
  const std::size_t bb = block8_block_bytes(dims);
  // Pairs of partial sums land in the order r0 r1 r4 r5 | r2 r3 r6 r7 after hadd: put them back in row order.
  const __m256i order = _mm256_setr_epi32(0, 1, 4, 5, 2, 3, 6, 7);
  for (std::size_t b = 0; b < nblocks; ++b) {
    const std::uint8_t* c = blocks + b * bb;
    __m256i acc[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256()};
    for (int g = 0; g < groups; ++g) {
      // The group's 4 weights as int16, repeated for 4 rows.
      const __m256i qw = _mm256_set_epi16(w[4 * g + 3], w[4 * g + 2], w[4 * g + 1], w[4 * g], w[4 * g + 3], w[4 * g + 2],
                                          w[4 * g + 1], w[4 * g], w[4 * g + 3], w[4 * g + 2], w[4 * g + 1], w[4 * g],
                                          w[4 * g + 3], w[4 * g + 2], w[4 * g + 1], w[4 * g]);
      for (int k = 0; k < 4; ++k) {  // rows 4k..4k+3
        const __m256i cw = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(c + g * 64 + k * 16)));
        acc[k] = _mm256_add_epi32(acc[k], _mm256_madd_epi16(cw, qw));
      }
    }
    const __m256i lo = _mm256_permutevar8x32_epi32(_mm256_hadd_epi32(acc[0], acc[1]), order);
    const __m256i hi = _mm256_permutevar8x32_epi32(_mm256_hadd_epi32(acc[2], acc[3]), order);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + b * kBlock8Rows), lo);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + b * kBlock8Rows + 8), hi);
  }
}

}  // namespace

void block8_dots(const std::int8_t* w, const std::uint8_t* blocks, std::size_t nblocks, int dims, std::int32_t* out) {
  switch (int8_kernel()) {
    case Int8Kernel::kVnni: dots_vnni(w, blocks, nblocks, dims, out); return;
    case Int8Kernel::kAvx2: dots_avx2(w, blocks, nblocks, dims, out); return;
    case Int8Kernel::kScalar: block8_dots_reference(w, blocks, nblocks, dims, out); return;
  }
}

bool block8_dots_avx2(const std::int8_t* w, const std::uint8_t* blocks, std::size_t nblocks, int dims, std::int32_t* out) {
  if (int8_kernel() == Int8Kernel::kScalar) return false;
  dots_avx2(w, blocks, nblocks, dims, out);
  return true;
}

std::string_view block8_kernel() { return int8_kernel_name(int8_kernel()); }

}  // namespace faceguard::gallery
