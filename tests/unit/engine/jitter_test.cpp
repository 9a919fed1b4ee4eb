// Test-time jitter of chips (aligner.hpp: ChipJitter, jitter_transform, align_jittered) and the landmark
// refinement box (pipeline.hpp: refined_landmark_box), without models.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <numbers>
#include <set>
#include <tuple>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "faceguard/aligner.hpp"
#include "faceguard/pipeline.hpp"

namespace faceguard {
namespace {

cv::Point2d apply(const cv::Mat& m, double x, double y) {
  return {m.at<double>(0, 0) * x + m.at<double>(0, 1) * y + m.at<double>(0, 2),
          m.at<double>(1, 0) * x + m.at<double>(1, 1) * y + m.at<double>(1, 2)};
}

TEST(JitterTransform, IdentityJitterIsTheIdentity) {
  const cv::Mat m = jitter_transform(ChipJitter{}, 150);
  const cv::Mat eye = (cv::Mat_<double>(2, 3) << 1, 0, 0, 0, 1, 0);
  EXPECT_EQ(cv::norm(m, eye, cv::NORM_INF), 0.0);
}

TEST(JitterTransform, ShiftMovesEveryPixelByTheShift) {
  const cv::Mat m = jitter_transform(ChipJitter{1.f, 0.f, 2.f, -2.f}, 150);
  for (auto [x, y] : {std::pair{0.0, 0.0}, {74.5, 74.5}, {149.0, 10.0}}) {
    const cv::Point2d q = apply(m, x, y);
    EXPECT_NEAR(q.x, x + 2.0, 1e-12);
    EXPECT_NEAR(q.y, y - 2.0, 1e-12);
  }
}

TEST(JitterTransform, ScaleAndRotationKeepTheCentreAndActAsSpecified) {
  const int size = 150;
  const double c = 74.5;
  const cv::Mat m = jitter_transform(ChipJitter{1.05f, 3.f, 0.f, 0.f}, size);
  const cv::Point2d centre = apply(m, c, c);
  EXPECT_NEAR(centre.x, c, 1e-9);
  EXPECT_NEAR(centre.y, c, 1e-9);
  // A point 40 px right of the centre goes to 42 px at +3 degrees (towards +y: image y points down).
  const cv::Point2d q = apply(m, c + 40, c);
  const double s = static_cast<double>(1.05f), th = 3.0 * std::numbers::pi / 180.0;
  EXPECT_NEAR(q.x - c, 40 * s * std::cos(th), 1e-9);
  EXPECT_NEAR(q.y - c, 40 * s * std::sin(th), 1e-9);
  EXPECT_NEAR(std::hypot(q.x - c, q.y - c), 42.0, 1e-4);
}

TEST(StandardJitters, AreFixedDistinctAndWithinTheStatedRanges) {
  const auto js = standard_jitters();
  ASSERT_EQ(js.size(), 12u);
  std::set<std::tuple<float, float, float, float>> seen;
  for (const auto& j : js) {
    EXPECT_LE(std::abs(j.scale - 1.f), 0.05f + 1e-6f);
    EXPECT_LE(std::abs(j.rotation_deg), 3.f);
    EXPECT_LE(std::abs(j.dx), 2.f);
    EXPECT_LE(std::abs(j.dy), 2.f);
    EXPECT_FALSE(j.scale == 1.f && j.rotation_deg == 0.f && j.dx == 0.f && j.dy == 0.f) << "identity in the set";
    seen.insert({j.scale, j.rotation_deg, j.dx, j.dy});
  }
  EXPECT_EQ(seen.size(), js.size());
  // Deterministic: the same list, element for element, on every call.
  const auto again = standard_jitters();
  EXPECT_EQ(again.data(), js.data());
  EXPECT_EQ(js[0].rotation_deg, 3.f);
  EXPECT_EQ(js[2].scale, 1.05f);
  EXPECT_EQ(js[4].dx, 2.f);
}

// A face whose five points sit exactly on the dlib150 template: align() is then the identity warp of a
// 150 x 150 image onto the chip.
Face template_face() {
  Face f;
  f.scheme = LandmarkScheme::kFivePoint;
  for (const auto& p : ChipTemplate::dlib150().points) f.landmarks.push_back(p);
  f.box = Box{0, 0, 150, 150};
  return f;
}

cv::Mat test_image() {
  cv::Mat img(150, 150, CV_8UC3);
  cv::randu(img, cv::Scalar::all(0), cv::Scalar::all(255));
  cv::GaussianBlur(img, img, {0, 0}, 3.0);  // smooth, so that bilinear sampling is well behaved
  return img;
}

TEST(AlignJittered, IdentityJitterGivesTheAlignedChip) {
  const cv::Mat img = test_image();
  const Face f = template_face();
  auto a = align(img, f, ChipTemplate::dlib150(), AlignMethod::kSimilarity5);
  auto b = align_jittered(img, f, ChipTemplate::dlib150(), AlignMethod::kSimilarity5, ChipJitter{});
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(cv::norm(*a, *b, cv::NORM_INF), 0.0);
}

TEST(AlignJittered, AnIntegerShiftMovesTheChipByExactlyThatManyPixels) {
  const cv::Mat img = test_image();
  const Face f = template_face();
  auto base = align(img, f, ChipTemplate::dlib150(), AlignMethod::kSimilarity5);
  auto shifted = align_jittered(img, f, ChipTemplate::dlib150(), AlignMethod::kSimilarity5, ChipJitter{1.f, 0.f, 2.f, 0.f});
  ASSERT_TRUE(base.ok() && shifted.ok());
  // jittered(x + 2, y) == chip(x, y) away from the border the shift brings in (black).
  const cv::Rect inner(10, 10, 120, 130);
  cv::Mat a = (*base)(inner), b = (*shifted)(inner + cv::Point(2, 0));
  EXPECT_LE(cv::norm(a, b, cv::NORM_INF), 1.0);  // the identity fit is exact to float rounding
  // The two columns the shift uncovers are black (dlib pads with zeros).
  EXPECT_EQ(cv::countNonZero((*shifted)(cv::Rect(0, 0, 2, 150)).reshape(1)), 0);
}

TEST(AlignJittered, IsDeterministicAndComposesIntoOneWarp) {
  const cv::Mat img = test_image();
  Face f = template_face();
  const ChipJitter j{0.95f, -3.f, -2.f, 2.f};
  auto a = align_jittered(img, f, ChipTemplate::dlib150(), AlignMethod::kSimilarity5, j);
  auto b = align_jittered(img, f, ChipTemplate::dlib150(), AlignMethod::kSimilarity5, j);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(cv::norm(*a, *b, cv::NORM_INF), 0.0);
  // Equal to warping the source image once with jitter o alignment.
  auto m = alignment_transform(f, ChipTemplate::dlib150(), AlignMethod::kSimilarity5);
  ASSERT_TRUE(m.ok());
  cv::Mat m3 = cv::Mat::eye(3, 3, CV_64F), j3 = cv::Mat::eye(3, 3, CV_64F);
  m->copyTo(m3(cv::Rect(0, 0, 3, 2)));
  jitter_transform(j, 150).copyTo(j3(cv::Rect(0, 0, 3, 2)));
  const cv::Mat mj = (j3 * m3)(cv::Rect(0, 0, 3, 2));
  cv::Mat expect;
  cv::warpAffine(img, expect, mj, {150, 150}, cv::INTER_LINEAR, cv::BORDER_CONSTANT, cv::Scalar::all(0));
  EXPECT_EQ(cv::norm(*a, expect, cv::NORM_INF), 0.0);
}

TEST(AlignJittered, AxisCropIsJitteredOnItsChip) {
  const cv::Mat img = test_image();
  Face f;
  f.box = Box{20, 20, 100, 100};
  auto base = align(img, f, ChipTemplate::dlib150(), AlignMethod::kAxisCrop);
  auto j = align_jittered(img, f, ChipTemplate::dlib150(), AlignMethod::kAxisCrop, ChipJitter{1.f, 0.f, 0.f, -2.f});
  ASSERT_TRUE(base.ok() && j.ok());
  ASSERT_EQ(j->type(), base->type());
  const cv::Rect inner(5, 5, 140, 140);
  EXPECT_LE(cv::norm((*base)(inner), (*j)(inner - cv::Point(0, 2)), cv::NORM_INF), 1e-3);
}

TEST(AlignJittered, RefusesNonFiniteOrAbsurdJitters) {
  const cv::Mat img = test_image();
  const Face f = template_face();
  for (const ChipJitter& j : {ChipJitter{0.f, 0.f, 0.f, 0.f}, ChipJitter{1.f, std::numeric_limits<float>::quiet_NaN(), 0.f, 0.f},
                              ChipJitter{1.f, 0.f, std::numeric_limits<float>::infinity(), 0.f}}) {
    auto r = align_jittered(img, f, ChipTemplate::dlib150(), AlignMethod::kSimilarity5, j);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  }
  auto crop = alignment_transform(f, ChipTemplate::dlib150(), AlignMethod::kAxisCrop);
  EXPECT_FALSE(crop.ok());
}

std::vector<Point2f> box_landmarks(float x0, float y0, float w, float h) {
  // 68 points spread over [x0, x0 + w] x [y0, y0 + h], touching all four sides.
  std::vector<Point2f> p;
  for (int i = 0; i < 68; ++i) {
    const float t = static_cast<float>(i) / 67.f;
    p.push_back({x0 + w * t, y0 + h * std::abs(std::sin(3.f * t))});
  }
  p[5] = {x0 + 0.3f * w, y0};
  p[6] = {x0 + 0.6f * w, y0 + h};
  return p;
}

TEST(RefinedLandmarkBox, IsTheLandmarkBoundingBoxMovedAndScaledAsDocumented) {
  const auto p = box_landmarks(100, 200, 80, 90);
  auto b = refined_landmark_box(p);
  ASSERT_TRUE(b.ok()) << b.error().message;
  // Translation and scale equivariance: doubling the landmarks about the origin doubles the box, a shift
  // shifts it.
  std::vector<Point2f> q = p;
  for (auto& x : q) x = {2.f * x.x + 7.f, 2.f * x.y - 3.f};
  auto c = refined_landmark_box(q);
  ASSERT_TRUE(c.ok());
  EXPECT_NEAR(c->x, 2.f * b->x + 7.f, 1e-3);
  EXPECT_NEAR(c->y, 2.f * b->y - 3.f, 1e-3);
  EXPECT_NEAR(c->width, 2.f * b->width, 1e-3);
  EXPECT_NEAR(c->height, 2.f * b->height, 1e-3);
  // SSD boxes run from the brows to below the chin and a little wider than the jaw: the box contains the
  // landmarks' centre and is at least as large as their bounding box.
  EXPECT_LT(b->x, 140.f);
  EXPECT_GT(b->x + b->width, 140.f);
  EXPECT_LT(b->y, 245.f);
  EXPECT_GT(b->y + b->height, 245.f);
  EXPECT_GE(b->width, 80.f * 0.9f);
  EXPECT_GE(b->height, 90.f * 0.9f);
}

TEST(RefinedLandmarkBox, RefusesWrongCountsNonFiniteAndDegeneratePoints) {
  auto p = box_landmarks(0, 0, 50, 50);
  EXPECT_FALSE(refined_landmark_box(std::span<const Point2f>(p.data(), 67)).ok());
  auto nan = p;
  nan[10].x = std::numeric_limits<float>::quiet_NaN();
  EXPECT_FALSE(refined_landmark_box(nan).ok());
  std::vector<Point2f> same(68, Point2f{3.f, 4.f});
  EXPECT_FALSE(refined_landmark_box(same).ok());
}

}  // namespace
}  // namespace faceguard
