#pragma once
// Small, slow, random-phase head motion: each of translation, rotation and
// scale is a sum of two sinusoids (0.15-0.6 Hz) bounded by its maximum.
#include <opencv2/core.hpp>

#include <cstdint>

namespace hallo::synth {

struct HeadMotionOptions {
  double max_shift_frac = 0.008;  // translation bound as a fraction of the frame side (4 px at 512)
  double max_rot_deg = 2.0;
  double max_scale = 0.02;        // scale stays in [1 - max_scale, 1 + max_scale]
};

struct HeadTransform {
  double tx = 0, ty = 0;          // pixels
  double rot_deg = 0;             // counter-clockwise as seen in the image (OpenCV's convention)
  double scale = 1;
};

class HeadMotion {
 public:
  HeadMotion() = default;  // no motion
  // `center`: the point rotation and scale are about (the face centre).
  HeadMotion(uint64_t seed, cv::Size frame, cv::Point2f center, HeadMotionOptions opts = {});
  HeadTransform at(double t_seconds) const;
  // 2x3 source->output matrix for cv::warpAffine.
  cv::Matx23d matrix(const HeadTransform& h) const;
  // `rgb` moved by `h` (edges reflected, so no black borders).
  cv::Mat apply(const cv::Mat& rgb, const HeadTransform& h) const;
  cv::Point2f center() const { return center_; }

 private:
  struct Wave {
    double amp = 0, f1 = 0, f2 = 0, p1 = 0, p2 = 0;
    double at(double t) const;
  };
  Wave tx_, ty_, rot_, scale_;
  cv::Point2f center_{0, 0};
};

}  // namespace hallo::synth
