// Five-point extraction, least-squares similarity fit and chip warping (faceguard/aligner.hpp).
#include "faceguard/aligner.hpp"

#include <cmath>
#include <string>
#include <vector>

#include <opencv2/imgproc.hpp>

#include "model/net_builder.hpp"

namespace faceguard {
namespace {

bool finite(const Point2f& p) { return std::isfinite(p.x) && std::isfinite(p.y); }

Point2f mean_of(const std::vector<Point2f>& pts, int first, int last) {  // [first, last]
  double x = 0, y = 0;
  for (int i = first; i <= last; ++i) x += pts[i].x, y += pts[i].y;
  const double n = last - first + 1;
  return {static_cast<float>(x / n), static_cast<float>(y / n)};
}

Result<cv::Mat> to_bgr(const cv::Mat& image) {
  if (image.empty()) return make_error(ErrorCode::kInvalidArgument, "align: empty image");
  if (image.depth() != CV_8U) return make_error(ErrorCode::kInvalidArgument, "align: image is not 8-bit");
  cv::Mat bgr;
  switch (image.channels()) {
    case 3: return image;
    case 1: cv::cvtColor(image, bgr, cv::COLOR_GRAY2BGR); return bgr;
    case 4: cv::cvtColor(image, bgr, cv::COLOR_BGRA2BGR); return bgr;
    default: return make_error(ErrorCode::kInvalidArgument, "align: image must have 1, 3 or 4 channels");
  }
}

// face-api FaceLandmarks.alignDlib (classes/FaceLandmarks.ts): a square box from the eye and mouth
// centres, relX 0.5, relY 0.43, relScale 0.45. face-api also caps the side at the landmark crop's size
// plus the offset, a bound that never binds for a box of the face's own scale; it is not reproduced.
Box dlib_alignment_box(const std::vector<Point2f>& p) {
  constexpr double kRelX = 0.5, kRelY = 0.43, kRelScale = 0.45;
  auto centre = [&](int first, int last) {
    double x = 0, y = 0;
    for (int i = first; i <= last; ++i) x += p[i].x, y += p[i].y;
    const double n = last - first + 1;
    return cv::Point2d(x / n, y / n);
  };
  const cv::Point2d le = centre(36, 41), re = centre(42, 47), mouth = centre(48, 67);
  const double eye_to_mouth = (cv::norm(mouth - le) + cv::norm(mouth - re)) / 2;
  const double size = std::floor(eye_to_mouth / kRelScale);
  const cv::Point2d ref = (le + re + mouth) / 3.0;
  const double x = std::floor(std::max(0.0, ref.x - kRelX * size));
  const double y = std::floor(std::max(0.0, ref.y - kRelY * size));
  return Box{static_cast<float>(x), static_cast<float>(y), static_cast<float>(size), static_cast<float>(size)};
}

// Box.clipAtImageBorders then floor (dom/extractFaceTensors.ts).
Result<cv::Rect> clip_box(const Box& box, cv::Size image) {
  if (!std::isfinite(box.x) || !std::isfinite(box.y) || !std::isfinite(box.width) || !std::isfinite(box.height))
    return make_error(ErrorCode::kInvalidArgument, "align: box is not finite");
  const double cx = std::max<double>(box.x, 0.0), cy = std::max<double>(box.y, 0.0);
  const double w = std::floor(std::min<double>(static_cast<double>(box.x) + box.width - cx, image.width - cx));
  const double h = std::floor(std::min<double>(static_cast<double>(box.y) + box.height - cy, image.height - cy));
  if (!(w > 0) || !(h > 0) || cx >= image.width || cy >= image.height)
    return make_error(ErrorCode::kInvalidArgument, "align: face box does not overlap the image");
  cv::Rect r(static_cast<int>(std::floor(cx)), static_cast<int>(std::floor(cy)), static_cast<int>(w),
             static_cast<int>(h));
  return r & cv::Rect(0, 0, image.width, image.height);
}

}  // namespace

Result<std::array<Point2f, 5>> five_points(const Face& face) {
  const auto& p = face.landmarks;
  std::array<Point2f, 5> r{};
  switch (face.scheme) {
    case LandmarkScheme::kIbug68:
      if (p.size() != 68) return make_error(ErrorCode::kInvalidArgument, "five_points: iBUG-68 face without 68 points");
      // iBUG 36-41 is the subject's right eye, which is on the image's left.
      r = {mean_of(p, 36, 41), mean_of(p, 42, 47), p[30], p[48], p[54]};
      break;
    case LandmarkScheme::kBlazeFace6:
      if (p.size() < 4) return make_error(ErrorCode::kInvalidArgument, "five_points: BlazeFace face without keypoints");
      r = {p[0], p[1], p[2], p[3], p[3]};  // mouth centre in both mouth slots (see templates.cpp)
      break;
    case LandmarkScheme::kFivePoint:
      if (p.size() != 5) return make_error(ErrorCode::kInvalidArgument, "five_points: five-point face without 5 points");
      r = {p[0], p[1], p[2], p[3], p[4]};
      break;
    case LandmarkScheme::kNone:
    default:
      return make_error(ErrorCode::kInvalidArgument, "five_points: the face has no landmarks");
  }
  for (const Point2f& q : r)
    if (!finite(q)) return make_error(ErrorCode::kInvalidArgument, "five_points: landmark is not finite");
  return r;
}

// Weighted least squares over similarity transforms q = [a -b; b a] p + t. The problem is linear in
// (a, b, tx, ty), so the closed form below (Umeyama's, without the reflection case, which a
// similarity with positive scale cannot produce) is the exact minimiser and fully deterministic.
Result<cv::Mat> similarity_transform(std::span<const Point2f> src, std::span<const Point2f> dst,
                                     std::span<const float> weights) {
  if (src.size() != dst.size() || (!weights.empty() && weights.size() != src.size()))
    return make_error(ErrorCode::kInvalidArgument, "similarity: point lists differ in length");
  auto weight = [&](std::size_t i) { return weights.empty() ? 1.0 : static_cast<double>(weights[i]); };
  double wsum = 0, px = 0, py = 0, qx = 0, qy = 0;
  int used = 0;
  for (std::size_t i = 0; i < src.size(); ++i) {
    const double w = weight(i);
    if (!std::isfinite(w) || w < 0) return make_error(ErrorCode::kInvalidArgument, "similarity: bad template weight");
    if (!finite(src[i]) || !finite(dst[i]))
      return make_error(ErrorCode::kInvalidArgument, "similarity: point is not finite");
    if (w == 0) continue;
    ++used;
    wsum += w;
    px += w * src[i].x, py += w * src[i].y, qx += w * dst[i].x, qy += w * dst[i].y;
  }
  if (used < 2 || wsum <= 0) return make_error(ErrorCode::kInvalidArgument, "similarity: fewer than two weighted points");
  px /= wsum, py /= wsum, qx /= wsum, qy /= wsum;
  double sxx = 0, a = 0, b = 0, tyy = 0;
  for (std::size_t i = 0; i < src.size(); ++i) {
    const double w = weight(i);
    if (w == 0) continue;
    const double ux = src[i].x - px, uy = src[i].y - py;
    const double vx = dst[i].x - qx, vy = dst[i].y - qy;
    sxx += w * (ux * ux + uy * uy);
    tyy += w * (vx * vx + vy * vy);
    a += w * (ux * vx + uy * vy);
    b += w * (ux * vy - uy * vx);
  }
  // Degenerate: all source points (or all template points) on one spot. Relative to the template's
  // spread, so a tiny face is still fine while coincident landmarks are refused.
  if (!(sxx > 1e-12 * std::max(tyy, 1.0)) || !(tyy > 0))
    return make_error(ErrorCode::kInvalidArgument, "similarity: landmarks are degenerate (coincident points)");
  a /= sxx, b /= sxx;
  const double scale = std::hypot(a, b);
  if (!(scale > 1e-6) || !std::isfinite(scale))
    return make_error(ErrorCode::kInvalidArgument, "similarity: landmarks are degenerate (no consistent scale)");
  cv::Mat m = (cv::Mat_<double>(2, 3) << a, -b, qx - (a * px - b * py), b, a, qy - (b * px + a * py));
  return m;
}

Result<cv::Mat> similarity_transform(const std::array<Point2f, 5>& src, const ChipTemplate& tpl) {
  return similarity_transform(std::span<const Point2f>(src), std::span<const Point2f>(tpl.points),
                              std::span<const float>(tpl.weights));
}

Result<cv::Mat> axis_crop(const cv::Mat& image, const Face& face) {
  FG_ASSIGN_OR_RETURN(cv::Mat bgr, to_bgr(image));
  Box box = face.box;
  if (face.scheme == LandmarkScheme::kIbug68 && face.landmarks.size() == 68) {
    for (const Point2f& p : face.landmarks)
      if (!finite(p)) return make_error(ErrorCode::kInvalidArgument, "align: landmark is not finite");
    box = dlib_alignment_box(face.landmarks);
  }
  FG_ASSIGN_OR_RETURN(cv::Rect r, clip_box(box, bgr.size()));
  return bgr(r).clone();
}

Result<cv::Mat> alignment_transform(const Face& face, const ChipTemplate& tpl, AlignMethod method) {
  if (method == AlignMethod::kAxisCrop)
    return make_error(ErrorCode::kInvalidArgument, "align: the axis crop has no alignment transform");
  if (method == AlignMethod::kMeanFace && face.scheme == LandmarkScheme::kIbug68 && face.landmarks.size() == 68 &&
      tpl.name == ChipTemplate::dlib150().name) {
    const auto pairs = dlib150_mean_face();
    std::vector<Point2f> src, dst;
    src.reserve(pairs.size()), dst.reserve(pairs.size());
    for (const auto& [index, chip_point] : pairs) {
      src.push_back(face.landmarks[static_cast<std::size_t>(index)]);
      dst.push_back(chip_point);
    }
    return similarity_transform(src, dst);
  }
  FG_ASSIGN_OR_RETURN(auto pts, five_points(face));
  return similarity_transform(pts, tpl);
}

Result<cv::Mat> align(const cv::Mat& image, const Face& face, const ChipTemplate& tpl, AlignMethod method) {
  if (tpl.size <= 0 || tpl.size > 4096) return make_error(ErrorCode::kInvalidArgument, "align: bad template size");
  if (method == AlignMethod::kAxisCrop) {
    FG_ASSIGN_OR_RETURN(cv::Mat crop, axis_crop(image, face));
    try {
      // NetInput.toBatchTensor: centred zero padding, TF bilinear resize. The chip stays float (CV_32FC3,
      // 0..255) as face-api feeds it to the net: rounding it to 8 bits alone moves the descriptor by
      // 4-8e-3 L2 (measured by the parity test), above the 1e-3 parity bound.
      cv::Mat square = model::pad_to_square_tf(crop, /*centred=*/true);
      if (square.rows == tpl.size) return square;
      cv::Mat chip;
      model::resize_bilinear_tf(square, {tpl.size, tpl.size}).convertTo(chip, CV_32F);
      return chip;
    } catch (const std::exception& e) {
      return make_error(ErrorCode::kInternal, std::string("align: ") + e.what());
    }
  }
  FG_ASSIGN_OR_RETURN(cv::Mat bgr, to_bgr(image));
  FG_ASSIGN_OR_RETURN(cv::Mat m, alignment_transform(face, tpl, method));
  cv::Mat chip;
  // Bilinear, constant black outside the image: what dlib's extract_image_chip and InsightFace's
  // norm_crop (cv2.warpAffine, borderValue 0) do when these templates were made, so chips near the
  // image border look like the training chips. Replicating the border would smear edge pixels into
  // long streaks across the chip.
  cv::warpAffine(bgr, chip, m, cv::Size(tpl.size, tpl.size), cv::INTER_LINEAR, cv::BORDER_CONSTANT, cv::Scalar::all(0));
  return chip;
}

}  // namespace faceguard
