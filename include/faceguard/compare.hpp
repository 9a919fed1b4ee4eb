// faceguard/compare.hpp - 1:1 comparison of two templates of the same model.
// Thread safety: pure functions.
#pragma once

#include <string>

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

// kInvalidArgument when the templates come from different models or have different sizes.
Result<Comparison> compare(const Embedding& a, const Embedding& b, const CompareOptions& options = {});

float default_threshold(const std::string& model_id);

}  // namespace faceguard
