// The convenience pipeline: detect -> (68-point landmarks) -> five points -> warp onto a chip -> embed.
// Each step is its own public component; this file only decides which of them a face needs and in what order.
#include "faceguard/pipeline.hpp"

#include <opencv2/core.hpp>

#include "faceguard/compare.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <exception>

namespace faceguard {

namespace {

bool is_blazeface(DetectorKind k) { return k == DetectorKind::kBlazeFaceBack || k == DetectorKind::kBlazeFaceFront; }

// SSD and tiny boxes carry no landmarks, so the 68-point net is always needed for a similarity warp; and
// face-api.js computes them before its descriptor too (withFaceLandmarks().withFaceDescriptors()), so the
// axis-crop path keeps them as well. BlazeFace brings its own six keypoints; 68-point refinement on its box
// is optional (MODELS.md: the keypoints are coarser, refinement improves alignment).
bool needs_landmarker(const PipelineOptions& o) { return !is_blazeface(o.detector.kind) || o.landmarks68; }

// Median SSD box relative to the BlazeFace box of the same face, measured on 106 faces matched by IoU > 0.3
// (the six face-api sample photos and 80 photos of shared/data/faces-small; interquartile ranges in
// brackets): centre x +0.0 w [-0.04, 0.01], centre y -0.10 h [-0.135, -0.07], width 0.89 [0.85, 0.94],
// height 1.17 [1.12, 1.25].
constexpr float kBlazeToSsdDy = -0.10f;
constexpr float kBlazeToSsdWidth = 0.89f;
constexpr float kBlazeToSsdHeight = 1.17f;

// The SSD box of a face relative to the bounding box of the 68 landmarks the net finds in it (lw x lh):
// medians over the 2,238 faces SSD finds in every second of the 4,992 LFW View 1 images (the cached
// detections of docs/eval.md; interquartile ranges in brackets): centre x +0.006 lw [-0.013, 0.022],
// centre y -0.135 lh [-0.161, -0.109] (the box starts above the brows, which the landmarks do not reach),
// width 1.024 lw [0.991, 1.066], height 1.302 lh [1.244, 1.367].
constexpr float kLandmarkToSsdDx = 0.006f;
constexpr float kLandmarkToSsdDy = -0.135f;
constexpr float kLandmarkToSsdWidth = 1.024f;
constexpr float kLandmarkToSsdHeight = 1.302f;

}  // namespace

Result<Box> refined_landmark_box(std::span<const Point2f> p) {
  if (p.size() != 68) return make_error(ErrorCode::kInvalidArgument, "refined_landmark_box: needs 68 landmarks");
  float x0 = p[0].x, y0 = p[0].y, x1 = p[0].x, y1 = p[0].y;
  for (const Point2f& q : p) {
    if (!std::isfinite(q.x) || !std::isfinite(q.y))
      return make_error(ErrorCode::kInvalidArgument, "refined_landmark_box: landmark is not finite");
    x0 = std::min(x0, q.x), y0 = std::min(y0, q.y), x1 = std::max(x1, q.x), y1 = std::max(y1, q.y);
  }
  const float lw = x1 - x0, lh = y1 - y0;
  if (!(lw > 1e-3f) || !(lh > 1e-3f))
    return make_error(ErrorCode::kInvalidArgument, "refined_landmark_box: landmarks are degenerate");
  const float cx = 0.5f * (x0 + x1) + kLandmarkToSsdDx * lw;
  const float cy = 0.5f * (y0 + y1) + kLandmarkToSsdDy * lh;
  const float w = kLandmarkToSsdWidth * lw, h = kLandmarkToSsdHeight * lh;
  return Box{cx - 0.5f * w, cy - 0.5f * h, w, h};
}

Box landmark_box(const Face& face) {
  if (face.detector.rfind("blazeface", 0) != 0) return face.box;
  const Box& b = face.box;
  const float cx = b.x + 0.5f * b.width;
  const float cy = b.y + 0.5f * b.height + kBlazeToSsdDy * b.height;
  const float w = b.width * kBlazeToSsdWidth;
  const float h = b.height * kBlazeToSsdHeight;
  return Box{cx - 0.5f * w, cy - 0.5f * h, w, h};
}

struct Pipeline::Impl {
  PipelineOptions options;
  std::unique_ptr<Detector> detector;
  std::unique_ptr<Landmarker> landmarker;  // null when the BlazeFace keypoints are used as they are
  std::unique_ptr<Embedder> embedder;
  std::unique_ptr<Embedder> fused;  // MobileFaceNet beside dlib (options.fuse)
  bool arcface_chip = false;  // MobileFaceNet wants the ArcFace 112 chip, dlib its 150 chip

  Status add_landmarks(const cv::Mat& bgr, Face& face) {
    if (!landmarker) return ok_status();
    FG_ASSIGN_OR_RETURN(auto pts, landmarker->landmarks(bgr, landmark_box(face)));
    if (options.refine_landmarks) {
      FG_ASSIGN_OR_RETURN(const Box box, refined_landmark_box(pts));
      FG_ASSIGN_OR_RETURN(pts, landmarker->landmarks(bgr, box));
    }
    face.landmarks = std::move(pts);
    face.scheme = LandmarkScheme::kIbug68;
    return ok_status();
  }

  // The chip, then its jittered copies (options.jitters of them), each followed by its mirror image with
  // options.flip, appended to `chips`.
  Status chips_for(const cv::Mat& bgr, const Face& face, bool arcface, std::vector<cv::Mat>& chips) {
    const ChipTemplate& tpl = template_for(face, arcface);
    auto push = [&](cv::Mat chip) {
      if (options.flip) {
        cv::Mat mirrored;
        cv::flip(chip, mirrored, 1);
        chips.push_back(std::move(chip));
        chips.push_back(std::move(mirrored));
      } else {
        chips.push_back(std::move(chip));
      }
    };
    FG_ASSIGN_OR_RETURN(auto chip, align(bgr, face, tpl, options.align));
    push(std::move(chip));
    const auto jitters = standard_jitters();
    for (int i = 0; i < options.jitters; ++i) {
      FG_ASSIGN_OR_RETURN(auto j, align_jittered(bgr, face, tpl, options.align, jitters[static_cast<std::size_t>(i)]));
      push(std::move(j));
    }
    return ok_status();
  }
  int chips_per_face() const { return (1 + options.jitters) * (options.flip ? 2 : 1); }

  // One template per face: each embedder's templates of its chips, fused when options.fuse.
  Result<std::vector<Embedding>> embed_faces(const cv::Mat& bgr, std::span<const Face> faces) {
    std::vector<cv::Mat> chips;
    chips.reserve(faces.size() * static_cast<std::size_t>(chips_per_face()));
    for (const auto& f : faces) FG_TRY_STATUS(chips_for(bgr, f, arcface_chip, chips));
    // One batched forward pass is cheaper per face than one call per chip.
    FG_ASSIGN_OR_RETURN(auto out, embed_chips(*embedder, chips));
    if (!fused) return out;
    chips.clear();
    for (const auto& f : faces) FG_TRY_STATUS(chips_for(bgr, f, true, chips));
    FG_ASSIGN_OR_RETURN(auto second, embed_chips(*fused, chips));
    if (second.size() != out.size()) return make_error(ErrorCode::kInternal, "the fused models gave different numbers of templates");
    for (std::size_t i = 0; i < out.size(); ++i) {
      FG_ASSIGN_OR_RETURN(out[i], fused_template(out[i], second[i]));
    }
    return out;
  }

  // The mean of each face's consecutive chips_per_face() descriptors (dlib's mean over jitters).
  Result<std::vector<Embedding>> embed_chips(Embedder& net, std::span<const cv::Mat> chips) {
    FG_ASSIGN_OR_RETURN(auto embeddings, net.embed_batch(chips));
    const std::size_t per = static_cast<std::size_t>(chips_per_face());
    if (embeddings.size() != chips.size())
      return make_error(ErrorCode::kInternal, "embedder returned " + std::to_string(embeddings.size()) +
                                                  " templates for " + std::to_string(chips.size()) + " chips");
    if (per == 1) return embeddings;
    std::vector<Embedding> out;
    out.reserve(chips.size() / per);
    for (std::size_t f = 0; f + per <= embeddings.size(); f += per) {
      Embedding e = std::move(embeddings[f]);
      for (std::size_t k = 1; k < per; ++k) {
        const auto& v = embeddings[f + k].values;
        if (v.size() != e.values.size()) return make_error(ErrorCode::kInternal, "jittered templates differ in size");
        for (std::size_t i = 0; i < v.size(); ++i) e.values[i] += v[i];
      }
      for (float& x : e.values) x /= static_cast<float>(per);
      out.push_back(std::move(e));
    }
    return out;
  }
};

Pipeline::Pipeline(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Pipeline::~Pipeline() = default;

Result<std::unique_ptr<Pipeline>> Pipeline::create(const ModelPack& pack, const PipelineOptions& options) {
  if (options.max_faces < 0) return make_error(ErrorCode::kInvalidArgument, "max_faces must be >= 0");
  // As many as the fixed set holds (chips_for indexes it).
  const int max_jitters = static_cast<int>(standard_jitters().size());
  if (options.jitters < 0 || options.jitters > max_jitters)
    return make_error(ErrorCode::kInvalidArgument, "jitters must be in [0, " + std::to_string(max_jitters) + "]");
  try {
    auto impl = std::make_unique<Impl>();
    impl->options = options;
    FG_ASSIGN_OR_RETURN(impl->detector, Detector::create(pack, options.detector));
    if (needs_landmarker(options)) {
      LandmarkerOptions lo;
      lo.tiny = options.tiny_landmarks;
      lo.threads = options.detector.threads;
      FG_ASSIGN_OR_RETURN(impl->landmarker, Landmarker::create(pack, lo));
    }
    FG_ASSIGN_OR_RETURN(impl->embedder, Embedder::create(pack, options.embedder));
    impl->arcface_chip = options.embedder.kind == EmbedderKind::kMobileFaceNet;
    if (options.fuse) {
      if (options.embedder.kind != EmbedderKind::kDlibResNet)
        return make_error(ErrorCode::kInvalidArgument, "fusion adds MobileFaceNet to the dlib embedder; the embedder must be dlib");
      EmbedderOptions second = options.embedder;
      second.kind = EmbedderKind::kMobileFaceNet;
      FG_ASSIGN_OR_RETURN(impl->fused, Embedder::create(pack, second));
    }
    return std::unique_ptr<Pipeline>(new Pipeline(std::move(impl)));
  } catch (const std::exception& e) {
    return make_error(ErrorCode::kInternal, std::string("pipeline creation failed: ") + e.what());
  }
}

Result<std::vector<Face>> Pipeline::detect(const cv::Mat& bgr) {
  if (bgr.empty() || bgr.type() != CV_8UC3) {
    return make_error(ErrorCode::kInvalidArgument, "the pipeline needs a non-empty 8-bit 3-channel BGR image");
  }
  try {
    FG_ASSIGN_OR_RETURN(auto faces, impl_->detector->detect(bgr));
    // Detectors sort by descending score, so truncation keeps the most confident faces.
    const auto max = static_cast<std::size_t>(impl_->options.max_faces);
    if (max > 0 && faces.size() > max) faces.resize(max);
    return faces;
  } catch (const std::exception& e) {
    return make_error(ErrorCode::kInternal, std::string("detection failed: ") + e.what());
  }
}

Result<std::vector<AnalyzedFace>> Pipeline::analyze(const cv::Mat& bgr) {
  FG_ASSIGN_OR_RETURN(auto faces, detect(bgr));
  std::vector<AnalyzedFace> out;
  if (faces.empty()) return out;
  try {
    for (auto& f : faces) FG_TRY_STATUS(impl_->add_landmarks(bgr, f));
    FG_ASSIGN_OR_RETURN(auto embeddings, impl_->embed_faces(bgr, faces));
    if (embeddings.size() != faces.size()) {
      return make_error(ErrorCode::kInternal, "embedder returned " + std::to_string(embeddings.size()) +
                                                  " templates for " + std::to_string(faces.size()) + " faces");
    }
    out.reserve(faces.size());
    for (std::size_t i = 0; i < faces.size(); ++i) {
      out.push_back(AnalyzedFace{std::move(faces[i]), std::move(embeddings[i])});
    }
    return out;
  } catch (const std::exception& e) {
    return make_error(ErrorCode::kInternal, std::string("analysis failed: ") + e.what());
  }
}

Result<Embedding> Pipeline::embed_face(const cv::Mat& bgr, Face& face) {
  if (bgr.empty() || bgr.type() != CV_8UC3) {
    return make_error(ErrorCode::kInvalidArgument, "the pipeline needs a non-empty 8-bit 3-channel BGR image");
  }
  try {
    FG_TRY_STATUS(impl_->add_landmarks(bgr, face));
    if (impl_->chips_per_face() == 1 && !impl_->fused) {
      std::vector<cv::Mat> chips;
      FG_TRY_STATUS(impl_->chips_for(bgr, face, impl_->arcface_chip, chips));
      return impl_->embedder->embed(chips.front());
    }
    FG_ASSIGN_OR_RETURN(auto e, impl_->embed_faces(bgr, std::span<const Face>(&face, 1)));
    if (e.size() != 1) return make_error(ErrorCode::kInternal, "one face gave " + std::to_string(e.size()) + " templates");
    return std::move(e.front());
  } catch (const std::exception& e) {
    return make_error(ErrorCode::kInternal, std::string("embedding failed: ") + e.what());
  }
}

Detector& Pipeline::detector() { return *impl_->detector; }
Embedder& Pipeline::embedder() { return *impl_->embedder; }
const PipelineOptions& Pipeline::options() const { return impl_->options; }

}  // namespace faceguard
