// Image headers: signatures and dimension fields from the format specifications
//   JPEG  ITU-T T.81 Annex B (markers, SOFn frame header), EXIF 2.3 section 4.5.4 (APP1 "Exif\0\0")
//   PNG   ISO/IEC 15948 (signature, IHDR, chunk layout, CRC-32), PNG 1.5 extensions (eXIf)
//   GIF   GIF89a section 18 (logical screen descriptor)
//   BMP   BITMAPCOREHEADER (12 bytes) / BITMAPINFOHEADER (40+ bytes)
//   WebP  RIFF container spec (VP8 key frame header, VP8L header, VP8X canvas), RFC 9649
//   TIFF  TIFF 6.0 (classic) and BigTIFF
//   PNM   Netpbm P1-P6 and PAM (P7)
// Every read is bounds-checked; nothing here allocates in proportion to a value read from the file.
#include "core/image_probe.hpp"

#include <array>
#include <cctype>
#include <cstring>
#include <limits>
#include <string>

#include "core/tiff_ifd.hpp"

namespace faceguard::image_detail {

namespace {

using Bytes = std::span<const std::uint8_t>;

std::uint32_t be16(Bytes b, std::size_t at) { return (std::uint32_t{b[at]} << 8) | b[at + 1]; }
std::uint32_t le16(Bytes b, std::size_t at) { return (std::uint32_t{b[at + 1]} << 8) | b[at]; }
std::uint32_t be32(Bytes b, std::size_t at) { return (be16(b, at) << 16) | be16(b, at + 2); }
std::uint32_t le32(Bytes b, std::size_t at) { return (le16(b, at + 2) << 16) | le16(b, at); }
std::uint32_t le24(Bytes b, std::size_t at) { return (std::uint32_t{b[at + 2]} << 16) | le16(b, at); }

bool starts_with(Bytes b, const char* sig, std::size_t n, std::size_t at = 0) {
  return b.size() >= at + n && std::memcmp(b.data() + at, sig, n) == 0;
}

Error truncated(const char* fmt) {
  return make_error(ErrorCode::kCorruptData, std::string("truncated ") + fmt + " header");
}
Error corrupt(const std::string& what) { return make_error(ErrorCode::kCorruptData, what); }

Result<HeaderScan> with_size(HeaderScan s, std::uint64_t w, std::uint64_t h) {
  if (w == 0 || h == 0)
    return corrupt(std::string(format_name(s.format)) + " header gives a zero width or height");
  constexpr std::uint64_t kMax = std::numeric_limits<int>::max();
  if (w > kMax || h > kMax)
    return make_error(ErrorCode::kImageTooLarge, std::string(format_name(s.format)) + " header claims " +
                                                     std::to_string(w) + "x" + std::to_string(h) +
                                                     " pixels, beyond any supported size");
  s.info.width = static_cast<int>(w);
  s.info.height = static_cast<int>(h);
  s.info.format = format_name(s.format);
  return s;
}

// ---- JPEG -------------------------------------------------------------------------------------------

bool is_sof(std::uint8_t m) {  // SOF0-15 except DHT (C4), JPG (C8), DAC (CC)
  return m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC;
}

// After a SOS header: entropy-coded data runs until a marker that is not a stuffed 0xFF00 or an RSTn.
std::size_t skip_entropy_coded(Bytes b, std::size_t pos) {
  const std::size_t n = b.size();
  while (pos < n) {
    const void* ff = std::memchr(b.data() + pos, 0xFF, n - pos);
    if (!ff) return n;
    pos = static_cast<std::size_t>(static_cast<const std::uint8_t*>(ff) - b.data());
    if (pos + 1 >= n) return n;
    const std::uint8_t next = b[pos + 1];
    if (next == 0x00 || (next >= 0xD0 && next <= 0xD7)) pos += 2;
    else if (next == 0xFF) pos += 1;  // fill byte before a marker
    else return pos;
  }
  return n;
}

Result<HeaderScan> scan_jpeg(Bytes b, bool full) {
  HeaderScan s;
  s.format = Format::kJpeg;
  const std::size_t n = b.size();
  std::size_t pos = 2;
  bool have_sof = false, saw_sos = false;
  std::uint32_t width = 0, height = 0;
  auto finish_truncated = [&]() -> Result<HeaderScan> {
    if (!have_sof) return truncated("JPEG");
    s.complete = false;
    return with_size(s, width, height);
  };
  while (true) {
    // libjpeg skips stray bytes before a marker (with a warning); so do we.
    while (pos < n && b[pos] != 0xFF) ++pos;
    while (pos < n && b[pos] == 0xFF) ++pos;
    if (pos >= n) return finish_truncated();
    const std::uint8_t m = b[pos++];
    if (m == 0xD9) {  // EOI
      if (!have_sof) return corrupt("JPEG without a frame header");
      s.complete = saw_sos;
      return with_size(s, width, height);
    }
    if (m == 0x00 || m == 0x01 || m == 0xD8 || (m >= 0xD0 && m <= 0xD7)) continue;  // no length field
    if (pos + 2 > n) return finish_truncated();
    const std::uint32_t len = be16(b, pos);
    if (len < 2) return corrupt("JPEG segment with a length below 2");
    const std::size_t body = pos + 2, end = pos + len;
    if (end > n) return finish_truncated();
    if (is_sof(m) && !have_sof) {
      if (len < 8) return corrupt("JPEG frame header too short");
      height = be16(b, body + 1);
      width = be16(b, body + 3);
      if (height == 0)  // the height would come in a DNL marker after the first scan
        return make_error(ErrorCode::kUnsupportedFormat, "JPEG with the height deferred to a DNL marker is not supported");
      have_sof = true;
      if (!full) return with_size(s, width, height);
    } else if (m == 0xE1 && s.exif.empty() && len >= 2 + 6 && starts_with(b, "Exif\0\0", 6, body)) {
      s.exif = b.subspan(body + 6, end - body - 6);
    } else if (m == 0xDA) {  // SOS
      if (!have_sof) return corrupt("JPEG scan before any frame header");
      saw_sos = true;
      pos = skip_entropy_coded(b, end);
      continue;
    }
    pos = end;
  }
}

// ---- PNG --------------------------------------------------------------------------------------------

std::uint32_t crc32(const std::uint8_t* p, std::size_t n) {
  static const std::array<std::uint32_t, 256> table = [] {
    std::array<std::uint32_t, 256> t{};
    for (std::uint32_t i = 0; i < 256; ++i) {
      std::uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;  // ISO 15948 Annex D
      t[i] = c;
    }
    return t;
  }();
  std::uint32_t c = 0xFFFFFFFFu;
  for (std::size_t i = 0; i < n; ++i) c = table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

Result<HeaderScan> scan_png(Bytes b, bool full) {
  HeaderScan s;
  s.format = Format::kPng;
  if (b.size() < 8 + 8 + 13) return truncated("PNG");
  if (be32(b, 8) != 13 || !starts_with(b, "IHDR", 4, 12)) return corrupt("PNG does not start with a valid IHDR chunk");
  const std::uint32_t w = be32(b, 16), h = be32(b, 20);
  if (w > 0x7FFFFFFFu || h > 0x7FFFFFFFu) return corrupt("PNG IHDR dimensions above 2^31-1");
  if (!full) return with_size(s, w, h);
  // Walk every chunk to IEND, checking the CRCs, so that the decoder only ever sees a complete,
  // intact chunk stream (libpng reports damage by printing to stderr, which a library must not do).
  std::size_t pos = 8;
  s.complete = false;
  while (pos + 12 <= b.size()) {
    const std::uint32_t len = be32(b, pos);
    if (len > 0x7FFFFFFFu) return corrupt("PNG chunk length above 2^31-1");
    if (len > b.size() - pos - 12) break;  // truncated
    const std::uint8_t* type = b.data() + pos + 4;
    if (crc32(type, 4 + std::size_t{len}) != be32(b, pos + 8 + len))
      return corrupt("PNG chunk " + std::string(reinterpret_cast<const char*>(type), 4) + " has a bad CRC");
    if (std::memcmp(type, "eXIf", 4) == 0 && s.exif.empty()) s.exif = b.subspan(pos + 8, len);
    if (std::memcmp(type, "IEND", 4) == 0) {
      s.complete = true;
      break;
    }
    pos += 12 + std::size_t{len};
  }
  return with_size(s, w, h);
}

// ---- GIF, BMP ---------------------------------------------------------------------------------------

Result<HeaderScan> scan_gif(Bytes b) {
  HeaderScan s;
  s.format = Format::kGif;
  if (b.size() < 10) return truncated("GIF");
  return with_size(s, le16(b, 6), le16(b, 8));
}

Result<HeaderScan> scan_bmp(Bytes b) {
  HeaderScan s;
  s.format = Format::kBmp;
  if (b.size() < 18) return truncated("BMP");  // 14-byte file header + the DIB header's size field
  const std::uint32_t dib = le32(b, 14);
  if (dib == 12) {  // BITMAPCOREHEADER: 16-bit unsigned sizes
    if (b.size() < 14 + 12) return truncated("BMP");
    return with_size(s, le16(b, 18), le16(b, 20));
  }
  if (dib < 16 || dib > 4096) return corrupt("BMP with an unknown header size " + std::to_string(dib));
  if (b.size() < 26) return truncated("BMP");
  const auto w = static_cast<std::int32_t>(le32(b, 18));
  const auto h = static_cast<std::int32_t>(le32(b, 22));  // negative: rows stored top-down
  if (w <= 0 || h == 0 || h == std::numeric_limits<std::int32_t>::min())
    return corrupt("BMP header gives an invalid width or height");
  return with_size(s, static_cast<std::uint64_t>(w), static_cast<std::uint64_t>(h < 0 ? -std::int64_t{h} : h));
}

// ---- WebP -------------------------------------------------------------------------------------------

Result<HeaderScan> scan_webp(Bytes b, bool full) {
  HeaderScan s;
  s.format = Format::kWebp;
  if (b.size() < 20 + 10) return truncated("WebP");
  const std::size_t body = 20;
  std::uint64_t w = 0, h = 0;
  if (starts_with(b, "VP8 ", 4, 12)) {
    // 3-byte frame tag (bit 0 clear on a key frame), start code 9d 01 2a, then 14-bit sizes.
    if ((b[body] & 1) != 0 || b[body + 3] != 0x9d || b[body + 4] != 0x01 || b[body + 5] != 0x2a)
      return corrupt("WebP VP8 chunk without a key frame header");
    w = le16(b, body + 6) & 0x3FFF;
    h = le16(b, body + 8) & 0x3FFF;
  } else if (starts_with(b, "VP8L", 4, 12)) {
    if (b[body] != 0x2f) return corrupt("WebP VP8L chunk without its signature");
    const std::uint32_t bits = le32(b, body + 1);
    w = (bits & 0x3FFF) + 1;
    h = ((bits >> 14) & 0x3FFF) + 1;
  } else if (starts_with(b, "VP8X", 4, 12)) {
    w = std::uint64_t{le24(b, body + 4)} + 1;
    h = std::uint64_t{le24(b, body + 7)} + 1;
    if (full && (b[body] & 0x08)) {  // EXIF flag: find the EXIF chunk (chunks are padded to even sizes)
      std::size_t pos = 12;
      while (pos + 8 <= b.size()) {
        const std::uint64_t len = le32(b, pos + 4);
        if (len > b.size() - pos - 8) break;
        if (starts_with(b, "EXIF", 4, pos)) {
          Bytes e = b.subspan(pos + 8, static_cast<std::size_t>(len));
          if (starts_with(e, "Exif\0\0", 6)) e = e.subspan(6);  // some writers keep the JPEG prefix
          s.exif = e;
          break;
        }
        pos += 8 + static_cast<std::size_t>(len) + (len & 1);
      }
    }
  } else {
    return corrupt("WebP without a VP8, VP8L or VP8X chunk");
  }
  return with_size(s, w, h);
}

// ---- TIFF -------------------------------------------------------------------------------------------

Result<HeaderScan> scan_tiff(Bytes b) {
  HeaderScan s;
  s.format = Format::kTiff;
  TiffIfd0 ifd;
  switch (TiffIfd0::parse(b, ifd)) {
    case IfdStatus::kOk: break;
    case IfdStatus::kTruncated: return truncated("TIFF");
    case IfdStatus::kInvalid: return corrupt("TIFF with an invalid first directory");
  }
  const auto w = ifd.integer(kTagImageWidth), h = ifd.integer(kTagImageLength);
  if (!w || !h) return corrupt("TIFF without ImageWidth/ImageLength");
  return with_size(s, *w, *h);
}

// ---- PNM --------------------------------------------------------------------------------------------

// Reads the next unsigned decimal token, skipping whitespace and '#' comments. 0 if none or on overflow.
std::uint64_t pnm_number(Bytes b, std::size_t& pos, bool& ended) {
  const std::size_t limit = std::min<std::size_t>(b.size(), 1u << 16);  // a header longer than this is junk
  while (pos < limit) {
    if (b[pos] == '#') {
      while (pos < limit && b[pos] != '\n' && b[pos] != '\r') ++pos;
    } else if (std::isspace(b[pos])) {
      ++pos;
    } else {
      break;
    }
  }
  if (pos >= limit) {
    ended = true;
    return 0;
  }
  std::uint64_t v = 0;
  int digits = 0;
  while (pos < limit && std::isdigit(b[pos])) {
    v = v * 10 + (b[pos++] - '0');
    if (++digits > 12) return 0;
  }
  if (pos >= limit && limit == b.size()) ended = true;
  return digits ? v : 0;
}

Result<HeaderScan> scan_pnm(Bytes b) {
  HeaderScan s;
  s.format = Format::kPnm;
  std::size_t pos = 2;
  bool ended = false;
  std::uint64_t w = 0, h = 0;
  if (b[1] == '7') {  // PAM: "P7\n" then "TOKEN value" lines up to ENDHDR
    const std::size_t limit = std::min<std::size_t>(b.size(), 1u << 16);
    while (pos < limit) {
      while (pos < limit && std::isspace(b[pos])) ++pos;
      std::string key;
      while (pos < limit && !std::isspace(b[pos]) && key.size() < 16) key += static_cast<char>(b[pos++]);
      if (key == "ENDHDR") break;
      if (key == "WIDTH") w = pnm_number(b, pos, ended);
      else if (key == "HEIGHT") h = pnm_number(b, pos, ended);
      else while (pos < limit && b[pos] != '\n') ++pos;
    }
    if (pos >= b.size()) return truncated("PAM");
  } else {
    w = pnm_number(b, pos, ended);
    h = pnm_number(b, pos, ended);
    if (ended) return truncated("PNM");
  }
  return with_size(s, w, h);
}

}  // namespace

const char* format_name(Format f) {
  switch (f) {
    case Format::kJpeg: return "jpeg";
    case Format::kPng: return "png";
    case Format::kGif: return "gif";
    case Format::kBmp: return "bmp";
    case Format::kWebp: return "webp";
    case Format::kTiff: return "tiff";
    case Format::kPnm: return "pnm";
  }
  return "unknown";
}

Result<HeaderScan> scan_header(std::span<const std::uint8_t> b, bool full) {
  if (b.size() >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF) return scan_jpeg(b, full);
  if (starts_with(b, "\x89PNG\r\n\x1a\n", 8)) return scan_png(b, full);
  if (starts_with(b, "GIF87a", 6) || starts_with(b, "GIF89a", 6)) return scan_gif(b);
  // "BM" alone is weak (a text file may start so): the file header's reserved bytes 6..9 must be zero.
  if (starts_with(b, "BM", 2) && (b.size() < 10 || (b[6] | b[7] | b[8] | b[9]) == 0)) return scan_bmp(b);
  if (starts_with(b, "RIFF", 4) && b.size() < 12 && (b.size() <= 8 || std::memcmp(b.data() + 8, "WEBP", b.size() - 8) == 0))
    return truncated("WebP");
  if (starts_with(b, "RIFF", 4) && starts_with(b, "WEBP", 4, 8)) return scan_webp(b, full);
  if (starts_with(b, "II*\0", 4) || starts_with(b, "MM\0*", 4) || starts_with(b, "II+\0", 4) ||
      starts_with(b, "MM\0+", 4))
    return scan_tiff(b);
  if (b.size() >= 3 && b[0] == 'P' && b[1] >= '1' && b[1] <= '7' && std::isspace(b[2])) return scan_pnm(b);
  // A known signature cut short is a truncated file, not an unknown format.
  static const char* const kPrefixes[] = {"\xFF\xD8\xFF", "\x89PNG\r\n\x1a\n", "GIF8", "RIFF"};
  for (const char* p : kPrefixes) {
    const std::size_t len = std::strlen(p);
    if (b.size() >= 2 && b.size() < len && std::memcmp(b.data(), p, b.size()) == 0)
      return make_error(ErrorCode::kCorruptData, "truncated image header");
  }
  return make_error(ErrorCode::kUnsupportedFormat, "not an image (or an unsupported format)");
}

}  // namespace faceguard::image_detail
