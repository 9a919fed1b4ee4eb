// `faceguard demo`: the main job, run by the README's first command. On the sample photos of the model pack
// (or --images), find every face, write an annotated copy of each photo and a JSON report with the faces and
// a cross-photo comparison (each face's best match in the other photos), and print a short summary.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>

#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>

#include "cli.hpp"
#include "face_common.hpp"
#include "faceguard/compare.hpp"
#include "faceguard/draw.hpp"
#include "faceguard/json.hpp"
#include "faceguard/pipeline.hpp"

namespace faceguard::cli {
namespace {

namespace fs = std::filesystem;

struct DemoArgs {
  std::string out = "faceguard-demo";
  std::vector<std::string> images;
  float threshold = -1.f;
  bool embeddings = false;
  ModelArgs model;
};

struct Photo {
  fs::path path;
  std::string name;  // unique short name used in face ids: the file stem, "-2" etc. on collisions
  fs::path annotated;
  int width = 0, height = 0;
  double ms = 0;
  std::vector<AnalyzedFace> faces;
  std::optional<Error> error;
  int exit_code = kExitOk;
};

struct FaceRef {
  std::size_t photo = 0, face = 0;
};

struct Match {
  FaceRef face;
  std::optional<FaceRef> best;
  Comparison comparison{};
};

std::string face_id(const std::vector<Photo>& photos, FaceRef r) {
  return photos[r.photo].name + "#" + std::to_string(r.face);
}

std::string fmt(double v, int decimals) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(decimals) << v;
  return s.str();
}

// Unique names from file stems: two "a/x.jpg" and "b/x.jpg" become "x" and "x-2".
void assign_names(std::vector<Photo>& photos) {
  std::map<std::string, int> seen;
  for (auto& p : photos) {
    std::string stem = p.path.stem().string();
    if (stem.empty()) stem = "image";
    const int n = ++seen[stem];
    p.name = n == 1 ? stem : stem + "-" + std::to_string(n);
  }
}

// Every face against every face of the other photos; keeps the closest.
Result<std::vector<Match>> best_matches(const std::vector<Photo>& photos, const CompareOptions& opt) {
  std::vector<Match> out;
  for (std::size_t p = 0; p < photos.size(); ++p) {
    for (std::size_t f = 0; f < photos[p].faces.size(); ++f) {
      Match m{{p, f}, std::nullopt, {}};
      for (std::size_t q = 0; q < photos.size(); ++q) {
        if (q == p) continue;
        for (std::size_t g = 0; g < photos[q].faces.size(); ++g) {
          FG_ASSIGN_OR_RETURN(auto c, compare(photos[p].faces[f].embedding, photos[q].faces[g].embedding, opt));
          if (!m.best || c.distance < m.comparison.distance) {
            m.best = FaceRef{q, g};
            m.comparison = c;
          }
        }
      }
      out.push_back(m);
    }
  }
  return out;
}

Status write_annotated(const Photo& p, const cv::Mat& img, const std::vector<std::string>& labels) {
  cv::Mat canvas = img.clone();
  std::vector<Face> faces;
  for (const auto& af : p.faces) faces.push_back(af.face);
  FG_TRY_STATUS(draw_faces(canvas, faces, labels));
  try {
    // JPEG quality 90: the annotated 1920 px photos stay around 0.5 MB instead of 4-5 MB as PNG.
    if (!cv::imwrite(p.annotated.string(), canvas, {cv::IMWRITE_JPEG_QUALITY, 90})) {
      return make_error(ErrorCode::kIoError, "cannot write " + p.annotated.string());
    }
  } catch (const cv::Exception& e) {
    return make_error(ErrorCode::kIoError, "cannot write " + p.annotated.string() + ": " + e.err);
  }
  return ok_status();
}

int run_demo(const DemoArgs& a) {
  Stopwatch total;
  auto pack = open_models();
  if (!pack) return report(pack.error(), "demo");
  std::vector<fs::path> inputs;
  if (a.images.empty()) {
    inputs = pack->sample_images();
    if (inputs.empty()) {
      return report(make_error(ErrorCode::kNotFound, "the model pack in " + pack->root().string() +
                                                         " has no sample photos; pass --images"),
                    "demo");
    }
  } else {
    inputs.assign(a.images.begin(), a.images.end());
  }
  auto popt = pipeline_options(a.model);
  if (!popt) return report(popt.error(), "demo");
  Stopwatch load_clock;
  auto pipe = Pipeline::create(*pack, *popt);
  if (!pipe) return report(pipe.error(), "demo");
  const double load_ms = load_clock.ms();

  const fs::path out_dir = a.out;
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec || !fs::is_directory(out_dir)) {
    return report(make_error(ErrorCode::kIoError, "cannot create " + out_dir.string() + ": " + ec.message()), "demo");
  }

  std::vector<Photo> photos(inputs.size());
  for (std::size_t i = 0; i < inputs.size(); ++i) photos[i].path = inputs[i];
  assign_names(photos);

  std::vector<cv::Mat> images(photos.size());
  for (std::size_t i = 0; i < photos.size(); ++i) {
    Photo& p = photos[i];
    p.annotated = out_dir / (p.name + "-faces.jpg");
    auto img = read_image(p.path);
    if (!img) {
      p.exit_code = report_image(img.error(), p.path);
      p.error = img.error();
      continue;
    }
    p.width = img->cols;
    p.height = img->rows;
    Stopwatch clock;
    auto faces = (*pipe)->analyze(*img);
    p.ms = clock.ms();
    if (!faces) {
      p.exit_code = report(faces.error(), p.path.string());
      p.error = faces.error();
      continue;
    }
    p.faces = std::move(*faces);
    images[i] = std::move(*img);
  }

  const CompareOptions copt{.threshold = a.threshold};
  auto matches = best_matches(photos, copt);
  if (!matches) return report(matches.error(), "demo");
  std::map<std::pair<std::size_t, std::size_t>, const Match*> match_of;
  for (const auto& m : *matches) match_of[{m.face.photo, m.face.face}] = &m;

  // Annotate: "#i" per face, plus "= other#j" when its best match in another photo is the same person.
  int exit = kExitOk;
  for (std::size_t i = 0; i < photos.size(); ++i) {
    Photo& p = photos[i];
    if (p.error) continue;
    std::vector<std::string> labels;
    for (std::size_t f = 0; f < p.faces.size(); ++f) {
      std::string label = "#" + std::to_string(f);
      const Match* m = match_of[{i, f}];
      if (m && m->best && m->comparison.same) label += " = " + face_id(photos, *m->best);
      labels.push_back(std::move(label));
    }
    if (auto s = write_annotated(p, images[i], labels); !s) {
      p.exit_code = report(s.error(), "demo");
      p.error = s.error();
    }
  }

  // The JSON report.
  std::string model_id = (*pipe)->embedder().model_id();
  float threshold = a.threshold > 0 ? a.threshold : default_threshold(model_id);
  nlohmann::json doc;
  doc["faceguard"] = "0.1.0";
  doc["models"] = {{"detector", a.model.detector}, {"embedder", model_id},
                   {"align", a.model.align}, {"metric", to_string(metric_for(model_id))},
                   {"threshold", json_number(threshold)}, {"model_dir", pack->root().string()}};
  doc["images"] = nlohmann::json::array();
  std::size_t face_count = 0, ok_photos = 0;
  for (std::size_t i = 0; i < photos.size(); ++i) {
    const Photo& p = photos[i];
    nlohmann::json pj{{"name", p.name}, {"path", p.path.string()}};
    if (p.error) {
      pj["error"] = {{"code", to_string(p.error->code)}, {"message", p.error->message}};
      if (exit == kExitOk) exit = p.exit_code;
    } else {
      ++ok_photos;
      pj["annotated"] = p.annotated.string();
      pj["width"] = p.width;
      pj["height"] = p.height;
      pj["elapsed_ms"] = p.ms;
    }
    pj["faces"] = nlohmann::json::array();
    for (std::size_t f = 0; f < p.faces.size(); ++f) {
      nlohmann::json fj = a.embeddings ? to_json(p.faces[f]) : to_json(p.faces[f].face);
      fj["id"] = face_id(photos, {i, f});
      fj["index"] = f;
      pj["faces"].push_back(std::move(fj));
    }
    face_count += p.faces.size();
    doc["images"].push_back(std::move(pj));
  }
  doc["matches"] = nlohmann::json::array();
  std::vector<const Match*> same;
  for (const auto& m : *matches) {
    nlohmann::json mj{{"face", face_id(photos, m.face)}};
    if (m.best) {
      nlohmann::json bj = to_json(m.comparison);
      bj["face"] = face_id(photos, *m.best);
      mj["best_match"] = std::move(bj);
      // Each same-person pair once: from the face whose best match points back at it with the lower id, or
      // one-directional matches as they come.
      if (m.comparison.same) {
        const Match* back = match_of[{m.best->photo, m.best->face}];
        const bool mutual = back && back->best && back->best->photo == m.face.photo && back->best->face == m.face.face;
        if (!mutual || std::make_pair(m.face.photo, m.face.face) < std::make_pair(m.best->photo, m.best->face)) {
          same.push_back(&m);
        }
      }
    } else {
      mj["best_match"] = nullptr;
    }
    doc["matches"].push_back(std::move(mj));
  }
  std::sort(same.begin(), same.end(),
            [](const Match* x, const Match* y) { return x->comparison.distance < y->comparison.distance; });
  const double total_ms = total.ms();
  doc["summary"] = {{"images", photos.size()}, {"images_ok", ok_photos}, {"faces", face_count},
                    {"same_person_pairs", same.size()}, {"model_load_ms", load_ms}, {"total_ms", total_ms}};

  const fs::path report_path = out_dir / "report.json";
  {
    std::ofstream f(report_path);
    f << doc.dump(2) << "\n";
    if (!f) return report(make_error(ErrorCode::kIoError, "cannot write " + report_path.string()), "demo");
  }

  // The human summary.
  std::cout << "faceguard demo: " << photos.size() << " photos, " << face_count << " faces; detector "
            << a.model.detector << ", descriptor " << model_id << " (" << to_string(metric_for(model_id))
            << " distance, threshold " << fmt(threshold, 2) << ")\n";
  for (const auto& p : photos) {
    std::cout << "  " << std::left << std::setw(14) << p.name << std::right;
    if (p.error) {
      std::cout << " FAILED: " << p.error->message << "\n";
      continue;
    }
    std::cout << std::setw(3) << p.faces.size() << (p.faces.size() == 1 ? " face " : " faces") << std::setw(7)
              << fmt(p.ms, 0) << " ms  -> " << p.annotated.string() << "\n";
  }
  if (same.empty()) {
    std::cout << "No face matches a face in another photo at this threshold.\n";
  } else {
    std::cout << "Same person across photos (best matches below the threshold):\n";
    for (const Match* m : same) {
      std::cout << "  " << std::left << std::setw(14) << face_id(photos, m->face) << " = " << std::setw(14)
                << face_id(photos, *m->best) << std::right << " distance " << fmt(m->comparison.distance, 3)
                << "  similarity " << fmt(m->comparison.similarity, 2) << "\n";
    }
  }
  std::cout << "Report: " << report_path.string() << "  (models loaded in " << fmt(load_ms, 0) << " ms, total "
            << fmt(total_ms / 1000.0, 1) << " s)\n";
  return exit;
}

void setup_demo(CLI::App& app) {
  auto args = std::make_shared<DemoArgs>();
  auto* sub = app.add_subcommand(
      "demo", "find and match every face in the sample photos: annotated images + a JSON report");
  sub->add_option("--out", args->out, "output folder (default: ./faceguard-demo; created if missing)");
  sub->add_option("--images", args->images, "photos to use instead of the model pack's sample photos");
  sub->add_option("--threshold", args->threshold, "distance threshold (default: the model's)")
      ->check(positive_finite());
  sub->add_flag("--embeddings", args->embeddings, "include every face template in report.json");
  add_model_options(sub, args->model, /*with_embedder=*/true);
  sub->footer(
      "Writes <name>-faces.jpg per photo (boxes, landmarks, face ids; \"#2 = sample4#0\" marks a face whose\n"
      "best match in another photo is below the threshold) and report.json (faces per photo and each face's\n"
      "best match elsewhere). A photo that fails is reported and skipped.\n"
      "Exit codes: 0 ok; else that of the first failed photo (3 missing, 4 not a usable image); 6 models\n"
      "missing (see docs/cli.md).");
  sub->callback([args] { set_exit(run_demo(*args)); });
}

Registrar registrar(10, setup_demo);

}  // namespace
}  // namespace faceguard::cli
