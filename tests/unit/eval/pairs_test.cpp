// Pair-list parsing: LFW's pairs*.txt format and the a,b,same CSV.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "faceguard/eval.hpp"

namespace {

using faceguard::ErrorCode;
namespace eval = faceguard::eval;

TEST(EvalPairs, LfwImagePath) {
  EXPECT_EQ(eval::lfw_image_path("imgs", "Aaron_Peirsol", 3), std::filesystem::path("imgs/Aaron_Peirsol/Aaron_Peirsol_0003.jpg"));
  EXPECT_EQ(eval::lfw_image_path("", "A", 1234), std::filesystem::path("A/A_1234.jpg"));
}

TEST(EvalPairs, ParsesCountHeaderFile) {
  const char* text = "2\nAaron_Peirsol\t1\t2\nBo  3 4\r\nAJ_Cook\t1\tMarsha_Thomason\t1\nX 2 Y 10\n\n";
  auto r = eval::parse_lfw_pairs(text, "im");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->folds, 0);
  ASSERT_EQ(r->pairs.size(), 4u);
  EXPECT_TRUE(r->pairs[0].same);
  EXPECT_EQ(r->pairs[0].a, std::filesystem::path("im/Aaron_Peirsol/Aaron_Peirsol_0001.jpg"));
  EXPECT_EQ(r->pairs[0].b, std::filesystem::path("im/Aaron_Peirsol/Aaron_Peirsol_0002.jpg"));
  EXPECT_EQ(r->pairs[1].b, std::filesystem::path("im/Bo/Bo_0004.jpg"));
  EXPECT_FALSE(r->pairs[2].same);
  EXPECT_EQ(r->pairs[2].b, std::filesystem::path("im/Marsha_Thomason/Marsha_Thomason_0001.jpg"));
  EXPECT_EQ(r->pairs[3].b, std::filesystem::path("im/Y/Y_0010.jpg"));
  EXPECT_EQ(r->pairs[3].fold, -1);
}

TEST(EvalPairs, ParsesFoldsHeaderFile) {
  // 2 folds of 1 matched + 1 mismatched each (pairs.txt style).
  const char* text = "2 1\nA 1 2\nA 1 B 1\nC 1 3\nC 2 D 4\n";
  auto r = eval::parse_lfw_pairs(text, "");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->folds, 2);
  ASSERT_EQ(r->pairs.size(), 4u);
  EXPECT_EQ(r->pairs[0].fold, 0);
  EXPECT_EQ(r->pairs[1].fold, 0);
  EXPECT_EQ(r->pairs[2].fold, 1);
  EXPECT_TRUE(r->pairs[2].same);
  EXPECT_FALSE(r->pairs[3].same);
  EXPECT_EQ(r->pairs[3].a, std::filesystem::path("C/C_0002.jpg"));
}

TEST(EvalPairs, RefusesMalformedLfw) {
  EXPECT_EQ(eval::parse_lfw_pairs("", "").error().code, ErrorCode::kCorruptData);
  EXPECT_FALSE(eval::parse_lfw_pairs("x\nA 1 2\n", ""));
  EXPECT_FALSE(eval::parse_lfw_pairs("1\nA 1 2\n", ""));              // missing mismatched line
  EXPECT_FALSE(eval::parse_lfw_pairs("1\nA 1 B 2\nA 1 B 2\n", ""));   // matched line has 4 fields
  EXPECT_FALSE(eval::parse_lfw_pairs("1\nA 1 2\nA 1 2\n", ""));       // mismatched line has 3 fields
  EXPECT_FALSE(eval::parse_lfw_pairs("1\nA 1 2\nA 1 B 2\nC 1 2\n", ""));  // extra line
  EXPECT_FALSE(eval::parse_lfw_pairs("1\nA 0 2\nA 1 B 2\n", ""));     // numbering starts at 1
  EXPECT_FALSE(eval::parse_lfw_pairs("1\nA x 2\nA 1 B 2\n", ""));
  auto r = eval::parse_lfw_pairs("1\nA 1 2\nA 1 2\n", "");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("line 3"), std::string::npos) << r.error().message;
}

TEST(EvalPairs, ParsesCsv) {
  const char* text = "a,b,same\nx.jpg, y.jpg ,1\n/abs/z.jpg,\"q,r.jpg\",No\n\nm.jpg,n.jpg,TRUE\n";
  auto r = eval::parse_csv_pairs(text, "root");
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r->pairs.size(), 3u);
  EXPECT_EQ(r->pairs[0].a, std::filesystem::path("root/x.jpg"));
  EXPECT_EQ(r->pairs[0].b, std::filesystem::path("root/y.jpg"));
  EXPECT_TRUE(r->pairs[0].same);
  EXPECT_EQ(r->pairs[1].a, std::filesystem::path("/abs/z.jpg"));
  EXPECT_EQ(r->pairs[1].b, std::filesystem::path("root/q,r.jpg"));
  EXPECT_FALSE(r->pairs[1].same);
  EXPECT_TRUE(r->pairs[2].same);
}

TEST(EvalPairs, RefusesMalformedCsv) {
  EXPECT_FALSE(eval::parse_csv_pairs("", ""));
  EXPECT_FALSE(eval::parse_csv_pairs("a,b,same\n", ""));           // header only
  EXPECT_FALSE(eval::parse_csv_pairs("x,y,1\nx,y,maybe\n", ""));   // bad flag after the first line
  EXPECT_FALSE(eval::parse_csv_pairs("x,y\n", ""));
  EXPECT_FALSE(eval::parse_csv_pairs("x,\"y,1\n", ""));            // unterminated quote
  EXPECT_FALSE(eval::parse_csv_pairs("x,,1\n", ""));
}

TEST(EvalPairs, LoadPairsByExtensionAndUniqueImages) {
  const auto dir = std::filesystem::temp_directory_path() / "fg_eval_pairs_test";
  std::filesystem::create_directories(dir);
  {
    std::ofstream(dir / "p.csv") << "a.jpg,b.jpg,1\nb.jpg,c.jpg,0\n";
    std::ofstream(dir / "p.txt") << "1\nA 1 2\nA 1 B 1\n";
  }
  auto c = eval::load_pairs(dir / "p.csv", "i");
  ASSERT_TRUE(c) << c.error().message;
  auto u = eval::unique_images(*c);
  ASSERT_EQ(u.size(), 3u);
  EXPECT_EQ(u[1], std::filesystem::path("i/b.jpg"));
  auto t = eval::load_pairs(dir / "p.txt", "i");
  ASSERT_TRUE(t) << t.error().message;
  EXPECT_EQ(eval::unique_images(*t).size(), 3u);
  EXPECT_EQ(eval::load_pairs(dir / "absent.txt", "i").error().code, ErrorCode::kNotFound);
  std::filesystem::remove_all(dir);
}

}  // namespace
