// Embedding the images of a pair list for verification evaluation: one face per image, found by the
// configured detector or, failing that, by a fallback chain, then scoring every pair.
#include <algorithm>
#include <array>
#include <optional>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cmath>
#include <exception>
#include <limits>
#include <mutex>
#include <sstream>
#include <thread>

#include <opencv2/core.hpp>

#include "faceguard/compare.hpp"
#include "faceguard/eval.hpp"
#include "faceguard/image.hpp"

namespace faceguard::eval {
namespace {

// Bump when anything here changes how an image becomes a template, so that old cache files are not reused.
constexpr const char* kEmbedRecipe = "eval-embed-v1";

// LFW deep-funneled images centre the face. Measured with SSD on every 12th of the 4,992 View 1 images
// (416 images, 355 with a face): median box centre (0.491, 0.517) of the image, median side (sqrt of the
// area) 0.433 of the image side. The last-resort box is that square.
constexpr float kCentreBoxFraction = 0.433f;
constexpr float kCentreX = 0.491f;
constexpr float kCentreY = 0.517f;

// LFW View 1 failures with SSD's first face (docs/eval.md): 4 of the 9 same-person pairs the dlib pipeline
// rejected used a face that was not the subject (a false detection at the top edge, the neighbour on a
// podium, a second person), with box centres 54-105 px off the centre of the 250 px image; the subjects SSD
// finds lie within a few pixels of it (median centre (0.491, 0.517) of the side). 0.15 of the side (37 px)
// keeps every plausible subject and drops those.
constexpr float kMaxCentreOffset = 0.15f;

bool near_centre(const Face& f, float cx, float cy, float side) {
  const float dx = f.box.x + 0.5f * f.box.width - cx;
  const float dy = f.box.y + 0.5f * f.box.height - cy;
  return std::hypot(dx, dy) <= kMaxCentreOffset * side;
}

// Of the faces an image holds, the subject: the one nearest the reference centre among those at least a
// quarter the area of the largest (a small background face near the centre must not win).
const Face* nearest_face(const std::vector<Face>& faces, float cx, float cy) {
  if (faces.empty()) return nullptr;
  float max_area = 0.f;
  for (const auto& f : faces) max_area = std::max(max_area, f.box.area());
  const Face* best = nullptr;
  float best_d = std::numeric_limits<float>::max();
  for (const auto& f : faces) {
    if (f.box.area() < 0.25f * max_area) continue;
    const float dx = f.box.x + 0.5f * f.box.width - cx;
    const float dy = f.box.y + 0.5f * f.box.height - cy;
    const float d = dx * dx + dy * dy;
    if (d < best_d) {
      best_d = d;
      best = &f;
    }
  }
  return best;
}

// iBUG-68 index of each point's mirror image (jaw, brows, nose, eyes and mouth reversed left to right).
std::array<int, 68> ibug68_mirror() {
  std::array<int, 68> m{};
  for (int i = 0; i <= 16; ++i) m[i] = 16 - i;    // jaw
  for (int i = 17; i <= 26; ++i) m[i] = 43 - i;   // brows 17..21 <-> 26..22
  for (int i = 27; i <= 30; ++i) m[i] = i;        // nose bridge
  for (int i = 31; i <= 35; ++i) m[i] = 66 - i;   // nostrils
  const int eyes[12][2] = {{36, 45}, {37, 44}, {38, 43}, {39, 42}, {40, 47}, {41, 46},
                           {45, 36}, {44, 37}, {43, 38}, {42, 39}, {47, 40}, {46, 41}};
  for (const auto& e : eyes) m[e[0]] = e[1];
  for (int i = 48; i <= 54; ++i) m[i] = 102 - i;  // outer lip, upper
  for (int i = 55; i <= 59; ++i) m[i] = 114 - i;  // outer lip, lower
  for (int i = 60; i <= 64; ++i) m[i] = 124 - i;  // inner lip, upper
  for (int i = 65; i <= 67; ++i) m[i] = 132 - i;  // inner lip, lower
  return m;
}

// The face as it appears in the horizontally flipped image (cv::flip code 1): x -> width - 1 - x for
// points, boxes mirrored edge to edge, and image-left/right landmarks swapped so that the scheme holds.
Face mirror_face(const Face& f, int width) {
  Face m = f;
  m.box.x = static_cast<float>(width) - f.box.x - f.box.width;
  std::vector<int> perm(f.landmarks.size());
  for (std::size_t i = 0; i < perm.size(); ++i) perm[i] = static_cast<int>(i);
  if (f.scheme == LandmarkScheme::kIbug68 && f.landmarks.size() == 68) {
    const auto p = ibug68_mirror();
    std::copy(p.begin(), p.end(), perm.begin());
  } else if (f.scheme == LandmarkScheme::kBlazeFace6 && f.landmarks.size() == 6) {
    perm = {1, 0, 2, 3, 5, 4};
  } else if (f.scheme == LandmarkScheme::kFivePoint && f.landmarks.size() == 5) {
    perm = {1, 0, 2, 4, 3};
  }
  for (std::size_t i = 0; i < perm.size(); ++i) {
    const auto& src = f.landmarks[static_cast<std::size_t>(perm[i])];
    m.landmarks[i] = Point2f{static_cast<float>(width - 1) - src.x, src.y};
  }
  return m;
}

struct Worker {
  std::unique_ptr<Pipeline> pipe;
  std::unique_ptr<Detector> ssd;    // canvas fallback
  std::unique_ptr<Detector> blaze;  // second fallback (null when it is the configured detector)
  std::unique_ptr<Landmarker> landmarker;  // for fallback boxes when the pipeline has none of its own

  static Result<Worker> create(const ModelPack& pack, const VerifyConfig& c) {
    Worker w;
    FG_ASSIGN_OR_RETURN(w.pipe, Pipeline::create(pack, c.pipeline));
    if (c.fallback) {
      DetectorOptions so;
      so.kind = DetectorKind::kSsd;
      FG_ASSIGN_OR_RETURN(w.ssd, Detector::create(pack, so));
      if (c.pipeline.detector.kind != DetectorKind::kBlazeFaceBack) {
        DetectorOptions bo;
        bo.kind = DetectorKind::kBlazeFaceBack;
        FG_ASSIGN_OR_RETURN(w.blaze, Detector::create(pack, bo));
      }
      const bool blaze_only = (c.pipeline.detector.kind == DetectorKind::kBlazeFaceBack ||
                               c.pipeline.detector.kind == DetectorKind::kBlazeFaceFront) &&
                              !c.pipeline.landmarks68;
      if (blaze_only) {
        LandmarkerOptions lo;
        lo.tiny = c.pipeline.tiny_landmarks;
        FG_ASSIGN_OR_RETURN(w.landmarker, Landmarker::create(pack, lo));
      }
    }
    return w;
  }

  Result<Embedding> embed_one(const cv::Mat& img, Face face, bool flip) {
    if (face.scheme == LandmarkScheme::kNone && landmarker) {
      FG_ASSIGN_OR_RETURN(face.landmarks, landmarker->landmarks(img, face.box));
      face.scheme = LandmarkScheme::kIbug68;
    }
    FG_ASSIGN_OR_RETURN(auto e, pipe->embed_face(img, face));
    if (!flip) return e;
    cv::Mat mirrored;
    cv::flip(img, mirrored, 1);
    Face mf = mirror_face(face, img.cols);
    FG_ASSIGN_OR_RETURN(auto e2, pipe->embed_face(mirrored, mf));
    if (e2.values.size() != e.values.size()) return make_error(ErrorCode::kInternal, "flipped template differs in size");
    // The mean of the two templates: the descriptor is not mirror-symmetric, and averaging cancels part of
    // its left/right bias (the "flip test" of the face-recognition literature).
    for (std::size_t i = 0; i < e.values.size(); ++i) e.values[i] = 0.5f * (e.values[i] + e2.values[i]);
    return e;
  }

  // known: the face found by an earlier run with the same detection configuration (a face-cache hit).
  ImageEmbedding process(const std::filesystem::path& path, const VerifyConfig& c, const ImageEmbedding* known) {
    ImageEmbedding out = process_untrimmed(path, c, known);
    // OpenCV's messages end in newlines; one line per failure reads better in a report.
    while (!out.error.empty() && std::isspace(static_cast<unsigned char>(out.error.back()))) out.error.pop_back();
    for (auto& ch : out.error)
      if (ch == '\n') ch = ' ';
    return out;
  }

  static cv::Mat canvas_of(const cv::Mat& bgr) {
    cv::Mat canvas = cv::Mat::zeros(bgr.rows * 2, bgr.cols * 2, bgr.type());
    bgr.copyTo(canvas(cv::Rect(bgr.cols / 2, bgr.rows / 2, bgr.cols, bgr.rows)));
    return canvas;
  }

  // Sets out.source and out.face; returns the image the face's coordinates refer to (empty: none found).
  cv::Mat find_face(const cv::Mat& bgr, const VerifyConfig& c, ImageEmbedding& out) {
    const float cx = 0.5f * static_cast<float>(bgr.cols);
    const float cy = 0.5f * static_cast<float>(bgr.rows);
    const float side = static_cast<float>(std::min(bgr.cols, bgr.rows));  // of the original image
    // The stage's subject, or null when it has none (or, with centred_subject, none near the centre).
    auto choose_face = [&](const std::vector<Face>& faces, float rx, float ry) -> const Face* {
      const Face* f = nearest_face(faces, rx, ry);
      if (f != nullptr && c.centred_subject && !near_centre(*f, rx, ry, side)) return nullptr;
      return f;
    };
    auto faces = pipe->detect(bgr);
    if (!faces) {
      out.error = faces.error().message;
      return {};
    }
    if (const Face* f = choose_face(*faces, cx, cy)) {
      out.face = *f;
      out.source = FaceSource::kDetected;
      return bgr;
    }
    if (!c.fallback) {
      out.error = "no face found";
      return {};
    }
    // MODELS.md: SSD's recall collapses when a face fills the frame; centred on a 2x black canvas the
    // same faces score 0.7-0.99.
    cv::Mat canvas = canvas_of(bgr);
    if (auto cf = ssd->detect(canvas)) {
      if (const Face* f = choose_face(*cf, 2.f * cx, 2.f * cy)) {
        out.face = *f;
        out.source = FaceSource::kCanvasSsd;
        return canvas;
      }
    }
    if (blaze) {
      if (auto bf = blaze->detect(bgr)) {
        if (const Face* f = choose_face(*bf, cx, cy)) {
          out.face = *f;
          out.source = FaceSource::kBlazeFace;
          return bgr;
        }
      }
    }
    const float box_side = kCentreBoxFraction * side;
    out.face = Face{};
    out.face.box = Box{kCentreX * static_cast<float>(bgr.cols) - 0.5f * box_side,
                       kCentreY * static_cast<float>(bgr.rows) - 0.5f * box_side, box_side, box_side};
    out.face.detector = "centre-crop";
    out.source = FaceSource::kCentreCrop;
    return bgr;
  }

  ImageEmbedding process_untrimmed(const std::filesystem::path& path, const VerifyConfig& c,
                                   const ImageEmbedding* known) {
    ImageEmbedding out;
    auto img = load_image(path);
    if (!img) {
      out.error = img.error().message;
      return out;
    }
    cv::Mat work;
    if (known && known->source != FaceSource::kFailed) {
      out.source = known->source;
      out.face = known->face;
      work = known->source == FaceSource::kCanvasSsd ? canvas_of(*img) : *img;
    } else {
      work = find_face(*img, c, out);
    }
    if (work.empty()) {
      out.source = FaceSource::kFailed;
      return out;
    }
    auto e = embed_one(work, out.face, c.flip);
    if (!e) {
      out.source = FaceSource::kFailed;
      out.error = e.error().message;
      return out;
    }
    out.embedding = std::move(*e);
    return out;
  }
};

struct FileStamp {
  std::uint64_t size = 0;
  std::int64_t mtime_ns = 0;
  bool ok = false;
};

FileStamp stamp_of(const std::filesystem::path& p) {
  FileStamp s;
  std::error_code ec;
  s.size = std::filesystem::file_size(p, ec);
  if (ec) return s;
  const auto t = std::filesystem::last_write_time(p, ec);
  if (ec) return s;
  s.mtime_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  s.ok = true;
  return s;
}

}  // namespace

std::string_view to_string(FaceSource source) {
  switch (source) {
    case FaceSource::kDetected: return "detected";
    case FaceSource::kCanvasSsd: return "ssd-on-2x-canvas";
    case FaceSource::kBlazeFace: return "blazeface";
    case FaceSource::kCentreCrop: return "centre-crop";
    case FaceSource::kFailed: return "failed";
  }
  return "unknown";
}

std::string detection_key(const VerifyConfig& c) {
  const auto& d = c.pipeline.detector;
  std::ostringstream k;
  k << kEmbedRecipe << ";faces-only;detector=" << to_string(d.kind) << ";min_score=" << d.min_score
    << ";nms=" << d.nms_iou << ";input=" << d.input_size << ";fallback=" << c.fallback;
  if (c.centred_subject) k << ";centred=1";
  return k.str();
}

std::string config_key(const VerifyConfig& c) {
  const auto& p = c.pipeline;
  std::ostringstream k;
  k << kEmbedRecipe << ";detector=" << to_string(p.detector.kind) << ";min_score=" << p.detector.min_score
    << ";nms=" << p.detector.nms_iou << ";input=" << p.detector.input_size << ";lm68=" << p.landmarks68
    << ";tiny_lm=" << p.tiny_landmarks << ";align=" << to_string(p.align)
    << ";embedder=" << (p.embedder.kind == EmbedderKind::kDlibResNet ? "dlib" : "mobilefacenet")
    << ";flip=" << c.flip << ";fallback=" << c.fallback;
  // Appended only when set, so that the keys (and cache files) of earlier configurations stay valid.
  if (p.jitters != 0) k << ";jitters=" << p.jitters;
  if (p.refine_landmarks) k << ";refine_lm=1";
  if (c.centred_subject) k << ";centred=1";
  if (p.flip) k << ";chip_flip=1";
  if (p.fuse) k << ";fuse=mobilefacenet";
  return k.str();
}

Result<EmbeddedSet> embed_images(const ModelPack& pack, std::span<const std::filesystem::path> images,
                                 const VerifyConfig& config, EmbeddingCache& cache, EmbeddingCache* faces,
                                 const Progress& progress) {
  if (config.threads < 1 || config.threads > 64) {
    return make_error(ErrorCode::kInvalidArgument, "threads must be in [1, 64]");
  }
  EmbeddedSet set;
  std::vector<std::size_t> todo;
  std::vector<FileStamp> stamps(images.size());
  for (std::size_t i = 0; i < images.size(); ++i) {
    stamps[i] = stamp_of(images[i]);
    const ImageEmbedding* hit = stamps[i].ok ? cache.find(images[i], stamps[i].size, stamps[i].mtime_ns) : nullptr;
    if (hit) {
      set.by_path[images[i].string()] = *hit;
      ++set.cache_hits;
    } else {
      todo.push_back(i);
    }
  }
  const auto t0 = std::chrono::steady_clock::now();
  if (!todo.empty()) {
    const int n_workers = static_cast<int>(std::min<std::size_t>(static_cast<std::size_t>(config.threads), todo.size()));
    std::vector<Worker> workers;
    for (int w = 0; w < n_workers; ++w) {
      auto wk = Worker::create(pack, config);
      if (!wk) return std::move(wk).error();
      workers.push_back(std::move(*wk));
    }
    std::vector<ImageEmbedding> results(todo.size());
    std::atomic<std::size_t> next{0};
    std::atomic<bool> crashed{false};
    std::string crash;
    std::mutex mu;
    int done = 0;
    auto run = [&](Worker& wk) {
      try {
        for (std::size_t j = next++; j < todo.size(); j = next++) {
          const auto& st = stamps[todo[j]];
          const ImageEmbedding* known =
              faces != nullptr && st.ok ? faces->find(images[todo[j]], st.size, st.mtime_ns) : nullptr;
          results[j] = wk.process(images[todo[j]], config, known);
          if (progress) {
            std::lock_guard<std::mutex> lock(mu);
            progress(++done, static_cast<int>(todo.size()));
          }
        }
      } catch (const std::exception& e) {
        std::lock_guard<std::mutex> lock(mu);
        crashed = true;
        crash = e.what();
        next = todo.size();
      }
    };
    std::vector<std::thread> threads;
    for (int w = 1; w < n_workers; ++w) threads.emplace_back(run, std::ref(workers[static_cast<std::size_t>(w)]));
    run(workers[0]);
    for (auto& t : threads) t.join();
    if (crashed) return make_error(ErrorCode::kInternal, "embedding worker failed: " + crash);
    for (std::size_t j = 0; j < todo.size(); ++j) {
      const std::size_t i = todo[j];
      // Failures are not cached: the next run looks at them again (the file, or the engine, may be fixed).
      if (stamps[i].ok && results[j].source != FaceSource::kFailed) {
        cache.put(images[i], stamps[i].size, stamps[i].mtime_ns, results[j]);
        if (faces != nullptr) {
          ImageEmbedding face_only;
          face_only.source = results[j].source;
          face_only.face = results[j].face;
          faces->put(images[i], stamps[i].size, stamps[i].mtime_ns, std::move(face_only));
        }
      }
      set.by_path[images[i].string()] = std::move(results[j]);
      ++set.computed;
    }
  }
  set.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (const auto& [path, e] : set.by_path) ++set.counts[static_cast<int>(e.source)];
  return set;
}

Result<std::vector<ScoredPair>> score_pairs(const PairList& pairs, const EmbeddedSet& set) {
  std::vector<ScoredPair> out;
  out.reserve(pairs.pairs.size());
  CompareOptions co;
  co.threshold = 1.f;  // only the distance is used; a fixed threshold keeps compare() model-agnostic
  for (const auto& p : pairs.pairs) {
    auto a = set.by_path.find(p.a.string());
    auto b = set.by_path.find(p.b.string());
    if (a == set.by_path.end() || b == set.by_path.end()) {
      return make_error(ErrorCode::kNotFound, "no template for " + (a == set.by_path.end() ? p.a : p.b).string());
    }
    ScoredPair s;
    s.same = p.same;
    s.distance = std::numeric_limits<double>::infinity();
    if (a->second.source != FaceSource::kFailed && b->second.source != FaceSource::kFailed) {
      auto c = compare(a->second.embedding, b->second.embedding, co);
      if (!c) return std::move(c).error();
      s.distance = c->distance;
    }
    out.push_back(s);
  }
  return out;
}

}  // namespace faceguard::eval
