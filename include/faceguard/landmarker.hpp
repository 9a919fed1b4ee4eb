// faceguard/landmarker.hpp - 68-point landmarks on a detected face (face-api's landmark nets).
//
//   auto lm = faceguard::Landmarker::create(*pack, {});
//   auto pts = (*lm)->landmarks(bgr, face.box);   // 68 points in source pixels, iBUG order
//
// Thread safety: one Landmarker per thread.
#pragma once

#include <memory>
#include <vector>

#include <opencv2/core.hpp>

#include "faceguard/models.hpp"
#include "faceguard/result.hpp"
#include "faceguard/types.hpp"

namespace faceguard {

struct LandmarkerOptions {
  bool tiny = false;  // face_landmark_68_tiny instead of face_landmark_68
  int threads = 0;
};

class Landmarker {
 public:
  virtual ~Landmarker() = default;
  static Result<std::unique_ptr<Landmarker>> create(const ModelPack& pack, const LandmarkerOptions& options);
  // The box is cropped (clipped to the image), padded to a centred square and resized to 112 as face-api does.
  virtual Result<std::vector<Point2f>> landmarks(const cv::Mat& bgr, const Box& box) = 0;
};

}  // namespace faceguard
