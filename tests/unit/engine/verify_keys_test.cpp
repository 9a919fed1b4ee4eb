// The cache keys of eval verify name the pipeline's jitters, landmark refinement and the centred-subject
// rule (faceguard/eval.hpp), and leave the keys of configurations without them as they were, so that caches
// written before these options existed stay valid.
#include <gtest/gtest.h>

#include <string>

#include "faceguard/eval.hpp"

namespace faceguard {
namespace {

TEST(VerifyKeys, JittersAndRefinementChangeTheEmbeddingKeyButNotTheDetectionKey) {
  eval::VerifyConfig base;
  eval::VerifyConfig jit = base, refine = base;
  jit.pipeline.jitters = 2;
  refine.pipeline.refine_landmarks = true;
  EXPECT_NE(eval::config_key(base), eval::config_key(jit));
  EXPECT_NE(eval::config_key(base), eval::config_key(refine));
  EXPECT_NE(eval::config_key(jit), eval::config_key(refine));
  EXPECT_EQ(eval::detection_key(base), eval::detection_key(jit));
  EXPECT_EQ(eval::detection_key(base), eval::detection_key(refine));
  EXPECT_NE(eval::config_key(jit).find(";jitters=2"), std::string::npos);
}

TEST(VerifyKeys, TheCentredSubjectRuleChangesBothKeysAndItsAbsenceKeepsTheOldOnes) {
  eval::VerifyConfig centred;
  ASSERT_TRUE(centred.centred_subject) << "the rule is the default";
  eval::VerifyConfig any = centred;
  any.centred_subject = false;
  EXPECT_NE(eval::detection_key(centred), eval::detection_key(any));
  EXPECT_NE(eval::config_key(centred), eval::config_key(any));
  // Without the new options the keys are those of the earlier recipe (no suffixes).
  const std::string k = eval::config_key(any);
  EXPECT_EQ(k.find("jitters"), std::string::npos);
  EXPECT_EQ(k.find("refine_lm"), std::string::npos);
  EXPECT_EQ(k.find("centred"), std::string::npos);
  EXPECT_EQ(k.substr(k.size() - 10), "fallback=1");
}

TEST(VerifyKeys, PipelineRefusesJittersOutsideTheStandardSet) {
  // Pipeline::create checks its options before it builds any net, so this costs no model loading.
  auto pack = ModelPack::open(default_model_dir());
  if (!pack) GTEST_SKIP() << "no model pack: " << pack.error().message;
  for (int bad : {-1, 13}) {
    PipelineOptions o;
    o.jitters = bad;
    auto p = Pipeline::create(*pack, o);
    ASSERT_FALSE(p.ok()) << bad;
    EXPECT_EQ(p.error().code, ErrorCode::kInvalidArgument);
  }
}

}  // namespace
}  // namespace faceguard
