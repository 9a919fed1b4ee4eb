// faceguard/detector.hpp - face detection.
//
//   auto pack = faceguard::ModelPack::open(faceguard::default_model_dir());
//   auto det = faceguard::Detector::create(*pack, {.kind = faceguard::DetectorKind::kSsd});
//   auto faces = (*det)->detect(bgr);        // std::vector<Face>, boxes in source pixels
//
// Thread safety: a Detector is NOT safe to call from several threads at once (it owns an inference
// engine with internal buffers). Create one per thread; creation from a ModelPack is cheap-ish (ms).
#pragma once

#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "faceguard/models.hpp"
#include "faceguard/result.hpp"
#include "faceguard/types.hpp"

namespace faceguard {

enum class DetectorKind {
  kSsd,             // face-api SSD MobileNetV1, 512x512 input
  kTiny,            // face-api Tiny Face Detector (input_size % 32 == 0)
  kBlazeFaceBack,   // MediaPipe BlazeFace back-camera model, 256x256, 6 keypoints
  kBlazeFaceFront,  // MediaPipe BlazeFace front-camera model, 128x128, selfie-sized faces only
};

std::string_view to_string(DetectorKind kind);
Result<DetectorKind> parse_detector_kind(std::string_view name);  // "ssd", "tiny", "blazeface", "blazeface-front"

struct DetectorOptions {
  DetectorKind kind = DetectorKind::kSsd;
  float min_score = -1.f;  // < 0: the model's default (ssd 0.5, tiny 0.5, blazeface 0.75)
  float nms_iou = -1.f;    // < 0: the model's default (ssd 0.5, tiny 0.4, blazeface 0.3)
  int input_size = 0;      // tiny only; 0 -> 416
  int threads = 0;         // 0 -> OpenCV default
  // Inference engine. kAuto: oneDNN where the build has it and the model translates (BlazeFace, SSD), else
  // OpenCV DNN; $FACEGUARD_DETECT_ENGINE=opencv|onednn overrides kAuto. kOneDnn: oneDNN or kUnavailable
  // for the detectors that have a oneDNN path (BlazeFace, SSD); Tiny always runs OpenCV DNN. A oneDNN
  // failure after creation falls back to OpenCV DNN for good.
  enum class Engine { kAuto, kOpenCv, kOneDnn };
  Engine engine = Engine::kAuto;
};

class Detector {
 public:
  virtual ~Detector() = default;
  static Result<std::unique_ptr<Detector>> create(const ModelPack& pack, const DetectorOptions& options);
  // bgr: 8-bit 3-channel. Faces are sorted by descending score.
  virtual Result<std::vector<Face>> detect(const cv::Mat& bgr) = 0;
  virtual DetectorKind kind() const = 0;
  // The engine that ran the last detect() (or will run the next): "onednn" or "opencv-dnn".
  virtual std::string_view engine_name() const { return "opencv-dnn"; }
};

}  // namespace faceguard
