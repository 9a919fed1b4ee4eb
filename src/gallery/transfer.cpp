#include "gallery/transfer.hpp"

#include <sodium.h>

#include <array>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>

#include <nlohmann/json.hpp>

#include "gallery/crypto.hpp"

namespace faceguard::gallery {

namespace fs = std::filesystem;

namespace {

constexpr char kMagic[8] = {'F', 'G', 'G', 'X', 'P', 'R', 'T', '\0'};
constexpr const char* kFormat = "faceguard-gallery-export";
constexpr const char* kKdfContext = "faceguard/export/v1";
// No subject chunk comes near this (a subject is a few KiB); a larger length field is a forged or damaged file.
constexpr std::uint32_t kMaxChunk = 64u << 20;
constexpr std::uint32_t kMaxHeader = 1u << 16;

void put_u32(std::string& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
std::uint32_t get_u32(const std::uint8_t* p) {
  return static_cast<std::uint32_t>(p[0]) | (static_cast<std::uint32_t>(p[1]) << 8) |
         (static_cast<std::uint32_t>(p[2]) << 16) | (static_cast<std::uint32_t>(p[3]) << 24);
}

std::string b64(std::span<const std::uint8_t> b) {
  std::string s(sodium_base64_ENCODED_LEN(b.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(s.data(), s.size(), b.data(), b.size(), sodium_base64_VARIANT_ORIGINAL);
  s.pop_back();
  return s;
}

Result<Bytes> unb64(const std::string& s) {
  Bytes out(s.size());
  std::size_t len = 0;
  if (sodium_base642bin(out.data(), out.size(), s.data(), s.size(), nullptr, &len, nullptr,
                        sodium_base64_VARIANT_ORIGINAL) != 0)
    return make_error(ErrorCode::kCorruptData, "bad base64 in export");
  out.resize(len);
  return out;
}

std::string header_json(const TransferHeader& h) {
  nlohmann::json j = {{"format", kFormat},
                      {"version", kTransferVersion},
                      {"model_id", h.model_id},
                      {"dim", h.dim},
                      {"created_at", static_cast<std::int64_t>(std::time(nullptr))},
                      {"cipher", "xchacha20poly1305-secretstream"},
                      {"kdf", std::string("blake2b(transfer key, '") + kKdfContext + "')"}};
  return j.dump();
}

}  // namespace

struct TransferWriter::State {
  fs::path final_path;
  fs::path tmp_path;
  std::ofstream out;
  crypto_hash_sha256_state hash;
  crypto_secretstream_xchacha20poly1305_state stream;
  std::string aad;
  std::size_t subjects = 0;
  std::size_t templates = 0;
  bool finished = false;

  Status emit(const std::string& bytes) {
    crypto_hash_sha256_update(&hash, reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out) return make_error(ErrorCode::kIoError, "cannot write " + tmp_path.string() + " (disk full?)");
    return ok_status();
  }
  Status chunk(const std::string& plain, unsigned char tag) {
    std::string c(plain.size() + crypto_secretstream_xchacha20poly1305_ABYTES, '\0');
    unsigned long long clen = 0;
    crypto_secretstream_xchacha20poly1305_push(&stream, reinterpret_cast<unsigned char*>(c.data()), &clen,
                                               reinterpret_cast<const unsigned char*>(plain.data()), plain.size(),
                                               reinterpret_cast<const unsigned char*>(aad.data()), aad.size(), tag);
    c.resize(clen);
    std::string len;
    put_u32(len, static_cast<std::uint32_t>(c.size()));
    FG_TRY_STATUS(emit(len));
    return emit(c);
  }
};

TransferWriter::TransferWriter(std::unique_ptr<State> state) : s_(std::move(state)) {}

TransferWriter::~TransferWriter() {
  if (s_ && !s_->finished) {
    s_->out.close();
    std::error_code ec;
    fs::remove(s_->tmp_path, ec);
  }
}

Result<std::unique_ptr<TransferWriter>> TransferWriter::create(const fs::path& file, const SecretKey& key,
                                                               const TransferHeader& header) {
  if (key.empty()) return make_error(ErrorCode::kInvalidArgument, "an export needs a transfer key");
  sodium_ready();
  auto s = std::make_unique<State>();
  s->final_path = file;
  s->tmp_path = fs::path(file.string() + ".tmp");
  s->out.open(s->tmp_path, std::ios::binary | std::ios::trunc);
  if (!s->out) return make_error(ErrorCode::kIoError, "cannot create " + s->tmp_path.string());
  crypto_hash_sha256_init(&s->hash);
  const std::string hj = header_json(header);
  std::string head(kMagic, sizeof kMagic);
  put_u32(head, kTransferVersion);
  put_u32(head, static_cast<std::uint32_t>(hj.size()));
  head += hj;
  s->aad = head;
  const SecretKey k = derive_key(key, kKdfContext);
  std::array<unsigned char, crypto_secretstream_xchacha20poly1305_HEADERBYTES> sh{};
  crypto_secretstream_xchacha20poly1305_init_push(&s->stream, sh.data(), k.data());
  head.append(reinterpret_cast<const char*>(sh.data()), sh.size());
  std::unique_ptr<TransferWriter> w(new TransferWriter(std::move(s)));
  FG_TRY_STATUS(w->s_->emit(head));
  return w;
}

Status TransferWriter::write(const TransferSubject& subject) {
  nlohmann::json j;
  j["subject_id"] = subject.info.subject_id;
  j["display_name"] = subject.info.display_name;
  j["metadata"] = nlohmann::json::parse(subject.info.metadata_json.empty() ? "{}" : subject.info.metadata_json);
  j["created_at"] = subject.info.created_at;
  j["templates"] = nlohmann::json::array();
  for (std::size_t i = 0; i < subject.info.templates.size(); ++i) {
    const auto& t = subject.info.templates[i];
    Bytes raw = floats_to_bytes(subject.values.at(i));
    nlohmann::json tj = {{"model_id", t.model_id},   {"created_at", t.created_at}, {"source_sha256", t.source_sha256},
                         {"consent_id", t.consent_id}, {"values", b64(raw)}};
    tj["retain_until"] = t.retain_until ? nlohmann::json(*t.retain_until) : nlohmann::json(nullptr);
    j["templates"].push_back(std::move(tj));
    wipe(raw);
  }
  std::string plain = j.dump();
  Status st = s_->chunk(plain, 0);
  sodium_memzero(plain.data(), plain.size());
  ++s_->subjects;
  s_->templates += subject.info.templates.size();
  return st;
}

Status TransferWriter::finish() {
  const std::string counts = nlohmann::json{{"subjects", s_->subjects}, {"templates", s_->templates}}.dump();
  FG_TRY_STATUS(s_->chunk(counts, crypto_secretstream_xchacha20poly1305_TAG_FINAL));
  std::array<unsigned char, crypto_hash_sha256_BYTES> digest{};
  crypto_hash_sha256_final(&s_->hash, digest.data());
  s_->out.write(reinterpret_cast<const char*>(digest.data()), digest.size());
  s_->out.flush();
  if (!s_->out) return make_error(ErrorCode::kIoError, "cannot write " + s_->tmp_path.string() + " (disk full?)");
  s_->out.close();
  std::error_code ec;
  fs::rename(s_->tmp_path, s_->final_path, ec);
  if (ec) return make_error(ErrorCode::kIoError, "cannot move the export into place: " + ec.message());
  s_->finished = true;
  return ok_status();
}

Status read_transfer(const fs::path& file, const SecretKey& key,
                     const std::function<Status(const TransferHeader&)>& on_header,
                     const std::function<Status(TransferSubject&&)>& on_subject) {
  if (key.empty()) return make_error(ErrorCode::kInvalidArgument, "an import needs the transfer key");
  sodium_ready();
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) return make_error(ErrorCode::kNotFound, "no export file " + file.string());
  const auto size = fs::file_size(file, ec);
  std::ifstream in(file, std::ios::binary);
  if (!in || ec) return make_error(ErrorCode::kIoError, "cannot read " + file.string());
  constexpr std::size_t kFixed = sizeof kMagic + 8;
  if (size < kFixed + crypto_secretstream_xchacha20poly1305_HEADERBYTES + crypto_hash_sha256_BYTES)
    return make_error(ErrorCode::kCorruptData, file.string() + " is too short to be a gallery export");
  {
    std::array<char, sizeof kMagic> magic{};
    in.read(magic.data(), magic.size());
    if (std::memcmp(magic.data(), kMagic, sizeof kMagic) != 0)
      return make_error(ErrorCode::kUnsupportedFormat, file.string() + " is not a faceguard gallery export");
    std::array<std::uint8_t, 4> v{};
    in.read(reinterpret_cast<char*>(v.data()), 4);
    if (get_u32(v.data()) != kTransferVersion)
      return make_error(ErrorCode::kUnsupportedFormat, "export version " + std::to_string(get_u32(v.data())) +
                                                           " is unknown (this build reads version 1)");
  }
  // Pass 1: the checksum over everything but the last 32 bytes.
  {
    in.seekg(0);
    crypto_hash_sha256_state h;
    crypto_hash_sha256_init(&h);
    std::vector<char> buf(1 << 20);
    std::uint64_t left = size - crypto_hash_sha256_BYTES;
    while (left > 0) {
      const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(left, buf.size()));
      in.read(buf.data(), static_cast<std::streamsize>(n));
      if (!in) return make_error(ErrorCode::kIoError, "cannot read " + file.string());
      crypto_hash_sha256_update(&h, reinterpret_cast<unsigned char*>(buf.data()), n);
      left -= n;
    }
    std::array<unsigned char, crypto_hash_sha256_BYTES> want{}, got{};
    in.read(reinterpret_cast<char*>(want.data()), want.size());
    crypto_hash_sha256_final(&h, got.data());
    if (!in || std::memcmp(want.data(), got.data(), got.size()) != 0)
      return make_error(ErrorCode::kCorruptData, file.string() + " fails its checksum (truncated or damaged)");
  }
  // Pass 2: header and chunks.
  in.seekg(static_cast<std::streamoff>(sizeof kMagic + 4));
  std::array<std::uint8_t, 4> lenb{};
  in.read(reinterpret_cast<char*>(lenb.data()), 4);
  const std::uint32_t hlen = get_u32(lenb.data());
  if (hlen > kMaxHeader || kFixed + hlen > size) return make_error(ErrorCode::kCorruptData, "bad export header length");
  std::string hj(hlen, '\0');
  in.read(hj.data(), hlen);
  std::string aad(kMagic, sizeof kMagic);
  put_u32(aad, kTransferVersion);
  put_u32(aad, hlen);
  aad += hj;
  TransferHeader header;
  try {
    const auto j = nlohmann::json::parse(hj);
    if (j.at("format").get<std::string>() != kFormat || j.at("version").get<std::uint32_t>() != kTransferVersion)
      return make_error(ErrorCode::kUnsupportedFormat, "unknown export format");
    header.model_id = j.at("model_id").get<std::string>();
    header.dim = j.at("dim").get<int>();
  } catch (const std::exception& e) {
    return make_error(ErrorCode::kCorruptData, std::string("export header is not valid: ") + e.what());
  }
  FG_TRY_STATUS(on_header(header));
  std::array<unsigned char, crypto_secretstream_xchacha20poly1305_HEADERBYTES> sh{};
  in.read(reinterpret_cast<char*>(sh.data()), sh.size());
  const SecretKey k = derive_key(key, kKdfContext);
  crypto_secretstream_xchacha20poly1305_state st;
  if (crypto_secretstream_xchacha20poly1305_init_pull(&st, sh.data(), k.data()) != 0)
    return make_error(ErrorCode::kCorruptData, "bad export stream header");
  const std::uint64_t end = size - crypto_hash_sha256_BYTES;
  std::size_t subjects = 0, templates = 0;
  bool first = true;
  for (;;) {
    if (static_cast<std::uint64_t>(in.tellg()) + 4 > end)
      return make_error(ErrorCode::kCorruptData, "export ends before its final chunk");
    in.read(reinterpret_cast<char*>(lenb.data()), 4);
    const std::uint32_t clen = get_u32(lenb.data());
    if (clen < crypto_secretstream_xchacha20poly1305_ABYTES || clen > kMaxChunk ||
        static_cast<std::uint64_t>(in.tellg()) + clen > end)
      return make_error(ErrorCode::kCorruptData, "bad export chunk length");
    std::vector<unsigned char> c(clen);
    in.read(reinterpret_cast<char*>(c.data()), clen);
    std::string plain(clen - crypto_secretstream_xchacha20poly1305_ABYTES, '\0');
    unsigned long long plen = 0;
    unsigned char tag = 0;
    if (crypto_secretstream_xchacha20poly1305_pull(&st, reinterpret_cast<unsigned char*>(plain.data()), &plen, &tag,
                                                   c.data(), c.size(), reinterpret_cast<const unsigned char*>(aad.data()),
                                                   aad.size()) != 0) {
      // The checksum held, so the bytes are as written: the key is not the one they were written with.
      if (first) return make_error(ErrorCode::kPermissionDenied, "wrong transfer key for " + file.string());
      return make_error(ErrorCode::kCorruptData, "export chunk failed authentication");
    }
    first = false;
    plain.resize(plen);
    try {
      const auto j = nlohmann::json::parse(plain);
      sodium_memzero(plain.data(), plain.size());
      if (tag == crypto_secretstream_xchacha20poly1305_TAG_FINAL) {
        if (j.at("subjects").get<std::size_t>() != subjects || j.at("templates").get<std::size_t>() != templates)
          return make_error(ErrorCode::kCorruptData, "export counts do not match its contents");
        if (static_cast<std::uint64_t>(in.tellg()) != end)
          return make_error(ErrorCode::kCorruptData, "data after the final export chunk");
        return ok_status();
      }
      TransferSubject s;
      s.info.subject_id = j.at("subject_id").get<std::string>();
      s.info.display_name = j.at("display_name").get<std::string>();
      s.info.metadata_json = j.at("metadata").dump();
      s.info.created_at = j.at("created_at").get<std::int64_t>();
      for (const auto& tj : j.at("templates")) {
        TemplateInfo t;
        t.model_id = tj.at("model_id").get<std::string>();
        t.created_at = tj.at("created_at").get<std::int64_t>();
        t.source_sha256 = tj.at("source_sha256").get<std::string>();
        t.consent_id = tj.at("consent_id").get<std::string>();
        if (!tj.at("retain_until").is_null()) t.retain_until = tj.at("retain_until").get<std::int64_t>();
        FG_ASSIGN_OR_RETURN(Bytes raw, unb64(tj.at("values").get<std::string>()));
        FG_ASSIGN_OR_RETURN(auto values, bytes_to_floats(raw, header.dim));
        wipe(raw);
        s.info.templates.push_back(std::move(t));
        s.values.push_back(std::move(values));
      }
      ++subjects;
      templates += s.values.size();
      FG_TRY_STATUS(on_subject(std::move(s)));
    } catch (const std::exception& e) {
      return make_error(ErrorCode::kCorruptData, std::string("export chunk is not valid: ") + e.what());
    }
  }
}

}  // namespace faceguard::gallery
