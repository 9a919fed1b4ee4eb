// face-api's Tiny Face Detector: YOLOv2-style box decoding (tinyYolov2/TinyYolov2Base.ts extractBoxes),
// kept apart from the network so it can be unit-tested.
#pragma once

#include <span>
#include <vector>

#include "faceguard/types.hpp"

namespace faceguard::detect {

inline constexpr int kTinyAnchorCount = 5;
inline constexpr int kTinyEncoding = 5;  // tx, ty, tw, th, score logit (one class: no class scores)

// tinyFaceDetector/const.ts BOX_ANCHORS, (w, h) in grid cells.
inline constexpr float kTinyAnchors[kTinyAnchorCount][2] = {
    {1.603231f, 2.094468f}, {6.041143f, 7.080126f}, {2.882459f, 3.518061f},
    {4.266906f, 5.178857f}, {9.041765f, 10.66308f}};

struct TinyCandidate {
  Box box;  // relative to the source image: x / width, y / height (face-api's relativeBox)
  float score = 0.f;
};

// grid: the network output in NHWC order [cells, cells, 5 anchors x 5] (row, col, anchor, value).
// reshaped: the image's size inside the input square (face_api_reshaped_dims). Keeps sigmoid(score) >
// min_score (all when min_score is 0, as face-api's `!scoreThreshold`).
std::vector<TinyCandidate> tiny_decode(std::span<const float> grid, int cells, int reshaped_width,
                                       int reshaped_height, float min_score);

}  // namespace faceguard::detect
