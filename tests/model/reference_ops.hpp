// Plain, naive reference operators (direct loops, float, NHWC, TF semantics) for checking the
// OpenCV DNN nets built by src/model/net_builder against the same TF.js tensors (STYLE.md habit 5:
// optimised code vs naive reference). Deliberately independent of net_builder: weights are read in
// their TF layout, scales are applied as separate steps, padding follows TF's SAME rule directly.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <vector>

#include <opencv2/core.hpp>

#include "model/weights.hpp"

namespace faceguard::test::ref {

// One image's activations, H x W x C (TF NHWC for batch 1).
struct Act {
  int h = 0, w = 0, c = 0;
  std::vector<float> v;
  Act() = default;
  Act(int h_, int w_, int c_) : h(h_), w(w_), c(c_), v(static_cast<std::size_t>(h_) * w_ * c_, 0.f) {}
  float& at(int y, int x, int ch) { return v[(static_cast<std::size_t>(y) * w + x) * c + ch]; }
  float at(int y, int x, int ch) const { return v[(static_cast<std::size_t>(y) * w + x) * c + ch]; }
};

// TF padding: SAME gives out = ceil(in / s) with the smaller half of the padding before; VALID none.
inline void tf_padding(int in, int k, int s, bool same, int& out, int& pad_before) {
  if (same) {
    out = (in + s - 1) / s;
    const int total = std::max((out - 1) * s + k - in, 0);
    pad_before = total / 2;
  } else {
    out = (in - k) / s + 1;
    pad_before = 0;
  }
}

// tf.conv2d with filter [kh, kw, in, out].
inline Act conv2d(const Act& x, const model::Tensor& f, int stride, bool same) {
  const int kh = f.shape[0], kw = f.shape[1], ci = f.shape[2], co = f.shape[3];
  if (ci != x.c) throw std::runtime_error("conv2d: channel mismatch for " + f.name);
  int oh, ow, pt, pl;
  tf_padding(x.h, kh, stride, same, oh, pt);
  tf_padding(x.w, kw, stride, same, ow, pl);
  Act y(oh, ow, co);
  for (int oy = 0; oy < oh; ++oy)
    for (int ox = 0; ox < ow; ++ox)
      for (int o = 0; o < co; ++o) {
        float acc = 0.f;
        for (int ky = 0; ky < kh; ++ky) {
          const int iy = oy * stride + ky - pt;
          if (iy < 0 || iy >= x.h) continue;
          for (int kx = 0; kx < kw; ++kx) {
            const int ix = ox * stride + kx - pl;
            if (ix < 0 || ix >= x.w) continue;
            for (int i = 0; i < ci; ++i)
              acc += x.at(iy, ix, i) * f.data[((static_cast<std::size_t>(ky) * kw + kx) * ci + i) * co + o];
          }
        }
        y.at(oy, ox, o) = acc;
      }
  return y;
}

// tf.depthwiseConv2d with filter [kh, kw, C, 1].
inline Act depthwise2d(const Act& x, const model::Tensor& f, int stride, bool same) {
  const int kh = f.shape[0], kw = f.shape[1], c = f.shape[2];
  if (c != x.c || f.shape[3] != 1) throw std::runtime_error("depthwise2d: shape mismatch for " + f.name);
  int oh, ow, pt, pl;
  tf_padding(x.h, kh, stride, same, oh, pt);
  tf_padding(x.w, kw, stride, same, ow, pl);
  Act y(oh, ow, c);
  for (int oy = 0; oy < oh; ++oy)
    for (int ox = 0; ox < ow; ++ox)
      for (int ch = 0; ch < c; ++ch) {
        float acc = 0.f;
        for (int ky = 0; ky < kh; ++ky) {
          const int iy = oy * stride + ky - pt;
          if (iy < 0 || iy >= x.h) continue;
          for (int kx = 0; kx < kw; ++kx) {
            const int ix = ox * stride + kx - pl;
            if (ix < 0 || ix >= x.w) continue;
            acc += x.at(iy, ix, ch) * f.data[(static_cast<std::size_t>(ky) * kw + kx) * c + ch];
          }
        }
        y.at(oy, ox, ch) = acc;
      }
  return y;
}

inline void add_channel(Act& x, const model::Tensor& b) {
  for (std::size_t i = 0; i < x.v.size(); ++i) x.v[i] += b.data[i % x.c];
}
inline void mul_channel(Act& x, const model::Tensor& s) {
  for (std::size_t i = 0; i < x.v.size(); ++i) x.v[i] *= s.data[i % x.c];
}
inline void relu(Act& x) {
  for (float& f : x.v) f = std::max(f, 0.f);
}
inline Act add(const Act& a, const Act& b) {
  if (a.h != b.h || a.w != b.w || a.c != b.c) throw std::runtime_error("add: shape mismatch");
  Act y = a;
  for (std::size_t i = 0; i < y.v.size(); ++i) y.v[i] += b.v[i];
  return y;
}

// VALID pooling (max or average), square window.
inline Act pool_valid(const Act& x, int k, int s, bool max) {
  const int oh = (x.h - k) / s + 1, ow = (x.w - k) / s + 1;
  Act y(oh, ow, x.c);
  for (int oy = 0; oy < oh; ++oy)
    for (int ox = 0; ox < ow; ++ox)
      for (int ch = 0; ch < x.c; ++ch) {
        float acc = max ? -std::numeric_limits<float>::infinity() : 0.f;
        for (int ky = 0; ky < k; ++ky)
          for (int kx = 0; kx < k; ++kx) {
            const float v = x.at(oy * s + ky, ox * s + kx, ch);
            acc = max ? std::max(acc, v) : acc + v;
          }
        y.at(oy, ox, ch) = max ? acc : acc / static_cast<float>(k * k);
      }
  return y;
}

// x.mean([1, 2]) then matMul with w [C, out] (+ bias [out] when given).
inline std::vector<float> mean_dense(const Act& x, const model::Tensor& w, const model::Tensor* bias) {
  std::vector<float> m(x.c, 0.f);
  for (int y = 0; y < x.h; ++y)
    for (int xx = 0; xx < x.w; ++xx)
      for (int ch = 0; ch < x.c; ++ch) m[ch] += x.at(y, xx, ch);
  for (float& f : m) f /= static_cast<float>(x.h * x.w);
  const int out = w.shape[1];
  std::vector<float> r(out, 0.f);
  for (int o = 0; o < out; ++o) {
    float acc = bias ? bias->data[o] : 0.f;
    for (int ch = 0; ch < x.c; ++ch) acc += m[ch] * w.data[static_cast<std::size_t>(ch) * out + o];
    r[o] = acc;
  }
  return r;
}

// BGR 8-bit or float image -> RGB activations (x - mean_rgb) / divisor.
inline Act from_image(const cv::Mat& bgr, const double mean_rgb[3], double divisor) {
  cv::Mat f;
  bgr.convertTo(f, CV_32FC3);
  Act a(f.rows, f.cols, 3);
  for (int y = 0; y < f.rows; ++y)
    for (int x = 0; x < f.cols; ++x) {
      const cv::Vec3f p = f.at<cv::Vec3f>(y, x);
      for (int c = 0; c < 3; ++c)
        a.at(y, x, c) = (p[2 - c] - static_cast<float>(mean_rgb[c])) / static_cast<float>(divisor);
    }
  return a;
}

inline cv::Mat random_image(int h, int w, std::uint64_t seed) {
  cv::Mat img(h, w, CV_8UC3);
  cv::RNG rng(seed);
  rng.fill(img, cv::RNG::UNIFORM, 0, 256);
  return img;
}

}  // namespace faceguard::test::ref
