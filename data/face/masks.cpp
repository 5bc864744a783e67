// Hard and soft face / lip masks (see masks.h for the recipe).
#include "data/face/masks.h"

#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace hallo::face {

namespace {

// One axis of upstream expand_region: scale about the centre, shift back inside, clip.
void expand_axis(float& lo, float& len, float ratio, float limit) {
  const float c = lo + len / 2.0f;
  float a = c - len * ratio / 2.0f, b = c + len * ratio / 2.0f;
  if (a < 0) {
    b -= a;
    a = 0;
  }
  if (b > limit) {
    a -= b - limit;
    b = limit;
  }
  a = std::max(a, 0.0f);
  lo = a;
  len = std::max(0.0f, b - a);
}

// Level-0 soft mask: area-shrink the hard mask, blur, min-max to 0..255. [h0, w0] CV_32F
cv::Mat soft_mask(const cv::Mat& hard, cv::Size level0, int kx, int ky) {
  cv::Mat f, small;
  hard.convertTo(f, CV_32F);
  cv::resize(f, small, level0, 0, 0, cv::INTER_AREA);
  cv::GaussianBlur(small, small, cv::Size(kx, ky), 0, 0, cv::BORDER_REFLECT_101);
  double lo = 0, hi = 0;
  cv::minMaxLoc(small, &lo, &hi);
  // A box covering all or none of the frame blurs to a constant; min-max would
  // map that to 0 (cv::normalize does), which would flip "all face" to "no face".
  if (hi - lo > 1e-3) small = (small - lo) * (255.0 / (hi - lo));
  return small;
}

cv::Mat to_u8(const cv::Mat& f) {
  cv::Mat u;
  f.convertTo(u, CV_8U);  // rounds and saturates
  return u;
}

}  // namespace

cv::Rect2f expand_box(cv::Rect2f box, float ratio, cv::Size size) {
  expand_axis(box.x, box.width, ratio, static_cast<float>(size.width));
  expand_axis(box.y, box.height, ratio, static_cast<float>(size.height));
  return box;
}

cv::Mat box_mask(cv::Rect2f box, cv::Size size) {
  cv::Mat m = cv::Mat::zeros(size, CV_8UC1);
  auto clampi = [](long v, int hi) { return static_cast<int>(std::clamp<long>(v, 0, hi)); };
  const int x0 = clampi(std::lround(box.x), size.width), x1 = clampi(std::lround(box.x + box.width), size.width);
  const int y0 = clampi(std::lround(box.y), size.height), y1 = clampi(std::lround(box.y + box.height), size.height);
  if (x1 > x0 && y1 > y0) m(cv::Rect(x0, y0, x1 - x0, y1 - y0)).setTo(255);
  return m;
}

int scaled_kernel(int ref_kernel, int dim, int ref_dim) {
  int k = static_cast<int>(std::lround(static_cast<double>(ref_kernel) * dim / ref_dim));
  k = std::max(k, 1);
  if (k % 2 == 0) ++k;
  // Wider than twice the mask the kernel only sees reflected copies of it.
  const int cap = std::max(1, 2 * dim - 1);
  return std::min(k, cap);
}

ClipMasks make_masks(cv::Rect2f face, cv::Rect2f lip, cv::Size size, const MaskConfig& cfg) {
  const char* where = "make_masks";
  if (size.width <= 0 || size.height <= 0) fail_at(where, "image size {}x{} is empty", size.width, size.height);
  if (cfg.levels < 1) fail_at(where, "levels must be >= 1, got {}", cfg.levels);
  if (cfg.mask_size_ref <= 0 || cfg.face_blur <= 0 || cfg.lip_blur <= 0)
    fail_at(where, "mask_size_ref / face_blur / lip_blur must be positive ({}, {}, {})", cfg.mask_size_ref,
            cfg.face_blur, cfg.lip_blur);
  if (!(cfg.box_expand > 0) || !(cfg.lip_expand > 0))
    fail_at(where, "box_expand / lip_expand must be positive ({}, {})", cfg.box_expand, cfg.lip_expand);
  const cv::Size level0(size.width / 8, size.height / 8);
  if ((std::min(level0.width, level0.height) >> (cfg.levels - 1)) < 1)
    fail_at(where, "image {}x{} is too small for {} mask levels (needs {} px per side)", size.width,
            size.height, cfg.levels, 8 << (cfg.levels - 1));

  const cv::Rect2f fbox = expand_box(face, cfg.box_expand, size);
  const cv::Rect2f lbox = expand_box(lip, cfg.lip_expand, size);

  ClipMasks out;
  out.face_region = box_mask(fbox, size);
  const cv::Mat lip_hard = box_mask(lbox, size);

  // [h0, w0] CV_32F in 0..255
  const cv::Mat F0 = soft_mask(out.face_region, level0, scaled_kernel(cfg.face_blur, level0.width, cfg.mask_size_ref),
                               scaled_kernel(cfg.face_blur, level0.height, cfg.mask_size_ref));
  const cv::Mat L0 = soft_mask(lip_hard, level0, scaled_kernel(cfg.lip_blur, level0.width, cfg.mask_size_ref),
                               scaled_kernel(cfg.lip_blur, level0.height, cfg.mask_size_ref));

  for (int l = 0; l < cfg.levels; ++l) {
    const cv::Size s(level0.width >> l, level0.height >> l);
    cv::Mat F = F0, L = L0;
    if (l > 0) {
      cv::resize(F0, F, s, 0, 0, cv::INTER_AREA);
      cv::resize(L0, L, s, 0, 0, cv::INTER_AREA);
    }
    cv::Mat face_only = cv::max(F - L, 0.0);
    cv::Mat pose = 255.0 - F;
    out.lip.push_back(to_u8(L));
    out.face.push_back(to_u8(face_only));
    out.pose.push_back(to_u8(pose));
  }
  return out;
}

}  // namespace hallo::face
