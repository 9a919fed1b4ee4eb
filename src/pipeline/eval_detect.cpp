// Detection accuracy on a PASCAL VOC folder: loading the annotations, matching detections to truth boxes,
// precision/recall and all-point AP, overall and per face size. Running the detectors and drawing the
// misses are in eval_detect_run.cpp. The protocol is stated in faceguard/eval.hpp.
#include <algorithm>
#include <cmath>
#include <fstream>
#include <iterator>
#include <system_error>

#include "faceguard/eval.hpp"
#include "pipeline/voc.hpp"

namespace faceguard::eval {
namespace {

// Image files beside an annotation, tried in this order before the XML's own <filename>.
constexpr const char* kImageExtensions[] = {".png", ".jpg", ".jpeg", ".bmp", ".webp"};

Result<std::string> read_annotation_file(const std::filesystem::path& p) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(p, ec);
  if (ec) return make_error(ErrorCode::kNotFound, p.string() + ": " + ec.message());
  if (size > voc::kMaxBytes) return make_error(ErrorCode::kCorruptData, p.string() + ": too large for an annotation");
  std::ifstream in(p, std::ios::binary);
  if (!in) return make_error(ErrorCode::kIoError, p.string() + ": cannot open");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return make_error(ErrorCode::kIoError, p.string() + ": read failed");
  return text;
}

std::filesystem::path find_image(const std::filesystem::path& images, const std::string& stem,
                                 const std::string& xml_filename) {
  std::error_code ec;
  for (const char* ext : kImageExtensions) {
    auto p = images / (stem + ext);
    if (std::filesystem::is_regular_file(p, ec)) return p;
  }
  // The annotation's own name, without any folder part (a file must not point outside the folder).
  if (!xml_filename.empty()) {
    const auto name = std::filesystem::path(xml_filename).filename();
    if (!name.empty() && name != "." && name != "..") {
      auto p = images / name;
      if (std::filesystem::is_regular_file(p, ec)) return p;
    }
  }
  return {};
}

struct Ranked {
  float score;
  int image;
  int index;
};

// The ranking of every detection of the set: descending score, ties in image then detector order (a stable,
// documented order, so that equal scores give the same AP on every run).
std::vector<Ranked> rank(std::span<const std::vector<ScoredBox>> detections) {
  std::vector<Ranked> r;
  for (std::size_t i = 0; i < detections.size(); ++i)
    for (std::size_t k = 0; k < detections[i].size(); ++k)
      r.push_back({detections[i][k].score, static_cast<int>(i), static_cast<int>(k)});
  std::stable_sort(r.begin(), r.end(), [](const Ranked& a, const Ranked& b) { return a.score > b.score; });
  return r;
}

// One evaluation pass: bucket < 0 for the whole set, else only truths of that size count (see eval.hpp).
DetectionMetrics evaluate_pass(std::span<const DetectionImage> images, std::span<const std::vector<ScoredBox>> dets,
                               const std::vector<Ranked>& ranked, const MatchOptions& o, int bucket,
                               std::vector<std::vector<float>>* truth_match) {
  DetectionMetrics m;
  std::vector<std::vector<char>> ignored(images.size()), matched(images.size());
  for (std::size_t i = 0; i < images.size(); ++i) {
    const auto& t = images[i].truth;
    ignored[i].resize(t.size());
    matched[i].assign(t.size(), 0);
    for (std::size_t j = 0; j < t.size(); ++j) {
      ignored[i][j] = t[j].difficult || (bucket >= 0 && static_cast<int>(face_size(t[j].box)) != bucket);
      if (!ignored[i][j]) ++m.truths;
    }
  }
  if (truth_match) {
    truth_match->resize(images.size());
    for (std::size_t i = 0; i < images.size(); ++i) (*truth_match)[i].assign(images[i].truth.size(), -1.f);
  }
  int tp = 0, fp = 0;
  for (const auto& r : ranked) {
    const auto i = static_cast<std::size_t>(r.image);
    const Box& d = dets[i][static_cast<std::size_t>(r.index)].box;
    const auto& truth = images[i].truth;
    int best = -1;
    double best_iou = 0.0;
    bool hits_ignored = false;
    for (std::size_t j = 0; j < truth.size(); ++j) {
      const double v = iou(d, truth[j].box);
      if (!(v >= o.iou)) continue;
      if (ignored[i][j]) {
        hits_ignored = true;
      } else if (!matched[i][j] && v > best_iou) {
        best = static_cast<int>(j);
        best_iou = v;
      }
    }
    bool is_tp = false;
    if (best >= 0) {
      matched[i][static_cast<std::size_t>(best)] = 1;
      if (truth_match) (*truth_match)[i][static_cast<std::size_t>(best)] = r.score;
      is_tp = true;
    } else if (hits_ignored || (bucket >= 0 && static_cast<int>(face_size(d)) != bucket)) {
      continue;  // neither way: a difficult (or other-size) face, or a detection of another size
    }
    (is_tp ? tp : fp) += 1;
    if (r.score >= o.operating_score) {
      ++m.detections;
      (is_tp ? m.true_positives : m.false_positives) += 1;
    }
    PrPoint p;
    p.score = r.score;
    p.precision = static_cast<double>(tp) / static_cast<double>(tp + fp);
    p.recall = m.truths > 0 ? static_cast<double>(tp) / static_cast<double>(m.truths) : 0.0;
    m.curve.push_back(p);
  }
  m.precision = m.detections > 0 ? static_cast<double>(m.true_positives) / m.detections : 0.0;
  m.recall = m.truths > 0 ? static_cast<double>(m.true_positives) / m.truths : 0.0;
  m.ap = m.truths > 0 ? average_precision(m.curve) : 0.0;
  return m;
}

}  // namespace

std::string_view to_string(FaceSize size) {
  switch (size) {
    case FaceSize::kSmall: return "small";
    case FaceSize::kMedium: return "medium";
    case FaceSize::kLarge: return "large";
  }
  return "unknown";
}

FaceSize face_size(const Box& box) {
  const float side = std::sqrt(box.area());
  if (side < kSmallFaceSide) return FaceSize::kSmall;
  if (side > kLargeFaceSide) return FaceSize::kLarge;
  return FaceSize::kMedium;
}

double average_precision(std::span<const PrPoint> curve) {
  // VOCdevkit 2010+ VOCap: mrec = [0, rec, 1], mpre = [0, prec, 0], precision made non-increasing from the
  // right, then the sum of (mrec[i+1] - mrec[i]) * mpre[i+1] wherever recall changes.
  std::vector<double> rec{0.0}, pre{0.0};
  for (const auto& p : curve) {
    rec.push_back(p.recall);
    pre.push_back(p.precision);
  }
  rec.push_back(1.0);
  pre.push_back(0.0);
  for (std::size_t i = pre.size() - 1; i-- > 0;) pre[i] = std::max(pre[i], pre[i + 1]);
  double ap = 0.0;
  for (std::size_t i = 0; i + 1 < rec.size(); ++i)
    if (rec[i + 1] != rec[i]) ap += (rec[i + 1] - rec[i]) * pre[i + 1];
  return ap;
}

Result<DetectionEvaluation> evaluate_detections(std::span<const DetectionImage> images,
                                                std::span<const std::vector<ScoredBox>> detections,
                                                const MatchOptions& options) {
  if (images.size() != detections.size())
    return make_error(ErrorCode::kInvalidArgument, "evaluate_detections: " + std::to_string(detections.size()) +
                                                       " detection lists for " + std::to_string(images.size()) + " images");
  if (!(options.iou > 0.0 && options.iou <= 1.0))
    return make_error(ErrorCode::kInvalidArgument, "evaluate_detections: the IoU threshold must be in (0, 1]");
  try {
    const auto ranked = rank(detections);
    DetectionEvaluation ev;
    ev.overall = evaluate_pass(images, detections, ranked, options, -1, &ev.truth_match);
    for (int b = 0; b < kFaceSizes; ++b)
      ev.by_size[static_cast<std::size_t>(b)] = evaluate_pass(images, detections, ranked, options, b, nullptr);
    return ev;
  } catch (const std::exception& e) {
    return make_error(ErrorCode::kInternal, std::string("evaluate_detections: ") + e.what());
  }
}

Result<DetectionSet> load_voc_folder(const std::filesystem::path& dir, int max_images) {
  const auto annotations = dir / "annotations";
  const auto images = dir / "images";
  std::error_code ec;
  if (!std::filesystem::is_directory(annotations, ec))
    return make_error(ErrorCode::kNotFound, annotations.string() + ": no such folder (a VOC folder holds annotations/ and images/)");
  if (!std::filesystem::is_directory(images, ec))
    return make_error(ErrorCode::kNotFound, images.string() + ": no such folder");
  try {
    std::vector<std::filesystem::path> files;
    for (const auto& e : std::filesystem::directory_iterator(annotations, ec))
      if (e.path().extension() == ".xml") files.push_back(e.path());
    if (ec) return make_error(ErrorCode::kIoError, annotations.string() + ": " + ec.message());
    std::sort(files.begin(), files.end());
    if (files.empty()) return make_error(ErrorCode::kInvalidArgument, annotations.string() + ": no .xml annotation files");
    if (max_images > 0 && files.size() > static_cast<std::size_t>(max_images)) files.resize(static_cast<std::size_t>(max_images));

    DetectionSet set;
    for (const auto& f : files) {
      FG_ASSIGN_OR_RETURN(const std::string text, read_annotation_file(f));
      auto a = voc::parse_annotation(text);
      if (!a) return make_error(a.error().code, f.string() + ": " + a.error().message);
      DetectionImage img;
      img.name = f.stem().string();
      img.image = find_image(images, img.name, a->filename);
      if (img.image.empty())
        return make_error(ErrorCode::kNotFound, f.string() + ": no image " + (images / img.name).string() + ".{png,jpg,...}");
      img.width = a->width;
      img.height = a->height;
      for (const auto& o : a->objects) {
        if (!(o.xmax > o.xmin) || !(o.ymax > o.ymin)) {
          ++set.degenerate;
          continue;
        }
        TruthBox t;
        t.box = Box{static_cast<float>(o.xmin), static_cast<float>(o.ymin), static_cast<float>(o.xmax - o.xmin),
                    static_cast<float>(o.ymax - o.ymin)};
        t.label = o.name;
        t.difficult = o.difficult;
        if (t.difficult) ++set.difficult;
        ++set.boxes;
        img.truth.push_back(std::move(t));
      }
      set.images.push_back(std::move(img));
    }
    return set;
  } catch (const std::exception& e) {
    return make_error(ErrorCode::kIoError, dir.string() + ": " + e.what());
  }
}

}  // namespace faceguard::eval
