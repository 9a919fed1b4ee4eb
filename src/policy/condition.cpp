// Parsing and three-valued evaluation of pack conditions.
#include "policy/condition.hpp"

#include <algorithm>
#include <cmath>

#include "policy/context_doc.hpp"

namespace faceguard::policy {
namespace {

using nlohmann::json;

// Deep enough for any real pack; bounds the recursion a hostile pack can cause.
constexpr int kMaxDepth = 48;

Error err_at(const YAML::Node& n, const std::string& what) {
  return make_error(ErrorCode::kInvalidArgument, "line " + std::to_string(n.Mark().line + 1) + ": " + what);
}

const std::pair<std::string_view, TestOp> kOps[] = {
    {"eq", TestOp::kEq},           {"ne", TestOp::kNe},
    {"in", TestOp::kIn},           {"not_in", TestOp::kNotIn},
    {"lt", TestOp::kLt},           {"le", TestOp::kLe},
    {"gt", TestOp::kGt},           {"ge", TestOp::kGe},
    {"missing", TestOp::kMissing}, {"present", TestOp::kPresent},
    {"contains", TestOp::kContains}, {"intersects", TestOp::kIntersects},
    {"within_hours", TestOp::kWithinHours}, {"older_than_hours", TestOp::kOlderThanHours},
    {"same_as", TestOp::kSameAs}};

// One literal for a field of the given spec; `item` = an element of a list field.
Result<json> literal(const FieldSpec& f, const YAML::Node& n, const std::string& path, bool item) {
  if (!n.IsScalar()) return err_at(n, "'" + path + "': expected a single value");
  const std::string s = n.Scalar();
  switch (item ? FieldType::kString : f.type) {
    case FieldType::kBool:
      if (s == "true") return json(true);
      if (s == "false") return json(false);
      return err_at(n, "'" + path + "' is true or false, not '" + s + "'");
    case FieldType::kNumber: {
      char* end = nullptr;
      const double d = std::strtod(s.c_str(), &end);
      if (s.empty() || end != s.c_str() + s.size() || !std::isfinite(d)) return err_at(n, "'" + path + "': expected a number");
      return json(d);
    }
    case FieldType::kTime:
      if (!parse_timestamp(s)) return err_at(n, "'" + path + "': not an ISO 8601 time: '" + s + "'");
      return json(s);
    case FieldType::kObject:
      return err_at(n, "'" + path + "' is an object: only missing/present apply");
    default: break;
  }
  std::string v = s;
  if (path == "operation" && v == "enrol") v = "enroll";
  if (f.vocabulary && !f.vocabulary->count(v)) return err_at(n, "'" + v + "' is not a known value of '" + path + "'");
  return json(v);
}

Result<Condition> parse_test(const std::string& path, const YAML::Node& value) {
  const FieldSpec* f = field_spec(path);
  if (!f) return err_at(value, "unknown context field '" + path + "' (docs/policy.md lists them)");
  const bool is_list = f->type == FieldType::kList;
  auto make = [&](TestOp op) {
    Condition c;
    c.kind = Condition::Kind::kTest;
    c.path = path;
    c.op = op;
    return c;
  };
  auto values_of = [&](const YAML::Node& n, bool item, std::vector<json>& out) -> Status {
    if (n.IsSequence()) {
      if (n.size() == 0) return err_at(n, "'" + path + "': empty list");
      for (const auto& x : n) {
        FG_ASSIGN_OR_RETURN(json v, literal(*f, x, path, item));
        out.push_back(std::move(v));
      }
      return ok_status();
    }
    FG_ASSIGN_OR_RETURN(json v, literal(*f, n, path, item));
    out.push_back(std::move(v));
    return ok_status();
  };
  if (value.IsScalar() || value.IsSequence()) {  // shorthand: equality / membership
    if (is_list || f->type == FieldType::kObject) return err_at(value, "'" + path + "': use contains/intersects/missing");
    Condition c = make(value.IsScalar() ? TestOp::kEq : TestOp::kIn);
    FG_TRY_STATUS(values_of(value, false, c.values));
    return c;
  }
  if (!value.IsMap() || value.size() == 0) return err_at(value, "'" + path + "': expected a value, a list or {operator: operand}");
  Condition all;
  all.kind = Condition::Kind::kAll;
  for (const auto& kv : value) {
    const std::string name = kv.first.as<std::string>();
    const YAML::Node& operand = kv.second;
    auto it = std::find_if(std::begin(kOps), std::end(kOps), [&](const auto& p) { return p.first == name; });
    if (it == std::end(kOps)) return err_at(kv.first, "unknown operator '" + name + "'");
    Condition c = make(it->second);
    switch (c.op) {
      case TestOp::kMissing:
      case TestOp::kPresent: {
        if (!operand.IsScalar() || (operand.Scalar() != "true" && operand.Scalar() != "false"))
          return err_at(operand, "'" + name + "' takes true or false");
        if (operand.Scalar() == "false") c.op = c.op == TestOp::kMissing ? TestOp::kPresent : TestOp::kMissing;
        break;
      }
      case TestOp::kEq:
      case TestOp::kNe:
        if (is_list || f->type == FieldType::kObject || !operand.IsScalar())
          return err_at(operand, "'" + name + "' compares a single value");
        FG_TRY_STATUS(values_of(operand, false, c.values));
        break;
      case TestOp::kIn:
      case TestOp::kNotIn:
        if (is_list || f->type == FieldType::kObject || !operand.IsSequence())
          return err_at(operand, "'" + name + "' takes a list");
        FG_TRY_STATUS(values_of(operand, false, c.values));
        break;
      case TestOp::kContains:
      case TestOp::kIntersects:
        if (!is_list) return err_at(operand, "'" + name + "' applies to list fields (attributes, targets)");
        if (c.op == TestOp::kContains && !operand.IsScalar()) return err_at(operand, "'contains' takes one value");
        if (c.op == TestOp::kIntersects && !operand.IsSequence()) return err_at(operand, "'intersects' takes a list");
        FG_TRY_STATUS(values_of(operand, true, c.values));
        break;
      case TestOp::kLt:
      case TestOp::kLe:
      case TestOp::kGt:
      case TestOp::kGe:
        if (f->type == FieldType::kNumber) {
          FG_ASSIGN_OR_RETURN(json v, literal(*f, operand, path, false));
          c.number = v.get<double>();
        } else if (f->type == FieldType::kTime) {
          FG_ASSIGN_OR_RETURN(json v, literal(*f, operand, path, false));
          c.time = parse_timestamp(v.get<std::string>())->utc;
        } else {
          return err_at(operand, "'" + name + "' compares numbers or times; '" + path + "' is neither");
        }
        break;
      case TestOp::kWithinHours:
      case TestOp::kOlderThanHours: {
        if (f->type != FieldType::kTime) return err_at(operand, "'" + name + "' applies to time fields");
        if (!operand.IsScalar()) return err_at(operand, "'" + name + "' takes a number of hours");
        char* end = nullptr;
        const std::string s = operand.Scalar();
        c.number = std::strtod(s.c_str(), &end);
        if (s.empty() || end != s.c_str() + s.size() || !std::isfinite(c.number) || c.number < 0 || c.number > 1e6)
          return err_at(operand, "'" + name + "' takes a number of hours (0..1e6)");
        break;
      }
      case TestOp::kSameAs: {
        if (!operand.IsScalar()) return err_at(operand, "'same_as' takes a field path");
        c.other_path = operand.Scalar();
        const FieldSpec* g = field_spec(c.other_path);
        if (!g) return err_at(operand, "unknown context field '" + c.other_path + "'");
        if (g->type == FieldType::kObject || f->type == FieldType::kObject)
          return err_at(operand, "'same_as' compares values, not objects");
        break;
      }
    }
    all.children.push_back(std::move(c));
  }
  if (all.children.size() == 1) return std::move(all.children.front());
  return all;
}

Tri tri(bool b) { return b ? Tri::kTrue : Tri::kFalse; }

Evaluation unknown(const std::string& path) {
  Evaluation e;
  e.value = Tri::kUnknown;
  e.missing.insert(path);
  return e;
}

std::optional<TimePoint> as_time(const json& v) {
  if (!v.is_string()) return std::nullopt;
  auto t = parse_timestamp(v.get<std::string>());
  if (!t) return std::nullopt;
  return t->utc;
}

Evaluation eval_test(const Condition& c, const json& doc, TimePoint now) {
  const json* v = lookup(doc, c.path);
  if (c.op == TestOp::kMissing) return {tri(v == nullptr), {}};
  if (c.op == TestOp::kPresent) return {tri(v != nullptr), {}};
  if (!v) return unknown(c.path);
  auto is_in = [&](const json& x) { return std::find(c.values.begin(), c.values.end(), x) != c.values.end(); };
  switch (c.op) {
    case TestOp::kEq: return {tri(*v == c.values.front()), {}};
    case TestOp::kNe: return {tri(*v != c.values.front()), {}};
    case TestOp::kIn: return {tri(is_in(*v)), {}};
    case TestOp::kNotIn: return {tri(!is_in(*v)), {}};
    case TestOp::kContains:
    case TestOp::kIntersects: {
      if (!v->is_array()) return unknown(c.path);
      for (const auto& x : *v)
        if (is_in(x)) return {Tri::kTrue, {}};
      return {Tri::kFalse, {}};
    }
    case TestOp::kLt:
    case TestOp::kLe:
    case TestOp::kGt:
    case TestOp::kGe: {
      int cmp;
      if (c.time) {
        auto t = as_time(*v);
        if (!t) return unknown(c.path);
        cmp = *t < *c.time ? -1 : *t > *c.time ? 1 : 0;
      } else {
        if (!v->is_number()) return unknown(c.path);
        const double d = v->get<double>();
        cmp = d < c.number ? -1 : d > c.number ? 1 : 0;
      }
      const bool r = c.op == TestOp::kLt ? cmp < 0 : c.op == TestOp::kLe ? cmp <= 0 : c.op == TestOp::kGt ? cmp > 0 : cmp >= 0;
      return {tri(r), {}};
    }
    case TestOp::kWithinHours:
    case TestOp::kOlderThanHours: {
      auto t = as_time(*v);
      if (!t) return unknown(c.path);
      const double age_h = std::chrono::duration<double>(now - *t).count() / 3600.0;
      if (c.op == TestOp::kWithinHours) return {tri(age_h >= 0 && age_h <= c.number), {}};
      return {tri(age_h > c.number), {}};
    }
    case TestOp::kSameAs: {
      const json* o = lookup(doc, c.other_path);
      if (!o) return unknown(c.other_path);
      return {tri(*v == *o), {}};
    }
    default: return {Tri::kFalse, {}};
  }
}

}  // namespace

const json* lookup(const json& doc, std::string_view path) {
  const json* cur = &doc;
  std::size_t start = 0;
  while (true) {
    const std::size_t dot = path.find('.', start);
    const std::string key(path.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start));
    if (!cur->is_object()) return nullptr;
    auto it = cur->find(key);
    if (it == cur->end() || it->is_null()) return nullptr;
    cur = &*it;
    if (dot == std::string_view::npos) return cur;
    start = dot + 1;
  }
}

Result<Condition> parse_condition(const YAML::Node& node, int depth) {
  if (depth > kMaxDepth) return err_at(node, "condition nested deeper than " + std::to_string(kMaxDepth));
  try {
    if (node.IsScalar()) {
      Condition c;
      if (node.Scalar() == "true" || node.Scalar() == "always") return c;
      if (node.Scalar() == "false" || node.Scalar() == "never") return c.constant = false, c;
      return err_at(node, "a condition is a mapping (or true/false)");
    }
    if (!node.IsMap() || node.size() == 0) return err_at(node, "a condition is a non-empty mapping");
    Condition all;
    all.kind = Condition::Kind::kAll;
    for (const auto& kv : node) {
      const std::string key = kv.first.as<std::string>();
      const YAML::Node& v = kv.second;
      if (key == "all" || key == "any") {
        if (!v.IsSequence() || v.size() == 0) return err_at(v, "'" + key + "' takes a non-empty list of conditions");
        Condition c;
        c.kind = key == "all" ? Condition::Kind::kAll : Condition::Kind::kAny;
        for (const auto& item : v) {
          FG_ASSIGN_OR_RETURN(Condition child, parse_condition(item, depth + 1));
          c.children.push_back(std::move(child));
        }
        all.children.push_back(std::move(c));
      } else if (key == "not") {
        Condition c;
        c.kind = Condition::Kind::kNot;
        FG_ASSIGN_OR_RETURN(Condition child, parse_condition(v, depth + 1));
        c.children.push_back(std::move(child));
        all.children.push_back(std::move(c));
      } else {
        FG_ASSIGN_OR_RETURN(Condition t, parse_test(key, v));
        all.children.push_back(std::move(t));
      }
    }
    if (all.children.size() == 1) return std::move(all.children.front());
    return all;
  } catch (const std::exception& e) {
    return err_at(node, std::string("bad condition: ") + e.what());
  }
}

Evaluation evaluate(const Condition& c, const json& doc, TimePoint now) {
  switch (c.kind) {
    case Condition::Kind::kConst: return {tri(c.constant), {}};
    case Condition::Kind::kTest: return eval_test(c, doc, now);
    case Condition::Kind::kNot: {
      Evaluation e = evaluate(c.children.front(), doc, now);
      if (e.value != Tri::kUnknown) e.value = e.value == Tri::kTrue ? Tri::kFalse : Tri::kTrue;
      return e;
    }
    case Condition::Kind::kAll:
    case Condition::Kind::kAny: {
      // Kleene: all = False if any False, else Unknown if any Unknown; any is the dual.
      const Tri decisive = c.kind == Condition::Kind::kAll ? Tri::kFalse : Tri::kTrue;
      Evaluation out;
      out.value = c.kind == Condition::Kind::kAll ? Tri::kTrue : Tri::kFalse;
      bool any_unknown = false;
      for (const auto& child : c.children) {
        Evaluation e = evaluate(child, doc, now);
        if (e.value == decisive) return {decisive, {}};
        if (e.value == Tri::kUnknown) {
          any_unknown = true;
          out.missing.insert(e.missing.begin(), e.missing.end());
        }
      }
      if (any_unknown) out.value = Tri::kUnknown;
      else out.missing.clear();
      return out;
    }
  }
  return {Tri::kFalse, {}};
}

}  // namespace faceguard::policy
