#include "data/dataset/image_tensors.h"

#include <opencv2/imgproc.hpp>

namespace hallo::data {

namespace {

// Area averaging when shrinking (no aliasing), bilinear when enlarging.
cv::Mat fit(const cv::Mat& m, int h, int w) {
  if (m.rows == h && m.cols == w) return m.isContinuous() ? m : m.clone();
  cv::Mat out;
  const bool shrink = h < m.rows && w < m.cols;
  cv::resize(m, out, cv::Size(w, h), 0, 0, shrink ? cv::INTER_AREA : cv::INTER_LINEAR);
  return out;
}

}  // namespace

void put_image(at::Tensor dst, const cv::Mat& rgb) {
  const int h = static_cast<int>(dst.size(1)), w = static_cast<int>(dst.size(2));
  cv::Mat m = fit(rgb, h, w);
  auto hwc = at::from_blob(m.data, {h, w, 3}, at::kByte);  // [H,W,3] uint8
  dst.copy_(hwc.permute({2, 0, 1}).to(at::kFloat).div_(127.5).sub_(1.0));
}

void put_mask(at::Tensor dst, const cv::Mat& mask) {
  const int h = static_cast<int>(dst.size(1)), w = static_cast<int>(dst.size(2));
  cv::Mat m = fit(mask, h, w);
  auto hw = at::from_blob(m.data, {1, h, w}, at::kByte);  // [1,h,w] uint8
  dst.copy_(hw.to(at::kFloat).div_(255.0));
}

cv::Size mask_level_size(int height, int width, int level) {
  const int s = 8 << level;
  return cv::Size(width / s, height / s);
}

}  // namespace hallo::data
