// What every detector shares: input validation, the thread-count scope around inference, exception
// containment and the final sort. Subclasses implement run() on a validated 8-bit BGR image.
// Boxes are clipped to the image (face-api leaves Tiny's wide boxes overhanging the border); BlazeFace
// keypoints are not. `threads` > 0 sets OpenCV's process-wide thread count for the duration of detect() and
// restores it afterwards, so detectors with different counts should not run concurrently.
#pragma once

#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "faceguard/detector.hpp"
#include "faceguard/result.hpp"

namespace faceguard::model {
class WeightMap;
}

namespace faceguard::detect {

// DetectorOptions with the model defaults filled in and the ranges checked.
struct ResolvedOptions {
  float min_score = 0.5f;
  float nms_iou = 0.5f;
  int input_size = 0;
  int threads = 0;
  DetectorOptions::Engine engine = DetectorOptions::Engine::kAuto;  // kAuto already resolved against the env
};
Result<ResolvedOptions> resolve_options(const DetectorOptions& options);

class DetectorBase : public Detector {
 public:
  Result<std::vector<Face>> detect(const cv::Mat& image) final;
  DetectorKind kind() const final { return kind_; }

 protected:
  DetectorBase(DetectorKind kind, const ResolvedOptions& options) : kind_(kind), options_(options) {}
  // bgr is 8-bit 3-channel and non-empty. May throw (cv::Exception, std::bad_alloc): detect() catches.
  virtual std::vector<Face> run(const cv::Mat& bgr) = 0;
  const ResolvedOptions& options() const { return options_; }

 private:
  DetectorKind kind_;
  ResolvedOptions options_;
};

// The concrete detectors (blazeface.cpp, ssd_mobilenet.cpp, tiny_face.cpp). The byte overloads take the model
// file's content, so a model can come from memory as well as from the pack.
Result<std::unique_ptr<Detector>> make_blazeface(std::span<const std::uint8_t> onnx, DetectorKind kind,
                                                 const ResolvedOptions& options);
Result<std::unique_ptr<Detector>> make_blazeface(const std::filesystem::path& onnx, DetectorKind kind,
                                                 const ResolvedOptions& options);
Result<std::unique_ptr<Detector>> make_ssd(const model::WeightMap& weights, const ResolvedOptions& options);
Result<std::unique_ptr<Detector>> make_tiny(const model::WeightMap& weights, const ResolvedOptions& options);

}  // namespace faceguard::detect
