// Safe image decoding: header first (format, dimensions, limits), then OpenCV's decoders, then a
// normalisation to 8-bit 3-channel BGR with EXIF orientation applied.
//
// Choices, measured on OpenCV 4.6 (Debian 12):
// - Decoded with IMREAD_UNCHANGED so that alpha survives to be composited. With that flag imdecode does
//   not apply EXIF orientation (it does for IMREAD_COLOR), so orientation is read here from the EXIF
//   block of JPEG (APP1), PNG (eXIf) and WebP (EXIF chunk) and applied as CIPA DC-008 Table 4 says.
//   TIFF orientation is left as libtiff returns it.
// - Alpha is composited onto white (a transparent background is shown as paper would show it; dropping
//   alpha would expose whatever colour the encoder left under transparent pixels, often black).
// - 16-bit samples are scaled by 255/65535; float samples (TIFF) are taken as 0..1.
// - CMYK JPEG: OpenCV's JPEG reader converts to BGR itself, assuming Adobe-inverted CMYK (what Photoshop
//   writes, and what nearly every CMYK JPEG is); no ICC profile is applied.
// - Truncation: libjpeg decodes a truncated JPEG "successfully", greying out the missing rows, so JPEGs
//   are walked to their EOI marker first and refused without one; PNG chunk streams are walked to IEND
//   with their CRCs checked, which also keeps libpng from printing its complaints to stderr.
// - Only the formats probe_image() knows are handed to OpenCV (not JPEG 2000, OpenEXR, HDR, Sun raster,
//   ...): less decoder attack surface. GIF is recognised but OpenCV 4.6 has no GIF reader.
#include "faceguard/image.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <vector>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "core/image_probe.hpp"
#include "core/tiff_ifd.hpp"

namespace faceguard {

namespace {

using image_detail::Format;

// CIPA DC-008 (EXIF 2.3) Table 4, as OpenCV's own ApplyExifOrientation does it.
void apply_orientation(cv::Mat& img, int orientation) {
  switch (orientation) {
    case 2: cv::flip(img, img, 1); break;                          // mirrored horizontally
    case 3: cv::rotate(img, img, cv::ROTATE_180); break;
    case 4: cv::flip(img, img, 0); break;                          // mirrored vertically
    case 5: cv::transpose(img, img); break;                        // mirrored about the main diagonal
    case 6: cv::rotate(img, img, cv::ROTATE_90_CLOCKWISE); break;
    case 7: cv::transpose(img, img); cv::rotate(img, img, cv::ROTATE_180); break;  // anti-diagonal
    case 8: cv::rotate(img, img, cv::ROTATE_90_COUNTERCLOCKWISE); break;
    default: break;
  }
}

Result<cv::Mat> to_8bit(const cv::Mat& m) {
  cv::Mat out;
  switch (m.depth()) {
    case CV_8U: return m;
    case CV_16U: m.convertTo(out, CV_8U, 255.0 / 65535.0); return out;
    case CV_16S: m.convertTo(out, CV_8U, 255.0 / 32767.0); return out;  // negatives clip to 0
    case CV_32F:
    case CV_64F: m.convertTo(out, CV_8U, 255.0); return out;
    default:
      return make_error(ErrorCode::kUnsupportedFormat, "unsupported sample type (depth " + std::to_string(m.depth()) + ")");
  }
}

// out = colour * a + white * (1 - a), rounded.
cv::Mat composite_on_white(const cv::Mat& bgra) {
  cv::Mat out(bgra.rows, bgra.cols, CV_8UC3);
  for (int y = 0; y < bgra.rows; ++y) {
    const auto* s = bgra.ptr<std::uint8_t>(y);
    auto* d = out.ptr<std::uint8_t>(y);
    for (int x = 0; x < bgra.cols; ++x, s += 4, d += 3) {
      const unsigned a = s[3];
      for (int c = 0; c < 3; ++c) d[c] = static_cast<std::uint8_t>((s[c] * a + 255u * (255u - a) + 127u) / 255u);
    }
  }
  return out;
}

Result<cv::Mat> to_bgr8(const cv::Mat& decoded) {
  FG_ASSIGN_OR_RETURN(cv::Mat m, to_8bit(decoded));
  cv::Mat out;
  switch (m.channels()) {
    case 1: cv::cvtColor(m, out, cv::COLOR_GRAY2BGR); return out;
    case 2: {  // grey + alpha
      std::vector<cv::Mat> ch;
      cv::split(m, ch);
      cv::Mat bgra;
      cv::merge(std::vector<cv::Mat>{ch[0], ch[0], ch[0], ch[1]}, bgra);
      return composite_on_white(bgra);
    }
    case 3: return m;
    case 4: return composite_on_white(m);
    default:
      return make_error(ErrorCode::kUnsupportedFormat, "unsupported channel count " + std::to_string(m.channels()));
  }
}

std::string pixels_text(std::uint64_t n) {
  if (n >= 1'000'000 && n % 1'000'000 == 0) return std::to_string(n / 1'000'000) + " Mpx";
  return std::to_string(n) + " pixels";
}

Result<cv::Mat> decode_checked(std::span<const std::uint8_t> bytes, const DecodeOptions& options) {
  if (bytes.empty()) return make_error(ErrorCode::kCorruptData, "empty file");
  if (bytes.size() > options.max_bytes || bytes.size() > static_cast<std::size_t>(INT32_MAX))
    return make_error(ErrorCode::kImageTooLarge, "image file is " + std::to_string(bytes.size()) +
                                                     " bytes, above the limit of " + std::to_string(options.max_bytes) + " bytes");
  // Dimensions first: a decompression bomb is refused here, before any pixel buffer exists.
  FG_ASSIGN_OR_RETURN(auto head, image_detail::scan_header(bytes, false));
  const std::uint64_t pixels = std::uint64_t(head.info.width) * std::uint64_t(head.info.height);
  if (pixels > options.max_pixels)
    return make_error(ErrorCode::kImageTooLarge, "image is " + std::to_string(head.info.width) + "x" +
                                                     std::to_string(head.info.height) + " = " + pixels_text(pixels) +
                                                     ", above the limit of " + pixels_text(options.max_pixels));
  if (head.format == Format::kGif)
    return make_error(ErrorCode::kUnsupportedFormat, "GIF images cannot be decoded (OpenCV 4.6 has no GIF reader); convert to PNG");
  FG_ASSIGN_OR_RETURN(auto scan, image_detail::scan_header(bytes, true));
  if (!scan.complete) return make_error(ErrorCode::kCorruptData, "truncated or corrupt image (" + scan.info.format + " ends early)");

  cv::Mat decoded;
  try {
    // cv::Mat over the caller's bytes, no copy: imdecode only reads it.
    const cv::Mat buf(1, static_cast<int>(bytes.size()), CV_8U, const_cast<std::uint8_t*>(bytes.data()));
    decoded = cv::imdecode(buf, cv::IMREAD_UNCHANGED);
  } catch (const cv::Exception& e) {
    return make_error(ErrorCode::kCorruptData, "truncated or corrupt image (" + std::string(e.what()) + ")");
  }
  if (decoded.empty()) return make_error(ErrorCode::kCorruptData, "truncated or corrupt image");
  if (decoded.cols != scan.info.width || decoded.rows != scan.info.height)
    return make_error(ErrorCode::kCorruptData, "truncated or corrupt image (decoded " + std::to_string(decoded.cols) + "x" +
                                                   std::to_string(decoded.rows) + ", header says " +
                                                   std::to_string(scan.info.width) + "x" + std::to_string(scan.info.height) + ")");
  FG_ASSIGN_OR_RETURN(cv::Mat bgr, to_bgr8(decoded));
  if (options.apply_exif_orientation && !scan.exif.empty())
    apply_orientation(bgr, image_detail::exif_orientation(scan.exif));
  if (!bgr.isContinuous()) bgr = bgr.clone();
  return bgr;
}

}  // namespace

Result<ImageInfo> probe_image(std::span<const std::uint8_t> bytes) {
  try {
    if (bytes.empty()) return make_error(ErrorCode::kCorruptData, "empty file");
    FG_ASSIGN_OR_RETURN(auto scan, image_detail::scan_header(bytes, false));
    return scan.info;
  } catch (const std::exception& e) {
    return make_error(ErrorCode::kInternal, std::string("probe_image: ") + e.what());
  }
}

Result<cv::Mat> decode_image(std::span<const std::uint8_t> bytes, const DecodeOptions& options) {
  try {
    return decode_checked(bytes, options);
  } catch (const std::bad_alloc&) {
    return make_error(ErrorCode::kImageTooLarge, "out of memory while decoding the image");
  } catch (const std::exception& e) {
    return make_error(ErrorCode::kInternal, std::string("decode_image: ") + e.what());
  }
}

Result<cv::Mat> load_image(const std::filesystem::path& path, const DecodeOptions& options) {
  try {
    struct stat st{};
    if (::stat(path.c_str(), &st) != 0) {
      if (errno == ENOENT || errno == ENOTDIR) return make_error(ErrorCode::kNotFound, "no such file: " + path.string());
      return make_error(ErrorCode::kIoError, "cannot read " + path.string() + ": " + std::strerror(errno));
    }
    if (S_ISDIR(st.st_mode)) return make_error(ErrorCode::kInvalidArgument, path.string() + " is a folder, not an image");
    if (!S_ISREG(st.st_mode)) return make_error(ErrorCode::kInvalidArgument, path.string() + " is not a regular file");
    if (st.st_size == 0) return make_error(ErrorCode::kCorruptData, "empty file: " + path.string());
    if (static_cast<std::uint64_t>(st.st_size) > options.max_bytes)
      return make_error(ErrorCode::kImageTooLarge, path.string() + " is " + std::to_string(st.st_size) +
                                                       " bytes, above the limit of " + std::to_string(options.max_bytes) + " bytes");
    std::ifstream in(path, std::ios::binary);
    if (!in) return make_error(ErrorCode::kIoError, "cannot open " + path.string() + ": " + std::strerror(errno));
    std::vector<std::uint8_t> bytes(static_cast<std::size_t>(st.st_size));
    in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    bytes.resize(static_cast<std::size_t>(in.gcount()));  // the file may have shrunk since stat
    auto r = decode_image(bytes, options);
    if (!r) return make_error(r.error().code, path.string() + ": " + r.error().message);
    return r;
  } catch (const std::bad_alloc&) {
    return make_error(ErrorCode::kImageTooLarge, "out of memory while reading " + path.string());
  } catch (const std::exception& e) {
    return make_error(ErrorCode::kInternal, "load_image " + path.string() + ": " + e.what());
  }
}

}  // namespace faceguard
