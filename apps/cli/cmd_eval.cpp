// `faceguard eval verify`: verification accuracy of the pipeline on a pair list (LFW format or CSV).
// All the work is in faceguard/eval.hpp; this file parses options and prints.
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <memory>

#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "faceguard/eval.hpp"
#include "faceguard/models.hpp"

namespace faceguard::cli {

namespace {

struct EvalArgs {
  std::string pairs;
  std::string train;
  std::string images;
  std::string detector = "ssd";
  std::string align = "mean-face";
  std::string landmarks = "68";
  std::string embedder = "dlib";
  std::string fuse;  // a second embedder whose distances are fused with the first one's
  bool flip = false;
  bool flip_chip = false;
  int jitters = PipelineOptions{}.jitters;
  bool refine_landmarks = PipelineOptions{}.refine_landmarks;
  bool no_fallback = false;
  bool any_subject = false;
  std::string cache;
  std::string out;
  int threads = 2;
  int folds = 10;
  bool json = false;
};

std::string pct(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.2f%%", v * 100.0);
  return b;
}
std::string num(double v, const char* f = "%.4f") {
  char b[32];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

struct ListSummary {
  std::string name;
  eval::KFoldResult kfold;
  int k = 0;
  eval::Roc roc;
  std::vector<eval::TarAtFar> tars;
};

// The k-fold summary of one model's scores, or of a fusion of several (per_model.size() > 1: each fold's
// fusion and threshold are fitted on the other folds; the ROC is over the out-of-fold fused scores).
Result<ListSummary> summarise_list(std::string name, const eval::PairList& list,
                                   const std::vector<std::vector<eval::ScoredPair>>& per_model, int k) {
  ListSummary s;
  s.name = std::move(name);
  const auto& scored = per_model.front();
  std::vector<int> folds;
  if (list.folds >= 2) {  // the file's own folds (LFW View 2 pairs.txt)
    s.k = list.folds;
    for (const auto& p : list.pairs) folds.push_back(p.fold);
  } else {
    s.k = k;
    folds = eval::stratified_folds(scored, k);
  }
  if (per_model.size() == 1) {
    FG_ASSIGN_OR_RETURN(s.kfold, eval::k_fold(scored, folds, s.k));
    FG_ASSIGN_OR_RETURN(s.roc, eval::roc(scored));
  } else {
    FG_ASSIGN_OR_RETURN(auto fused, eval::k_fold_fused(per_model, folds, s.k));
    s.kfold = std::move(fused.kfold);
    FG_ASSIGN_OR_RETURN(s.roc, eval::roc(fused.out_of_fold));
  }
  for (double far : {1e-2, 1e-3}) s.tars.push_back(eval::tar_at_far(s.roc, far));
  return s;
}

void print_summary(const ListSummary& s, std::size_t pairs) {
  std::cout << s.k << "-fold over " << s.name << " (" << pairs << " pairs): accuracy " << pct(s.kfold.mean_accuracy)
            << " +- " << pct(s.kfold.std_accuracy) << " (std; SE " << pct(s.kfold.standard_error) << ")\n";
  std::cout << "  AUC " << num(s.roc.auc, "%.5f") << "  EER " << pct(s.roc.eer) << " at distance "
            << num(s.roc.eer_threshold);
  for (const auto& t : s.tars) {
    std::cout << "  TAR@FAR=" << num(t.far_target, "%g") << " " << pct(t.tar)
              << (t.resolvable ? "" : " (too few different pairs to resolve)");
  }
  std::cout << "\n";
}

nlohmann::json to_json(const ListSummary& s) {
  nlohmann::json j;
  j["k"] = s.k;
  j["mean_accuracy"] = s.kfold.mean_accuracy;
  j["std_accuracy"] = s.kfold.std_accuracy;
  j["standard_error"] = s.kfold.standard_error;
  j["folds"] = nlohmann::json::array();
  for (const auto& f : s.kfold.folds)
    j["folds"].push_back({{"threshold", f.threshold}, {"train_accuracy", f.train_accuracy},
                          {"test_accuracy", f.test_accuracy}, {"pairs", f.test_pairs}});
  j["auc"] = s.roc.auc;
  j["eer"] = s.roc.eer;
  j["eer_threshold"] = s.roc.eer_threshold;
  for (const auto& t : s.tars)
    j["tar_at_far"].push_back({{"far_target", t.far_target}, {"tar", t.tar}, {"far", t.far},
                               {"threshold", t.threshold}, {"resolvable", t.resolvable}});
  return j;
}


// One line per image: how its face was found (the stage of the fallback chain) and where, to look into
// the pairs a configuration gets wrong.
std::string images_csv(const eval::EmbeddedSet& set) {
  std::vector<std::string> paths;
  for (const auto& [path, e] : set.by_path) paths.push_back(path);
  std::sort(paths.begin(), paths.end());
  std::string out = "image,source,detector,score,x,y,width,height,error\n";
  for (const auto& path : paths) {
    const auto& e = set.by_path.at(path);
    char b[160];
    std::snprintf(b, sizeof b, ",%.3f,%.1f,%.1f,%.1f,%.1f,", e.face.score, e.face.box.x, e.face.box.y,
                  e.face.box.width, e.face.box.height);
    out += path + "," + std::string(eval::to_string(e.source)) + "," + e.face.detector + b + "\"" + e.error + "\"\n";
  }
  return out;
}

Result<EmbedderKind> parse_embedder(const std::string& name, const char* option) {
  if (name == "dlib") return EmbedderKind::kDlibResNet;
  if (name == "mobilefacenet") return EmbedderKind::kMobileFaceNet;
  return make_error(ErrorCode::kInvalidArgument, std::string(option) + " must be dlib or mobilefacenet");
}

Result<eval::VerifyConfig> make_config(const EvalArgs& a) {
  eval::VerifyConfig c;
  FG_ASSIGN_OR_RETURN(c.pipeline.detector.kind, parse_detector_kind(a.detector));
  FG_ASSIGN_OR_RETURN(c.pipeline.align, parse_align_method(a.align));
  if (a.landmarks == "68") {
    c.pipeline.landmarks68 = true;
  } else if (a.landmarks == "tiny") {
    c.pipeline.landmarks68 = true;
    c.pipeline.tiny_landmarks = true;
  } else if (a.landmarks == "none") {
    c.pipeline.landmarks68 = false;
  } else {
    return make_error(ErrorCode::kInvalidArgument, "--landmarks must be 68, tiny or none");
  }
  if (a.embedder == "fusion") {  // the pipeline's own fused templates, scored with the stored calibration
    c.pipeline.embedder.kind = EmbedderKind::kDlibResNet;
    c.pipeline.fuse = true;
  } else {
    FG_ASSIGN_OR_RETURN(c.pipeline.embedder.kind, parse_embedder(a.embedder, "--embedder"));
  }
  c.pipeline.flip = a.flip_chip;
  c.flip = a.flip;
  c.pipeline.jitters = a.jitters;
  c.pipeline.refine_landmarks = a.refine_landmarks;
  c.fallback = !a.no_fallback;
  c.centred_subject = !a.any_subject;
  c.threads = a.threads;
  return c;
}

// Embeds every image once for one configuration, through its cache (and the face cache it shares with the
// configurations that differ only after detection).
Result<eval::EmbeddedSet> embed_all(const EvalArgs& a, const ModelPack& pack, const eval::VerifyConfig& config,
                                    const std::vector<std::filesystem::path>& images_list) {
  const std::string key = eval::config_key(config);
  auto cache = a.cache.empty() ? eval::EmbeddingCache::in_memory(key) : [&] {
    auto c = eval::EmbeddingCache::open(a.cache, key);
    if (c) return std::move(*c);
    std::cerr << "faceguard: eval verify: ignoring the cache (" << c.error().message << ")\n";
    auto fresh = eval::EmbeddingCache::in_memory(key);
    return fresh;
  }();
  std::optional<eval::EmbeddingCache> face_cache;
  if (!a.cache.empty()) {
    auto fc = eval::EmbeddingCache::open(a.cache, eval::detection_key(config));
    if (fc) face_cache = std::move(*fc);
  }
  const bool show = !globals().quiet && !a.json;
  auto progress = [&](int done, int total) {
    if (show && (done % 50 == 0 || done == total)) {
      std::cerr << "\rembedding " << done << "/" << total << std::flush;
      if (done == total) std::cerr << "\n";
    }
  };
  auto set = eval::embed_images(pack, images_list, config, cache, face_cache ? &*face_cache : nullptr, progress);
  if (!set) return std::move(set).error();
  if (!a.cache.empty()) {
    for (const auto* c : {&cache, face_cache ? &*face_cache : nullptr}) {
      if (c == nullptr) continue;
      if (auto s = c->save(); !s) std::cerr << "faceguard: eval verify: cache not saved: " << s.error().message << "\n";
    }
  }
  return set;
}

// Each model's scores of a pair list (one list per configuration).
Result<std::vector<std::vector<eval::ScoredPair>>> score_all(const eval::PairList& list,
                                                             const std::vector<eval::EmbeddedSet>& sets) {
  std::vector<std::vector<eval::ScoredPair>> out;
  for (const auto& set : sets) {
    FG_ASSIGN_OR_RETURN(auto scored, eval::score_pairs(list, set));
    out.push_back(std::move(scored));
  }
  return out;
}

nlohmann::json fusion_json(const eval::Fusion& f, const std::vector<std::string>& keys) {
  nlohmann::json j = {{"bias", f.bias}, {"weights", f.weights}, {"models", keys}};
  return j;
}

int run_verify(const EvalArgs& a) {
  auto config = make_config(a);
  if (!config) return report(config.error(), "eval verify");
  if (a.folds < 2) return report(make_error(ErrorCode::kInvalidArgument, "--folds must be >= 2"), "eval verify");
  std::vector<eval::VerifyConfig> configs{*config};
  if (!a.fuse.empty()) {
    auto kind = parse_embedder(a.fuse, "--fuse");
    if (!kind) return report(kind.error(), "eval verify");
    if (config->pipeline.fuse) return report(make_error(ErrorCode::kInvalidArgument, "--fuse needs a single --embedder, not fusion"), "eval verify");
    if (*kind == config->pipeline.embedder.kind)
      return report(make_error(ErrorCode::kInvalidArgument, "--fuse names the --embedder itself; name the other one"), "eval verify");
    configs.push_back(*config);
    configs.back().pipeline.embedder.kind = *kind;
  }
  const bool fused = configs.size() > 1;
  const std::filesystem::path pairs_file(a.pairs);
  const std::filesystem::path images = a.images.empty() ? pairs_file.parent_path() / "images" : std::filesystem::path(a.images);

  auto test = eval::load_pairs(pairs_file, images);
  if (!test) return report(test.error(), "eval verify");
  std::optional<eval::PairList> train;
  if (!a.train.empty()) {
    auto t = eval::load_pairs(a.train, images);
    if (!t) return report(t.error(), "eval verify");
    train = std::move(*t);
  }
  eval::PairList all = *test;
  if (train) {
    all.pairs.insert(all.pairs.begin(), train->pairs.begin(), train->pairs.end());
    all.folds = 0;
    for (auto& p : all.pairs) p.fold = -1;
  }

  auto pack = ModelPack::open(model_dir());
  if (!pack) return report(pack.error(), "eval verify");
  const auto images_list = eval::unique_images(all);
  std::vector<eval::EmbeddedSet> sets;
  std::vector<std::string> keys;
  for (const auto& c : configs) {
    auto set = embed_all(a, *pack, c, images_list);
    if (!set) return report(set.error(), "eval verify");
    sets.push_back(std::move(*set));
    keys.push_back(eval::config_key(c));
  }

  auto scored_test = score_all(*test, sets);
  if (!scored_test) return report(scored_test.error(), "eval verify");
  auto scored_all = score_all(all, sets);
  if (!scored_all) return report(scored_all.error(), "eval verify");

  nlohmann::json doc;
  doc["config"] = keys.front();
  if (fused) doc["fused_with"] = keys.back();
  doc["images"] = images_list.size();
  for (std::size_t m = 0; m < sets.size(); ++m) {
    const auto& set = sets[m];
    nlohmann::json& j = m == 0 ? doc : doc["fused_model"];
    j["cache_hits"] = set.cache_hits;
    j["computed"] = set.computed;
    j["embed_seconds"] = set.seconds;
    for (int s = 0; s <= static_cast<int>(eval::FaceSource::kFailed); ++s)
      j["face_sources"][std::string(eval::to_string(static_cast<eval::FaceSource>(s)))] = set.counts[s];
    if (a.json) continue;
    std::cout << "config: " << keys[m] << "\n";
    std::cout << "images: " << images_list.size() << " (cache hits " << set.cache_hits << ", computed "
              << set.computed << " in " << num(set.seconds, "%.1f") << " s)\n";
    std::cout << "faces:";
    for (int s = 0; s <= static_cast<int>(eval::FaceSource::kFailed); ++s)
      std::cout << " " << eval::to_string(static_cast<eval::FaceSource>(s)) << " " << set.counts[s];
    std::cout << "\n";
    int shown = 0;
    for (const auto& [path, e] : set.by_path)
      if (e.source == eval::FaceSource::kFailed && shown++ < 10) std::cout << "  failed: " << path << ": " << e.error << "\n";
  }

  // What a user of the fusion gets: the fusion fitted on the training list (or, without one, on the list
  // itself), printed so that it can be stored with the model pack.
  std::vector<std::vector<eval::ScoredPair>> per_model_train;
  if (train) {
    auto t = score_all(*train, sets);
    if (!t) return report(t.error(), "eval verify");
    per_model_train = std::move(*t);
  }
  std::vector<eval::ScoredPair> final_test = scored_test->front();
  std::vector<eval::ScoredPair> scored_train = train ? per_model_train.front() : std::vector<eval::ScoredPair>{};
  if (fused) {
    auto f = eval::fit_fusion(train ? per_model_train : *scored_test);
    if (!f) return report(f.error(), "eval verify");
    doc["fusion"] = fusion_json(*f, keys);
    final_test = eval::fuse(*f, *scored_test);
    if (train) scored_train = eval::fuse(*f, per_model_train);
    if (!a.json) {
      std::cout << "fusion (logistic, fitted on " << (train ? a.train : a.pairs) << "): log-odds(same) = "
                << num(f->bias) << " + " << num(f->weights[0]) << " * d(" << a.embedder << ") + "
                << num(f->weights[1]) << " * d(" << a.fuse << "); fused distance = -log-odds\n";
    }
  }

  if (train) {
    if (fused) {
      // Each model alone on the same protocol, for comparison.
      for (std::size_t m = 0; m < sets.size() && !a.json; ++m) {
        auto c = eval::best_threshold(per_model_train[m]);
        if (!c) return report(c.error(), "eval verify");
        std::cout << "  " << (m == 0 ? a.embedder : a.fuse) << " alone: threshold " << num(c->threshold)
                  << ", accuracy on " << a.pairs << " " << pct(eval::accuracy_at((*scored_test)[m], c->threshold)) << "\n";
      }
    }
    auto choice = eval::best_threshold(scored_train);
    if (!choice) return report(choice.error(), "eval verify");
    const double test_acc = eval::accuracy_at(final_test, choice->threshold);
    doc["train_threshold"] = {{"threshold", choice->threshold}, {"train_accuracy", choice->accuracy},
                              {"test_accuracy", test_acc}, {"train_pairs", train->pairs.size()},
                              {"test_pairs", test->pairs.size()}};
    if (!a.json) {
      std::cout << "threshold from " << a.train << " (" << train->pairs.size() << " pairs): " << num(choice->threshold)
                << " (train accuracy " << pct(choice->accuracy) << ")\n";
      std::cout << "accuracy on " << a.pairs << " (" << test->pairs.size() << " pairs) at that threshold: "
                << pct(test_acc) << "\n";
    }
    if (!a.out.empty()) {
      if (auto s = eval::write_text_file(std::filesystem::path(a.out) / "scores-train.csv",
                                         eval::scores_csv(*train, scored_train));
          !s)
        return report(s.error(), "eval verify");
    }
  }

  auto test_summary = summarise_list("the pair list", *test, *scored_test, a.folds);
  if (!test_summary) return report(test_summary.error(), "eval verify");
  doc["pairs"] = to_json(*test_summary);
  if (!a.json) print_summary(*test_summary, test->pairs.size());
  std::optional<ListSummary> all_summary;
  if (train) {
    auto s = summarise_list("train+test", all, *scored_all, a.folds);
    if (!s) return report(s.error(), "eval verify");
    all_summary = std::move(*s);
    doc["train_plus_test"] = to_json(*all_summary);
    if (!a.json) print_summary(*all_summary, all.pairs.size());
  }

  if (!a.out.empty()) {
    const std::filesystem::path out(a.out);
    for (auto s : {eval::write_text_file(out / "scores.csv", eval::scores_csv(*test, final_test)),
                   eval::write_text_file(out / "roc.svg", eval::roc_svg(test_summary->roc, "ROC: " + pairs_file.filename().string())),
                   all_summary ? eval::write_text_file(out / "roc-train-plus-test.svg",
                                                       eval::roc_svg(all_summary->roc, "ROC: train + test"))
                               : ok_status(),
                   eval::write_text_file(out / "images.csv", images_csv(sets.front())),
                   eval::write_text_file(out / "summary.json", doc.dump(2) + "\n")}) {
      if (!s) return report(s.error(), "eval verify");
    }
    if (!a.json) std::cout << "wrote " << (out / "scores.csv").string() << ", roc.svg, images.csv, summary.json\n";
  }
  if (a.json) std::cout << doc.dump(2) << "\n";
  return kExitOk;
}

void setup_eval(CLI::App& app) {
  auto* ev = app.add_subcommand("eval", "measure accuracy on labelled data");
  ev->require_subcommand(1);
  auto args = std::make_shared<EvalArgs>();
  auto* v = ev->add_subcommand("verify", "1:1 verification accuracy on a pair list (LFW pairs*.txt or a,b,same CSV)");
  v->add_option("--pairs", args->pairs, "pair list to evaluate (LFW format, or .csv with a,b,same)")->required();
  v->add_option("--train", args->train, "pair list to choose the threshold on (e.g. pairsDevTrain.txt)");
  v->add_option("--images", args->images, "folder holding the images (LFW: the <name>/ folders; default: <pairs folder>/images)");
  v->add_option("--detector", args->detector, "ssd, tiny, blazeface or blazeface-front")->capture_default_str();
  v->add_option("--align", args->align, "similarity (5-point warp), mean-face (dlib's 33-point fit to its mean face) or crop (face-api.js axis-aligned crop)")->capture_default_str();
  v->add_option("--landmarks", args->landmarks, "68, tiny or none (BlazeFace keypoints)")->capture_default_str();
  v->add_option("--embedder", args->embedder, "dlib, mobilefacenet, or fusion (the pipeline's dlib + MobileFaceNet templates scored with the calibration stored with the models)")->capture_default_str();
  v->add_option("--fuse", args->fuse, "a second embedder (dlib or mobilefacenet) whose distances are fused with --embedder's by logistic regression fitted on --train (in the k-fold: on the other folds)");
  v->add_flag("--flip-chip", args->flip_chip, "the pipeline's flip averaging (PipelineOptions::flip: each aligned chip and its mirror image)");
  v->add_flag("--flip", args->flip, "average the templates of the face and its mirror image");
  v->add_option("--jitters", args->jitters, "average the templates of N deterministic jitters of each chip too (0-12; dlib's num_jitters)")->capture_default_str();
  v->add_flag("--refine-landmarks,!--no-refine-landmarks", args->refine_landmarks,
              "run the 68-point net again on the box its first landmarks imply")->capture_default_str();
  v->add_flag("--no-fallback", args->no_fallback, "no canvas-SSD/BlazeFace/centre-crop retry when no face is found");
  v->add_flag("--any-subject", args->any_subject, "take a stage's face nearest the centre even when it is far from it (default: only faces within 0.15 of the side count; others go to the next stage)");
  v->add_option("--cache", args->cache, "folder for the embedding cache (re-runs take seconds)");
  v->add_option("--out", args->out, "folder for scores.csv, roc.svg and summary.json");
  v->add_option("--threads", args->threads, "worker threads, one pipeline each")->capture_default_str();
  v->add_option("--folds", args->folds, "k of the k-fold protocol (a pairs.txt with folds uses its own)")->capture_default_str();
  v->add_flag("--json", args->json, "print the summary as JSON");
  v->callback([args] { set_exit(run_verify(*args)); });
}

Registrar r(70, setup_eval);

}  // namespace

}  // namespace faceguard::cli
