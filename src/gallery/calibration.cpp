// Threshold tables: from measured genuine/impostor score distributions to "the threshold for FMR x".
#include <algorithm>
#include <cmath>
#include <limits>

#include <nlohmann/json.hpp>

#include "faceguard/gallery.hpp"

namespace faceguard {

namespace {

constexpr const char* kFormat = "faceguard-threshold-table";
constexpr int kVersion = 1;

// dlib's 1:1 rule "same person if Euclidean distance < 0.6" (dlib face_recognition example; the same constant
// as src/pipeline/compare.cpp). For unit vectors |a-b|^2 = 2 - 2cos, so d = 0.6 <=> cos = 1 - 0.18 = 0.82.
constexpr float kDlibDistance = 0.6f;
// MobileFaceNet's 1:1 cosine-distance threshold (src/pipeline/compare.cpp, from LFW View 1): cos = 1 - 0.6.
constexpr float kMobileFaceNetCosineDistance = 0.6f;

// The FMRs a calibration reports, where the impostor sample resolves them.
constexpr double kFmrGrid[] = {1e-1, 5e-2, 2e-2, 1e-2, 5e-3, 2e-3, 1e-3, 5e-4, 2e-4, 1e-4, 5e-5, 2e-5, 1e-5, 1e-6};

bool starts_with(const std::string& s, const char* p) { return s.rfind(p, 0) == 0; }

}  // namespace

Result<float> ThresholdTable::threshold_for(double fmr) const {
  if (!(fmr > 0.0 && fmr < 1.0)) return make_error(ErrorCode::kInvalidArgument, "a target FMR must be in (0, 1)");
  if (points.empty()) return make_error(ErrorCode::kNotFound, "the threshold table is empty");
  if (!calibrated) return points.front().threshold;
  if (fmr >= points.front().fmr) return points.front().threshold;
  if (fmr < points.back().fmr * (1 - 1e-9))
    return make_error(ErrorCode::kNotFound, "the calibration (" + source + ", " + std::to_string(impostor_pairs) +
                                                " impostor pairs) resolves FMR down to " +
                                                std::to_string(points.back().fmr) + " only");
  for (std::size_t i = 1; i < points.size(); ++i) {
    const auto& a = points[i - 1];
    const auto& b = points[i];
    if (fmr <= a.fmr && fmr >= b.fmr) {
      if (a.fmr == b.fmr) return b.threshold;
      const double t = (std::log(a.fmr) - std::log(fmr)) / (std::log(a.fmr) - std::log(b.fmr));
      return static_cast<float>(a.threshold + t * (b.threshold - a.threshold));
    }
  }
  return points.back().threshold;
}

Result<ThresholdTable> calibrate_threshold(std::string model_id, std::span<const float> genuine,
                                           std::span<const float> impostor, std::string source) {
  if (genuine.empty() || impostor.empty())
    return make_error(ErrorCode::kInvalidArgument, "calibration needs genuine and impostor scores");
  for (auto v : {genuine, impostor})
    for (float f : v)
      if (!std::isfinite(f)) return make_error(ErrorCode::kInvalidArgument, "a calibration score is not finite");
  std::vector<float> imp(impostor.begin(), impostor.end());
  std::sort(imp.begin(), imp.end(), std::greater<>());
  std::vector<float> gen(genuine.begin(), genuine.end());
  std::sort(gen.begin(), gen.end());
  ThresholdTable t;
  t.model_id = std::move(model_id);
  t.source = std::move(source);
  t.genuine_pairs = gen.size();
  t.impostor_pairs = imp.size();
  const double n = static_cast<double>(imp.size());
  for (double fmr : kFmrGrid) {
    if (fmr * n < 1.0) break;  // fewer than one impostor expected at this rate: not measurable
    // Allow k impostors at or above the threshold: put it just above the (k+1)-th highest impostor score.
    const auto k = static_cast<std::size_t>(std::floor(fmr * n));
    const float thr = std::nextafter(imp[k], std::numeric_limits<float>::infinity());
    const auto below = std::lower_bound(gen.begin(), gen.end(), thr) - gen.begin();
    t.points.push_back(ThresholdPoint{fmr, thr, static_cast<double>(below) / static_cast<double>(gen.size())});
  }
  if (t.points.empty()) return make_error(ErrorCode::kInvalidArgument, "too few impostor scores to calibrate");
  return t;
}

ThresholdTable default_threshold_table(const std::string& model_id) {
  ThresholdTable t;
  t.model_id = model_id;
  t.calibrated = false;
  float thr = 0.5f;
  if (starts_with(model_id, "dlib")) {
    thr = 1.f - kDlibDistance * kDlibDistance / 2.f;
    t.euclidean_threshold = kDlibDistance;
    t.source = "uncalibrated: dlib's documented 1:1 threshold (Euclidean 0.6; cosine 0.82 for unit vectors)";
  } else if (starts_with(model_id, "mobilefacenet")) {
    thr = 1.f - kMobileFaceNetCosineDistance;
    t.source = "uncalibrated: MobileFaceNet 1:1 threshold from LFW View 1 (cosine distance 0.6)";
  } else {
    t.source = "uncalibrated: no threshold known for this model (cosine 0.5)";
  }
  t.points.push_back(ThresholdPoint{0.0, thr, -1.0});
  return t;
}

std::string threshold_table_to_json(const ThresholdTable& t) {
  nlohmann::json j;
  j["format"] = kFormat;
  j["version"] = kVersion;
  j["model_id"] = t.model_id;
  j["metric"] = t.metric;
  j["source"] = t.source;
  j["calibrated"] = t.calibrated;
  j["euclidean_threshold"] = t.euclidean_threshold;
  j["genuine_pairs"] = t.genuine_pairs;
  j["impostor_pairs"] = t.impostor_pairs;
  j["points"] = nlohmann::json::array();
  for (const auto& p : t.points) j["points"].push_back({{"fmr", p.fmr}, {"threshold", p.threshold}, {"fnmr", p.fnmr}});
  return j.dump(2);
}

Result<ThresholdTable> threshold_table_from_json(std::string_view text) {
  try {
    const auto j = nlohmann::json::parse(text);
    if (!j.is_object() || j.value("format", std::string()) != kFormat)
      return make_error(ErrorCode::kUnsupportedFormat, "not a faceguard threshold table");
    const int v = j.at("version").get<int>();
    if (v != kVersion)
      return make_error(ErrorCode::kUnsupportedFormat, "threshold table version " + std::to_string(v) + " is unknown");
    ThresholdTable t;
    t.model_id = j.at("model_id").get<std::string>();
    t.metric = j.at("metric").get<std::string>();
    if (t.metric != "cosine") return make_error(ErrorCode::kUnsupportedFormat, "unknown metric " + t.metric);
    t.source = j.at("source").get<std::string>();
    t.calibrated = j.at("calibrated").get<bool>();
    t.euclidean_threshold = j.value("euclidean_threshold", -1.f);
    t.genuine_pairs = j.at("genuine_pairs").get<std::size_t>();
    t.impostor_pairs = j.at("impostor_pairs").get<std::size_t>();
    for (const auto& p : j.at("points"))
      t.points.push_back(ThresholdPoint{p.at("fmr").get<double>(), p.at("threshold").get<float>(),
                                        p.at("fnmr").get<double>()});
    if (t.points.empty()) return make_error(ErrorCode::kInvalidArgument, "threshold table has no points");
    for (std::size_t i = 1; i < t.points.size(); ++i)
      if (t.points[i].fmr > t.points[i - 1].fmr || t.points[i].threshold < t.points[i - 1].threshold)
        return make_error(ErrorCode::kInvalidArgument, "threshold table points are not ordered by decreasing FMR");
    return t;
  } catch (const std::exception& e) {
    return make_error(ErrorCode::kInvalidArgument, std::string("threshold table is not valid: ") + e.what());
  }
}

}  // namespace faceguard
