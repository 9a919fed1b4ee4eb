// faceguard/image.hpp - decoding untrusted images safely.
//
//   faceguard::DecodeOptions opt;            // 40 Mpx limit by default
//   auto img = faceguard::load_image("photo.jpg", opt);
//   if (!img) { ... img.error().code == ErrorCode::kImageTooLarge ... }
//   cv::Mat bgr = *img;                      // always 8-bit, 3-channel BGR, EXIF orientation applied
//
// The dimensions are read from the file header before any pixel is decoded, so a decompression bomb
// is refused without allocating it. 16-bit, greyscale, palette, alpha and CMYK inputs are converted.
// Thread safety: the functions are reentrant.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>

#include <opencv2/core.hpp>

#include "faceguard/result.hpp"

namespace faceguard {

struct DecodeOptions {
  std::uint64_t max_pixels = 40'000'000;  // width*height above this -> kImageTooLarge
  std::uint64_t max_bytes = 100u << 20;   // file size above this -> kImageTooLarge
  bool apply_exif_orientation = true;
};

struct ImageInfo {
  int width = 0;
  int height = 0;
  std::string format;  // "jpeg", "png", "bmp", "webp", "tiff", "pnm"
};

// Read only the header. kUnsupportedFormat for an unknown signature, kCorruptData for a truncated header.
Result<ImageInfo> probe_image(std::span<const std::uint8_t> bytes);

Result<cv::Mat> decode_image(std::span<const std::uint8_t> bytes, const DecodeOptions& options = {});
Result<cv::Mat> load_image(const std::filesystem::path& path, const DecodeOptions& options = {});

}  // namespace faceguard
