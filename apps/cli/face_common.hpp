// Plumbing shared by the recognition commands (detect, embed, compare, demo): reading images with the
// documented exit codes, the common model options, choosing one face, timing. Printing only; no algorithm.
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <opencv2/core.hpp>

#include "faceguard/models.hpp"
#include "faceguard/pipeline.hpp"
#include "faceguard/result.hpp"

namespace faceguard::cli {

// The exit code for an error met while reading an image: 3 for a missing/unreadable file, 4 for anything
// wrong with its content (empty, truncated, corrupt, not an image, too large), else exit_code_for().
int image_exit_code(const Error& error);

// Decode an image for the commands (faceguard::load_image with its default limits: 40 Mpx, 100 MB).
Result<cv::Mat> read_image(const std::filesystem::path& path);

// Report an image error ("faceguard: <path>: ...") and return image_exit_code().
int report_image(const Error& error, const std::filesystem::path& path);

Result<ModelPack> open_models();

// Options every recognition command shares: --detector, --min-score, --model, --align, --tiny-landmarks.
struct ModelArgs {
  std::string detector = "ssd";
  float min_score = -1.f;
  std::string model = "dlib";
  std::string align = "mean-face";
  bool tiny_landmarks = false;
  bool landmarks68_on_blazeface = true;
  int jitters = PipelineOptions{}.jitters;
  bool refine_landmarks = PipelineOptions{}.refine_landmarks;
  bool flip = PipelineOptions{}.flip;
};
// with_embedder: add --model/--align/--jitters/--refine-landmarks (detect has no embedder).
void add_model_options(CLI::App* sub, ModelArgs& args, bool with_embedder);
Result<PipelineOptions> pipeline_options(const ModelArgs& args);

// Which face of an image a command uses, and why (stated in the output).
struct FaceChoice {
  std::size_t index = 0;
  std::string reason;  // "only face", "largest of 3", "--face 2"
};
// requested < 0: the largest face by box area (ties: the higher score, i.e. the lower index).
// Errors: kNoFace when there is none, kNoFace when requested is out of range, kMultipleFaces when
// require_one is set and there are several.
Result<FaceChoice> choose_face(const std::vector<Face>& faces, int requested, bool require_one,
                               const std::string& image_name);

// A CLI11 validator: a finite number > 0 (CLI11's Range lets NaN through).
CLI::Validator positive_finite();
// A CLI11 validator: a finite number in [0, 1].
CLI::Validator unit_interval();

class Stopwatch {
 public:
  Stopwatch() : start_(std::chrono::steady_clock::now()) {}
  double ms() const {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start_).count();
  }

 private:
  std::chrono::steady_clock::time_point start_;
};

// "x.jpg" for display: the path as given.
std::string display_name(const std::filesystem::path& p);

}  // namespace faceguard::cli
