// `faceguard embed IMAGE`: face templates (model id, values, face box) for every face or a chosen one.
#include <iomanip>
#include <iostream>
#include <memory>

#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "face_common.hpp"
#include "faceguard/json.hpp"
#include "faceguard/pipeline.hpp"

namespace faceguard::cli {
namespace {

struct EmbedArgs {
  std::string image;
  bool json = false;
  int face = -1;
  bool single = false;
  ModelArgs model;
};

int run_embed(const EmbedArgs& a) {
  // The image first: a bad file is reported without paying for loading the models.
  auto img = read_image(a.image);
  if (!img) return report_image(img.error(), a.image);
  auto pack = open_models();
  if (!pack) return report(pack.error(), "embed");
  auto popt = pipeline_options(a.model);
  if (!popt) return report(popt.error(), "embed");
  auto pipe = Pipeline::create(*pack, *popt);
  if (!pipe) return report(pipe.error(), "embed");

  auto faces = (*pipe)->detect(*img);
  if (!faces) return report(faces.error(), a.image);
  if (faces->empty()) return report(make_error(ErrorCode::kNoFace, "no face found in " + a.image));

  // Which faces: one (--face N or --single), else all.
  std::vector<std::size_t> chosen;
  if (a.face >= 0 || a.single) {
    auto c = choose_face(*faces, a.face, a.single, a.image);
    if (!c) return report(c.error());
    chosen.push_back(c->index);
  } else {
    for (std::size_t i = 0; i < faces->size(); ++i) chosen.push_back(i);
  }

  nlohmann::json out{{"image", a.image}, {"width", img->cols}, {"height", img->rows},
                     {"face_count", faces->size()}, {"faces", nlohmann::json::array()}};
  for (std::size_t i : chosen) {
    Face& f = (*faces)[i];
    auto e = (*pipe)->embed_face(*img, f);
    if (!e) return report(e.error(), a.image + ": face #" + std::to_string(i));
    nlohmann::json fj = to_json(f);
    fj["index"] = i;
    fj["embedding"] = to_json(*e);
    if (a.json) {
      out["faces"].push_back(std::move(fj));
      continue;
    }
    std::cout << a.image << " face #" << i << "  score " << std::setprecision(3) << f.score << "  box x "
              << std::fixed << std::setprecision(1) << f.box.x << " y " << f.box.y << " w " << f.box.width << " h "
              << f.box.height << "\n  " << e->model_id << " (" << e->values.size() << " values):";
    std::cout << std::setprecision(6);
    for (std::size_t k = 0; k < e->values.size(); ++k) std::cout << (k % 8 == 0 ? "\n   " : " ") << e->values[k];
    std::cout << "\n";
    std::cout.unsetf(std::ios::floatfield);
  }
  if (a.json) std::cout << out.dump(2) << "\n";
  return kExitOk;
}

void setup_embed(CLI::App& app) {
  auto args = std::make_shared<EmbedArgs>();
  auto* sub = app.add_subcommand("embed", "face templates (descriptor vectors) of the faces in an image");
  sub->add_option("image", args->image, "image file")->required();
  sub->add_flag("--json", args->json, "print JSON: {image, faces: [{index, box, score, embedding: {model_id, values}}]}");
  sub->add_option("--face", args->face, "only face N (numbered as `faceguard detect` numbers them, from 0)")
      ->check(CLI::NonNegativeNumber);
  sub->add_flag("--single", args->single, "require exactly one face in the image (exit 5 otherwise)");
  add_model_options(sub, args->model, /*with_embedder=*/true);
  sub->footer(
      "Without --face or --single every face is embedded. Templates are only comparable with templates of the\n"
      "same model_id. Exit codes: 0 ok, 3 file missing, 4 not a usable image, 5 no face (or several with\n"
      "--single), 6 models missing (see docs/cli.md).");
  sub->callback([args] { set_exit(run_embed(*args)); });
}

Registrar registrar(21, setup_embed);

}  // namespace
}  // namespace faceguard::cli
