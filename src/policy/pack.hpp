// A parsed policy pack (private). The file format is documented in docs/policy.md.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "faceguard/policy.hpp"
#include "policy/condition.hpp"
#include "policy/time_util.hpp"

namespace faceguard::policy {

// The only pack format this build reads; any other `format:` is refused (kUnsupportedFormat).
constexpr int kPackFormat = 1;

struct DeadlineSpec {
  std::string from_field;  // empty: the capture time
  CalendarSpan span;
};

struct ObligationSpec {
  std::optional<float> min_similarity;
  std::optional<int> top_k;
  std::vector<std::string> notices;
  int human_review = 0;
  bool restrict_to_targets = false;
  bool require_liveness = false;
  bool require_consent = false;
  std::vector<DeadlineSpec> retention;
  std::vector<DeadlineSpec> authorisation_deadline;
  std::vector<std::string> logs;
};

struct Window {
  std::optional<std::chrono::sys_days> from;   // inclusive
  std::optional<std::chrono::sys_days> until;  // inclusive (the last day in force)
  bool contains(std::chrono::sys_days d) const { return (!from || d >= *from) && (!until || d <= *until); }
};

struct Rule {
  std::string id, title, citation;
  Window effective;
  Condition when;
  Effect effect = Effect::kDeny;
  ObligationSpec obligations;
};

struct Pack {
  std::string id, name, version, source, file, text;
  Window effective;
  Condition applies_to;
  Effect default_effect = Effect::kAllow;  // deny: only what a rule of this pack allows
  std::vector<Rule> rules;
};

// The standard "not the sole basis" notice text (Maine 25 MRSA ch. 701, RCW 43.386, EU AI Act Art. 14(5)).
extern const char* const kNotSoleBasisNotice;

Result<Pack> parse_pack(std::string_view yaml_text, const std::string& file_name);

}  // namespace faceguard::policy
