// The on-disk record format of the audit trail and its cryptography (private; see faceguard/audit.hpp).
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>
#include <sodium.h>

#include "faceguard/result.hpp"

namespace faceguard::audit {

inline const std::string kZeroHash(64, '0');  // prev of the first record

std::string hex(const unsigned char* data, std::size_t n);
std::optional<std::string> unhex(std::string_view hex);  // raw bytes; nullopt when malformed

// BLAKE2b-256 of the canonical JSON of a record without its "hash" member.
std::string record_hash(const nlohmann::json& record_without_hash);

// What a checkpoint and the head file sign: the chain head after `seq` records.
std::string checkpoint_message(std::uint64_t seq, const std::string& head_hash);
std::string head_message(std::uint64_t seq, const std::string& head_hash);

struct SigningKey {
  std::array<unsigned char, crypto_sign_SECRETKEYBYTES> secret{};
  std::array<unsigned char, crypto_sign_PUBLICKEYBYTES> public_key{};
  std::string key_id;  // first 16 hex digits of BLAKE2b-256(public key)
};
Result<SigningKey> load_secret_key(const std::filesystem::path& file);
Result<std::array<unsigned char, crypto_sign_PUBLICKEYBYTES>> load_public_key(const std::filesystem::path& file);
std::string key_id(const unsigned char* public_key);

std::string sign_hex(const SigningKey& key, const std::string& message);
bool verify_hex(const unsigned char* public_key, const std::string& message, const std::string& sig_hex);

std::filesystem::path head_path(const std::filesystem::path& log);

// Exactly the member set of a record; anything else is a sign of editing.
bool has_record_shape(const nlohmann::json& j);

std::string now_utc_millis();

}  // namespace faceguard::audit
