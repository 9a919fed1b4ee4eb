// Internal: an inverted-file (IVF) partition of the gallery's templates, scanned in two passes.
//
// Training: spherical k-means (faiss::Clustering, inner product, fixed seed, nearest centroids found with the
// scan8 kernels) on a random subsample of at most kMaxTrainRows rows gives nlist unit centroids, and a PCA of
// (part of) the same sample gives the rotation of the first pass. Every template is stored in the list of its
// nearest centroid twice over:
//  * "head" codes: the first head_dims (64) principal components as 8-bit codes with one trained range per
//    component, 16 rows to a block (block8.hpp): 64 B per template and no per-row scale;
//  * scan8 codes of the whole template (scan8.hpp: one scale per row, 128 B + 8 B).
// A query scores the centroids (scan8 codes of the centroids), scans the head codes of its nprobe best lists
// (block8 kernels, AVX-512 VNNI: 16 rows per instruction), re-scores the best `rescore` rows of that pass with
// their full scan8 codes and returns the best `keep`; TemplateIndex re-ranks those exactly from its float rows.
//
// Why two passes: recall@10 0.99 at 1M needs ~18% of the lists (a stranger's top-10 is a near tie spread over
// many lists), and the scan of those ~180k rows is memory bound. The leading 64 components carry nearly all of
// what tells face templates apart (their spectrum decays), so the first pass reads 64 B per row instead of
// 136 B; re-scoring its best 1,024 rows gave the same recall@10 as scanning the full codes at every
// nprobe measured at 100k and 1M, while 32 components lost ~0.01 of recall (docs/gallery.md).
//
// Why not faiss::IndexIVFFlat / IndexIVFScalarQuantizer: Debian's libfaiss 1.7.3 is a generic x86-64 build
// (no AVX2), so its SQ8 list scan decodes one component at a time: measured on the face-shaped synthetic
// gallery at 100k it ran at half the speed of IndexIVFFlat, and IVFFlat holds a second float copy of every
// template (+512 MB at 1M). faiss runs the k-means iterations (initialisation, centroid updates, splitting of
// empty clusters) and the PCA (faiss::PCAMatrix).
//
// Lists are kept in step with add/remove without tombstones: a removed row is replaced by the list's last
// row (O(dim)), through an id -> (list, position) map.
#pragma once

#include <cstddef>
#include <cstdint>
#include <unordered_map>
#include <utility>
#include <vector>

#include "gallery/block8.hpp"

namespace faceguard::gallery {

struct Scan8Query;

struct IvfCandidate {
  float score = 0;  // approximate (int8) inner product
  std::int64_t id = 0;
};

class IvfLists {
 public:
  // k-means sees at most this many rows (a random subsample): training cost is linear in it, and ~40 rows
  // per centroid at 4,000 lists (1M templates) is what faiss asks for (min_points_per_centroid 39).
  static constexpr std::size_t kMaxTrainRows = 160'000;
  // k-means iterations (faiss's default is 25): the partition only has to be good, not converged, and training
  // runs on every open. The recall figures in docs/gallery.md (and the default nprobe) are measured with 10.
  static constexpr int kKmeansIterations = 10;
  // Principal components kept in the first pass (block8 codes, 1 B each).
  static constexpr int kHeadDims = 64;
  // The PCA sees at most this many rows of the k-means sample (128 x 128 covariance: a few thousand rows
  // already fix it; more only cost training time through the slow BLAS).
  static constexpr std::size_t kPcaRows = 32'768;
  // Rows of the first pass re-scored with their full codes, shared by the threads (search(): rescore 0).
  static constexpr std::size_t kRescoreRows = 1024;

  // ~4 sqrt(n) lists (the usual IVF rule: lists of ~sqrt(n)/4 rows), at least 1, at most n / 8 so that small
  // galleries still have several rows per list.
  static std::size_t nlist_for(std::size_t rows);

  // Trains on `rows` (n x dim, unit vectors) and fills the lists with all of them, on `threads` threads.
  // nlist 0: nlist_for(n). n == 0 leaves the lists untrained.
  // head_dims: principal components of the first pass (at most dim).
  IvfLists(int dim, const float* rows, const std::int64_t* ids, std::size_t n, std::size_t nlist, unsigned seed,
           int threads, int head_dims = kHeadDims);

  bool trained() const { return nlist_ > 0; }
  std::size_t nlist() const { return nlist_; }
  std::size_t trained_rows() const { return trained_rows_; }
  std::size_t size() const { return where_.size(); }
  int head_dims() const { return head_dims_; }

  void add(std::int64_t id, const float* unit_row);
  void remove(std::int64_t id);
  bool contains(std::int64_t id) const { return where_.count(id) != 0; }

  // The best `keep` rows of the nprobe lists nearest to the query (unit vector q, scan8-prepared as sq),
  // best first by their scan8 score: the first pass ranks every row of those lists by its head codes, and its
  // best `rescore` (0: kRescoreRows; split over the threads, at least `keep` each) are scored with their
  // scan8 codes. More lists
  // are probed while fewer than min_rows rows have been seen, so a caller asking for n results gets n when the
  // gallery has them. Lists are split over `threads` when they are many.
  std::vector<IvfCandidate> search(const float* q, const Scan8Query& sq, std::size_t nprobe, std::size_t keep,
                                   std::size_t min_rows, int threads, std::size_t rescore = 0) const;

  // Consistency checks for the tests: the list and position of an id, and the head codes stored for it.
  bool locate(std::int64_t id, std::size_t* list, std::size_t* pos) const;
  std::vector<std::uint8_t> stored_head_codes(std::int64_t id) const;
  // The head codes a unit row gets (what add() stores).
  std::vector<std::uint8_t> head_codes_of(const float* unit_row) const;
  // Every list's arrays have one entry per row and the padding of its last head block is zero.
  bool lists_consistent() const;

  std::size_t memory_bytes() const;

 private:
  struct List {
    std::vector<std::uint8_t> head;  // ceil(rows / 16) block8 blocks of head_dims_ components
    std::vector<std::int8_t> codes;  // rows x stride
    std::vector<std::int32_t> sums;  // code sums (the VNNI kernel's shift correction)
    std::vector<float> scales;
    std::vector<std::int64_t> ids;
  };
  std::size_t nearest_list(const float* unit_row) const;
  void append(std::size_t list, std::int64_t id, const float* unit_row);

  void train_head(int head_dims, const float* sample, std::size_t n);
  void rotate(const float* unit_row, float* y) const;  // the first head_dims_ principal components

  int dim_;
  int stride_;
  int head_dims_ = 0;                 // block8_dims of the components kept
  std::vector<float> pca_;            // head_dims_ x dim, orthonormal rows (zero rows pad to head_dims_)
  Block8Coder coder_;
  std::vector<std::int8_t> centroid_codes_;  // scan8 codes of the centroids: the probe order
  std::vector<std::int32_t> centroid_sums_;
  std::vector<float> centroid_scales_;
  std::size_t nlist_ = 0;
  std::size_t trained_rows_ = 0;
  std::vector<float> centroids_;  // nlist x dim, unit
  std::vector<List> lists_;
  std::unordered_map<std::int64_t, std::pair<std::uint32_t, std::uint32_t>> where_;  // id -> (list, position)
};

}  // namespace faceguard::gallery
