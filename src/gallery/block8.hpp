// Internal: 8-bit codes of a few leading components, laid out 16 rows to a block so that one SIMD register
// scores 16 rows at once (no horizontal sums).
//
// Why: kIvf's first pass (ivf.hpp) must read as few bytes per scanned row as possible (the scan is memory
// bound: ~10 GB/s on this VM). The rows are rotated by PCA and only the first `dims` components are kept, as
// unsigned codes u_i = round((y_i - lo_i) / step_i) with one range per component, trained once (no per-row
// scale or code sum to read). For a query with components p_i the partial inner product is
//   sum_i p_i * y_i ~= sum_i p_i * lo_i + sum_i (p_i * step_i) * u_i,
// and the first term is the same for every row, so rows are ranked by sum_i w_i * u_i with w_i = p_i * step_i
// quantized to int8. That is exactly what vpdpbusd computes (unsigned x signed bytes, summed in groups of 4).
//
// Layout of one block (16 rows, dims a multiple of 4): for each group g of 4 components, 16 rows x 4 bytes,
// i.e. byte (g * 64 + r * 4 + i) is component 4g+i of row r. A block is 16 * dims bytes.
//
// Kernels: AVX-512 VNNI (one vpdpbusd per group: 16 rows), AVX2 (zero-extend to int16, vpmaddwd) and the
// portable reference the tests compare them with exactly. Chosen once at run time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace faceguard::gallery {

inline constexpr std::size_t kBlock8Rows = 16;
inline constexpr int kBlock8MaxDims = 256;

// Components rounded up to a multiple of 4 (padding components have code 0 and query weight 0).
int block8_dims(int dims);
inline std::size_t block8_block_bytes(int dims) { return kBlock8Rows * static_cast<std::size_t>(dims); }

// Writes / reads the `dims` codes of row `row` of a block array.
void block8_put(std::uint8_t* blocks, int dims, std::size_t row, const std::uint8_t* codes);
void block8_get(const std::uint8_t* blocks, int dims, std::size_t row, std::uint8_t* codes);

// Per-component ranges, trained from a sample of rotated rows (n x dims, row-major).
class Block8Coder {
 public:
  Block8Coder() = default;
  Block8Coder(int dims, const float* y, std::size_t n);
  int dims() const { return dims_; }
  // Codes of one rotated row (`dims` components; values outside the trained range are clamped).
  void encode(const float* y, std::uint8_t* codes) const;
  // int8 weights of a rotated query (padded with zeros to block8_dims(dims)).
  void prepare_query(const float* p, std::int8_t* w) const;

 private:
  int dims_ = 0;
  std::vector<float> lo_, step_;
};

// out[r] = sum_i w[i] * code_i(row r) for the nblocks * 16 rows of `blocks` (exact integer dot products; rows
// past the end of a list hold zero codes and score 0).
void block8_dots(const std::int8_t* w, const std::uint8_t* blocks, std::size_t nblocks, int dims, std::int32_t* out);
void block8_dots_reference(const std::int8_t* w, const std::uint8_t* blocks, std::size_t nblocks, int dims,
                           std::int32_t* out);

// The AVX2 kernel on its own (so the tests cover it on a VNNI machine too); false when the CPU lacks AVX2.
bool block8_dots_avx2(const std::int8_t* w, const std::uint8_t* blocks, std::size_t nblocks, int dims,
                      std::int32_t* out);

// "avx512vnni", "avx2" or "scalar": which kernel block8_dots uses on this CPU.
std::string_view block8_kernel();

}  // namespace faceguard::gallery
