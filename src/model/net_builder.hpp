// Building cv::dnn::Net graphs in C++ from TF.js tensors (the face-api nets have no graph file: the
// architecture is fixed by the network type, the weights come from model/weights.hpp).
//
//   auto net = faceguard::model::build_net([&](NetBuilder& b) {
//     const Tensor& f = require(weights, "conv0/filters", {{3, 3, 3, 32}});
//     Node x = b.conv("conv0", b.input(), conv_weights_hwio(f, &require(weights, "conv0/bias")),
//                     {.stride = 2, .pad = Pad::tf_same(112, 112, 3, 3, 2, 2)});
//     x = b.relu("conv0/relu", x);
//     b.mark_output(x);
//   });                                      // Result<cv::dnn::Net>: kModelError on any inconsistency
//   net->setInput(input_blob(images, {.size = {112, 112}, .mean_rgb = {122.782, 117.001, 104.298},
//                                     .scale = 1 / 255.0}));
//   cv::Mat out = net->forward();
//
// Layouts. TF stores conv filters HWIO ([kh, kw, in, out]), depthwise filters [kh, kw, C, multiplier],
// dense weights [in, out]; OpenCV wants OIHW, (C*multiplier) x 1 x kh x kw and [out, in]. The conversion
// helpers below do this and nothing else. Activations in the built net are NCHW.
//
// Padding. TF "SAME" pads total = max((ceil(in/s)-1)*s + k - in, 0) with the smaller half at the top/left,
// i.e. asymmetrically at stride 2 (pad 0 top, 1 bottom for 112 -> 56 with k=3). Pad::tf_same computes
// that for a known input size and the layers get explicit t,l,b,r values; Pad::valid() is TF "VALID".
// Pad::opencv_same() defers to OpenCV's own pad_mode "SAME" for graphs whose input size is not fixed
// (it puts floor(total/2) at the top/left like TF; the bottom/right remainder is implied by the output
// size; for stride <= kernel its top/left pad equals TF's). Prefer tf_same when the size is known: it is
// explicit and checked by the reference tests. OpenCV 4.6 convolutions only take symmetric pads, so conv()
// realises an asymmetric Pad with a zero "Padding" layer named "<name>/pad" in front of the conv.
//
// Errors. The builder methods throw BuildError (or let cv::Exception through) on a shape mismatch or a
// bad argument; build_net() catches everything and returns kModelError, so no exception leaves a public
// function. require() turns a missing/mis-shaped tensor into a BuildError with the tensor's name.
//
// Thread safety: a NetBuilder is a single-threaded construction object; the resulting Net is not
// thread-safe either (one Net per thread, as OpenCV requires).
#pragma once

#include <functional>
#include <initializer_list>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/dnn.hpp>

#include "faceguard/result.hpp"
#include "model/weights.hpp"

namespace faceguard::model {

// Thrown by the builder and the conversion helpers; caught by build_net().
class BuildError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The tensor `name`, with `shape` checked when given; throws BuildError (message names the tensor).
const Tensor& require(const WeightMap& weights, std::string_view name, std::initializer_list<int> shape = {});

// ---- weight conversion (TF layout -> OpenCV layout) ------------------------------------------------

// Convolution weights in OpenCV layout. filter: O x (I/groups) x kh x kw float32 (4-D cv::Mat);
// bias: 1 x O float32 or empty (no bias).
struct ConvWeights {
  cv::Mat filter;
  cv::Mat bias;
  int out_channels() const { return filter.empty() ? 0 : filter.size[0]; }
  int in_channels_per_group() const { return filter.empty() ? 0 : filter.size[1]; }
  int kernel_h() const { return filter.empty() ? 0 : filter.size[2]; }
  int kernel_w() const { return filter.empty() ? 0 : filter.size[3]; }
};

// Regular conv: filter [kh, kw, in, out] (HWIO) -> OIHW; bias [out] or null.
ConvWeights conv_weights_hwio(const Tensor& filter, const Tensor* bias = nullptr);
// Depthwise conv: filter [kh, kw, C, M] -> (C*M) x 1 x kh x kw (TF output channel c*M+m); bias [C*M] or null.
// Use with ConvSpec::groups = C.
ConvWeights depthwise_weights_hwcm(const Tensor& filter, const Tensor* bias = nullptr);
// Same from raw OIHW data already in OpenCV order (for formats other than TF.js, e.g. TFLite after
// transposing); bias may be empty.
ConvWeights conv_weights_oihw(std::span<const float> filter, int out, int in_per_group, int kh, int kw,
                              std::span<const float> bias = {});

// Fold a per-output-channel affine y = conv(x) * scale + shift into the weights (filter *= scale,
// bias = bias * scale + shift). Exact up to float rounding; removes a Scale layer from the graph.
void fold_scale_shift(ConvWeights& w, std::span<const float> scale, std::span<const float> shift);

// Batch-norm (x - mean) / sqrt(var + eps) * gamma + beta as a per-channel scale/shift pair.
// gamma may be empty (= 1). TF's default epsilon is 0.001.
struct ScaleShift {
  std::vector<float> scale;
  std::vector<float> shift;
};
ScaleShift batch_norm_scale_shift(std::span<const float> mean, std::span<const float> variance,
                                  std::span<const float> gamma, std::span<const float> beta, float epsilon);

// Dense weights [in, out] (TF matMul(x, W)) -> out x in (OpenCV InnerProduct).
cv::Mat dense_weights_tf(const Tensor& weights);

// ---- graph construction ------------------------------------------------------------------------------

// One output of a layer in the net being built. Layer 0 is the net input (output k = input k).
struct Node {
  int layer = 0;
  int port = 0;
};

// Explicit 2-D padding in pixels (top, left, bottom, right), or OpenCV's pad_mode.
struct Pad {
  int top = 0;
  int left = 0;
  int bottom = 0;
  int right = 0;
  std::string mode;  // "" = explicit values above; "SAME" = OpenCV pad_mode (see the file comment)

  static Pad valid() { return {}; }
  static Pad symmetric(int p) { return {p, p, p, p, {}}; }
  // TF "SAME" for an input of in_h x in_w, kernel k_h x k_w, stride s_h x s_w (dilation 1).
  static Pad tf_same(int in_h, int in_w, int k_h, int k_w, int s_h, int s_w);
  static Pad opencv_same() { return {0, 0, 0, 0, "SAME"}; }
};

// Output extent of a conv/pool along one axis with explicit padding (floor mode), as TF computes it.
int conv_out_size(int in, int kernel, int stride, int pad_begin, int pad_end, int dilation = 1);

struct ConvSpec {
  int stride = 1;      // both axes
  Pad pad;             // default VALID
  int groups = 1;      // C for depthwise
  int dilation = 1;
};

struct PoolSpec {
  int kernel = 2;      // both axes
  int stride = 2;
  Pad pad;             // default VALID
  // Average pooling: whether padded cells count in the divisor. TF's avg_pool (SAME) excludes them,
  // OpenCV's default includes them: false matches TF.
  bool count_padding = false;
};

class NetBuilder {
 public:
  // input_names: names of the net inputs, in port order (setInput(blob, name) uses them).
  explicit NetBuilder(std::vector<std::string> input_names = {"input"});

  Node input(int index = 0) const { return Node{0, index}; }

  // Any OpenCV layer: `params` carries type-specific values and blobs; name and type are set here.
  // Layer names must be unique (BuildError otherwise).
  Node add(const std::string& name, const std::string& type, cv::dnn::LayerParams params,
           std::initializer_list<Node> inputs);
  Node add(const std::string& name, const std::string& type, cv::dnn::LayerParams params,
           std::span<const Node> inputs);

  // Convolution (groups > 1 for grouped / depthwise). The bias, if any, is in `w`.
  Node conv(const std::string& name, Node in, const ConvWeights& w, const ConvSpec& spec = {});
  // TF separableConv2d: depthwise [kh,kw,C,M] (no bias) then pointwise [1,1,C*M,O] + bias.
  // Two layers: "<name>/depthwise" and "<name>/pointwise". The pointwise stride is 1.
  Node separable_conv(const std::string& name, Node in, const Tensor& depthwise, const Tensor& pointwise,
                      const Tensor* bias, const ConvSpec& depthwise_spec);

  // Per-channel y = x * scale + shift (Scale layer); shift may be empty. Prefer fold_scale_shift after a conv.
  Node scale(const std::string& name, Node in, std::span<const float> scale, std::span<const float> shift = {});
  // Batch-norm as a Scale layer (see batch_norm_scale_shift).
  Node batch_norm(const std::string& name, Node in, std::span<const float> mean, std::span<const float> variance,
                  std::span<const float> gamma, std::span<const float> beta, float epsilon);

  Node relu(const std::string& name, Node in);
  Node relu6(const std::string& name, Node in);
  Node leaky_relu(const std::string& name, Node in, float negative_slope);
  Node prelu(const std::string& name, Node in, std::span<const float> slopes);  // one slope per channel
  Node sigmoid(const std::string& name, Node in);

  Node max_pool(const std::string& name, Node in, const PoolSpec& spec);
  Node ave_pool(const std::string& name, Node in, const PoolSpec& spec);
  Node global_ave_pool(const std::string& name, Node in);  // N x C x 1 x 1
  Node global_max_pool(const std::string& name, Node in);

  // Element-wise sum of inputs of equal spatial size. zero_extend_channels: inputs with fewer channels
  // are zero-extended to the widest one (OpenCV output_channels_mode "max_input_channels"; dlib's
  // down-sampling shortcut). Otherwise all channel counts must match.
  Node sum(const std::string& name, std::initializer_list<Node> inputs, bool zero_extend_channels = false);
  Node sum(const std::string& name, std::span<const Node> inputs, bool zero_extend_channels = false);
  Node product(const std::string& name, std::initializer_list<Node> inputs);

  // Constant padding of the two spatial axes of an NCHW tensor.
  Node pad(const std::string& name, Node in, const Pad& pad, float value = 0.f);
  Node concat(const std::string& name, std::initializer_list<Node> inputs, int axis = 1);
  Node flatten(const std::string& name, Node in, int axis = 1);
  Node permute(const std::string& name, Node in, std::initializer_list<int> order);
  Node reshape(const std::string& name, Node in, std::initializer_list<int> shape);

  // Dense layer over everything after axis 1 (N x K -> N x O). weights: O x K (see dense_weights_tf);
  // bias: 1 x O or empty. Note the flatten order is NCHW: after a global pool (1 x 1) it equals TF's.
  Node inner_product(const std::string& name, Node in, const cv::Mat& weights, const cv::Mat& bias = {});
  // From TF tensors: weights [in, out], bias [out] or null.
  Node dense_tf(const std::string& name, Node in, const Tensor& weights, const Tensor* bias);

  // Names the layer whose output forward() returns by default (the last one added, unless marked).
  void mark_output(Node n) { output_ = n; }
  Node output() const { return output_; }
  const std::string& layer_name(Node n) const;

  cv::dnn::Net& net() { return net_; }
  // The finished net, backend OpenCV / target CPU.
  cv::dnn::Net finish();

 private:
  cv::dnn::Net net_;
  std::vector<std::string> names_;  // by layer id (0 = input)
  Node output_{};
};

// Run `body` on a fresh NetBuilder and return the finished net; every exception (BuildError,
// cv::Exception, std::exception) becomes kModelError "<what>: <message>".
Result<cv::dnn::Net> build_net(const std::string& what, const std::function<void(NetBuilder&)>& body,
                               std::vector<std::string> input_names = {"input"});

// ---- net input -----------------------------------------------------------------------------------------

struct InputSpec {
  cv::Size size;                 // W x H every image must already have (BuildError otherwise)
  cv::Scalar mean_rgb{0, 0, 0};  // subtracted per channel, in RGB order
  double scale = 1.0;            // multiplied after the mean is subtracted
  bool bgr_input = true;         // images are BGR (faceguard's convention) and the net wants RGB
  bool nhwc = false;             // N x H x W x C instead of N x C x H x W (e.g. the BlazeFace ONNX)
};

// N images (CV_8UC3 or CV_32FC3, all spec.size) -> one float32 blob (x - mean) * scale, RGB channel order.
// Throws BuildError on a wrong size or type (callers validate first; this is a programmer error).
cv::Mat input_blob(std::span<const cv::Mat> images, const InputSpec& spec);

// TF.js tf.image.resizeBilinear(alignCorners = false, halfPixelCenters = false), which face-api applies
// to every net input: source coordinate = dst * (in / out), no half-pixel shift (unlike cv::resize).
// Any depth in, CV_32F out with the same channel count.
cv::Mat resize_bilinear_tf(const cv::Mat& src, cv::Size size);

// face-api padToSquare: zero padding of the shorter axis to a square. centred: round(diff / 2) is
// appended after the image and the rest before it (face-api's order); otherwise all of it after.
// Returns the padded image (same type) and writes the offset of the original image into `offset`.
cv::Mat pad_to_square_tf(const cv::Mat& src, bool centred, cv::Point* offset = nullptr);

}  // namespace faceguard::model
