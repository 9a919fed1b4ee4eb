// faceguard/audit.hpp - the tamper-evident audit trail.
//
//   faceguard::generate_audit_key("audit.key");                       // once: audit.key + audit.key.pub
//   auto log = faceguard::AuditLog::open("audit.jsonl", {.signing_key = "audit.key"});
//   auto seq = log->append("decision", R"({"operation":"identify", ...})");
//   auto report = faceguard::verify_audit_log("audit.jsonl", "audit.key.pub");
//   if (!report->ok) for (auto& i : report->issues) std::cerr << "line " << i.line << ": " << i.what;
//
// Format (docs/policy.md, "Audit trail"): JSON lines, one record per line, canonical (sorted keys, no
// spaces):  {"body":{...},"hash":"<hex>","kind":"decision","prev":"<hex>","seq":7,"time":"...Z"}
// hash = BLAKE2b-256 (libsodium crypto_generichash) of the record's canonical JSON without "hash"; prev is the
// previous record's hash (64 zeros for the first). Every `checkpoint_every` records a "checkpoint" record
// carries an Ed25519 signature (libsodium crypto_sign_detached) over the sequence number and the hash chain
// head, and "<log>.head" holds the signed latest (seq, hash) so a cut-off tail is detected too.
// Records never hold a template or an image: callers pass summaries (ids, scores, hashes).
//
// Thread safety / processes: append() takes an exclusive flock() on the file for the read-tail + write +
// fsync, so any number of threads and processes may append to one log. Readers need no lock.
#pragma once

#include <cstdint>
#include <filesystem>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "faceguard/result.hpp"

namespace faceguard {

struct AuditOptions {
  std::filesystem::path signing_key;  // Ed25519 secret key file; empty: no signed checkpoints
  int checkpoint_every = 64;          // records between signed checkpoints (>= 1)
  bool sync = true;                   // fsync after every append (off only in benchmarks)
  // Group commit by a background thread of this log: it fdatasyncs whatever has been written as soon as it
  // can, so a kDeferred record is on disk about one fdatasync after it was written, without its writer
  // waiting; kNow appends and sync_through() wait for that thread instead of syncing themselves, so the
  // fdatasyncs of concurrent writers merge. A record's fdatasync can then overlap the work that follows it
  // (the service: a decision record's with the inference it allows). An fdatasync failure is sticky: every
  // later kNow append and sync_through() returns it. For long-lived processes (the service).
  bool group_commit = false;
};

struct AuditRecord {
  std::uint64_t seq = 0;
  std::string time;       // UTC, ISO 8601 with milliseconds
  std::string kind;       // decision, result, outcome, review, consent, erasure, checkpoint, ...
  std::string prev;
  std::string hash;
  std::string body_json;  // canonical JSON object
  std::size_t line = 0;   // 1-based line in the file
};

class AuditLog {
 public:
  // Creates the file when absent. kCorruptData when its last line is torn (run `faceguard audit verify`);
  // kPermissionDenied / kInvalidArgument for an unreadable or malformed key file.
  static Result<AuditLog> open(const std::filesystem::path& path, const AuditOptions& options = {});

  AuditLog(AuditLog&&) noexcept;
  AuditLog& operator=(AuditLog&&) noexcept;
  ~AuditLog();

  // Appends one record; body_json must be a JSON object. Returns its seq. Durable (fsync) on return.
  Result<std::uint64_t> append(const std::string& kind, const std::string& body_json);
  // kDeferred: the record is written (a killed process loses nothing, the head file covers it) but reaches
  // the disk with the next kNow append or sync_through(), one fdatasync then covering both; with
  // group_commit, by the background thread shortly after.
  enum class Sync { kNow, kDeferred };
  Result<std::uint64_t> append(const std::string& kind, const std::string& body_json, Sync when);
  // Makes every record up to `seq` durable: fdatasync unless a later synced append already did (with
  // group_commit: waits for the background thread's). Returns at once when sync is off.
  Status sync_through(std::uint64_t seq);
  // Writes a signed checkpoint now (kInvalidArgument without a signing key).
  Result<std::uint64_t> checkpoint();
  // All records, parsed (no integrity check: that is verify_audit_log()).
  Result<std::vector<AuditRecord>> read_all() const;
  const std::filesystem::path& path() const;

 private:
  struct Impl;
  explicit AuditLog(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

struct AuditIssue {
  std::size_t line = 0;  // 1-based; 0 when it concerns the file as a whole (e.g. the head file)
  std::string what;
};

struct AuditVerifyReport {
  bool ok = false;
  std::uint64_t records = 0;
  std::uint64_t checkpoints = 0;
  std::uint64_t checkpoints_verified = 0;  // signature checked against the given public key
  std::uint64_t last_seq = 0;
  bool head_checked = false;               // "<log>.head" present and consistent
  std::vector<AuditIssue> issues;          // empty when ok
};

// Detects an edited, removed, inserted or reordered record, a torn or cut-off tail and a forged checkpoint,
// and names the line. Without a public key the chain is still checked but signatures are not (reported as an
// issue only when `require_signatures`). An I/O failure is an error; tampering is a report with ok == false.
Result<AuditVerifyReport> verify_audit_log(const std::filesystem::path& log,
                                           const std::filesystem::path& public_key = {},
                                           bool require_signatures = false);

// Creates an Ed25519 key pair: `secret_key` (mode 0600, hex) and `secret_key` + ".pub" (hex).
// kConflict when the file exists and !overwrite.
Status generate_audit_key(const std::filesystem::path& secret_key, bool overwrite = false);

struct AuditExportOptions {
  std::string from;  // ISO 8601 bounds on record time (inclusive); empty: unbounded
  std::string to;
};

// Writes one JSON object per line for an auditor: every record (seq, time, kind, body) and, for each search
// result, the EU AI Act Art. 12(3) fields: period_of_use {start, end}, reference_database, input_data,
// verified_by (the people who confirmed each match). Returns the number of lines written.
Result<std::size_t> export_audit_log(const std::filesystem::path& log, std::ostream& out,
                                     const AuditExportOptions& options = {});

}  // namespace faceguard
