// Options shared by the policy-aware commands: where the profile, packs, audit trail and consents are, and
// the request context (--context FILE, --set path=value). Any command that touches a face can add these and
// call cli_authorize() before it works (see docs/policy.md, "Using the guard from a command").
#pragma once

#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "cli.hpp"
#include "faceguard/audit.hpp"
#include "faceguard/consent.hpp"
#include "faceguard/policy.hpp"

namespace faceguard::cli {

struct PolicyCliOptions {
  std::string profile;
  std::vector<std::string> policy_dirs;
  std::string audit_log, audit_key, consent_db;
  std::string context_file;
  std::vector<std::string> set;
  std::string now;  // decision time for what-if questions (explain only)
};

inline std::filesystem::path self_executable() {
  std::error_code ec;
  auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::filesystem::path() : p;
}

inline void add_store_options(CLI::App* sub, PolicyCliOptions& o) {
  sub->add_option("--profile", o.profile, "deployment profile YAML (default: $FACEGUARD_PROFILE)");
  sub->add_option("--policy-dir", o.policy_dirs, "extra folder of policy packs (repeatable; also $FACEGUARD_POLICY_DIR)");
  sub->add_option("--audit", o.audit_log, "audit trail (default: profile, $FACEGUARD_AUDIT_LOG, ~/.local/state/faceguard/audit.jsonl)");
  sub->add_option("--audit-key", o.audit_key, "Ed25519 signing key for checkpoints (default: profile, $FACEGUARD_AUDIT_KEY, <state dir>/audit.key)");
  sub->add_option("--consent-db", o.consent_db, "consent registry (default: profile, $FACEGUARD_CONSENT_DB, <state dir>/consent.db)");
}

inline void add_context_options(CLI::App* sub, PolicyCliOptions& o) {
  sub->add_option("--context", o.context_file, "request context file (JSON, or YAML for .yaml)");
  sub->add_option("--set", o.set, "context field, e.g. --set operator.role=law_enforcement (repeatable; lists comma-separated)");
}

inline Result<PolicySession> open_policy_session(const PolicyCliOptions& o, bool audit, bool consents) {
  PolicySessionOptions so;
  so.profile = o.profile;
  for (const auto& d : o.policy_dirs) so.policy_dirs.emplace_back(d);
  so.executable = self_executable();
#ifdef FACEGUARD_SOURCE_DIR
  so.source_dir = FACEGUARD_SOURCE_DIR;
#endif
  so.audit_log = o.audit_log;
  so.audit_key = o.audit_key;
  so.consent_db = o.consent_db;
  so.open_audit = audit;
  so.open_consents = consents;
  return PolicySession::open(so);
}

// "--now"/"--at" style option: empty -> nullopt.
inline Result<std::optional<Timestamp>> optional_time(const std::string& text) {
  if (text.empty()) return std::optional<Timestamp>{};
  auto t = parse_timestamp(text);
  if (!t) return t.error();
  return std::optional<Timestamp>{*t};
}

// Decide and log before an operation; a denial comes back as kPolicyDenied naming the rule and citation
// (report() turns it into exit code 7).
inline Result<Authorization> cli_authorize(PolicySession& session, const PolicyCliOptions& o, Operation op) {
  auto ctx = session.context(o.context_file, o.set);
  if (!ctx) return ctx.error();
  return session.guard().authorize(op, std::move(*ctx));
}

// The policy gate's decision for this run of a gated command (see policy_gate.cpp): the open session (its
// guard records outcomes and applies obligations) and the authorisation. Null for an ungated command, and
// before the gate ran. One command runs per process, so one slot suffices.
struct GateResult {
  PolicySession session;
  Authorization auth;
};
GateResult* gate_result();

}  // namespace faceguard::cli
