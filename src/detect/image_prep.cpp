#include "detect/image_prep.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include <opencv2/imgproc.hpp>

namespace faceguard::detect {

Result<cv::Mat> to_bgr8(const cv::Mat& image) {
  if (image.empty() || image.cols <= 0 || image.rows <= 0) {
    return make_error(ErrorCode::kInvalidArgument, "detect: the image is empty");
  }
  if (image.dims != 2) return make_error(ErrorCode::kInvalidArgument, "detect: the image must be 2-D");
  if (image.depth() != CV_8U) {
    return make_error(ErrorCode::kInvalidArgument,
                      "detect: the image must be 8-bit (got OpenCV depth " + std::to_string(image.depth()) + ")");
  }
  switch (image.channels()) {
    case 3:
      return image;
    case 1: {
      cv::Mat bgr;
      cv::cvtColor(image, bgr, cv::COLOR_GRAY2BGR);
      return bgr;
    }
    case 4: {
      cv::Mat bgr;
      cv::cvtColor(image, bgr, cv::COLOR_BGRA2BGR);
      return bgr;
    }
    default:
      return make_error(ErrorCode::kInvalidArgument, "detect: the image must have 1, 3 or 4 channels (got " +
                                                         std::to_string(image.channels()) + ")");
  }
}

ReshapedDims face_api_reshaped_dims(int width, int height, int input_size) {
  // face-api utils/index.ts computeReshapedDimensions, in double as JavaScript computes it.
  const double scale = static_cast<double>(input_size) / std::max(width, height);
  return {static_cast<int>(std::floor(width * scale + 0.5)), static_cast<int>(std::floor(height * scale + 0.5))};
}

namespace {

// One axis of tfjs's resizeBilinear with alignCorners=false, halfPixelCenters=false
// (tfjs-backend-cpu ResizeBilinear: source = ratio * dst, floor/ceil clamped to the input).
struct AxisTap {
  int lo = 0;
  int hi = 0;
  double frac = 0.0;
};

std::vector<AxisTap> axis_taps(int in_size, int out_size) {
  std::vector<AxisTap> taps(static_cast<std::size_t>(out_size));
  const double ratio = static_cast<double>(in_size) / out_size;
  for (int i = 0; i < out_size; ++i) {
    const double src = ratio * i;
    const int lo = std::max(0, static_cast<int>(std::floor(src)));
    taps[static_cast<std::size_t>(i)] = {lo, std::min(in_size - 1, static_cast<int>(std::ceil(src))), src - lo};
  }
  return taps;
}

// k x k block mean of an 8-bit 3-channel image (the top-left k*floor(w/k) x k*floor(h/k) pixels), equal to
// cv::resize(..., INTER_AREA) at an integer factor: the same sum and the same rounding
// (saturate_cast<uchar>(sum * (1.f / (k * k))), OpenCV's resizeAreaFast). Separable: k source rows are
// summed into one 16-bit row (vectorised by the compiler), then k pixels of it; OpenCV's generic
// integer-factor path gathers k*k pixels per output through an offset table, 4 ms for 1920 px at k = 7
// where this takes well under 1. k <= 16 keeps the 16-bit sums from overflowing (16 * 16 * 255 < 65536).
constexpr int kMaxFastBlock = 16;

void block_mean(const cv::Mat& src, int k, cv::Mat& dst) {
  const int ow = src.cols / k, oh = src.rows / k;
  const std::size_t row = static_cast<std::size_t>(ow) * static_cast<std::size_t>(k) * 3;
  dst.create(oh, ow, CV_8UC3);
  std::vector<std::uint16_t> acc(row);
  const float scale = 1.f / static_cast<float>(k * k);
  for (int y = 0; y < oh; ++y) {
    const std::uint8_t* first = src.ptr<std::uint8_t>(y * k);
    std::uint16_t* a = acc.data();
    for (std::size_t i = 0; i < row; ++i) a[i] = first[i];
    for (int j = 1; j < k; ++j) {
      const std::uint8_t* r = src.ptr<std::uint8_t>(y * k + j);
      for (std::size_t i = 0; i < row; ++i) a[i] = static_cast<std::uint16_t>(a[i] + r[i]);
    }
    std::uint8_t* d = dst.ptr<std::uint8_t>(y);
    for (int x = 0; x < ow; ++x, a += 3 * k, d += 3) {
      int s0 = 0, s1 = 0, s2 = 0;
      for (int j = 0; j < 3 * k; j += 3) {
        s0 += a[j];
        s1 += a[j + 1];
        s2 += a[j + 2];
      }
      d[0] = cv::saturate_cast<std::uint8_t>(static_cast<float>(s0) * scale);
      d[1] = cv::saturate_cast<std::uint8_t>(static_cast<float>(s1) * scale);
      d[2] = cv::saturate_cast<std::uint8_t>(static_cast<float>(s2) * scale);
    }
  }
}

}  // namespace

cv::Mat face_api_input_blob(const cv::Mat& bgr, int size) {
  CV_Assert(bgr.type() == CV_8UC3 && size > 0);
  // The zero padding is virtual: samples beyond the image read 0, as they would from face-api's padded tensor.
  const int square = std::max(bgr.cols, bgr.rows);
  const auto rows = axis_taps(square, size);
  const auto cols = axis_taps(square, size);
  const int dims[] = {1, 3, size, size};
  cv::Mat blob(4, dims, CV_32F);
  float* planes[3] = {blob.ptr<float>(0, 0), blob.ptr<float>(0, 1), blob.ptr<float>(0, 2)};
  const cv::Vec3b kBlack(0, 0, 0);
  for (int r = 0; r < size; ++r) {
    const AxisTap& ry = rows[static_cast<std::size_t>(r)];
    const cv::Vec3b* top = ry.lo < bgr.rows ? bgr.ptr<cv::Vec3b>(ry.lo) : nullptr;
    const cv::Vec3b* bottom = ry.hi < bgr.rows ? bgr.ptr<cv::Vec3b>(ry.hi) : nullptr;
    for (int c = 0; c < size; ++c) {
      const AxisTap& cx = cols[static_cast<std::size_t>(c)];
      const bool lo_in = cx.lo < bgr.cols, hi_in = cx.hi < bgr.cols;
      const cv::Vec3b& tl = top && lo_in ? top[cx.lo] : kBlack;
      const cv::Vec3b& tr = top && hi_in ? top[cx.hi] : kBlack;
      const cv::Vec3b& bl = bottom && lo_in ? bottom[cx.lo] : kBlack;
      const cv::Vec3b& br = bottom && hi_in ? bottom[cx.hi] : kBlack;
      const std::size_t at = static_cast<std::size_t>(r) * static_cast<std::size_t>(size) + static_cast<std::size_t>(c);
      for (int ch = 0; ch < 3; ++ch) {
        const int k = 2 - ch;  // BGR -> RGB
        const double t = tl[k] + (static_cast<double>(tr[k]) - tl[k]) * cx.frac;
        const double b = bl[k] + (static_cast<double>(br[k]) - bl[k]) * cx.frac;
        planes[ch][at] = static_cast<float>(t + (b - t) * ry.frac);
      }
    }
  }
  return blob;
}

Point2f Letterbox::to_source(float nx, float ny) const {
  const float sx = scaled_width > 0 ? static_cast<float>(used_width) / static_cast<float>(scaled_width) : 0.f;
  const float sy = scaled_height > 0 ? static_cast<float>(used_height) / static_cast<float>(scaled_height) : 0.f;
  return {(nx * static_cast<float>(size) - static_cast<float>(pad_x)) * sx,
          (ny * static_cast<float>(size) - static_cast<float>(pad_y)) * sy};
}

Letterbox make_letterbox(int src_width, int src_height, int size) {
  Letterbox lb;
  lb.size = size;
  lb.src_width = src_width;
  lb.src_height = src_height;
  const double scale = static_cast<double>(size) / std::max(src_width, src_height);
  lb.scaled_width = std::clamp(static_cast<int>(std::lround(src_width * scale)), 1, size);
  lb.scaled_height = std::clamp(static_cast<int>(std::lround(src_height * scale)), 1, size);
  lb.pad_x = (size - lb.scaled_width) / 2;
  lb.pad_y = (size - lb.scaled_height) / 2;
  // The block mean is cheap (OpenCV's integer-factor INTER_AREA path) where a general INTER_AREA shrink of a
  // 1920 px photo costs 6.5 ms, a third of BlazeFace's whole run. Keep the residual bilinear step at <= 2x.
  lb.block = std::max(1, std::min(src_width / lb.scaled_width, src_height / lb.scaled_height));
  lb.used_width = lb.block * (src_width / lb.block);
  lb.used_height = lb.block * (src_height / lb.block);
  return lb;
}

cv::Mat letterbox_rgb(const cv::Mat& bgr, const Letterbox& lb) {
  CV_Assert(bgr.type() == CV_8UC3);
  cv::Mat square(lb.size, lb.size, CV_8UC3, cv::Scalar::all(0));
  cv::Mat src = bgr;
  if (lb.block > 1) {
    // Block mean first: plain bilinear taps on a 7x shrink would alias badly.
    const cv::Mat used = bgr(cv::Rect(0, 0, lb.used_width, lb.used_height));
    if (lb.block <= kMaxFastBlock) {
      block_mean(used, lb.block, src);
    } else {
      const double f = 1.0 / lb.block;
      cv::resize(used, src, cv::Size(), f, f, cv::INTER_AREA);
    }
  }
  cv::Mat scaled;
  if (src.cols == lb.scaled_width && src.rows == lb.scaled_height) {
    scaled = src;
  } else {
    cv::resize(src, scaled, cv::Size(lb.scaled_width, lb.scaled_height), 0, 0, cv::INTER_LINEAR);
  }
  cv::Mat roi = square(cv::Rect(lb.pad_x, lb.pad_y, lb.scaled_width, lb.scaled_height));
  cv::cvtColor(scaled, roi, cv::COLOR_BGR2RGB);
  return square;
}

Box clip_box(const Box& box, int width, int height) {
  const float x0 = std::clamp(box.x, 0.f, static_cast<float>(width));
  const float y0 = std::clamp(box.y, 0.f, static_cast<float>(height));
  const float x1 = std::clamp(box.right(), 0.f, static_cast<float>(width));
  const float y1 = std::clamp(box.bottom(), 0.f, static_cast<float>(height));
  return {x0, y0, std::max(0.f, x1 - x0), std::max(0.f, y1 - y0)};
}

}  // namespace faceguard::detect
