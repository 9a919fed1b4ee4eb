// The embedding cache: round trip, invalidation by size/mtime, refusal of corrupt or foreign files.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "faceguard/eval.hpp"

namespace {

namespace eval = faceguard::eval;
using faceguard::ErrorCode;

struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const char* name) : path(std::filesystem::temp_directory_path() / name) {
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

eval::ImageEmbedding sample(float v, eval::FaceSource s = eval::FaceSource::kDetected) {
  eval::ImageEmbedding e;
  e.source = s;
  e.embedding.model_id = "dlib-test";
  e.embedding.values = {v, -v, 0.5f};
  e.face.box = {1.f, 2.f, 30.f, 40.f};
  e.face.score = 0.9f;
  e.face.scheme = faceguard::LandmarkScheme::kBlazeFace6;
  e.face.landmarks = {{1, 2}, {3, 4}, {5, 6}, {7, 8}, {9, 10}, {11, 12}};
  e.face.detector = "blazeface";
  return e;
}

TEST(EvalCache, RoundTripsAndInvalidatesOnChange) {
  TempDir d("fg_eval_cache_rt");
  {
    auto c = eval::EmbeddingCache::open(d.path, "key-1");
    ASSERT_TRUE(c) << c.error().message;
    EXPECT_EQ(c->size(), 0u);
    c->put("a/x.jpg", 100, 7, sample(1.f));
    auto failed = sample(0.f, eval::FaceSource::kFailed);
    failed.embedding = {};
    failed.error = "no face";
    c->put("b/y.jpg", 200, 8, failed);
    ASSERT_TRUE(c->save());
    EXPECT_TRUE(std::filesystem::exists(c->file()));
  }
  auto c = eval::EmbeddingCache::open(d.path, "key-1");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->size(), 2u);
  const auto* x = c->find("a/x.jpg", 100, 7);
  ASSERT_NE(x, nullptr);
  EXPECT_EQ(x->source, eval::FaceSource::kDetected);
  EXPECT_EQ(x->embedding.model_id, "dlib-test");
  EXPECT_EQ(x->embedding.values, (std::vector<float>{1.f, -1.f, 0.5f}));
  EXPECT_FLOAT_EQ(x->face.box.width, 30.f);
  EXPECT_FLOAT_EQ(x->face.score, 0.9f);
  EXPECT_EQ(x->face.scheme, faceguard::LandmarkScheme::kBlazeFace6);
  ASSERT_EQ(x->face.landmarks.size(), 6u);
  EXPECT_FLOAT_EQ(x->face.landmarks[5].y, 12.f);
  EXPECT_EQ(x->face.detector, "blazeface");
  const auto* y = c->find("b/y.jpg", 200, 8);
  ASSERT_NE(y, nullptr);
  EXPECT_EQ(y->source, eval::FaceSource::kFailed);
  EXPECT_EQ(y->error, "no face");
  EXPECT_EQ(c->find("a/x.jpg", 101, 7), nullptr);  // size changed
  EXPECT_EQ(c->find("a/x.jpg", 100, 9), nullptr);  // mtime changed
  EXPECT_EQ(c->find("a/z.jpg", 100, 7), nullptr);
  // Another configuration uses another file.
  auto other = eval::EmbeddingCache::open(d.path, "key-2");
  ASSERT_TRUE(other);
  EXPECT_EQ(other->size(), 0u);
  EXPECT_NE(other->file(), c->file());
}

TEST(EvalCache, RefusesCorruptFiles) {
  TempDir d("fg_eval_cache_bad");
  auto c = eval::EmbeddingCache::open(d.path, "k");
  ASSERT_TRUE(c);
  c->put("a.jpg", 1, 2, sample(2.f));
  ASSERT_TRUE(c->save());
  std::string bytes;
  {
    std::ifstream in(c->file(), std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  auto write = [&](const std::string& b) { std::ofstream(c->file(), std::ios::binary | std::ios::trunc) << b; };
  for (std::size_t cut : {std::size_t{3}, std::size_t{10}, bytes.size() / 2, bytes.size() - 1}) {
    write(bytes.substr(0, cut));
    auto r = eval::EmbeddingCache::open(d.path, "k");
    ASSERT_FALSE(r) << cut;
    EXPECT_EQ(r.error().code, ErrorCode::kCorruptData) << cut;
  }
  write(bytes + "x");
  EXPECT_EQ(eval::EmbeddingCache::open(d.path, "k").error().code, ErrorCode::kCorruptData);
  auto v2 = bytes;
  v2[8] = 2;  // version field
  write(v2);
  EXPECT_EQ(eval::EmbeddingCache::open(d.path, "k").error().code, ErrorCode::kUnsupportedFormat);
  write(bytes);
  EXPECT_TRUE(eval::EmbeddingCache::open(d.path, "k"));
}

TEST(EvalCache, InMemoryNeverWrites) {
  auto c = eval::EmbeddingCache::in_memory("k");
  c.put("a.jpg", 1, 2, sample(1.f));
  EXPECT_NE(c.find("a.jpg", 1, 2), nullptr);
  EXPECT_TRUE(c.save());
  EXPECT_TRUE(c.file().empty());
}

TEST(EvalCache, ConfigKeyNamesWhatChangesATemplate) {
  eval::VerifyConfig a;
  eval::VerifyConfig b = a;
  b.flip = true;
  eval::VerifyConfig c = a;
  c.pipeline.align = faceguard::AlignMethod::kAxisCrop;
  eval::VerifyConfig d = a;
  d.threads = 1;  // does not change a template
  EXPECT_NE(eval::config_key(a), eval::config_key(b));
  EXPECT_NE(eval::config_key(a), eval::config_key(c));
  EXPECT_EQ(eval::config_key(a), eval::config_key(d));
  // Alignment and flip happen after detection: the face cache is shared, the embedding cache is not.
  EXPECT_EQ(eval::detection_key(a), eval::detection_key(b));
  EXPECT_EQ(eval::detection_key(a), eval::detection_key(c));
  eval::VerifyConfig e = a;
  e.pipeline.detector.kind = faceguard::DetectorKind::kBlazeFaceBack;
  EXPECT_NE(eval::detection_key(a), eval::detection_key(e));
  EXPECT_NE(eval::detection_key(a), eval::config_key(a));
}

}  // namespace
