// The condition language of policy packs (private). docs/policy.md, "Conditions", is the user's reference.
//
//   all: [c, ...]   any: [c, ...]   not: c          combinators; a mapping of several entries is `all`
//   <path>: value                                   equality
//   <path>: [v1, v2]                                membership
//   <path>: {eq|ne|in|not_in|lt|le|gt|ge|missing|present|contains|intersects|within_hours|
//            older_than_hours|same_as: operand, ...}  several operators in one mapping are `all`
//
// Evaluation is three-valued (Kleene): a test on a field the context lacks is Unknown, and Unknown carries
// the missing paths so that the engine can deny naming them. `missing`/`present` are always definite.
// Parsing validates every path against the context schema and every literal against the field's type and
// vocabulary, so a pack with a typo does not load.
#pragma once

#include <memory>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include "faceguard/result.hpp"
#include "faceguard/policy.hpp"

namespace faceguard::policy {

enum class Tri { kFalse, kTrue, kUnknown };

struct Evaluation {
  Tri value = Tri::kFalse;
  std::set<std::string> missing;  // fields whose absence made (part of) it Unknown
};

enum class TestOp { kEq, kNe, kIn, kNotIn, kLt, kLe, kGt, kGe, kMissing, kPresent, kContains, kIntersects,
                    kWithinHours, kOlderThanHours, kSameAs };

struct Condition {
  enum class Kind { kAll, kAny, kNot, kTest, kConst } kind = Kind::kConst;
  std::vector<Condition> children;
  // kTest
  std::string path;
  TestOp op = TestOp::kEq;
  std::vector<nlohmann::json> values;  // typed operands (string / bool / number); one unless in / not_in / intersects
  double number = 0;                   // lt.. on numbers, hours
  std::optional<TimePoint> time;       // lt.. on times
  std::string other_path;              // same_as
  // kConst
  bool constant = true;
};

// Throws nothing; errors name the YAML line.
Result<Condition> parse_condition(const YAML::Node& node, int depth = 0);

Evaluation evaluate(const Condition& c, const nlohmann::json& doc, TimePoint now);

// The value at a dotted path, or nullptr when absent.
const nlohmann::json* lookup(const nlohmann::json& doc, std::string_view path);

}  // namespace faceguard::policy
