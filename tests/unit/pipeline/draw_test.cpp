// draw_faces() on synthetic images: pixels change where the box, the dots and the label are, and nowhere
// else; odd faces (outside the frame, NaN, huge) are drawn without crashing.
#include <gtest/gtest.h>

#include <limits>

#include "faceguard/draw.hpp"

namespace faceguard {
namespace {

bool same_colour(const cv::Vec3b& px, const cv::Scalar& c) {
  return px[0] == c[0] && px[1] == c[1] && px[2] == c[2];
}

Face face_at(float x, float y, float w, float h) {
  Face f;
  f.box = {x, y, w, h};
  f.score = 0.9f;
  return f;
}

TEST(Draw, BoxEdgesTakeTheFaceColourAndTheRestIsUntouched) {
  cv::Mat img(200, 300, CV_8UC3, cv::Scalar(0, 0, 0));
  std::vector<Face> faces{face_at(100, 80, 60, 70)};
  DrawOptions o;
  o.labels = false;
  o.thickness = 1;
  ASSERT_TRUE(draw_faces(img, faces, {}, o));
  const cv::Scalar c = face_colour(0);
  EXPECT_TRUE(same_colour(img.at<cv::Vec3b>(80, 130), c));   // top edge
  EXPECT_TRUE(same_colour(img.at<cv::Vec3b>(115, 100), c));  // left edge
  EXPECT_TRUE(same_colour(img.at<cv::Vec3b>(150, 130), c));  // bottom edge
  EXPECT_EQ(img.at<cv::Vec3b>(115, 130), cv::Vec3b(0, 0, 0));  // inside
  EXPECT_EQ(img.at<cv::Vec3b>(10, 10), cv::Vec3b(0, 0, 0));    // far away
}

TEST(Draw, LandmarksAndLabels) {
  cv::Mat img(200, 300, CV_8UC3, cv::Scalar(0, 0, 0));
  Face f = face_at(100, 80, 60, 70);
  f.scheme = LandmarkScheme::kFivePoint;
  f.landmarks = {{115, 100}, {145, 100}, {130, 115}, {118, 135}, {142, 135}};
  std::vector<Face> faces{f};
  DrawOptions o;
  o.boxes = false;
  o.labels = false;
  o.thickness = 1;
  ASSERT_TRUE(draw_faces(img, faces, {}, o));
  EXPECT_TRUE(same_colour(img.at<cv::Vec3b>(115, 130), face_colour(0)));  // nose dot
  EXPECT_EQ(img.at<cv::Vec3b>(80, 130), cv::Vec3b(0, 0, 0));             // no box drawn

  // A label paints a filled tag above the box.
  cv::Mat lab(200, 300, CV_8UC3, cv::Scalar(0, 0, 0));
  std::vector<std::string> labels{"anna"};
  ASSERT_TRUE(draw_faces(lab, faces, labels));
  const cv::Mat above = lab(cv::Rect(100, 40, 60, 39));
  EXPECT_GT(cv::countNonZero(above.reshape(1)), 100);
  // An empty label draws no tag.
  cv::Mat none(200, 300, CV_8UC3, cv::Scalar(0, 0, 0));
  std::vector<std::string> blank{""};
  DrawOptions nb;
  nb.boxes = false;
  nb.landmarks = false;
  ASSERT_TRUE(draw_faces(none, faces, blank, nb));
  EXPECT_EQ(cv::countNonZero(none.reshape(1)), 0);
}

TEST(Draw, PaletteDistinguishesNeighbours) {
  for (std::size_t i = 0; i + 1 < 10; ++i) EXPECT_NE(face_colour(i), face_colour(i + 1));
  EXPECT_EQ(face_colour(3), face_colour(13));
}

TEST(Draw, OddFacesDoNotCrash) {
  cv::Mat img(50, 40, CV_8UC3, cv::Scalar(10, 20, 30));
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<Face> faces{face_at(-30, -30, 20, 20), face_at(35, 45, 500, 500), face_at(nan, 0, 10, 10),
                          face_at(3e30f, -3e30f, 1e30f, 1e30f), face_at(0, 0, 0, 0)};
  faces[1].landmarks = {{nan, nan}, {1e30f, 5}, {20, 20}};
  ASSERT_TRUE(draw_faces(img, faces));
}

TEST(Draw, RefusesWrongImagesAndLabelCounts) {
  std::vector<Face> faces{face_at(1, 1, 5, 5)};
  cv::Mat grey(20, 20, CV_8UC1, cv::Scalar(0));
  auto s = draw_faces(grey, faces);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, ErrorCode::kInvalidArgument);
  cv::Mat empty;
  EXPECT_FALSE(draw_faces(empty, faces));
  cv::Mat img(20, 20, CV_8UC3);
  std::vector<std::string> two{"a", "b"};
  auto l = draw_faces(img, faces, two);
  ASSERT_FALSE(l);
  EXPECT_EQ(l.error().code, ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace faceguard
