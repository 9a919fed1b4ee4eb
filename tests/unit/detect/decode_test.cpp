// Box decoding of the three detectors against hand-worked values (no models).
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "detect/blazeface.hpp"
#include "detect/ssd_mobilenet.hpp"
#include "detect/tiny_face.hpp"

namespace faceguard::detect {
namespace {

TEST(SsdDecode, ZeroEncodingReturnsThePrior) {
  const CornerBox prior{0.1f, 0.2f, 0.3f, 0.6f};
  const float t[4] = {0.f, 0.f, 0.f, 0.f};
  const CornerBox b = ssd_decode_box(prior, t);
  EXPECT_NEAR(b.ymin, 0.1f, 1e-6);
  EXPECT_NEAR(b.xmin, 0.2f, 1e-6);
  EXPECT_NEAR(b.ymax, 0.3f, 1e-6);
  EXPECT_NEAR(b.xmax, 0.6f, 1e-6);
}

TEST(SsdDecode, AppliesVariancesTenTenFiveFive) {
  // Prior centre (0.5, 0.5), size 0.2 x 0.4 (h x w). ty = 10 shifts the centre by one height; th = 5 * ln 2
  // doubles the height; tw = -5 * ln 2 halves the width; tx = -5 shifts left by half a width.
  const CornerBox prior{0.4f, 0.3f, 0.6f, 0.7f};
  const float t[4] = {10.f, -5.f, 5.f * std::log(2.f), -5.f * std::log(2.f)};
  const CornerBox b = ssd_decode_box(prior, t);
  EXPECT_NEAR(b.ymin, 0.7f - 0.2f, 1e-5);
  EXPECT_NEAR(b.ymax, 0.7f + 0.2f, 1e-5);
  EXPECT_NEAR(b.xmin, 0.3f - 0.1f, 1e-5);
  EXPECT_NEAR(b.xmax, 0.3f + 0.1f, 1e-5);
}

TEST(SsdBoxToImage, SquareImageScalesByItsSide) {
  const auto b = ssd_box_to_image({0.25f, 0.5f, 0.75f, 1.25f}, 400, 400);
  ASSERT_TRUE(b.has_value());
  EXPECT_FLOAT_EQ(b->x, 200.f);
  EXPECT_FLOAT_EQ(b->y, 100.f);
  EXPECT_FLOAT_EQ(b->width, 200.f);  // xmax clamped to 1
  EXPECT_FLOAT_EQ(b->height, 200.f);
}

TEST(SsdBoxToImage, LandscapeImageUndoesBottomPaddingWithFaceApiRounding) {
  // 1000 x 333: reshaped height round(333 * 0.512) = round(170.496) = 170, so y scales by 512/170 * 333,
  // not exactly by 1000 (face-api's rounding, kept for parity).
  const auto b = ssd_box_to_image({0.1f, 0.1f, 0.2f, 0.2f}, 1000, 333);
  ASSERT_TRUE(b.has_value());
  EXPECT_NEAR(b->x, 100.f, 1e-3);
  EXPECT_NEAR(b->y, 0.1 * 512.0 / 170.0 * 333.0, 1e-3);
  EXPECT_NEAR(b->height, 0.1 * 512.0 / 170.0 * 333.0, 1e-3);
  EXPECT_FALSE(ssd_box_to_image({0.5f, 0.5f, -0.2f, 0.6f}, 100, 100).has_value());  // negative height
}

TEST(BlazeFaceAnchors, GridOrderAndCount) {
  const auto a = blazeface_anchors();
  ASSERT_EQ(a.size(), static_cast<std::size_t>(kBlazeFaceAnchors));
  EXPECT_FLOAT_EQ(a[0].cx, 0.5f / 16);
  EXPECT_FLOAT_EQ(a[1].cx, 0.5f / 16);  // two anchors per 16x16 cell
  EXPECT_FLOAT_EQ(a[2].cx, 1.5f / 16);
  EXPECT_FLOAT_EQ(a[32].cy, 1.5f / 16);  // second row starts after 16 cells x 2
  EXPECT_FLOAT_EQ(a[512].cx, 0.5f / 8);  // the 8x8 layer, 6 per cell
  EXPECT_FLOAT_EQ(a[517].cx, 0.5f / 8);
  EXPECT_FLOAT_EQ(a[518].cx, 1.5f / 8);
  EXPECT_FLOAT_EQ(a.back().cx, 7.5f / 8);
  EXPECT_FLOAT_EQ(a.back().cy, 7.5f / 8);
}

TEST(BlazeFaceDecode, OffsetsAreInInputPixelsAndScoresAreClippedSigmoids) {
  const auto anchors = blazeface_anchors();
  std::vector<float> logits(kBlazeFaceAnchors, -200.f);  // clipped to -100: never passes
  std::vector<float> reg(static_cast<std::size_t>(kBlazeFaceAnchors) * kBlazeFaceRegressors, 0.f);
  const int i = 600;  // an 8x8 anchor
  logits[i] = 2.f;
  float* r = reg.data() + i * kBlazeFaceRegressors;
  r[0] = 12.8f;  // +0.1 of a 128 input
  r[1] = -6.4f;
  r[2] = 32.f;
  r[3] = 64.f;
  r[4] = 1.28f;  // keypoint 0 x
  r[5] = 0.f;
  const auto c = blazeface_decode(logits, reg, anchors, 128, 0.75f);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_NEAR(c[0].score, 1.f / (1.f + std::exp(-2.f)), 1e-6);
  const float cx = anchors[i].cx + 0.1f, cy = anchors[i].cy - 0.05f;
  EXPECT_NEAR(c[0].box.x, cx - 0.125f, 1e-6);
  EXPECT_NEAR(c[0].box.y, cy - 0.25f, 1e-6);
  EXPECT_NEAR(c[0].box.width, 0.25f, 1e-6);
  EXPECT_NEAR(c[0].box.height, 0.5f, 1e-6);
  ASSERT_EQ(c[0].keypoints.size(), 6u);
  EXPECT_NEAR(c[0].keypoints[0].x, anchors[i].cx + 0.01f, 1e-6);
  EXPECT_NEAR(c[0].keypoints[1].y, anchors[i].cy, 1e-6);
  // Below threshold: sigmoid(1) = 0.73 < 0.75.
  logits[i] = 1.f;
  EXPECT_TRUE(blazeface_decode(logits, reg, anchors, 128, 0.75f).empty());
}

TEST(TinyDecode, YoloCellOffsetsAnchorsAndPaddingCorrection) {
  const int cells = 2;
  std::vector<float> grid(static_cast<std::size_t>(cells) * cells * kTinyAnchorCount * kTinyEncoding, -10.f);
  // Cell (row 1, col 0), anchor 2: tx = ty = 0 (sigmoid 0.5), tw = th = 0 (anchor size), score logit 3.
  float* t = grid.data() + ((1 * cells + 0) * kTinyAnchorCount + 2) * kTinyEncoding;
  t[0] = t[1] = t[2] = t[3] = 0.f;
  t[4] = 3.f;
  // Reshaped 64 x 32 in a 64 square: y is stretched by 64/32 = 2 (bottom padding undone).
  const auto c = tiny_decode(grid, cells, 64, 32, 0.5f);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_NEAR(c[0].score, 1.0 / (1.0 + std::exp(-3.0)), 1e-6);
  const double w = kTinyAnchors[2][0] / cells, h = kTinyAnchors[2][1] / cells * 2.0;
  EXPECT_NEAR(c[0].box.width, w, 1e-5);
  EXPECT_NEAR(c[0].box.height, h, 1e-5);
  EXPECT_NEAR(c[0].box.x, 0.5 / cells - w / 2, 1e-5);
  EXPECT_NEAR(c[0].box.y, 1.5 / cells * 2.0 - h / 2, 1e-5);
  // min_score 0 keeps every cell and anchor, like face-api's `!scoreThreshold`.
  EXPECT_EQ(tiny_decode(grid, cells, 64, 32, 0.f).size(), static_cast<std::size_t>(cells * cells * kTinyAnchorCount));
  EXPECT_TRUE(tiny_decode(std::vector<float>(3), cells, 64, 32, 0.5f).empty());  // short grid
}

}  // namespace
}  // namespace faceguard::detect
