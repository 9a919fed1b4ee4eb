#include "face_common.hpp"

#include <cmath>

#include "cli.hpp"
#include "faceguard/image.hpp"

namespace faceguard::cli {

int image_exit_code(const Error& error) {
  switch (error.code) {
    case ErrorCode::kNotFound:
    case ErrorCode::kIoError: return kExitNotFound;
    case ErrorCode::kCorruptData:
    case ErrorCode::kUnsupportedFormat:
    case ErrorCode::kImageTooLarge:
    case ErrorCode::kInvalidArgument: return kExitBadImage;
    default: return exit_code_for(error.code);
  }
}

Result<cv::Mat> read_image(const std::filesystem::path& path) { return load_image(path); }

int report_image(const Error& error, const std::filesystem::path& path) {
  // load_image names the file in its messages; prefix it only where a message does not.
  const std::string name = display_name(path);
  const bool named = error.message.find(name) != std::string::npos;
  std::cerr << "faceguard: " << (named ? "" : name + ": ") << error.message << " [" << to_string(error.code) << "]\n";
  return image_exit_code(error);
}

Result<ModelPack> open_models() { return ModelPack::open(model_dir()); }

void add_model_options(CLI::App* sub, ModelArgs& args, bool with_embedder) {
  sub->add_option("--detector", args.detector, "face detector: ssd (default), tiny, blazeface, blazeface-front")
      ->check(CLI::IsMember({"ssd", "tiny", "blazeface", "blazeface-front"}));
  sub->add_option("--min-score", args.min_score, "minimum detection score in [0,1] (default: the detector's own)")
      ->check(unit_interval());
  sub->add_flag("--tiny-landmarks", args.tiny_landmarks, "use the small 68-point landmark net");
  if (with_embedder) {
    sub->add_option("--model", args.model,
                    "face descriptor: dlib (default; 128-D, Euclidean), mobilefacenet (192-D, cosine; "
                    "research-only training data) or fusion (both, scored by the fusion calibrated on LFW View 1; "
                    "research-only like MobileFaceNet; 1:1 only, galleries hold one model)")
        ->check(CLI::IsMember({"dlib", "mobilefacenet", "fusion"}));
    sub->add_flag("--flip", args.flip, "flip averaging: average each chip's template with its mirror image's (one more descriptor pass per face)");
    sub->add_option("--align", args.align,
                    "alignment: mean-face (default: dlib's 33-point fit to its mean face for 68-point landmarks and "
                    "the dlib chip, else the 5-point warp), similarity (5-point warp) or crop (face-api.js axis-aligned crop)")
        ->check(CLI::IsMember({"similarity", "mean-face", "crop"}));
    sub->add_flag("!--no-refine", args.landmarks68_on_blazeface,
                  "with --detector blazeface*: align on BlazeFace's own keypoints instead of 68-point landmarks");
    sub->add_option("--jitters", args.jitters,
                    "also average the templates of N deterministic jitters of each chip (0-12; dlib's num_jitters)")
        ->check(CLI::Range(0, 12))
        ->capture_default_str();
    sub->add_flag("--refine-landmarks,!--no-refine-landmarks", args.refine_landmarks,
                  "run the 68-point net again on the box its first landmarks imply (docs/eval.md)")
        ->capture_default_str();
  }
}

Result<PipelineOptions> pipeline_options(const ModelArgs& args) {
  PipelineOptions o;
  FG_ASSIGN_OR_RETURN(o.detector.kind, parse_detector_kind(args.detector));
  o.detector.min_score = args.min_score;
  o.tiny_landmarks = args.tiny_landmarks;
  o.landmarks68 = args.landmarks68_on_blazeface;
  FG_ASSIGN_OR_RETURN(o.align, parse_align_method(args.align));
  o.embedder.kind = args.model == "mobilefacenet" ? EmbedderKind::kMobileFaceNet : EmbedderKind::kDlibResNet;
  o.fuse = args.model == "fusion";
  o.flip = args.flip;
  o.jitters = args.jitters;
  o.refine_landmarks = args.refine_landmarks;
  return o;
}

Result<FaceChoice> choose_face(const std::vector<Face>& faces, int requested, bool require_one,
                               const std::string& image_name) {
  if (faces.empty()) return make_error(ErrorCode::kNoFace, "no face found in " + image_name);
  if (require_one && faces.size() > 1) {
    return make_error(ErrorCode::kMultipleFaces, std::to_string(faces.size()) + " faces found in " + image_name +
                                                     " where exactly one is required (use --face N to pick one)");
  }
  if (requested >= 0) {
    if (static_cast<std::size_t>(requested) >= faces.size()) {
      return make_error(ErrorCode::kNoFace, "no face #" + std::to_string(requested) + " in " + image_name + " (" +
                                                std::to_string(faces.size()) + " found, numbered from 0)");
    }
    return FaceChoice{static_cast<std::size_t>(requested), "face #" + std::to_string(requested) + " as requested"};
  }
  if (faces.size() == 1) return FaceChoice{0, "the only face"};
  std::size_t best = 0;
  for (std::size_t i = 1; i < faces.size(); ++i) {
    if (faces[i].box.area() > faces[best].box.area()) best = i;
  }
  return FaceChoice{best, "the largest of " + std::to_string(faces.size()) + " faces"};
}

CLI::Validator positive_finite() {
  return CLI::Validator(
      [](std::string& s) -> std::string {
        try {
          std::size_t used = 0;
          const double v = std::stod(s, &used);
          if (used == s.size() && std::isfinite(v) && v > 0) return {};
        } catch (const std::exception&) {
        }
        return "must be a finite number > 0, not " + s;
      },
      "POSITIVE");
}

CLI::Validator unit_interval() {
  return CLI::Validator(
      [](std::string& s) -> std::string {
        try {
          std::size_t used = 0;
          const double v = std::stod(s, &used);
          if (used == s.size() && std::isfinite(v) && v >= 0 && v <= 1) return {};
        } catch (const std::exception&) {
        }
        return "must be a number in [0, 1], not " + s;
      },
      "[0,1]");
}

std::string display_name(const std::filesystem::path& p) { return p.string(); }

}  // namespace faceguard::cli
