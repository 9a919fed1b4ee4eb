// BlazeFace (MediaPipe short-range face detector, keijiro's ONNX export): anchors and output decoding.
// The network itself is run by blazeface.cpp; the maths here is pure so it can be unit-tested.
#pragma once

#include <span>
#include <vector>

#include "detect/nms.hpp"

namespace faceguard::detect {

struct Anchor {
  float cx = 0.f;  // centre in [0,1] of the input square
  float cy = 0.f;
};

// MediaPipe SsdAnchorsCalculator with the face_detection options (strides 8,16,16,16 for 128 px, or
// 16,32,32,32 for 256 px; fixed anchor size 1): a 16x16 grid with 2 anchors per cell, then 8x8 with 6,
// in y, x, anchor order: 896 anchors.
std::vector<Anchor> blazeface_anchors();

inline constexpr int kBlazeFaceAnchors = 896;
inline constexpr int kBlazeFaceRegressors = 16;  // cx, cy, w, h, then 6 keypoints (x, y)
inline constexpr int kBlazeFaceKeypoints = 6;

// Decodes raw outputs: logits [896] and regressors [896 x 16] (row-major), input square side `input_size`.
// Keeps anchors whose sigmoid(clip(logit, +-100)) >= min_score; boxes and keypoints are in [0,1] of the
// square (x right, y down).
std::vector<WeightedCandidate> blazeface_decode(std::span<const float> logits, std::span<const float> regressors,
                                                std::span<const Anchor> anchors, int input_size, float min_score);

}  // namespace faceguard::detect
