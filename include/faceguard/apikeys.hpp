// faceguard/apikeys.hpp - API keys for the service: each bound to an operator identity, an organisation
// and a role that feed the policy context.
//
//   auto store = faceguard::ApiKeyStore::open("keys.db");
//   auto issued = store->create({.operator_id = "alice", .organisation = "Acme", .role = ApiRole::kOperator});
//   // issued->secret is shown once ("fgk_<id>_<secret>"); only a hash of it is stored.
//   auto who = store->authenticate(request_key);   // kPermissionDenied for unknown/revoked/malformed keys
//
// Keys are 32 random bytes; the store keeps BLAKE2b-256(secret) and compares in constant time.
// Thread safety: an ApiKeyStore may be used from several threads (calls are serialised internally);
// several processes may share the file (SQLite WAL).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "faceguard/result.hpp"

namespace faceguard {

enum class ApiRole {
  kAdmin,     // keys, galleries, consent, retention
  kOperator,  // recognition: detect, verify, identify, enrol
  kAuditor,   // read-only: audit export and verify, policy explain
};

std::string_view to_string(ApiRole role);
Result<ApiRole> parse_api_role(std::string_view name);

struct ApiKeyRequest {
  std::string operator_id;   // who, as the policy context's operator id
  std::string organisation;  // the operator's organisation
  ApiRole role = ApiRole::kOperator;
  std::string operator_kind = "private_business";  // policy operator role (see POLICY.md "Decision shape")
  std::string label;         // free text
  double requests_per_second = 10.0;  // per-key rate limit (token bucket), 0 = unlimited
  double burst = 20.0;
};

struct ApiKeyInfo {
  std::string id;  // public key id (the part after "fgk_")
  std::string operator_id;
  std::string organisation;
  ApiRole role = ApiRole::kOperator;
  std::string operator_kind;
  std::string label;
  double requests_per_second = 0;
  double burst = 0;
  std::int64_t created_at = 0;  // unix seconds
  std::optional<std::int64_t> revoked_at;
};

struct IssuedApiKey {
  ApiKeyInfo info;
  std::string secret;  // the full key to hand to the client; not recoverable later
};

class ApiKeyStore {
 public:
  static Result<std::unique_ptr<ApiKeyStore>> open(const std::filesystem::path& path);
  ~ApiKeyStore();

  Result<IssuedApiKey> create(const ApiKeyRequest& request);
  Result<ApiKeyInfo> authenticate(std::string_view key) const;
  Status revoke(std::string_view id);
  Result<std::vector<ApiKeyInfo>> list() const;

 private:
  struct Impl;
  explicit ApiKeyStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace faceguard
