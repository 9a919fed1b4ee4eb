// Detection metrics on hand-made boxes with answers worked out by hand: VOC matching, all-point AP,
// precision/recall at an operating score, COCO-style size buckets, difficult boxes; the VOC folder loader
// and the misses contact sheet on generated files.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <opencv2/imgcodecs.hpp>

#include "faceguard/eval.hpp"

namespace {

namespace fs = std::filesystem;
using faceguard::Box;
using faceguard::ErrorCode;
using namespace faceguard::eval;

DetectionImage image_with(std::vector<Box> boxes, std::vector<bool> difficult = {}) {
  DetectionImage img;
  for (std::size_t i = 0; i < boxes.size(); ++i) {
    TruthBox t;
    t.box = boxes[i];
    t.label = "face";
    t.difficult = i < difficult.size() && difficult[i];
    img.truth.push_back(t);
  }
  return img;
}

ScoredBox det(Box b, float s) { return ScoredBox{b, s}; }

DetectionEvaluation evaluate(const std::vector<DetectionImage>& images, const std::vector<std::vector<ScoredBox>>& d,
                             float operating = 0.5f) {
  MatchOptions o;
  o.operating_score = operating;
  auto ev = evaluate_detections(images, d, o);
  EXPECT_TRUE(ev) << ev.error().message;
  return ev ? *ev : DetectionEvaluation{};
}

const Box kA{10, 10, 50, 50};
const Box kB{100, 10, 50, 50};
const Box kC{10, 100, 60, 60};

TEST(DetectionMetrics, PerfectDetectorHasApOne) {
  const std::vector<DetectionImage> images{image_with({kA, kB}), image_with({kC})};
  const auto ev = evaluate(images, {{det(kB, 0.9f), det(kA, 0.8f)}, {det(kC, 0.95f)}});
  EXPECT_DOUBLE_EQ(ev.overall.ap, 1.0);
  EXPECT_DOUBLE_EQ(ev.overall.precision, 1.0);
  EXPECT_DOUBLE_EQ(ev.overall.recall, 1.0);
  EXPECT_EQ(ev.overall.truths, 3);
  EXPECT_EQ(ev.overall.true_positives, 3);
  EXPECT_EQ(ev.overall.false_positives, 0);
  ASSERT_EQ(ev.overall.curve.size(), 3u);
  EXPECT_FLOAT_EQ(ev.overall.curve[0].score, 0.95f);  // ranked over the whole set
  EXPECT_FLOAT_EQ(ev.truth_match[0][0], 0.8f);
  EXPECT_FLOAT_EQ(ev.truth_match[0][1], 0.9f);
}

TEST(DetectionMetrics, FalsePositiveAtTheTopScore) {
  // Ranked: FP (P 0, R 0), TP (1/2, 1/2), TP (2/3, 1). The interpolated precision at recall r is the best
  // precision at any recall >= r, so 2/3 over both recall steps: AP = 1/2 * 2/3 + 1/2 * 2/3 = 2/3.
  const std::vector<DetectionImage> images{image_with({kA, kB})};
  const auto ev = evaluate(images, {{det(kC, 0.9f), det(kA, 0.8f), det(kB, 0.7f)}});
  EXPECT_NEAR(ev.overall.ap, 2.0 / 3.0, 1e-12);
  EXPECT_NEAR(ev.overall.precision, 2.0 / 3.0, 1e-12);
  EXPECT_DOUBLE_EQ(ev.overall.recall, 1.0);
  EXPECT_EQ(ev.overall.false_positives, 1);
  ASSERT_EQ(ev.overall.curve.size(), 3u);
  EXPECT_DOUBLE_EQ(ev.overall.curve[0].precision, 0.0);
  EXPECT_DOUBLE_EQ(ev.overall.curve[1].precision, 0.5);
  EXPECT_NEAR(average_precision(ev.overall.curve), 2.0 / 3.0, 1e-12);
}

TEST(DetectionMetrics, AllPointInterpolationNotElevenPoint) {
  // TP (1, 1/2), FP (1/2, 1/2), TP (2/3, 1): all-point AP = 1/2 * 1 + 1/2 * 2/3 = 5/6 (VOC 2007's 11-point
  // mean would give (6 * 1 + 5 * 2/3) / 11 = 0.848).
  const std::vector<DetectionImage> images{image_with({kA, kB})};
  const auto ev = evaluate(images, {{det(kA, 0.9f), det(kC, 0.8f), det(kB, 0.7f)}});
  EXPECT_NEAR(ev.overall.ap, 5.0 / 6.0, 1e-12);
  // Recall never reaching 1 caps AP at the recall reached: one face of two, found first.
  const auto half = evaluate(images, {{det(kA, 0.9f), det(kC, 0.8f)}});
  EXPECT_NEAR(half.overall.ap, 0.5, 1e-12);
}

TEST(DetectionMetrics, DuplicateDetectionIsAFalsePositive) {
  const std::vector<DetectionImage> images{image_with({kA})};
  const Box shifted{14, 12, 50, 50};  // IoU with kA about 0.8
  ASSERT_GT(faceguard::iou(shifted, kA), 0.5f);
  const auto ev = evaluate(images, {{det(kA, 0.9f), det(shifted, 0.8f)}});
  EXPECT_EQ(ev.overall.true_positives, 1);
  EXPECT_EQ(ev.overall.false_positives, 1);
  EXPECT_DOUBLE_EQ(ev.overall.precision, 0.5);
  EXPECT_DOUBLE_EQ(ev.overall.recall, 1.0);
  EXPECT_DOUBLE_EQ(ev.overall.ap, 1.0);  // full recall is reached before the duplicate
}

TEST(DetectionMetrics, GreedyMatchToTheHighestIouUnmatchedTruth) {
  // Two overlapping faces; the top detection overlaps both and takes the closer (B'), the next one takes A'.
  const Box a{0, 0, 40, 40}, b{10, 0, 40, 40};
  const Box d1{8, 0, 40, 40};  // IoU with b 0.90, with a 0.67
  const Box d2{2, 0, 40, 40};  // IoU with a 0.90, with b 0.67
  const std::vector<DetectionImage> images{image_with({a, b})};
  const auto ev = evaluate(images, {{det(d2, 0.8f), det(d1, 0.9f)}});
  EXPECT_EQ(ev.overall.true_positives, 2);
  EXPECT_FLOAT_EQ(ev.truth_match[0][0], 0.8f);
  EXPECT_FLOAT_EQ(ev.truth_match[0][1], 0.9f);
  // Its best truth (b, IoU 0.95) is taken already: it goes to the best unmatched one (a, IoU 0.63 >= 0.5).
  const Box d3{9, 0, 40, 40};
  const auto next = evaluate(images, {{det(d1, 0.9f), det(d3, 0.85f)}});
  EXPECT_EQ(next.overall.true_positives, 2);
  EXPECT_EQ(next.overall.false_positives, 0);
  EXPECT_FLOAT_EQ(next.truth_match[0][0], 0.85f);
  // A box below the IoU threshold matches nothing.
  const auto far = evaluate(images, {{det(Box{30, 30, 40, 40}, 0.9f)}});
  EXPECT_EQ(far.overall.true_positives, 0);
  EXPECT_EQ(far.overall.false_positives, 1);
  EXPECT_DOUBLE_EQ(far.overall.ap, 0.0);
}

TEST(DetectionMetrics, OperatingScoreCutsPrecisionAndRecallNotAp) {
  // One face found at 0.9, one at 0.3, one never: AP = 1/3 + 1/3 = 2/3; at 0.5 recall is 1/3.
  const std::vector<DetectionImage> images{image_with({kA, kB, kC})};
  const auto ev = evaluate(images, {{det(kA, 0.9f), det(kB, 0.3f)}});
  EXPECT_NEAR(ev.overall.ap, 2.0 / 3.0, 1e-12);
  EXPECT_NEAR(ev.overall.recall, 1.0 / 3.0, 1e-12);
  EXPECT_DOUBLE_EQ(ev.overall.precision, 1.0);
  EXPECT_EQ(ev.overall.detections, 1);
  EXPECT_FLOAT_EQ(ev.truth_match[0][1], 0.3f);  // matched, but below the operating score: a miss there
  EXPECT_FLOAT_EQ(ev.truth_match[0][2], -1.f);
}

TEST(DetectionMetrics, DifficultBoxesAreIgnored) {
  const std::vector<DetectionImage> images{image_with({kA, kB, kC}, {false, true, true})};
  // kB (difficult) is detected, kC (difficult) is not: neither counts; kA is found.
  const auto ev = evaluate(images, {{det(kB, 0.95f), det(kA, 0.9f)}});
  EXPECT_EQ(ev.overall.truths, 1);
  EXPECT_EQ(ev.overall.true_positives, 1);
  EXPECT_EQ(ev.overall.false_positives, 0);
  EXPECT_EQ(ev.overall.detections, 1);
  EXPECT_DOUBLE_EQ(ev.overall.ap, 1.0);
  EXPECT_FLOAT_EQ(ev.truth_match[0][1], -1.f);
}

TEST(DetectionMetrics, FaceSizeBucketsBySquareRootOfArea) {
  EXPECT_EQ(face_size(Box{0, 0, 31.9f, 31.9f}), FaceSize::kSmall);
  EXPECT_EQ(face_size(Box{0, 0, 32, 32}), FaceSize::kMedium);
  EXPECT_EQ(face_size(Box{0, 0, 16, 64}), FaceSize::kMedium);  // sqrt(16*64) = 32
  EXPECT_EQ(face_size(Box{0, 0, 96, 96}), FaceSize::kMedium);
  EXPECT_EQ(face_size(Box{0, 0, 96.5f, 96.5f}), FaceSize::kLarge);
  EXPECT_EQ(to_string(FaceSize::kLarge), "large");
}

TEST(DetectionMetrics, SizeBucketsFollowCocoRules) {
  const Box small{0, 0, 20, 20}, medium{100, 0, 34, 34}, large{200, 0, 120, 120};
  const std::vector<DetectionImage> images{image_with({small, medium, large})};
  const Box small_inside_medium{102, 2, 30, 30};  // side 30 (small), IoU with medium 0.78
  const Box small_fp{0, 300, 20, 20}, large_fp{400, 300, 120, 120};
  const auto ev = evaluate(images, {{det(small, 0.9f), det(small_inside_medium, 0.85f), det(large, 0.8f),
                                     det(small_fp, 0.7f), det(large_fp, 0.6f)}});
  EXPECT_EQ(ev.overall.truths, 3);
  EXPECT_EQ(ev.overall.true_positives, 3);
  EXPECT_EQ(ev.overall.false_positives, 2);
  const auto& s = ev.by_size[static_cast<int>(FaceSize::kSmall)];
  EXPECT_EQ(s.truths, 1);
  EXPECT_EQ(s.true_positives, 1);
  // small_inside_medium matches the (ignored) medium face: not a false positive of the small bucket;
  // large_fp is not small-sized: ignored too. Only small_fp counts.
  EXPECT_EQ(s.false_positives, 1);
  EXPECT_DOUBLE_EQ(s.ap, 1.0);
  EXPECT_DOUBLE_EQ(s.precision, 0.5);
  const auto& m = ev.by_size[static_cast<int>(FaceSize::kMedium)];
  EXPECT_EQ(m.truths, 1);
  EXPECT_EQ(m.true_positives, 1);  // a small-sized box may find a medium face
  EXPECT_EQ(m.false_positives, 0);
  const auto& l = ev.by_size[static_cast<int>(FaceSize::kLarge)];
  EXPECT_EQ(l.truths, 1);
  EXPECT_EQ(l.true_positives, 1);
  EXPECT_EQ(l.false_positives, 1);
  EXPECT_DOUBLE_EQ(l.recall, 1.0);
}

TEST(DetectionMetrics, EdgeCasesAndErrors) {
  EXPECT_DOUBLE_EQ(average_precision({}), 0.0);
  const std::vector<DetectionImage> images{image_with({kA})};
  const auto none = evaluate(images, {{}});
  EXPECT_DOUBLE_EQ(none.overall.ap, 0.0);
  EXPECT_DOUBLE_EQ(none.overall.precision, 0.0);
  EXPECT_DOUBLE_EQ(none.overall.recall, 0.0);
  EXPECT_EQ(none.overall.truths, 1);
  const std::vector<std::vector<ScoredBox>> two(2);
  auto bad = evaluate_detections(images, two);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalidArgument);
  MatchOptions zero;
  zero.iou = 0.0;
  EXPECT_FALSE(evaluate_detections(images, std::vector<std::vector<ScoredBox>>(1), zero));
  // Equal scores are ranked in image order: the result does not depend on the run.
  const std::vector<DetectionImage> two_images{image_with({kA}), image_with({kB})};
  const auto tie = evaluate(two_images, {{det(kC, 0.5f)}, {det(kB, 0.5f)}});
  ASSERT_EQ(tie.overall.curve.size(), 2u);
  EXPECT_DOUBLE_EQ(tie.overall.curve[0].precision, 0.0);  // image 0's false positive first
  EXPECT_DOUBLE_EQ(tie.overall.ap, 0.25);
}

class VocFolder : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("fg_voc_folder_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
                                        "_" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "annotations");
    fs::create_directories(dir_ / "images");
  }
  void TearDown() override { fs::remove_all(dir_); }
  void image(const std::string& name, int w, int h) {
    cv::Mat m(h, w, CV_8UC3, cv::Scalar(40, 120, 200));
    ASSERT_TRUE(cv::imwrite((dir_ / "images" / name).string(), m));
  }
  void xml(const std::string& stem, const std::string& objects, const std::string& filename) {
    std::ofstream(dir_ / "annotations" / (stem + ".xml"))
        << "<annotation><filename>" << filename << "</filename><size><width>80</width><height>60</height>"
        << "<depth>3</depth></size>" << objects << "</annotation>";
  }
  static std::string object(int x0, int y0, int x1, int y1, int difficult = 0) {
    return "<object><name>face</name><difficult>" + std::to_string(difficult) + "</difficult><bndbox><xmin>" +
           std::to_string(x0) + "</xmin><ymin>" + std::to_string(y0) + "</ymin><xmax>" + std::to_string(x1) +
           "</xmax><ymax>" + std::to_string(y1) + "</ymax></bndbox></object>";
  }
  fs::path dir_;
};

TEST_F(VocFolder, LoadsAnnotationsWithTheirImages) {
  image("a.png", 80, 60);   // the XML says a.jpg, as in the masks set
  image("b.jpg", 80, 60);
  image("other name.png", 80, 60);
  xml("a", object(10, 10, 40, 50) + object(5, 5, 5, 20) + object(50, 10, 70, 30, 1), "a.jpg");
  xml("b", object(1, 2, 11, 22), "b.jpg");
  xml("c", "", "other name.png");  // found only by its <filename>
  auto set = load_voc_folder(dir_);
  ASSERT_TRUE(set) << set.error().message;
  ASSERT_EQ(set->images.size(), 3u);
  EXPECT_EQ(set->images[0].name, "a");
  EXPECT_EQ(set->images[0].image.filename(), "a.png");
  EXPECT_EQ(set->images[1].image.filename(), "b.jpg");
  EXPECT_EQ(set->images[2].image.filename(), "other name.png");
  EXPECT_EQ(set->images[0].width, 80);
  ASSERT_EQ(set->images[0].truth.size(), 2u);  // the zero-width box is dropped
  EXPECT_FLOAT_EQ(set->images[0].truth[0].box.width, 30.f);
  EXPECT_FLOAT_EQ(set->images[0].truth[0].box.height, 40.f);
  EXPECT_TRUE(set->images[0].truth[1].difficult);
  EXPECT_EQ(set->boxes, 3);
  EXPECT_EQ(set->difficult, 1);
  EXPECT_EQ(set->degenerate, 1);
  auto first = load_voc_folder(dir_, 1);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->images.size(), 1u);
}

TEST_F(VocFolder, ErrorsNameTheFile) {
  EXPECT_EQ(load_voc_folder(dir_ / "absent").error().code, ErrorCode::kNotFound);
  EXPECT_EQ(load_voc_folder(dir_).error().code, ErrorCode::kInvalidArgument);  // no annotations
  xml("lost", object(1, 1, 9, 9), "lost.jpg");
  auto missing = load_voc_folder(dir_);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
  image("lost.png", 80, 60);
  std::ofstream(dir_ / "annotations" / "broken.xml") << "<annotation><object><name>f</name>";
  image("broken.png", 80, 60);
  auto broken = load_voc_folder(dir_);
  ASSERT_FALSE(broken);
  EXPECT_EQ(broken.error().code, ErrorCode::kCorruptData);
  EXPECT_NE(broken.error().message.find("broken.xml"), std::string::npos) << broken.error().message;
}

TEST_F(VocFolder, MissSheetShowsTheMissesLargestFirst) {
  image("a.png", 80, 60);
  xml("a", object(10, 10, 40, 50) + object(50, 10, 60, 20) + object(60, 40, 70, 50, 1), "a.png");
  auto set = load_voc_folder(dir_);
  ASSERT_TRUE(set) << set.error().message;
  const auto ev = evaluate(set->images, {{}});
  MissSheetOptions o;
  o.tile = 32;
  auto sheet = miss_sheet(set->images, ev, 0.5f, o);
  ASSERT_TRUE(sheet) << sheet.error().message;
  EXPECT_EQ(sheet->cols, 64);  // two misses (the difficult box is not one), one row
  EXPECT_EQ(sheet->rows, 32);
  // The red box of the larger face: the first tile has pure-red pixels.
  int red = 0;
  for (int y = 0; y < 32; ++y)
    for (int x = 0; x < 32; ++x) {
      const auto p = sheet->at<cv::Vec3b>(y, x);
      if (p[2] == 255 && p[1] == 0 && p[0] == 0) ++red;
    }
  EXPECT_GT(red, 20);
  const auto found = evaluate(set->images, {{det(set->images[0].truth[0].box, 0.9f), det(set->images[0].truth[1].box, 0.9f)}});
  auto empty = miss_sheet(set->images, found, 0.5f, o);
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->empty());
  EXPECT_FALSE(miss_sheet(set->images, DetectionEvaluation{}, 0.5f, o));
}

}  // namespace
