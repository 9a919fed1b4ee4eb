// Fuzz target: the TF.js weights-manifest parser. Input layout: the first 4 bytes (little-endian) give
// the manifest length; the manifest follows, then the bytes of the single shard.
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "model/weights.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 4) return 0;
  std::uint32_t n;
  std::memcpy(&n, data, 4);
  const std::size_t mlen = std::min<std::size_t>(n, size - 4);
  std::string manifest(reinterpret_cast<const char*>(data + 4), mlen);
  std::vector<std::uint8_t> shard(data + 4 + mlen, data + size);
  auto reader = [&](const std::string&) -> faceguard::Result<std::vector<std::uint8_t>> { return shard; };
  auto r = faceguard::model::parse_weights(manifest, reader);
  if (r) {
    for (const auto& [name, t] : r->tensors()) {
      std::size_t count = 1;
      for (int d : t.shape) count *= static_cast<std::size_t>(d);
      if (count != t.data.size()) __builtin_trap();  // the parser must keep shape and data consistent
    }
  }
  return 0;
}
