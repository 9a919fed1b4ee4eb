// Pipeline on the model pack's sample photos: what analyze() returns, that it agrees with the one-face path,
// max_faces, zero faces, the BlazeFace keypoint/68-point choice, and translation consistency of templates.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include <opencv2/core.hpp>

#include "faceguard/compare.hpp"
#include "faceguard/image.hpp"
#include "faceguard/pipeline.hpp"
#include "test_support.hpp"

namespace faceguard {
namespace {

namespace fs = std::filesystem;

cv::Mat sample_image(const ModelPack& pack, const std::string& name) {
  for (const auto& p : pack.sample_images()) {
    if (p.filename() == name) {
      auto img = load_image(p);
      if (img) return *img;
    }
  }
  return {};
}

#define FG_SAMPLE_OR_SKIP(pack, var, name)             \
  FG_MODELS_OR_SKIP(pack);                             \
  const cv::Mat var = sample_image(pack, name);        \
  if (var.empty()) GTEST_SKIP() << "no " << name << " in the model pack"

std::unique_ptr<Pipeline> make(const ModelPack& pack, const PipelineOptions& o = {}) {
  auto p = Pipeline::create(pack, o);
  EXPECT_TRUE(p) << p.error().message;
  return p ? std::move(*p) : nullptr;
}

TEST(PipelineModel, AnalyzeGivesLandmarksAndTemplatesForEveryFace) {
  FG_SAMPLE_OR_SKIP(pack, img, "sample1.jpg");
  auto pipe = make(pack);
  ASSERT_TRUE(pipe);
  auto faces = pipe->analyze(img);
  ASSERT_TRUE(faces) << faces.error().message;
  ASSERT_GE(faces->size(), 3u);
  for (const auto& af : *faces) {
    EXPECT_EQ(af.face.scheme, LandmarkScheme::kIbug68);
    EXPECT_EQ(af.face.landmarks.size(), 68u);
    EXPECT_EQ(af.embedding.model_id, pipe->embedder().model_id());
    ASSERT_EQ(af.embedding.values.size(), 128u);
    for (float v : af.embedding.values) ASSERT_TRUE(std::isfinite(v));
  }
  // Different people in one photo are different under dlib's threshold.
  for (std::size_t i = 0; i < faces->size(); ++i)
    for (std::size_t j = i + 1; j < faces->size(); ++j) {
      auto c = compare((*faces)[i].embedding, (*faces)[j].embedding);
      ASSERT_TRUE(c);
      EXPECT_FALSE(c->same) << i << " vs " << j << " distance " << c->distance;
    }

  // The batched path equals the one-face path.
  auto detected = pipe->detect(img);
  ASSERT_TRUE(detected);
  ASSERT_EQ(detected->size(), faces->size());
  for (std::size_t i = 0; i < detected->size(); ++i) {
    Face f = (*detected)[i];
    auto e = pipe->embed_face(img, f);
    ASSERT_TRUE(e) << e.error().message;
    auto c = compare(*e, (*faces)[i].embedding);
    ASSERT_TRUE(c);
    EXPECT_LT(c->distance, 1e-3f) << "face " << i;
    EXPECT_EQ(f.scheme, LandmarkScheme::kIbug68) << "embed_face fills in the landmarks it used";
  }
}

TEST(PipelineModel, MaxFacesKeepsTheMostConfident) {
  FG_SAMPLE_OR_SKIP(pack, img, "sample5.jpg");
  auto all = make(pack);
  ASSERT_TRUE(all);
  auto every = all->detect(img);
  ASSERT_TRUE(every);
  ASSERT_GE(every->size(), 3u);
  PipelineOptions o;
  o.max_faces = 2;
  auto two = make(pack, o);
  ASSERT_TRUE(two);
  auto faces = two->analyze(img);
  ASSERT_TRUE(faces);
  ASSERT_EQ(faces->size(), 2u);
  for (std::size_t i = 0; i < 2; ++i) EXPECT_FLOAT_EQ((*faces)[i].face.score, (*every)[i].score);

  o.max_faces = -1;
  auto bad = Pipeline::create(pack, o);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalidArgument);
}

TEST(PipelineModel, NoFaceIsAnEmptyResultAndBadImagesAreErrors) {
  FG_MODELS_OR_SKIP(pack);
  auto pipe = make(pack);
  ASSERT_TRUE(pipe);
  cv::Mat gradient(240, 320, CV_8UC3);
  for (int y = 0; y < gradient.rows; ++y)
    for (int x = 0; x < gradient.cols; ++x) gradient.at<cv::Vec3b>(y, x) = cv::Vec3b(x % 256, y % 256, 90);
  auto none = pipe->analyze(gradient);
  ASSERT_TRUE(none) << none.error().message;
  EXPECT_TRUE(none->empty());

  for (const cv::Mat& bad : {cv::Mat(), cv::Mat(10, 10, CV_8UC1, cv::Scalar(0)), cv::Mat(10, 10, CV_32FC3)}) {
    auto r = pipe->analyze(bad);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
    Face f;
    f.box = {0, 0, 5, 5};
    auto e = pipe->embed_face(bad, f);
    ASSERT_FALSE(e);
    EXPECT_EQ(e.error().code, ErrorCode::kInvalidArgument);
  }
}

TEST(PipelineModel, BlazeFaceUsesItsKeypointsOrRefinesThem) {
  FG_SAMPLE_OR_SKIP(pack, img, "sample1.jpg");
  PipelineOptions o;
  o.detector.kind = DetectorKind::kBlazeFaceBack;
  o.landmarks68 = false;
  auto raw = make(pack, o);
  ASSERT_TRUE(raw);
  auto kp = raw->analyze(img);
  ASSERT_TRUE(kp) << kp.error().message;
  ASSERT_FALSE(kp->empty());
  for (const auto& af : *kp) EXPECT_EQ(af.face.scheme, LandmarkScheme::kBlazeFace6);

  o.landmarks68 = true;
  auto refined = make(pack, o);
  ASSERT_TRUE(refined);
  auto r = refined->analyze(img);
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r->size(), kp->size());
  for (std::size_t i = 0; i < r->size(); ++i) {
    EXPECT_EQ((*r)[i].face.scheme, LandmarkScheme::kIbug68);
    // The same person whichever landmarks aligned the chip.
    auto c = compare((*r)[i].embedding, (*kp)[i].embedding);
    ASSERT_TRUE(c);
    EXPECT_TRUE(c->same) << "face " << i << " distance " << c->distance;
  }
}

TEST(PipelineModel, TemplatesSurviveCroppingTheImage) {
  FG_SAMPLE_OR_SKIP(pack, img, "sample1.jpg");
  auto pipe = make(pack);
  ASSERT_TRUE(pipe);
  auto full = pipe->analyze(img);
  ASSERT_TRUE(full);
  ASSERT_FALSE(full->empty());
  const Box b = (*full)[0].face.box;
  // A crop with one box of margin on each side, shifted off the pixel grid of the original.
  const cv::Rect roi = cv::Rect(static_cast<int>(b.x - b.width) + 1, static_cast<int>(b.y - b.height) + 1,
                                static_cast<int>(3 * b.width), static_cast<int>(3 * b.height)) &
                       cv::Rect(0, 0, img.cols, img.rows);
  const cv::Mat crop = img(roi).clone();
  auto part = pipe->analyze(crop);
  ASSERT_TRUE(part);
  ASSERT_FALSE(part->empty());
  float best = 1e9f;
  for (const auto& af : *part) {
    auto c = compare(af.embedding, (*full)[0].embedding);
    ASSERT_TRUE(c);
    best = std::min(best, c->distance);
  }
  EXPECT_LT(best, 0.25f) << "the same face, cropped, should give nearly the same template";
}

TEST(PipelineModel, AxisCropReproducesFaceApiPathAndStillMatches) {
  FG_SAMPLE_OR_SKIP(pack, img, "sample2.jpg");
  auto sim = make(pack);
  PipelineOptions o;
  o.align = AlignMethod::kAxisCrop;
  auto crop = make(pack, o);
  ASSERT_TRUE(sim && crop);
  auto a = sim->analyze(img);
  auto b = crop->analyze(img);
  ASSERT_TRUE(a && b);
  ASSERT_EQ(a->size(), b->size());
  for (std::size_t i = 0; i < a->size(); ++i) {
    auto c = compare((*a)[i].embedding, (*b)[i].embedding);
    ASSERT_TRUE(c);
    EXPECT_GT(c->distance, 0.f) << "a different chip gives a different template";
    EXPECT_TRUE(c->same) << "face " << i << " distance " << c->distance;
  }
}

}  // namespace
// Flip averaging is the mean of the chip's template and its mirror's, and analyze() (batched) agrees with
// embed_face() (one face); fusion appends the MobileFaceNet template of the same face to the dlib one.
TEST(PipelineModel, FlipAveragesTheMirroredChipAndFusionAppendsMobileFaceNet) {
  FG_SAMPLE_OR_SKIP(pack, img, "sample1.jpg");
  auto plain = make(pack);
  PipelineOptions fo;
  fo.flip = true;
  auto flipped = make(pack, fo);
  fo.fuse = true;
  auto fused = make(pack, fo);
  PipelineOptions mo;
  mo.flip = true;
  mo.embedder.kind = EmbedderKind::kMobileFaceNet;
  auto mfn = make(pack, mo);
  ASSERT_TRUE(plain && flipped && fused && mfn);
  auto a = plain->analyze(img);
  auto f = flipped->analyze(img);
  auto u = fused->analyze(img);
  auto m = mfn->analyze(img);
  ASSERT_TRUE(a && f && u && m);
  ASSERT_FALSE(a->empty());
  ASSERT_EQ(a->size(), f->size());
  ASSERT_EQ(a->size(), u->size());
  ASSERT_EQ(a->size(), m->size());
  for (std::size_t i = 0; i < a->size(); ++i) {
    const auto& e = (*f)[i].embedding;
    ASSERT_EQ(e.values.size(), 128u);
    // Not the plain template, but close to it: the mirror of a frontal face is the same person.
    auto c = compare((*a)[i].embedding, e);
    ASSERT_TRUE(c);
    EXPECT_GT(c->distance, 1e-4f);
    EXPECT_LT(c->distance, 0.25f);
    // The one-face path gives the same template as the batch.
    Face face = (*f)[i].face;
    auto one = flipped->embed_face(img, face);
    ASSERT_TRUE(one) << one.error().message;
    for (std::size_t k = 0; k < 128; ++k) EXPECT_NEAR(one->values[k], e.values[k], 1e-4f);
    // Fusion: the flipped dlib template, then the flipped MobileFaceNet template.
    const auto& fe = (*u)[i].embedding;
    EXPECT_EQ(fe.model_id, fused_model_id(e.model_id, (*m)[i].embedding.model_id));
    ASSERT_EQ(fe.values.size(), 320u);
    for (std::size_t k = 0; k < 128; ++k) EXPECT_NEAR(fe.values[k], e.values[k], 1e-4f);
    for (std::size_t k = 0; k < 192; ++k) EXPECT_NEAR(fe.values[128 + k], (*m)[i].embedding.values[k], 1e-4f);
  }
  // Fusion adds MobileFaceNet to dlib; asking for it on MobileFaceNet is refused.
  mo.fuse = true;
  auto bad = Pipeline::create(pack, mo);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalidArgument);
}

}  // namespace faceguard
