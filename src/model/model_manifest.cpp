#include "model/model_manifest.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>

#include <nlohmann/json.hpp>

namespace faceguard::model {

namespace {

using nlohmann::json;

std::string require_string(const json& obj, const char* key, const std::string& where) {
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_string()) throw std::runtime_error(where + ": \"" + key + "\" must be a string");
  return it->get<std::string>();
}

bool is_hex_digest(const std::string& s) {
  if (s.size() != 64) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

Manifest parse_or_throw(std::string_view text) {
  const json doc = json::parse(text);  // throws json::parse_error with a byte position
  if (!doc.is_object()) throw std::runtime_error("the top level must be an object");
  if (doc.value("format", std::string{}) != kManifestFormat)
    throw std::runtime_error("\"format\" must be \"" + std::string(kManifestFormat) + "\"");
  auto ver = doc.find("version");
  if (ver == doc.end() || !ver->is_number_integer()) throw std::runtime_error("\"version\" must be an integer");
  if (ver->get<long long>() != kManifestVersion)
    throw std::runtime_error("unsupported manifest version " + std::to_string(ver->get<long long>()));
  auto pkgs = doc.find("packages");
  if (pkgs == doc.end() || !pkgs->is_array()) throw std::runtime_error("\"packages\" must be a list");

  Manifest m;
  for (const auto& p : *pkgs) {
    if (!p.is_object()) throw std::runtime_error("each package must be an object");
    ManifestPackage mp;
    const std::string where = "package " + std::to_string(m.packages.size());
    mp.spec.name = require_string(p, "name", where);
    mp.spec.version = require_string(p, "version", where);
    mp.spec.sha256 = require_string(p, "sha256", where);
    mp.spec.licence = require_string(p, "licence", where);
    mp.spec.usage_note = require_string(p, "usage_note", where);
    mp.spec.dir = require_string(p, "dir", where);
    mp.fetched_at = require_string(p, "fetched_at", where);
    if (!is_hex_digest(mp.spec.sha256)) throw std::runtime_error(where + ": \"sha256\" is not a sha256 hex digest");
    if (!is_safe_relative_path(mp.spec.dir) || mp.spec.dir.find('/') != std::string::npos)
      throw std::runtime_error(where + ": \"dir\" must be a plain folder name");
    if (m.find(mp.spec.name)) throw std::runtime_error("package " + mp.spec.name + " is listed twice");
    auto files = p.find("files");
    if (files == p.end() || !files->is_array()) throw std::runtime_error(where + ": \"files\" must be a list");
    for (const auto& f : *files) {
      if (!f.is_object()) throw std::runtime_error(where + ": each file must be an object");
      InstalledFile inf;
      inf.package = mp.spec.name;
      inf.path = require_string(f, "path", where);
      inf.sha256 = require_string(f, "sha256", where + " file " + inf.path);
      auto size = f.find("size");
      if (size == f.end() || !size->is_number_unsigned())
        throw std::runtime_error(where + " file " + inf.path + ": \"size\" must be a non-negative integer");
      inf.size = size->get<std::uint64_t>();
      if (!is_safe_relative_path(inf.path) || inf.path.rfind(mp.spec.dir + "/", 0) != 0)
        throw std::runtime_error("file path \"" + inf.path + "\" is not inside " + mp.spec.dir + "/");
      if (!is_hex_digest(inf.sha256)) throw std::runtime_error("file " + inf.path + ": bad sha256");
      mp.files.push_back(std::move(inf));
    }
    m.packages.push_back(std::move(mp));
  }
  return m;
}

}  // namespace

const ManifestPackage* Manifest::find(std::string_view name) const {
  for (const auto& p : packages)
    if (p.spec.name == name) return &p;
  return nullptr;
}

bool is_safe_relative_path(std::string_view path) {
  if (path.empty() || path.front() == '/' || path.size() > 4096) return false;
  std::size_t start = 0;
  while (start <= path.size()) {
    const std::size_t end = std::min(path.find('/', start), path.size());
    const std::string_view part = path.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") return false;
    start = end + 1;
  }
  for (char c : path)
    if (c == '\\' || c == '\0' || static_cast<unsigned char>(c) < 0x20) return false;
  return true;
}

Result<Manifest> parse_manifest(std::string_view json_text) {
  try {
    return parse_or_throw(json_text);
  } catch (const std::exception& e) {
    return make_error(ErrorCode::kModelError, std::string("malformed model manifest: ") + e.what());
  }
}

std::string serialise_manifest(const Manifest& manifest) {
  // ordered_json keeps the keys in the order written here, which reads better than sorted.
  nlohmann::ordered_json doc;
  doc["format"] = kManifestFormat;
  doc["version"] = kManifestVersion;
  doc["packages"] = nlohmann::ordered_json::array();
  for (const auto& p : manifest.packages) {
    auto files = nlohmann::ordered_json::array();
    for (const auto& f : p.files) files.push_back({{"path", f.path}, {"size", f.size}, {"sha256", f.sha256}});
    doc["packages"].push_back({{"name", p.spec.name},
                               {"version", p.spec.version},
                               {"sha256", p.spec.sha256},
                               {"licence", p.spec.licence},
                               {"usage_note", p.spec.usage_note},
                               {"dir", p.spec.dir},
                               {"fetched_at", p.fetched_at},
                               {"files", std::move(files)}});
  }
  return doc.dump(2) + "\n";
}

Result<Manifest> read_manifest(const std::filesystem::path& model_dir) {
  const auto path = model_dir / kManifestName;
  std::error_code ec;
  if (!std::filesystem::exists(path, ec))
    return make_error(ErrorCode::kNotFound, "no " + std::string(kManifestName) + " in " + model_dir.string());
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) return make_error(ErrorCode::kIoError, "cannot read " + path.string() + ": " + ec.message());
  if (size > kMaxManifestFileBytes)
    return make_error(ErrorCode::kModelError, path.string() + " is implausibly large (" + std::to_string(size) + " bytes)");
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  if (!in && !in.eof()) return make_error(ErrorCode::kIoError, "cannot read " + path.string());
  auto m = parse_manifest(ss.str());
  if (!m) return make_error(ErrorCode::kModelError, path.string() + ": " + m.error().message);
  return m;
}

Status write_file_atomic(const std::filesystem::path& target, std::string_view data) {
  const auto dir = target.parent_path().empty() ? std::filesystem::path(".") : target.parent_path();
  std::random_device rd;
  const auto tmp = dir / ("." + target.filename().string() + ".tmp-" + std::to_string(::getpid()) + "-" +
                          std::to_string(rd()));
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return make_error(ErrorCode::kIoError, "cannot create " + tmp.string() + ": " + std::strerror(errno));
  std::size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const std::string why = std::strerror(errno);
      ::close(fd);
      ::unlink(tmp.c_str());
      return make_error(ErrorCode::kIoError, "cannot write " + tmp.string() + ": " + why);
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    const std::string why = std::strerror(errno);
    ::unlink(tmp.c_str());
    return make_error(ErrorCode::kIoError, "cannot flush " + tmp.string() + ": " + why);
  }
  if (::rename(tmp.c_str(), target.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    ::unlink(tmp.c_str());
    return make_error(ErrorCode::kIoError, "cannot replace " + target.string() + ": " + why);
  }
  // The rename is durable only once the folder entry is flushed too.
  if (const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return ok_status();
}

}  // namespace faceguard::model
