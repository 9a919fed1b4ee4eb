// Internal: the in-memory vector index of a gallery, rebuilt from the store on open and kept in step with
// every enrol and delete.
//
// All kinds share one storage: the L2-normalised copy of every template (row-major float32), its id, and the
// norm of the raw template (so Euclidean distances of raw templates are recovered exactly from the cosine:
// |a-b|^2 = |a|^2 + |b|^2 - 2|a||b|cos). Rows are removed by moving the last row into the hole (O(dim)), with an
// id -> row map; FAISS's IndexIDMap would compact the whole array on every delete.
//   kFlat : FAISS exact inner product over the rows (faiss::knn_inner_product, what IndexFlatIP::search runs)
//   kScan8: int8 codes of the rows (scan8.hpp), exhaustive approximate scan, exact re-rank of the best
//           max(rerank_factor * n, kMinRerank) candidates from the float rows
//   kHnsw : faiss::IndexHNSWFlat over its own copy, built lazily; deletions are tombstones filtered from the
//           results, and the graph is rebuilt when more than a fifth of it is tombstones
//   kIvf  : inverted lists of int8 codes (ivf.hpp) over k-means centroids, built lazily; the best
//           max(rerank_factor * n, kMinRerank) candidates of the nprobe nearest lists are re-ranked exactly from
//           the float rows. Kept in step with add/remove (no tombstones); retrained by prepare() when the size
//           has grown or shrunk 4x from the size it was trained at (the ~4 sqrt(n) list count is then 2x off)
// Thread safety: search() and the accessors may run concurrently; add/remove/prepare need exclusive access.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "faceguard/gallery.hpp"

namespace faiss {
struct IndexHNSWFlat;
}

namespace faceguard::gallery {

class IvfLists;

struct IndexConfig {
  IndexKind kind = IndexKind::kAuto;
  std::size_t scan8_above = 100'000;
  std::size_t ivf_above = 0;  // kAuto: kIvf above this many templates; 0: never (see docs/gallery.md)
  int hnsw_m = 32;
  int hnsw_ef_construction = 80;
  int hnsw_ef_search = 128;
  int threads = 0;
  int rerank_factor = 8;  // kScan8, kIvf: exact re-rank of rerank_factor * n candidates (at least kMinRerank)
  std::size_t ivf_nlist = 0;  // kIvf lists; 0: ~4 sqrt(n) (IvfLists::nlist_for)
  std::size_t ivf_nprobe = 0;  // kIvf lists probed per query; 0: default_ivf_nprobe(nlist)
  unsigned ivf_seed = 1234;    // k-means subsample and initialisation (fixed: reproducible partitions)
};

// The nprobe kIvf uses when none is configured (chosen from the recall sweeps in docs/gallery.md).
std::size_t default_ivf_nprobe(std::size_t nlist);

struct Hit {
  std::int64_t id = 0;
  float score = 0;  // cosine similarity
};

class TemplateIndex {
 public:
  static constexpr std::size_t kMinRerank = 128;

  TemplateIndex(int dim, IndexConfig config);
  ~TemplateIndex();
  TemplateIndex(const TemplateIndex&) = delete;
  TemplateIndex& operator=(const TemplateIndex&) = delete;

  // Adds (or replaces) a template given raw; it is normalised here. Zero vectors are refused (false).
  bool add(std::int64_t id, std::span<const float> raw);
  void remove(std::int64_t id);
  bool contains(std::int64_t id) const { return slot_.count(id) != 0; }
  std::size_t size() const { return ids_.size(); }
  int dim() const { return dim_; }
  IndexKind active_kind() const;  // kAuto resolved for the current size

  // Builds what the active kind needs (codes, HNSW graph). Search calls it when needed, but a caller that
  // shares the index across threads calls it under its exclusive lock first.
  bool needs_prepare() const;
  void prepare();

  // Top-n template hits for each normalised query (nq x dim), best first.
  std::vector<std::vector<Hit>> search(const float* queries, std::size_t nq, std::size_t n) const;
  // The same, forcing one kind (benchmarks; kAuto: active kind).
  std::vector<std::vector<Hit>> search_with(IndexKind kind, const float* queries, std::size_t nq,
                                            std::size_t n) const;

  // kHnsw with an explicit efSearch (benchmark sweeps); empty when the graph is not built.
  std::vector<Hit> search_hnsw_ef(const float* query, std::size_t n, int ef_search) const;
  // kIvf with an explicit nprobe (benchmark sweeps); empty when the lists are not built.
  std::vector<Hit> search_ivf_nprobe(const float* query, std::size_t n, std::size_t nprobe) const;
  // kIvf state: lists (0 when not built), the size it was trained at, the nprobe a search uses.
  std::size_t ivf_nlist() const;
  std::size_t ivf_trained_rows() const;
  std::size_t ivf_nprobe() const;

  float raw_norm(std::int64_t id) const;
  const float* row(std::int64_t id) const;  // normalised template, nullptr when absent
  std::size_t memory_bytes() const;

 private:
  std::vector<std::vector<Hit>> search_flat(const float* q, std::size_t nq, std::size_t n) const;
  std::vector<std::vector<Hit>> search_scan8(const float* q, std::size_t nq, std::size_t n) const;
  std::vector<std::vector<Hit>> search_hnsw(const float* q, std::size_t nq, std::size_t n, int ef = 0) const;
  std::vector<std::vector<Hit>> search_ivf(const float* q, std::size_t nq, std::size_t n, std::size_t nprobe = 0) const;
  void build_codes();
  void build_hnsw();
  void build_ivf();
  bool ivf_retrain_due() const;
  void encode_row(std::size_t row);

  int dim_;
  int stride_;
  IndexConfig config_;
  std::vector<float> rows_;
  std::vector<std::int64_t> ids_;
  std::vector<float> norms_;
  std::unordered_map<std::int64_t, std::size_t> slot_;
  bool codes_ready_ = false;
  std::vector<std::int8_t> codes_;
  std::vector<float> scales_;
  std::vector<std::int32_t> sums_;
  std::unique_ptr<faiss::IndexHNSWFlat> hnsw_;
  std::vector<std::int64_t> hnsw_ids_;        // HNSW label -> template id
  std::unordered_set<std::int64_t> hnsw_dead_;  // ids removed since the graph was built
  std::size_t hnsw_live_ = 0;
  std::unique_ptr<IvfLists> ivf_;
};

// L2-normalise in place; false for a zero vector.
bool normalise(std::span<float> v);

}  // namespace faceguard::gallery
