#pragma once
// cv::Mat -> tensor slices, with the resizing the samplers need.
#include <ATen/ATen.h>
#include <opencv2/core.hpp>

namespace hallo::data {

// Writes an RGB CV_8UC3 image into dst [3,H,W] (float) scaled to [-1,1],
// resizing to dst's H,W when they differ.
void put_image(at::Tensor dst, const cv::Mat& rgb);

// Writes a CV_8UC1 mask into dst [1,h,w] (float) scaled to 0..1, resizing when needed.
void put_mask(at::Tensor dst, const cv::Mat& mask);

// Mask level sizes (rows, cols) for an output of height x width: /8, /16, /32, /64.
cv::Size mask_level_size(int height, int width, int level);

}  // namespace hallo::data
