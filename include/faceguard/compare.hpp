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
// "mobilefacenet", Euclidean otherwise (dlib).
enum class Metric { kEuclidean, kCosine };
Metric metric_for(const std::string& model_id);
std::string_view to_string(Metric metric);

// The similarity that compare() reports: 1 / (1 + exp(k * (distance - threshold))), k = ln(19) / w, so it
// is 0.5 at the threshold and 0.95 / 0.05 at w below / above it (w = 0.2 Euclidean, 0.25 cosine).
float similarity_from_distance(float distance, float threshold, Metric metric);

}  // namespace faceguard
