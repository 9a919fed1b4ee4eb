// BlazeFace on oneDNN (src/model/dnnl_net.cpp translating the ONNX's cv::dnn::Net) against OpenCV DNN:
// the four raw outputs on the letterboxed sample photos and on random inputs (back 256 and front 128),
// the detections of the two engines, a perturbed weight, and translator behaviour on small built nets
// (paths BlazeFace does not take: a shared residual operand, standalone ReLU6 / sum, average pooling,
// an unsupported layer).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/dnn.hpp>
#include <opencv2/imgcodecs.hpp>

#include "detect/image_prep.hpp"
#include "faceguard/detector.hpp"
#include "model/dnnl_net.hpp"
#include "model/net_builder.hpp"
#include "test_support.hpp"

namespace faceguard {
namespace {

// Same float arithmetic in another order, measured as max |a - b| / max(1, |b|) (absolute below 1, relative
// above: logits reach -8000 on the photos, where the largest absolute difference is 4e-3 and float's own
// step 1e-3). Worst measured: 2.0e-4, a regressor of 0.6 px in an output whose values reach 1200 (float's
// step at 1024 is 1.2e-4: the sums it comes from round that much in either engine); 0.0015 px in the
// source photo. Issue 2 asks ~1e-4; 5e-4 is 2.5x the measured worst.
constexpr double kTolerance = 5e-4;

struct Model {
  ModelFile file;
  DetectorKind kind;
  int size;
};
constexpr Model kModels[] = {{ModelFile::kBlazeFaceBack, DetectorKind::kBlazeFaceBack, 256},
                             {ModelFile::kBlazeFaceFront, DetectorKind::kBlazeFaceFront, 128}};

// The detector's input tensor: NHWC [1,S,S,3], RGB x/127.5-1 (as detect/blazeface.cpp builds it).
cv::Mat nhwc_blob(const cv::Mat& rgb, int size) {
  const int dims[] = {1, size, size, 3};
  cv::Mat blob(4, dims, CV_32F);
  cv::Mat hwc(size, size, CV_32FC3, blob.ptr<float>());
  rgb.convertTo(hwc, CV_32F, 1.0 / 127.5, -1.0);
  return blob;
}

// model::scaled_max_diff over the outputs: absolute below 1, relative above (logits reach -8000).
double max_diff(const std::vector<cv::Mat>& a, const std::vector<cv::Mat>& b) {
  if (a.size() != b.size()) return INFINITY;
  double worst = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i].total() != b[i].total()) return INFINITY;
    worst = std::max(worst, model::scaled_max_diff(a[i], b[i]));
  }
  return worst;
}

std::vector<cv::Mat> opencv_forward(cv::dnn::Net& net, const cv::Mat& blob, const std::vector<std::string>& names) {
  std::vector<cv::String> n(names.begin(), names.end());
  std::vector<cv::Mat> outs;
  net.setInput(blob);
  net.forward(outs, n);
  for (auto& o : outs) o = o.clone();
  return outs;
}

class BlazeFaceDnnl : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!model::dnnl_net_available()) GTEST_SKIP() << "this build has no oneDNN (FG_HAVE_DNNL)";
  }
};

TEST_F(BlazeFaceDnnl, OutputsEqualOpenCvOnSamplesAndRandomInputs) {
  FG_MODELS_OR_SKIP(pack);
  for (const Model& m : kModels) {
    auto onnx = pack.file(m.file);
    ASSERT_TRUE(onnx) << onnx.error().message;
    cv::dnn::Net reference = cv::dnn::readNetFromONNX(onnx->string());
    cv::dnn::Net translated = cv::dnn::readNetFromONNX(onnx->string());
    auto dnnl = model::DnnlNet::create(translated, {1, m.size, m.size, 3});
    ASSERT_TRUE(dnnl) << dnnl.error().message;
    const auto& names = (*dnnl)->output_names();
    ASSERT_EQ(names.size(), 4u);

    std::vector<cv::Mat> inputs;
    for (const auto& p : pack.sample_images()) {
      const cv::Mat bgr = cv::imread(p.string(), cv::IMREAD_COLOR);
      ASSERT_FALSE(bgr.empty()) << p;
      inputs.push_back(nhwc_blob(detect::letterbox_rgb(bgr, detect::make_letterbox(bgr.cols, bgr.rows, m.size)), m.size));
    }
    ASSERT_GE(inputs.size(), 6u);
    cv::RNG rng(42);
    for (int i = 0; i < 3; ++i) {
      cv::Mat r(m.size, m.size, CV_8UC3);
      rng.fill(r, cv::RNG::UNIFORM, 0, 256);
      inputs.push_back(nhwc_blob(r, m.size));
    }
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      std::vector<cv::Mat> ours;
      ASSERT_TRUE((*dnnl)->forward(inputs[i], ours));
      const std::vector<cv::Mat> theirs = opencv_forward(reference, inputs[i], names);
      for (std::size_t k = 0; k < ours.size(); ++k) {
        ASSERT_EQ(ours[k].size, theirs[k].size) << names[k];
      }
      EXPECT_LT(max_diff(ours, theirs), kTolerance) << m.size << " px, input " << i;
    }
  }
}

TEST_F(BlazeFaceDnnl, DetectionsOfBothEnginesAgree) {
  FG_MODELS_OR_SKIP(pack);
  for (const Model& m : kModels) {
    DetectorOptions o{.kind = m.kind};
    o.engine = DetectorOptions::Engine::kOpenCv;
    auto cv_det = Detector::create(pack, o);
    ASSERT_TRUE(cv_det) << cv_det.error().message;
    o.engine = DetectorOptions::Engine::kOneDnn;
    auto dn_det = Detector::create(pack, o);
    ASSERT_TRUE(dn_det) << dn_det.error().message;
    EXPECT_EQ((*cv_det)->engine_name(), "opencv-dnn");
    EXPECT_EQ((*dn_det)->engine_name(), "onednn");
    std::size_t found = 0;
    for (const auto& p : pack.sample_images()) {
      const cv::Mat bgr = cv::imread(p.string(), cv::IMREAD_COLOR);
      auto a = (*cv_det)->detect(bgr);
      auto b = (*dn_det)->detect(bgr);
      ASSERT_TRUE(a && b);
      ASSERT_EQ(a->size(), b->size()) << p;
      found += a->size();
      for (std::size_t i = 0; i < a->size(); ++i) {
        const Face& x = (*a)[i];
        const Face& y = (*b)[i];
        EXPECT_NEAR(x.score, y.score, 1e-5);
        // Source pixels (~7x the 256 px square): 1e-4 in the square is well under 0.01 px here.
        EXPECT_NEAR(x.box.x, y.box.x, 0.01);
        EXPECT_NEAR(x.box.y, y.box.y, 0.01);
        EXPECT_NEAR(x.box.width, y.box.width, 0.01);
        EXPECT_NEAR(x.box.height, y.box.height, 0.01);
        ASSERT_EQ(x.landmarks.size(), y.landmarks.size());
        for (std::size_t k = 0; k < x.landmarks.size(); ++k) {
          EXPECT_NEAR(x.landmarks[k].x, y.landmarks[k].x, 0.01);
          EXPECT_NEAR(x.landmarks[k].y, y.landmarks[k].y, 0.01);
        }
      }
    }
    if (m.kind == DetectorKind::kBlazeFaceBack) EXPECT_GT(found, 0u) << "the back model finds the sample faces";
  }
}

// The translation reads the weights it is given: one perturbed pointwise weight moves the oneDNN outputs
// away from the unperturbed OpenCV net and keeps them equal to the perturbed one.
TEST_F(BlazeFaceDnnl, PerturbedWeightChangesTheOutputs) {
  FG_MODELS_OR_SKIP(pack);
  auto onnx = pack.file(ModelFile::kBlazeFaceBack);
  ASSERT_TRUE(onnx);
  cv::dnn::Net reference = cv::dnn::readNetFromONNX(onnx->string());
  cv::dnn::Net perturbed_cv = cv::dnn::readNetFromONNX(onnx->string());
  cv::dnn::Net perturbed = cv::dnn::readNetFromONNX(onnx->string());
  bool done = false;
  for (cv::dnn::Net* net : {&perturbed_cv, &perturbed}) {
    for (const auto& name : net->getLayerNames()) {
      auto layer = net->getLayer(name);
      // A mid-network pointwise conv (BiasAdd of the 48-channel stage).
      if (layer->type == "Convolution" && name.find("conv2d_20/") != std::string::npos) {
        layer->blobs[0].ptr<float>()[3] += 0.5f;
        done = true;
      }
    }
  }
  ASSERT_TRUE(done) << "no layer conv2d_20 in the back model";
  auto dnnl = model::DnnlNet::create(perturbed, {1, 256, 256, 3});
  ASSERT_TRUE(dnnl) << dnnl.error().message;
  const cv::Mat bgr = cv::imread(pack.sample_images().at(0).string(), cv::IMREAD_COLOR);
  const cv::Mat blob = nhwc_blob(detect::letterbox_rgb(bgr, detect::make_letterbox(bgr.cols, bgr.rows, 256)), 256);
  std::vector<cv::Mat> ours;
  ASSERT_TRUE((*dnnl)->forward(blob, ours));
  EXPECT_GT(max_diff(ours, opencv_forward(reference, blob, (*dnnl)->output_names())), 1e-2);
  EXPECT_LT(max_diff(ours, opencv_forward(perturbed_cv, blob, (*dnnl)->output_names())), kTolerance);
}

// ---- the translator on small built nets ------------------------------------------------------------------

model::ConvWeights random_conv(cv::RNG& rng, int out, int in_per_group, int k) {
  std::vector<float> w(static_cast<std::size_t>(out) * in_per_group * k * k), b(static_cast<std::size_t>(out));
  for (auto& v : w) v = static_cast<float>(rng.uniform(-0.5, 0.5));
  for (auto& v : b) v = static_cast<float>(rng.uniform(-0.2, 0.2));
  return model::conv_weights_oihw(w, out, in_per_group, k, k, b);
}

// x -> conv+ReLU6 -> a;  s = a + conv(a) (a is read again later: the sum goes over a copy);
// r = relu(s); t = r + a (a standalone sum: neither operand comes from a conv with one reader);
// avg pool 3/2 with padding; max pool; channel concat with a conv branch; flatten as the output.
TEST_F(BlazeFaceDnnl, TranslatorHandlesSharedOperandsStandaloneLayersAndPools) {
  cv::RNG rng(7);
  auto net = model::build_net("dnnl test net", [&](model::NetBuilder& b) {
    using model::ConvSpec;
    using model::Pad;
    const auto a = b.relu6("a_relu6", b.conv("a", b.input(), random_conv(rng, 8, 3, 3), ConvSpec{1, Pad::symmetric(1)}));
    const auto c = b.conv("c", a, random_conv(rng, 8, 8, 1));
    const auto s = b.sum("s", {c, a});
    const auto r = b.relu("r", s);
    const auto t = b.sum("t", {r, a});
    const auto dw = b.conv("dw", t, random_conv(rng, 8, 1, 3), ConvSpec{2, Pad{0, 0, 1, 1, {}}, 8});
    const auto p = b.ave_pool("p", t, model::PoolSpec{3, 2, Pad{1, 1, 1, 1, {}}, false});
    const auto q = b.max_pool("q", t, model::PoolSpec{2, 2, {}, false});
    const auto cat = b.concat("cat", {dw, p, q});
    b.mark_output(b.flatten("flat", cat));
  });
  ASSERT_TRUE(net) << net.error().message;
  const std::vector<int> shape{1, 3, 20, 20};
  auto dnnl = model::DnnlNet::create(*net, shape);
  if (!dnnl) GTEST_FAIL() << dnnl.error().message;
  cv::Mat x(shape, CV_32F);
  rng.fill(x, cv::RNG::UNIFORM, -2.0, 2.0);
  std::vector<cv::Mat> ours;
  ASSERT_TRUE((*dnnl)->forward(x, ours));
  // The same net, run by OpenCV after the translation (which must come first: model/dnnl_net.hpp).
  auto diff = model::dnnl_max_diff(**dnnl, *net, x);
  ASSERT_TRUE(diff) << diff.error().message;
  EXPECT_LT(*diff, 1e-5);
  EXPECT_GT(cv::norm(ours.at(0), cv::NORM_INF), 0.1) << "a non-trivial output";
}

TEST_F(BlazeFaceDnnl, UntranslatableLayerIsUnavailableNamingIt) {
  cv::RNG rng(3);
  auto net = model::build_net("dnnl test net", [&](model::NetBuilder& b) {
    b.sigmoid("squash", b.conv("c", b.input(), random_conv(rng, 4, 3, 1)));
  });
  ASSERT_TRUE(net) << net.error().message;
  auto dnnl = model::DnnlNet::create(*net, {1, 3, 8, 8});
  ASSERT_FALSE(dnnl);
  EXPECT_EQ(dnnl.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(dnnl.error().message.find("squash"), std::string::npos) << dnnl.error().message;
  // A wrong input is refused, not read out of bounds.
  auto ok_net = model::build_net("dnnl test net", [&](model::NetBuilder& b) {
    b.conv("c", b.input(), random_conv(rng, 4, 3, 1));
  });
  ASSERT_TRUE(ok_net);
  auto d = model::DnnlNet::create(*ok_net, {1, 3, 8, 8});
  ASSERT_TRUE(d) << d.error().message;
  std::vector<cv::Mat> outs;
  const Status s = (*d)->forward(cv::Mat(1, 10, CV_32F, cv::Scalar(0)), outs);
  EXPECT_FALSE(s);
}

}  // namespace
}  // namespace faceguard
