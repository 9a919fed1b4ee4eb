// JSON forms of faces, templates and comparisons: field names, round trips, and strict reading.
#include <gtest/gtest.h>

#include <cstdlib>
#include <limits>

#include "faceguard/json.hpp"

namespace faceguard {
namespace {

using nlohmann::json;

Face sample_face() {
  Face f;
  f.box = {10.5f, 20.25f, 100.f, 120.f};
  f.score = 0.875f;
  f.detector = "ssd";
  f.scheme = LandmarkScheme::kBlazeFace6;
  for (int i = 0; i < 6; ++i) f.landmarks.push_back({30.f + i, 40.f + 2 * i});
  return f;
}

TEST(Report, FaceFieldsAndRoundTrip) {
  const Face f = sample_face();
  const json j = to_json(f);
  EXPECT_EQ(j.at("box").at("x").get<float>(), 10.5f);
  EXPECT_EQ(j.at("box").at("height").get<float>(), 120.f);
  EXPECT_EQ(j.at("score").get<float>(), 0.875f);
  EXPECT_EQ(j.at("detector"), "ssd");
  EXPECT_EQ(j.at("landmark_scheme"), "blazeface6");
  ASSERT_EQ(j.at("landmarks").size(), 6u);
  EXPECT_EQ(j.at("landmarks")[5][1].get<float>(), 50.f);

  // Through text and back: floats survive exactly (nlohmann writes the shortest exact form).
  auto back = face_from_json(json::parse(j.dump()));
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->box.y, f.box.y);
  EXPECT_EQ(back->score, f.score);
  EXPECT_EQ(back->scheme, f.scheme);
  ASSERT_EQ(back->landmarks.size(), 6u);
  EXPECT_EQ(back->landmarks[3].x, 33.f);
  EXPECT_EQ(back->detector, "ssd");
}

TEST(Report, FaceWithoutLandmarksOmitsThem) {
  Face f;
  f.box = {1, 2, 3, 4};
  const json j = to_json(f);
  EXPECT_FALSE(j.contains("landmarks"));
  EXPECT_EQ(j.at("landmark_scheme"), "none");
  EXPECT_TRUE(face_from_json(j));
}

TEST(Report, EmbeddingRoundTripIsExact) {
  Embedding e{"dlib-resnet-v1@face-api-1.7.15", {0.1f, -0.2f, 3.4028235e38f, 1e-38f, 0.f}};
  const json j = to_json(e);
  EXPECT_EQ(j.at("model_id"), e.model_id);
  EXPECT_EQ(j.at("dimensions"), 5);
  auto back = embedding_from_json(json::parse(j.dump()));
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->model_id, e.model_id);
  EXPECT_EQ(back->values, e.values);
}

TEST(Report, ComparisonAndAnalyzedFace) {
  Comparison c{0.42f, 0.91f, 0.6f, true};
  const json j = to_json(c);
  EXPECT_EQ(j.at("distance").get<float>(), 0.42f);
  EXPECT_EQ(j.at("similarity").get<float>(), 0.91f);
  EXPECT_EQ(j.at("threshold").get<float>(), 0.6f);
  EXPECT_EQ(j.at("same"), true);

  AnalyzedFace af{sample_face(), Embedding{"m", {1, 2, 3}}};
  const json a = to_json(af);
  EXPECT_EQ(a.at("embedding").at("values").size(), 3u);
  EXPECT_EQ(a.at("score").get<float>(), 0.875f);
}

TEST(Report, StrictReadingRefusesMalformedTemplates) {
  auto expect_bad = [](const char* text) {
    auto r = embedding_from_json(json::parse(text));
    ASSERT_FALSE(r) << text;
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument) << text;
  };
  expect_bad(R"([1,2])");
  expect_bad(R"({"values":[1,2]})");
  expect_bad(R"({"model_id":"","values":[1]})");
  expect_bad(R"({"model_id":"m","values":[]})");
  expect_bad(R"({"model_id":"m","values":[1,"2"]})");
  expect_bad(R"({"model_id":"m","values":[1,null]})");
  expect_bad(R"({"model_id":"m","values":[1e300]})");  // does not fit a float
  expect_bad(R"({"model_id":"m","values":[1,2],"dimensions":3})");
  expect_bad(R"({"model_id":7,"values":[1]})");
}

TEST(Report, StrictReadingRefusesMalformedFaces) {
  auto expect_bad = [](const char* text) {
    auto r = face_from_json(json::parse(text));
    ASSERT_FALSE(r) << text;
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument) << text;
  };
  expect_bad(R"({"score":1})");
  expect_bad(R"({"box":{"x":0,"y":0,"width":1},"score":1})");
  expect_bad(R"({"box":{"x":0,"y":0,"width":-1,"height":1},"score":1})");
  expect_bad(R"({"box":{"x":0,"y":0,"width":1,"height":1}})");
  expect_bad(R"({"box":{"x":0,"y":0,"width":1,"height":1},"score":1,"landmark_scheme":"bogus"})");
  // Scheme and point count disagree.
  expect_bad(R"({"box":{"x":0,"y":0,"width":1,"height":1},"score":1,"landmark_scheme":"ibug68","landmarks":[[1,2]]})");
  expect_bad(R"({"box":{"x":0,"y":0,"width":1,"height":1},"score":1,"landmark_scheme":"none","landmarks":[[1,2]]})");
  expect_bad(R"({"box":{"x":0,"y":0,"width":1,"height":1},"score":1,"landmark_scheme":"five_point","landmarks":[[1],[2],[3],[4],[5]]})");
}

TEST(Report, SchemeNamesRoundTrip) {
  for (auto s : {LandmarkScheme::kNone, LandmarkScheme::kIbug68, LandmarkScheme::kBlazeFace6,
                 LandmarkScheme::kFivePoint}) {
    auto back = parse_landmark_scheme(to_string(s));
    ASSERT_TRUE(back);
    EXPECT_EQ(*back, s);
  }
}

}  // namespace
}  // namespace faceguard

namespace faceguard {
namespace {

TEST(Report, FloatsAreWrittenShortestAndReadBackExactly) {
  EXPECT_EQ(nlohmann::json(json_number(0.6f)).dump(), "0.6");
  EXPECT_EQ(to_json(Comparison{0.1f, 0.5f, 0.6f, true}).dump(),
            R"({"distance":0.1,"same":true,"similarity":0.5,"threshold":0.6})");
  // Every float of a sweep survives text exactly.
  for (float v : {1e-38f, 3.4028235e38f, -0.f, 0.33333334f, 123.456f, 1.1754944e-38f, 16777217.f}) {
    const std::string text = nlohmann::json(json_number(v)).dump();
    EXPECT_EQ(static_cast<float>(std::strtod(text.c_str(), nullptr)), v) << text;
  }
  EXPECT_TRUE(nlohmann::json(json_number(std::numeric_limits<float>::quiet_NaN())).dump() == "null");
}

}  // namespace
}  // namespace faceguard
