// Logistic score fusion: the fit recovers known coefficients, bad inputs are refused, and the k-fold
// protocol fits every fold's fusion without that fold.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "faceguard/eval.hpp"

namespace {

using faceguard::eval::ScoredPair;
using Lists = std::vector<std::vector<ScoredPair>>;

// Pairs whose "same" label is drawn from a known logistic model log-odds = bias + w1 d1 + w2 d2 of two
// uniform distances: the maximum-likelihood fit must come back close to (bias, w1, w2).
Lists logistic_sample(double bias, double w1, double w2, int n, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  Lists lists(2);
  for (int i = 0; i < n; ++i) {
    const double d1 = u(rng), d2 = u(rng);
    const double p = 1.0 / (1.0 + std::exp(-(bias + w1 * d1 + w2 * d2)));
    const bool same = u(rng) < p;
    lists[0].push_back({d1, same});
    lists[1].push_back({d2, same});
  }
  return lists;
}

TEST(EvalFusion, FitRecoversTheCoefficientsOfALogisticModel) {
  const auto lists = logistic_sample(4.0, -6.0, -2.0, 20000, 7);
  auto f = faceguard::eval::fit_fusion(lists);
  ASSERT_TRUE(f) << f.error().message;
  ASSERT_EQ(f->weights.size(), 2u);
  // Standard errors at n = 20,000 are about 0.1-0.15; the ridge (1e-3) shrinks the weights by well under that.
  EXPECT_NEAR(f->bias, 4.0, 0.4);
  EXPECT_NEAR(f->weights[0], -6.0, 0.5);
  EXPECT_NEAR(f->weights[1], -2.0, 0.4);
}

TEST(EvalFusion, AnUninformativeModelGetsAWeightNearZero) {
  auto lists = logistic_sample(3.0, -6.0, 0.0, 20000, 11);
  auto f = faceguard::eval::fit_fusion(lists);
  ASSERT_TRUE(f) << f.error().message;
  EXPECT_LT(f->weights[0], -4.5);
  EXPECT_NEAR(f->weights[1], 0.0, 0.4);
}

TEST(EvalFusion, SeparableDataGivesFiniteWeightsThatSeparate) {
  Lists lists(2);
  for (int i = 0; i < 50; ++i) {
    const double t = i / 50.0;
    lists[0].push_back({0.1 + 0.3 * t, true});
    lists[1].push_back({0.2 + 0.2 * t, true});
    lists[0].push_back({0.6 + 0.3 * t, false});
    lists[1].push_back({0.5 + 0.4 * t, false});
  }
  auto f = faceguard::eval::fit_fusion(lists);
  ASSERT_TRUE(f) << f.error().message;
  EXPECT_TRUE(std::isfinite(f->bias) && std::isfinite(f->weights[0]) && std::isfinite(f->weights[1]));
  const auto fused = faceguard::eval::fuse(*f, lists);
  ASSERT_EQ(fused.size(), lists[0].size());
  auto best = faceguard::eval::best_threshold(fused);
  ASSERT_TRUE(best);
  EXPECT_DOUBLE_EQ(best->accuracy, 1.0);
}

TEST(EvalFusion, FusedDistanceIsTheNegatedLogOddsAndInfinityForAFailedImage) {
  faceguard::eval::Fusion f{{-2.0, -1.0}, 1.5};
  const double d[] = {0.5, 0.25};
  EXPECT_DOUBLE_EQ(faceguard::eval::fused_distance(f, d), -(1.5 - 1.0 - 0.25));
  const double bad[] = {0.5, std::numeric_limits<double>::infinity()};
  EXPECT_EQ(faceguard::eval::fused_distance(f, bad), std::numeric_limits<double>::infinity());
}

TEST(EvalFusion, RefusesBadInputs) {
  Lists one(1, std::vector<ScoredPair>{{0.1, true}, {0.9, false}});
  EXPECT_FALSE(faceguard::eval::fit_fusion(one));
  Lists sizes{{{0.1, true}, {0.9, false}}, {{0.1, true}}};
  EXPECT_FALSE(faceguard::eval::fit_fusion(sizes));
  Lists labels{{{0.1, true}, {0.9, false}}, {{0.1, false}, {0.9, false}}};
  EXPECT_FALSE(faceguard::eval::fit_fusion(labels));
  Lists one_class{{{0.1, true}, {0.2, true}}, {{0.1, true}, {0.3, true}}};
  EXPECT_FALSE(faceguard::eval::fit_fusion(one_class));
  Lists constant{{{0.5, true}, {0.5, false}}, {{0.1, true}, {0.3, false}}};
  EXPECT_FALSE(faceguard::eval::fit_fusion(constant));
  // Pairs with a failed image are left out of the fit, not fatal.
  auto lists = logistic_sample(4.0, -6.0, -2.0, 2000, 3);
  lists[1][5].distance = std::numeric_limits<double>::infinity();
  EXPECT_TRUE(faceguard::eval::fit_fusion(lists));
}

TEST(EvalFusion, KFoldFitsEachFoldWithoutItAndScoresEveryPairOutOfFold) {
  const auto lists = logistic_sample(4.0, -6.0, -2.0, 2000, 5);
  const auto folds = faceguard::eval::stratified_folds(lists[0], 10);
  auto r = faceguard::eval::k_fold_fused(lists, folds, 10);
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r->kfold.folds.size(), 10u);
  ASSERT_EQ(r->fusions.size(), 10u);
  ASSERT_EQ(r->out_of_fold.size(), lists[0].size());
  int total = 0;
  for (const auto& f : r->kfold.folds) total += f.test_pairs;
  EXPECT_EQ(total, 2000);
  // Each pair's out-of-fold score is that of the fusion fitted without its fold.
  for (std::size_t i = 0; i < lists[0].size(); i += 97) {
    const double d[] = {lists[0][i].distance, lists[1][i].distance};
    EXPECT_DOUBLE_EQ(r->out_of_fold[i].distance,
                     faceguard::eval::fused_distance(r->fusions[static_cast<std::size_t>(folds[i])], d));
    EXPECT_EQ(r->out_of_fold[i].same, lists[0][i].same);
  }
  // The fused k-fold accuracy is at least that of the better model alone (up to fold noise).
  auto alone = faceguard::eval::k_fold(lists[0], folds, 10);
  ASSERT_TRUE(alone);
  EXPECT_GE(r->kfold.mean_accuracy, alone->mean_accuracy - 0.01);
  std::vector<int> bad = folds;
  bad[0] = 10;
  EXPECT_FALSE(faceguard::eval::k_fold_fused(lists, bad, 10));
}

}  // namespace
