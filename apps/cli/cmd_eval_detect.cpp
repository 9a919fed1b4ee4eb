// `faceguard eval detect`: detection accuracy (VOC AP at IoU 0.5, precision, recall, by face size) and
// timing of each detector on a PASCAL VOC folder. All the work is in faceguard/eval.hpp; this file parses
// options and prints. It hangs under the `eval` command that cmd_eval.cpp creates (registered at order 70).
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <memory>
#include <sstream>

#include <opencv2/imgcodecs.hpp>
#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "faceguard/eval.hpp"
#include "faceguard/models.hpp"

namespace faceguard::cli {

namespace {

struct DetectEvalArgs {
  std::string data;
  std::vector<std::string> detectors;
  float min_score = -1.f;  // < 0: each detector's own threshold
  float score_floor = 0.05f;
  double iou = 0.5;
  int max_images = 0;
  std::string out;
  bool json = false;
  int threads = 2;
};

std::string fmt(double v, const char* f = "%.3f") {
  char b[32];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

nlohmann::json metrics_json(const eval::DetectionMetrics& m) {
  return {{"truths", m.truths},   {"detections", m.detections}, {"true_positives", m.true_positives},
          {"false_positives", m.false_positives}, {"precision", m.precision}, {"recall", m.recall},
          {"ap", m.ap}};
}

std::string curve_csv(const eval::DetectionMetrics& m) {
  std::ostringstream s;
  s << "score,precision,recall\n";
  for (const auto& p : m.curve) s << fmt(p.score, "%.6f") << "," << fmt(p.precision, "%.6f") << "," << fmt(p.recall, "%.6f") << "\n";
  return s.str();
}

struct Row {
  std::string name;
  float score = 0.f;
  eval::DetectionMetrics overall;
  std::array<eval::DetectionMetrics, eval::kFaceSizes> by_size;
  double ms_median = 0.0, ms_mean = 0.0, seconds = 0.0;
};

void print_table(const std::vector<Row>& rows) {
  std::printf("%-16s %5s %6s %6s %6s | %-13s %-13s %-13s | %8s %8s\n", "detector", "score", "AP", "prec", "recall",
              "small AP/R", "medium AP/R", "large AP/R", "ms/img", "(mean)");
  for (const auto& r : rows) {
    std::printf("%-16s %5.2f %6.3f %6.3f %6.3f |", r.name.c_str(), r.score, r.overall.ap, r.overall.precision,
                r.overall.recall);
    for (const auto& b : r.by_size) std::printf(" %-13s", (fmt(b.ap) + "/" + fmt(b.recall)).c_str());
    std::printf(" | %8.1f %8.1f\n", r.ms_median, r.ms_mean);
  }
  std::fflush(stdout);
}

int run_detect_eval(const DetectEvalArgs& a) {
  const char* what = "eval detect";
  if (a.max_images < 0) return report(make_error(ErrorCode::kInvalidArgument, "--max-images must be >= 0"), what);
  if (a.min_score > 1.f) return report(make_error(ErrorCode::kInvalidArgument, "--min-score must lie in [0, 1]"), what);
  std::vector<std::string> detectors = a.detectors.empty() ? eval::detection_eval_detectors() : a.detectors;
  const auto known = eval::detection_eval_detectors();
  for (const auto& d : detectors)
    if (std::find(known.begin(), known.end(), d) == known.end())
      return report(make_error(ErrorCode::kInvalidArgument, "unknown detector '" + d +
                                                                "' (ssd, tiny, blazeface, blazeface-front, cascade)"),
                    what);

  auto set = eval::load_voc_folder(a.data, a.max_images);
  if (!set) return report(set.error(), what);
  auto pack = ModelPack::open(model_dir());
  if (!pack) return report(pack.error(), what);

  std::array<int, eval::kFaceSizes> sizes{};
  for (const auto& img : set->images)
    for (const auto& t : img.truth)
      if (!t.difficult) ++sizes[static_cast<std::size_t>(eval::face_size(t.box))];
  nlohmann::json doc;
  doc["data"] = a.data;
  doc["images"] = set->images.size();
  doc["faces"] = set->boxes - set->difficult;
  doc["difficult"] = set->difficult;
  doc["degenerate_dropped"] = set->degenerate;
  for (int s = 0; s < eval::kFaceSizes; ++s)
    doc["faces_by_size"][std::string(eval::to_string(static_cast<eval::FaceSize>(s)))] = sizes[static_cast<std::size_t>(s)];
  doc["protocol"] = {{"iou", a.iou},
                     {"ap", "all-point interpolated (PASCAL VOC 2010+), detections of the whole set ranked by score"},
                     {"matching", "greedy by descending score to the highest-IoU unmatched truth box; duplicates are false positives; difficult boxes ignored"},
                     {"size", "sqrt(w*h) of the box: small < 32 px, medium 32-96, large > 96 (COCO area ranges)"},
                     {"score_floor", a.score_floor}};
  const bool show = !globals().quiet && !a.json;
  if (show)
    std::cout << a.data << ": " << set->images.size() << " images, " << (set->boxes - set->difficult) << " faces (small "
              << sizes[0] << ", medium " << sizes[1] << ", large " << sizes[2] << "), " << set->difficult
              << " difficult ignored, " << set->degenerate << " degenerate boxes dropped\n";

  std::vector<Row> rows;
  for (const auto& name : detectors) {
    eval::DetectRunOptions ro;
    ro.detector = name;
    ro.threads = a.threads;
    ro.score_floor = a.min_score >= 0.f ? std::min(a.score_floor, a.min_score) : a.score_floor;
    auto progress = [&](int done, int total) {
      if (show && (done % 50 == 0 || done == total)) {
        std::cerr << "\r" << name << ": " << done << "/" << total << std::flush;
        if (done == total) std::cerr << "\n";
      }
    };
    auto run = eval::run_detector(*pack, set->images, ro, progress);
    if (!run) return report(run.error(), what);
    eval::MatchOptions mo;
    mo.iou = a.iou;
    mo.operating_score = a.min_score >= 0.f ? a.min_score : run->operating_score;
    auto ev = eval::evaluate_detections(set->images, run->detections, mo);
    if (!ev) return report(ev.error(), what);

    Row row;
    row.name = name;
    row.score = mo.operating_score;
    row.overall = ev->overall;
    row.by_size = ev->by_size;
    std::vector<double> ms;
    for (std::size_t i = 0; i < run->ms.size(); ++i)
      if (run->ms[i] > 0.0) ms.push_back(run->ms[i]);
    row.ms_median = median(ms);
    for (double v : ms) row.ms_mean += v / static_cast<double>(ms.size());
    row.seconds = run->seconds;

    nlohmann::json j;
    j["detector"] = name;
    j["operating_score"] = mo.operating_score;
    j["threads"] = run->threads;
    j["overall"] = metrics_json(ev->overall);
    for (int s = 0; s < eval::kFaceSizes; ++s)
      j["by_size"][std::string(eval::to_string(static_cast<eval::FaceSize>(s)))] = metrics_json(ev->by_size[static_cast<std::size_t>(s)]);
    j["ms_per_image_median"] = row.ms_median;
    j["ms_per_image_mean"] = row.ms_mean;
    j["seconds"] = run->seconds;
    j["unreadable_images"] = run->errors;
    if (name == "cascade")
      j["cascade_stages"] = {{"ssd", run->cascade_stage[0]}, {"ssd_on_2x_canvas", run->cascade_stage[1]},
                             {"blazeface", run->cascade_stage[2]}, {"none", run->cascade_stage[3]}};
    if (show)
      for (std::size_t e = 0; e < run->errors.size() && e < 5; ++e) std::cerr << "  unreadable: " << run->errors[e] << "\n";

    if (!a.out.empty()) {
      const std::filesystem::path out(a.out);
      if (auto s = eval::write_text_file(out / ("pr-" + name + ".csv"), curve_csv(ev->overall)); !s) return report(s.error(), what);
      auto sheet = eval::miss_sheet(set->images, *ev, mo.operating_score);
      if (!sheet) return report(sheet.error(), what);
      if (!sheet->empty()) {
        const auto png = out / ("misses-" + name + ".png");
        bool written = false;
        try {
          written = cv::imwrite(png.string(), *sheet);
        } catch (const cv::Exception&) {
          written = false;
        }
        if (!written) return report(make_error(ErrorCode::kIoError, "cannot write " + png.string()), what);
        j["miss_sheet"] = png.string();
      }
    }
    doc["detectors"].push_back(j);
    rows.push_back(std::move(row));
  }

  if (!a.out.empty()) {
    const std::filesystem::path out(a.out);
    if (auto s = eval::write_text_file(out / "summary.json", doc.dump(2) + "\n"); !s) return report(s.error(), what);
  }
  if (a.json) {
    std::cout << doc.dump(2) << "\n";
    return kExitOk;
  }
  std::cout << "AP at IoU " << fmt(a.iou, "%.2f")
            << " (all-point interpolation, VOC2010+); precision and recall at each detector's score threshold\n";
  print_table(rows);
  if (!a.out.empty())
    std::cout << "wrote " << (std::filesystem::path(a.out) / "summary.json").string()
              << ", pr-<detector>.csv and misses-<detector>.png (missed faces, largest first)\n";
  return kExitOk;
}

void setup_eval_detect(CLI::App& app) {
  CLI::App* ev = nullptr;
  try {
    ev = app.get_subcommand("eval");
  } catch (const CLI::Error&) {
    return;  // no `eval` command in this build
  }
  auto args = std::make_shared<DetectEvalArgs>();
  auto* d = ev->add_subcommand("detect", "face detection accuracy (VOC AP@0.5, precision, recall by face size) and timing on a PASCAL VOC folder");
  d->add_option("--data", args->data, "VOC folder: annotations/*.xml and images/")->required();
  d->add_option("--detector", args->detectors, "ssd, tiny, blazeface, blazeface-front, cascade (repeatable or comma list; default: all)")
      ->delimiter(',');
  d->add_option("--min-score", args->min_score, "score threshold for precision/recall and the misses (default: each detector's own)");
  d->add_option("--score-floor", args->score_floor, "lowest score kept for the AP curve")->capture_default_str();
  d->add_option("--iou", args->iou, "IoU a detection needs to match a face")->capture_default_str();
  d->add_option("--max-images", args->max_images, "only the first N annotations (file-name order)");
  d->add_option("--out", args->out, "folder for summary.json, pr-<detector>.csv and misses-<detector>.png");
  d->add_option("--threads", args->threads, "worker threads, one detector each")->capture_default_str();
  d->add_flag("--json", args->json, "print the summary as JSON");
  d->callback([args] { set_exit(run_detect_eval(*args)); });
}

// After cmd_eval.cpp's Registrar(70), which creates `eval`.
Registrar r(71, setup_eval_detect);

}  // namespace

}  // namespace faceguard::cli
