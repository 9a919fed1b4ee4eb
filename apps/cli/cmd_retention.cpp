// `faceguard retention run [--dry-run]`: erase every template past its deadline or its consent.
#include <iostream>
#include <memory>

#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "faceguard/gallery.hpp"
#include "policy_cli.hpp"

namespace faceguard::cli {

namespace {

struct RetentionArgs {
  PolicyCliOptions o;
  std::string gallery, master_key_file;
  bool dry_run = false;
  bool json = false;
};

int run_retention_cmd(const RetentionArgs& a) {
  auto s = open_policy_session(a.o, !a.dry_run, true);
  if (!s) return report(s.error(), "retention run");
  auto key = a.master_key_file.empty() ? master_key_from_env() : load_secret_key(std::filesystem::path(a.master_key_file));
  if (!key)
    return report(make_error(key.error().code, "the gallery's master key is needed (--master-key-file or "
                                               "FACEGUARD_MASTER_KEY): " + key.error().message),
                  "retention run");
  GalleryOptions go;
  go.master_key = *key;
  go.read_only = a.dry_run;
  auto g = Gallery::open(a.gallery, go);
  if (!g) return report(g.error(), "retention run: " + a.gallery);
  SubjectErasureSink<Gallery> sink(**g);
  auto now = optional_time(a.o.now);
  if (!now) return report(now.error(), "--now");
  const TimePoint at = *now ? (*now)->utc : std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
  auto r = run_retention(sink, s->consents(), a.dry_run ? nullptr : s->audit(), at, a.dry_run);
  if (!r) return report(r.error(), "retention run");
  if (a.json) {
    nlohmann::json doc{{"dry_run", r->dry_run}, {"examined", r->examined}, {"now", format_utc(at)}, {"warnings", r->warnings}};
    doc["erasures"] = nlohmann::json::array();
    for (const auto& e : r->erasures)
      doc["erasures"].push_back({{"template_id", e.target.template_id}, {"subject_id", e.target.subject_id},
                                 {"reason", e.reason}, {"done", e.done}, {"error", e.error}});
    std::cout << doc.dump(2) << "\n";
  } else {
    for (const auto& e : r->erasures)
      std::cout << (r->dry_run ? "would erase " : e.done ? "erased      " : "FAILED      ") << "template "
                << e.target.template_id << " of " << e.target.subject_id << ": " << e.reason
                << (e.error.empty() ? "" : " (" + e.error + ")") << "\n";
    for (const auto& w : r->warnings) std::cerr << "faceguard: warning: " << w << "\n";
    std::cout << r->examined << " templates examined, " << r->erasures.size()
              << (r->dry_run ? " would be erased (dry run)\n" : " erased\n");
  }
  return r->failures() ? kExitFailure : kExitOk;
}

void setup_retention(CLI::App& app) {
  auto args = std::make_shared<RetentionArgs>();
  auto* retention = app.add_subcommand("retention", "retention deadlines: erase what may no longer be kept");
  retention->require_subcommand(1);
  auto* run = retention->add_subcommand("run", "erase templates past their deadline or their consent, logging each");
  run->add_option("--gallery", args->gallery, "the gallery to sweep")->required();
  run->add_option("--master-key-file", args->master_key_file, "the gallery's master key (default: $FACEGUARD_MASTER_KEY)");
  run->add_flag("--dry-run", args->dry_run, "list what would be erased; change nothing");
  run->add_option("--now", args->o.now, "treat this as the current time (ISO 8601)");
  run->add_flag("--json", args->json, "print JSON");
  add_store_options(run, args->o);
  run->footer(
      "A template goes when its retain_until (set from the enrol decision's retention obligation) has passed,\n"
      "or when the consent it was collected under is revoked or its term has ended. The gallery erases whole\n"
      "subjects (their key is destroyed), so a subject's other templates go with it.");
  run->callback([args] { set_exit(run_retention_cmd(*args)); });
}

Registrar registrar(63, setup_retention);

}  // namespace

}  // namespace faceguard::cli
