// Face annotation: boxes, landmark dots and a filled label tag per face, scaled to the image size.
#include "faceguard/draw.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>

#include <opencv2/imgproc.hpp>

namespace faceguard {
namespace {

// Tableau-10-like colours (BGR), distinguishable on photos and for most colour-blind readers.
constexpr std::array<std::array<int, 3>, 10> kPalette{{
    {180, 119, 31}, {14, 127, 255}, {44, 160, 44}, {40, 39, 214}, {189, 103, 148},
    {75, 86, 140}, {194, 119, 227}, {127, 127, 127}, {34, 189, 188}, {207, 190, 23},
}};

// 1/400 of the longer side: 2 px lines on a 640 px image would vanish on a 1920 px one shrunk to a screen.
int auto_thickness(const cv::Mat& img) { return std::max(1, std::max(img.cols, img.rows) / 400); }

std::string default_label(std::size_t i, const Face& f) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "#%zu %.2f", i, static_cast<double>(f.score));
  return buf;
}

bool finite(const Point2f& p) { return std::isfinite(p.x) && std::isfinite(p.y); }

// Integer pixel coordinates, clamped well inside int so OpenCV's fixed-point drawing never overflows on
// absurd (but finite) coordinates from a corrupt face.
cv::Point to_pixel(float x, float y) {
  constexpr float kLimit = 1 << 20;
  return {static_cast<int>(std::lround(std::clamp(x, -kLimit, kLimit))),
          static_cast<int>(std::lround(std::clamp(y, -kLimit, kLimit)))};
}

void draw_label(cv::Mat& img, const std::string& text, cv::Point anchor, const cv::Scalar& colour, int thickness) {
  const int font = cv::FONT_HERSHEY_SIMPLEX;
  const double scale = 0.35 * thickness + 0.15;
  int baseline = 0;
  const cv::Size ts = cv::getTextSize(text, font, scale, thickness, &baseline);
  const int pad = thickness + 1;
  // Above the box when there is room, else inside its top edge.
  int top = anchor.y - ts.height - baseline - 2 * pad;
  if (top < 0) top = std::max(0, anchor.y);
  int left = std::clamp(anchor.x, 0, std::max(0, img.cols - ts.width - 2 * pad));
  const cv::Rect tag(left, top, ts.width + 2 * pad, ts.height + baseline + 2 * pad);
  cv::rectangle(img, tag, colour, cv::FILLED);
  // White or black text, whichever contrasts with the tag (ITU-R BT.601 luma).
  const double luma = 0.114 * colour[0] + 0.587 * colour[1] + 0.299 * colour[2];
  const cv::Scalar ink = luma > 140 ? cv::Scalar(0, 0, 0) : cv::Scalar(255, 255, 255);
  cv::putText(img, text, {left + pad, top + pad + ts.height}, font, scale, ink, thickness, cv::LINE_AA);
}

}  // namespace

cv::Scalar face_colour(std::size_t index) {
  const auto& c = kPalette[index % kPalette.size()];
  return {static_cast<double>(c[0]), static_cast<double>(c[1]), static_cast<double>(c[2])};
}

Status draw_faces(cv::Mat& bgr, std::span<const Face> faces, std::span<const std::string> labels,
                  const DrawOptions& options) {
  if (bgr.empty() || bgr.type() != CV_8UC3) {
    return make_error(ErrorCode::kInvalidArgument, "draw_faces needs a non-empty 8-bit 3-channel image");
  }
  if (!labels.empty() && labels.size() != faces.size()) {
    return make_error(ErrorCode::kInvalidArgument, "draw_faces: " + std::to_string(labels.size()) +
                                                       " labels for " + std::to_string(faces.size()) + " faces");
  }
  try {
    const int t = options.thickness > 0 ? options.thickness : auto_thickness(bgr);
    for (std::size_t i = 0; i < faces.size(); ++i) {
      const Face& f = faces[i];
      const cv::Scalar colour = face_colour(i);
      const Box& b = f.box;
      const bool box_ok = std::isfinite(b.x) && std::isfinite(b.y) && std::isfinite(b.width) &&
                          std::isfinite(b.height);
      if (options.boxes && box_ok) {
        // Axis-aligned lines gain nothing from anti-aliasing, and LINE_8 keeps the colour exact.
        cv::rectangle(bgr, to_pixel(b.x, b.y), to_pixel(b.right(), b.bottom()), colour, t, cv::LINE_8);
      }
      if (options.landmarks) {
        // 68 points need small dots; 5-6 keypoints are sparse enough for larger ones.
        const int r = f.landmarks.size() > 10 ? std::max(1, t) : std::max(2, 2 * t);
        for (const auto& p : f.landmarks) {
          if (finite(p)) cv::circle(bgr, to_pixel(p.x, p.y), r, colour, cv::FILLED, cv::LINE_AA);
        }
      }
      if (options.labels && box_ok) {
        const std::string text = labels.empty() ? default_label(i, f) : labels[i];
        if (!text.empty()) draw_label(bgr, text, to_pixel(b.x, b.y), colour, t);
      }
    }
  } catch (const cv::Exception& e) {
    return make_error(ErrorCode::kInternal, std::string("draw_faces: ") + e.what());
  }
  return ok_status();
}

}  // namespace faceguard
