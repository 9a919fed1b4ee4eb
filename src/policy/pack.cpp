// Parsing and validating one policy pack (YAML, `format: 1`).
#include "policy/pack.hpp"

#include <cmath>
#include <set>

#include "policy/context_doc.hpp"

namespace faceguard::policy {

const char* const kNotSoleBasisNotice =
    "A face match is an investigative lead only: it must not be the sole basis for identification, arrest, "
    "probable cause or any decision with legal or similar effects; corroborate it independently.";

namespace {

struct ParseError {
  std::string message;
};

[[noreturn]] void fail(const YAML::Node& n, const std::string& what) {
  throw ParseError{"line " + std::to_string(n.Mark().line + 1) + ": " + what};
}

void only_keys(const YAML::Node& map, const std::set<std::string>& keys, const std::string& where) {
  if (!map.IsMap()) fail(map, where + ": expected a mapping");
  for (const auto& kv : map) {
    const auto k = kv.first.as<std::string>();
    if (!keys.count(k)) fail(kv.first, where + ": unknown key '" + k + "'");
  }
}

std::string scalar(const YAML::Node& n, const std::string& what, bool required = true) {
  if (!n) {
    if (required) throw ParseError{what + " is required"};
    return {};
  }
  if (!n.IsScalar()) fail(n, what + ": expected a single value");
  return n.Scalar();
}

bool boolean(const YAML::Node& n, const std::string& what) {
  const std::string s = scalar(n, what);
  if (s == "true") return true;
  if (s == "false") return false;
  fail(n, what + ": expected true or false");
}

double number(const YAML::Node& n, const std::string& what, double lo, double hi) {
  const std::string s = scalar(n, what);
  char* end = nullptr;
  const double d = std::strtod(s.c_str(), &end);
  if (s.empty() || end != s.c_str() + s.size() || !std::isfinite(d) || d < lo || d > hi)
    fail(n, what + ": expected a number in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return d;
}

Window window(const YAML::Node& n, const std::string& where) {
  Window w;
  if (!n) return w;
  only_keys(n, {"from", "until"}, where + ".effective");
  auto date = [&](const char* k) -> std::optional<std::chrono::sys_days> {
    if (!n[k]) return std::nullopt;
    auto d = parse_date(scalar(n[k], k));
    if (!d) fail(n[k], where + ".effective." + k + ": expected a date YYYY-MM-DD");
    return d;
  };
  w.from = date("from");
  w.until = date("until");
  if (w.from && w.until && *w.until < *w.from) fail(n, where + ": effective.until is before effective.from");
  return w;
}

Condition condition(const YAML::Node& n) {
  auto c = parse_condition(n);
  if (!c) throw ParseError{c.error().message};
  return std::move(c).value();
}

std::vector<std::string> strings(const YAML::Node& n, const std::string& what) {
  std::vector<std::string> out;
  if (n.IsSequence()) {
    for (const auto& x : n) out.push_back(scalar(x, what));
  } else {
    out.push_back(scalar(n, what));
  }
  return out;
}

DeadlineSpec deadline(const YAML::Node& n, const std::string& what, bool time_field_required) {
  only_keys(n, {"from", "years", "months", "days", "hours"}, what);
  DeadlineSpec d;
  if (n["from"]) {
    d.from_field = scalar(n["from"], what + ".from");
    const FieldSpec* f = field_spec(d.from_field);
    if (!f || f->type != FieldType::kTime) fail(n["from"], what + ".from: '" + d.from_field + "' is not a time field");
  } else if (time_field_required) {
    fail(n, what + ": 'from' (a time field) is required");
  }
  bool any = false;
  if (n["years"]) d.span.years = static_cast<int>(number(n["years"], what + ".years", 0, 200)), any = true;
  if (n["months"]) d.span.months = static_cast<int>(number(n["months"], what + ".months", 0, 2400)), any = true;
  if (n["days"]) d.span.days = static_cast<long long>(number(n["days"], what + ".days", 0, 100000)), any = true;
  if (n["hours"]) d.span.seconds = static_cast<long long>(number(n["hours"], what + ".hours", 0, 1e6) * 3600), any = true;
  if (!any) fail(n, what + ": give years, months, days or hours");
  return d;
}

ObligationSpec obligations(const YAML::Node& n, const std::string& where) {
  only_keys(n, {"min_similarity", "top_k", "notice", "human_review", "restrict_to_targets", "require_liveness",
                "require_consent", "retention", "authorisation_deadline", "log"},
            where + ".obligations");
  ObligationSpec o;
  const std::string w = where + ".obligations";
  if (n["min_similarity"]) o.min_similarity = static_cast<float>(number(n["min_similarity"], w + ".min_similarity", 0, 1));
  if (n["top_k"]) o.top_k = static_cast<int>(number(n["top_k"], w + ".top_k", 1, 10000));
  if (n["notice"])
    for (auto& s : strings(n["notice"], w + ".notice")) o.notices.push_back(s == "not_sole_basis" ? kNotSoleBasisNotice : s);
  if (n["human_review"]) o.human_review = static_cast<int>(number(n["human_review"], w + ".human_review", 1, 10));
  if (n["restrict_to_targets"]) o.restrict_to_targets = boolean(n["restrict_to_targets"], w + ".restrict_to_targets");
  if (n["require_liveness"]) o.require_liveness = boolean(n["require_liveness"], w + ".require_liveness");
  if (n["require_consent"]) o.require_consent = boolean(n["require_consent"], w + ".require_consent");
  auto deadlines = [&](const char* key, bool need_from, std::vector<DeadlineSpec>& out) {
    const YAML::Node d = n[key];
    if (!d) return;
    if (d.IsSequence()) {
      for (const auto& x : d) out.push_back(deadline(x, w + "." + key, need_from));
    } else {
      out.push_back(deadline(d, w + "." + key, need_from));
    }
  };
  deadlines("retention", false, o.retention);
  deadlines("authorisation_deadline", true, o.authorisation_deadline);
  if (n["log"]) o.logs = strings(n["log"], w + ".log");
  return o;
}

bool valid_id(const std::string& s) {
  if (s.empty() || s.size() > 128) return false;
  for (unsigned char c : s)
    if (!(std::islower(c) || std::isdigit(c) || c == '.' || c == '-' || c == '_')) return false;
  return true;
}

Effect effect(const YAML::Node& n, const std::string& where) {
  const std::string s = scalar(n, where + ".effect");
  if (s == "allow") return Effect::kAllow;
  if (s == "deny") return Effect::kDeny;
  if (s == "allow_with_obligations") return Effect::kAllowWithObligations;
  fail(n, where + ".effect: allow, deny or allow_with_obligations, not '" + s + "'");
}

Pack parse(const YAML::Node& root, std::string_view text, const std::string& file) {
  if (!root.IsMap()) throw ParseError{"a pack is a YAML mapping"};
  only_keys(root, {"format", "id", "name", "version", "source", "effective", "applies_to", "default", "rules"}, "pack");
  const std::string format = scalar(root["format"], "format");
  if (format != std::to_string(kPackFormat))
    throw ParseError{"unsupported pack format '" + format + "' (this build reads format " + std::to_string(kPackFormat) + ")"};
  Pack p;
  p.file = file;
  p.text = std::string(text);
  p.id = scalar(root["id"], "id");
  if (!valid_id(p.id)) fail(root["id"], "id: lower-case letters, digits, '.', '-', '_' only");
  p.name = scalar(root["name"], "name");
  p.version = scalar(root["version"], "version");
  p.source = scalar(root["source"], "source");
  p.effective = window(root["effective"], "pack");
  if (!root["applies_to"]) throw ParseError{"applies_to is required (use `applies_to: true` for everywhere)"};
  p.applies_to = condition(root["applies_to"]);
  if (root["default"]) {
    const std::string d = scalar(root["default"], "default");
    if (d == "deny") p.default_effect = Effect::kDeny;
    else if (d != "allow") fail(root["default"], "default: allow or deny");
  }
  const YAML::Node rules = root["rules"];
  if (!rules || !rules.IsSequence() || rules.size() == 0) throw ParseError{"rules: a non-empty list is required"};
  std::set<std::string> ids;
  for (const auto& r : rules) {
    only_keys(r, {"id", "title", "citation", "effective", "when", "effect", "obligations"}, "rule");
    Rule rule;
    rule.id = scalar(r["id"], "rule id");
    if (!valid_id(rule.id)) fail(r["id"], "rule id '" + rule.id + "': lower-case letters, digits, '.', '-', '_' only");
    if (!ids.insert(rule.id).second) fail(r["id"], "duplicate rule id '" + rule.id + "'");
    const std::string where = "rule " + rule.id;
    rule.title = scalar(r["title"], where + ".title");
    rule.citation = scalar(r["citation"], where + ".citation");
    rule.effective = window(r["effective"], where);
    if (!r["when"]) fail(r, where + ": 'when' is required (use `when: true` for always)");
    rule.when = condition(r["when"]);
    if (!r["effect"]) fail(r, where + ": 'effect' is required");
    rule.effect = effect(r["effect"], where);
    if (r["obligations"]) {
      if (rule.effect != Effect::kAllowWithObligations) fail(r["obligations"], where + ": obligations need effect allow_with_obligations");
      rule.obligations = obligations(r["obligations"], where);
    } else if (rule.effect == Effect::kAllowWithObligations) {
      fail(r, where + ": effect allow_with_obligations needs obligations");
    }
    p.rules.push_back(std::move(rule));
  }
  return p;
}

}  // namespace

Result<Pack> parse_pack(std::string_view text, const std::string& file) {
  if (text.size() > (4u << 20)) return make_error(ErrorCode::kInvalidArgument, file + ": pack larger than 4 MiB");
  if (!valid_utf8(text)) return make_error(ErrorCode::kInvalidArgument, file + ": not valid UTF-8");
  try {
    YAML::Node root = YAML::Load(std::string(text));
    return parse(root, text, file);
  } catch (const ParseError& e) {
    return make_error(e.message.rfind("unsupported pack format", 0) == 0 ? ErrorCode::kUnsupportedFormat
                                                                          : ErrorCode::kInvalidArgument,
                      file + ": " + e.message);
  } catch (const std::exception& e) {
    return make_error(ErrorCode::kInvalidArgument, file + ": " + e.what());
  }
}

}  // namespace faceguard::policy
