#include "gallery/index.hpp"

#include <faiss/IndexHNSW.h>
#include <faiss/utils/distances.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <queue>
#include <thread>

#include "gallery/ivf.hpp"
#include "gallery/scan8.hpp"

namespace faceguard::gallery {

bool normalise(std::span<float> v) {
  double s = 0;
  for (float f : v) s += static_cast<double>(f) * f;
  if (!(s > 0) || !std::isfinite(s)) return false;
  const float inv = static_cast<float>(1.0 / std::sqrt(s));
  for (float& f : v) f *= inv;
  return true;
}

namespace {

// Rows per scan block: 4096 x 128 B = 512 KiB of codes, which stays in L2 while every query of a batch runs
// over it, so a batch of queries reads the codes from memory once.
constexpr std::size_t kBlockRows = 4096;
// Below this many rows a second thread costs more than it saves.
constexpr std::size_t kParallelRows = 32'768;
// The HNSW graph is rebuilt when more than this fraction of its nodes are deleted.
constexpr double kHnswDeadFraction = 0.2;
// kIvf default nprobe = kIvfProbeScale * nlist^(2/3), at least kIvfMinProbe. On the face-shaped gallery of
// gallery_bench, recall@10 0.99 took ~90 of 400 lists at 10k, ~250 of 1,265 at 100k and ~700 of 4,000 at 1M
// (docs/gallery.md): the share to probe falls as the gallery grows, about as nlist^(-1/3). 3.0 leaves a margin.
constexpr double kIvfProbeScale = 3.0;
constexpr std::size_t kIvfMinProbe = 16;

float dot(const float* a, const float* b, int d) {
  float s = 0.f;
  for (int i = 0; i < d; ++i) s += a[i] * b[i];
  return s;
}

int thread_count(int configured) {
  if (configured > 0) return configured;
  const unsigned h = std::thread::hardware_concurrency();
  return h == 0 ? 1 : static_cast<int>(h);
}

using Candidate = std::pair<float, std::uint32_t>;  // approximate score, row
using MinHeap = std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>>;

}  // namespace

TemplateIndex::TemplateIndex(int dim, IndexConfig config)
    : dim_(dim), stride_(scan8_stride(dim)), config_(config) {}

TemplateIndex::~TemplateIndex() = default;

IndexKind TemplateIndex::active_kind() const {
  if (config_.kind != IndexKind::kAuto) return config_.kind;
  if (config_.ivf_above > 0 && ids_.size() > config_.ivf_above) return IndexKind::kIvf;
  return ids_.size() > config_.scan8_above ? IndexKind::kScan8 : IndexKind::kFlat;
}

bool TemplateIndex::add(std::int64_t id, std::span<const float> raw) {
  if (raw.size() != static_cast<std::size_t>(dim_)) return false;
  if (slot_.count(id)) return true;  // already present (e.g. read back after our own enrolment)
  double s = 0;
  for (float f : raw) s += static_cast<double>(f) * f;
  if (!(s > 0) || !std::isfinite(s)) return false;
  const std::size_t row = ids_.size();
  rows_.insert(rows_.end(), raw.begin(), raw.end());
  normalise(std::span<float>(rows_.data() + row * dim_, static_cast<std::size_t>(dim_)));
  ids_.push_back(id);
  norms_.push_back(static_cast<float>(std::sqrt(s)));
  slot_[id] = row;
  if (codes_ready_) {
    codes_.resize((row + 1) * static_cast<std::size_t>(stride_));
    scales_.resize(row + 1);
    sums_.resize(row + 1);
    encode_row(row);
  }
  if (hnsw_) {
    if (hnsw_dead_.count(id)) {
      hnsw_.reset();  // an id coming back would be filtered as dead: rebuild instead
    } else {
      hnsw_->add(1, rows_.data() + row * dim_);
      hnsw_ids_.push_back(id);
      ++hnsw_live_;
    }
  }
  if (ivf_) ivf_->add(id, rows_.data() + row * dim_);
  return true;
}

void TemplateIndex::remove(std::int64_t id) {
  auto it = slot_.find(id);
  if (it == slot_.end()) return;
  const std::size_t row = it->second;
  const std::size_t last = ids_.size() - 1;
  if (row != last) {
    std::memcpy(rows_.data() + row * dim_, rows_.data() + last * dim_, sizeof(float) * dim_);
    ids_[row] = ids_[last];
    norms_[row] = norms_[last];
    slot_[ids_[row]] = row;
    if (codes_ready_) {
      std::memcpy(codes_.data() + row * stride_, codes_.data() + last * stride_, static_cast<std::size_t>(stride_));
      scales_[row] = scales_[last];
      sums_[row] = sums_[last];
    }
  }
  slot_.erase(id);
  ids_.pop_back();
  norms_.pop_back();
  rows_.resize(ids_.size() * static_cast<std::size_t>(dim_));
  if (codes_ready_) {
    codes_.resize(ids_.size() * static_cast<std::size_t>(stride_));
    scales_.resize(ids_.size());
    sums_.resize(ids_.size());
  }
  if (hnsw_) {
    hnsw_dead_.insert(id);
    --hnsw_live_;
    if (hnsw_dead_.size() > kHnswDeadFraction * static_cast<double>(hnsw_ids_.size())) hnsw_.reset();
  }
  if (ivf_) ivf_->remove(id);
}

void TemplateIndex::encode_row(std::size_t row) {
  scan8_quantize(rows_.data() + row * dim_, dim_, stride_, codes_.data() + row * stride_, &scales_[row], &sums_[row]);
}

void TemplateIndex::build_codes() {
  const std::size_t n = ids_.size();
  codes_.assign(n * static_cast<std::size_t>(stride_), 0);
  scales_.assign(n, 0.f);
  sums_.assign(n, 0);
  for (std::size_t r = 0; r < n; ++r) encode_row(r);
  codes_ready_ = true;
}

void TemplateIndex::build_hnsw() {
  auto h = std::make_unique<faiss::IndexHNSWFlat>(dim_, config_.hnsw_m, faiss::METRIC_INNER_PRODUCT);
  h->hnsw.efConstruction = config_.hnsw_ef_construction;
  h->hnsw.efSearch = config_.hnsw_ef_search;
  if (!ids_.empty()) h->add(static_cast<faiss::Index::idx_t>(ids_.size()), rows_.data());
  hnsw_ids_ = ids_;
  hnsw_dead_.clear();
  hnsw_live_ = ids_.size();
  hnsw_ = std::move(h);
}

void TemplateIndex::build_ivf() {
  ivf_.reset();
  if (ids_.empty()) return;
  ivf_ = std::make_unique<IvfLists>(dim_, rows_.data(), ids_.data(), ids_.size(), config_.ivf_nlist, config_.ivf_seed,
                                    thread_count(config_.threads));
}

bool TemplateIndex::ivf_retrain_due() const {
  if (!ivf_) return !ids_.empty();
  // Trained for t rows: retrain at 4t (the ~4 sqrt(n) list count is then half what it should be, lists twice
  // as long) or at t/4 (lists half as long as planned).
  const std::size_t t = ivf_->trained_rows(), n = ids_.size();
  return n > 4 * t || 4 * n < t;
}

bool TemplateIndex::needs_prepare() const {
  switch (active_kind()) {
    case IndexKind::kScan8: return !codes_ready_;
    case IndexKind::kHnsw: return !hnsw_;
    case IndexKind::kIvf: return ivf_retrain_due();
    default: return false;
  }
}

void TemplateIndex::prepare() {
  switch (active_kind()) {
    case IndexKind::kScan8:
      if (!codes_ready_) build_codes();
      break;
    case IndexKind::kHnsw:
      if (!hnsw_) build_hnsw();
      break;
    case IndexKind::kIvf:
      if (ivf_retrain_due()) build_ivf();
      break;
    default: break;
  }
}

std::vector<std::vector<Hit>> TemplateIndex::search(const float* queries, std::size_t nq, std::size_t n) const {
  return search_with(IndexKind::kAuto, queries, nq, n);
}

std::vector<std::vector<Hit>> TemplateIndex::search_with(IndexKind kind, const float* queries, std::size_t nq,
                                                         std::size_t n) const {
  if (kind == IndexKind::kAuto) kind = active_kind();
  n = std::min(n, ids_.size());
  if (n == 0 || nq == 0) return std::vector<std::vector<Hit>>(nq);
  // A kind whose structure is not built falls back to the exact scan rather than answering wrongly.
  if (kind == IndexKind::kScan8 && codes_ready_) return search_scan8(queries, nq, n);
  if (kind == IndexKind::kHnsw && hnsw_) return search_hnsw(queries, nq, n);
  if (kind == IndexKind::kIvf && ivf_) return search_ivf(queries, nq, n);
  return search_flat(queries, nq, n);
}

std::vector<std::vector<Hit>> TemplateIndex::search_flat(const float* q, std::size_t nq, std::size_t n) const {
  std::vector<float> d(nq * n);
  std::vector<faiss::Index::idx_t> l(nq * n);
  faiss::knn_inner_product(q, rows_.data(), static_cast<std::size_t>(dim_), nq, ids_.size(), n, d.data(), l.data());
  std::vector<std::vector<Hit>> out(nq);
  for (std::size_t i = 0; i < nq; ++i)
    for (std::size_t j = 0; j < n; ++j)
      if (l[i * n + j] >= 0) out[i].push_back(Hit{ids_[static_cast<std::size_t>(l[i * n + j])], d[i * n + j]});
  return out;
}

std::vector<std::vector<Hit>> TemplateIndex::search_scan8(const float* q, std::size_t nq, std::size_t n) const {
  const std::size_t total = ids_.size();
  const std::size_t keep = std::min(total, std::max(n * static_cast<std::size_t>(config_.rerank_factor), kMinRerank));
  std::vector<Scan8Query> qs(nq);
  for (std::size_t i = 0; i < nq; ++i) scan8_prepare_query(q + i * dim_, dim_, stride_, &qs[i]);
  const std::size_t blocks = (total + kBlockRows - 1) / kBlockRows;
  const int threads = total < kParallelRows ? 1 : std::min<int>(thread_count(config_.threads), static_cast<int>(blocks));
  std::vector<std::vector<MinHeap>> heaps(static_cast<std::size_t>(threads), std::vector<MinHeap>(nq));
  auto work = [&](int t) {
    std::vector<std::int32_t> dots(kBlockRows);
    auto& hs = heaps[static_cast<std::size_t>(t)];
    for (std::size_t b = static_cast<std::size_t>(t); b < blocks; b += static_cast<std::size_t>(threads)) {
      const std::size_t begin = b * kBlockRows;
      const std::size_t len = std::min(kBlockRows, total - begin);
      for (std::size_t qi = 0; qi < nq; ++qi) {
        scan8_dots(qs[qi], codes_.data() + begin * stride_, sums_.data() + begin, len, stride_, dots.data());
        MinHeap& h = hs[qi];
        float floor = h.size() < keep ? -std::numeric_limits<float>::infinity() : h.top().first;
        for (std::size_t j = 0; j < len; ++j) {
          const float s = static_cast<float>(dots[j]) * scales_[begin + j];
          if (s <= floor) continue;
          h.emplace(s, static_cast<std::uint32_t>(begin + j));
          if (h.size() > keep) h.pop();
          if (h.size() == keep) floor = h.top().first;
        }
      }
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(work, t);
  work(0);
  for (auto& th : pool) th.join();

  std::vector<std::vector<Hit>> out(nq);
  for (std::size_t qi = 0; qi < nq; ++qi) {
    std::vector<Candidate> cand;
    for (auto& hs : heaps) {
      auto& h = hs[qi];
      while (!h.empty()) {
        cand.push_back(h.top());
        h.pop();
      }
    }
    if (cand.size() > keep) {
      std::nth_element(cand.begin(), cand.begin() + static_cast<std::ptrdiff_t>(keep), cand.end(),
                       [](const Candidate& a, const Candidate& b) { return a.first > b.first; });
      cand.resize(keep);
    }
    // Exact re-rank in float32 of the best approximate candidates.
    std::vector<Hit> hits;
    hits.reserve(cand.size());
    const float* qv = q + qi * dim_;
    for (const auto& c : cand) hits.push_back(Hit{ids_[c.second], dot(qv, rows_.data() + static_cast<std::size_t>(c.second) * dim_, dim_)});
    const std::size_t m = std::min(n, hits.size());
    std::partial_sort(hits.begin(), hits.begin() + static_cast<std::ptrdiff_t>(m), hits.end(),
                      [](const Hit& a, const Hit& b) { return a.score > b.score; });
    hits.resize(m);
    out[qi] = std::move(hits);
  }
  return out;
}

std::vector<Hit> TemplateIndex::search_hnsw_ef(const float* query, std::size_t n, int ef_search) const {
  n = std::min(n, ids_.size());
  if (!hnsw_ || n == 0) return {};
  return search_hnsw(query, 1, n, ef_search).front();
}

std::vector<std::vector<Hit>> TemplateIndex::search_hnsw(const float* q, std::size_t nq, std::size_t n, int ef) const {
  // Deleted nodes are still in the graph: ask for enough extra results to drop them.
  const std::size_t k = std::min(hnsw_ids_.size(), n + hnsw_dead_.size());
  std::vector<float> d(nq * k);
  std::vector<faiss::Index::idx_t> l(nq * k);
  faiss::SearchParametersHNSW params;
  params.efSearch = std::max<int>(ef > 0 ? ef : config_.hnsw_ef_search, static_cast<int>(k));
  // FAISS parallelises HNSW search over queries with OpenMP; for one query the parallel region only costs
  // (tens of ms on a busy 2-core machine, where idle OpenMP threads spin), so run it on the calling thread.
  const int saved = omp_get_max_threads();
  if (nq == 1) omp_set_num_threads(1);
  hnsw_->search(static_cast<faiss::Index::idx_t>(nq), q, static_cast<faiss::Index::idx_t>(k), d.data(), l.data(), &params);
  if (nq == 1) omp_set_num_threads(saved);
  std::vector<std::vector<Hit>> out(nq);
  for (std::size_t i = 0; i < nq; ++i) {
    for (std::size_t j = 0; j < k && out[i].size() < n; ++j) {
      const auto label = l[i * k + j];
      if (label < 0) continue;
      const std::int64_t id = hnsw_ids_[static_cast<std::size_t>(label)];
      if (hnsw_dead_.count(id)) continue;
      out[i].push_back(Hit{id, d[i * k + j]});
    }
  }
  return out;
}

std::size_t default_ivf_nprobe(std::size_t nlist) {
  const auto p = static_cast<std::size_t>(std::ceil(kIvfProbeScale * std::cbrt(static_cast<double>(nlist) * nlist)));
  return std::min(nlist, std::max(kIvfMinProbe, p));
}

std::size_t TemplateIndex::ivf_nlist() const { return ivf_ ? ivf_->nlist() : 0; }
std::size_t TemplateIndex::ivf_trained_rows() const { return ivf_ ? ivf_->trained_rows() : 0; }
std::size_t TemplateIndex::ivf_nprobe() const {
  return config_.ivf_nprobe > 0 ? config_.ivf_nprobe : default_ivf_nprobe(ivf_nlist());
}

std::vector<Hit> TemplateIndex::search_ivf_nprobe(const float* query, std::size_t n, std::size_t nprobe) const {
  n = std::min(n, ids_.size());
  if (!ivf_ || n == 0) return {};
  return search_ivf(query, 1, n, nprobe).front();
}

std::vector<std::vector<Hit>> TemplateIndex::search_ivf(const float* q, std::size_t nq, std::size_t n,
                                                        std::size_t nprobe) const {
  if (nprobe == 0) nprobe = ivf_nprobe();
  const std::size_t keep = std::max(n * static_cast<std::size_t>(config_.rerank_factor), kMinRerank);
  std::vector<std::vector<Hit>> out(nq);
  int list_threads = 1;
  auto one = [&](std::size_t qi, Scan8Query& sq) {
    const float* qv = q + qi * dim_;
    scan8_prepare_query(qv, dim_, stride_, &sq);
    auto cand = ivf_->search(qv, sq, nprobe, keep, n, list_threads);
    // Exact re-rank in float32 of the best approximate candidates.
    std::vector<Hit> hits;
    hits.reserve(cand.size());
    for (const auto& c : cand) {
      auto it = slot_.find(c.id);
      if (it != slot_.end()) hits.push_back(Hit{c.id, dot(qv, rows_.data() + it->second * dim_, dim_)});
    }
    const std::size_t m = std::min(n, hits.size());
    std::partial_sort(hits.begin(), hits.begin() + static_cast<std::ptrdiff_t>(m), hits.end(),
                      [](const Hit& a, const Hit& b) { return a.score > b.score; });
    hits.resize(m);
    out[qi] = std::move(hits);
  };
  // A batch is split over the threads by query; one query splits its lists over them.
  const int threads = nq < 2 ? 1 : std::min<int>(thread_count(config_.threads), static_cast<int>(nq));
  list_threads = nq < 2 ? thread_count(config_.threads) : 1;
  auto work = [&](int t) {
    auto sq = std::make_unique<Scan8Query>();
    for (std::size_t qi = static_cast<std::size_t>(t); qi < nq; qi += static_cast<std::size_t>(threads)) one(qi, *sq);
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(work, t);
  work(0);
  for (auto& th : pool) th.join();
  return out;
}

float TemplateIndex::raw_norm(std::int64_t id) const {
  auto it = slot_.find(id);
  return it == slot_.end() ? 0.f : norms_[it->second];
}

const float* TemplateIndex::row(std::int64_t id) const {
  auto it = slot_.find(id);
  return it == slot_.end() ? nullptr : rows_.data() + it->second * dim_;
}

std::size_t TemplateIndex::memory_bytes() const {
  std::size_t b = rows_.capacity() * sizeof(float) + ids_.capacity() * 8 + norms_.capacity() * 4 +
                  slot_.size() * 32 + codes_.capacity() + scales_.capacity() * 4 + sums_.capacity() * 4;
  if (ivf_) b += ivf_->memory_bytes();
  if (hnsw_) b += hnsw_ids_.size() * (8 + static_cast<std::size_t>(dim_) * 4 + static_cast<std::size_t>(config_.hnsw_m) * 2 * 4);
  return b;
}

}  // namespace faceguard::gallery
