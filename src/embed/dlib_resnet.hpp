// face-api's face_recognition net (dlib's ResNet-29 face descriptor) built on OpenCV DNN.
// Private to the engine; the public entry is Embedder::create (faceguard/embedder.hpp).
//
// Architecture (face-api src/faceRecognitionNet/FaceRecognitionNet.ts, residualLayer.ts):
//   conv 7x7/2 VALID + bias, affine scale, ReLU; maxpool 3/2 VALID;
//   residual x3 (32), down + x3 (64), down + x2 (128), down + x2 (256), down_out (256);
//   mean over H,W; matMul with fc [256,128] (no bias).
//   residual:  relu(scale(conv3x3 SAME(relu(scale(conv3x3 SAME(x))))) + x)
//   down:      relu(scale(conv3x3 SAME(relu(scale(conv3x3/2 VALID(x))))) + zext(avgpool 2/2 VALID(x)))
//              where zext zero-extends the channels, and when the conv branch is one pixel smaller than
//              the pooled branch it is zero-padded by one row at the bottom and one column at the right.
// Every "scale" (x * weights + biases) is folded into the preceding conv's weights.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include <opencv2/dnn.hpp>

#include "faceguard/embedder.hpp"
#include "faceguard/result.hpp"
#include "model/weights.hpp"

namespace faceguard::embed {

inline constexpr const char* kDlibResNetModelId = "dlib-resnet29@face-api-1.7.15";
inline constexpr int kDlibChipSize = 150;
inline constexpr int kDlibDescriptorSize = 128;
// face-api FaceRecognitionNet.forwardInput: meanRgb [122.782, 117.001, 104.298], then / 255.
inline constexpr double kDlibMeanRgb[3] = {122.782, 117.001, 104.298};
inline constexpr double kDlibInputScale = 1.0 / 255.0;

// The net for an input of input_size x input_size (150 for the real model; other sizes >= 150 are
// accepted, used by the reference tests). Output: N x 128. kModelError on missing/mis-shaped weights.
Result<cv::dnn::Net> build_dlib_resnet(const model::WeightMap& weights, int input_size = kDlibChipSize);

// Embedder from the face_recognition weights manifest at `manifest` (the ModelPack-free path, also used
// by the tests to feed a wrong file). Any load or build failure is kModelError.
Result<std::unique_ptr<Embedder>> create_dlib_resnet(const std::filesystem::path& manifest,
                                                     const EmbedderOptions& options);

}  // namespace faceguard::embed
