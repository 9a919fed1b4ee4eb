// NetBuilder layers on random tensors (fixed seeds) against the naive TF-semantics reference ops.
#include <gtest/gtest.h>

#include <cmath>

#include <opencv2/core.hpp>

#include "model/net_builder.hpp"
#include "model/reference_ops.hpp"

namespace faceguard {
namespace {

using model::Node;
using model::Pad;
using test::ref::Act;

model::Tensor random_tensor(const std::string& name, std::vector<int> shape, std::uint64_t seed) {
  model::Tensor t;
  t.name = name;
  t.shape = shape;
  std::size_t n = 1;
  for (int d : shape) n *= d;
  t.data.resize(n);
  cv::RNG rng(seed);
  for (float& v : t.data) v = static_cast<float>(rng.uniform(-1.0, 1.0));
  return t;
}

Act random_act(int h, int w, int c, std::uint64_t seed) {
  Act a(h, w, c);
  cv::RNG rng(seed);
  for (float& v : a.v) v = static_cast<float>(rng.uniform(-1.0, 1.0));
  return a;
}

cv::Mat to_blob(const Act& a) {
  const int sz[4] = {1, a.c, a.h, a.w};
  cv::Mat b(4, sz, CV_32F);
  for (int c = 0; c < a.c; ++c)
    for (int y = 0; y < a.h; ++y)
      for (int x = 0; x < a.w; ++x) b.ptr<float>()[(c * a.h + y) * a.w + x] = a.at(y, x, c);
  return b;
}

// Max |net - ref| over an NCHW (or N x K) output.
float compare(const cv::Mat& out, const Act& ref) {
  EXPECT_EQ(out.total(), ref.v.size());
  if (out.total() != ref.v.size()) return 1e9f;
  float m = 0;
  for (int c = 0; c < ref.c; ++c)
    for (int y = 0; y < ref.h; ++y)
      for (int x = 0; x < ref.w; ++x)
        m = std::max(m, std::abs(out.ptr<float>()[(c * ref.h + y) * ref.w + x] - ref.at(y, x, c)));
  return m;
}

cv::Mat run(const std::function<void(model::NetBuilder&)>& body, const Act& input) {
  auto net = model::build_net("test", body);
  EXPECT_TRUE(net.ok()) << (net.ok() ? "" : net.error().message);
  if (!net.ok()) return {};
  net->setInput(to_blob(input));
  return net->forward().clone();
}

TEST(NetBuilder, TfSameConvAtStrideTwoIsAsymmetricAndExact) {
  for (int size : {9, 10, 15}) {
    const model::Tensor f = random_tensor("f", {3, 3, 4, 5}, 1);
    const model::Tensor b = random_tensor("b", {5}, 2);
    const Act x = random_act(size, size, 4, 3);
    Act ref = test::ref::conv2d(x, f, 2, true);
    test::ref::add_channel(ref, b);
    cv::Mat out = run(
        [&](model::NetBuilder& nb) {
          nb.conv("c", nb.input(), model::conv_weights_hwio(f, &b),
                  {.stride = 2, .pad = Pad::tf_same(size, size, 3, 3, 2, 2)});
        },
        x);
    EXPECT_LT(compare(out, ref), 1e-5f) << "size " << size;
  }
}

TEST(NetBuilder, OpenCvSameModeMatchesTfSame) {
  const model::Tensor f = random_tensor("f", {3, 3, 2, 3}, 4);
  const Act x = random_act(12, 12, 2, 5);
  const Act ref = test::ref::conv2d(x, f, 2, true);
  cv::Mat out = run([&](model::NetBuilder& nb) {
    nb.conv("c", nb.input(), model::conv_weights_hwio(f), {.stride = 2, .pad = Pad::opencv_same()});
  }, x);
  EXPECT_LT(compare(out, ref), 1e-5f);
}

TEST(NetBuilder, ValidConvAndFoldedScale) {
  const model::Tensor f = random_tensor("f", {7, 7, 3, 4}, 6);
  const model::Tensor b = random_tensor("b", {4}, 7);
  const model::Tensor s = random_tensor("s", {4}, 8);
  const model::Tensor t = random_tensor("t", {4}, 9);
  const Act x = random_act(20, 20, 3, 10);
  Act ref = test::ref::conv2d(x, f, 2, false);
  test::ref::add_channel(ref, b);
  test::ref::mul_channel(ref, s);
  test::ref::add_channel(ref, t);
  cv::Mat folded = run([&](model::NetBuilder& nb) {
    auto w = model::conv_weights_hwio(f, &b);
    model::fold_scale_shift(w, s.data, t.data);
    nb.conv("c", nb.input(), w, {.stride = 2});
  }, x);
  EXPECT_LT(compare(folded, ref), 1e-5f);
  cv::Mat layered = run([&](model::NetBuilder& nb) {
    Node c = nb.conv("c", nb.input(), model::conv_weights_hwio(f, &b), {.stride = 2});
    nb.scale("s", c, s.data, t.data);
  }, x);
  EXPECT_LT(compare(layered, ref), 1e-5f);
}

TEST(NetBuilder, SeparableConvMatchesDepthwiseThenPointwise) {
  const model::Tensor dw = random_tensor("dw", {3, 3, 6, 1}, 11);
  const model::Tensor pw = random_tensor("pw", {1, 1, 6, 8}, 12);
  const model::Tensor b = random_tensor("b", {8}, 13);
  const Act x = random_act(14, 14, 6, 14);
  for (int stride : {1, 2}) {
    Act ref = test::ref::depthwise2d(x, dw, stride, true);
    ref = test::ref::conv2d(ref, pw, 1, true);
    test::ref::add_channel(ref, b);
    test::ref::relu(ref);
    cv::Mat out = run([&](model::NetBuilder& nb) {
      Node y = nb.separable_conv("sep", nb.input(), dw, pw, &b,
                                 {.stride = stride, .pad = Pad::tf_same(14, 14, 3, 3, stride, stride)});
      nb.relu("r", y);
    }, x);
    EXPECT_LT(compare(out, ref), 1e-5f) << "stride " << stride;
  }
}

TEST(NetBuilder, PoolingZeroExtendedSumAndPadding) {
  const Act x = random_act(9, 9, 3, 15);
  // Average pool 2/2 VALID (floor: 9 -> 4) against the reference.
  cv::Mat avg = run([&](model::NetBuilder& nb) { nb.ave_pool("p", nb.input(), {.kernel = 2, .stride = 2}); }, x);
  EXPECT_LT(compare(avg, test::ref::pool_valid(x, 2, 2, false)), 1e-6f);
  cv::Mat mx = run([&](model::NetBuilder& nb) { nb.max_pool("p", nb.input(), {.kernel = 3, .stride = 2}); }, x);
  EXPECT_LT(compare(mx, test::ref::pool_valid(x, 3, 2, true)), 1e-6f);
  // Max pool 2/1 with TF SAME (one extra row/column at the end, ignored by max): 9 -> 9.
  cv::Mat same = run([&](model::NetBuilder& nb) {
    nb.max_pool("p", nb.input(), {.kernel = 2, .stride = 1, .pad = Pad::tf_same(9, 9, 2, 2, 1, 1)});
  }, x);
  Act ref_same(9, 9, 3);
  for (int y = 0; y < 9; ++y)
    for (int xx = 0; xx < 9; ++xx)
      for (int c = 0; c < 3; ++c) {
        float m = x.at(y, xx, c);
        if (y + 1 < 9) m = std::max(m, x.at(y + 1, xx, c));
        if (xx + 1 < 9) m = std::max(m, x.at(y, xx + 1, c));
        if (y + 1 < 9 && xx + 1 < 9) m = std::max(m, x.at(y + 1, xx + 1, c));
        ref_same.at(y, xx, c) = m;
      }
  EXPECT_LT(compare(same, ref_same), 1e-6f);

  // dlib's down-sampling shortcut: 1x1 conv to 5 channels, padded bottom/right by one, plus the
  // 3-channel input zero-extended to 5.
  const model::Tensor f = random_tensor("f", {1, 1, 3, 5}, 16);
  // Input 9x9x3 -> pool 4x4x3; conv branch 4x4x5 padded to 5x5; shortcut = the pool padded to 5x5x3,
  // zero-extended to 5 channels by the sum.
  cv::Mat out = run([&](model::NetBuilder& nb) {
    Node p = nb.ave_pool("pool", nb.input(), {.kernel = 2, .stride = 2});
    Node c = nb.conv("c", p, model::conv_weights_hwio(f));
    Node cp = nb.pad("cp", c, Pad{0, 0, 1, 1, {}});
    Node pp = nb.pad("pp", p, Pad{0, 0, 1, 1, {}});
    nb.sum("sum", {cp, pp}, true);
  }, x);
  const Act pooled = test::ref::pool_valid(x, 2, 2, false);
  const Act conv = test::ref::conv2d(pooled, f, 1, false);
  Act expected(5, 5, 5);
  for (int yy = 0; yy < 4; ++yy)
    for (int xx = 0; xx < 4; ++xx)
      for (int c = 0; c < 5; ++c) expected.at(yy, xx, c) = conv.at(yy, xx, c) + (c < 3 ? pooled.at(yy, xx, c) : 0.f);
  EXPECT_LT(compare(out, expected), 1e-5f);
}

TEST(NetBuilder, DenseLayerUsesTfLayout) {
  const model::Tensor w = random_tensor("w", {6, 4}, 18);
  const model::Tensor b = random_tensor("b", {4}, 19);
  const Act x = random_act(3, 3, 6, 20);
  cv::Mat out = run([&](model::NetBuilder& nb) {
    Node g = nb.global_ave_pool("g", nb.input());
    nb.dense_tf("fc", g, w, &b);
  }, x);
  const std::vector<float> ref = test::ref::mean_dense(x, w, &b);
  ASSERT_EQ(out.total(), 4u);
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(out.ptr<float>()[i], ref[i], 1e-5f);
}

TEST(NetBuilder, MistakesBecomeModelErrors) {
  auto dup = model::build_net("dup", [](model::NetBuilder& nb) {
    nb.relu("a", nb.input());
    nb.relu("a", nb.input());
  });
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.error().code, ErrorCode::kModelError);
  model::WeightMap empty;
  auto missing = model::build_net("missing", [&](model::NetBuilder& nb) {
    nb.dense_tf("fc", nb.input(), model::require(empty, "fc/weights", {2, 2}), nullptr);
  });
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::kModelError);
  EXPECT_NE(missing.error().message.find("fc/weights"), std::string::npos) << missing.error().message;
  const model::Tensor dw = random_tensor("dw", {3, 3, 4, 1}, 1), pw = random_tensor("pw", {1, 1, 5, 2}, 2);
  auto mismatch = model::build_net("mismatch", [&](model::NetBuilder& nb) {
    nb.separable_conv("s", nb.input(), dw, pw, nullptr, {});
  });
  EXPECT_FALSE(mismatch.ok());
}

}  // namespace
}  // namespace faceguard
