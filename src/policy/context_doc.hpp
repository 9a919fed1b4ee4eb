// The request context as the JSON document conditions are evaluated on (private to the policy area).
#pragma once

#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include "faceguard/policy.hpp"

namespace faceguard::policy {

enum class FieldType { kString, kEnum, kBool, kNumber, kTime, kDuration, kList, kObject };

struct FieldSpec {
  std::string path;                 // dotted, e.g. "operator.role"
  FieldType type = FieldType::kString;
  const std::set<std::string>* vocabulary = nullptr;  // kEnum, and the items of a kList when set
  bool derived = false;             // computed by the engine, never supplied
};

// nullptr for a path that is not part of the context (extra.<key> is always a string field).
const FieldSpec* field_spec(std::string_view path);
const std::vector<FieldSpec>& all_fields();

// JSON object (request shape) -> context. Strict: unknown keys, wrong types, values outside the
// vocabularies and malformed times are kInvalidArgument naming the path.
Result<RequestContext> context_from_json(const nlohmann::json& doc);
nlohmann::json context_json(const RequestContext& ctx);  // only the fields that are set

// The evaluation document: context_json plus derived fields (now, consent.active, consent.expires_at,
// authorisation.granted, authorisation.refused) and capture_time defaulted to now.
nlohmann::json evaluation_document(const RequestContext& ctx, TimePoint now);

// Well-formed UTF-8 (no overlongs, surrogates or code points past U+10FFFF). Every string the policy area
// keeps is checked, so serialising a context, a decision or an audit record can never fail.
bool valid_utf8(std::string_view s);

// YAML text/node helpers shared by the profile and pack loaders: scalars become JSON strings.
nlohmann::json yaml_to_json(const YAML::Node& node);

}  // namespace faceguard::policy
