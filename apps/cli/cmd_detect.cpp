// `faceguard detect IMAGE...`: faces (box, score, landmarks) per image, as text or JSON, optionally drawn.
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <memory>

#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>

#include "cli.hpp"
#include "face_common.hpp"
#include "faceguard/detector.hpp"
#include "faceguard/draw.hpp"
#include "faceguard/json.hpp"
#include "faceguard/landmarker.hpp"
#include "faceguard/pipeline.hpp"

namespace faceguard::cli {
namespace {

struct DetectArgs {
  std::vector<std::string> images;
  bool json = false;
  std::string draw;
  bool landmarks = false;
  int max_faces = 0;
  ModelArgs model;
};

// OUT.png for a single image; OUT-1.png, OUT-2.png, ... (1-based, in argument order) for several.
std::filesystem::path draw_path(const std::string& out, std::size_t index, std::size_t count) {
  if (count == 1) return out;
  std::filesystem::path p(out);
  const std::string name = p.stem().string() + "-" + std::to_string(index + 1) + p.extension().string();
  return p.parent_path() / name;
}

Status write_image(const std::filesystem::path& path, const cv::Mat& img) {
  try {
    if (!cv::imwrite(path.string(), img)) {
      return make_error(ErrorCode::kIoError, "cannot write " + path.string());
    }
  } catch (const cv::Exception& e) {
    // Unknown extension or encoder failure.
    return make_error(ErrorCode::kIoError, "cannot write " + path.string() + ": " + e.err);
  }
  return ok_status();
}

void print_text(const std::string& name, const cv::Mat& img, const std::vector<Face>& faces, double ms) {
  std::cout << name << ": " << faces.size() << (faces.size() == 1 ? " face" : " faces") << " (" << img.cols << "x"
            << img.rows << ", " << std::fixed << std::setprecision(0) << ms << " ms)\n";
  for (std::size_t i = 0; i < faces.size(); ++i) {
    const Face& f = faces[i];
    std::cout << "  #" << i << "  score " << std::setprecision(3) << f.score << "  box x " << std::setprecision(1)
              << f.box.x << " y " << f.box.y << " w " << f.box.width << " h " << f.box.height;
    if (!f.landmarks.empty()) std::cout << "  " << f.landmarks.size() << " landmarks (" << to_string(f.scheme) << ")";
    std::cout << "\n";
  }
  std::cout.unsetf(std::ios::floatfield);
}

int run_detect(const DetectArgs& a) {
  auto pack = open_models();
  if (!pack) return report(pack.error(), "detect");
  auto popt = pipeline_options(a.model);
  if (!popt) return report(popt.error(), "detect");
  // The detect command needs no descriptor, so it composes the detector and landmarker itself instead of
  // loading a whole Pipeline.
  auto detector = Detector::create(*pack, popt->detector);
  if (!detector) return report(detector.error(), "detect");
  std::unique_ptr<Landmarker> landmarker;
  if (a.landmarks) {
    auto lm = Landmarker::create(*pack, {.tiny = a.model.tiny_landmarks});
    if (!lm) return report(lm.error(), "detect");
    landmarker = std::move(*lm);
  }

  int exit = kExitOk;
  nlohmann::json out = {{"detector", a.model.detector}, {"images", nlohmann::json::array()}};
  for (std::size_t n = 0; n < a.images.size(); ++n) {
    const std::filesystem::path path = a.images[n];
    nlohmann::json entry{{"path", path.string()}};
    auto fail = [&](const Error& e, int code) {
      if (exit == kExitOk) exit = code;
      entry["error"] = {{"code", to_string(e.code)}, {"message", e.message}};
      out["images"].push_back(entry);
    };
    auto img = read_image(path);
    if (!img) {
      fail(img.error(), report_image(img.error(), path));
      continue;
    }
    Stopwatch clock;
    auto faces = (*detector)->detect(*img);
    if (!faces) {
      fail(faces.error(), report(faces.error(), path.string()));
      continue;
    }
    if (a.max_faces > 0 && faces->size() > static_cast<std::size_t>(a.max_faces)) faces->resize(a.max_faces);
    bool landmark_failed = false;
    for (auto& f : *faces) {
      if (!landmarker) break;
      auto pts = landmarker->landmarks(*img, landmark_box(f));
      if (!pts) {
        fail(pts.error(), report(pts.error(), path.string() + ": landmarks"));
        landmark_failed = true;
        break;
      }
      f.landmarks = std::move(*pts);
      f.scheme = LandmarkScheme::kIbug68;
    }
    if (landmark_failed) continue;
    const double ms = clock.ms();

    entry["width"] = img->cols;
    entry["height"] = img->rows;
    entry["elapsed_ms"] = ms;
    entry["faces"] = nlohmann::json::array();
    for (std::size_t i = 0; i < faces->size(); ++i) {
      nlohmann::json fj = to_json((*faces)[i]);
      fj["index"] = i;
      entry["faces"].push_back(std::move(fj));
    }
    if (!a.draw.empty()) {
      cv::Mat canvas = img->clone();
      const auto target = draw_path(a.draw, n, a.images.size());
      Status s = draw_faces(canvas, *faces);
      if (s) s = write_image(target, canvas);
      if (!s) {
        fail(s.error(), report(s.error(), "--draw"));
        continue;
      }
      entry["drawn"] = target.string();
    }
    if (!a.json) {
      print_text(path.string(), *img, *faces, ms);
      if (entry.contains("drawn")) std::cout << "  drawn to " << entry["drawn"].get<std::string>() << "\n";
    }
    out["images"].push_back(std::move(entry));
  }
  if (a.json) std::cout << out.dump(2) << "\n";
  return exit;
}

void setup_detect(CLI::App& app) {
  auto args = std::make_shared<DetectArgs>();
  auto* sub = app.add_subcommand("detect", "find faces in images: boxes, scores and (with --landmarks) 68 points");
  sub->add_option("images", args->images, "image files (JPEG, PNG, BMP, WebP, TIFF, PNM)")->required();
  sub->add_flag("--json", args->json, "print one JSON document instead of text");
  sub->add_option("--draw", args->draw,
                  "write an annotated copy to this file; with several images, OUT-1.png, OUT-2.png, ... "
                  "(numbered in argument order)");
  sub->add_flag("--landmarks", args->landmarks, "add 68-point landmarks to every face");
  sub->add_option("--max-faces", args->max_faces, "keep at most N faces per image, by score (0: all)")
      ->check(CLI::NonNegativeNumber);
  add_model_options(sub, args->model, /*with_embedder=*/false);
  sub->footer(
      "Faces are numbered from 0 in descending score; `embed --face N` and `compare --face-a N` use the same\n"
      "numbers (with the same --detector and --min-score). Images that fail are reported on stderr (and as\n"
      "\"error\" in --json) and the others are still processed; the exit status is that of the first failure.\n"
      "Exit codes: 0 ok, 3 file missing, 4 not a usable image, 6 models missing (see docs/cli.md).");
  sub->callback([args] { set_exit(run_detect(*args)); });
}

Registrar registrar(20, setup_detect);

}  // namespace
}  // namespace faceguard::cli
