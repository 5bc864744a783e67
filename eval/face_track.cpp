#include "eval/face_track.h"

#include <opencv2/imgproc.hpp>

#include <cmath>

#include "core/error.h"

namespace hallo::eval {

FaceTrack track_face(const std::vector<cv::Mat>& frames, face::FaceAnalyzer& faces, int min_side,
                     const std::string& where) {
  const int n = static_cast<int>(frames.size());
  FaceTrack t;
  t.boxes.resize(n);
  t.landmarks.resize(n);
  t.detected.assign(n, false);
  std::vector<cv::Mat> big(n);
  std::vector<double> scale(n, 1.0);
  for (int i = 0; i < n; ++i) {
    const cv::Mat& f = frames[i];
    face::require_rgb(f, where);
    const int side = std::min(f.cols, f.rows);
    if (side < min_side) {
      scale[i] = static_cast<double>(min_side) / side;
      cv::resize(f, big[i], cv::Size(), scale[i], scale[i], cv::INTER_CUBIC);
    } else {
      big[i] = f;
    }
    const auto obs = faces.analyze(big[i]);
    if (!obs.empty()) {
      t.boxes[i] = obs.front().box;
      t.detected[i] = true;
      ++t.hits;
    }
  }
  if (t.hits == 0) fail_at(where, "no face found in any of its {} frames", n);
  for (int i = 0; i < n; ++i) {
    if (t.detected[i]) continue;
    for (int d = 1; d < n; ++d) {
      if (i - d >= 0 && t.detected[i - d]) { t.boxes[i] = t.boxes[i - d]; break; }
      if (i + d < n && t.detected[i + d]) { t.boxes[i] = t.boxes[i + d]; break; }
    }
  }
  for (int i = 0; i < n; ++i) {
    t.landmarks[i] = faces.landmarks_in(big[i], t.boxes[i]).lm;
    // Back to frame pixels (boxes of missed frames came from a frame of the same size).
    const float inv = static_cast<float>(1.0 / scale[i]);
    for (auto& p : t.landmarks[i]) p *= inv;
    t.boxes[i] = cv::Rect2f(t.boxes[i].x * inv, t.boxes[i].y * inv, t.boxes[i].width * inv, t.boxes[i].height * inv);
  }
  return t;
}

std::vector<cv::Rect2f> s3fd_like_boxes(const FaceTrack& t) {
  std::vector<cv::Rect2f> out;
  out.reserve(t.landmarks.size());
  for (const auto& lm : t.landmarks) out.push_back(face::face_box(lm, 0.3f));
  return out;
}

double landmark_distance(const FaceTrack& gen, const FaceTrack& real, double sx, double sy, int64_t n, int first,
                         int last) {
  if (n <= 0 || static_cast<int64_t>(gen.landmarks.size()) < n || static_cast<int64_t>(real.landmarks.size()) < n)
    fail("landmark distance: {} frames requested, tracks have {} and {}", n, gen.landmarks.size(), real.landmarks.size());
  double sum = 0;
  for (int64_t i = 0; i < n; ++i)
    for (int k = first; k < last; ++k) {
      const double dx = gen.landmarks[i][k].x * sx - real.landmarks[i][k].x;
      const double dy = gen.landmarks[i][k].y * sy - real.landmarks[i][k].y;
      sum += std::sqrt(dx * dx + dy * dy);
    }
  return sum / (static_cast<double>(n) * (last - first));
}

}  // namespace hallo::eval
