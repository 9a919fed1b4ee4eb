// `faceguard gallery` commands that need no models: keygen, init --model-id, list, stats, show, delete, export,
// import, and their exit codes.
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>

#include "gallery_fixture.hpp"

namespace faceguard::test {
namespace {

struct Run {
  int code = -1;
  std::string out;
};

Run run(const std::string& args, const std::string& env = "") {
  const std::string cmd = env + " " + FACEGUARD_CLI + std::string(" ") + args + " 2>&1";
  Run r;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  while (std::size_t n = fread(buf, 1, sizeof buf, p)) r.out.append(buf, n);
  const int st = pclose(p);
  r.code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

TEST(GalleryCli, InitListStatsExportImportDelete) {
  ScratchDir dir;
  // The face commands (import, export, delete...) pass the policy decision point first (apps/cli/policy_gate.cpp):
  // run them under a deployment profile the policy allows, with the audit trail kept in the scratch folder.
  {
    std::ofstream p(dir / "profile.yaml");
    p << "format: 1\n"
         "context:\n"
         "  operator: {id: gallery-test, org: household, role: individual}\n"
         "  jurisdiction: {country: DE, city: berlin}\n"
         "  location: {type: private_premises}\n"
         "  purpose: photo_organisation\n"
         "  timing: retrospective\n"
         "  source: still\n"
         "  targeting: targeted\n"
         "  gallery: {id: gallery-test, provenance: consented}\n";
  }
  ::setenv("FACEGUARD_PROFILE", (dir / "profile.yaml").c_str(), 1);
  ::setenv("XDG_STATE_HOME", (dir / "state").c_str(), 1);
  for (const char* v : {"FACEGUARD_AUDIT_LOG", "FACEGUARD_AUDIT_KEY", "FACEGUARD_CONSENT_DB", "FACEGUARD_MASTER_KEY"})
    ::unsetenv(v);
  const std::string key = (dir / "master.key").string();
  const std::string g = (dir / "g.fgdb").string();
  auto k = run("gallery keygen " + key);
  ASSERT_EQ(k.code, 0) << k.out;
  EXPECT_EQ(run("gallery keygen " + key).code, 8);  // exists: conflict
  EXPECT_EQ(std::filesystem::status(key).permissions() & std::filesystem::perms::group_read, std::filesystem::perms::none);
  auto init = run("gallery init " + g + " --key-file " + key + " --model-id " + kModel + " --dim 128");
  ASSERT_EQ(init.code, 0) << init.out;
  EXPECT_EQ(run("gallery init " + g + " --key-file " + key + " --model-id " + kModel + " --dim 128").code, 8);
  // Enrol through the library (the CLI's enroll needs the models), then read back through the CLI.
  {
    auto mk = load_secret_key(key);
    ASSERT_TRUE(mk);
    auto gal = Gallery::open(g, open_options(*mk));
    ASSERT_TRUE(gal);
    Synth s(1);
    ASSERT_TRUE((*gal)->enroll({"alice", "Alice", R"({"team":"red"})"}, std::vector{tmpl(s.around(s.centre()))}));
  }
  auto list = run("gallery list " + g + " --key-file " + key);
  EXPECT_EQ(list.code, 0) << list.out;
  EXPECT_NE(list.out.find("alice"), std::string::npos);
  auto stats = run("gallery stats " + g + " --json", "FACEGUARD_MASTER_KEY=$(cat " + key + ")");
  EXPECT_EQ(stats.code, 0) << stats.out;
  EXPECT_NE(stats.out.find("\"subjects\": 1"), std::string::npos) << stats.out;
  auto show = run("gallery show " + g + " alice --key-file " + key);
  EXPECT_EQ(show.code, 0);
  EXPECT_NE(show.out.find("\"team\": \"red\""), std::string::npos) << show.out;
  EXPECT_EQ(run("gallery show " + g + " bob --key-file " + key).code, 3);  // not found
  // A wrong key: exit 11.
  auto other = run("gallery keygen " + (dir / "other.key").string());
  ASSERT_EQ(other.code, 0);
  auto wrong = run("gallery list " + g + " --key-file " + (dir / "other.key").string());
  EXPECT_EQ(wrong.code, 11) << wrong.out;
  EXPECT_NE(wrong.out.find("wrong master key"), std::string::npos);
  EXPECT_EQ(run("gallery list " + g).code, 9);  // no key at all (FACEGUARD_MASTER_KEY unset in the test env)

  const std::string x = (dir / "out.fgx").string();
  EXPECT_EQ(run("gallery export " + g + " " + x + " --key-file " + key).code, 0);
  const std::string h = (dir / "h.fgdb").string();
  ASSERT_EQ(run("gallery init " + h + " --key-file " + key + " --model-id " + kModel + " --dim 128").code, 0);
  auto imp = run("gallery import " + h + " " + x + " --key-file " + key);
  EXPECT_EQ(imp.code, 0) << imp.out;
  EXPECT_EQ(run("gallery import " + h + " " + x + " --key-file " + key).code, 8);  // conflict
  auto del = run("gallery delete " + h + " alice --key-file " + key);
  EXPECT_EQ(del.code, 0) << del.out;
  EXPECT_NE(del.out.find("data key destroyed"), std::string::npos);
  EXPECT_EQ(run("gallery delete " + h + " alice --key-file " + key).code, 3);
  EXPECT_EQ(run("gallery list " + (dir / "missing.fgdb").string() + " --key-file " + key).code, 3);
}

}  // namespace
}  // namespace faceguard::test
