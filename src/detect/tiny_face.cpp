// face-api Tiny Face Detector (tinyFaceDetector/, tinyYolov2/ with withSeparableConvs, isFirstLayerConv2d)
// built as a cv::dnn graph from the TF.js weights. runMobilenet: conv0 3x3 VALID + bias + leaky 0.1,
// maxpool 2/2 SAME, conv1..5 = [pad 1, separable 3x3, bias, leaky] each followed by maxpool 2/2 SAME (the
// last one 2/1), conv8 1x1 VALID -> [N/32, N/32, 25].
#include "detect/tiny_face.hpp"

#include <cmath>
#include <stdexcept>
#include <string>

#include "detect/detector_base.hpp"
#include "detect/image_prep.hpp"
#include "detect/nms.hpp"
#include "model/net_builder.hpp"

namespace faceguard::detect {

namespace {

double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }  // ops/index.ts, JavaScript double

}  // namespace

std::vector<TinyCandidate> tiny_decode(std::span<const float> grid, int cells, int reshaped_width,
                                       int reshaped_height, float min_score) {
  std::vector<TinyCandidate> out;
  if (cells <= 0 || grid.size() < static_cast<std::size_t>(cells) * cells * kTinyAnchorCount * kTinyEncoding) {
    return out;
  }
  const double input_size = std::max(reshaped_width, reshaped_height);
  const double corr_x = input_size / reshaped_width;
  const double corr_y = input_size / reshaped_height;
  for (int row = 0; row < cells; ++row) {
    for (int col = 0; col < cells; ++col) {
      for (int a = 0; a < kTinyAnchorCount; ++a) {
        const float* t =
            grid.data() + ((static_cast<std::size_t>(row) * cells + col) * kTinyAnchorCount + a) * kTinyEncoding;
        const double score = sigmoid(t[4]);
        if (min_score != 0.f && !(score > min_score)) continue;
        const double cx = ((col + sigmoid(t[0])) / cells) * corr_x;
        const double cy = ((row + sigmoid(t[1])) / cells) * corr_y;
        const double w = ((std::exp(static_cast<double>(t[2])) * kTinyAnchors[a][0]) / cells) * corr_x;
        const double h = ((std::exp(static_cast<double>(t[3])) * kTinyAnchors[a][1]) / cells) * corr_y;
        if (!std::isfinite(cx) || !std::isfinite(cy) || !std::isfinite(w) || !std::isfinite(h)) continue;
        const double x = cx - w / 2;
        const double y = cy - h / 2;
        out.push_back({Box{static_cast<float>(x), static_cast<float>(y), static_cast<float>(w), static_cast<float>(h)},
                       static_cast<float>(score)});
      }
    }
  }
  return out;
}

namespace {

using model::ConvSpec;
using model::NetBuilder;
using model::Node;
using model::Pad;
using model::PoolSpec;
using model::require;

constexpr float kLeakySlope = 0.10000000149011612f;  // tinyYolov2/leaky.ts
// tinyFaceDetector/const.ts MEAN_RGB, then / 255 (TinyYolov2Base.forwardInput).
constexpr float kMeanRgb[3] = {117.001f, 114.697f, 97.404f};

class TinyDetector final : public DetectorBase {
 public:
  TinyDetector(cv::dnn::Net net, const ResolvedOptions& options)
      : DetectorBase(DetectorKind::kTiny, options), net_(std::move(net)) {}

 private:
  std::vector<Face> run(const cv::Mat& bgr) override {
    const int n = options().input_size;
    cv::Mat blob = face_api_input_blob(bgr, n);
    const std::size_t plane = static_cast<std::size_t>(n) * n;
    for (int c = 0; c < 3; ++c) {
      float* v = blob.ptr<float>(0, c);
      for (std::size_t i = 0; i < plane; ++i) v[i] = (v[i] - kMeanRgb[c]) / 255.f;
    }
    net_.setInput(blob);
    const cv::Mat out = net_.forward();
    const int cells = n / 32;
    const int channels = kTinyAnchorCount * kTinyEncoding;
    if (out.dims != 4 || out.size[1] != channels || out.size[2] != cells || out.size[3] != cells) {
      throw std::runtime_error("tiny: unexpected output shape");
    }
    // NCHW -> NHWC, the layout extractBoxes reads.
    std::vector<float> grid(static_cast<std::size_t>(cells) * cells * channels);
    const float* o = out.ptr<float>();
    const std::size_t cell_plane = static_cast<std::size_t>(cells) * cells;
    for (int ch = 0; ch < channels; ++ch) {
      for (std::size_t at = 0; at < cell_plane; ++at) grid[at * channels + ch] = o[ch * cell_plane + at];
    }
    const ReshapedDims r = face_api_reshaped_dims(bgr.cols, bgr.rows, n);
    const auto candidates = tiny_decode(grid, cells, r.width, r.height, options().min_score);

    // TinyYolov2Base.detect: NMS on the relative boxes scaled by the input size.
    std::vector<Box> scaled;
    std::vector<float> scores;
    for (const auto& c : candidates) {
      const float s = static_cast<float>(n);
      scaled.push_back({c.box.x * s, c.box.y * s, c.box.width * s, c.box.height * s});
      scores.push_back(c.score);
    }
    std::vector<Face> faces;
    for (int idx : nms_tiny(scaled, scores, options().nms_iou)) {
      const Box& rel = candidates[static_cast<std::size_t>(idx)].box;
      const float w = static_cast<float>(bgr.cols), h = static_cast<float>(bgr.rows);
      Face f;
      f.box = clip_box({rel.x * w, rel.y * h, rel.width * w, rel.height * h}, bgr.cols, bgr.rows);
      if (f.box.area() <= 0.f) continue;
      f.score = scores[static_cast<std::size_t>(idx)];
      f.detector = "tiny";
      faces.push_back(std::move(f));
    }
    return faces;
  }

  cv::dnn::Net net_;
};

}  // namespace

Result<std::unique_ptr<Detector>> make_tiny(const model::WeightMap& weights, const ResolvedOptions& options) {
  const int n = options.input_size;
  auto net = model::build_net("tiny_face_detector", [&](NetBuilder& b) {
    const auto& f0 = require(weights, "conv0/filters", {3, 3, 3, 16});
    const auto& b0 = require(weights, "conv0/bias", {16});
    Node x = b.conv("conv0", b.input(), model::conv_weights_hwio(f0, &b0), {});
    x = b.leaky_relu("conv0/leaky", x, kLeakySlope);
    int size = n - 2;  // 3x3 VALID
    int channels = 16;
    for (int i = 1; i <= 5; ++i) {
      // maxPool [2,2] SAME before conv i (stride 2), ...
      const Pad pool_pad = Pad::tf_same(size, size, 2, 2, 2, 2);
      x = b.max_pool("pool" + std::to_string(i - 1), x, PoolSpec{.kernel = 2, .stride = 2, .pad = pool_pad});
      size = model::conv_out_size(size, 2, 2, pool_pad.top, pool_pad.bottom);
      const std::string p = "conv" + std::to_string(i);
      const auto& dw = require(weights, p + "/depthwise_filter", {3, 3, channels, 1});
      const int out = channels * 2;
      const auto& pw = require(weights, p + "/pointwise_filter", {1, 1, channels, out});
      const auto& bias = require(weights, p + "/bias", {out});
      // depthwiseSeparableConv.ts: tf.pad 1 on each side, then VALID = a symmetric pad of 1.
      x = b.separable_conv(p, x, dw, pw, &bias, ConvSpec{.pad = Pad::symmetric(1)});
      x = b.leaky_relu(p + "/leaky", x, kLeakySlope);
      channels = out;
    }
    // ... and the last pool is [2,2] stride 1 SAME.
    const Pad last_pad = Pad::tf_same(size, size, 2, 2, 1, 1);
    x = b.max_pool("pool5", x, PoolSpec{.kernel = 2, .stride = 1, .pad = last_pad});
    const auto& f8 = require(weights, "conv8/filters", {1, 1, channels, kTinyAnchorCount * kTinyEncoding});
    const auto& b8 = require(weights, "conv8/bias", {kTinyAnchorCount * kTinyEncoding});
    x = b.conv("conv8", x, model::conv_weights_hwio(f8, &b8), {});
    b.mark_output(x);
  });
  if (!net) return std::move(net).error();
  return std::unique_ptr<Detector>(std::make_unique<TinyDetector>(std::move(*net), options));
}

}  // namespace faceguard::detect
