#include "embed/mobilefacenet.hpp"

#include <algorithm>
#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "embed/chip_prep.hpp"
#include "model/net_builder.hpp"

namespace faceguard::embed {
namespace {

namespace tfl = model::tflite;
using model::BuildError;
using model::ConvSpec;
using model::NetBuilder;
using model::Node;
using model::Pad;

// One forward call holds at most this many chips: a 112 px chip needs about 3 MB of activations
// (56 x 56 x 128 floats at the widest layer, a few alive at once), so 32 stays near 100 MB.
constexpr std::size_t kMaxForwardBatch = 32;

std::string shape_str(const std::vector<int>& s) {
  std::string r = "[";
  for (std::size_t i = 0; i < s.size(); ++i) r += (i ? "," : "") + std::to_string(s[i]);
  return r + "]";
}

// Walks the TFLite operators in order and adds the equivalent OpenCV layers.
class Translator {
 public:
  Translator(NetBuilder& b, const tfl::Graph& g) : b_(b), g_(g), nodes_(g.tensors.size()), uses_(g.tensors.size(), 0) {
    for (const auto& op : g.operators)
      for (int t : op.inputs)
        if (t >= 0) ++uses_[t];
    for (int t : g.outputs) ++uses_[t];
  }

  void run() {
    if (g_.inputs.size() != 1) fail_graph("has " + std::to_string(g_.inputs.size()) + " inputs, 1 expected");
    if (g_.outputs.empty()) fail_graph("has no output");
    const tfl::Tensor& in = g_.tensors[g_.inputs[0]];
    if (in.shape.size() != 4 || in.type != tfl::TensorType::kFloat32 || in.is_constant())
      fail_graph("input '" + in.name + "' is not a float NHWC activation " + shape_str(in.shape));
    nodes_[g_.inputs[0]] = b_.input();
    for (std::size_t i = 0; i < g_.operators.size();) i += translate(i);
    const int out = g_.outputs[0];
    if (!nodes_[out]) fail_graph("output '" + g_.tensors[out].name + "' is never computed");
    b_.mark_output(*nodes_[out]);
  }

 private:
  [[noreturn]] void fail_graph(const std::string& what) const { throw BuildError("graph " + what); }
  [[noreturn]] void fail_op(std::size_t i, const std::string& what) const {
    throw BuildError("operator " + std::to_string(i) + " (" + tfl::op_name(g_.operators[i].code) + "): " + what);
  }

  const tfl::Tensor& tensor(std::size_t i, int t) const {
    if (t < 0) fail_op(i, "an input it needs is left out");
    return g_.tensors[t];
  }

  // The node computing activation tensor t.
  Node act(std::size_t i, int t) const {
    const tfl::Tensor& x = tensor(i, t);
    if (x.is_constant()) fail_op(i, "'" + x.name + "' is a constant where an activation was expected");
    if (!nodes_[t]) fail_op(i, "reads '" + x.name + "' before it is computed");
    return *nodes_[t];
  }

  std::vector<float> constant(std::size_t i, int t) const {
    const tfl::Tensor& c = tensor(i, t);
    auto v = tfl::to_float(c);
    if (!v) fail_op(i, v.error().message);
    for (float f : *v)
      if (!std::isfinite(f)) fail_op(i, "constant '" + c.name + "' holds a non-finite value");
    return std::move(*v);
  }

  // A constant broadcast along the channel (last) axis of activation tensor `like`: one value per channel.
  std::vector<float> channel_constant(std::size_t i, int t, int like) const {
    const tfl::Tensor& x = tensor(i, like);
    if (x.shape.empty()) fail_op(i, "activation '" + x.name + "' has no shape");
    const std::size_t channels = static_cast<std::size_t>(x.shape.back());
    const tfl::Tensor& c = tensor(i, t);
    for (std::size_t d = 0; d + 1 < c.shape.size(); ++d)
      if (c.shape[d] != 1) fail_op(i, "constant '" + c.name + "' " + shape_str(c.shape) + " is not per-channel");
    std::vector<float> v = constant(i, t);
    if (v.size() == 1) v.assign(channels, v[0]);
    if (v.size() != channels)
      fail_op(i, "constant '" + c.name + "' has " + std::to_string(v.size()) + " values for " +
                     std::to_string(channels) + " channels");
    return v;
  }

  void set(std::size_t i, Node n) {
    const auto& op = g_.operators[i];
    if (op.outputs.size() != 1 || op.outputs[0] < 0) fail_op(i, "expected exactly one output");
    if (g_.tensors[op.outputs[0]].is_constant()) fail_op(i, "writes a constant tensor");
    nodes_[op.outputs[0]] = n;
  }

  std::string name(std::size_t i) const { return "op" + std::to_string(i) + "_" + tfl::op_name(g_.operators[i].code); }

  Node activation(std::size_t i, Node n, tfl::Activation a) {
    switch (a) {
      case tfl::Activation::kNone: return n;
      case tfl::Activation::kRelu: return b_.relu(name(i) + "/relu", n);
      case tfl::Activation::kRelu6: return b_.relu6(name(i) + "/relu6", n);
      default: fail_op(i, "fused activation " + std::to_string(static_cast<int>(a)) + " is not supported");
    }
  }

  bool is_op(std::size_t i, tfl::BuiltinOp code, std::size_t n_inputs) const {
    if (i >= g_.operators.size()) return false;
    const auto& op = g_.operators[i];
    return op.is(code) && op.inputs.size() == n_inputs && op.outputs.size() == 1 && op.outputs[0] >= 0 &&
           op.options.activation == tfl::Activation::kNone;
  }
  int out_of(std::size_t i) const { return g_.operators[i].outputs[0]; }
  int in_of(std::size_t i, std::size_t k) const { return g_.operators[i].inputs[k]; }
  bool used_once(int t) const { return t >= 0 && uses_[t] == 1; }
  bool is_const(int t) const { return t >= 0 && g_.tensors[t].is_constant(); }

  // relu(x) + c * (x - |x|) over ops i..i+4 (any operand order of MUL and ADD), intermediates used only
  // inside the idiom. Returns c's tensor index, or -1 when the ops do not form it.
  int prelu_idiom(std::size_t i) const {
    if (!is_op(i, tfl::BuiltinOp::kRelu, 1) || !is_op(i + 1, tfl::BuiltinOp::kAbs, 1) ||
        !is_op(i + 2, tfl::BuiltinOp::kSub, 2) || !is_op(i + 3, tfl::BuiltinOp::kMul, 2) ||
        !is_op(i + 4, tfl::BuiltinOp::kAdd, 2))
      return -1;
    const int x = in_of(i, 0), r = out_of(i), a = out_of(i + 1), s = out_of(i + 2), m = out_of(i + 3);
    if (in_of(i + 1, 0) != x || in_of(i + 2, 0) != x || in_of(i + 2, 1) != a) return -1;
    int c = -1;
    if (in_of(i + 3, 1) == s && is_const(in_of(i + 3, 0))) c = in_of(i + 3, 0);
    if (in_of(i + 3, 0) == s && is_const(in_of(i + 3, 1))) c = in_of(i + 3, 1);
    if (c < 0) return -1;
    const bool add_ok = (in_of(i + 4, 0) == r && in_of(i + 4, 1) == m) || (in_of(i + 4, 0) == m && in_of(i + 4, 1) == r);
    if (!add_ok || !used_once(r) || !used_once(a) || !used_once(s) || !used_once(m)) return -1;
    return c;
  }

  // CONV_2D and DEPTHWISE_CONV_2D.
  Node conv(std::size_t i, bool depthwise) {
    const auto& op = g_.operators[i];
    if (op.inputs.size() < 2 || op.inputs.size() > 3) fail_op(i, "expects 2 or 3 inputs");
    const tfl::Tensor& x = tensor(i, op.inputs[0]);
    const tfl::Tensor& w = tensor(i, op.inputs[1]);
    const tfl::Tensor& y = tensor(i, op.outputs.at(0));
    if (x.shape.size() != 4 || w.shape.size() != 4 || y.shape.size() != 4)
      fail_op(i, "input, filter and output must be 4-D: " + shape_str(x.shape) + " " + shape_str(w.shape) + " " +
                     shape_str(y.shape));
    const auto& o = op.options;
    if (o.stride_h != o.stride_w || o.dilation_h != o.dilation_w)
      fail_op(i, "unequal strides or dilations along H and W are not supported");
    const int h = x.shape[1], wd = x.shape[2], cin = x.shape[3];
    // Filters: CONV_2D [O, kh, kw, I]; DEPTHWISE_CONV_2D [1, kh, kw, C * M].
    const int kh = w.shape[1], kw = w.shape[2];
    const int cout = depthwise ? w.shape[3] : w.shape[0];
    if (kh <= 0 || kw <= 0 || cout <= 0 || cin <= 0) fail_op(i, "empty filter or input");
    int groups = 1;
    if (depthwise) {
      if (w.shape[0] != 1) fail_op(i, "depthwise filter " + shape_str(w.shape) + " does not start with 1");
      const int m = o.depth_multiplier > 0 ? o.depth_multiplier : cout / cin;
      if (static_cast<long long>(cin) * m != cout)
        fail_op(i, "depthwise filter " + shape_str(w.shape) + " does not fit " + std::to_string(cin) +
                       " channels x multiplier " + std::to_string(m));
      groups = cin;
    } else if (w.shape[3] != cin) {
      fail_op(i, "filter " + shape_str(w.shape) + " does not fit input " + shape_str(x.shape));
    }
    const std::vector<float> f = constant(i, op.inputs[1]);
    std::vector<float> bias;
    if (op.inputs.size() == 3 && op.inputs[2] >= 0) {
      bias = constant(i, op.inputs[2]);
      if (bias.size() != static_cast<std::size_t>(cout)) fail_op(i, "bias size does not match the output channels");
    }
    // To OIHW: CONV_2D (o,y,x,i) -> (o,i,y,x); DEPTHWISE (0,y,x,c) -> (c,0,y,x).
    const int ipg = depthwise ? 1 : cin;
    std::vector<float> oihw(f.size());
    for (int oc = 0; oc < cout; ++oc)
      for (int yy = 0; yy < kh; ++yy)
        for (int xx = 0; xx < kw; ++xx)
          for (int ic = 0; ic < ipg; ++ic) {
            const std::size_t src = depthwise ? (static_cast<std::size_t>(yy) * kw + xx) * cout + oc
                                              : ((static_cast<std::size_t>(oc) * kh + yy) * kw + xx) * cin + ic;
            oihw[((static_cast<std::size_t>(oc) * ipg + ic) * kh + yy) * kw + xx] = f[src];
          }
    const int s = o.stride_h, d = o.dilation_h;
    // TF SAME pads with the dilated (effective) kernel extent; the smaller half goes top/left.
    const Pad pad = o.padding == tfl::Padding::kSame
                        ? Pad::tf_same(h, wd, (kh - 1) * d + 1, (kw - 1) * d + 1, s, s)
                        : Pad::valid();
    const int oh = model::conv_out_size(h, kh, s, pad.top, pad.bottom, d);
    const int ow = model::conv_out_size(wd, kw, s, pad.left, pad.right, d);
    if (y.shape[0] != x.shape[0] || y.shape[1] != oh || y.shape[2] != ow || y.shape[3] != cout)
      fail_op(i, "output " + shape_str(y.shape) + " disagrees with the computed [" + std::to_string(x.shape[0]) + "," +
                     std::to_string(oh) + "," + std::to_string(ow) + "," + std::to_string(cout) + "]");
    const model::ConvWeights cw = model::conv_weights_oihw(oihw, cout, ipg, kh, kw, bias);
    Node n = b_.conv(name(i), act(i, op.inputs[0]), cw, ConvSpec{.stride = s, .pad = pad, .groups = groups, .dilation = d});
    return activation(i, n, o.activation);
  }

  // ADD, SUB, MUL: two activations of one shape, or an activation and a per-channel constant.
  Node binary(std::size_t i) {
    const auto& op = g_.operators[i];
    if (op.inputs.size() != 2) fail_op(i, "expects 2 inputs");
    const int a = op.inputs[0], c = op.inputs[1];
    const bool ca = is_const(a), cc = is_const(c);
    const bool add = op.is(tfl::BuiltinOp::kAdd), sub = op.is(tfl::BuiltinOp::kSub);
    Node n;
    if (!ca && !cc) {
      if (tensor(i, a).shape != tensor(i, c).shape)
        fail_op(i, "broadcasting " + shape_str(tensor(i, a).shape) + " with " + shape_str(tensor(i, c).shape) +
                       " is not supported");
      cv::dnn::LayerParams p;
      p.set("operation", add || sub ? "sum" : "prod");
      if (sub) {
        const float coeff[2] = {1.f, -1.f};
        p.set("coeff", cv::dnn::DictValue::arrayReal(coeff, 2));
      }
      n = b_.add(name(i), "Eltwise", std::move(p), {act(i, a), act(i, c)});
    } else if (ca != cc) {
      const int x = ca ? c : a, k = ca ? a : c;
      std::vector<float> v = channel_constant(i, k, x);
      std::vector<float> scale(v.size(), 1.f), shift(v.size(), 0.f);
      if (add) {
        shift = v;
      } else if (sub) {
        // x - k, or k - x when the constant comes first.
        for (std::size_t j = 0; j < v.size(); ++j) {
          if (ca) scale[j] = -1.f, shift[j] = v[j];
          else shift[j] = -v[j];
        }
      } else {
        scale = v;
        shift.clear();
      }
      n = b_.scale(name(i), act(i, x), scale, shift);
    } else {
      fail_op(i, "both inputs are constants");
    }
    return activation(i, n, op.options.activation);
  }

  Node reshape(std::size_t i) {
    const auto& op = g_.operators[i];
    if (op.inputs.empty()) fail_op(i, "no input");
    const tfl::Tensor& x = tensor(i, op.inputs[0]);
    const tfl::Tensor& y = tensor(i, op.outputs.at(0));
    Node in = act(i, op.inputs[0]);
    if (x.shape == y.shape) return in;
    if (x.shape.size() == 4 && y.shape.size() == 2 && y.shape[0] == x.shape[0] &&
        static_cast<long long>(y.shape[1]) == static_cast<long long>(x.shape[1]) * x.shape[2] * x.shape[3]) {
      // TFLite flattens NHWC; the net is NCHW, so only a 1 x 1 map flattens in the same order directly.
      if (x.shape[1] != 1 || x.shape[2] != 1) in = b_.permute(name(i) + "/nhwc", in, {0, 2, 3, 1});
      return b_.flatten(name(i), in, 1);
    }
    fail_op(i, "reshape " + shape_str(x.shape) + " -> " + shape_str(y.shape) + " is not supported");
  }

  std::size_t translate(std::size_t i) {
    const auto& op = g_.operators[i];
    if (op.outputs.size() != 1) fail_op(i, "expected exactly one output");
    if (const int c = prelu_idiom(i); c >= 0) {
      std::vector<float> slope = channel_constant(i + 3, c, in_of(i, 0));
      for (float& s : slope) s *= 2.f;  // relu(x) + c (x - |x|) = x for x >= 0, 2 c x below
      const Node n = b_.prelu(name(i) + "_PRELU", act(i, in_of(i, 0)), slope);
      nodes_[out_of(i + 4)] = n;
      return 5;
    }
    switch (static_cast<tfl::BuiltinOp>(op.code)) {
      case tfl::BuiltinOp::kConv2D: set(i, conv(i, false)); break;
      case tfl::BuiltinOp::kDepthwiseConv2D: set(i, conv(i, true)); break;
      case tfl::BuiltinOp::kAdd:
      case tfl::BuiltinOp::kSub:
      case tfl::BuiltinOp::kMul: set(i, binary(i)); break;
      case tfl::BuiltinOp::kRelu: set(i, b_.relu(name(i), act(i, op.inputs.at(0)))); break;
      case tfl::BuiltinOp::kRelu6: set(i, b_.relu6(name(i), act(i, op.inputs.at(0)))); break;
      case tfl::BuiltinOp::kAbs: set(i, b_.add(name(i), "AbsVal", {}, {act(i, op.inputs.at(0))})); break;
      case tfl::BuiltinOp::kReshape: set(i, reshape(i)); break;
      default: fail_op(i, "operator type is not supported by this translator");
    }
    return 1;
  }

  NetBuilder& b_;
  const tfl::Graph& g_;
  std::vector<std::optional<Node>> nodes_;  // by tensor index
  std::vector<int> uses_;                   // consumers per tensor (graph outputs count as one)
};

class MobileFaceNetEmbedder final : public Embedder {
 public:
  MobileFaceNetEmbedder(cv::dnn::Net net, int threads) : net_(std::move(net)), threads_(threads) {}

  const std::string& model_id() const override { return model_id_; }
  int chip_size() const override { return kMobileFaceNetChipSize; }

  Result<Embedding> embed(const cv::Mat& chip) override {
    FG_ASSIGN_OR_RETURN(std::vector<Embedding> one, embed_batch(std::span<const cv::Mat>(&chip, 1)));
    return std::move(one.front());
  }

  Result<std::vector<Embedding>> embed_batch(std::span<const cv::Mat> chips) override {
    FG_ASSIGN_OR_RETURN(std::vector<cv::Mat> prepared, prepare_chips(chips, prepare_mobilefacenet_chip));
    std::vector<Embedding> out;
    out.reserve(chips.size());
    try {
      if (threads_ > 0) cv::setNumThreads(threads_);  // process-wide in OpenCV: applied per call
      const model::InputSpec spec{.size = {kMobileFaceNetChipSize, kMobileFaceNetChipSize},
                                  .mean_rgb = {kMobileFaceNetMean, kMobileFaceNetMean, kMobileFaceNetMean},
                                  .scale = kMobileFaceNetScale};
      for (std::size_t start = 0; start < prepared.size(); start += kMaxForwardBatch) {
        const std::size_t n = std::min(kMaxForwardBatch, prepared.size() - start);
        net_.setInput(model::input_blob(std::span<const cv::Mat>(prepared).subspan(start, n), spec));
        cv::Mat result = net_.forward();
        if (result.dims != 2 || result.rows != static_cast<int>(n) || result.cols != kMobileFaceNetDescriptorSize)
          return make_error(ErrorCode::kInternal, "MobileFaceNet: unexpected output shape");
        for (std::size_t i = 0; i < n; ++i) {
          const float* row = result.ptr<float>(static_cast<int>(i));
          std::vector<float> v(row, row + kMobileFaceNetDescriptorSize);
          double norm = 0;
          for (float f : v) norm += static_cast<double>(f) * f;
          norm = std::sqrt(norm);
          if (!(norm > 0) || !std::isfinite(norm))
            return make_error(ErrorCode::kInternal, "MobileFaceNet: degenerate embedding for chip " + std::to_string(start + i));
          for (float& f : v) f = static_cast<float>(f / norm);
          out.push_back(Embedding{model_id_, std::move(v)});
        }
      }
    } catch (const std::exception& e) {
      return make_error(ErrorCode::kInternal, std::string("MobileFaceNet forward failed: ") + e.what());
    }
    return out;
  }

 private:
  cv::dnn::Net net_;
  int threads_ = 0;
  std::string model_id_ = kMobileFaceNetModelId;
};

}  // namespace

Result<cv::dnn::Net> build_tflite_net(const model::tflite::Graph& graph) {
  return model::build_net("TFLite graph '" + graph.name + "'", [&](NetBuilder& b) { Translator(b, graph).run(); });
}

Result<cv::Mat> prepare_mobilefacenet_chip(const cv::Mat& chip, std::size_t index) {
  FG_ASSIGN_OR_RETURN(cv::Mat bgr, chip_to_bgr(chip, index));
  if (bgr.rows == kMobileFaceNetChipSize && bgr.cols == kMobileFaceNetChipSize) return bgr;
  cv::Mat resized;
  const bool shrink = bgr.rows > kMobileFaceNetChipSize || bgr.cols > kMobileFaceNetChipSize;
  cv::resize(bgr, resized, {kMobileFaceNetChipSize, kMobileFaceNetChipSize}, 0, 0,
             shrink ? cv::INTER_AREA : cv::INTER_LINEAR);
  return resized;
}

Result<std::unique_ptr<Embedder>> create_mobilefacenet(const std::filesystem::path& tflite,
                                                       const EmbedderOptions& options) {
  FG_ASSIGN_OR_RETURN(model::tflite::Model m, model::tflite::load_model(tflite));
  const auto& g = m.graph();
  if (g.inputs.size() != 1 || g.outputs.empty())
    return make_error(ErrorCode::kModelError, "MobileFaceNet: the graph needs one input and an output");
  const auto& in = g.tensors[g.inputs[0]].shape;
  const auto& out = g.tensors[g.outputs[0]].shape;
  if (in.size() != 4 || in[1] != kMobileFaceNetChipSize || in[2] != kMobileFaceNetChipSize || in[3] != 3 ||
      out.size() != 2 || out[1] != kMobileFaceNetDescriptorSize)
    return make_error(ErrorCode::kModelError, "MobileFaceNet: graph maps " + shape_str(in) + " to " + shape_str(out) +
                                                  ", expected [N,112,112,3] -> [N,192] (" + tflite.string() + ")");
  auto net = build_tflite_net(g);
  if (!net) return make_error(ErrorCode::kModelError, "MobileFaceNet: " + net.error().message);
  return std::unique_ptr<Embedder>(std::make_unique<MobileFaceNetEmbedder>(std::move(*net), options.threads));
}

}  // namespace faceguard::embed
