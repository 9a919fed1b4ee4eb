#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "faceguard/apikeys.hpp"

namespace {

using faceguard::ApiKeyStore;
using faceguard::ApiRole;
using faceguard::ErrorCode;

std::filesystem::path temp_db(const char* name) {
  auto p = std::filesystem::temp_directory_path() / (std::string("fg_keys_") + name + "_" + std::to_string(::getpid()) + ".db");
  std::filesystem::remove(p);
  return p;
}

TEST(ApiKeys, CreateAuthenticateRevoke) {
  auto path = temp_db("basic");
  auto store = ApiKeyStore::open(path);
  ASSERT_TRUE(store) << store.error().message;
  auto k = (*store)->create({.operator_id = "alice", .organisation = "Acme", .role = ApiRole::kOperator});
  ASSERT_TRUE(k) << k.error().message;
  EXPECT_EQ(k->secret.rfind("fgk_", 0), 0u);
  auto who = (*store)->authenticate(k->secret);
  ASSERT_TRUE(who) << who.error().message;
  EXPECT_EQ(who->operator_id, "alice");
  EXPECT_EQ(who->role, ApiRole::kOperator);

  // One changed character of the secret is refused.
  std::string forged = k->secret;
  forged.back() = forged.back() == '0' ? '1' : '0';
  auto bad = (*store)->authenticate(forged);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, ErrorCode::kPermissionDenied);
  for (const char* junk : {"", "fgk_", "Bearer x", "fgk_zzzzzzzzzzzzzzzz_00"}) EXPECT_FALSE((*store)->authenticate(junk));

  ASSERT_TRUE((*store)->revoke(k->info.id));
  auto after = (*store)->authenticate(k->secret);
  ASSERT_FALSE(after);
  EXPECT_NE(after.error().message.find("revoked"), std::string::npos);
  EXPECT_EQ((*store)->revoke(k->info.id).error().code, ErrorCode::kNotFound);
  std::filesystem::remove(path);
}

TEST(ApiKeys, SecretIsNotStoredAndSurvivesReopen) {
  auto path = temp_db("reopen");
  std::string secret;
  {
    auto store = ApiKeyStore::open(path);
    ASSERT_TRUE(store);
    auto k = (*store)->create({.operator_id = "bob", .organisation = "City", .role = ApiRole::kAuditor});
    ASSERT_TRUE(k);
    secret = k->secret;
  }
  auto store = ApiKeyStore::open(path);
  ASSERT_TRUE(store);
  EXPECT_TRUE((*store)->authenticate(secret));
  auto list = (*store)->list();
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 1u);
  // The raw file must not hold the secret's hex.
  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(bytes.find(secret.substr(secret.size() - 64)), std::string::npos);
  std::filesystem::remove(path);
}

TEST(ApiKeys, RejectsNonDatabaseFile) {
  auto path = temp_db("junk");
  { std::ofstream(path) << "this is not sqlite, just some text that is long enough to be a header..........."; }
  auto store = ApiKeyStore::open(path);
  ASSERT_FALSE(store);
  std::filesystem::remove(path);
}

TEST(ApiKeys, RequiresIdentity) {
  auto path = temp_db("ident");
  auto store = ApiKeyStore::open(path);
  ASSERT_TRUE(store);
  EXPECT_EQ((*store)->create({.operator_id = "", .organisation = "x"}).error().code, ErrorCode::kInvalidArgument);
  std::filesystem::remove(path);
}

}  // namespace
