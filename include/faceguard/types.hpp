// faceguard/types.hpp - the value types that flow between pipeline steps.
// All types here are plain values: copyable, no hidden state, safe to share read-only across threads.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace faceguard {

// Pixel coordinates in the (EXIF-oriented) source image; x right, y down.
struct Point2f {
  float x = 0.f;
  float y = 0.f;
};

// Axis-aligned box in source-image pixels: top-left corner plus size.
struct Box {
  float x = 0.f;
  float y = 0.f;
  float width = 0.f;
  float height = 0.f;
  float right() const { return x + width; }
  float bottom() const { return y + height; }
  float area() const { return width > 0 && height > 0 ? width * height : 0.f; }
};

float iou(const Box& a, const Box& b);

// Which landmark scheme Face::landmarks follows.
enum class LandmarkScheme {
  kNone,        // no landmarks
  kIbug68,      // 68 iBUG 300-W points (face-api / dlib order)
  kBlazeFace6,  // image-left eye, image-right eye, nose tip, mouth centre, left tragion, right tragion
  kFivePoint,   // image-left eye, image-right eye, nose tip, image-left mouth corner, image-right mouth corner
};

struct Face {
  Box box;
  float score = 0.f;  // detector confidence in [0,1]
  LandmarkScheme scheme = LandmarkScheme::kNone;
  std::vector<Point2f> landmarks;
  std::string detector;  // which detector produced the box ("ssd", "tiny", "blazeface-back", ...)
};

// A face template. model_id names the descriptor that made it ("dlib-resnet-v1@face-api-1.7.15", ...);
// templates of different models are never compared.
struct Embedding {
  std::string model_id;
  std::vector<float> values;
};

}  // namespace faceguard
