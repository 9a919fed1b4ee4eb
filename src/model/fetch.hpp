// Internals of `faceguard models fetch`, exposed so that tests can run the whole fetch on fake packages
// (the pinned checksums are facts, so real-looking fakes cannot match them).
#pragma once

#include <string>
#include <vector>

#include "faceguard/models.hpp"
#include "model/model_manifest.hpp"

namespace faceguard::model {

// One file taken from a package tarball: `source` is its path in the tarball ("package/model/x.bin"),
// `dest` its path under the package's dir in the model cache ("model/x.bin").
struct PackageMember {
  std::string source;
  std::string dest;
};

struct PackageLayout {
  PackageSpec spec;
  std::vector<PackageMember> members;
};

// The three pinned packages and the members taken from each (defined in models.cpp).
const std::vector<PackageLayout>& pinned_layouts();

// The file name `npm pack` gives a tarball: "@vladmandic/face-api"@1.7.15 -> "vladmandic-face-api-1.7.15.tgz".
std::string npm_tarball_name(const PackageSpec& spec);

// Tarballs bigger than this are refused before hashing (the real ones are 0.6-13 MB).
inline constexpr std::uintmax_t kMaxTarballBytes = 512u << 20;

// fetch_models() with an explicit package list. Runs `npm pack` (or takes options.tarball_dir/<name>),
// checks the sha256, extracts only the members with `tar`, refuses links and unsafe paths, moves the
// files into place and rewrites manifest.json atomically after each package.
Result<FetchReport> fetch_packages(const FetchOptions& options, const std::vector<PackageLayout>& layouts);

// True when `entry` records `layout` at the same version and tarball checksum, every member is listed,
// and every listed file exists with the recorded size (and, when `verify`, the recorded sha256).
bool is_installed(const ManifestPackage& entry, const PackageLayout& layout,
                  const std::filesystem::path& model_dir, bool verify);

}  // namespace faceguard::model
