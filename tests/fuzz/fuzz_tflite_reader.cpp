// Fuzz target: the TFLite FlatBuffer reader (model/tflite_reader.hpp). Input: a whole .tflite file.
// Seeds (corpus/fuzz_tflite_reader/) are small synthetic models from tests/unit/model/tflite_builder.hpp.
// Besides not crashing, whatever parses must keep the reader's promises: every index in range, constant
// data sized to shape x type, and dequantisation of every constant either succeeding with the element count
// or failing as kModelError.
#include <cstdint>
#include <vector>

#include "model/tflite_reader.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace tfl = faceguard::model::tflite;
  auto r = tfl::parse_model(std::vector<std::uint8_t>(data, data + size));
  if (!r) {
    if (r.error().code != faceguard::ErrorCode::kModelError) __builtin_trap();
    return 0;
  }
  for (const auto& g : r->subgraphs()) {
    const auto n = static_cast<int>(g.tensors.size());
    auto in_range = [&](int t) { return t >= -1 && t < n; };
    for (int t : g.inputs) if (!in_range(t)) __builtin_trap();
    for (int t : g.outputs) if (!in_range(t)) __builtin_trap();
    for (const auto& op : g.operators) {
      for (int t : op.inputs) if (!in_range(t)) __builtin_trap();
      for (int t : op.outputs) if (!in_range(t)) __builtin_trap();
    }
    for (const auto& t : g.tensors) {
      if (!t.is_constant()) continue;
      const std::size_t es = tfl::type_size(t.type);
      if (es && t.data.size() != t.elements() * es) __builtin_trap();
      auto f = tfl::to_float(t);
      if (f && es && f->size() != t.elements()) __builtin_trap();
    }
  }
  return 0;
}
