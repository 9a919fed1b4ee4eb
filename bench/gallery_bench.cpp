// gallery_bench: search latency (p50/p99) and recall@10 against exact search at 10k..1M templates, FAISS's own
// flat index in the same run, cold open time and memory of a real gallery file, store enrolment throughput, and
// (with --deepface) identification accuracy on real photos.
//
//   gallery_bench --sizes 10000,100000,1000000 --hnsw-max 100000 --open 1000000   # synthetic
//   gallery_bench --sizes 1000000 --hnsw-m 16 --hnsw-efc 40 --ivf-max 0        # HNSW at 1M, smaller graph
//   gallery_bench --deepface ../shared/data/faces-small/deepface --sizes ''  # real photos (needs models)
//
// Synthetic galleries are shaped like real templates, not uniform noise: every identity has a centre
// c = normalise(a*m + b*R*u) around one common direction m (real embeddings live in a cone: impostor cosines are
// far from 0), u with a decaying per-axis spread (a low intrinsic dimension) turned by a random rotation R, and
// each template is normalise(c + sigma*w). a, sigma and the decay are options; the run prints the genuine and
// impostor cosine distributions it produced so they can be compared with real ones (LFW View 1 via
// `faceguard gallery calibrate`). Output: one JSON object per line on stdout (and a readable table on stderr).
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <numeric>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <faiss/IndexFlat.h>
#include <faiss/IndexIVFFlat.h>
#include <omp.h>
#include <nlohmann/json.hpp>

#include "faceguard/gallery.hpp"
#include "faceguard/image.hpp"
#include "faceguard/pipeline.hpp"
#include "gallery/index.hpp"
#include "gallery/ivf.hpp"
#include "gallery/scan8.hpp"

namespace fs = std::filesystem;
using namespace faceguard;
using Clock = std::chrono::steady_clock;

namespace {

struct Args {
  std::vector<std::size_t> sizes{10'000, 100'000, 1'000'000};
  int per_identity = 5;
  int queries = 400;
  int batch = 16;
  int threads = 2;
  // Defaults fitted to the dlib templates of faces-small/deepface (`--deepface` prints them): genuine cosine
  // 0.969 +- 0.011, impostor cosine 0.837 +- 0.035. a = sqrt(0.837); sigma then gives genuine ~0.97.
  double common = 0.915;     // a: weight of the common direction (impostor cosine ~ a^2)
  double sigma = 0.18;       // template spread around the identity centre
  double decay = 0.025;      // per-axis spread of identity directions: exp(-decay * i)
  std::size_t hnsw_max = 1'000'000;
  std::size_t gallery_flat_max = 1'000'000;  // the gallery's own kFlat search up to this size
  std::vector<int> ef{64, 128, 256};
  int hnsw_m = 32;
  int hnsw_efc = 80;
  std::size_t ivf_max = 1'000'000;
  std::vector<double> nprobe_scale{0.5, 0.75, 1.0, 1.5};  // kIvf sweep: multiples of the default nprobe
  std::size_t faiss_ivf_max = 100'000;                    // FAISS IndexIVFFlat (its own API) up to this size
  // kIvf design sweep (--ivf-head 32,64 --ivf-rescore 1024,2048): IvfLists built with each number of head
  // components and searched with each first-pass depth (rows re-scored, shared by the threads) at each nprobe,
  // re-ranked exactly as TemplateIndex does.
  std::vector<int> ivf_heads;
  std::vector<int> ivf_rescore{1024, 2048, 4096};
  std::size_t open_size = 0;
  std::vector<IndexKind> open_kinds{IndexKind::kAuto};  // --open-index auto,ivf: open the 1M file with each
  std::string deepface;
  std::string calibration;
  std::string workdir = "/tmp";
  unsigned seed = 42;
};

double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

double rss_mb() {
  std::ifstream f("/proc/self/statm");
  long pages = 0, rss = 0;
  f >> pages >> rss;
  return static_cast<double>(rss) * static_cast<double>(sysconf(_SC_PAGESIZE)) / (1 << 20);
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const auto i = static_cast<std::size_t>(std::min<double>(v.size() - 1, std::floor(p * (v.size() - 1) + 0.5)));
  return v[i];
}

void normalise(float* v, int d) {
  double s = 0;
  for (int i = 0; i < d; ++i) s += static_cast<double>(v[i]) * v[i];
  const float inv = static_cast<float>(1.0 / std::sqrt(s));
  for (int i = 0; i < d; ++i) v[i] *= inv;
}

float dotf(const float* a, const float* b, int d) {
  float s = 0;
  for (int i = 0; i < d; ++i) s += a[i] * b[i];
  return s;
}

class Generator {
 public:
  Generator(const Args& a, int dim) : a_(a), d_(dim), rng_(a.seed), rot_(static_cast<std::size_t>(dim * dim)), m_(dim) {
    // A random rotation (Gram-Schmidt on Gaussian rows) so the decaying spectrum is not axis-aligned.
    for (auto& x : rot_) x = n_(rng_);
    for (int i = 0; i < d_; ++i) {
      float* r = &rot_[static_cast<std::size_t>(i * d_)];
      for (int j = 0; j < i; ++j) {
        const float* q = &rot_[static_cast<std::size_t>(j * d_)];
        const float p = dotf(r, q, d_);
        for (int k = 0; k < d_; ++k) r[k] -= p * q[k];
      }
      normalise(r, d_);
    }
    for (auto& x : m_) x = n_(rng_);
    normalise(m_.data(), d_);
    b_ = std::sqrt(std::max(0.0, 1.0 - a.common * a.common));
  }
  std::vector<float> centre() {
    std::vector<float> u(static_cast<std::size_t>(d_)), c(static_cast<std::size_t>(d_));
    for (int i = 0; i < d_; ++i) u[i] = n_(rng_) * static_cast<float>(std::exp(-a_.decay * i));
    normalise(u.data(), d_);
    for (int k = 0; k < d_; ++k) c[k] = static_cast<float>(a_.common) * m_[k];
    for (int i = 0; i < d_; ++i)
      for (int k = 0; k < d_; ++k) c[k] += static_cast<float>(b_) * u[i] * rot_[static_cast<std::size_t>(i * d_ + k)];
    normalise(c.data(), d_);
    return c;
  }
  void sample(const std::vector<float>& c, float* out) {
    const float s = static_cast<float>(a_.sigma / std::sqrt(static_cast<double>(d_)));
    for (int k = 0; k < d_; ++k) out[k] = c[k] + s * n_(rng_);
    normalise(out, d_);
  }

 private:
  const Args& a_;
  int d_;
  std::mt19937 rng_;
  std::normal_distribution<float> n_{0.f, 1.f};
  std::vector<float> rot_;
  std::vector<float> m_;
  double b_ = 0;
};

struct Dataset {
  std::size_t n = 0;
  std::vector<float> rows;       // n x d, unit
  std::vector<float> queries;    // q x d, unit
  std::vector<int> query_known;  // 1: another template of an enrolled identity
  double genuine_mean = 0, genuine_sd = 0, impostor_mean = 0, impostor_sd = 0;
};

Dataset make_dataset(const Args& a, std::size_t n, int d) {
  Generator g(a, d);
  Dataset ds;
  ds.n = n;
  ds.rows.resize(n * d);
  const std::size_t ids = (n + a.per_identity - 1) / a.per_identity;
  std::vector<std::vector<float>> centres;
  centres.reserve(std::min<std::size_t>(ids, 4000));
  std::mt19937 pick(a.seed + 1);
  // Queries of enrolled identities need their centres: keep a sample of them.
  std::vector<std::vector<float>> kept;
  std::vector<double> gen, imp;
  std::size_t row = 0;
  for (std::size_t i = 0; i < ids && row < n; ++i) {
    auto c = g.centre();
    for (int t = 0; t < a.per_identity && row < n; ++t, ++row) g.sample(c, &ds.rows[row * d]);
    if (row >= 2 && i < 2000 && a.per_identity >= 2)
      gen.push_back(dotf(&ds.rows[(row - 1) * d], &ds.rows[(row - 2) * d], d));
    if (kept.size() < 2000) kept.push_back(std::move(c));
    else if (std::uniform_int_distribution<std::size_t>(0, i)(pick) < kept.size()) kept[pick() % kept.size()] = std::move(c);
  }
  for (int i = 0; i < 4000; ++i) {
    const auto x = pick() % n, y = pick() % n;
    if (x / a.per_identity != y / a.per_identity) imp.push_back(dotf(&ds.rows[x * d], &ds.rows[y * d], d));
  }
  auto stats = [](const std::vector<double>& v, double& mean, double& sd) {
    mean = 0;
    for (double x : v) mean += x;
    mean /= std::max<std::size_t>(1, v.size());
    sd = 0;
    for (double x : v) sd += (x - mean) * (x - mean);
    sd = std::sqrt(sd / std::max<std::size_t>(1, v.size() - 1));
  };
  stats(gen, ds.genuine_mean, ds.genuine_sd);
  stats(imp, ds.impostor_mean, ds.impostor_sd);
  ds.queries.resize(static_cast<std::size_t>(a.queries) * d);
  for (int q = 0; q < a.queries; ++q) {
    const bool known = q % 2 == 0;
    ds.query_known.push_back(known ? 1 : 0);
    if (known) g.sample(kept[pick() % kept.size()], &ds.queries[static_cast<std::size_t>(q) * d]);
    else g.sample(g.centre(), &ds.queries[static_cast<std::size_t>(q) * d]);
  }
  return ds;
}

double recall_at(const std::vector<std::vector<std::int64_t>>& truth, const std::vector<std::vector<std::int64_t>>& got) {
  std::size_t hit = 0, all = 0;
  for (std::size_t i = 0; i < truth.size(); ++i) {
    for (auto id : truth[i]) hit += std::count(got[i].begin(), got[i].end(), id);
    all += truth[i].size();
  }
  return all ? static_cast<double>(hit) / static_cast<double>(all) : 0;
}

// Recall@10 split by query kind, and how often the exact top-1 of a query of an enrolled identity (its genuine
// mate) is the approximate top-1.
nlohmann::json recall_detail(const std::vector<std::vector<std::int64_t>>& truth,
                             const std::vector<std::vector<std::int64_t>>& got, const std::vector<int>& known) {
  std::size_t hk = 0, ak = 0, hu = 0, au = 0, top1 = 0, nk = 0;
  for (std::size_t i = 0; i < truth.size(); ++i) {
    std::size_t h = 0;
    for (auto id : truth[i]) h += std::count(got[i].begin(), got[i].end(), id);
    if (known[i]) {
      hk += h, ak += truth[i].size(), ++nk;
      top1 += !got[i].empty() && !truth[i].empty() && got[i][0] == truth[i][0];
    } else {
      hu += h, au += truth[i].size();
    }
  }
  auto r = [](std::size_t a, std::size_t b) { return b ? static_cast<double>(a) / static_cast<double>(b) : 0.0; };
  return {{"recall_at_10_enrolled", r(hk, ak)}, {"recall_at_10_strangers", r(hu, au)}, {"top1_enrolled", r(top1, nk)}};
}

void emit(const nlohmann::json& j) { std::cout << j.dump() << std::endl; }

void append_ids(std::vector<std::int64_t>& out, const std::vector<gallery::Hit>& hits) {
  for (const auto& x : hits) out.push_back(x.id);
}
void append_ids(std::vector<std::int64_t>& out, const std::vector<faiss::Index::idx_t>& labels) {
  for (auto x : labels)
    if (x >= 0) out.push_back(x);  // FAISS pads missing results with -1
}

// Queries one at a time: each one's latency and the ids it returned (collected outside the timing).
// search(query) returns gallery hits or FAISS labels, best first.
struct TimedQueries {
  std::vector<std::vector<std::int64_t>> ids;
  std::vector<double> ms;
};
template <class Search>
TimedQueries time_each(const std::vector<float>& queries, std::size_t nq, std::size_t d, Search&& search) {
  TimedQueries t{std::vector<std::vector<std::int64_t>>(nq), {}};
  t.ms.reserve(nq);
  for (std::size_t q = 0; q < nq; ++q) {
    const auto start = Clock::now();
    decltype(auto) r = search(queries.data() + q * d);
    t.ms.push_back(ms_since(start));
    append_ids(t.ids[q], r);
  }
  return t;
}

// Queries in batches of `batch`: the per-query cost and the ids. search(first, m) returns m hit lists.
struct TimedBatches {
  std::vector<std::vector<std::int64_t>> ids;
  double per_query_ms = 0;
};
template <class SearchBatch>
TimedBatches time_batches(const std::vector<float>& queries, std::size_t nq, std::size_t d, std::size_t batch,
                          SearchBatch&& search) {
  TimedBatches t{std::vector<std::vector<std::int64_t>>(nq), 0};
  double total = 0;
  for (std::size_t q = 0; q < nq; q += batch) {
    const std::size_t m = std::min(batch, nq - q);
    const auto start = Clock::now();
    auto hs = search(queries.data() + q * d, m);
    total += ms_since(start);
    for (std::size_t i = 0; i < m; ++i) append_ids(t.ids[q + i], hs[i]);
  }
  t.per_query_ms = nq ? total / static_cast<double>(nq) : 0;
  return t;
}

void bench_size(const Args& a, std::size_t n) {
  constexpr int d = 128;
  constexpr std::size_t k = 10;
  auto t0 = Clock::now();
  Dataset ds = make_dataset(a, n, d);
  const double gen_ms = ms_since(t0);
  emit({{"bench", "dataset"}, {"templates", n}, {"per_identity", a.per_identity}, {"queries", a.queries},
        {"common", a.common}, {"sigma", a.sigma}, {"decay", a.decay}, {"genuine_cos_mean", ds.genuine_mean},
        {"genuine_cos_sd", ds.genuine_sd}, {"impostor_cos_mean", ds.impostor_mean}, {"impostor_cos_sd", ds.impostor_sd},
        {"generate_ms", gen_ms}});
  const std::size_t nq = static_cast<std::size_t>(a.queries);

  // FAISS's own flat index: ground truth and its latency (one query at a time, as identify() runs).
  const double rss0 = rss_mb();
  faiss::IndexFlatIP flat(d);
  t0 = Clock::now();
  flat.add(static_cast<faiss::Index::idx_t>(n), ds.rows.data());
  const double flat_add_ms = ms_since(t0);
  std::vector<std::vector<std::int64_t>> truth(nq);
  std::vector<double> lat;
  std::vector<float> D(k);
  std::vector<faiss::Index::idx_t> L(k);
  for (std::size_t q = 0; q < nq; ++q) {
    t0 = Clock::now();
    flat.search(1, ds.queries.data() + q * d, k, D.data(), L.data());
    lat.push_back(ms_since(t0));
    truth[q].assign(L.begin(), L.end());
  }
  // Batched FAISS flat (BLAS path above 20 queries).
  std::vector<float> DB(nq * k);
  std::vector<faiss::Index::idx_t> LB(nq * k);
  t0 = Clock::now();
  flat.search(static_cast<faiss::Index::idx_t>(nq), ds.queries.data(), k, DB.data(), LB.data());
  const double flat_batch_ms = ms_since(t0) / static_cast<double>(nq);
  emit({{"bench", "faiss_flat_ip"}, {"templates", n}, {"p50_ms", percentile(lat, 0.5)}, {"p99_ms", percentile(lat, 0.99)},
        {"batch_all_per_query_ms", flat_batch_ms}, {"recall_at_10", 1.0}, {"add_ms", flat_add_ms},
        {"memory_mb", rss_mb() - rss0}});
  flat.reset();

  // The gallery's index (normalised rows + int8 codes).
  gallery::IndexConfig cfg;
  cfg.kind = IndexKind::kScan8;
  cfg.threads = a.threads;
  const double rss1 = rss_mb();
  gallery::TemplateIndex index(d, cfg);
  t0 = Clock::now();
  for (std::size_t i = 0; i < n; ++i) index.add(static_cast<std::int64_t>(i), std::span<const float>(&ds.rows[i * d], d));
  index.prepare();
  const double build_ms = ms_since(t0);
  const double index_mb = rss_mb() - rss1;
  std::vector<float>().swap(ds.rows);

  auto run = [&](IndexKind kind, const char* name, nlohmann::json extra) {
    const auto one = time_each(ds.queries, nq, d, [&](const float* q) { return index.search_with(kind, q, 1, k).front(); });
    // Batches of a.batch queries: per-query cost when queries are batched (codes read once per batch).
    const auto batched = time_batches(ds.queries, nq, d, static_cast<std::size_t>(a.batch),
                                      [&](const float* q, std::size_t m) { return index.search_with(kind, q, m, k); });
    nlohmann::json j{{"bench", name},
                     {"templates", n},
                     {"threads", a.threads},
                     {"p50_ms", percentile(one.ms, 0.5)},
                     {"p99_ms", percentile(one.ms, 0.99)},
                     {"batch", a.batch},
                     {"batch_per_query_ms", batched.per_query_ms},
                     {"recall_at_10", recall_at(truth, one.ids)},
                     {"recall_at_10_batched", recall_at(truth, batched.ids)}};
    if (extra.is_object()) j.update(extra);
    emit(j);
  };
  if (n <= a.gallery_flat_max) run(IndexKind::kFlat, "gallery_flat (faiss::knn_inner_product)", nlohmann::json::object());
  run(IndexKind::kScan8, "gallery_scan8", {{"kernel", std::string(gallery::scan8_kernel())}, {"build_ms", build_ms},
                                            {"index_memory_mb", index_mb}, {"rerank", std::max<std::size_t>(8 * k, 128)}});
  if (n <= a.ivf_max) {
    gallery::IndexConfig ic;
    ic.kind = IndexKind::kIvf;
    ic.threads = a.threads;
    const double rss2 = rss_mb();
    gallery::TemplateIndex h(d, ic);
    for (std::size_t i = 0; i < n; ++i) h.add(static_cast<std::int64_t>(i), std::span<const float>(index.row(static_cast<std::int64_t>(i)), d));
    const double rows_mb = static_cast<double>(h.memory_bytes()) / 1048576.0;
    t0 = Clock::now();
    h.prepare();  // k-means on a subsample + every row into its list
    const double build = ms_since(t0);
    const double lists_mb = static_cast<double>(h.memory_bytes()) / 1048576.0 - rows_mb;
    const std::size_t def = h.ivf_nprobe();
    std::vector<std::size_t> probes;
    for (double f : a.nprobe_scale) probes.push_back(std::clamp<std::size_t>(static_cast<std::size_t>(std::lround(f * def)), 1, h.ivf_nlist()));
    std::sort(probes.begin(), probes.end());
    probes.erase(std::unique(probes.begin(), probes.end()), probes.end());
    for (std::size_t np : probes) {
      const auto [got, l] = time_each(ds.queries, nq, d, [&](const float* q) { return h.search_ivf_nprobe(q, k, np); });
      nlohmann::json j{{"bench", "gallery_ivf"}, {"templates", n}, {"threads", a.threads}, {"nlist", h.ivf_nlist()},
                       {"nprobe", np}, {"default_nprobe", np == def}, {"probed_fraction", static_cast<double>(np) / h.ivf_nlist()},
                       {"p50_ms", percentile(l, 0.5)}, {"p99_ms", percentile(l, 0.99)},
                       {"recall_at_10", recall_at(truth, got)}, {"build_ms", build},
                       {"train_rows", std::min(n, gallery::IvfLists::kMaxTrainRows)},
                       {"lists_memory_mb", lists_mb}, {"rss_delta_mb", rss_mb() - rss2}};
      j.update(recall_detail(truth, got, ds.query_known));
      emit(j);
    }
    // Batched (the default nprobe): queries split over the threads.
    const auto batched = time_batches(ds.queries, nq, d, static_cast<std::size_t>(a.batch),
                                      [&](const float* q, std::size_t m) { return h.search(q, m, k); });
    emit({{"bench", "gallery_ivf_batched"}, {"templates", n}, {"nprobe", def}, {"batch", a.batch},
          {"batch_per_query_ms", batched.per_query_ms}, {"recall_at_10", recall_at(truth, batched.ids)}});
  }
  if (n <= a.ivf_max && !a.ivf_heads.empty()) {
    // The rows are contiguous in `index` (ids 0..n-1 added in order, none removed).
    const float* rows = index.row(0);
    std::vector<std::int64_t> ids(n);
    std::iota(ids.begin(), ids.end(), std::int64_t{0});
    gallery::IndexConfig defaults;
    for (int hd : a.ivf_heads) {
      t0 = Clock::now();
      gallery::IvfLists lists(d, rows, ids.data(), n, 0, defaults.ivf_seed, a.threads, hd);
      const double build = ms_since(t0);
      const std::size_t def = gallery::default_ivf_nprobe(lists.nlist());
      const std::size_t keep = std::max<std::size_t>(8 * k, 128);
      auto sq = std::make_unique<gallery::Scan8Query>();
      for (int rs : a.ivf_rescore)
        for (double f : a.nprobe_scale) {
          const std::size_t np = std::clamp<std::size_t>(static_cast<std::size_t>(std::lround(f * def)), 1, lists.nlist());
          const auto [got, l] = time_each(ds.queries, nq, d, [&](const float* q) {
            gallery::scan8_prepare_query(q, d, gallery::scan8_stride(d), sq.get());
            const auto cand = lists.search(q, *sq, np, keep, k, a.threads, static_cast<std::size_t>(rs));
            std::vector<gallery::Hit> hits;
            for (const auto& c : cand) hits.push_back(gallery::Hit{c.id, dotf(q, rows + c.id * d, d)});
            const std::size_t m = std::min(k, hits.size());
            std::partial_sort(hits.begin(), hits.begin() + static_cast<std::ptrdiff_t>(m), hits.end(),
                              [](const gallery::Hit& x, const gallery::Hit& y) { return x.score > y.score; });
            hits.resize(m);
            return hits;
          });
          nlohmann::json j{{"bench", "ivf_design"}, {"templates", n}, {"threads", a.threads}, {"head_dims", hd},
                           {"rescore", rs}, {"nlist", lists.nlist()}, {"nprobe", np},
                           {"p50_ms", percentile(l, 0.5)}, {"p99_ms", percentile(l, 0.99)},
                           {"recall_at_10", recall_at(truth, got)}, {"build_ms", build},
                           {"lists_memory_mb", static_cast<double>(lists.memory_bytes()) / 1048576.0}};
          j.update(recall_detail(truth, got, ds.query_known));
          emit(j);
        }
    }
  }
  if (n <= a.faiss_ivf_max) {
    // FAISS's own IndexIVFFlat for comparison: same list count, k-means iterations and training subsample size,
    // searched one query at a time on one thread (as identify() runs), at the same nprobe values.
    const std::size_t nlist = gallery::IvfLists::nlist_for(n);
    const std::size_t nt = std::min(n, gallery::IvfLists::kMaxTrainRows);
    std::vector<float> train(nt * d);
    std::mt19937 pick(a.seed + 7);
    for (std::size_t i = 0; i < nt; ++i) {
      const auto r = nt == n ? i : pick() % n;
      std::memcpy(&train[i * d], index.row(static_cast<std::int64_t>(r)), sizeof(float) * d);
    }
    const double rss2 = rss_mb();
    faiss::IndexFlatIP quantizer(d);
    faiss::IndexIVFFlat ivf(&quantizer, d, nlist, faiss::METRIC_INNER_PRODUCT);
    ivf.cp.niter = gallery::IvfLists::kKmeansIterations;
    ivf.cp.spherical = true;
    ivf.cp.min_points_per_centroid = 1;
    t0 = Clock::now();
    ivf.train(static_cast<faiss::Index::idx_t>(nt), train.data());
    const double train_ms = ms_since(t0);
    t0 = Clock::now();
    for (std::size_t b = 0; b < n; b += 65536) {
      const std::size_t m = std::min<std::size_t>(65536, n - b);
      std::vector<float> chunk(m * d);
      for (std::size_t i = 0; i < m; ++i) std::memcpy(&chunk[i * d], index.row(static_cast<std::int64_t>(b + i)), sizeof(float) * d);
      ivf.add(static_cast<faiss::Index::idx_t>(m), chunk.data());
    }
    const double add_ms = ms_since(t0);
    const double mem = rss_mb() - rss2;
    const std::size_t def = gallery::default_ivf_nprobe(nlist);
    const int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    for (double f : a.nprobe_scale) {
      ivf.nprobe = std::clamp<std::size_t>(static_cast<std::size_t>(std::lround(f * def)), 1, nlist);
      const auto [got, l] = time_each(ds.queries, nq, d, [&](const float* q) -> const std::vector<faiss::Index::idx_t>& {
        ivf.search(1, q, k, D.data(), L.data());
        return L;
      });
      emit({{"bench", "faiss_ivf_flat"}, {"templates", n}, {"nlist", nlist}, {"nprobe", ivf.nprobe},
            {"p50_ms", percentile(l, 0.5)}, {"p99_ms", percentile(l, 0.99)}, {"recall_at_10", recall_at(truth, got)},
            {"train_ms", train_ms}, {"add_ms", add_ms}, {"memory_mb", mem}});
    }
    omp_set_num_threads(saved);
  }
  if (n <= a.hnsw_max) {
    gallery::IndexConfig hc;
    hc.kind = IndexKind::kHnsw;
    hc.hnsw_m = a.hnsw_m;
    hc.hnsw_ef_construction = a.hnsw_efc;
    const double rss2 = rss_mb();
    gallery::TemplateIndex h(d, hc);
    // The normalised rows are in `index`; HNSW is built from its own copy.
    for (std::size_t i = 0; i < n; ++i) h.add(static_cast<std::int64_t>(i), std::span<const float>(index.row(static_cast<std::int64_t>(i)), d));
    t0 = Clock::now();
    h.prepare();
    const double hb = ms_since(t0);
    for (int ef : a.ef) {
      // efSearch is a search-time parameter: one graph, searched at each ef.
      const auto [got, l] = time_each(ds.queries, nq, d, [&](const float* q) { return h.search_hnsw_ef(q, k, ef); });
      nlohmann::json j{{"bench", "faiss_hnsw"}, {"templates", n}, {"M", hc.hnsw_m}, {"ef_construction", hc.hnsw_ef_construction},
                       {"ef_search", ef}, {"p50_ms", percentile(l, 0.5)}, {"p99_ms", percentile(l, 0.99)},
                       {"recall_at_10", recall_at(truth, got)}, {"build_ms", hb}, {"memory_mb", rss_mb() - rss2}};
      j.update(recall_detail(truth, got, ds.query_known));
      emit(j);
    }
  }
}

// A real gallery file of n templates: enrolment throughput into the store, cold open time and memory.
void bench_open(const Args& a, std::size_t n) {
  constexpr int d = 128;
  const fs::path dir = fs::path(a.workdir) / ("fg-gallery-bench-" + std::to_string(getpid()));
  fs::create_directories(dir);
  const fs::path path = dir / "bench.fgdb";
  const SecretKey key = generate_secret_key();
  Generator g(a, d);
  {
    GalleryOptions o;
    o.master_key = key;
    o.create = true;
    o.model_id = "dlib-resnet29@face-api-1.7.15";
    o.dim = d;
    auto gal = Gallery::open(path, o);
    if (!gal) {
      std::cerr << gal.error().message << "\n";
      return;
    }
    const std::size_t ids = n / a.per_identity;
    auto t0 = Clock::now();
    std::vector<Gallery::Enrolment> batch;
    double single_ms = 0;
    int singles = 0;
    for (std::size_t i = 0; i < ids; ++i) {
      auto c = g.centre();
      Gallery::Enrolment e{{"s" + std::to_string(i), "Subject " + std::to_string(i), "{}"}, {}};
      for (int t = 0; t < a.per_identity; ++t) {
        std::vector<float> v(d);
        g.sample(c, v.data());
        e.templates.push_back(TemplateInput{Embedding{o.model_id, std::move(v)}, "", std::nullopt, ""});
      }
      if (i < 200) {  // the first subjects one transaction each (the default enrol path)
        auto ts = Clock::now();
        auto r = (*gal)->enroll(e.subject, e.templates);
        single_ms += ms_since(ts);
        ++singles;
        if (!r) { std::cerr << r.error().message << "\n"; return; }
        continue;
      }
      batch.push_back(std::move(e));
      if (batch.size() == 2000 || i + 1 == ids) {
        auto r = (*gal)->enroll_batch(batch);
        if (!r) { std::cerr << r.error().message << "\n"; return; }
        batch.clear();
      }
    }
    const double total_ms = ms_since(t0);
    emit({{"bench", "store_enrol"}, {"templates", ids * a.per_identity}, {"subjects", ids},
          {"one_txn_per_subject_ms", single_ms / singles},
          {"one_txn_per_subject_templates_per_s", 1000.0 * singles * a.per_identity / single_ms},
          {"bulk_templates_per_s", 1000.0 * static_cast<double>(ids * a.per_identity) / total_ms},
          {"total_s", total_ms / 1000}});
  }
  for (IndexKind kind : a.open_kinds) {
    const double rss0 = rss_mb();
    GalleryOptions o;
    o.master_key = key;
    o.read_only = true;
    o.index = kind;
    auto t0 = Clock::now();
    auto gal = Gallery::open(path, o);
    const double open_ms = ms_since(t0);
    if (!gal) { std::cerr << gal.error().message << "\n"; return; }
    auto st = (*gal)->stats();
    std::vector<double> lat;
    std::vector<float> q(d);
    for (int i = 0; i < 100; ++i) {
      g.sample(g.centre(), q.data());
      auto t = Clock::now();
      auto r = (*gal)->identify(Embedding{"dlib-resnet29@face-api-1.7.15", q}, {.top_k = 5});
      lat.push_back(ms_since(t));
      if (!r) { std::cerr << r.error().message << "\n"; return; }
    }
    emit({{"bench", "gallery_open"}, {"templates", st->templates}, {"subjects", st->subjects},
          {"index", std::string(to_string(st->index))}, {"open_ms", open_ms}, {"index_bytes_mb", st->index_bytes / 1048576.0}, {"rss_delta_mb", rss_mb() - rss0},
          {"file_mb", st->file_bytes / 1048576.0}, {"key_store_mb", st->key_store_bytes / 1048576.0},
          {"identify_p50_ms", percentile(lat, 0.5)}, {"identify_p99_ms", percentile(lat, 0.99)}});
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
}

// Identification on real photos: enrol the first two photos of each identity with >= 4, identify the rest;
// identities with fewer photos are never enrolled and serve as impostors (open-set).
int bench_deepface(const Args& a) {
  const fs::path root = a.deepface;
  std::ifstream groups(root / "identity_groups_derived.txt");
  if (!groups) { std::cerr << "no identity_groups_derived.txt in " << root << "\n"; return 1; }
  fs::path images;
  for (const auto& e : fs::recursive_directory_iterator(root))
    if (e.path().filename() == "img1.jpg") images = e.path().parent_path();
  std::map<std::string, std::vector<std::string>> ids;
  for (std::string line; std::getline(groups, line);) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream ls(line);
    std::string id, f;
    ls >> id;
    while (ls >> f) ids[id].push_back(f);
  }
  auto pack = ModelPack::open(default_model_dir());
  if (!pack) { std::cerr << pack.error().message << "\n"; return 1; }
  auto pipe = Pipeline::create(*pack, {});
  if (!pipe) { std::cerr << pipe.error().message << "\n"; return 1; }
  const fs::path dir = fs::path(a.workdir) / ("fg-gallery-deepface-" + std::to_string(getpid()));
  fs::create_directories(dir);
  GalleryOptions o;
  o.master_key = generate_secret_key();
  o.create = true;
  o.model_id = (*pipe)->embedder().model_id();
  o.dim = 128;
  auto gal = Gallery::open(dir / "g.fgdb", o);
  if (!gal) { std::cerr << gal.error().message << "\n"; return 1; }
  if (!a.calibration.empty()) {
    std::ifstream in(a.calibration);
    std::stringstream ss;
    ss << in.rdbuf();
    auto t = threshold_table_from_json(ss.str());
    if (!t || !(*gal)->set_calibration(*t)) { std::cerr << "bad calibration file\n"; return 1; }
  }
  double decode = 0, detect = 0, embed = 0, store = 0;
  int faces = 0;
  auto embed_one = [&](const std::string& f) -> std::optional<Embedding> {
    auto t = Clock::now();
    auto img = load_image(images / f);
    decode += ms_since(t);
    if (!img) return std::nullopt;
    t = Clock::now();
    auto fs_ = (*pipe)->detect(*img);
    detect += ms_since(t);
    if (!fs_ || fs_->empty()) return std::nullopt;
    auto largest = std::max_element(fs_->begin(), fs_->end(), [](const Face& x, const Face& y) { return x.box.area() < y.box.area(); });
    t = Clock::now();
    auto e = (*pipe)->embed_face(*img, *largest);
    embed += ms_since(t);
    if (!e) return std::nullopt;
    ++faces;
    return *e;
  };
  std::vector<std::pair<std::string, Embedding>> probes;  // (true id or "" for impostor, template)
  auto t_all = Clock::now();
  int enrolled_faces = 0;
  for (const auto& [id, files] : ids) {
    const bool enrol = files.size() >= 4;
    std::vector<TemplateInput> ts;
    for (std::size_t i = 0; i < files.size(); ++i) {
      auto e = embed_one(files[i]);
      if (!e) continue;
      if (enrol && i < 2) ts.push_back(TemplateInput{*e, "", std::nullopt, ""});
      else probes.emplace_back(enrol ? id : "", *e);
    }
    if (enrol && !ts.empty()) {
      auto t = Clock::now();
      if (!(*gal)->enroll({id, id, "{}"}, ts)) return 1;
      store += ms_since(t);
      enrolled_faces += static_cast<int>(ts.size());
    }
  }
  const double all_ms = ms_since(t_all);
  {
    // The real score distributions and norms, to compare with the synthetic generator's.
    std::vector<std::pair<std::string, Embedding>> all = probes;
    double norm_sum = 0;
    std::vector<double> gen, imp;
    for (std::size_t i = 0; i < all.size(); ++i) {
      double n2 = 0;
      for (float f : all[i].second.values) n2 += static_cast<double>(f) * f;
      norm_sum += std::sqrt(n2);
      for (std::size_t j = i + 1; j < all.size(); ++j) {
        std::vector<float> x = all[i].second.values, y = all[j].second.values;
        normalise(x.data(), 128);
        normalise(y.data(), 128);
        const double c = dotf(x.data(), y.data(), 128);
        if (!all[i].first.empty() && all[i].first == all[j].first) gen.push_back(c);
        else imp.push_back(c);
      }
    }
    auto mean_sd = [](const std::vector<double>& v) {
      double m = 0, s = 0;
      for (double x : v) m += x;
      m /= std::max<std::size_t>(1, v.size());
      for (double x : v) s += (x - m) * (x - m);
      return std::make_pair(m, std::sqrt(s / std::max<std::size_t>(1, v.size() - 1)));
    };
    const auto [gm, gs] = mean_sd(gen);
    const auto [im, is] = mean_sd(imp);
    emit({{"bench", "deepface_score_distribution"}, {"probe_templates", all.size()}, {"mean_raw_norm", norm_sum / all.size()},
          {"genuine_pairs", gen.size()}, {"genuine_cos_mean", gm}, {"genuine_cos_sd", gs}, {"impostor_pairs", imp.size()},
          {"impostor_cos_mean", im}, {"impostor_cos_sd", is},
          {"impostor_cos_max", imp.empty() ? 0 : *std::max_element(imp.begin(), imp.end())}});
  }
  emit({{"bench", "photo_enrol_breakdown"}, {"faces", faces}, {"faces_per_s", 1000.0 * faces / all_ms},
        {"decode_ms", decode / faces}, {"detect_ms", detect / faces}, {"landmarks_align_embed_ms", embed / faces},
        {"store_ms_per_enrolled_face", store / std::max(1, enrolled_faces)}});
  for (double fmr : {1e-2, 1e-3, 1e-4}) {
    int genuine = 0, rank1 = 0, accepted_right = 0, impostors = 0, false_accepts = 0;
    float thr = 0;
    std::string source;
    for (const auto& [truth, e] : probes) {
      auto r = (*gal)->identify(e, {.top_k = 5, .target_fmr = fmr});
      if (!r) { std::cerr << r.error().message << "\n"; break; }
      thr = r->threshold;
      source = r->threshold_source;
      if (!truth.empty()) {
        ++genuine;
        if (r->candidates.at(0).subject_id == truth) ++rank1;
        if (r->known && r->candidates[0].subject_id == truth) ++accepted_right;
      } else {
        ++impostors;
        if (r->known) ++false_accepts;
      }
    }
    emit({{"bench", "deepface_identification"}, {"target_fmr", fmr}, {"threshold", thr}, {"threshold_source", source},
          {"enrolled_subjects", std::count_if(ids.begin(), ids.end(), [](const auto& x) { return x.second.size() >= 4; })},
          {"genuine_probes", genuine}, {"impostor_probes", impostors},
          {"rank1", genuine ? static_cast<double>(rank1) / genuine : 0},
          {"true_accept_rate", genuine ? static_cast<double>(accepted_right) / genuine : 0},
          {"false_accept_rate_open_set", impostors ? static_cast<double>(false_accepts) / impostors : 0}});
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
  return 0;
}

std::vector<std::size_t> parse_sizes(const std::string& s) {
  std::vector<std::size_t> v;
  std::stringstream ss(s);
  for (std::string x; std::getline(ss, x, ',');)
    if (!x.empty()) v.push_back(static_cast<std::size_t>(std::stoull(x)));
  return v;
}

std::vector<int> parse_ints(const std::string& s) {
  std::vector<int> v;
  for (auto x : parse_sizes(s)) v.push_back(static_cast<int>(x));
  return v;
}

std::vector<double> parse_doubles(const std::string& s) {
  std::vector<double> v;
  std::stringstream ss(s);
  for (std::string x; std::getline(ss, x, ',');)
    if (!x.empty()) v.push_back(std::stod(x));
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) { std::cerr << k << " needs a value\n"; std::exit(2); }
      return argv[++i];
    };
    if (k == "--sizes") a.sizes = parse_sizes(next());
    else if (k == "--per-identity") a.per_identity = std::stoi(next());
    else if (k == "--queries") a.queries = std::stoi(next());
    else if (k == "--batch") a.batch = std::stoi(next());
    else if (k == "--threads") a.threads = std::stoi(next());
    else if (k == "--common") a.common = std::stod(next());
    else if (k == "--sigma") a.sigma = std::stod(next());
    else if (k == "--decay") a.decay = std::stod(next());
    else if (k == "--hnsw-max") a.hnsw_max = std::stoull(next());
    else if (k == "--gallery-flat-max") a.gallery_flat_max = std::stoull(next());
    else if (k == "--hnsw-m") a.hnsw_m = std::stoi(next());
    else if (k == "--hnsw-efc") a.hnsw_efc = std::stoi(next());
    else if (k == "--ef") a.ef = parse_ints(next());
    else if (k == "--ivf-max") a.ivf_max = std::stoull(next());
    else if (k == "--nprobe-scale") a.nprobe_scale = parse_doubles(next());
    else if (k == "--faiss-ivf-max") a.faiss_ivf_max = std::stoull(next());
    else if (k == "--ivf-head") a.ivf_heads = parse_ints(next());
    else if (k == "--ivf-rescore") a.ivf_rescore = parse_ints(next());
    else if (k == "--open") a.open_size = std::stoull(next());
    else if (k == "--open-index") {
      a.open_kinds.clear();
      std::stringstream ss(next());
      for (std::string x; std::getline(ss, x, ',');) {
        if (x == "auto") a.open_kinds.push_back(IndexKind::kAuto);
        else if (x == "flat") a.open_kinds.push_back(IndexKind::kFlat);
        else if (x == "scan8") a.open_kinds.push_back(IndexKind::kScan8);
        else if (x == "hnsw") a.open_kinds.push_back(IndexKind::kHnsw);
        else if (x == "ivf") a.open_kinds.push_back(IndexKind::kIvf);
        else { std::cerr << "--open-index: auto, flat, scan8, hnsw or ivf\n"; return 2; }
      }
    }
    else if (k == "--deepface") a.deepface = next();
    else if (k == "--calibration") a.calibration = next();
    else if (k == "--workdir") a.workdir = next();
    else if (k == "--seed") a.seed = static_cast<unsigned>(std::stoul(next()));
    else {
      std::cerr << "usage: gallery_bench [--sizes N,N,..] [--per-identity 5] [--queries 400] [--batch 16] [--threads 2]\n"
                   "  [--common 0.915] [--sigma 0.18] [--decay 0.025] [--hnsw-max N] [--hnsw-m 32] [--hnsw-efc 80]\n"
                   "  [--ef 64,128,256] [--ivf-max N] [--nprobe-scale 0.5,0.75,1,1.5] [--faiss-ivf-max 100000]\n"
                   "  [--ivf-head 32,64 --ivf-rescore 1024,2048,4096] [--gallery-flat-max N]\n"
                   "  [--open N] [--open-index auto,ivf] [--deepface DIR]\n"
                   "  [--calibration table.json] [--workdir /tmp] [--seed 42]\n";
      return 2;
    }
  }
  if (!a.deepface.empty()) return bench_deepface(a);
  for (auto n : a.sizes) bench_size(a, n);
  if (a.open_size > 0) bench_open(a, a.open_size);
  return 0;
}
