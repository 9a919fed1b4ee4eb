// A bounds-checked reader for the first IFD of a TIFF structure (classic and BigTIFF, both byte orders).
// Two users: probe_image() reads ImageWidth/ImageLength of a .tif, and the EXIF block of a JPEG/PNG/WebP
// (which is a TIFF structure too, CIPA DC-008 section 4.5) gives the Orientation tag.
// Input is untrusted: every offset is checked against the buffer, the entry count is capped, and nothing
// is allocated in proportion to a value read from the file.
#pragma once

#include <cstdint>
#include <optional>
#include <span>

namespace faceguard::image_detail {

// TIFF 6.0 tag numbers.
inline constexpr std::uint16_t kTagImageWidth = 256;
inline constexpr std::uint16_t kTagImageLength = 257;
inline constexpr std::uint16_t kTagOrientation = 0x0112;  // EXIF 2.3 / TIFF 6.0: 1..8

// Why an IFD could not be read: the bytes end too early, or they are not a TIFF structure at all.
enum class IfdStatus { kOk, kTruncated, kInvalid };

struct IfdEntry {
  std::uint16_t tag = 0;
  std::uint16_t type = 0;
  std::uint64_t count = 0;
  std::uint64_t value = 0;  // the first value when it is an integer type (BYTE, SHORT, LONG, LONG8)
  bool has_value = false;
};

class TiffIfd0 {
 public:
  // `bytes` starts at the TIFF header ("II*\0", "MM\0*", or the BigTIFF forms with 43).
  static IfdStatus parse(std::span<const std::uint8_t> bytes, TiffIfd0& out);

  // The first integer value of `tag` in IFD0, if present with an integer type and count >= 1.
  std::optional<std::uint64_t> integer(std::uint16_t tag) const;

  // Entries are stored only for the tags above; IFD0 may hold any number of others.
  static constexpr int kMaxEntries = 4096;

 private:
  IfdEntry width_, length_, orientation_;
};

// The EXIF orientation (1..8) of a TIFF-structured EXIF block (the APP1 payload after "Exif\0\0").
// 1 (as stored) for anything missing, malformed or out of range: a bad EXIF never fails a decode.
int exif_orientation(std::span<const std::uint8_t> tiff_block);

}  // namespace faceguard::image_detail
