// Gallery: the store (SQLite, encryption) and the in-memory index kept in step, plus open-set identification.
#include "faceguard/gallery.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>
#include <unordered_set>

#include "gallery/crypto.hpp"
#include "gallery/index.hpp"
#include "gallery/store.hpp"
#include "gallery/transfer.hpp"

namespace faceguard {

namespace fs = std::filesystem;
using gallery::Hit;
using gallery::StoreDelta;

std::string_view to_string(IndexKind kind) {
  switch (kind) {
    case IndexKind::kAuto: return "auto";
    case IndexKind::kFlat: return "flat";
    case IndexKind::kScan8: return "scan8";
    case IndexKind::kHnsw: return "hnsw";
    case IndexKind::kIvf: return "ivf";
  }
  return "auto";
}

struct Gallery::Impl {
  std::unique_ptr<gallery::Store> store;
  std::unique_ptr<gallery::TemplateIndex> index;
  std::unordered_map<std::int64_t, std::int64_t> template_subject;  // template id -> subject row
  std::unordered_map<std::int64_t, std::size_t> subject_templates;  // subject row -> live templates
  ThresholdTable calibration;
  double norm2_sum = 0;  // sum of squared raw template norms (uncalibrated Euclidean thresholds)
  double open_seconds = 0;
  std::mutex db_mutex;               // the SQLite connections are used by one thread at a time
  mutable std::shared_mutex index_mutex;  // search shared; applying changes exclusive

  // Needs index_mutex exclusively.
  void apply_added(std::vector<gallery::LoadedTemplate>& added) {
    for (auto& t : added) {
      if (index->contains(t.id)) continue;
      if (!index->add(t.id, t.values)) continue;
      norm2_sum += static_cast<double>(index->raw_norm(t.id)) * index->raw_norm(t.id);
      template_subject[t.id] = t.subject;
      ++subject_templates[t.subject];
      std::fill(t.values.begin(), t.values.end(), 0.f);
    }
  }
  void apply_removed(const std::vector<std::int64_t>& removed) {
    for (auto id : removed) {
      auto it = template_subject.find(id);
      if (it == template_subject.end()) continue;
      auto st = subject_templates.find(it->second);
      if (st != subject_templates.end() && --st->second == 0) subject_templates.erase(st);
      template_subject.erase(it);
      norm2_sum -= static_cast<double>(index->raw_norm(id)) * index->raw_norm(id);
      index->remove(id);
    }
  }
  void apply(StoreDelta& d) {
    std::unique_lock lock(index_mutex);
    apply_added(d.added);
    apply_removed(d.removed);
  }

  Status refresh_if_changed() {
    StoreDelta d;
    {
      std::lock_guard lock(db_mutex);
      FG_ASSIGN_OR_RETURN(bool changed, store->changed_elsewhere());
      if (!changed) return ok_status();
      FG_ASSIGN_OR_RETURN(d, store->read_changes());
    }
    apply(d);
    return ok_status();
  }

  void prepare_index() {
    {
      std::shared_lock lock(index_mutex);
      if (!index->needs_prepare()) return;
    }
    std::unique_lock lock(index_mutex);
    index->prepare();
  }
};

Gallery::Gallery(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Gallery::~Gallery() = default;

Result<std::unique_ptr<Gallery>> Gallery::open(const fs::path& path, const GalleryOptions& options) {
  try {
    const auto start = std::chrono::steady_clock::now();
    auto impl = std::make_unique<Impl>();
    FG_ASSIGN_OR_RETURN(impl->store, gallery::Store::open(path, options));
    gallery::IndexConfig cfg;
    cfg.kind = options.index;
    cfg.scan8_above = options.scan8_above;
    cfg.hnsw_m = options.hnsw_m;
    cfg.hnsw_ef_construction = options.hnsw_ef_construction;
    cfg.hnsw_ef_search = options.hnsw_ef_search;
    cfg.ivf_above = options.ivf_above;
    cfg.ivf_nlist = options.ivf_nlist;
    cfg.ivf_nprobe = options.ivf_nprobe;
    cfg.threads = options.threads;
    impl->index = std::make_unique<gallery::TemplateIndex>(impl->store->dim(), cfg);
    FG_ASSIGN_OR_RETURN(StoreDelta d, impl->store->read_changes());
    impl->apply(d);
    impl->index->prepare();
    FG_ASSIGN_OR_RETURN(auto cal, impl->store->get_meta("calibration"));
    if (cal) {
      FG_ASSIGN_OR_RETURN(impl->calibration, threshold_table_from_json(*cal));
    } else {
      impl->calibration = default_threshold_table(impl->store->model_id());
    }
    impl->open_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return std::unique_ptr<Gallery>(new Gallery(std::move(impl)));
  } catch (const std::bad_alloc&) {
    return make_error(ErrorCode::kUnavailable, "out of memory opening " + path.string());
  } catch (const std::exception& e) {
    return make_error(ErrorCode::kInternal, std::string("opening gallery: ") + e.what());
  }
}

const std::string& Gallery::model_id() const { return impl_->store->model_id(); }
int Gallery::dim() const { return impl_->store->dim(); }

Result<EnrollResult> Gallery::enroll(const SubjectInput& subject, std::span<const TemplateInput> templates) {
  try {
    std::vector<gallery::LoadedTemplate> added;
    Result<EnrollResult> r = [&]() -> Result<EnrollResult> {
      std::lock_guard lock(impl_->db_mutex);
      return impl_->store->enroll(subject, templates, &added);
    }();
    if (!r) return r;
    std::unique_lock lock(impl_->index_mutex);
    impl_->apply_added(added);
    return r;
  } catch (const std::exception& e) {
    return make_error(ErrorCode::kInternal, std::string("enrol: ") + e.what());
  }
}

Result<std::vector<EnrollResult>> Gallery::enroll_batch(std::span<const Enrolment> batch) {
  try {
    std::vector<gallery::EnrollItem> items;
    items.reserve(batch.size());
    for (const auto& e : batch) items.push_back(gallery::EnrollItem{e.subject, e.templates});
    std::vector<gallery::LoadedTemplate> added;
    Result<std::vector<EnrollResult>> r = [&]() -> Result<std::vector<EnrollResult>> {
      std::lock_guard lock(impl_->db_mutex);
      return impl_->store->enroll_batch(items, &added);
    }();
    if (!r) return r;
    std::unique_lock lock(impl_->index_mutex);
    impl_->apply_added(added);
    return r;
  } catch (const std::exception& e) {
    return make_error(ErrorCode::kInternal, std::string("enrol: ") + e.what());
  }
}

Result<DeleteReport> Gallery::remove(const std::string& subject_id) {
  try {
    std::vector<std::int64_t> removed;
    Result<DeleteReport> r = [&]() -> Result<DeleteReport> {
      std::lock_guard lock(impl_->db_mutex);
      return impl_->store->remove(subject_id, &removed);
    }();
    // Rows may be gone even when destroying the key failed: the index follows the rows.
    {
      std::unique_lock lock(impl_->index_mutex);
      impl_->apply_removed(removed);
    }
    return r;
  } catch (const std::exception& e) {
    return make_error(ErrorCode::kInternal, std::string("delete: ") + e.what());
  }
}

Result<DeleteReport> Gallery::remove_template(std::int64_t template_id) {
  try {
    std::vector<std::int64_t> removed;
    Result<DeleteReport> r = [&]() -> Result<DeleteReport> {
      std::lock_guard lock(impl_->db_mutex);
      return impl_->store->remove_template(template_id, &removed);
    }();
    {
      std::unique_lock lock(impl_->index_mutex);
      impl_->apply_removed(removed);
    }
    return r;
  } catch (const std::exception& e) {
    return make_error(ErrorCode::kInternal, std::string("delete template: ") + e.what());
  }
}

Result<Identification> Gallery::identify(const Embedding& probe, const IdentifyOptions& options) {
  FG_ASSIGN_OR_RETURN(auto v, identify_batch(std::span<const Embedding>(&probe, 1), options));
  return std::move(v.front());
}

namespace {

// FMR a threshold stands for, by the same log-linear interpolation as threshold_for (inverse); -1 if unknown.
double fmr_for_threshold(const ThresholdTable& t, float thr) {
  if (!t.calibrated || t.points.empty()) return -1;
  if (thr <= t.points.front().threshold) return thr == t.points.front().threshold ? t.points.front().fmr : -1;
  for (std::size_t i = 1; i < t.points.size(); ++i) {
    const auto& a = t.points[i - 1];
    const auto& b = t.points[i];
    if (thr >= a.threshold && thr <= b.threshold) {
      if (b.threshold == a.threshold) return b.fmr;
      const double u = (thr - a.threshold) / (b.threshold - a.threshold);
      return std::exp(std::log(a.fmr) + u * (std::log(b.fmr) - std::log(a.fmr)));
    }
  }
  return -1;
}

}  // namespace

Result<std::vector<Identification>> Gallery::identify_batch(std::span<const Embedding> probes,
                                                            const IdentifyOptions& options) {
  try {
    if (options.top_k <= 0 || options.top_k > 1000)
      return make_error(ErrorCode::kInvalidArgument, "top_k must be in 1..1000");
    const int d = dim();
    std::vector<float> q(probes.size() * static_cast<std::size_t>(d));
    std::vector<float> qnorm(probes.size());
    for (std::size_t i = 0; i < probes.size(); ++i) {
      const auto& p = probes[i];
      if (p.model_id != model_id())
        return make_error(ErrorCode::kInvalidArgument, "probe of model '" + p.model_id +
                                                           "' cannot be searched in a gallery of '" + model_id() + "'");
      if (p.values.size() != static_cast<std::size_t>(d))
        return make_error(ErrorCode::kInvalidArgument, "probe has " + std::to_string(p.values.size()) +
                                                           " values, the gallery holds " + std::to_string(d));
      double s = 0;
      for (float f : p.values) {
        if (!std::isfinite(f)) return make_error(ErrorCode::kInvalidArgument, "probe holds a non-finite value");
        s += static_cast<double>(f) * f;
      }
      qnorm[i] = static_cast<float>(std::sqrt(s));
      std::copy(p.values.begin(), p.values.end(), q.begin() + static_cast<std::ptrdiff_t>(i * d));
      if (!gallery::normalise(std::span<float>(q.data() + i * d, static_cast<std::size_t>(d))))
        return make_error(ErrorCode::kInvalidArgument, "probe is all zeros");
    }
    FG_TRY_STATUS(impl_->refresh_if_changed());
    impl_->prepare_index();

    float threshold = 0;
    double fmr = -1;
    std::string source;
    {
      std::lock_guard lock(impl_->db_mutex);
      source = impl_->calibration.source;
      if (options.threshold) {
        threshold = *options.threshold;
        if (!std::isfinite(threshold)) return make_error(ErrorCode::kInvalidArgument, "threshold is not finite");
        fmr = fmr_for_threshold(impl_->calibration, threshold);
        source = "given by the caller";
      } else {
        FG_ASSIGN_OR_RETURN(threshold, impl_->calibration.threshold_for(options.target_fmr));
        fmr = impl_->calibration.calibrated ? options.target_fmr : -1;
        const float te = impl_->calibration.euclidean_threshold;
        std::shared_lock ilock(impl_->index_mutex);
        const std::size_t n = impl_->index->size();
        if (!impl_->calibration.calibrated && te > 0 && n > 0) {
          // |a-b|^2 = 2 n^2 (1 - cos) for two templates of norm n: the documented distance as a cosine.
          const double n2 = impl_->norm2_sum / static_cast<double>(n);
          threshold = static_cast<float>(1.0 - static_cast<double>(te) * te / (2.0 * n2));
          char buf[160];
          std::snprintf(buf, sizeof buf, "; Euclidean %.2f at the mean template norm %.3f -> cosine %.4f", te,
                        std::sqrt(n2), threshold);
          source += buf;
        }
      }
    }

    struct Best {
      std::int64_t subject;
      Hit hit;
      float raw_norm = 0;
    };
    std::vector<std::vector<Best>> best(probes.size());
    std::size_t subjects = 0;
    {
      std::shared_lock lock(impl_->index_mutex);
      subjects = impl_->subject_templates.size();
      const std::size_t total = impl_->index->size();
      const std::size_t k = static_cast<std::size_t>(options.top_k);
      // Several templates per subject: ask for more templates than subjects, and widen until k distinct
      // subjects are found (every template of a subject not yet seen scores below all hits returned).
      std::size_t n = std::min(total, k * 4);
      auto hits = impl_->index->search(q.data(), probes.size(), n);
      for (std::size_t i = 0; i < probes.size(); ++i) {
        std::size_t ni = n;
        for (;;) {
          best[i].clear();
          std::unordered_set<std::int64_t> seen;
          for (const auto& h : hits[i]) {
            auto it = impl_->template_subject.find(h.id);
            if (it == impl_->template_subject.end() || !seen.insert(it->second).second) continue;
            best[i].push_back(Best{it->second, h, 0.f});
            if (best[i].size() == k) break;
          }
          if (best[i].size() == k || ni >= total) break;
          ni = std::min(total, ni * 4);
          hits[i] = std::move(impl_->index->search(q.data() + i * d, 1, ni).front());
        }
      }
      for (auto& bs : best)
        for (auto& b : bs) b.raw_norm = impl_->index->raw_norm(b.hit.id);
    }

    std::vector<Identification> out(probes.size());
    std::lock_guard lock(impl_->db_mutex);
    std::unordered_map<std::int64_t, std::string> names;
    for (std::size_t i = 0; i < probes.size(); ++i) {
      Identification& r = out[i];
      r.threshold = threshold;
      r.fmr = fmr;
      r.threshold_source = source;
      r.expected_false_alarm =
          fmr > 0 ? 1.0 - std::pow(1.0 - fmr, static_cast<double>(std::max<std::size_t>(subjects, 1))) : -1;
      for (const auto& b : best[i]) {
        Candidate c;
        c.subject_id = impl_->store->subject_id_of(b.subject);
        auto nit = names.find(b.subject);
        if (nit == names.end()) {
          auto dn = impl_->store->display_name_of(b.subject);
          nit = names.emplace(b.subject, dn ? *dn : std::string()).first;
        }
        c.display_name = nit->second;
        c.score = std::clamp(b.hit.score, -1.f, 1.f);
        // Euclidean distance of the raw templates from the cosine and both norms: |a-b|^2 = a^2 + b^2 - 2ab cos.
        const double na = qnorm[i], nb = b.raw_norm;
        c.distance = static_cast<float>(std::sqrt(std::max(0.0, na * na + nb * nb - 2.0 * na * nb * b.hit.score)));
        c.template_id = b.hit.id;
        r.candidates.push_back(std::move(c));
      }
      r.known = !r.candidates.empty() && r.candidates.front().score >= threshold;
    }
    return out;
  } catch (const std::exception& e) {
    return make_error(ErrorCode::kInternal, std::string("identify: ") + e.what());
  }
}

Result<std::vector<SubjectInfo>> Gallery::list() {
  std::lock_guard lock(impl_->db_mutex);
  return impl_->store->list();
}

Result<SubjectInfo> Gallery::show(const std::string& subject_id) {
  std::lock_guard lock(impl_->db_mutex);
  return impl_->store->show(subject_id);
}

Result<std::vector<float>> Gallery::template_values(std::int64_t template_id) {
  std::lock_guard lock(impl_->db_mutex);
  return impl_->store->template_values(template_id);
}

Status Gallery::set_calibration(const ThresholdTable& table) {
  if (table.model_id != model_id())
    return make_error(ErrorCode::kInvalidArgument, "calibration is for model '" + table.model_id +
                                                       "', the gallery holds '" + model_id() + "'");
  // Round-trip through the parser so a table that would not load again is refused now.
  const std::string json = threshold_table_to_json(table);
  FG_ASSIGN_OR_RETURN(ThresholdTable checked, threshold_table_from_json(json));
  std::lock_guard lock(impl_->db_mutex);
  FG_TRY_STATUS(impl_->store->set_meta("calibration", json));
  impl_->calibration = std::move(checked);
  return ok_status();
}

ThresholdTable Gallery::calibration() const {
  std::lock_guard lock(impl_->db_mutex);
  return impl_->calibration;
}

Result<GalleryStats> Gallery::stats() {
  GalleryStats s;
  std::lock_guard lock(impl_->db_mutex);
  FG_ASSIGN_OR_RETURN(auto c, impl_->store->counts());
  s.path = impl_->store->path().string();
  s.model_id = model_id();
  s.dim = dim();
  s.schema_version = gallery::kSchemaVersion;
  s.subjects = c.subjects;
  s.templates = c.templates;
  s.unrecoverable_subjects = c.unrecoverable_subjects;
  s.orphan_keys_purged = impl_->store->orphan_keys_purged();
  s.open_seconds = impl_->open_seconds;
  std::error_code ec;
  s.file_bytes = fs::file_size(impl_->store->path(), ec);
  s.key_store_bytes = fs::file_size(impl_->store->key_store_path(), ec);
  s.calibration_source = impl_->calibration.source;
  std::shared_lock ilock(impl_->index_mutex);
  s.index = impl_->index->active_kind();
  s.index_bytes = impl_->index->memory_bytes();
  return s;
}

Status Gallery::refresh() {
  try {
    return impl_->refresh_if_changed();
  } catch (const std::exception& e) {
    return make_error(ErrorCode::kInternal, std::string("refresh: ") + e.what());
  }
}

Result<TransferReport> Gallery::export_to(const fs::path& file, const SecretKey& transfer_key) {
  try {
    TransferReport report;
    std::lock_guard lock(impl_->db_mutex);
    FG_ASSIGN_OR_RETURN(auto w, gallery::TransferWriter::create(file, transfer_key, {model_id(), dim()}));
    FG_TRY_STATUS(impl_->store->for_each_subject(
        [&](const SubjectInfo& info, const std::vector<std::vector<float>>& values) -> Status {
          ++report.subjects;
          report.templates += values.size();
          return w->write(gallery::TransferSubject{info, values});
        }));
    FG_TRY_STATUS(w->finish());
    return report;
  } catch (const std::exception& e) {
    return make_error(ErrorCode::kInternal, std::string("export: ") + e.what());
  }
}

Result<TransferReport> Gallery::import_from(const fs::path& file, const SecretKey& transfer_key,
                                            const ImportOptions& options) {
  try {
    auto check_header = [&](const gallery::TransferHeader& h) -> Status {
      if (h.model_id != model_id() || h.dim != dim())
        return make_error(ErrorCode::kInvalidArgument, "export holds templates of model '" + h.model_id + "' (" +
                                                           std::to_string(h.dim) + "-D); this gallery is bound to '" +
                                                           model_id() + "'");
      return ok_status();
    };
    // Pass 1: decrypt and validate everything, and find conflicts, before anything is written.
    std::unordered_set<std::string> present;
    std::size_t conflicts = 0;
    FG_TRY_STATUS(gallery::read_transfer(file, transfer_key, check_header, [&](gallery::TransferSubject&& s) -> Status {
      if (!gallery::valid_subject_id(s.info.subject_id))
        return make_error(ErrorCode::kCorruptData, "export holds a bad subject id");
      std::lock_guard lock(impl_->db_mutex);
      FG_ASSIGN_OR_RETURN(bool exists, impl_->store->subject_exists(s.info.subject_id));
      if (exists) {
        present.insert(s.info.subject_id);
        ++conflicts;
      }
      return ok_status();
    }));
    if (conflicts > 0 && !options.skip_existing)
      return make_error(ErrorCode::kConflict, std::to_string(conflicts) +
                                                  " subject(s) of the export already exist (e.g. '" +
                                                  *present.begin() + "'); nothing was imported");
    // Pass 2: one enrolment (one transaction) per subject, re-encrypted under this gallery's keys.
    TransferReport report;
    FG_TRY_STATUS(gallery::read_transfer(file, transfer_key, check_header, [&](gallery::TransferSubject&& s) -> Status {
      if (present.count(s.info.subject_id)) {
        ++report.skipped;
        return ok_status();
      }
      std::vector<TemplateInput> ts;
      for (std::size_t i = 0; i < s.values.size(); ++i) {
        const auto& t = s.info.templates[i];
        ts.push_back(TemplateInput{Embedding{t.model_id, std::move(s.values[i])}, t.source_sha256, t.retain_until,
                                   t.consent_id});
      }
      FG_TRY_STATUS(enroll(SubjectInput{s.info.subject_id, s.info.display_name, s.info.metadata_json}, ts));
      ++report.subjects;
      report.templates += ts.size();
      return ok_status();
    }));
    return report;
  } catch (const std::exception& e) {
    return make_error(ErrorCode::kInternal, std::string("import: ") + e.what());
  }
}

}  // namespace faceguard
