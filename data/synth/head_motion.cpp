// Random-phase sinusoidal head motion.
#include "data/synth/head_motion.h"

#include <opencv2/imgproc.hpp>

#include <cmath>

#include "data/synth/rng.h"

namespace hallo::synth {

namespace {
constexpr double kTwoPi = 6.283185307179586;
}

double HeadMotion::Wave::at(double t) const {
  // Weights sum to 1, so |value| <= amp.
  return amp * (0.6 * std::sin(kTwoPi * f1 * t + p1) + 0.4 * std::sin(kTwoPi * f2 * t + p2));
}

HeadMotion::HeadMotion(uint64_t seed, cv::Size frame, cv::Point2f center, HeadMotionOptions opts)
    : center_(center) {
  Rng rng(seed);
  auto wave = [&](double max) {
    Wave w;
    w.amp = max * rng.uniform(0.5, 1.0);
    w.f1 = rng.uniform(0.15, 0.4);
    w.f2 = rng.uniform(0.3, 0.6);
    w.p1 = rng.uniform(0, kTwoPi);
    w.p2 = rng.uniform(0, kTwoPi);
    return w;
  };
  const double side = std::max(frame.width, frame.height);
  tx_ = wave(opts.max_shift_frac * side);
  ty_ = wave(opts.max_shift_frac * side);
  rot_ = wave(opts.max_rot_deg);
  scale_ = wave(opts.max_scale);
}

HeadTransform HeadMotion::at(double t) const {
  return {tx_.at(t), ty_.at(t), rot_.at(t), 1.0 + scale_.at(t)};
}

cv::Matx23d HeadMotion::matrix(const HeadTransform& h) const {
  cv::Mat m = cv::getRotationMatrix2D(center_, h.rot_deg, h.scale);  // CV_64F 2x3
  cv::Matx23d out(m.ptr<double>());
  out(0, 2) += h.tx;
  out(1, 2) += h.ty;
  return out;
}

cv::Mat HeadMotion::apply(const cv::Mat& rgb, const HeadTransform& h) const {
  cv::Mat out;
  cv::warpAffine(rgb, out, cv::Mat(matrix(h)), rgb.size(), cv::INTER_LINEAR, cv::BORDER_REFLECT_101);
  return out;
}

}  // namespace hallo::synth
