// manifest.json of the model cache: what `faceguard models fetch` installed, so that a later run (and
// ModelPack::open) can tell a complete install from a partial or tampered one without re-hashing.
//
//   {"format": "faceguard-models", "version": 1,
//    "packages": [{"name", "version", "sha256" (of the npm tarball), "licence", "usage_note", "dir",
//                  "fetched_at" (ISO-8601 UTC), "files": [{"path", "size", "sha256"}]}]}
//
// File paths are relative to the model dir and must lie inside their package's dir: a manifest that
// names "../x" or "/etc/x" is refused as malformed.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "faceguard/models.hpp"
#include "faceguard/result.hpp"

namespace faceguard::model {

inline constexpr std::string_view kManifestName = "manifest.json";
inline constexpr std::string_view kManifestFormat = "faceguard-models";
inline constexpr int kManifestVersion = 1;
inline constexpr std::size_t kMaxManifestFileBytes = 4u << 20;

struct ManifestPackage {
  PackageSpec spec;
  std::string fetched_at;
  std::vector<InstalledFile> files;  // InstalledFile::package == spec.name
};

struct Manifest {
  std::vector<ManifestPackage> packages;
  const ManifestPackage* find(std::string_view name) const;
};

// kModelError with a description of what is wrong (never throws).
Result<Manifest> parse_manifest(std::string_view json);
std::string serialise_manifest(const Manifest& manifest);

// kNotFound when the file is absent, kModelError when it is malformed, kIoError when unreadable.
Result<Manifest> read_manifest(const std::filesystem::path& model_dir);

// Write to a temporary file beside `target`, fsync it, rename it over `target`, fsync the folder: a
// reader sees the old or the new content, never a mix, even across a crash.
Status write_file_atomic(const std::filesystem::path& target, std::string_view data);

// A relative path with no empty, "." or ".." component and no backslash or NUL.
bool is_safe_relative_path(std::string_view path);

}  // namespace faceguard::model
