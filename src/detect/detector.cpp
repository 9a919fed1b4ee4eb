// Detector factory, option resolution and the shared detect() wrapper.
#include <algorithm>
#include <cstdlib>
#include <exception>
#include <new>
#include <string>
#include <string_view>

#include <opencv2/core/utility.hpp>

#include "detect/detector_base.hpp"
#include "detect/image_prep.hpp"
#include "faceguard/detector.hpp"
#include "model/weights.hpp"

namespace faceguard {

std::string_view to_string(DetectorKind kind) {
  switch (kind) {
    case DetectorKind::kSsd:
      return "ssd";
    case DetectorKind::kTiny:
      return "tiny";
    case DetectorKind::kBlazeFaceBack:
      return "blazeface";
    case DetectorKind::kBlazeFaceFront:
      return "blazeface-front";
  }
  return "unknown";
}

Result<DetectorKind> parse_detector_kind(std::string_view name) {
  if (name == "ssd") return DetectorKind::kSsd;
  if (name == "tiny") return DetectorKind::kTiny;
  if (name == "blazeface" || name == "blazeface-back") return DetectorKind::kBlazeFaceBack;
  if (name == "blazeface-front") return DetectorKind::kBlazeFaceFront;
  return make_error(ErrorCode::kInvalidArgument, "unknown detector '" + std::string(name) +
                                                     "' (expected ssd, tiny, blazeface or blazeface-front)");
}

namespace detect {

Result<ResolvedOptions> resolve_options(const DetectorOptions& options) {
  ResolvedOptions r;
  // Defaults: face-api SsdMobilenetv1Options (0.5) and the fixed SSD IoU 0.5 in SsdMobilenetv1.locateFaces;
  // TinyYolov2Options (0.5) and tinyFaceDetector/const.ts IOU_THRESHOLD (0.4); MediaPipe's
  // face_detection graphs (min_score_thresh 0.75, min_suppression_threshold 0.3).
  switch (options.kind) {
    case DetectorKind::kSsd:
      r.min_score = 0.5f;
      r.nms_iou = 0.5f;
      break;
    case DetectorKind::kTiny:
      r.min_score = 0.5f;
      r.nms_iou = 0.4f;
      r.input_size = 416;
      break;
    case DetectorKind::kBlazeFaceBack:
    case DetectorKind::kBlazeFaceFront:
      r.min_score = 0.75f;
      r.nms_iou = 0.3f;
      break;
    default:
      return make_error(ErrorCode::kInvalidArgument, "unknown detector kind");
  }
  if (options.min_score >= 0.f) {
    if (!(options.min_score <= 1.f)) {
      return make_error(ErrorCode::kInvalidArgument, "detector min_score must lie in [0, 1]");
    }
    r.min_score = options.min_score;
  }
  if (options.nms_iou >= 0.f) {
    if (!(options.nms_iou <= 1.f)) return make_error(ErrorCode::kInvalidArgument, "detector nms_iou must lie in [0, 1]");
    r.nms_iou = options.nms_iou;
  }
  if (options.kind == DetectorKind::kTiny && options.input_size != 0) {
    // TinyYolov2Options: the net downsamples by 32; beyond 1024 the cost grows with no recall to gain.
    if (options.input_size < 32 || options.input_size > 1024 || options.input_size % 32 != 0) {
      return make_error(ErrorCode::kInvalidArgument,
                        "tiny detector input_size must be a multiple of 32 in [32, 1024] (got " +
                            std::to_string(options.input_size) + ")");
    }
    r.input_size = options.input_size;
  }
  if (options.threads < 0) return make_error(ErrorCode::kInvalidArgument, "detector threads must be >= 0");
  r.threads = options.threads;
  r.engine = options.engine;
  // Like FACEGUARD_DLIB_ENGINE for the descriptor (embed/dlib_resnet_dnnl.cpp): overrides kAuto only.
  if (r.engine == DetectorOptions::Engine::kAuto) {
    if (const char* e = std::getenv("FACEGUARD_DETECT_ENGINE"); e && *e) {
      const std::string_view v(e);
      if (v == "opencv") {
        r.engine = DetectorOptions::Engine::kOpenCv;
      } else if (v == "onednn") {
        r.engine = DetectorOptions::Engine::kOneDnn;
      } else {
        return make_error(ErrorCode::kInvalidArgument,
                          "FACEGUARD_DETECT_ENGINE must be opencv or onednn, not '" + std::string(v) + "'");
      }
    }
  }
  return r;
}

namespace {

// cv::setNumThreads is process-wide: set it for the duration of one inference and put it back.
class ThreadCountScope {
 public:
  explicit ThreadCountScope(int threads) : saved_(threads > 0 ? cv::getNumThreads() : -1) {
    if (threads > 0) cv::setNumThreads(threads);
  }
  ~ThreadCountScope() {
    if (saved_ >= 0) cv::setNumThreads(saved_);
  }
  ThreadCountScope(const ThreadCountScope&) = delete;
  ThreadCountScope& operator=(const ThreadCountScope&) = delete;

 private:
  int saved_;
};

}  // namespace

Result<std::vector<Face>> DetectorBase::detect(const cv::Mat& image) {
  FG_ASSIGN_OR_RETURN(cv::Mat bgr, to_bgr8(image));
  try {
    ThreadCountScope threads(options_.threads);
    std::vector<Face> faces = run(bgr);
    std::stable_sort(faces.begin(), faces.end(), [](const Face& a, const Face& b) { return a.score > b.score; });
    return faces;
  } catch (const std::bad_alloc&) {
    return make_error(ErrorCode::kInternal, std::string("detect (") + std::string(to_string(kind_)) +
                                                "): out of memory");
  } catch (const std::exception& e) {
    return make_error(ErrorCode::kInternal,
                      std::string("detect (") + std::string(to_string(kind_)) + "): inference failed: " + e.what());
  }
}

}  // namespace detect

Result<std::unique_ptr<Detector>> Detector::create(const ModelPack& pack, const DetectorOptions& options) {
  FG_ASSIGN_OR_RETURN(const detect::ResolvedOptions resolved, detect::resolve_options(options));
  try {
    switch (options.kind) {
      case DetectorKind::kBlazeFaceBack:
      case DetectorKind::kBlazeFaceFront: {
        const ModelFile which =
            options.kind == DetectorKind::kBlazeFaceBack ? ModelFile::kBlazeFaceBack : ModelFile::kBlazeFaceFront;
        FG_ASSIGN_OR_RETURN(const auto path, pack.file(which));
        return detect::make_blazeface(path, options.kind, resolved);
      }
      case DetectorKind::kSsd: {
        FG_ASSIGN_OR_RETURN(const auto path, pack.file(ModelFile::kSsdMobilenetV1Manifest));
        FG_ASSIGN_OR_RETURN(const model::WeightMap weights, model::load_weights(path));
        return detect::make_ssd(weights, resolved);
      }
      case DetectorKind::kTiny: {
        FG_ASSIGN_OR_RETURN(const auto path, pack.file(ModelFile::kTinyFaceDetectorManifest));
        FG_ASSIGN_OR_RETURN(const model::WeightMap weights, model::load_weights(path));
        return detect::make_tiny(weights, resolved);
      }
    }
  } catch (const std::exception& e) {
    return make_error(ErrorCode::kModelError, std::string("detector: cannot build the model: ") + e.what());
  }
  return make_error(ErrorCode::kInvalidArgument, "unknown detector kind");
}

}  // namespace faceguard
