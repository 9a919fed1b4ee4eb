// The `faceguard` binary end to end: detect / embed / compare / demo on the model pack's sample photos,
// and on generated bad files (missing, 0 bytes, not an image, truncated JPEG, huge dimensions, no face,
// several faces where one is required): documented exit codes, clear messages, JSON fields.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include "test_support.hpp"

namespace faceguard {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct CliRun {
  int rc = -1;
  std::string out, err;
};

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("faceguard-cli-test-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    // Every face command passes the policy decision point first: run under a deployment profile the policy
    // allows (the demo's household photo library, plus a consented gallery so that `embed`, the law's
    // "enrol", is allowed too), with the audit trail, its key and the consent registry in the test folder
    // ($XDG_STATE_HOME/faceguard) rather than the user's state folder.
    const fs::path profile = write("profile.yaml",
                                   "format: 1\n"
                                   "context:\n"
                                   "  operator: {id: cli-test, org: household, role: individual}\n"
                                   "  jurisdiction: {country: DE, city: berlin}\n"
                                   "  location: {type: private_premises}\n"
                                   "  purpose: photo_organisation\n"
                                   "  timing: retrospective\n"
                                   "  source: still\n"
                                   "  targeting: targeted\n"
                                   "  gallery: {id: cli-test, provenance: consented}\n");
    ::setenv("FACEGUARD_PROFILE", profile.c_str(), 1);
    ::setenv("XDG_STATE_HOME", (dir_ / "state").c_str(), 1);
    for (const char* v : {"FACEGUARD_AUDIT_LOG", "FACEGUARD_AUDIT_KEY", "FACEGUARD_CONSENT_DB"}) ::unsetenv(v);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  CliRun run(const std::vector<std::string>& args) const {
    std::string cmd = quote(FACEGUARD_CLI);
    for (const auto& a : args) cmd += " " + quote(a);
    const fs::path out = dir_ / "stdout.txt", err = dir_ / "stderr.txt";
    cmd += " >" + quote(out.string()) + " 2>" + quote(err.string());
    const int status = std::system(cmd.c_str());
    CliRun r;
    r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    r.out = slurp(out);
    r.err = slurp(err);
    return r;
  }

  static json parse(const CliRun& r) {
    try {
      return json::parse(r.out);
    } catch (const std::exception& e) {
      ADD_FAILURE() << "stdout is not JSON: " << e.what() << "\n" << r.out;
      return json::object();
    }
  }

  fs::path write(const std::string& name, const std::string& bytes) const {
    const fs::path p = dir_ / name;
    std::ofstream(p, std::ios::binary) << bytes;
    return p;
  }

  // A sample photo whose SOF0 header claims 65000 x 65000 pixels (4.2 Gpx): must be refused from the header.
  fs::path huge_jpeg(const fs::path& sample) const {
    std::string b = slurp(sample);
    for (std::size_t i = 2; i + 9 < b.size(); ++i) {
      const auto m = static_cast<unsigned char>(b[i + 1]);
      if (static_cast<unsigned char>(b[i]) == 0xFF && (m == 0xC0 || m == 0xC1 || m == 0xC2)) {
        b[i + 5] = b[i + 7] = static_cast<char>(0xFD);  // 0xFDE8 = 65000
        b[i + 6] = b[i + 8] = static_cast<char>(0xE8);
        return write("huge.jpg", b);
      }
    }
    ADD_FAILURE() << "no SOF marker in " << sample;
    return {};
  }

  // A plain gradient: a valid image with no face in it.
  fs::path faceless_png() const {
    cv::Mat img(240, 320, CV_8UC3);
    for (int y = 0; y < img.rows; ++y)
      for (int x = 0; x < img.cols; ++x) img.at<cv::Vec3b>(y, x) = cv::Vec3b(x % 256, y % 256, 128);
    const fs::path p = dir_ / "noface.png";
    cv::imwrite(p.string(), img);
    return p;
  }

  fs::path dir_;
};

// One sample photo by name; the pack ships sample1..6.jpg (3-6 faces each).
fs::path sample(const ModelPack& pack, const std::string& name) {
  for (const auto& p : pack.sample_images())
    if (p.filename() == name) return p;
  return {};
}

#define FG_SAMPLES_OR_SKIP(pack)                                   \
  FG_MODELS_OR_SKIP(pack);                                         \
  if (sample(pack, "sample1.jpg").empty()) GTEST_SKIP() << "no sample photos in the model pack"

TEST_F(CliTest, EveryCommandHasHelp) {
  for (const char* c : {"detect", "embed", "compare", "demo"}) {
    const CliRun r = run({c, "--help"});
    EXPECT_EQ(r.rc, 0) << c;
    EXPECT_NE(r.out.find("Usage:"), std::string::npos) << c;
    EXPECT_NE(r.out.find("Exit codes"), std::string::npos) << c << " --help should state the exit codes";
  }
  // Bad option values are usage errors (2), not crashes.
  EXPECT_EQ(run({"compare", "a.jpg", "b.jpg", "--threshold", "nan"}).rc, 2);
  EXPECT_EQ(run({"compare", "a.jpg", "b.jpg", "--threshold", "-1"}).rc, 2);
  EXPECT_EQ(run({"detect", "a.jpg", "--detector", "bogus"}).rc, 2);
  EXPECT_EQ(run({"detect", "a.jpg", "--min-score", "1.5"}).rc, 2);
  EXPECT_EQ(run({"detect"}).rc, 2);
}

TEST_F(CliTest, DetectJsonOnSamplePhoto) {
  FG_SAMPLES_OR_SKIP(pack);
  const fs::path s1 = sample(pack, "sample1.jpg");
  const CliRun r = run({"detect", s1.string(), "--json", "--landmarks"});
  ASSERT_EQ(r.rc, 0) << r.err;
  const json j = parse(r);
  ASSERT_EQ(j.at("images").size(), 1u);
  const json& im = j["images"][0];
  EXPECT_EQ(im.at("path"), s1.string());
  const int w = im.at("width"), h = im.at("height");
  const json& faces = im.at("faces");
  EXPECT_GE(faces.size(), 3u) << "sample1.jpg is a group photo";
  float prev = 2.f;
  for (std::size_t i = 0; i < faces.size(); ++i) {
    const json& f = faces[i];
    EXPECT_EQ(f.at("index"), i);
    const float score = f.at("score");
    EXPECT_GT(score, 0.f);
    EXPECT_LE(score, prev) << "faces are sorted by score";
    prev = score;
    const json& b = f.at("box");
    EXPECT_GE(b.at("x").get<float>(), -1.f);
    EXPECT_LE(b.at("x").get<float>() + b.at("width").get<float>(), w + 1.f);
    EXPECT_LE(b.at("y").get<float>() + b.at("height").get<float>(), h + 1.f);
    EXPECT_GT(b.at("width").get<float>(), 20.f);
    EXPECT_EQ(f.at("landmark_scheme"), "ibug68");
    ASSERT_EQ(f.at("landmarks").size(), 68u);
    // The nose tip (iBUG point 30) lies inside the box.
    const float nx = f["landmarks"][30][0], ny = f["landmarks"][30][1];
    EXPECT_GT(nx, b["x"].get<float>());
    EXPECT_LT(nx, b["x"].get<float>() + b["width"].get<float>());
    EXPECT_GT(ny, b["y"].get<float>());
    EXPECT_LT(ny, b["y"].get<float>() + b["height"].get<float>());
  }
}

TEST_F(CliTest, DetectDrawsOneFilePerImageAndContinuesPastBadOnes) {
  FG_SAMPLES_OR_SKIP(pack);
  const fs::path s1 = sample(pack, "sample1.jpg"), s2 = sample(pack, "sample2.jpg");
  const fs::path missing = dir_ / "missing.jpg";
  const CliRun r = run({"detect", s1.string(), missing.string(), s2.string(), "--detector", "blazeface", "--draw",
                     (dir_ / "out.png").string(), "--json"});
  EXPECT_EQ(r.rc, 3) << "the exit status is that of the first failure";
  EXPECT_NE(r.err.find("missing.jpg"), std::string::npos) << r.err;
  const json j = parse(r);
  ASSERT_EQ(j.at("images").size(), 3u);
  EXPECT_TRUE(j["images"][1].contains("error"));
  EXPECT_EQ(j["images"][1]["error"]["code"], "not_found");
  for (int n : {1, 3}) {
    const fs::path drawn = dir_ / ("out-" + std::to_string(n) + ".png");
    ASSERT_TRUE(fs::exists(drawn)) << drawn;
    const cv::Mat img = cv::imread(drawn.string());
    EXPECT_EQ(img.cols, j["images"][n - 1]["width"].get<int>());
    EXPECT_FALSE(j["images"][n - 1]["faces"].empty());
    EXPECT_EQ(j["images"][n - 1]["faces"][0]["landmark_scheme"], "blazeface6");
  }
  EXPECT_FALSE(fs::exists(dir_ / "out-2.png"));
}

TEST_F(CliTest, EmbedGivesTemplatesWithModelIdAndBox) {
  FG_SAMPLES_OR_SKIP(pack);
  const fs::path s1 = sample(pack, "sample1.jpg");
  const CliRun r = run({"embed", s1.string(), "--json", "--face", "1"});
  ASSERT_EQ(r.rc, 0) << r.err;
  const json j = parse(r);
  ASSERT_EQ(j.at("faces").size(), 1u);
  const json& f = j["faces"][0];
  EXPECT_EQ(f.at("index"), 1);
  EXPECT_TRUE(f.at("box").contains("width"));
  const json& e = f.at("embedding");
  EXPECT_EQ(e.at("model_id").get<std::string>().rfind("dlib", 0), 0u);
  ASSERT_EQ(e.at("values").size(), 128u);
  double norm = 0;
  for (const auto& v : e["values"]) norm += v.get<double>() * v.get<double>();
  EXPECT_GT(norm, 0.01);  // a real descriptor, not zeros
  EXPECT_TRUE(std::isfinite(norm));

  // All faces by default; the same face gets the same template.
  const CliRun all = run({"embed", s1.string(), "--json"});
  ASSERT_EQ(all.rc, 0) << all.err;
  const json ja = parse(all);
  ASSERT_GE(ja.at("faces").size(), 3u);
  EXPECT_EQ(ja.at("face_count"), ja["faces"].size());
  const auto& v1 = ja["faces"][1]["embedding"]["values"];
  for (std::size_t k = 0; k < 128; ++k) EXPECT_NEAR(v1[k].get<double>(), e["values"][k].get<double>(), 1e-5);
}

TEST_F(CliTest, EmbedAndCompareRefuseFacelessAndCrowdedImages) {
  FG_SAMPLES_OR_SKIP(pack);
  const fs::path s1 = sample(pack, "sample1.jpg");
  const fs::path none = faceless_png();
  CliRun r = run({"embed", none.string()});
  EXPECT_EQ(r.rc, 5);
  EXPECT_NE(r.err.find("no face found in " + none.string()), std::string::npos) << r.err;
  r = run({"compare", s1.string(), none.string()});
  EXPECT_EQ(r.rc, 5);
  EXPECT_NE(r.err.find("no face found in " + none.string()), std::string::npos) << r.err;
  r = run({"embed", s1.string(), "--single"});
  EXPECT_EQ(r.rc, 5);
  EXPECT_NE(r.err.find("exactly one"), std::string::npos) << r.err;
  r = run({"compare", s1.string(), s1.string(), "--single"});
  EXPECT_EQ(r.rc, 5);
  r = run({"embed", s1.string(), "--face", "99"});
  EXPECT_EQ(r.rc, 5);
  EXPECT_NE(r.err.find("no face #99"), std::string::npos) << r.err;
}

TEST_F(CliTest, BadFilesGiveClearMessagesAndDocumentedCodes) {
  FG_SAMPLES_OR_SKIP(pack);
  const fs::path s1 = sample(pack, "sample1.jpg");
  const std::string bytes = slurp(s1);
  struct Case {
    fs::path path;
    int rc;
    const char* says;
  };
  const std::vector<Case> cases{
      {dir_ / "missing.jpg", 3, "no such file"},
      {write("empty.jpg", ""), 4, "empty"},
      {write("text.jpg", "this is not an image\n"), 4, "not an image"},
      {write("truncated.jpg", bytes.substr(0, bytes.size() / 3)), 4, "truncated"},
      {huge_jpeg(s1), 4, "65000"},
  };
  for (const auto& c : cases) {
    for (const std::vector<std::string>& args :
         {std::vector<std::string>{"detect", c.path.string()}, {"embed", c.path.string()},
          {"compare", s1.string(), c.path.string()}, {"compare", c.path.string(), s1.string(), "--json"}}) {
      const CliRun r = run(args);
      EXPECT_EQ(r.rc, c.rc) << args[0] << " " << c.path << ": " << r.err;
      EXPECT_NE(r.err.find(c.says), std::string::npos) << args[0] << " " << c.path << ": " << r.err;
      EXPECT_NE(r.err.find(c.path.filename().string()), std::string::npos) << "names the file: " << r.err;
      EXPECT_TRUE(r.out.empty()) << "nothing on stdout on failure: " << r.out;
    }
  }
}

TEST_F(CliTest, CompareStatesTheFaceUsedAndDecides) {
  FG_SAMPLES_OR_SKIP(pack);
  const fs::path s1 = sample(pack, "sample1.jpg"), s2 = sample(pack, "sample2.jpg");
  // The same face against itself.
  CliRun r = run({"compare", s1.string(), s1.string(), "--face-a", "0", "--face-b", "0", "--json", "--exit-status"});
  ASSERT_EQ(r.rc, 0) << r.err;
  json j = parse(r);
  EXPECT_LT(j.at("comparison").at("distance").get<float>(), 1e-4f);
  EXPECT_EQ(j["comparison"]["same"], true);
  EXPECT_FLOAT_EQ(j["comparison"]["threshold"].get<float>(), 0.6f);
  EXPECT_EQ(j.at("metric"), "euclidean");
  EXPECT_EQ(j.at("a").at("face").at("index"), 0);
  // Two people in one group photo are different people.
  r = run({"compare", s1.string(), s1.string(), "--face-a", "0", "--face-b", "1", "--exit-status"});
  EXPECT_EQ(r.rc, 10) << r.out << r.err;
  EXPECT_NE(r.out.find("DIFFERENT"), std::string::npos) << r.out;
  // Without --exit-status a completed comparison exits 0 either way.
  EXPECT_EQ(run({"compare", s1.string(), s1.string(), "--face-a", "0", "--face-b", "1"}).rc, 0);
  // Default: the largest face, and the output says so.
  r = run({"compare", s1.string(), s2.string()});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.out.find("largest of"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("distance"), std::string::npos) << r.out;
  r = run({"compare", s1.string(), s2.string(), "--json"});
  j = parse(r);
  EXPECT_NE(j.at("a").at("chosen").get<std::string>().find("largest"), std::string::npos);
  const float sim = j.at("comparison").at("similarity");
  EXPECT_GE(sim, 0.f);
  EXPECT_LE(sim, 1.f);
}

TEST_F(CliTest, CompareAllCoversEveryPair) {
  FG_SAMPLES_OR_SKIP(pack);
  const fs::path s1 = sample(pack, "sample1.jpg");
  const CliRun r = run({"compare", s1.string(), s1.string(), "--all", "--json"});
  ASSERT_EQ(r.rc, 0) << r.err;
  const json j = parse(r);
  const std::size_t n = j.at("a").at("face_count");
  ASSERT_GE(n, 3u);
  ASSERT_EQ(j.at("pairs").size(), n * n);
  for (const auto& p : j["pairs"]) {
    // Each face matches itself and nobody else in its own photo.
    EXPECT_EQ(p.at("same").get<bool>(), p.at("face_a") == p.at("face_b")) << p.dump();
  }
  EXPECT_LT(j.at("best").at("distance").get<float>(), 1e-4f);
}

TEST_F(CliTest, CompareWithTheFusionUsesBothModelsAndTheStoredCalibration) {
  FG_SAMPLES_OR_SKIP(pack);
  const fs::path s1 = sample(pack, "sample1.jpg");
  const CliRun r = run({"compare", s1.string(), s1.string(), "--all", "--model", "fusion", "--flip", "--json"});
  ASSERT_EQ(r.rc, 0) << r.err;
  const json j = parse(r);
  EXPECT_EQ(j.at("model_id").get<std::string>().rfind("fusion:dlib-resnet29@", 0), 0u) << j.dump();
  EXPECT_EQ(j.at("metric"), "fusion");
  const std::size_t n = j.at("a").at("face_count");
  ASSERT_GE(n, 3u);
  for (const auto& p : j.at("pairs")) {
    EXPECT_EQ(p.at("same").get<bool>(), p.at("face_a") == p.at("face_b")) << p.dump();
    EXPECT_NEAR(p.at("threshold").get<float>(), 0.3976f, 1e-3f) << p.dump();
    // The similarity of a fused pair is p(same), the distance 1 - p.
    EXPECT_NEAR(p.at("similarity").get<float>() + p.at("distance").get<float>(), 1.f, 1e-5f) << p.dump();
  }
}

TEST_F(CliTest, DemoWritesAnnotatedPhotosAndReport) {
  FG_SAMPLES_OR_SKIP(pack);
  const fs::path out = dir_ / "demo";
  const CliRun r = run({"demo", "--out", out.string()});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.out.find("faceguard demo:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("report.json"), std::string::npos) << r.out;
  const json j = json::parse(slurp(out / "report.json"));
  const auto samples = pack.sample_images();
  ASSERT_EQ(j.at("images").size(), samples.size());
  std::size_t faces = 0;
  for (const auto& im : j["images"]) {
    EXPECT_FALSE(im.contains("error")) << im.dump();
    ASSERT_TRUE(im.contains("annotated"));
    const cv::Mat a = cv::imread(im["annotated"].get<std::string>());
    EXPECT_EQ(a.cols, im.at("width").get<int>());
    EXPECT_GE(im.at("faces").size(), 3u) << im["name"];  // every sample photo is a group photo
    for (const auto& f : im["faces"]) {
      EXPECT_EQ(f.at("id").get<std::string>().rfind(im["name"].get<std::string>() + "#", 0), 0u);
      EXPECT_EQ(f.at("landmarks").size(), 68u);
    }
    faces += im["faces"].size();
  }
  EXPECT_EQ(j.at("summary").at("faces"), faces);
  ASSERT_EQ(j.at("matches").size(), faces) << "one best-match entry per face";
  for (const auto& m : j["matches"]) {
    const json& b = m.at("best_match");
    ASSERT_TRUE(b.is_object());
    // The best match lies in another photo.
    const std::string a = m["face"], other = b.at("face");
    EXPECT_NE(a.substr(0, a.find('#')), other.substr(0, other.find('#')));
    EXPECT_EQ(b.at("same").get<bool>(), b.at("distance").get<float>() < j["models"]["threshold"].get<float>());
  }
}

TEST_F(CliTest, DemoOnChosenImagesReportsFailuresAndKeepsGoing) {
  FG_SAMPLES_OR_SKIP(pack);
  const fs::path out = dir_ / "demo2";
  const fs::path bad = write("broken.jpg", "not a jpeg");
  const CliRun r = run({"demo", "--out", out.string(), "--images", sample(pack, "sample3.jpg").string(), bad.string(),
                     "--embeddings"});
  EXPECT_EQ(r.rc, 4) << r.err;
  EXPECT_NE(r.err.find("broken.jpg"), std::string::npos) << r.err;
  const json j = json::parse(slurp(out / "report.json"));
  ASSERT_EQ(j.at("images").size(), 2u);
  EXPECT_EQ(j["images"][1].at("error").at("code"), "unsupported_format");
  ASSERT_FALSE(j["images"][0]["faces"].empty());
  EXPECT_EQ(j["images"][0]["faces"][0].at("embedding").at("values").size(), 128u);
  // A single usable photo: nobody to match against.
  for (const auto& m : j["matches"]) EXPECT_TRUE(m.at("best_match").is_null());
}

// bench: one quick run as JSON; the OpenCV DNN detectors are timed beside the default engine in the same run
// and every stage gives a positive time. --peers without a face-api.js reference is a clear error (exit 3,
// not found), not a crash or a silent table without peers.
TEST_F(CliTest, BenchTimesTheStagesAndTheOpenCvDetectorsInOneRun) {
  FG_SAMPLES_OR_SKIP(pack);
  const std::string s1 = sample(pack, "sample1.jpg").string();
  // face-api.js figures as scripts/reference/make_reference.js writes them: the CPU backend's under "stages",
  // the wasm backend's under "wasm" (made-up times: this checks that bench reads both and takes the ratios).
  const fs::path faceapi = write("timings.json", R"({"what": "cpu", "image": {"width": 1920, "height": 1280},
    "stages": {"descriptor_per_face": {"median_ms": 1000.0}, "ssd_detect": {"median_ms": 18000.0}},
    "wasm": {"what": "wasm", "backend": "wasm", "threads": 1, "stages": {"descriptor_per_face": {"median_ms": 80.0}},
             "check_vs_cpu": {"descriptor_max_abs_diff": 2.4e-7}}})");
  CliRun r = run({"bench", "--images", s1, "--repeats", "1", "--warmup", "0", "--batch", "1", "--no-end-to-end", "--json",
                  "--faceapi-timings", faceapi.string()});
  ASSERT_EQ(r.rc, 0) << r.err << r.out;
  const json j = parse(r);
  EXPECT_EQ(j.at("faceapi").at("wasm").value("backend", ""), "wasm") << j.at("faceapi");
  EXPECT_FALSE(j.at("faceapi").at("wasm").contains("stages"));
  for (const auto& st : j.at("stages")) {
    const std::string name = st.at("stage").get<std::string>();
    if (name == "embed/b1") {
      EXPECT_DOUBLE_EQ(st.at("faceapi_median_ms").get<double>(), 1000.0);
      EXPECT_DOUBLE_EQ(st.at("faceapi_wasm_median_ms").get<double>(), 80.0);
      EXPECT_NEAR(st.at("speedup_vs_faceapi_wasm").get<double>() * st.at("median_ms").get<double>(), 80.0, 1e-6);
    } else if (name == "detect/ssd") {
      EXPECT_DOUBLE_EQ(st.at("faceapi_median_ms").get<double>(), 18000.0);
      EXPECT_FALSE(st.contains("faceapi_wasm_median_ms")) << "no wasm SSD figure in the file";
    }
  }
  std::set<std::string> stages;
  for (const auto& st : j.at("stages")) {
    stages.insert(st.at("stage").get<std::string>());
    EXPECT_GT(st.at("median_ms").get<double>(), 0.0) << st;
  }
  for (const char* want : {"decode", "detect/ssd", "detect/blazeface", "landmarks/68", "embed/b1"})
    EXPECT_TRUE(stages.count(want)) << want;
  // On oneDNN by default (where built), so the OpenCV DNN rows are there too.
  if (j.value("blazeface_engine", "") != "opencv-dnn") {
    EXPECT_TRUE(stages.count("detect/blazeface (opencv-dnn)"));
    EXPECT_TRUE(stages.count("detect/ssd (opencv-dnn)"));
  }
  for (const auto& c : j.at("checks")) EXPECT_TRUE(c.at("ok").get<bool>()) << c;

  r = run({"bench", "--images", s1, "--repeats", "1", "--warmup", "0", "--no-end-to-end", "--peers", "--reference-dir",
           (dir_ / "no-reference").string()});
  EXPECT_EQ(r.rc, 3) << r.err;
  EXPECT_NE(r.err.find("no face-api.js reference"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace faceguard
