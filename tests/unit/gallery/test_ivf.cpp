// kIvf: the inverted-file index over int8 codes. Same answers as exact search on a structured (face-like) set,
// kept in step with add/remove, retrained as the gallery grows, chosen by kAuto only when configured.
#include <map>
#include <random>

#include "gallery/index.hpp"
#include "gallery/ivf.hpp"
#include "gallery/scan8.hpp"
#include "gallery_fixture.hpp"

namespace faceguard::test {
namespace {

using gallery::Hit;
using gallery::IndexConfig;
using gallery::IvfLists;
using gallery::TemplateIndex;

// Face-like templates, as in bench/gallery_bench.cpp: identity centres in a cone around one common direction
// (impostor cosines ~0.8, not 0) with a decaying per-axis spread, templates close around their centre.
class ConeSynth {
 public:
  explicit ConeSynth(unsigned seed) : rng_(seed), m_(kDim) {
    for (auto& x : m_) x = n_(rng_);
    Synth::norm(m_);
  }
  std::vector<float> centre() {
    std::vector<float> c(kDim);
    for (int i = 0; i < kDim; ++i) c[i] = 0.9f * m_[i] + 0.45f * n_(rng_) * std::exp(-0.025f * i) / 3.f;
    Synth::norm(c);
    return c;
  }
  std::vector<float> around(const std::vector<float>& c) {
    std::vector<float> t(kDim);
    for (int i = 0; i < kDim; ++i) t[i] = c[i] + 0.18f * n_(rng_) / std::sqrt(static_cast<float>(kDim));
    Synth::norm(t);
    return t;
  }

 private:
  std::mt19937 rng_;
  std::normal_distribution<float> n_{0.f, 1.f};
  std::vector<float> m_;
};

std::vector<std::int64_t> ids_of(const std::vector<Hit>& hits) {
  std::vector<std::int64_t> v;
  for (const auto& h : hits) v.push_back(h.id);
  return v;
}

IndexConfig ivf_config() {
  IndexConfig c;
  c.kind = IndexKind::kIvf;
  c.threads = 2;
  return c;
}

struct Gallery3 {
  std::vector<std::vector<float>> centres, rows;
};

Gallery3 make(ConeSynth& s, int identities, int per_identity) {
  Gallery3 g;
  for (int p = 0; p < identities; ++p) {
    g.centres.push_back(s.centre());
    for (int t = 0; t < per_identity; ++t) g.rows.push_back(s.around(g.centres.back()));
  }
  return g;
}

TEST(Ivf, ListCountFollowsTheSize) {
  EXPECT_EQ(IvfLists::nlist_for(0), 0u);
  EXPECT_EQ(IvfLists::nlist_for(5), 1u);
  EXPECT_EQ(IvfLists::nlist_for(800), 100u);        // n / 8 caps 4 sqrt(n) = 113
  EXPECT_EQ(IvfLists::nlist_for(1'000'000), 4000u);  // 4 sqrt(n)
  EXPECT_GE(gallery::default_ivf_nprobe(4000), 600u);
  EXPECT_LE(gallery::default_ivf_nprobe(4000), 800u);
  EXPECT_EQ(gallery::default_ivf_nprobe(10), 10u);  // never more than there are lists
}

TEST(Ivf, SameTopHitAsFlatOnStructuredTemplates) {
  ConeSynth s(11);
  const auto g = make(s, 2000, 3);
  TemplateIndex ivf(kDim, ivf_config());
  IndexConfig fc;
  fc.kind = IndexKind::kFlat;
  TemplateIndex flat(kDim, fc);
  for (std::size_t i = 0; i < g.rows.size(); ++i) {
    ASSERT_TRUE(ivf.add(static_cast<std::int64_t>(i + 1), g.rows[i]));
    flat.add(static_cast<std::int64_t>(i + 1), g.rows[i]);
  }
  EXPECT_TRUE(ivf.needs_prepare());
  ivf.prepare();
  EXPECT_FALSE(ivf.needs_prepare());
  EXPECT_EQ(ivf.active_kind(), IndexKind::kIvf);
  EXPECT_EQ(ivf.ivf_nlist(), IvfLists::nlist_for(6000));
  std::size_t agree = 0, total = 0;
  for (int qi = 0; qi < 60; ++qi) {
    // Even: another template of an enrolled identity; odd: a stranger (its top-10 is a near tie).
    auto q = qi % 2 == 0 ? s.around(g.centres[static_cast<std::size_t>(qi * 37) % g.centres.size()]) : s.around(s.centre());
    const auto want = ids_of(flat.search(q.data(), 1, 10).front());
    const auto got = ivf.search(q.data(), 1, 10).front();
    ASSERT_EQ(got.size(), 10u);
    for (std::size_t i = 1; i < got.size(); ++i) EXPECT_GE(got[i - 1].score, got[i].score);
    if (qi % 2 == 0) EXPECT_EQ(got.front().id, want.front()) << "query " << qi;
    const auto ids = ids_of(got);
    for (auto id : want) agree += std::count(ids.begin(), ids.end(), id);
    total += want.size();
    // Every list probed: the exact answer (int8 candidates re-ranked in float32).
    EXPECT_EQ(ids_of(ivf.search_ivf_nprobe(q.data(), 10, ivf.ivf_nlist())), want) << "query " << qi;
  }
  EXPECT_GE(static_cast<double>(agree) / static_cast<double>(total), 0.97);
  // The scores are the exact cosines.
  const auto q = s.around(g.centres[5]);
  const auto a = ivf.search(q.data(), 1, 3).front(), b = flat.search(q.data(), 1, 3).front();
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(a[i].score, b[i].score, 1e-5);
}

TEST(Ivf, StaysInStepWithAddAndRemove) {
  ConeSynth s(12);
  const auto g = make(s, 400, 2);
  TemplateIndex index(kDim, ivf_config());
  for (std::size_t i = 0; i < g.rows.size(); ++i) index.add(static_cast<std::int64_t>(i + 1), g.rows[i]);
  index.prepare();
  ASSERT_GT(index.ivf_nlist(), 0u);
  for (std::size_t i = 0; i < g.rows.size(); i += 3) index.remove(static_cast<std::int64_t>(i + 1));
  EXPECT_FALSE(index.needs_prepare());  // 533 of 800 left: no retraining, the lists followed
  for (std::size_t i = 0; i < g.rows.size(); i += 5) {
    // Ask for many hits: a removed template must not be among any of them.
    const auto hits = index.search(g.rows[i].data(), 1, 50).front();
    ASSERT_EQ(hits.size(), 50u);
    for (const auto& h : hits) EXPECT_NE((h.id - 1) % 3, 0) << "removed id " << h.id << " returned";
    if (i % 3 != 0) EXPECT_EQ(hits.front().id, static_cast<std::int64_t>(i + 1));
  }
  // A removed id that comes back is found again, as is a new one.
  index.add(1, g.rows[0]);
  index.add(50'000, g.rows[4]);  // a copy of template 5's values under a new id
  EXPECT_EQ(index.search(g.rows[0].data(), 1, 1).front().at(0).id, 1);
  const auto both = ids_of(index.search(g.rows[4].data(), 1, 2).front());
  EXPECT_EQ(std::count(both.begin(), both.end(), 50'000), 1);
  EXPECT_EQ(std::count(both.begin(), both.end(), 5), 1);
  // Asking for every template probes every list it needs: all are returned, once.
  auto all = ids_of(index.search_ivf_nprobe(g.rows[7].data(), index.size(), 1));
  EXPECT_EQ(all.size(), index.size());
  std::sort(all.begin(), all.end());
  EXPECT_EQ(std::adjacent_find(all.begin(), all.end()), all.end());
}

// The two-pass list layout on its own: head codes and scan8 codes stay with their ids through bulk fill, adds
// and swap-removes, and a search over every list with a deep enough first pass gives exactly the scan8 ranking
// of a brute-force scan.
TEST(Ivf, HeadCodesFollowEnrolAndDelete) {
  ConeSynth s(21);
  const auto g = make(s, 700, 3);  // 2,100 rows
  const std::size_t n0 = 1500;
  std::vector<float> rows;
  std::vector<std::int64_t> ids;
  for (std::size_t i = 0; i < n0; ++i) {
    rows.insert(rows.end(), g.rows[i].begin(), g.rows[i].end());
    ids.push_back(static_cast<std::int64_t>(i + 1));
  }
  IvfLists lists(kDim, rows.data(), ids.data(), n0, 0, 99, 2);
  ASSERT_TRUE(lists.trained());
  EXPECT_EQ(lists.head_dims(), IvfLists::kHeadDims);
  EXPECT_TRUE(lists.lists_consistent());
  std::map<std::int64_t, std::size_t> live;  // id -> row of g
  for (std::size_t i = 0; i < n0; ++i) live[static_cast<std::int64_t>(i + 1)] = i;
  std::mt19937 rng(4);
  // Deletes at random positions (moving list tails), adds (new blocks), a re-added id.
  for (int step = 0; step < 900; ++step) {
    if (step % 3 == 2) {
      const std::size_t r = n0 + static_cast<std::size_t>(step / 3);
      lists.add(static_cast<std::int64_t>(r + 1), g.rows[r].data());
      live[static_cast<std::int64_t>(r + 1)] = r;
    } else {
      auto it = live.begin();
      std::advance(it, static_cast<std::ptrdiff_t>(rng() % live.size()));
      lists.remove(it->first);
      live.erase(it);
    }
  }
  lists.add(1'000'000, g.rows[0].data());
  live[1'000'000] = 0;
  lists.add(1'000'000, g.rows[1].data());  // already there: ignored
  EXPECT_EQ(lists.size(), live.size());
  EXPECT_TRUE(lists.lists_consistent());
  for (const auto& [id, r] : live) {
    ASSERT_TRUE(lists.contains(id));
    EXPECT_EQ(lists.stored_head_codes(id), lists.head_codes_of(g.rows[r].data())) << "id " << id;
  }
  EXPECT_FALSE(lists.contains(2'000'000));
  EXPECT_TRUE(lists.stored_head_codes(2'000'000).empty());

  // Brute force: the scan8 score of every live row.
  const int stride = gallery::scan8_stride(kDim);
  auto sq = std::make_unique<gallery::Scan8Query>();
  for (int qi = 0; qi < 6; ++qi) {
    const auto q = qi % 2 == 0 ? s.around(g.centres[static_cast<std::size_t>(qi * 41) % g.centres.size()]) : s.around(s.centre());
    gallery::scan8_prepare_query(q.data(), kDim, stride, sq.get());
    std::vector<float> want;
    for (const auto& [id, r] : live) {
      std::vector<std::int8_t> code(static_cast<std::size_t>(stride));
      float scale = 0;
      std::int32_t sum = 0, dot = 0;
      gallery::scan8_quantize(g.rows[r].data(), kDim, stride, code.data(), &scale, &sum);
      gallery::scan8_dots_reference(*sq, code.data(), 1, stride, &dot);
      want.push_back(static_cast<float>(dot) * scale);
    }
    std::sort(want.rbegin(), want.rend());
    want.resize(50);
    const auto got = lists.search(q.data(), *sq, lists.nlist(), 50, 50, 2, live.size());
    ASSERT_EQ(got.size(), 50u);
    for (std::size_t i = 0; i < 50; ++i) EXPECT_EQ(got[i].score, want[i]) << "query " << qi << " rank " << i;
    // The default first-pass depth (far fewer rows than the gallery) still finds the best of them.
    const auto quick = lists.search(q.data(), *sq, lists.nlist(), 10, 10, 1, 64);
    ASSERT_EQ(quick.size(), 10u);
    EXPECT_EQ(quick.front().score, want.front()) << "query " << qi;
  }
  // Emptied lists: nothing found, and the layout is still consistent.
  for (const auto& [id, r] : live) lists.remove(id);
  EXPECT_EQ(lists.size(), 0u);
  EXPECT_TRUE(lists.lists_consistent());
  gallery::scan8_prepare_query(g.rows[0].data(), kDim, stride, sq.get());
  EXPECT_TRUE(lists.search(g.rows[0].data(), *sq, lists.nlist(), 10, 10, 2).empty());
}

TEST(Ivf, RetrainsWhenTheSizeMovesFourfold) {
  ConeSynth s(13);
  const auto g = make(s, 1000, 2);
  TemplateIndex index(kDim, ivf_config());
  for (int i = 0; i < 200; ++i) index.add(i + 1, g.rows[static_cast<std::size_t>(i)]);
  index.prepare();
  EXPECT_EQ(index.ivf_trained_rows(), 200u);
  EXPECT_EQ(index.ivf_nlist(), IvfLists::nlist_for(200));
  for (int i = 200; i < 800; ++i) index.add(i + 1, g.rows[static_cast<std::size_t>(i)]);
  EXPECT_FALSE(index.needs_prepare());  // 4x: still in range
  EXPECT_EQ(index.search(g.rows[700].data(), 1, 1).front().at(0).id, 701);  // added rows are in the lists
  index.add(801, g.rows[800]);
  EXPECT_TRUE(index.needs_prepare());
  // search() before prepare() still answers from the old lists.
  EXPECT_EQ(index.search(g.rows[800].data(), 1, 1).front().at(0).id, 801);
  index.prepare();
  EXPECT_EQ(index.ivf_trained_rows(), 801u);
  EXPECT_EQ(index.ivf_nlist(), IvfLists::nlist_for(801));
  EXPECT_GT(index.ivf_nlist(), IvfLists::nlist_for(200));
  // Shrinking below a quarter retrains too.
  for (int i = 1; i <= 700; ++i) index.remove(i);
  EXPECT_TRUE(index.needs_prepare());
  index.prepare();
  EXPECT_EQ(index.ivf_trained_rows(), 101u);
  EXPECT_EQ(index.search(g.rows[750].data(), 1, 1).front().at(0).id, 751);
  // Emptied: searches answer nothing, and the next template trains again.
  for (int i = 701; i <= 801; ++i) index.remove(i);
  EXPECT_TRUE(index.search(g.rows[0].data(), 1, 5).front().empty());
  index.add(7, g.rows[6]);
  index.prepare();
  EXPECT_EQ(index.ivf_nlist(), 1u);
  EXPECT_EQ(index.search(g.rows[6].data(), 1, 5).front().at(0).id, 7);
}

TEST(Ivf, AutoChoosesIvfOnlyAboveItsConfiguredSize) {
  ConeSynth s(14);
  const auto g = make(s, 160, 1);
  IndexConfig cfg;
  cfg.scan8_above = 50;
  cfg.ivf_above = 100;
  TemplateIndex index(kDim, cfg);
  IndexConfig dc;  // the defaults: ivf_above 0, never IVF
  dc.scan8_above = 50;
  TemplateIndex plain(kDim, dc);
  for (int i = 0; i < 150; ++i) {
    index.add(i + 1, g.rows[static_cast<std::size_t>(i)]);
    plain.add(i + 1, g.rows[static_cast<std::size_t>(i)]);
    const IndexKind want = i + 1 > 100 ? IndexKind::kIvf : i + 1 > 50 ? IndexKind::kScan8 : IndexKind::kFlat;
    ASSERT_EQ(index.active_kind(), want) << i + 1 << " templates";
    ASSERT_EQ(plain.active_kind(), i + 1 > 50 ? IndexKind::kScan8 : IndexKind::kFlat);
  }
  EXPECT_TRUE(index.needs_prepare());
  index.prepare();
  EXPECT_GT(index.ivf_nlist(), 0u);
  EXPECT_EQ(index.search(g.rows[120].data(), 1, 1).front().at(0).id, 121);
  EXPECT_EQ(to_string(IndexKind::kIvf), "ivf");
}

TEST(Ivf, GalleryIdentifiesAndForgetsWithIvf) {
  ScratchDir dir;
  auto o = create_options(test_key());
  o.index = IndexKind::kIvf;
  auto g = Gallery::open(dir / "g.fgdb", o);
  ASSERT_TRUE(g) << g.error().message;
  ConeSynth s(15);
  std::vector<std::vector<float>> centres;
  for (int p = 0; p < 60; ++p) {
    centres.push_back(s.centre());
    ASSERT_TRUE((*g)->enroll({"p" + std::to_string(p), "P", "{}"}, std::vector{tmpl(s.around(centres.back())), tmpl(s.around(centres.back()))}));
  }
  auto probe = [&](int p) { return Embedding{kModel, s.around(centres[static_cast<std::size_t>(p)])}; };
  auto r = (*g)->identify(probe(17), {.top_k = 3, .threshold = 0.5f});
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->candidates.at(0).subject_id, "p17");
  EXPECT_EQ((*g)->stats()->index, IndexKind::kIvf);
  ASSERT_TRUE((*g)->remove("p17"));
  r = (*g)->identify(probe(17), {.top_k = 5, .threshold = 0.5f});
  ASSERT_TRUE(r);
  for (const auto& c : r->candidates) EXPECT_NE(c.subject_id, "p17");
  // Reopened: the index is rebuilt from the store.
  (*g).reset();
  auto oo = open_options(test_key());
  oo.index = IndexKind::kIvf;
  auto g2 = Gallery::open(dir / "g.fgdb", oo);
  ASSERT_TRUE(g2) << g2.error().message;
  r = (*g2)->identify(probe(42), {.top_k = 1, .threshold = 0.5f});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->candidates.at(0).subject_id, "p42");
}

}  // namespace
}  // namespace faceguard::test
