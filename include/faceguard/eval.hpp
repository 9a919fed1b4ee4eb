// faceguard/eval.hpp - verification accuracy (pair lists, metrics, embedding cache) and stage timing.
//
//   auto pairs = faceguard::eval::load_pairs("pairsDevTest.txt", "lfw-view1/images");
//   auto cache = faceguard::eval::EmbeddingCache::in_memory(faceguard::eval::config_key(config));
//   auto set = faceguard::eval::embed_images(*pack, faceguard::eval::unique_images(*pairs), config, cache);
//   auto scored = faceguard::eval::score_pairs(*pairs, *set);       // distance + same flag per pair
//   auto cv = faceguard::eval::k_fold(*scored, faceguard::eval::stratified_folds(*scored, 10), 10);
//   auto roc = faceguard::eval::roc(*scored);                        // AUC, EER, TAR at a FAR
//
// Convention: a pair is predicted "same" when its distance is strictly below the threshold (as compare()).
// Metrics are pure functions over (distance, same) pairs; the unit tests check them against hand-worked
// examples. Nothing here prints: the `faceguard eval` and `faceguard bench` commands do.
// Thread safety: all functions are reentrant; embed_images() runs its own worker threads, each with its own
// Pipeline; EmbeddingCache is a plain value (not shared between threads).
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <opencv2/core.hpp>

#include "faceguard/models.hpp"
#include "faceguard/pipeline.hpp"
#include "faceguard/result.hpp"
#include "faceguard/types.hpp"

namespace faceguard::eval {

// ---------------------------------------------------------------------------------------------------
// Pair lists
// ---------------------------------------------------------------------------------------------------

struct Pair {
  std::filesystem::path a;
  std::filesystem::path b;
  bool same = false;
  int fold = -1;  // fold given by the file (LFW "folds count" header); -1 when the file has none
};

struct PairList {
  std::vector<Pair> pairs;
  int folds = 0;  // number of folds the file defines (0: none)
};

// images/<name>/<name>_<iiii>.jpg, the LFW naming rule.
std::filesystem::path lfw_image_path(const std::filesystem::path& images_dir, std::string_view name, int index);

// LFW format (pairsDevTrain.txt, pairsDevTest.txt, pairs.txt). First line "N" (N matched then N mismatched)
// or "F N" (F folds, each N matched then N mismatched). Matched line `name i j`, mismatched line
// `name1 i name2 j`, separated by tabs or spaces. kCorruptData (with the line number) on any malformed line or
// a count that does not match the lines.
Result<PairList> parse_lfw_pairs(std::string_view text, const std::filesystem::path& images_dir);

// CSV `a,b,same`: one pair per line, an optional header line, same in {1,0,true,false,yes,no}
// (any case); a first line whose third field is none of these is a header.
// Relative image paths are taken relative to images_dir. Double-quoted fields may contain commas.
Result<PairList> parse_csv_pairs(std::string_view text, const std::filesystem::path& images_dir);

// By extension: .csv -> CSV, anything else -> LFW format.
Result<PairList> load_pairs(const std::filesystem::path& file, const std::filesystem::path& images_dir);

// Every image the pairs mention, once, in order of first appearance.
std::vector<std::filesystem::path> unique_images(const PairList& pairs);

// ---------------------------------------------------------------------------------------------------
// Metrics
// ---------------------------------------------------------------------------------------------------

struct ScoredPair {
  double distance = 0.0;  // smaller = more alike
  bool same = false;
};

// Fraction of pairs classified correctly with `same <=> distance < threshold`; 0 for an empty span.
double accuracy_at(std::span<const ScoredPair> pairs, double threshold);

struct ThresholdChoice {
  double threshold = 0.0;
  double accuracy = 0.0;
};

// The threshold with the highest accuracy. Candidates are the midpoints between consecutive distinct
// distances plus one just below the smallest and one just above the largest; of the first run of equally good
// consecutive candidates the middle one is taken (the widest margin). kInvalidArgument for an empty span.
Result<ThresholdChoice> best_threshold(std::span<const ScoredPair> pairs);

// Fold of each pair, for lists without folds of their own: within each class (same / different), in list
// order, the j-th of n pairs goes to fold floor(j*k/n), so every fold holds both classes in proportion.
std::vector<int> stratified_folds(std::span<const ScoredPair> pairs, int k);

struct FoldResult {
  int fold = 0;
  double threshold = 0.0;       // chosen on the other k-1 folds
  double train_accuracy = 0.0;  // on the other k-1 folds
  double test_accuracy = 0.0;   // on this fold
  int test_pairs = 0;
};

struct KFoldResult {
  std::vector<FoldResult> folds;
  double mean_accuracy = 0.0;
  double std_accuracy = 0.0;    // sample standard deviation (n-1) of the fold accuracies
  double standard_error = 0.0;  // std_accuracy / sqrt(k), as LFW's results page reports
};

// k-fold protocol: for each fold, the threshold is chosen on the other folds and applied to it.
// fold_of[i] in [0,k). kInvalidArgument if sizes differ, k < 2, or a fold (or its complement) is empty.
Result<KFoldResult> k_fold(std::span<const ScoredPair> pairs, std::span<const int> fold_of, int k);

struct RocPoint {
  double threshold = 0.0;  // accept (predict same) when distance < threshold
  double far = 0.0;        // false accept rate: different pairs accepted / different pairs
  double tar = 0.0;        // true accept rate: same pairs accepted / same pairs
};

struct Roc {
  std::vector<RocPoint> points;  // threshold ascending, from (0,0) to (1,1)
  double auc = 0.0;              // trapezoidal area under TAR(FAR)
  double eer = 0.0;              // where FAR = 1 - TAR, linearly interpolated between points
  double eer_threshold = 0.0;
  int positives = 0;
  int negatives = 0;
};

// kInvalidArgument unless both classes are present.
Result<Roc> roc(std::span<const ScoredPair> pairs);

struct TarAtFar {
  double far_target = 0.0;
  double tar = 0.0;        // the highest TAR of an operating point with FAR <= far_target
  double far = 0.0;        // that point's actual FAR
  double threshold = 0.0;
  bool resolvable = true;  // false when far_target < 1/negatives (the list is too small to measure it)
};
TarAtFar tar_at_far(const Roc& roc, double far_target);

// One fold: the threshold chosen on `train` (best_threshold) and the accuracy it gives on `test`.
Result<FoldResult> evaluate_fold(int fold, std::span<const ScoredPair> train, std::span<const ScoredPair> test);
// Mean, sample standard deviation and standard error of the folds' test accuracies (as k_fold reports).
KFoldResult fold_statistics(std::vector<FoldResult> folds);

// ---------------------------------------------------------------------------------------------------
// Score fusion of several models (e.g. dlib ResNet + MobileFaceNet)
// ---------------------------------------------------------------------------------------------------
// Logistic fusion: log-odds(same) = bias + sum_m weights[m] * distance_m, fitted by Newton's method (IRLS)
// on standardised distances with a small ridge (1e-3) on the weights, so that separable training data still
// gives finite weights. The fused distance is the negated log-odds (smaller = more alike, as every other
// distance here), so a fused distance of 0 is p(same) = 0.5 at the training set's class balance.
struct Fusion {
  std::vector<double> weights;  // one per model, on the raw distances
  double bias = 0.0;
};
// per_model[m][i]: model m's score of pair i. All lists must have the same size and the same `same` flags
// (kInvalidArgument otherwise, or with fewer than 2 models, or when a class is missing). Pairs with a
// non-finite distance in any model are left out of the fit.
Result<Fusion> fit_fusion(std::span<const std::vector<ScoredPair>> per_model);
// -(bias + sum w_m d_m); +infinity when any distance is not finite (a failed image: predicted different).
double fused_distance(const Fusion& fusion, std::span<const double> distances);
// The fused score of every pair (labels from per_model[0]); per_model.size() must equal the weights'.
std::vector<ScoredPair> fuse(const Fusion& fusion, std::span<const std::vector<ScoredPair>> per_model);
struct FusedKFold {
  KFoldResult kfold;
  std::vector<Fusion> fusions;            // fitted on each fold's complement
  std::vector<ScoredPair> out_of_fold;    // each pair scored by the fusion fitted without its fold (for ROC)
};
// k-fold protocol for a fusion: for each fold, the fusion AND the threshold are fitted on the other folds.
Result<FusedKFold> k_fold_fused(std::span<const std::vector<ScoredPair>> per_model, std::span<const int> fold_of, int k);

// `a,b,same,distance` with a header line; distances with 6 decimals.
std::string scores_csv(const PairList& pairs, std::span<const ScoredPair> scored);
// A self-contained SVG of the ROC curve (FAR on a log axis from 1e-4, TAR linear), with AUC and EER printed.
std::string roc_svg(const Roc& roc, std::string_view title);
// Write text to a file (creating parent folders); kIoError on failure.
Status write_text_file(const std::filesystem::path& path, std::string_view text);

// ---------------------------------------------------------------------------------------------------
// Embedding each image of a pair list (with a fallback when no face is found) and a cache on disk
// ---------------------------------------------------------------------------------------------------

// How the face of an image was found.
enum class FaceSource : std::uint8_t {
  kDetected = 0,    // the configured detector on the image
  kCanvasSsd = 1,   // SSD on the image centred on a 2x black canvas (SSD misses faces that fill the frame)
  kBlazeFace = 2,   // BlazeFace back-camera model on the image
  kCentreCrop = 3,  // no detector found a face: a fixed centre box (fits LFW's centred faces)
  kFailed = 4,      // unreadable image or the embedding failed; pairs with it are predicted "different"
};
std::string_view to_string(FaceSource source);

struct ImageEmbedding {
  FaceSource source = FaceSource::kFailed;
  Face face;            // the face used, in the coordinates of the image searched (the 2x canvas for kCanvasSsd)
  Embedding embedding;  // empty when source == kFailed, and in a face-only cache
  std::string error;    // why, when kFailed
};

// One binary file per configuration: <dir>/embeddings-<16 hex digits of FNV-1a(config key)>.bin.
// An entry is valid while the image's path, byte size and modification time are unchanged. The same class,
// opened with detection_key(), caches the faces alone, so that configurations differing only after
// detection (alignment, flip) do not detect again.
// Format (little-endian): "FGEMBC\0\0", u32 version (1), u32 key length, key, u64 count, then per entry:
// u32 path length, path, u64 size, i64 mtime (ns), u8 source, face (4 x f32 box, f32 score, u8 scheme,
// u32 n, n x 2 x f32 landmarks, u32 length + detector name), u32 model-id length, model id, u32 dim,
// dim x f32, u32 error length, error. Unknown versions are refused (kUnsupportedFormat), truncation is
// kCorruptData.
class EmbeddingCache {
 public:
  // Loads the file if present; an absent file gives an empty cache.
  static Result<EmbeddingCache> open(const std::filesystem::path& dir, std::string config_key);
  // An empty cache that is never written (no --cache).
  static EmbeddingCache in_memory(std::string config_key);

  const ImageEmbedding* find(const std::filesystem::path& image, std::uint64_t size, std::int64_t mtime_ns) const;
  void put(const std::filesystem::path& image, std::uint64_t size, std::int64_t mtime_ns, ImageEmbedding value);
  // Atomic replace (write to a temporary file, then rename). No-op for in_memory().
  Status save() const;
  std::size_t size() const { return entries_.size(); }
  const std::filesystem::path& file() const { return file_; }
  const std::string& config_key() const { return key_; }

 private:
  struct Entry {
    std::uint64_t size = 0;
    std::int64_t mtime_ns = 0;
    ImageEmbedding value;
  };
  std::filesystem::path file_;
  std::string key_;
  std::unordered_map<std::string, Entry> entries_;
};

struct VerifyConfig {
  PipelineOptions pipeline{};
  bool flip = false;      // also embed the mirrored face and average the two templates
  bool fallback = true;   // canvas SSD -> BlazeFace -> centre crop when the detector finds nothing
  // LFW-style centred subjects: a stage's face counts only if its centre lies within 0.15 of the image side
  // of the reference centre; otherwise the next stage is tried (a background face or a false detection at
  // the edge is not the subject). Off: the nearest face to the centre of the first stage that finds any.
  bool centred_subject = true;
  int threads = 2;        // worker threads, one Pipeline each
};

// A stable text form of everything that changes an embedding (the cache key).
std::string config_key(const VerifyConfig& config);
// The same for the face found in an image (detector and fallback only).
std::string detection_key(const VerifyConfig& config);

struct EmbeddedSet {
  std::unordered_map<std::string, ImageEmbedding> by_path;  // key: path.string()
  int counts[5] = {0, 0, 0, 0, 0};                          // per FaceSource
  int cache_hits = 0;
  int computed = 0;
  double seconds = 0.0;  // wall time spent embedding (not loading the cache)
};

// Called from worker threads (serialised by a mutex) after each computed image: (done, total).
using Progress = std::function<void(int done, int total)>;

// Embed each image once, using and updating the cache (and, when given, a face cache opened with
// detection_key(config): a hit there skips detection). Errors: kModelError when the pipeline cannot be made,
// kInvalidArgument for a bad config. A per-image failure is not an error: it is recorded as kFailed (and not
// cached, so that the next run tries again).
Result<EmbeddedSet> embed_images(const ModelPack& pack, std::span<const std::filesystem::path> images,
                                 const VerifyConfig& config, EmbeddingCache& cache, EmbeddingCache* faces = nullptr,
                                 const Progress& progress = {});

// The distance of every pair (compare()); pairs with a failed image get +infinity (predicted different).
// kNotFound if an image of the list is missing from the set.
Result<std::vector<ScoredPair>> score_pairs(const PairList& pairs, const EmbeddedSet& set);

// ---------------------------------------------------------------------------------------------------
// Stage timing (`faceguard bench`)
// ---------------------------------------------------------------------------------------------------

struct BenchOptions {
  std::vector<std::filesystem::path> images;  // empty: the model pack's sample photos
  int repeats = 10;
  int warmup = 2;
  int threads = 1;  // OpenCV threads per net (cv::setNumThreads)
  std::vector<int> batches{1, 16};
  bool end_to_end = true;
};

struct StageTiming {
  std::string stage;   // "decode", "detect/ssd", "embed/b16", "opencv-dnn/ssd", ...
  std::string unit;    // "ms/image", "ms/face", "ms/pair"
  int samples = 0;
  double median_ms = 0.0;
  double min_ms = 0.0;
  double max_ms = 0.0;
  double cpu_median_ms = 0.0;  // process CPU time per call (all threads): what the stage costs when the
                               // machine is shared and wall time includes waiting for a core
};

// A benchmark checks its own answers (STYLE.md habit 11): a timing of a wrong result is worthless.
struct BenchCheck {
  std::string what;
  bool ok = false;
  std::string detail;
};

struct BenchReport {
  std::vector<StageTiming> stages;
  std::vector<BenchCheck> checks;
  int images = 0;
  int faces = 0;  // faces found by SSD over the images (used for the per-face stages)
  int threads = 1;
  std::string image_size;  // e.g. "1920x1080" of the first image
};

// median / min / max of a wall-time sample and the median of a CPU-time sample (unsorted input).
// Zeros for an empty sample.
StageTiming summarise(std::string stage, std::string unit, std::vector<double> samples_ms,
                      std::vector<double> cpu_samples_ms = {});

Result<BenchReport> run_bench(const ModelPack& pack, const BenchOptions& options);

// ---------------------------------------------------------------------------------------------------
// Detection accuracy on a PASCAL VOC folder (`faceguard eval detect`)
// ---------------------------------------------------------------------------------------------------
//
//   auto set = faceguard::eval::load_voc_folder("detection-masks");   // annotations/*.xml + images/
//   auto run = faceguard::eval::run_detector(*pack, set->images, {.detector = "ssd"});
//   auto ev = faceguard::eval::evaluate_detections(set->images, run->detections, {.operating_score = 0.5f});
//   ev->overall.ap;  ev->by_size[0].recall;  ev->truth_match[i][j];   // per ground-truth box
//
// Protocol (PASCAL VOC, IoU 0.5): every class name counts as "face"; the detections of the whole set are
// sorted by descending score (ties: image order, then the detector's order) and each in turn is matched
// greedily to the highest-IoU ground-truth box of its image that is not yet matched, if that IoU is >= the
// threshold; a detection with no such box (a second detection of a face included) is a false positive.
// "difficult" boxes are ignored: a detection matched to one counts neither way, and they are not in the
// recall. AP is the area under the interpolated precision/recall curve with ALL-POINT interpolation (VOC
// 2010 onwards: precision made monotone from the right, summed over every recall step), not VOC 2007's
// 11-point mean. Precision and recall are also given at an operating score (the detector's own threshold).
// Size buckets follow COCO's area ranges on the box side sqrt(w*h): small < 32 px, medium 32-96, large
// > 96. Within a bucket, truth boxes of the other buckets are ignored like difficult ones, and an unmatched
// detection counts as a false positive only when its own side lies in the bucket (COCO's rule).

struct TruthBox {
  Box box;  // x = xmin, y = ymin, width = xmax - xmin, height = ymax - ymin of the annotation
  std::string label;
  bool difficult = false;
};

struct DetectionImage {
  std::filesystem::path image;
  std::string name;  // the annotation's file stem
  int width = 0;     // from the annotation (0 when it gives none)
  int height = 0;
  std::vector<TruthBox> truth;
};

struct DetectionSet {
  std::vector<DetectionImage> images;  // in file-name order
  int boxes = 0;                       // truth boxes kept (difficult ones included)
  int difficult = 0;
  int degenerate = 0;                  // boxes with xmax <= xmin or ymax <= ymin: dropped, counted here
};

// dir/annotations/<stem>.xml, each with its image dir/images/<stem>.{png,jpg,jpeg,bmp,webp} (the XML's own
// <filename> is not trusted: SOURCE.md of the masks set says .jpg where the files are .png; it is tried
// last). max_images > 0 keeps the first N in file-name order. kNotFound for a missing folder or image,
// kCorruptData (naming the file) for a malformed annotation, kInvalidArgument for an empty folder.
Result<DetectionSet> load_voc_folder(const std::filesystem::path& dir, int max_images = 0);

enum class FaceSize : std::uint8_t { kSmall = 0, kMedium = 1, kLarge = 2 };
inline constexpr int kFaceSizes = 3;
inline constexpr float kSmallFaceSide = 32.f;  // COCO: small area < 32^2
inline constexpr float kLargeFaceSide = 96.f;  // COCO: large area > 96^2
std::string_view to_string(FaceSize size);     // "small", "medium", "large"
FaceSize face_size(const Box& box);            // by sqrt(width * height)

struct ScoredBox {
  Box box;
  float score = 0.f;
};

struct PrPoint {
  float score = 0.f;  // the score of the detection that adds this point
  double precision = 0.0;
  double recall = 0.0;
};

struct DetectionMetrics {
  int truths = 0;           // truth boxes in the recall (not difficult, in the bucket)
  int detections = 0;       // counted detections at the operating score (not ignored)
  int true_positives = 0;   // at the operating score
  int false_positives = 0;  // at the operating score
  double precision = 0.0;   // TP / (TP + FP) at the operating score; 0 when there are none
  double recall = 0.0;      // TP / truths at the operating score; 0 when there are no truths
  double ap = 0.0;          // all-point interpolated AP over every detection given; 0 when no truths
  std::vector<PrPoint> curve;  // one point per counted detection, by descending score
};

struct MatchOptions {
  double iou = 0.5;
  float operating_score = 0.5f;  // precision/recall (and truth_match's "found") at score >= this
};

struct DetectionEvaluation {
  DetectionMetrics overall;
  std::array<DetectionMetrics, kFaceSizes> by_size{};  // indexed by FaceSize
  // Per image, per truth box: the score of the detection it was matched to in the overall evaluation, or
  // -1 when none was (a miss at every score; difficult boxes are always -1). Found at the operating score
  // when >= operating_score: the matching is greedy by score, so it is the same at every threshold.
  std::vector<std::vector<float>> truth_match;
};

// detections[i]: the boxes found on images[i], in any order. kInvalidArgument if the sizes differ or the
// IoU threshold is not in (0, 1].
Result<DetectionEvaluation> evaluate_detections(std::span<const DetectionImage> images,
                                                std::span<const std::vector<ScoredBox>> detections,
                                                const MatchOptions& options = {});

// All-point interpolated AP of a precision/recall curve given in descending-score order (VOC 2010+).
double average_precision(std::span<const PrPoint> curve);

// "ssd", "tiny", "blazeface", "blazeface-front" (detector.hpp) and "cascade": SSD, then - on an image where
// SSD finds no face at its threshold - SSD on the image centred on a 2x black canvas, then the BlazeFace
// back model, as the fallback chain of embed_images() (VerifyConfig::fallback) but keeping every face of the
// stage that found one rather than choosing the subject.
std::vector<std::string> detection_eval_detectors();

struct DetectRunOptions {
  std::string detector = "ssd";  // one of detection_eval_detectors()
  // Detections down to this score are kept for the precision/recall curve (VOC scores every detection; the
  // floor only bounds the list). Precision/recall are read at the detector's own threshold.
  float score_floor = 0.05f;
  int threads = 2;  // worker threads, one detector each (OpenCV runs single-threaded in each)
};

struct DetectRun {
  std::string detector;
  float operating_score = 0.5f;  // the detector's default threshold (detector.hpp)
  std::vector<std::vector<ScoredBox>> detections;  // per image
  std::vector<double> ms;        // per image: wall time of the detection call(s), decoding excluded
  double seconds = 0.0;          // wall time of the whole run, decoding included
  int threads = 1;
  std::vector<std::string> errors;  // "<image>: <message>" for images that could not be read (no boxes)
  std::array<int, 4> cascade_stage{};  // cascade only: images answered by SSD, canvas SSD, BlazeFace, none
};

// Runs one detector over every image. kInvalidArgument for an unknown detector, a bad floor or thread
// count; kModelError when the detector cannot be created. An unreadable image is not an error: it is listed
// in errors and has no detections (its faces count as misses).
Result<DetectRun> run_detector(const ModelPack& pack, std::span<const DetectionImage> images,
                               const DetectRunOptions& options, const Progress& progress = {});

struct MissSheetOptions {
  int tile = 72;          // tile side in pixels
  int columns = 16;
  int max_tiles = 480;    // the largest misses first (small misses are expected and least informative)
  double context = 0.35;  // margin around the box, as a fraction of its longer side
};

// A contact sheet of the truth faces a run missed at the operating score: each crop with its box in red and
// its side in pixels, largest first. Reads the images again. kInvalidArgument if the evaluation does not
// belong to the images; an empty (0x0) Mat when nothing was missed.
Result<cv::Mat> miss_sheet(std::span<const DetectionImage> images, const DetectionEvaluation& evaluation,
                           float operating_score, const MissSheetOptions& options = {});

}  // namespace faceguard::eval
