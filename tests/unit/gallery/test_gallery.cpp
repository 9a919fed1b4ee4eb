// Gallery behaviour: create/open, enrol, identify (open set), list/show, model binding, keys, persistence.
#include <sqlite3.h>

#include <cstring>

#include "gallery_fixture.hpp"

namespace faceguard::test {
namespace {

struct Enrolled {
  std::vector<std::vector<float>> centres;
};

Enrolled enrol_people(Gallery& g, Synth& s, int people, int per_person) {
  Enrolled e;
  for (int p = 0; p < people; ++p) {
    e.centres.push_back(s.centre());
    std::vector<TemplateInput> ts;
    for (int t = 0; t < per_person; ++t) ts.push_back(tmpl(s.around(e.centres.back())));
    auto r = g.enroll({"person-" + std::to_string(p), "Person " + std::to_string(p), R"({"n":)" + std::to_string(p) + "}"}, ts);
    EXPECT_TRUE(r) << r.error().message;
  }
  return e;
}

TEST(Gallery, CreateEnrolIdentifyReopen) {
  ScratchDir dir;
  const auto path = dir / "g.fgdb";
  Synth s(1);
  Enrolled people;
  {
    auto g = Gallery::open(path, create_options(test_key()));
    ASSERT_TRUE(g) << g.error().message;
    people = enrol_people(**g, s, 20, 3);
    auto who = (*g)->identify(Embedding{kModel, s.around(people.centres[7])}, {.top_k = 3, .threshold = 0.6f});
    ASSERT_TRUE(who) << who.error().message;
    ASSERT_EQ(who->candidates.size(), 3u);
    EXPECT_EQ(who->candidates[0].subject_id, "person-7");
    EXPECT_EQ(who->candidates[0].display_name, "Person 7");
    EXPECT_TRUE(who->known);
    EXPECT_GT(who->candidates[0].score, who->candidates[1].score);
    EXPECT_NE(who->candidates[0].subject_id, who->candidates[1].subject_id);  // one entry per subject
  }
  ASSERT_TRUE(std::filesystem::exists(dir / "g.fgdb.keys"));
  auto g = Gallery::open(path, open_options(test_key()));
  ASSERT_TRUE(g) << g.error().message;
  auto st = (*g)->stats();
  ASSERT_TRUE(st);
  EXPECT_EQ(st->subjects, 20u);
  EXPECT_EQ(st->templates, 60u);
  EXPECT_EQ(st->index, IndexKind::kFlat);
  // An unenrolled identity is "unknown" at a threshold between impostor and genuine scores.
  auto stranger = (*g)->identify(Embedding{kModel, s.around(s.centre())}, {.top_k = 5, .threshold = 0.6f});
  ASSERT_TRUE(stranger);
  EXPECT_FALSE(stranger->known);
  EXPECT_LT(stranger->candidates[0].score, 0.5f);
  auto again = (*g)->identify(Embedding{kModel, s.around(people.centres[13])}, {.top_k = 1, .threshold = 0.6f});
  ASSERT_TRUE(again);
  EXPECT_EQ(again->candidates.at(0).subject_id, "person-13");
}

TEST(Gallery, DistanceIsEuclideanOfRawTemplates) {
  ScratchDir dir;
  auto g = Gallery::open(dir / "g.fgdb", create_options(test_key()));
  ASSERT_TRUE(g);
  Synth s(2);
  auto c = s.centre();
  auto a = s.around(c), b = s.around(c);
  ASSERT_TRUE((*g)->enroll({"a", "A", "{}"}, std::vector{tmpl(a)}));
  auto r = (*g)->identify(Embedding{kModel, b}, {.top_k = 1});
  ASSERT_TRUE(r);
  double d2 = 0, dot = 0, na = 0, nb = 0;
  for (int i = 0; i < kDim; ++i) {
    d2 += (a[i] - b[i]) * (a[i] - b[i]);
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  EXPECT_NEAR(r->candidates[0].distance, std::sqrt(d2), 1e-4);
  EXPECT_NEAR(r->candidates[0].score, dot / std::sqrt(na * nb), 1e-5);
}

TEST(Gallery, ListShowAndAddTemplates) {
  ScratchDir dir;
  auto g = Gallery::open(dir / "g.fgdb", create_options(test_key()));
  ASSERT_TRUE(g);
  Synth s(3);
  auto c = s.centre();
  TemplateInput t = tmpl(s.around(c));
  t.retain_until = 2000000000;
  auto r1 = (*g)->enroll({"bob", "Bob B.", R"({"team":"blue"})"}, std::vector{t});
  ASSERT_TRUE(r1);
  EXPECT_TRUE(r1->created);
  auto r2 = (*g)->enroll({"bob", "ignored", "{}"}, std::vector{tmpl(s.around(c)), tmpl(s.around(c))});
  ASSERT_TRUE(r2);
  EXPECT_FALSE(r2->created);
  EXPECT_EQ(r2->template_ids.size(), 2u);
  auto info = (*g)->show("bob");
  ASSERT_TRUE(info) << info.error().message;
  EXPECT_EQ(info->display_name, "Bob B.");
  EXPECT_EQ(info->metadata_json, R"({"team":"blue"})");
  ASSERT_EQ(info->templates.size(), 3u);
  EXPECT_EQ(info->templates[0].retain_until, std::optional<std::int64_t>(2000000000));
  EXPECT_EQ(info->templates[0].consent_id, "consent-1");
  EXPECT_EQ(info->templates[0].model_id, kModel);
  auto values = (*g)->template_values(info->templates[0].id);
  ASSERT_TRUE(values);
  EXPECT_EQ(*values, t.embedding.values);
  auto all = (*g)->list();
  ASSERT_TRUE(all);
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*g)->show("nobody").error().code, ErrorCode::kNotFound);
}

TEST(Gallery, RefusesOtherModelsAndBadInput) {
  ScratchDir dir;
  auto g = Gallery::open(dir / "g.fgdb", create_options(test_key()));
  ASSERT_TRUE(g);
  Synth s(4);
  auto v = s.around(s.centre());
  auto other = (*g)->enroll({"x", "X", "{}"}, std::vector{TemplateInput{Embedding{"mobilefacenet@x", v}, "", {}, ""}});
  EXPECT_EQ(other.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ((*g)->identify(Embedding{"mobilefacenet@x", v}).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ((*g)->enroll({"bad id!", "X", "{}"}, std::vector{tmpl(v)}).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ((*g)->enroll({"x", "X", "[1]"}, std::vector{tmpl(v)}).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ((*g)->enroll({"x", "X", "{"}, std::vector{tmpl(v)}).error().code, ErrorCode::kInvalidArgument);
  auto nan = v;
  nan[3] = std::nanf("");
  EXPECT_EQ((*g)->enroll({"x", "X", "{}"}, std::vector{tmpl(nan)}).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ((*g)->enroll({"x", "X", "{}"}, std::vector{tmpl(std::vector<float>(64, 0.1f))}).error().code,
            ErrorCode::kInvalidArgument);
  EXPECT_EQ((*g)->enroll({"x", "X", "{}"}, std::vector{tmpl(std::vector<float>(kDim, 0.f))}).error().code,
            ErrorCode::kInvalidArgument);
  EXPECT_EQ((*g)->enroll({"x", "X", "{}"}, std::span<const TemplateInput>{}).error().code, ErrorCode::kInvalidArgument);
  auto st = (*g)->stats();
  ASSERT_TRUE(st);
  EXPECT_EQ(st->subjects, 0u);  // nothing half-written by the refused calls
  // Opening with another model id is refused too.
  g->reset();
  auto o = open_options(test_key());
  o.model_id = "mobilefacenet@x";
  EXPECT_EQ(Gallery::open(dir / "g.fgdb", o).error().code, ErrorCode::kInvalidArgument);
}

TEST(Gallery, WrongMasterKeyIsPermissionDenied) {
  ScratchDir dir;
  {
    auto g = Gallery::open(dir / "g.fgdb", create_options(test_key(1)));
    ASSERT_TRUE(g);
    Synth s(5);
    ASSERT_TRUE((*g)->enroll({"a", "A", "{}"}, std::vector{tmpl(s.around(s.centre()))}));
  }
  auto bad = Gallery::open(dir / "g.fgdb", open_options(test_key(2)));
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, ErrorCode::kPermissionDenied);
  EXPECT_NE(bad.error().message.find("wrong master key"), std::string::npos);
  EXPECT_EQ(Gallery::open(dir / "g.fgdb", GalleryOptions{}).error().code, ErrorCode::kInvalidArgument);
  EXPECT_TRUE(Gallery::open(dir / "g.fgdb", open_options(test_key(1))));
}

TEST(Gallery, CreateAndOpenRules) {
  ScratchDir dir;
  EXPECT_EQ(Gallery::open(dir / "none.fgdb", open_options(test_key())).error().code, ErrorCode::kNotFound);
  ASSERT_TRUE(Gallery::open(dir / "g.fgdb", create_options(test_key())));
  EXPECT_EQ(Gallery::open(dir / "g.fgdb", create_options(test_key())).error().code, ErrorCode::kConflict);
  auto o = create_options(test_key());
  o.model_id.clear();
  EXPECT_EQ(Gallery::open(dir / "h.fgdb", o).error().code, ErrorCode::kInvalidArgument);
  // Without its key store a gallery cannot be opened.
  std::filesystem::rename(dir / "g.fgdb.keys", dir / "elsewhere.keys");
  EXPECT_EQ(Gallery::open(dir / "g.fgdb", open_options(test_key())).error().code, ErrorCode::kNotFound);
  // A key store of another gallery is refused.
  ASSERT_TRUE(Gallery::open(dir / "other.fgdb", create_options(test_key())));
  auto wrong = open_options(test_key());
  wrong.key_store = dir / "other.fgdb.keys";
  EXPECT_EQ(Gallery::open(dir / "g.fgdb", wrong).error().code, ErrorCode::kInvalidArgument);
  wrong.key_store = dir / "elsewhere.keys";
  EXPECT_TRUE(Gallery::open(dir / "g.fgdb", wrong));
}

TEST(Gallery, RefusesUnknownSchemaVersion) {
  ScratchDir dir;
  ASSERT_TRUE(Gallery::open(dir / "g.fgdb", create_options(test_key())));
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir / "g.fgdb").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "UPDATE schema_version SET version = 99", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  auto g = Gallery::open(dir / "g.fgdb", open_options(test_key()));
  ASSERT_FALSE(g);
  EXPECT_EQ(g.error().code, ErrorCode::kUnsupportedFormat);
}

TEST(Gallery, CiphertextMovedToAnotherRowFailsAuthentication) {
  ScratchDir dir;
  Synth s(6);
  {
    auto g = Gallery::open(dir / "g.fgdb", create_options(test_key()));
    ASSERT_TRUE(g);
    ASSERT_TRUE((*g)->enroll({"a", "A", "{}"}, std::vector{tmpl(s.around(s.centre())), tmpl(s.around(s.centre()))}));
  }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir / "g.fgdb").c_str(), &db), SQLITE_OK);
  // Swap the two sealed templates: each is bound to its template id, so both must now fail.
  ASSERT_EQ(sqlite3_exec(db,
                         "UPDATE templates SET sealed = (SELECT sealed FROM templates t2 WHERE t2.id != templates.id)",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  auto g = Gallery::open(dir / "g.fgdb", open_options(test_key()));
  ASSERT_FALSE(g);
  EXPECT_EQ(g.error().code, ErrorCode::kCorruptData);
}

TEST(Gallery, ThresholdFromCalibrationTable) {
  ScratchDir dir;
  auto g = Gallery::open(dir / "g.fgdb", create_options(test_key()));
  ASSERT_TRUE(g);
  EXPECT_FALSE((*g)->calibration().calibrated);
  Synth s(7);
  auto c = s.centre();
  ASSERT_TRUE((*g)->enroll({"a", "A", "{}"}, std::vector{tmpl(s.around(c))}));
  auto r0 = (*g)->identify(Embedding{kModel, s.around(c)});
  ASSERT_TRUE(r0);
  // dlib's 0.6 Euclidean at the templates' norm (0.95 in Synth): cos = 1 - 0.36 / (2 * 0.95^2).
  EXPECT_NEAR(r0->threshold, 1.0 - 0.36 / (2 * 0.95 * 0.95), 1e-4);
  EXPECT_LT(r0->fmr, 0);                  // unknown without a calibration
  std::vector<float> gen, imp;
  for (int i = 0; i < 1000; ++i) gen.push_back(0.7f + 0.0003f * i);
  for (int i = 0; i < 10000; ++i) imp.push_back(-0.2f + 0.00006f * i);  // max 0.39994
  auto table = calibrate_threshold(kModel, gen, imp, "synthetic");
  ASSERT_TRUE(table);
  ASSERT_TRUE((*g)->set_calibration(*table));
  g->reset();
  g = Gallery::open(dir / "g.fgdb", open_options(test_key()));
  ASSERT_TRUE(g);
  EXPECT_TRUE((*g)->calibration().calibrated);
  auto r = (*g)->identify(Embedding{kModel, s.around(c)}, {.top_k = 1, .target_fmr = 1e-3});
  ASSERT_TRUE(r);
  // 1e-3 of 10000 impostors = 10 allowed at or above: the threshold sits just above the 11th highest.
  EXPECT_NEAR(r->threshold, -0.2f + 0.00006f * 9989, 1e-5);
  EXPECT_DOUBLE_EQ(r->fmr, 1e-3);
  EXPECT_NEAR(r->expected_false_alarm, 1e-3, 1e-9);  // one subject
  EXPECT_EQ((*g)->identify(Embedding{kModel, s.around(c)}, {.target_fmr = 1e-6}).error().code, ErrorCode::kNotFound);
  ThresholdTable other = *table;
  other.model_id = "mobilefacenet@x";
  EXPECT_EQ((*g)->set_calibration(other).error().code, ErrorCode::kInvalidArgument);
}

TEST(ThresholdTable, JsonRoundTripAndVersion) {
  std::vector<float> gen(100, 0.9f), imp;
  for (int i = 0; i < 1000; ++i) imp.push_back(static_cast<float>(i) / 1000.f);
  auto t = calibrate_threshold(kModel, gen, imp, "unit");
  ASSERT_TRUE(t);
  ASSERT_EQ(t->points.size(), 7u);  // 1e-1 .. 1e-3 resolvable with 1000 impostors
  EXPECT_EQ(t->points[0].fnmr, 0.0);
  auto back = threshold_table_from_json(threshold_table_to_json(*t));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->points.size(), t->points.size());
  EXPECT_FLOAT_EQ(back->points[3].threshold, t->points[3].threshold);
  // Interpolation between grid points is monotone.
  auto a = t->threshold_for(1e-2), b = t->threshold_for(7e-3), c = t->threshold_for(5e-3);
  ASSERT_TRUE(a && b && c);
  EXPECT_LE(*a, *b);
  EXPECT_LE(*b, *c);
  std::string j = threshold_table_to_json(*t);
  j.replace(j.find("\"version\": 1"), 12, "\"version\": 2");
  EXPECT_EQ(threshold_table_from_json(j).error().code, ErrorCode::kUnsupportedFormat);
  EXPECT_EQ(t->threshold_for(0).error().code, ErrorCode::kInvalidArgument);
}

TEST(SecretKeys, ParseForms) {
  const SecretKey k = test_key(3);
  const std::string hex = secret_key_to_hex(k);
  ASSERT_EQ(hex.size(), 64u);
  auto a = parse_secret_key("  " + hex + "\n");
  ASSERT_TRUE(a);
  EXPECT_EQ(std::memcmp(a->data(), k.data(), 32), 0);
  auto b = parse_secret_key("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->data()[31], 31);
  EXPECT_EQ(parse_secret_key("abcd").error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(parse_secret_key(hex.substr(0, 62) + "zz").error().code, ErrorCode::kInvalidArgument);
  ScratchDir dir;
  {
    std::ofstream f(dir / "raw.key", std::ios::binary);
    f.write(reinterpret_cast<const char*>(k.data()), 32);
  }
  auto c = load_secret_key(dir / "raw.key");
  ASSERT_TRUE(c);
  EXPECT_EQ(std::memcmp(c->data(), k.data(), 32), 0);
  EXPECT_EQ(load_secret_key(dir / "none.key").error().code, ErrorCode::kNotFound);
  setenv("FG_TEST_KEY_VAR", hex.c_str(), 1);
  EXPECT_TRUE(master_key_from_env("FG_TEST_KEY_VAR"));
  unsetenv("FG_TEST_KEY_VAR");
  EXPECT_EQ(master_key_from_env("FG_TEST_KEY_VAR").error().code, ErrorCode::kNotFound);
}

}  // namespace
}  // namespace faceguard::test
