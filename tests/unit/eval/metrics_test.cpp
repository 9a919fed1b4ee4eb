// Verification metrics on small score sets whose answers were worked out by hand.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "faceguard/eval.hpp"

namespace {

using faceguard::eval::ScoredPair;

// same {0.1, 0.2, 0.3, 0.6}, different {0.4, 0.5, 0.7, 0.8}. Sorted: S S S D D S D D.
// Accepting the first 3 gives 7/8; ROC points (FAR,TAR): (0,0) (0,.25) (0,.5) (0,.75) (.25,.75) (.5,.75)
// (.5,1) (.75,1) (1,1); AUC = .875 (= 14 of 16 same/different orderings right); EER at (.25,.75).
std::vector<ScoredPair> graded() {
  return {{0.1, true}, {0.4, false}, {0.2, true}, {0.5, false}, {0.3, true}, {0.7, false}, {0.6, true}, {0.8, false}};
}

TEST(EvalMetrics, AccuracyAtThresholdIsStrict) {
  auto p = graded();
  EXPECT_DOUBLE_EQ(faceguard::eval::accuracy_at(p, 0.35), 7.0 / 8.0);
  // 0.3 itself is not accepted (distance < threshold): 2 same accepted + 4 different rejected.
  EXPECT_DOUBLE_EQ(faceguard::eval::accuracy_at(p, 0.3), 6.0 / 8.0);
  EXPECT_DOUBLE_EQ(faceguard::eval::accuracy_at(p, 0.0), 0.5);
  EXPECT_DOUBLE_EQ(faceguard::eval::accuracy_at(p, 1.0), 0.5);
  EXPECT_DOUBLE_EQ(faceguard::eval::accuracy_at({}, 1.0), 0.0);
}

TEST(EvalMetrics, BestThresholdIsTheMidpointOfTheBestGap) {
  auto r = faceguard::eval::best_threshold(graded());
  ASSERT_TRUE(r);
  EXPECT_DOUBLE_EQ(r->threshold, 0.35);
  EXPECT_DOUBLE_EQ(r->accuracy, 7.0 / 8.0);
}

TEST(EvalMetrics, BestThresholdTakesTheMiddleOfATie) {
  // Groups by distance: S0 | S1 D1 | S2 D2 | D3. Correct counts of the candidates accepting 0..4 groups:
  // 3, 4, 4, 4, 3 -> a run of three (thresholds 0.5, 1.5, 2.5); the middle one is 1.5.
  std::vector<ScoredPair> p{{0, true}, {1, true}, {1, false}, {2, true}, {2, false}, {3, false}};
  auto r = faceguard::eval::best_threshold(p);
  ASSERT_TRUE(r);
  EXPECT_DOUBLE_EQ(r->threshold, 1.5);
  EXPECT_DOUBLE_EQ(r->accuracy, 4.0 / 6.0);
  // S0 D1 S2 D3: counts 2, 3, 2, 3, 2 -> two separate best candidates; the first run (0.5) wins.
  std::vector<ScoredPair> q{{0, true}, {1, false}, {2, true}, {3, false}};
  auto rq = faceguard::eval::best_threshold(q);
  ASSERT_TRUE(rq);
  EXPECT_DOUBLE_EQ(rq->threshold, 0.5);
  EXPECT_DOUBLE_EQ(rq->accuracy, 0.75);
}

TEST(EvalMetrics, BestThresholdOnOneClassAcceptsOrRejectsAll) {
  std::vector<ScoredPair> all_same{{0.2, true}, {0.4, true}};
  auto r = faceguard::eval::best_threshold(all_same);
  ASSERT_TRUE(r);
  EXPECT_GT(r->threshold, 0.4);
  EXPECT_DOUBLE_EQ(r->accuracy, 1.0);
  std::vector<ScoredPair> all_diff{{0.2, false}, {0.4, false}};
  auto d = faceguard::eval::best_threshold(all_diff);
  ASSERT_TRUE(d);
  EXPECT_LE(d->threshold, 0.2);
  EXPECT_DOUBLE_EQ(d->accuracy, 1.0);
  EXPECT_FALSE(faceguard::eval::best_threshold({}));
}

TEST(EvalMetrics, InfiniteDistancesArePredictedDifferent) {
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<ScoredPair> p{{0.1, true}, {inf, true}, {0.9, false}, {inf, false}};
  auto r = faceguard::eval::best_threshold(p);
  ASSERT_TRUE(r);
  EXPECT_DOUBLE_EQ(r->threshold, 0.5);
  EXPECT_DOUBLE_EQ(r->accuracy, 0.75);
}

TEST(EvalMetrics, StratifiedFoldsBalanceBothClasses) {
  std::vector<ScoredPair> p;
  for (int i = 0; i < 20; ++i) p.push_back({double(i), true});
  for (int i = 0; i < 20; ++i) p.push_back({double(i), false});
  auto f = faceguard::eval::stratified_folds(p, 10);
  ASSERT_EQ(f.size(), 40u);
  int count[10][2] = {};
  for (std::size_t i = 0; i < p.size(); ++i) ++count[f[i]][p[i].same ? 1 : 0];
  for (int k = 0; k < 10; ++k) {
    EXPECT_EQ(count[k][0], 2) << k;
    EXPECT_EQ(count[k][1], 2) << k;
  }
  EXPECT_EQ(f[0], 0);
  EXPECT_EQ(f[1], 0);
  EXPECT_EQ(f[2], 1);
  EXPECT_EQ(f[19], 9);
}

TEST(EvalMetrics, KFoldChoosesTheThresholdOnTheOtherFolds) {
  // Fold 0: same 0.1, different 0.9 (separable at any threshold in (0.1, 0.9)).
  // Fold 1: same 0.5, different 0.6.   Fold 2: same 0.2, different 0.3.
  // Test fold 0 <- train {0.5S 0.6D 0.2S 0.3D}: S D S D sorted 0.2S 0.3D 0.5S 0.6D -> best 0.25 (first run),
  //   fold 0 accuracy 1 (0.1 accepted, 0.9 rejected).
  // Test fold 1 <- train {0.1S 0.9D 0.2S 0.3D}: sorted S S D D -> 0.25; fold 1: 0.5S rejected -> 1/2.
  // Test fold 2 <- train {0.1S 0.9D 0.5S 0.6D}: sorted S S D D -> 0.55; fold 2: 0.3D accepted -> 1/2.
  std::vector<ScoredPair> p{{0.1, true}, {0.9, false}, {0.5, true}, {0.6, false}, {0.2, true}, {0.3, false}};
  std::vector<int> folds{0, 0, 1, 1, 2, 2};
  auto r = faceguard::eval::k_fold(p, folds, 3);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->folds.size(), 3u);
  EXPECT_DOUBLE_EQ(r->folds[0].threshold, 0.25);
  EXPECT_DOUBLE_EQ(r->folds[0].test_accuracy, 1.0);
  EXPECT_DOUBLE_EQ(r->folds[1].threshold, 0.25);
  EXPECT_DOUBLE_EQ(r->folds[1].test_accuracy, 0.5);
  EXPECT_DOUBLE_EQ(r->folds[2].threshold, 0.55);
  EXPECT_DOUBLE_EQ(r->folds[2].test_accuracy, 0.5);
  EXPECT_DOUBLE_EQ(r->folds[1].train_accuracy, 1.0);
  EXPECT_NEAR(r->mean_accuracy, 2.0 / 3.0, 1e-12);
  // Sample std of {1, .5, .5}: deviations 1/3, -1/6, -1/6 -> ss = 1/6, /2 -> sqrt(1/12).
  EXPECT_NEAR(r->std_accuracy, std::sqrt(1.0 / 12.0), 1e-12);
  EXPECT_NEAR(r->standard_error, std::sqrt(1.0 / 12.0) / std::sqrt(3.0), 1e-12);
}

TEST(EvalMetrics, KFoldRefusesBadInput) {
  std::vector<ScoredPair> p{{0.1, true}, {0.9, false}};
  std::vector<int> short_folds{0};
  EXPECT_FALSE(faceguard::eval::k_fold(p, short_folds, 2));
  std::vector<int> one_fold{0, 0};
  EXPECT_FALSE(faceguard::eval::k_fold(p, one_fold, 2));  // fold 1 empty
  std::vector<int> out_of_range{0, 5};
  EXPECT_FALSE(faceguard::eval::k_fold(p, out_of_range, 2));
  std::vector<int> ok{0, 1};
  EXPECT_FALSE(faceguard::eval::k_fold(p, ok, 1));
  EXPECT_TRUE(faceguard::eval::k_fold(p, ok, 2));
}

TEST(EvalMetrics, RocAucAndEer) {
  auto r = faceguard::eval::roc(graded());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->positives, 4);
  EXPECT_EQ(r->negatives, 4);
  ASSERT_EQ(r->points.size(), 9u);
  EXPECT_DOUBLE_EQ(r->points.front().far, 0.0);
  EXPECT_DOUBLE_EQ(r->points.front().tar, 0.0);
  EXPECT_DOUBLE_EQ(r->points[3].tar, 0.75);
  EXPECT_DOUBLE_EQ(r->points[3].far, 0.0);
  EXPECT_DOUBLE_EQ(r->points[4].far, 0.25);
  EXPECT_DOUBLE_EQ(r->points.back().far, 1.0);
  EXPECT_DOUBLE_EQ(r->points.back().tar, 1.0);
  EXPECT_DOUBLE_EQ(r->auc, 0.875);
  EXPECT_DOUBLE_EQ(r->eer, 0.25);
  EXPECT_DOUBLE_EQ(r->eer_threshold, 0.45);
}

TEST(EvalMetrics, EerInterpolatesBetweenPoints) {
  // same {1}, different {0}: points (0,0) (1,0) (1,1). FAR - FNR: -1, 0 -> EER 1 at the second point.
  std::vector<ScoredPair> worst{{1, true}, {0, false}};
  auto w = faceguard::eval::roc(worst);
  ASSERT_TRUE(w);
  EXPECT_DOUBLE_EQ(w->auc, 0.0);
  EXPECT_DOUBLE_EQ(w->eer, 1.0);
  // same and different at the same distance: points (0,0) (1,1): the diagonal, AUC .5, EER .5.
  std::vector<ScoredPair> tie{{1, true}, {1, false}};
  auto t = faceguard::eval::roc(tie);
  ASSERT_TRUE(t);
  EXPECT_DOUBLE_EQ(t->auc, 0.5);
  EXPECT_DOUBLE_EQ(t->eer, 0.5);
  std::vector<ScoredPair> one_class{{1, true}};
  EXPECT_FALSE(faceguard::eval::roc(one_class));
}

TEST(EvalMetrics, TarAtFar) {
  auto r = faceguard::eval::roc(graded());
  ASSERT_TRUE(r);
  auto a = faceguard::eval::tar_at_far(*r, 0.25);
  EXPECT_DOUBLE_EQ(a.tar, 0.75);
  EXPECT_DOUBLE_EQ(a.far, 0.0);  // the first point reaching that TAR
  EXPECT_DOUBLE_EQ(a.threshold, 0.35);
  EXPECT_TRUE(a.resolvable);
  auto b = faceguard::eval::tar_at_far(*r, 0.5);
  EXPECT_DOUBLE_EQ(b.tar, 1.0);
  EXPECT_DOUBLE_EQ(b.far, 0.5);
  auto c = faceguard::eval::tar_at_far(*r, 1e-3);
  EXPECT_DOUBLE_EQ(c.tar, 0.75);
  EXPECT_FALSE(c.resolvable);  // 4 different pairs cannot measure a FAR of 1e-3
}

TEST(EvalMetrics, ScoresCsvAndSvg) {
  faceguard::eval::PairList pl;
  pl.pairs.push_back({"x/a.jpg", "x/b,c.jpg", true, -1});
  pl.pairs.push_back({"x/a.jpg", "y/d.jpg", false, -1});
  std::vector<ScoredPair> s{{0.25, true}, {std::numeric_limits<double>::infinity(), false}};
  EXPECT_EQ(faceguard::eval::scores_csv(pl, s),
            "a,b,same,distance\nx/a.jpg,\"x/b,c.jpg\",1,0.250000\nx/a.jpg,y/d.jpg,0,inf\n");
  auto r = faceguard::eval::roc(graded());
  ASSERT_TRUE(r);
  const auto svg = faceguard::eval::roc_svg(*r, "LFW <test>");
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_NE(svg.find("LFW &lt;test&gt;"), std::string::npos);
  EXPECT_NE(svg.find("AUC 0.8750"), std::string::npos);
  EXPECT_NE(svg.find("EER 25.00%"), std::string::npos);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
}

}  // namespace
