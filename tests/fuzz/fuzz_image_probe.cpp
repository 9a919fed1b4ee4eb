// Fuzz target: the image header parsers (probe_image, the full JPEG/PNG/WebP walk of scan_header), the
// EXIF orientation parser (TIFF IFD reader), and decode_image behind them with a small pixel limit.
// Invariants checked: a probe that succeeds gives positive sizes; the EXIF span lies inside the input;
// orientation is 1..8; a decode that succeeds is 8-bit BGR within the pixel limit; nothing throws.
#include <cstdint>
#include <span>

#include "core/image_probe.hpp"
#include "core/tiff_ifd.hpp"
#include "faceguard/image.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::uint8_t> bytes(data, size);
  if (auto info = faceguard::probe_image(bytes)) {
    if (info->width <= 0 || info->height <= 0 || info->format.empty()) __builtin_trap();
  }
  if (auto scan = faceguard::image_detail::scan_header(bytes, true)) {
    const auto& e = scan->exif;
    if (!e.empty() && (e.data() < data || e.data() + e.size() > data + size)) __builtin_trap();
    const int o = faceguard::image_detail::exif_orientation(e);
    if (o < 1 || o > 8) __builtin_trap();
  }
  // The input taken as a bare EXIF block, the way a JPEG APP1 payload reaches the parser.
  const int o = faceguard::image_detail::exif_orientation(bytes);
  if (o < 1 || o > 8) __builtin_trap();

  faceguard::DecodeOptions opt;
  opt.max_pixels = 1u << 16;  // keeps each decode cheap; the limit itself is part of what is tested
  if (auto img = faceguard::decode_image(bytes, opt)) {
    if (img->type() != CV_8UC3 || img->empty()) __builtin_trap();
    if (static_cast<std::uint64_t>(img->cols) * static_cast<std::uint64_t>(img->rows) > opt.max_pixels) __builtin_trap();
  }
  return 0;
}
