// faceguard/json.hpp - JSON forms of the pipeline's value types (faces, templates, comparisons).
//
//   nlohmann::json j = faceguard::to_json(analyzed_face);   // {"box":{...},"score":..,"embedding":{...}}
//   auto e = faceguard::embedding_from_json(j["embedding"]); // Result<Embedding>, kInvalidArgument if malformed
//
// The field names are the ones the CLI (`faceguard detect|embed|compare --json`), the demo report and the
// HTTP service print; docs/cli.md lists them. Floats are written in their shortest form that reads back to the
// same float (0.6f as 0.6, not 0.6000000238418579).
// Thread safety: pure functions.
#pragma once

#include <string_view>

#include <nlohmann/json.hpp>

#include "faceguard/compare.hpp"
#include "faceguard/pipeline.hpp"
#include "faceguard/result.hpp"
#include "faceguard/types.hpp"

namespace faceguard {

// A float as the JSON number that prints shortest and reads back (as float) to the same value.
double json_number(float value);

std::string_view to_string(LandmarkScheme scheme);  // "none", "ibug68", "blazeface6", "five_point"
Result<LandmarkScheme> parse_landmark_scheme(std::string_view name);

nlohmann::json to_json(const Box& box);  // {"x","y","width","height"}
// {"box","score","detector","landmark_scheme","landmarks":[[x,y],...]}; landmarks omitted when there are none.
nlohmann::json to_json(const Face& face);
nlohmann::json to_json(const Embedding& embedding);  // {"model_id","dimensions","values":[...]}
// {"distance","similarity","threshold","same"}; the metric is added by callers that know the model.
nlohmann::json to_json(const Comparison& comparison);
nlohmann::json to_json(const AnalyzedFace& face);  // the face's fields plus "embedding"

// Inverses, for templates read back from files or requests: kInvalidArgument with the failing field named.
Result<Box> box_from_json(const nlohmann::json& j);
Result<Face> face_from_json(const nlohmann::json& j);
Result<Embedding> embedding_from_json(const nlohmann::json& j);

}  // namespace faceguard
