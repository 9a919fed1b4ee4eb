#include "gallery/ivf.hpp"

#include <faiss/Clustering.h>
#include <faiss/impl/FaissAssert.h>
#include <faiss/utils/distances.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <numeric>
#include <queue>
#include <random>
#include <thread>

#include "gallery/scan8.hpp"

namespace faceguard::gallery {

namespace {

using Entry = std::pair<float, std::int64_t>;  // approximate score, id
using MinHeap = std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>>;

// Nearest-centroid assignment for faiss's k-means and for the bulk fill, on the scan8 kernels: the centroids
// as int8 codes (512 KB at 4,000 lists: they stay in L2), each row scored against all of them. faiss's own
// flat index would run this as a float GEMM through BLAS, and this VM's CPU model makes OpenBLAS pick its
// generic "Prescott" kernels (~5 GFLOP/s here: 1M rows x 4,000 lists took minutes). An approximate (int8)
// nearest centroid is good enough for a partition: a row near a boundary is found from either side.
// Only k = 1 (all that faiss::Clustering asks of it).
struct Scan8Assign final : faiss::Index {
  Scan8Assign(int dim, int threads) : faiss::Index(dim, faiss::METRIC_INNER_PRODUCT), stride(scan8_stride(dim)), threads(threads) {}
  void add(idx_t n, const float* x) override {
    const auto d = static_cast<std::size_t>(this->d);
    const std::size_t base = static_cast<std::size_t>(ntotal);
    codes.resize((base + n) * static_cast<std::size_t>(stride));
    sums.resize(base + n);
    scales.resize(base + n);
    for (std::size_t i = 0; i < static_cast<std::size_t>(n); ++i)
      scan8_quantize(x + i * d, this->d, stride, codes.data() + (base + i) * stride, &scales[base + i], &sums[base + i]);
    ntotal += n;
  }
  void reset() override {
    codes.clear();
    sums.clear();
    scales.clear();
    ntotal = 0;
  }
  void search(idx_t n, const float* x, idx_t k, float* distances, idx_t* labels,
              const faiss::SearchParameters* = nullptr) const override {
    FAISS_THROW_IF_NOT(k == 1);
    const auto nc = static_cast<std::size_t>(ntotal);
    auto work = [&](std::size_t t, std::size_t nt) {
      auto q = std::make_unique<Scan8Query>();
      std::vector<std::int32_t> dots(nc);
      for (std::size_t i = t; i < static_cast<std::size_t>(n); i += nt) {
        scan8_prepare_query(x + i * static_cast<std::size_t>(d), d, stride, q.get());
        scan8_dots(*q, codes.data(), sums.data(), nc, stride, dots.data());
        float best = -std::numeric_limits<float>::infinity();
        idx_t arg = -1;
        for (std::size_t c = 0; c < nc; ++c) {
          const float s = static_cast<float>(dots[c]) * scales[c];
          if (s > best) best = s, arg = static_cast<idx_t>(c);
        }
        distances[i] = best * q->scale;
        labels[i] = arg;
      }
    };
    const std::size_t nt = n < 64 ? 1 : static_cast<std::size_t>(std::max(1, threads));
    std::vector<std::thread> pool;
    for (std::size_t t = 1; t < nt; ++t) pool.emplace_back(work, t, nt);
    work(0, nt);
    for (auto& th : pool) th.join();
  }
  int stride;
  int threads;
  std::vector<std::int8_t> codes;
  std::vector<std::int32_t> sums;
  std::vector<float> scales;
};

}  // namespace

std::size_t IvfLists::nlist_for(std::size_t rows) {
  if (rows == 0) return 0;
  const auto rule = static_cast<std::size_t>(std::lround(4.0 * std::sqrt(static_cast<double>(rows))));
  return std::max<std::size_t>(1, std::min(rule, rows / 8));
}

IvfLists::IvfLists(int dim, const float* rows, const std::int64_t* ids, std::size_t n, std::size_t nlist,
                   unsigned seed, int threads)
    : dim_(dim), stride_(scan8_stride(dim)) {
  if (n == 0) return;
  nlist = std::min(n, nlist == 0 ? nlist_for(n) : nlist);
  const auto d = static_cast<std::size_t>(dim);

  // A random subsample without replacement (partial Fisher-Yates, fixed seed: the same gallery always gets
  // the same partition).
  const std::size_t nt = std::min(n, kMaxTrainRows);
  std::vector<float> train;
  const float* tx = rows;
  if (nt < n) {
    std::vector<std::size_t> pick(n);
    std::iota(pick.begin(), pick.end(), std::size_t{0});
    std::mt19937_64 rng(seed);
    for (std::size_t i = 0; i < nt; ++i) std::swap(pick[i], pick[i + rng() % (n - i)]);
    std::sort(pick.begin(), pick.begin() + static_cast<std::ptrdiff_t>(nt));  // sequential reads
    train.resize(nt * d);
    for (std::size_t i = 0; i < nt; ++i) std::memcpy(&train[i * d], rows + pick[i] * d, sizeof(float) * d);
    tx = train.data();
  }

  faiss::ClusteringParameters cp;
  cp.niter = kKmeansIterations;
  cp.spherical = true;  // unit centroids: nearest by inner product = nearest by L2
  cp.seed = static_cast<int>(seed & 0x7fffffff);
  cp.verbose = false;
  // We subsample ourselves; these bounds only make faiss print warnings (the library never prints).
  cp.min_points_per_centroid = 1;
  cp.max_points_per_centroid = std::numeric_limits<int>::max() / 2;
  faiss::Clustering km(dim, static_cast<std::size_t>(nlist), cp);
  Scan8Assign assign(dim, threads);
  km.train(static_cast<faiss::Index::idx_t>(nt), tx, assign);
  centroids_ = km.centroids;
  nlist_ = nlist;
  trained_rows_ = n;
  lists_.assign(nlist_, List{});

  // Bulk assignment of every row to its nearest centroid.
  Scan8Assign& cq = assign;
  cq.reset();
  cq.add(static_cast<faiss::Index::idx_t>(nlist_), centroids_.data());
  constexpr std::size_t kChunk = 65'536;
  std::vector<float> dist(kChunk);
  std::vector<faiss::Index::idx_t> label(kChunk);
  std::vector<std::size_t> count(nlist_, 0);
  std::vector<std::uint32_t> list_of(n);
  for (std::size_t b = 0; b < n; b += kChunk) {
    const std::size_t m = std::min(kChunk, n - b);
    cq.search(static_cast<faiss::Index::idx_t>(m), rows + b * d, 1, dist.data(), label.data());
    for (std::size_t i = 0; i < m; ++i) {
      const auto l = label[i] < 0 ? std::size_t{0} : static_cast<std::size_t>(label[i]);
      list_of[b + i] = static_cast<std::uint32_t>(l);
      ++count[l];
    }
  }
  for (std::size_t l = 0; l < nlist_; ++l) {
    lists_[l].codes.reserve(count[l] * static_cast<std::size_t>(stride_));
    lists_[l].sums.reserve(count[l]);
    lists_[l].scales.reserve(count[l]);
    lists_[l].ids.reserve(count[l]);
  }
  where_.reserve(n);
  for (std::size_t i = 0; i < n; ++i) append(list_of[i], ids[i], rows + i * d);
}

std::size_t IvfLists::nearest_list(const float* unit_row) const {
  std::vector<float> s(nlist_);
  faiss::fvec_inner_products_ny(s.data(), unit_row, centroids_.data(), static_cast<std::size_t>(dim_), nlist_);
  return static_cast<std::size_t>(std::max_element(s.begin(), s.end()) - s.begin());
}

void IvfLists::append(std::size_t list, std::int64_t id, const float* unit_row) {
  List& L = lists_[list];
  const std::size_t pos = L.ids.size();
  L.codes.resize((pos + 1) * static_cast<std::size_t>(stride_));
  L.sums.push_back(0);
  L.scales.push_back(0.f);
  L.ids.push_back(id);
  scan8_quantize(unit_row, dim_, stride_, L.codes.data() + pos * stride_, &L.scales[pos], &L.sums[pos]);
  where_[id] = {static_cast<std::uint32_t>(list), static_cast<std::uint32_t>(pos)};
}

void IvfLists::add(std::int64_t id, const float* unit_row) {
  if (!trained() || where_.count(id)) return;
  append(nearest_list(unit_row), id, unit_row);
}

void IvfLists::remove(std::int64_t id) {
  auto it = where_.find(id);
  if (it == where_.end()) return;
  const auto [list, pos] = it->second;
  where_.erase(it);
  List& L = lists_[list];
  const std::size_t last = L.ids.size() - 1;
  if (pos != last) {
    std::memcpy(L.codes.data() + static_cast<std::size_t>(pos) * stride_, L.codes.data() + last * stride_,
                static_cast<std::size_t>(stride_));
    L.sums[pos] = L.sums[last];
    L.scales[pos] = L.scales[last];
    L.ids[pos] = L.ids[last];
    where_[L.ids[pos]] = {list, pos};
  }
  L.codes.resize(last * static_cast<std::size_t>(stride_));
  L.sums.pop_back();
  L.scales.pop_back();
  L.ids.pop_back();
}

std::vector<IvfCandidate> IvfLists::search(const float* q, const Scan8Query& sq, std::size_t nprobe,
                                           std::size_t keep, std::size_t min_rows, int threads) const {
  if (!trained() || keep == 0) return {};
  // Centroid scores in float32 (nlist x dim: 2 MB at 4,000 lists, a small part of a query's cost).
  std::vector<float> cs(nlist_);
  faiss::fvec_inner_products_ny(cs.data(), q, centroids_.data(), static_cast<std::size_t>(dim_), nlist_);
  std::vector<std::uint32_t> order(nlist_);
  std::iota(order.begin(), order.end(), 0u);
  auto better = [&](std::uint32_t a, std::uint32_t b) { return cs[a] > cs[b]; };
  nprobe = std::clamp<std::size_t>(nprobe, 1, nlist_);
  std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(nprobe), order.end(), better);
  std::size_t probes = nprobe, seen = 0;
  for (std::size_t p = 0; p < nprobe; ++p) seen += lists_[order[p]].ids.size();
  if (seen < min_rows && probes < nlist_) {  // rare: the probed lists hold fewer rows than asked for
    std::sort(order.begin() + static_cast<std::ptrdiff_t>(probes), order.end(), better);
    while (seen < min_rows && probes < nlist_) seen += lists_[order[probes++]].ids.size();
  }

  // Below kParallelRows scanned rows a second thread costs more than it saves.
  constexpr std::size_t kParallelRows = 32'768;
  const std::size_t nt = seen < kParallelRows ? 1 : static_cast<std::size_t>(std::max(1, threads));
  std::vector<MinHeap> heaps(nt);
  auto work = [&](std::size_t t) {
    MinHeap& heap = heaps[t];
    std::vector<std::int32_t> dots;
    for (std::size_t p = t; p < probes; p += nt) {
      const List& L = lists_[order[p]];
      const std::size_t len = L.ids.size();
      if (len == 0) continue;
      dots.resize(len);
      scan8_dots(sq, L.codes.data(), L.sums.data(), len, stride_, dots.data());
      float floor = heap.size() < keep ? -std::numeric_limits<float>::infinity() : heap.top().first;
      for (std::size_t j = 0; j < len; ++j) {
        const float s = static_cast<float>(dots[j]) * L.scales[j];
        if (s <= floor) continue;
        heap.emplace(s, L.ids[j]);
        if (heap.size() > keep) heap.pop();
        if (heap.size() == keep) floor = heap.top().first;
      }
    }
  };
  std::vector<std::thread> pool;
  for (std::size_t t = 1; t < nt; ++t) pool.emplace_back(work, t);
  work(0);
  for (auto& th : pool) th.join();
  for (std::size_t t = 1; t < nt; ++t) {
    while (!heaps[t].empty()) {
      heaps[0].push(heaps[t].top());
      heaps[t].pop();
      if (heaps[0].size() > keep) heaps[0].pop();
    }
  }
  MinHeap& heap = heaps[0];
  std::vector<IvfCandidate> out(heap.size());
  for (std::size_t i = out.size(); i-- > 0;) {
    out[i] = IvfCandidate{heap.top().first, heap.top().second};
    heap.pop();
  }
  return out;
}

std::size_t IvfLists::memory_bytes() const {
  std::size_t b = centroids_.capacity() * sizeof(float) + lists_.capacity() * sizeof(List) + where_.size() * 32;
  for (const auto& L : lists_)
    b += L.codes.capacity() + L.sums.capacity() * 4 + L.scales.capacity() * 4 + L.ids.capacity() * 8;
  return b;
}

}  // namespace faceguard::gallery
