// Detector factory, options and bad input, on nets with random weights (no model files needed).
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include <opencv2/core.hpp>

#include "detect/detector_base.hpp"
#include "faceguard/detector.hpp"
#include "model/weights.hpp"

namespace faceguard::detect {
namespace {

model::Tensor random_tensor(const std::string& name, std::vector<int> shape, std::mt19937& rng, float scale) {
  model::Tensor t;
  t.name = name;
  t.shape = std::move(shape);
  std::size_t n = 1;
  for (int d : t.shape) n *= static_cast<std::size_t>(d);
  std::normal_distribution<float> dist(0.f, scale);
  t.data.resize(n);
  for (auto& v : t.data) v = dist(rng);
  return t;
}

// Tiny Face Detector's tensor list (tiny_face_detector_model-weights_manifest.json) with random values.
model::WeightMap random_tiny_weights() {
  std::mt19937 rng(7);
  model::WeightMap w;
  EXPECT_TRUE(w.add(random_tensor("conv0/filters", {3, 3, 3, 16}, rng, 0.3f)).ok());
  EXPECT_TRUE(w.add(random_tensor("conv0/bias", {16}, rng, 0.1f)).ok());
  int c = 16;
  for (int i = 1; i <= 5; ++i) {
    const std::string p = "conv" + std::to_string(i);
    EXPECT_TRUE(w.add(random_tensor(p + "/depthwise_filter", {3, 3, c, 1}, rng, 0.3f)).ok());
    EXPECT_TRUE(w.add(random_tensor(p + "/pointwise_filter", {1, 1, c, 2 * c}, rng, 0.2f)).ok());
    EXPECT_TRUE(w.add(random_tensor(p + "/bias", {2 * c}, rng, 0.1f)).ok());
    c *= 2;
  }
  EXPECT_TRUE(w.add(random_tensor("conv8/filters", {1, 1, 512, 25}, rng, 0.1f)).ok());
  EXPECT_TRUE(w.add(random_tensor("conv8/bias", {25}, rng, 0.5f)).ok());
  return w;
}

ResolvedOptions tiny_options(int input_size, float min_score) {
  DetectorOptions o;
  o.kind = DetectorKind::kTiny;
  o.input_size = input_size;
  o.min_score = min_score;
  auto r = resolve_options(o);
  EXPECT_TRUE(r.ok());
  return *r;
}

TEST(DetectorKindNames, RoundTripAndAliases) {
  for (auto k : {DetectorKind::kSsd, DetectorKind::kTiny, DetectorKind::kBlazeFaceBack, DetectorKind::kBlazeFaceFront}) {
    auto parsed = parse_detector_kind(to_string(k));
    ASSERT_TRUE(parsed.ok()) << to_string(k);
    EXPECT_EQ(*parsed, k);
  }
  EXPECT_EQ(*parse_detector_kind("blazeface-back"), DetectorKind::kBlazeFaceBack);
  EXPECT_EQ(parse_detector_kind("yolo").error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(parse_detector_kind("").error().code, ErrorCode::kInvalidArgument);
}

TEST(ResolveOptions, ModelDefaultsAndRanges) {
  DetectorOptions o;
  auto ssd = resolve_options(o);
  ASSERT_TRUE(ssd.ok());
  EXPECT_FLOAT_EQ(ssd->min_score, 0.5f);
  EXPECT_FLOAT_EQ(ssd->nms_iou, 0.5f);
  o.kind = DetectorKind::kTiny;
  auto tiny = resolve_options(o);
  ASSERT_TRUE(tiny.ok());
  EXPECT_FLOAT_EQ(tiny->nms_iou, 0.4f);
  EXPECT_EQ(tiny->input_size, 416);
  o.kind = DetectorKind::kBlazeFaceFront;
  auto bf = resolve_options(o);
  ASSERT_TRUE(bf.ok());
  EXPECT_FLOAT_EQ(bf->min_score, 0.75f);
  EXPECT_FLOAT_EQ(bf->nms_iou, 0.3f);

  o.min_score = 0.9f;
  o.nms_iou = 0.1f;
  o.threads = 2;
  auto custom = resolve_options(o);
  ASSERT_TRUE(custom.ok());
  EXPECT_FLOAT_EQ(custom->min_score, 0.9f);
  EXPECT_FLOAT_EQ(custom->nms_iou, 0.1f);
  EXPECT_EQ(custom->threads, 2);

  EXPECT_FALSE(resolve_options({.kind = DetectorKind::kSsd, .min_score = 1.5f}).ok());
  EXPECT_FALSE(resolve_options({.kind = DetectorKind::kSsd, .nms_iou = 2.f}).ok());
  EXPECT_FALSE(resolve_options({.kind = DetectorKind::kSsd, .threads = -1}).ok());
  EXPECT_FALSE(resolve_options({.kind = DetectorKind::kTiny, .input_size = 100}).ok());
  EXPECT_FALSE(resolve_options({.kind = DetectorKind::kTiny, .input_size = 4096}).ok());
  EXPECT_TRUE(resolve_options({.kind = DetectorKind::kTiny, .input_size = 160}).ok());
}

TEST(TinyRandomWeights, OddImagesGiveBoxesInsideTheImageSortedByScore) {
  auto det = make_tiny(random_tiny_weights(), tiny_options(64, 0.01f));
  ASSERT_TRUE(det.ok()) << det.error().message;
  EXPECT_EQ((*det)->kind(), DetectorKind::kTiny);
  cv::RNG rng(3);
  for (const cv::Size size : {cv::Size(1, 1), cv::Size(5, 300), cv::Size(300, 5), cv::Size(64, 64), cv::Size(97, 41)}) {
    cv::Mat img(size, CV_8UC3);
    rng.fill(img, cv::RNG::UNIFORM, 0, 256);
    auto faces = (*det)->detect(img);
    ASSERT_TRUE(faces.ok()) << faces.error().message;
    for (std::size_t i = 0; i < faces->size(); ++i) {
      const Face& f = (*faces)[i];
      EXPECT_GE(f.box.x, 0.f);
      EXPECT_GE(f.box.y, 0.f);
      EXPECT_LE(f.box.right(), static_cast<float>(size.width) + 1e-3f);
      EXPECT_LE(f.box.bottom(), static_cast<float>(size.height) + 1e-3f);
      EXPECT_GT(f.box.area(), 0.f);
      EXPECT_EQ(f.detector, "tiny");
      EXPECT_EQ(f.scheme, LandmarkScheme::kNone);
      if (i > 0) EXPECT_GE((*faces)[i - 1].score, f.score);
    }
  }
}

TEST(TinyRandomWeights, BadInputIsRefusedOrConverted) {
  auto det = make_tiny(random_tiny_weights(), tiny_options(32, 0.5f));
  ASSERT_TRUE(det.ok()) << det.error().message;
  EXPECT_EQ((*det)->detect(cv::Mat()).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ((*det)->detect(cv::Mat(40, 40, CV_16UC3, cv::Scalar::all(0))).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ((*det)->detect(cv::Mat(40, 40, CV_32FC1, cv::Scalar::all(0))).error().code, ErrorCode::kInvalidArgument);
  EXPECT_TRUE((*det)->detect(cv::Mat(40, 40, CV_8UC1, cv::Scalar(90))).ok());
  EXPECT_TRUE((*det)->detect(cv::Mat(40, 40, CV_8UC4, cv::Scalar(90, 90, 90, 255))).ok());
}

TEST(TinyRandomWeights, ThreadCountDoesNotChangeTheAnswer) {
  const auto w = random_tiny_weights();
  auto one = make_tiny(w, [] { auto o = tiny_options(64, 0.01f); o.threads = 1; return o; }());
  auto two = make_tiny(w, [] { auto o = tiny_options(64, 0.01f); o.threads = 2; return o; }());
  ASSERT_TRUE(one.ok() && two.ok());
  cv::Mat img(70, 90, CV_8UC3);
  cv::RNG(11).fill(img, cv::RNG::UNIFORM, 0, 256);
  auto a = (*one)->detect(img);
  auto b = (*two)->detect(img);
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_EQ(a->size(), b->size());
  for (std::size_t i = 0; i < a->size(); ++i) EXPECT_NEAR((*a)[i].box.x, (*b)[i].box.x, 1e-3);
}

TEST(WrongWeights, NameTheMissingTensor) {
  model::WeightMap empty;
  auto ssd = make_ssd(empty, *resolve_options({.kind = DetectorKind::kSsd}));
  ASSERT_FALSE(ssd.ok());
  EXPECT_EQ(ssd.error().code, ErrorCode::kModelError);
  EXPECT_NE(ssd.error().message.find("Output/extra_dim"), std::string::npos) << ssd.error().message;

  // Priors present but no MobileNet: the first conv tensor is named.
  std::mt19937 rng(1);
  model::WeightMap priors_only;
  ASSERT_TRUE(priors_only.add(random_tensor("Output/extra_dim", {1, 5118, 4}, rng, 0.1f)).ok());
  auto ssd2 = make_ssd(priors_only, *resolve_options({.kind = DetectorKind::kSsd}));
  ASSERT_FALSE(ssd2.ok());
  EXPECT_EQ(ssd2.error().code, ErrorCode::kModelError);
  EXPECT_NE(ssd2.error().message.find("MobilenetV1/Conv2d_0_pointwise/weights"), std::string::npos)
      << ssd2.error().message;

  auto tiny = make_tiny(empty, tiny_options(416, 0.5f));
  ASSERT_FALSE(tiny.ok());
  EXPECT_EQ(tiny.error().code, ErrorCode::kModelError);
  EXPECT_NE(tiny.error().message.find("conv0/filters"), std::string::npos) << tiny.error().message;

  // A mis-shaped tensor is named too (conv1 expects 16 input channels).
  auto bad = random_tiny_weights();
  model::WeightMap renamed;
  for (const auto& [name, t] : bad.tensors()) {
    model::Tensor copy = t;
    if (name == "conv1/depthwise_filter") copy = random_tensor(name, {3, 3, 8, 1}, rng, 0.1f);
    ASSERT_TRUE(renamed.add(std::move(copy)).ok());
  }
  auto tiny2 = make_tiny(renamed, tiny_options(416, 0.5f));
  ASSERT_FALSE(tiny2.ok());
  EXPECT_NE(tiny2.error().message.find("conv1/depthwise_filter"), std::string::npos) << tiny2.error().message;
}

TEST(BlazeFaceLoading, GarbageAndMissingModelsAreModelErrors) {
  const auto opts = *resolve_options({.kind = DetectorKind::kBlazeFaceBack});
  const std::vector<std::uint8_t> garbage = {1, 2, 3, 4, 5, 6, 7, 8};
  auto a = make_blazeface(std::span<const std::uint8_t>(garbage), DetectorKind::kBlazeFaceBack, opts);
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.error().code, ErrorCode::kModelError);
  auto b = make_blazeface(std::span<const std::uint8_t>(), DetectorKind::kBlazeFaceBack, opts);
  EXPECT_EQ(b.error().code, ErrorCode::kModelError);
  auto c = make_blazeface(std::filesystem::path("/nonexistent/face.onnx"), DetectorKind::kBlazeFaceBack, opts);
  EXPECT_EQ(c.error().code, ErrorCode::kModelError);
}

}  // namespace
}  // namespace faceguard::detect
