// 1:1 comparison of two face templates: the distance each model was trained for, a calibrated threshold,
// and a bounded similarity score for people who read numbers.
#include "faceguard/compare.hpp"

#include <algorithm>
#include <cmath>
#include <string_view>

#include "embed/dlib_resnet.hpp"
#include "embed/mobilefacenet.hpp"

namespace faceguard {
namespace {

// dlib's own decision threshold for its ResNet descriptor (dlib face_recognition example and
// dlib_face_recognition_resnet_model_v1 notes: "faces are the same person if distance < 0.6").
constexpr float kDlibThreshold = 0.6f;
// MobileFaceNet (cosine distance = 1 - cos), calibrated on LFW View 1: the accuracy-maximising threshold on
// pairsDevTrain.txt (2,200 pairs) is 0.5908 with SSD + 68-point alignment (train 99.27%) and 0.6012 with
// BlazeFace keypoint alignment (train 99.50%); 0.6 lies between. On pairsDevTest.txt (1,000 pairs) 0.6
// gives 98.6% (SSD + 68) and 99.0% (BlazeFace); `faceguard eval verify --embedder mobilefacenet`.
constexpr float kMobileFaceNetThreshold = 0.6f;

// The logistic's width: the distance from the threshold at which similarity reaches 0.95 (below) or
// 0.05 (above). For dlib, LFW genuine pairs mostly lie at 0.3-0.45 and impostors at 0.75-0.95 (dlib's
// published distance histograms), so 0.2 maps typical genuine pairs near 1 and impostors near 0.
// For cosine distance the genuine/impostor modes of ArcFace-style models are further apart (about 0.3 and
// 0.9-1.0), so the width is 0.25.
constexpr float kDlibSpread = 0.2f;
constexpr float kCosineSpread = 0.25f;
// ln(0.95 / 0.05) = ln 19: the logistic argument at which 1/(1+e^x) equals 0.05.
constexpr double kLn19 = 2.9444389791664403;

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

// dlib ResNet + MobileFaceNet, both with flip averaging (PipelineOptions::flip), fitted by
// `faceguard eval verify --fuse mobilefacenet --flip-chip --train pairsDevTrain.txt` on LFW View 1 (SSD + 68
// landmarks, mean-face chip for dlib, ArcFace chip for MobileFaceNet; docs/eval.md): logistic regression of
// "same" on the two distances over pairsDevTrain's 2,200 pairs, and the accuracy-maximising threshold on the
// fused distance over the same pairs.
const FusionCalibration& dlib_mobilefacenet() {
  static const FusionCalibration c{embed::kDlibResNetModelId, 128, embed::kMobileFaceNetModelId, 192,
                                   15.1661, -15.3132, -9.6813, -0.4154};
  return c;
}

// compare()'s default threshold on a fused distance 1 - p: the calibration's threshold on -(log-odds) mapped
// through p = 1 / (1 + exp(-log-odds)).
double fused_threshold(const FusionCalibration& cal) { return 1.0 / (1.0 + std::exp(-cal.threshold)); }

// The distance of n values of each template under `metric` (values `offset`.. of both). Accumulates in
// double: 128-192 terms of float products lose a few ulps otherwise, and the tests compare against a double
// reference. kInvalidArgument for a non-finite value or a zero-norm template under cosine distance.
Result<double> model_distance(const Embedding& a, const Embedding& b, std::size_t offset, std::size_t n, Metric metric) {
  double dot = 0, na = 0, nb = 0, sq = 0;
  for (std::size_t i = offset; i < offset + n; ++i) {
    const double x = a.values[i];
    const double y = b.values[i];
    if (!std::isfinite(x) || !std::isfinite(y)) {
      return make_error(ErrorCode::kInvalidArgument, "template value " + std::to_string(i) + " is not finite");
    }
    dot += x * y;
    na += x * x;
    nb += y * y;
    sq += (x - y) * (x - y);
  }
  if (metric != Metric::kCosine) return std::sqrt(sq);
  if (na == 0 || nb == 0) return make_error(ErrorCode::kInvalidArgument, "zero-norm template under cosine distance");
  // Rounding can push 1 - cos a hair outside [0, 2].
  return std::clamp(1.0 - dot / (std::sqrt(na) * std::sqrt(nb)), 0.0, 2.0);
}

Result<Comparison> compare_fused(const Embedding& a, const Embedding& b, const FusionCalibration& cal,
                                 const CompareOptions& options) {
  const std::size_t n = cal.first_dim + cal.second_dim;
  if (a.values.size() != n || b.values.size() != n)
    return make_error(ErrorCode::kInvalidArgument, "a fused template of " + a.model_id + " must hold " + std::to_string(n) + " values");
  FG_ASSIGN_OR_RETURN(const double d1, model_distance(a, b, 0, cal.first_dim, metric_for(cal.first)));
  FG_ASSIGN_OR_RETURN(const double d2, model_distance(a, b, cal.first_dim, cal.second_dim, metric_for(cal.second)));
  // p(same) at the calibration's 50/50 prior; the distance is 1 - p, so that it lies in [0, 1] and any
  // threshold a caller passes is positive.
  const double log_odds = cal.bias + cal.first_weight * d1 + cal.second_weight * d2;
  const double p = 1.0 / (1.0 + std::exp(-log_odds));
  const double threshold = options.threshold >= 0.f ? options.threshold : fused_threshold(cal);
  Comparison c;
  c.distance = static_cast<float>(1.0 - p);
  c.threshold = static_cast<float>(threshold);
  c.similarity = static_cast<float>(p);
  c.same = c.distance < c.threshold;
  return c;
}

float spread_for(Metric metric) { return metric == Metric::kCosine ? kCosineSpread : kDlibSpread; }

}  // namespace

std::string fused_model_id(const std::string& first, const std::string& second) {
  return std::string(kFusionPrefix) + first + "+" + second;
}

const FusionCalibration* fusion_calibration(const std::string& model_id) {
  const auto& c = dlib_mobilefacenet();
  return model_id == fused_model_id(c.first, c.second) ? &c : nullptr;
}

Result<Embedding> fused_template(const Embedding& first, const Embedding& second) {
  const std::string id = fused_model_id(first.model_id, second.model_id);
  const FusionCalibration* cal = fusion_calibration(id);
  if (cal == nullptr) return make_error(ErrorCode::kInvalidArgument, "no fusion calibration for " + id);
  if (first.values.size() != cal->first_dim || second.values.size() != cal->second_dim)
    return make_error(ErrorCode::kInvalidArgument, "template sizes do not fit the fusion " + id);
  Embedding e;
  e.model_id = id;
  e.values = first.values;
  e.values.insert(e.values.end(), second.values.begin(), second.values.end());
  return e;
}

Metric metric_for(const std::string& model_id) {
  if (starts_with(model_id, kFusionPrefix)) return Metric::kFusion;
  return starts_with(model_id, "mobilefacenet") ? Metric::kCosine : Metric::kEuclidean;
}

std::string_view to_string(Metric metric) {
  switch (metric) {
    case Metric::kCosine: return "cosine";
    case Metric::kFusion: return "fusion";
    case Metric::kEuclidean: break;
  }
  return "euclidean";
}

float default_threshold(const std::string& model_id) {
  if (const FusionCalibration* cal = fusion_calibration(model_id)) return static_cast<float>(fused_threshold(*cal));
  if (starts_with(model_id, "mobilefacenet")) return kMobileFaceNetThreshold;
  if (starts_with(model_id, "dlib")) return kDlibThreshold;
  return -1.f;
}

float similarity_from_distance(float distance, float threshold, Metric metric) {
  const double k = kLn19 / spread_for(metric);
  const double s = 1.0 / (1.0 + std::exp(k * (static_cast<double>(distance) - threshold)));
  return static_cast<float>(s);
}

Result<Comparison> compare(const Embedding& a, const Embedding& b, const CompareOptions& options) {
  if (a.model_id.empty() || b.model_id.empty()) {
    return make_error(ErrorCode::kInvalidArgument, "a template has no model id");
  }
  if (a.model_id != b.model_id) {
    return make_error(ErrorCode::kInvalidArgument,
                      "templates of different models cannot be compared: " + a.model_id + " vs " + b.model_id);
  }
  if (a.values.empty() || b.values.empty()) {
    return make_error(ErrorCode::kInvalidArgument, "empty template");
  }
  if (a.values.size() != b.values.size()) {
    return make_error(ErrorCode::kInvalidArgument, "template sizes differ: " + std::to_string(a.values.size()) +
                                                       " vs " + std::to_string(b.values.size()));
  }
  if (std::isnan(options.threshold)) return make_error(ErrorCode::kInvalidArgument, "threshold is NaN");
  if (const FusionCalibration* cal = fusion_calibration(a.model_id)) return compare_fused(a, b, *cal, options);
  float threshold = options.threshold;
  if (threshold < 0.f) {
    threshold = default_threshold(a.model_id);
    if (threshold < 0.f) {
      return make_error(ErrorCode::kInvalidArgument,
                        "no calibrated threshold for model " + a.model_id + "; pass one explicitly");
    }
  }
  if (!std::isfinite(threshold)) return make_error(ErrorCode::kInvalidArgument, "threshold is not finite");

  const Metric metric = metric_for(a.model_id);
  FG_ASSIGN_OR_RETURN(const double distance, model_distance(a, b, 0, a.values.size(), metric));

  Comparison c;
  c.distance = static_cast<float>(distance);
  c.threshold = threshold;
  c.similarity = similarity_from_distance(c.distance, threshold, metric);
  c.same = c.distance < threshold;
  return c;
}

}  // namespace faceguard
