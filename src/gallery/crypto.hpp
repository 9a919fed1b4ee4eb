// Internal: the libsodium primitives a gallery uses, with the context strings that bind them.
//
// Keys: the operator's master key never encrypts data directly. Two sub-keys are derived from it with keyed
// BLAKE2b (crypto_generichash): a key-encryption key that wraps the per-subject data keys, and a check value
// stored in the gallery so a wrong master key is detected before anything is decrypted.
// Ciphertexts are nonce (24 bytes, random) || XChaCha20-Poly1305-IETF ciphertext || tag (16 bytes); the
// associated data names what the ciphertext is (gallery, subject, template, model), so a ciphertext moved to
// another row fails to decrypt.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "faceguard/gallery.hpp"
#include "faceguard/result.hpp"

namespace faceguard::gallery {

using Bytes = std::vector<std::uint8_t>;

// sodium_init() once; false if libsodium cannot initialise (no entropy source).
bool sodium_ready();

// BLAKE2b-256 keyed with `key` over `context` (a fixed label) -> a new independent key.
SecretKey derive_key(const SecretKey& key, std::string_view context);
// 32-byte check value of the master key for one gallery (keyed BLAKE2b; reveals nothing about the key).
Bytes key_check_value(const SecretKey& master, std::string_view gallery_uuid);
bool equal_constant_time(std::span<const std::uint8_t> a, std::span<const std::uint8_t> b);

// AEAD seal/open. open() returns kCorruptData when authentication fails (tampering, wrong key, moved row).
Bytes seal(const SecretKey& key, std::span<const std::uint8_t> plaintext, std::string_view aad);
Result<Bytes> open_sealed(const SecretKey& key, std::span<const std::uint8_t> sealed, std::string_view aad);
constexpr std::size_t kSealOverhead = 24 + 16;

// The associated data of each kind of ciphertext.
std::string subject_key_aad(std::string_view gallery_uuid, std::string_view subject_uuid);
std::string profile_aad(std::string_view gallery_uuid, std::string_view subject_id);
std::string template_aad(std::string_view gallery_uuid, std::string_view subject_id, std::int64_t template_id,
                         std::string_view model_id);

Bytes floats_to_bytes(std::span<const float> values);             // little-endian float32
Result<std::vector<float>> bytes_to_floats(std::span<const std::uint8_t> bytes, int dim);

// Zero a buffer that held key material (sodium_memzero: not optimised away).
void wipe(Bytes& bytes);

std::string sha256_hex(std::span<const std::uint8_t> bytes);
std::string to_hex(std::span<const std::uint8_t> bytes);
std::string random_uuid();  // 32 hex digits from randombytes

}  // namespace faceguard::gallery
