// The evaluation's embedding cache: one binary file per pipeline configuration, so that re-running an
// evaluation (another threshold protocol, another pair list over the same images) costs seconds.
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "faceguard/eval.hpp"

namespace faceguard::eval {
namespace {

constexpr char kMagic[8] = {'F', 'G', 'E', 'M', 'B', 'C', '\0', '\0'};
constexpr std::uint32_t kVersion = 1;
// Bounds that no real entry reaches; a larger value means a corrupt file, not a huge allocation.
constexpr std::uint32_t kMaxString = 1u << 16;
constexpr std::uint32_t kMaxDim = 1u << 14;
constexpr std::uint32_t kMaxLandmarks = 1024;

// FNV-1a 64 (Fowler-Noll-Vo; offset basis and prime from the reference): stable across builds, unlike
// std::hash, so the same configuration finds the same file.
std::uint64_t fnv1a64(std::string_view s) {
  std::uint64_t h = 14695981039346656037ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

class Writer {
 public:
  void u8(std::uint8_t v) { buf_.push_back(static_cast<char>(v)); }
  void u32(std::uint32_t v) { raw(&v, 4); }
  void u64(std::uint64_t v) { raw(&v, 8); }
  void i64(std::int64_t v) { raw(&v, 8); }
  void str(std::string_view s) {
    u32(static_cast<std::uint32_t>(s.size()));
    buf_.append(s.data(), s.size());
  }
  void raw(const void* p, std::size_t n) { buf_.append(static_cast<const char*>(p), n); }
  const std::string& data() const { return buf_; }

 private:
  std::string buf_;  // the format is little-endian, as are the machines this builds for (x86-64, arm64)
};

class Reader {
 public:
  explicit Reader(std::string_view d) : d_(d) {}
  bool raw(void* p, std::size_t n) {
    if (d_.size() - pos_ < n) return false;
    std::memcpy(p, d_.data() + pos_, n);
    pos_ += n;
    return true;
  }
  bool u8(std::uint8_t& v) { return raw(&v, 1); }
  bool u32(std::uint32_t& v) { return raw(&v, 4); }
  bool u64(std::uint64_t& v) { return raw(&v, 8); }
  bool i64(std::int64_t& v) { return raw(&v, 8); }
  bool str(std::string& s) {
    std::uint32_t n = 0;
    if (!u32(n) || n > kMaxString || d_.size() - pos_ < n) return false;
    s.assign(d_.data() + pos_, n);
    pos_ += n;
    return true;
  }
  bool at_end() const { return pos_ == d_.size(); }

 private:
  std::string_view d_;
  std::size_t pos_ = 0;
};

bool read_face(Reader& r, Face& f) {
  std::uint8_t scheme = 0;
  std::uint32_t n = 0;
  if (!r.raw(&f.box.x, 4) || !r.raw(&f.box.y, 4) || !r.raw(&f.box.width, 4) || !r.raw(&f.box.height, 4) ||
      !r.raw(&f.score, 4) || !r.u8(scheme) || !r.u32(n)) {
    return false;
  }
  if (scheme > static_cast<std::uint8_t>(LandmarkScheme::kFivePoint) || n > kMaxLandmarks) return false;
  f.scheme = static_cast<LandmarkScheme>(scheme);
  f.landmarks.resize(n);
  for (auto& p : f.landmarks) {
    if (!r.raw(&p.x, 4) || !r.raw(&p.y, 4)) return false;
  }
  return r.str(f.detector);
}

void write_face(Writer& w, const Face& f) {
  for (float v : {f.box.x, f.box.y, f.box.width, f.box.height, f.score}) w.raw(&v, 4);
  w.u8(static_cast<std::uint8_t>(f.scheme));
  w.u32(static_cast<std::uint32_t>(f.landmarks.size()));
  for (const auto& p : f.landmarks) {
    w.raw(&p.x, 4);
    w.raw(&p.y, 4);
  }
  w.str(f.detector);
}

Error corrupt(const std::filesystem::path& f, const std::string& what) {
  return make_error(ErrorCode::kCorruptData, "embedding cache " + f.string() + ": " + what);
}

}  // namespace

Result<EmbeddingCache> EmbeddingCache::open(const std::filesystem::path& dir, std::string config_key) {
  EmbeddingCache c;
  char name[40];
  std::snprintf(name, sizeof name, "embeddings-%016llx.bin", static_cast<unsigned long long>(fnv1a64(config_key)));
  c.file_ = dir / name;
  c.key_ = std::move(config_key);
  std::error_code ec;
  if (!std::filesystem::exists(c.file_, ec)) return c;
  std::ifstream in(c.file_, std::ios::binary);
  if (!in) return make_error(ErrorCode::kIoError, "cannot open " + c.file_.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  const std::string bytes = ss.str();
  Reader r(bytes);
  char magic[8];
  if (!r.raw(magic, 8) || std::memcmp(magic, kMagic, 8) != 0) return corrupt(c.file_, "not an embedding cache");
  std::uint32_t version = 0;
  if (!r.u32(version)) return corrupt(c.file_, "truncated header");
  if (version != kVersion) {
    return make_error(ErrorCode::kUnsupportedFormat,
                      "embedding cache " + c.file_.string() + ": version " + std::to_string(version) + " unknown");
  }
  std::string key;
  if (!r.str(key)) return corrupt(c.file_, "truncated header");
  // Two configurations whose keys collide in 64 bits must not share entries.
  if (key != c.key_) return make_error(ErrorCode::kConflict, "embedding cache " + c.file_.string() + " belongs to another configuration");
  std::uint64_t count = 0;
  if (!r.u64(count)) return corrupt(c.file_, "truncated header");
  for (std::uint64_t i = 0; i < count; ++i) {
    std::string path;
    Entry e;
    std::uint8_t source = 0;
    std::uint32_t dim = 0;
    if (!r.str(path) || !r.u64(e.size) || !r.i64(e.mtime_ns) || !r.u8(source) || !read_face(r, e.value.face) ||
        !r.str(e.value.embedding.model_id) || !r.u32(dim)) {
      return corrupt(c.file_, "truncated at entry " + std::to_string(i));
    }
    if (source > static_cast<std::uint8_t>(FaceSource::kFailed)) return corrupt(c.file_, "bad face source");
    if (dim > kMaxDim) return corrupt(c.file_, "implausible template size");
    e.value.source = static_cast<FaceSource>(source);
    e.value.embedding.values.resize(dim);
    if (!r.raw(e.value.embedding.values.data(), dim * sizeof(float)) || !r.str(e.value.error)) {
      return corrupt(c.file_, "truncated at entry " + std::to_string(i));
    }
    c.entries_[path] = std::move(e);
  }
  if (!r.at_end()) return corrupt(c.file_, "trailing bytes");
  return c;
}

EmbeddingCache EmbeddingCache::in_memory(std::string config_key) {
  EmbeddingCache c;
  c.key_ = std::move(config_key);
  return c;
}

const ImageEmbedding* EmbeddingCache::find(const std::filesystem::path& image, std::uint64_t size,
                                           std::int64_t mtime_ns) const {
  auto it = entries_.find(image.string());
  if (it == entries_.end() || it->second.size != size || it->second.mtime_ns != mtime_ns) return nullptr;
  return &it->second.value;
}

void EmbeddingCache::put(const std::filesystem::path& image, std::uint64_t size, std::int64_t mtime_ns,
                         ImageEmbedding value) {
  entries_[image.string()] = Entry{size, mtime_ns, std::move(value)};
}

Status EmbeddingCache::save() const {
  if (file_.empty()) return ok_status();
  Writer w;
  w.raw(kMagic, 8);
  w.u32(kVersion);
  w.str(key_);
  w.u64(entries_.size());
  for (const auto& [path, e] : entries_) {
    w.str(path);
    w.u64(e.size);
    w.i64(e.mtime_ns);
    w.u8(static_cast<std::uint8_t>(e.value.source));
    write_face(w, e.value.face);
    w.str(e.value.embedding.model_id);
    w.u32(static_cast<std::uint32_t>(e.value.embedding.values.size()));
    w.raw(e.value.embedding.values.data(), e.value.embedding.values.size() * sizeof(float));
    w.str(e.value.error.substr(0, kMaxString));
  }
  auto tmp = file_;
  tmp += ".tmp";
  FG_TRY_STATUS(write_text_file(tmp, w.data()));
  std::error_code ec;
  std::filesystem::rename(tmp, file_, ec);
  if (ec) return make_error(ErrorCode::kIoError, "cannot replace " + file_.string() + ": " + ec.message());
  return ok_status();
}

}  // namespace faceguard::eval
