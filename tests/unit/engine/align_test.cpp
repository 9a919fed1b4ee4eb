// Alignment without models: five points, the least-squares similarity, templates, warping and
// face-api's axis-aligned crop.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "align/landmark68.hpp"
#include "faceguard/aligner.hpp"
#include "model/net_builder.hpp"

namespace faceguard {
namespace {

const ChipTemplate* const kTemplates[] = {&ChipTemplate::dlib150(), &ChipTemplate::dlib150_blazeface(),
                                          &ChipTemplate::arcface112(), &ChipTemplate::arcface112_blazeface()};

// p -> [s cos, -s sin; s sin, s cos] p + t
Point2f apply(const cv::Mat& m, Point2f p) {
  return {static_cast<float>(m.at<double>(0, 0) * p.x + m.at<double>(0, 1) * p.y + m.at<double>(0, 2)),
          static_cast<float>(m.at<double>(1, 0) * p.x + m.at<double>(1, 1) * p.y + m.at<double>(1, 2))};
}

cv::Mat similarity(double s, double theta, double tx, double ty) {
  return (cv::Mat_<double>(2, 3) << s * std::cos(theta), -s * std::sin(theta), tx, s * std::sin(theta),
          s * std::cos(theta), ty);
}

TEST(Similarity, RecoversAKnownTransformExactly) {
  const ChipTemplate& tpl = ChipTemplate::dlib150();
  // Source points = template points under the inverse of a known similarity (face 2.5x the chip, rotated).
  const cv::Mat to_chip = similarity(0.4, -0.35, 31.0, -12.5);
  cv::Mat inv;
  cv::invertAffineTransform(to_chip, inv);
  std::array<Point2f, 5> src{};
  for (int i = 0; i < 5; ++i) src[i] = apply(inv, tpl.points[i]);
  auto m = similarity_transform(src, tpl);
  ASSERT_TRUE(m.ok()) << m.error().message;
  ASSERT_EQ(m->rows, 2);
  ASSERT_EQ(m->cols, 3);
  for (int r = 0; r < 2; ++r)
    for (int c = 0; c < 3; ++c) EXPECT_NEAR(m->at<double>(r, c), to_chip.at<double>(r, c), 1e-4) << r << "," << c;
}

TEST(Similarity, IsTheLeastSquaresFitAndHonoursWeights) {
  const ChipTemplate& tpl = ChipTemplate::dlib150();
  std::array<Point2f, 5> src = tpl.points;
  src[3].x += 4.f;  // one noisy point: the fit is no longer exact
  auto m = similarity_transform(src, tpl);
  ASSERT_TRUE(m.ok());
  auto residual = [&](const cv::Mat& t) {
    double e = 0;
    for (int i = 0; i < 5; ++i) {
      const Point2f q = apply(t, src[i]);
      e += std::pow(q.x - tpl.points[i].x, 2) + std::pow(q.y - tpl.points[i].y, 2);
    }
    return e;
  };
  // Any perturbation of the parameters makes the squared error larger (it is the minimiser).
  const double best = residual(*m);
  for (int k = 0; k < 4; ++k) {
    cv::Mat p = m->clone();
    const double d = k < 2 ? 1e-3 : 1e-1;
    if (k == 0) p.at<double>(0, 0) += d, p.at<double>(1, 1) += d;
    if (k == 1) p.at<double>(0, 1) -= d, p.at<double>(1, 0) += d;
    if (k == 2) p.at<double>(0, 2) += d;
    if (k == 3) p.at<double>(1, 2) += d;
    EXPECT_GT(residual(p), best);
  }
  // A weight-0 point does not move the fit.
  ChipTemplate w = tpl;
  w.weights[4] = 0;
  std::array<Point2f, 5> a = tpl.points, b = tpl.points;
  b[4] = {500, -300};
  auto ma = similarity_transform(a, w), mb = similarity_transform(b, w);
  ASSERT_TRUE(ma.ok() && mb.ok());
  EXPECT_LT(cv::norm(*ma, *mb, cv::NORM_INF), 1e-9);
}

TEST(Similarity, TemplatePointsMapOntoThemselves) {
  for (const ChipTemplate* tpl : kTemplates) {
    auto m = similarity_transform(tpl->points, *tpl);
    ASSERT_TRUE(m.ok()) << tpl->name << ": " << m.error().message;
    const cv::Mat identity = (cv::Mat_<double>(2, 3) << 1, 0, 0, 0, 1, 0);
    EXPECT_LT(cv::norm(*m, identity, cv::NORM_INF), 1e-5) << tpl->name;
  }
}

TEST(Similarity, DegeneratePointsAreErrorsNotCrashes) {
  const ChipTemplate& tpl = ChipTemplate::arcface112();
  std::array<Point2f, 5> same{};
  same.fill({10, 10});
  auto m = similarity_transform(same, tpl);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().code, ErrorCode::kInvalidArgument);
  std::array<Point2f, 5> nan = tpl.points;
  nan[2].x = std::numeric_limits<float>::quiet_NaN();
  EXPECT_FALSE(similarity_transform(nan, tpl).ok());
  ChipTemplate one = tpl;
  one.weights = {1, 0, 0, 0, 0};
  EXPECT_FALSE(similarity_transform(tpl.points, one).ok());
  ChipTemplate negative = tpl;
  negative.weights[0] = -1;
  EXPECT_FALSE(similarity_transform(tpl.points, negative).ok());
}

TEST(Templates, AreWhereMODELSmdSaysAndSane) {
  EXPECT_EQ(ChipTemplate::dlib150().size, 150);
  EXPECT_EQ(ChipTemplate::arcface112().size, 112);
  EXPECT_FLOAT_EQ(ChipTemplate::arcface112().points[0].x, 38.2946f);
  EXPECT_FLOAT_EQ(ChipTemplate::dlib150().points[4].y, 103.3f);
  for (const ChipTemplate* tpl : kTemplates) {
    const auto& p = tpl->points;
    EXPECT_LT(p[0].x, p[1].x) << tpl->name;  // image-left eye is left
    EXPECT_LT(p[1].y, p[2].y) << tpl->name;  // eyes above the nose
    EXPECT_LT(p[2].y, p[3].y) << tpl->name;  // nose above the mouth
    for (const Point2f& q : p) EXPECT_TRUE(q.x > 0 && q.y > 0 && q.x < tpl->size && q.y < tpl->size) << tpl->name;
  }
  Face blaze;
  blaze.scheme = LandmarkScheme::kBlazeFace6;
  Face ibug;
  ibug.scheme = LandmarkScheme::kIbug68;
  EXPECT_EQ(&template_for(blaze, false), &ChipTemplate::dlib150_blazeface());
  EXPECT_EQ(&template_for(blaze, true), &ChipTemplate::arcface112_blazeface());
  EXPECT_EQ(&template_for(ibug, false), &ChipTemplate::dlib150());
  EXPECT_EQ(&template_for(ibug, true), &ChipTemplate::arcface112());
}

Face face68_with(Point2f left_eye, Point2f right_eye, Point2f nose, Point2f mouth_l, Point2f mouth_r) {
  Face f;
  f.scheme = LandmarkScheme::kIbug68;
  f.landmarks.assign(68, Point2f{});
  // Eye contours: six points around each centre, symmetric so that the mean is the centre.
  const float dx[6] = {-3, -1, 1, 3, 1, -1}, dy[6] = {0, -1, -1, 0, 1, 1};
  for (int k = 0; k < 6; ++k) {
    f.landmarks[36 + k] = {left_eye.x + dx[k], left_eye.y + dy[k]};
    f.landmarks[42 + k] = {right_eye.x + dx[k], right_eye.y + dy[k]};
  }
  f.landmarks[30] = nose;
  const Point2f mc{(mouth_l.x + mouth_r.x) / 2, (mouth_l.y + mouth_r.y) / 2};
  for (int k = 48; k < 68; ++k) f.landmarks[k] = mc;
  f.landmarks[48] = mouth_l;
  f.landmarks[54] = mouth_r;
  return f;
}

TEST(FivePoints, FromIbug68AndBlazeFace) {
  Face f = face68_with({40, 50}, {80, 52}, {61, 70}, {45, 90}, {77, 91});
  auto p = five_points(f);
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_NEAR((*p)[0].x, 40, 1e-5);
  EXPECT_NEAR((*p)[0].y, 50, 1e-5);
  EXPECT_NEAR((*p)[1].x, 80, 1e-5);
  EXPECT_NEAR((*p)[1].y, 52, 1e-5);
  EXPECT_EQ((*p)[2].x, 61);
  EXPECT_EQ((*p)[3].x, 45);
  EXPECT_EQ((*p)[4].y, 91);

  Face b;
  b.scheme = LandmarkScheme::kBlazeFace6;
  b.landmarks = {{10, 10}, {30, 11}, {20, 20}, {20, 30}, {2, 15}, {38, 15}};
  auto q = five_points(b);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ((*q)[3].y, 30);
  EXPECT_EQ((*q)[4].y, 30);  // mouth centre twice

  Face none;
  EXPECT_FALSE(five_points(none).ok());
  Face short68;
  short68.scheme = LandmarkScheme::kIbug68;
  short68.landmarks.resize(10);
  auto bad = five_points(short68);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalidArgument);
}

TEST(Align, SimilarityWarpPutsFeaturesOnTheTemplate) {
  // Bright dots at the five points of a face drawn 2x larger than the chip, rotated.
  const ChipTemplate& tpl = ChipTemplate::dlib150();
  cv::Mat inv;
  cv::invertAffineTransform(similarity(0.5, 0.2, 20, -30), inv);
  std::array<Point2f, 5> src{};
  for (int i = 0; i < 5; ++i) src[i] = apply(inv, tpl.points[i]);
  cv::Mat image(400, 400, CV_8UC3, cv::Scalar::all(0));
  for (const Point2f& s : src) cv::circle(image, cv::Point(cvRound(s.x), cvRound(s.y)), 4, cv::Scalar::all(255), -1);
  Face f = face68_with(src[0], src[1], src[2], src[3], src[4]);
  f.box = {0, 0, 400, 400};
  auto chip = align(image, f, tpl);
  ASSERT_TRUE(chip.ok()) << chip.error().message;
  ASSERT_EQ(chip->size(), cv::Size(150, 150));
  ASSERT_EQ(chip->type(), CV_8UC3);
  for (const Point2f& t : tpl.points) EXPECT_GT(chip->at<cv::Vec3b>(cvRound(t.y), cvRound(t.x))[0], 128) << t.x << "," << t.y;
  EXPECT_EQ(chip->at<cv::Vec3b>(10, 10)[0], 0);
  // Outside the image the chip is black (constant border).
  Face off = f;
  for (auto& p : off.landmarks) p.x -= 300, p.y -= 300;
  auto edge = align(image, off, tpl);
  ASSERT_TRUE(edge.ok());
  EXPECT_EQ(edge->at<cv::Vec3b>(5, 5), cv::Vec3b(0, 0, 0));
}

TEST(MeanFace, IsDlibsThirtyThreeStablePointsOnTheChip) {
  const auto pairs = dlib150_mean_face();
  ASSERT_EQ(pairs.size(), 33u);  // 17..67 without the eyebrows (17-26) and the lower lip (55-59, 65-67)
  for (const auto& [i, p] : pairs) {
    EXPECT_GE(i, 27);
    EXPECT_FALSE((55 <= i && i <= 59) || (65 <= i && i <= 67)) << i;
    EXPECT_GT(p.x, 0.f);
    EXPECT_LT(p.x, 150.f);
    EXPECT_GT(p.y, 0.f);
    EXPECT_LT(p.y, 150.f);
  }
  // dlib's mean face at padding 0.25: nose tip (30) at (0.490127, 0.515625) -> ((0.25 + m) / 1.5) * 150.
  EXPECT_NEAR(pairs[3].second.x, 74.0127f, 1e-3);
  EXPECT_NEAR(pairs[3].second.y, 76.5625f, 1e-3);
  // Its eye centres sit within 1.5 px of the 5-point dlib150 template (measured on dlib chips).
  auto mean = [&](int first, int last) {
    Point2f m{0, 0};
    for (const auto& [i, p] : pairs)
      if (i >= first && i <= last) m.x += p.x / 6, m.y += p.y / 6;
    return m;
  };
  const auto& tpl = ChipTemplate::dlib150();
  for (auto [eye, first] : {std::pair{0, 36}, std::pair{1, 42}}) {
    const Point2f c = mean(first, first + 5);
    EXPECT_NEAR(c.x, tpl.points[eye].x, 1.5) << first;
    EXPECT_NEAR(c.y, tpl.points[eye].y, 1.5) << first;
  }
}

TEST(MeanFace, AlignFitsAllThirtyThreePointsAndFallsBackOtherwise) {
  // A 68-point face whose stable points are the mean face under a known similarity (with the other
  // points - eyebrows, jaw, lower lip - scattered): the warp must map every stable point home.
  const cv::Mat to_chip = similarity(0.45, 0.3, 25, -20);
  cv::Mat inv;
  cv::invertAffineTransform(to_chip, inv);
  Face f;
  f.scheme = LandmarkScheme::kIbug68;
  f.box = {0, 0, 400, 400};
  f.landmarks.assign(68, Point2f{0, 0});
  for (int i = 0; i < 68; ++i) f.landmarks[i] = {static_cast<float>(37 * i % 400), static_cast<float>(91 * i % 400)};
  for (const auto& [i, p] : dlib150_mean_face()) f.landmarks[i] = apply(inv, p);
  cv::Mat image(400, 400, CV_8UC3, cv::Scalar::all(0));
  for (const auto& [i, p] : dlib150_mean_face()) {
    const Point2f s = f.landmarks[i];
    cv::circle(image, cv::Point(cvRound(s.x), cvRound(s.y)), 2, cv::Scalar::all(255), -1);
  }
  auto chip = align(image, f, ChipTemplate::dlib150(), AlignMethod::kMeanFace);
  ASSERT_TRUE(chip.ok()) << chip.error().message;
  ASSERT_EQ(chip->size(), cv::Size(150, 150));
  for (const auto& [i, p] : dlib150_mean_face())
    EXPECT_GT(chip->at<cv::Vec3b>(cvRound(p.y), cvRound(p.x))[0], 100) << "point " << i;
  // The 5-point warp of the same face lands elsewhere (the scattered points move its eye/mouth means).
  auto five = align(image, f, ChipTemplate::dlib150(), AlignMethod::kSimilarity5);
  ASSERT_TRUE(five.ok());
  EXPECT_GT(cv::norm(*chip, *five, cv::NORM_L1), 1000.0);
  // Non-finite stable landmark: an error, not a crash.
  Face bad = f;
  bad.landmarks[30].x = std::numeric_limits<float>::quiet_NaN();
  EXPECT_FALSE(align(image, bad, ChipTemplate::dlib150(), AlignMethod::kMeanFace).ok());
  // Other chip families and landmark schemes use the 5-point warp, identical to kSimilarity5.
  auto arc_mean = align(image, f, ChipTemplate::arcface112(), AlignMethod::kMeanFace);
  auto arc_five = align(image, f, ChipTemplate::arcface112(), AlignMethod::kSimilarity5);
  ASSERT_TRUE(arc_mean.ok() && arc_five.ok());
  EXPECT_EQ(cv::norm(*arc_mean, *arc_five, cv::NORM_INF), 0.0);
}

TEST(MeanFace, MethodNamesRoundTrip) {
  for (AlignMethod m : {AlignMethod::kSimilarity5, AlignMethod::kAxisCrop, AlignMethod::kMeanFace}) {
    auto back = parse_align_method(to_string(m));
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, m);
  }
  EXPECT_FALSE(parse_align_method("dlib5").ok());
  EXPECT_FALSE(parse_align_method("").ok());
}

TEST(Align, AxisCropFollowsFaceApi) {
  cv::Mat image(200, 300, CV_8UC3);
  cv::RNG(5).fill(image, cv::RNG::UNIFORM, 0, 256);
  Face f;
  f.box = {10.7f, 20.2f, 60.f, 40.f};
  // clipAtImageBorders + floor: x 10, y 20, width floor(60) = 60, height floor(40) = 40.
  auto crop = axis_crop(image, f);
  ASSERT_TRUE(crop.ok()) << crop.error().message;
  ASSERT_EQ(crop->size(), cv::Size(60, 40));
  EXPECT_EQ(cv::norm(*crop, image(cv::Rect(10, 20, 60, 40)), cv::NORM_INF), 0);
  auto chip = align(image, f, ChipTemplate::dlib150(), AlignMethod::kAxisCrop);
  ASSERT_TRUE(chip.ok());
  ASSERT_EQ(chip->size(), cv::Size(150, 150));
  // padToSquare(centred): 10 black rows above and below the 40 rows -> 60 x 60, then x 2.5.
  // The chip stays float (face-api feeds the unrounded resize to the net).
  ASSERT_EQ(chip->type(), CV_32FC3);
  EXPECT_EQ(chip->at<cv::Vec3f>(5, 75), cv::Vec3f(0, 0, 0));
  EXPECT_EQ(chip->at<cv::Vec3f>(145, 75), cv::Vec3f(0, 0, 0));
  cv::Mat expected;
  model::resize_bilinear_tf(model::pad_to_square_tf(image(cv::Rect(10, 20, 60, 40)).clone(), true), {150, 150})
      .convertTo(expected, CV_32F);
  EXPECT_EQ(cv::norm(*chip, expected, cv::NORM_INF), 0);

  // With 68 landmarks face-api crops FaceLandmarks.alignDlib's box: eye centres (40,50) (80,50),
  // mouth centre (60,90): side floor(mean(|m-le|,|m-re|) / 0.45) = 99, origin floor(60 - 49.5) = 10,
  // floor(63.33 - 0.43 * 99) = 20.
  Face g = face68_with({40, 50}, {80, 50}, {60, 70}, {50, 90}, {70, 90});
  auto aligned = axis_crop(image, g);
  ASSERT_TRUE(aligned.ok()) << aligned.error().message;
  ASSERT_EQ(aligned->size(), cv::Size(99, 99));
  EXPECT_EQ(cv::norm(*aligned, image(cv::Rect(10, 20, 99, 99)), cv::NORM_INF), 0);

  Face outside;
  outside.box = {500, 500, 20, 20};
  auto bad = align(image, outside, ChipTemplate::dlib150(), AlignMethod::kAxisCrop);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalidArgument);
  EXPECT_FALSE(align(cv::Mat(), f, ChipTemplate::dlib150()).ok());
}

TEST(LandmarkCrop, ClipsAndFloorsLikeFaceApi) {
  auto c = landmark::landmark_crop(Box{-5.5f, 3.2f, 50.f, 50.f}, cv::Size(40, 40));
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->rect, cv::Rect(0, 3, 40, 36));  // width min(44.5, 40) = 40, height floor(min(50, 36.8)) = 36
  EXPECT_FLOAT_EQ(c->shift.x, 0.f);
  EXPECT_FLOAT_EQ(c->shift.y, 3.2f);
  auto inside = landmark::landmark_crop(Box{10.9f, 5.5f, 20.3f, 20.9f}, cv::Size(100, 100));
  ASSERT_TRUE(inside.ok());
  EXPECT_EQ(inside->rect, cv::Rect(10, 5, 20, 20));
  EXPECT_FALSE(landmark::landmark_crop(Box{120, 5, 10, 10}, cv::Size(100, 100)).ok());
  EXPECT_FALSE(landmark::landmark_crop(Box{5, 5, 0.5f, 10}, cv::Size(100, 100)).ok());
}

TEST(NetInputOps, TfBilinearAndPadToSquare) {
  // resizeBilinear(alignCorners = false, halfPixelCenters = false): dst x samples src x * in / out.
  cv::Mat src = (cv::Mat_<float>(1, 4) << 0, 10, 20, 30);
  cv::Mat up = model::resize_bilinear_tf(src, {8, 1});
  const float expected[8] = {0, 5, 10, 15, 20, 25, 30, 30};
  for (int i = 0; i < 8; ++i) EXPECT_FLOAT_EQ(up.at<float>(0, i), expected[i]);
  cv::Mat down = model::resize_bilinear_tf(src, {2, 1});
  EXPECT_FLOAT_EQ(down.at<float>(0, 0), 0);
  EXPECT_FLOAT_EQ(down.at<float>(0, 1), 20);
  // padToSquare centred: diff 3 -> round(1.5) = 2 after, 1 before.
  cv::Point off;
  cv::Mat sq = model::pad_to_square_tf(cv::Mat(2, 5, CV_8UC1, cv::Scalar(9)), true, &off);
  ASSERT_EQ(sq.size(), cv::Size(5, 5));
  EXPECT_EQ(off, cv::Point(0, 1));
  EXPECT_EQ(sq.at<uchar>(0, 0), 0);
  EXPECT_EQ(sq.at<uchar>(1, 0), 9);
  EXPECT_EQ(sq.at<uchar>(2, 0), 9);
  EXPECT_EQ(sq.at<uchar>(3, 0), 0);
  // A ROI is padded with zeros, not with the parent image's pixels around it.
  cv::Mat parent(10, 10, CV_8UC1, cv::Scalar(255));
  cv::Mat roi_sq = model::pad_to_square_tf(parent(cv::Rect(2, 2, 6, 4)), true);
  ASSERT_EQ(roi_sq.size(), cv::Size(6, 6));
  EXPECT_EQ(roi_sq.at<uchar>(0, 3), 0);
  EXPECT_EQ(roi_sq.at<uchar>(5, 3), 0);
  EXPECT_EQ(roi_sq.at<uchar>(2, 3), 255);
}

}  // namespace
}  // namespace faceguard
