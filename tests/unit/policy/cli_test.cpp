// The `faceguard policy|audit|consent` commands end to end: exit codes, messages naming rule and citation.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "faceguard/gallery.hpp"
#include "test_support.hpp"

namespace faceguard {
namespace {

namespace fs = std::filesystem;

struct CliRun {
  int code = -1;
  std::string out, err;
};

class PolicyCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("fg-cli-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  CliRun run(const std::string& args) {
    const std::string out = (dir_ / "out.txt").string(), err = (dir_ / "err.txt").string();
    const std::string cmd = "env -u FACEGUARD_PROFILE -u FACEGUARD_POLICY_DIR XDG_STATE_HOME='" + dir_.string() +
                            "/state' " + FACEGUARD_CLI + " " + args + " >'" + out + "' 2>'" + err + "'";
    const int status = std::system(cmd.c_str());
    CliRun r;
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    auto slurp = [](const std::string& p) {
      std::ifstream in(p);
      std::stringstream ss;
      ss << in.rdbuf();
      return ss.str();
    };
    r.out = slurp(out);
    r.err = slurp(err);
    return r;
  }

  static std::string baltimore_shop(const char* capture, const char* now) {
    return std::string("policy explain identify --set jurisdiction.country=US --set jurisdiction.state=MD "
                       "--set jurisdiction.city=baltimore --set operator.role=private_business "
                       "--set location.type=public_accommodation --set purpose=loss_prevention --set capture_time=") +
           capture + " --now " + now;
  }

  fs::path dir_;
};

TEST_F(PolicyCliTest, ListAndShowThePacks) {
  auto r = run("policy list --json");
  ASSERT_EQ(r.code, 0) << r.err;
  auto doc = nlohmann::json::parse(r.out);
  EXPECT_EQ(doc.size(), 9u);
  r = run("policy show us-md-baltimore");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("sunset"), std::string::npos);
  EXPECT_NE(run("policy show no-such-pack").code, 0);
}

TEST_F(PolicyCliTest, ExplainADenialExitsSevenNamingRuleAndCitation) {
  auto r = run(baltimore_shop("2022-06-01T10:00:00-04:00", "2022-06-01T14:05:00Z"));
  EXPECT_EQ(r.code, 7) << r.out << r.err;
  EXPECT_NE(r.out.find("decision: deny"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("baltimore.face-surveillance.ban"), std::string::npos);
  EXPECT_NE(r.err.find("baltimore.face-surveillance.ban"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("CB 21-0001"), std::string::npos) << r.err;
  r = run(baltimore_shop("2023-03-01T10:00:00-05:00", "2023-03-01T15:05:00Z") + " --json");
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["effect"], "allow");
}

TEST_F(PolicyCliTest, ExplainTakesAContextFileAndAProfile) {
  std::ofstream(dir_ / "profile.yaml") << "format: 1\ncontext:\n  jurisdiction: {country: DE, city: berlin}\n"
                                          "  operator: {org: Polizei Berlin, role: law_enforcement}\n";
  std::ofstream(dir_ / "request.json") << R"({"location":{"type":"public_space"},"timing":"real_time",
    "targeting":"targeted","purpose":"missing_person","legal_basis":"national_law","extra":{"fria":"F-1"},
    "authorisation":{"type":"judicial","id":"AG-1","requested_at":"2025-06-01T10:00:00+02:00"},
    "capture_time":"2025-06-01T20:00:00+02:00"})";
  const std::string base = "policy explain identify --profile " + (dir_ / "profile.yaml").string() + " --context " +
                           (dir_ / "request.json").string() + " --now 2025-06-01T20:00:00+02:00";
  auto r = run(base + " --json");
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  auto d = nlohmann::json::parse(r.out);
  EXPECT_EQ(d["effect"], "allow_with_obligations");
  EXPECT_EQ(d["obligations"]["authorisation_deadline"], "2025-06-02T08:00:00Z");
  // The request may not move the camera out of the profile's jurisdiction.
  r = run(base + " --set jurisdiction.country=FR");
  EXPECT_EQ(r.code, 9) << r.err;
  EXPECT_NE(r.err.find("jurisdiction.country"), std::string::npos);
  // A user pack is added with --policy-dir.
  r = run("policy list --policy-dir " + (test::source_dir() / "tests/data/policy/user-packs").string() + " --json");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out).size(), 10u);
}

TEST_F(PolicyCliTest, ConsentAndAuditRoundTripAndTamperDetection) {
  const std::string key = (dir_ / "audit.key").string();
  ASSERT_EQ(run("audit keygen --key " + key).code, 0);
  std::ofstream(dir_ / "release.pdf") << "signed release";
  const std::string stores = " --audit " + (dir_ / "audit.jsonl").string() + " --audit-key " + key + " --consent-db " +
                             (dir_ / "consent.db").string();
  auto r = run("consent add --subject emp-1 --kind written_release --purpose timekeeping --term P3Y --evidence " +
               (dir_ / "release.pdf").string() + " --id c-1 --signed-at 2024-01-10T09:00:00-06:00" + stores);
  ASSERT_EQ(r.code, 0) << r.err;
  r = run("consent list --json" + stores);
  ASSERT_EQ(r.code, 0) << r.err;
  auto list = nlohmann::json::parse(r.out);
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0]["evidence_sha256"].get<std::string>().size(), 64u);
  r = run("consent revoke c-1 --at 2024-03-01T00:00:00Z" + stores);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(run("consent revoke c-1" + stores).code, 8);  // already revoked: conflict

  r = run("audit verify --pub " + key + ".pub" + stores);
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("OK"), std::string::npos);
  r = run("audit export" + stores);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("\"kind\":\"consent\""), std::string::npos);

  // Edit the first record: verify fails with exit 11 and names line 1.
  std::ifstream in(dir_ / "audit.jsonl");
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  const auto at = text.find("emp-1");
  ASSERT_NE(at, std::string::npos);
  text.replace(at, 5, "emp-2");
  std::ofstream(dir_ / "audit.jsonl", std::ios::trunc) << text;
  r = run("audit verify --pub " + key + ".pub" + stores);
  EXPECT_EQ(r.code, 11) << r.out;
  EXPECT_NE(r.out.find("line 1:"), std::string::npos) << r.out;
}

TEST_F(PolicyCliTest, RetentionRunErasesFromTheGalleryAndDryRunChangesNothing) {
  const SecretKey key = generate_secret_key();
  std::ofstream(dir_ / "master.key") << secret_key_to_hex(key) << "\n";
  {
    GalleryOptions o;
    o.master_key = key;
    o.create = true;
    o.model_id = "test-model@1";
    o.dim = 3;
    auto g = Gallery::open(dir_ / "g.fgdb", o);
    ASSERT_TRUE(g.ok()) << g.error().message;
    TemplateInput t;
    t.embedding = {"test-model@1", {0.6f, 0.8f, 0.f}};
    t.source_sha256 = std::string(64, 'e');
    t.retain_until = 1700000000;  // 2023-11-14: long past
    ASSERT_TRUE((*g)->enroll({"old-1", "Old", "{}"}, std::span<const TemplateInput>(&t, 1)).ok());
    t.retain_until = 4102444800;  // 2100-01-01
    ASSERT_TRUE((*g)->enroll({"new-1", "New", "{}"}, std::span<const TemplateInput>(&t, 1)).ok());
  }
  const std::string args = "retention run --gallery " + (dir_ / "g.fgdb").string() + " --master-key-file " +
                           (dir_ / "master.key").string() + " --audit " + (dir_ / "audit.jsonl").string() +
                           " --consent-db " + (dir_ / "consent.db").string();
  auto r = run(args + " --dry-run");
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("would erase template"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("old-1"), std::string::npos);
  EXPECT_EQ(r.out.find("new-1"), std::string::npos);
  r = run(args + " --json");
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  auto doc = nlohmann::json::parse(r.out);
  ASSERT_EQ(doc["erasures"].size(), 1u);
  EXPECT_TRUE(doc["erasures"][0]["done"].get<bool>());
  GalleryOptions o;
  o.master_key = key;
  auto g = Gallery::open(dir_ / "g.fgdb", o);
  ASSERT_TRUE(g.ok());
  EXPECT_EQ((*g)->show("old-1").error().code, ErrorCode::kNotFound);
  EXPECT_TRUE((*g)->show("new-1").ok());
  std::ifstream in(dir_ / "audit.jsonl");
  std::stringstream ss;
  ss << in.rdbuf();
  EXPECT_NE(ss.str().find("\"kind\":\"erasure\""), std::string::npos);
}

}  // namespace
}  // namespace faceguard
