// Logistic score fusion of several models' distances (eval.hpp, "Score fusion"): fitting by Newton's
// method (iteratively reweighted least squares), applying it, and the k-fold protocol that fits the fusion
// and the threshold on the other folds only.
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "faceguard/eval.hpp"

namespace faceguard::eval {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
// Ridge on the standardised weights: LFW-like data is nearly separable, where plain maximum likelihood
// lets the weights grow without bound; 1e-3 against thousands of pairs leaves the fit otherwise unchanged.
constexpr double kRidge = 1e-3;
constexpr int kMaxIterations = 100;

Status check_lists(std::span<const std::vector<ScoredPair>> per_model) {
  if (per_model.size() < 2) return make_error(ErrorCode::kInvalidArgument, "fusion needs at least two models");
  const auto& first = per_model[0];
  for (std::size_t m = 1; m < per_model.size(); ++m) {
    if (per_model[m].size() != first.size())
      return make_error(ErrorCode::kInvalidArgument, "fusion: the models scored different numbers of pairs");
    for (std::size_t i = 0; i < first.size(); ++i)
      if (per_model[m][i].same != first[i].same)
        return make_error(ErrorCode::kInvalidArgument, "fusion: pair " + std::to_string(i) + " has different labels");
  }
  return ok_status();
}

// Solves A x = b for a small symmetric positive definite A (n <= a few) by Gaussian elimination with
// partial pivoting; false when A is singular.
bool solve(std::vector<std::vector<double>> a, std::vector<double> b, std::vector<double>& x) {
  const std::size_t n = b.size();
  for (std::size_t c = 0; c < n; ++c) {
    std::size_t p = c;
    for (std::size_t r = c + 1; r < n; ++r)
      if (std::abs(a[r][c]) > std::abs(a[p][c])) p = r;
    if (std::abs(a[p][c]) < 1e-300) return false;
    std::swap(a[p], a[c]);
    std::swap(b[p], b[c]);
    for (std::size_t r = c + 1; r < n; ++r) {
      const double f = a[r][c] / a[c][c];
      for (std::size_t k = c; k < n; ++k) a[r][k] -= f * a[c][k];
      b[r] -= f * b[c];
    }
  }
  x.assign(n, 0.0);
  for (std::size_t c = n; c-- > 0;) {
    double s = b[c];
    for (std::size_t k = c + 1; k < n; ++k) s -= a[c][k] * x[k];
    x[c] = s / a[c][c];
  }
  return true;
}

// The fit on the pairs whose `use` flag is set (all when `use` is empty).
Result<Fusion> fit_on(std::span<const std::vector<ScoredPair>> per_model, const std::vector<char>& use) {
  const std::size_t models = per_model.size();
  const std::size_t n_all = per_model[0].size();
  std::vector<std::vector<double>> x;  // standardised features of the usable pairs
  std::vector<double> y;
  for (std::size_t i = 0; i < n_all; ++i) {
    if (!use.empty() && use[i] == 0) continue;
    std::vector<double> row(models);
    bool finite = true;
    for (std::size_t m = 0; m < models; ++m) {
      row[m] = per_model[m][i].distance;
      finite = finite && std::isfinite(row[m]);
    }
    if (!finite) continue;
    x.push_back(std::move(row));
    y.push_back(per_model[0][i].same ? 1.0 : 0.0);
  }
  const std::size_t n = x.size();
  const double positives = std::count(y.begin(), y.end(), 1.0);
  if (positives == 0 || positives == static_cast<double>(n))
    return make_error(ErrorCode::kInvalidArgument, "fusion needs same and different pairs with finite distances");
  std::vector<double> mean(models, 0.0), scale(models, 0.0);
  for (const auto& r : x)
    for (std::size_t m = 0; m < models; ++m) mean[m] += r[m] / static_cast<double>(n);
  for (const auto& r : x)
    for (std::size_t m = 0; m < models; ++m) scale[m] += (r[m] - mean[m]) * (r[m] - mean[m]) / static_cast<double>(n);
  for (std::size_t m = 0; m < models; ++m) {
    scale[m] = std::sqrt(scale[m]);
    if (!(scale[m] > 1e-12)) return make_error(ErrorCode::kInvalidArgument, "fusion: model " + std::to_string(m) + " gives one distance to every pair");
    for (auto& r : x) r[m] = (r[m] - mean[m]) / scale[m];
  }
  // Parameters: beta[0] = bias, beta[1..] = weights, on the standardised features.
  const std::size_t p = models + 1;
  std::vector<double> beta(p, 0.0);
  for (int it = 0; it < kMaxIterations; ++it) {
    std::vector<double> grad(p, 0.0);
    std::vector<std::vector<double>> hess(p, std::vector<double>(p, 0.0));
    for (std::size_t i = 0; i < n; ++i) {
      double z = beta[0];
      for (std::size_t m = 0; m < models; ++m) z += beta[m + 1] * x[i][m];
      const double q = 1.0 / (1.0 + std::exp(-z));
      const double w = q * (1.0 - q);
      for (std::size_t a = 0; a < p; ++a) {
        const double xa = a == 0 ? 1.0 : x[i][a - 1];
        grad[a] += (q - y[i]) * xa;
        for (std::size_t b = 0; b < p; ++b) hess[a][b] += w * xa * (b == 0 ? 1.0 : x[i][b - 1]);
      }
    }
    for (std::size_t a = 1; a < p; ++a) {
      grad[a] += kRidge * static_cast<double>(n) * beta[a];
      hess[a][a] += kRidge * static_cast<double>(n);
    }
    std::vector<double> step;
    if (!solve(hess, grad, step)) return make_error(ErrorCode::kInternal, "fusion: singular Hessian");
    double largest = 0.0;
    for (std::size_t a = 0; a < p; ++a) {
      beta[a] -= step[a];
      largest = std::max(largest, std::abs(step[a]));
    }
    if (largest < 1e-10) break;
  }
  Fusion f;
  f.bias = beta[0];
  f.weights.resize(models);
  for (std::size_t m = 0; m < models; ++m) {
    f.weights[m] = beta[m + 1] / scale[m];
    f.bias -= f.weights[m] * mean[m];
  }
  return f;
}

}  // namespace

Result<Fusion> fit_fusion(std::span<const std::vector<ScoredPair>> per_model) {
  FG_TRY_STATUS(check_lists(per_model));
  return fit_on(per_model, {});
}

double fused_distance(const Fusion& fusion, std::span<const double> distances) {
  double z = fusion.bias;
  for (std::size_t m = 0; m < distances.size() && m < fusion.weights.size(); ++m) {
    if (!std::isfinite(distances[m])) return kInf;
    z += fusion.weights[m] * distances[m];
  }
  return -z;
}

std::vector<ScoredPair> fuse(const Fusion& fusion, std::span<const std::vector<ScoredPair>> per_model) {
  std::vector<ScoredPair> out;
  if (per_model.empty()) return out;
  out.resize(per_model[0].size());
  std::vector<double> d(per_model.size());
  for (std::size_t i = 0; i < out.size(); ++i) {
    for (std::size_t m = 0; m < per_model.size(); ++m) d[m] = per_model[m][i].distance;
    out[i].same = per_model[0][i].same;
    out[i].distance = fused_distance(fusion, d);
  }
  return out;
}

Result<FusedKFold> k_fold_fused(std::span<const std::vector<ScoredPair>> per_model, std::span<const int> fold_of, int k) {
  FG_TRY_STATUS(check_lists(per_model));
  if (k < 2) return make_error(ErrorCode::kInvalidArgument, "k-fold needs k >= 2");
  const std::size_t n = per_model[0].size();
  if (fold_of.size() != n) return make_error(ErrorCode::kInvalidArgument, "fold assignment and pairs differ in size");
  for (std::size_t i = 0; i < n; ++i)
    if (fold_of[i] < 0 || fold_of[i] >= k)
      return make_error(ErrorCode::kInvalidArgument, "fold index out of range at pair " + std::to_string(i));
  FusedKFold out;
  out.out_of_fold.resize(n);
  std::vector<FoldResult> folds;
  std::vector<char> use(n);
  for (int f = 0; f < k; ++f) {
    for (std::size_t i = 0; i < n; ++i) use[i] = fold_of[i] != f ? 1 : 0;
    FG_ASSIGN_OR_RETURN(auto fusion, fit_on(per_model, use));
    const auto fused = fuse(fusion, per_model);
    std::vector<ScoredPair> train, test;
    for (std::size_t i = 0; i < n; ++i) {
      if (use[i] != 0) {
        train.push_back(fused[i]);
      } else {
        test.push_back(fused[i]);
        out.out_of_fold[i] = fused[i];
      }
    }
    if (test.empty()) return make_error(ErrorCode::kInvalidArgument, "fold " + std::to_string(f) + " is empty");
    FG_ASSIGN_OR_RETURN(auto r, evaluate_fold(f, train, test));
    folds.push_back(r);
    out.fusions.push_back(std::move(fusion));
  }
  out.kfold = fold_statistics(std::move(folds));
  return out;
}

}  // namespace faceguard::eval
