// face-api 68-point landmark nets on OpenCV DNN: naive reference forward, face-api's crop/padding
// arithmetic, and plausibility on real aligned face chips.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include "align/landmark68.hpp"
#include "faceguard/landmarker.hpp"
#include "model/net_builder.hpp"
#include "reference_ops.hpp"
#include "test_support.hpp"

namespace faceguard {
namespace {

namespace fs = std::filesystem;
using test::ref::Act;

// common/depthwiseSeparableConv.ts: tf.separableConv2d(x, dw, pw, stride, 'same') + bias.
Act ref_separable(const Act& x, const model::WeightMap& w, const std::string& p, int stride) {
  Act y = test::ref::depthwise2d(x, *w.get(p + "/depthwise_filter").value(), stride, true);
  y = test::ref::conv2d(y, *w.get(p + "/pointwise_filter").value(), 1, true);
  test::ref::add_channel(y, *w.get(p + "/bias").value());
  return y;
}

// faceFeatureExtractor/denseBlock.ts, written out as face-api does it.
Act ref_dense_block(const Act& x, const model::WeightMap& w, const std::string& p, int convs, bool first) {
  Act out1;
  if (first) {
    out1 = test::ref::conv2d(x, *w.get(p + "/conv0/filters").value(), 2, true);
    test::ref::add_channel(out1, *w.get(p + "/conv0/bias").value());
  } else {
    out1 = ref_separable(x, w, p + "/conv0", 2);
  }
  test::ref::relu(out1);
  Act out2 = ref_separable(out1, w, p + "/conv1", 1);
  Act in3 = test::ref::add(out1, out2);
  test::ref::relu(in3);
  Act out3 = ref_separable(in3, w, p + "/conv2", 1);
  Act in4 = test::ref::add(out1, test::ref::add(out2, out3));
  test::ref::relu(in4);
  if (convs == 3) return in4;
  Act out4 = ref_separable(in4, w, p + "/conv3", 1);
  Act y = test::ref::add(out1, test::ref::add(out2, test::ref::add(out3, out4)));
  test::ref::relu(y);
  return y;
}

std::vector<float> ref_forward(const cv::Mat& img112, const model::WeightMap& w, bool tiny) {
  Act x = test::ref::from_image(img112, landmark::kLandmarkMeanRgb, 255.0);
  const int blocks = tiny ? 3 : 4, convs = tiny ? 3 : 4;
  for (int i = 0; i < blocks; ++i) x = ref_dense_block(x, w, "dense" + std::to_string(i), convs, i == 0);
  x = test::ref::pool_valid(x, tiny ? 14 : 7, 2, false);
  return test::ref::mean_dense(x, *w.get("fc/weights").value(), &*w.get("fc/bias").value());
}

model::WeightMap load(const ModelPack& pack, bool tiny) {
  auto m = pack.file(tiny ? ModelFile::kLandmark68TinyManifest : ModelFile::kLandmark68Manifest);
  EXPECT_TRUE(m.ok());
  auto w = model::load_weights(*m);
  EXPECT_TRUE(w.ok()) << (w.ok() ? "" : w.error().message);
  return w.ok() ? std::move(*w) : model::WeightMap{};
}

class Landmarks : public ::testing::TestWithParam<bool> {};

TEST_P(Landmarks, NetMatchesNaiveReferenceForward) {
  FG_MODELS_OR_SKIP(pack);
  const bool tiny = GetParam();
  const model::WeightMap w = load(pack, tiny);
  auto net = landmark::build_landmark68_net(w, tiny);
  ASSERT_TRUE(net.ok()) << net.error().message;
  const cv::Mat img = test::ref::random_image(112, 112, 4242);
  const std::vector<float> expected = ref_forward(img, w, tiny);
  ASSERT_EQ(expected.size(), 136u);
  const model::InputSpec spec{.size = {112, 112},
                              .mean_rgb = {landmark::kLandmarkMeanRgb[0], landmark::kLandmarkMeanRgb[1],
                                           landmark::kLandmarkMeanRgb[2]},
                              .scale = 1.0 / 255.0};
  net->setInput(model::input_blob(std::span<const cv::Mat>(&img, 1), spec));
  cv::Mat out = net->forward();
  ASSERT_EQ(out.total(), 136u);
  float diff = 0.f;
  for (int i = 0; i < 136; ++i) diff = std::max(diff, std::abs(out.ptr<float>()[i] - expected[i]));
  EXPECT_LT(diff, 1e-4f);
}

// The whole Landmarker (crop, centred padding, TF resize, postProcess, shift) against a re-derivation of
// face-api's steps on a non-square box inside a larger image.
TEST_P(Landmarks, CropPadResizeAndMappingFollowFaceApi) {
  FG_MODELS_OR_SKIP(pack);
  const bool tiny = GetParam();
  const model::WeightMap w = load(pack, tiny);
  auto lm = Landmarker::create(pack, {.tiny = tiny});
  ASSERT_TRUE(lm.ok()) << lm.error().message;

  const cv::Mat image = test::ref::random_image(300, 400, 77);
  const Box box{50.6f, 40.3f, 131.2f, 170.9f};
  auto pts = (*lm)->landmarks(image, box);
  ASSERT_TRUE(pts.ok()) << pts.error().message;
  ASSERT_EQ(pts->size(), 68u);

  // extractFaceTensors: clipAtImageBorders keeps width/height (inside the image), then floors all four:
  // x 50, y 40, w 131, h 170.
  const cv::Rect rect(50, 40, 131, 170);
  // padToSquare(centred): diff 39 -> Math.round(19.5) = 20 columns after, 19 before. resizeBilinear to 112.
  cv::Mat square;
  cv::copyMakeBorder(image(rect).clone(), square, 0, 0, 19, 20, cv::BORDER_CONSTANT, cv::Scalar::all(0));
  ASSERT_EQ(square.cols, 170);
  const std::vector<float> out = ref_forward(model::resize_bilinear_tf(square, {112, 112}), w, tiny);
  // postProcess: scale 112/170, padding |w - h| / 2 in the 112 frame on x (face-api assumes it symmetric);
  // then * crop size + the raw box origin.
  const double s = 112.0 / 170.0, ws = 131 * s, hs = 170 * s, pad_x = (hs - ws) / 2;
  double worst = 0;
  for (int i = 0; i < 68; ++i) {
    const double ex = (out[2 * i] * 112 - pad_x) / ws * 131 + 50.6;
    const double ey = (out[2 * i + 1] * 112) / hs * 170 + 40.3;
    worst = std::max({worst, std::abs(ex - (*pts)[i].x), std::abs(ey - (*pts)[i].y)});
  }
  EXPECT_LT(worst, 1e-3);
}

INSTANTIATE_TEST_SUITE_P(FullAndTiny, Landmarks, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "Tiny" : "Full"; });

// On dlib's aligned 150 px chips (examples/johns) the eye centres, nose tip and mouth corners must land
// near the measured dlib chip positions (MODELS.md): a wrong channel order, flipped axis or broken
// mapping would put them tens of pixels away.
TEST(Landmarks68, RealChipsPutFeaturesWhereDlibChipsHaveThem) {
  FG_MODELS_OR_SKIP(pack);
  FG_SHARED_DATA_OR_SKIP(data);
  const fs::path root = data / "faces-small" / "dlib-johns" / "examples" / "johns";
  if (!fs::is_directory(root)) GTEST_SKIP() << root << " is absent";
  for (bool tiny : {false, true}) {
    auto lm = Landmarker::create(pack, {.tiny = tiny});
    ASSERT_TRUE(lm.ok()) << lm.error().message;
    const Point2f expected[5] = {{47.5f, 45.8f}, {99.4f, 46.5f}, {72.6f, 74.9f}, {50.7f, 102.7f}, {98.3f, 103.3f}};
    double sum[5][2] = {};
    int n = 0;
    for (const auto& person : fs::directory_iterator(root)) {
      if (!person.is_directory()) continue;
      for (const auto& f : fs::directory_iterator(person.path())) {
        const cv::Mat chip = cv::imread(f.path().string(), cv::IMREAD_COLOR);
        ASSERT_FALSE(chip.empty());
        auto pts = (*lm)->landmarks(chip, Box{0, 0, 150, 150});
        ASSERT_TRUE(pts.ok()) << pts.error().message;
        const auto& p = *pts;
        Point2f five[5] = {{0, 0}, {0, 0}, p[30], p[48], p[54]};
        for (int k = 36; k < 42; ++k) five[0].x += p[k].x / 6, five[0].y += p[k].y / 6;
        for (int k = 42; k < 48; ++k) five[1].x += p[k].x / 6, five[1].y += p[k].y / 6;
        for (int k = 0; k < 5; ++k) sum[k][0] += five[k].x, sum[k][1] += five[k].y;
        ++n;
      }
    }
    ASSERT_GT(n, 10);
    for (int k = 0; k < 5; ++k) {
      const double mx = sum[k][0] / n, my = sum[k][1] / n;
      std::printf("%s point %d: mean (%.1f, %.1f), dlib chip (%.1f, %.1f)\n", tiny ? "tiny" : "full", k, mx, my,
                  expected[k].x, expected[k].y);
      EXPECT_NEAR(mx, expected[k].x, 6.0) << "point " << k << (tiny ? " tiny" : " full");
      EXPECT_NEAR(my, expected[k].y, 6.0) << "point " << k << (tiny ? " tiny" : " full");
    }
  }
}

TEST(Landmarks68, BadInputsAreErrors) {
  FG_MODELS_OR_SKIP(pack);
  auto lm = Landmarker::create(pack, {});
  ASSERT_TRUE(lm.ok()) << lm.error().message;
  const cv::Mat image = test::ref::random_image(100, 100, 1);
  auto outside = (*lm)->landmarks(image, Box{200, 200, 50, 50});
  ASSERT_FALSE(outside.ok());
  EXPECT_EQ(outside.error().code, ErrorCode::kInvalidArgument);
  auto empty = (*lm)->landmarks(cv::Mat(), Box{0, 0, 10, 10});
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.error().code, ErrorCode::kInvalidArgument);
  auto nan = (*lm)->landmarks(image, Box{std::nanf(""), 0, 10, 10});
  ASSERT_FALSE(nan.ok());
  // A box sticking out of the image is clipped, not refused.
  auto partial = (*lm)->landmarks(image, Box{-20, -10, 80, 90});
  ASSERT_TRUE(partial.ok()) << partial.error().message;
  EXPECT_EQ(partial->size(), 68u);
}

TEST(Landmarks68, WrongModelFileIsModelError) {
  FG_MODELS_OR_SKIP(pack);
  auto recognition = pack.file(ModelFile::kFaceRecognitionManifest);
  ASSERT_TRUE(recognition.ok());
  auto wrong = landmark::create_landmarker(*recognition, {});
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.error().code, ErrorCode::kModelError);
  // The tiny weights are not the full net's (missing dense3): refused, not mis-built.
  auto tiny_file = pack.file(ModelFile::kLandmark68TinyManifest);
  ASSERT_TRUE(tiny_file.ok());
  auto mixed = landmark::create_landmarker(*tiny_file, {.tiny = false});
  ASSERT_FALSE(mixed.ok());
  EXPECT_EQ(mixed.error().code, ErrorCode::kModelError);
  auto missing = landmark::create_landmarker("/nonexistent/face_landmark_68_model-weights_manifest.json", {});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::kModelError);
}

// Timing, not part of the default suite (--gtest_also_run_disabled_tests --gtest_filter='*Timing*').
TEST(Landmarks68, DISABLED_Timing) {
  FG_MODELS_OR_SKIP(pack);
  const cv::Mat image = test::ref::random_image(480, 640, 3);
  for (bool tiny : {false, true}) {
    auto lm = Landmarker::create(pack, {.tiny = tiny});
    ASSERT_TRUE(lm.ok());
    for (int threads : {1, 2}) {
      cv::setNumThreads(threads);
      ASSERT_TRUE((*lm)->landmarks(image, Box{100, 100, 200, 220}).ok());
      std::vector<double> ms, cpu;
      for (int rep = 0; rep < 30; ++rep) {
        const auto t0 = std::chrono::steady_clock::now();
        const std::clock_t c0 = std::clock();
        ASSERT_TRUE((*lm)->landmarks(image, Box{100, 100, 200, 220}).ok());
        ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
        cpu.push_back(1000.0 * static_cast<double>(std::clock() - c0) / CLOCKS_PER_SEC);
      }
      std::sort(ms.begin(), ms.end());
      std::sort(cpu.begin(), cpu.end());
      std::printf("landmark68%s threads=%d wall_ms min=%.2f median=%.2f max=%.2f cpu_ms min=%.2f median=%.2f\n",
                  tiny ? "_tiny" : "", threads, ms.front(), ms[ms.size() / 2], ms.back(), cpu.front(),
                  cpu[cpu.size() / 2]);
    }
  }
  cv::setNumThreads(-1);
}

}  // namespace
}  // namespace faceguard
