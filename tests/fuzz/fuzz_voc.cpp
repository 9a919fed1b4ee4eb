// Fuzz target: the PASCAL VOC annotation reader (src/pipeline/voc.cpp). The input is the XML file itself.
// Beyond not crashing, an accepted file must give finite coordinates and non-empty object names, since the
// detection evaluation relies on both.
#include <cmath>
#include <cstdint>
#include <string_view>

#include "pipeline/voc.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto r = faceguard::eval::voc::parse_annotation(text);
  if (r) {
    if (r->width < 0 || r->height < 0 || r->depth < 0) __builtin_trap();
    for (const auto& o : r->objects) {
      if (o.name.empty()) __builtin_trap();
      for (double v : {o.xmin, o.ymin, o.xmax, o.ymax})
        if (!std::isfinite(v)) __builtin_trap();
    }
  } else if (r.error().message.empty()) {
    __builtin_trap();  // a refusal must say why
  }
  return 0;
}
