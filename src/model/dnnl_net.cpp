// cv::dnn::Net -> oneDNN primitives (see dnnl_net.hpp for what is translated and why).
//
// The translation walks the layers in id order (the importers add them in topological order; checked) and
// gives each layer output a Value: the net input (a strided view of the caller's buffer), an arena tensor
// (NHWC), an all-zero constant, a pending spatial padding of another value (folded into the next conv, or
// materialised when something else reads it), or an index map (outputs of the data-movement layers after
// the heads). A conv looks ahead along its single consumer: ReLU -> eltwise post-op; Eltwise sum -> sum
// post-op with the other operand as the destination (in place when nothing reads that operand later, else
// over a copy); ReLU after that -> another post-op. The fused layers are skipped when the walk reaches them.
#include "model/dnnl_net.hpp"

#ifdef FG_HAVE_DNNL

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <stdexcept>
#include <unordered_map>
#include <utility>

#include <oneapi/dnnl/dnnl.hpp>
#include <opencv2/dnn/all_layers.hpp>

#include "model/dnnl_common.hpp"

namespace faceguard::model {

namespace {

using dnnl::memory;
using Dims = memory::dims;
using Dt = memory::data_type;
using Tag = memory::format_tag;
using cv::dnn::MatShape;

// Index maps are computed by running OpenCV layers on float tensors of indices: a float holds every
// integer up to 2^24 exactly.
constexpr std::size_t kMaxIndexSpace = std::size_t{1} << 24;
// OpenCV's PoolingLayerImpl type codes (modules/dnn/src/layers/pooling_layer.cpp: MAX, AVE, ...).
constexpr int kPoolMax = 0;
constexpr int kPoolAve = 1;

struct Unsupported : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::string shape_str(const MatShape& s) {
  std::string r = "[";
  for (std::size_t i = 0; i < s.size(); ++i) r += (i ? "," : "") + std::to_string(s[i]);
  return r + "]";
}

std::size_t total(const MatShape& s) {
  std::size_t t = 1;
  for (int d : s) t *= static_cast<std::size_t>(d);
  return t;
}

struct Node {
  std::string name;
  std::string type;
  cv::Ptr<cv::dnn::Layer> layer;
  std::vector<int> inputs;
  std::vector<MatShape> in_shapes;
  std::vector<MatShape> out_shapes;
  std::vector<int> consumers;
  const MatShape& out() const { return out_shapes.at(0); }
};

enum class Kind { kNone, kInput, kTensor, kZero, kPadded, kIndex };

struct Value {
  Kind kind = Kind::kNone;
  memory mem;     // kInput: view of the caller's buffer; kTensor: arena memory
  memory cached;  // kInput / kZero / kPadded once materialised as an arena tensor
  int src = -1;   // kPadded: the padded value
  int pad_t = 0, pad_l = 0, pad_b = 0, pad_r = 0;
  std::vector<std::int32_t> map;  // kIndex: positions in the index space
};

struct Step {
  dnnl::primitive prim;  // null: clear `zero`
  std::unordered_map<int, memory> args;
  memory zero;
};

}  // namespace

struct DnnlNet::Impl {
  dnnl::engine eng{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{eng};
  int threads = 1;
  std::vector<Step> steps;
  std::vector<std::pair<memory, std::size_t>> arena_memories;  // memory, byte offset
  std::size_t arena_bytes = 0;
  DnnlArena arena;
  std::vector<memory> input_views;  // handles set to the caller's input at each forward
  std::size_t input_total = 0;
  std::vector<memory> owned;  // reordered weights and biases
  std::vector<float> index_space;  // plain NCHW copies of the tensors the outputs are gathered from
  std::vector<std::string> output_names;
  std::vector<MatShape> output_shapes;
  std::vector<std::vector<std::int32_t>> output_maps;
};

namespace {

class Translator {
 public:
  Translator(cv::dnn::Net& net, const std::vector<int>& input_shape, DnnlNet::Impl& impl)
      : net_(net), input_shape_(input_shape), impl_(impl) {}

  void run() {
    read_graph();
    for (const auto& name : impl_.output_names) {
      const int id = net_.getLayerId(name);
      if (id <= 0 || id >= static_cast<int>(nodes_.size())) throw Unsupported("no output layer '" + name + "'");
      output_ids_.push_back(id);
    }
    values_.assign(nodes_.size(), Value{});
    if (input_shape_.size() != 4) throw Unsupported("the net input must be 4-D, not " + shape_str(input_shape_));
    impl_.input_total = total(input_shape_);
    values_[0].kind = Kind::kInput;
    values_[0].mem = input_view(memory::desc(dims(input_shape_), Dt::f32, Tag::nchw));
    fused_.assign(nodes_.size(), false);
    for (int id = 1; id < static_cast<int>(nodes_.size()); ++id) {
      if (!nodes_[id].layer || fused_[id]) continue;
      try {
        translate(id);
      } catch (const Unsupported& e) {
        throw Unsupported("layer '" + nodes_[id].name + "' (" + nodes_[id].type + "): " + e.what());
      }
    }
    for (int id : output_ids_) {
      impl_.output_shapes.push_back(nodes_[id].out());
      impl_.output_maps.push_back(index_map(id));
    }
    finish();
  }

 private:
  // ---- the graph ---------------------------------------------------------------------------------------
  void read_graph() {
    const std::vector<cv::String> names = net_.getLayerNames();
    int max_id = 0;
    std::vector<int> ids;
    for (const auto& n : names) ids.push_back(net_.getLayerId(n));
    for (int id : ids) max_id = std::max(max_id, id);
    nodes_.resize(static_cast<std::size_t>(max_id) + 1);
    const std::string input_name = net_.getLayer(0)->name;
    for (std::size_t i = 0; i < names.size(); ++i) {
      const int id = ids[i];
      Node& n = nodes_[id];
      n.name = names[i];
      n.layer = net_.getLayer(id);
      n.type = n.layer->type;
      net_.getLayerShapes(input_shape_, id, n.in_shapes, n.out_shapes);
      if (n.out_shapes.empty()) throw Unsupported("layer '" + n.name + "' has no output");
      for (const auto& p : net_.getLayerInputs(id)) {
        const int in = p->name == input_name ? 0 : net_.getLayerId(p->name);
        if (in < 0 || in >= id) throw Unsupported("layer '" + n.name + "' is not in topological order");
        n.inputs.push_back(in);
      }
      if (n.inputs.size() != n.in_shapes.size() && n.type != "Const")
        throw Unsupported("layer '" + n.name + "': inputs and input shapes differ");
    }
    for (int id = 1; id <= max_id; ++id)
      for (int in : nodes_[id].inputs) nodes_[in].consumers.push_back(id);
  }

  bool is_output(int id) const { return std::find(output_ids_.begin(), output_ids_.end(), id) != output_ids_.end(); }

  // Whether value x (or an Identity alias of it) is read by a layer after `after` other than `except`, or
  // is a net output (read after the last step).
  bool read_after(int x, int after, int except) const {
    if (is_output(x)) return true;
    for (int r : nodes_[x].consumers) {
      if (r == except) continue;
      if (r > after) return true;
      // Aliases: an Identity shares x's memory, a Padding is read by the conv it folds into.
      if ((nodes_[r].type == "Identity" || nodes_[r].type == "Padding") && read_after(r, after, except)) return true;
    }
    return false;
  }

  static Dims dims(const MatShape& s) { return Dims(s.begin(), s.end()); }
  static Dims dims4(const MatShape& s) {
    if (s.size() != 4) throw Unsupported("expected a 4-D tensor, got " + shape_str(s));
    return dims(s);
  }

  // ---- memories and steps --------------------------------------------------------------------------------
  memory tensor(const memory::desc& md) {
    memory m(md, impl_.eng, DNNL_MEMORY_NONE);
    impl_.arena_memories.emplace_back(m, impl_.arena_bytes);
    impl_.arena_bytes += dnnl_arena_round(md.get_size());
    return m;
  }
  memory nhwc_tensor(const Dims& d) { return tensor(memory::desc(d, Dt::f32, Tag::nhwc)); }
  memory view(const memory& parent, const memory::desc& md) {
    for (const auto& [m, off] : impl_.arena_memories) {
      if (m.get() == parent.get()) {
        memory v(md, impl_.eng, DNNL_MEMORY_NONE);
        impl_.arena_memories.emplace_back(v, off);
        return v;
      }
    }
    throw Unsupported("view of a memory outside the arena");
  }
  memory input_view(const memory::desc& md) {
    memory m(md, impl_.eng, DNNL_MEMORY_NONE);
    impl_.input_views.push_back(m);
    return m;
  }
  void add_step(dnnl::primitive p, std::unordered_map<int, memory> args) {
    impl_.steps.push_back({std::move(p), std::move(args), {}});
  }
  void add_zero(const memory& m) { impl_.steps.push_back({{}, {}, m}); }
  void add_reorder(const memory& from, const memory& to, const dnnl::primitive_attr& attr = {}) {
    add_step(dnnl::reorder(dnnl::reorder::primitive_desc(impl_.eng, from.get_desc(), impl_.eng, to.get_desc(), attr)),
             {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}});
  }

  // Value `id` as an arena tensor (materialising inputs, zeros and paddings once).
  memory as_tensor(int id) {
    Value& v = values_[id];
    if (v.kind == Kind::kTensor) return v.mem;
    if (v.cached) return v.cached;
    switch (v.kind) {
      case Kind::kInput: {
        v.cached = nhwc_tensor(v.mem.get_desc().dims());
        add_reorder(v.mem, v.cached);
        break;
      }
      case Kind::kZero:
        v.cached = nhwc_tensor(dims4(nodes_[id].out()));
        add_zero(v.cached);
        break;
      case Kind::kPadded: {
        const Value& s = values_[v.src];
        const memory src = s.kind == Kind::kInput ? s.mem : as_tensor(v.src);
        const Dims sd = src.get_desc().dims();
        v.cached = nhwc_tensor({sd[0], sd[1], sd[2] + v.pad_t + v.pad_b, sd[3] + v.pad_l + v.pad_r});
        add_zero(v.cached);
        const memory inner = view(v.cached, v.cached.get_desc().submemory_desc(sd, {0, 0, v.pad_t, v.pad_l}));
        add_reorder(src, inner);
        break;
      }
      default:
        throw Unsupported("a conv-side layer reads an index-mapped (output) value");
    }
    return v.cached;
  }

  // Runs the OpenCV layer itself on `inputs` (how the parameterless layers are probed).
  std::vector<cv::Mat> run_layer(const Node& n, std::vector<cv::Mat> inputs) {
    std::vector<MatShape> outs, internals;
    n.layer->getMemoryShapes(n.in_shapes, static_cast<int>(n.out_shapes.size()), outs, internals);
    std::vector<cv::Mat> out, tmp;
    for (const auto& s : outs) out.emplace_back(s, CV_32F);
    for (const auto& s : internals) tmp.emplace_back(s, CV_32F);
    // The InputArrayOfArrays overloads (the std::vector<Mat> ones are deprecated).
    n.layer->finalize(cv::InputArrayOfArrays(inputs), cv::OutputArrayOfArrays(out));
    n.layer->forward(cv::InputArrayOfArrays(inputs), cv::OutputArrayOfArrays(out), cv::OutputArrayOfArrays(tmp));
    return out;
  }
  static cv::Mat iota(const MatShape& s, float start, float step = 1.f) {
    if (total(s) >= kMaxIndexSpace) throw Unsupported("tensor too large to probe");
    cv::Mat m(s, CV_32F);
    float* p = m.ptr<float>();
    for (std::size_t i = 0; i < m.total(); ++i) p[i] = start + step * static_cast<float>(i);
    return m;
  }

  // ---- layers --------------------------------------------------------------------------------------------
  void translate(int id) {
    const Node& n = nodes_[id];
    const std::string& t = n.type;
    if (t == "Convolution") return conv(id);
    if (t == "ReLU" || t == "ReLU6") return activation(id);
    if (t == "Eltwise") return eltwise(id);
    if (t == "Padding") return padding(id);
    if (t == "Pooling") return pooling(id);
    if (t == "Const") return constant(id);
    if (t == "Identity") {
      values_[id] = values_[n.inputs.at(0)];
      return;
    }
    if (t == "Concat") return concat(id);
    if (t == "Permute" && values_[n.inputs.at(0)].kind == Kind::kInput) return input_permute(id);
    if (t == "Permute" || t == "Reshape" || t == "Flatten") return index_layer(id);
    throw Unsupported("layer type not translated");
  }

  static bool relu_params(const Node& n, dnnl::algorithm& alg, float& a, float& b) {
    if (auto* r = dynamic_cast<cv::dnn::ReLULayer*>(n.layer.get())) {
      alg = dnnl::algorithm::eltwise_relu;
      a = r->negativeSlope;
      b = 0.f;
      return true;
    }
    if (auto* r = dynamic_cast<cv::dnn::ReLU6Layer*>(n.layer.get())) {
      alg = dnnl::algorithm::eltwise_clip;
      a = r->minValue;
      b = r->maxValue;
      return true;
    }
    return false;
  }

  // Whether the Eltwise layer adds its two inputs (probed: prod, max, sub and weighted sums give others).
  bool is_plain_sum(int id) {
    const Node& n = nodes_[id];
    if (n.inputs.size() != 2 || n.in_shapes[0] != n.in_shapes[1] || n.in_shapes[0] != n.out()) return false;
    auto it = sum_probe_.find(id);
    if (it != sum_probe_.end()) return it->second;
    cv::Mat a = iota(n.in_shapes[0], 0.f, 0.f), b = a.clone();
    float* pa = a.ptr<float>();
    float* pb = b.ptr<float>();
    for (std::size_t i = 0; i < a.total(); ++i) {
      pa[i] = 1.5f + static_cast<float>(i % 7);
      pb[i] = 0.25f + static_cast<float>(i % 5);
    }
    const cv::Mat out = run_layer(n, {a, b}).at(0);
    const float* po = out.ptr<float>();
    bool ok = out.total() == a.total();
    for (std::size_t i = 0; ok && i < a.total(); ++i) ok = po[i] == pa[i] + pb[i];
    sum_probe_[id] = ok;
    return ok;
  }

  template <typename Pd>
  static bool is_reference(const Pd& pd) {
    return std::string(pd.impl_info_str()).rfind("ref", 0) == 0;
  }

  void conv(int id) {
    const Node& n = nodes_[id];
    auto* c = dynamic_cast<cv::dnn::BaseConvolutionLayer*>(n.layer.get());
    if (!c || n.inputs.size() != 1) throw Unsupported("not a single-input convolution");
    if (c->kernel_size.size() != 2 || c->pads_begin.size() != 2 || c->pads_end.size() != 2)
      throw Unsupported("only 2-D convolutions");
    if (!c->padMode.empty() && c->padMode != "SAME" && c->padMode != "VALID")
      throw Unsupported("pad mode '" + c->padMode + "'");
    if (n.layer->blobs.empty() || n.layer->blobs[0].dims != 4 || n.layer->blobs[0].type() != CV_32F)
      throw Unsupported("weights are not a 4-D float blob");
    const cv::Mat& w = n.layer->blobs[0];
    const Dims out = dims4(n.out());
    const int oc = w.size[0], icg = w.size[1], kh = w.size[2], kw = w.size[3];
    int src_id = n.inputs[0];
    int pt = static_cast<int>(c->pads_begin[0]), pl = static_cast<int>(c->pads_begin[1]);
    int pb = static_cast<int>(c->pads_end[0]), pr = static_cast<int>(c->pads_end[1]);
    const bool folded = values_[src_id].kind == Kind::kPadded;
    if (folded) {
      const Value& p = values_[src_id];
      pt += p.pad_t, pl += p.pad_l, pb += p.pad_b, pr += p.pad_r;
      src_id = p.src;
    }
    memory src = values_[src_id].kind == Kind::kInput ? values_[src_id].mem : as_tensor(src_id);
    const Dims sd = src.get_desc().dims();
    if (sd[1] % icg != 0 || oc != out[1] || oc % (sd[1] / icg) != 0) throw Unsupported("channel counts disagree");
    const memory::dim groups = sd[1] / icg;
    const int sh = static_cast<int>(c->strides.at(0)), sw = static_cast<int>(c->strides.at(1));
    const int dh = static_cast<int>(c->dilations.at(0)), dw = static_cast<int>(c->dilations.at(1));
    if (!c->padMode.empty() && folded) throw Unsupported("pad mode '" + c->padMode + "' after a Padding");
    if (c->padMode == "VALID") {
      pt = pl = pb = pr = 0;
    } else if (c->padMode == "SAME") {
      // OpenCV's (and TF's) SAME: output ceil(in / stride), floor(total / 2) of the padding first, the rest
      // last (OpenCV stores the first part in both pads and lets the output size imply the other).
      auto same = [](memory::dim in, int k, int st, int d, int& p0, int& p1) {
        const memory::dim out = (in + st - 1) / st;
        const auto t = static_cast<int>(std::max<memory::dim>(0, (out - 1) * st + (k - 1) * d + 1 - in));
        p0 = t / 2;
        p1 = t - p0;
      };
      same(sd[2], kh, sh, dh, pt, pb);
      same(sd[3], kw, sw, dw, pl, pr);
    }
    auto extent = [](memory::dim in, int k, int s, int p0, int p1, int d) {
      return (in + p0 + p1 - (static_cast<memory::dim>(k) - 1) * d - 1) / s + 1;
    };
    if (extent(sd[2], kh, sh, pt, pb, dh) != out[2] || extent(sd[3], kw, sw, pl, pr, dw) != out[3])
      throw Unsupported("output size " + shape_str(n.out()) + " does not follow from the parameters");

    // Look ahead: ReLU, residual sum, ReLU into post-ops.
    dnnl::post_ops po;
    memory dst;
    int cur = id;
    bool summed = false;
    for (;;) {
      if (is_output(cur) || nodes_[cur].consumers.size() != 1) break;
      const int next = nodes_[cur].consumers[0];
      const Node& nn = nodes_[next];
      dnnl::algorithm alg;
      float a = 0.f, b = 0.f;
      if (relu_params(nn, alg, a, b)) {
        po.append_eltwise(1.f, alg, a, b);
      } else if (nn.type == "Eltwise" && !summed && is_plain_sum(next)) {
        const int x = nn.inputs[0] == cur ? nn.inputs[1] : nn.inputs[0];
        if (x == cur || x >= id || values_[x].kind == Kind::kIndex || values_[x].kind == Kind::kNone) break;
        const memory xm = as_tensor(x);
        if (xm.get_desc().dims() != out) break;
        if (read_after(x, id, next)) {  // others still need x: sum over a copy
          dst = tensor(xm.get_desc());
          add_reorder(xm, dst);
        } else {
          dst = xm;
        }
        po.append_sum(1.f);
        summed = true;
      } else {
        break;
      }
      fused_[next] = true;
      cur = next;
    }
    dnnl::primitive_attr attr;
    attr.set_post_ops(po);

    const Dims wd = groups == 1 ? Dims{oc, icg, kh, kw} : Dims{groups, oc / groups, icg, kh, kw};
    const memory::desc user_w(wd, Dt::f32, groups == 1 ? Tag::oihw : Tag::goihw);
    const bool has_bias = n.layer->blobs.size() > 1;
    const memory::desc bias_md({oc}, Dt::f32, Tag::a);
    const memory::desc dst_md = dst ? dst.get_desc() : memory::desc(out, Dt::f32, Tag::nhwc);
    auto make_pd = [&](const memory::desc& src_md) {
      const memory::desc wmd(wd, Dt::f32, Tag::any);
      const Dims strides{sh, sw}, dil{dh - 1, dw - 1}, l{pt, pl}, r{pb, pr};
      if (has_bias) {
        dnnl::convolution_forward::desc d(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
                                          src_md, wmd, bias_md, dst_md, strides, dil, l, r);
        return dnnl::convolution_forward::primitive_desc(d, attr, impl_.eng);
      }
      dnnl::convolution_forward::desc d(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
                                        src_md, wmd, dst_md, strides, dil, l, r);
      return dnnl::convolution_forward::primitive_desc(d, attr, impl_.eng);
    };
    // The caller's (strided) input, or a layout without a JIT kernel (oneDNN then runs its slow reference
    // code: 25 ms for BlazeFace's first conv on an NHWC view of 3 channels): let the conv pick its src
    // layout and reorder into it.
    dnnl::convolution_forward::primitive_desc pd = make_pd(src.get_desc());
    if (values_[src_id].kind == Kind::kInput || is_reference(pd)) {
      auto picked = make_pd(memory::desc(sd, Dt::f32, Tag::any));
      if (!is_reference(picked) || is_reference(pd)) {
        pd = picked;
        const memory staged = tensor(pd.src_desc());
        add_reorder(src, staged);
        src = staged;
      }
    }
    if (!dst) dst = tensor(pd.dst_desc());

    memory user(user_w, impl_.eng, const_cast<float*>(w.ptr<float>()));
    memory wm(pd.weights_desc(), impl_.eng);
    dnnl::reorder(user, wm).execute(impl_.stream, user, wm);
    impl_.stream.wait();
    impl_.owned.push_back(wm);
    std::unordered_map<int, memory> args{{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, wm}, {DNNL_ARG_DST, dst}};
    if (has_bias) {
      const cv::Mat& bias = n.layer->blobs[1];
      if (bias.total() != static_cast<std::size_t>(oc) || bias.type() != CV_32F) throw Unsupported("bias shape");
      memory bm(bias_md, impl_.eng);
      std::memcpy(bm.get_data_handle(), bias.ptr<float>(), sizeof(float) * static_cast<std::size_t>(oc));
      impl_.owned.push_back(bm);
      args[DNNL_ARG_BIAS] = bm;
    }
    add_step(dnnl::convolution_forward(pd), std::move(args));
    for (int v = id;; v = nodes_[v].consumers[0]) {
      values_[v].kind = Kind::kTensor;
      values_[v].mem = dst;
      if (v == cur) break;
    }
  }

  void activation(int id) {
    const Node& n = nodes_[id];
    dnnl::algorithm alg;
    float a = 0.f, b = 0.f;
    if (!relu_params(n, alg, a, b)) throw Unsupported("unknown activation");
    const memory src = as_tensor(n.inputs.at(0));
    const memory dst = tensor(src.get_desc());
    dnnl::eltwise_forward::desc d(dnnl::prop_kind::forward_inference, alg, src.get_desc(), a, b);
    add_step(dnnl::eltwise_forward(dnnl::eltwise_forward::primitive_desc(d, impl_.eng)),
             {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}});
    values_[id] = Value{Kind::kTensor, dst};
  }

  void eltwise(int id) {
    const Node& n = nodes_[id];
    if (!is_plain_sum(id)) throw Unsupported("only the sum of two equal-shape inputs");
    const memory a = as_tensor(n.inputs[0]);
    const memory b = as_tensor(n.inputs[1]);
    const memory dst = tensor(a.get_desc());
    dnnl::binary::desc d(dnnl::algorithm::binary_add, a.get_desc(), b.get_desc(), dst.get_desc());
    add_step(dnnl::binary(dnnl::binary::primitive_desc(d, impl_.eng)),
             {{DNNL_ARG_SRC_0, a}, {DNNL_ARG_SRC_1, b}, {DNNL_ARG_DST, dst}});
    values_[id] = Value{Kind::kTensor, dst};
  }

  // Padding: probed on 1, 2, 3, ...: where the input lands gives the pads, the rest must be zeros.
  void padding(int id) {
    const Node& n = nodes_[id];
    const MatShape& is = n.in_shapes.at(0);
    const MatShape& os = n.out();
    if (is.size() != 4 || os.size() != 4 || is[0] != os[0] || is[1] != os[1] || os[2] < is[2] || os[3] < is[3])
      throw Unsupported("only zero padding of the two spatial axes");
    const cv::Mat in = iota(is, 1.f);
    const cv::Mat out = run_layer(n, {in}).at(0);
    const float* po = out.ptr<float>();
    const std::size_t at = static_cast<std::size_t>(std::find(po, po + out.total(), 1.f) - po);
    if (at >= out.total()) throw Unsupported("the padded tensor does not contain the input");
    const int top = static_cast<int>(at / static_cast<std::size_t>(os[3])), left = static_cast<int>(at % static_cast<std::size_t>(os[3]));
    const int bottom = os[2] - is[2] - top, right = os[3] - is[3] - left;
    if (bottom < 0 || right < 0) throw Unsupported("unexpected padding");
    const float* pi = in.ptr<float>();
    std::size_t k = 0;
    for (int c = 0; c < os[0] * os[1]; ++c)
      for (int y = 0; y < os[2]; ++y)
        for (int x = 0; x < os[3]; ++x) {
          const bool inside = y >= top && y < top + is[2] && x >= left && x < left + is[3];
          const float want = inside ? pi[k++] : 0.f;
          if (*po++ != want) throw Unsupported("padding is not a constant zero");
        }
    int src = n.inputs.at(0);
    Value v{Kind::kPadded};
    if (values_[src].kind == Kind::kZero) {
      values_[id] = Value{Kind::kZero};
      return;
    }
    if (values_[src].kind == Kind::kPadded) {
      v = values_[src];
      v.cached = {};
      src = v.src;
    }
    if (values_[src].kind != Kind::kTensor && values_[src].kind != Kind::kInput) as_tensor(src);
    v.src = src;
    v.pad_t += top, v.pad_l += left, v.pad_b += bottom, v.pad_r += right;
    values_[id] = v;
  }

  void pooling(int id) {
    const Node& n = nodes_[id];
    auto* p = dynamic_cast<cv::dnn::PoolingLayer*>(n.layer.get());
    if (!p || n.inputs.size() != 1) throw Unsupported("not a pooling layer");
    if (p->type != kPoolMax && p->type != kPoolAve) throw Unsupported("only max and average pooling");
    if (!p->padMode.empty() && p->padMode != "VALID") throw Unsupported("pad mode '" + p->padMode + "'");
    const memory src = as_tensor(n.inputs[0]);
    const Dims sd = src.get_desc().dims();
    const Dims od = dims4(n.out());
    Dims k, s, l, r;
    if (p->globalPooling) {
      if (od[2] != 1 || od[3] != 1) throw Unsupported("partial global pooling");
      k = {sd[2], sd[3]}, s = {1, 1}, l = {0, 0}, r = {0, 0};
    } else {
      if (p->kernel_size.size() != 2 || p->strides.size() != 2) throw Unsupported("only 2-D pooling");
      for (int a = 0; a < 2; ++a) {
        const auto ka = static_cast<memory::dim>(p->kernel_size[a]), st = static_cast<memory::dim>(p->strides[a]);
        const auto pa = p->pads_begin.size() > static_cast<std::size_t>(a) ? static_cast<memory::dim>(p->pads_begin[a]) : 0;
        const auto pe = p->pads_end.size() > static_cast<std::size_t>(a) ? static_cast<memory::dim>(p->pads_end[a]) : 0;
        // The stated right padding, or (ceil mode: a partial last window) the one giving OpenCV's extent.
        auto extent = [&](memory::dim right) { return (sd[2 + a] + pa + right - ka) / st + 1; };
        const memory::dim ceil_pad = (od[2 + a] - 1) * st + ka - sd[2 + a] - pa;
        const memory::dim right = extent(pe) == od[2 + a] ? pe : ceil_pad;
        if (right < 0 || right >= ka || extent(right) != od[2 + a])
          throw Unsupported("output size does not follow from the parameters");
        k.push_back(ka), s.push_back(st), l.push_back(pa), r.push_back(right);
      }
    }
    const dnnl::algorithm alg = p->type == kPoolMax            ? dnnl::algorithm::pooling_max
                                : p->avePoolPaddedArea         ? dnnl::algorithm::pooling_avg_include_padding
                                                               : dnnl::algorithm::pooling_avg_exclude_padding;
    const memory::desc dmd(od, Dt::f32, Tag::nhwc);
    dnnl::pooling_forward::desc d(dnnl::prop_kind::forward_inference, alg, src.get_desc(), dmd, s, k, l, r);
    const memory dst = tensor(dmd);
    add_step(dnnl::pooling_forward(dnnl::pooling_forward::primitive_desc(d, impl_.eng)),
             {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}});
    values_[id] = Value{Kind::kTensor, dst};
  }

  void constant(int id) {
    const Node& n = nodes_[id];
    if (n.layer->blobs.size() != 1 || n.layer->blobs[0].type() != CV_32F) throw Unsupported("not a float constant");
    if (cv::countNonZero(n.layer->blobs[0].reshape(1, 1)) != 0) throw Unsupported("only all-zero constants");
    values_[id] = Value{Kind::kZero};
  }

  void concat(int id) {
    const Node& n = nodes_[id];
    auto* c = dynamic_cast<cv::dnn::ConcatLayer*>(n.layer.get());
    if (!c || c->padding) throw Unsupported("only plain concatenation");
    const int rank = static_cast<int>(n.out().size());
    const int axis = c->axis < 0 ? c->axis + rank : c->axis;
    bool tensors = rank == 4 && axis == 1;
    for (int in : n.inputs) tensors = tensors && values_[in].kind != Kind::kIndex;
    if (!tensors) return index_layer(id);
    // Channel concatenation: clear first when a constant zero is among the inputs, then copy the others in.
    const memory dst = nhwc_tensor(dims4(n.out()));
    if (std::any_of(n.inputs.begin(), n.inputs.end(), [&](int in) { return values_[in].kind == Kind::kZero; }))
      add_zero(dst);
    memory::dim offset = 0;
    for (std::size_t i = 0; i < n.inputs.size(); ++i) {
      const int in = n.inputs[i];
      if (values_[in].kind != Kind::kZero) {
        const memory src = as_tensor(in);
        const memory sub = view(dst, dst.get_desc().submemory_desc(src.get_desc().dims(), {0, offset, 0, 0}));
        add_reorder(src, sub);
      }
      offset += n.in_shapes[i].at(1);
    }
    values_[id] = Value{Kind::kTensor, dst};
  }

  // The net input permuted (BlazeFace's NHWC -> NCHW): a strided view of the caller's buffer.
  void input_permute(int id) {
    const Node& n = nodes_[id];
    if (values_[n.inputs[0]].kind != Kind::kInput || n.inputs[0] != 0) throw Unsupported("permute of a view");
    const cv::Mat out = run_layer(n, {iota(input_shape_, 0.f)}).at(0);
    const Dims od = dims4(n.out());
    const float* m = out.ptr<float>();
    Dims strides(4);
    std::size_t unit = 1;
    for (int a = 3; a >= 0; --a) {
      strides[a] = od[a] > 1 ? static_cast<memory::dim>(m[unit]) : 0;
      unit *= static_cast<std::size_t>(od[a]);
    }
    std::size_t i = 0;
    for (memory::dim a = 0; a < od[0]; ++a)
      for (memory::dim b = 0; b < od[1]; ++b)
        for (memory::dim c = 0; c < od[2]; ++c)
          for (memory::dim d = 0; d < od[3]; ++d, ++i)
            if (m[i] != static_cast<float>(a * strides[0] + b * strides[1] + c * strides[2] + d * strides[3]))
              throw Unsupported("not a permutation of the input");
    for (auto& st : strides)
      if (st == 0) st = 1;  // unit axes: any stride
    values_[id] = Value{Kind::kInput, input_view(memory::desc(od, Dt::f32, strides))};
  }

  // Pure data movement after the conv part: run the OpenCV layer on index tensors.
  void index_layer(int id) {
    const Node& n = nodes_[id];
    std::vector<cv::Mat> ins;
    for (std::size_t i = 0; i < n.inputs.size(); ++i) {
      const std::vector<std::int32_t> map = index_map(n.inputs[i]);
      cv::Mat m(n.in_shapes[i], CV_32F);
      if (m.total() != map.size()) throw Unsupported("input shape disagrees with its value");
      std::transform(map.begin(), map.end(), m.ptr<float>(), [](std::int32_t v) { return static_cast<float>(v); });
      ins.push_back(m);
    }
    const cv::Mat out = run_layer(n, ins).at(0);
    Value v{Kind::kIndex};
    v.map.resize(out.total());
    const float* p = out.ptr<float>();
    for (std::size_t i = 0; i < out.total(); ++i) {
      if (p[i] < 0.f || p[i] != std::floor(p[i]) || p[i] >= static_cast<float>(kMaxIndexSpace))
        throw Unsupported("does not only move data");
      v.map[i] = static_cast<std::int32_t>(p[i]);
    }
    values_[id] = std::move(v);
  }

  // The index map of a value: its own for kIndex; otherwise the value is copied (plain NCHW) into the index
  // space once, at this point of the step list, and mapped to that copy.
  std::vector<std::int32_t> index_map(int id) {
    Value& v = values_[id];
    if (v.kind == Kind::kIndex) return v.map;
    auto it = index_base_.find(id);
    if (it == index_base_.end()) {
      const memory src = as_tensor(id);
      const Dims d = src.get_desc().dims();
      memory plain(memory::desc(d, Dt::f32, Tag::nchw), impl_.eng, DNNL_MEMORY_NONE);
      const std::size_t offset = index_size_;
      index_size_ += plain.get_desc().get_size() / sizeof(float);
      if (index_size_ >= kMaxIndexSpace) throw Unsupported("outputs too large");
      index_memories_.emplace_back(plain, offset);
      add_reorder(src, plain);
      it = index_base_.emplace(id, offset).first;
    }
    const std::size_t count = total(nodes_[id].out());
    std::vector<std::int32_t> map(count);
    for (std::size_t i = 0; i < count; ++i) map[i] = static_cast<std::int32_t>(it->second + i);
    return map;
  }

  void finish() {
    impl_.index_space.assign(index_size_, 0.f);
    for (auto& [m, off] : index_memories_) m.set_data_handle(impl_.index_space.data() + off);
    impl_.arena = make_dnnl_arena(impl_.arena_bytes);
    if (!impl_.arena) throw std::bad_alloc();
    for (auto& [m, off] : impl_.arena_memories) m.set_data_handle(impl_.arena.get() + off);
  }

  cv::dnn::Net& net_;
  std::vector<int> input_shape_;
  DnnlNet::Impl& impl_;
  std::vector<Node> nodes_;
  std::vector<Value> values_;
  std::vector<bool> fused_;
  std::vector<int> output_ids_;
  std::map<int, bool> sum_probe_;
  std::map<int, std::size_t> index_base_;
  std::vector<std::pair<memory, std::size_t>> index_memories_;
  std::size_t index_size_ = 0;
};

}  // namespace

DnnlNet::DnnlNet(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
DnnlNet::~DnnlNet() = default;

bool dnnl_net_available() { return true; }

Result<std::unique_ptr<DnnlNet>> DnnlNet::create(cv::dnn::Net& net, const std::vector<int>& input_shape,
                                                 std::vector<std::string> output_names, int threads) {
  if (threads < 1) return make_error(ErrorCode::kInvalidArgument, "oneDNN net: threads must be >= 1");
  try {
    auto impl = std::make_unique<Impl>();
    impl->threads = threads;
    if (output_names.empty())
      for (const auto& n : net.getUnconnectedOutLayersNames()) output_names.push_back(n);
    impl->output_names = std::move(output_names);
    OmpThreads t(threads);  // oneDNN fixes a primitive's thread count when it is created
    Translator(net, input_shape, *impl).run();
    return std::unique_ptr<DnnlNet>(new DnnlNet(std::move(impl)));
  } catch (const Unsupported& e) {
    return make_error(ErrorCode::kUnavailable, std::string("oneDNN net: ") + e.what());
  } catch (const dnnl::error& e) {
    return make_error(ErrorCode::kUnavailable, std::string("oneDNN net: oneDNN: ") + e.what());
  } catch (const cv::Exception& e) {
    return make_error(ErrorCode::kUnavailable, std::string("oneDNN net: probing a layer failed: ") + e.what());
  } catch (const std::exception& e) {
    return make_error(ErrorCode::kUnavailable, std::string("oneDNN net: ") + e.what());
  }
}

Status DnnlNet::forward(const cv::Mat& input, std::vector<cv::Mat>& outputs) {
  Impl& m = *impl_;
  if (input.type() != CV_32F || !input.isContinuous() || input.total() != m.input_total)
    return make_error(ErrorCode::kInvalidArgument, "oneDNN net: the input is not the float tensor it was built for");
  try {
    OmpThreads t(m.threads);
    for (auto& v : m.input_views) v.set_data_handle(const_cast<float*>(input.ptr<float>()));
    for (auto& s : m.steps) {
      if (s.prim) {
        s.prim.execute(m.stream, s.args);
      } else {
        m.stream.wait();
        std::memset(s.zero.get_data_handle(), 0, s.zero.get_desc().get_size());
      }
    }
    m.stream.wait();
  } catch (const dnnl::error& e) {
    return make_error(ErrorCode::kInternal, std::string("oneDNN net forward: ") + e.what());
  }
  outputs.resize(m.output_maps.size());
  for (std::size_t i = 0; i < m.output_maps.size(); ++i) {
    outputs[i].create(m.output_shapes[i], CV_32F);
    float* dst = outputs[i].ptr<float>();
    const float* space = m.index_space.data();
    for (std::int32_t k : m.output_maps[i]) *dst++ = space[k];
  }
  return ok_status();
}

const std::vector<std::string>& DnnlNet::output_names() const { return impl_->output_names; }
std::size_t DnnlNet::primitive_count() const { return impl_->steps.size(); }
int DnnlNet::threads() const { return impl_->threads; }

}  // namespace faceguard::model

#else  // !FG_HAVE_DNNL

namespace faceguard::model {

struct DnnlNet::Impl {};
DnnlNet::DnnlNet(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
DnnlNet::~DnnlNet() = default;

bool dnnl_net_available() { return false; }

Result<std::unique_ptr<DnnlNet>> DnnlNet::create(cv::dnn::Net&, const std::vector<int>&, std::vector<std::string>,
                                                 int) {
  return make_error(ErrorCode::kUnavailable, "oneDNN net: this build has no oneDNN");
}
Status DnnlNet::forward(const cv::Mat&, std::vector<cv::Mat>&) {
  return make_error(ErrorCode::kUnavailable, "oneDNN net: this build has no oneDNN");
}
const std::vector<std::string>& DnnlNet::output_names() const {
  static const std::vector<std::string> kNone;
  return kNone;
}
std::size_t DnnlNet::primitive_count() const { return 0; }
int DnnlNet::threads() const { return 1; }

}  // namespace faceguard::model

#endif

namespace faceguard::model {

double scaled_max_diff(const cv::Mat& a, const cv::Mat& b) {
  const cv::Mat x = a.isContinuous() ? a : a.clone();
  const cv::Mat y = b.isContinuous() ? b : b.clone();
  const float* p = x.ptr<float>();
  const float* q = y.ptr<float>();
  double worst = 0.0;
  for (std::size_t i = 0; i < x.total(); ++i) {
    const double d = std::abs(static_cast<double>(p[i]) - q[i]) / std::max(1.0, std::abs(static_cast<double>(q[i])));
    if (!(d <= worst)) worst = d;  // (NaN wins)
  }
  return worst;
}

Result<double> dnnl_max_diff(DnnlNet& dnnl, cv::dnn::Net& net, const cv::Mat& input) {
  std::vector<cv::Mat> ours, theirs;
  FG_TRY_STATUS(dnnl.forward(input, ours));
  try {
    std::vector<cv::String> names(dnnl.output_names().begin(), dnnl.output_names().end());
    net.setInput(input);
    net.forward(theirs, names);
  } catch (const cv::Exception& e) {
    return make_error(ErrorCode::kInternal, std::string("OpenCV DNN forward: ") + e.what());
  }
  if (ours.size() != theirs.size()) return make_error(ErrorCode::kInternal, "oneDNN net: output counts differ");
  double worst = 0.0;
  for (std::size_t i = 0; i < ours.size(); ++i) {
    if (ours[i].total() != theirs[i].total() || theirs[i].type() != CV_32F)
      return make_error(ErrorCode::kInternal, "oneDNN net: output '" + dnnl.output_names()[i] + "' differs in shape");
    worst = std::max(worst, scaled_max_diff(ours[i], theirs[i]));
  }
  return worst;
}

std::string dnnl_self_check(DnnlNet& dnnl, cv::dnn::Net& net, const cv::Mat& input) {
  auto diff = dnnl_max_diff(dnnl, net, input);
  if (!diff) return diff.error().message;
  if (!(*diff <= kDnnlSelfCheckTolerance))
    return "oneDNN outputs differ from OpenCV's by (scaled) " + std::to_string(*diff);
  return {};
}

}  // namespace faceguard::model
