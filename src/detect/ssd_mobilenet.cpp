// face-api SSD MobileNetV1 (ssdMobilenetv1/*.ts) built as a cv::dnn graph from the TF.js weights.
// Architecture (shared/docs/MODELS.md, mobileNetV1.ts, predictionLayer.ts): conv 3x3/2 + bn offset + ReLU6,
// 13 depthwise (bn eps 0.001, ReLU6) / pointwise (bn offset, ReLU6) pairs with stride 2 at pairs 2, 4, 6, 12,
// then Prediction/Conv2d_0..7 (1x1 / 3x3 s2 alternating), box predictors on conv11 (32x32, 3 anchors), conv13
// (16x16) and the 8x8, 4x4, 2x2, 1x1 extra maps (6 anchors each): 5118 priors. All convs are TF "SAME".
// Engines as for BlazeFace (blazeface.cpp): the built net translated to oneDNN unless DetectorOptions /
// $FACEGUARD_DETECT_ENGINE say opencv, checked once against OpenCV, OpenCV DNN on any oneDNN failure.
#include "detect/ssd_mobilenet.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "detect/detector_base.hpp"
#include "detect/image_prep.hpp"
#include "model/dnnl_net.hpp"
#include "model/net_builder.hpp"

namespace faceguard::detect {

CornerBox ssd_decode_box(const CornerBox& prior, const float t[4]) {
  // getCenterCoordinatesAndSizesLayer + decodeBoxesLayer, one float32 rounding per TF.js op.
  const float size_y = prior.ymax - prior.ymin;
  const float size_x = prior.xmax - prior.xmin;
  const float centre_y = prior.ymin + size_y / 2.f;
  const float centre_x = prior.xmin + size_x / 2.f;
  const float half_h = std::exp(t[2] / 5.f) * size_y / 2.f;
  const float mid_y = t[0] / 10.f * size_y + centre_y;
  const float half_w = std::exp(t[3] / 5.f) * size_x / 2.f;
  const float mid_x = t[1] / 10.f * size_x + centre_x;
  return {mid_y - half_h, mid_x - half_w, mid_y + half_h, mid_x + half_w};
}

std::optional<Box> ssd_box_to_image(const CornerBox& b, int width, int height) {
  const ReshapedDims r = face_api_reshaped_dims(width, height, kSsdInputSize);
  const double pad_x = static_cast<double>(kSsdInputSize) / r.width;
  const double pad_y = static_cast<double>(kSsdInputSize) / r.height;
  const double top = std::max(0.0, static_cast<double>(b.ymin)) * pad_y;
  const double bottom = std::min(1.0, static_cast<double>(b.ymax)) * pad_y;
  const double left = std::max(0.0, static_cast<double>(b.xmin)) * pad_x;
  const double right = std::min(1.0, static_cast<double>(b.xmax)) * pad_x;
  if (!(right - left >= 0) || !(bottom - top >= 0)) return std::nullopt;
  // FaceDetection(relative box, image dims): Box.rescale multiplies by the image width and height.
  return Box{static_cast<float>(left * width), static_cast<float>(top * height),
             static_cast<float>((right - left) * width), static_cast<float>((bottom - top) * height)};
}

namespace {

using model::ConvSpec;
using model::ConvWeights;
using model::NetBuilder;
using model::Node;
using model::Pad;
using model::require;
using model::WeightMap;

constexpr float kBatchNormEpsilon = 0.0010000000474974513f;  // mobileNetV1.ts
constexpr int kPredictors = 6;
// Box predictor inputs: feature map side and anchors per cell (predictionLayer.ts).
constexpr std::array<int, kPredictors> kGrid = {32, 16, 8, 4, 2, 1};
constexpr std::array<int, kPredictors> kAnchors = {3, 6, 6, 6, 6, 6};

// TF "SAME" for a square map. OpenCV 4.6's Convolution refuses unequal begin/end pads ("Unsupported
// asymmetric padding"), and TF's stride-2 SAME is exactly that (0 top/left, 1 bottom/right). OpenCV's own
// pad_mode "SAME" puts floor(total/2) first like TF and leaves the remainder implied by the output size,
// which is the same computation without an extra Padding layer.
Pad same_pad(int size, int kernel, int stride) {
  const Pad p = Pad::tf_same(size, size, kernel, kernel, stride, stride);
  return (p.top == p.bottom && p.left == p.right) ? p : Pad::opencv_same();
}

// Output side of a TF "SAME" conv: ceil(size / stride).
int same_out(int size, int stride) { return (size + stride - 1) / stride; }

struct Builder {
  NetBuilder& b;
  const WeightMap& w;
  int size;  // current spatial side (square)

  // pointwiseConvLayer.ts: conv SAME + batch_norm_offset + ReLU6; the offset is the conv bias.
  Node pointwise(const std::string& prefix, Node in, int stride) {
    const auto& f = require(w, prefix + "/weights");
    const auto& off = require(w, prefix + "/convolution_bn_offset");
    if (f.shape.size() != 4) throw model::BuildError("'" + prefix + "/weights' is not 4-D");
    const int k = f.shape[0];
    const ConvWeights cw = model::conv_weights_hwio(f, &off);
    Node x = b.conv(prefix, in, cw, {.stride = stride, .pad = same_pad(size, k, stride)});
    size = same_out(size, stride);
    return b.relu6(prefix + "/relu6", x);
  }

  // depthwiseConvLayer: depthwise SAME, batch norm (folded into the weights), ReLU6.
  Node depthwise(const std::string& prefix, Node in, int stride) {
    const auto& f = require(w, prefix + "/depthwise_weights");
    if (f.shape.size() != 4 || f.shape[3] != 1) throw model::BuildError("'" + prefix + "/depthwise_weights' is not [3,3,C,1]");
    const int channels = f.shape[2];
    const std::initializer_list<int> vec = {channels};
    const auto& gamma = require(w, prefix + "/BatchNorm/gamma", vec);
    const auto& beta = require(w, prefix + "/BatchNorm/beta", vec);
    const auto& mean = require(w, prefix + "/BatchNorm/moving_mean", vec);
    const auto& var = require(w, prefix + "/BatchNorm/moving_variance", vec);
    ConvWeights cw = model::depthwise_weights_hwcm(f);
    const auto ss = model::batch_norm_scale_shift(mean.data, var.data, gamma.data, beta.data, kBatchNormEpsilon);
    model::fold_scale_shift(cw, ss.scale, ss.shift);
    const int k = f.shape[0];
    Node x = b.conv(prefix, in, cw, {.stride = stride, .pad = same_pad(size, k, stride), .groups = channels});
    size = same_out(size, stride);
    return b.relu6(prefix + "/relu6", x);
  }

  // common/convLayer.ts: 1x1 conv SAME + bias, no activation.
  Node predictor(const std::string& prefix, Node in, int out_channels) {
    const auto& f = require(w, prefix + "/weights");
    const auto& bias = require(w, prefix + "/biases");
    if (f.shape.size() != 4 || f.shape[0] != 1 || f.shape[1] != 1 || f.shape[3] != out_channels) {
      throw model::BuildError("'" + prefix + "/weights' should be [1,1,C," + std::to_string(out_channels) + "]");
    }
    return b.conv(prefix, in, model::conv_weights_hwio(f, &bias), {});
  }
};

class SsdDetector final : public DetectorBase {
 public:
  SsdDetector(cv::dnn::Net net, std::vector<cv::String> outputs, std::vector<CornerBox> priors,
              const ResolvedOptions& options)
      : DetectorBase(DetectorKind::kSsd, options),
        net_(std::move(net)),
        outputs_(std::move(outputs)),
        priors_(std::move(priors)) {}

  std::string_view engine_name() const override { return dnnl_ ? "onednn" : "opencv-dnn"; }

  // The built net on oneDNN (model/dnnl_net.hpp), checked once against OpenCV on a fixed pseudo-random
  // input (one extra OpenCV forward at creation). One oneDNN thread, as for BlazeFace (blazeface.cpp).
  // Returns "" or why the oneDNN path is not used.
  std::string use_dnnl() {
    std::vector<std::string> names(outputs_.begin(), outputs_.end());
    auto d = model::DnnlNet::create(net_, {1, 3, kSsdInputSize, kSsdInputSize}, names, 1);
    if (!d) return d.error().message;
    const int dims[] = {1, 3, kSsdInputSize, kSsdInputSize};
    cv::Mat x(4, dims, CV_32F);
    cv::RNG rng(0x55d);  // fixed: the check is repeatable
    rng.fill(x, cv::RNG::UNIFORM, -1.0, 1.0);
    std::string problem = model::dnnl_self_check(**d, net_, x);
    if (problem.empty()) dnnl_ = std::move(*d);
    return problem;
  }

 private:
  std::vector<Face> run(const cv::Mat& bgr) override {
    cv::Mat blob = face_api_input_blob(bgr, kSsdInputSize);
    // SsdMobilenetv1.forwardInput: x / 127.5 - 1 (two float32 ops).
    float* v = blob.ptr<float>();
    for (std::size_t i = 0, n = blob.total(); i < n; ++i) v[i] = v[i] / 127.5f - 1.f;
    std::vector<cv::Mat> outs;
    if (dnnl_ && !dnnl_->forward(blob, outs)) dnnl_.reset();  // oneDNN failed: OpenCV DNN from now on
    if (!dnnl_) {
      net_.setInput(blob);
      net_.forward(outs, outputs_);
    }

    // Box predictor outputs are NCHW [1, A*4, g, g] and [1, A*3, g, g]; TF.js reshapes NHWC to
    // [-1, 4] / [-1, 3], i.e. prior order (y, x, anchor).
    std::vector<CornerBox> boxes;
    std::vector<float> scores;
    boxes.reserve(kSsdPriors);
    scores.reserve(kSsdPriors);
    for (int p = 0; p < kPredictors; ++p) {
      const cv::Mat& enc = outs[static_cast<std::size_t>(2 * p)];
      const cv::Mat& cls = outs[static_cast<std::size_t>(2 * p + 1)];
      const int g = kGrid[static_cast<std::size_t>(p)], a_n = kAnchors[static_cast<std::size_t>(p)];
      if (enc.dims != 4 || enc.size[1] != a_n * 4 || enc.size[2] != g || enc.size[3] != g || cls.dims != 4 ||
          cls.size[1] != a_n * 3 || cls.size[2] != g || cls.size[3] != g) {
        throw std::runtime_error("ssd: box predictor " + std::to_string(p) + " has an unexpected output shape");
      }
      const float* e = enc.ptr<float>();
      const float* c = cls.ptr<float>();
      const std::size_t plane = static_cast<std::size_t>(g) * g;
      for (int y = 0; y < g; ++y) {
        for (int x = 0; x < g; ++x) {
          const std::size_t at = static_cast<std::size_t>(y) * g + x;
          for (int a = 0; a < a_n; ++a) {
            const float t[4] = {e[(a * 4 + 0) * plane + at], e[(a * 4 + 1) * plane + at],
                                e[(a * 4 + 2) * plane + at], e[(a * 4 + 3) * plane + at]};
            boxes.push_back(ssd_decode_box(priors_[boxes.size()], t));
            // outputLayer.ts: sigmoid of class logit 1 of 3 (0 is background).
            scores.push_back(1.f / (1.f + std::exp(-c[(a * 3 + 1) * plane + at])));
          }
        }
      }
    }

    const auto keep = nms_ssd(boxes, scores, kSsdMaxResults, options().nms_iou, options().min_score);
    std::vector<Face> faces;
    for (int idx : keep) {
      const auto box = ssd_box_to_image(boxes[static_cast<std::size_t>(idx)], bgr.cols, bgr.rows);
      if (!box) continue;
      Face f;
      f.box = clip_box(*box, bgr.cols, bgr.rows);
      if (f.box.area() <= 0.f) continue;
      f.score = scores[static_cast<std::size_t>(idx)];
      f.detector = "ssd";
      faces.push_back(std::move(f));
    }
    return faces;
  }

  cv::dnn::Net net_;
  std::unique_ptr<model::DnnlNet> dnnl_;  // null: OpenCV DNN
  std::vector<cv::String> outputs_;
  std::vector<CornerBox> priors_;
};

}  // namespace

Result<std::unique_ptr<Detector>> make_ssd(const model::WeightMap& weights, const ResolvedOptions& options) {
  const std::vector<int> prior_shape = {1, kSsdPriors, 4};
  FG_ASSIGN_OR_RETURN(const model::Tensor* prior_tensor, weights.get("Output/extra_dim", prior_shape));
  std::vector<CornerBox> priors(kSsdPriors);
  for (int i = 0; i < kSsdPriors; ++i) {
    const float* p = prior_tensor->data.data() + static_cast<std::size_t>(i) * 4;
    priors[static_cast<std::size_t>(i)] = {p[0], p[1], p[2], p[3]};
  }

  std::vector<cv::String> outputs;
  auto net = model::build_net("ssd_mobilenetv1", [&](NetBuilder& b) {
    Builder m{b, weights, kSsdInputSize};
    Node x = m.pointwise("MobilenetV1/Conv2d_0_pointwise", b.input(), 2);
    Node conv11{};
    for (int i = 1; i <= 13; ++i) {
      const int stride = (i == 2 || i == 4 || i == 6 || i == 12) ? 2 : 1;  // getStridesForLayerIdx
      x = m.depthwise("MobilenetV1/Conv2d_" + std::to_string(i) + "_depthwise", x, stride);
      x = m.pointwise("MobilenetV1/Conv2d_" + std::to_string(i) + "_pointwise", x, 1);
      if (i == 11) conv11 = x;
    }
    std::array<Node, kPredictors> features{conv11, x};
    Node y = x;
    for (int i = 0; i < 8; ++i) {
      y = m.pointwise("Prediction/Conv2d_" + std::to_string(i) + "_pointwise", y, i % 2 == 1 ? 2 : 1);
      if (i % 2 == 1) features[static_cast<std::size_t>(2 + i / 2)] = y;
    }
    for (int p = 0; p < kPredictors; ++p) {
      const std::string prefix = "Prediction/BoxPredictor_" + std::to_string(p);
      const auto at = static_cast<std::size_t>(p);
      const Node enc = m.predictor(prefix + "/BoxEncodingPredictor", features[at], kAnchors[at] * 4);
      const Node cls = m.predictor(prefix + "/ClassPredictor", features[at], kAnchors[at] * 3);
      outputs.push_back(b.layer_name(enc));
      outputs.push_back(b.layer_name(cls));
    }
  });
  if (!net) return std::move(net).error();
  auto det = std::make_unique<SsdDetector>(std::move(*net), std::move(outputs), std::move(priors), options);
  if (options.engine != DetectorOptions::Engine::kOpenCv) {
    const std::string problem = det->use_dnnl();
    if (!problem.empty() && options.engine == DetectorOptions::Engine::kOneDnn)
      return make_error(ErrorCode::kUnavailable, "ssd: " + problem);
  }
  return std::unique_ptr<Detector>(std::move(det));
}

}  // namespace faceguard::detect
