// Non-maximum suppression in the three flavours the detectors need, each replicating its reference:
//  - face-api's SSD NMS (ssdMobilenetv1/nonMaxSuppression.ts): score filter, max outputs, corner boxes;
//  - face-api's Tiny YOLO NMS (ops/nonMaxSuppression.ts): pops the best, drops overlaps above the threshold;
//  - MediaPipe's weighted NMS (TensorsToDetectionsCalculator / NonMaxSuppressionCalculator, WEIGHTED):
//    each kept face is the score-weighted mean of the boxes (and keypoints) it suppresses.
#pragma once

#include <span>
#include <vector>

#include "faceguard/types.hpp"

namespace faceguard::detect {

// A box as TF object detection writes it: [ymin, xmin, ymax, xmax] (corners may come in either order).
struct CornerBox {
  float ymin = 0.f;
  float xmin = 0.f;
  float ymax = 0.f;
  float xmax = 0.f;
};

// IoU as face-api's SSD computes it: corners sorted per axis, 0 for a degenerate box.
double corner_iou(const CornerBox& a, const CornerBox& b);

// face-api SSD: candidates with score > score_threshold, best first (stable for ties); a candidate is kept
// unless its IoU with a kept box exceeds iou_threshold; at most max_outputs. Returns indices, best first.
std::vector<int> nms_ssd(std::span<const CornerBox> boxes, std::span<const float> scores, int max_outputs,
                         float iou_threshold, float score_threshold);

// face-api Tiny YOLO: all given boxes take part (filter by score first); returns indices, best first.
std::vector<int> nms_tiny(std::span<const Box> boxes, std::span<const float> scores, float iou_threshold);

struct WeightedCandidate {
  Box box;
  float score = 0.f;
  std::vector<Point2f> keypoints;
};

// MediaPipe weighted NMS: the best remaining candidate absorbs every candidate whose IoU with it exceeds
// iou_threshold (itself included); the result keeps the best score and averages box and keypoints by score.
std::vector<WeightedCandidate> nms_weighted(std::vector<WeightedCandidate> candidates, float iou_threshold);

}  // namespace faceguard::detect
