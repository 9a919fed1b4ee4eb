// Verification metrics over (distance, same) pairs: accuracy, threshold choice, k-fold protocol, ROC.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "faceguard/eval.hpp"

namespace faceguard::eval {
namespace {

// Sorted distances grouped into runs of equal value: each group knows how many same/different pairs it has.
struct Group {
  double distance = 0.0;
  int same = 0;
  int different = 0;
};

std::vector<Group> groups_of(std::span<const ScoredPair> pairs) {
  std::vector<ScoredPair> s(pairs.begin(), pairs.end());
  std::sort(s.begin(), s.end(), [](const ScoredPair& a, const ScoredPair& b) { return a.distance < b.distance; });
  std::vector<Group> g;
  for (const auto& p : s) {
    if (g.empty() || g.back().distance != p.distance) g.push_back({p.distance, 0, 0});
    (p.same ? g.back().same : g.back().different) += 1;
  }
  return g;
}

// Threshold that accepts groups [0, i) and rejects the rest; i in [0, groups.size()].
double threshold_between(const std::vector<Group>& g, std::size_t i) {
  constexpr double kInf = std::numeric_limits<double>::infinity();
  if (i == 0) return std::nextafter(g.front().distance, -kInf);
  if (i == g.size()) return std::nextafter(g.back().distance, kInf);
  return 0.5 * (g[i - 1].distance + g[i].distance);
}

}  // namespace

double accuracy_at(std::span<const ScoredPair> pairs, double threshold) {
  if (pairs.empty()) return 0.0;
  std::size_t correct = 0;
  for (const auto& p : pairs) correct += ((p.distance < threshold) == p.same) ? 1 : 0;
  return static_cast<double>(correct) / static_cast<double>(pairs.size());
}

Result<ThresholdChoice> best_threshold(std::span<const ScoredPair> pairs) {
  if (pairs.empty()) return make_error(ErrorCode::kInvalidArgument, "no pairs to choose a threshold on");
  const auto g = groups_of(pairs);
  int total_different = 0;
  for (const auto& x : g) total_different += x.different;
  // correct[i] for the candidate accepting groups [0,i): same accepted + different rejected.
  std::vector<int> correct(g.size() + 1);
  int same_acc = 0;
  int diff_acc = 0;
  correct[0] = total_different;
  for (std::size_t i = 0; i < g.size(); ++i) {
    same_acc += g[i].same;
    diff_acc += g[i].different;
    correct[i + 1] = same_acc + (total_different - diff_acc);
  }
  const int best = *std::max_element(correct.begin(), correct.end());
  std::size_t run_start = 0;
  while (correct[run_start] != best) ++run_start;
  std::size_t run_end = run_start;
  while (run_end + 1 < correct.size() && correct[run_end + 1] == best) ++run_end;
  const std::size_t pick = run_start + (run_end - run_start) / 2;
  ThresholdChoice out;
  out.threshold = threshold_between(g, pick);
  // Recomputed from the pairs so that the figure is exact even at infinite distances.
  out.accuracy = accuracy_at(pairs, out.threshold);
  return out;
}

std::vector<int> stratified_folds(std::span<const ScoredPair> pairs, int k) {
  std::vector<int> out(pairs.size(), 0);
  if (k < 1) return out;
  std::size_t n[2] = {0, 0};
  for (const auto& p : pairs) ++n[p.same ? 1 : 0];
  std::size_t j[2] = {0, 0};
  for (std::size_t i = 0; i < pairs.size(); ++i) {
    const int c = pairs[i].same ? 1 : 0;
    out[i] = static_cast<int>(j[c] * static_cast<std::size_t>(k) / n[c]);
    ++j[c];
  }
  return out;
}

Result<KFoldResult> k_fold(std::span<const ScoredPair> pairs, std::span<const int> fold_of, int k) {
  if (k < 2) return make_error(ErrorCode::kInvalidArgument, "k-fold needs k >= 2");
  if (fold_of.size() != pairs.size()) {
    return make_error(ErrorCode::kInvalidArgument, "fold assignment and pairs differ in size");
  }
  KFoldResult out;
  std::vector<ScoredPair> train;
  std::vector<ScoredPair> test;
  for (int f = 0; f < k; ++f) {
    train.clear();
    test.clear();
    for (std::size_t i = 0; i < pairs.size(); ++i) {
      if (fold_of[i] < 0 || fold_of[i] >= k) {
        return make_error(ErrorCode::kInvalidArgument, "fold index out of range at pair " + std::to_string(i));
      }
      (fold_of[i] == f ? test : train).push_back(pairs[i]);
    }
    if (test.empty() || train.empty()) {
      return make_error(ErrorCode::kInvalidArgument, "fold " + std::to_string(f) + " or its complement is empty");
    }
    FG_ASSIGN_OR_RETURN(auto r, evaluate_fold(f, train, test));
    out.folds.push_back(r);
  }
  return fold_statistics(std::move(out.folds));
}

Result<FoldResult> evaluate_fold(int fold, std::span<const ScoredPair> train, std::span<const ScoredPair> test) {
  FG_ASSIGN_OR_RETURN(auto choice, best_threshold(train));
  FoldResult r;
  r.fold = fold;
  r.threshold = choice.threshold;
  r.train_accuracy = choice.accuracy;
  r.test_accuracy = accuracy_at(test, choice.threshold);
  r.test_pairs = static_cast<int>(test.size());
  return r;
}

KFoldResult fold_statistics(std::vector<FoldResult> folds) {
  KFoldResult out;
  out.folds = std::move(folds);
  const int k = static_cast<int>(out.folds.size());
  if (k == 0) return out;
  double sum = 0.0;
  for (const auto& r : out.folds) sum += r.test_accuracy;
  out.mean_accuracy = sum / k;
  double ss = 0.0;
  for (const auto& r : out.folds) ss += (r.test_accuracy - out.mean_accuracy) * (r.test_accuracy - out.mean_accuracy);
  out.std_accuracy = k > 1 ? std::sqrt(ss / (k - 1)) : 0.0;
  out.standard_error = out.std_accuracy / std::sqrt(static_cast<double>(k));
  return out;
}

Result<Roc> roc(std::span<const ScoredPair> pairs) {
  const auto g = groups_of(pairs);
  Roc out;
  for (const auto& x : g) {
    out.positives += x.same;
    out.negatives += x.different;
  }
  if (out.positives == 0 || out.negatives == 0) {
    return make_error(ErrorCode::kInvalidArgument, "ROC needs both same and different pairs");
  }
  const double np = out.positives;
  const double nn = out.negatives;
  out.points.push_back({threshold_between(g, 0), 0.0, 0.0});
  int tp = 0;
  int fp = 0;
  for (std::size_t i = 0; i < g.size(); ++i) {
    tp += g[i].same;
    fp += g[i].different;
    out.points.push_back({threshold_between(g, i + 1), fp / nn, tp / np});
  }
  for (std::size_t i = 1; i < out.points.size(); ++i) {
    const auto& a = out.points[i - 1];
    const auto& b = out.points[i];
    out.auc += (b.far - a.far) * 0.5 * (a.tar + b.tar);
  }
  // FAR rises and FNR = 1 - TAR falls along the curve: find where FAR - FNR changes sign.
  for (std::size_t i = 1; i < out.points.size(); ++i) {
    const auto& a = out.points[i - 1];
    const auto& b = out.points[i];
    const double ga = a.far - (1.0 - a.tar);
    const double gb = b.far - (1.0 - b.tar);
    if (gb >= 0.0) {
      const double t = gb == ga ? 1.0 : -ga / (gb - ga);
      out.eer = a.far + t * (b.far - a.far);
      out.eer_threshold = std::isfinite(a.threshold) && std::isfinite(b.threshold)
                              ? a.threshold + t * (b.threshold - a.threshold)
                              : b.threshold;
      break;
    }
  }
  return out;
}

TarAtFar tar_at_far(const Roc& roc, double far_target) {
  TarAtFar out;
  out.far_target = far_target;
  out.resolvable = roc.negatives > 0 && far_target * roc.negatives >= 1.0;
  bool found = false;
  for (const auto& p : roc.points) {
    if (p.far > far_target) break;  // FAR never falls along the curve
    if (!found || p.tar > out.tar) {
      out.tar = p.tar;
      out.far = p.far;
      out.threshold = p.threshold;
      found = true;
    }
  }
  return out;
}

}  // namespace faceguard::eval
