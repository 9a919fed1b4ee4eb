// Helpers shared by the test binaries: where the models and ../shared/data are, and how to skip.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>

#include "faceguard/models.hpp"

namespace faceguard::test {

inline std::filesystem::path source_dir() { return FACEGUARD_SOURCE_DIR; }

// ../shared/data beside the checkout, or $FACEGUARD_SHARED_DATA.
inline std::optional<std::filesystem::path> shared_data() {
  if (const char* e = std::getenv("FACEGUARD_SHARED_DATA"); e && *e) {
    if (std::filesystem::is_directory(e)) return std::filesystem::path(e);
    return std::nullopt;
  }
  auto p = source_dir().parent_path() / "shared" / "data";
  if (std::filesystem::is_directory(p)) return p;
  return std::nullopt;
}

// The fetched model pack. When absent the test is skipped, unless FACEGUARD_REQUIRE_MODELS=1
// (set by scripts/test.sh after fetching), in which case it fails.
inline bool require_models_env() {
  const char* e = std::getenv("FACEGUARD_REQUIRE_MODELS");
  return e && std::string(e) == "1";
}

}  // namespace faceguard::test

// In a TEST body: FG_MODELS_OR_SKIP(pack);  -> const faceguard::ModelPack& pack
#define FG_MODELS_OR_SKIP(var)                                                                     \
  auto var##_result_ = faceguard::ModelPack::open(faceguard::default_model_dir());                 \
  if (!var##_result_) {                                                                            \
    if (faceguard::test::require_models_env()) FAIL() << var##_result_.error().message;            \
    GTEST_SKIP() << "models not fetched (" << var##_result_.error().message                        \
                 << "); run `faceguard models fetch`";                                              \
  }                                                                                                \
  const faceguard::ModelPack& var = *var##_result_

// In a TEST body: FG_SHARED_DATA_OR_SKIP(dir); -> std::filesystem::path dir
#define FG_SHARED_DATA_OR_SKIP(var)                                                  \
  auto var##_opt_ = faceguard::test::shared_data();                                  \
  if (!var##_opt_) GTEST_SKIP() << "../shared/data is absent: skipping real-data test"; \
  const std::filesystem::path var = *var##_opt_
