#include "gallery/scan8.hpp"

#include "gallery/int8_kernel.hpp"

// GCC 12 reports a false -Wmaybe-uninitialized inside its own _mm512_reduce_add_epi32 (avx512fintrin.h).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>

namespace faceguard::gallery {

int scan8_stride(int dim) { return (dim + 63) / 64 * 64; }

void scan8_quantize(const float* x, int dim, int stride, std::int8_t* codes, float* scale, std::int32_t* code_sum) {
  float mx = 0.f;
  for (int i = 0; i < dim; ++i) mx = std::max(mx, std::fabs(x[i]));
  const float s = mx > 0.f ? mx / 127.f : 1.f;
  std::int32_t sum = 0;
  for (int i = 0; i < dim; ++i) {
    const int c = std::clamp(static_cast<int>(std::lrint(x[i] / s)), -127, 127);
    codes[i] = static_cast<std::int8_t>(c);
    sum += c;
  }
  std::memset(codes + dim, 0, static_cast<std::size_t>(stride - dim));
  *scale = s;
  *code_sum = sum;
}

void scan8_prepare_query(const float* q, int dim, int stride, Scan8Query* out) {
  std::int32_t unused = 0;
  scan8_quantize(q, dim, stride, out->codes, &out->scale, &unused);
  for (int i = 0; i < stride; ++i) {
    out->shifted[i] = static_cast<std::uint8_t>(out->codes[i] + 128);
    out->wide[i] = out->codes[i];
  }
}

void scan8_dots_reference(const Scan8Query& q, const std::int8_t* codes, std::size_t n, int stride,
                          std::int32_t* out) {
  for (std::size_t i = 0; i < n; ++i) {
    const std::int8_t* c = codes + i * static_cast<std::size_t>(stride);
    std::int32_t acc = 0;
    for (int j = 0; j < stride; ++j) acc += static_cast<std::int32_t>(q.codes[j]) * c[j];
    out[i] = acc;
  }
}

namespace {

__attribute__((target("avx2"))) void dots_avx2(const Scan8Query& q, const std::int8_t* codes, std::size_t n,
                                                int stride, std::int32_t* out) {
  for (std::size_t i = 0; i < n; ++i) {
    const std::int8_t* c = codes + i * static_cast<std::size_t>(stride);
    __m256i acc = _mm256_setzero_si256();
    for (int j = 0; j < stride; j += 16) {
      const __m256i cw = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(c + j)));
      const __m256i qw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q.wide + j));
      acc = _mm256_add_epi32(acc, _mm256_madd_epi16(cw, qw));
    }
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    out[i] = _mm_cvtsi128_si32(s);
  }
}

__attribute__((target("avx512f,avx512bw,avx512vnni"))) void dots_vnni(const Scan8Query& q, const std::int8_t* codes,
                                                                      const std::int32_t* sums, std::size_t n,
                                                                      int stride, std::int32_t* out) {
  // sum((q+128) * c) - 128 * sum(c) = sum(q * c)
  const int blocks = stride / 64;
  if (blocks == 2) {  // 128-D (dlib): the common case, unrolled over 4 rows
    const __m512i q0 = _mm512_loadu_si512(q.shifted);
    const __m512i q1 = _mm512_loadu_si512(q.shifted + 64);
    std::size_t i = 0;
    for (; i + 4 <= n; i += 4) {
      const std::int8_t* c = codes + i * 128;
      __m512i a0 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), q0, _mm512_loadu_si512(c));
      __m512i a1 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), q0, _mm512_loadu_si512(c + 128));
      __m512i a2 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), q0, _mm512_loadu_si512(c + 256));
      __m512i a3 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), q0, _mm512_loadu_si512(c + 384));
      a0 = _mm512_dpbusd_epi32(a0, q1, _mm512_loadu_si512(c + 64));
      a1 = _mm512_dpbusd_epi32(a1, q1, _mm512_loadu_si512(c + 192));
      a2 = _mm512_dpbusd_epi32(a2, q1, _mm512_loadu_si512(c + 320));
      a3 = _mm512_dpbusd_epi32(a3, q1, _mm512_loadu_si512(c + 448));
      out[i] = _mm512_reduce_add_epi32(a0) - 128 * sums[i];
      out[i + 1] = _mm512_reduce_add_epi32(a1) - 128 * sums[i + 1];
      out[i + 2] = _mm512_reduce_add_epi32(a2) - 128 * sums[i + 2];
      out[i + 3] = _mm512_reduce_add_epi32(a3) - 128 * sums[i + 3];
    }
    for (; i < n; ++i) {
      const std::int8_t* c = codes + i * 128;
      __m512i a = _mm512_dpbusd_epi32(_mm512_setzero_si512(), q0, _mm512_loadu_si512(c));
      a = _mm512_dpbusd_epi32(a, q1, _mm512_loadu_si512(c + 64));
      out[i] = _mm512_reduce_add_epi32(a) - 128 * sums[i];
    }
    return;
  }
  for (std::size_t i = 0; i < n; ++i) {
    const std::int8_t* c = codes + i * static_cast<std::size_t>(stride);
    __m512i a = _mm512_setzero_si512();
    for (int b = 0; b < blocks; ++b)
      a = _mm512_dpbusd_epi32(a, _mm512_loadu_si512(q.shifted + 64 * b), _mm512_loadu_si512(c + 64 * b));
    out[i] = _mm512_reduce_add_epi32(a) - 128 * sums[i];
  }
}

}  // namespace

void scan8_dots(const Scan8Query& q, const std::int8_t* codes, const std::int32_t* code_sums, std::size_t n,
                int stride, std::int32_t* out) {
  switch (int8_kernel()) {
    case Int8Kernel::kVnni: dots_vnni(q, codes, code_sums, n, stride, out); return;
    case Int8Kernel::kAvx2: dots_avx2(q, codes, n, stride, out); return;
    case Int8Kernel::kScalar: scan8_dots_reference(q, codes, n, stride, out); return;
  }
}

std::string_view scan8_kernel() { return int8_kernel_name(int8_kernel()); }

}  // namespace faceguard::gallery
