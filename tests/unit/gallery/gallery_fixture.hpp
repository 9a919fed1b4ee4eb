// Shared helpers of the gallery tests: a scratch folder, a master key, synthetic face-like templates.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "faceguard/gallery.hpp"

namespace faceguard::test {

inline const std::string kModel = "dlib-resnet-v1@face-api-1.7.15";
constexpr int kDim = 128;

class ScratchDir {
 public:
  ScratchDir() {
    std::string t = (std::filesystem::temp_directory_path() / "fg-gallery-XXXXXX").string();
    if (!mkdtemp(t.data())) throw std::runtime_error("mkdtemp failed");
    path_ = t;
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

inline SecretKey test_key(std::uint8_t seed = 7) {
  std::array<std::uint8_t, 32> b{};
  for (int i = 0; i < 32; ++i) b[i] = static_cast<std::uint8_t>(seed * 31 + i);
  return SecretKey{std::span<const std::uint8_t, 32>(b)};
}

inline GalleryOptions create_options(const SecretKey& key) {
  GalleryOptions o;
  o.master_key = key;
  o.create = true;
  o.model_id = kModel;
  o.dim = kDim;
  return o;
}

inline GalleryOptions open_options(const SecretKey& key) {
  GalleryOptions o;
  o.master_key = key;
  return o;
}

// Identity centres on the unit sphere and templates around them: template = centre + spread * noise, scaled to
// a dlib-like norm. spread 0.35 in 128-D gives genuine cosines around 0.89 and impostor cosines near 0.
class Synth {
 public:
  explicit Synth(unsigned seed, int dim = kDim) : rng_(seed), dim_(dim) {}
  std::vector<float> centre() {
    std::vector<float> c(static_cast<std::size_t>(dim_));
    for (auto& v : c) v = n_(rng_);
    norm(c);
    return c;
  }
  std::vector<float> around(const std::vector<float>& c, float spread = 0.35f) {
    std::vector<float> t(c.size());
    for (std::size_t i = 0; i < c.size(); ++i) t[i] = c[i] + spread * n_(rng_) / std::sqrt(static_cast<float>(dim_));
    norm(t);
    for (auto& v : t) v *= 0.95f;  // dlib descriptors are not unit vectors
    return t;
  }
  static void norm(std::vector<float>& v) {
    double s = 0;
    for (float f : v) s += static_cast<double>(f) * f;
    for (auto& f : v) f = static_cast<float>(f / std::sqrt(s));
  }

 private:
  std::mt19937 rng_;
  std::normal_distribution<float> n_{0.f, 1.f};
  int dim_;
};

inline TemplateInput tmpl(std::vector<float> v) {
  return TemplateInput{Embedding{kModel, std::move(v)}, std::string(64, 'a'), std::nullopt, "consent-1"};
}

inline std::vector<std::uint8_t> read_bytes(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline bool contains_bytes(const std::vector<std::uint8_t>& hay, const void* needle, std::size_t n) {
  if (n == 0 || hay.size() < n) return false;
  const auto* p = static_cast<const std::uint8_t*>(needle);
  return std::search(hay.begin(), hay.end(), p, p + n) != hay.end();
}

}  // namespace faceguard::test
