// Input preparation shared by the detectors: validating the caller's image, face-api's pad-and-resize
// (bit-for-bit with tf.image.resizeBilinear as face-api calls it) and BlazeFace's centred letterbox.
#pragma once

#include <opencv2/core.hpp>

#include "faceguard/result.hpp"
#include "faceguard/types.hpp"

namespace faceguard::detect {

// The caller's image as 8-bit 3-channel BGR. Empty or non-8-bit input -> kInvalidArgument; 1-channel
// (grey) and 4-channel (BGRA) input is converted. A 3-channel input is returned without copying.
Result<cv::Mat> to_bgr8(const cv::Mat& image);

// face-api's `computeReshapedDimensions`: the size the image takes inside the input square.
// JavaScript's Math.round (half up) is kept because face-api divides by these rounded sizes.
struct ReshapedDims {
  int width = 0;
  int height = 0;
};
ReshapedDims face_api_reshaped_dims(int width, int height, int input_size);

// face-api's NetInput.toBatchTensor(size, isCenterInputs=false) for a tensor input: the RGB image is padded
// with zeros on the right or bottom to a max(w,h) square, then resized with tf.image.resizeBilinear
// (alignCorners=false, halfPixelCenters=false: source = dst * in/out, no half-pixel shift, which differs from
// cv::resize). Returns raw RGB values 0..255 as a float NCHW blob [1,3,size,size]. Same values as
// model::resize_bilinear_tf(model::pad_to_square_tf(rgb, false)), without materialising the padded square.
cv::Mat face_api_input_blob(const cv::Mat& bgr, int size);

// BlazeFace's aspect-preserving letterbox: the image is scaled to fit a size x size square and centred.
// A large shrink runs in two steps: a k x k block mean (OpenCV's fast integer INTER_AREA) over the top-left
// k*floor(w/k) x k*floor(h/k) pixels, then bilinear to the final size. Up to k-1 pixels at the right and
// bottom edges are dropped; the mapping back accounts for that exactly (used_width/used_height).
struct Letterbox {
  int size = 0;
  int scaled_width = 0;
  int scaled_height = 0;
  int pad_x = 0;  // left padding in square pixels
  int pad_y = 0;  // top padding in square pixels
  int src_width = 0;
  int src_height = 0;
  int block = 1;        // k of the block-mean pre-shrink (1: none)
  int used_width = 0;   // source pixels the scaled image covers: block * floor(src_width / block)
  int used_height = 0;

  // (nx, ny) in [0,1] of the square -> source pixels.
  Point2f to_source(float nx, float ny) const;
};
Letterbox make_letterbox(int src_width, int src_height, int size);
// The letterboxed image as RGB 8-bit (size x size, black padding).
cv::Mat letterbox_rgb(const cv::Mat& bgr, const Letterbox& lb);

// Box clipped to [0,w] x [0,h]; width/height 0 when it lies outside.
Box clip_box(const Box& box, int width, int height);

}  // namespace faceguard::detect
