// faceguard_server_prep: inputs for scripts/load_test.sh (not part of the service).
//
//   faceguard_server_prep photo IN.jpg OUT.jpg [640 480]   # scale to cover, centre-crop, JPEG q90
//   FACEGUARD_MASTER_KEY=... faceguard_server_prep fill GALLERY.fgdb --count 100000 --model-id ID --dim 128
//
// `fill` creates a gallery of `count` synthetic subjects (one random unit template each, enrolled in batches:
// Gallery::enroll_batch) so that identify can be measured against 100k templates without 100k photos. The
// templates are isotropic Gaussian directions: the search cost is that of real ones (the flat index scans
// every template whatever they hold); their scores against a real face are near 0, so they add no matches.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "faceguard/gallery.hpp"

namespace {

int photo(int argc, char** argv) {
  if (argc < 4) return std::fprintf(stderr, "usage: photo IN OUT [W H]\n"), 2;
  const int w = argc > 5 ? std::atoi(argv[4]) : 640, h = argc > 5 ? std::atoi(argv[5]) : 480;
  cv::Mat img = cv::imread(argv[2], cv::IMREAD_COLOR);
  if (img.empty()) return std::fprintf(stderr, "cannot read %s\n", argv[2]), 1;
  const double s = std::max(double(w) / img.cols, double(h) / img.rows);
  cv::resize(img, img, cv::Size(), s, s, s < 1 ? cv::INTER_AREA : cv::INTER_LINEAR);
  // Crop around the upper middle, where a portrait's face is.
  const int x = (img.cols - w) / 2, y = std::max(0, std::min(img.rows - h, (img.rows - h) / 3));
  cv::Mat out = img(cv::Rect(x, y, w, h));
  if (!cv::imwrite(argv[3], out, {cv::IMWRITE_JPEG_QUALITY, 90})) return std::fprintf(stderr, "cannot write %s\n", argv[3]), 1;
  return 0;
}

int fill(int argc, char** argv) {
  std::string path, model_id;
  long count = 100000;
  int dim = 128;
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--count" && i + 1 < argc) count = std::atol(argv[++i]);
    else if (a == "--model-id" && i + 1 < argc) model_id = argv[++i];
    else if (a == "--dim" && i + 1 < argc) dim = std::atoi(argv[++i]);
    else path = a;
  }
  if (path.empty() || model_id.empty() || count <= 0 || dim <= 0)
    return std::fprintf(stderr, "usage: fill GALLERY --count N --model-id ID --dim D\n"), 2;
  auto key = faceguard::master_key_from_env();
  if (!key) return std::fprintf(stderr, "FACEGUARD_MASTER_KEY: %s\n", key.error().message.c_str()), 1;
  faceguard::GalleryOptions opt;
  opt.master_key = *key;
  opt.create = true;
  opt.model_id = model_id;
  opt.dim = dim;
  auto g = faceguard::Gallery::open(path, opt);
  if (!g) return std::fprintf(stderr, "%s: %s\n", path.c_str(), g.error().message.c_str()), 1;
  std::mt19937 rng(20240601);
  std::normal_distribution<float> n01;
  constexpr long kBatch = 5000;  // one transaction (one fsync) per batch
  for (long done = 0; done < count;) {
    std::vector<faceguard::Gallery::Enrolment> batch;
    for (long i = 0; i < kBatch && done < count; ++i, ++done) {
      faceguard::Gallery::Enrolment e;
      e.subject.subject_id = "synthetic-" + std::to_string(done);
      e.subject.display_name = e.subject.subject_id;
      faceguard::TemplateInput t;
      t.embedding.model_id = model_id;
      t.embedding.values.resize(static_cast<std::size_t>(dim));
      double norm = 0;
      for (auto& v : t.embedding.values) {
        v = n01(rng);
        norm += double(v) * v;
      }
      for (auto& v : t.embedding.values) v = static_cast<float>(v / std::sqrt(norm));
      t.source_sha256 = std::string(64, '0');
      e.templates.push_back(std::move(t));
      batch.push_back(std::move(e));
    }
    if (auto r = (*g)->enroll_batch(batch); !r) return std::fprintf(stderr, "enrol: %s\n", r.error().message.c_str()), 1;
    std::fprintf(stderr, "\r%ld / %ld", done, count);
  }
  std::fprintf(stderr, "\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string cmd = argc > 1 ? argv[1] : "";
  if (cmd == "photo") return photo(argc, argv);
  if (cmd == "fill") return fill(argc, argv);
  std::fprintf(stderr, "usage: faceguard_server_prep photo IN OUT [W H] | fill GALLERY --count N --model-id ID --dim D\n");
  return 2;
}
