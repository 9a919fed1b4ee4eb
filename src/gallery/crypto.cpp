#include "gallery/crypto.hpp"

#include <sodium.h>

#include <bit>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>

namespace faceguard {

static_assert(std::endian::native == std::endian::little, "templates are stored as little-endian float32");

SecretKey::SecretKey(std::span<const std::uint8_t, kSize> bytes) : set_(true) {
  std::memcpy(bytes_.data(), bytes.data(), kSize);
}
SecretKey::SecretKey(const SecretKey& other) : bytes_(other.bytes_), set_(other.set_) {}
SecretKey& SecretKey::operator=(const SecretKey& other) {
  if (this != &other) {
    bytes_ = other.bytes_;
    set_ = other.set_;
  }
  return *this;
}
SecretKey::~SecretKey() { sodium_memzero(bytes_.data(), bytes_.size()); }

SecretKey generate_secret_key() {
  gallery::sodium_ready();
  std::array<std::uint8_t, SecretKey::kSize> b{};
  randombytes_buf(b.data(), b.size());
  SecretKey k{std::span<const std::uint8_t, SecretKey::kSize>(b)};
  sodium_memzero(b.data(), b.size());
  return k;
}

Result<SecretKey> parse_secret_key(std::string_view text) {
  if (!gallery::sodium_ready()) return make_error(ErrorCode::kInternal, "libsodium failed to initialise");
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.remove_suffix(1);
  std::array<std::uint8_t, 64> buf{};
  std::size_t len = 0;
  const char* end = nullptr;
  bool ok = false;
  if (text.size() == 2 * SecretKey::kSize) {
    ok = sodium_hex2bin(buf.data(), buf.size(), text.data(), text.size(), nullptr, &len, &end) == 0 &&
         end == text.data() + text.size() && len == SecretKey::kSize;
  }
  if (!ok) {
    for (int variant : {sodium_base64_VARIANT_ORIGINAL, sodium_base64_VARIANT_URLSAFE,
                        sodium_base64_VARIANT_ORIGINAL_NO_PADDING, sodium_base64_VARIANT_URLSAFE_NO_PADDING}) {
      if (sodium_base642bin(buf.data(), buf.size(), text.data(), text.size(), nullptr, &len, &end, variant) == 0 &&
          end == text.data() + text.size() && len == SecretKey::kSize) {
        ok = true;
        break;
      }
    }
  }
  if (!ok) {
    sodium_memzero(buf.data(), buf.size());
    return make_error(ErrorCode::kInvalidArgument,
                      "a key must be 32 bytes written as 64 hex digits or base64 (`faceguard gallery keygen`)");
  }
  SecretKey k{std::span<const std::uint8_t, SecretKey::kSize>(buf.data(), SecretKey::kSize)};
  sodium_memzero(buf.data(), buf.size());
  return k;
}

Result<SecretKey> load_secret_key(const std::filesystem::path& key_file) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(key_file, ec))
    return make_error(ErrorCode::kNotFound, "key file not found: " + key_file.string());
  std::ifstream in(key_file, std::ios::binary);
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!in.good() && !in.eof()) return make_error(ErrorCode::kIoError, "cannot read key file " + key_file.string());
  if (data.size() == SecretKey::kSize) {
    // 32 raw bytes (what `head -c32 /dev/urandom` makes). A 32-character text key cannot be valid text form.
    SecretKey k{std::span<const std::uint8_t, SecretKey::kSize>(
        reinterpret_cast<const std::uint8_t*>(data.data()), SecretKey::kSize)};
    sodium_memzero(data.data(), data.size());
    return k;
  }
  auto k = parse_secret_key(data);
  sodium_memzero(data.data(), data.size());
  if (!k) return make_error(k.error().code, key_file.string() + ": " + k.error().message);
  return k;
}

Result<SecretKey> master_key_from_env(const char* variable) {
  const char* v = std::getenv(variable);
  if (!v || !*v) return make_error(ErrorCode::kNotFound, std::string(variable) + " is not set");
  auto k = parse_secret_key(v);
  if (!k) return make_error(k.error().code, std::string(variable) + ": " + k.error().message);
  return k;
}

std::string secret_key_to_hex(const SecretKey& key) {
  return gallery::to_hex(std::span<const std::uint8_t>(key.data(), SecretKey::kSize));
}

namespace gallery {

bool sodium_ready() {
  static const bool ok = sodium_init() >= 0;
  return ok;
}

SecretKey derive_key(const SecretKey& key, std::string_view context) {
  sodium_ready();
  std::array<std::uint8_t, SecretKey::kSize> out{};
  crypto_generichash(out.data(), out.size(), reinterpret_cast<const unsigned char*>(context.data()),
                     context.size(), key.data(), SecretKey::kSize);
  SecretKey k{std::span<const std::uint8_t, SecretKey::kSize>(out)};
  sodium_memzero(out.data(), out.size());
  return k;
}

Bytes key_check_value(const SecretKey& master, std::string_view gallery_uuid) {
  const SecretKey check = derive_key(master, "faceguard/gallery/key-check/v1");
  Bytes out(32);
  crypto_generichash(out.data(), out.size(), reinterpret_cast<const unsigned char*>(gallery_uuid.data()),
                     gallery_uuid.size(), check.data(), SecretKey::kSize);
  return out;
}

bool equal_constant_time(std::span<const std::uint8_t> a, std::span<const std::uint8_t> b) {
  return a.size() == b.size() && sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

Bytes seal(const SecretKey& key, std::span<const std::uint8_t> plaintext, std::string_view aad) {
  sodium_ready();
  constexpr std::size_t kNonce = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
  static_assert(kNonce + crypto_aead_xchacha20poly1305_ietf_ABYTES == kSealOverhead);
  Bytes out(kNonce + plaintext.size() + crypto_aead_xchacha20poly1305_ietf_ABYTES);
  // 192-bit random nonces: collisions are negligible for any number of messages one key will see.
  randombytes_buf(out.data(), kNonce);
  unsigned long long clen = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(out.data() + kNonce, &clen, plaintext.data(), plaintext.size(),
                                             reinterpret_cast<const unsigned char*>(aad.data()), aad.size(),
                                             nullptr, out.data(), key.data());
  out.resize(kNonce + clen);
  return out;
}

Result<Bytes> open_sealed(const SecretKey& key, std::span<const std::uint8_t> sealed, std::string_view aad) {
  sodium_ready();
  constexpr std::size_t kNonce = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
  if (sealed.size() < kSealOverhead) return make_error(ErrorCode::kCorruptData, "ciphertext too short");
  Bytes out(sealed.size() - kSealOverhead);
  unsigned long long mlen = 0;
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(out.data(), &mlen, nullptr, sealed.data() + kNonce,
                                                 sealed.size() - kNonce,
                                                 reinterpret_cast<const unsigned char*>(aad.data()), aad.size(),
                                                 sealed.data(), key.data()) != 0) {
    return make_error(ErrorCode::kCorruptData, "ciphertext failed authentication (tampered, moved or wrong key)");
  }
  out.resize(mlen);
  return out;
}

// Fields are joined with NUL, which ids and model names cannot contain, so the encoding is unambiguous.
std::string subject_key_aad(std::string_view gallery_uuid, std::string_view subject_uuid) {
  std::string s = "faceguard/subject-key/v1";
  s.push_back('\0');
  s.append(gallery_uuid).push_back('\0');
  s.append(subject_uuid);
  return s;
}

std::string profile_aad(std::string_view gallery_uuid, std::string_view subject_id) {
  std::string s = "faceguard/profile/v1";
  s.push_back('\0');
  s.append(gallery_uuid).push_back('\0');
  s.append(subject_id);
  return s;
}

std::string template_aad(std::string_view gallery_uuid, std::string_view subject_id, std::int64_t template_id,
                         std::string_view model_id) {
  std::string s = "faceguard/template/v1";
  s.push_back('\0');
  s.append(gallery_uuid).push_back('\0');
  s.append(subject_id).push_back('\0');
  s.append(std::to_string(template_id)).push_back('\0');
  s.append(model_id);
  return s;
}

Bytes floats_to_bytes(std::span<const float> values) {
  Bytes out(values.size() * sizeof(float));
  if (!values.empty()) std::memcpy(out.data(), values.data(), out.size());
  return out;
}

Result<std::vector<float>> bytes_to_floats(std::span<const std::uint8_t> bytes, int dim) {
  if (dim <= 0 || bytes.size() != static_cast<std::size_t>(dim) * sizeof(float))
    return make_error(ErrorCode::kCorruptData, "template has " + std::to_string(bytes.size()) +
                                                   " bytes, expected " + std::to_string(dim * 4));
  std::vector<float> v(static_cast<std::size_t>(dim));
  std::memcpy(v.data(), bytes.data(), bytes.size());
  for (float f : v)
    if (!std::isfinite(f)) return make_error(ErrorCode::kCorruptData, "template holds a non-finite value");
  return v;
}

void wipe(Bytes& bytes) {
  if (!bytes.empty()) sodium_memzero(bytes.data(), bytes.size());
}

std::string to_hex(std::span<const std::uint8_t> bytes) {
  std::string s(bytes.size() * 2 + 1, '\0');
  sodium_bin2hex(s.data(), s.size(), bytes.data(), bytes.size());
  s.pop_back();
  return s;
}

std::string sha256_hex(std::span<const std::uint8_t> bytes) {
  sodium_ready();
  std::array<std::uint8_t, crypto_hash_sha256_BYTES> h{};
  crypto_hash_sha256(h.data(), bytes.data(), bytes.size());
  return to_hex(h);
}

std::string random_uuid() {
  sodium_ready();
  std::array<std::uint8_t, 16> b{};
  randombytes_buf(b.data(), b.size());
  return to_hex(b);
}

}  // namespace gallery
}  // namespace faceguard
