// faceguard/gallery.hpp - persistent, encrypted galleries of enrolled subjects and 1:N identification.
//
//   auto key = faceguard::master_key_from_env();                    // FACEGUARD_MASTER_KEY (hex or base64)
//   faceguard::GalleryOptions opt;
//   opt.master_key = *key;
//   opt.create = true; opt.model_id = embedder.model_id(); opt.dim = 128;
//   auto g = faceguard::Gallery::open("people.fgdb", opt);          // also people.fgdb.keys (the key store)
//   (*g)->enroll({"alice", "Alice A.", R"({"team":"x"})"}, templates);
//   auto who = (*g)->identify(probe, {.top_k = 5, .target_fmr = 1e-4});
//   if (who->known) use(who->candidates[0].subject_id);
//   (*g)->remove("alice");                                          // crypto-shredding + row deletion
//
// On disk a gallery is two SQLite files (WAL mode): the gallery file holds subject ids and ciphertext only;
// the key store (<path>.keys) holds each subject's data key, wrapped by the operator's master key. The master
// key is never stored; a keyed check value makes a wrong key a kPermissionDenied error. Deleting a subject
// destroys its wrapped key, so an older copy of the gallery file cannot bring the subject back (see
// docs/gallery.md for the design and its limits).
//
// Thread safety: one Gallery may be shared by threads; reads (identify, list, show, stats) run concurrently,
// writes are serialised. Several processes may open the same gallery: many readers and one writer at a time
// (SQLite WAL + busy timeout); a reader picks up other processes' changes on its next identify().
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "faceguard/result.hpp"
#include "faceguard/types.hpp"

namespace faceguard {

// A 32-byte symmetric key (master key, transfer key). Zeroed on destruction.
class SecretKey {
 public:
  static constexpr std::size_t kSize = 32;
  SecretKey() = default;
  explicit SecretKey(std::span<const std::uint8_t, kSize> bytes);
  SecretKey(const SecretKey& other);
  SecretKey& operator=(const SecretKey& other);
  ~SecretKey();
  bool empty() const { return !set_; }
  const std::uint8_t* data() const { return bytes_.data(); }

 private:
  std::array<std::uint8_t, kSize> bytes_{};
  bool set_ = false;
};

// A fresh random key (libsodium randombytes).
SecretKey generate_secret_key();
// 64 hex digits or base64 of 32 bytes (surrounding whitespace ignored). kInvalidArgument otherwise.
Result<SecretKey> parse_secret_key(std::string_view text);
// A key file holds either the 32 raw bytes or the text form above. kNotFound when absent.
Result<SecretKey> load_secret_key(const std::filesystem::path& key_file);
// From an environment variable (text form). kNotFound when unset or empty.
Result<SecretKey> master_key_from_env(const char* variable = "FACEGUARD_MASTER_KEY");
// Hex text of the key (for `gallery keygen`).
std::string secret_key_to_hex(const SecretKey& key);

// Which vector index answers identify().
enum class IndexKind {
  kAuto,   // kFlat up to GalleryOptions::scan8_above templates, kScan8 above (kIvf above ivf_above, if set)
  kFlat,   // FAISS exact inner-product scan (float32)
  kScan8,  // exhaustive 8-bit scalar-quantized scan, best candidates re-ranked exactly in float32
  kHnsw,   // FAISS IndexHNSWFlat (approximate; built on open, which takes a while at 1M)
  kIvf,    // inverted lists (FAISS k-means, ~4 sqrt(n) lists) of 8-bit codes, re-ranked exactly (approximate)
};
std::string_view to_string(IndexKind kind);

struct GalleryOptions {
  SecretKey master_key;              // required
  bool create = false;               // create a new gallery; kConflict when the file already exists
  bool read_only = false;
  std::string model_id;              // required with create; when opening, non-empty must match the gallery
  int dim = 0;                       // template size; required with create
  std::filesystem::path key_store;   // default: <path>.keys
  IndexKind index = IndexKind::kAuto;
  std::size_t scan8_above = 100'000;  // kAuto switches from kFlat to kScan8 above this many templates
  int hnsw_m = 32;                   // FAISS HNSW graph degree
  int hnsw_ef_construction = 80;
  int hnsw_ef_search = 128;
  std::size_t ivf_above = 0;         // kAuto switches to kIvf above this many templates; 0: never
  std::size_t ivf_nlist = 0;         // kIvf lists; 0: ~4 sqrt(templates), retrained as the gallery grows 4x
  std::size_t ivf_nprobe = 0;        // kIvf lists probed per query; 0: 3 nlist^(2/3) (756 of 4,000 lists at 1M)
  int busy_timeout_ms = 5000;        // how long a writer waits for another process's write to finish
  std::uint64_t max_bytes = 0;       // >0: refuse to grow the gallery file beyond this (quota); kIoError
  int threads = 0;                   // search threads; 0: hardware concurrency
};

struct SubjectInput {
  std::string subject_id;           // 1-128 chars of [A-Za-z0-9._:@-]; stored in clear: use a pseudonym
  std::string display_name;         // encrypted with the subject's key
  std::string metadata_json = "{}";  // a JSON object; encrypted with the subject's key
};

struct TemplateInput {
  Embedding embedding;
  std::string source_sha256;                // hex SHA-256 of the source image bytes (never the image)
  std::optional<std::int64_t> retain_until;  // unix seconds; for the retention policy layer
  std::string consent_id;                   // the consent record this template was collected under
};

struct TemplateInfo {
  std::int64_t id = 0;
  std::string model_id;
  std::int64_t created_at = 0;  // unix seconds
  std::string source_sha256;
  std::optional<std::int64_t> retain_until;
  std::string consent_id;
};

struct SubjectInfo {
  std::string subject_id;
  std::string display_name;
  std::string metadata_json;
  std::int64_t created_at = 0;
  std::vector<TemplateInfo> templates;
};

struct EnrollResult {
  std::string subject_id;
  bool created = false;  // false: templates were added to an existing subject
  std::vector<std::int64_t> template_ids;
};

struct DeleteReport {
  std::string subject_id;
  int templates_deleted = 0;
  bool key_destroyed = false;  // the wrapped data key was overwritten and deleted from the key store
  bool wal_truncated = false;  // both WAL files were checkpointed and truncated (false while readers hold
                               // old snapshots; the next delete or close retries)
};

// --- thresholds --------------------------------------------------------------------------------------
// Scores are cosine similarities of the templates (in [-1, 1]; higher = more alike). A threshold is chosen for
// a target false-match rate (FMR, per comparison) from a calibration table measured on impostor pairs.
struct ThresholdPoint {
  double fmr = 0;          // fraction of impostor pairs scoring >= threshold
  float threshold = 0;     // cosine similarity
  double fnmr = -1;        // fraction of genuine pairs scoring < threshold (-1: unknown)
};

struct ThresholdTable {
  std::string model_id;
  std::string metric = "cosine";
  std::string source;  // what data it was measured on, e.g. "LFW View 1 pairsDevTrain.txt"
  std::size_t genuine_pairs = 0;
  std::size_t impostor_pairs = 0;
  std::vector<ThresholdPoint> points;  // sorted by decreasing fmr (increasing threshold)
  bool calibrated = true;  // false: one point from the model's documented 1:1 threshold, FMR unknown
  // Uncalibrated Euclidean models (dlib): the documented distance threshold. The gallery turns it into a cosine
  // at its templates' mean norm (|a-b|^2 = 2n^2(1 - cos)), as dlib templates are not unit vectors. -1: none.
  float euclidean_threshold = -1.f;

  // Log-linear interpolation between points; kInvalidArgument for fmr outside (0,1), kNotFound when the
  // table cannot resolve it (fmr below 1/impostor_pairs is not measurable and is refused). An uncalibrated
  // table answers its single threshold for every fmr.
  Result<float> threshold_for(double fmr) const;
};

// Build a table from measured scores (genuine: same person, impostor: different people).
Result<ThresholdTable> calibrate_threshold(std::string model_id, std::span<const float> genuine,
                                           std::span<const float> impostor, std::string source);
// Versioned JSON ("faceguard-threshold-table", version 1); unknown versions -> kUnsupportedFormat.
std::string threshold_table_to_json(const ThresholdTable& table);
Result<ThresholdTable> threshold_table_from_json(std::string_view json);
// Used when a gallery has no calibration: one point from the model's documented 1:1 threshold, marked
// "uncalibrated" in `source`. For dlib's 0.6 Euclidean threshold the point holds the unit-vector cosine
// 1 - 0.6^2/2 and euclidean_threshold = 0.6, which identify() rescales to the gallery's mean template norm.
ThresholdTable default_threshold_table(const std::string& model_id);

// --- identification -----------------------------------------------------------------------------------
struct IdentifyOptions {
  int top_k = 5;
  double target_fmr = 1e-3;  // per-comparison false-match rate the threshold is chosen for
  std::optional<float> threshold;  // overrides target_fmr
};

struct Candidate {
  std::string subject_id;
  std::string display_name;
  float score = 0;             // best cosine similarity over the subject's templates
  float distance = 0;          // Euclidean distance between the raw templates of that best pair
  std::int64_t template_id = 0;
};

struct Identification {
  std::vector<Candidate> candidates;  // best first, at most top_k; includes candidates below threshold
  bool known = false;                 // candidates[0].score >= threshold
  float threshold = 0;
  double fmr = 0;                     // the per-comparison FMR the threshold stands for
  double expected_false_alarm = 0;    // 1 - (1 - fmr)^subjects: chance an unenrolled face matches someone
  std::string threshold_source;
};

struct GalleryStats {
  std::string path;
  std::string model_id;
  int dim = 0;
  int schema_version = 0;
  std::size_t subjects = 0;
  std::size_t templates = 0;
  std::size_t unrecoverable_subjects = 0;  // rows whose key is gone (e.g. an old backup restored)
  std::size_t orphan_keys_purged = 0;
  IndexKind index = IndexKind::kFlat;
  double open_seconds = 0;
  std::uint64_t file_bytes = 0;
  std::uint64_t key_store_bytes = 0;
  std::size_t index_bytes = 0;
  std::string calibration_source;
};

struct TransferReport {
  std::size_t subjects = 0;
  std::size_t templates = 0;
  std::size_t skipped = 0;  // import: subjects already present (with skip_existing)
};

struct ImportOptions {
  bool skip_existing = false;  // false: any subject already present -> kConflict before anything is written
};

class Gallery {
 public:
  static Result<std::unique_ptr<Gallery>> open(const std::filesystem::path& path, const GalleryOptions& options);
  ~Gallery();

  const std::string& model_id() const;
  int dim() const;

  // One transaction per call: a subject appears with all of these templates or not at all. An existing
  // subject gets the templates added (its name and metadata are kept). kInvalidArgument for another model's
  // templates, a wrong size, non-finite values, a bad id or metadata that is not a JSON object.
  Result<EnrollResult> enroll(const SubjectInput& subject, std::span<const TemplateInput> templates);
  // Bulk enrolment: every subject of the batch in one transaction (all or none), far faster than one
  // transaction per subject when loading many (each commit is fsynced).
  struct Enrolment {
    SubjectInput subject;
    std::vector<TemplateInput> templates;
  };
  Result<std::vector<EnrollResult>> enroll_batch(std::span<const Enrolment> batch);

  Result<Identification> identify(const Embedding& probe, const IdentifyOptions& options = {});
  Result<std::vector<Identification>> identify_batch(std::span<const Embedding> probes,
                                                      const IdentifyOptions& options = {});

  Result<std::vector<SubjectInfo>> list();                // without template details
  Result<SubjectInfo> show(const std::string& subject_id);
  // The decrypted template (for export tooling and tests).
  Result<std::vector<float>> template_values(std::int64_t template_id);
  Result<DeleteReport> remove(const std::string& subject_id);
  // Erase one template (retention, consent revocation). Its ciphertext is overwritten (secure_delete); when
  // it is the subject's last template the whole subject goes, and its data key is destroyed as in remove().
  Result<DeleteReport> remove_template(std::int64_t template_id);

  // Export file: versioned, SHA-256 checksummed, encrypted (libsodium secretstream) with transfer_key;
  // templates are decrypted with the master key and re-encrypted for transfer, and re-encrypted under the
  // importing gallery's keys on import.
  Result<TransferReport> export_to(const std::filesystem::path& file, const SecretKey& transfer_key);
  Result<TransferReport> import_from(const std::filesystem::path& file, const SecretKey& transfer_key,
                                     const ImportOptions& options = {});

  Status set_calibration(const ThresholdTable& table);
  ThresholdTable calibration() const;
  Result<GalleryStats> stats();
  // Apply other processes' committed changes to the in-memory index (identify() does this by itself).
  Status refresh();

 private:
  struct Impl;
  explicit Gallery(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace faceguard
