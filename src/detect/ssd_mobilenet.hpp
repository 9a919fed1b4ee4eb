// face-api's SSD MobileNetV1 face detector: the pure decoding steps (ssdMobilenetv1/outputLayer.ts and
// SsdMobilenetv1.locateFaces), kept apart from the network so they can be unit-tested.
#pragma once

#include <optional>

#include "detect/nms.hpp"
#include "faceguard/types.hpp"

namespace faceguard::detect {

inline constexpr int kSsdInputSize = 512;
inline constexpr int kSsdPriors = 5118;
inline constexpr int kSsdMaxResults = 100;  // SsdMobilenetv1Options maxResults default

// outputLayer.ts decodeBoxesLayer: prior [ymin,xmin,ymax,xmax] and encoding [ty,tx,th,tw] with variances
// 10,10,5,5 -> box [ymin,xmin,ymax,xmax] in [0,1] of the padded input square. float32 throughout, in TF.js's
// operation order.
CornerBox ssd_decode_box(const CornerBox& prior, const float encoding[4]);

// locateFaces: clamp to [0,1] of the square, undo the right/bottom padding with face-api's rounded reshaped
// size, scale to source pixels. nullopt where face-api's Rect would refuse a negative size.
std::optional<Box> ssd_box_to_image(const CornerBox& box, int width, int height);

}  // namespace faceguard::detect
