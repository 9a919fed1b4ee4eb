// Input preparation: face-api's pad + resize (checked against net_builder's plain reference), letterbox
// maths, input validation and box clipping.
#include <gtest/gtest.h>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "detect/image_prep.hpp"
#include "model/net_builder.hpp"

namespace faceguard::detect {
namespace {

cv::Mat random_bgr(int w, int h, int seed) {
  cv::Mat m(h, w, CV_8UC3);
  cv::RNG rng(static_cast<std::uint64_t>(seed));
  rng.fill(m, cv::RNG::UNIFORM, 0, 256);
  return m;
}

// The plain reference: materialise face-api's padded square, resize it, then split the channels.
cv::Mat reference_blob(const cv::Mat& bgr, int size) {
  cv::Mat rgb;
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  const cv::Mat square = model::pad_to_square_tf(rgb, false);
  const cv::Mat resized = model::resize_bilinear_tf(square, cv::Size(size, size));
  const int dims[] = {1, 3, size, size};
  cv::Mat blob(4, dims, CV_32F);
  std::vector<cv::Mat> planes = {cv::Mat(size, size, CV_32F, blob.ptr<float>(0, 0)),
                                 cv::Mat(size, size, CV_32F, blob.ptr<float>(0, 1)),
                                 cv::Mat(size, size, CV_32F, blob.ptr<float>(0, 2))};
  cv::split(resized, planes);
  return blob;
}

TEST(FaceApiInputBlob, EqualsPaddedSquareThenTfResizeBitForBit) {
  for (const auto& [w, h, size] : std::vector<std::tuple<int, int, int>>{
           {97, 61, 64}, {61, 97, 64}, {50, 50, 64}, {300, 5, 32}, {1, 1, 32}, {640, 480, 512}}) {
    const cv::Mat bgr = random_bgr(w, h, w * 31 + h);
    const cv::Mat ours = face_api_input_blob(bgr, size);
    const cv::Mat ref = reference_blob(bgr, size);
    ASSERT_EQ(ours.total(), ref.total());
    EXPECT_EQ(cv::norm(ours.reshape(1, 1), ref.reshape(1, 1), cv::NORM_INF), 0.0) << w << "x" << h << " -> " << size;
  }
}

TEST(FaceApiInputBlob, PaddingIsBlackAtRightOrBottomOnly) {
  cv::Mat white(40, 80, CV_8UC3, cv::Scalar::all(255));  // landscape: padding goes to the bottom
  const cv::Mat blob = face_api_input_blob(white, 80);
  const float* r = blob.ptr<float>(0, 0);
  EXPECT_FLOAT_EQ(r[0], 255.f);                  // top-left: image
  EXPECT_FLOAT_EQ(r[39 * 80 + 79], 255.f);       // last image row
  EXPECT_FLOAT_EQ(r[41 * 80], 0.f);              // below the image: padding
  EXPECT_FLOAT_EQ(r[79 * 80 + 79], 0.f);
}

TEST(FaceApiReshapedDims, UsesJavaScriptRounding) {
  const ReshapedDims a = face_api_reshaped_dims(1920, 1280, 512);
  EXPECT_EQ(a.width, 512);
  EXPECT_EQ(a.height, 341);  // 341.33
  const ReshapedDims b = face_api_reshaped_dims(1000, 333, 512);
  EXPECT_EQ(b.height, 170);  // 170.496
  const ReshapedDims c = face_api_reshaped_dims(4, 1, 2);  // 0.5 rounds half up
  EXPECT_EQ(c.height, 1);
}

TEST(Letterbox, CentresAndMapsBack) {
  const Letterbox lb = make_letterbox(200, 100, 128);
  EXPECT_EQ(lb.scaled_width, 128);
  EXPECT_EQ(lb.scaled_height, 64);
  EXPECT_EQ(lb.pad_x, 0);
  EXPECT_EQ(lb.pad_y, 32);
  const Point2f tl = lb.to_source(0.f, 32.f / 128.f);
  EXPECT_NEAR(tl.x, 0.f, 1e-4);
  EXPECT_NEAR(tl.y, 0.f, 1e-4);
  const Point2f br = lb.to_source(1.f, 96.f / 128.f);
  EXPECT_NEAR(br.x, 200.f, 1e-3);
  EXPECT_NEAR(br.y, 100.f, 1e-3);
  const Point2f above = lb.to_source(0.5f, 0.f);  // in the top padding: negative source y
  EXPECT_LT(above.y, 0.f);

  const Letterbox thin = make_letterbox(5, 300, 256);
  EXPECT_GE(thin.scaled_width, 1);
  EXPECT_EQ(thin.scaled_height, 256);
  const cv::Mat rgb = letterbox_rgb(random_bgr(5, 300, 1), thin);
  EXPECT_EQ(rgb.size(), cv::Size(256, 256));
  EXPECT_EQ(rgb.type(), CV_8UC3);
}

TEST(Letterbox, BlockPreShrinkMapsBackExactly) {
  // 1920 x 1280 -> 256: a 7 x 7 block mean over 1918 x 1274 pixels, then bilinear to 256 x 171.
  const Letterbox lb = make_letterbox(1920, 1280, 256);
  EXPECT_EQ(lb.scaled_width, 256);
  EXPECT_EQ(lb.scaled_height, 171);
  EXPECT_EQ(lb.block, 7);
  EXPECT_EQ(lb.used_width, 1918);
  EXPECT_EQ(lb.used_height, 1274);
  // A bright 21 px square at (1000..1020, 600..620) lands where to_source says it does.
  cv::Mat img(1280, 1920, CV_8UC3, cv::Scalar::all(0));
  img(cv::Rect(1000, 600, 21, 21)).setTo(cv::Scalar::all(255));
  const cv::Mat rgb = letterbox_rgb(img, lb);
  cv::Mat grey;
  cv::cvtColor(rgb, grey, cv::COLOR_RGB2GRAY);
  const cv::Moments m = cv::moments(grey);
  const Point2f c = lb.to_source(static_cast<float>(m.m10 / m.m00 + 0.5) / 256.f,
                                 static_cast<float>(m.m01 / m.m00 + 0.5) / 256.f);
  EXPECT_NEAR(c.x, 1010.5f, 1.5f);
  EXPECT_NEAR(c.y, 610.5f, 1.5f);
}

TEST(LetterboxRgb, SwapsChannelsAndPadsBlack) {
  cv::Mat bgr(10, 20, CV_8UC3, cv::Scalar(10, 20, 30));  // B=10, G=20, R=30
  const cv::Mat rgb = letterbox_rgb(bgr, make_letterbox(20, 10, 20));
  EXPECT_EQ(rgb.at<cv::Vec3b>(10, 10), cv::Vec3b(30, 20, 10));
  EXPECT_EQ(rgb.at<cv::Vec3b>(0, 0), cv::Vec3b(0, 0, 0));
}

TEST(ToBgr8, ConvertsGreyAndBgraRefusesOthers) {
  EXPECT_EQ(to_bgr8(cv::Mat()).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(to_bgr8(cv::Mat(4, 4, CV_16UC3, cv::Scalar::all(0))).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(to_bgr8(cv::Mat(4, 4, CV_32FC3, cv::Scalar::all(0))).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(to_bgr8(cv::Mat(4, 4, CV_8UC2, cv::Scalar::all(0))).error().code, ErrorCode::kInvalidArgument);
  const auto grey = to_bgr8(cv::Mat(4, 4, CV_8UC1, cv::Scalar(7)));
  ASSERT_TRUE(grey.ok());
  EXPECT_EQ(grey->type(), CV_8UC3);
  EXPECT_EQ(grey->at<cv::Vec3b>(1, 1), cv::Vec3b(7, 7, 7));
  const auto bgra = to_bgr8(cv::Mat(4, 4, CV_8UC4, cv::Scalar(1, 2, 3, 4)));
  ASSERT_TRUE(bgra.ok());
  EXPECT_EQ(bgra->at<cv::Vec3b>(0, 0), cv::Vec3b(1, 2, 3));
}

TEST(ClipBox, ClipsToTheImageAndEmptiesOutsideBoxes) {
  const Box c = clip_box({-10, 90, 50, 50}, 100, 100);
  EXPECT_FLOAT_EQ(c.x, 0.f);
  EXPECT_FLOAT_EQ(c.y, 90.f);
  EXPECT_FLOAT_EQ(c.width, 40.f);
  EXPECT_FLOAT_EQ(c.height, 10.f);
  EXPECT_FLOAT_EQ(clip_box({200, 200, 10, 10}, 100, 100).area(), 0.f);
}

}  // namespace
}  // namespace faceguard::detect
