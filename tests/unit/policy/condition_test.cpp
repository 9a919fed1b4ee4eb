// The condition language, the pack format and the engine's combination rules, on small hand-made packs.
#include <gtest/gtest.h>

#include "faceguard/policy.hpp"
#include "policy/condition.hpp"
#include "policy/context_doc.hpp"
#include "policy/time_util.hpp"

namespace faceguard {
namespace {

using policy::Tri;

policy::Evaluation eval(const std::string& yaml, const std::string& ctx_json, const std::string& now = "2024-01-01T00:00:00Z") {
  auto c = policy::parse_condition(YAML::Load(yaml));
  EXPECT_TRUE(c.ok()) << (c ? "" : c.error().message);
  if (!c) return {};
  auto ctx = parse_context_json(ctx_json);
  EXPECT_TRUE(ctx.ok()) << (ctx ? "" : ctx.error().message);
  const TimePoint t = parse_timestamp(now)->utc;
  return policy::evaluate(*c, policy::evaluation_document(*ctx, t), t);
}

TEST(Condition, EqualityMembershipAndThreeValuedLogic) {
  EXPECT_EQ(eval("operator.role: school", R"({"operator":{"role":"school"}})").value, Tri::kTrue);
  EXPECT_EQ(eval("operator.role: school", R"({"operator":{"role":"individual"}})").value, Tri::kFalse);
  auto u = eval("operator.role: school", "{}");
  EXPECT_EQ(u.value, Tri::kUnknown);
  EXPECT_EQ(u.missing, std::set<std::string>{"operator.role"});
  EXPECT_EQ(eval("operation: [verify, identify]", R"({"operation":"identify"})").value, Tri::kTrue);
  // Kleene: False decides an all even when another part is Unknown; True decides an any.
  EXPECT_EQ(eval("{operation: detect, purpose: sale}", R"({"operation":"identify"})").value, Tri::kFalse);
  EXPECT_EQ(eval("any: [{operation: identify}, {purpose: sale}]", R"({"operation":"identify"})").value, Tri::kTrue);
  EXPECT_EQ(eval("any: [{operation: detect}, {purpose: sale}]", R"({"operation":"identify"})").value, Tri::kUnknown);
  EXPECT_EQ(eval("not: {purpose: sale}", "{}").value, Tri::kUnknown);
  EXPECT_EQ(eval("not: {purpose: sale}", R"({"purpose":"marketing"})").value, Tri::kTrue);
}

TEST(Condition, MissingPresentAreDefinite) {
  EXPECT_EQ(eval("consent: {missing: true}", "{}").value, Tri::kTrue);
  EXPECT_EQ(eval("consent: {present: true}", "{}").value, Tri::kFalse);
  EXPECT_EQ(eval("consent: {missing: false}", R"({"consent":{"id":"c1"}})").value, Tri::kTrue);
  EXPECT_EQ(eval("extra.fria: {present: true}", R"({"extra":{"fria":"F-1"}})").value, Tri::kTrue);
}

TEST(Condition, ComparisonsListsAndClocks) {
  EXPECT_EQ(eval("case.max_sentence_years: {ge: 4}", R"({"case":{"max_sentence_years":4}})").value, Tri::kTrue);
  EXPECT_EQ(eval("case.max_sentence_years: {ge: 4}", R"({"case":{"max_sentence_years":3.5}})").value, Tri::kFalse);
  EXPECT_EQ(eval("capture_time: {lt: 2023-01-01}", R"({"capture_time":"2022-12-31T23:00:00Z"})").value, Tri::kTrue);
  EXPECT_EQ(eval("attributes: {contains: emotion}", R"({"attributes":["age","emotion"]})").value, Tri::kTrue);
  EXPECT_EQ(eval("attributes: {intersects: [race, religion]}", R"({"attributes":["age"]})").value, Tri::kFalse);
  const std::string requested = R"({"authorisation":{"requested_at":"2024-01-01T00:00:00Z"}})";
  EXPECT_EQ(eval("authorisation.requested_at: {within_hours: 24}", requested, "2024-01-01T23:59:59Z").value, Tri::kTrue);
  EXPECT_EQ(eval("authorisation.requested_at: {within_hours: 24}", requested, "2024-01-02T00:00:01Z").value, Tri::kFalse);
  EXPECT_EQ(eval("authorisation.requested_at: {older_than_hours: 24}", requested, "2024-01-02T00:00:01Z").value, Tri::kTrue);
  // A request stamped in the future is not "within" the window.
  EXPECT_EQ(eval("authorisation.requested_at: {within_hours: 24}", requested, "2023-12-31T23:00:00Z").value, Tri::kFalse);
  EXPECT_EQ(eval("consent.purpose: {same_as: purpose}", R"({"purpose":"timekeeping","consent":{"purpose":"timekeeping"}})").value, Tri::kTrue);
  EXPECT_EQ(eval("consent.purpose: {same_as: purpose}", R"({"consent":{"purpose":"timekeeping"}})").value, Tri::kUnknown);
}

TEST(Condition, DerivedConsentAndAuthorisationFields) {
  const std::string c = R"({"capture_time":"2024-06-01T00:00:00Z","consent":{"id":"c","kind":"explicit","purpose":"other",
                          "term":"P1M","signed_at":"2024-05-15T00:00:00Z"}})";
  EXPECT_EQ(eval("consent.active: true", c).value, Tri::kTrue);
  EXPECT_EQ(eval("consent.expires_at: {lt: 2024-06-16}", c).value, Tri::kTrue);
  const std::string expired = R"({"capture_time":"2024-07-01T00:00:00Z","consent":{"id":"c","kind":"explicit","purpose":"other",
                                "term":"P1M","signed_at":"2024-05-15T00:00:00Z"}})";
  EXPECT_EQ(eval("consent.active: true", expired).value, Tri::kFalse);
  const std::string granted = R"({"authorisation":{"type":"judicial","requested_at":"2024-01-01T00:00:00Z","granted_at":"2024-01-01T05:00:00Z"}})";
  EXPECT_EQ(eval("authorisation.granted: true", granted, "2024-01-01T06:00:00Z").value, Tri::kTrue);
  // Granted in the future (relative to the decision) is not granted yet.
  EXPECT_EQ(eval("authorisation.granted: true", granted, "2024-01-01T04:00:00Z").value, Tri::kFalse);
}

TEST(Condition, ParseErrorsNameTheProblem) {
  auto bad = [](const std::string& yaml) {
    auto c = policy::parse_condition(YAML::Load(yaml));
    EXPECT_FALSE(c.ok()) << yaml;
    return c ? std::string() : c.error().message;
  };
  EXPECT_NE(bad("operator.rol: school").find("unknown context field"), std::string::npos);
  EXPECT_NE(bad("operator.role: schol").find("not a known value"), std::string::npos);
  EXPECT_NE(bad("operation: {like: x}").find("unknown operator"), std::string::npos);
  EXPECT_NE(bad("purpose: {lt: 3}").find("compares numbers or times"), std::string::npos);
  EXPECT_NE(bad("case.probable_cause: maybe").find("true or false"), std::string::npos);
  EXPECT_NE(bad("attributes: emotion").find("contains"), std::string::npos);
  EXPECT_NE(bad("all: []").find("non-empty"), std::string::npos);
  std::string deep = "operation: detect";
  for (int i = 0; i < 60; ++i) deep = "not: {" + deep + "}";
  EXPECT_NE(bad(deep).find("deeper"), std::string::npos);
}

constexpr const char* kPack = R"(format: 1
id: test-pack
name: Test pack
version: "1"
source: "Test Act"
applies_to: {jurisdiction.country: ZZ}
rules:
  - id: test.deny-sale
    title: no sale
    citation: "Test Act s.1"
    when: {purpose: sale}
    effect: deny
  - id: test.review
    title: review identifications
    citation: "Test Act s.2"
    when: {operation: identify}
    effect: allow_with_obligations
    obligations: {human_review: 2, top_k: 5, min_similarity: 0.6, retention: {days: 30}}
  - id: test.review-strict
    title: stricter review at night
    citation: "Test Act s.3"
    when: {operation: identify, timing: real_time}
    effect: allow_with_obligations
    obligations: {human_review: 3, top_k: 3, min_similarity: 0.5, retention: {days: 10}}
)";

TEST(Engine, ObligationsAddUpAndTheShortestRetentionWins) {
  auto e = PolicyEngine::from_texts({{"test.yaml", kPack}});
  ASSERT_TRUE(e.ok()) << e.error().message;
  auto ctx = parse_context_json(R"({"jurisdiction":{"country":"ZZ"},"operation":"identify","timing":"real_time",
                                     "purpose":"security","capture_time":"2024-01-01T00:00:00Z"})");
  ASSERT_TRUE(ctx.ok());
  const Decision d = e->decide(*ctx, parse_timestamp("2024-01-01T01:00:00Z")->utc);
  EXPECT_EQ(d.effect, Effect::kAllowWithObligations);
  EXPECT_EQ(d.obligations.human_reviewers, 3);                  // the most reviewers
  EXPECT_EQ(d.obligations.top_k.value_or(0), 3);                // the smallest cap
  EXPECT_FLOAT_EQ(d.obligations.min_similarity.value_or(0), 0.6f);  // the highest threshold
  EXPECT_EQ(format_utc(*d.obligations.retention_deadline), "2024-01-11T00:00:00Z");
}

TEST(Engine, AnyDenyWins) {
  auto e = PolicyEngine::from_texts({{"test.yaml", kPack}});
  ASSERT_TRUE(e.ok());
  auto ctx = parse_context_json(R"({"jurisdiction":{"country":"ZZ"},"operation":"identify","timing":"real_time","purpose":"sale"})");
  const Decision d = e->decide(*ctx);
  EXPECT_EQ(d.effect, Effect::kDeny);
  ASSERT_NE(d.first_deny(), nullptr);
  EXPECT_EQ(d.first_deny()->id, "test.deny-sale");
  EXPECT_EQ(d.first_deny()->citation, "Test Act s.1");
}

TEST(Pack, VersionAndShapeAreChecked) {
  std::string v2 = kPack;
  v2.replace(v2.find("format: 1"), 9, "format: 2");
  auto r = PolicyEngine::from_texts({{"v2.yaml", v2}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kUnsupportedFormat);
  std::string no_format = kPack;
  no_format.erase(0, no_format.find('\n') + 1);
  EXPECT_FALSE(validate_pack_text(no_format).ok());
  std::string typo = kPack;
  typo.replace(typo.find("effect: deny"), 12, "effect: dney");
  EXPECT_FALSE(validate_pack_text(typo).ok());
  std::string stray = std::string(kPack) + "extra_key: 1\n";
  EXPECT_FALSE(validate_pack_text(stray).ok());
  // An allow rule may not carry obligations, an obligations rule must.
  std::string allow_with = kPack;
  allow_with.replace(allow_with.find("effect: allow_with_obligations"), 30, "effect: allow");
  EXPECT_FALSE(validate_pack_text(allow_with).ok());
  // Two packs with one id, or one rule id twice across packs: refused.
  auto dup = PolicyEngine::from_texts({{"a.yaml", kPack}, {"b.yaml", kPack}});
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.error().code, ErrorCode::kConflict);
}

TEST(Pack, ShippedPacksLoadAndCite) {
  auto e = PolicyEngine::load({std::filesystem::path(FACEGUARD_SOURCE_DIR) / "policies"});
  ASSERT_TRUE(e.ok()) << e.error().message;
  const auto packs = e->packs();
  EXPECT_EQ(packs.size(), 9u);
  for (const auto& id : {"us-md-baltimore", "us-me", "us-il-bipa", "us-tx-cubi", "us-wa-rcw43386", "us-or-portland",
                         "us-ca-san-francisco", "eu-ai-act", "eu-gdpr-art9"}) {
    EXPECT_TRUE(e->pack_text(id).ok()) << id;
  }
}

TEST(Context, StrictParsing) {
  EXPECT_FALSE(parse_context_json(R"({"operater":{"role":"school"}})").ok());          // unknown key
  EXPECT_FALSE(parse_context_json(R"({"operator":{"role":"law_enforcment"}})").ok());  // typo in a vocabulary
  EXPECT_FALSE(parse_context_json(R"({"capture_time":"yesterday"})").ok());
  EXPECT_FALSE(parse_context_json(R"({"jurisdiction":{"country":"USA"}})").ok());
  EXPECT_FALSE(parse_context_json(R"({"consent":{"term":"3 years"}})").ok());
  EXPECT_FALSE(parse_context_json("[1,2]").ok());
  auto c = parse_context_json(R"({"jurisdiction":{"country":"us","state":"md","city":"Baltimore"},"operation":"enrol"})");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->jurisdiction.country, "US");
  EXPECT_EQ(c->jurisdiction.city, "baltimore");
  EXPECT_EQ(*c->operation, Operation::kEnroll);
  // Round trip through the canonical JSON.
  auto again = parse_context_json(context_to_json(*c));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(context_to_json(*again), context_to_json(*c));
}

TEST(Context, ProfileFixesFieldsAndRequestsCannotContradictThem) {
  auto p = parse_profile(R"(format: 1
context:
  operator: {org: Harbor Offices Inc, role: private_business}
  jurisdiction: {country: US, state: MD, city: baltimore}
  location: {type: access_control}
)");
  ASSERT_TRUE(p.ok()) << p.error().message;
  auto req = parse_context_json(R"({"operation":"verify","purpose":"access_control"})");
  auto merged = merge_context(*p, *req);
  ASSERT_TRUE(merged.ok()) << merged.error().message;
  EXPECT_EQ(merged->jurisdiction.city, "baltimore");
  EXPECT_EQ(merged->purpose, "access_control");
  auto moved = parse_context_json(R"({"jurisdiction":{"city":"annapolis"}})");
  auto bad = merge_context(*p, *moved);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("jurisdiction.city"), std::string::npos);
  EXPECT_FALSE(parse_profile("format: 2\n").ok());
  EXPECT_FALSE(parse_profile("format: 1\ncontxt: {}\n").ok());
}

TEST(Time, ParsingOffsetsAndCalendarArithmetic) {
  auto t = parse_timestamp("2022-12-31T23:30:00-05:00");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(format_utc(t->utc), "2023-01-01T04:30:00Z");
  EXPECT_EQ(format_timestamp(*t), "2022-12-31T23:30:00-05:00");
  EXPECT_EQ(policy::local_date(*t), std::chrono::sys_days{std::chrono::year{2022} / 12 / 31});
  EXPECT_FALSE(parse_timestamp("2022-02-30").ok());
  EXPECT_FALSE(parse_timestamp("2022-12-31T25:00:00Z").ok());
  EXPECT_FALSE(parse_timestamp("2022-12-31T10:00:00+5").ok());
  auto leap = parse_timestamp("2024-02-29T12:00:00Z")->utc;
  EXPECT_EQ(format_utc(policy::add_span(leap, *policy::parse_duration("P1Y"))), "2025-02-28T12:00:00Z");
  EXPECT_EQ(format_utc(policy::add_span(leap, *policy::parse_duration("P1M2DT3H"))), "2024-03-31T15:00:00Z");
  EXPECT_FALSE(policy::parse_duration("P").has_value());
  EXPECT_FALSE(policy::parse_duration("P1H").has_value());
}

}  // namespace
}  // namespace faceguard
