// `faceguard serve` as a child process: killed with SIGKILL in the middle of enrolments it restarts on the
// same data directory with every acknowledged enrolment present, and SIGTERM finishes the request in flight.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <mutex>
#include <regex>
#include <set>
#include <thread>

#include "faceguard/apikeys.hpp"
#include "faceguard/gallery.hpp"
#include "server_support.hpp"
#include "test_support.hpp"

namespace faceguard::test::server {
namespace {

using Clock = std::chrono::steady_clock;

struct Child {
  pid_t pid = -1;
  int port = 0;
  std::string error;
};

// Starts `faceguard serve` on any free port and waits until /health says ok.
Child spawn_serve(const fs::path& dir, const std::string& master_hex) {
  Child c;
  int out[2];
  if (pipe(out) != 0) return c.error = "pipe failed", c;
  const std::string cli = FACEGUARD_CLI, data = (dir / "data").string(), profile = (dir / "profile.yaml").string();
  const std::string log = (dir / "serve.log").string();
  c.pid = fork();
  if (c.pid == 0) {
    dup2(out[1], 1);
    close(out[0]);
    close(out[1]);
    FILE* err = fopen(log.c_str(), "a");
    if (err) dup2(fileno(err), 2);
    setenv("FACEGUARD_MASTER_KEY", master_hex.c_str(), 1);
    execl(cli.c_str(), cli.c_str(), "serve", "--port", "0", "--data-dir", data.c_str(), "--profile", profile.c_str(),
          "--workers", "1", static_cast<char*>(nullptr));
    _exit(127);
  }
  close(out[1]);
  std::string text;
  const auto deadline = Clock::now() + std::chrono::seconds(60);
  std::smatch m;
  static const std::regex kListening(R"(listening on http://[0-9.]+:([0-9]+))");
  while (!std::regex_search(text, m, kListening) && Clock::now() < deadline) {
    pollfd p{out[0], POLLIN, 0};
    if (poll(&p, 1, 200) <= 0) continue;
    char buf[256];
    const ssize_t n = read(out[0], buf, sizeof buf);
    if (n <= 0) break;
    text.append(buf, static_cast<std::size_t>(n));
  }
  close(out[0]);
  if (!std::regex_search(text, m, kListening)) return c.error = "no 'listening on' line; log: " + read_bytes(log), c;
  c.port = std::stoi(m[1].str());
  Api api(c.port);
  while (api.get("/health").status != 200 && Clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  if (api.get("/health").status != 200) c.error = "never ready; log: " + read_bytes(log);
  return c;
}

int wait_exit(pid_t pid, int seconds) {
  const auto deadline = Clock::now() + std::chrono::seconds(seconds);
  int status = 0;
  while (Clock::now() < deadline) {
    if (waitpid(pid, &status, WNOHANG) == pid) return status;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
  return -1;
}

struct Deployment {
  fs::path dir;
  std::string master_hex = secret_key_to_hex(generate_secret_key());
  std::string admin, op;
};

Deployment make_deployment(const std::string& name) {
  Deployment d;
  d.dir = fresh_dir(name);
  write_deployment(d.dir);
  fs::create_directories(d.dir / "data");
  auto store = ApiKeyStore::open(d.dir / "data" / "keys.db");
  if (!store) return d;
  ApiKeyRequest r;
  r.organisation = kTestOrg;
  r.requests_per_second = 0;
  r.operator_id = "admin-1";
  r.role = ApiRole::kAdmin;
  if (auto k = (*store)->create(r)) d.admin = k->secret;
  r.operator_id = "op-1";
  r.role = ApiRole::kOperator;
  if (auto k = (*store)->create(r)) d.op = k->secret;
  return d;
}

std::string run_cli(const std::string& args, int* rc) {
  std::string out;
  FILE* p = popen((std::string(FACEGUARD_CLI) + " " + args + " 2>/dev/null").c_str(), "r");
  if (!p) return out;
  char buf[512];
  while (std::size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  *rc = WEXITSTATUS(pclose(p));
  return out;
}

// `faceguard keys create|list|revoke` on the store the service reads; --db / --data-dir before or after the verb.
TEST(ServerProcess, KeysCommand) {
  const fs::path dir = fresh_dir("keys");
  int rc = -1;
  const json made = json::parse(run_cli("keys create --data-dir " + dir.string() +
                                            " --operator alice --org Acme --role auditor --rps 5 --json", &rc),
                                nullptr, false);
  ASSERT_EQ(rc, 0);
  ASSERT_TRUE(made.is_object());
  EXPECT_EQ(made["role"], "auditor");
  const std::string secret = made["key"], id = made["id"];
  auto store = ApiKeyStore::open(dir / "keys.db");
  ASSERT_TRUE(store);
  auto who = (*store)->authenticate(secret);
  ASSERT_TRUE(who) << who.error().message;
  EXPECT_EQ(who->operator_id, "alice");
  EXPECT_EQ(who->requests_per_second, 5);
  const std::string listed = run_cli("keys --db " + (dir / "keys.db").string() + " list --json", &rc);
  EXPECT_EQ(rc, 0);
  EXPECT_NE(listed.find(id), std::string::npos);
  EXPECT_EQ(listed.find(secret.substr(secret.rfind('_') + 1)), std::string::npos) << "a secret was listed";
  run_cli("keys revoke --data-dir " + dir.string() + " " + id, &rc);
  EXPECT_EQ(rc, 0);
  EXPECT_FALSE((*store)->authenticate(secret));
  run_cli("keys create --data-dir " + dir.string() + " --operator x --org y --role wizard", &rc);
  EXPECT_NE(rc, 0);
  fs::remove_all(dir);
}

TEST(ServerProcess, KilledMidEnrolmentRestartsWithEveryAcknowledgedEnrolment) {
  FG_MODELS_OR_SKIP(pack);
  FG_SHARED_DATA_OR_SKIP(shared);
  const std::string face = jpeg_fit(deepface_dir(shared) / "img1.jpg");
  ASSERT_FALSE(face.empty());
  auto d = make_deployment("kill");
  ASSERT_FALSE(d.op.empty());
  auto c = spawn_serve(d.dir, d.master_hex);
  ASSERT_TRUE(c.error.empty()) << c.error;
  ASSERT_EQ(Api(c.port).post("/v1/galleries", d.admin, {{"name", "door"}}).status, 201);

  std::mutex mu;
  std::vector<std::string> acked;
  int failed = 0;
  std::thread enrol([&] {
    Api api(c.port);
    const std::string body_image = base64(face);
    for (int i = 0; i < 200; ++i) {
      const std::string sid = "s" + std::to_string(i);
      auto r = api.post("/v1/galleries/door/subjects", d.op,
                        {{"subject_id", sid}, {"image", body_image}, {"context", door_context()}});
      std::lock_guard lock(mu);
      if (r.status == 201) {
        acked.push_back(sid);
      } else {
        ++failed;
        return;  // the server is gone
      }
    }
  });
  const auto deadline = Clock::now() + std::chrono::seconds(60);
  for (;;) {
    {
      std::lock_guard lock(mu);
      if (acked.size() >= 4 || failed || Clock::now() > deadline) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_EQ(kill(c.pid, SIGKILL), 0);
  enrol.join();
  wait_exit(c.pid, 10);
  ASSERT_GE(acked.size(), 4u) << "enrolment failed before the kill; log: " << read_bytes(d.dir / "serve.log");
  ASSERT_EQ(failed, 1);  // the request in flight when the server died

  auto again = spawn_serve(d.dir, d.master_hex);
  ASSERT_TRUE(again.error.empty()) << again.error;
  Api api(again.port);
  auto list = api.get("/v1/galleries/door/subjects", d.op);
  ASSERT_EQ(list.status, 200) << list;
  std::set<std::string> present;
  const json subjects = list.j()["subjects"];
  for (const auto& s : subjects) present.insert(s["subject_id"].get<std::string>());
  for (const auto& sid : acked) EXPECT_TRUE(present.count(sid)) << sid << " was acknowledged but is gone";
  EXPECT_LE(present.size(), acked.size() + 1);  // at most the one in flight, if it committed
  auto stats = api.get("/v1/galleries/door", d.op);
  ASSERT_EQ(stats.status, 200) << stats;
  EXPECT_EQ(stats.j()["subjects"].get<std::size_t>(), present.size());
  // Still writable, and the audit trail is intact.
  EXPECT_EQ(api.post("/v1/galleries/door/subjects", d.op, {{"subject_id", "after"}, {"image", base64(face)}}).status, 201);
  auto v = api.get("/v1/audit/verify", d.admin);
  ASSERT_EQ(v.status, 200) << v;
  EXPECT_TRUE(v.j()["ok"].get<bool>()) << v;
  kill(again.pid, SIGTERM);
  EXPECT_EQ(wait_exit(again.pid, 30), 0);
  fs::remove_all(d.dir);
}

TEST(ServerProcess, SigtermFinishesTheRequestInFlight) {
  FG_MODELS_OR_SKIP(pack);
  FG_SHARED_DATA_OR_SKIP(shared);
  auto d = make_deployment("term");
  auto c = spawn_serve(d.dir, d.master_hex);
  ASSERT_TRUE(c.error.empty()) << c.error;
  ASSERT_EQ(Api(c.port).post("/v1/galleries", d.admin, {{"name", "door"}}).status, 201);
  // Three photos in one enrolment: long enough to be caught in flight.
  json images = json::array();
  for (const char* f : {"img1.jpg", "img2.jpg", "img4.jpg"}) images.push_back(base64(jpeg_fit(deepface_dir(shared) / f)));
  Reply reply;
  std::thread client([&] {
    reply = Api(c.port).post("/v1/galleries/door/subjects", d.op,
                             {{"subject_id", "late"}, {"images", images}, {"context", door_context()}});
  });
  // Wait until the worker is busy with it, then ask the server to stop.
  Api probe(c.port);
  const auto deadline = Clock::now() + std::chrono::seconds(30);
  bool busy = false;
  while (!(busy = probe.get("/metrics").body.find("faceguard_workers_busy 1") != std::string::npos) &&
         Clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_EQ(kill(c.pid, SIGTERM), 0);
  EXPECT_TRUE(busy) << "the enrolment was never seen in flight";
  client.join();
  EXPECT_EQ(reply.status, 201) << reply;
  const int status = wait_exit(c.pid, 30);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status << "; log: " << read_bytes(d.dir / "serve.log");
  EXPECT_NE(read_bytes(d.dir / "serve.log").find("graceful shutdown"), std::string::npos);

  // The enrolment is committed: open the gallery file directly.
  GalleryOptions opt;
  opt.master_key = *parse_secret_key(d.master_hex);
  opt.read_only = true;
  auto g = Gallery::open(d.dir / "data" / "galleries" / "door.fgdb", opt);
  ASSERT_TRUE(g) << g.error().message;
  auto s = (*g)->show("late");
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(s->templates.size(), 3u);
  fs::remove_all(d.dir);
}

}  // namespace
}  // namespace faceguard::test::server
