// The dlib ResNet descriptor on oneDNN primitives (see dlib_resnet_dnnl.hpp for why, precision, threads).
//
// Graph per batch size N (a Plan), mapped onto oneDNN as:
//   stem      conv 7x7/2 VALID (+bias, post-op ReLU); max pool 3/2 VALID
//   residual  conv1 x -> t (+bias, ReLU); conv2 t -> x IN PLACE with post-ops sum(x) then ReLU: the
//             identity shortcut costs no copy and no extra pass.
//   down      conv1 x -> t (stride 2, VALID, +bias, ReLU); avg pool x -> p (2/2 VALID);
//             c := 0; reorder p into the channel sub-view [0, cin) of c (the zero extension);
//             same size:  conv2 t -> c with post-ops sum(c), ReLU (fused as in a residual);
//             c one pixel larger (face-api pads the conv branch bottom/right):  conv2 t -> d, reorder
//             d into the spatial sub-view [0, size) of c with a sum post-op, ReLU on c in place.
//             (The shortcut input x is the output of a ReLU, so the padded row/column, pool values only,
//             is already >= 0 and the ReLU there is exact.)
//   head      mean over H x W and fc [256, 128] folded into one inner product whose weights are
//             fc / (H * W) repeated over the H x W positions.
// Every face-api "scale" layer is folded into its conv's weights and bias (model::fold_scale_shift).
// Activation layouts are format_tag::any, i.e. the library's choice (blocked nChw16c / nhwc for AMX);
// each conv takes its producer's layout as its src, so reorders happen only at the input (user NCHW f32
// -> the first conv's layout, skipped when equal) and for the weights (once per layout, cached).
// Activations live in one arena per worker thread sized for its largest plan, so its cached plans of
// several batch sizes share it.
#include "embed/dlib_resnet_dnnl.hpp"

#include <cstdlib>
#include <string_view>

#include "embed/chip_prep.hpp"
#include "embed/dlib_resnet.hpp"

namespace faceguard::embed {

Result<std::unique_ptr<Embedder>> create_dlib_resnet_engine(const std::filesystem::path& manifest,
                                                            const EmbedderOptions& options) {
  using Engine = EmbedderOptions::Engine;
  EmbedderOptions o = options;
  if (o.engine == Engine::kAuto) {
    if (const char* e = std::getenv("FACEGUARD_DLIB_ENGINE"); e && *e) {
      const std::string_view v(e);
      if (v == "opencv") {
        o.engine = Engine::kOpenCv;
      } else if (v == "onednn" || v == "onednn-bf16") {
        o.engine = Engine::kOneDnn;
        o.bf16 = o.bf16 || v == "onednn-bf16";
      } else {
        return make_error(ErrorCode::kInvalidArgument,
                          "FACEGUARD_DLIB_ENGINE must be opencv, onednn or onednn-bf16, not '" + std::string(v) + "'");
      }
    }
  }
  if (o.engine == Engine::kOpenCv) return create_dlib_resnet(manifest, o);
  auto dnnl = create_dlib_resnet_dnnl(manifest, o);
  // kModelError (bad weights) is the model's fault and the OpenCV path would fail the same way.
  if (dnnl || o.engine == Engine::kOneDnn || dnnl.error().code == ErrorCode::kModelError) return dnnl;
  return create_dlib_resnet(manifest, o);
}

}  // namespace faceguard::embed

#ifdef FG_HAVE_DNNL

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <system_error>
#include <thread>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <oneapi/dnnl/dnnl.hpp>
#include <opencv2/core/utility.hpp>
#include <opencv2/imgproc.hpp>

#include "model/dnnl_common.hpp"
#include "model/net_builder.hpp"

namespace faceguard::embed {
namespace {

using dnnl::memory;
using Dims = memory::dims;
using Dt = memory::data_type;
using Tag = memory::format_tag;

// Largest batch per forward and thread: per-face CPU time was lowest at 4 to 8 faces (measured 4.5 ms fp32
// on one core) and higher at 16 (6.2 ms: a face needs ~1.3 MB of fp32 activations, 16 no longer fit the
// 2 MB L2); 8 keeps each worker's arena near 10 MB.
constexpr int kMaxForwardBatch = 8;

// One convolution with the face-api scale folded in. OIHW float, the layout of oneDNN's Tag::oihw.
struct ConvLayer {
  int kernel = 0;
  int stride = 1;
  model::ConvWeights w;  // filter out x in x k x k, bias 1 x out
};

struct Block {
  bool down = false;
  int cin = 0;
  int cout = 0;
  std::size_t conv1 = 0;  // indices into NetDef::convs
  std::size_t conv2 = 0;
};

struct NetDef {
  int input_size = kDlibChipSize;
  std::vector<ConvLayer> convs;  // convs[0] is the stem
  std::vector<Block> blocks;
  std::vector<float> fc;  // [256][128] as stored by TF (in, out)
};

ConvLayer scaled_conv(const model::WeightMap& w, const std::string& prefix, int k, int stride, int in, int out) {
  const model::Tensor& filters = model::require(w, prefix + "/conv/filters", {k, k, in, out});
  const model::Tensor& bias = model::require(w, prefix + "/conv/bias", {out});
  const model::Tensor& sw = model::require(w, prefix + "/scale/weights", {out});
  const model::Tensor& sb = model::require(w, prefix + "/scale/biases", {out});
  ConvLayer c{k, stride, model::conv_weights_hwio(filters, &bias)};
  model::fold_scale_shift(c.w, sw.data, sb.data);
  return c;
}

// The layer list of FaceRecognitionNet.ts (same order as ResNetBuilder::build in dlib_resnet.cpp).
NetDef load_net(const model::WeightMap& w, int input_size) {
  NetDef d;
  d.input_size = input_size;
  d.convs.push_back(scaled_conv(w, "conv32_down", 7, 2, 3, 32));
  auto add = [&](const std::string& p, bool down, int cin, int cout) {
    Block b{down, cin, cout, d.convs.size(), d.convs.size() + 1};
    d.convs.push_back(scaled_conv(w, p + "/conv1", 3, down ? 2 : 1, cin, cout));
    d.convs.push_back(scaled_conv(w, p + "/conv2", 3, 1, cout, cout));
    d.blocks.push_back(b);
  };
  add("conv32_1", false, 32, 32);
  add("conv32_2", false, 32, 32);
  add("conv32_3", false, 32, 32);
  add("conv64_down", true, 32, 64);
  add("conv64_1", false, 64, 64);
  add("conv64_2", false, 64, 64);
  add("conv64_3", false, 64, 64);
  add("conv128_down", true, 64, 128);
  add("conv128_1", false, 128, 128);
  add("conv128_2", false, 128, 128);
  add("conv256_down", true, 128, 256);
  add("conv256_1", false, 256, 256);
  add("conv256_2", false, 256, 256);
  add("conv256_down_out", true, 256, 256);
  d.fc = model::require(w, "fc", {256, kDlibDescriptorSize}).data;
  return d;
}


// The primitives of one batch size. Activation memories point into the embedder's arena (their offsets
// are kept and the handles set before each run), the input and output into the caller's buffers.
struct Plan {
  struct Step {
    dnnl::primitive prim;                       // null for a zeroing step
    std::unordered_map<int, memory> args;
    memory zero;                                // zeroing step: the memory to clear
  };
  std::vector<Step> steps;
  std::vector<std::pair<memory, std::size_t>> arena_memories;  // memory, byte offset into the arena
  std::size_t arena_bytes = 0;
  memory input;   // N x 3 x S x S f32 NCHW (the input_blob)
  memory output;  // N x 128 f32
};

class PlanBuilder {
 public:
  PlanBuilder(const NetDef& net, const dnnl::engine& eng, dnnl::stream& stream, Dt act,
              std::map<std::size_t, std::vector<memory>>& weight_cache)
      : net_(net), eng_(eng), stream_(stream), act_(act), weight_cache_(weight_cache) {}

  Plan build(int n) {
    n_ = n;
    int size = net_.input_size;
    const memory::desc user_in({n, 3, size, size}, Dt::f32, Tag::nchw);
    plan_.input = memory(user_in, eng_, DNNL_MEMORY_NONE);

    // Stem conv: its src layout is the library's choice; the user's NCHW f32 is reordered when it differs.
    const int stem_size = model::conv_out_size(size, 7, 2, 0, 0);
    auto stem = conv_pd(net_.convs[0], memory::desc({n, 3, size, size}, act_, Tag::any), nullptr,
                        {n, 32, stem_size, stem_size}, 0, 0, relu_attr());
    memory x = plan_.input;
    if (stem.src_desc() != user_in) {
      memory in = tensor(stem.src_desc());
      add_step(dnnl::reorder(dnnl::reorder::primitive_desc(eng_, user_in, eng_, stem.src_desc())),
               {{DNNL_ARG_FROM, plan_.input}, {DNNL_ARG_TO, in}});
      x = in;
    }
    memory s = tensor(stem.dst_desc());
    add_conv(stem, 0, x, s);
    size = stem_size;

    const int pool_size = model::conv_out_size(size, 3, 2, 0, 0);
    auto pool = pool_pd(dnnl::algorithm::pooling_max, s.get_desc(), 32, pool_size, 3, 2);
    x = tensor(pool.dst_desc());
    add_step(dnnl::pooling_forward(pool), {{DNNL_ARG_SRC, s}, {DNNL_ARG_DST, x}});
    size = pool_size;

    for (const Block& b : net_.blocks) {
      if (b.down) {
        x = down(b, x, size);
        size = model::conv_out_size(size, 2, 2, 0, 0);  // the pooled shortcut's side
      } else {
        x = residual(b, x, size);
      }
    }
    head(x, size);
    return std::move(plan_);
  }

 private:
  static dnnl::primitive_attr relu_attr(bool with_sum = false) {
    dnnl::post_ops po;
    if (with_sum) po.append_sum(1.f);
    po.append_eltwise(1.f, dnnl::algorithm::eltwise_relu, 0.f, 0.f);
    dnnl::primitive_attr a;
    a.set_post_ops(po);
    return a;
  }

  // A memory in the arena (handle set at run time).
  memory tensor(const memory::desc& md) {
    memory m(md, eng_, DNNL_MEMORY_NONE);
    plan_.arena_memories.emplace_back(m, plan_.arena_bytes);
    plan_.arena_bytes += model::dnnl_arena_round(md.get_size());
    return m;
  }
  // A view (sub-memory desc) of an arena memory: same offset, the view's md carries its own offset.
  memory view(const memory& parent, const memory::desc& md) {
    for (const auto& [m, off] : plan_.arena_memories) {
      if (m.get() == parent.get()) {
        memory v(md, eng_, DNNL_MEMORY_NONE);
        plan_.arena_memories.emplace_back(v, off);
        return v;
      }
    }
    throw model::BuildError("oneDNN plan: view of a memory outside the arena");
  }

  void add_step(dnnl::primitive p, std::unordered_map<int, memory> args) {
    plan_.steps.push_back({std::move(p), std::move(args), {}});
  }
  void add_zero(const memory& m) { plan_.steps.push_back({{}, {}, m}); }

  // dst_fixed: the dst layout when it must be a given memory (the in-place residual), else any.
  dnnl::convolution_forward::primitive_desc conv_pd(const ConvLayer& c, const memory::desc& src,
                                                    const memory::desc* dst_fixed, const Dims& dst_dims,
                                                    int pad_begin, int pad_end, const dnnl::primitive_attr& attr) {
    const int out = c.w.out_channels();
    const int in = c.w.in_channels_per_group();
    const memory::desc wmd({out, in, c.kernel, c.kernel}, act_, Tag::any);
    const memory::desc bmd({out}, Dt::f32, Tag::a);
    const memory::desc dmd = dst_fixed ? *dst_fixed : memory::desc(dst_dims, act_, Tag::any);
    try {
      dnnl::convolution_forward::desc d(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
                                        src, wmd, bmd, dmd, {c.stride, c.stride}, {pad_begin, pad_begin},
                                        {pad_end, pad_end});
      return dnnl::convolution_forward::primitive_desc(d, attr, eng_);
    } catch (const dnnl::error& e) {
      throw model::BuildError(std::string(e.what()) + " (" + std::to_string(in) + " -> " + std::to_string(out) +
                              " channels, " + std::to_string(c.kernel) + "x" + std::to_string(c.kernel) + "/" +
                              std::to_string(c.stride) + ", input side " + std::to_string(src.dims()[2]) + ", output side " +
                              std::to_string(dmd.dims()[2]) + ", pad " + std::to_string(pad_begin) + "/" +
                              std::to_string(pad_end) + ")");
    }
  }

  dnnl::pooling_forward::primitive_desc pool_pd(dnnl::algorithm alg, const memory::desc& src, int channels,
                                                int out_size, int kernel, int stride) {
    const memory::desc dmd({n_, channels, out_size, out_size}, act_, Tag::any);
    dnnl::pooling_forward::desc d(dnnl::prop_kind::forward_inference, alg, src, dmd, {stride, stride},
                                  {kernel, kernel}, {0, 0}, {0, 0});
    return dnnl::pooling_forward::primitive_desc(d, eng_);
  }

  // The conv's weights in the layout it chose, reordered once and shared by all plans.
  memory weights(std::size_t index, const memory::desc& want) {
    auto& cached = weight_cache_[index];
    for (const auto& m : cached)
      if (m.get_desc() == want) return m;
    const ConvLayer& c = net_.convs[index];
    const memory::desc user({c.w.out_channels(), c.w.in_channels_per_group(), c.kernel, c.kernel}, Dt::f32, Tag::oihw);
    memory src(user, eng_, const_cast<float*>(c.w.filter.ptr<float>()));
    memory dst(want, eng_);
    dnnl::reorder(src, dst).execute(stream_, src, dst);
    stream_.wait();
    cached.push_back(dst);
    return dst;
  }
  memory bias(std::size_t index) {
    const ConvLayer& c = net_.convs[index];
    // The folded bias (a cv::Mat kept alive by NetDef) used in place.
    return memory(memory::desc({c.w.out_channels()}, Dt::f32, Tag::a), eng_, const_cast<float*>(c.w.bias.ptr<float>()));
  }

  void add_conv(const dnnl::convolution_forward::primitive_desc& pd, std::size_t index, const memory& src,
                const memory& dst) {
    add_step(dnnl::convolution_forward(pd), {{DNNL_ARG_SRC, src},
                                             {DNNL_ARG_WEIGHTS, weights(index, pd.weights_desc())},
                                             {DNNL_ARG_BIAS, bias(index)},
                                             {DNNL_ARG_DST, dst}});
  }

  memory residual(const Block& b, const memory& x, int size) {
    const Pad same = Pad::tf_same(size, size, 3, 3, 1, 1);
    auto c1 = conv_pd(net_.convs[b.conv1], x.get_desc(), nullptr, {n_, b.cout, size, size}, same.top, same.bottom,
                      relu_attr());
    memory t = tensor(c1.dst_desc());
    add_conv(c1, b.conv1, x, t);
    const memory::desc xmd = x.get_desc();
    auto c2 = conv_pd(net_.convs[b.conv2], t.get_desc(), &xmd, {}, same.top, same.bottom, relu_attr(true));
    add_conv(c2, b.conv2, t, x);  // x += conv2(t), then ReLU, in place
    return x;
  }

  memory down(const Block& b, const memory& x, int size) {
    const int conv_size = model::conv_out_size(size, 3, 2, 0, 0);
    const int out_size = model::conv_out_size(size, 2, 2, 0, 0);
    if (conv_size < 1) throw model::BuildError("input too small for a down block");
    if (out_size != conv_size && out_size != conv_size + 1)
      throw model::BuildError("down block: conv and pool sizes differ by more than one");
    const Pad same = Pad::tf_same(conv_size, conv_size, 3, 3, 1, 1);

    auto c1 = conv_pd(net_.convs[b.conv1], x.get_desc(), nullptr, {n_, b.cout, conv_size, conv_size}, 0, 0,
                      relu_attr());
    memory t = tensor(c1.dst_desc());
    add_conv(c1, b.conv1, x, t);
    auto pool = pool_pd(dnnl::algorithm::pooling_avg_exclude_padding, x.get_desc(), b.cin, out_size, 2, 2);
    memory p = tensor(pool.dst_desc());
    add_step(dnnl::pooling_forward(pool), {{DNNL_ARG_SRC, x}, {DNNL_ARG_DST, p}});

    const Dims full{n_, b.cout, out_size, out_size};
    const Dims origin{0, 0, 0, 0};
    if (out_size == conv_size) {
      auto c2 = conv_pd(net_.convs[b.conv2], t.get_desc(), nullptr, full, same.top, same.bottom, relu_attr(true));
      memory c = tensor(c2.dst_desc());
      add_shortcut(c, p, b.cin, out_size);
      add_conv(c2, b.conv2, t, c);  // c = relu(conv2(t) + zext(pool(x)))
      return c;
    }
    auto c2 = conv_pd(net_.convs[b.conv2], t.get_desc(), nullptr, {n_, b.cout, conv_size, conv_size}, same.top,
                      same.bottom, {});
    memory d = tensor(c2.dst_desc());
    add_conv(c2, b.conv2, t, d);
    // c takes the layout the next 3x3 conv would choose for its input (the next residual block's conv1).
    memory c = tensor(preferred_src(b.cout, out_size));
    add_shortcut(c, p, b.cin, out_size);
    const memory::desc corner = c.get_desc().submemory_desc({n_, b.cout, conv_size, conv_size}, origin);
    memory cv = view(c, corner);
    dnnl::primitive_attr sum;
    dnnl::post_ops po;
    po.append_sum(1.f);
    sum.set_post_ops(po);
    add_step(dnnl::reorder(dnnl::reorder::primitive_desc(eng_, d.get_desc(), eng_, corner, sum)),
             {{DNNL_ARG_FROM, d}, {DNNL_ARG_TO, cv}});
    dnnl::eltwise_forward::desc ed(dnnl::prop_kind::forward_inference, dnnl::algorithm::eltwise_relu, c.get_desc(),
                                   0.f, 0.f);
    add_step(dnnl::eltwise_forward(dnnl::eltwise_forward::primitive_desc(ed, eng_)),
             {{DNNL_ARG_SRC, c}, {DNNL_ARG_DST, c}});
    return c;
  }

  // c := zext(p): clear c, then copy p into its first cin channels.
  void add_shortcut(const memory& c, const memory& p, int cin, int size) {
    add_zero(c);
    const memory::desc sub = c.get_desc().submemory_desc({n_, cin, size, size}, {0, 0, 0, 0});
    memory cv = view(c, sub);
    add_step(dnnl::reorder(dnnl::reorder::primitive_desc(eng_, p.get_desc(), eng_, sub)),
             {{DNNL_ARG_FROM, p}, {DNNL_ARG_TO, cv}});
  }

  // The src layout the library picks for a 3x3 SAME conv channels -> channels at size x size.
  memory::desc preferred_src(int channels, int size) {
    const Pad same = Pad::tf_same(size, size, 3, 3, 1, 1);
    const memory::desc src({n_, channels, size, size}, act_, Tag::any);
    const memory::desc wmd({channels, channels, 3, 3}, act_, Tag::any);
    const memory::desc bmd({channels}, Dt::f32, Tag::a);
    const memory::desc dmd({n_, channels, size, size}, act_, Tag::any);
    dnnl::convolution_forward::desc d(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, src,
                                      wmd, bmd, dmd, {1, 1}, {same.top, same.top}, {same.bottom, same.bottom});
    return dnnl::convolution_forward::primitive_desc(d, eng_).src_desc();
  }

  // Mean over size x size, then fc: one inner product with weights fc[c][o] / (size * size) at every (h, w).
  void head(const memory& x, int size) {
    const int k = static_cast<int>(net_.fc.size()) / kDlibDescriptorSize;
    const memory::desc wmd({kDlibDescriptorSize, k, size, size}, act_, Tag::any);
    const memory::desc dmd({n_, kDlibDescriptorSize}, Dt::f32, Tag::nc);
    dnnl::inner_product_forward::desc d(dnnl::prop_kind::forward_inference, x.get_desc(), wmd, dmd);
    dnnl::inner_product_forward::primitive_desc pd(d, eng_);
    const std::size_t fc_index = net_.convs.size();  // the weight cache slot after the convs
    memory w;
    for (const auto& m : weight_cache_[fc_index])
      if (m.get_desc() == pd.weights_desc()) w = m;
    if (!w) {
      const float inv = 1.f / static_cast<float>(size * size);
      std::vector<float> oihw(static_cast<std::size_t>(kDlibDescriptorSize) * k * size * size);
      for (int o = 0; o < kDlibDescriptorSize; ++o)
        for (int c = 0; c < k; ++c)
          for (int i = 0; i < size * size; ++i)
            oihw[(static_cast<std::size_t>(o) * k + c) * size * size + i] = net_.fc[static_cast<std::size_t>(c) * kDlibDescriptorSize + o] * inv;
      memory src(memory::desc({kDlibDescriptorSize, k, size, size}, Dt::f32, Tag::oihw), eng_, oihw.data());
      w = memory(pd.weights_desc(), eng_);
      dnnl::reorder(src, w).execute(stream_, src, w);
      stream_.wait();
      weight_cache_[fc_index].push_back(w);
    }
    plan_.output = memory(dmd, eng_, DNNL_MEMORY_NONE);
    add_step(dnnl::inner_product_forward(pd), {{DNNL_ARG_SRC, x}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DST, plan_.output}});
  }

  using Pad = model::Pad;
  const NetDef& net_;
  const dnnl::engine& eng_;
  dnnl::stream& stream_;
  Dt act_;
  std::map<std::size_t, std::vector<memory>>& weight_cache_;
  int n_ = 1;
  Plan plan_;
};

// One thread's oneDNN state: its stream, its plans (memories with per-run handles cannot be shared
// between threads) and the arena their activations live in.
struct Worker {
  explicit Worker(const dnnl::engine& eng) : stream(eng) {}
  dnnl::stream stream;
  std::map<int, Plan> plans;
  model::DnnlArena arena;
  std::size_t arena_bytes = 0;
};

// Faces per forward for one worker: with several threads, about two chunks per thread so that a thread
// the (shared) machine does not schedule holds up little of the batch.
int chunk_size(std::size_t faces, int threads) {
  if (threads <= 1) return static_cast<int>(std::clamp<std::size_t>(faces, 1, kMaxForwardBatch));
  const std::size_t per = (faces + 2 * static_cast<std::size_t>(threads) - 1) / (2 * static_cast<std::size_t>(threads));
  return static_cast<int>(std::clamp<std::size_t>(per, 1, kMaxForwardBatch));
}

class DnnlResNetEmbedder final : public Embedder {
 public:
  DnnlResNetEmbedder(NetDef net, const DnnlResNetOptions& o, EmbedderFallback fallback)
      : net_(std::move(net)), options_(o), fallback_(std::move(fallback)), engine_(dnnl::engine::kind::cpu, 0) {}

  const std::string& model_id() const override { return model_id_; }
  int chip_size() const override { return kDlibChipSize; }

  // Builds the batch-1 plan now (see create_dlib_resnet_dnnl).
  void prepare() {
    model::OmpThreads one(1);
    plan(worker(0), 1);
  }

  Result<Embedding> embed(const cv::Mat& chip) override {
    FG_ASSIGN_OR_RETURN(std::vector<Embedding> one, embed_batch(std::span<const cv::Mat>(&chip, 1)));
    return std::move(one.front());
  }

  Result<std::vector<Embedding>> embed_batch(std::span<const cv::Mat> chips) override {
    if (delegate_) return delegate_->embed_batch(chips);
    if (chips.empty()) return std::vector<Embedding>{};  // (and no chunk of size 0 below)
    FG_ASSIGN_OR_RETURN(std::vector<cv::Mat> prepared, prepare_chips(chips, prepare_dlib_chip));
    std::vector<float> result(prepared.size() * kDlibDescriptorSize);
    std::string failure = forward(prepared, result);
    if (failure.empty()) {
      std::vector<Embedding> out;
      out.reserve(prepared.size());
      for (std::size_t i = 0; i < prepared.size(); ++i) {
        const float* row = result.data() + i * kDlibDescriptorSize;
        out.push_back(Embedding{model_id_, std::vector<float>(row, row + kDlibDescriptorSize)});
      }
      return out;
    }
    if (!fallback_) return make_error(ErrorCode::kInternal, "dlib ResNet (oneDNN) forward failed: " + failure);
    auto fb = fallback_();
    if (!fb)
      return make_error(fb.error().code, "dlib ResNet: oneDNN failed (" + failure + ") and so did the fallback: " +
                                             fb.error().message);
    delegate_ = std::move(*fb);
    workers_.clear();
    return delegate_->embed_batch(chips);
  }

 private:
  int thread_count() const { return std::max(1, options_.threads > 0 ? options_.threads : cv::getNumThreads()); }

  Worker& worker(std::size_t i) {
    while (workers_.size() <= i) workers_.push_back(std::make_unique<Worker>(engine_));
    return *workers_[i];
  }

  // Parallel over faces, not inside a conv: each worker runs oneDNN single-threaded on chunks it takes in
  // turn. On this 2-core shared machine OpenMP's statically split parallel regions waited for descheduled
  // threads at every primitive (batch 1 on 2 threads: 38 ms wall, 25 ms CPU vs 9.5 ms CPU on one), while
  // chunks taken dynamically keep both cores busy without barriers. Returns "" or what failed.
  std::string forward(const std::vector<cv::Mat>& prepared, std::vector<float>& result) {
    const int threads = thread_count();
    const int chunk = chunk_size(prepared.size(), threads);
    const std::size_t chunks = (prepared.size() + chunk - 1) / chunk;
    const std::size_t used = std::min<std::size_t>(static_cast<std::size_t>(threads), chunks);
    std::atomic<std::size_t> next{0};
    std::mutex failure_mutex;
    std::string failure;
    auto work = [&](Worker& w) {
      model::OmpThreads one(1);
      try {
        const model::InputSpec spec{.size = {net_.input_size, net_.input_size},
                                    .mean_rgb = {kDlibMeanRgb[0], kDlibMeanRgb[1], kDlibMeanRgb[2]},
                                    .scale = kDlibInputScale};
        for (std::size_t c = next++; c < chunks; c = next++) {
          const std::size_t start = c * static_cast<std::size_t>(chunk);
          const std::size_t n = std::min<std::size_t>(chunk, prepared.size() - start);
          const cv::Mat blob = model::input_blob(std::span<const cv::Mat>(prepared).subspan(start, n), spec);
          run(w, plan(w, static_cast<int>(n)), blob.ptr<float>(), result.data() + start * kDlibDescriptorSize);
        }
      } catch (const dnnl::error& e) {
        std::lock_guard lock(failure_mutex);
        failure = std::string("oneDNN: ") + e.what();
        next = chunks;
      } catch (const std::exception& e) {
        std::lock_guard lock(failure_mutex);
        failure = e.what();
        next = chunks;
      }
    };
    for (std::size_t i = 0; i < used; ++i) worker(i);  // created here, not inside the threads
    std::vector<std::thread> helpers;
    try {
      for (std::size_t i = 1; i < used; ++i) helpers.emplace_back(work, std::ref(*workers_[i]));
    } catch (const std::system_error&) {
      // No more threads: the ones started (and this one) take all the chunks.
    }
    work(*workers_[0]);
    for (auto& t : helpers) t.join();
    return failure;
  }

  Plan& plan(Worker& w, int n) {
    auto it = w.plans.find(n);
    if (it != w.plans.end()) return it->second;
    std::lock_guard lock(build_mutex_);  // the weight cache is shared by the workers
    PlanBuilder b(net_, engine_, w.stream, options_.bf16 ? Dt::bf16 : Dt::f32, weight_cache_);
    return w.plans.emplace(n, b.build(n)).first->second;
  }

  static void run(Worker& w, Plan& p, const float* input, float* output) {
    if (w.arena_bytes < p.arena_bytes) {
      w.arena = model::make_dnnl_arena(p.arena_bytes);
      if (!w.arena) throw std::bad_alloc();
      w.arena_bytes = p.arena_bytes;
    }
    for (auto& [m, off] : p.arena_memories) m.set_data_handle(w.arena.get() + off);
    p.input.set_data_handle(const_cast<float*>(input));
    p.output.set_data_handle(output);
    for (auto& s : p.steps) {
      if (s.prim) {
        s.prim.execute(w.stream, s.args);
      } else {
        w.stream.wait();
        std::memset(s.zero.get_data_handle(), 0, s.zero.get_desc().get_size());
      }
    }
    w.stream.wait();
  }

  NetDef net_;
  DnnlResNetOptions options_;
  EmbedderFallback fallback_;
  std::unique_ptr<Embedder> delegate_;  // set after a oneDNN failure
  dnnl::engine engine_;
  std::mutex build_mutex_;
  std::map<std::size_t, std::vector<memory>> weight_cache_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::string model_id_ = kDlibResNetModelId;
};

}  // namespace

bool dlib_resnet_dnnl_available() { return true; }

Result<std::unique_ptr<Embedder>> create_dlib_resnet_dnnl(const model::WeightMap& weights,
                                                          const DnnlResNetOptions& options,
                                                          EmbedderFallback fallback) {
  if (options.input_size < kDlibChipSize)
    return make_error(ErrorCode::kInvalidArgument, "dlib ResNet: input side must be at least 150");
  if (options.threads < 0) return make_error(ErrorCode::kInvalidArgument, "dlib ResNet: threads must be >= 0");
  NetDef net;
  try {
    net = load_net(weights, options.input_size);
  } catch (const std::exception& e) {
    return make_error(ErrorCode::kModelError, std::string("dlib ResNet (oneDNN): ") + e.what());
  }
  try {
    auto e = std::make_unique<DnnlResNetEmbedder>(std::move(net), options, std::move(fallback));
    e->prepare();
    return std::unique_ptr<Embedder>(std::move(e));
  } catch (const std::exception& e) {
    return make_error(ErrorCode::kUnavailable, std::string("dlib ResNet (oneDNN) unavailable: ") + e.what());
  }
}

Result<std::unique_ptr<Embedder>> create_dlib_resnet_dnnl(const std::filesystem::path& manifest,
                                                          const EmbedderOptions& options) {
  auto weights = model::load_weights(manifest);
  if (!weights)
    return make_error(ErrorCode::kModelError, "face_recognition weights: " + weights.error().message);
  const DnnlResNetOptions o{.threads = options.threads, .bf16 = options.bf16};
  return create_dlib_resnet_dnnl(*weights, o, [manifest, options] { return create_dlib_resnet(manifest, options); });
}

}  // namespace faceguard::embed

#else  // !FG_HAVE_DNNL: the build has no oneDNN; Embedder::create uses the OpenCV DNN path.

namespace faceguard::embed {

bool dlib_resnet_dnnl_available() { return false; }

Result<std::unique_ptr<Embedder>> create_dlib_resnet_dnnl(const model::WeightMap&, const DnnlResNetOptions&,
                                                          EmbedderFallback) {
  return make_error(ErrorCode::kUnavailable, "dlib ResNet: this build has no oneDNN");
}

Result<std::unique_ptr<Embedder>> create_dlib_resnet_dnnl(const std::filesystem::path&, const EmbedderOptions&) {
  return make_error(ErrorCode::kUnavailable, "dlib ResNet: this build has no oneDNN");
}

}  // namespace faceguard::embed

#endif
