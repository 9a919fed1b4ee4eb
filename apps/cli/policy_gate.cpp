// The policy decision point in front of every CLI command that touches a face. Each gated command gets the
// policy options (--profile, --context, --set, --audit, ...) and, once its arguments are parsed and before it
// runs, a decision: a denial stops it with exit code 7 and the rule and citation; an allow is written to the
// audit trail first. Missing context (no deployment profile, no jurisdiction...) is a denial, never an allow.
#include <map>
#include <memory>
#include <string>
#include <utility>

#include "cli.hpp"
#include "policy_cli.hpp"

namespace faceguard::cli {
namespace {

struct Gate {
  std::vector<std::string> path;
  Operation op;
};

// Which operation each command performs (POLICY.md, "Operations the law distinguishes"). `embed` makes a
// template a caller can store: the law's "enrol"; `demo`, `compare`, `bench` and `eval verify` compare faces.
const std::vector<Gate>& gates() {
  static const std::vector<Gate> g = {
      {{"detect"}, Operation::kDetect},
      {{"embed"}, Operation::kEnroll},
      {{"compare"}, Operation::kVerify},
      {{"demo"}, Operation::kVerify},
      {{"bench"}, Operation::kVerify},
      {{"eval", "verify"}, Operation::kVerify},
      {{"eval", "detect"}, Operation::kDetect},
      {{"gallery", "enroll"}, Operation::kEnroll},
      {{"gallery", "import"}, Operation::kEnroll},
      {{"gallery", "identify"}, Operation::kIdentify},
      {{"gallery", "calibrate"}, Operation::kVerify},
      {{"gallery", "delete"}, Operation::kDelete},
      {{"gallery", "export"}, Operation::kExport},
  };
  return g;
}

CLI::App* find(CLI::App& app, const std::vector<std::string>& path) {
  CLI::App* at = &app;
  for (const auto& name : path) {
    CLI::App* next = nullptr;
    for (auto* s : at->get_subcommands([](CLI::App*) { return true; }))
      if (s->get_name() == name) next = s;
    if (!next) return nullptr;
    at = next;
  }
  return at;
}

bool has_option(CLI::App* sub, const std::string& name) {
  try {
    return sub->get_option_no_throw(name) != nullptr;
  } catch (...) {
    return false;
  }
}

std::unique_ptr<GateResult>& gate_slot() {
  static std::unique_ptr<GateResult> slot;
  return slot;
}

}  // namespace

GateResult* gate_result() { return gate_slot().get(); }

// The demo's own deployment profile (profiles/demo.yaml): used by `faceguard demo` when none is given.
std::filesystem::path demo_profile_path() {
  std::vector<std::filesystem::path> candidates;
  const auto exe = self_executable();
  if (!exe.empty()) {
    candidates.push_back(exe.parent_path() / ".." / "share" / "faceguard" / "profiles" / "demo.yaml");
    candidates.push_back(exe.parent_path() / "profiles" / "demo.yaml");
  }
  candidates.push_back(std::filesystem::path(FACEGUARD_SOURCE_DIR) / "profiles" / "demo.yaml");
  std::error_code ec;
  for (const auto& c : candidates)
    if (std::filesystem::is_regular_file(c, ec)) return c;
  return {};
}

void install_policy_gates(CLI::App& app) {
  for (const auto& gate : gates()) {
    CLI::App* sub = find(app, gate.path);
    if (!sub) continue;
    auto opts = std::make_shared<PolicyCliOptions>();
    if (!has_option(sub, "--profile")) add_store_options(sub, *opts);
    if (!has_option(sub, "--context")) add_context_options(sub, *opts);
    const bool is_demo = gate.path.size() == 1 && gate.path[0] == "demo";
    std::string what;
    for (const auto& p : gate.path) what += (what.empty() ? "" : " ") + p;
    sub->footer(sub->get_footer() + std::string(sub->get_footer().empty() ? "" : "\n\n") +
                "Policy: this command is the '" + std::string(to_string(gate.op)) +
                "' operation. It runs only if the deployment profile (--profile or $FACEGUARD_PROFILE) and the "
                "request context (--context FILE, --set path=value) allow it; a denial exits with code 7 and "
                "names the rule. See docs/policy.md." +
                (is_demo ? " Without a profile the demo uses profiles/demo.yaml." : ""));
    const Operation op = gate.op;
    sub->parse_complete_callback([opts, op, what, is_demo, sub] {
      PolicyCliOptions o = *opts;
      // A command's own --consent ID and --subject S (gallery enroll) are part of the request context: the
      // decision must see the consent the template will be bound to (the registry then supplies its fields)
      // and whose it is, so that a consent given by someone else does not count.
      for (const auto& [flag, field] : {std::pair{"--consent", "consent.id"}, std::pair{"--subject", "subject.id"}}) {
        if (!has_option(sub, flag)) continue;
        const auto* c = sub->get_option(flag);
        if (c->count() > 0 && !c->results().empty() && !c->results().front().empty())
          o.set.push_back(std::string(field) + "=" + c->results().front());
      }
      if (is_demo && o.profile.empty() && !std::getenv("FACEGUARD_PROFILE")) o.profile = demo_profile_path().string();
      auto session = open_policy_session(o, /*audit=*/true, /*consents=*/true);
      if (!session) throw CLI::RuntimeError(report(session.error(), what + ": policy"));
      auto auth = cli_authorize(*session, o, op);
      if (!auth) {
        const int code = report(auth.error(), what);
        if (auth.error().code == ErrorCode::kPolicyDenied)
          std::cerr << "faceguard: " << what << " was not run. `faceguard policy explain --operation "
                    << to_string(op) << "` with the same options shows every rule that fired.\n";
        throw CLI::RuntimeError(code);
      }
      for (const auto& n : auth->obligations().notices) std::cerr << "faceguard: notice: " << n << "\n";
      gate_slot() = std::make_unique<GateResult>(GateResult{std::move(*session), std::move(*auth)});
    });
  }
}

}  // namespace faceguard::cli
