// Fuzz target: the policy pack parser (YAML, format 1) and the engine on whatever pack parses.
// Invariants: no crash or hang; a decision is deny exactly when a deny rule fired.
#include <cstdint>
#include <string>

#include "faceguard/policy.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  if (!faceguard::validate_pack_text(text).ok()) return 0;
  auto engine = faceguard::PolicyEngine::from_texts({{"fuzz.yaml", text}});
  if (!engine) return 0;
  static const char* kContexts[] = {
      R"({"jurisdiction":{"country":"US","state":"ME"},"operator":{"role":"law_enforcement"},"operation":"identify","via":"bmv","case":{"probable_cause":true,"serious_crime":true}})",
      R"({"jurisdiction":{"country":"DE"},"operator":{"role":"law_enforcement"},"location":{"type":"public_space"},"operation":"identify","timing":"real_time","authorisation":{"type":"judicial","requested_at":"2025-06-01T10:00:00Z"}})",
      R"({"operation":"enroll","consent":{"id":"c","kind":"written_release","purpose":"timekeeping","term":"P1Y","signed_at":"2024-01-01"}})",
      "{}"};
  for (const char* c : kContexts) {
    auto ctx = faceguard::parse_context_json(c);
    if (!ctx) __builtin_trap();  // the fixed contexts are valid
    const auto d = engine->decide(*ctx, faceguard::parse_timestamp("2025-06-01T20:00:00Z")->utc);
    const bool any_deny = d.first_deny() != nullptr;
    if (any_deny != d.denied()) __builtin_trap();
  }
  return 0;
}
