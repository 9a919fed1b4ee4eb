// Image probing and decoding. Every input is generated here: with OpenCV's encoders, or byte by byte
// (PNG chunks with stored-deflate IDATs, EXIF APP1 segments, TIFF/GIF/WebP/PAM headers), or with
// libjpeg through dlopen (CMYK JPEG; OpenCV cannot write one).
#include <gtest/gtest.h>

#include <dlfcn.h>
#include <jpeglib.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "core/image_probe.hpp"
#include "core/tiff_ifd.hpp"
#include "faceguard/image.hpp"

namespace fs = std::filesystem;
using faceguard::DecodeOptions;
using faceguard::ErrorCode;
using Bytes = std::vector<std::uint8_t>;

namespace {

Bytes encode(const cv::Mat& m, const std::string& ext, std::vector<int> params = {}) {
  Bytes out;
  EXPECT_TRUE(cv::imencode(ext, m, out, params)) << ext;
  return out;
}

// A 37x23 BGR test card: red background, blue 8x8 block in the top-left corner.
cv::Mat card(int w = 37, int h = 23) {
  cv::Mat m(h, w, CV_8UC3, cv::Scalar(0, 0, 255));
  m(cv::Rect(0, 0, 8, 8)).setTo(cv::Scalar(255, 0, 0));
  return m;
}

bool is_blue(const cv::Vec3b& p) { return p[0] > 200 && p[1] < 60 && p[2] < 60; }
bool is_red(const cv::Vec3b& p) { return p[2] > 200 && p[0] < 60 && p[1] < 60; }

void put_be32(Bytes& b, std::uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<std::uint8_t>(v >> s));
}
void put_le16(Bytes& b, std::uint32_t v) {
  b.push_back(static_cast<std::uint8_t>(v));
  b.push_back(static_cast<std::uint8_t>(v >> 8));
}
void put_le32(Bytes& b, std::uint32_t v) {
  put_le16(b, v & 0xFFFF);
  put_le16(b, v >> 16);
}

std::uint32_t crc32(const std::uint8_t* p, std::size_t n) {
  std::uint32_t c = 0xFFFFFFFFu;
  for (std::size_t i = 0; i < n; ++i) {
    c ^= p[i];
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
  }
  return c ^ 0xFFFFFFFFu;
}

void png_chunk(Bytes& png, const char* type, const Bytes& data) {
  put_be32(png, static_cast<std::uint32_t>(data.size()));
  Bytes td(type, type + 4);
  td.insert(td.end(), data.begin(), data.end());
  png.insert(png.end(), td.begin(), td.end());
  put_be32(png, crc32(td.data(), td.size()));
}

// zlib stream of stored (uncompressed) deflate blocks: RFC 1950/1951.
Bytes zlib_stored(const Bytes& raw) {
  Bytes z = {0x78, 0x01};
  std::size_t pos = 0;
  do {
    const std::size_t n = std::min<std::size_t>(65535, raw.size() - pos);
    z.push_back(pos + n == raw.size() ? 1 : 0);
    put_le16(z, static_cast<std::uint32_t>(n));
    put_le16(z, static_cast<std::uint32_t>(~n & 0xFFFF));
    z.insert(z.end(), raw.begin() + static_cast<std::ptrdiff_t>(pos), raw.begin() + static_cast<std::ptrdiff_t>(pos + n));
    pos += n;
  } while (pos < raw.size());
  std::uint32_t a = 1, b = 0;
  for (auto v : raw) {
    a = (a + v) % 65521;
    b = (b + a) % 65521;
  }
  put_be32(z, (b << 16) | a);
  return z;
}

// A PNG by hand: IHDR, `extra` chunks (PLTE, eXIf...), one IDAT of `rows` (each already prefixed with
// its filter byte), IEND.
Bytes make_png(std::uint32_t w, std::uint32_t h, int bit_depth, int colour_type, const Bytes& rows,
               const std::vector<std::pair<std::string, Bytes>>& extra = {}) {
  Bytes png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  Bytes ihdr;
  put_be32(ihdr, w);
  put_be32(ihdr, h);
  ihdr.insert(ihdr.end(), {static_cast<std::uint8_t>(bit_depth), static_cast<std::uint8_t>(colour_type), 0, 0, 0});
  png_chunk(png, "IHDR", ihdr);
  for (const auto& [type, data] : extra) png_chunk(png, type.c_str(), data);
  png_chunk(png, "IDAT", zlib_stored(rows));
  png_chunk(png, "IEND", {});
  return png;
}

// EXIF block (TIFF structure) holding only Orientation.
Bytes exif_block(int orientation, bool big_endian) {
  if (big_endian) return {'M', 'M', 0, 42, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1,
                          0, static_cast<std::uint8_t>(orientation), 0, 0, 0, 0, 0, 0};
  return {'I', 'I', 42, 0, 8, 0, 0, 0, 1, 0, 0x12, 0x01, 3, 0, 1, 0, 0, 0,
          static_cast<std::uint8_t>(orientation), 0, 0, 0, 0, 0, 0, 0};
}

// A real JPEG with an APP1 Exif segment spliced in after SOI.
Bytes jpeg_with_orientation(const cv::Mat& m, int orientation, bool big_endian = true) {
  Bytes j = encode(m, ".jpg");
  Bytes app = {0xFF, 0xE1, 0, 0, 'E', 'x', 'i', 'f', 0, 0};
  const Bytes ex = exif_block(orientation, big_endian);
  app.insert(app.end(), ex.begin(), ex.end());
  app[2] = static_cast<std::uint8_t>((app.size() - 2) >> 8);
  app[3] = static_cast<std::uint8_t>((app.size() - 2) & 0xFF);
  j.insert(j.begin() + 2, app.begin(), app.end());
  return j;
}

class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = fs::temp_directory_path() / ("fg-image-test-" + std::to_string(rd()) + std::to_string(rd()));
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  fs::path write(const std::string& name, const Bytes& b) const {
    std::ofstream(path_ / name, std::ios::binary).write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
    return path_ / name;
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

}  // namespace

// ---- probe ------------------------------------------------------------------------------------------

TEST(ImageProbe, DimensionsOfEveryFormatOpenCvWrites) {
  const cv::Mat m = card();
  for (const auto& [ext, fmt] : std::vector<std::pair<std::string, std::string>>{
           {".jpg", "jpeg"}, {".png", "png"}, {".bmp", "bmp"}, {".webp", "webp"}, {".tiff", "tiff"},
           {".ppm", "pnm"}, {".pgm", "pnm"}}) {
    cv::Mat src = m;
    if (ext == ".pgm") cv::cvtColor(m, src, cv::COLOR_BGR2GRAY);
    const Bytes b = encode(src, ext);
    auto info = faceguard::probe_image(b);
    ASSERT_TRUE(info) << ext << ": " << info.error().message;
    EXPECT_EQ(info->width, 37) << ext;
    EXPECT_EQ(info->height, 23) << ext;
    EXPECT_EQ(info->format, fmt) << ext;
  }
  // Lossless WebP (VP8L) as well as lossy (VP8).
  auto lossless = faceguard::probe_image(encode(m, ".webp", {cv::IMWRITE_WEBP_QUALITY, 101}));
  ASSERT_TRUE(lossless);
  EXPECT_EQ(lossless->width, 37);
  EXPECT_EQ(lossless->height, 23);
}

TEST(ImageProbe, HandWrittenHeaders) {
  // GIF89a logical screen 300x200.
  const Bytes gif = {'G', 'I', 'F', '8', '9', 'a', 0x2c, 0x01, 0xc8, 0x00, 0, 0, 0};
  auto g = faceguard::probe_image(gif);
  ASSERT_TRUE(g) << g.error().message;
  EXPECT_EQ(g->width, 300);
  EXPECT_EQ(g->height, 200);
  EXPECT_EQ(g->format, "gif");
  EXPECT_EQ(faceguard::decode_image(gif).error().code, ErrorCode::kUnsupportedFormat);

  // Big-endian TIFF: width SHORT 640, length LONG 480.
  const Bytes mm = {'M', 'M', 0, 42, 0, 0, 0, 8, 0, 2,
                    0x01, 0x00, 0, 3, 0, 0, 0, 1, 0x02, 0x80, 0, 0,
                    0x01, 0x01, 0, 4, 0, 0, 0, 1, 0, 0, 0x01, 0xe0, 0, 0, 0, 0};
  auto t = faceguard::probe_image(mm);
  ASSERT_TRUE(t) << t.error().message;
  EXPECT_EQ(t->width, 640);
  EXPECT_EQ(t->height, 480);
  EXPECT_EQ(t->format, "tiff");

  // BigTIFF, little-endian: 8-byte counts and offsets, 20-byte entries.
  Bytes big = {'I', 'I', 43, 0, 8, 0, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0};
  for (auto [tag, val] : {std::pair<int, int>{256, 1000}, {257, 750}}) {
    put_le16(big, static_cast<std::uint32_t>(tag));
    put_le16(big, 3);
    put_le32(big, 1);
    put_le32(big, 0);
    put_le16(big, static_cast<std::uint32_t>(val));
    big.insert(big.end(), 6, 0);
  }
  big.insert(big.end(), 8, 0);
  auto bt = faceguard::probe_image(big);
  ASSERT_TRUE(bt) << bt.error().message;
  EXPECT_EQ(bt->width, 1000);
  EXPECT_EQ(bt->height, 750);

  // WebP VP8X canvas 4096x2160 (24-bit minus-one fields).
  Bytes webp = {'R', 'I', 'F', 'F', 30, 0, 0, 0, 'W', 'E', 'B', 'P', 'V', 'P', '8', 'X', 10, 0, 0, 0, 0, 0, 0, 0};
  webp.insert(webp.end(), {0xff, 0x0f, 0x00, 0x6f, 0x08, 0x00});
  auto w = faceguard::probe_image(webp);
  ASSERT_TRUE(w) << w.error().message;
  EXPECT_EQ(w->width, 4096);
  EXPECT_EQ(w->height, 2160);

  // PAM and a PGM with a comment in the header.
  const std::string pam = "P7\nWIDTH 5\nHEIGHT 4\nDEPTH 3\nMAXVAL 255\nTUPLTYPE RGB\nENDHDR\n" + std::string(60, 'x');
  auto p = faceguard::probe_image(Bytes(pam.begin(), pam.end()));
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_EQ(p->width, 5);
  EXPECT_EQ(p->height, 4);
  const std::string pgm = "P5\n# made by hand\n12 7\n255\n" + std::string(84, '\x80');
  auto q = faceguard::probe_image(Bytes(pgm.begin(), pgm.end()));
  ASSERT_TRUE(q) << q.error().message;
  EXPECT_EQ(q->width, 12);
  EXPECT_EQ(q->height, 7);
}

TEST(ImageProbe, UnknownSignatureIsUnsupported) {
  const std::string text = "hello, this is a text file\n";
  auto r = faceguard::probe_image(Bytes(text.begin(), text.end()));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kUnsupportedFormat);
  EXPECT_EQ(r.error().message, "not an image (or an unsupported format)");
  EXPECT_EQ(faceguard::probe_image(Bytes{}).error().code, ErrorCode::kCorruptData);
  // Found by the fuzz driver: a RIFF prefix shorter than its "WEBP" tag.
  EXPECT_EQ(faceguard::probe_image(Bytes{'R', 'I', 'F', 'F', 1}).error().code, ErrorCode::kCorruptData);
  const std::string bmw = "BMW 320d, 2019\n";
  EXPECT_EQ(faceguard::probe_image(Bytes(bmw.begin(), bmw.end())).error().code, ErrorCode::kUnsupportedFormat);
}

TEST(ImageProbe, TruncatedHeadersAreCorrupt) {
  const cv::Mat m = card();
  for (const std::string ext : {".jpg", ".png", ".bmp", ".webp", ".tiff", ".ppm"}) {
    const Bytes b = encode(m, ext);
    // Cut inside the header: a few bytes past the signature, and (JPEG) before its SOF.
    for (std::size_t cut : {std::size_t{3}, std::size_t{9}, std::size_t{16}, std::size_t{24}}) {
      if (ext == ".ppm" && cut >= 9) continue;  // "P6\n37 23\n" holds both sizes by then
      if (ext == ".tiff") continue;            // its IFD lies at the end of the file: tested below
      auto r = faceguard::probe_image(std::span(b.data(), cut));
      ASSERT_FALSE(r) << ext << " cut at " << cut;
      EXPECT_EQ(r.error().code, ErrorCode::kCorruptData) << ext << " cut at " << cut << ": " << r.error().message;
    }
  }
  const Bytes tif = encode(m, ".tiff");
  auto r = faceguard::probe_image(std::span(tif.data(), tif.size() - 20));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kCorruptData);
}

TEST(ImageProbe, ExifOrientationParser) {
  using faceguard::image_detail::exif_orientation;
  EXPECT_EQ(exif_orientation(exif_block(6, true)), 6);
  EXPECT_EQ(exif_orientation(exif_block(8, false)), 8);
  EXPECT_EQ(exif_orientation(exif_block(9, true)), 1);  // out of range: as stored
  EXPECT_EQ(exif_orientation(Bytes{}), 1);
  Bytes b = exif_block(6, true);
  b[7] = 200;  // IFD offset beyond the block
  EXPECT_EQ(exif_orientation(b), 1);
  b = exif_block(6, true);
  b.resize(15);  // entry cut short
  EXPECT_EQ(exif_orientation(b), 1);
  b = exif_block(6, true);
  b[9] = 0;  // zero entries
  b[8] = 0;
  EXPECT_EQ(exif_orientation(b), 1);
}

// ---- decode -----------------------------------------------------------------------------------------

TEST(ImageDecode, EveryFormatGivesBgr8) {
  const cv::Mat m = card();
  for (const std::string ext : {".jpg", ".png", ".bmp", ".webp", ".tiff", ".ppm"}) {
    auto img = faceguard::decode_image(encode(m, ext));
    ASSERT_TRUE(img) << ext << ": " << img.error().message;
    EXPECT_EQ(img->type(), CV_8UC3) << ext;
    EXPECT_EQ(img->cols, 37);
    EXPECT_EQ(img->rows, 23);
    EXPECT_TRUE(is_blue(img->at<cv::Vec3b>(2, 2))) << ext;
    EXPECT_TRUE(is_red(img->at<cv::Vec3b>(20, 30))) << ext;
  }
}

TEST(ImageDecode, BombIsRefusedFromTheHeader) {
  // A PNG whose IHDR claims 100000x100000 (10 Gpx, 30 GB as BGR) with one tiny IDAT.
  const Bytes bomb = make_png(100000, 100000, 8, 2, Bytes(4, 0));
  auto info = faceguard::probe_image(bomb);
  ASSERT_TRUE(info);
  EXPECT_EQ(info->width, 100000);
  auto r = faceguard::decode_image(bomb);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kImageTooLarge);
  EXPECT_NE(r.error().message.find("100000x100000"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("limit of 40 Mpx"), std::string::npos) << r.error().message;

  DecodeOptions small;
  small.max_pixels = 800;  // the card is 851 px
  auto s = faceguard::decode_image(encode(card(), ".png"), small);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, ErrorCode::kImageTooLarge);
  EXPECT_NE(s.error().message.find("800 pixels"), std::string::npos);
  small.max_pixels = 851;
  EXPECT_TRUE(faceguard::decode_image(encode(card(), ".png"), small));

  DecodeOptions tiny_file;
  tiny_file.max_bytes = 10;
  EXPECT_EQ(faceguard::decode_image(encode(card(), ".png"), tiny_file).error().code, ErrorCode::kImageTooLarge);
}

TEST(ImageDecode, SixteenBitGreyAndColour) {
  cv::Mat g16(6, 5, CV_16UC1, cv::Scalar(65535));
  g16.row(0).setTo(32896);  // 128.5 * 256 -> 128
  auto g = faceguard::decode_image(encode(g16, ".png"));
  ASSERT_TRUE(g) << g.error().message;
  EXPECT_EQ(g->type(), CV_8UC3);
  EXPECT_EQ(g->at<cv::Vec3b>(3, 3), cv::Vec3b(255, 255, 255));
  EXPECT_EQ(g->at<cv::Vec3b>(0, 0), cv::Vec3b(128, 128, 128));
  cv::Mat c16(6, 5, CV_16UC3, cv::Scalar(0, 65535, 0));
  auto c = faceguard::decode_image(encode(c16, ".png"));
  ASSERT_TRUE(c);
  EXPECT_EQ(c->at<cv::Vec3b>(1, 1), cv::Vec3b(0, 255, 0));
  auto t = faceguard::decode_image(encode(c16, ".tiff"));
  ASSERT_TRUE(t) << t.error().message;
  EXPECT_EQ(t->at<cv::Vec3b>(1, 1), cv::Vec3b(0, 255, 0));
}

TEST(ImageDecode, GreyBecomesBgr) {
  cv::Mat grey(10, 12, CV_8UC1, cv::Scalar(77));
  for (const std::string ext : {".png", ".jpg", ".pgm"}) {
    auto r = faceguard::decode_image(encode(grey, ext));
    ASSERT_TRUE(r) << ext;
    EXPECT_EQ(r->type(), CV_8UC3);
    const auto p = r->at<cv::Vec3b>(5, 5);
    EXPECT_NEAR(p[0], 77, 2) << ext;
    EXPECT_EQ(p[0], p[1]);
    EXPECT_EQ(p[1], p[2]);
  }
}

TEST(ImageDecode, AlphaIsCompositedOnWhite) {
  cv::Mat bgra(4, 3, CV_8UC4, cv::Scalar(10, 20, 30, 255));
  bgra.at<cv::Vec4b>(0, 0) = {10, 20, 30, 0};    // fully transparent
  bgra.at<cv::Vec4b>(0, 1) = {0, 0, 0, 128};     // half-transparent black
  auto r = faceguard::decode_image(encode(bgra, ".png"));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->type(), CV_8UC3);
  EXPECT_EQ(r->at<cv::Vec3b>(0, 0), cv::Vec3b(255, 255, 255));
  EXPECT_EQ(r->at<cv::Vec3b>(0, 1), cv::Vec3b(127, 127, 127));
  EXPECT_EQ(r->at<cv::Vec3b>(2, 2), cv::Vec3b(10, 20, 30));
  // Grey + alpha (colour type 4), by hand: 2x1, (grey 0, alpha 0) then (grey 0, alpha 255).
  const Bytes ga = make_png(2, 1, 8, 4, Bytes{0, 0, 0, 0, 255});
  auto g = faceguard::decode_image(ga);
  ASSERT_TRUE(g) << g.error().message;
  EXPECT_EQ(g->at<cv::Vec3b>(0, 0), cv::Vec3b(255, 255, 255));
  EXPECT_EQ(g->at<cv::Vec3b>(0, 1), cv::Vec3b(0, 0, 0));
}

TEST(ImageDecode, PalettePng) {
  // 2x2, 8-bit palette: entries red and blue; rows "0 1" and "1 0" (each row led by filter byte 0).
  const Bytes plte = {255, 0, 0, 0, 0, 255};
  const Bytes png = make_png(2, 2, 8, 3, Bytes{0, 0, 1, 0, 1, 0}, {{"PLTE", plte}});
  auto r = faceguard::decode_image(png);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->at<cv::Vec3b>(0, 0), cv::Vec3b(0, 0, 255));  // BGR of red
  EXPECT_EQ(r->at<cv::Vec3b>(0, 1), cv::Vec3b(255, 0, 0));  // BGR of blue
  EXPECT_EQ(r->at<cv::Vec3b>(1, 0), cv::Vec3b(255, 0, 0));
}

namespace {
// CMYK JPEG through libjpeg (dlopen: the test binary does not link libjpeg itself). Inverted CMYK with an
// Adobe marker, as Photoshop writes it. Empty when libjpeg cannot be loaded.
Bytes cmyk_jpeg(int w, int h, std::array<std::uint8_t, 4> ink) {
  void* lib = ::dlopen("libjpeg.so.62", RTLD_NOW | RTLD_LOCAL);
  if (!lib) return {};
  auto sym = [&](const char* n) { return ::dlsym(lib, n); };
  auto std_error = reinterpret_cast<jpeg_error_mgr* (*)(jpeg_error_mgr*)>(sym("jpeg_std_error"));
  auto create = reinterpret_cast<void (*)(j_compress_ptr, int, size_t)>(sym("jpeg_CreateCompress"));
  auto mem_dest = reinterpret_cast<void (*)(j_compress_ptr, unsigned char**, unsigned long*)>(sym("jpeg_mem_dest"));
  auto set_defaults = reinterpret_cast<void (*)(j_compress_ptr)>(sym("jpeg_set_defaults"));
  auto set_colorspace = reinterpret_cast<void (*)(j_compress_ptr, J_COLOR_SPACE)>(sym("jpeg_set_colorspace"));
  auto start = reinterpret_cast<void (*)(j_compress_ptr, boolean)>(sym("jpeg_start_compress"));
  auto write_lines = reinterpret_cast<JDIMENSION (*)(j_compress_ptr, JSAMPARRAY, JDIMENSION)>(sym("jpeg_write_scanlines"));
  auto finish = reinterpret_cast<void (*)(j_compress_ptr)>(sym("jpeg_finish_compress"));
  auto destroy = reinterpret_cast<void (*)(j_compress_ptr)>(sym("jpeg_destroy_compress"));
  if (!std_error || !create || !mem_dest || !set_defaults || !set_colorspace || !start || !write_lines || !finish || !destroy) {
    ::dlclose(lib);
    return {};
  }
  jpeg_compress_struct c{};
  jpeg_error_mgr err{};
  c.err = std_error(&err);
  create(&c, JPEG_LIB_VERSION, sizeof c);
  unsigned char* out = nullptr;
  unsigned long n = 0;
  mem_dest(&c, &out, &n);
  c.image_width = static_cast<JDIMENSION>(w);
  c.image_height = static_cast<JDIMENSION>(h);
  c.input_components = 4;
  c.in_color_space = JCS_CMYK;
  set_defaults(&c);
  set_colorspace(&c, JCS_CMYK);
  start(&c, TRUE);
  std::vector<std::uint8_t> row(static_cast<std::size_t>(w) * 4);
  for (int x = 0; x < w; ++x)
    for (int k = 0; k < 4; ++k) row[static_cast<std::size_t>(x) * 4 + k] = static_cast<std::uint8_t>(255 - ink[k]);
  for (int y = 0; y < h; ++y) {
    JSAMPROW r = row.data();
    write_lines(&c, &r, 1);
  }
  finish(&c);
  Bytes v(out, out + n);
  std::free(out);
  destroy(&c);
  ::dlclose(lib);
  return v;
}
}  // namespace

TEST(ImageDecode, CmykJpeg) {
  // Ink C=0 M=100% Y=100% K=0 is red.
  const Bytes j = cmyk_jpeg(16, 8, {0, 255, 255, 0});
  if (j.empty()) GTEST_SKIP() << "libjpeg.so.62 not loadable: cannot build a CMYK JPEG";
  auto r = faceguard::decode_image(j);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->type(), CV_8UC3);
  EXPECT_EQ(r->cols, 16);
  EXPECT_TRUE(is_red(r->at<cv::Vec3b>(4, 8))) << r->at<cv::Vec3b>(4, 8);
}

TEST(ImageDecode, ExifOrientationIsApplied) {
  const cv::Mat m = card(40, 20);  // blue block top-left
  auto r6 = faceguard::decode_image(jpeg_with_orientation(m, 6));
  ASSERT_TRUE(r6) << r6.error().message;
  EXPECT_EQ(r6->cols, 20);  // transposed
  EXPECT_EQ(r6->rows, 40);
  EXPECT_TRUE(is_blue(r6->at<cv::Vec3b>(2, 17)));  // rotated 90 degrees clockwise: now top-right
  EXPECT_TRUE(is_red(r6->at<cv::Vec3b>(2, 2)));

  auto r8 = faceguard::decode_image(jpeg_with_orientation(m, 8, false));
  ASSERT_TRUE(r8);
  EXPECT_EQ(r8->cols, 20);
  EXPECT_TRUE(is_blue(r8->at<cv::Vec3b>(37, 2)));  // counter-clockwise: bottom-left

  auto r3 = faceguard::decode_image(jpeg_with_orientation(m, 3));
  ASSERT_TRUE(r3);
  EXPECT_EQ(r3->cols, 40);
  EXPECT_TRUE(is_blue(r3->at<cv::Vec3b>(17, 37)));

  DecodeOptions keep;
  keep.apply_exif_orientation = false;
  auto raw = faceguard::decode_image(jpeg_with_orientation(m, 6), keep);
  ASSERT_TRUE(raw);
  EXPECT_EQ(raw->cols, 40);

  // PNG eXIf chunk: a 3x2 RGB image, orientation 6 -> 2x3.
  const Bytes rows = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  const Bytes png = make_png(3, 2, 8, 2, Bytes(rows.begin(), rows.begin() + 20), {{"eXIf", exif_block(6, true)}});
  auto p = faceguard::decode_image(png);
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_EQ(p->cols, 2);
  EXPECT_EQ(p->rows, 3);

  // A malformed EXIF block never fails the decode.
  Bytes bad = jpeg_with_orientation(m, 6);
  bad[2 + 10 + 7] = 0xF0;  // IFD offset far outside the block
  auto b = faceguard::decode_image(bad);
  ASSERT_TRUE(b) << b.error().message;
  EXPECT_EQ(b->cols, 40);
}

TEST(ImageDecode, TruncatedBodiesAreCorrupt) {
  cv::Mat noise(120, 160, CV_8UC3);
  cv::randu(noise, 0, 255);
  for (const std::string ext : {".jpg", ".png", ".webp", ".tiff", ".bmp"}) {
    const Bytes b = encode(noise, ext);
    for (double frac : {0.3, 0.7, 0.99}) {
      const auto cut = static_cast<std::size_t>(static_cast<double>(b.size()) * frac);
      if (ext == ".tiff" && frac > 0.9) continue;  // OpenCV's TIFF puts the IFD last: that is a header cut
      auto r = faceguard::decode_image(std::span(b.data(), cut));
      ASSERT_FALSE(r) << ext << " cut to " << frac;
      EXPECT_EQ(r.error().code, ErrorCode::kCorruptData) << ext << ": " << r.error().message;
    }
  }
  // A JPEG missing only its EOI marker is still truncated; one with bytes after EOI is fine.
  Bytes j = encode(noise, ".jpg");
  auto no_eoi = faceguard::decode_image(std::span(j.data(), j.size() - 2));
  ASSERT_FALSE(no_eoi);
  EXPECT_NE(no_eoi.error().message.find("truncated or corrupt image"), std::string::npos);
  j.insert(j.end(), {'t', 'r', 'a', 'i', 'l', 'e', 'r'});
  EXPECT_TRUE(faceguard::decode_image(j));
  // A flipped bit inside a PNG chunk is caught by its CRC.
  Bytes png = encode(noise, ".png");
  png[png.size() / 2] ^= 0x10;
  auto crc = faceguard::decode_image(png);
  ASSERT_FALSE(crc);
  EXPECT_EQ(crc.error().code, ErrorCode::kCorruptData);
  EXPECT_NE(crc.error().message.find("CRC"), std::string::npos);
}

TEST(ImageDecode, GarbageNeverCrashes) {
  std::mt19937 rng(7);
  const Bytes seeds[] = {encode(card(), ".jpg"), encode(card(), ".png"), encode(card(), ".webp"), encode(card(), ".bmp")};
  for (int i = 0; i < 300; ++i) {
    Bytes b = seeds[i % 4];
    for (int k = 0; k < 4; ++k) b[8 + rng() % (b.size() - 8)] = static_cast<std::uint8_t>(rng());
    auto r = faceguard::decode_image(b);
    if (r) {
      EXPECT_EQ(r->type(), CV_8UC3);
    } else {
      EXPECT_NE(r.error().code, ErrorCode::kInternal) << r.error().message;
    }
  }
}

// ---- load -------------------------------------------------------------------------------------------

TEST(ImageLoad, FileErrors) {
  TempDir t;
  auto missing = faceguard::load_image(t.path() / "nope.jpg");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
  auto dir = faceguard::load_image(t.path());
  ASSERT_FALSE(dir);
  EXPECT_EQ(dir.error().code, ErrorCode::kInvalidArgument);
  auto empty = faceguard::load_image(t.write("empty.jpg", {}));
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().code, ErrorCode::kCorruptData);
  EXPECT_NE(empty.error().message.find("empty file"), std::string::npos);
  const std::string text = "name,age\nalice,30\n";
  auto txt = faceguard::load_image(t.write("data.jpg", Bytes(text.begin(), text.end())));
  ASSERT_FALSE(txt);
  EXPECT_EQ(txt.error().code, ErrorCode::kUnsupportedFormat);
  const Bytes png = encode(card(), ".png");
  auto cut = faceguard::load_image(t.write("cut.png", Bytes(png.begin(), png.begin() + static_cast<std::ptrdiff_t>(png.size() / 2))));
  ASSERT_FALSE(cut);
  EXPECT_EQ(cut.error().code, ErrorCode::kCorruptData);
  auto ok = faceguard::load_image(t.write("card.png", png));
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_EQ(ok->cols, 37);
  DecodeOptions small;
  small.max_bytes = 16;
  EXPECT_EQ(faceguard::load_image(t.path() / "card.png", small).error().code, ErrorCode::kImageTooLarge);
}
