// `faceguard gallery ...`: persistent encrypted galleries (faceguard/gallery.hpp). Argument parsing and
// printing only: enrolment and identification use the Pipeline, storage and search the Gallery.
#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>

#include <nlohmann/json.hpp>
#include <sodium.h>

#include "cli.hpp"
#include "face_common.hpp"
#include "policy_cli.hpp"
#include "faceguard/compare.hpp"
#include "faceguard/eval.hpp"
#include "faceguard/gallery.hpp"
#include "faceguard/image.hpp"
#include "faceguard/pipeline.hpp"

namespace faceguard::cli {
namespace {

namespace fs = std::filesystem;

struct KeyArgs {
  std::string key_file;   // --key-file, else $FACEGUARD_MASTER_KEY
  std::string key_store;  // --key-store, else <gallery>.keys
};

void add_key_options(CLI::App* sub, KeyArgs& k) {
  sub->add_option("--key-file", k.key_file, "master key file (32 raw bytes, 64 hex digits or base64); "
                                            "default: $FACEGUARD_MASTER_KEY");
  sub->add_option("--key-store", k.key_store, "key store file (default: <gallery>.keys)");
}

Result<SecretKey> master_key(const KeyArgs& k) {
  if (!k.key_file.empty()) return load_secret_key(k.key_file);
  auto env = master_key_from_env();
  if (!env && env.error().code == ErrorCode::kNotFound)
    return make_error(ErrorCode::kInvalidArgument,
                      "no master key: pass --key-file or set FACEGUARD_MASTER_KEY (`faceguard gallery keygen`)");
  return env;
}

Result<std::unique_ptr<Gallery>> open_gallery(const std::string& path, const KeyArgs& k, bool read_only,
                                              IndexKind index = IndexKind::kAuto) {
  FG_ASSIGN_OR_RETURN(SecretKey key, master_key(k));
  GalleryOptions o;
  o.master_key = key;
  o.read_only = read_only;
  o.index = index;
  if (!k.key_store.empty()) o.key_store = k.key_store;
  return Gallery::open(path, o);
}

Result<IndexKind> parse_index(const std::string& s) {
  if (s == "auto") return IndexKind::kAuto;
  if (s == "flat") return IndexKind::kFlat;
  if (s == "scan8") return IndexKind::kScan8;
  if (s == "hnsw") return IndexKind::kHnsw;
  if (s == "ivf") return IndexKind::kIvf;
  return make_error(ErrorCode::kInvalidArgument, "--index must be auto, flat, scan8, hnsw or ivf");
}

std::string iso_time(std::int64_t t) {
  char b[32];
  const std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  std::strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return b;
}

std::string sha256_of_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  crypto_hash_sha256_state st;
  crypto_hash_sha256_init(&st);
  std::vector<char> buf(1 << 16);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    crypto_hash_sha256_update(&st, reinterpret_cast<unsigned char*>(buf.data()), static_cast<std::size_t>(in.gcount()));
  }
  unsigned char h[crypto_hash_sha256_BYTES];
  crypto_hash_sha256_final(&st, h);
  char hex[2 * crypto_hash_sha256_BYTES + 1];
  sodium_bin2hex(hex, sizeof hex, h, sizeof h);
  return hex;
}

nlohmann::json subject_json(const SubjectInfo& s, bool templates) {
  nlohmann::json j{{"subject_id", s.subject_id}, {"display_name", s.display_name},
                   {"metadata", nlohmann::json::parse(s.metadata_json)}, {"created_at", iso_time(s.created_at)},
                   {"template_count", s.templates.size()}};
  if (templates) {
    j["templates"] = nlohmann::json::array();
    for (const auto& t : s.templates) {
      nlohmann::json tj{{"id", t.id}, {"model_id", t.model_id}, {"created_at", iso_time(t.created_at)},
                        {"source_sha256", t.source_sha256}, {"consent_id", t.consent_id}};
      tj["retain_until"] = t.retain_until ? nlohmann::json(iso_time(*t.retain_until)) : nlohmann::json(nullptr);
      j["templates"].push_back(std::move(tj));
    }
  }
  return j;
}

// ---- keygen / init --------------------------------------------------------------------------------------
int run_keygen(const std::string& file, bool force) {
  if (fs::exists(file) && !force)
    return report(make_error(ErrorCode::kConflict, file + " exists (use --force to overwrite it)"), "keygen");
  const SecretKey k = generate_secret_key();
  const mode_t old = umask(077);  // the key file is readable by its owner only
  std::ofstream out(file, std::ios::trunc);
  umask(old);
  out << secret_key_to_hex(k) << "\n";
  out.close();
  if (!out) return report(make_error(ErrorCode::kIoError, "cannot write " + file), "keygen");
  fs::permissions(file, fs::perms::owner_read | fs::perms::owner_write, fs::perm_options::replace);
  std::cout << "wrote a new 256-bit master key to " << file << " (mode 0600). Keep it apart from the gallery.\n";
  return kExitOk;
}

struct InitArgs {
  std::string gallery;
  KeyArgs key;
  std::string model = "dlib";
  std::string model_id;
  int dim = 0;
  std::string calibration;
};

int run_init(const InitArgs& a) {
  auto key = master_key(a.key);
  if (!key) return report(key.error(), "gallery init");
  GalleryOptions o;
  o.master_key = *key;
  o.create = true;
  if (!a.key.key_store.empty()) o.key_store = a.key.key_store;
  o.model_id = a.model_id;
  o.dim = a.dim;
  if (o.model_id.empty()) {
    // The model id is what the embedder stamps on its templates.
    auto pack = open_models();
    if (!pack) return report(pack.error(), "gallery init");
    EmbedderOptions eo;
    if (a.model == "mobilefacenet") eo.kind = EmbedderKind::kMobileFaceNet;
    else if (a.model != "dlib") return report(make_error(ErrorCode::kInvalidArgument, "--model must be dlib or mobilefacenet"));
    auto emb = Embedder::create(*pack, eo);
    if (!emb) return report(emb.error(), "gallery init");
    o.model_id = (*emb)->model_id();
    cv::Mat chip((*emb)->chip_size(), (*emb)->chip_size(), CV_8UC3, cv::Scalar(128, 128, 128));
    auto e = (*emb)->embed(chip);
    if (!e) return report(e.error(), "gallery init");
    o.dim = static_cast<int>(e->values.size());
  }
  auto g = Gallery::open(a.gallery, o);
  if (!g) return report(g.error(), "gallery init");
  if (!a.calibration.empty()) {
    std::ifstream in(a.calibration);
    std::stringstream ss;
    ss << in.rdbuf();
    auto t = threshold_table_from_json(ss.str());
    if (!t) return report(t.error(), a.calibration);
    auto s = (*g)->set_calibration(*t);
    if (!s) return report(s.error(), "gallery init");
  }
  std::cout << "created gallery " << a.gallery << " (model " << o.model_id << ", " << o.dim << "-D) with key store "
            << (a.key.key_store.empty() ? a.gallery + ".keys" : a.key.key_store) << "\n";
  return kExitOk;
}

// ---- enroll ---------------------------------------------------------------------------------------------
struct EnrollArgs {
  std::string gallery;
  KeyArgs key;
  std::string subject;
  std::string name;
  std::string meta = "{}";
  std::string consent;
  double retain_days = 0;
  std::vector<std::string> images;
  std::string folder;
  int face = -1;
  bool largest = false;
  bool timing = false;
  ModelArgs model;
};

struct StageTimes {
  double decode = 0, detect = 0, embed = 0, store = 0;
  int faces = 0;
};

// Templates of one subject from its images; every image must hold exactly one face unless told which.
Result<std::vector<TemplateInput>> templates_from_images(Pipeline& pipe, const std::vector<fs::path>& images,
                                                         const EnrollArgs& a, const TemplateBinding& binding,
                                                         StageTimes& t) {
  std::vector<TemplateInput> out;
  for (const auto& p : images) {
    Stopwatch sw;
    auto img = read_image(p);
    if (!img) return make_error(img.error().code, display_name(p) + ": " + img.error().message);
    t.decode += sw.ms();
    Stopwatch sd;
    auto faces = pipe.detect(*img);
    if (!faces) return faces.error();
    t.detect += sd.ms();
    if (faces->empty()) return make_error(ErrorCode::kNoFace, display_name(p) + ": no face found");
    auto choice = choose_face(*faces, a.largest ? -1 : a.face, !(a.largest || a.face >= 0), display_name(p));
    if (!choice) return choice.error();
    Stopwatch se;
    auto e = pipe.embed_face(*img, (*faces)[choice->index]);
    if (!e) return make_error(e.error().code, display_name(p) + ": " + e.error().message);
    t.embed += se.ms();
    ++t.faces;
    TemplateInput ti;
    ti.embedding = std::move(*e);
    ti.source_sha256 = sha256_of_file(p);
    ti.consent_id = binding.consent_id;
    if (binding.retain_until) ti.retain_until = binding.retain_until->time_since_epoch().count();
    out.push_back(std::move(ti));
  }
  return out;
}

bool is_image_file(const fs::path& p) {
  std::string e = p.extension().string();
  std::transform(e.begin(), e.end(), e.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return e == ".jpg" || e == ".jpeg" || e == ".png" || e == ".bmp" || e == ".webp" || e == ".tif" || e == ".tiff";
}

int run_enroll(const EnrollArgs& a) {
  struct Job {
    SubjectInput subject;
    std::vector<fs::path> images;
  };
  std::vector<Job> jobs;
  if (!a.folder.empty()) {
    // One sub-folder per subject: the folder name is the subject id (and the default display name).
    std::error_code ec;
    if (!fs::is_directory(a.folder, ec))
      return report(make_error(ErrorCode::kNotFound, "no folder " + a.folder), "gallery enroll");
    for (const auto& d : fs::directory_iterator(a.folder)) {
      if (!d.is_directory()) continue;
      Job j{{d.path().filename().string(), d.path().filename().string(), a.meta}, {}};
      for (const auto& f : fs::directory_iterator(d.path()))
        if (f.is_regular_file() && is_image_file(f.path())) j.images.push_back(f.path());
      std::sort(j.images.begin(), j.images.end());
      if (!j.images.empty()) jobs.push_back(std::move(j));
    }
    std::sort(jobs.begin(), jobs.end(), [](const Job& x, const Job& y) { return x.subject.subject_id < y.subject.subject_id; });
  } else {
    if (a.subject.empty() || a.images.empty())
      return report(make_error(ErrorCode::kInvalidArgument, "give --subject and images, or --folder"), "gallery enroll");
    Job j{{a.subject, a.name.empty() ? a.subject : a.name, a.meta}, {}};
    for (const auto& i : a.images) j.images.emplace_back(i);
    jobs.push_back(std::move(j));
  }
  auto g = open_gallery(a.gallery, a.key, false);
  if (!g) return report(g.error(), "gallery enroll");
  auto pack = open_models();
  if (!pack) return report(pack.error(), "gallery enroll");
  auto popt = pipeline_options(a.model);
  if (!popt) return report(popt.error(), "gallery enroll");
  auto pipe = Pipeline::create(*pack, *popt);
  if (!pipe) return report(pipe.error(), "gallery enroll");
  if ((*pipe)->embedder().model_id() != (*g)->model_id())
    return report(make_error(ErrorCode::kInvalidArgument, "the gallery holds " + (*g)->model_id() +
                                                              " templates; this pipeline makes " +
                                                              (*pipe)->embedder().model_id()),
                  "gallery enroll");
  // What every stored template carries: the consent of the request and the shortest of the policy's
  // retention deadline, the consent's term and --retain-days (faceguard retention run erases it then).
  TemplateBinding binding;
  if (GateResult* gate = gate_result()) {
    auto b = template_binding(gate->auth);
    if (!b) return report(b.error(), "gallery enroll");
    binding = std::move(*b);
    // A consent covers one person: a folder of subjects, or a subject other than the consent's, is refused.
    if (!binding.consent_id.empty())
      for (const auto& j : jobs)
        if (j.subject.subject_id != gate->auth.context.subject_id)
          return report(make_error(ErrorCode::kPolicyDenied, "consent " + binding.consent_id + " covers subject '" +
                                                                 gate->auth.context.subject_id + "', not '" +
                                                                 j.subject.subject_id + "'"),
                        "gallery enroll");
  } else if (!a.consent.empty()) {
    binding.consent_id = a.consent;
  }
  if (a.retain_days > 0) {
    const TimePoint mine = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now()) +
                           std::chrono::seconds(static_cast<std::int64_t>(a.retain_days * 86400));
    if (!binding.retain_until || mine < *binding.retain_until) binding.retain_until = mine;
  }
  StageTimes t;
  Stopwatch total;
  int first_error = kExitOk, enrolled = 0;
  for (const auto& j : jobs) {
    auto ts = templates_from_images(**pipe, j.images, a, binding, t);
    if (!ts) {
      const int code = report(ts.error(), "gallery enroll " + j.subject.subject_id + " (nothing enrolled for it)");
      if (first_error == kExitOk) first_error = code;
      continue;
    }
    Stopwatch ss;
    auto r = (*g)->enroll(j.subject, *ts);
    t.store += ss.ms();
    if (!r) {
      const int code = report(r.error(), "gallery enroll " + j.subject.subject_id);
      if (first_error == kExitOk) first_error = code;
      continue;
    }
    ++enrolled;
    if (GateResult* gate = gate_result()) {
      nlohmann::json outcome{{"gallery", a.gallery}, {"subject_id", r->subject_id},
                             {"templates", r->template_ids.size()}, {"consent_id", binding.consent_id}};
      outcome["retain_until"] = binding.retain_until ? nlohmann::json(format_utc(*binding.retain_until)) : nlohmann::json(nullptr);
      if (auto s = gate->session.guard().record_outcome(gate->auth, outcome.dump()); !s)
        return report(s.error(), "gallery enroll " + r->subject_id + " (enrolled, but the audit record failed)");
    }
    std::cout << "enrolled " << r->subject_id << ": " << r->template_ids.size() << " template(s)"
              << (r->created ? " (new subject)" : " (added to existing subject)") << "\n";
  }
  if (a.timing && t.faces > 0) {
    const double ms = total.ms();
    std::cout << std::fixed << std::setprecision(1) << "enrolment: " << t.faces << " faces in " << ms << " ms = "
              << (1000.0 * t.faces / ms) << " faces/s; per face: decode " << t.decode / t.faces << " ms, detect "
              << t.detect / t.faces << " ms, landmarks+align+embed " << t.embed / t.faces << " ms, store "
              << t.store / t.faces << " ms\n";
  }
  if (jobs.size() > 1) std::cout << enrolled << " of " << jobs.size() << " subjects enrolled\n";
  return first_error;
}

// ---- identify -------------------------------------------------------------------------------------------
struct IdentifyArgs {
  std::string gallery;
  KeyArgs key;
  std::string image;
  int top_k = 5;
  double fmr = 1e-3;
  double threshold = std::nan("");
  bool json = false;
  std::string index = "auto";
  ModelArgs model;
};

int run_identify(const IdentifyArgs& a) {
  auto img = read_image(a.image);
  if (!img) return report_image(img.error(), a.image);
  auto kind = parse_index(a.index);
  if (!kind) return report(kind.error());
  auto g = open_gallery(a.gallery, a.key, true, *kind);
  if (!g) return report(g.error(), "gallery identify");
  auto pack = open_models();
  if (!pack) return report(pack.error(), "gallery identify");
  auto popt = pipeline_options(a.model);
  if (!popt) return report(popt.error(), "gallery identify");
  auto pipe = Pipeline::create(*pack, *popt);
  if (!pipe) return report(pipe.error(), "gallery identify");
  auto faces = (*pipe)->analyze(*img);
  if (!faces) return report(faces.error(), a.image);
  IdentifyOptions io;
  io.top_k = a.top_k;
  io.target_fmr = a.fmr;
  if (!std::isnan(a.threshold)) io.threshold = static_cast<float>(a.threshold);
  std::vector<Embedding> probes;
  for (const auto& f : *faces) probes.push_back(f.embedding);
  std::vector<Identification> ids;
  if (!probes.empty()) {
    auto r = (*g)->identify_batch(probes, io);
    if (!r) return report(r.error(), "gallery identify");
    ids = std::move(*r);
  }
  // The policy's obligations decide what may be shown: a minimum similarity, a top-k cap, a target list,
  // human review (a match stays pending until named reviewers confirm it) and notices. Candidates under the
  // gallery's open-set threshold are never matches; the rest go through the guard, which logs the result.
  GateResult* gate = gate_result();
  const std::string image_ref = sha256_of_file(a.image);
  const Metric metric = metric_for((*g)->model_id());
  const float model_threshold = default_threshold((*g)->model_id());
  std::vector<GuardedResult> guarded(ids.size());
  for (std::size_t i = 0; i < ids.size(); ++i) {
    std::vector<MatchCandidate> cands;
    for (const auto& c : ids[i].candidates) {
      if (c.score < ids[i].threshold) continue;
      const float distance = metric == Metric::kCosine ? 1.f - c.score : c.distance;
      cands.push_back({c.subject_id, similarity_from_distance(distance, model_threshold, metric)});
    }
    if (!gate) {
      for (const auto& c : cands) guarded[i].matches.push_back({"", c.subject_id, c.similarity, ReviewState::kNotRequired});
      continue;
    }
    auto gr = gate->session.guard().apply(gate->auth, std::move(cands), image_ref);
    if (!gr) return report(gr.error(), "gallery identify");
    guarded[i] = std::move(*gr);
  }
  nlohmann::json out{{"image", a.image}, {"faces", nlohmann::json::array()}};
  if (gate) out["decision"] = nlohmann::json::parse(decision_to_json(gate->auth.decision));
  for (std::size_t i = 0; i < ids.size(); ++i) {
    const auto& f = (*faces)[i].face;
    Identification r = ids[i];
    const GuardedResult& gr = guarded[i];
    // Only what the obligations let through is shown, in the guard's order (a pending match as such): runners-up
    // below the threshold would leak who the face resembles, and a top-k cap or a target list must bind.
    std::vector<Candidate> shown;
    for (const auto& m : gr.matches)
      for (const auto& c : r.candidates)
        if (c.subject_id == m.subject_id) shown.push_back(c);
    r.known = !shown.empty();
    if (gate) r.candidates = std::move(shown);
    nlohmann::json fj{{"index", i},
                      {"box", {{"x", f.box.x}, {"y", f.box.y}, {"width", f.box.width}, {"height", f.box.height}}},
                      {"known", r.known},
                      {"subject_id", r.known ? nlohmann::json(r.candidates[0].subject_id) : nlohmann::json(nullptr)},
                      {"threshold", r.threshold},
                      {"fmr", r.fmr >= 0 ? nlohmann::json(r.fmr) : nlohmann::json(nullptr)},
                      {"threshold_source", r.threshold_source},
                      {"candidates", nlohmann::json::array()},
                      {"matches", nlohmann::json::array()},
                      {"notices", gr.notices}};
    for (const auto& c : r.candidates)
      fj["candidates"].push_back({{"subject_id", c.subject_id}, {"display_name", c.display_name}, {"score", c.score},
                                  {"distance", c.distance}, {"template_id", c.template_id}});
    for (const auto& m : gr.matches)
      fj["matches"].push_back({{"subject_id", m.subject_id}, {"similarity", m.similarity}, {"match_id", m.match_id},
                               {"review", std::string(to_string(m.review))}});
    if (gr.dropped_below_threshold + gr.dropped_by_top_k + gr.dropped_outside_targets > 0)
      fj["withheld_by_policy"] = {{"below_min_similarity", gr.dropped_below_threshold},
                                  {"over_top_k", gr.dropped_by_top_k},
                                  {"outside_targets", gr.dropped_outside_targets}};
    out["faces"].push_back(std::move(fj));
    if (a.json) continue;
    std::cout << a.image << " face #" << i << " (box " << std::fixed << std::setprecision(0) << f.box.x << "," << f.box.y
              << " " << f.box.width << "x" << f.box.height << "): ";
    std::cout << std::setprecision(3);
    if (r.known) std::cout << r.candidates[0].subject_id << " (" << r.candidates[0].display_name << ") score " << r.candidates[0].score;
    else std::cout << "unknown";
    std::cout << "  [threshold " << r.threshold;
    if (r.fmr > 0) std::cout << std::defaultfloat << " for FMR " << r.fmr;
    std::cout << std::fixed << "]\n";
    for (const auto& c : r.candidates)
      std::cout << "    " << std::setw(24) << std::left << c.subject_id << std::right << " score " << c.score
                << "  distance " << c.distance << "\n";
    for (const auto& m : gr.matches)
      if (m.review != ReviewState::kNotRequired)
        std::cout << "    match " << m.match_id << " (" << m.subject_id << "): review " << to_string(m.review)
                  << " - not a result until confirmed with `faceguard audit review`\n";
    for (const auto& n : gr.notices) std::cout << "    notice: " << n << "\n";
    std::cout.unsetf(std::ios::floatfield);
  }
  if (a.json) std::cout << out.dump(2) << "\n";
  else if (ids.empty()) std::cout << a.image << ": no face found\n";
  return ids.empty() ? kExitNoFace : kExitOk;
}

// ---- calibrate ------------------------------------------------------------------------------------------
struct CalibrateArgs {
  std::string gallery;
  KeyArgs key;
  std::vector<std::string> pairs;
  std::string images;
  std::string cache;
  std::string out;
  bool list_pairs_only = false;
  int threads = 2;
  ModelArgs model;
};

float cosine(const std::vector<float>& a, const std::vector<float>& b) {
  double d = 0, na = 0, nb = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    d += static_cast<double>(a[i]) * b[i];
    na += static_cast<double>(a[i]) * a[i];
    nb += static_cast<double>(b[i]) * b[i];
  }
  return static_cast<float>(d / std::sqrt(na * nb));
}

int run_calibrate(const CalibrateArgs& a) {
  auto g = open_gallery(a.gallery, a.key, false);
  if (!g) return report(g.error(), "gallery calibrate");
  auto pack = open_models();
  if (!pack) return report(pack.error(), "gallery calibrate");
  eval::VerifyConfig vc;
  auto popt = pipeline_options(a.model);
  if (!popt) return report(popt.error(), "gallery calibrate");
  vc.pipeline = *popt;
  vc.threads = a.threads;
  eval::PairList all;
  for (const auto& p : a.pairs) {
    auto l = eval::load_pairs(p, a.images);
    if (!l) return report(l.error(), p);
    all.pairs.insert(all.pairs.end(), l->pairs.begin(), l->pairs.end());
  }
  const auto images = eval::unique_images(all);
  auto cache = a.cache.empty() ? Result<eval::EmbeddingCache>(eval::EmbeddingCache::in_memory(eval::config_key(vc)))
                               : eval::EmbeddingCache::open(a.cache, eval::config_key(vc));
  if (!cache) return report(cache.error(), "gallery calibrate");
  std::cerr << "embedding " << images.size() << " images...\n";
  auto set = eval::embed_images(*pack, images, vc, *cache);
  if (!set) return report(set.error(), "gallery calibrate");
  (void)cache->save();
  std::vector<float> genuine, impostor;
  std::string source;
  if (a.list_pairs_only) {
    for (const auto& p : all.pairs) {
      auto ia = set->by_path.find(p.a.string()), ib = set->by_path.find(p.b.string());
      if (ia == set->by_path.end() || ib == set->by_path.end() || ia->second.embedding.values.empty() ||
          ib->second.embedding.values.empty())
        continue;
      (p.same ? genuine : impostor).push_back(cosine(ia->second.embedding.values, ib->second.embedding.values));
    }
    source = "listed pairs of";
  } else {
    // Every pair of the images: same folder (LFW: one folder per person) = genuine, else impostor. Far more
    // impostor pairs than the list has, so low FMRs can be resolved.
    std::vector<std::pair<std::string, const std::vector<float>*>> v;
    for (const auto& img : images) {
      auto it = set->by_path.find(img.string());
      if (it != set->by_path.end() && !it->second.embedding.values.empty())
        v.emplace_back(img.parent_path().filename().string(), &it->second.embedding.values);
    }
    for (std::size_t i = 0; i < v.size(); ++i)
      for (std::size_t j = i + 1; j < v.size(); ++j)
        (v[i].first == v[j].first ? genuine : impostor).push_back(cosine(*v[i].second, *v[j].second));
    source = "all image pairs (same folder = genuine) of the images of";
  }
  for (const auto& p : a.pairs) source += " " + fs::path(p).filename().string();
  source += " (" + (*g)->model_id() + ", " + std::to_string(images.size()) + " images)";
  auto t = calibrate_threshold((*g)->model_id(), genuine, impostor, source);
  if (!t) return report(t.error(), "gallery calibrate");
  auto s = (*g)->set_calibration(*t);
  if (!s) return report(s.error(), "gallery calibrate");
  if (!a.out.empty()) {
    std::ofstream o(a.out);
    o << threshold_table_to_json(*t) << "\n";
  }
  std::cout << "calibrated on " << genuine.size() << " genuine and " << impostor.size() << " impostor pairs\n";
  for (const auto& p : t->points)
    std::cout << "  FMR " << std::setw(8) << p.fmr << "  threshold (cosine) " << std::fixed << std::setprecision(4)
              << p.threshold << "  FNMR " << std::setprecision(4) << p.fnmr << "\n" << std::defaultfloat;
  return kExitOk;
}

// ---- list / show / delete / export / import / stats ------------------------------------------------------
int run_list(const std::string& path, const KeyArgs& k, bool json) {
  auto g = open_gallery(path, k, true);
  if (!g) return report(g.error(), "gallery list");
  auto l = (*g)->list();
  if (!l) return report(l.error(), "gallery list");
  if (json) {
    nlohmann::json j = nlohmann::json::array();
    for (const auto& s : *l) j.push_back(subject_json(s, false));
    std::cout << j.dump(2) << "\n";
    return kExitOk;
  }
  for (const auto& s : *l)
    std::cout << std::setw(24) << std::left << s.subject_id << std::right << "  " << s.templates.size()
              << " template(s)  " << s.display_name << "\n";
  std::cout << l->size() << " subject(s)\n";
  return kExitOk;
}

int run_show(const std::string& path, const KeyArgs& k, const std::string& id) {
  auto g = open_gallery(path, k, true);
  if (!g) return report(g.error(), "gallery show");
  auto s = (*g)->show(id);
  if (!s) return report(s.error(), "gallery show");
  std::cout << subject_json(*s, true).dump(2) << "\n";
  return kExitOk;
}

int run_delete(const std::string& path, const KeyArgs& k, const std::string& id) {
  auto g = open_gallery(path, k, false);
  if (!g) return report(g.error(), "gallery delete");
  auto r = (*g)->remove(id);
  if (!r) return report(r.error(), "gallery delete");
  std::cout << "deleted " << r->subject_id << ": " << r->templates_deleted << " template(s); data key "
            << (r->key_destroyed ? "destroyed" : "NOT destroyed") << "; WAL "
            << (r->wal_truncated ? "checkpointed and truncated" : "not truncated yet (readers active)") << "\n";
  return r->key_destroyed ? kExitOk : kExitFailure;
}

Result<SecretKey> transfer_key(const std::string& file, const KeyArgs& k) {
  if (!file.empty()) return load_secret_key(file);
  auto env = master_key_from_env("FACEGUARD_TRANSFER_KEY");
  if (env || env.error().code != ErrorCode::kNotFound) return env;
  return master_key(k);  // default: the same master key
}

int run_export(const std::string& path, const KeyArgs& k, const std::string& file, const std::string& tkey) {
  auto g = open_gallery(path, k, true);
  if (!g) return report(g.error(), "gallery export");
  auto key = transfer_key(tkey, k);
  if (!key) return report(key.error(), "gallery export");
  auto r = (*g)->export_to(file, *key);
  if (!r) return report(r.error(), "gallery export");
  std::cout << "exported " << r->subjects << " subject(s), " << r->templates << " template(s) to " << file << "\n";
  return kExitOk;
}

int run_import(const std::string& path, const KeyArgs& k, const std::string& file, const std::string& tkey, bool skip) {
  auto g = open_gallery(path, k, false);
  if (!g) return report(g.error(), "gallery import");
  auto key = transfer_key(tkey, k);
  if (!key) return report(key.error(), "gallery import");
  auto r = (*g)->import_from(file, *key, {.skip_existing = skip});
  if (!r) return report(r.error(), "gallery import");
  std::cout << "imported " << r->subjects << " subject(s), " << r->templates << " template(s)";
  if (r->skipped) std::cout << "; skipped " << r->skipped << " already present";
  std::cout << "\n";
  return kExitOk;
}

int run_stats(const std::string& path, const KeyArgs& k, bool json, const std::string& index) {
  auto kind = parse_index(index);
  if (!kind) return report(kind.error());
  auto g = open_gallery(path, k, true, *kind);
  if (!g) return report(g.error(), "gallery stats");
  auto s = (*g)->stats();
  if (!s) return report(s.error(), "gallery stats");
  nlohmann::json j{{"path", s->path}, {"model_id", s->model_id}, {"dim", s->dim}, {"schema_version", s->schema_version},
                   {"subjects", s->subjects}, {"templates", s->templates},
                   {"unrecoverable_subjects", s->unrecoverable_subjects}, {"index", std::string(to_string(s->index))},
                   {"open_seconds", s->open_seconds}, {"file_bytes", s->file_bytes},
                   {"key_store_bytes", s->key_store_bytes}, {"index_bytes", s->index_bytes},
                   {"calibration", s->calibration_source}};
  if (json) {
    std::cout << j.dump(2) << "\n";
    return kExitOk;
  }
  for (auto it = j.begin(); it != j.end(); ++it) std::cout << std::setw(24) << std::left << it.key() << " " << it.value() << "\n";
  return kExitOk;
}

void setup_gallery(CLI::App& app) {
  auto* g = app.add_subcommand("gallery", "persistent encrypted galleries: enrol, identify (1:N), delete");
  g->require_subcommand(1);
  g->footer(
      "The master key comes from --key-file or FACEGUARD_MASTER_KEY and is never stored; the subjects' data keys\n"
      "live in <gallery>.keys. See docs/gallery.md.");

  {
    auto file = std::make_shared<std::string>();
    auto force = std::make_shared<bool>(false);
    auto* s = g->add_subcommand("keygen", "write a new random master key (hex) to a file, mode 0600");
    s->add_option("file", *file, "key file to create")->required();
    s->add_flag("--force", *force, "overwrite an existing file");
    s->callback([=] { set_exit(run_keygen(*file, *force)); });
  }
  {
    auto a = std::make_shared<InitArgs>();
    auto* s = g->add_subcommand("init", "create an empty gallery bound to one model");
    s->add_option("gallery", a->gallery, "gallery file to create")->required();
    add_key_options(s, a->key);
    s->add_option("--model", a->model, "embedder whose templates it holds: dlib (default) or mobilefacenet");
    s->add_option("--model-id", a->model_id, "bind to this model id without loading the models (needs --dim)");
    s->add_option("--dim", a->dim, "template size with --model-id");
    s->add_option("--calibration", a->calibration, "threshold table JSON (from `gallery calibrate --out`)");
    s->callback([a] { set_exit(run_init(*a)); });
  }
  {
    auto a = std::make_shared<EnrollArgs>();
    auto* s = g->add_subcommand("enroll", "enrol a subject from photos (or a folder per subject)");
    s->add_option("gallery", a->gallery, "gallery file")->required();
    s->add_option("images", a->images, "photos of the subject (one face each)");
    add_key_options(s, a->key);
    s->add_option("--subject", a->subject, "subject id (1-128 of [A-Za-z0-9._:@-]; stored in clear: a pseudonym)");
    s->add_option("--name", a->name, "display name (encrypted)");
    s->add_option("--meta", a->meta, "metadata, a JSON object (encrypted)");
    s->add_option("--consent", a->consent, "consent record id stored with each template");
    s->add_option("--retain-days", a->retain_days, "retention deadline in days from now (for the policy layer)");
    s->add_option("--folder", a->folder, "enrol every sub-folder as a subject (folder name = subject id)");
    s->add_option("--face", a->face, "use face N of each photo (as `faceguard detect` numbers them)")->check(CLI::NonNegativeNumber);
    s->add_flag("--largest", a->largest, "use the largest face of each photo");
    s->add_flag("--timing", a->timing, "print enrolment throughput and the time per stage");
    add_model_options(s, a->model, true);
    s->footer("A photo with no face, or several without --face/--largest, fails its subject: nothing of it is stored.");
    s->callback([a] { set_exit(run_enroll(*a)); });
  }
  {
    auto a = std::make_shared<IdentifyArgs>();
    auto* s = g->add_subcommand("identify", "who is each face of a photo? (top-k subjects or unknown)");
    s->add_option("gallery", a->gallery, "gallery file")->required();
    s->add_option("image", a->image, "photo")->required();
    add_key_options(s, a->key);
    s->add_option("--top-k", a->top_k, "candidates per face")->check(CLI::Range(1, 1000));
    s->add_option("--fmr", a->fmr, "target false-match rate per comparison; the threshold comes from the "
                                   "gallery's calibration")->check(CLI::Range(1e-9, 0.5));
    s->add_option("--threshold", a->threshold, "cosine threshold (overrides --fmr)");
    s->add_option("--index", a->index, "auto, flat, scan8, hnsw or ivf");
    s->add_flag("--json", a->json, "print JSON");
    add_model_options(s, a->model, true);
    s->callback([a] { set_exit(run_identify(*a)); });
  }
  {
    auto a = std::make_shared<CalibrateArgs>();
    auto* s = g->add_subcommand("calibrate", "measure the FMR -> threshold table on a labelled set (LFW View 1)");
    s->add_option("gallery", a->gallery, "gallery file (the table is stored in it)")->required();
    add_key_options(s, a->key);
    s->add_option("--pairs", a->pairs, "pair list(s) (LFW format or CSV)")->required();
    s->add_option("--images", a->images, "image folder of the pair lists")->required();
    s->add_option("--cache", a->cache, "embedding cache folder (shared with `faceguard eval`)");
    s->add_option("--out", a->out, "also write the table as JSON");
    s->add_option("--threads", a->threads, "embedding threads");
    s->add_flag("--listed-pairs-only", a->list_pairs_only, "score only the listed pairs, not every image pair");
    add_model_options(s, a->model, true);
    s->callback([a] { set_exit(run_calibrate(*a)); });
  }
  struct Simple {
    std::string gallery, id, file, tkey, index = "auto";
    KeyArgs key;
    bool json = false, skip = false;
  };
  {
    auto a = std::make_shared<Simple>();
    auto* s = g->add_subcommand("list", "list the subjects");
    s->add_option("gallery", a->gallery, "gallery file")->required();
    add_key_options(s, a->key);
    s->add_flag("--json", a->json, "print JSON");
    s->callback([a] { set_exit(run_list(a->gallery, a->key, a->json)); });
  }
  {
    auto a = std::make_shared<Simple>();
    auto* s = g->add_subcommand("show", "one subject and its templates' provenance (JSON)");
    s->add_option("gallery", a->gallery, "gallery file")->required();
    s->add_option("subject", a->id, "subject id")->required();
    add_key_options(s, a->key);
    s->callback([a] { set_exit(run_show(a->gallery, a->key, a->id)); });
  }
  {
    auto a = std::make_shared<Simple>();
    auto* s = g->add_subcommand("delete", "delete a subject: rows deleted, data key destroyed (crypto-shredding)");
    s->add_option("gallery", a->gallery, "gallery file")->required();
    s->add_option("subject", a->id, "subject id")->required();
    add_key_options(s, a->key);
    s->callback([a] { set_exit(run_delete(a->gallery, a->key, a->id)); });
  }
  {
    auto a = std::make_shared<Simple>();
    auto* s = g->add_subcommand("export", "write an encrypted, checksummed export file");
    s->add_option("gallery", a->gallery, "gallery file")->required();
    s->add_option("file", a->file, "export file to write")->required();
    add_key_options(s, a->key);
    s->add_option("--transfer-key-file", a->tkey, "key of the export (default: $FACEGUARD_TRANSFER_KEY, else the master key)");
    s->callback([a] { set_exit(run_export(a->gallery, a->key, a->file, a->tkey)); });
  }
  {
    auto a = std::make_shared<Simple>();
    auto* s = g->add_subcommand("import", "import an export file (re-encrypted under this gallery's keys)");
    s->add_option("gallery", a->gallery, "gallery file")->required();
    s->add_option("file", a->file, "export file")->required();
    add_key_options(s, a->key);
    s->add_option("--transfer-key-file", a->tkey, "key of the export (default: $FACEGUARD_TRANSFER_KEY, else the master key)");
    s->add_flag("--skip-existing", a->skip, "skip subjects already present instead of refusing the import");
    s->callback([a] { set_exit(run_import(a->gallery, a->key, a->file, a->tkey, a->skip)); });
  }
  {
    auto a = std::make_shared<Simple>();
    auto* s = g->add_subcommand("stats", "counts, sizes, index kind, open time");
    s->add_option("gallery", a->gallery, "gallery file")->required();
    add_key_options(s, a->key);
    s->add_option("--index", a->index, "auto, flat, scan8, hnsw or ivf (to time their open)");
    s->add_flag("--json", a->json, "print JSON");
    s->callback([a] { set_exit(run_stats(a->gallery, a->key, a->json, a->index)); });
  }
}

Registrar registrar(30, setup_gallery);

}  // namespace
}  // namespace faceguard::cli
