// faceguard/compare.hpp - 1:1 comparison of two templates of the same model.
// Thread safety: pure functions.
#pragma once

#include <string>
#include <string_view>

#include "faceguard/result.hpp"
#include "faceguard/types.hpp"

namespace faceguard {

struct Comparison {
  float distance = 0.f;    // Euclidean distance (dlib) or 1 - cosine (cosine models)
  float similarity = 0.f;  // in [0,1], monotone in distance, 0.5 exactly at the threshold
  float threshold = 0.f;   // distance threshold used
  bool same = false;       // distance < threshold
};

struct CompareOptions {
  float threshold = -1.f;  // < 0: the model's calibrated default (dlib: 0.6)
};

// kInvalidArgument when the templates come from different models or have different sizes, are empty, hold
// NaN/Inf, or the model has no default threshold and none is given.
Result<Comparison> compare(const Embedding& a, const Embedding& b, const CompareOptions& options = {});

// The model's calibrated distance threshold; < 0 for a model id this version does not know.
// dlib: 0.6 (dlib's own). mobilefacenet: 0.6 cosine distance (calibrated on LFW View 1, src/pipeline/compare.cpp).
float default_threshold(const std::string& model_id);

// Which distance a model's templates are compared with: cosine (1 - cos) for ids starting with
// "mobilefacenet", the calibrated fusion (1 - p(same)) for fused ids, Euclidean otherwise (dlib).
enum class Metric { kEuclidean, kCosine, kFusion };
Metric metric_for(const std::string& model_id);
std::string_view to_string(Metric metric);

// Score fusion (PipelineOptions::fuse). A fused template holds two models' templates end to end; its
// model id is "fusion:<first id>+<second id>". compare() splits it at the first model's size, takes each
// model's own distance, and scores the pair by the calibrated logistic fusion fitted on LFW View 1
// pairsDevTrain (src/pipeline/compare.cpp): p = 1 / (1 + exp(-(bias + w1 d1 + w2 d2))) is the probability of
// "same" at a 50/50 prior; the distance is 1 - p and the similarity is p itself (so, unlike the single
// models, the similarity is calibrated, and it is 0.5 at distance 0.5 rather than at the threshold).
// `threshold` of the calibration is on eval's fused distance -(log-odds); compare()'s default threshold on
// 1 - p is 1 / (1 + exp(-threshold)).
struct FusionCalibration {
  std::string first;   // model id of the first part ("dlib-resnet29@face-api-1.7.15")
  std::size_t first_dim = 0;
  std::string second;  // model id of the second part
  std::size_t second_dim = 0;
  double bias = 0.0;
  double first_weight = 0.0;
  double second_weight = 0.0;
  double threshold = 0.0;  // on the fused distance
};
inline constexpr std::string_view kFusionPrefix = "fusion:";
std::string fused_model_id(const std::string& first, const std::string& second);
// The stored calibration of a fused model id; null for an unknown pair of models.
const FusionCalibration* fusion_calibration(const std::string& model_id);
// A fused template of two models' templates; kInvalidArgument when there is no calibration for the pair or a
// template has the wrong size.
Result<Embedding> fused_template(const Embedding& first, const Embedding& second);

// The similarity that compare() reports: 1 / (1 + exp(k * (distance - threshold))), k = ln(19) / w, so it
// is 0.5 at the threshold and 0.95 / 0.05 at w below / above it (w = 0.2 Euclidean, 0.25 cosine).
float similarity_from_distance(float distance, float threshold, Metric metric);

}  // namespace faceguard
