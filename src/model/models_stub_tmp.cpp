// TEMPORARY until models.cpp lands (owned by the model-fetch helper). Delete when models.cpp exists.
#include "faceguard/models.hpp"
#include <cstdlib>
namespace faceguard {
std::filesystem::path default_model_dir() {
  if (const char* e = std::getenv("FACEGUARD_MODELS"); e && *e) return e;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return std::filesystem::path(x) / "faceguard" / "models";
  const char* h = std::getenv("HOME");
  return std::filesystem::path(h ? h : ".") / ".cache" / "faceguard" / "models";
}
}
