// Portrait loading: face-centred square crop so the face fills the frame the
// way Hallo's training clips do (the stock portrait's face is ~1/5 of it).
#include "data/synth/portrait.h"

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "core/error.h"

#ifndef HALLO_DEFAULT_ASSETS_DIR
#define HALLO_DEFAULT_ASSETS_DIR "assets"
#endif

namespace hallo::synth {

namespace fs = std::filesystem;

fs::path default_portrait_path() {
  const char* env = std::getenv("HALLO_ASSETS_DIR");
  const fs::path dir = (env && *env) ? fs::path(env) : fs::path(HALLO_DEFAULT_ASSETS_DIR);
  return dir / "astronaut.png";
}

namespace {

// Largest face; the analyzer sorts by box size.
const face::FaceObs& largest_face(const std::vector<face::FaceObs>& faces, const fs::path& path,
                                  const char* stage) {
  if (faces.empty()) fail_at(path.string(), "no face detected in the portrait ({})", stage);
  return faces.front();
}

cv::Rect square_crop(const cv::Rect2f& face, cv::Size image, double crop_scale) {
  const int limit = std::min(image.width, image.height);
  int side = limit;
  float cx = image.width / 2.0f, cy = image.height / 2.0f;
  if (crop_scale > 0) {
    side = std::min(limit, static_cast<int>(std::lround(crop_scale * std::max(face.width, face.height))));
    cx = face.x + face.width / 2;
    cy = face.y + face.height / 2;
  }
  // Shift (not shrink) the square to stay inside the image.
  const int x = std::clamp(static_cast<int>(std::lround(cx - side / 2.0f)), 0, image.width - side);
  const int y = std::clamp(static_cast<int>(std::lround(cy - side / 2.0f)), 0, image.height - side);
  return {x, y, side, side};
}

}  // namespace

Portrait load_portrait(const fs::path& path, int size, double crop_scale, face::FaceAnalyzer& analyzer) {
  if (size < 64) fail_at(path.string(), "output size {} is too small (need >= 64 px)", size);
  std::error_code ec;
  if (!fs::is_regular_file(path, ec))
    fail_at(path.string(), "portrait not found; run scripts/install-deps.sh, which extracts it from python3-skimage");
  const cv::Mat bgr = cv::imread(path.string(), cv::IMREAD_COLOR);
  if (bgr.empty()) fail_at(path.string(), "not a readable image");
  cv::Mat rgb;
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);

  Portrait p;
  p.source = path;
  const auto& f0 = largest_face(analyzer.analyze(rgb), path, "source image");
  p.crop = square_crop(face::face_box(f0.lm), rgb.size(), crop_scale);
  const int interp = p.crop.width < size ? cv::INTER_CUBIC : cv::INTER_AREA;
  cv::resize(rgb(p.crop), p.rgb, cv::Size(size, size), 0, 0, interp);
  // Detect again at the output size: proves the face is detectable there and
  // gives the landmarks the detector itself will report on plain frames.
  p.lm = largest_face(analyzer.analyze(p.rgb), path, "after cropping and resizing").lm;
  return p;
}

}  // namespace hallo::synth
