// A cv::dnn::Net translated, layer by layer, into oneDNN primitives: the fast CPU path of the detectors
// (BlazeFace from its ONNX, SSD MobileNetV1 from net_builder). Private to the engine.
//
// Why: OpenCV 4.6 runs small depthwise/pointwise nets poorly on one core (BlazeFace back: 19.6 ms, of which
// 4.2 ms are residual adds it does not fuse); oneDNN (see embed/dlib_resnet_dnnl.hpp for the library and
// why it is used) JIT-compiles each conv for this CPU and fuses bias, residual sum and ReLU into it.
//
// No second model parser: OpenCV's importer (readNetFromONNX, or NetBuilder) reads the model and this
// walks the resulting, still *unfused* graph (getLayerNames / getLayer / getLayerInputs / getLayerShapes:
// OpenCV rewrites layers at its first forward, so translate before running the net). Translated:
//   Convolution    (any groups, dilation, explicit pads) with bias; oneDNN conv
//   ReLU / ReLU6   fused into the producing conv when it has no other consumer, else an eltwise primitive
//   Eltwise        two equal-shape inputs, probed to be a plain sum: fused into a conv that produces one
//                  input as a sum post-op (in place over the other input when nothing reads it later)
//   Padding        spatial zero padding (probed): folded into the consuming conv's padding_l / padding_r
//   Pooling        max / average (kernel, stride, pads, ceil mode via the right padding)
//   Const + Concat channel concatenation of tensors and all-zero constants (zero buffer + reorders into
//                  channel sub-views: BlazeFace's channel padding of its shortcuts)
//   Permute / Reshape / Flatten / Identity / Concat after the last conv: pure data movement, turned into
//                  one index map per output by running the OpenCV layers themselves on index tensors
//   Permute of the net input: a strided oneDNN memory over the caller's buffer (the NHWC BlazeFace input)
// Parameterless layers (Padding, Permute, Eltwise) are probed by running the OpenCV layer on test tensors,
// so their semantics are observed rather than guessed. Anything else (or any parameter outside the above)
// makes create() return kUnavailable naming the layer, and callers keep the OpenCV net.
//
// Activations are NHWC in one arena (NHWC because channel sub-views at any channel offset, e.g. 24 of
// 48, are only expressible in a plain layout; oneDNN has NHWC kernels for depthwise and 1x1 convs).
// Weights are reordered once, at create().
//
// Thread safety: one DnnlNet per thread; forward() is not reentrant.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/dnn.hpp>

#include "faceguard/result.hpp"

namespace faceguard::model {

// Whether this build has oneDNN (FG_HAVE_DNNL); without it create() returns kUnavailable.
bool dnnl_net_available();

class DnnlNet {
 public:
  ~DnnlNet();
  DnnlNet(const DnnlNet&) = delete;
  DnnlNet& operator=(const DnnlNet&) = delete;

  // Translates `net` for one input of `input_shape` (the shape the caller will setInput on the OpenCV net,
  // e.g. {1,256,256,3}) and the outputs named (empty: net.getUnconnectedOutLayersNames(), in that order).
  // `net` must not have been run yet (see the file comment); it is left usable. threads >= 1: oneDNN's
  // OpenMP threads (fixed per primitive at creation, so forward uses the same). kUnavailable: no oneDNN,
  // or a layer/parameter this translator does not handle (the message names the layer).
  static Result<std::unique_ptr<DnnlNet>> create(cv::dnn::Net& net, const std::vector<int>& input_shape,
                                                 std::vector<std::string> output_names = {}, int threads = 1);

  // input: CV_32F, continuous, input_shape's element count. outputs: one CV_32F Mat per output name, with
  // the shapes OpenCV gives them (reallocated only when needed). kInternal on a oneDNN failure (callers
  // then fall back to OpenCV).
  Status forward(const cv::Mat& input, std::vector<cv::Mat>& outputs);

  const std::vector<std::string>& output_names() const;
  // Steps run per forward (a conv with its fused sum and ReLUs is one): for tests and reports.
  std::size_t primitive_count() const;
  int threads() const;

  struct Impl;

 private:
  explicit DnnlNet(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The largest |a - b| / max(1, |b|) over the elements of two equal-size float tensors: absolute below 1,
// relative above (BlazeFace's logits reach -8000, where float's own step is 1e-3).
double scaled_max_diff(const cv::Mat& a, const cv::Mat& b);

// scaled_max_diff of oneDNN's outputs against OpenCV's for one input: the self-check callers run once (on
// a net already translated, so OpenCV's fusion no longer matters) before trusting the translation.
// kInternal when either side fails or the output shapes differ.
Result<double> dnnl_max_diff(DnnlNet& dnnl, cv::dnn::Net& net, const cv::Mat& input);

// Largest dnnl_max_diff accepted by dnnl_self_check: float rounding in another summation order measures
// < 1e-5 on the detectors; a translation error is O(1).
inline constexpr double kDnnlSelfCheckTolerance = 1e-3;

// The check a caller runs once after create() before trusting the translation: "" when oneDNN and OpenCV
// agree on `input` within kDnnlSelfCheckTolerance, else why the oneDNN path must not be used.
std::string dnnl_self_check(DnnlNet& dnnl, cv::dnn::Net& net, const cv::Mat& input);

}  // namespace faceguard::model
