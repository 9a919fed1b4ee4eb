// The PASCAL VOC annotation reader on small hand-written files: what the masks set, the VOC devkit and
// labelImg write, and the malformed files it must refuse with a reason.
#include <gtest/gtest.h>

#include <string>

#include "pipeline/voc.hpp"

namespace {

using faceguard::ErrorCode;
using faceguard::eval::voc::parse_annotation;

TEST(VocReader, ReadsTheMasksSetLayout) {
  const std::string xml = R"(<annotation>
    <folder>images</folder>
    <filename>maksssksksss1.jpg</filename>
    <size><width>400</width><height>156</height><depth>3</depth></size>
    <segmented>0</segmented>
    <object>
        <name>con_mascarilla</name><pose>Unspecified</pose><truncated>0</truncated><occluded>0</occluded>
        <difficult>0</difficult>
        <bndbox><xmin>321</xmin><ymin>34</ymin><xmax>354</xmax><ymax>69</ymax></bndbox>
    </object>
    <object>
        <name> sin_mascarilla </name><difficult>1</difficult><truncated>1</truncated>
        <bndbox><xmin> 83 </xmin><ymin>56</ymin><xmax>111.5</xmax><ymax>89</ymax></bndbox>
    </object>
</annotation>)";
  auto a = parse_annotation(xml);
  ASSERT_TRUE(a) << a.error().message;
  EXPECT_EQ(a->filename, "maksssksksss1.jpg");
  EXPECT_EQ(a->width, 400);
  EXPECT_EQ(a->height, 156);
  EXPECT_EQ(a->depth, 3);
  ASSERT_EQ(a->objects.size(), 2u);
  EXPECT_EQ(a->objects[0].name, "con_mascarilla");
  EXPECT_DOUBLE_EQ(a->objects[0].xmin, 321);
  EXPECT_DOUBLE_EQ(a->objects[0].ymin, 34);
  EXPECT_DOUBLE_EQ(a->objects[0].xmax, 354);
  EXPECT_DOUBLE_EQ(a->objects[0].ymax, 69);
  EXPECT_FALSE(a->objects[0].difficult);
  EXPECT_FALSE(a->objects[0].truncated);
  EXPECT_EQ(a->objects[1].name, "sin_mascarilla");  // trimmed
  EXPECT_DOUBLE_EQ(a->objects[1].xmin, 83);
  EXPECT_DOUBLE_EQ(a->objects[1].xmax, 111.5);
  EXPECT_TRUE(a->objects[1].difficult);
  EXPECT_TRUE(a->objects[1].truncated);
}

TEST(VocReader, PrologCommentsAttributesEntitiesCdataAndParts) {
  const std::string xml =
      "\xEF\xBB\xBF<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<!-- written by hand -->\n"
      "<annotation verified='yes'>\n"
      "  <source><annotation>PASCAL VOC2007</annotation></source>\n"
      "  <filename>a &amp; b &lt;c&gt; &quot;d&quot; &apos;e&apos;.png</filename>\n"
      "  <object><name>face&#32;&#x41;&#xE9;</name>\n"
      "    <bndbox><xmin>1</xmin><ymin>2</ymin><xmax>3</xmax><ymax>4</ymax></bndbox>\n"
      "    <part><name>head</name><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>3</xmax><ymax>4</ymax></bndbox></part>\n"
      "  </object>\n"
      "  <object><name><![CDATA[x<y>]]></name><bndbox><xmin>-5</xmin><ymin>0</ymin><xmax>1e2</xmax><ymax>7</ymax></bndbox></object>\n"
      "  <segmented/>\n"
      "</annotation>\n<!-- trailing comment -->\n";
  auto a = parse_annotation(xml);
  ASSERT_TRUE(a) << a.error().message;
  EXPECT_EQ(a->filename, "a & b <c> \"d\" 'e'.png");
  EXPECT_EQ(a->width, 0);  // no <size>
  ASSERT_EQ(a->objects.size(), 2u);  // the <part> is not an object of its own
  EXPECT_EQ(a->objects[0].name, "face A\xC3\xA9");
  EXPECT_EQ(a->objects[1].name, "x<y>");
  EXPECT_DOUBLE_EQ(a->objects[1].xmin, -5);  // boxes past the edge are the caller's business
  EXPECT_DOUBLE_EQ(a->objects[1].xmax, 100);
}

TEST(VocReader, AnnotationWithoutObjects) {
  auto a = parse_annotation("<annotation><size><width>10</width><height>20</height></size></annotation>");
  ASSERT_TRUE(a) << a.error().message;
  EXPECT_TRUE(a->objects.empty());
  EXPECT_EQ(a->height, 20);
}

struct Malformed {
  const char* what;
  std::string xml;
  const char* says;  // a fragment of the message
};

TEST(VocReader, RefusesMalformedFilesWithAReason) {
  const std::string box = "<bndbox><xmin>1</xmin><ymin>2</ymin><xmax>3</xmax><ymax>4</ymax></bndbox>";
  std::string deep = "<annotation>";
  for (int i = 0; i < 40; ++i) deep += "<a>";
  for (int i = 0; i < 40; ++i) deep += "</a>";
  deep += "</annotation>";
  const Malformed cases[] = {
      {"empty", "", "root element"},
      {"only text", "hello", "root element"},
      {"unclosed root", "<annotation><object><name>f</name></object>", "unclosed <annotation>"},
      {"mismatched close", "<annotation><size></object></annotation>", "</object> closes <size>"},
      {"truncated tag", "<annotation><obj", "malformed tag"},
      {"unterminated comment", "<annotation><!-- x </annotation>", "unterminated comment"},
      {"doctype", "<!DOCTYPE a [<!ENTITY x \"xx\">]><annotation>&x;</annotation>", "document type"},
      {"unknown entity", "<annotation><filename>&x;</filename></annotation>", "unknown entity"},
      {"bare ampersand", "<annotation><filename>a & b</filename></annotation>", "entity"},
      {"bad char ref", "<annotation><filename>&#0;</filename></annotation>", "character reference"},
      {"surrogate char ref", "<annotation><filename>&#xD800;</filename></annotation>", "character reference"},
      {"unquoted attribute", "<annotation verified=yes></annotation>", "quoted attribute"},
      {"content after root", "<annotation></annotation><annotation></annotation>", "after the root"},
      {"text after root", "<annotation></annotation>junk", "after the root"},
      {"wrong root", "<doc></doc>", "not <annotation>"},
      {"too deep", deep, "nested too deeply"},
      {"object without name", "<annotation><object>" + box + "</object></annotation>", "no <name>"},
      {"object without box", "<annotation><object><name>face</name></object></annotation>", "no <bndbox>"},
      {"missing ymax", "<annotation><object><name>f</name><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>3</xmax></bndbox></object></annotation>", "no <ymax>"},
      {"non-numeric coordinate", "<annotation><object><name>f</name><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>3px</xmax><ymax>4</ymax></bndbox></object></annotation>", "<xmax> is not a number"},
      {"empty coordinate", "<annotation><object><name>f</name><bndbox><xmin></xmin><ymin>2</ymin><xmax>3</xmax><ymax>4</ymax></bndbox></object></annotation>", "<xmin> is not a number"},
      {"infinite coordinate", "<annotation><object><name>f</name><bndbox><xmin>inf</xmin><ymin>2</ymin><xmax>3</xmax><ymax>4</ymax></bndbox></object></annotation>", "<xmin> is not a number"},
      {"bad difficult", "<annotation><object><name>f</name><difficult>2</difficult>" + box + "</object></annotation>", "<difficult> must be 0 or 1"},
      {"negative width", "<annotation><size><width>-4</width></size></annotation>", "<width> is not a size"},
  };
  for (const auto& c : cases) {
    auto a = parse_annotation(c.xml);
    ASSERT_FALSE(a) << c.what;
    EXPECT_EQ(a.error().code, ErrorCode::kCorruptData) << c.what;
    EXPECT_NE(a.error().message.find(c.says), std::string::npos) << c.what << ": " << a.error().message;
  }
}

TEST(VocReader, RefusesOversizedInput) {
  std::string big = "<annotation>" + std::string(faceguard::eval::voc::kMaxBytes, ' ') + "</annotation>";
  auto a = parse_annotation(big);
  ASSERT_FALSE(a);
  EXPECT_EQ(a.error().code, ErrorCode::kCorruptData);
}

TEST(VocReader, SyntaxErrorsGiveTheByteOffset) {
  // The offset is just past the offending tag: "</sizes>" ends at byte 29.
  auto a = parse_annotation("<annotation>\n  <size></sizes>\n</annotation>");
  ASSERT_FALSE(a);
  EXPECT_NE(a.error().message.find("at byte 29"), std::string::npos) << a.error().message;
}

}  // namespace
