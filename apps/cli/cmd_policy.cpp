// `faceguard policy list|show|explain`: the installed policy packs and what they decide for a context.
#include <iostream>
#include <memory>

#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "policy_cli.hpp"

namespace faceguard::cli {

namespace {

struct PolicyArgs {
  PolicyCliOptions o;
  bool json = false;
  std::string pack;
  std::string operation;
};

const char* effect_label(Effect e) {
  switch (e) {
    case Effect::kDeny: return "DENY ";
    case Effect::kAllowWithObligations: return "DUTY ";
    case Effect::kAllow: return "ALLOW";
  }
  return "?";
}

int run_list(const PolicyArgs& a) {
  auto s = open_policy_session(a.o, false, false);
  if (!s) return report(s.error(), "policy list");
  const auto packs = s->engine().packs();
  if (a.json) {
    nlohmann::json doc = nlohmann::json::array();
    for (const auto& p : packs)
      doc.push_back({{"id", p.id}, {"name", p.name}, {"version", p.version}, {"source", p.source}, {"file", p.file},
                     {"rules", p.rule_count}});
    std::cout << doc.dump(2) << "\n";
    return kExitOk;
  }
  for (const auto& p : packs)
    std::cout << p.id << "  v" << p.version << "  " << p.rule_count << " rules  " << p.name << "\n    " << p.source
              << "\n    " << p.file << "\n";
  return kExitOk;
}

int run_show(const PolicyArgs& a) {
  auto s = open_policy_session(a.o, false, false);
  if (!s) return report(s.error(), "policy show");
  auto text = s->engine().pack_text(a.pack);
  if (!text) return report(text.error(), "policy show");
  std::cout << *text;
  if (!text->empty() && text->back() != '\n') std::cout << "\n";
  return kExitOk;
}

void print_decision(const Decision& d) {
  std::cout << "decision: " << to_string(d.effect) << "\n"
            << "evaluated at " << d.evaluated_at << " (capture), decided " << d.decided_at << "\n"
            << "packs applied:";
  if (d.packs.empty()) std::cout << " none";
  for (const auto& p : d.packs) std::cout << " " << p;
  std::cout << "\n";
  if (!d.rules.empty()) std::cout << "rules fired:\n";
  for (const auto& r : d.rules) {
    std::cout << "  " << effect_label(r.effect) << " " << r.id << (r.conclusive ? "" : "  (not ruled out)") << "\n"
              << "        " << r.title << "\n"
              << "        citation: " << r.citation << "\n";
    if (!r.missing.empty()) {
      std::cout << "        context lacks:";
      for (const auto& m : r.missing) std::cout << " " << m;
      std::cout << "\n";
    }
  }
  const Obligations& o = d.obligations;
  if (!o.empty()) {
    std::cout << "obligations:\n";
    if (o.min_similarity) std::cout << "  drop matches below similarity " << *o.min_similarity << "\n";
    if (o.top_k) std::cout << "  show at most " << *o.top_k << " candidates\n";
    if (o.human_reviewers) std::cout << "  human review: " << o.human_reviewers << " named reviewer(s) confirm each match\n";
    if (o.restrict_to_targets) std::cout << "  search only the target list (targets)\n";
    if (o.require_liveness) std::cout << "  liveness check required\n";
    if (o.require_consent) std::cout << "  bind stored templates to the consent\n";
    if (o.retention_deadline) std::cout << "  erase stored templates by " << format_utc(*o.retention_deadline) << "\n";
    if (o.authorisation_deadline)
      std::cout << "  authorisation must be granted by " << format_utc(*o.authorisation_deadline) << ", else stop and delete\n";
    for (const auto& l : o.logs) std::cout << "  log: " << l << "\n";
    for (const auto& n : o.notices) std::cout << "  notice: " << n << "\n";
  }
}

int run_explain(const PolicyArgs& a) {
  auto s = open_policy_session(a.o, false, false);
  if (!s) return report(s.error(), "policy explain");
  auto op = parse_operation(a.operation);
  if (!op) return report(op.error(), "policy explain");
  auto ctx = s->context(a.o.context_file, a.o.set);
  if (!ctx) return report(ctx.error(), "policy explain");
  if (ctx->operation && *ctx->operation != *op)
    return report(make_error(ErrorCode::kInvalidArgument, "the context names another operation"), "policy explain");
  ctx->operation = *op;
  auto now = optional_time(a.o.now);
  if (!now) return report(now.error(), "--now");
  std::optional<TimePoint> at;
  if (*now) at = (*now)->utc;
  const Decision d = s->engine().decide(*ctx, at);
  if (a.json) {
    auto doc = nlohmann::json::parse(decision_to_json(d));
    doc["operation"] = std::string(to_string(*op));
    doc["context"] = nlohmann::json::parse(context_to_json(*ctx));
    std::cout << doc.dump(2) << "\n";
  } else {
    print_decision(d);
  }
  if (d.denied()) {
    const FiredRule* r = d.first_deny();
    std::cerr << "faceguard: policy explain: denied by " << r->id << " (" << r->citation << ")\n";
    return kExitPolicyDenied;
  }
  return kExitOk;
}

void setup_policy(CLI::App& app) {
  auto args = std::make_shared<PolicyArgs>();
  auto* policy = app.add_subcommand("policy", "the policy packs: list them, show one, explain a decision");
  policy->require_subcommand(1);

  auto* list = policy->add_subcommand("list", "list the loaded policy packs (law packs and your own)");
  add_store_options(list, args->o);
  list->add_flag("--json", args->json, "print JSON");
  list->callback([args] { set_exit(run_list(*args)); });

  auto* show = policy->add_subcommand("show", "print one pack's YAML");
  show->add_option("pack", args->pack, "pack id (see `faceguard policy list`)")->required();
  add_store_options(show, args->o);
  show->callback([args] { set_exit(run_show(*args)); });

  auto* explain = policy->add_subcommand("explain", "decide for a context and an operation, and say why");
  explain->add_option("operation", args->operation,
                      "detect, attributes, enroll, verify, identify, track, cluster, export or delete")->required();
  add_store_options(explain, args->o);
  add_context_options(explain, args->o);
  explain->add_option("--now", args->o.now, "decision time (ISO 8601; default: now), for what-if questions");
  explain->add_flag("--json", args->json, "print the decision as JSON");
  explain->footer(
      "Example: faceguard policy explain identify --set jurisdiction.country=US --set jurisdiction.state=MD \\\n"
      "  --set jurisdiction.city=baltimore --set operator.role=private_business \\\n"
      "  --set location.type=public_accommodation --set purpose=loss_prevention --set capture_time=2022-06-01T10:00-04:00\n"
      "Exit codes: 0 allowed (with or without obligations), 7 denied, 9 malformed context or pack.");
  explain->callback([args] { set_exit(run_explain(*args)); });
}

Registrar registrar(60, setup_policy);

}  // namespace

}  // namespace faceguard::cli
