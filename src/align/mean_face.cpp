// dlib's mean face on the dlib150 chip: what AlignMethod::kMeanFace fits a 68-point face to.
//
// The dlib ResNet descriptor was trained on chips cut by dlib's get_face_chip_details(shape, 150, 0.25)
// (dlib/image_transforms/interpolation.h, dlib 19.x; the dnn_face_recognition_ex.cpp example and the
// face_recognition package use it). For a 68-point shape that function does not use five points: it fits
// a similarity transform, by least squares, from the shape's points 17..67 to dlib's "average positions
// of face points 17-67" (a unit face box), skipping the eyebrows (17-26) and the lower lip (55-59, 65-67),
// i.e. 33 points, each mapped to (padding + mean) / (1 + 2 * padding) * size. The table below is that mean
// shape (the numbers as published in dlib, Boost Software License 1.0), so that this chip matches the
// training chips as closely as the landmarks allow, with many points averaging out landmark noise.
#include <array>
#include <string>
#include <utility>
#include <vector>

#include "faceguard/aligner.hpp"

namespace faceguard {
namespace {

// Mean face points 17..67 (x, y) in units of the face box, from dlib's get_face_chip_details.
constexpr std::array<std::array<double, 2>, 51> kDlibMeanFace17To67{{
    {0.000213256, 0.106454}, {0.0752622, 0.038915}, {0.18113, 0.0187482},  {0.29077, 0.0344891},
    {0.393397, 0.0773906},   {0.586856, 0.0773906}, {0.689483, 0.0344891}, {0.799124, 0.0187482},
    {0.904991, 0.038915},    {0.98004, 0.106454},   {0.490127, 0.203352},  {0.490127, 0.307009},
    {0.490127, 0.409805},    {0.490127, 0.515625},  {0.36688, 0.587326},   {0.426036, 0.609345},
    {0.490127, 0.628106},    {0.554217, 0.609345},  {0.613373, 0.587326},  {0.121737, 0.216423},
    {0.187122, 0.178758},    {0.265825, 0.179852},  {0.334606, 0.231733},  {0.260918, 0.245099},
    {0.182743, 0.244077},    {0.645647, 0.231733},  {0.714428, 0.179852},  {0.793132, 0.178758},
    {0.858516, 0.216423},    {0.79751, 0.244077},   {0.719335, 0.245099},  {0.254149, 0.780233},
    {0.340985, 0.745405},    {0.428858, 0.727388},  {0.490127, 0.742578},  {0.551395, 0.727388},
    {0.639268, 0.745405},    {0.726104, 0.780233},  {0.642159, 0.864805},  {0.556721, 0.902192},
    {0.490127, 0.909281},    {0.423532, 0.902192},  {0.338094, 0.864805},  {0.290379, 0.784792},
    {0.428096, 0.778746},    {0.490127, 0.785343},  {0.552157, 0.778746},  {0.689874, 0.784792},
    {0.553364, 0.824182},    {0.490127, 0.831803},  {0.42689, 0.824182},
}};

constexpr double kPadding = 0.25;  // face_recognition / dnn_face_recognition_ex: get_face_chip_details(shape, 150, 0.25)
constexpr int kChipSize = 150;

std::vector<std::pair<int, Point2f>> make_pairs() {
  std::vector<std::pair<int, Point2f>> out;
  for (int i = 17; i < 68; ++i) {
    if ((55 <= i && i <= 59) || (65 <= i && i <= 67)) continue;  // lower lip: moves with the jaw
    if (i <= 26) continue;                                        // eyebrows: move with expression
    const auto& m = kDlibMeanFace17To67[static_cast<std::size_t>(i - 17)];
    const double scale = kChipSize / (1 + 2 * kPadding);
    out.emplace_back(i, Point2f{static_cast<float>((kPadding + m[0]) * scale),
                                static_cast<float>((kPadding + m[1]) * scale)});
  }
  return out;
}

}  // namespace

const char* to_string(AlignMethod method) {
  switch (method) {
    case AlignMethod::kSimilarity5: return "similarity";
    case AlignMethod::kAxisCrop: return "crop";
    case AlignMethod::kMeanFace: return "mean-face";
  }
  return "unknown";
}

Result<AlignMethod> parse_align_method(std::string_view name) {
  for (AlignMethod m : {AlignMethod::kSimilarity5, AlignMethod::kAxisCrop, AlignMethod::kMeanFace})
    if (name == to_string(m)) return m;
  return make_error(ErrorCode::kInvalidArgument,
                    "alignment must be similarity, crop or mean-face, not '" + std::string(name) + "'");
}

std::span<const std::pair<int, Point2f>> dlib150_mean_face() {
  static const std::vector<std::pair<int, Point2f>> pairs = make_pairs();
  return pairs;
}

}  // namespace faceguard
