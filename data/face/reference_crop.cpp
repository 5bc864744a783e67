#include "data/face/reference_crop.h"

#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>

#include "data/face/embedding.h"

namespace hallo::face {

cv::Rect crop_around(const cv::Rect2f& face, float crop_scale, int w, int h, int out_w, int out_h) {
  const double aspect = static_cast<double>(out_w) / out_h;  // crop w / h
  double ch = std::max(face.width, face.height) * crop_scale, cw = ch * aspect;
  const double fit = std::min({1.0, w / cw, h / ch});  // shrink to fit, keeping the aspect
  cw *= fit, ch *= fit;
  const int iw = std::max(8, static_cast<int>(std::lround(cw))), ih = std::max(8, static_cast<int>(std::lround(ch)));
  const float cx = face.x + face.width / 2, cy = face.y + face.height / 2;
  int x = static_cast<int>(std::lround(cx - iw / 2.0f)), y = static_cast<int>(std::lround(cy - ih / 2.0f));
  x = std::clamp(x, 0, std::max(0, w - iw));
  y = std::clamp(y, 0, std::max(0, h - ih));
  return {x, y, std::min(iw, w), std::min(ih, h)};
}

ReferenceCrop crop_reference(const cv::Mat& rgb, FaceAnalyzer& analyzer, FaceEmbedder* embedder,
                             const ReferenceCropOptions& o) {
  require_rgb(rgb, "reference image");
  ReferenceCrop r;
  const cv::Size out(o.width, o.height);
  const auto found = analyzer.analyze(rgb);
  if (found.empty()) {
    r.crop = cv::Rect(0, 0, rgb.cols, rgb.rows);
    cv::resize(rgb, r.image, out, 0, 0, cv::INTER_AREA);
    const cv::Rect2f whole(0, 0, static_cast<float>(o.width), static_cast<float>(o.height));
    const cv::Rect2f lip(o.width * 0.3f, o.height * 0.6f, o.width * 0.4f, o.height * 0.2f);
    r.masks = make_masks(whole, lip, out, o.masks);
    return r;
  }
  r.face_found = true;
  const auto& lm = found[0].lm;
  r.crop = crop_around(face_box(lm), o.crop_scale, rgb.cols, rgb.rows, o.width, o.height);
  cv::resize(rgb(r.crop), r.image, out, 0, 0, cv::INTER_AREA);
  const float kx = static_cast<float>(o.width) / r.crop.width, ky = static_cast<float>(o.height) / r.crop.height;
  for (size_t i = 0; i < lm.size(); ++i)
    r.landmarks[i] = cv::Point2f((lm[i].x - r.crop.x) * kx, (lm[i].y - r.crop.y) * ky);
  r.masks = make_masks(face_box(r.landmarks), lip_box(r.landmarks), out, o.masks);
  if (embedder) r.face_emb = embedder->embed(r.image, r.landmarks);
  return r;
}

}  // namespace hallo::face
