// Internal: the persistent half of a gallery - two SQLite files and the protocol that keeps them in step.
//
//   <path>        schema_version, meta (uuid, model, dim, key check value, calibration), subjects (clear
//                 subject id + random key id + encrypted profile), templates (clear provenance + sealed
//                 values), deleted_templates (tombstones so other processes can follow deletions)
//   <path>.keys   schema_version, meta (gallery uuid), subject_keys (key id -> data key wrapped by the KEK)
//
// Ordering protocol (the two files cannot share an atomic commit in WAL mode):
//   enrol : take the gallery write lock (BEGIN IMMEDIATE) -> commit the new wrapped key -> insert rows -> commit.
//   delete: delete rows + tombstones -> commit -> overwrite and delete the wrapped key -> checkpoint both.
// A crash between the two commits leaves at worst a key with no rows ("orphan"), never rows with no key;
// orphans are purged on the next writable open while holding the gallery write lock, so no enrolment can be
// between its two commits at that moment.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "faceguard/gallery.hpp"
#include "gallery/sqlite_db.hpp"

namespace faceguard::gallery {

constexpr int kSchemaVersion = 1;
constexpr int kKeyStoreSchemaVersion = 1;

struct LoadedTemplate {
  std::int64_t id = 0;
  std::int64_t subject = 0;  // subjects.id (row id)
  std::vector<float> values;
};

struct StoreDelta {
  std::vector<LoadedTemplate> added;
  std::vector<std::int64_t> removed;  // template ids
};

struct EnrollItem {
  SubjectInput subject;
  std::span<const TemplateInput> templates;
};

struct StoreCounts {
  std::size_t subjects = 0;
  std::size_t templates = 0;
  std::size_t unrecoverable_subjects = 0;
};

class Store {
 public:
  static Result<std::unique_ptr<Store>> open(const std::filesystem::path& path, const GalleryOptions& options);
  ~Store();

  const std::string& model_id() const { return model_id_; }
  int dim() const { return dim_; }
  const std::string& uuid() const { return uuid_; }
  const std::filesystem::path& path() const { return path_; }
  const std::filesystem::path& key_store_path() const { return key_path_; }
  std::size_t orphan_keys_purged() const { return orphans_purged_; }

  // Templates committed (by anyone) since the previous call, and template ids deleted since then.
  // The first call returns every template whose subject key is present.
  Result<StoreDelta> read_changes();
  // True when another connection committed since the last read_changes().
  Result<bool> changed_elsewhere();

  Result<EnrollResult> enroll(const SubjectInput& subject, std::span<const TemplateInput> templates,
                              std::vector<LoadedTemplate>* added);
  // Several subjects in one transaction on each file (bulk loads, import): all of them or none.
  Result<std::vector<EnrollResult>> enroll_batch(std::span<const EnrollItem> items, std::vector<LoadedTemplate>* added);
  Result<DeleteReport> remove(const std::string& subject_id, std::vector<std::int64_t>* removed);
  // One template. The subject's last template takes the subject (and its key) with it.
  Result<DeleteReport> remove_template(std::int64_t template_id, std::vector<std::int64_t>* removed);

  Result<std::vector<SubjectInfo>> list();
  Result<SubjectInfo> show(const std::string& subject_id);
  Result<std::vector<float>> template_values(std::int64_t template_id);
  // From the in-memory subject cache filled by read_changes(); empty when unknown.
  std::string subject_id_of(std::int64_t subject_row) const;
  Result<std::string> display_name_of(std::int64_t subject_row);

  // Every readable subject with its decrypted templates, in subject order (export).
  Status for_each_subject(
      const std::function<Status(const SubjectInfo&, const std::vector<std::vector<float>>&)>& fn);
  Result<bool> subject_exists(const std::string& subject_id);

  Result<std::optional<std::string>> get_meta(const std::string& key);
  Status set_meta(const std::string& key, const std::string& value);
  Result<StoreCounts> counts();

 private:
  struct SubjectKey {
    std::string subject_id;
    std::string key_uuid;
    SecretKey key;
  };
  Store() = default;
  Status create_schema(const GalleryOptions& options);
  Status validate(const GalleryOptions& options);
  Status configure(Database& db, const GalleryOptions& options);
  Status purge_orphan_keys();
  // Load (and cache) a subject's data key; kPermissionDenied when its wrapped key is gone.
  Result<const SubjectKey*> subject_key(std::int64_t subject_row);
  Result<SubjectInfo> read_subject(std::int64_t subject_row, bool with_templates);
  Status checkpoint(bool* truncated);

  std::filesystem::path path_;
  std::filesystem::path key_path_;
  std::unique_ptr<Database> db_;
  std::unique_ptr<Database> keys_;
  SecretKey kek_;
  std::string uuid_;
  std::string model_id_;
  int dim_ = 0;
  bool read_only_ = false;
  std::size_t orphans_purged_ = 0;
  std::int64_t last_template_id_ = 0;
  std::int64_t last_tombstone_seq_ = 0;
  std::int64_t data_version_ = -1;
  std::unordered_map<std::int64_t, SubjectKey> keys_cache_;
};

// Subject ids are 1-128 characters of [A-Za-z0-9._:@-].
bool valid_subject_id(std::string_view id);

}  // namespace faceguard::gallery
