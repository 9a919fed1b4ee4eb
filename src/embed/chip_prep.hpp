// Turning a caller's chip into what a descriptor network is fed: one place for the checks and conversions the
// embedders share (dlib ResNet on OpenCV DNN and on oneDNN, MobileFaceNet). Private to the engine.
#pragma once

#include <cstddef>
#include <span>
#include <vector>

#include <opencv2/core.hpp>

#include "faceguard/result.hpp"

namespace faceguard::embed {

// A 3-channel chip from a 1-, 3- or 4-channel 8-bit or float (0..255) one; `index` names it in errors
// (kInvalidArgument: empty, other depth, other channel count). No copy when it already has 3 channels.
Result<cv::Mat> chip_to_bgr(const cv::Mat& chip, std::size_t index);

// What face-api feeds its recognition net: the 3-channel chip at 150 x 150; other sizes are padded to a centred
// square and resized as NetInput.toBatchTensor(150, true) does (TF bilinear, float).
Result<cv::Mat> prepare_dlib_chip(const cv::Mat& chip, std::size_t index);

// Every chip of a batch through one of the preparations above; the first failure names its chip.
using ChipPreparer = Result<cv::Mat> (*)(const cv::Mat& chip, std::size_t index);
Result<std::vector<cv::Mat>> prepare_chips(std::span<const cv::Mat> chips, ChipPreparer prepare);

}  // namespace faceguard::embed
