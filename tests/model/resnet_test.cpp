// dlib ResNet descriptor (face-api face_recognition) on OpenCV DNN: checked against a naive reference
// forward pass written from face-api's TF.js code, plus identity behaviour on real aligned chips.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include "embed/dlib_resnet.hpp"
#include "faceguard/embedder.hpp"
#include "model/net_builder.hpp"
#include "reference_ops.hpp"
#include "test_support.hpp"

namespace faceguard {
namespace {

namespace fs = std::filesystem;
using test::ref::Act;

// face-api faceRecognitionNet/convLayer.ts: conv2d + bias, then scale (x * weights + biases), ReLU.
Act ref_conv(const Act& x, const model::WeightMap& w, const std::string& p, int stride, bool same, bool relu) {
  Act y = test::ref::conv2d(x, *w.get(p + "/conv/filters").value(), stride, same);
  test::ref::add_channel(y, *w.get(p + "/conv/bias").value());
  test::ref::mul_channel(y, *w.get(p + "/scale/weights").value());
  test::ref::add_channel(y, *w.get(p + "/scale/biases").value());
  if (relu) test::ref::relu(y);
  return y;
}

Act ref_residual(const Act& x, const model::WeightMap& w, const std::string& p) {
  Act out = ref_conv(x, w, p + "/conv1", 1, true, true);
  out = ref_conv(out, w, p + "/conv2", 1, true, false);
  out = test::ref::add(out, x);
  test::ref::relu(out);
  return out;
}

// residualLayer.ts residualDown, including its zero row/column and channel zero-extension.
Act ref_residual_down(const Act& x, const model::WeightMap& w, const std::string& p) {
  Act out = ref_conv(x, w, p + "/conv1", 2, false, true);
  out = ref_conv(out, w, p + "/conv2", 1, true, false);
  Act pooled = test::ref::pool_valid(x, 2, 2, false);
  Act sum(pooled.h, pooled.w, out.c);
  for (int y = 0; y < sum.h; ++y)
    for (int xx = 0; xx < sum.w; ++xx)
      for (int c = 0; c < sum.c; ++c) {
        const float a = (y < out.h && xx < out.w) ? out.at(y, xx, c) : 0.f;
        const float b = c < pooled.c ? pooled.at(y, xx, c) : 0.f;
        sum.at(y, xx, c) = std::max(a + b, 0.f);
      }
  return sum;
}

std::vector<float> ref_forward(const cv::Mat& bgr, const model::WeightMap& w) {
  Act x = test::ref::from_image(bgr, embed::kDlibMeanRgb, 255.0);
  x = ref_conv(x, w, "conv32_down", 2, false, true);
  x = test::ref::pool_valid(x, 3, 2, true);
  for (const char* b : {"conv32_1", "conv32_2", "conv32_3"}) x = ref_residual(x, w, b);
  x = ref_residual_down(x, w, "conv64_down");
  for (const char* b : {"conv64_1", "conv64_2", "conv64_3"}) x = ref_residual(x, w, b);
  x = ref_residual_down(x, w, "conv128_down");
  for (const char* b : {"conv128_1", "conv128_2"}) x = ref_residual(x, w, b);
  x = ref_residual_down(x, w, "conv256_down");
  for (const char* b : {"conv256_1", "conv256_2"}) x = ref_residual(x, w, b);
  x = ref_residual_down(x, w, "conv256_down_out");
  return test::ref::mean_dense(x, *w.get("fc").value(), nullptr);
}

float max_abs_diff(std::span<const float> a, std::span<const float> b) {
  EXPECT_EQ(a.size(), b.size());
  float m = 0.f;
  for (std::size_t i = 0; i < std::min(a.size(), b.size()); ++i) m = std::max(m, std::abs(a[i] - b[i]));
  return m;
}

float distance(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (std::size_t i = 0; i < a.size(); ++i) s += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
  return static_cast<float>(std::sqrt(s));
}

std::unique_ptr<Embedder> make_embedder(const ModelPack& pack) {
  auto e = Embedder::create(pack, {});
  EXPECT_TRUE(e.ok()) << (e.ok() ? "" : e.error().message);
  return e.ok() ? std::move(*e) : nullptr;
}

TEST(DlibResNet, MatchesNaiveReferenceForward) {
  FG_MODELS_OR_SKIP(pack);
  auto manifest = pack.file(ModelFile::kFaceRecognitionManifest);
  ASSERT_TRUE(manifest.ok()) << manifest.error().message;
  auto weights = model::load_weights(*manifest);
  ASSERT_TRUE(weights.ok()) << weights.error().message;
  auto net = embed::build_dlib_resnet(*weights);
  ASSERT_TRUE(net.ok()) << net.error().message;

  const cv::Mat img = test::ref::random_image(150, 150, 20240611);
  const std::vector<float> expected = ref_forward(img, *weights);
  ASSERT_EQ(expected.size(), 128u);

  const model::InputSpec spec{.size = {150, 150},
                              .mean_rgb = {embed::kDlibMeanRgb[0], embed::kDlibMeanRgb[1], embed::kDlibMeanRgb[2]},
                              .scale = embed::kDlibInputScale};
  net->setInput(model::input_blob(std::span<const cv::Mat>(&img, 1), spec));
  cv::Mat out = net->forward();
  ASSERT_EQ(out.total(), 128u);
  const float diff = max_abs_diff(expected, std::span<const float>(out.ptr<float>(), 128));
  EXPECT_LT(diff, 1e-4f);

  // The public path (chip preparation + batching) gives the same numbers.
  auto emb = make_embedder(pack);
  ASSERT_TRUE(emb);
  auto e = emb->embed(img);
  ASSERT_TRUE(e.ok()) << e.error().message;
  EXPECT_LT(max_abs_diff(expected, e->values), 1e-4f);
  // Not a degenerate output: a descriptor has a norm of order 1 (dlib's are about 0.3 - 0.5 per axis group).
  EXPECT_GT(distance(expected, std::vector<float>(128, 0.f)), 0.1f);
}

TEST(DlibResNet, BatchEqualsSingleAndKeepsOrder) {
  FG_MODELS_OR_SKIP(pack);
  auto emb = make_embedder(pack);
  ASSERT_TRUE(emb);
  EXPECT_EQ(emb->model_id(), "dlib-resnet29@face-api-1.7.15");
  EXPECT_EQ(emb->chip_size(), 150);
  std::vector<cv::Mat> chips;
  for (int i = 0; i < 3; ++i) chips.push_back(test::ref::random_image(150, 150, 7 + i));
  auto batch = emb->embed_batch(chips);
  ASSERT_TRUE(batch.ok()) << batch.error().message;
  ASSERT_EQ(batch->size(), 3u);
  for (int i = 0; i < 3; ++i) {
    auto one = emb->embed(chips[i]);
    ASSERT_TRUE(one.ok());
    ASSERT_EQ((*batch)[i].values.size(), 128u);
    EXPECT_EQ((*batch)[i].model_id, emb->model_id());
    EXPECT_LT(max_abs_diff((*batch)[i].values, one->values), 1e-5f) << "chip " << i;
  }
  EXPECT_GT(distance((*batch)[0].values, (*batch)[1].values), 1e-3f);  // different inputs, different outputs
  auto none = emb->embed_batch({});
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST(DlibResNet, OtherChipSizesArePaddedAndResizedLikeFaceApi) {
  FG_MODELS_OR_SKIP(pack);
  auto emb = make_embedder(pack);
  ASSERT_TRUE(emb);
  const cv::Mat chip = test::ref::random_image(180, 160, 99);
  // face-api NetInput.toBatchTensor(150, true): centred zero padding to 180 x 180, TF bilinear resize.
  cv::Mat square = model::pad_to_square_tf(chip, true);
  ASSERT_EQ(square.cols, 180);
  cv::Mat resized = model::resize_bilinear_tf(square, {150, 150});
  auto manifest = pack.file(ModelFile::kFaceRecognitionManifest);
  ASSERT_TRUE(manifest.ok());
  auto weights = model::load_weights(*manifest);
  ASSERT_TRUE(weights.ok());
  const std::vector<float> expected = ref_forward(resized, *weights);
  auto e = emb->embed(chip);
  ASSERT_TRUE(e.ok()) << e.error().message;
  EXPECT_LT(max_abs_diff(expected, e->values), 1e-4f);
}

TEST(DlibResNet, BadChipsAreErrorsNotCrashes) {
  FG_MODELS_OR_SKIP(pack);
  auto emb = make_embedder(pack);
  ASSERT_TRUE(emb);
  auto empty = emb->embed(cv::Mat());
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.error().code, ErrorCode::kInvalidArgument);
  auto two_ch = emb->embed(cv::Mat(150, 150, CV_8UC2, cv::Scalar(1, 2)));
  ASSERT_FALSE(two_ch.ok());
  EXPECT_EQ(two_ch.error().code, ErrorCode::kInvalidArgument);
  auto grey = emb->embed(cv::Mat(150, 150, CV_8UC1, cv::Scalar(128)));
  EXPECT_TRUE(grey.ok());
}

TEST(DlibResNet, WrongModelFileIsModelError) {
  FG_MODELS_OR_SKIP(pack);
  auto landmarks = pack.file(ModelFile::kLandmark68Manifest);
  ASSERT_TRUE(landmarks.ok());
  auto wrong = embed::create_dlib_resnet(*landmarks, {});
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.error().code, ErrorCode::kModelError);
  EXPECT_NE(wrong.error().message.find("conv32_down"), std::string::npos) << wrong.error().message;

  const fs::path dir = fs::temp_directory_path() / "fg_resnet_wrong_model";
  fs::create_directories(dir);
  {
    std::ofstream(dir / "m.json") << "[{\"paths\":[\"m.bin\"],\"weights\":[{\"name\":\"fc\",\"shape\":[256,128],"
                                      "\"dtype\":\"float32\"}]}]";
    std::ofstream(dir / "m.bin") << "short";
  }
  auto corrupt = embed::create_dlib_resnet(dir / "m.json", {});
  ASSERT_FALSE(corrupt.ok());
  EXPECT_EQ(corrupt.error().code, ErrorCode::kModelError);
  auto missing = embed::create_dlib_resnet(dir / "absent.json", {});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::kModelError);
  fs::remove_all(dir);
}

// The second descriptor is a different model: its own id, chip and template size (tests/model/mobilefacenet_test.cpp
// checks its numbers).
TEST(DlibResNet, MobileFaceNetIsAnotherModel) {
  FG_MODELS_OR_SKIP(pack);
  auto e = Embedder::create(pack, {.kind = EmbedderKind::kMobileFaceNet});
  ASSERT_TRUE(e.ok()) << e.error().message;
  EXPECT_NE((*e)->model_id(), "dlib-resnet29@face-api-1.7.15");
  EXPECT_EQ((*e)->chip_size(), 112);
}

// dlib's own examples/johns chips (already aligned, 150 x 150): same person below dlib's 0.6, different
// people above it, for most pairs. dlib reports 99.38% on LFW, so a few misses among 1,485 pairs are fine.
TEST(DlibResNet, SamePersonCloserThanDifferentPeopleOnDlibJohns) {
  FG_MODELS_OR_SKIP(pack);
  FG_SHARED_DATA_OR_SKIP(data);
  const fs::path root = data / "faces-small" / "dlib-johns" / "examples" / "johns";
  if (!fs::is_directory(root)) GTEST_SKIP() << root << " is absent";
  std::vector<std::string> who;
  std::vector<cv::Mat> chips;
  std::map<std::string, std::vector<fs::path>> by_person;
  for (const auto& person : fs::directory_iterator(root))
    if (person.is_directory())
      for (const auto& f : fs::directory_iterator(person.path())) by_person[person.path().filename()].push_back(f.path());
  for (auto& [name, files] : by_person) {
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      cv::Mat img = cv::imread(f.string(), cv::IMREAD_COLOR);
      ASSERT_FALSE(img.empty()) << f;
      who.push_back(name);
      chips.push_back(img);
    }
  }
  ASSERT_GE(chips.size(), 20u);
  auto emb = make_embedder(pack);
  ASSERT_TRUE(emb);
  auto es = emb->embed_batch(chips);
  ASSERT_TRUE(es.ok()) << es.error().message;
  int same = 0, same_ok = 0, diff = 0, diff_ok = 0;
  double same_sum = 0, diff_sum = 0;
  for (std::size_t i = 0; i < chips.size(); ++i)
    for (std::size_t j = i + 1; j < chips.size(); ++j) {
      const float d = distance((*es)[i].values, (*es)[j].values);
      if (who[i] == who[j]) {
        ++same, same_sum += d, same_ok += d < 0.6f;
      } else {
        ++diff, diff_sum += d, diff_ok += d > 0.6f;
      }
    }
  std::printf("dlib-johns: %d same pairs (mean %.3f, %.1f%% < 0.6), %d different (mean %.3f, %.1f%% > 0.6)\n", same,
              same_sum / same, 100.0 * same_ok / same, diff, diff_sum / diff, 100.0 * diff_ok / diff);
  EXPECT_LT(same_sum / same, diff_sum / diff);
  EXPECT_GE(same_ok, same * 9 / 10);
  EXPECT_GE(diff_ok, diff * 9 / 10);
}

// Timing, not part of the default suite (run with --gtest_also_run_disabled_tests
// --gtest_filter='*Timing*'): ms per face at batch 1 and 16 on 1 and 2 threads.
TEST(DlibResNet, DISABLED_Timing) {
  FG_MODELS_OR_SKIP(pack);
  auto emb = make_embedder(pack);
  ASSERT_TRUE(emb);
  std::vector<cv::Mat> chips;
  for (int i = 0; i < 16; ++i) chips.push_back(test::ref::random_image(150, 150, 100 + i));
  for (int threads : {1, 2}) {
    cv::setNumThreads(threads);
    for (std::size_t batch : {std::size_t(1), std::size_t(16)}) {
      std::span<const cv::Mat> in(chips.data(), batch);
      ASSERT_TRUE(emb->embed_batch(in).ok());  // warm-up (allocations for this batch shape)
      // Wall time, and process CPU time (all threads): on a loaded machine CPU time / threads is the
      // better estimate of the uncontended wall time.
      std::vector<double> per_face, cpu_per_face;
      for (int rep = 0; rep < (batch == 1 ? 20 : 4); ++rep) {
        const auto t0 = std::chrono::steady_clock::now();
        const std::clock_t c0 = std::clock();
        ASSERT_TRUE(emb->embed_batch(in).ok());
        const std::chrono::duration<double, std::milli> dt = std::chrono::steady_clock::now() - t0;
        per_face.push_back(dt.count() / static_cast<double>(batch));
        cpu_per_face.push_back(1000.0 * static_cast<double>(std::clock() - c0) / CLOCKS_PER_SEC / batch);
      }
      std::sort(per_face.begin(), per_face.end());
      std::sort(cpu_per_face.begin(), cpu_per_face.end());
      std::printf("dlib_resnet threads=%d batch=%zu wall_ms_per_face min=%.2f median=%.2f max=%.2f"
                  " cpu_ms_per_face min=%.2f median=%.2f\n",
                  threads, batch, per_face.front(), per_face[per_face.size() / 2], per_face.back(),
                  cpu_per_face.front(), cpu_per_face[cpu_per_face.size() / 2]);
    }
  }
  cv::setNumThreads(-1);
}

}  // namespace
}  // namespace faceguard
