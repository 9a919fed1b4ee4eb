// Ed25519 keys, signatures and hashes of the audit trail (libsodium), and `generate_audit_key`.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "audit/audit_format.hpp"
#include "faceguard/audit.hpp"

namespace faceguard {
namespace audit {
namespace {

Result<std::string> read_trimmed(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return make_error(ErrorCode::kNotFound, "cannot read key file " + file.string());
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

Status write_file(const std::filesystem::path& file, const std::string& text, mode_t mode, bool overwrite) {
  const int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (overwrite ? O_TRUNC : O_EXCL);
  const int fd = ::open(file.c_str(), flags, mode);
  if (fd < 0) {
    if (errno == EEXIST) return make_error(ErrorCode::kConflict, file.string() + " exists (refusing to overwrite a key)");
    return make_error(ErrorCode::kIoError, "cannot create " + file.string());
  }
  ::fchmod(fd, mode);
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) return make_error(ErrorCode::kIoError, "cannot write " + file.string());
  return ok_status();
}

}  // namespace

std::string hex(const unsigned char* data, std::size_t n) {
  std::string out(n * 2 + 1, '\0');
  sodium_bin2hex(out.data(), out.size(), data, n);
  out.pop_back();
  return out;
}

std::optional<std::string> unhex(std::string_view h) {
  if (h.size() % 2) return std::nullopt;
  std::string out(h.size() / 2, '\0');
  std::size_t len = 0;
  if (sodium_hex2bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), h.data(), h.size(), nullptr, &len,
                     nullptr) != 0 ||
      len != out.size())
    return std::nullopt;
  return out;
}

std::string record_hash(const nlohmann::json& record) {
  const std::string canon = record.dump();
  unsigned char h[32];
  crypto_generichash(h, sizeof h, reinterpret_cast<const unsigned char*>(canon.data()), canon.size(), nullptr, 0);
  return hex(h, sizeof h);
}

std::string checkpoint_message(std::uint64_t seq, const std::string& head) {
  return "faceguard-audit-checkpoint/1 " + std::to_string(seq) + " " + head;
}
std::string head_message(std::uint64_t seq, const std::string& head) {
  return "faceguard-audit-head/1 " + std::to_string(seq) + " " + head;
}

std::string key_id(const unsigned char* pk) {
  unsigned char h[32];
  crypto_generichash(h, sizeof h, pk, crypto_sign_PUBLICKEYBYTES, nullptr, 0);
  return hex(h, 8);
}

Result<SigningKey> load_secret_key(const std::filesystem::path& file) {
  if (sodium_init() < 0) return make_error(ErrorCode::kInternal, "libsodium failed to initialise");
  FG_ASSIGN_OR_RETURN(std::string text, read_trimmed(file));
  auto raw = unhex(text);
  if (!raw || raw->size() != crypto_sign_SECRETKEYBYTES)
    return make_error(ErrorCode::kInvalidArgument, file.string() + " is not an Ed25519 secret key (faceguard audit keygen)");
  SigningKey k;
  std::copy(raw->begin(), raw->end(), k.secret.begin());
  sodium_memzero(raw->data(), raw->size());
  crypto_sign_ed25519_sk_to_pk(k.public_key.data(), k.secret.data());
  k.key_id = key_id(k.public_key.data());
  return k;
}

Result<std::array<unsigned char, crypto_sign_PUBLICKEYBYTES>> load_public_key(const std::filesystem::path& file) {
  if (sodium_init() < 0) return make_error(ErrorCode::kInternal, "libsodium failed to initialise");
  FG_ASSIGN_OR_RETURN(std::string text, read_trimmed(file));
  auto raw = unhex(text);
  if (!raw || raw->size() != crypto_sign_PUBLICKEYBYTES)
    return make_error(ErrorCode::kInvalidArgument, file.string() + " is not an Ed25519 public key");
  std::array<unsigned char, crypto_sign_PUBLICKEYBYTES> pk{};
  std::copy(raw->begin(), raw->end(), pk.begin());
  return pk;
}

std::string sign_hex(const SigningKey& key, const std::string& message) {
  unsigned char sig[crypto_sign_BYTES];
  crypto_sign_detached(sig, nullptr, reinterpret_cast<const unsigned char*>(message.data()), message.size(),
                       key.secret.data());
  return hex(sig, sizeof sig);
}

bool verify_hex(const unsigned char* pk, const std::string& message, const std::string& sig_hex) {
  auto sig = unhex(sig_hex);
  if (!sig || sig->size() != crypto_sign_BYTES) return false;
  return crypto_sign_verify_detached(reinterpret_cast<const unsigned char*>(sig->data()),
                                     reinterpret_cast<const unsigned char*>(message.data()), message.size(), pk) == 0;
}

std::filesystem::path head_path(const std::filesystem::path& log) { return log.string() + ".head"; }

bool has_record_shape(const nlohmann::json& j) {
  if (!j.is_object() || j.size() != 6) return false;
  return j.contains("seq") && j["seq"].is_number_unsigned() && j.contains("time") && j["time"].is_string() &&
         j.contains("kind") && j["kind"].is_string() && j.contains("prev") && j["prev"].is_string() &&
         j.contains("hash") && j["hash"].is_string() && j.contains("body") && j["body"].is_object();
}

std::string now_utc_millis() {
  using namespace std::chrono;
  const auto now = system_clock::now();
  const auto secs = floor<seconds>(now);
  const auto ms = duration_cast<milliseconds>(now - secs).count();
  const auto dp = floor<days>(secs);
  const year_month_day ymd{dp};
  const hh_mm_ss hms{secs - dp};
  char buf[40];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                static_cast<int>(hms.seconds().count()), static_cast<int>(ms));
  return buf;
}

}  // namespace audit

Status generate_audit_key(const std::filesystem::path& secret_key, bool overwrite) {
  if (sodium_init() < 0) return make_error(ErrorCode::kInternal, "libsodium failed to initialise");
  unsigned char pk[crypto_sign_PUBLICKEYBYTES];
  unsigned char sk[crypto_sign_SECRETKEYBYTES];
  crypto_sign_keypair(pk, sk);
  std::string sk_hex = audit::hex(sk, sizeof sk) + "\n";
  sodium_memzero(sk, sizeof sk);
  std::filesystem::path pub = secret_key.string() + ".pub";
  if (!overwrite) {
    std::error_code ec;
    if (std::filesystem::exists(pub, ec)) return make_error(ErrorCode::kConflict, pub.string() + " exists (refusing to overwrite a key)");
  }
  Status s = audit::write_file(secret_key, sk_hex, 0600, overwrite);
  sodium_memzero(sk_hex.data(), sk_hex.size());
  FG_TRY_STATUS(s);
  return audit::write_file(pub, audit::hex(pk, sizeof pk) + "\n", 0644, overwrite);
}

}  // namespace faceguard
