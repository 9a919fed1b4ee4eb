// faceguard/aligner.hpp - geometric normalisation of a face before embedding.
//
//   auto chip = faceguard::align(bgr, face, faceguard::ChipTemplate::dlib150());  // 150x150 BGR
//
// All alignment templates live in src/align/templates.cpp, each with its provenance.
// Thread safety: pure functions.
#pragma once

#include <array>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include <opencv2/core.hpp>

#include "faceguard/result.hpp"
#include "faceguard/types.hpp"

namespace faceguard {

// Five reference points in chip pixels: image-left eye centre, image-right eye centre, nose tip,
// image-left mouth corner, image-right mouth corner (for the BlazeFace variant: mouth centre twice).
struct ChipTemplate {
  std::string name;
  int size = 0;  // square chip side in pixels
  std::array<Point2f, 5> points{};
  std::array<float, 5> weights{1, 1, 1, 1, 1};  // least-squares weights (0 drops a point)

  static const ChipTemplate& dlib150();            // from 68-point landmarks (measured dlib chip, padding 0.25)
  static const ChipTemplate& dlib150_blazeface();  // from BlazeFace keypoints (measured on LFW)
  static const ChipTemplate& arcface112();         // InsightFace ArcFace 112 template
  static const ChipTemplate& arcface112_blazeface();
};

enum class AlignMethod {
  kSimilarity5,  // 5-point similarity warp onto a template
  kAxisCrop,     // face-api.js style: axis-aligned box crop, padded square, resized
  kMeanFace,     // (the pipeline's default) dlib's own get_face_chip_details: a 68-point face is fitted to dlib's mean face over its
                 // 33 stable points (eyes, nose, upper lip and mouth corners) onto the dlib150 chip; faces
                 // with other landmarks, and other chip families, use the 5-point warp
};

// "similarity", "crop", "mean-face" (the CLI's --align values) and back; kInvalidArgument for others.
const char* to_string(AlignMethod method);
Result<AlignMethod> parse_align_method(std::string_view name);

// The 33 (iBUG index, dlib150 chip position) pairs kMeanFace fits, from dlib's mean face shape with
// padding 0.25 (src/align/mean_face.cpp gives the provenance).
std::span<const std::pair<int, Point2f>> dlib150_mean_face();

// Five points (template order) from a face's landmarks (68-point or BlazeFace keypoints).
Result<std::array<Point2f, 5>> five_points(const Face& face);
// The template that suits the face's landmark scheme for a chip family ("dlib150" or "arcface112").
const ChipTemplate& template_for(const Face& face, bool arcface);

// The 2x3 similarity transform that maps source points onto the template (least squares).
Result<cv::Mat> similarity_transform(const std::array<Point2f, 5>& src, const ChipTemplate& tpl);
// The same over any number of point pairs src[i] -> dst[i] (weights: empty for all 1; 0 drops a point).
Result<cv::Mat> similarity_transform(std::span<const Point2f> src, std::span<const Point2f> dst,
                                     std::span<const float> weights = {});

Result<cv::Mat> align(const cv::Mat& bgr, const Face& face, const ChipTemplate& tpl,
                      AlignMethod method = AlignMethod::kSimilarity5);

// Test-time augmentation of a chip (dlib's jitter_image, deterministic): a similarity about the chip centre
// c = ((size - 1) / 2, (size - 1) / 2) that maps a chip pixel p to  s R(theta) (p - c) + c + (dx, dy)  with
// s = scale, theta = rotation_deg (clockwise on screen: image y points down), shift (dx, dy) in chip pixels.
// scale > 1 zooms in. The identity jitter changes nothing.
struct ChipJitter {
  float scale = 1.f;
  float rotation_deg = 0.f;
  float dx = 0.f;
  float dy = 0.f;
};

// The fixed jitter set, in the order a pipeline with N jitters uses its first N: rotation +-3 deg,
// scale +-5 %, shift +-2 px in x then y (the ranges of dlib's jitter_image: rotation +-3 deg, scale
// 0.97-1.0, shift +-2 % of the chip), then the four diagonal shifts combined with the opposite rotation.
std::span<const ChipJitter> standard_jitters();

// The 2x3 chip-to-jittered-chip matrix of a jitter for a chip of side `size` (see ChipJitter).
cv::Mat jitter_transform(const ChipJitter& jitter, int size);

// The chip of align(bgr, face, tpl, method), jittered. For the warp methods the jitter is composed with the
// alignment transform (one bilinear interpolation of the source image, black outside it, as align()); the
// axis crop is jittered on its chip (bilinear, black border). The identity jitter returns align()'s chip.
Result<cv::Mat> align_jittered(const cv::Mat& bgr, const Face& face, const ChipTemplate& tpl, AlignMethod method,
                               const ChipJitter& jitter);

// The 2x3 source-image-to-chip transform align() warps with (kSimilarity5, kMeanFace); kInvalidArgument for
// kAxisCrop, which is a crop and resize, not a warp.
Result<cv::Mat> alignment_transform(const Face& face, const ChipTemplate& tpl, AlignMethod method);

// face-api.js's crop for the recognition net, before any resizing: the box from the 68 landmarks
// (FaceLandmarks.align with useDlibAlignment) or else the detection box, clipped to the image and floored.
// Embedder::embed pads and resizes such a crop exactly as face-api's NetInput does, so embedding it
// reproduces face-api's descriptor; align(..., kAxisCrop) is the same crop already resized (float CV_32FC3, unrounded).
Result<cv::Mat> axis_crop(const cv::Mat& bgr, const Face& face);

}  // namespace faceguard
