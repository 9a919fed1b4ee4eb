// dlib ResNet on oneDNN (src/embed/dlib_resnet_dnnl.cpp) against the OpenCV DNN net on real aligned chips
// (../shared/data faces-small/dlib-johns, 150 x 150): fp32 to < 1e-4 L2 per descriptor, every batch size
// equal to batch 1, bf16 within a stated bound, and a perturbed weight moving both engines alike.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include "embed/dlib_resnet.hpp"
#include "embed/dlib_resnet_dnnl.hpp"
#include "faceguard/embedder.hpp"
#include "model/net_builder.hpp"
#include "model/weights.hpp"
#include "test_support.hpp"

namespace faceguard {
namespace {

namespace fs = std::filesystem;

// fp32 oneDNN vs OpenCV: same arithmetic in another order; measured ~1e-6 (issue 2 asks < 1e-4).
constexpr double kFp32Tolerance = 1e-4;
// bf16 (8-bit mantissa activations and weights, float accumulation) vs fp32: measured 0.0081 L2 at most
// on these chips, against descriptors of norm ~1.5 to 2 and a same-person threshold of 0.6.
constexpr double kBf16Tolerance = 0.02;
constexpr int kChips = 20;  // > kMaxForwardBatch (8): several forwards, spread over the threads

double l2(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return INFINITY;
  double s = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) s += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
  return std::sqrt(s);
}

std::vector<cv::Mat> johns_chips(const fs::path& data, int count) {
  std::vector<fs::path> files;
  for (const auto& e : fs::recursive_directory_iterator(data / "faces-small" / "dlib-johns"))
    if (e.is_regular_file() && e.path().extension() == ".jpg") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  std::vector<cv::Mat> chips;
  // Every other file spreads the chips over the five people.
  for (std::size_t i = 0; i < files.size() && static_cast<int>(chips.size()) < count; i += 2) {
    cv::Mat m = cv::imread(files[i].string(), cv::IMREAD_COLOR);
    if (!m.empty()) chips.push_back(m);
  }
  return chips;
}

class DlibResNetDnnlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!embed::dlib_resnet_dnnl_available()) GTEST_SKIP() << "this build has no oneDNN (FG_HAVE_DNNL)";
  }

  // Loads weights and chips, and the OpenCV descriptors of the chips. False (with a failure) if not.
  bool load(const ModelPack& pack, const fs::path& data) {
    auto manifest = pack.file(ModelFile::kFaceRecognitionManifest);
    if (!manifest) {
      ADD_FAILURE() << manifest.error().message;
      return false;
    }
    manifest_ = *manifest;
    auto w = model::load_weights(manifest_);
    if (!w) {
      ADD_FAILURE() << w.error().message;
      return false;
    }
    weights_ = std::move(*w);
    chips_ = johns_chips(data, kChips);
    if (static_cast<int>(chips_.size()) != kChips) {
      ADD_FAILURE() << "expected " << kChips << " chips in dlib-johns, found " << chips_.size();
      return false;
    }
    auto cv_embedder = embed::create_dlib_resnet(manifest_, {});
    if (!cv_embedder) {
      ADD_FAILURE() << cv_embedder.error().message;
      return false;
    }
    auto ref = (*cv_embedder)->embed_batch(chips_);
    if (!ref) {
      ADD_FAILURE() << ref.error().message;
      return false;
    }
    opencv_ = std::move(*ref);
    return true;
  }

  std::unique_ptr<Embedder> dnnl(const embed::DnnlResNetOptions& o) {
    auto e = embed::create_dlib_resnet_dnnl(weights_, o);
    EXPECT_TRUE(e) << e.error().message;
    return e ? std::move(*e) : nullptr;
  }

  fs::path manifest_;
  model::WeightMap weights_;
  std::vector<cv::Mat> chips_;
  std::vector<Embedding> opencv_;
};

TEST_F(DlibResNetDnnlTest, Fp32MatchesOpenCvAtEveryBatchSize) {
  FG_MODELS_OR_SKIP(pack);
  FG_SHARED_DATA_OR_SKIP(data);
  ASSERT_TRUE(load(pack, data));
  for (int threads : {1, 2}) {
    auto e = dnnl({.threads = threads});
    ASSERT_TRUE(e);
    EXPECT_EQ(e->model_id(), embed::kDlibResNetModelId);
    auto batch = e->embed_batch(chips_);  // 8 + 8 + 4 on one thread, 5 x 4 on two
    ASSERT_TRUE(batch) << batch.error().message;
    ASSERT_EQ(batch->size(), chips_.size());
    double worst = 0.0;
    for (std::size_t i = 0; i < chips_.size(); ++i) {
      ASSERT_EQ((*batch)[i].values.size(), 128u);
      worst = std::max(worst, l2((*batch)[i].values, opencv_[i].values));
    }
    EXPECT_LT(worst, kFp32Tolerance) << threads << " thread(s)";
    RecordProperty(threads == 1 ? "fp32_max_l2_vs_opencv_1_thread" : "fp32_max_l2_vs_opencv_2_threads", worst);
    // Batch 1 and a small odd batch give the same descriptors as the batch of 16.
    for (std::size_t i = 0; i < 3; ++i) {
      auto one = e->embed(chips_[i]);
      ASSERT_TRUE(one) << one.error().message;
      EXPECT_LT(l2(one->values, (*batch)[i].values), 1e-5) << "chip " << i;
    }
    auto three = e->embed_batch(std::span<const cv::Mat>(chips_).subspan(5, 3));
    ASSERT_TRUE(three) << three.error().message;
    for (std::size_t i = 0; i < 3; ++i) EXPECT_LT(l2((*three)[i].values, (*batch)[5 + i].values), 1e-5);
  }
}

TEST_F(DlibResNetDnnlTest, Bf16WithinStatedBoundOfFp32) {
  FG_MODELS_OR_SKIP(pack);
  FG_SHARED_DATA_OR_SKIP(data);
  ASSERT_TRUE(load(pack, data));
  auto e = dnnl({.threads = 2, .bf16 = true});
  ASSERT_TRUE(e);
  auto out = e->embed_batch(chips_);
  ASSERT_TRUE(out) << out.error().message;
  double worst = 0.0;
  for (std::size_t i = 0; i < chips_.size(); ++i) worst = std::max(worst, l2((*out)[i].values, opencv_[i].values));
  EXPECT_LT(worst, kBf16Tolerance);
  EXPECT_GT(worst, 0.0) << "bf16 gave exactly the fp32 descriptors: was bf16 really used?";
  RecordProperty("bf16_max_l2_vs_fp32", worst);
  // Identity is kept: each chip's nearest other chip is the same under bf16 as under fp32.
  for (std::size_t i = 0; i < chips_.size(); ++i) {
    auto nearest = [&](const std::vector<Embedding>& d) {
      std::size_t best = i == 0 ? 1 : 0;
      for (std::size_t j = 0; j < d.size(); ++j)
        if (j != i && l2(d[j].values, d[i].values) < l2(d[best].values, d[i].values)) best = j;
      return best;
    };
    EXPECT_EQ(nearest(*out), nearest(opencv_)) << "chip " << i;
  }
}

// A changed weight must change the oneDNN output, and by exactly what it does to the OpenCV net: the
// oneDNN graph reads every weight the way the reference path does (here a conv deep in the net).
TEST_F(DlibResNetDnnlTest, PerturbedWeightMovesBothEnginesAlike) {
  FG_MODELS_OR_SKIP(pack);
  FG_SHARED_DATA_OR_SKIP(data);
  ASSERT_TRUE(load(pack, data));
  model::WeightMap perturbed;
  for (const auto& [name, t] : weights_.tensors()) {
    model::Tensor copy = t;
    if (name == "conv128_down/conv2/scale/weights") copy.data[7] *= 3.f;
    if (name == "fc") copy.data[5] += 0.5f;
    ASSERT_TRUE(perturbed.add(std::move(copy)));
  }
  auto e = embed::create_dlib_resnet_dnnl(perturbed, {.threads = 1});
  ASSERT_TRUE(e) << e.error().message;
  auto moved = (*e)->embed_batch(std::span<const cv::Mat>(chips_).first(4));
  ASSERT_TRUE(moved) << moved.error().message;

  auto net = embed::build_dlib_resnet(perturbed);
  ASSERT_TRUE(net) << net.error().message;
  const model::InputSpec spec{.size = {150, 150},
                              .mean_rgb = {embed::kDlibMeanRgb[0], embed::kDlibMeanRgb[1], embed::kDlibMeanRgb[2]},
                              .scale = embed::kDlibInputScale};
  net->setInput(model::input_blob(std::span<const cv::Mat>(chips_).first(4), spec));
  const cv::Mat ref = net->forward();
  ASSERT_EQ(ref.rows, 4);
  for (int i = 0; i < 4; ++i) {
    const std::vector<float> r(ref.ptr<float>(i), ref.ptr<float>(i) + ref.cols);
    EXPECT_GT(l2((*moved)[static_cast<std::size_t>(i)].values, opencv_[static_cast<std::size_t>(i)].values), 1e-3);
    EXPECT_LT(l2((*moved)[static_cast<std::size_t>(i)].values, r), kFp32Tolerance) << "chip " << i;
  }
}

TEST_F(DlibResNetDnnlTest, EngineChoiceAndBadInputs) {
  FG_MODELS_OR_SKIP(pack);
  using Engine = EmbedderOptions::Engine;
  for (Engine engine : {Engine::kAuto, Engine::kOpenCv, Engine::kOneDnn}) {
    EmbedderOptions o;
    o.engine = engine;
    o.threads = 1;
    auto e = Embedder::create(pack, o);
    ASSERT_TRUE(e) << e.error().message;
    cv::Mat chip(150, 150, CV_8UC3, cv::Scalar(90, 120, 160));
    auto d = (*e)->embed(chip);
    ASSERT_TRUE(d) << d.error().message;
    EXPECT_EQ(d->values.size(), 128u);
    // Bad chips are values, not exceptions, on every engine.
    EXPECT_EQ((*e)->embed(cv::Mat()).error().code, ErrorCode::kInvalidArgument);
    EXPECT_EQ((*e)->embed(cv::Mat(150, 150, CV_16UC3)).error().code, ErrorCode::kInvalidArgument);
    // An empty batch is an empty answer (one thread once divided by a chunk of size 0 here: SIGFPE).
    auto none = (*e)->embed_batch({});
    ASSERT_TRUE(none) << none.error().message;
    EXPECT_TRUE(none->empty());
  }
  // The environment override is checked, not guessed.
  ::setenv("FACEGUARD_DLIB_ENGINE", "cuda", 1);
  auto bad = Embedder::create(pack, {});
  ::unsetenv("FACEGUARD_DLIB_ENGINE");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalidArgument);
  // Missing weights are a model error, not a silent fallback.
  model::WeightMap empty;
  auto none = embed::create_dlib_resnet_dnnl(empty, {});
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code, ErrorCode::kModelError);
}

}  // namespace
}  // namespace faceguard
