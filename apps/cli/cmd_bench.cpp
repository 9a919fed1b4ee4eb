// `faceguard bench`: per-stage timings (median/min/max after warm-up) as a table or JSON, with face-api.js's
// timings side by side, on TF.js's pure-JS CPU backend and on its wasm backend: timed in the same run
// (--peers: scripts/reference/run.sh --timing-only in Node) or read from an earlier timings.json
// (--faceapi-timings).
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>

#include <nlohmann/json.hpp>

#include <chrono>
#include <ctime>

#include <opencv2/core/utility.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include "cli.hpp"
#include "faceguard/detector.hpp"
#include "faceguard/eval.hpp"
#include "faceguard/image.hpp"
#include "faceguard/models.hpp"

namespace faceguard::cli {

namespace {

struct BenchArgs {
  std::vector<std::string> images;
  int max_images = 20;
  int repeats = 10;
  int warmup = 2;
  int threads = 1;
  std::vector<int> batches{1, 16};
  bool json = false;
  bool no_end_to_end = false;
  std::string faceapi;
  bool peers = false;
  int peer_runs = 3;  // face-api.js's pure-JS stages take seconds each
  std::string reference_dir;
  std::string engine;  // dlib ResNet engine: "" (auto), opencv, onednn
  bool bf16 = false;
};

// Our stage -> the stage name in make_reference.js timings.json.
const std::map<std::string, std::string>& faceapi_names() {
  static const std::map<std::string, std::string> m = {
      {"detect/ssd", "ssd_detect"},
      {"detect/tiny", "tiny_detect_416"},
      {"landmarks/68", "landmarks68_per_face"},
      {"landmarks/68-tiny", "landmarks68_tiny_per_face"},
      {"embed/b1", "descriptor_per_face"},
      {"end-to-end/ssd+68+mean-face+dlib", "pipeline_ssd_landmarks_descriptors"},
  };
  return m;
}

// Targets from the engine issue: descriptor <= 12 ms/face single-threaded at batch 1, SSD <= 120 ms on a
// 1920 px photo, BlazeFace back <= 20 ms; from the accuracy-and-speed issue: end to end <= 60 ms on a
// 1920x1280 group photo on 2 cores (judge it at --threads 2; the row excludes decode, its own row).
struct Target {
  const char* stage;
  double max_ms;
};
constexpr Target kTargets[] = {{"embed/b1", 12.0}, {"detect/ssd", 120.0}, {"detect/blazeface", 20.0},
                             {"end-to-end/blazeface+keypoints+dlib", 60.0}};

Result<std::vector<std::filesystem::path>> expand_images(const BenchArgs& a) {
  std::vector<std::filesystem::path> out;
  for (const auto& s : a.images) {
    const std::filesystem::path p(s);
    std::error_code ec;
    if (std::filesystem::is_directory(p, ec)) {
      std::vector<std::filesystem::path> found;
      for (auto it = std::filesystem::recursive_directory_iterator(p, ec); !ec && it != std::filesystem::end(it);
           it.increment(ec)) {
        auto ext = it->path().extension().string();
        std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
        if (it->is_regular_file() && (ext == ".jpg" || ext == ".jpeg" || ext == ".png")) found.push_back(it->path());
      }
      std::sort(found.begin(), found.end());  // a stable, repeatable subset
      if (found.size() > static_cast<std::size_t>(a.max_images)) found.resize(static_cast<std::size_t>(a.max_images));
      out.insert(out.end(), found.begin(), found.end());
    } else if (std::filesystem::is_regular_file(p, ec)) {
      out.push_back(p);
    } else {
      return make_error(ErrorCode::kNotFound, "no such image or folder: " + s);
    }
  }
  return out;
}

std::string f1(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.2f", v);
  return b;
}

// The 1-minute load average (Linux), printed beside the timings: on a shared machine they mean little
// without it. Negative when unknown.
double load_average() {
  std::ifstream in("/proc/loadavg");
  double l = -1.0;
  if (in) in >> l;
  return l;
}

double process_cpu_ms() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) * 1e-6;
}

// A detector on OpenCV DNN (DetectorOptions::Engine::kOpenCv), beside the library's default engine (oneDNN
// where built) in the same run, timed like eval::run_bench's stages (warm-up, then repeats per image).
Result<eval::StageTiming> time_opencv_detector(const ModelPack& pack, DetectorKind kind, const std::string& stage,
                                               const std::vector<std::filesystem::path>& paths, const BenchArgs& a) {
  DetectorOptions o{.kind = kind};
  o.engine = DetectorOptions::Engine::kOpenCv;
  FG_ASSIGN_OR_RETURN(auto det, Detector::create(pack, o));
  const int saved = cv::getNumThreads();
  cv::setNumThreads(a.threads);
  std::vector<double> wall, cpu;
  for (const auto& p : paths.empty() ? pack.sample_images() : paths) {
    auto img = load_image(p);
    if (!img) {
      cv::setNumThreads(saved);
      return img.error();
    }
    for (int i = 0; i < a.warmup + a.repeats; ++i) {
      const double c0 = process_cpu_ms();
      const auto t0 = std::chrono::steady_clock::now();
      auto faces = det->detect(*img);
      const double w = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      if (i >= a.warmup) wall.push_back(w), cpu.push_back(process_cpu_ms() - c0);
    }
  }
  cv::setNumThreads(saved);
  if (wall.empty()) return make_error(ErrorCode::kNotFound, "no images to benchmark");
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  return eval::StageTiming{stage, "ms/image", static_cast<int>(wall.size()), median(wall),
                           *std::min_element(wall.begin(), wall.end()), *std::max_element(wall.begin(), wall.end()),
                           median(cpu)};
}

// Where the face-api.js reference lives: --reference-dir, else $FACEGUARD_REFERENCE_DIR (as the parity test
// and the test command use it), else <source>/build/reference.
std::filesystem::path reference_dir(const BenchArgs& a) {
  if (!a.reference_dir.empty()) return a.reference_dir;
  if (const char* e = std::getenv("FACEGUARD_REFERENCE_DIR"); e && *e) return e;
  return std::filesystem::path(FACEGUARD_SOURCE_DIR) / "build" / "reference";
}

std::filesystem::path reference_script() {
  return std::filesystem::path(FACEGUARD_SOURCE_DIR) / "scripts" / "reference" / "run.sh";
}

// What --peers needs, checked before anything is timed: the script and a reference to time against.
Status peers_ready(const BenchArgs& a) {
  const std::filesystem::path dir = reference_dir(a);
  std::error_code ec;
  if (!std::filesystem::exists(reference_script(), ec))
    return make_error(ErrorCode::kNotFound, "--peers needs the source tree's " + reference_script().string());
  if (!std::filesystem::exists(dir / "sample1.json", ec))
    return make_error(ErrorCode::kNotFound, "no face-api.js reference in " + dir.string() +
                                                ": run scripts/reference/run.sh " + dir.string() +
                                                " first (the test command does), or pass --reference-dir");
  return ok_status();
}

// --peers: face-api.js 1.7.15 in Node (its bundled TF.js CPU backend, then TF.js's wasm backend, one thread
// each: scripts/reference/lib/wasm.js) times the same stages on sample1 now, in this run, through
// scripts/reference/run.sh --timing-only (it rewrites timings.json in the reference folder). Its log goes to
// stderr. Returns the path of the timings written.
Result<std::filesystem::path> time_faceapi_now(const BenchArgs& a) {
  FG_TRY_STATUS(peers_ready(a));
  const std::filesystem::path dir = reference_dir(a);
  const std::string runs = std::to_string(std::max(1, a.peer_runs));
  const std::string dir_s = dir.string(), script_s = reference_script().string();
  std::cout.flush();
  const pid_t child = ::fork();
  if (child < 0) return make_error(ErrorCode::kInternal, "cannot start Node for --peers");
  if (child == 0) {
    if (a.json) ::dup2(STDERR_FILENO, STDOUT_FILENO);  // keep stdout the JSON document alone
    const char* argv[] = {"bash", script_s.c_str(), "--timing-only", "--runs", runs.c_str(), dir_s.c_str(), nullptr};
    ::execvp("bash", const_cast<char* const*>(argv));
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return make_error(ErrorCode::kInternal, "face-api.js timing (" + script_s + " --timing-only) failed; see its messages above");
  return dir / "timings.json";
}

int run_bench_cmd(const BenchArgs& a) {
  // The descriptor engine reaches Embedder::create (EmbedderOptions::Engine::kAuto) through the variable
  // that overrides kAuto (faceguard/embedder.hpp).
  if (!a.engine.empty() || a.bf16) {
    const std::string engine = a.engine.empty() ? "onednn" : a.engine;
    if (a.bf16 && engine != "onednn")
      return report(make_error(ErrorCode::kInvalidArgument, "--bf16 needs the onednn engine"), "bench");
    ::setenv("FACEGUARD_DLIB_ENGINE", (engine + (a.bf16 ? "-bf16" : "")).c_str(), 1);
  }
  if (a.peers && !a.faceapi.empty())
    return report(make_error(ErrorCode::kInvalidArgument, "--peers times face-api.js now; drop --faceapi-timings"), "bench");
  if (a.peers)
    if (auto ready = peers_ready(a); !ready) return report(ready.error(), "bench");
  auto images = expand_images(a);
  if (!images) return report(images.error(), "bench");
  auto pack = ModelPack::open(model_dir());
  if (!pack) return report(pack.error(), "bench");
  eval::BenchOptions opt;
  opt.images = *images;
  opt.repeats = a.repeats;
  opt.warmup = a.warmup;
  opt.threads = a.threads;
  opt.batches = a.batches;
  opt.end_to_end = !a.no_end_to_end;
  if (!globals().quiet && !a.json) std::cerr << "faceguard: benchmarking (this takes a minute)...\n";
  const double load_before = load_average();
  auto r = eval::run_bench(*pack, opt);
  if (!r) return report(r.error(), "bench");
  // The forced-OpenCV SSD and BlazeFace detectors, when the default path is not OpenCV already.
  std::string blazeface_engine = "unknown";
  for (const auto& [kind, stage] : {std::pair{DetectorKind::kSsd, std::string("detect/ssd")},
                                    std::pair{DetectorKind::kBlazeFaceBack, std::string("detect/blazeface")}}) {
    std::string engine = "unknown";
    if (auto d = Detector::create(*pack, {.kind = kind}); d) engine = (*d)->engine_name();
    if (kind == DetectorKind::kBlazeFaceBack) blazeface_engine = engine;
    if (engine == "opencv-dnn") continue;
    auto t = time_opencv_detector(*pack, kind, stage + " (opencv-dnn)", *images, a);
    if (!t) return report(t.error(), "bench");
    const std::string name = stage;
    auto at = std::find_if(r->stages.begin(), r->stages.end(), [&](const auto& s) { return s.stage == name; });
    r->stages.insert(at == r->stages.end() ? at : at + 1, *t);
  }
  const double load_after = load_average();

  // face-api.js: timed now (--peers), after this process's own stages, or an earlier run's file.
  std::string faceapi_file = a.faceapi;
  double load_after_peers = -1.0;
  if (a.peers) {
    if (!globals().quiet && !a.json) std::cerr << "faceguard: timing face-api.js in Node (a few minutes)...\n";
    auto t = time_faceapi_now(a);
    if (!t) return report(t.error(), "bench");
    faceapi_file = t->string();
    load_after_peers = load_average();
  }
  nlohmann::json faceapi;
  if (!faceapi_file.empty()) {
    std::ifstream in(faceapi_file);
    if (!in) return report(make_error(ErrorCode::kNotFound, "cannot open " + faceapi_file), "bench");
    faceapi = nlohmann::json::parse(in, nullptr, false);
    if (faceapi.is_discarded() || !faceapi.contains("stages")) {
      return report(make_error(ErrorCode::kInvalidArgument, faceapi_file + " is not a timings.json from scripts/reference"),
                    "bench");
    }
  }

  // face-api.js's stages on TF.js's CPU backend ("stages") and, from files written since the wasm backend
  // was added, on its wasm backend ("wasm": {"stages": ...}, or {"error": ...} when it could not run).
  const nlohmann::json no_stages = nlohmann::json::object();
  const nlohmann::json& cpu_stages = faceapi.is_null() ? no_stages : faceapi["stages"];
  const nlohmann::json wasm = faceapi.is_object() ? faceapi.value("wasm", nlohmann::json{}) : nlohmann::json{};
  const nlohmann::json wasm_stages = wasm.is_object() ? wasm.value("stages", nlohmann::json::object()) : no_stages;
  const bool has_wasm = !wasm_stages.empty();
  auto stage_ms = [&](const nlohmann::json& stages, const std::string& stage) -> double {
    auto it = faceapi_names().find(stage);
    if (it == faceapi_names().end() || !stages.contains(it->second)) return -1.0;
    return stages[it->second].value("median_ms", -1.0);
  };
  auto faceapi_ms = [&](const std::string& stage) { return stage_ms(cpu_stages, stage); };
  auto faceapi_wasm_ms = [&](const std::string& stage) { return stage_ms(wasm_stages, stage); };

  nlohmann::json doc;
  doc["images"] = r->images;
  doc["image_size"] = r->image_size;
  doc["faces"] = r->faces;
  doc["threads"] = r->threads;
  doc["repeats"] = a.repeats;
  doc["warmup"] = a.warmup;
  doc["loadavg_1m"] = {{"before", load_before}, {"after", load_after}};
  doc["blazeface_engine"] = blazeface_engine;
  for (const auto& s : r->stages) {
    nlohmann::json j = {{"stage", s.stage}, {"unit", s.unit}, {"samples", s.samples},
                        {"median_ms", s.median_ms}, {"min_ms", s.min_ms}, {"max_ms", s.max_ms},
                        {"cpu_median_ms", s.cpu_median_ms}};
    if (double f = faceapi_ms(s.stage); f > 0) {
      j["faceapi_median_ms"] = f;
      j["speedup_vs_faceapi"] = f / s.median_ms;
    }
    if (double f = faceapi_wasm_ms(s.stage); f > 0) {
      j["faceapi_wasm_median_ms"] = f;
      j["speedup_vs_faceapi_wasm"] = f / s.median_ms;
    }
    doc["stages"].push_back(j);
  }
  bool checks_ok = true;
  for (const auto& c : r->checks) {
    doc["checks"].push_back({{"what", c.what}, {"ok", c.ok}, {"detail", c.detail}});
    checks_ok = checks_ok && c.ok;
  }
  for (const auto& t : kTargets) {
    for (const auto& s : r->stages) {
      if (s.stage == t.stage)
        doc["targets"].push_back({{"stage", t.stage}, {"max_ms", t.max_ms}, {"median_ms", s.median_ms},
                                  {"cpu_median_ms", s.cpu_median_ms}, {"met", s.median_ms <= t.max_ms},
                                  {"met_cpu", s.cpu_median_ms <= t.max_ms}});
    }
  }
  if (!faceapi.is_null())
    doc["faceapi"] = {{"what", faceapi.value("what", "")}, {"image", faceapi.value("image", nlohmann::json{})},
                      {"same_run", a.peers}, {"file", faceapi_file}, {"loadavg_1m_after", load_after_peers}};
  if (wasm.is_object()) {
    nlohmann::json w = wasm;
    w.erase("stages");  // per stage above, as faceapi_wasm_median_ms
    doc["faceapi"]["wasm"] = w;
  }

  if (a.json) {
    std::cout << doc.dump(2) << "\n";
  } else {
    std::cout << r->images << " images (" << r->image_size << " first), " << r->faces << " faces by SSD, "
              << r->threads << " OpenCV thread(s), " << a.warmup << " warm-up + " << a.repeats << " repeats; load average "
              << f1(load_before) << " before, " << f1(load_after) << " after; detect/blazeface on "
              << blazeface_engine << "\n\n";
    std::printf("%-36s %-9s %9s %9s %9s %9s %7s", "stage", "unit", "median", "min", "max", "cpu-med", "n");
    if (!faceapi.is_null()) std::printf(" %13s %8s", "face-api/cpu", "speedup");
    if (has_wasm) std::printf(" %13s %8s", "face-api/wasm", "speedup");
    std::printf("\n");
    for (const auto& s : r->stages) {
      std::printf("%-36s %-9s %9s %9s %9s %9s %7d", s.stage.c_str(), s.unit.c_str(), f1(s.median_ms).c_str(),
                  f1(s.min_ms).c_str(), f1(s.max_ms).c_str(), f1(s.cpu_median_ms).c_str(), s.samples);
      const double f = faceapi_ms(s.stage);
      const double w = faceapi_wasm_ms(s.stage);
      if (f > 0) std::printf(" %13s %7sx", f1(f).c_str(), f1(f / s.median_ms).c_str());
      else if (w > 0) std::printf(" %13s %8s", "", "");
      if (w > 0) std::printf(" %13s %7sx", f1(w).c_str(), f1(w / s.median_ms).c_str());
      std::printf("\n");
    }
    std::fflush(stdout);
    if (!faceapi.is_null()) {
      std::cout << "\nface-api/cpu: " << faceapi.value("what", "") << " on "
                << faceapi["image"].value("width", 0) << "x" << faceapi["image"].value("height", 0)
                << (a.peers ? ", timed in this run after the stages above (load average " + f1(load_after_peers) + " after)"
                            : ", from " + faceapi_file)
                << "; it runs one thread: compare it with --threads 1\n";
      if (has_wasm) {
        const nlohmann::json check = wasm.value("check_vs_cpu", nlohmann::json::object());
        std::cout << "face-api/wasm: " << wasm.value("what", "") << ", SIMD "
                  << (wasm.value("simd", false) ? "on" : "off") << "; descriptor max |wasm - cpu| "
                  << check.value("descriptor_max_abs_diff", -1.0) << " on the same chip, "
                  << check.value("pipeline_descriptor_max_abs_diff", -1.0) << " through its whole pipeline\n";
      } else if (wasm.is_object() && wasm.contains("error")) {
        std::cout << "face-api.js on the wasm backend failed: " << wasm.value("error", "") << "\n";
      }
    }
    std::cout << "\ncpu-med: median process CPU ms per call; with 1 thread it approximates the wall time on an idle machine\n";
    std::cout << "\ntargets:\n";
    for (const auto& t : doc["targets"]) {
      std::cout << "  " << t["stage"].get<std::string>() << " <= " << f1(t["max_ms"].get<double>()) << " ms: wall "
                << f1(t["median_ms"].get<double>()) << " ms " << (t["met"].get<bool>() ? "met" : "NOT met") << ", CPU "
                << f1(t["cpu_median_ms"].get<double>()) << " ms " << (t["met_cpu"].get<bool>() ? "met" : "NOT met")
                << "\n";
    }
    std::cout << "checks:\n";
    for (const auto& c : r->checks)
      std::cout << "  " << (c.ok ? "ok     " : "FAILED ") << c.what << " (" << c.detail << ")\n";
  }
  return checks_ok ? kExitOk : kExitFailure;
}

void setup_bench(CLI::App& app) {
  auto args = std::make_shared<BenchArgs>();
  auto* b = app.add_subcommand("bench", "time each pipeline stage (median/min/max after warm-up)");
  b->add_option("--images", args->images, "images or folders (default: the model pack's sample photos)");
  b->add_option("--max-images", args->max_images, "at most this many images from each folder")->capture_default_str();
  b->add_option("--repeats", args->repeats, "timed runs per stage and input")->capture_default_str();
  b->add_option("--warmup", args->warmup, "untimed runs first")->capture_default_str();
  b->add_option("--threads", args->threads, "OpenCV threads (1 or 2)")->capture_default_str();
  b->add_option("--batch", args->batches, "descriptor batch sizes to time (e.g. --batch 1 16)")->capture_default_str();
  b->add_flag("--json", args->json, "print JSON instead of a table");
  b->add_flag("--no-end-to-end", args->no_end_to_end, "skip the whole-pipeline timing");
  b->add_option("--faceapi-timings", args->faceapi, "timings.json from scripts/reference/make_reference.js");
  b->add_flag("--peers", args->peers,
              "also time face-api.js 1.7.15 in Node (TF.js cpu and wasm backends) in this run "
              "(scripts/reference/run.sh --timing-only) and print ratios");
  b->add_option("--peer-runs", args->peer_runs, "timed runs per face-api.js stage with --peers")->capture_default_str();
  b->add_option("--reference-dir", args->reference_dir,
                "the face-api.js reference for --peers (default $FACEGUARD_REFERENCE_DIR, else <source>/build/reference)");
  b->add_option("--engine", args->engine, "dlib ResNet engine for embed/*: opencv or onednn (default: auto)")
      ->check(CLI::IsMember({"opencv", "onednn"}));
  b->add_flag("--bf16", args->bf16, "embed/* on oneDNN in bfloat16 (AMX where present)");
  b->callback([args] { set_exit(run_bench_cmd(*args)); });
}

Registrar r(80, setup_bench);

}  // namespace

}  // namespace faceguard::cli
