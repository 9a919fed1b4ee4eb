// `faceguard gallery enroll|identify` under the policy layer, end to end through the binary: an Illinois
// private business (BIPA) must hold a written release before it enrols anyone; the stored templates carry the
// consent id and the shortest retention deadline (the consent's term here); revoking the consent erases them;
// identify shows only what the obligations let through and logs it; `retention run` erases what is due.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include <nlohmann/json.hpp>

#include "faceguard/models.hpp"
#include "test_support.hpp"

namespace faceguard {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct CliResult {
  int rc = -1;
  std::string out, err;
};

class EnrolPolicyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("fg-enrol-policy-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // A door-access deployment in Chicago run by a private business, with a published retention schedule.
  fs::path profile(const std::string& extra_context = "") const {
    const fs::path p = dir_ / "il.yaml";
    std::ofstream(p) << "format: 1\n"
                        "context:\n"
                        "  operator: {id: door-1, org: Lakeside Gym LLC, role: private_business}\n"
                        "  jurisdiction: {country: US, state: IL, city: chicago}\n"
                        "  location: {type: access_control}\n"
                        "  purpose: access_control\n"
                        "  timing: real_time\n"
                        "  source: still\n"
                        "  targeting: targeted\n"
                        "  gallery: {id: members, provenance: consented}\n"
                        "  extra: {retention_schedule: published}\n"
                     << extra_context;
    return p;
  }

  CliResult run(const std::string& args) const {
    const fs::path out = dir_ / "out.txt", err = dir_ / "err.txt";
    const std::string cmd = "env -u FACEGUARD_POLICY_DIR -u FACEGUARD_AUDIT_LOG -u FACEGUARD_AUDIT_KEY "
                            "-u FACEGUARD_CONSENT_DB FACEGUARD_PROFILE='" + profile().string() +
                            "' XDG_STATE_HOME='" + (dir_ / "state").string() + "' " +
                            FACEGUARD_CLI + " " + args + " >'" + out.string() + "' 2>'" + err.string() + "'";
    const int status = std::system(cmd.c_str());
    CliResult r;
    r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    auto slurp = [](const fs::path& p) {
      std::ifstream f(p, std::ios::binary);
      return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
    };
    r.out = slurp(out);
    r.err = slurp(err);
    return r;
  }

  fs::path dir_;
};

fs::path sample_photo(const ModelPack& pack, const std::string& name) {
  for (const auto& p : pack.sample_images())
    if (p.filename() == name) return p;
  return {};
}

TEST_F(EnrolPolicyTest, BipaEnrolmentIsBoundToItsConsentAndErasedWithIt) {
  FG_MODELS_OR_SKIP(pack);
  const fs::path photo = sample_photo(pack, "sample1.jpg");
  if (photo.empty()) GTEST_SKIP() << "no sample photos in the model pack";
  const std::string key = (dir_ / "master.key").string(), g = (dir_ / "members.fgdb").string();
  const std::string k = " --key-file " + key;
  ASSERT_EQ(run("gallery keygen " + key).rc, 0);
  ASSERT_EQ(run("gallery init " + g + k).rc, 0);

  // No written release: BIPA 15(b) denies the enrolment (exit 7), naming the rule; nothing is stored.
  auto denied = run("gallery enroll " + g + k + " --subject m-001 --largest " + photo.string());
  EXPECT_EQ(denied.rc, 7) << denied.out << denied.err;
  EXPECT_NE((denied.out + denied.err).find("bipa.15b.written-release"), std::string::npos) << denied.err;
  EXPECT_EQ(run("gallery show " + g + k + " m-001").rc, 3);

  // With a one-year written release: allowed, and each template carries the consent and a deadline no later
  // than the consent's end (shorter than BIPA's 3 years).
  auto c = run("consent add --subject m-001 --kind written_release --purpose access_control --term P1Y --id rel-1 "
               "--evidence-sha256 " + std::string(64, 'a'));
  ASSERT_EQ(c.rc, 0) << c.out << c.err;
  auto ok = run("gallery enroll " + g + k + " --subject m-001 --consent rel-1 --largest " + photo.string());
  ASSERT_EQ(ok.rc, 0) << ok.out << ok.err;
  auto show = run("gallery show " + g + k + " m-001");
  ASSERT_EQ(show.rc, 0) << show.err;
  const json s = json::parse(show.out);
  ASSERT_EQ(s["templates"].size(), 1u) << show.out;
  EXPECT_EQ(s["templates"][0]["consent_id"], "rel-1");
  ASSERT_TRUE(s["templates"][0]["retain_until"].is_string()) << show.out;
  const std::string until = s["templates"][0]["retain_until"];
  const auto year = std::chrono::year_month_day(std::chrono::floor<std::chrono::days>(std::chrono::system_clock::now())).year();
  EXPECT_EQ(until.substr(0, 4), std::to_string(static_cast<int>(year) + 1)) << until;  // one year, not three

  // The consent of someone else cannot stand in: the registry's record names m-002's purpose and kind, but
  // an unknown consent id is refused before anything is stored.
  auto unknown = run("gallery enroll " + g + k + " --subject m-002 --consent no-such --largest " + photo.string());
  EXPECT_NE(unknown.rc, 0) << unknown.out;
  EXPECT_EQ(run("gallery show " + g + k + " m-002").rc, 3);

  // Identify applies the obligations and logs the result; the enrolled face is found in its own photo.
  auto id = run("gallery identify " + g + k + " " + photo.string() + " --json --set consent.id=rel-1");
  ASSERT_EQ(id.rc, 0) << id.out << id.err;
  {
    const json r = json::parse(id.out);
    EXPECT_EQ(r["decision"]["effect"], "allow_with_obligations") << id.out;
    int found = 0;
    for (const auto& f : r["faces"]) {
      for (const auto& m : f["matches"]) found += m["subject_id"] == "m-001";
      // Only matches are shown: no runner-up below the threshold leaks who a stranger resembles.
      EXPECT_EQ(f["candidates"].size(), f["matches"].size()) << f.dump();
    }
    EXPECT_EQ(found, 1) << id.out;
  }

  // Revoking the consent erases the templates it covered (crypto-shredding the subject).
  auto rev = run("consent revoke rel-1 --gallery " + g + " --master-key-file " + key);
  EXPECT_EQ(rev.rc, 0) << rev.out << rev.err;
  EXPECT_EQ(run("gallery show " + g + k + " m-001").rc, 3);

  // The trail verifies and records the enrolment outcome with the consent and the deadline.
  auto verify = run("audit verify");
  EXPECT_EQ(verify.rc, 0) << verify.out << verify.err;
  auto exported = run("audit export");
  EXPECT_NE(exported.out.find("rel-1"), std::string::npos);
}

}  // namespace
}  // namespace faceguard
