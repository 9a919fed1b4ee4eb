// `faceguard eval verify` end to end on 20 LFW View 1 pairs (10 same, 10 different), through the binary:
// the command runs, reports JSON with the documented fields, finds every face, separates the pairs far above
// chance, and a re-run is served from the cache. The full LFW evaluation is the command, not a test.
#include <gtest/gtest.h>

#include <stdlib.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "test_support.hpp"

namespace {

namespace fs = std::filesystem;

struct Run {
  int rc = -1;
  std::string out;
};

Run run_cli(const std::string& args, const fs::path& dir) {
  const fs::path out = dir / "stdout.txt";
  const std::string cmd = std::string("'") + FACEGUARD_CLI + "' " + args + " >'" + out.string() + "' 2>/dev/null";
  Run r;
  const int status = std::system(cmd.c_str());
  r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream f(out);
  std::ostringstream ss;
  ss << f.rdbuf();
  r.out = ss.str();
  return r;
}

// The first 10 matched and first 10 mismatched lines of pairsDevTest.txt, as a 10-pair LFW list.
std::string small_list(const fs::path& pairs) {
  std::ifstream in(pairs);
  std::string line;
  std::getline(in, line);
  const int n = std::stoi(line);
  std::ostringstream out;
  out << "10\n";
  for (int i = 0; i < 2 * n && std::getline(in, line); ++i) {
    if (i < 10 || (i >= n && i < n + 10)) out << line << "\n";
  }
  return out.str();
}

TEST(EvalLfw, VerifyCommandOnTwentyPairs) {
  FG_MODELS_OR_SKIP(pack);
  FG_SHARED_DATA_OR_SKIP(data);
  const fs::path lfw = data / "lfw-view1";
  if (!fs::exists(lfw / "pairsDevTest.txt")) GTEST_SKIP() << "no LFW View 1 in " << data;
  const fs::path dir = fs::temp_directory_path() / "fg_eval_lfw_test";
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::ofstream(dir / "pairs.txt") << small_list(lfw / "pairsDevTest.txt");
  // `eval verify` passes the policy decision point like every face command: run it under an allowed
  // deployment profile (a household photo library, as the CLI tests do), with the audit trail and consent
  // registry in the test folder rather than the user's state folder.
  std::ofstream(dir / "profile.yaml") << "format: 1\n"
                                         "context:\n"
                                         "  operator: {id: eval-test, org: household, role: individual}\n"
                                         "  jurisdiction: {country: DE, city: berlin}\n"
                                         "  location: {type: private_premises}\n"
                                         "  purpose: photo_organisation\n"
                                         "  timing: retrospective\n"
                                         "  source: still\n"
                                         "  targeting: targeted\n";
  ::setenv("FACEGUARD_PROFILE", (dir / "profile.yaml").c_str(), 1);
  ::setenv("XDG_STATE_HOME", (dir / "state").c_str(), 1);
  for (const char* v : {"FACEGUARD_AUDIT_LOG", "FACEGUARD_AUDIT_KEY", "FACEGUARD_CONSENT_DB"}) ::unsetenv(v);
  const std::string args = "--models '" + pack.root().string() + "' eval verify --pairs '" + (dir / "pairs.txt").string() +
                           "' --images '" + (lfw / "images").string() + "' --cache '" + (dir / "cache").string() +
                           "' --out '" + (dir / "out").string() + "' --folds 2 --json";
  const auto first = run_cli(args, dir);
  ASSERT_EQ(first.rc, 0) << first.out;
  const auto j = nlohmann::json::parse(first.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << first.out;
  EXPECT_EQ(j["images"].get<int>(), 35);  // 20 pairs over 35 distinct images
  EXPECT_EQ(j["face_sources"]["failed"].get<int>(), 0);
  EXPECT_EQ(j["computed"].get<int>(), 35);
  // dlib's descriptor separates these easily; a broken pipeline sits at chance (0.5).
  EXPECT_GE(j["pairs"]["mean_accuracy"].get<double>(), 0.85);
  EXPECT_GE(j["pairs"]["auc"].get<double>(), 0.9);
  EXPECT_TRUE(fs::exists(dir / "out" / "scores.csv"));
  EXPECT_TRUE(fs::exists(dir / "out" / "roc.svg"));

  const auto second = run_cli(args, dir);
  ASSERT_EQ(second.rc, 0);
  const auto k = nlohmann::json::parse(second.out, nullptr, false);
  ASSERT_FALSE(k.is_discarded());
  EXPECT_EQ(k["cache_hits"].get<int>(), 35);
  EXPECT_EQ(k["computed"].get<int>(), 0);
  EXPECT_DOUBLE_EQ(k["pairs"]["mean_accuracy"].get<double>(), j["pairs"]["mean_accuracy"].get<double>());
  fs::remove_all(dir);
}

}  // namespace
