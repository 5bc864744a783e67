// Boxes and scalar measures derived from 68-point landmarks.
#include <algorithm>
#include <cmath>
#include <limits>

#include "data/face/landmarks.h"

namespace hallo::face {

namespace {

cv::Rect2f bbox_of(const Landmarks68& lm, int first, int last) {
  float x0 = std::numeric_limits<float>::max(), y0 = x0;
  float x1 = std::numeric_limits<float>::lowest(), y1 = x1;
  for (int i = first; i <= last; ++i) {
    x0 = std::min(x0, lm[i].x);
    y0 = std::min(y0, lm[i].y);
    x1 = std::max(x1, lm[i].x);
    y1 = std::max(y1, lm[i].y);
  }
  return {x0, y0, x1 - x0, y1 - y0};
}

float dist(cv::Point2f a, cv::Point2f b) { return std::hypot(a.x - b.x, a.y - b.y); }

}  // namespace

cv::Rect2f face_box(const Landmarks68& lm, float forehead_ratio) {
  cv::Rect2f b = bbox_of(lm, 0, 26);  // jaw 0-16 + brows 17-26
  const float extra = std::max(0.0f, forehead_ratio) * b.height;
  b.y -= extra;
  b.height += extra;
  return b;
}

cv::Rect2f lip_box(const Landmarks68& lm) { return bbox_of(lm, 48, 67); }

float mouth_opening(const Landmarks68& lm) {
  const float gap = (dist(lm[61], lm[67]) + dist(lm[62], lm[66]) + dist(lm[63], lm[65])) / 3.0f;
  const float height = dist(lm[27], lm[8]);
  return height > 0 ? gap / height : 0.0f;
}

cv::Rect2f union_box(const std::vector<cv::Rect2f>& boxes) {
  if (boxes.empty()) return {};
  cv::Rect2f u = boxes.front();
  for (const auto& b : boxes) u |= b;
  return u;
}

}  // namespace hallo::face
