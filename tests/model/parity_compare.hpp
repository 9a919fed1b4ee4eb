// Comparison of faceguard results with the face-api.js reference (scripts/reference/make_reference.js).
// Pure functions over plain values, so the parity test's own ability to fail is testable without models.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <sstream>
#include <string>
#include <vector>

#include "faceguard/types.hpp"

namespace faceguard::parity {

struct ScoredBox {
  Box box;
  float score = 0.f;
};

// Largest corner deviation in pixels: max over |dx|, |dy|, |d right|, |d bottom|.
inline double box_deviation(const Box& a, const Box& b) {
  return std::max({std::abs(double(a.x) - b.x), std::abs(double(a.y) - b.y),
                   std::abs(double(a.right()) - b.right()), std::abs(double(a.bottom()) - b.bottom())});
}

inline double iou_of(const Box& a, const Box& b) {
  const double ix = std::max(0.0, std::min<double>(a.right(), b.right()) - std::max<double>(a.x, b.x));
  const double iy = std::max(0.0, std::min<double>(a.bottom(), b.bottom()) - std::max<double>(a.y, b.y));
  const double inter = ix * iy;
  const double uni = double(a.area()) + b.area() - inter;
  return uni > 0 ? inter / uni : 0.0;
}

// What a detection comparison found. A detection near the score threshold may legitimately be present on one
// side only (the two engines differ in the last float bits); `score_margin` says how near counts.
struct DetectionReport {
  std::size_t reference = 0;
  std::size_t ours = 0;
  std::size_t matched = 0;
  double max_box_px = 0;    // over matched pairs
  double max_score = 0;     // |score difference| over matched pairs
  std::vector<std::string> problems;
  bool ok() const { return problems.empty(); }
  std::string summary() const {
    std::ostringstream s;
    s << "ref " << reference << ", ours " << ours << ", matched " << matched << ", max box dev " << max_box_px
      << " px, max score dev " << max_score;
    for (const auto& p : problems) s << "\n  " << p;
    return s.str();
  }
};

// Greedy one-to-one matching in reference order (descending score) by IoU >= 0.5, then tolerance checks.
inline DetectionReport compare_detections(const std::vector<ScoredBox>& ref, const std::vector<ScoredBox>& ours,
                                          double box_tol_px, double score_tol, float min_score,
                                          float score_margin) {
  DetectionReport r;
  r.reference = ref.size();
  r.ours = ours.size();
  std::vector<bool> used(ours.size(), false);
  auto describe = [](const ScoredBox& d) {
    std::ostringstream s;
    s << "[" << d.box.x << "," << d.box.y << " " << d.box.width << "x" << d.box.height << " score " << d.score << "]";
    return s.str();
  };
  for (std::size_t i = 0; i < ref.size(); ++i) {
    std::ptrdiff_t best = -1;
    double best_iou = 0.5;
    for (std::size_t j = 0; j < ours.size(); ++j) {
      if (used[j]) continue;
      const double v = iou_of(ref[i].box, ours[j].box);
      if (v >= best_iou) {
        best_iou = v;
        best = static_cast<std::ptrdiff_t>(j);
      }
    }
    if (best < 0) {
      if (ref[i].score > min_score + score_margin) r.problems.push_back("reference box unmatched: " + describe(ref[i]));
      continue;
    }
    used[best] = true;
    ++r.matched;
    const double dev = box_deviation(ref[i].box, ours[best].box);
    const double sdev = std::abs(double(ref[i].score) - ours[best].score);
    r.max_box_px = std::max(r.max_box_px, dev);
    r.max_score = std::max(r.max_score, sdev);
    if (dev > box_tol_px) {
      std::ostringstream s;
      s << "box " << describe(ref[i]) << " vs ours " << describe(ours[best]) << ": " << dev << " px > " << box_tol_px;
      r.problems.push_back(s.str());
    }
    if (sdev > score_tol) {
      std::ostringstream s;
      s << "score " << describe(ref[i]) << " vs ours " << ours[best].score << ": " << sdev << " > " << score_tol;
      r.problems.push_back(s.str());
    }
  }
  for (std::size_t j = 0; j < ours.size(); ++j) {
    if (!used[j] && ours[j].score > min_score + score_margin) {
      r.problems.push_back("our box has no reference: " + describe(ours[j]));
    }
  }
  return r;
}

struct PointReport {
  double max_px = 0;
  double mean_px = 0;
  std::size_t worst = 0;  // index of the worst point
  std::string problem;    // empty when within tolerance
  bool ok() const { return problem.empty(); }
};

// Per-point Euclidean distance; fails on a count mismatch or when any point is farther than tol_px.
inline PointReport compare_points(const std::vector<Point2f>& ref, const std::vector<Point2f>& ours, double tol_px) {
  PointReport r;
  if (ref.size() != ours.size() || ref.empty()) {
    r.problem = "point count " + std::to_string(ours.size()) + " vs reference " + std::to_string(ref.size());
    return r;
  }
  double sum = 0;
  for (std::size_t i = 0; i < ref.size(); ++i) {
    const double d = std::hypot(double(ref[i].x) - ours[i].x, double(ref[i].y) - ours[i].y);
    sum += d;
    if (d > r.max_px) {
      r.max_px = d;
      r.worst = i;
    }
  }
  r.mean_px = sum / ref.size();
  if (r.max_px > tol_px) {
    std::ostringstream s;
    s << "point " << r.worst << " off by " << r.max_px << " px (> " << tol_px << "), mean " << r.mean_px;
    r.problem = s.str();
  }
  return r;
}

// Euclidean distance; +inf on a size mismatch so that it can never pass a tolerance.
inline double l2_distance(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size() || a.empty()) return INFINITY;
  double s = 0;
  for (std::size_t i = 0; i < a.size(); ++i) s += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
  return std::sqrt(s);
}

}  // namespace faceguard::parity
