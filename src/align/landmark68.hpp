// face-api's 68-point landmark nets (face_landmark_68 and face_landmark_68_tiny) on OpenCV DNN.
// Private to the engine; the public entry is Landmarker::create (faceguard/landmarker.hpp).
//
// Architecture (face-api src/faceFeatureExtractor/denseBlock.ts, FaceFeatureExtractor.ts,
// TinyFaceFeatureExtractor.ts, faceProcessor/FaceProcessor.ts):
//   dense block:  out1 = relu(conv0(x))            conv0: 3x3/2 SAME conv + bias in dense0, else separable
//                 out2 = sep(out1)                  sep: separable 3x3 SAME + bias (depthwise, pointwise)
//                 out3 = sep(relu(out1 + out2))
//                 out4 = sep(relu(out1 + out2 + out3))                      (4-conv blocks only)
//                 y    = relu(out1 + out2 + out3 [+ out4])
//   full: 4 blocks of 4 convs (32, 64, 128, 256), avgpool 7/2 VALID, fc 256 -> 136.
//   tiny: 3 blocks of 3 convs (32, 64, 128),      avgpool 14/2 VALID, fc 128 -> 136.
// Input 112 x 112 RGB, (x - [122.782, 117.001, 104.298]) / 255. Output 68 interleaved (x, y) in [0, 1]
// of the padded square.
#pragma once

#include <filesystem>
#include <memory>

#include <opencv2/core.hpp>
#include <opencv2/dnn.hpp>

#include "faceguard/landmarker.hpp"
#include "faceguard/result.hpp"
#include "faceguard/types.hpp"
#include "model/weights.hpp"

namespace faceguard::landmark {

inline constexpr int kLandmarkInputSize = 112;
inline constexpr int kLandmarkCount = 68;
// face-api FaceFeatureExtractor.forwardInput: meanRgb [122.782, 117.001, 104.298], then / 255.
inline constexpr double kLandmarkMeanRgb[3] = {122.782, 117.001, 104.298};

// The net: input 1 x 3 x 112 x 112, output 1 x 136.
Result<cv::dnn::Net> build_landmark68_net(const model::WeightMap& weights, bool tiny);

// What face-api crops for a detection box (dom/extractFaceTensors.ts + Box.clipAtImageBorders):
// x, y clipped at 0; width, height clipped at the image's right/bottom edge; all four floored.
// `shift` is what face-api adds to the landmarks afterwards (extendWithFaceLandmarks shifts by the raw,
// unfloored detection box origin); we clip it at 0 like the crop, which equals face-api's value for any
// box inside the image and fixes face-api's offset for boxes that stick out at the left or top.
struct LandmarkCrop {
  cv::Rect rect;
  Point2f shift;
};
// kInvalidArgument when the clipped box is empty or the box is not finite.
Result<LandmarkCrop> landmark_crop(const Box& box, cv::Size image);

// Landmarker from a weights manifest path (the ModelPack-free path, also used by the tests).
// Any load or build failure is kModelError.
Result<std::unique_ptr<Landmarker>> create_landmarker(const std::filesystem::path& manifest,
                                                      const LandmarkerOptions& options);

}  // namespace faceguard::landmark
