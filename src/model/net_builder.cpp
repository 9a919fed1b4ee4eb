#include "model/net_builder.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace faceguard::model {
namespace {

std::string shape_str(std::span<const int> s) {
  std::string r = "[";
  for (std::size_t i = 0; i < s.size(); ++i) r += (i ? "," : "") + std::to_string(s[i]);
  return r + "]";
}

[[noreturn]] void fail(const std::string& msg) { throw BuildError(msg); }

cv::Mat row_vector(std::span<const float> v) {
  cv::Mat m(1, static_cast<int>(v.size()), CV_32F);
  if (!v.empty()) std::memcpy(m.ptr<float>(), v.data(), v.size() * sizeof(float));
  return m;
}

cv::Mat bias_from(const Tensor* bias, int out, const char* what) {
  if (!bias) return {};
  if (bias->shape.size() != 1 || bias->shape[0] != out)
    fail(std::string(what) + ": bias '" + bias->name + "' has shape " + shape_str(bias->shape) + ", expected [" +
         std::to_string(out) + "]");
  return row_vector(bias->data);
}

void set_pad(cv::dnn::LayerParams& p, const Pad& pad) {
  if (!pad.mode.empty()) {
    p.set("pad_mode", pad.mode);
    return;
  }
  if (pad.top < 0 || pad.left < 0 || pad.bottom < 0 || pad.right < 0) fail("negative padding");
  p.set("pad_t", pad.top);
  p.set("pad_l", pad.left);
  p.set("pad_b", pad.bottom);
  p.set("pad_r", pad.right);
}

cv::dnn::DictValue int_list(std::initializer_list<int> v) {
  std::vector<int> tmp(v);
  return cv::dnn::DictValue::arrayInt(tmp.data(), static_cast<int>(tmp.size()));
}

}  // namespace

const Tensor& require(const WeightMap& weights, std::string_view name, std::initializer_list<int> shape) {
  std::vector<int> expected(shape);
  auto t = weights.get(name, expected);
  if (!t) fail(t.error().message);
  return **t;
}

// ---- conversions ---------------------------------------------------------------------------------------

ConvWeights conv_weights_hwio(const Tensor& filter, const Tensor* bias) {
  if (filter.shape.size() != 4) fail("conv filter '" + filter.name + "' is not 4-D: " + shape_str(filter.shape));
  const int kh = filter.shape[0], kw = filter.shape[1], in = filter.shape[2], out = filter.shape[3];
  const int sizes[4] = {out, in, kh, kw};
  ConvWeights w;
  w.filter.create(4, sizes, CV_32F);
  float* dst = w.filter.ptr<float>();
  const float* src = filter.data.data();
  // HWIO index ((y*kw + x)*in + i)*out + o  ->  OIHW index ((o*in + i)*kh + y)*kw + x
  for (int y = 0; y < kh; ++y)
    for (int x = 0; x < kw; ++x)
      for (int i = 0; i < in; ++i)
        for (int o = 0; o < out; ++o)
          dst[((static_cast<std::size_t>(o) * in + i) * kh + y) * kw + x] =
              src[((static_cast<std::size_t>(y) * kw + x) * in + i) * out + o];
  w.bias = bias_from(bias, out, "conv");
  return w;
}

ConvWeights depthwise_weights_hwcm(const Tensor& filter, const Tensor* bias) {
  if (filter.shape.size() != 4)
    fail("depthwise filter '" + filter.name + "' is not 4-D: " + shape_str(filter.shape));
  const int kh = filter.shape[0], kw = filter.shape[1], c = filter.shape[2], m = filter.shape[3];
  const int out = c * m;
  const int sizes[4] = {out, 1, kh, kw};
  ConvWeights w;
  w.filter.create(4, sizes, CV_32F);
  float* dst = w.filter.ptr<float>();
  const float* src = filter.data.data();
  // TF depthwise output channel is c*M + m; with group = C OpenCV's group c owns outputs c*M .. c*M+M-1.
  for (int y = 0; y < kh; ++y)
    for (int x = 0; x < kw; ++x)
      for (int ci = 0; ci < c; ++ci)
        for (int mi = 0; mi < m; ++mi)
          dst[(static_cast<std::size_t>(ci * m + mi) * kh + y) * kw + x] =
              src[((static_cast<std::size_t>(y) * kw + x) * c + ci) * m + mi];
  w.bias = bias_from(bias, out, "depthwise conv");
  return w;
}

ConvWeights conv_weights_oihw(std::span<const float> filter, int out, int in_per_group, int kh, int kw,
                              std::span<const float> bias) {
  if (out <= 0 || in_per_group <= 0 || kh <= 0 || kw <= 0) fail("conv_weights_oihw: non-positive dimension");
  const std::size_t n = static_cast<std::size_t>(out) * in_per_group * kh * kw;
  if (filter.size() != n) fail("conv_weights_oihw: filter has " + std::to_string(filter.size()) + " values, expected " +
                               std::to_string(n));
  if (!bias.empty() && bias.size() != static_cast<std::size_t>(out)) fail("conv_weights_oihw: bias size mismatch");
  const int sizes[4] = {out, in_per_group, kh, kw};
  ConvWeights w;
  w.filter.create(4, sizes, CV_32F);
  std::memcpy(w.filter.ptr<float>(), filter.data(), n * sizeof(float));
  if (!bias.empty()) w.bias = row_vector(bias);
  return w;
}

void fold_scale_shift(ConvWeights& w, std::span<const float> scale, std::span<const float> shift) {
  const int out = w.out_channels();
  if (scale.size() != static_cast<std::size_t>(out) || (!shift.empty() && shift.size() != scale.size()))
    fail("fold_scale_shift: " + std::to_string(scale.size()) + " scales for " + std::to_string(out) + " channels");
  const std::size_t per = w.filter.total() / static_cast<std::size_t>(out);
  float* f = w.filter.ptr<float>();
  for (int o = 0; o < out; ++o)
    for (std::size_t k = 0; k < per; ++k) f[o * per + k] *= scale[o];
  if (w.bias.empty()) w.bias = cv::Mat::zeros(1, out, CV_32F);
  float* b = w.bias.ptr<float>();
  for (int o = 0; o < out; ++o) b[o] = b[o] * scale[o] + (shift.empty() ? 0.f : shift[o]);
}

ScaleShift batch_norm_scale_shift(std::span<const float> mean, std::span<const float> variance,
                                  std::span<const float> gamma, std::span<const float> beta, float epsilon) {
  const std::size_t c = mean.size();
  if (variance.size() != c || beta.size() != c || (!gamma.empty() && gamma.size() != c))
    fail("batch_norm: mean/variance/gamma/beta sizes differ");
  ScaleShift r;
  r.scale.resize(c);
  r.shift.resize(c);
  for (std::size_t i = 0; i < c; ++i) {
    const float s = (gamma.empty() ? 1.f : gamma[i]) / std::sqrt(variance[i] + epsilon);
    r.scale[i] = s;
    r.shift[i] = beta[i] - mean[i] * s;
  }
  return r;
}

cv::Mat dense_weights_tf(const Tensor& weights) {
  if (weights.shape.size() != 2) fail("dense weights '" + weights.name + "' are not 2-D: " + shape_str(weights.shape));
  const int in = weights.shape[0], out = weights.shape[1];
  cv::Mat src(in, out, CV_32F, const_cast<float*>(weights.data.data()));
  cv::Mat dst;
  cv::transpose(src, dst);  // out x in
  return dst;
}

// ---- padding / sizes -------------------------------------------------------------------------------------

Pad Pad::tf_same(int in_h, int in_w, int k_h, int k_w, int s_h, int s_w) {
  if (in_h <= 0 || in_w <= 0 || k_h <= 0 || k_w <= 0 || s_h <= 0 || s_w <= 0) fail("Pad::tf_same: bad argument");
  auto total = [](int in, int k, int s) {
    const int out = (in + s - 1) / s;
    return std::max((out - 1) * s + k - in, 0);
  };
  const int th = total(in_h, k_h, s_h), tw = total(in_w, k_w, s_w);
  return Pad{th / 2, tw / 2, th - th / 2, tw - tw / 2, {}};
}

int conv_out_size(int in, int kernel, int stride, int pad_begin, int pad_end, int dilation) {
  const int eff = (kernel - 1) * dilation + 1;
  const int span = in + pad_begin + pad_end - eff;
  return span < 0 ? 0 : span / stride + 1;
}

// ---- NetBuilder ------------------------------------------------------------------------------------------

NetBuilder::NetBuilder(std::vector<std::string> input_names) {
  if (input_names.empty()) input_names.emplace_back("input");
  net_.setInputsNames(input_names);
  names_.push_back("_input");
}

Node NetBuilder::add(const std::string& name, const std::string& type, cv::dnn::LayerParams params,
                     std::initializer_list<Node> inputs) {
  return add(name, type, std::move(params), std::span<const Node>(inputs.begin(), inputs.size()));
}

Node NetBuilder::add(const std::string& name, const std::string& type, cv::dnn::LayerParams params,
                     std::span<const Node> inputs) {
  if (name.empty()) fail("layer name is empty");
  if (std::find(names_.begin(), names_.end(), name) != names_.end()) fail("duplicate layer name '" + name + "'");
  if (inputs.empty()) fail("layer '" + name + "' has no inputs");
  for (const Node& in : inputs)
    if (in.layer < 0 || in.layer >= static_cast<int>(names_.size()))
      fail("layer '" + name + "' connects to unknown layer id " + std::to_string(in.layer));
  params.name = name;
  params.type = type;
  const int id = net_.addLayer(name, type, params);
  if (id < 0) fail("OpenCV refused layer '" + name + "' of type " + type);
  for (std::size_t i = 0; i < inputs.size(); ++i) net_.connect(inputs[i].layer, inputs[i].port, id, static_cast<int>(i));
  if (static_cast<int>(names_.size()) <= id) names_.resize(id + 1);
  names_[id] = name;
  output_ = Node{id, 0};
  return output_;
}

Node NetBuilder::conv(const std::string& name, Node in, const ConvWeights& w, const ConvSpec& spec) {
  if (w.filter.empty() || w.filter.dims != 4 || w.filter.type() != CV_32F) fail("conv '" + name + "': no OIHW filter");
  if (spec.stride <= 0 || spec.groups <= 0 || spec.dilation <= 0) fail("conv '" + name + "': bad stride/groups");
  if (w.out_channels() % spec.groups != 0) fail("conv '" + name + "': output channels not divisible by groups");
  cv::dnn::LayerParams p;
  p.set("kernel_h", w.kernel_h());
  p.set("kernel_w", w.kernel_w());
  p.set("stride_h", spec.stride);
  p.set("stride_w", spec.stride);
  p.set("dilation_h", spec.dilation);
  p.set("dilation_w", spec.dilation);
  p.set("group", spec.groups);
  p.set("num_output", w.out_channels());
  // OpenCV 4.6 convolutions refuse asymmetric pads ("Unsupported asymmetric padding"): the asymmetric
  // remainder goes into a zero Padding layer in front, the symmetric part stays in the conv.
  Pad pad = spec.pad;
  if (pad.mode.empty() && (pad.top != pad.bottom || pad.left != pad.right)) {
    const int ph = std::min(pad.top, pad.bottom), pw = std::min(pad.left, pad.right);
    in = this->pad(name + "/pad", in, Pad{pad.top - ph, pad.left - pw, pad.bottom - ph, pad.right - pw, {}});
    pad = Pad{ph, pw, ph, pw, {}};
  }
  set_pad(p, pad);
  p.blobs.push_back(w.filter.clone());
  const bool has_bias = !w.bias.empty();
  p.set("bias_term", has_bias);
  if (has_bias) {
    if (static_cast<int>(w.bias.total()) != w.out_channels()) fail("conv '" + name + "': bias size mismatch");
    p.blobs.push_back(w.bias.reshape(1, 1).clone());
  }
  return add(name, "Convolution", std::move(p), {in});
}

Node NetBuilder::separable_conv(const std::string& name, Node in, const Tensor& depthwise, const Tensor& pointwise,
                                const Tensor* bias, const ConvSpec& depthwise_spec) {
  if (depthwise.shape.size() != 4 || pointwise.shape.size() != 4 || pointwise.shape[0] != 1 ||
      pointwise.shape[1] != 1 || pointwise.shape[2] != depthwise.shape[2] * depthwise.shape[3])
    fail("separable conv '" + name + "': depthwise " + shape_str(depthwise.shape) + " and pointwise " +
         shape_str(pointwise.shape) + " do not fit together");
  ConvSpec dw = depthwise_spec;
  dw.groups = depthwise.shape[2];
  Node x = conv(name + "/depthwise", in, depthwise_weights_hwcm(depthwise, nullptr), dw);
  return conv(name + "/pointwise", x, conv_weights_hwio(pointwise, bias), ConvSpec{});
}

Node NetBuilder::scale(const std::string& name, Node in, std::span<const float> scale, std::span<const float> shift) {
  if (scale.empty() || (!shift.empty() && shift.size() != scale.size())) fail("scale '" + name + "': size mismatch");
  cv::dnn::LayerParams p;
  p.set("axis", 1);
  p.set("bias_term", !shift.empty());
  p.blobs.push_back(row_vector(scale));
  if (!shift.empty()) p.blobs.push_back(row_vector(shift));
  return add(name, "Scale", std::move(p), {in});
}

Node NetBuilder::batch_norm(const std::string& name, Node in, std::span<const float> mean,
                            std::span<const float> variance, std::span<const float> gamma,
                            std::span<const float> beta, float epsilon) {
  const ScaleShift ss = batch_norm_scale_shift(mean, variance, gamma, beta, epsilon);
  return scale(name, in, ss.scale, ss.shift);
}

Node NetBuilder::relu(const std::string& name, Node in) { return add(name, "ReLU", {}, {in}); }

Node NetBuilder::relu6(const std::string& name, Node in) {
  cv::dnn::LayerParams p;
  p.set("min_value", 0.f);
  p.set("max_value", 6.f);
  return add(name, "ReLU6", std::move(p), {in});
}

Node NetBuilder::leaky_relu(const std::string& name, Node in, float negative_slope) {
  cv::dnn::LayerParams p;
  p.set("negative_slope", negative_slope);
  return add(name, "ReLU", std::move(p), {in});
}

Node NetBuilder::prelu(const std::string& name, Node in, std::span<const float> slopes) {
  if (slopes.empty()) fail("prelu '" + name + "': no slopes");
  cv::dnn::LayerParams p;
  p.blobs.push_back(row_vector(slopes));
  return add(name, "PReLU", std::move(p), {in});
}

Node NetBuilder::sigmoid(const std::string& name, Node in) { return add(name, "Sigmoid", {}, {in}); }

namespace {
cv::dnn::LayerParams pool_params(const char* type, const PoolSpec& spec) {
  if (spec.kernel <= 0 || spec.stride <= 0) fail("pooling: bad kernel/stride");
  cv::dnn::LayerParams p;
  p.set("pool", type);
  p.set("kernel_h", spec.kernel);
  p.set("kernel_w", spec.kernel);
  p.set("stride_h", spec.stride);
  p.set("stride_w", spec.stride);
  set_pad(p, spec.pad);
  p.set("ceil_mode", false);  // TF sizes are floor((in + pads - k) / s) + 1; OpenCV defaults to ceil
  p.set("ave_pool_padded_area", spec.count_padding);
  return p;
}
}  // namespace

Node NetBuilder::max_pool(const std::string& name, Node in, const PoolSpec& spec) {
  return add(name, "Pooling", pool_params("max", spec), {in});
}

Node NetBuilder::ave_pool(const std::string& name, Node in, const PoolSpec& spec) {
  return add(name, "Pooling", pool_params("ave", spec), {in});
}

Node NetBuilder::global_ave_pool(const std::string& name, Node in) {
  cv::dnn::LayerParams p;
  p.set("pool", "ave");
  p.set("global_pooling", true);
  return add(name, "Pooling", std::move(p), {in});
}

Node NetBuilder::global_max_pool(const std::string& name, Node in) {
  cv::dnn::LayerParams p;
  p.set("pool", "max");
  p.set("global_pooling", true);
  return add(name, "Pooling", std::move(p), {in});
}

Node NetBuilder::sum(const std::string& name, std::initializer_list<Node> inputs, bool zero_extend_channels) {
  return sum(name, std::span<const Node>(inputs.begin(), inputs.size()), zero_extend_channels);
}

Node NetBuilder::sum(const std::string& name, std::span<const Node> inputs, bool zero_extend_channels) {
  if (inputs.size() < 2) fail("sum '" + name + "' needs at least two inputs");
  cv::dnn::LayerParams p;
  p.set("operation", "sum");
  if (zero_extend_channels) p.set("output_channels_mode", "max_input_channels");
  return add(name, "Eltwise", std::move(p), inputs);
}

Node NetBuilder::product(const std::string& name, std::initializer_list<Node> inputs) {
  if (inputs.size() < 2) fail("product '" + name + "' needs at least two inputs");
  cv::dnn::LayerParams p;
  p.set("operation", "prod");
  return add(name, "Eltwise", std::move(p), inputs);
}

Node NetBuilder::pad(const std::string& name, Node in, const Pad& pad, float value) {
  if (!pad.mode.empty()) fail("pad '" + name + "': needs explicit values");
  cv::dnn::LayerParams p;
  // (before, after) per axis of N x C x H x W.
  p.set("paddings", int_list({0, 0, 0, 0, pad.top, pad.bottom, pad.left, pad.right}));
  p.set("value", value);
  p.set("type", "constant");
  return add(name, "Padding", std::move(p), {in});
}

Node NetBuilder::concat(const std::string& name, std::initializer_list<Node> inputs, int axis) {
  cv::dnn::LayerParams p;
  p.set("axis", axis);
  return add(name, "Concat", std::move(p), inputs);
}

Node NetBuilder::flatten(const std::string& name, Node in, int axis) {
  cv::dnn::LayerParams p;
  p.set("axis", axis);
  return add(name, "Flatten", std::move(p), {in});
}

Node NetBuilder::permute(const std::string& name, Node in, std::initializer_list<int> order) {
  cv::dnn::LayerParams p;
  p.set("order", int_list(order));
  return add(name, "Permute", std::move(p), {in});
}

Node NetBuilder::reshape(const std::string& name, Node in, std::initializer_list<int> shape) {
  cv::dnn::LayerParams p;
  p.set("dim", int_list(shape));
  return add(name, "Reshape", std::move(p), {in});
}

Node NetBuilder::inner_product(const std::string& name, Node in, const cv::Mat& weights, const cv::Mat& bias) {
  if (weights.dims != 2 || weights.type() != CV_32F || weights.empty()) fail("inner product '" + name + "': bad weights");
  const int out = weights.rows;
  cv::dnn::LayerParams p;
  p.set("num_output", out);
  p.set("axis", 1);
  p.set("bias_term", !bias.empty());
  p.blobs.push_back(weights.clone());
  if (!bias.empty()) {
    if (static_cast<int>(bias.total()) != out) fail("inner product '" + name + "': bias size mismatch");
    p.blobs.push_back(bias.reshape(1, 1).clone());
  }
  return add(name, "InnerProduct", std::move(p), {in});
}

Node NetBuilder::dense_tf(const std::string& name, Node in, const Tensor& weights, const Tensor* bias) {
  cv::Mat w = dense_weights_tf(weights);
  return inner_product(name, in, w, bias_from(bias, w.rows, "dense"));
}

const std::string& NetBuilder::layer_name(Node n) const {
  if (n.layer < 0 || n.layer >= static_cast<int>(names_.size())) fail("layer_name: unknown layer id");
  return names_[n.layer];
}

cv::dnn::Net NetBuilder::finish() {
  if (names_.size() < 2) fail("the net has no layers");
  // Net::forward() without a name returns the last layer added: make the marked output the last one.
  if (output_.layer != static_cast<int>(names_.size()) - 1 || output_.port != 0)
    add("_output", "Identity", {}, {output_});
  net_.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
  net_.setPreferableTarget(cv::dnn::DNN_TARGET_CPU);
  return net_;
}

Result<cv::dnn::Net> build_net(const std::string& what, const std::function<void(NetBuilder&)>& body,
                               std::vector<std::string> input_names) {
  try {
    NetBuilder b(std::move(input_names));
    body(b);
    return b.finish();
  } catch (const cv::Exception& e) {
    return make_error(ErrorCode::kModelError, what + ": OpenCV: " + e.what());
  } catch (const std::exception& e) {
    return make_error(ErrorCode::kModelError, what + ": " + e.what());
  }
}

// ---- net input ---------------------------------------------------------------------------------------------

cv::Mat input_blob(std::span<const cv::Mat> images, const InputSpec& spec) {
  if (images.empty()) fail("input_blob: no images");
  const int n = static_cast<int>(images.size()), h = spec.size.height, w = spec.size.width;
  if (h <= 0 || w <= 0) fail("input_blob: bad size");
  const int nchw[4] = {n, 3, h, w};
  const int nhwc[4] = {n, h, w, 3};
  cv::Mat blob(4, spec.nhwc ? nhwc : nchw, CV_32F);
  float* out = blob.ptr<float>();
  const float mean[3] = {static_cast<float>(spec.mean_rgb[0]), static_cast<float>(spec.mean_rgb[1]),
                         static_cast<float>(spec.mean_rgb[2])};
  const float scale = static_cast<float>(spec.scale);
  const std::size_t plane = static_cast<std::size_t>(h) * w;
  for (int i = 0; i < n; ++i) {
    const cv::Mat& img = images[i];
    if (img.rows != h || img.cols != w) fail("input_blob: image " + std::to_string(i) + " is not " +
                                             std::to_string(w) + "x" + std::to_string(h));
    if (img.type() != CV_8UC3 && img.type() != CV_32FC3) fail("input_blob: image is not CV_8UC3 or CV_32FC3");
    float* base = out + static_cast<std::size_t>(i) * 3 * plane;
    for (int y = 0; y < h; ++y) {
      for (int x = 0; x < w; ++x) {
        float px[3];
        if (img.type() == CV_8UC3) {
          const cv::Vec3b v = img.at<cv::Vec3b>(y, x);
          px[0] = v[0], px[1] = v[1], px[2] = v[2];
        } else {
          const cv::Vec3f v = img.at<cv::Vec3f>(y, x);
          px[0] = v[0], px[1] = v[1], px[2] = v[2];
        }
        for (int c = 0; c < 3; ++c) {
          const float v = (px[spec.bgr_input ? 2 - c : c] - mean[c]) * scale;  // c is the RGB channel
          const std::size_t at = static_cast<std::size_t>(y) * w + x;
          if (spec.nhwc) base[at * 3 + c] = v;
          else base[c * plane + at] = v;
        }
      }
    }
  }
  return blob;
}

cv::Mat resize_bilinear_tf(const cv::Mat& src, cv::Size size) {
  if (src.empty() || size.width <= 0 || size.height <= 0) fail("resize_bilinear_tf: empty input or size");
  cv::Mat f;
  src.convertTo(f, CV_MAKETYPE(CV_32F, src.channels()));
  const int ch = f.channels(), ih = f.rows, iw = f.cols, oh = size.height, ow = size.width;
  cv::Mat dst(oh, ow, CV_MAKETYPE(CV_32F, ch));
  // tfjs-backend-cpu ResizeBilinear with alignCorners = halfPixelCenters = false, in double like JS.
  const double ry = static_cast<double>(ih) / oh, rx = static_cast<double>(iw) / ow;
  std::vector<int> x0(ow), x1(ow);
  std::vector<double> fx(ow);
  for (int x = 0; x < ow; ++x) {
    const double s = rx * x;
    x0[x] = std::max(0, static_cast<int>(std::floor(s)));
    x1[x] = std::min(iw - 1, static_cast<int>(std::ceil(s)));
    fx[x] = s - x0[x];
  }
  for (int y = 0; y < oh; ++y) {
    const double s = ry * y;
    const int y0 = std::max(0, static_cast<int>(std::floor(s)));
    const int y1 = std::min(ih - 1, static_cast<int>(std::ceil(s)));
    const double fy = s - y0;
    const float* top = f.ptr<float>(y0);
    const float* bot = f.ptr<float>(y1);
    float* o = dst.ptr<float>(y);
    for (int x = 0; x < ow; ++x) {
      for (int c = 0; c < ch; ++c) {
        const double tl = top[x0[x] * ch + c], tr = top[x1[x] * ch + c];
        const double bl = bot[x0[x] * ch + c], br = bot[x1[x] * ch + c];
        const double t = tl + (tr - tl) * fx[x];
        const double b = bl + (br - bl) * fx[x];
        o[x * ch + c] = static_cast<float>(t + (b - t) * fy);
      }
    }
  }
  return dst;
}

cv::Mat pad_to_square_tf(const cv::Mat& src, bool centred, cv::Point* offset) {
  if (src.empty()) fail("pad_to_square_tf: empty input");
  const int h = src.rows, w = src.cols;
  const int diff = std::abs(h - w);
  // face-api ops/padToSquare: Math.round(diff * 0.5) after the image, the remainder before it.
  const int after = centred ? static_cast<int>(std::floor(diff * 0.5 + 0.5)) : diff;
  const int before = diff - after;
  cv::Mat dst;
  // BORDER_ISOLATED: when src is a ROI, copyMakeBorder would otherwise fill the "padding" with the
  // parent image's pixels around the ROI instead of zeros.
  const int border = cv::BORDER_CONSTANT | cv::BORDER_ISOLATED;
  if (w < h) {
    cv::copyMakeBorder(src, dst, 0, 0, before, after, border, cv::Scalar::all(0));
    if (offset) *offset = {before, 0};
  } else if (h < w) {
    cv::copyMakeBorder(src, dst, before, after, 0, 0, border, cv::Scalar::all(0));
    if (offset) *offset = {0, before};
  } else {
    dst = src;
    if (offset) *offset = {0, 0};
  }
  return dst;
}

}  // namespace faceguard::model
