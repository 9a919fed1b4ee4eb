// Chip checks and conversions shared by the embedders (see chip_prep.hpp).
#include "embed/chip_prep.hpp"

#include <string>

#include <opencv2/imgproc.hpp>

#include "embed/dlib_resnet.hpp"
#include "model/net_builder.hpp"

namespace faceguard::embed {

Result<cv::Mat> chip_to_bgr(const cv::Mat& chip, std::size_t index) {
  const std::string where = "chip " + std::to_string(index);
  if (chip.empty()) return make_error(ErrorCode::kInvalidArgument, where + " is empty");
  // 8-bit chips, or float chips in 0..255 (align(kAxisCrop) keeps face-api's unrounded float chip).
  if (chip.depth() != CV_8U && chip.depth() != CV_32F)
    return make_error(ErrorCode::kInvalidArgument, where + " is neither 8-bit nor float");
  cv::Mat bgr;
  switch (chip.channels()) {
    case 3: bgr = chip; break;
    case 1: cv::cvtColor(chip, bgr, cv::COLOR_GRAY2BGR); break;
    case 4: cv::cvtColor(chip, bgr, cv::COLOR_BGRA2BGR); break;
    default:
      return make_error(ErrorCode::kInvalidArgument, where + " has " + std::to_string(chip.channels()) + " channels");
  }
  return bgr;
}

Result<cv::Mat> prepare_dlib_chip(const cv::Mat& chip, std::size_t index) {
  FG_ASSIGN_OR_RETURN(cv::Mat bgr, chip_to_bgr(chip, index));
  if (bgr.rows == kDlibChipSize && bgr.cols == kDlibChipSize) return bgr;
  cv::Mat square = model::pad_to_square_tf(bgr, /*centred=*/true);
  return model::resize_bilinear_tf(square, {kDlibChipSize, kDlibChipSize});
}

Result<std::vector<cv::Mat>> prepare_chips(std::span<const cv::Mat> chips, ChipPreparer prepare) {
  std::vector<cv::Mat> prepared;
  prepared.reserve(chips.size());
  for (std::size_t i = 0; i < chips.size(); ++i) {
    FG_ASSIGN_OR_RETURN(cv::Mat m, prepare(chips[i], i));
    prepared.push_back(std::move(m));
  }
  return prepared;
}

}  // namespace faceguard::embed
