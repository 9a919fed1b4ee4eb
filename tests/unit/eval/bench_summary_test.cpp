// The bench's statistics: median (odd and even counts), min, max and the CPU-time median.
#include <gtest/gtest.h>

#include "faceguard/eval.hpp"

namespace {

TEST(EvalBench, SummariseMedianMinMax) {
  auto t = faceguard::eval::summarise("detect/ssd", "ms/image", {5.0, 1.0, 3.0}, {2.0, 4.0, 3.0});
  EXPECT_EQ(t.stage, "detect/ssd");
  EXPECT_EQ(t.unit, "ms/image");
  EXPECT_EQ(t.samples, 3);
  EXPECT_DOUBLE_EQ(t.median_ms, 3.0);
  EXPECT_DOUBLE_EQ(t.min_ms, 1.0);
  EXPECT_DOUBLE_EQ(t.max_ms, 5.0);
  EXPECT_DOUBLE_EQ(t.cpu_median_ms, 3.0);
  auto even = faceguard::eval::summarise("x", "ms", {4.0, 1.0, 2.0, 10.0});
  EXPECT_DOUBLE_EQ(even.median_ms, 3.0);
  EXPECT_DOUBLE_EQ(even.cpu_median_ms, 0.0);
  auto empty = faceguard::eval::summarise("x", "ms", {});
  EXPECT_EQ(empty.samples, 0);
  EXPECT_DOUBLE_EQ(empty.median_ms, 0.0);
}

}  // namespace
