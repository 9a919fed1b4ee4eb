// Internal: an inverted-file (IVF) partition of the gallery's templates whose lists hold 8-bit codes.
//
// Training: spherical k-means (faiss::Clustering, inner product, fixed seed, nearest centroids found with the
// scan8 kernels) on a random subsample of at most kMaxTrainRows rows gives nlist unit centroids; every template is stored in the list of its nearest centroid
// as scan8 codes (scan8.hpp: one scale per row, 128 B per 128-D template). A query scores every centroid in
// float32, scans the codes of its nprobe best lists with the scan8 kernels (AVX-512 VNNI / AVX2) and returns
// the best `keep` rows by approximate score; TemplateIndex re-ranks them exactly from its float rows.
//
// Why not faiss::IndexIVFFlat / IndexIVFScalarQuantizer: Debian's libfaiss 1.7.3 is a generic x86-64 build
// (no AVX2), so its SQ8 list scan decodes one component at a time: measured on the face-shaped synthetic
// gallery at 100k it ran at half the speed of IndexIVFFlat, and IVFFlat holds a second float copy of every
// template (+512 MB at 1M). The lists here cost 128 B + 16 B per template and scan at the speed of kScan8,
// with the same recall as IVFFlat at the same nprobe (the exact re-rank removes the quantization error).
// faiss runs the k-means iterations (initialisation, centroid updates, splitting of empty clusters).
//
// Lists are kept in step with add/remove without tombstones: a removed row is replaced by the list's last
// row (O(dim)), through an id -> (list, position) map.
#pragma once

#include <cstddef>
#include <cstdint>
#include <unordered_map>
#include <utility>
#include <vector>

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

  // ~4 sqrt(n) lists (the usual IVF rule: lists of ~sqrt(n)/4 rows), at least 1, at most n / 8 so that small
  // galleries still have several rows per list.
  static std::size_t nlist_for(std::size_t rows);

  // Trains on `rows` (n x dim, unit vectors) and fills the lists with all of them, on `threads` threads.
  // nlist 0: nlist_for(n). n == 0 leaves the lists untrained.
  IvfLists(int dim, const float* rows, const std::int64_t* ids, std::size_t n, std::size_t nlist, unsigned seed,
           int threads);

  bool trained() const { return nlist_ > 0; }
  std::size_t nlist() const { return nlist_; }
  std::size_t trained_rows() const { return trained_rows_; }
  std::size_t size() const { return where_.size(); }

  void add(std::int64_t id, const float* unit_row);
  void remove(std::int64_t id);
  bool contains(std::int64_t id) const { return where_.count(id) != 0; }

  // The best `keep` rows of the nprobe lists nearest to the query (unit vector q, scan8-prepared as sq),
  // best first. More lists are probed while fewer than min_rows rows have been seen, so a caller asking for
  // n results gets n when the gallery has them. Lists are split over `threads` when they are many.
  std::vector<IvfCandidate> search(const float* q, const Scan8Query& sq, std::size_t nprobe, std::size_t keep,
                                   std::size_t min_rows, int threads) const;

  std::size_t memory_bytes() const;

 private:
  struct List {
    std::vector<std::int8_t> codes;  // rows x stride
    std::vector<std::int32_t> sums;  // code sums (the VNNI kernel's shift correction)
    std::vector<float> scales;
    std::vector<std::int64_t> ids;
  };
  std::size_t nearest_list(const float* unit_row) const;
  void append(std::size_t list, std::int64_t id, const float* unit_row);

  int dim_;
  int stride_;
  std::size_t nlist_ = 0;
  std::size_t trained_rows_ = 0;
  std::vector<float> centroids_;  // nlist x dim, unit
  std::vector<List> lists_;
  std::unordered_map<std::int64_t, std::pair<std::uint32_t, std::uint32_t>> where_;  // id -> (list, position)
};

}  // namespace faceguard::gallery
