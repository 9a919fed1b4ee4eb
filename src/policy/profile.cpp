// Deployment profiles (YAML) and merging a request into the fixed part of the context.
#include <fstream>
#include <sstream>

#include "policy/context_doc.hpp"

namespace faceguard {
namespace {

using nlohmann::json;

// Dotted paths of every leaf (arrays are leaves) of a context document.
void leaves(const json& d, const std::string& prefix, std::vector<std::string>& out) {
  for (const auto& [k, v] : d.items()) {
    const std::string p = prefix.empty() ? k : prefix + "." + k;
    if (v.is_object()) leaves(v, p, out);
    else out.push_back(p);
  }
}

// Merges `add` into `base`; a leaf present in both with different values is a conflict.
bool merge_into(json& base, const json& add, const std::string& prefix, std::string& conflict) {
  for (const auto& [k, v] : add.items()) {
    const std::string p = prefix.empty() ? k : prefix + "." + k;
    if (!base.contains(k)) {
      base[k] = v;
      continue;
    }
    json& b = base[k];
    if (b.is_object() && v.is_object()) {
      if (!merge_into(b, v, p, conflict)) return false;
    } else if (b != v) {
      conflict = p;
      return false;
    }
  }
  return true;
}

std::string resolve(const std::filesystem::path& base, const std::string& p) {
  if (p.empty()) return p;
  std::filesystem::path q(p);
  if (q.is_absolute() || base.empty()) return q.string();
  return (base / q).lexically_normal().string();
}

Result<DeploymentProfile> parse_profile_at(std::string_view text, const std::filesystem::path& base) {
  if (!policy::valid_utf8(text)) return make_error(ErrorCode::kInvalidArgument, "deployment profile: not valid UTF-8");
  try {
    YAML::Node root = YAML::Load(std::string(text));
    if (!root.IsMap()) return make_error(ErrorCode::kInvalidArgument, "deployment profile: expected a mapping");
    static const std::set<std::string> kKeys = {"format", "name", "context", "policy_dir", "audit", "consent_db"};
    for (const auto& kv : root) {
      const auto key = kv.first.as<std::string>();
      if (!kKeys.count(key)) return make_error(ErrorCode::kInvalidArgument, "deployment profile: unknown key '" + key + "'");
    }
    if (!root["format"] || root["format"].as<std::string>() != "1")
      return make_error(ErrorCode::kUnsupportedFormat, "deployment profile: `format: 1` required (this build reads format 1)");
    DeploymentProfile p;
    if (root["context"]) {
      json doc = policy::yaml_to_json(root["context"]);
      if (doc.contains("now")) return make_error(ErrorCode::kInvalidArgument, "deployment profile: 'now' is not settable");
      FG_ASSIGN_OR_RETURN(p.fixed, policy::context_from_json(doc));
      leaves(policy::context_json(p.fixed), "", p.fixed_fields);
    }
    if (root["policy_dir"]) p.policy_dir = resolve(base, root["policy_dir"].as<std::string>());
    if (root["consent_db"]) p.consent_db = resolve(base, root["consent_db"].as<std::string>());
    if (const YAML::Node a = root["audit"]) {
      if (!a.IsMap()) return make_error(ErrorCode::kInvalidArgument, "deployment profile: audit: expected a mapping");
      for (const auto& kv : a) {
        const auto key = kv.first.as<std::string>();
        if (key == "log") p.audit_log = resolve(base, kv.second.as<std::string>());
        else if (key == "key") p.audit_key = resolve(base, kv.second.as<std::string>());
        else if (key == "checkpoint_every") {
          p.checkpoint_every = kv.second.as<int>();
          if (p.checkpoint_every < 1 || p.checkpoint_every > 1000000)
            return make_error(ErrorCode::kInvalidArgument, "deployment profile: audit.checkpoint_every must be 1..1000000");
        } else {
          return make_error(ErrorCode::kInvalidArgument, "deployment profile: unknown key 'audit." + key + "'");
        }
      }
    }
    return p;
  } catch (const std::exception& e) {
    return make_error(ErrorCode::kInvalidArgument, std::string("deployment profile: ") + e.what());
  }
}

}  // namespace

Result<DeploymentProfile> parse_profile(std::string_view yaml_text) { return parse_profile_at(yaml_text, {}); }

Result<DeploymentProfile> load_profile(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return make_error(ErrorCode::kNotFound, "cannot read deployment profile " + file.string());
  std::stringstream ss;
  ss << in.rdbuf();
  auto p = parse_profile_at(ss.str(), file.parent_path());
  if (!p) return make_error(p.error().code, file.string() + ": " + p.error().message);
  return p;
}

Result<RequestContext> merge_context(const DeploymentProfile& profile, const RequestContext& request) {
  json base = policy::context_json(profile.fixed);
  std::string conflict;
  if (!merge_into(base, policy::context_json(request), "", conflict))
    return make_error(ErrorCode::kInvalidArgument,
                      "the request sets '" + conflict + "', which the deployment profile fixes to another value");
  return policy::context_from_json(base);
}

}  // namespace faceguard
