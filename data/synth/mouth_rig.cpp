// Mouth opening by a per-column vertical warp. The displacement is defined on
// source pixels (forward: y -> y + d*w(x, y)), which is monotonic in y because
// w only rises at the lip line and falls slowly below the chin; each column is
// then inverted exactly, so the lip line is stretched open without folding.
#include "data/synth/mouth_rig.h"

#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace hallo::synth {

namespace {

float smoothstep(float e0, float e1, float x) {
  const float t = std::clamp((x - e0) / (e1 - e0), 0.0f, 1.0f);
  return t * t * (3 - 2 * t);
}

// Smooth compact bell: 1 at 0, 0 (with zero slope) at |t| >= 1.
float bell(float t) {
  const float u = 1 - t * t;
  return u > 0 ? u * u : 0.0f;
}

cv::Point2f mid(cv::Point2f a, cv::Point2f b) { return (a + b) * 0.5f; }

}  // namespace

MouthRig::MouthRig(const face::Landmarks68& lm, cv::Size size, MouthRigOptions opts) : opts_(opts), size_(size) {
  face_h_ = static_cast<float>(cv::norm(lm[8] - lm[27]));
  if (!(face_h_ > 4)) fail("mouth rig: degenerate landmarks (nose-to-chin {} px)", face_h_);
  // Lip line through the outer corners, inner corners and the midpoints of the
  // inner-lip pairs: where the lips part, also on a smiling (curved) mouth.
  junction_ = {lm[48], lm[60], mid(lm[61], lm[67]), mid(lm[62], lm[66]), mid(lm[63], lm[65]), lm[64], lm[54]};
  std::sort(junction_.begin(), junction_.end(), [](auto a, auto b) { return a.x < b.x; });
  ramp_ = std::max(1.0f, 0.01f * face_h_);
  mouth_cx_ = (lm[48].x + lm[54].x) / 2;
  mouth_hw_ = std::max(2.0f, (lm[54].x - lm[48].x) / 2);
  mouth_y_ = junction_y(mouth_cx_);
  chin_x_ = lm[8].x;
  chin_y_ = std::max(lm[8].y, mouth_y_ + 1);
  jaw_hw_ = std::max(mouth_hw_, (lm[12].x - lm[4].x) / 2);
  // Long enough that the fall-off below the chin never folds the warp:
  // max slope of the fade is 1.5 * gain * face_h / neck_fade < 1.
  neck_fade_ = std::max(0.45f, 2.0f * opts_.gain) * face_h_;
}

float MouthRig::junction_y(float x) const {
  if (x <= junction_.front().x) return junction_.front().y;
  for (size_t i = 1; i < junction_.size(); ++i) {
    const auto a = junction_[i - 1], b = junction_[i];
    if (x <= b.x) return b.x > a.x ? a.y + (b.y - a.y) * (x - a.x) / (b.x - a.x) : b.y;
  }
  return junction_.back().y;
}

float MouthRig::weight(float x, float y) const {
  const float jy = junction_y(x);
  const float v = smoothstep(jy - ramp_, jy + ramp_, y) * (1 - smoothstep(chin_y_, chin_y_ + neck_fade_, y));
  if (v <= 0) return 0;
  // Sideways reach widens from the mouth (corners move ~1/4 as much as the
  // centre) to the jaw (the whole chin drops).
  const float s = std::clamp((y - mouth_y_) / (chin_y_ - mouth_y_), 0.0f, 1.0f);
  const float cx = mouth_cx_ + (chin_x_ - mouth_cx_) * s;
  const float sx = 1.4f * mouth_hw_ + (1.1f * jaw_hw_ - 1.4f * mouth_hw_) * s;
  return v * bell((x - cx) / sx);
}

cv::Mat MouthRig::render(const cv::Mat& rgb, float opening) const {
  face::require_rgb(rgb, "mouth rig");
  if (rgb.size() != size_) fail("mouth rig: image is {}x{}, rig was built for {}x{}", rgb.cols, rgb.rows, size_.width, size_.height);
  const float d = drop_px(std::clamp(opening, 0.0f, 1.0f));
  if (d < 0.05f) return rgb.clone();
  const int W = size_.width, H = size_.height;
  cv::Mat map_x(H, W, CV_32F), map_y(H, W, CV_32F);
  std::vector<float> f(H);
  for (int x = 0; x < W; ++x) {
    // f: where source row j lands; forced non-decreasing against rounding.
    for (int j = 0; j < H; ++j) {
      f[j] = j + d * weight(static_cast<float>(x), static_cast<float>(j));
      if (j > 0) f[j] = std::max(f[j], f[j - 1]);
    }
    int j = 0;
    for (int y = 0; y < H; ++y) {
      while (j + 1 < H && f[j + 1] <= y) ++j;
      float src;
      if (y < f[0]) src = static_cast<float>(y);
      else if (j + 1 >= H) src = y - (f[H - 1] - (H - 1));
      else src = j + (y - f[j]) / std::max(f[j + 1] - f[j], 1e-6f);
      map_x.at<float>(y, x) = static_cast<float>(x);
      map_y.at<float>(y, x) = src;
    }
  }
  cv::Mat out;
  cv::remap(rgb, out, map_x, map_y, cv::INTER_LINEAR, cv::BORDER_REPLICATE);

  // The stretched lip line spans [jy, jy + d*w] in each column; darken a
  // lens inside it (tapering to the mouth corners) as the open mouth.
  const int n = 24;
  const float x0 = junction_.front().x, x1 = junction_.back().x;
  std::vector<cv::Point> poly;
  const int sub = 4;  // fixed-point bits: sub-pixel polygon edges
  for (int k = 0; k <= n; ++k) {
    const float x = x0 + (x1 - x0) * k / n;
    poly.emplace_back(cv::Point(std::lround(x * (1 << sub)), std::lround(junction_y(x) * (1 << sub))));
  }
  for (int k = n; k >= 0; --k) {
    const float x = x0 + (x1 - x0) * k / n;
    const float u = 2.0f * k / n - 1;  // -1..1 across the mouth
    const float jy = junction_y(x);
    const float gap = d * weight(x, jy + 2 * ramp_) * std::sqrt(std::max(0.0f, 1 - u * u));
    poly.emplace_back(cv::Point(std::lround(x * (1 << sub)), std::lround((jy + gap) * (1 << sub))));
  }
  cv::Mat mask(H, W, CV_32F, cv::Scalar(0));
  cv::fillPoly(mask, std::vector<std::vector<cv::Point>>{poly}, cv::Scalar(1.0), cv::LINE_AA, sub);
  const double sigma = std::max(0.6, 0.006 * face_h_);
  cv::GaussianBlur(mask, mask, cv::Size(0, 0), sigma);
  for (int y = 0; y < H; ++y) {
    const float* m = mask.ptr<float>(y);
    auto* px = out.ptr<cv::Vec3b>(y);
    for (int x = 0; x < W; ++x) {
      const float a = opts_.darkness * m[x];
      if (a <= 0) continue;
      for (int c = 0; c < 3; ++c)
        px[x][c] = cv::saturate_cast<uint8_t>(px[x][c] * (1 - a) + opts_.mouth_rgb[c] * a);
    }
  }
  return out;
}

}  // namespace hallo::synth
