// Parity with face-api.js 1.7.15 itself: the reference written by scripts/reference/run.sh (face-api.js in
// Node, TF.js CPU backend) against faceguard's public API on the very same pixels (the reference stores every
// input as a lossless PNG; see scripts/reference/lib/image.js for why).
//
// The reference is looked for in $FACEGUARD_REFERENCE_DIR, else <source>/build/reference. When it is absent the
// tests skip, unless FACEGUARD_REQUIRE_MODELS=1, when they fail (scripts/test.sh builds it first).
//
// Stages are checked apart, each fed face-api's own output of the stage before, so that a failure names the
// stage that differs:
//   ParityRaw.*      networks alone on fixed inputs of the network's size (no padding, no resize)
//   ParitySample.*   the six sample photos: detectors, landmarks on face-api's boxes, the axis-crop chip on
//                    face-api's landmarks, the descriptor of that chip, then the whole chain end to end
//   ParitySelfCheck.*  the comparisons do report a 2 px box shift, a 0.6 px landmark shift, a pixel block
// Tolerances: boxes 1 px, landmarks 0.5 px, descriptors 1e-3 L2 on samples (the brief's parity figures);
// much tighter on the fixed inputs, where only float rounding differs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "faceguard/faceguard.hpp"
#include "parity_compare.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace faceguard::parity {
namespace {

// Raw fixed inputs: only float rounding differs between TF.js and OpenCV DNN.
constexpr double kRawBoxTolPx = 0.02;
constexpr double kRawScoreTol = 1e-3;
constexpr double kRawLandmarkTolPx = 0.01;
constexpr double kRawDescriptorTol = 1e-4;
// Samples (the parity figures asked of the port).
constexpr double kBoxTolPx = 1.0;
constexpr double kScoreTol = 5e-3;
constexpr float kScoreMargin = 0.01f;  // a face this close to the threshold may be on one side only
constexpr double kLandmarkTolPx = 0.5;
constexpr double kDescriptorTol = 1e-3;
// The chip: face-api's float chip vs ours; an 8-bit chip is within 0.5 by rounding alone.
constexpr double kChipMaxAbsTol = 1.0;

std::optional<fs::path> reference_dir() {
  fs::path dir;
  if (const char* e = std::getenv("FACEGUARD_REFERENCE_DIR"); e && *e) {
    dir = e;
  } else {
    dir = test::source_dir() / "build" / "reference";
  }
  if (fs::is_regular_file(dir / "reference.json")) return dir;
  return std::nullopt;
}

json read_json(const fs::path& p) {
  std::ifstream in(p);
  if (!in) throw std::runtime_error("cannot read " + p.string());
  return json::parse(in);
}

Box box_of(const json& j) {
  return Box{j.at("x").get<float>(), j.at("y").get<float>(), j.at("width").get<float>(), j.at("height").get<float>()};
}

std::vector<ScoredBox> boxes_of(const json& list) {
  std::vector<ScoredBox> out;
  for (const auto& d : list) out.push_back({box_of(d.at("box")), d.at("score").get<float>()});
  return out;
}

std::vector<ScoredBox> boxes_of(const std::vector<Face>& faces) {
  std::vector<ScoredBox> out;
  for (const auto& f : faces) out.push_back({f.box, f.score});
  return out;
}

std::vector<Point2f> points_of(const json& list) {
  std::vector<Point2f> out;
  for (const auto& p : list) out.push_back({p.at(0).get<float>(), p.at(1).get<float>()});
  return out;
}

std::vector<float> floats_of(const json& list) { return list.get<std::vector<float>>(); }

// face-api's float chip (HWC RGB float32) as a BGR CV_32FC3 Mat.
cv::Mat read_f32_chip(const fs::path& p, int size) {
  cv::Mat rgb(size, size, CV_32FC3);
  std::ifstream in(p, std::ios::binary);
  in.read(reinterpret_cast<char*>(rgb.data), static_cast<std::streamsize>(rgb.total() * rgb.elemSize()));
  if (!in) throw std::runtime_error("cannot read " + p.string());
  cv::Mat bgr;
  cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
  return bgr;
}

struct ChipDiff {
  double max_abs = 0;
  double mean_abs = 0;
};
ChipDiff chip_diff(const cv::Mat& a, const cv::Mat& b) {
  cv::Mat fa, fb, d;
  a.convertTo(fa, CV_32F);
  b.convertTo(fb, CV_32F);
  cv::absdiff(fa.reshape(1), fb.reshape(1), d);
  double mx = 0;
  cv::minMaxLoc(d, nullptr, &mx);
  return {mx, cv::mean(d)[0]};
}

// One set of engines for the whole binary: building the nets from TF.js weights costs a little.
struct Engines {
  std::optional<ModelPack> pack;
  std::unique_ptr<Detector> ssd, tiny;
  std::unique_ptr<Landmarker> lm, lm_tiny;
  std::unique_ptr<Embedder> emb;
  std::string error;
};

Engines& engines() {
  static Engines e = [] {
    Engines x;
    auto pack = ModelPack::open(default_model_dir());
    if (!pack) {
      x.error = pack.error().message;
      return x;
    }
    x.pack.emplace(std::move(*pack));
    auto fail = [&x](const std::string& what, const Error& err) { x.error += what + ": " + err.message + "; "; };
    if (auto d = Detector::create(*x.pack, {.kind = DetectorKind::kSsd})) x.ssd = std::move(*d);
    else fail("ssd", d.error());
    if (auto d = Detector::create(*x.pack, {.kind = DetectorKind::kTiny, .input_size = 416})) x.tiny = std::move(*d);
    else fail("tiny", d.error());
    if (auto l = Landmarker::create(*x.pack, {})) x.lm = std::move(*l);
    else fail("landmarks68", l.error());
    if (auto l = Landmarker::create(*x.pack, {.tiny = true})) x.lm_tiny = std::move(*l);
    else fail("landmarks68 tiny", l.error());
    if (auto m = Embedder::create(*x.pack, {})) x.emb = std::move(*m);
    else fail("embedder", m.error());
    return x;
  }();
  return e;
}

// Skips (or fails under FACEGUARD_REQUIRE_MODELS=1) without models or reference; fails if an engine
// cannot be built from models that are present.
#define FG_PARITY_SETUP()                                                                              \
  const auto ref_dir_opt_ = reference_dir();                                                          \
  if (!ref_dir_opt_) {                                                                                \
    if (faceguard::test::require_models_env())                                                        \
      FAIL() << "no face-api.js reference (reference.json) in $FACEGUARD_REFERENCE_DIR or build/reference;" \
                " run scripts/reference/run.sh";                                                      \
    GTEST_SKIP() << "no face-api.js reference: run scripts/reference/run.sh "                         \
                    "(or set FACEGUARD_REFERENCE_DIR)";                                               \
  }                                                                                                   \
  const fs::path ref_dir = *ref_dir_opt_;                                                             \
  Engines& eng = engines();                                                                           \
  if (!eng.pack) {                                                                                    \
    if (faceguard::test::require_models_env()) FAIL() << eng.error;                                   \
    GTEST_SKIP() << "models not fetched (" << eng.error << "); run `faceguard models fetch`";         \
  }                                                                                                   \
  ASSERT_TRUE(eng.error.empty()) << eng.error

cv::Mat load_png(const fs::path& p) {
  auto img = load_image(p);
  if (!img) throw std::runtime_error(p.string() + ": " + img.error().message);
  return *img;
}

Face face_of(const json& ref_face) {
  Face f;
  f.box = box_of(ref_face.at("detection").at("box"));
  f.score = ref_face.at("detection").at("score").get<float>();
  f.scheme = LandmarkScheme::kIbug68;
  f.landmarks = points_of(ref_face.at("landmarks68"));
  f.detector = "ssd";
  return f;
}

// ---------------------------------------------------------------------------------------------------------
// The reference was made from the very weights and photos this checkout uses.

TEST(ParityReference, MadeFromTheInstalledModels) {
  FG_PARITY_SETUP();
  const json index = read_json(ref_dir / "reference.json");
  EXPECT_EQ(index.at("format"), "faceguard-reference/1");
  EXPECT_EQ(index.at("provenance").at("version"), "1.7.15");
  EXPECT_EQ(index.at("provenance").at("tfjs").at("tfjs"), "4.22.0");
  std::size_t checked = 0;
  for (const auto& [file, sha] : index.at("model_files").items()) {
    bool found = false;
    for (const auto& f : eng.pack->files()) {
      if (fs::path(f.path).filename() == file) {
        found = true;
        EXPECT_EQ(f.sha256, sha.get<std::string>()) << file << ": the reference was made from other weights";
      }
    }
    EXPECT_TRUE(found) << file << " is not in the model pack";
    ++checked;
  }
  EXPECT_EQ(checked, 5u);
  EXPECT_EQ(index.at("samples").size(), 6u);
}

// ---------------------------------------------------------------------------------------------------------
// Networks alone on fixed inputs.

class ParityRaw : public ::testing::Test {
 protected:
  static const json& raw(const fs::path& dir) {
    static const json j = read_json(dir / "raw.json");
    return j;
  }
};

TEST_F(ParityRaw, Ssd512) {
  FG_PARITY_SETUP();
  const json& r = raw(ref_dir).at("ssd");
  const cv::Mat input = load_png(ref_dir / r.at("png").get<std::string>());
  ASSERT_EQ(input.cols, 512);
  const float min_score = r.at("min_score").get<float>();
  auto det = Detector::create(*eng.pack, {.kind = DetectorKind::kSsd, .min_score = min_score});
  ASSERT_TRUE(det) << det.error().message;
  auto faces = (*det)->detect(input);
  ASSERT_TRUE(faces) << faces.error().message;
  const auto rep = compare_detections(boxes_of(r.at("detections")), boxes_of(*faces), kRawBoxTolPx, kRawScoreTol,
                                      min_score, 0.005f);
  std::cout << "[parity] raw ssd512 @" << min_score << ": " << rep.summary() << "\n";
  EXPECT_TRUE(rep.ok()) << rep.summary();
  EXPECT_GE(rep.matched, 3u);
}

TEST_F(ParityRaw, Tiny416) {
  FG_PARITY_SETUP();
  const json& r = raw(ref_dir).at("tiny");
  const cv::Mat input = load_png(ref_dir / r.at("png").get<std::string>());
  ASSERT_EQ(input.cols, 416);
  const float min_score = r.at("min_score").get<float>();
  auto det = Detector::create(*eng.pack, {.kind = DetectorKind::kTiny, .min_score = min_score, .input_size = 416});
  ASSERT_TRUE(det) << det.error().message;
  auto faces = (*det)->detect(input);
  ASSERT_TRUE(faces) << faces.error().message;
  const auto rep = compare_detections(boxes_of(r.at("detections")), boxes_of(*faces), kRawBoxTolPx, kRawScoreTol,
                                      min_score, 0.005f);
  std::cout << "[parity] raw tiny416 @" << min_score << ": " << rep.summary() << "\n";
  EXPECT_TRUE(rep.ok()) << rep.summary();
  EXPECT_GE(rep.matched, 1u);
}

TEST_F(ParityRaw, Landmarks112) {
  FG_PARITY_SETUP();
  const json& r = raw(ref_dir).at("landmarks");
  const cv::Mat chip = load_png(ref_dir / r.at("png").get<std::string>());
  ASSERT_EQ(chip.cols, 112);
  const Box whole{0, 0, 112, 112};
  for (const bool tiny : {false, true}) {
    auto pts = (tiny ? eng.lm_tiny : eng.lm)->landmarks(chip, whole);
    ASSERT_TRUE(pts) << pts.error().message;
    const auto rep = compare_points(points_of(r.at(tiny ? "landmarks68_tiny" : "landmarks68")), *pts,
                                    kRawLandmarkTolPx);
    std::cout << "[parity] raw landmarks112" << (tiny ? " tiny" : "") << ": max " << rep.max_px << " px, mean "
              << rep.mean_px << "\n";
    EXPECT_TRUE(rep.ok()) << (tiny ? "tiny: " : "full: ") << rep.problem;
  }
}

TEST_F(ParityRaw, Descriptor150) {
  FG_PARITY_SETUP();
  const json& r = raw(ref_dir).at("recognition");
  const cv::Mat chip = load_png(ref_dir / r.at("png").get<std::string>());
  ASSERT_EQ(chip.cols, 150);
  auto e = eng.emb->embed(chip);
  ASSERT_TRUE(e) << e.error().message;
  const double d = l2_distance(floats_of(r.at("descriptor")), e->values);
  std::cout << "[parity] raw descriptor150: L2 " << d << "\n";
  EXPECT_LE(d, kRawDescriptorTol);
}

// ---------------------------------------------------------------------------------------------------------
// The sample photos, stage by stage.

class ParitySample : public ::testing::TestWithParam<int> {
 protected:
  static json sample(const fs::path& dir, int n) { return read_json(dir / ("sample" + std::to_string(n) + ".json")); }
  static std::string name(int n) { return "sample" + std::to_string(n); }
};

TEST_P(ParitySample, SsdBoxes) {
  FG_PARITY_SETUP();
  const json s = sample(ref_dir, GetParam());
  const cv::Mat image = load_png(ref_dir / s.at("image").at("png").get<std::string>());
  auto faces = eng.ssd->detect(image);
  ASSERT_TRUE(faces) << faces.error().message;
  const auto rep = compare_detections(boxes_of(s.at("ssd")), boxes_of(*faces), kBoxTolPx, kScoreTol, 0.5f, kScoreMargin);
  std::cout << "[parity] " << name(GetParam()) << " ssd: " << rep.summary() << "\n";
  EXPECT_TRUE(rep.ok()) << rep.summary();
}

TEST_P(ParitySample, TinyBoxes) {
  FG_PARITY_SETUP();
  const json s = sample(ref_dir, GetParam());
  const cv::Mat image = load_png(ref_dir / s.at("image").at("png").get<std::string>());
  auto faces = eng.tiny->detect(image);
  ASSERT_TRUE(faces) << faces.error().message;
  const auto rep = compare_detections(boxes_of(s.at("tiny")), boxes_of(*faces), kBoxTolPx, kScoreTol, 0.5f, kScoreMargin);
  std::cout << "[parity] " << name(GetParam()) << " tiny: " << rep.summary() << "\n";
  EXPECT_TRUE(rep.ok()) << rep.summary();
}

// Landmarks on face-api's own SSD boxes, so a box difference cannot hide or cause a landmark difference.
TEST_P(ParitySample, LandmarksOnReferenceBoxes) {
  FG_PARITY_SETUP();
  const json s = sample(ref_dir, GetParam());
  const cv::Mat image = load_png(ref_dir / s.at("image").at("png").get<std::string>());
  double worst[2] = {0, 0};
  for (std::size_t k = 0; k < s.at("faces").size(); ++k) {
    const json& f = s.at("faces")[k];
    const Box box = box_of(f.at("detection").at("box"));
    for (const bool tiny : {false, true}) {
      auto pts = (tiny ? eng.lm_tiny : eng.lm)->landmarks(image, box);
      ASSERT_TRUE(pts) << pts.error().message;
      const auto rep = compare_points(points_of(f.at(tiny ? "landmarks68_tiny" : "landmarks68")), *pts, kLandmarkTolPx);
      worst[tiny] = std::max(worst[tiny], rep.max_px);
      EXPECT_TRUE(rep.ok()) << name(GetParam()) << " face " << k << (tiny ? " tiny: " : " full: ") << rep.problem
                            << " (crop " << f.at("landmark_crop").dump() << ")";
    }
  }
  std::cout << "[parity] " << name(GetParam()) << " landmarks: max " << worst[0] << " px (tiny net " << worst[1]
            << " px)\n";
}

// face-api's descriptor input: the dlib-aligned rect from its landmarks, cropped, centred-padded, resized to 150.
TEST_P(ParitySample, AxisCropChipOnReferenceLandmarks) {
  FG_PARITY_SETUP();
  const json s = sample(ref_dir, GetParam());
  const cv::Mat image = load_png(ref_dir / s.at("image").at("png").get<std::string>());
  ChipDiff worst;
  for (std::size_t k = 0; k < s.at("faces").size(); ++k) {
    const json& f = s.at("faces")[k];
    auto chip = align(image, face_of(f), ChipTemplate::dlib150(), AlignMethod::kAxisCrop);
    ASSERT_TRUE(chip) << chip.error().message;
    ASSERT_EQ(chip->cols, 150);
    ASSERT_EQ(chip->rows, 150);
    const cv::Mat ref = read_f32_chip(ref_dir / f.at("chip150_f32").get<std::string>(), 150);
    const ChipDiff d = chip_diff(ref, *chip);
    worst.max_abs = std::max(worst.max_abs, d.max_abs);
    worst.mean_abs = std::max(worst.mean_abs, d.mean_abs);
    EXPECT_LE(d.max_abs, kChipMaxAbsTol) << name(GetParam()) << " face " << k << ": chip differs by " << d.max_abs
                                         << " (mean " << d.mean_abs << "); face-api cropped "
                                         << f.at("chip_crop").dump();
  }
  std::cout << "[parity] " << name(GetParam()) << " axis-crop chip: max |diff| " << worst.max_abs << ", mean "
            << worst.mean_abs << "\n";
}

// The descriptor of our chip built on face-api's landmarks, against face-api's descriptor. Also the net alone
// on face-api's own 8-bit chips of real faces.
TEST_P(ParitySample, DescriptorsOnReferenceLandmarks) {
  FG_PARITY_SETUP();
  const json s = sample(ref_dir, GetParam());
  const cv::Mat image = load_png(ref_dir / s.at("image").at("png").get<std::string>());
  double worst = 0, worst_net = 0, floor8 = 0;
  for (std::size_t k = 0; k < s.at("faces").size(); ++k) {
    const json& f = s.at("faces")[k];
    const cv::Mat ref_chip8 = load_png(ref_dir / f.at("chip150_png").get<std::string>());
    auto e8 = eng.emb->embed(ref_chip8);
    ASSERT_TRUE(e8) << e8.error().message;
    const double dn = l2_distance(floats_of(f.at("descriptor_8bit_chip")), e8->values);
    worst_net = std::max(worst_net, dn);
    EXPECT_LE(dn, kRawDescriptorTol) << name(GetParam()) << " face " << k << ": net on face-api's 8-bit chip";

    auto chip = align(image, face_of(f), ChipTemplate::dlib150(), AlignMethod::kAxisCrop);
    ASSERT_TRUE(chip) << chip.error().message;
    auto e = eng.emb->embed(*chip);
    ASSERT_TRUE(e) << e.error().message;
    const double d = l2_distance(floats_of(f.at("descriptor")), e->values);
    worst = std::max(worst, d);
    floor8 = std::max(floor8, f.at("descriptor_8bit_chip_l2").get<double>());
    EXPECT_LE(d, kDescriptorTol) << name(GetParam()) << " face " << k << ": descriptor L2 " << d
                                 << " (face-api's own 8-bit chip alone costs "
                                 << f.at("descriptor_8bit_chip_l2").get<double>() << ")";
  }
  std::cout << "[parity] " << name(GetParam()) << " descriptor: max L2 " << worst << " (net on face-api chip "
            << worst_net << "; 8-bit-chip floor " << floor8 << ")\n";
}

// Our whole chain: our SSD boxes -> our landmarks -> our chip -> our descriptor, matched to face-api's faces.
TEST_P(ParitySample, EndToEnd) {
  FG_PARITY_SETUP();
  const json s = sample(ref_dir, GetParam());
  const cv::Mat image = load_png(ref_dir / s.at("image").at("png").get<std::string>());
  auto faces = eng.ssd->detect(image);
  ASSERT_TRUE(faces) << faces.error().message;
  double worst_box = 0, worst_lm = 0, worst_desc = 0;
  std::size_t matched = 0;
  for (std::size_t k = 0; k < s.at("faces").size(); ++k) {
    const json& f = s.at("faces")[k];
    const Box ref_box = box_of(f.at("detection").at("box"));
    const Face* ours = nullptr;
    for (const auto& c : *faces) {
      if (iou_of(c.box, ref_box) >= 0.5 && (!ours || iou_of(c.box, ref_box) > iou_of(ours->box, ref_box))) ours = &c;
    }
    if (!ours) {
      EXPECT_LE(f.at("detection").at("score").get<float>(), 0.5f + kScoreMargin)
          << name(GetParam()) << " face " << k << " not detected";
      continue;
    }
    ++matched;
    Face face = *ours;
    auto pts = eng.lm->landmarks(image, face.box);
    ASSERT_TRUE(pts) << pts.error().message;
    face.landmarks = *pts;
    face.scheme = LandmarkScheme::kIbug68;
    auto chip = align(image, face, ChipTemplate::dlib150(), AlignMethod::kAxisCrop);
    ASSERT_TRUE(chip) << chip.error().message;
    auto e = eng.emb->embed(*chip);
    ASSERT_TRUE(e) << e.error().message;
    const double db = box_deviation(ref_box, face.box);
    const auto lm = compare_points(points_of(f.at("landmarks68")), face.landmarks, kLandmarkTolPx);
    const double dd = l2_distance(floats_of(f.at("descriptor")), e->values);
    worst_box = std::max(worst_box, db);
    worst_lm = std::max(worst_lm, lm.max_px);
    worst_desc = std::max(worst_desc, dd);
    EXPECT_LE(db, kBoxTolPx) << name(GetParam()) << " face " << k;
    EXPECT_TRUE(lm.ok()) << name(GetParam()) << " face " << k << ": " << lm.problem;
    EXPECT_LE(dd, kDescriptorTol) << name(GetParam()) << " face " << k;
  }
  EXPECT_GE(matched, 1u);
  std::cout << "[parity] " << name(GetParam()) << " end-to-end (" << matched << " faces): box " << worst_box
            << " px, landmarks " << worst_lm << " px, descriptor L2 " << worst_desc << "\n";
}

INSTANTIATE_TEST_SUITE_P(Samples, ParitySample, ::testing::Range(1, 7),
                         [](const ::testing::TestParamInfo<int>& p) { return "sample" + std::to_string(p.param); });

// ---------------------------------------------------------------------------------------------------------
// The comparisons can fail.

TEST(ParitySelfCheck, TwoPixelBoxShiftIsReported) {
  const std::vector<ScoredBox> ref = {{{100, 200, 50, 60}, 0.9f}, {{400, 100, 80, 90}, 0.8f}};
  auto shifted = ref;
  EXPECT_TRUE(compare_detections(ref, shifted, kBoxTolPx, kScoreTol, 0.5f, kScoreMargin).ok());
  shifted[1].box.x += 2;
  const auto rep = compare_detections(ref, shifted, kBoxTolPx, kScoreTol, 0.5f, kScoreMargin);
  EXPECT_FALSE(rep.ok());
  EXPECT_NEAR(rep.max_box_px, 2.0, 1e-6);
  // A missing confident face and an extra confident face are both reported; a borderline one is not.
  EXPECT_FALSE(compare_detections(ref, {ref[0]}, kBoxTolPx, kScoreTol, 0.5f, kScoreMargin).ok());
  auto extra = ref;
  extra.push_back({{800, 800, 40, 40}, 0.7f});
  EXPECT_FALSE(compare_detections(ref, extra, kBoxTolPx, kScoreTol, 0.5f, kScoreMargin).ok());
  extra.back().score = 0.505f;
  EXPECT_TRUE(compare_detections(ref, extra, kBoxTolPx, kScoreTol, 0.5f, kScoreMargin).ok());
}

TEST(ParitySelfCheck, LandmarkAndDescriptorDeviationsAreReported) {
  std::vector<Point2f> pts(68);
  for (int i = 0; i < 68; ++i) pts[i] = {float(i), float(2 * i)};
  auto moved = pts;
  EXPECT_TRUE(compare_points(pts, moved, kLandmarkTolPx).ok());
  moved[30].y += 0.6f;
  const auto rep = compare_points(pts, moved, kLandmarkTolPx);
  EXPECT_FALSE(rep.ok());
  EXPECT_EQ(rep.worst, 30u);
  EXPECT_FALSE(compare_points(pts, std::vector<Point2f>(67), kLandmarkTolPx).ok());
  std::vector<float> a(128, 0.05f), b = a;
  EXPECT_LE(l2_distance(a, b), kDescriptorTol);
  b[7] += 2e-3f;
  EXPECT_GT(l2_distance(a, b), kDescriptorTol);
  EXPECT_GT(l2_distance(a, std::vector<float>(127, 0.05f)), 1e9);
}

// On real data: a 10x10 pixel block changed in the recognition chip, or the chip shifted by one pixel (what a
// resize-convention slip does), moves our descriptor past the tolerance - the check sees preprocessing errors.
TEST(ParitySelfCheck, PerturbedChipFailsTheDescriptorCheck) {
  FG_PARITY_SETUP();
  const json r = read_json(ref_dir / "raw.json").at("recognition");
  const std::vector<float> ref = floats_of(r.at("descriptor"));
  const cv::Mat chip = load_png(ref_dir / r.at("png").get<std::string>());
  cv::Mat block = chip.clone();
  block(cv::Rect(70, 70, 10, 10)) += cv::Scalar(60, 60, 60);
  cv::Mat shifted;
  const cv::Mat m = (cv::Mat_<double>(2, 3) << 1, 0, 1, 0, 1, 0);
  cv::warpAffine(chip, shifted, m, chip.size(), cv::INTER_NEAREST, cv::BORDER_REPLICATE);
  for (const auto* bad : {&block, &shifted}) {
    auto e = eng.emb->embed(*bad);
    ASSERT_TRUE(e) << e.error().message;
    const double d = l2_distance(ref, e->values);
    std::cout << "[parity] self-check: perturbed chip descriptor L2 " << d << "\n";
    EXPECT_GT(d, kDescriptorTol);
  }
}

}  // namespace
}  // namespace faceguard::parity
