// Running a detector (or the SSD -> canvas SSD -> BlazeFace cascade) over a detection set with worker
// threads, timing each image, and the contact sheet of the faces it missed.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>

#include <opencv2/imgproc.hpp>

#include "faceguard/detector.hpp"
#include "faceguard/eval.hpp"
#include "faceguard/image.hpp"

namespace faceguard::eval {
namespace {

constexpr const char* kCascade = "cascade";

// Each detector's default score threshold (detector.hpp, DetectorOptions::min_score: SSD 0.5 and Tiny 0.5
// as face-api.js; BlazeFace 0.75 as MediaPipe's face_detection graphs).
constexpr float kSsdThreshold = 0.5f;
constexpr float kTinyThreshold = 0.5f;
constexpr float kBlazeThreshold = 0.75f;

float default_threshold(DetectorKind k) {
  switch (k) {
    case DetectorKind::kSsd: return kSsdThreshold;
    case DetectorKind::kTiny: return kTinyThreshold;
    case DetectorKind::kBlazeFaceBack:
    case DetectorKind::kBlazeFaceFront: return kBlazeThreshold;
  }
  return kSsdThreshold;
}

std::vector<ScoredBox> to_scored(const std::vector<Face>& faces, float dx, float dy) {
  std::vector<ScoredBox> out;
  out.reserve(faces.size());
  for (const auto& f : faces) out.push_back({Box{f.box.x - dx, f.box.y - dy, f.box.width, f.box.height}, f.score});
  return out;
}

bool any_at(const std::vector<Face>& faces, float threshold) {
  return std::any_of(faces.begin(), faces.end(), [&](const Face& f) { return f.score >= threshold; });
}

struct Worker {
  std::unique_ptr<Detector> main;   // the detector, or SSD for the cascade (at the score floor)
  std::unique_ptr<Detector> blaze;  // cascade only: BlazeFace back at its own threshold

  // Detections on one image; stage: which cascade stage answered (0 SSD, 1 canvas, 2 BlazeFace, 3 none).
  Result<std::vector<ScoredBox>> detect(const cv::Mat& bgr, int& stage) {
    FG_ASSIGN_OR_RETURN(auto faces, main->detect(bgr));
    if (!blaze || any_at(faces, kSsdThreshold)) {
      stage = 0;
      return to_scored(faces, 0.f, 0.f);
    }
    // The fallback chain of embed_images(): MODELS.md, SSD misses faces that fill the frame; centred on a
    // 2x black canvas the same faces score 0.7-0.99. Boxes are mapped back to the image.
    cv::Mat canvas = cv::Mat::zeros(bgr.rows * 2, bgr.cols * 2, bgr.type());
    const int ox = bgr.cols / 2, oy = bgr.rows / 2;
    bgr.copyTo(canvas(cv::Rect(ox, oy, bgr.cols, bgr.rows)));
    FG_ASSIGN_OR_RETURN(auto on_canvas, main->detect(canvas));
    if (any_at(on_canvas, kSsdThreshold)) {
      stage = 1;
      return to_scored(on_canvas, static_cast<float>(ox), static_cast<float>(oy));
    }
    FG_ASSIGN_OR_RETURN(auto bf, blaze->detect(bgr));
    if (!bf.empty()) {  // BlazeFace runs at its own 0.75, so every face it returns is one the chain accepts
      stage = 2;
      return to_scored(bf, 0.f, 0.f);
    }
    // Nothing passed: keep SSD's sub-threshold boxes for the low end of the curve (all below the operating
    // score, so they never change precision or recall there).
    stage = 3;
    return to_scored(faces, 0.f, 0.f);
  }
};

Result<Worker> make_worker(const ModelPack& pack, const std::string& name, float floor) {
  Worker w;
  DetectorOptions o;
  o.min_score = floor;
  if (name == kCascade) {
    o.kind = DetectorKind::kSsd;
    FG_ASSIGN_OR_RETURN(w.main, Detector::create(pack, o));
    DetectorOptions b;
    b.kind = DetectorKind::kBlazeFaceBack;
    FG_ASSIGN_OR_RETURN(w.blaze, Detector::create(pack, b));
    return w;
  }
  FG_ASSIGN_OR_RETURN(o.kind, parse_detector_kind(name));
  FG_ASSIGN_OR_RETURN(w.main, Detector::create(pack, o));
  return w;
}

cv::Mat tile_of(const cv::Mat& img, const Box& b, const MissSheetOptions& o) {
  const double side = std::max(b.width, b.height) * (1.0 + 2.0 * o.context);
  const double cx = b.x + 0.5 * b.width, cy = b.y + 0.5 * b.height;
  const cv::Rect want(static_cast<int>(std::floor(cx - side / 2)), static_cast<int>(std::floor(cy - side / 2)),
                      std::max(1, static_cast<int>(std::ceil(side))), std::max(1, static_cast<int>(std::ceil(side))));
  // Copy the part inside the image onto a grey square, so that faces at the edge keep their place.
  cv::Mat crop(want.height, want.width, CV_8UC3, cv::Scalar(96, 96, 96));
  const cv::Rect inside = want & cv::Rect(0, 0, img.cols, img.rows);
  if (inside.area() > 0) img(inside).copyTo(crop(inside - want.tl()));
  const double s = static_cast<double>(o.tile) / want.width;
  cv::Mat tile;
  cv::resize(crop, tile, cv::Size(o.tile, o.tile), 0, 0, s < 1.0 ? cv::INTER_AREA : cv::INTER_LINEAR);
  const cv::Point p0(static_cast<int>(std::lround((b.x - want.x) * s)), static_cast<int>(std::lround((b.y - want.y) * s)));
  const cv::Point p1(static_cast<int>(std::lround((b.right() - want.x) * s)),
                     static_cast<int>(std::lround((b.bottom() - want.y) * s)));
  cv::rectangle(tile, p0, p1, cv::Scalar(0, 0, 255), 1);
  char label[16];
  std::snprintf(label, sizeof label, "%dpx", static_cast<int>(std::lround(std::sqrt(b.area()))));
  cv::putText(tile, label, cv::Point(2, o.tile - 4), cv::FONT_HERSHEY_SIMPLEX, 0.35, cv::Scalar(0, 0, 0), 2);
  cv::putText(tile, label, cv::Point(2, o.tile - 4), cv::FONT_HERSHEY_SIMPLEX, 0.35, cv::Scalar(255, 255, 255), 1);
  return tile;
}

}  // namespace

std::vector<std::string> detection_eval_detectors() { return {"ssd", "tiny", "blazeface", "blazeface-front", kCascade}; }

Result<DetectRun> run_detector(const ModelPack& pack, std::span<const DetectionImage> images,
                               const DetectRunOptions& options, const Progress& progress) {
  const auto names = detection_eval_detectors();
  if (std::find(names.begin(), names.end(), options.detector) == names.end())
    return make_error(ErrorCode::kInvalidArgument,
                      "unknown detector '" + options.detector + "' (ssd, tiny, blazeface, blazeface-front, cascade)");
  if (!(options.score_floor >= 0.f && options.score_floor <= 1.f))
    return make_error(ErrorCode::kInvalidArgument, "the score floor must lie in [0, 1]");
  if (options.threads < 1 || options.threads > 64)
    return make_error(ErrorCode::kInvalidArgument, "threads must be in [1, 64]");
  DetectRun run;
  run.detector = options.detector;
  run.operating_score = options.detector == kCascade ? kSsdThreshold : default_threshold(*parse_detector_kind(options.detector));
  run.detections.resize(images.size());
  run.ms.assign(images.size(), 0.0);
  if (images.empty()) return run;
  const int n_workers = static_cast<int>(std::min<std::size_t>(static_cast<std::size_t>(options.threads), images.size()));
  run.threads = n_workers;
  std::vector<Worker> workers;
  for (int w = 0; w < n_workers; ++w) {
    auto wk = make_worker(pack, options.detector, options.score_floor);
    if (!wk) return std::move(wk).error();
    workers.push_back(std::move(*wk));
  }
  std::vector<std::string> errors(images.size());
  std::vector<int> stages(images.size(), -1);
  std::atomic<std::size_t> next{0};
  std::atomic<bool> crashed{false};
  std::string crash;
  std::mutex mu;
  int done = 0;
  const auto t0 = std::chrono::steady_clock::now();
  auto work = [&](Worker& wk) {
    try {
      for (std::size_t i = next++; i < images.size(); i = next++) {
        auto img = load_image(images[i].image);
        if (!img) {
          errors[i] = img.error().message;
        } else {
          const auto d0 = std::chrono::steady_clock::now();
          auto dets = wk.detect(*img, stages[i]);
          run.ms[i] = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - d0).count();
          if (dets) {
            run.detections[i] = std::move(*dets);
          } else {
            errors[i] = dets.error().message;
          }
        }
        if (progress) {
          std::lock_guard<std::mutex> lock(mu);
          progress(++done, static_cast<int>(images.size()));
        }
      }
    } catch (const std::exception& e) {
      std::lock_guard<std::mutex> lock(mu);
      crashed = true;
      crash = e.what();
      next = images.size();
    }
  };
  std::vector<std::thread> threads;
  for (int w = 1; w < n_workers; ++w) threads.emplace_back(work, std::ref(workers[static_cast<std::size_t>(w)]));
  work(workers[0]);
  for (auto& t : threads) t.join();
  if (crashed) return make_error(ErrorCode::kInternal, "detection worker failed: " + crash);
  run.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (std::size_t i = 0; i < images.size(); ++i) {
    if (!errors[i].empty()) run.errors.push_back(images[i].image.string() + ": " + errors[i]);
    if (options.detector == kCascade && stages[i] >= 0) ++run.cascade_stage[static_cast<std::size_t>(stages[i])];
  }
  return run;
}

Result<cv::Mat> miss_sheet(std::span<const DetectionImage> images, const DetectionEvaluation& evaluation,
                           float operating_score, const MissSheetOptions& options) {
  if (evaluation.truth_match.size() != images.size())
    return make_error(ErrorCode::kInvalidArgument, "miss_sheet: the evaluation is of another image list");
  if (options.tile < 16 || options.tile > 512 || options.columns < 1 || options.columns > 256 || options.max_tiles < 1 ||
      !(options.context >= 0.0 && options.context <= 2.0))
    return make_error(ErrorCode::kInvalidArgument, "miss_sheet: tile 16-512, columns 1-256, max_tiles >= 1, context 0-2");
  struct Miss {
    std::size_t image, box;
    float side;
  };
  std::vector<Miss> misses;
  for (std::size_t i = 0; i < images.size(); ++i) {
    if (evaluation.truth_match[i].size() != images[i].truth.size())
      return make_error(ErrorCode::kInvalidArgument, "miss_sheet: the evaluation is of other truth boxes");
    for (std::size_t j = 0; j < images[i].truth.size(); ++j)
      if (!images[i].truth[j].difficult && evaluation.truth_match[i][j] < operating_score)
        misses.push_back({i, j, std::sqrt(images[i].truth[j].box.area())});
  }
  if (misses.empty()) return cv::Mat();
  // Largest first; equal sizes in image order, so the sheet is the same on every run.
  std::stable_sort(misses.begin(), misses.end(), [](const Miss& a, const Miss& b) { return a.side > b.side; });
  if (misses.size() > static_cast<std::size_t>(options.max_tiles)) misses.resize(static_cast<std::size_t>(options.max_tiles));
  // Tiles are placed in image order while each image is decoded once, then read by their rank.
  std::vector<std::size_t> order(misses.size());
  for (std::size_t k = 0; k < order.size(); ++k) order[k] = k;
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return misses[a].image < misses[b].image; });
  const int n = static_cast<int>(misses.size());
  const int cols = std::min(options.columns, n);
  const int rows = (n + cols - 1) / cols;
  cv::Mat sheet(rows * options.tile, cols * options.tile, CV_8UC3, cv::Scalar(255, 255, 255));
  try {
    std::size_t loaded = images.size();
    cv::Mat img;
    for (std::size_t k : order) {
      const Miss& m = misses[k];
      if (m.image != loaded) {
        auto r = load_image(images[m.image].image);
        img = r ? std::move(*r) : cv::Mat();  // an unreadable image (its faces are misses) leaves blank tiles
        loaded = m.image;
      }
      if (img.empty()) continue;
      const cv::Mat tile = tile_of(img, images[m.image].truth[m.box].box, options);
      const int at = static_cast<int>(k);
      tile.copyTo(sheet(cv::Rect((at % cols) * options.tile, (at / cols) * options.tile, options.tile, options.tile)));
    }
  } catch (const cv::Exception& e) {
    return make_error(ErrorCode::kInternal, std::string("miss_sheet: ") + e.what());
  }
  return sheet;
}

}  // namespace faceguard::eval
