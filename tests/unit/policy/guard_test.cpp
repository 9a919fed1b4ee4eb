// PolicyGuard: every decision is logged, denials name rule and citation, obligations are enforced on results,
// and a match stays pending until enough distinct reviewers confirm it.
#include <gtest/gtest.h>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "faceguard/audit.hpp"
#include "faceguard/consent.hpp"
#include "faceguard/policy.hpp"
#include "test_support.hpp"

namespace faceguard {
namespace {

namespace fs = std::filesystem;

TimePoint at(const char* s) { return parse_timestamp(s)->utc; }

class GuardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("fg-guard-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    auto e = PolicyEngine::load({test::source_dir() / "policies"});
    ASSERT_TRUE(e.ok()) << e.error().message;
    engine_ = std::make_unique<PolicyEngine>(std::move(*e));
    auto a = AuditLog::open(dir_ / "audit.jsonl");
    ASSERT_TRUE(a.ok());
    audit_ = std::make_unique<AuditLog>(std::move(*a));
  }
  void TearDown() override { fs::remove_all(dir_); }

  RequestContext missing_child() {
    auto c = parse_context_json(R"({
      "jurisdiction": {"country": "DE", "city": "berlin"},
      "operator": {"id": "po-311", "org": "Polizei Berlin", "role": "law_enforcement"},
      "location": {"type": "public_space"}, "timing": "real_time", "source": "live", "targeting": "targeted",
      "purpose": "missing_person", "legal_basis": "national_law", "targets": ["child-4471"],
      "gallery": {"id": "missing-persons-2025", "provenance": "case_evidence"},
      "extra": {"fria": "FRIA-2025-07"},
      "authorisation": {"type": "judicial", "id": "AG-2025-118", "requested_at": "2025-06-01T10:00:00+02:00"},
      "capture_time": "2025-06-01T20:00:00+02:00"})");
    EXPECT_TRUE(c.ok()) << c.error().message;
    return *c;
  }

  std::vector<AuditRecord> records() {
    auto r = audit_->read_all();
    EXPECT_TRUE(r.ok());
    return r ? *r : std::vector<AuditRecord>{};
  }

  fs::path dir_;
  std::unique_ptr<PolicyEngine> engine_;
  std::unique_ptr<AuditLog> audit_;
};

TEST_F(GuardTest, DenialNamesRuleAndCitationAndIsLogged) {
  PolicyGuard guard(*engine_, audit_.get());
  RequestContext ctx = missing_child();
  ctx.authorisation.reset();
  auto r = guard.authorize(Operation::kIdentify, ctx, at("2025-06-01T20:00:00+02:00"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kPolicyDenied);
  EXPECT_NE(r.error().message.find("aiact.5-1-h.real-time-rbi"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("Art. 5(1)(h)"), std::string::npos) << r.error().message;
  const auto recs = records();
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(recs[0].kind, "decision");
  auto body = nlohmann::json::parse(recs[0].body_json);
  EXPECT_EQ(body["effect"], "deny");
  EXPECT_EQ(body["who"]["id"], "po-311");
  EXPECT_EQ(body["where"]["city"], "berlin");
  EXPECT_EQ(body["why"]["purpose"], "missing_person");
  EXPECT_EQ(body["rules"][0]["id"], "aiact.5-1-h.real-time-rbi");
}

// The service's group commit: a detect/verify/identify decision may wait for its outcome record's fdatasync;
// an enrolment's or deletion's may not, and a denial is logged like any other.
TEST_F(GuardTest, OnlyAnswerOnlyOperationsDeferTheirDecisionRecord) {
  PolicyGuard guard(*engine_, audit_.get());
  RequestContext ctx = missing_child();
  for (Operation op : {Operation::kEnroll, Operation::kDelete, Operation::kExport}) {
    auto r = guard.authorize_deferred(op, ctx, at("2025-06-01T20:00:00+02:00"));
    ASSERT_FALSE(r.ok()) << to_string(op);
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument) << to_string(op);
  }
  EXPECT_TRUE(records().empty()) << "a refused deferral decides nothing";
  ctx.authorisation.reset();
  auto denied = guard.authorize_deferred(Operation::kIdentify, ctx, at("2025-06-01T20:00:00+02:00"));
  ASSERT_FALSE(denied.ok());
  EXPECT_EQ(denied.error().code, ErrorCode::kPolicyDenied);
  const auto recs = records();
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(recs[0].kind, "decision");
  EXPECT_EQ(nlohmann::json::parse(recs[0].body_json)["effect"], "deny");
}

TEST_F(GuardTest, PendingAuthorisationResultsAreRestrictedReviewedAndLogged) {
  PolicyGuard guard(*engine_, audit_.get());
  auto auth = guard.authorize(Operation::kIdentify, missing_child(), at("2025-06-01T20:00:00+02:00"));
  ASSERT_TRUE(auth.ok()) << auth.error().message;
  EXPECT_EQ(auth->decision.effect, Effect::kAllowWithObligations);
  EXPECT_EQ(auth->audit_seq, 1u);

  std::vector<MatchCandidate> found = {{"stranger-1", 0.97f}, {"child-4471", 0.83f}, {"stranger-2", 0.6f}};
  auto shown = guard.apply(*auth, found, "sha256:frame-0017");
  ASSERT_TRUE(shown.ok()) << shown.error().message;
  ASSERT_EQ(shown->matches.size(), 1u);  // only the target list is searched
  EXPECT_EQ(shown->dropped_outside_targets, 2u);
  EXPECT_EQ(shown->matches[0].subject_id, "child-4471");
  EXPECT_EQ(shown->matches[0].review, ReviewState::kPending);
  bool pending_notice = false, sole_basis = false;
  for (const auto& n : shown->notices) {
    pending_notice |= n.find("Authorisation pending") != std::string::npos;
    sole_basis |= n.find("sole basis") != std::string::npos;
  }
  EXPECT_TRUE(pending_notice);
  EXPECT_TRUE(sole_basis);

  const std::string id = shown->matches[0].match_id;
  EXPECT_EQ(guard.review_status(id)->state, ReviewState::kPending);
  // The operator cannot verify their own search; one reviewer is not enough; the same one twice does not count.
  EXPECT_EQ(guard.review(id, "po-311", true).error().code, ErrorCode::kPermissionDenied);
  auto one = guard.review(id, "officer-a", true, "same scar on the left cheek");
  ASSERT_TRUE(one.ok()) << one.error().message;
  EXPECT_EQ(one->state, ReviewState::kPending);
  EXPECT_EQ(guard.review(id, "officer-a", true).error().code, ErrorCode::kConflict);
  auto two = guard.review(id, "officer-b", true);
  ASSERT_TRUE(two.ok());
  EXPECT_EQ(two->state, ReviewState::kConfirmed);
  EXPECT_EQ(two->confirmed_by, (std::vector<std::string>{"officer-a", "officer-b"}));
  EXPECT_EQ(guard.review(id, "officer-c", true).error().code, ErrorCode::kConflict);  // already decided

  const auto recs = records();
  ASSERT_EQ(recs.size(), 4u);
  EXPECT_EQ(recs[1].kind, "result");
  auto result = nlohmann::json::parse(recs[1].body_json);
  EXPECT_EQ(result["gallery"], "missing-persons-2025");
  EXPECT_EQ(result["input"], "sha256:frame-0017");
  EXPECT_EQ(result["review_required"], 2);
  EXPECT_EQ(recs[1].body_json.find("values"), std::string::npos);  // no template in the trail
  EXPECT_TRUE(verify_audit_log(audit_->path())->ok);
}

TEST_F(GuardTest, ThresholdAndTopKAreApplied) {
  Authorization a;
  a.audit_seq = 7;
  a.decision.obligations.min_similarity = 0.7f;
  a.decision.obligations.top_k = 2;
  auto r = apply_obligations(a, {{"a", 0.71f}, {"b", 0.69f}, {"c", 0.95f}, {"d", 0.8f}, {"e", 0.75f}});
  ASSERT_EQ(r.matches.size(), 2u);
  EXPECT_EQ(r.matches[0].subject_id, "c");
  EXPECT_EQ(r.matches[1].subject_id, "d");
  EXPECT_EQ(r.matches[0].match_id, "7-1");
  EXPECT_EQ(r.dropped_below_threshold, 1u);
  EXPECT_EQ(r.dropped_by_top_k, 2u);
  EXPECT_EQ(r.matches[0].review, ReviewState::kNotRequired);
}

TEST_F(GuardTest, LivenessObligationIsEnforced) {
  Obligations o;
  EXPECT_TRUE(enforce_liveness(o, std::nullopt).ok());
  o.require_liveness = true;
  EXPECT_EQ(enforce_liveness(o, std::nullopt).error().code, ErrorCode::kPolicyDenied);
  EXPECT_EQ(enforce_liveness(o, false).error().code, ErrorCode::kPolicyDenied);
  EXPECT_TRUE(enforce_liveness(o, true).ok());
}

TEST_F(GuardTest, TheRegistryNotTheRequestSaysWhatAConsentCovers) {
  auto reg = ConsentRegistry::open(dir_ / "consent.db");
  ASSERT_TRUE(reg.ok());
  ConsentRecord rec;
  rec.id = "c-emp-17";
  rec.subject_id = "emp-17";
  rec.kind = "informed_notice";  // only a notice in the registry...
  rec.purpose = "timekeeping";
  rec.signed_at = *parse_timestamp("2024-01-10T09:00:00-06:00");
  ASSERT_TRUE(reg->add(rec).ok());
  PolicyGuard guard(*engine_, audit_.get(), &*reg);
  auto ctx = parse_context_json(R"({
    "jurisdiction": {"country": "US", "state": "IL", "city": "chicago"},
    "operator": {"org": "Lakeside Logistics", "role": "private_business"}, "location": {"type": "workplace"},
    "purpose": "timekeeping", "subject": {"id": "emp-17"}, "extra": {"retention_schedule": "https://x.example"},
    "consent": {"id": "c-emp-17", "kind": "written_release", "purpose": "timekeeping", "signed_at": "2024-01-10T09:00:00-06:00"},
    "capture_time": "2024-02-01T08:00:00-06:00"})");
  ASSERT_TRUE(ctx.ok());
  // ...so the request's claim of a written release does not count.
  auto r = guard.authorize(Operation::kEnroll, *ctx, at("2024-02-01T15:00:00Z"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("bipa.15b.written-release"), std::string::npos);
  // A consent id the registry does not know leaves no consent at all.
  ctx->consent->id = "c-unknown";
  EXPECT_FALSE(guard.authorize(Operation::kEnroll, *ctx, at("2024-02-01T15:00:00Z")).ok());
  // The registry's written release for this subject does count.
  rec.id = "c-emp-17b";
  rec.kind = "written_release";
  rec.evidence_sha256 = std::string(64, 'c');
  ASSERT_TRUE(reg->add(rec).ok());
  ctx->consent = Consent{"c-emp-17b", "", "", "", std::nullopt, std::nullopt};
  auto ok = guard.authorize(Operation::kEnroll, *ctx, at("2024-02-01T15:00:00Z"));
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_TRUE(ok->obligations().require_consent);
  EXPECT_TRUE(ok->obligations().retention_deadline.has_value());
}

TEST_F(GuardTest, OperationMismatchIsRefused) {
  PolicyGuard guard(*engine_, audit_.get());
  RequestContext ctx = missing_child();
  ctx.operation = Operation::kVerify;
  EXPECT_EQ(guard.authorize(Operation::kIdentify, ctx).error().code, ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace faceguard
