#include "model/weights.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>

#include <nlohmann/json.hpp>

namespace faceguard::model {
namespace {

using nlohmann::json;

Error bad(const std::string& what) { return make_error(ErrorCode::kCorruptData, "weights manifest: " + what); }

std::string shape_str(std::span<const int> s) {
  std::string r = "[";
  for (std::size_t i = 0; i < s.size(); ++i) r += (i ? "," : "") + std::to_string(s[i]);
  return r + "]";
}

struct Spec {
  std::string name;
  std::vector<int> shape;
  std::size_t count = 0;
  std::string dtype;  // float32 | int32
  std::string qdtype; // "" | uint8 | uint16
  double scale = 1.0, min = 0.0;
  std::size_t bytes() const {
    if (qdtype == "uint8") return count;
    if (qdtype == "uint16") return count * 2;
    return count * 4;
  }
};

Result<Spec> parse_spec(const json& w, std::size_t index) {
  const std::string where = "weight #" + std::to_string(index);
  if (!w.is_object()) return bad(where + " is not an object");
  Spec s;
  if (!w.contains("name") || !w["name"].is_string()) return bad(where + " has no string 'name'");
  s.name = w["name"].get<std::string>();
  const std::string wn = where + " '" + s.name + "'";
  if (!w.contains("shape") || !w["shape"].is_array()) return bad(wn + " has no 'shape' list");
  if (w["shape"].size() > 8) return bad(wn + " has more than 8 dimensions");
  s.count = 1;
  for (const auto& d : w["shape"]) {
    if (!d.is_number_integer()) return bad(wn + " has a non-integer dimension");
    const auto v = d.get<std::int64_t>();
    if (v < 0 || v > (1 << 28)) return bad(wn + " has dimension " + std::to_string(v) + " out of range");
    s.shape.push_back(static_cast<int>(v));
    if (v != 0 && s.count > kMaxTensorElements / static_cast<std::size_t>(v))
      return bad(wn + " is too large");
    s.count *= static_cast<std::size_t>(v);
  }
  if (s.count > kMaxTensorElements) return bad(wn + " is too large");
  s.dtype = w.value("dtype", std::string("float32"));
  if (s.dtype != "float32" && s.dtype != "int32")
    return make_error(ErrorCode::kUnsupportedFormat, "weights manifest: " + wn + " has unsupported dtype '" + s.dtype + "'");
  if (w.contains("quantization")) {
    const auto& q = w["quantization"];
    if (!q.is_object()) return bad(wn + " has a malformed 'quantization'");
    if (!q.contains("dtype") || !q["dtype"].is_string()) return bad(wn + " quantization has no dtype");
    s.qdtype = q["dtype"].get<std::string>();
    if (s.qdtype != "uint8" && s.qdtype != "uint16")
      return make_error(ErrorCode::kUnsupportedFormat,
                        "weights manifest: " + wn + " uses unsupported quantization '" + s.qdtype + "'");
    if (!q.contains("scale") || !q["scale"].is_number() || !q.contains("min") || !q["min"].is_number())
      return bad(wn + " quantization needs numeric 'scale' and 'min'");
    s.scale = q["scale"].get<double>();
    s.min = q["min"].get<double>();
    if (!std::isfinite(s.scale) || !std::isfinite(s.min)) return bad(wn + " quantization is not finite");
  }
  return s;
}

Tensor decode(const Spec& s, const std::uint8_t* p) {
  Tensor t;
  t.name = s.name;
  t.shape = s.shape;
  t.data.resize(s.count);
  if (s.qdtype == "uint8") {
    for (std::size_t i = 0; i < s.count; ++i) t.data[i] = static_cast<float>(p[i] * s.scale + s.min);
  } else if (s.qdtype == "uint16") {
    for (std::size_t i = 0; i < s.count; ++i) {
      std::uint16_t q;
      std::memcpy(&q, p + 2 * i, 2);  // little-endian, as TF.js writes it
      t.data[i] = static_cast<float>(q * s.scale + s.min);
    }
  } else if (s.dtype == "int32") {
    for (std::size_t i = 0; i < s.count; ++i) {
      std::int32_t v;
      std::memcpy(&v, p + 4 * i, 4);
      t.data[i] = static_cast<float>(v);
    }
  } else {
    std::memcpy(t.data.data(), p, s.count * 4);
  }
  return t;
}

}  // namespace

Status WeightMap::add(Tensor t) {
  if (tensors_.count(t.name)) return bad("duplicate tensor name '" + t.name + "'");
  std::string key = t.name;
  tensors_.emplace(std::move(key), std::move(t));
  return {};
}

bool WeightMap::contains(std::string_view name) const { return tensors_.find(name) != tensors_.end(); }

Result<const Tensor*> WeightMap::get(std::string_view name, std::span<const int> expected) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end())
    return make_error(ErrorCode::kModelError, "weights: tensor '" + std::string(name) + "' is missing (wrong model file?)");
  if (!expected.empty() &&
      (expected.size() != it->second.shape.size() ||
       !std::equal(expected.begin(), expected.end(), it->second.shape.begin())))
    return make_error(ErrorCode::kModelError, "weights: tensor '" + std::string(name) + "' has shape " +
                                                  shape_str(it->second.shape) + ", expected " + shape_str(expected));
  return &it->second;
}

Result<WeightMap> parse_weights(std::string_view manifest_json, const ShardReader& read_shard) {
  if (manifest_json.size() > kMaxManifestBytes) return bad("file is larger than 16 MiB");
  json doc = json::parse(manifest_json.begin(), manifest_json.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return bad("not valid JSON");
  if (!doc.is_array()) return bad("top level must be a list of weight groups");
  if (doc.empty()) return bad("no weight groups");
  WeightMap map;
  for (std::size_t g = 0; g < doc.size(); ++g) {
    const auto& group = doc[g];
    const std::string gw = "group #" + std::to_string(g);
    if (!group.is_object()) return bad(gw + " is not an object");
    if (!group.contains("paths") || !group["paths"].is_array() || group["paths"].empty())
      return bad(gw + " has no 'paths'");
    if (!group.contains("weights") || !group["weights"].is_array()) return bad(gw + " has no 'weights'");
    std::vector<Spec> specs;
    std::size_t need = 0;
    for (std::size_t i = 0; i < group["weights"].size(); ++i) {
      FG_ASSIGN_OR_RETURN(Spec s, parse_spec(group["weights"][i], i));
      need += s.bytes();
      specs.push_back(std::move(s));
    }
    std::vector<std::uint8_t> bytes;
    for (const auto& p : group["paths"]) {
      if (!p.is_string()) return bad(gw + " has a non-string path");
      FG_ASSIGN_OR_RETURN(auto shard, read_shard(p.get<std::string>()));
      bytes.insert(bytes.end(), shard.begin(), shard.end());
    }
    if (bytes.size() < need)
      return bad(gw + " is truncated: the manifest describes " + std::to_string(need) + " bytes, the shards hold " +
                 std::to_string(bytes.size()));
    if (bytes.size() > need)
      return bad(gw + ": the shards hold " + std::to_string(bytes.size() - need) +
                 " bytes more than the manifest describes (mismatched manifest and .bin?)");
    std::size_t off = 0;
    for (const auto& s : specs) {
      FG_TRY_STATUS(map.add(decode(s, bytes.data() + off)));
      off += s.bytes();
    }
  }
  return map;
}

Result<std::vector<std::uint8_t>> read_file_bytes(const std::filesystem::path& path, std::size_t max_bytes) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) return make_error(ErrorCode::kNotFound, "cannot read " + path.string() + ": " + ec.message());
  if (size > max_bytes) return make_error(ErrorCode::kIoError, path.string() + " is larger than the allowed " + std::to_string(max_bytes) + " bytes");
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(ErrorCode::kIoError, "cannot open " + path.string());
  std::vector<std::uint8_t> data(static_cast<std::size_t>(size));
  if (size && !in.read(reinterpret_cast<char*>(data.data()), static_cast<std::streamsize>(size)))
    return make_error(ErrorCode::kIoError, "short read on " + path.string());
  return data;
}

Result<WeightMap> load_weights(const std::filesystem::path& manifest_path) {
  FG_ASSIGN_OR_RETURN(auto text, read_file_bytes(manifest_path, kMaxManifestBytes));
  const auto dir = manifest_path.parent_path();
  auto reader = [&dir](const std::string& rel) -> Result<std::vector<std::uint8_t>> {
    const std::filesystem::path p(rel);
    if (p.is_absolute() || rel.find("..") != std::string::npos || rel.empty())
      return bad("shard path '" + rel + "' must be a plain relative file name");
    return read_file_bytes(dir / p);
  };
  auto r = parse_weights(std::string_view(reinterpret_cast<const char*>(text.data()), text.size()), reader);
  if (!r) return Error{r.error().code, manifest_path.filename().string() + ": " + r.error().message};
  return r;
}

}  // namespace faceguard::model
