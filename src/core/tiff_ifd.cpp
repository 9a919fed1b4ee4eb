#include "core/tiff_ifd.hpp"

namespace faceguard::image_detail {

namespace {

class Reader {
 public:
  Reader(std::span<const std::uint8_t> b, bool big_endian) : b_(b), be_(big_endian) {}
  bool has(std::uint64_t off, std::uint64_t n) const { return off <= b_.size() && n <= b_.size() - off; }
  std::uint64_t get(std::uint64_t off, int n) const {  // caller checked has(off, n)
    std::uint64_t v = 0;
    for (int i = 0; i < n; ++i) {
      const std::uint64_t byte = b_[off + static_cast<std::uint64_t>(be_ ? i : n - 1 - i)];
      v = (v << 8) | byte;
    }
    return v;
  }

 private:
  std::span<const std::uint8_t> b_;
  bool be_;
};

// Size in bytes of one value of a TIFF field type, 0 for unknown types (TIFF 6.0 section 2, BigTIFF).
int type_size(std::uint16_t type) {
  switch (type) {
    case 1: case 2: case 6: case 7: return 1;  // BYTE ASCII SBYTE UNDEFINED
    case 3: case 8: return 2;                  // SHORT SSHORT
    case 4: case 9: case 11: case 13: return 4;  // LONG SLONG FLOAT IFD
    case 5: case 10: case 12: case 16: case 17: case 18: return 8;  // RATIONAL SRATIONAL DOUBLE LONG8 SLONG8 IFD8
    default: return 0;
  }
}

bool is_unsigned_integer(std::uint16_t type) { return type == 1 || type == 3 || type == 4 || type == 16; }

}  // namespace

IfdStatus TiffIfd0::parse(std::span<const std::uint8_t> bytes, TiffIfd0& out) {
  out = TiffIfd0{};
  if (bytes.size() < 2) return IfdStatus::kTruncated;
  bool be;
  if (bytes[0] == 'I' && bytes[1] == 'I') be = false;
  else if (bytes[0] == 'M' && bytes[1] == 'M') be = true;
  else return IfdStatus::kInvalid;
  if (bytes.size() < 8) return IfdStatus::kTruncated;
  const Reader r(bytes, be);
  const std::uint64_t version = r.get(2, 2);
  bool big;
  std::uint64_t ifd;
  if (version == 42) {
    big = false;
    ifd = r.get(4, 4);
  } else if (version == 43) {  // BigTIFF: bytesize 8, reserved 0, 8-byte offset
    if (!r.has(8, 8)) return IfdStatus::kTruncated;
    if (r.get(4, 2) != 8 || r.get(6, 2) != 0) return IfdStatus::kInvalid;
    big = true;
    ifd = r.get(8, 8);
  } else {
    return IfdStatus::kInvalid;
  }
  const int count_size = big ? 8 : 2;
  const int entry_size = big ? 20 : 12;
  const int field_size = big ? 8 : 4;  // the value/offset field of an entry
  if (ifd < 8) return IfdStatus::kInvalid;
  if (!r.has(ifd, count_size)) return IfdStatus::kTruncated;
  const std::uint64_t n = r.get(ifd, count_size);
  if (n == 0 || n > kMaxEntries) return IfdStatus::kInvalid;
  for (std::uint64_t i = 0; i < n; ++i) {
    const std::uint64_t e = ifd + count_size + i * entry_size;
    if (!r.has(e, entry_size)) return IfdStatus::kTruncated;
    IfdEntry entry;
    entry.tag = static_cast<std::uint16_t>(r.get(e, 2));
    entry.type = static_cast<std::uint16_t>(r.get(e + 2, 2));
    entry.count = r.get(e + 4, big ? 8 : 4);
    const std::uint64_t field = e + 4 + (big ? 8 : 4);
    const int ts = type_size(entry.type);
    if (is_unsigned_integer(entry.type) && entry.count >= 1) {
      // Values that fit in the field are stored inline, left-justified; larger ones are elsewhere.
      std::uint64_t at = field;
      if (static_cast<std::uint64_t>(ts) * entry.count > static_cast<std::uint64_t>(field_size)) at = r.get(field, field_size);
      if (r.has(at, ts)) {
        entry.value = r.get(at, ts);
        entry.has_value = true;
      }
    }
    if (entry.tag == kTagImageWidth) out.width_ = entry;
    else if (entry.tag == kTagImageLength) out.length_ = entry;
    else if (entry.tag == kTagOrientation) out.orientation_ = entry;
  }
  return IfdStatus::kOk;
}

std::optional<std::uint64_t> TiffIfd0::integer(std::uint16_t tag) const {
  const IfdEntry* e = tag == kTagImageWidth ? &width_ : tag == kTagImageLength ? &length_
                      : tag == kTagOrientation ? &orientation_ : nullptr;
  if (!e || !e->has_value) return std::nullopt;
  return e->value;
}

int exif_orientation(std::span<const std::uint8_t> tiff_block) {
  TiffIfd0 ifd;
  if (TiffIfd0::parse(tiff_block, ifd) != IfdStatus::kOk) return 1;
  const auto v = ifd.integer(kTagOrientation);
  if (!v || *v < 1 || *v > 8) return 1;
  return static_cast<int>(*v);
}

}  // namespace faceguard::image_detail
