#include "align/landmark68.hpp"

#include <cmath>
#include <string>
#include <vector>

#include <opencv2/imgproc.hpp>

#include "model/net_builder.hpp"

namespace faceguard {
namespace landmark {
namespace {

using model::ConvSpec;
using model::NetBuilder;
using model::Node;
using model::Pad;
using model::require;

class DenseNetBuilder {
 public:
  DenseNetBuilder(NetBuilder& b, const model::WeightMap& w) : b_(b), w_(w) {}

  // denseBlock.ts denseBlock3 / denseBlock4 (convs = 3 or 4), always scaling down (stride 2).
  Node dense_block(const std::string& p, Node x, int cin, int cout, int convs, bool first) {
    const Pad down = Pad::tf_same(size_, size_, 3, 3, 2, 2);
    const int out_size = (size_ + 1) / 2;
    const Pad same = Pad::tf_same(out_size, out_size, 3, 3, 1, 1);
    Node out1;
    if (first) {
      const model::Tensor& f = require(w_, p + "/conv0/filters", {3, 3, cin, cout});
      const model::Tensor& bias = require(w_, p + "/conv0/bias", {cout});
      out1 = b_.conv(p + "/conv0", x, model::conv_weights_hwio(f, &bias), {.stride = 2, .pad = down});
    } else {
      out1 = separable(p + "/conv0", x, cin, cout, {.stride = 2, .pad = down});
    }
    out1 = b_.relu(p + "/conv0/relu", out1);
    size_ = out_size;
    std::vector<Node> outs{out1};
    Node in = out1;
    for (int i = 1; i < convs; ++i) {
      const std::string c = p + "/conv" + std::to_string(i);
      outs.push_back(separable(c, in, cout, cout, {.stride = 1, .pad = same}));
      Node s = b_.sum(c + "/sum", std::span<const Node>(outs));
      in = b_.relu(c + "/relu", s);
    }
    return in;  // relu(out1 + ... + outN)
  }

  Node build(bool tiny) {
    size_ = kLandmarkInputSize;
    const int convs = tiny ? 3 : 4;
    const std::vector<int> widths = tiny ? std::vector<int>{32, 64, 128} : std::vector<int>{32, 64, 128, 256};
    Node x = b_.input();
    int cin = 3;
    for (std::size_t i = 0; i < widths.size(); ++i) {
      x = dense_block("dense" + std::to_string(i), x, cin, widths[i], convs, i == 0);
      cin = widths[i];
    }
    // avgPool [7,7] (tiny: [14,14]) stride 2 VALID: over the whole 7 x 7 (14 x 14) map -> 1 x 1.
    const int window = tiny ? 14 : 7;
    if (size_ != window) throw model::BuildError("landmark net: unexpected final map size");
    x = b_.ave_pool("pool", x, {.kernel = window, .stride = 2, .pad = Pad::valid()});
    const model::Tensor& fc = require(w_, "fc/weights", {cin, 2 * kLandmarkCount});
    const model::Tensor& fc_bias = require(w_, "fc/bias", {2 * kLandmarkCount});
    return b_.dense_tf("fc", x, fc, &fc_bias);
  }

 private:
  Node separable(const std::string& p, Node x, int cin, int cout, const ConvSpec& spec) {
    const model::Tensor& dw = require(w_, p + "/depthwise_filter", {3, 3, cin, 1});
    const model::Tensor& pw = require(w_, p + "/pointwise_filter", {1, 1, cin, cout});
    const model::Tensor& bias = require(w_, p + "/bias", {cout});
    return b_.separable_conv(p, x, dw, pw, &bias, spec);
  }

  NetBuilder& b_;
  const model::WeightMap& w_;
  int size_ = 0;
};

class Landmark68 final : public Landmarker {
 public:
  Landmark68(cv::dnn::Net net, int threads) : net_(std::move(net)), threads_(threads) {}

  Result<std::vector<Point2f>> landmarks(const cv::Mat& image, const Box& box) override {
    if (image.empty()) return make_error(ErrorCode::kInvalidArgument, "landmarks: empty image");
    if (image.depth() != CV_8U) return make_error(ErrorCode::kInvalidArgument, "landmarks: image is not 8-bit");
    cv::Mat bgr;
    switch (image.channels()) {
      case 3: bgr = image; break;
      case 1: cv::cvtColor(image, bgr, cv::COLOR_GRAY2BGR); break;
      case 4: cv::cvtColor(image, bgr, cv::COLOR_BGRA2BGR); break;
      default: return make_error(ErrorCode::kInvalidArgument, "landmarks: image must have 1, 3 or 4 channels");
    }
    FG_ASSIGN_OR_RETURN(LandmarkCrop crop, landmark_crop(box, bgr.size()));
    try {
      // NetInput.toBatchTensor(112, true): centred zero padding to a square, TF bilinear resize when the
      // side differs from 112.
      cv::Mat square = model::pad_to_square_tf(bgr(crop.rect), /*centred=*/true);
      if (square.rows != kLandmarkInputSize)
        square = model::resize_bilinear_tf(square, {kLandmarkInputSize, kLandmarkInputSize});
      const model::InputSpec spec{.size = {kLandmarkInputSize, kLandmarkInputSize},
                                  .mean_rgb = {kLandmarkMeanRgb[0], kLandmarkMeanRgb[1], kLandmarkMeanRgb[2]},
                                  .scale = 1.0 / 255.0};
      if (threads_ > 0) cv::setNumThreads(threads_);  // process-wide in OpenCV
      net_.setInput(model::input_blob(std::span<const cv::Mat>(&square, 1), spec));
      cv::Mat out = net_.forward();
      if (out.total() != 2 * kLandmarkCount) return make_error(ErrorCode::kInternal, "landmarks: unexpected output");
      const float* o = out.ptr<float>();

      // FaceLandmark68NetBase.postProcess: undo the (symmetric, possibly fractional) square padding in
      // the 112 frame, giving positions relative to the crop; then FaceLandmarks scales by the crop size
      // and shifts by the box origin.
      const double w = crop.rect.width, h = crop.rect.height;
      const double s = kLandmarkInputSize / std::max(w, h);
      const double ws = w * s, hs = h * s;
      const double pad_x = ws < hs ? std::abs(ws - hs) / 2 : 0.0;
      const double pad_y = hs < ws ? std::abs(ws - hs) / 2 : 0.0;
      std::vector<Point2f> pts(kLandmarkCount);
      for (int i = 0; i < kLandmarkCount; ++i) {
        const double rx = (o[2 * i] * kLandmarkInputSize - pad_x) / ws;
        const double ry = (o[2 * i + 1] * kLandmarkInputSize - pad_y) / hs;
        pts[i] = Point2f{static_cast<float>(rx * w + crop.shift.x), static_cast<float>(ry * h + crop.shift.y)};
      }
      return pts;
    } catch (const std::exception& e) {
      return make_error(ErrorCode::kInternal, std::string("landmarks: forward failed: ") + e.what());
    }
  }

 private:
  cv::dnn::Net net_;
  int threads_ = 0;
};

}  // namespace

Result<cv::dnn::Net> build_landmark68_net(const model::WeightMap& weights, bool tiny) {
  return model::build_net(tiny ? "face_landmark_68_tiny" : "face_landmark_68", [&](NetBuilder& b) {
    DenseNetBuilder db(b, weights);
    b.mark_output(db.build(tiny));
  });
}

Result<LandmarkCrop> landmark_crop(const Box& box, cv::Size image) {
  if (!std::isfinite(box.x) || !std::isfinite(box.y) || !std::isfinite(box.width) || !std::isfinite(box.height))
    return make_error(ErrorCode::kInvalidArgument, "landmarks: box is not finite");
  // Box.clipAtImageBorders, in double like JS.
  const double cx = std::max<double>(box.x, 0.0), cy = std::max<double>(box.y, 0.0);
  const double cw = std::min<double>(static_cast<double>(box.x) + box.width - cx, image.width - cx);
  const double ch = std::min<double>(static_cast<double>(box.y) + box.height - cy, image.height - cy);
  const double fx = std::floor(cx), fy = std::floor(cy), fw = std::floor(cw), fh = std::floor(ch);
  if (!(fw > 0) || !(fh > 0) || fx >= image.width || fy >= image.height)
    return make_error(ErrorCode::kInvalidArgument, "landmarks: box does not overlap the image");
  LandmarkCrop c;
  c.rect = cv::Rect(static_cast<int>(fx), static_cast<int>(fy), static_cast<int>(fw), static_cast<int>(fh));
  c.rect &= cv::Rect(0, 0, image.width, image.height);
  c.shift = Point2f{static_cast<float>(cx), static_cast<float>(cy)};
  return c;
}

Result<std::unique_ptr<Landmarker>> create_landmarker(const std::filesystem::path& manifest,
                                                      const LandmarkerOptions& options) {
  if (options.threads < 0) return make_error(ErrorCode::kInvalidArgument, "landmarker: threads must be >= 0");
  auto weights = model::load_weights(manifest);
  if (!weights)
    return make_error(ErrorCode::kModelError, std::string(options.tiny ? "face_landmark_68_tiny" : "face_landmark_68") +
                                                  " weights: " + weights.error().message);
  FG_ASSIGN_OR_RETURN(cv::dnn::Net net, build_landmark68_net(*weights, options.tiny));
  return std::unique_ptr<Landmarker>(std::make_unique<Landmark68>(std::move(net), options.threads));
}

}  // namespace landmark

Result<std::unique_ptr<Landmarker>> Landmarker::create(const ModelPack& pack, const LandmarkerOptions& options) {
  FG_ASSIGN_OR_RETURN(auto manifest,
                      pack.file(options.tiny ? ModelFile::kLandmark68TinyManifest : ModelFile::kLandmark68Manifest));
  return landmark::create_landmarker(manifest, options);
}

}  // namespace faceguard
