// NMS flavours against hand-worked cases.
#include <gtest/gtest.h>

#include <vector>

#include "detect/nms.hpp"

namespace faceguard::detect {
namespace {

TEST(CornerIou, MatchesHandComputedOverlapAndIgnoresCornerOrder) {
  const CornerBox a{0.f, 0.f, 2.f, 2.f};
  const CornerBox b{1.f, 1.f, 3.f, 3.f};  // overlap 1, union 7
  EXPECT_NEAR(corner_iou(a, b), 1.0 / 7.0, 1e-12);
  const CornerBox b_flipped{3.f, 3.f, 1.f, 1.f};
  EXPECT_NEAR(corner_iou(a, b_flipped), 1.0 / 7.0, 1e-12);
  EXPECT_EQ(corner_iou(a, CornerBox{5.f, 5.f, 6.f, 6.f}), 0.0);
  EXPECT_EQ(corner_iou(a, CornerBox{1.f, 1.f, 1.f, 3.f}), 0.0);  // degenerate
}

TEST(NmsSsd, FiltersByScoreSortsAndSuppressesAboveThreshold) {
  // 0 and 1 overlap with IoU 0.6 (> 0.5); 2 overlaps 0 with IoU 1/3 (kept); 3 is below the score threshold.
  const std::vector<CornerBox> boxes = {
      {0.f, 0.f, 1.f, 1.f}, {0.f, 0.f, 1.f, 0.6f}, {0.f, 0.5f, 1.f, 1.5f}, {5.f, 5.f, 6.f, 6.f}};
  const std::vector<float> scores = {0.7f, 0.9f, 0.8f, 0.4f};
  const auto keep = nms_ssd(boxes, scores, 100, 0.5f, 0.5f);
  // 1 (0.9) first; 2 (0.8): IoU with 1 = 0.1/1.5, kept; 0 (0.7): IoU with 1 = 0.6 -> suppressed.
  ASSERT_EQ(keep.size(), 2u);
  EXPECT_EQ(keep[0], 1);
  EXPECT_EQ(keep[1], 2);
}

TEST(NmsSsd, IouExactlyAtThresholdIsKeptAndMaxOutputsHolds) {
  // Unit boxes shifted by half a width: IoU exactly 1/3 (in double; the float threshold 1/3 is a hair above).
  const std::vector<CornerBox> boxes = {{0.f, 0.f, 1.f, 1.f}, {0.f, 0.5f, 1.f, 1.5f}, {0.f, 10.f, 1.f, 11.f}};
  const std::vector<float> scores = {0.9f, 0.8f, 0.7f};
  EXPECT_EQ(nms_ssd(boxes, scores, 100, 1.f / 3.f, 0.5f).size(), 3u);  // suppression needs IoU > threshold
  EXPECT_EQ(nms_ssd(boxes, scores, 100, 0.3f, 0.5f).size(), 2u);
  const auto two = nms_ssd(boxes, scores, 2, 1.f / 3.f, 0.5f);
  ASSERT_EQ(two.size(), 2u);
  EXPECT_EQ(two[1], 1);
}

TEST(NmsSsd, EqualScoresKeepIndexOrder) {
  const std::vector<CornerBox> boxes = {{0.f, 0.f, 1.f, 1.f}, {0.f, 0.f, 1.f, 1.f}};
  const std::vector<float> scores = {0.8f, 0.8f};
  const auto keep = nms_ssd(boxes, scores, 100, 0.5f, 0.5f);
  ASSERT_EQ(keep.size(), 1u);
  EXPECT_EQ(keep[0], 0);  // Array.prototype.sort is stable
}

TEST(NmsTiny, PopsBestAndDropsOverlapsAboveThreshold) {
  const std::vector<Box> boxes = {{0, 0, 10, 10}, {1, 0, 10, 10}, {20, 20, 10, 10}, {0, 5, 10, 10}};
  const std::vector<float> scores = {0.6f, 0.9f, 0.5f, 0.7f};
  // best 1; IoU(1,0) = 90/110 > 0.4 -> drop 0; IoU(1,3) = 45/155 < 0.4 -> keep; 2 disjoint.
  const auto pick = nms_tiny(boxes, scores, 0.4f);
  ASSERT_EQ(pick.size(), 3u);
  EXPECT_EQ(pick[0], 1);
  EXPECT_EQ(pick[1], 3);
  EXPECT_EQ(pick[2], 2);
}

TEST(NmsTiny, EqualScoresPopTheHighestIndexFirst) {
  const std::vector<Box> boxes = {{0, 0, 10, 10}, {0, 0, 10, 10}};
  const std::vector<float> scores = {0.8f, 0.8f};
  const auto pick = nms_tiny(boxes, scores, 0.4f);
  ASSERT_EQ(pick.size(), 1u);
  EXPECT_EQ(pick[0], 1);  // ascending stable sort, then pop() from the back
}

TEST(NmsWeighted, BlendsOverlappingBoxesAndKeypointsByScore) {
  std::vector<WeightedCandidate> c(3);
  c[0] = {{0, 0, 10, 10}, 0.9f, {{1, 1}}};
  c[1] = {{2, 0, 10, 10}, 0.6f, {{3, 1}}};    // IoU with 0 = 80/120 > 0.3: absorbed
  c[2] = {{50, 50, 10, 10}, 0.8f, {{55, 55}}};  // separate face
  const auto out = nms_weighted(c, 0.3f);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_FLOAT_EQ(out[0].score, 0.9f);  // the best score is kept, not the sum
  // x0 = (0*0.9 + 2*0.6) / 1.5 = 0.8; x1 = (10*0.9 + 12*0.6) / 1.5 = 10.8 -> width 10.
  EXPECT_NEAR(out[0].box.x, 0.8f, 1e-5);
  EXPECT_NEAR(out[0].box.width, 10.f, 1e-5);
  EXPECT_NEAR(out[0].box.y, 0.f, 1e-6);
  EXPECT_NEAR(out[0].keypoints[0].x, (1 * 0.9f + 3 * 0.6f) / 1.5f, 1e-5);
  EXPECT_FLOAT_EQ(out[1].score, 0.8f);
  EXPECT_FLOAT_EQ(out[1].box.x, 50.f);
}

TEST(NmsWeighted, DegenerateBoxesTerminate) {
  std::vector<WeightedCandidate> c(2);
  c[0] = {{0, 0, 0, 0}, 0.9f, {}};
  c[1] = {{0, 0, 0, 0}, 0.8f, {}};
  EXPECT_EQ(nms_weighted(c, 0.3f).size(), 2u);
  EXPECT_TRUE(nms_weighted({}, 0.3f).empty());
}

}  // namespace
}  // namespace faceguard::detect
