// Internal: 8-bit scalar-quantized exhaustive scan.
//
// Each stored (unit) template x is kept as int8 codes c = round(x / s) with one scale s = max|x_i| / 127 per
// row (no training, so rows can be added one at a time). A query is quantized the same way and the approximate
// inner product is s * sum(q_i * c_i); the query's own scale is a common factor and does not change the ranking.
// At 128-D a row is 128 bytes instead of 512, so a 1M-row scan reads 128 MB: ~13 ms at the ~10 GB/s this
// machine's memory delivers, against ~51 ms for float32. The best candidates are then re-ranked exactly.
//
// Kernels: AVX-512 VNNI (vpdpbusd: unsigned x signed bytes, so the query is shifted by +128 and the shift is
// removed with a per-row code sum), AVX2 (sign-extend to int16, vpmaddwd), and a portable loop that the tests
// use as the reference. The choice is made once at run time from the CPU's features.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace faceguard::gallery {

// Row stride in bytes: dim rounded up to 64 (one AVX-512 register), padding bytes are zero.
int scan8_stride(int dim);

// Quantize one row; writes `stride` codes (zero padded), its scale and the sum of its codes.
void scan8_quantize(const float* x, int dim, int stride, std::int8_t* codes, float* scale, std::int32_t* code_sum);

// A query prepared for the kernels.
struct Scan8Query {
  alignas(64) std::int8_t codes[4096];
  alignas(64) std::uint8_t shifted[4096];  // codes + 128, for vpdpbusd
  alignas(64) std::int16_t wide[4096];     // codes as int16, for vpmaddwd
  float scale = 0;
};
void scan8_prepare_query(const float* q, int dim, int stride, Scan8Query* out);

// out[i] = sum_j q.codes[j] * codes[i*stride + j] for i < n (exact integer dot products).
void scan8_dots(const Scan8Query& q, const std::int8_t* codes, const std::int32_t* code_sums, std::size_t n,
                int stride, std::int32_t* out);
// The portable reference of scan8_dots.
void scan8_dots_reference(const Scan8Query& q, const std::int8_t* codes, std::size_t n, int stride,
                          std::int32_t* out);

// "avx512vnni", "avx2" or "scalar": which kernel scan8_dots uses on this CPU.
std::string_view scan8_kernel();

}  // namespace faceguard::gallery
