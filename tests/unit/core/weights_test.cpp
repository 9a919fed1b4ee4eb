#include <gtest/gtest.h>

#include <cstring>
#include <map>

#include "model/weights.hpp"

namespace {

using faceguard::ErrorCode;
using faceguard::model::parse_weights;

faceguard::model::ShardReader reader_of(std::vector<std::uint8_t> bytes) {
  return [bytes](const std::string&) -> faceguard::Result<std::vector<std::uint8_t>> { return bytes; };
}

std::vector<std::uint8_t> floats(std::initializer_list<float> v) {
  std::vector<std::uint8_t> b(v.size() * 4);
  std::memcpy(b.data(), std::data(v), b.size());
  return b;
}

TEST(Weights, ReadsFloatAndDequantizesUint8) {
  const char* manifest = R"([{"paths":["m.bin"],"weights":[
    {"name":"q","shape":[2,2],"dtype":"float32","quantization":{"dtype":"uint8","scale":0.5,"min":-1.0}},
    {"name":"f","shape":[2],"dtype":"float32"}]}])";
  auto bytes = std::vector<std::uint8_t>{0, 1, 2, 255};
  auto f = floats({1.5f, -2.25f});
  bytes.insert(bytes.end(), f.begin(), f.end());
  auto r = parse_weights(manifest, reader_of(bytes));
  ASSERT_TRUE(r) << r.error().message;
  auto q = r->get("q");
  ASSERT_TRUE(q);
  EXPECT_FLOAT_EQ((*q)->data[0], -1.0f);
  EXPECT_FLOAT_EQ((*q)->data[1], -0.5f);
  EXPECT_FLOAT_EQ((*q)->data[3], 126.5f);
  auto ff = r->get("f", std::vector<int>{2});
  ASSERT_TRUE(ff);
  EXPECT_FLOAT_EQ((*ff)->data[1], -2.25f);
}

TEST(Weights, RejectsTruncatedShardWithByteCounts) {
  const char* manifest = R"([{"paths":["m.bin"],"weights":[{"name":"f","shape":[4],"dtype":"float32"}]}])";
  auto r = parse_weights(manifest, reader_of(floats({1, 2, 3})));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kCorruptData);
  EXPECT_NE(r.error().message.find("truncated"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("16 bytes"), std::string::npos) << r.error().message;
}

TEST(Weights, RejectsTrailingBytes) {
  const char* manifest = R"([{"paths":["m.bin"],"weights":[{"name":"f","shape":[1],"dtype":"float32"}]}])";
  auto r = parse_weights(manifest, reader_of(floats({1, 2})));
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("more than the manifest"), std::string::npos);
}

TEST(Weights, RejectsMalformedManifests) {
  const std::vector<std::string> bad = {
      "", "{", "{}", "[]", R"([{"paths":[],"weights":[]}])",
      R"([{"paths":["a"],"weights":[{"shape":[1]}]}])",
      R"([{"paths":["a"],"weights":[{"name":"x","shape":[-1]}]}])",
      R"([{"paths":["a"],"weights":[{"name":"x","shape":[1.5]}]}])",
      R"([{"paths":["a"],"weights":[{"name":"x","shape":[1],"dtype":"complex64"}]}])",
      R"([{"paths":["a"],"weights":[{"name":"x","shape":[1],"quantization":{"dtype":"int4","scale":1,"min":0}}]}])",
      R"([{"paths":["a"],"weights":[{"name":"x","shape":[1],"quantization":{"dtype":"uint8"}}]}])",
      R"([{"paths":["a"],"weights":[{"name":"x","shape":[65536,65536,65536]}]}])",
  };
  for (const auto& m : bad) {
    auto r = parse_weights(m, reader_of({}));
    EXPECT_FALSE(r) << m;
  }
}

TEST(Weights, RejectsDuplicateNamesAndReportsShapeMismatch) {
  const char* dup = R"([{"paths":["a"],"weights":[{"name":"x","shape":[1]},{"name":"x","shape":[1]}]}])";
  EXPECT_FALSE(parse_weights(dup, reader_of(floats({1, 2}))));
  const char* one = R"([{"paths":["a"],"weights":[{"name":"x","shape":[1,2]}]}])";
  auto r = parse_weights(one, reader_of(floats({1, 2})));
  ASSERT_TRUE(r);
  auto g = r->get("x", std::vector<int>{2, 1});
  ASSERT_FALSE(g);
  EXPECT_EQ(g.error().code, ErrorCode::kModelError);
  EXPECT_FALSE(r->get("missing"));
}

}  // namespace
