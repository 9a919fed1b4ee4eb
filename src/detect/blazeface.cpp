// BlazeFace detector. Facts from shared/docs/MODELS.md ("BlazeFace ONNX"): input `input:0` is NHWC
// [1,S,S,3] RGB scaled x/127.5-1 (the graph transposes inside, so blobFromImage's NCHW is wrong); outputs
// are logits [1,512,1] + [1,384,1] and regressors [1,512,16] + [1,384,16].
//
// Engines: OpenCV DNN reads the ONNX; with oneDNN in the build (and unless the options or
// $FACEGUARD_DETECT_ENGINE say opencv) the same, not yet run, cv::dnn::Net is translated into oneDNN
// primitives (model/dnnl_net.hpp: 5.5 ms instead of 19.6 ms per forward on one core here). Both give the
// same four outputs; at creation they are compared once on a fixed pseudo-random input and the oneDNN
// path is dropped (kAuto) if they differ by more than model::kDnnlSelfCheckTolerance. A oneDNN failure during detect
// switches the detector to OpenCV DNN for good.
#include "detect/blazeface.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <memory>
#include <stdexcept>
#include <string>

#include <opencv2/dnn.hpp>

#include "detect/detector_base.hpp"
#include "detect/image_prep.hpp"
#include "model/dnnl_net.hpp"

namespace faceguard::detect {

std::vector<Anchor> blazeface_anchors() {
  std::vector<Anchor> anchors;
  anchors.reserve(kBlazeFaceAnchors);
  // {grid, anchors per cell}: the stride-8 layer alone, then the three stride-16 layers merged
  // (MediaPipe SsdAnchorsCalculator merges consecutive layers of equal stride; 2 anchors each).
  constexpr std::array<std::array<int, 2>, 2> kLayers{{{16, 2}, {8, 6}}};
  for (const auto& [grid, per_cell] : kLayers) {
    for (int y = 0; y < grid; ++y) {
      for (int x = 0; x < grid; ++x) {
        for (int a = 0; a < per_cell; ++a) {
          anchors.push_back({(static_cast<float>(x) + 0.5f) / static_cast<float>(grid),
                             (static_cast<float>(y) + 0.5f) / static_cast<float>(grid)});
        }
      }
    }
  }
  return anchors;
}

std::vector<WeightedCandidate> blazeface_decode(std::span<const float> logits, std::span<const float> regressors,
                                                std::span<const Anchor> anchors, int input_size, float min_score) {
  std::vector<WeightedCandidate> out;
  const std::size_t n = std::min({logits.size(), anchors.size(), regressors.size() / kBlazeFaceRegressors});
  const float inv = 1.f / static_cast<float>(input_size);
  for (std::size_t i = 0; i < n; ++i) {
    // TensorsToDetectionsCalculator: score_clipping_thresh 100, then sigmoid.
    const float logit = std::clamp(logits[i], -100.f, 100.f);
    const float score = 1.f / (1.f + std::exp(-logit));
    if (!(score >= min_score)) continue;
    const float* r = regressors.data() + i * kBlazeFaceRegressors;
    const float cx = anchors[i].cx + r[0] * inv;
    const float cy = anchors[i].cy + r[1] * inv;
    const float w = r[2] * inv;
    const float h = r[3] * inv;
    if (!std::isfinite(cx) || !std::isfinite(cy) || !(w > 0.f) || !(h > 0.f) || !std::isfinite(w * h)) continue;
    WeightedCandidate c;
    c.box = {cx - w / 2, cy - h / 2, w, h};
    c.score = score;
    c.keypoints.resize(kBlazeFaceKeypoints);
    for (int k = 0; k < kBlazeFaceKeypoints; ++k) {
      c.keypoints[static_cast<std::size_t>(k)] = {anchors[i].cx + r[4 + 2 * k] * inv,
                                                  anchors[i].cy + r[5 + 2 * k] * inv};
    }
    out.push_back(std::move(c));
  }
  return out;
}

namespace {

// Which network output is which: picked by shape, so a re-export that renames outputs still works and a
// different model is refused with a message naming what was found.
struct OutputMap {
  int logits16 = -1, logits8 = -1, regress16 = -1, regress8 = -1;
};

std::string shape_string(const cv::Mat& m) {
  std::string s = "[";
  for (int d = 0; d < m.dims; ++d) s += (d ? "," : "") + std::to_string(m.size[d]);
  return s + "]";
}

Result<OutputMap> map_outputs(const std::vector<cv::Mat>& outs, const std::vector<cv::String>& names) {
  OutputMap map;
  for (std::size_t i = 0; i < outs.size(); ++i) {
    const cv::Mat& m = outs[i];
    const int n = m.dims == 3 && m.size[0] == 1 ? m.size[1] : -1;
    const int k = m.dims == 3 ? m.size[2] : -1;
    int* slot = nullptr;
    if (n == 512 && k == 1) slot = &map.logits16;
    if (n == 384 && k == 1) slot = &map.logits8;
    if (n == 512 && k == kBlazeFaceRegressors) slot = &map.regress16;
    if (n == 384 && k == kBlazeFaceRegressors) slot = &map.regress8;
    if (slot == nullptr || *slot >= 0 || m.type() != CV_32F) {
      return make_error(ErrorCode::kModelError, "blazeface: unexpected output tensor '" + names[i] + "' " +
                                                    shape_string(m) +
                                                    " (expected [1,512|384,1] logits and [1,512|384,16] boxes)");
    }
    *slot = static_cast<int>(i);
  }
  if (map.logits16 < 0 || map.logits8 < 0 || map.regress16 < 0 || map.regress8 < 0) {
    return make_error(ErrorCode::kModelError, "blazeface: the model lacks one of its 4 output tensors (found " +
                                                  std::to_string(outs.size()) + ")");
  }
  return map;
}

class BlazeFaceDetector final : public DetectorBase {
 public:
  BlazeFaceDetector(cv::dnn::Net net, DetectorKind kind, const ResolvedOptions& options)
      : DetectorBase(kind, options),
        net_(std::move(net)),
        size_(kind == DetectorKind::kBlazeFaceBack ? 256 : 128),
        name_(kind == DetectorKind::kBlazeFaceBack ? "blazeface-back" : "blazeface-front"),
        anchors_(blazeface_anchors()) {
    net_.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
    net_.setPreferableTarget(cv::dnn::DNN_TARGET_CPU);
    out_names_ = net_.getUnconnectedOutLayersNames();
  }

  std::string_view engine_name() const override { return dnnl_ ? "onednn" : "opencv-dnn"; }

  // Translates the net to oneDNN; must run before the first OpenCV forward (model/dnnl_net.hpp).
  // One thread: a single 256 px image gives oneDNN's OpenMP regions too little work to split on this
  // shared 2-core machine (as for the descriptor, embed/dlib_resnet_dnnl.hpp).
  Status use_dnnl() {
    std::vector<std::string> names(out_names_.begin(), out_names_.end());
    FG_ASSIGN_OR_RETURN(dnnl_, model::DnnlNet::create(net_, {1, size_, size_, 3}, names, 1));
    return ok_status();
  }

  // One inference on a fixed pseudo-random input to learn (and check) the output layout, and to check the
  // oneDNN path against OpenCV's. Returns the oneDNN problem, if any ("" when none or no oneDNN).
  Result<std::string> probe() {
    cv::Mat rgb(size_, size_, CV_8UC3);
    cv::RNG rng(0x5eed);  // fixed: the check is repeatable
    rng.fill(rgb, cv::RNG::UNIFORM, 0, 256);
    const cv::Mat blob = input_blob(rgb);
    std::vector<cv::Mat> outs;
    net_.setInput(blob);
    net_.forward(outs, out_names_);
    FG_ASSIGN_OR_RETURN(map_, map_outputs(outs, out_names_));
    if (!dnnl_) return std::string();
    std::string problem = model::dnnl_self_check(*dnnl_, net_, blob);
    if (!problem.empty()) dnnl_.reset();
    return problem;
  }

 private:
  cv::Mat input_blob(const cv::Mat& rgb) const {
    const int dims[] = {1, size_, size_, 3};
    cv::Mat blob(4, dims, CV_32F);
    cv::Mat hwc(size_, size_, CV_32FC3, blob.ptr<float>());
    rgb.convertTo(hwc, CV_32F, 1.0 / 127.5, -1.0);
    return blob;
  }

  void forward(const cv::Mat& rgb, std::vector<cv::Mat>& outs) {
    const cv::Mat blob = input_blob(rgb);
    if (dnnl_) {
      if (dnnl_->forward(blob, outs)) return;
      dnnl_.reset();  // oneDNN failed: OpenCV DNN from now on
    }
    net_.setInput(blob);
    net_.forward(outs, out_names_);
  }

  std::vector<Face> run(const cv::Mat& bgr) override {
    const Letterbox lb = make_letterbox(bgr.cols, bgr.rows, size_);
    std::vector<cv::Mat> outs;
    forward(letterbox_rgb(bgr, lb), outs);
    auto checked = map_outputs(outs, out_names_);
    if (!checked) throw std::runtime_error(checked.error().message);

    std::vector<float> logits(kBlazeFaceAnchors);
    std::vector<float> regress(static_cast<std::size_t>(kBlazeFaceAnchors) * kBlazeFaceRegressors);
    const auto copy = [](const cv::Mat& m, float* dst) {
      const cv::Mat c = m.isContinuous() ? m : m.clone();
      std::copy_n(c.ptr<float>(), c.total(), dst);
    };
    copy(outs[static_cast<std::size_t>(map_.logits16)], logits.data());
    copy(outs[static_cast<std::size_t>(map_.logits8)], logits.data() + 512);
    copy(outs[static_cast<std::size_t>(map_.regress16)], regress.data());
    copy(outs[static_cast<std::size_t>(map_.regress8)], regress.data() + 512 * kBlazeFaceRegressors);

    auto candidates = blazeface_decode(logits, regress, anchors_, size_, options().min_score);
    auto merged = nms_weighted(std::move(candidates), options().nms_iou);

    std::vector<Face> faces;
    for (const auto& c : merged) {
      const Point2f tl = lb.to_source(c.box.x, c.box.y);
      const Point2f br = lb.to_source(c.box.right(), c.box.bottom());
      Face f;
      f.box = clip_box({tl.x, tl.y, br.x - tl.x, br.y - tl.y}, bgr.cols, bgr.rows);
      if (f.box.area() <= 0.f) continue;
      f.score = c.score;
      f.scheme = LandmarkScheme::kBlazeFace6;
      // Keypoints are not clipped: a tragion just outside the frame is still a valid alignment target.
      for (const auto& k : c.keypoints) f.landmarks.push_back(lb.to_source(k.x, k.y));
      f.detector = name_;
      faces.push_back(std::move(f));
    }
    return faces;
  }

  cv::dnn::Net net_;
  std::unique_ptr<model::DnnlNet> dnnl_;  // null: OpenCV DNN
  int size_;
  std::string name_;
  std::vector<Anchor> anchors_;
  std::vector<cv::String> out_names_;
  OutputMap map_;
};

Result<std::unique_ptr<Detector>> finish(cv::dnn::Net net, DetectorKind kind, const ResolvedOptions& options,
                                         const std::string& source) {
  using Engine = DetectorOptions::Engine;
  if (net.empty()) return make_error(ErrorCode::kModelError, "blazeface: no network in " + source);
  auto det = std::make_unique<BlazeFaceDetector>(std::move(net), kind, options);
  if (options.engine != Engine::kOpenCv) {
    Status s = det->use_dnnl();
    if (!s && options.engine == Engine::kOneDnn)
      return make_error(ErrorCode::kUnavailable, "blazeface: " + s.error().message);
  }
  try {
    FG_ASSIGN_OR_RETURN(const std::string problem, det->probe());
    if (!problem.empty() && options.engine == Engine::kOneDnn)
      return make_error(ErrorCode::kUnavailable, "blazeface: " + problem);
  } catch (const cv::Exception& e) {
    return make_error(ErrorCode::kModelError, "blazeface: " + source + " does not run on a " +
                                                  std::string(kind == DetectorKind::kBlazeFaceBack ? "256" : "128") +
                                                  " px input: " + e.what());
  }
  return std::unique_ptr<Detector>(std::move(det));
}

}  // namespace

Result<std::unique_ptr<Detector>> make_blazeface(std::span<const std::uint8_t> onnx, DetectorKind kind,
                                                 const ResolvedOptions& options) {
  if (onnx.empty()) return make_error(ErrorCode::kModelError, "blazeface: the ONNX buffer is empty");
  cv::dnn::Net net;
  try {
    net = cv::dnn::readNetFromONNX(reinterpret_cast<const char*>(onnx.data()), onnx.size());
  } catch (const cv::Exception& e) {
    return make_error(ErrorCode::kModelError, std::string("blazeface: cannot read the ONNX buffer: ") + e.what());
  }
  return finish(std::move(net), kind, options, "the ONNX buffer");
}

Result<std::unique_ptr<Detector>> make_blazeface(const std::filesystem::path& onnx, DetectorKind kind,
                                                 const ResolvedOptions& options) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(onnx, ec)) {
    return make_error(ErrorCode::kModelError, "blazeface: model file not found: " + onnx.string());
  }
  cv::dnn::Net net;
  try {
    net = cv::dnn::readNetFromONNX(onnx.string());
  } catch (const cv::Exception& e) {
    return make_error(ErrorCode::kModelError, "blazeface: cannot read " + onnx.string() + ": " + e.what());
  }
  return finish(std::move(net), kind, options, onnx.string());
}

}  // namespace faceguard::detect
