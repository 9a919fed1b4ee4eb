#include "embed/dlib_resnet.hpp"

#include <algorithm>
#include <string>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "embed/chip_prep.hpp"
#include "model/net_builder.hpp"

namespace faceguard::embed {
namespace {

using model::ConvSpec;
using model::ConvWeights;
using model::NetBuilder;
using model::Node;
using model::Pad;
using model::require;

// Upper bound on the images per forward call: one 150 px face needs about 2 MB of activations,
// so 32 keeps a batch under ~70 MB while already reaching the per-face speed of larger batches.
constexpr std::size_t kMaxForwardBatch = 32;

// conv filters + bias followed by face-api's scale layer (x * weights + biases), folded together.
ConvWeights scaled_conv(const model::WeightMap& w, const std::string& prefix, int k, int in, int out) {
  const model::Tensor& filters = require(w, prefix + "/conv/filters", {k, k, in, out});
  const model::Tensor& bias = require(w, prefix + "/conv/bias", {out});
  const model::Tensor& sw = require(w, prefix + "/scale/weights", {out});
  const model::Tensor& sb = require(w, prefix + "/scale/biases", {out});
  ConvWeights cw = model::conv_weights_hwio(filters, &bias);
  model::fold_scale_shift(cw, sw.data, sb.data);
  return cw;
}

class ResNetBuilder {
 public:
  ResNetBuilder(NetBuilder& b, const model::WeightMap& w) : b_(b), w_(w) {}

  // residualLayer.ts residual(): two 3x3 SAME convs, identity shortcut.
  Node residual(const std::string& p, Node x, int c) {
    const Pad same = Pad::tf_same(size_, size_, 3, 3, 1, 1);
    Node a = b_.conv(p + "/conv1", x, scaled_conv(w_, p + "/conv1", 3, c, c), {.stride = 1, .pad = same});
    a = b_.relu(p + "/conv1/relu", a);
    Node y = b_.conv(p + "/conv2", a, scaled_conv(w_, p + "/conv2", 3, c, c), {.stride = 1, .pad = same});
    y = b_.sum(p + "/add", {y, x});
    return b_.relu(p + "/relu", y);
  }

  // residualLayer.ts residualDown(): 3x3/2 VALID conv then 3x3 SAME conv; shortcut avgpool 2/2 VALID,
  // channels zero-extended; the conv branch is padded bottom/right by one when it is a pixel smaller.
  Node down(const std::string& p, Node x, int cin, int cout) {
    const int conv_size = model::conv_out_size(size_, 3, 2, 0, 0);
    const int pool_size = model::conv_out_size(size_, 2, 2, 0, 0);
    if (conv_size < 1) throw model::BuildError("input too small for block " + p);
    Node a = b_.conv(p + "/conv1", x, scaled_conv(w_, p + "/conv1", 3, cin, cout), {.stride = 2, .pad = Pad::valid()});
    a = b_.relu(p + "/conv1/relu", a);
    Node y = b_.conv(p + "/conv2", a, scaled_conv(w_, p + "/conv2", 3, cout, cout),
                     {.stride = 1, .pad = Pad::tf_same(conv_size, conv_size, 3, 3, 1, 1)});
    if (pool_size == conv_size + 1) {
      y = b_.pad(p + "/pad", y, Pad{0, 0, 1, 1, {}});
    } else if (pool_size != conv_size) {
      throw model::BuildError("block " + p + ": conv and pool sizes differ by more than one");
    }
    Node pooled = b_.ave_pool(p + "/pool", x, {.kernel = 2, .stride = 2, .pad = Pad::valid()});
    // The conv branch (cout channels) comes first so that it sets the output width.
    y = b_.sum(p + "/add", {y, pooled}, /*zero_extend_channels=*/cin != cout);
    size_ = pool_size;
    return b_.relu(p + "/relu", y);
  }

  Node build(int input_size) {
    size_ = input_size;
    Node x = b_.conv("conv32_down", b_.input(), scaled_conv(w_, "conv32_down", 7, 3, 32),
                     {.stride = 2, .pad = Pad::valid()});
    x = b_.relu("conv32_down/relu", x);
    size_ = model::conv_out_size(size_, 7, 2, 0, 0);
    x = b_.max_pool("pool", x, {.kernel = 3, .stride = 2, .pad = Pad::valid()});
    size_ = model::conv_out_size(size_, 3, 2, 0, 0);

    x = residual("conv32_1", x, 32);
    x = residual("conv32_2", x, 32);
    x = residual("conv32_3", x, 32);
    x = down("conv64_down", x, 32, 64);
    x = residual("conv64_1", x, 64);
    x = residual("conv64_2", x, 64);
    x = residual("conv64_3", x, 64);
    x = down("conv128_down", x, 64, 128);
    x = residual("conv128_1", x, 128);
    x = residual("conv128_2", x, 128);
    x = down("conv256_down", x, 128, 256);
    x = residual("conv256_1", x, 256);
    x = residual("conv256_2", x, 256);
    x = down("conv256_down_out", x, 256, 256);

    x = b_.global_ave_pool("mean", x);
    const model::Tensor& fc = require(w_, "fc", {256, kDlibDescriptorSize});
    return b_.dense_tf("fc", x, fc, nullptr);
  }

 private:
  NetBuilder& b_;
  const model::WeightMap& w_;
  int size_ = 0;  // current spatial side
};

class DlibResNetEmbedder final : public Embedder {
 public:
  DlibResNetEmbedder(cv::dnn::Net net, int threads) : net_(std::move(net)), threads_(threads) {}

  const std::string& model_id() const override { return model_id_; }
  int chip_size() const override { return kDlibChipSize; }

  Result<Embedding> embed(const cv::Mat& chip) override {
    FG_ASSIGN_OR_RETURN(std::vector<Embedding> one, embed_batch(std::span<const cv::Mat>(&chip, 1)));
    return std::move(one.front());
  }

  Result<std::vector<Embedding>> embed_batch(std::span<const cv::Mat> chips) override {
    FG_ASSIGN_OR_RETURN(std::vector<cv::Mat> prepared, prepare_chips(chips, prepare_dlib_chip));
    std::vector<Embedding> out;
    out.reserve(chips.size());
    try {
      // cv::setNumThreads is process-wide in OpenCV; an explicit request is applied per call.
      if (threads_ > 0) cv::setNumThreads(threads_);
      for (std::size_t start = 0; start < prepared.size(); start += kMaxForwardBatch) {
        const std::size_t n = std::min(kMaxForwardBatch, prepared.size() - start);
        const model::InputSpec spec{.size = {kDlibChipSize, kDlibChipSize},
                                    .mean_rgb = {kDlibMeanRgb[0], kDlibMeanRgb[1], kDlibMeanRgb[2]},
                                    .scale = kDlibInputScale};
        net_.setInput(model::input_blob(std::span<const cv::Mat>(prepared).subspan(start, n), spec));
        cv::Mat result = net_.forward();  // n x 128
        if (result.dims != 2 || result.rows != static_cast<int>(n) || result.cols != kDlibDescriptorSize)
          return make_error(ErrorCode::kInternal, "dlib ResNet: unexpected output shape");
        for (std::size_t i = 0; i < n; ++i) {
          const float* row = result.ptr<float>(static_cast<int>(i));
          out.push_back(Embedding{model_id_, std::vector<float>(row, row + kDlibDescriptorSize)});
        }
      }
    } catch (const std::exception& e) {
      return make_error(ErrorCode::kInternal, std::string("dlib ResNet forward failed: ") + e.what());
    }
    return out;
  }

 private:
  cv::dnn::Net net_;
  int threads_ = 0;
  std::string model_id_ = kDlibResNetModelId;
};

}  // namespace

Result<cv::dnn::Net> build_dlib_resnet(const model::WeightMap& weights, int input_size) {
  if (input_size < kDlibChipSize)
    return make_error(ErrorCode::kInvalidArgument, "dlib ResNet: input side must be at least 150");
  return model::build_net("dlib ResNet (face_recognition)", [&](NetBuilder& b) {
    ResNetBuilder rb(b, weights);
    b.mark_output(rb.build(input_size));
  });
}

Result<std::unique_ptr<Embedder>> create_dlib_resnet(const std::filesystem::path& manifest,
                                                     const EmbedderOptions& options) {
  auto weights = model::load_weights(manifest);
  if (!weights)
    return make_error(ErrorCode::kModelError, "face_recognition weights: " + weights.error().message);
  FG_ASSIGN_OR_RETURN(cv::dnn::Net net, build_dlib_resnet(*weights));
  return std::unique_ptr<Embedder>(std::make_unique<DlibResNetEmbedder>(std::move(net), options.threads));
}

}  // namespace faceguard::embed
