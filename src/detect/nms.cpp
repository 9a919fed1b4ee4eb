#include "detect/nms.hpp"

#include <algorithm>
#include <numeric>

namespace faceguard::detect {

double corner_iou(const CornerBox& a, const CornerBox& b) {
  // ssdMobilenetv1/nonMaxSuppression.ts IOU(): JavaScript doubles over the float32 box tensor.
  const double ymin_a = std::min(a.ymin, a.ymax), xmin_a = std::min(a.xmin, a.xmax);
  const double ymax_a = std::max(a.ymin, a.ymax), xmax_a = std::max(a.xmin, a.xmax);
  const double ymin_b = std::min(b.ymin, b.ymax), xmin_b = std::min(b.xmin, b.xmax);
  const double ymax_b = std::max(b.ymin, b.ymax), xmax_b = std::max(b.xmin, b.xmax);
  const double area_a = (ymax_a - ymin_a) * (xmax_a - xmin_a);
  const double area_b = (ymax_b - ymin_b) * (xmax_b - xmin_b);
  if (area_a <= 0 || area_b <= 0) return 0.0;
  const double iy = std::max(std::min(ymax_a, ymax_b) - std::max(ymin_a, ymin_b), 0.0);
  const double ix = std::max(std::min(xmax_a, xmax_b) - std::max(xmin_a, xmin_b), 0.0);
  const double inter = iy * ix;
  return inter / (area_a + area_b - inter);
}

std::vector<int> nms_ssd(std::span<const CornerBox> boxes, std::span<const float> scores, int max_outputs,
                         float iou_threshold, float score_threshold) {
  const int n = static_cast<int>(std::min(boxes.size(), scores.size()));
  const int output_size = std::min(max_outputs, n);
  std::vector<int> candidates;
  for (int i = 0; i < n; ++i) {
    if (scores[static_cast<std::size_t>(i)] > score_threshold) candidates.push_back(i);
  }
  // Array.prototype.sort is stable: equal scores keep index order.
  std::stable_sort(candidates.begin(), candidates.end(), [&](int a, int b) {
    return scores[static_cast<std::size_t>(a)] > scores[static_cast<std::size_t>(b)];
  });
  std::vector<int> selected;
  for (int c : candidates) {
    if (static_cast<int>(selected.size()) >= output_size) break;
    bool suppressed = false;
    for (auto j = selected.size(); j-- > 0;) {
      if (corner_iou(boxes[static_cast<std::size_t>(c)], boxes[static_cast<std::size_t>(selected[j])]) >
          iou_threshold) {
        suppressed = true;
        break;
      }
    }
    if (!suppressed) selected.push_back(c);
  }
  return selected;
}

std::vector<int> nms_tiny(std::span<const Box> boxes, std::span<const float> scores, float iou_threshold) {
  const std::size_t n = std::min(boxes.size(), scores.size());
  // ops/nonMaxSuppression.ts sorts ascending (stably) and pops from the back: among equal scores the
  // highest index comes first.
  std::vector<int> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
    return scores[static_cast<std::size_t>(a)] < scores[static_cast<std::size_t>(b)];
  });
  std::vector<int> pick;
  while (!order.empty()) {
    const int curr = order.back();
    order.pop_back();
    pick.push_back(curr);
    const Box& cb = boxes[static_cast<std::size_t>(curr)];
    std::erase_if(order, [&](int idx) {
      const Box& ib = boxes[static_cast<std::size_t>(idx)];
      const double w = std::max(0.0, std::min<double>(cb.right(), ib.right()) - std::max<double>(cb.x, ib.x));
      const double h = std::max(0.0, std::min<double>(cb.bottom(), ib.bottom()) - std::max<double>(cb.y, ib.y));
      const double inter = w * h;
      const double iou = inter / (static_cast<double>(cb.width) * cb.height +
                                  static_cast<double>(ib.width) * ib.height - inter);
      // Kept when iou <= threshold; a NaN IoU (two empty boxes) drops the box, as in JavaScript.
      return !(iou <= iou_threshold);
    });
  }
  return pick;
}

std::vector<WeightedCandidate> nms_weighted(std::vector<WeightedCandidate> candidates, float iou_threshold) {
  std::stable_sort(candidates.begin(), candidates.end(),
                   [](const WeightedCandidate& a, const WeightedCandidate& b) { return a.score > b.score; });
  std::vector<WeightedCandidate> out;
  std::vector<WeightedCandidate> remaining = std::move(candidates);
  while (!remaining.empty()) {
    const WeightedCandidate best = remaining.front();
    std::vector<WeightedCandidate> rest;
    double total = 0, x0 = 0, y0 = 0, x1 = 0, y1 = 0;
    std::vector<double> kp(best.keypoints.size() * 2, 0.0);
    for (const auto& c : remaining) {
      if (iou(c.box, best.box) > iou_threshold) {
        total += c.score;
        x0 += static_cast<double>(c.box.x) * c.score;
        y0 += static_cast<double>(c.box.y) * c.score;
        x1 += static_cast<double>(c.box.right()) * c.score;
        y1 += static_cast<double>(c.box.bottom()) * c.score;
        for (std::size_t k = 0; k < best.keypoints.size() && k < c.keypoints.size(); ++k) {
          kp[2 * k] += static_cast<double>(c.keypoints[k].x) * c.score;
          kp[2 * k + 1] += static_cast<double>(c.keypoints[k].y) * c.score;
        }
      } else {
        rest.push_back(c);
      }
    }
    WeightedCandidate merged = best;
    if (total > 0) {
      merged.box = {static_cast<float>(x0 / total), static_cast<float>(y0 / total),
                    static_cast<float>((x1 - x0) / total), static_cast<float>((y1 - y0) / total)};
      for (std::size_t k = 0; k < merged.keypoints.size(); ++k) {
        merged.keypoints[k] = {static_cast<float>(kp[2 * k] / total), static_cast<float>(kp[2 * k + 1] / total)};
      }
    }
    out.push_back(std::move(merged));
    // A degenerate best box overlaps nothing, not even itself: drop it so the loop always advances.
    if (rest.size() == remaining.size()) rest.erase(rest.begin());
    remaining = std::move(rest);
  }
  return out;
}

}  // namespace faceguard::detect
