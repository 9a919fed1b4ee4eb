// TF.js weights manifests (`*-weights_manifest.json` + `.bin` shards), as shipped by face-api.
//
// Format: a JSON list of groups {paths:[shard...], weights:[{name, shape, dtype, quantization?}]}.
// Within a group the tensors lie back to back across the concatenated shards, in manifest order.
// Quantized tensors: {quantization:{dtype:"uint8"|"uint16", scale, min}} -> value = q * scale + min.
// Everything is validated: element counts, byte counts per group, duplicate names, dtype names.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "faceguard/result.hpp"

namespace faceguard::model {

struct Tensor {
  std::string name;
  std::vector<int> shape;  // as stored (TF layout: conv filters HWIO)
  std::vector<float> data;
  std::size_t elements() const { return data.size(); }
};

class WeightMap {
 public:
  // kModelError naming the tensor if absent or if its shape differs from `expected` (when given).
  Result<const Tensor*> get(std::string_view name, std::span<const int> expected_shape = {}) const;
  bool contains(std::string_view name) const;
  std::size_t size() const { return tensors_.size(); }
  const std::map<std::string, Tensor, std::less<>>& tensors() const { return tensors_; }
  Status add(Tensor t);

 private:
  std::map<std::string, Tensor, std::less<>> tensors_;
};

// Reads a shard named in the manifest (relative path as written there).
using ShardReader = std::function<Result<std::vector<std::uint8_t>>(const std::string& path)>;

inline constexpr std::size_t kMaxManifestBytes = 16u << 20;
inline constexpr std::size_t kMaxTensorElements = 1u << 28;

Result<WeightMap> parse_weights(std::string_view manifest_json, const ShardReader& read_shard);
// Shards are looked up beside the manifest; a path escaping that folder is refused.
Result<WeightMap> load_weights(const std::filesystem::path& manifest_path);

Result<std::vector<std::uint8_t>> read_file_bytes(const std::filesystem::path& path,
                                                  std::size_t max_bytes = std::size_t(1) << 31);

}  // namespace faceguard::model
