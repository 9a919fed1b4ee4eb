// Fuzz target: the request-context parser (JSON) and the deployment-profile parser (YAML), then a decision
// against a pack that uses every condition operator. Invariants: no crash; a parsed context survives its
// canonical JSON unchanged; deny exactly when a deny rule fired.
#include <cstdint>
#include <string>

#include "faceguard/policy.hpp"

namespace {

constexpr const char* kPack = R"(format: 1
id: fuzz
name: every operator
version: "1"
source: fuzz
applies_to: true
rules:
  - id: fuzz.deny
    title: t
    citation: c
    when:
      any:
        - all: [{operator.role: [school, law_enforcement]}, {not: {via: [bmv, fbi]}}]
        - consent: {missing: true}
        - consent.purpose: {same_as: purpose}
        - attributes: {intersects: [race, religion]}
        - targets: {contains: x}
        - case.max_sentence_years: {ge: 4, lt: 100}
        - capture_time: {lt: 2023-01-01}
        - authorisation.requested_at: {within_hours: 24}
        - authorisation.granted_at: {older_than_hours: 48}
        - extra.k: {ne: v}
    effect: deny
  - id: fuzz.duty
    title: t
    citation: c
    effective: {from: 2020-01-01, until: 2030-12-31}
    when: {operation: [identify, verify], consent.active: true}
    effect: allow_with_obligations
    obligations:
      human_review: 2
      top_k: 3
      min_similarity: 0.5
      notice: not_sole_basis
      retention: [{years: 3}, {from: consent.expires_at, days: 0}]
      authorisation_deadline: {from: authorisation.requested_at, hours: 24}
)";

const faceguard::PolicyEngine& engine() {
  static auto e = faceguard::PolicyEngine::from_texts({{"fuzz.yaml", kPack}});
  if (!e) __builtin_trap();
  return *e;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto profile = faceguard::parse_profile(text);
  auto ctx = faceguard::parse_context_json(text);
  if (profile && ctx) {
    auto merged = faceguard::merge_context(*profile, *ctx);
    (void)merged;
  }
  if (!ctx) return 0;
  const std::string canon = faceguard::context_to_json(*ctx);
  auto again = faceguard::parse_context_json(canon);
  if (!again || faceguard::context_to_json(*again) != canon) __builtin_trap();
  const auto d = engine().decide(*ctx, faceguard::parse_timestamp("2025-06-01T20:00:00Z")->utc);
  if ((d.first_deny() != nullptr) != d.denied()) __builtin_trap();
  (void)faceguard::decision_to_json(d);
  return 0;
}
