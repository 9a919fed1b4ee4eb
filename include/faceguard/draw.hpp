// faceguard/draw.hpp - annotating an image with detected faces (boxes, landmarks, labels).
//
//   cv::Mat out = bgr.clone();
//   faceguard::draw_faces(out, faces);                       // labels "#0 0.98", "#1 0.91", ...
//   faceguard::draw_faces(out, faces, {"anna", "ben"});       // caller's labels, one per face
//
// Line widths and the font scale follow the image size so that a 4000 px photo and a 300 px crop both stay
// legible. Drawing never reads outside the image (OpenCV clips), so faces partly outside the frame are fine.
// Thread safety: pure function on the caller's image.
#pragma once

#include <span>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "faceguard/result.hpp"
#include "faceguard/types.hpp"

namespace faceguard {

struct DrawOptions {
  bool boxes = true;
  bool landmarks = true;
  bool labels = true;  // default label "#<index> <score>" when the caller gives none
  int thickness = 0;   // 0: from the image size (about 1/400 of the longer side, at least 1)
};

// The colour for face index i (BGR): a fixed palette so that the same index looks the same in every image.
cv::Scalar face_colour(std::size_t index);

// bgr: 8-bit, 3 channels (kInvalidArgument otherwise). labels: empty, or one per face (empty string = none).
Status draw_faces(cv::Mat& bgr, std::span<const Face> faces, std::span<const std::string> labels = {},
                  const DrawOptions& options = {});

}  // namespace faceguard
