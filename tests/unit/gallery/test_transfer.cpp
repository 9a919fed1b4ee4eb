// Export / import: round trip, versioning, checksum, wrong key, conflicts, model binding.
#include "gallery_fixture.hpp"

namespace faceguard::test {
namespace {

namespace fs = std::filesystem;

struct Source {
  ScratchDir dir;
  std::unique_ptr<Gallery> g;
  std::vector<float> alice;
};

void fill(Source& src) {
  auto g = Gallery::open(src.dir / "a.fgdb", create_options(test_key(1)));
  ASSERT_TRUE(g);
  src.g = std::move(*g);
  Synth s(21);
  auto c = s.centre();
  src.alice = s.around(c);
  TemplateInput t = tmpl(src.alice);
  t.retain_until = 1900000000;
  ASSERT_TRUE(src.g->enroll({"alice", "Alice", R"({"k":[1,2]})"}, std::vector{t, tmpl(s.around(c))}));
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(src.g->enroll({"p" + std::to_string(i), "P", "{}"}, std::vector{tmpl(s.around(s.centre()))}));
}

TEST(GalleryTransfer, RoundTripReencryptsUnderTheNewGallery) {
  Source src;
  fill(src);
  const auto file = src.dir / "out.fgx";
  const SecretKey transfer = test_key(9);
  auto ex = src.g->export_to(file, transfer);
  ASSERT_TRUE(ex) << ex.error().message;
  EXPECT_EQ(ex->subjects, 6u);
  EXPECT_EQ(ex->templates, 7u);
  const auto bytes = read_bytes(file);
  EXPECT_FALSE(contains_bytes(bytes, src.alice.data(), 64));  // encrypted in transit too
  EXPECT_FALSE(contains_bytes(bytes, "Alice", 5));

  auto dst = Gallery::open(src.dir / "b.fgdb", create_options(test_key(2)));  // another master key
  ASSERT_TRUE(dst);
  auto im = (*dst)->import_from(file, transfer);
  ASSERT_TRUE(im) << im.error().message;
  EXPECT_EQ(im->subjects, 6u);
  EXPECT_EQ(im->templates, 7u);
  auto alice = (*dst)->show("alice");
  ASSERT_TRUE(alice);
  EXPECT_EQ(alice->display_name, "Alice");
  EXPECT_EQ(alice->metadata_json, R"({"k":[1,2]})");
  ASSERT_EQ(alice->templates.size(), 2u);
  EXPECT_EQ(alice->templates[0].retain_until, std::optional<std::int64_t>(1900000000));
  auto v = (*dst)->template_values(alice->templates[0].id);
  ASSERT_TRUE(v);
  EXPECT_EQ(*v, src.alice);
  auto who = (*dst)->identify(Embedding{kModel, src.alice}, {.top_k = 1});
  ASSERT_TRUE(who);
  EXPECT_EQ(who->candidates.at(0).subject_id, "alice");

  // Importing again: every subject conflicts; nothing is written unless told to skip.
  auto again = (*dst)->import_from(file, transfer);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, ErrorCode::kConflict);
  auto skip = (*dst)->import_from(file, transfer, {.skip_existing = true});
  ASSERT_TRUE(skip);
  EXPECT_EQ(skip->skipped, 6u);
  EXPECT_EQ(skip->subjects, 0u);
}

TEST(GalleryTransfer, RefusesDamageWrongKeyUnknownVersionAndOtherModels) {
  Source src;
  fill(src);
  const auto file = src.dir / "out.fgx";
  ASSERT_TRUE(src.g->export_to(file, test_key(9)));
  auto dst = Gallery::open(src.dir / "b.fgdb", create_options(test_key(2)));
  ASSERT_TRUE(dst);
  EXPECT_EQ((*dst)->import_from(file, test_key(10)).error().code, ErrorCode::kPermissionDenied);

  const auto bytes = read_bytes(file);
  auto write = [&](const std::vector<std::uint8_t>& b) {
    std::ofstream f(src.dir / "bad.fgx", std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  };
  auto flipped = bytes;
  flipped[flipped.size() / 2] ^= 0x01;
  write(flipped);
  EXPECT_EQ((*dst)->import_from(src.dir / "bad.fgx", test_key(9)).error().code, ErrorCode::kCorruptData);
  write(std::vector<std::uint8_t>(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(bytes.size() - 100)));
  EXPECT_EQ((*dst)->import_from(src.dir / "bad.fgx", test_key(9)).error().code, ErrorCode::kCorruptData);
  auto v2 = bytes;
  v2[8] = 2;  // version field
  write(v2);
  EXPECT_EQ((*dst)->import_from(src.dir / "bad.fgx", test_key(9)).error().code, ErrorCode::kUnsupportedFormat);
  write(std::vector<std::uint8_t>{'n', 'o', 'p', 'e'});
  EXPECT_NE((*dst)->import_from(src.dir / "bad.fgx", test_key(9)).error().code, ErrorCode::kOk);
  auto st = (*dst)->stats();
  ASSERT_TRUE(st);
  EXPECT_EQ(st->subjects, 0u);  // nothing half-imported

  auto o = create_options(test_key(2));
  o.model_id = "mobilefacenet@x";
  auto other = Gallery::open(src.dir / "c.fgdb", o);
  ASSERT_TRUE(other);
  EXPECT_EQ((*other)->import_from(file, test_key(9)).error().code, ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace faceguard::test
