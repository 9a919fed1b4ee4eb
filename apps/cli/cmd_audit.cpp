// `faceguard audit keygen|verify|export|checkpoint|review|status`: the tamper-evident audit trail.
#include <fstream>
#include <iostream>
#include <memory>

#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "policy_cli.hpp"

namespace faceguard::cli {

namespace {

struct AuditArgs {
  PolicyCliOptions o;
  std::string key;
  bool force = false;
  std::string pub;
  bool require_signatures = false;
  bool json = false;
  std::string out;
  std::string from, to;
  std::string match_id, reviewer, note;
  bool confirm = false, reject = false;
};

// The log a command reads: --audit, then the profile / environment / default, as the session would pick.
Result<std::filesystem::path> log_path(const AuditArgs& a) {
  if (!a.o.audit_log.empty()) return std::filesystem::path(a.o.audit_log);
  PolicyCliOptions o = a.o;
  auto s = open_policy_session(o, true, false);
  if (!s) return s.error();
  return s->audit()->path();
}

std::filesystem::path default_key_path() {
  if (const char* x = std::getenv("XDG_STATE_HOME"); x && *x) return std::filesystem::path(x) / "faceguard" / "audit.key";
  if (const char* h = std::getenv("HOME"); h && *h) return std::filesystem::path(h) / ".local" / "state" / "faceguard" / "audit.key";
  return "audit.key";
}

int run_keygen(const AuditArgs& a) {
  std::filesystem::path key = a.key.empty() ? default_key_path() : std::filesystem::path(a.key);
  std::error_code ec;
  if (key.has_parent_path()) std::filesystem::create_directories(key.parent_path(), ec);
  if (auto s = generate_audit_key(key, a.force); !s) return report(s.error(), "audit keygen");
  std::cout << "secret key " << key.string() << " (keep it private; mode 0600)\n"
            << "public key " << key.string() << ".pub (give it to whoever verifies the trail)\n";
  return kExitOk;
}

int run_verify(const AuditArgs& a) {
  auto log = log_path(a);
  if (!log) return report(log.error(), "audit verify");
  std::filesystem::path pub = a.pub;
  if (pub.empty()) {
    // The public key beside the signing key in use, when there is one.
    std::filesystem::path key = a.o.audit_key;
    if (key.empty()) key = default_key_path();
    std::error_code ec;
    if (std::filesystem::exists(key.string() + ".pub", ec)) pub = key.string() + ".pub";
  }
  auto r = verify_audit_log(*log, pub, a.require_signatures);
  if (!r) return report(r.error(), "audit verify");
  if (a.json) {
    nlohmann::json doc{{"log", log->string()}, {"ok", r->ok}, {"records", r->records}, {"checkpoints", r->checkpoints},
                       {"checkpoints_verified", r->checkpoints_verified}, {"last_seq", r->last_seq},
                       {"head_checked", r->head_checked}, {"public_key", pub.string()}};
    doc["issues"] = nlohmann::json::array();
    for (const auto& i : r->issues) doc["issues"].push_back({{"line", i.line}, {"what", i.what}});
    std::cout << doc.dump(2) << "\n";
  } else {
    std::cout << log->string() << ": " << r->records << " records, " << r->checkpoints << " checkpoints ("
              << r->checkpoints_verified << " signatures verified"
              << (pub.empty() ? ", no public key given" : "") << "), head "
              << (r->head_checked ? "consistent" : "not confirmed") << "\n";
    for (const auto& i : r->issues)
      std::cout << (i.line ? "line " + std::to_string(i.line) : std::string("file")) << ": " << i.what << "\n";
    std::cout << (r->ok ? "OK: the trail is intact\n" : "FAILED: the trail was altered or damaged\n");
  }
  return r->ok ? kExitOk : kExitPermission;
}

int run_export(const AuditArgs& a) {
  auto log = log_path(a);
  if (!log) return report(log.error(), "audit export");
  AuditExportOptions eo{a.from, a.to};
  Result<std::size_t> n = std::size_t{0};
  if (a.out.empty() || a.out == "-") {
    n = export_audit_log(*log, std::cout, eo);
  } else {
    std::ofstream f(a.out, std::ios::binary | std::ios::trunc);
    if (!f) return report(make_error(ErrorCode::kIoError, "cannot write " + a.out), "audit export");
    n = export_audit_log(*log, f, eo);
  }
  if (!n) return report(n.error(), "audit export");
  if (!a.out.empty() && a.out != "-") std::cerr << "faceguard: exported " << *n << " records to " << a.out << "\n";
  return kExitOk;
}

int run_checkpoint(const AuditArgs& a) {
  auto s = open_policy_session(a.o, true, false);
  if (!s) return report(s.error(), "audit checkpoint");
  auto seq = s->audit()->checkpoint();
  if (!seq) return report(seq.error(), "audit checkpoint");
  std::cout << "signed checkpoint at seq " << *seq << "\n";
  return kExitOk;
}

void print_status(const ReviewStatus& st, bool json) {
  if (json) {
    std::cout << nlohmann::json{{"match_id", st.match_id}, {"state", std::string(to_string(st.state))},
                                {"required", st.required}, {"confirmed_by", st.confirmed_by},
                                {"rejected_by", st.rejected_by}}
                     .dump(2)
              << "\n";
    return;
  }
  std::cout << st.match_id << ": " << to_string(st.state) << " (" << st.confirmed_by.size() << " of " << st.required
            << " confirmations";
  for (const auto& r : st.confirmed_by) std::cout << " " << r;
  if (!st.rejected_by.empty()) std::cout << "; rejected by";
  for (const auto& r : st.rejected_by) std::cout << " " << r;
  std::cout << ")\n";
}

int run_review(const AuditArgs& a) {
  if (a.confirm == a.reject)
    return report(make_error(ErrorCode::kInvalidArgument, "give exactly one of --confirm or --reject"), "audit review");
  auto s = open_policy_session(a.o, true, false);
  if (!s) return report(s.error(), "audit review");
  auto st = s->guard().review(a.match_id, a.reviewer, a.confirm, a.note);
  if (!st) return report(st.error(), "audit review");
  print_status(*st, a.json);
  return kExitOk;
}

int run_status(const AuditArgs& a) {
  auto s = open_policy_session(a.o, true, false);
  if (!s) return report(s.error(), "audit status");
  auto st = s->guard().review_status(a.match_id);
  if (!st) return report(st.error(), "audit status");
  print_status(*st, a.json);
  return kExitOk;
}

void setup_audit(CLI::App& app) {
  auto args = std::make_shared<AuditArgs>();
  auto* audit = app.add_subcommand("audit", "the tamper-evident audit trail: keys, verification, export, review");
  audit->require_subcommand(1);

  auto* keygen = audit->add_subcommand("keygen", "create the Ed25519 key pair that signs checkpoints");
  keygen->add_option("--key", args->key, "secret key file to create (default: <state dir>/audit.key); public key: KEY.pub");
  keygen->add_flag("--force", args->force, "overwrite an existing key (old checkpoints then verify only with the old .pub)");
  keygen->callback([args] { set_exit(run_keygen(*args)); });

  auto* verify = audit->add_subcommand("verify", "check the hash chain, checkpoints and head; name the altered line");
  add_store_options(verify, args->o);
  verify->add_option("--pub", args->pub, "public key to check signatures with (default: <signing key>.pub when present)");
  verify->add_flag("--require-signatures", args->require_signatures, "fail when signatures cannot be checked");
  verify->add_flag("--json", args->json, "print JSON");
  verify->footer("Exit codes: 0 intact, 11 altered or damaged (each issue names its line), 3 no such log.");
  verify->callback([args] { set_exit(run_verify(*args)); });

  auto* exp = audit->add_subcommand("export", "write the trail as JSON lines with the EU AI Act Art. 12(3) fields");
  add_store_options(exp, args->o);
  exp->add_option("--out", args->out, "output file (default: stdout)");
  exp->add_option("--from", args->from, "first record time (ISO 8601, inclusive)");
  exp->add_option("--to", args->to, "last record time (ISO 8601, inclusive)");
  exp->callback([args] { set_exit(run_export(*args)); });

  auto* cp = audit->add_subcommand("checkpoint", "append a signed checkpoint now");
  add_store_options(cp, args->o);
  cp->callback([args] { set_exit(run_checkpoint(*args)); });

  auto* review = audit->add_subcommand("review", "confirm or reject a pending match as a named reviewer");
  review->add_option("match", args->match_id, "match id (from the search result)")->required();
  review->add_option("--reviewer", args->reviewer, "your name or staff id")->required();
  review->add_flag("--confirm", args->confirm, "confirm the match");
  review->add_flag("--reject", args->reject, "reject the match");
  review->add_option("--note", args->note, "why");
  review->add_flag("--json", args->json, "print JSON");
  add_store_options(review, args->o);
  review->callback([args] { set_exit(run_review(*args)); });

  auto* status = audit->add_subcommand("status", "the review state of a match");
  status->add_option("match", args->match_id, "match id")->required();
  status->add_flag("--json", args->json, "print JSON");
  add_store_options(status, args->o);
  status->callback([args] { set_exit(run_status(*args)); });
}

Registrar registrar(61, setup_audit);

}  // namespace

}  // namespace faceguard::cli
