// Per-template erasure (retention deadlines, consent revocation): the template leaves the store and the
// index; the subject's last template takes the subject and its data key with it.
#include "gallery_fixture.hpp"

namespace faceguard::test {
namespace {

TEST(RemoveTemplate, ErasesOneTemplateThenTheSubjectWithItsKey) {
  ScratchDir dir;
  Synth s(21);
  auto g = Gallery::open(dir / "g.fgdb", create_options(test_key()));
  ASSERT_TRUE(g) << g.error().message;
  const auto c = s.centre();
  const auto first = s.around(c), second = s.around(c);
  auto e = (*g)->enroll({"carol", "Carol", "{}"}, std::vector{tmpl(first), tmpl(second)});
  ASSERT_TRUE(e) << e.error().message;
  ASSERT_EQ(e->template_ids.size(), 2u);
  ASSERT_TRUE((*g)->enroll({"dave", "Dave", "{}"}, std::vector{tmpl(s.around(s.centre()))}));

  auto r1 = (*g)->remove_template(e->template_ids[0]);
  ASSERT_TRUE(r1) << r1.error().message;
  EXPECT_EQ(r1->templates_deleted, 1);
  EXPECT_FALSE(r1->key_destroyed);  // carol still has a template under that key
  auto shown = (*g)->show("carol");
  ASSERT_TRUE(shown);
  ASSERT_EQ(shown->templates.size(), 1u);
  EXPECT_EQ(shown->templates[0].id, e->template_ids[1]);
  EXPECT_EQ((*g)->template_values(e->template_ids[0]).error().code, ErrorCode::kNotFound);
  // The index no longer returns the erased template: the best match is the remaining one.
  auto who = (*g)->identify(Embedding{kModel, first}, {.top_k = 3});
  ASSERT_TRUE(who);
  ASSERT_FALSE(who->candidates.empty());
  EXPECT_EQ(who->candidates[0].subject_id, "carol");
  EXPECT_EQ(who->candidates[0].template_id, e->template_ids[1]);

  auto r2 = (*g)->remove_template(e->template_ids[1]);
  ASSERT_TRUE(r2) << r2.error().message;
  EXPECT_TRUE(r2->key_destroyed);
  EXPECT_EQ((*g)->show("carol").error().code, ErrorCode::kNotFound);
  EXPECT_EQ((*g)->remove_template(e->template_ids[1]).error().code, ErrorCode::kNotFound);

  // Survives reopening: the erasure was committed.
  g->reset();
  auto again = Gallery::open(dir / "g.fgdb", open_options(test_key()));
  ASSERT_TRUE(again) << again.error().message;
  auto st = (*again)->stats();
  ASSERT_TRUE(st);
  EXPECT_EQ(st->subjects, 1u);
  EXPECT_EQ(st->templates, 1u);
}

}  // namespace
}  // namespace faceguard::test
