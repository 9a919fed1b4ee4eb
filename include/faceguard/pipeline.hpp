// faceguard/pipeline.hpp - the convenience pipeline: detect -> landmarks -> align -> embed.
//
//   auto pack = faceguard::ModelPack::open(faceguard::default_model_dir());
//   auto pipe = faceguard::Pipeline::create(*pack, {});
//   auto img = faceguard::load_image("group.jpg");
//   auto faces = (*pipe)->analyze(*img);          // each: Face (box, score, 68 landmarks) + Embedding
//   auto cmp = faceguard::compare(faces->at(0).embedding, other.embedding);
//
// Thread safety: a Pipeline is not reentrant; use one per thread (they can share one ModelPack).
#pragma once

#include <memory>
#include <span>
#include <vector>

#include <opencv2/core.hpp>

#include "faceguard/aligner.hpp"
#include "faceguard/detector.hpp"
#include "faceguard/embedder.hpp"
#include "faceguard/landmarker.hpp"
#include "faceguard/models.hpp"
#include "faceguard/result.hpp"
#include "faceguard/types.hpp"

namespace faceguard {

struct PipelineOptions {
  DetectorOptions detector{};
  bool landmarks68 = true;  // refine with the 68-point net (BlazeFace keypoints are used when false)
  bool tiny_landmarks = false;
  AlignMethod align = AlignMethod::kMeanFace;  // LFW View 1 (dlib): mean-face 98.3%, 5-point 97.8% (docs/eval.md)
  EmbedderOptions embedder{};
  int max_faces = 0;  // 0: all
  // Test-time augmentation, dlib's num_jitters made deterministic: the template is the mean of the
  // descriptors of the chip and of its first `jitters` standard_jitters() (aligner.hpp), 0..12. Each jitter
  // costs one more descriptor pass per face. LFW View 1 figures in docs/eval.md.
  int jitters = 0;
  // Landmark refinement: run the 68-point net a second time, on refined_landmark_box() of its first
  // landmarks, and keep the second landmarks (the net is sensitive to the box it is given; the second box has
  // the proportions of the SSD boxes it was trained on, whichever detector or fallback found the face).
  bool refine_landmarks = false;
  // Flip averaging: each chip's descriptor is averaged with the descriptor of its mirror image (the chip
  // flipped left to right), which cancels part of the descriptor's left/right bias. One more descriptor pass
  // per face (and per jitter).
  bool flip = false;
  // Score fusion: with the dlib embedder, every face also gets a MobileFaceNet template (its own ArcFace
  // chip from the same landmarks), and the template returned is fused_template() of the two; compare()
  // scores such templates with the logistic fusion calibrated on LFW View 1 (compare.hpp). MobileFaceNet's
  // training data is research-only: so is a fused template. Needs embedder.kind == kDlibResNet.
  bool fuse = false;
};

// The box, in SSD proportions, that a face with these 68 landmarks would get from SSD: the landmarks'
// bounding box moved and scaled by the median ratios measured on LFW View 1 (src/pipeline/pipeline.cpp).
// kInvalidArgument unless there are 68 finite points with a non-degenerate bounding box.
Result<Box> refined_landmark_box(std::span<const Point2f> landmarks68);

// The box to give Landmarker::landmarks() for a detected face. The 68-point nets were trained on face-api's
// SSD boxes (brow to chin); BlazeFace's square boxes are tighter and higher, and on them the nets can miss the
// face entirely, so a BlazeFace box (face.detector "blazeface*") is mapped to SSD proportions. Other boxes
// are returned as they are.
Box landmark_box(const Face& face);

struct AnalyzedFace {
  Face face;
  Embedding embedding;
};

class Pipeline {
 public:
  static Result<std::unique_ptr<Pipeline>> create(const ModelPack& pack, const PipelineOptions& options);
  ~Pipeline();

  Result<std::vector<Face>> detect(const cv::Mat& bgr);
  // Detect, add landmarks, align and embed every face (or the first max_faces by score).
  Result<std::vector<AnalyzedFace>> analyze(const cv::Mat& bgr);
  // Landmarks, alignment and embedding for one given face.
  Result<Embedding> embed_face(const cv::Mat& bgr, Face& face);

  Detector& detector();
  Embedder& embedder();
  const PipelineOptions& options() const;

 private:
  struct Impl;
  explicit Pipeline(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace faceguard
