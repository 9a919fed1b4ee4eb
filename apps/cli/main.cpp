#include <algorithm>
#include <cstdlib>

#include "cli.hpp"
#include "faceguard/models.hpp"

namespace faceguard::cli {

int exit_code_for(ErrorCode code) {
  switch (code) {
    case ErrorCode::kOk: return kExitOk;
    case ErrorCode::kInvalidArgument: return kExitInvalidData;
    case ErrorCode::kNotFound:
    case ErrorCode::kIoError: return kExitNotFound;
    case ErrorCode::kCorruptData: return kExitInvalidData;
    case ErrorCode::kUnsupportedFormat:
    case ErrorCode::kImageTooLarge: return kExitBadImage;
    case ErrorCode::kNoFace:
    case ErrorCode::kMultipleFaces: return kExitNoFace;
    case ErrorCode::kModelError: return kExitModel;
    case ErrorCode::kPolicyDenied: return kExitPolicyDenied;
    case ErrorCode::kConflict: return kExitConflict;
    case ErrorCode::kPermissionDenied: return kExitPermission;
    case ErrorCode::kUnavailable:
    case ErrorCode::kInternal: return kExitFailure;
  }
  return kExitFailure;
}

int report(const Error& error, const std::string& what) {
  std::cerr << "faceguard: " << (what.empty() ? "" : what + ": ") << error.message << " ["
            << to_string(error.code) << "]\n";
  return exit_code_for(error.code);
}

GlobalOptions& globals() {
  static GlobalOptions g;
  return g;
}

std::vector<std::pair<int, Setup>>& registry() {
  static std::vector<std::pair<int, Setup>> r;
  return r;
}

Registrar::Registrar(int order, Setup setup) { registry().emplace_back(order, std::move(setup)); }

namespace {
int g_exit = kExitOk;
}
void set_exit(int code) { g_exit = code; }
int exit_status() { return g_exit; }

std::string model_dir() {
  if (!globals().model_dir.empty()) return globals().model_dir;
  return default_model_dir().string();
}

}  // namespace faceguard::cli

int main(int argc, char** argv) {
  using namespace faceguard::cli;
  CLI::App app{"faceguard - face recognition that is fast, accurate and lawful by construction"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "faceguard 0.1.0");
  app.add_option("--models", globals().model_dir, "model cache folder (default: $FACEGUARD_MODELS or ~/.cache/faceguard/models)");
  auto& reg = registry();
  std::stable_sort(reg.begin(), reg.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  for (auto& [order, setup] : reg) setup(app);
  install_policy_gates(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::RuntimeError& e) {
    return e.get_exit_code();  // a command stopped itself (e.g. a policy denial); it reported already
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return kExitUsage;
  } catch (const std::exception& e) {
    std::cerr << "faceguard: internal error: " << e.what() << "\n";
    return kExitFailure;
  }
  return exit_status();
}
