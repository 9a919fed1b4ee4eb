// A reader for PASCAL VOC annotation files (one XML file per image, as written by the VOC devkit and by
// labelImg): the file name, the image size and each object's name, box and difficult flag.
//
//   auto a = faceguard::eval::voc::parse_annotation(xml_text);
//   if (!a) return a.error();                       // kCorruptData, naming what is wrong and where
//   for (const auto& o : a->objects) use(o.name, o.xmin, o.ymin, o.xmax, o.ymax, o.difficult);
//
// The XML subset is what those tools write: a prolog, comments, elements with attributes (ignored), text
// with the five predefined entities and numeric character references, CDATA sections. A document type
// declaration is refused (no entity expansion, so no "billion laughs"), and so is anything malformed:
// unbalanced or mismatched tags, text outside the root, nesting deeper than kMaxDepth, more than kMaxNodes
// elements. Coordinates must be finite numbers; nothing is assumed about whether they lie inside the image
// (the caller decides what to do with boxes that run past the edge).
// Thread safety: pure functions.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "faceguard/result.hpp"

namespace faceguard::eval::voc {

inline constexpr std::size_t kMaxBytes = 4u << 20;  // a VOC file is a few kB; anything near this is not one
inline constexpr int kMaxDepth = 32;                // VOC nests 3 deep (annotation/object/bndbox), parts 4
inline constexpr int kMaxNodes = 200'000;           // ~10,000 objects, far above any real image

struct Object {
  std::string name;
  // VOC pixel coordinates as written (the devkit's are 1-based and inclusive; labelImg's 0-based).
  double xmin = 0, ymin = 0, xmax = 0, ymax = 0;
  bool difficult = false;  // <difficult>1</difficult>: excluded from the VOC evaluation
  bool truncated = false;
};

struct Annotation {
  std::string filename;  // <filename>, may be empty
  int width = 0;         // <size>; 0 when the file has no size element
  int height = 0;
  int depth = 0;
  std::vector<Object> objects;
};

// kCorruptData (with a byte offset for syntax errors) on malformed XML, a root other than <annotation>, an
// object without <name> or <bndbox>, a missing or non-numeric coordinate, or an unreadable size or flag.
Result<Annotation> parse_annotation(std::string_view xml);

}  // namespace faceguard::eval::voc
