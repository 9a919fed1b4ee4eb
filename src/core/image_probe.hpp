// Header parsing for probe_image() and decode_image(): dimensions without decoding, where the EXIF block
// is, and whether a JPEG/PNG reaches its end marker (libjpeg "decodes" a truncated JPEG by filling the
// missing part with grey, so truncation must be found before the decoder runs).
#pragma once

#include <cstdint>
#include <span>

#include "faceguard/image.hpp"

namespace faceguard::image_detail {

enum class Format { kJpeg, kPng, kGif, kBmp, kWebp, kTiff, kPnm };

const char* format_name(Format f);

struct HeaderScan {
  Format format = Format::kJpeg;
  ImageInfo info;
  std::span<const std::uint8_t> exif;  // TIFF-structured EXIF block (empty if none or not looked for)
  bool complete = true;                // JPEG: EOI reached after scan data; PNG: IEND reached
};

// `full`: JPEG and PNG are walked to their end marker (entropy-coded data scanned byte by byte, PNG
// chunks by length), and the EXIF block of WebP, which follows the image data, is looked for.
// Errors: kUnsupportedFormat for an unknown signature, kCorruptData for a header that ends too early or
// is inconsistent (zero or negative sizes, a SOS before any SOF, an IHDR of the wrong length...).
Result<HeaderScan> scan_header(std::span<const std::uint8_t> bytes, bool full);

}  // namespace faceguard::image_detail
