#include "gallery/ivf.hpp"

#include <faiss/Clustering.h>
#include <faiss/VectorTransform.h>
#include <faiss/impl/FaissAssert.h>
#include <faiss/utils/distances.h>
#include <immintrin.h>

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
                   unsigned seed, int threads, int head_dims)
    : dim_(dim), stride_(scan8_stride(dim)) {
  if (n == 0) return;
  head_dims = std::clamp(head_dims, 4, std::min(dim, kBlock8MaxDims));
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
  train_head(head_dims, tx, nt);
  centroid_codes_.resize(nlist_ * static_cast<std::size_t>(stride_));
  centroid_sums_.resize(nlist_);
  centroid_scales_.resize(nlist_);
  for (std::size_t l = 0; l < nlist_; ++l)
    scan8_quantize(&centroids_[l * d], dim, stride_, &centroid_codes_[l * static_cast<std::size_t>(stride_)],
                   &centroid_scales_[l], &centroid_sums_[l]);

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
    lists_[l].head.reserve((count[l] + kBlock8Rows - 1) / kBlock8Rows * block8_block_bytes(head_dims_));
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

void IvfLists::train_head(int head_dims, const float* sample, std::size_t n) {
  const auto d = static_cast<std::size_t>(dim_);
  const auto h = static_cast<std::size_t>(head_dims);
  head_dims_ = block8_dims(head_dims);
  pca_.assign(static_cast<std::size_t>(head_dims_) * d, 0.f);
  const std::size_t np = std::min(n, kPcaRows);
  if (np >= 4 * d) {
    // Principal axes of the sample (mean removed); faiss sorts them by decreasing variance.
    faiss::PCAMatrix pca(dim_, head_dims, 0.f, false);
    pca.train(static_cast<faiss::Index::idx_t>(np), sample);
    std::copy(pca.A.begin(), pca.A.begin() + static_cast<std::ptrdiff_t>(h * d), pca_.begin());
  } else {
    // Too few rows for a stable covariance: the first coordinates (the first pass then ranks less well, but
    // such a gallery is small enough that the rescored rows cover most of it).
    for (std::size_t i = 0; i < h; ++i) pca_[i * d + i] = 1.f;
  }
  // Component ranges from the rotated sample.
  const std::size_t nc = std::min<std::size_t>(n, 65'536);
  std::vector<float> y(nc * static_cast<std::size_t>(head_dims_));
  for (std::size_t r = 0; r < nc; ++r) rotate(sample + r * d, &y[r * static_cast<std::size_t>(head_dims_)]);
  coder_ = Block8Coder(head_dims_, y.data(), nc);
}

void IvfLists::rotate(const float* unit_row, float* y) const {
  const auto d = static_cast<std::size_t>(dim_);
  for (int i = 0; i < head_dims_; ++i) {
    const float* a = &pca_[static_cast<std::size_t>(i) * d];
    float s = 0.f;
    for (std::size_t k = 0; k < d; ++k) s += a[k] * unit_row[k];
    y[i] = s;
  }
}

std::vector<std::uint8_t> IvfLists::head_codes_of(const float* unit_row) const {
  std::vector<float> y(static_cast<std::size_t>(head_dims_));
  std::vector<std::uint8_t> c(static_cast<std::size_t>(head_dims_));
  rotate(unit_row, y.data());
  coder_.encode(y.data(), c.data());
  return c;
}

void IvfLists::append(std::size_t list, std::int64_t id, const float* unit_row) {
  List& L = lists_[list];
  const std::size_t pos = L.ids.size();
  if (pos % kBlock8Rows == 0) L.head.resize((pos / kBlock8Rows + 1) * block8_block_bytes(head_dims_), 0);
  block8_put(L.head.data(), head_dims_, pos, head_codes_of(unit_row).data());
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
  std::vector<std::uint8_t> moved(static_cast<std::size_t>(head_dims_));
  if (pos != last) {
    block8_get(L.head.data(), head_dims_, last, moved.data());
    block8_put(L.head.data(), head_dims_, pos, moved.data());
    std::memcpy(L.codes.data() + static_cast<std::size_t>(pos) * stride_, L.codes.data() + last * stride_,
                static_cast<std::size_t>(stride_));
    L.sums[pos] = L.sums[last];
    L.scales[pos] = L.scales[last];
    L.ids[pos] = L.ids[last];
    where_[L.ids[pos]] = {list, pos};
  }
  // The vacated slot goes back to zero codes (a block's padding rows are zero), the block when it is empty.
  std::fill(moved.begin(), moved.end(), std::uint8_t{0});
  block8_put(L.head.data(), head_dims_, last, moved.data());
  if (last % kBlock8Rows == 0) L.head.resize(last / kBlock8Rows * block8_block_bytes(head_dims_));
  L.codes.resize(last * static_cast<std::size_t>(stride_));
  L.sums.pop_back();
  L.scales.pop_back();
  L.ids.pop_back();
}

std::vector<IvfCandidate> IvfLists::search(const float* q, const Scan8Query& sq, std::size_t nprobe,
                                           std::size_t keep, std::size_t min_rows, int threads,
                                           std::size_t rescore) const {
  if (!trained() || keep == 0) return {};
  // Probe order from the centroids' scan8 codes (512 KB at 4,000 lists, read from cache; an int8 ranking of
  // the centroids only decides which lists are scanned).
  std::vector<std::int32_t> cd(nlist_);
  scan8_dots(sq, centroid_codes_.data(), centroid_sums_.data(), nlist_, stride_, cd.data());
  std::vector<float> cs(nlist_);
  for (std::size_t l = 0; l < nlist_; ++l) cs[l] = static_cast<float>(cd[l]) * centroid_scales_[l];
  std::vector<std::uint32_t> order(nlist_);
  std::iota(order.begin(), order.end(), 0u);
  auto better = [&](std::uint32_t a, std::uint32_t b) { return cs[a] > cs[b]; };
  nprobe = std::clamp<std::size_t>(nprobe, 1, nlist_);
  std::nth_element(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(nprobe - 1), order.end(), better);
  std::size_t probes = nprobe, seen = 0;
  for (std::size_t p = 0; p < nprobe; ++p) seen += lists_[order[p]].ids.size();
  if (seen < min_rows && probes < nlist_) {  // rare: the probed lists hold fewer rows than asked for
    std::sort(order.begin() + static_cast<std::ptrdiff_t>(probes), order.end(), better);
    while (seen < min_rows && probes < nlist_) seen += lists_[order[probes++]].ids.size();
  }

  // The query in the head's coordinates, as block8 weights.
  std::vector<float> y(static_cast<std::size_t>(head_dims_));
  rotate(q, y.data());
  alignas(64) std::int8_t w[kBlock8MaxDims];
  coder_.prepare_query(y.data(), w);
  // Below kParallelRows scanned rows a second thread costs more than it saves.
  constexpr std::size_t kParallelRows = 32'768;
  const std::size_t nt = seen < kParallelRows ? 1 : static_cast<std::size_t>(std::max(1, threads));
  // The first-pass depth is shared by the threads (each keeps its part of it), so the same rows reach the
  // second pass however many threads scan (1,024 in all: measured, 512 on one thread lost recall at 1M).
  const std::size_t total_depth = rescore == 0 ? kRescoreRows : rescore;
  const std::size_t depth = std::max((total_depth + nt - 1) / nt, keep);
  struct Pass1 {
    std::int32_t score;
    std::uint32_t list, pos;
  };
  std::vector<std::vector<IvfCandidate>> found(nt);
  auto work = [&](std::size_t t) {
    // First pass: every row of this thread's lists by its head codes; the best `depth` are kept in a buffer
    // that is cut back to `depth` (nth_element) whenever it holds twice as many.
    std::vector<Pass1> buf;
    buf.reserve(2 * depth + 1024);
    std::int32_t floor = std::numeric_limits<std::int32_t>::min();
    auto by_score = [](const Pass1& a, const Pass1& b) { return a.score > b.score; };
    auto cut = [&] {
      std::nth_element(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(depth - 1), buf.end(), by_score);
      buf.resize(depth);
      floor = std::min_element(buf.begin(), buf.end(), [](const Pass1& a, const Pass1& b) { return a.score < b.score; })->score;
    };
    std::vector<std::int32_t> dots;
    for (std::size_t p = t; p < probes; p += nt) {
      const std::uint32_t l = order[p];
      const List& L = lists_[l];
      const std::size_t len = L.ids.size();
      if (len == 0) continue;
      const std::size_t blocks = (len + kBlock8Rows - 1) / kBlock8Rows;
      dots.resize(blocks * kBlock8Rows);
      block8_dots(w, L.head.data(), blocks, head_dims_, dots.data());
      // Most rows fall below the floor once the buffer has filled: test 16 at a time without branches (local
      // copies keep the floor and the scores in registers; push_back would otherwise force reloads).
      const std::int32_t f = floor;
      const std::int32_t* sc = dots.data();
      for (std::size_t b0 = 0; b0 < len; b0 += kBlock8Rows) {
        const std::size_t e = std::min(len, b0 + kBlock8Rows);
        int any = 0;
        for (std::size_t j = b0; j < e; ++j) any |= sc[j] > f;
        if (any == 0) continue;
        for (std::size_t j = b0; j < e; ++j)
          if (sc[j] > f) buf.push_back(Pass1{sc[j], l, static_cast<std::uint32_t>(j)});
      }
      if (buf.size() >= 2 * depth) cut();
    }
    if (buf.size() > depth) cut();
    // Second pass: the survivors by their full scan8 codes.
    std::vector<IvfCandidate>& out = found[t];
    out.reserve(buf.size());
    // The survivors are scattered over the lists: their codes are fetched kAhead rows ahead.
    constexpr std::size_t kAhead = 8;
    auto fetch = [&](const Pass1& c) {
      const List& L = lists_[c.list];
      const char* p = reinterpret_cast<const char*>(L.codes.data() + static_cast<std::size_t>(c.pos) * stride_);
      for (int b = 0; b < stride_; b += 64) _mm_prefetch(p + b, _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(&L.sums[c.pos]), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(&L.scales[c.pos]), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(&L.ids[c.pos]), _MM_HINT_T0);
    };
    for (std::size_t i = 0; i < std::min(kAhead, buf.size()); ++i) fetch(buf[i]);
    for (std::size_t i = 0; i < buf.size(); ++i) {
      if (i + kAhead < buf.size()) fetch(buf[i + kAhead]);
      const Pass1& c = buf[i];
      const List& L = lists_[c.list];
      std::int32_t dot = 0;
      scan8_dots(sq, L.codes.data() + static_cast<std::size_t>(c.pos) * stride_, &L.sums[c.pos], 1, stride_, &dot);
      out.push_back(IvfCandidate{static_cast<float>(dot) * L.scales[c.pos], L.ids[c.pos]});
    }
  };
  std::vector<std::thread> pool;
  for (std::size_t t = 1; t < nt; ++t) pool.emplace_back(work, t);
  work(0);
  for (auto& th : pool) th.join();
  std::vector<IvfCandidate> out = std::move(found[0]);
  for (std::size_t t = 1; t < nt; ++t) out.insert(out.end(), found[t].begin(), found[t].end());
  const std::size_t m = std::min(keep, out.size());
  std::partial_sort(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(m), out.end(),
                    [](const IvfCandidate& a, const IvfCandidate& b) { return a.score > b.score; });
  out.resize(m);
  return out;
}

bool IvfLists::locate(std::int64_t id, std::size_t* list, std::size_t* pos) const {
  auto it = where_.find(id);
  if (it == where_.end()) return false;
  *list = it->second.first;
  *pos = it->second.second;
  return true;
}

std::vector<std::uint8_t> IvfLists::stored_head_codes(std::int64_t id) const {
  std::size_t l = 0, p = 0;
  if (!locate(id, &l, &p)) return {};
  std::vector<std::uint8_t> c(static_cast<std::size_t>(head_dims_));
  block8_get(lists_[l].head.data(), head_dims_, p, c.data());
  return c;
}

bool IvfLists::lists_consistent() const {
  std::size_t total = 0;
  const std::size_t bb = block8_block_bytes(head_dims_);
  std::vector<std::uint8_t> c(static_cast<std::size_t>(head_dims_));
  for (std::size_t l = 0; l < lists_.size(); ++l) {
    const List& L = lists_[l];
    const std::size_t n = L.ids.size();
    total += n;
    if (L.codes.size() != n * static_cast<std::size_t>(stride_) || L.sums.size() != n || L.scales.size() != n ||
        L.head.size() != (n + kBlock8Rows - 1) / kBlock8Rows * bb)
      return false;
    for (std::size_t j = n; j < (n + kBlock8Rows - 1) / kBlock8Rows * kBlock8Rows; ++j) {
      block8_get(L.head.data(), head_dims_, j, c.data());
      if (std::any_of(c.begin(), c.end(), [](std::uint8_t v) { return v != 0; })) return false;
    }
    for (std::size_t j = 0; j < n; ++j) {
      auto it = where_.find(L.ids[j]);
      if (it == where_.end() || it->second.first != l || it->second.second != j) return false;
    }
  }
  return total == where_.size();
}

std::size_t IvfLists::memory_bytes() const {
  std::size_t b = centroids_.capacity() * sizeof(float) + centroid_codes_.capacity() + pca_.capacity() * 4 + lists_.capacity() * sizeof(List) + where_.size() * 32;
  for (const auto& L : lists_)
    b += L.head.capacity() + L.codes.capacity() + L.sums.capacity() * 4 + L.scales.capacity() * 4 + L.ids.capacity() * 8;
  return b;
}

}  // namespace faceguard::gallery
