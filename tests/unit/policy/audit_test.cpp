// The audit trail: chain, checkpoints, head, concurrency, and tamper detection that names the line.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>
#include <sodium.h>

#include "faceguard/audit.hpp"

namespace faceguard {
namespace {

namespace fs = std::filesystem;

// What a forger without the key can do: recompute a record's own hash after editing it.
std::string rehashed(nlohmann::json j) {
  j.erase("hash");
  const std::string canon = j.dump();
  unsigned char h[32];
  crypto_generichash(h, sizeof h, reinterpret_cast<const unsigned char*>(canon.data()), canon.size(), nullptr, 0);
  char hex[65];
  sodium_bin2hex(hex, sizeof hex, h, sizeof h);
  j["hash"] = std::string(hex);
  return j.dump();
}

class AuditTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("fg-audit-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    key_ = dir_ / "audit.key";
    ASSERT_TRUE(generate_audit_key(key_).ok());
    log_ = dir_ / "audit.jsonl";
  }
  void TearDown() override { fs::remove_all(dir_); }

  // n records, checkpoint every 4.
  void write(int n) {
    auto log = AuditLog::open(log_, {.signing_key = key_, .checkpoint_every = 4});
    ASSERT_TRUE(log.ok()) << log.error().message;
    for (int i = 0; i < n; ++i) {
      nlohmann::json b{{"operation", "identify"}, {"i", i}, {"who", "op-" + std::to_string(i % 3)}};
      ASSERT_TRUE(log->append("decision", b.dump()).ok());
    }
  }
  std::vector<std::string> lines() {
    std::ifstream in(log_);
    std::vector<std::string> out;
    std::string l;
    while (std::getline(in, l)) out.push_back(l);
    return out;
  }
  void put(const std::vector<std::string>& ls, bool final_newline = true) {
    std::ofstream out(log_, std::ios::trunc | std::ios::binary);
    for (std::size_t i = 0; i < ls.size(); ++i) out << ls[i] << (i + 1 < ls.size() || final_newline ? "\n" : "");
  }
  AuditVerifyReport verify() {
    auto r = verify_audit_log(log_, fs::path(key_.string() + ".pub"), true);
    EXPECT_TRUE(r.ok()) << (r ? "" : r.error().message);
    return r ? *r : AuditVerifyReport{};
  }
  static bool names_line(const AuditVerifyReport& r, std::size_t line) {
    for (const auto& i : r.issues)
      if (i.line == line) return true;
    return false;
  }
  static std::string dump(const AuditVerifyReport& r) {
    std::string s;
    for (const auto& i : r.issues) s += "line " + std::to_string(i.line) + ": " + i.what + "\n";
    return s;
  }

  fs::path dir_, key_, log_;
};

TEST_F(AuditTest, IntactLogVerifiesWithSignedCheckpoints) {
  write(10);
  const auto r = verify();
  EXPECT_TRUE(r.ok) << dump(r);
  EXPECT_EQ(r.records, 12u);  // 10 records + checkpoints after seq 4 and 9 (seq 5 and 10 are checkpoints)
  EXPECT_EQ(r.checkpoints, 2u);
  EXPECT_EQ(r.checkpoints_verified, 2u);
  EXPECT_TRUE(r.head_checked);
  // Reopening continues the chain.
  write(3);
  EXPECT_TRUE(verify().ok);
}

TEST_F(AuditTest, RecordsHoldNoTemplateAndAreCanonical) {
  write(2);
  for (const auto& l : lines()) {
    auto j = nlohmann::json::parse(l);
    EXPECT_EQ(j.dump(), l);
    EXPECT_EQ(j["hash"].get<std::string>().size(), 64u);
  }
}

TEST_F(AuditTest, EditedRecordIsFoundAtItsLine) {
  write(8);
  auto ls = lines();
  const auto at = ls[2].find("op-2");
  ASSERT_NE(at, std::string::npos);
  ls[2].replace(at, 4, "op-9");
  put(ls);
  const auto r = verify();
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(names_line(r, 3)) << dump(r);
}

TEST_F(AuditTest, EditedRecordWithRecomputedHashBreaksTheNextLink) {
  write(8);
  auto ls = lines();
  auto j = nlohmann::json::parse(ls[1]);
  j["body"]["who"] = "someone-else";
  // The forger recomputes this record's hash, but the next record's prev still names the old one.
  ls[1] = rehashed(j);
  put(ls);
  const auto r = verify();
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(names_line(r, 3)) << dump(r);
}

TEST_F(AuditTest, RemovedRecordIsFound) {
  write(8);
  auto ls = lines();
  ls.erase(ls.begin() + 3);
  put(ls);
  const auto r = verify();
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(names_line(r, 4)) << dump(r);
}

TEST_F(AuditTest, InsertedRecordIsFound) {
  write(8);
  auto ls = lines();
  auto fake = nlohmann::json::parse(ls[2]);
  fake["body"]["i"] = 99;
  ls.insert(ls.begin() + 3, rehashed(fake));
  put(ls);
  const auto r = verify();
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(names_line(r, 4)) << dump(r);
}

TEST_F(AuditTest, ReorderedRecordsAreFound) {
  write(8);
  auto ls = lines();
  std::swap(ls[1], ls[2]);
  put(ls);
  const auto r = verify();
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(names_line(r, 2)) << dump(r);
}

TEST_F(AuditTest, CutOffTailIsFoundThroughTheHead) {
  write(8);
  auto ls = lines();
  ls.resize(ls.size() - 2);
  put(ls);
  const auto r = verify();
  EXPECT_FALSE(r.ok);
  EXPECT_NE(dump(r).find("truncated"), std::string::npos) << dump(r);
}

TEST_F(AuditTest, TornLastLineIsFoundAndBlocksAppends) {
  write(5);
  auto ls = lines();
  ls.back().resize(ls.back().size() / 2);
  put(ls, /*final_newline=*/false);
  const auto r = verify();
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(names_line(r, ls.size())) << dump(r);
  auto log = AuditLog::open(log_, {.signing_key = key_});
  ASSERT_FALSE(log.ok());
  EXPECT_EQ(log.error().code, ErrorCode::kCorruptData);
}

TEST_F(AuditTest, ForgedCheckpointSignatureIsFound) {
  write(6);
  auto ls = lines();
  std::size_t cp_line = 0;
  for (std::size_t i = 0; i < ls.size(); ++i)
    if (ls[i].find("\"kind\":\"checkpoint\"") != std::string::npos) cp_line = i;
  ASSERT_GT(cp_line, 0u);
  auto j = nlohmann::json::parse(ls[cp_line]);
  std::string sig = j["body"]["sig"];
  sig[0] = sig[0] == 'a' ? 'b' : 'a';
  j["body"]["sig"] = sig;
  // The checkpoint's own hash is made consistent again: only the signature betrays it.
  ls[cp_line] = rehashed(j);
  put(ls);
  const auto r = verify();
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(names_line(r, cp_line + 1)) << dump(r);
  EXPECT_LT(r.checkpoints_verified, r.checkpoints);
}

TEST_F(AuditTest, ARebuiltChainWithoutTheKeyFailsOnSignatures) {
  write(6);
  // Rewrite every record with a fresh chain (hashes all consistent) and another key's signatures.
  const fs::path other = dir_ / "other.key";
  ASSERT_TRUE(generate_audit_key(other).ok());
  auto ls = lines();
  fs::remove(log_);
  fs::remove(log_.string() + ".head");
  {
    auto forged = AuditLog::open(log_, {.signing_key = other, .checkpoint_every = 4});
    ASSERT_TRUE(forged.ok());
    for (const auto& l : ls) {
      auto j = nlohmann::json::parse(l);
      if (j["kind"] == "checkpoint") continue;
      j["body"]["who"] = "rewritten";
      ASSERT_TRUE(forged->append(j["kind"], j["body"].dump()).ok());
    }
  }
  const auto r = verify();
  EXPECT_FALSE(r.ok) << "a chain signed by another key must not verify";
  EXPECT_EQ(r.checkpoints_verified, 0u);
}

TEST_F(AuditTest, ConcurrentAppendersFromThreadsAndProcessesKeepOneChain) {
  write(1);
  const pid_t child = ::fork();
  if (child == 0) {
    auto log = AuditLog::open(log_, {.signing_key = key_, .checkpoint_every = 4});
    int bad = log.ok() ? 0 : 1;
    for (int i = 0; i < 40 && !bad; ++i) bad = log->append("decision", R"({"from":"child"})").ok() ? 0 : 1;
    ::_exit(bad);
  }
  std::vector<std::thread> threads;
  auto log = AuditLog::open(log_, {.signing_key = key_, .checkpoint_every = 4});
  ASSERT_TRUE(log.ok());
  for (int t = 0; t < 3; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 20; ++i) EXPECT_TRUE(log->append("decision", R"({"from":"thread"})").ok());
    });
  for (auto& th : threads) th.join();
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  const auto r = verify();
  EXPECT_TRUE(r.ok) << dump(r);
  std::size_t decisions = 0;
  for (const auto& l : lines()) decisions += l.find("\"kind\":\"decision\"") != std::string::npos;
  EXPECT_EQ(decisions, 1u + 40u + 60u);
}

// Group commit (the service's detect/verify/identify): a deferred record is in the chain and covered by the
// head at once, survives its process being killed before any fdatasync, and a synced record or
// sync_through() after it makes it durable; checkpoints fall where they would without deferral.
TEST_F(AuditTest, DeferredRecordsJoinTheChainAndSurviveAKilledProcess) {
  write(1);
  const pid_t child = ::fork();
  if (child == 0) {
    auto log = AuditLog::open(log_, {.signing_key = key_, .checkpoint_every = 4});
    const bool ok = log.ok() && log->append("decision", R"({"from":"killed"})", AuditLog::Sync::kDeferred).ok();
    ::_exit(ok ? 0 : 1);  // no destructor, no fdatasync: what a kill leaves behind
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  auto r = verify();
  EXPECT_TRUE(r.ok) << dump(r);
  EXPECT_EQ(r.last_seq, 2u);
  EXPECT_TRUE(r.head_checked);

  auto log = AuditLog::open(log_, {.signing_key = key_, .checkpoint_every = 4});
  ASSERT_TRUE(log.ok());
  std::uint64_t last = 0;
  for (int i = 0; i < 6; ++i) {
    auto seq = log->append(i % 2 ? "outcome" : "decision", R"({"i":1})",
                           i % 3 ? AuditLog::Sync::kDeferred : AuditLog::Sync::kNow);
    ASSERT_TRUE(seq.ok()) << seq.error().message;
    EXPECT_GT(*seq, last);
    last = *seq;
    EXPECT_TRUE(log->sync_through(*seq).ok());
  }
  EXPECT_TRUE(log->sync_through(last).ok());  // already durable: a no-op
  r = verify();
  EXPECT_TRUE(r.ok) << dump(r);
  EXPECT_EQ(r.checkpoints, 2u);  // seq 5 and 10, as write(9) would place them
  EXPECT_EQ(r.last_seq, 10u);
  EXPECT_EQ(lines().size(), 10u);
}

// Group commit (the service): a background thread does the fdatasyncs. Threads appending synced and deferred
// records and waiting in sync_through() at once get one unbroken chain with every record and the checkpoints
// where they belong; a wait for a seq never written returns instead of hanging; closing the log with
// deferred records pending returns (the thread syncs them first); a process killed with deferred records
// leaves them in the chain.
TEST_F(AuditTest, GroupCommitKeepsTheChainUnderConcurrentWritersAndWaiters) {
  constexpr int kThreads = 4, kEach = 50;
  {
    auto log = AuditLog::open(log_, {.signing_key = key_, .checkpoint_every = 8, .group_commit = true});
    ASSERT_TRUE(log.ok()) << log.error().message;
    std::vector<std::thread> threads;
    std::atomic<int> failures{0};
    for (int t = 0; t < kThreads; ++t)
      threads.emplace_back([&, t] {
        for (int i = 0; i < kEach; ++i) {
          const auto when = (i + t) % 3 == 0 ? AuditLog::Sync::kNow : AuditLog::Sync::kDeferred;
          auto seq = log->append("decision", nlohmann::json{{"t", t}, {"i", i}}.dump(), when);
          if (!seq || (i % 5 == 0 && !log->sync_through(*seq))) ++failures;
        }
      });
    for (auto& th : threads) th.join();
    EXPECT_EQ(failures.load(), 0);
    EXPECT_TRUE(log->sync_through(1'000'000).ok());  // above the last record: returns
    ASSERT_TRUE(log->append("outcome", R"({"pending":true})", AuditLog::Sync::kDeferred).ok());
  }  // closed with a deferred record pending
  auto r = verify();
  EXPECT_TRUE(r.ok) << dump(r);
  const std::uint64_t records = kThreads * kEach + 1;
  EXPECT_EQ(r.records - r.checkpoints, records);
  EXPECT_EQ(r.checkpoints, records / 8);  // every 9th seq
  EXPECT_TRUE(r.head_checked);
  // The head is one fixed-size record rewritten in place (the first 512-byte sector of its file).
  EXPECT_EQ(fs::file_size(log_.string() + ".head"), 512u);

  const pid_t child = ::fork();
  if (child == 0) {
    auto log = AuditLog::open(log_, {.signing_key = key_, .checkpoint_every = 8, .group_commit = true});
    bool ok = log.ok();
    for (int i = 0; ok && i < 3; ++i) ok = log->append("decision", R"({"from":"killed"})", AuditLog::Sync::kDeferred).ok();
    ::_exit(ok ? 0 : 1);  // no destructor: the flusher may not have run
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  r = verify();
  EXPECT_TRUE(r.ok) << dump(r);
  EXPECT_EQ(r.records - r.checkpoints, records + 3);
}

TEST_F(AuditTest, ExportCarriesTheArt12Fields) {
  {
    auto log = AuditLog::open(log_, {.signing_key = key_});
    ASSERT_TRUE(log.ok());
    ASSERT_TRUE(log->append("decision", R"({"operation":"identify"})").ok());
    ASSERT_TRUE(log->append("result", R"({"decision_seq":1,"gallery":"watchlist-7","input":"sha256:ab12",
      "matches":[{"match_id":"1-1","subject_id":"s9","similarity":0.91}]})").ok());
    ASSERT_TRUE(log->append("review", R"({"match_id":"1-1","reviewer":"officer-a","verdict":"confirm"})").ok());
    ASSERT_TRUE(log->append("review", R"({"match_id":"1-1","reviewer":"officer-b","verdict":"confirm"})").ok());
  }
  std::stringstream out;
  auto n = export_audit_log(log_, out);
  ASSERT_TRUE(n.ok()) << n.error().message;
  EXPECT_EQ(*n, 4u);
  std::string line;
  bool seen = false;
  while (std::getline(out, line)) {
    auto j = nlohmann::json::parse(line);
    if (j["kind"] != "result") continue;
    seen = true;
    const auto& a = j["eu_ai_act_art12_3"];
    EXPECT_EQ(a["reference_database"], "watchlist-7");
    EXPECT_EQ(a["input_data"], "sha256:ab12");
    EXPECT_TRUE(a["period_of_use"].contains("start"));
    EXPECT_TRUE(a["period_of_use"].contains("end"));
    ASSERT_EQ(a["verified_by"]["1-1"].size(), 2u);
    EXPECT_EQ(a["verified_by"]["1-1"][1]["reviewer"], "officer-b");
  }
  EXPECT_TRUE(seen);
}

TEST_F(AuditTest, KeysAreNotOverwrittenAndBadKeysAreRefused) {
  EXPECT_EQ(generate_audit_key(key_).error().code, ErrorCode::kConflict);
  EXPECT_EQ(fs::status(key_).permissions() & fs::perms::group_read, fs::perms::none);
  std::ofstream(dir_ / "bad.key") << "not a key\n";
  auto log = AuditLog::open(log_, {.signing_key = dir_ / "bad.key"});
  ASSERT_FALSE(log.ok());
  EXPECT_EQ(log.error().code, ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace faceguard
