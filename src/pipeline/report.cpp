// JSON serialisation of the pipeline's value types (see faceguard/json.hpp for the field names).
// Reading is strict: a template read back from a file is the input of a biometric comparison, so a missing,
// mistyped or non-finite field is an error, never a default.
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <string>

#include "faceguard/json.hpp"

namespace faceguard {
namespace {

using nlohmann::json;

Error bad(const std::string& what) { return make_error(ErrorCode::kInvalidArgument, "invalid JSON: " + what); }

// A double that fits a float: converting an out-of-range double to float is undefined behaviour. The bound is
// FLT_MAX plus half an ulp (2^103), below which a double rounds to FLT_MAX: "3.4028235e+38", the shortest text
// of FLT_MAX, parses to a double just above FLT_MAX.
constexpr double kFloatRoundLimit = 3.4028235677973366e38;
bool fits_float(double v) { return std::isfinite(v) && std::fabs(v) < kFloatRoundLimit; }

// A finite number at j[key].
Result<float> number_at(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end()) return bad(std::string("missing \"") + key + "\"");
  if (!it->is_number()) return bad(std::string("\"") + key + "\" is not a number");
  const double v = it->get<double>();
  if (!fits_float(v)) return bad(std::string("\"") + key + "\" is not a finite float");
  return static_cast<float>(v);
}

}  // namespace

double json_number(float value) {
  if (!std::isfinite(value)) return value;  // nlohmann writes NaN/Inf as null
  // std::to_chars(float) gives the shortest digits that read back to the same float; nlohmann then writes
  // the double parsed from those digits with the same (shortest) digits.
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf - 1, value);
  if (r.ec != std::errc()) return value;
  *r.ptr = '\0';
  return std::strtod(buf, nullptr);
}

std::string_view to_string(LandmarkScheme scheme) {
  switch (scheme) {
    case LandmarkScheme::kNone: return "none";
    case LandmarkScheme::kIbug68: return "ibug68";
    case LandmarkScheme::kBlazeFace6: return "blazeface6";
    case LandmarkScheme::kFivePoint: return "five_point";
  }
  return "none";
}

Result<LandmarkScheme> parse_landmark_scheme(std::string_view name) {
  for (auto s : {LandmarkScheme::kNone, LandmarkScheme::kIbug68, LandmarkScheme::kBlazeFace6,
                 LandmarkScheme::kFivePoint}) {
    if (to_string(s) == name) return s;
  }
  return bad("unknown landmark scheme \"" + std::string(name) + "\"");
}

json to_json(const Box& box) {
  return json{{"x", json_number(box.x)}, {"y", json_number(box.y)}, {"width", json_number(box.width)},
              {"height", json_number(box.height)}};
}

json to_json(const Face& face) {
  json j{{"box", to_json(face.box)}, {"score", json_number(face.score)}};
  if (!face.detector.empty()) j["detector"] = face.detector;
  j["landmark_scheme"] = to_string(face.scheme);
  if (!face.landmarks.empty()) {
    json pts = json::array();
    for (const auto& p : face.landmarks) pts.push_back(json::array({json_number(p.x), json_number(p.y)}));
    j["landmarks"] = std::move(pts);
  }
  return j;
}

json to_json(const Embedding& embedding) {
  json values = json::array();
  for (float v : embedding.values) values.push_back(json_number(v));
  return json{{"model_id", embedding.model_id}, {"dimensions", embedding.values.size()}, {"values", std::move(values)}};
}

json to_json(const Comparison& c) {
  return json{{"distance", json_number(c.distance)}, {"similarity", json_number(c.similarity)},
              {"threshold", json_number(c.threshold)}, {"same", c.same}};
}

json to_json(const AnalyzedFace& face) {
  json j = to_json(face.face);
  j["embedding"] = to_json(face.embedding);
  return j;
}

Result<Box> box_from_json(const json& j) {
  if (!j.is_object()) return bad("box is not an object");
  Box b;
  FG_ASSIGN_OR_RETURN(b.x, number_at(j, "x"));
  FG_ASSIGN_OR_RETURN(b.y, number_at(j, "y"));
  FG_ASSIGN_OR_RETURN(b.width, number_at(j, "width"));
  FG_ASSIGN_OR_RETURN(b.height, number_at(j, "height"));
  if (b.width < 0 || b.height < 0) return bad("box has a negative size");
  return b;
}

Result<Face> face_from_json(const json& j) {
  if (!j.is_object()) return bad("face is not an object");
  Face f;
  auto box = j.find("box");
  if (box == j.end()) return bad("missing \"box\"");
  FG_ASSIGN_OR_RETURN(f.box, box_from_json(*box));
  FG_ASSIGN_OR_RETURN(f.score, number_at(j, "score"));
  if (auto d = j.find("detector"); d != j.end()) {
    if (!d->is_string()) return bad("\"detector\" is not a string");
    f.detector = d->get<std::string>();
  }
  if (auto s = j.find("landmark_scheme"); s != j.end()) {
    if (!s->is_string()) return bad("\"landmark_scheme\" is not a string");
    FG_ASSIGN_OR_RETURN(f.scheme, parse_landmark_scheme(s->get<std::string>()));
  }
  if (auto l = j.find("landmarks"); l != j.end()) {
    if (!l->is_array()) return bad("\"landmarks\" is not an array");
    for (const auto& p : *l) {
      if (!p.is_array() || p.size() != 2 || !p[0].is_number() || !p[1].is_number()) {
        return bad("a landmark is not an [x, y] pair");
      }
      const double x = p[0].get<double>(), y = p[1].get<double>();
      if (!fits_float(x) || !fits_float(y)) return bad("a landmark is not a finite float");
      f.landmarks.push_back({static_cast<float>(x), static_cast<float>(y)});
    }
  }
  const std::size_t n = f.landmarks.size();
  const bool consistent = (f.scheme == LandmarkScheme::kNone && n == 0) ||
                          (f.scheme == LandmarkScheme::kIbug68 && n == 68) ||
                          (f.scheme == LandmarkScheme::kBlazeFace6 && n == 6) ||
                          (f.scheme == LandmarkScheme::kFivePoint && n == 5);
  if (!consistent) {
    return bad(std::to_string(n) + " landmarks do not fit scheme \"" + std::string(to_string(f.scheme)) + "\"");
  }
  return f;
}

Result<Embedding> embedding_from_json(const json& j) {
  if (!j.is_object()) return bad("embedding is not an object");
  auto id = j.find("model_id");
  if (id == j.end() || !id->is_string() || id->get<std::string>().empty()) return bad("missing \"model_id\"");
  auto vals = j.find("values");
  if (vals == j.end() || !vals->is_array() || vals->empty()) return bad("missing or empty \"values\"");
  Embedding e;
  e.model_id = id->get<std::string>();
  e.values.reserve(vals->size());
  for (const auto& v : *vals) {
    if (!v.is_number()) return bad("a template value is not a number");
    const double x = v.get<double>();
    if (!fits_float(x)) return bad("a template value is not a finite float");
    e.values.push_back(static_cast<float>(x));
  }
  if (auto d = j.find("dimensions"); d != j.end()) {
    if (!d->is_number_unsigned() || d->get<std::size_t>() != e.values.size()) {
      return bad("\"dimensions\" does not match the number of values");
    }
  }
  return e;
}

}  // namespace faceguard
