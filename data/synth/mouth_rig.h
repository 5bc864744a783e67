#pragma once
// Opens the mouth of a still portrait: a smooth vertical displacement field
// moves the lower lip and jaw down (upper face exactly fixed) and the gap
// between the lips is filled with a dark mouth colour, so a landmark detector
// run on the rendered frame really sees an open mouth.
#include <opencv2/core.hpp>

#include "data/face/landmarks.h"

namespace hallo::synth {

struct MouthRigOptions {
  float gain = 0.2f;                     // lower-lip drop at opening 1, fraction of nose-bridge-to-chin (27-8)
  cv::Vec3f mouth_rgb{45.f, 14.f, 18.f}; // colour of the open mouth's inside
  float darkness = 0.92f;                // blend weight of that colour at the gap's centre
};

class MouthRig {
 public:
  // `lm`: landmarks on the image that render() will receive, of size `size`.
  MouthRig(const face::Landmarks68& lm, cv::Size size, MouthRigOptions opts = {});

  // Lower-lip drop in pixels at the mouth's centre for `opening` in 0..1.
  float drop_px(float opening) const { return opening * opts_.gain * face_h_; }
  // Displacement weight (0..1) of the source pixel (x, y): 0 above the lip
  // line, 1 for the lower lip and chin, decaying smoothly sideways and below the chin.
  float weight(float x, float y) const;
  // `rgb` (CV_8UC3, the rig's size) with the mouth opened by `opening`.
  cv::Mat render(const cv::Mat& rgb, float opening) const;

 private:
  float junction_y(float x) const;   // lip line (upper/lower lip contact) at column x

  MouthRigOptions opts_;
  cv::Size size_;
  std::vector<cv::Point2f> junction_;  // knots of the lip line, sorted by x
  float face_h_ = 0, ramp_ = 1;        // nose-to-chin length; half-width of the lip-line step
  float mouth_cx_ = 0, mouth_hw_ = 0, mouth_y_ = 0;
  float chin_x_ = 0, chin_y_ = 0, jaw_hw_ = 0, neck_fade_ = 1;
};

}  // namespace hallo::synth
