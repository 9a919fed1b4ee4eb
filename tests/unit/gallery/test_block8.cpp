// block8: the blocked 8-bit codes of kIvf's first pass. The kernels must give exactly the integer dot products of
// the portable reference, the layout must put each code where the kernels read it, and the coder's integer
// scores must rank rows like their float partial inner products.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "gallery/block8.hpp"

namespace faceguard::test {
namespace {

using gallery::kBlock8Rows;

TEST(Block8, KernelsMatchTheReferenceExactly) {
  std::mt19937 rng(3);
  std::uniform_int_distribution<int> code(0, 255), weight(-127, 127);
  for (int dims : {4, 8, 32, 60, 64, 68, 128}) {
    for (std::size_t nblocks : {1u, 2u, 3u, 7u}) {
      std::vector<std::uint8_t> blocks(nblocks * gallery::block8_block_bytes(dims));
      for (auto& c : blocks) c = static_cast<std::uint8_t>(code(rng));
      // The extremes, where an int16 sum or a signed/unsigned mix-up would show.
      for (std::size_t i = 0; i < 64 && i < blocks.size(); ++i) blocks[i] = 255;
      std::vector<std::int8_t> w(static_cast<std::size_t>(dims));
      for (auto& x : w) x = static_cast<std::int8_t>(weight(rng));
      w[0] = -127;
      w[static_cast<std::size_t>(dims) - 1] = 127;
      std::vector<std::int32_t> ref(nblocks * kBlock8Rows), fast(ref.size(), -1), avx2(ref.size(), -1);
      gallery::block8_dots_reference(w.data(), blocks.data(), nblocks, dims, ref.data());
      gallery::block8_dots(w.data(), blocks.data(), nblocks, dims, fast.data());
      EXPECT_EQ(fast, ref) << "dims " << dims << " blocks " << nblocks << " kernel " << gallery::block8_kernel();
      if (gallery::block8_dots_avx2(w.data(), blocks.data(), nblocks, dims, avx2.data()))
        EXPECT_EQ(avx2, ref) << "avx2, dims " << dims << " blocks " << nblocks;
    }
  }
  // The reference itself, on one hand-made row: row 5 of a block, codes 1..8 against weights 1,-1,2,-2,...
  const int dims = 8;
  std::vector<std::uint8_t> block(gallery::block8_block_bytes(dims), 0);
  std::vector<std::uint8_t> codes{1, 2, 3, 4, 5, 6, 7, 8};
  gallery::block8_put(block.data(), dims, 5, codes.data());
  const std::vector<std::int8_t> w{1, -1, 2, -2, 3, -3, 4, -4};
  std::vector<std::int32_t> out(kBlock8Rows);
  gallery::block8_dots_reference(w.data(), block.data(), 1, dims, out.data());
  EXPECT_EQ(out[5], 1 - 2 + 6 - 8 + 15 - 18 + 28 - 32);
  for (std::size_t r = 0; r < kBlock8Rows; ++r)
    if (r != 5) EXPECT_EQ(out[r], 0);
}

TEST(Block8, PutAndGetUseTheBlockLayout) {
  const int dims = 12;
  const std::size_t rows = 40;  // three blocks, the last one partly filled
  std::vector<std::uint8_t> blocks((rows + kBlock8Rows - 1) / kBlock8Rows * gallery::block8_block_bytes(dims), 0);
  for (std::size_t r = 0; r < rows; ++r) {
    std::vector<std::uint8_t> c(dims);
    for (int i = 0; i < dims; ++i) c[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(r * 5 + i);
    gallery::block8_put(blocks.data(), dims, r, c.data());
  }
  for (std::size_t r = 0; r < rows; ++r) {
    std::vector<std::uint8_t> c(dims);
    gallery::block8_get(blocks.data(), dims, r, c.data());
    for (int i = 0; i < dims; ++i) {
      EXPECT_EQ(c[static_cast<std::size_t>(i)], static_cast<std::uint8_t>(r * 5 + i));
      // Byte (g * 64 + row * 4 + i % 4) of the row's block holds component i (g = i / 4).
      const std::size_t at = r / kBlock8Rows * gallery::block8_block_bytes(dims) + static_cast<std::size_t>(i / 4) * 64 +
                             (r % kBlock8Rows) * 4 + static_cast<std::size_t>(i % 4);
      EXPECT_EQ(blocks[at], static_cast<std::uint8_t>(r * 5 + i));
    }
  }
  EXPECT_EQ(gallery::block8_dims(61), 64);
  EXPECT_EQ(gallery::block8_dims(64), 64);
}

TEST(Block8, CoderScoresRankLikeFloatInnerProducts) {
  const int dims = 32;
  std::mt19937 rng(5);
  std::normal_distribution<float> n(0.f, 1.f);
  // Components with a decaying spread, as after a PCA.
  auto row = [&] {
    std::vector<float> y(dims);
    for (int i = 0; i < dims; ++i) y[static_cast<std::size_t>(i)] = 0.3f * n(rng) * std::exp(-0.05f * i);
    return y;
  };
  const std::size_t count = 512;
  std::vector<float> sample;
  std::vector<std::vector<float>> ys;
  for (std::size_t r = 0; r < count; ++r) {
    ys.push_back(row());
    sample.insert(sample.end(), ys.back().begin(), ys.back().end());
  }
  gallery::Block8Coder coder(dims, sample.data(), count);
  std::vector<std::uint8_t> blocks(count / kBlock8Rows * gallery::block8_block_bytes(dims));
  for (std::size_t r = 0; r < count; ++r) {
    std::vector<std::uint8_t> c(dims);
    coder.encode(ys[r].data(), c.data());
    gallery::block8_put(blocks.data(), dims, r, c.data());
  }
  const auto q = row();
  std::vector<std::int8_t> w(dims);
  coder.prepare_query(q.data(), w.data());
  std::vector<std::int32_t> s(count);
  gallery::block8_dots(w.data(), blocks.data(), count / kBlock8Rows, dims, s.data());
  // The integer scores are an affine function of the float partial inner products, up to quantization noise:
  // fit it on the extremes and check every row, and that the float best row is the integer best row.
  std::vector<double> f(count);
  for (std::size_t r = 0; r < count; ++r) {
    double d = 0;
    for (int i = 0; i < dims; ++i) d += static_cast<double>(q[static_cast<std::size_t>(i)]) * ys[r][static_cast<std::size_t>(i)];
    f[r] = d;
  }
  // The integer best row is the float best row, or one within a sliver of the float range of it (a near tie).
  const auto [fmin, fmax] = std::minmax_element(f.begin(), f.end());
  const auto best_s = static_cast<std::size_t>(std::max_element(s.begin(), s.end()) - s.begin());
  EXPECT_GE(f[best_s], *fmax - 0.01 * (*fmax - *fmin));
  double sx = 0, sy = 0, sxx = 0, sxy = 0, syy = 0;
  for (std::size_t r = 0; r < count; ++r) {
    sx += f[r], sy += s[r], sxx += f[r] * f[r], sxy += f[r] * s[r], syy += static_cast<double>(s[r]) * s[r];
  }
  const double cn = static_cast<double>(count);
  const double corr = (sxy - sx * sy / cn) / std::sqrt((sxx - sx * sx / cn) * (syy - sy * sy / cn));
  EXPECT_GT(corr, 0.999);
  // Out-of-range components are clamped, and the padding of a non-multiple of 4 is zero.
  const std::vector<float> unit_range{-1.f, -1.f, -1.f, 1.f, 1.f, 1.f};
  gallery::Block8Coder three(3, unit_range.data(), 2);
  std::vector<float> far{100.f, -100.f, 0.f};
  std::vector<std::uint8_t> c(4, 9);
  three.encode(far.data(), c.data());
  EXPECT_EQ(c[0], 255);
  EXPECT_EQ(c[1], 0);
  EXPECT_EQ(c[3], 0);
  std::vector<std::int8_t> pw(4, 9);
  three.prepare_query(far.data(), pw.data());
  EXPECT_EQ(pw[3], 0);
}

}  // namespace
}  // namespace faceguard::test
