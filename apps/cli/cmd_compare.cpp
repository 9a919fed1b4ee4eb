// `faceguard compare A B`: are the faces in two images the same person? Distance, similarity and the
// decision at a stated threshold; says which face of a group photo was used, or compares all with --all.
#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "face_common.hpp"
#include "faceguard/compare.hpp"
#include "faceguard/json.hpp"
#include "faceguard/pipeline.hpp"

namespace faceguard::cli {
namespace {

struct CompareArgs {
  std::string a, b;
  float threshold = -1.f;
  bool json = false;
  int face_a = -1, face_b = -1;
  bool all = false;
  bool exit_status = false;
  bool single = false;
  ModelArgs model;
};

// One side of the comparison: its image, faces, and the templates computed so far.
struct Side {
  std::string path;
  cv::Mat image;
  std::vector<Face> faces;
  std::vector<Embedding> embeddings;  // parallel to `faces` for --all, else one entry
  FaceChoice choice;
};

std::string fmt(double v, int decimals) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(decimals) << v;
  return s.str();
}

nlohmann::json face_brief(const Face& f, std::size_t index) {
  return {{"index", index}, {"box", to_json(f.box)}, {"score", json_number(f.score)}};
}

// Detect, and embed the chosen face (or all of them). Returns an exit code on failure.
int prepare(Side& s, Pipeline& pipe, const CompareArgs& a, int requested) {
  auto faces = pipe.detect(s.image);
  if (!faces) return report(faces.error(), s.path);
  s.faces = std::move(*faces);
  if (a.all) {
    if (s.faces.empty()) return report(make_error(ErrorCode::kNoFace, "no face found in " + s.path));
    for (std::size_t i = 0; i < s.faces.size(); ++i) {
      auto e = pipe.embed_face(s.image, s.faces[i]);
      if (!e) return report(e.error(), s.path + ": face #" + std::to_string(i));
      s.embeddings.push_back(std::move(*e));
    }
    return kExitOk;
  }
  auto c = choose_face(s.faces, requested, a.single, s.path);
  if (!c) return report(c.error());
  s.choice = *c;
  auto e = pipe.embed_face(s.image, s.faces[c->index]);
  if (!e) return report(e.error(), s.path + ": face #" + std::to_string(c->index));
  s.embeddings.push_back(std::move(*e));
  return kExitOk;
}

std::string verdict(const Comparison& c) { return c.same ? "SAME person" : "DIFFERENT people"; }

int run_compare(const CompareArgs& a) {
  // Both images are read before the models are loaded, so bad files fail fast.
  Side sa{a.a, {}, {}, {}, {}}, sb{a.b, {}, {}, {}, {}};
  for (Side* s : {&sa, &sb}) {
    auto img = read_image(s->path);
    if (!img) return report_image(img.error(), s->path);
    s->image = std::move(*img);
  }
  auto pack = open_models();
  if (!pack) return report(pack.error(), "compare");
  auto popt = pipeline_options(a.model);
  if (!popt) return report(popt.error(), "compare");
  auto pipe = Pipeline::create(*pack, *popt);
  if (!pipe) return report(pipe.error(), "compare");

  if (int rc = prepare(sa, **pipe, a, a.face_a); rc != kExitOk) return rc;
  if (int rc = prepare(sb, **pipe, a, a.face_b); rc != kExitOk) return rc;

  const CompareOptions copt{.threshold = a.threshold};
  const std::string& model_id = sa.embeddings.front().model_id;
  const Metric metric = metric_for(model_id);
  nlohmann::json out{{"model_id", model_id}, {"metric", to_string(metric)}};

  if (!a.all) {
    auto c = compare(sa.embeddings.front(), sb.embeddings.front(), copt);
    if (!c) return report(c.error(), "compare");
    if (a.json) {
      auto side = [](const Side& s) {
        return nlohmann::json{{"path", s.path}, {"face_count", s.faces.size()},
                              {"face", face_brief(s.faces[s.choice.index], s.choice.index)},
                              {"chosen", s.choice.reason}};
      };
      out["a"] = side(sa);
      out["b"] = side(sb);
      out["comparison"] = to_json(*c);
      std::cout << out.dump(2) << "\n";
    } else {
      for (const Side* s : {&sa, &sb}) {
        const Box& bx = s->faces[s->choice.index].box;
        std::cout << (s == &sa ? "A: " : "B: ") << s->path << "  face #" << s->choice.index << " ("
                  << s->choice.reason << ")  box x " << fmt(bx.x, 0) << " y " << fmt(bx.y, 0) << " w "
                  << fmt(bx.width, 0) << " h " << fmt(bx.height, 0) << "\n";
      }
      std::cout << "distance " << fmt(c->distance, 4) << " (" << to_string(metric) << ")  similarity "
                << fmt(c->similarity, 3) << "  threshold " << fmt(c->threshold, 3) << "  -> " << verdict(*c)
                << "\n";
    }
    return a.exit_status && !c->same ? kExitDifferent : kExitOk;
  }

  // --all: every face of A against every face of B.
  nlohmann::json pairs = nlohmann::json::array();
  bool any_same = false;
  std::size_t best_i = 0, best_j = 0;
  Comparison best{};
  bool have_best = false;
  for (std::size_t i = 0; i < sa.embeddings.size(); ++i) {
    for (std::size_t j = 0; j < sb.embeddings.size(); ++j) {
      auto c = compare(sa.embeddings[i], sb.embeddings[j], copt);
      if (!c) return report(c.error(), "compare");
      any_same = any_same || c->same;
      if (!have_best || c->distance < best.distance) {
        best = *c;
        best_i = i;
        best_j = j;
        have_best = true;
      }
      nlohmann::json pj = to_json(*c);
      pj["face_a"] = i;
      pj["face_b"] = j;
      pairs.push_back(std::move(pj));
      if (!a.json) {
        std::cout << "A#" << i << " B#" << j << "  distance " << fmt(c->distance, 4) << "  similarity "
                  << fmt(c->similarity, 3) << "  " << (c->same ? "same" : "different") << "\n";
      }
    }
  }
  if (a.json) {
    auto side = [](const Side& s) {
      nlohmann::json faces = nlohmann::json::array();
      for (std::size_t i = 0; i < s.faces.size(); ++i) faces.push_back(face_brief(s.faces[i], i));
      return nlohmann::json{{"path", s.path}, {"face_count", s.faces.size()}, {"faces", std::move(faces)}};
    };
    out["a"] = side(sa);
    out["b"] = side(sb);
    out["threshold"] = json_number(best.threshold);
    out["pairs"] = std::move(pairs);
    nlohmann::json bj = to_json(best);
    bj["face_a"] = best_i;
    bj["face_b"] = best_j;
    out["best"] = std::move(bj);
    std::cout << out.dump(2) << "\n";
  } else {
    std::cout << sa.faces.size() << " x " << sb.faces.size() << " faces compared (" << to_string(metric)
              << ", threshold " << fmt(best.threshold, 3) << "); closest: A#" << best_i << " B#" << best_j
              << " distance " << fmt(best.distance, 4) << " -> " << verdict(best) << "\n";
  }
  return a.exit_status && !any_same ? kExitDifferent : kExitOk;
}

void setup_compare(CLI::App& app) {
  auto args = std::make_shared<CompareArgs>();
  auto* sub = app.add_subcommand("compare", "are the faces in two images the same person?");
  sub->add_option("a", args->a, "first image")->required();
  sub->add_option("b", args->b, "second image")->required();
  sub->add_option("--threshold", args->threshold,
                  "distance threshold (default: the model's: dlib 0.6 Euclidean; mobilefacenet 0.6 cosine, "
                  "calibrated on LFW View 1)")
      ->check(positive_finite());
  sub->add_flag("--json", args->json, "print JSON (fields in docs/cli.md)");
  auto* fa = sub->add_option("--face-a", args->face_a, "use face N of A (default: the largest face)")
                 ->check(CLI::NonNegativeNumber);
  auto* fb = sub->add_option("--face-b", args->face_b, "use face N of B (default: the largest face)")
                 ->check(CLI::NonNegativeNumber);
  auto* all = sub->add_flag("--all", args->all, "compare every face of A with every face of B");
  all->excludes(fa)->excludes(fb);
  sub->add_flag("--exit-status", args->exit_status,
                "exit 10 when the faces are different (with --all: when no pair is the same)");
  sub->add_flag("--single", args->single, "require exactly one face in each image (exit 5 otherwise)")
      ->excludes(all);
  add_model_options(sub, args->model, /*with_embedder=*/true);
  sub->footer(
      "similarity = 1/(1+exp(k*(distance-threshold))): 0.5 at the threshold, 0.95 at 0.2 below it (dlib).\n"
      "Faces are numbered as `faceguard detect` numbers them. Exit codes: 0 compared (same or different),\n"
      "10 different with --exit-status, 3 file missing, 4 not a usable image, 5 no face (or several with\n"
      "--single), 6 models missing (see docs/cli.md).");
  sub->callback([args] { set_exit(run_compare(*args)); });
}

Registrar registrar(22, setup_compare);

}  // namespace
}  // namespace faceguard::cli
