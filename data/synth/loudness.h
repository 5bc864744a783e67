#pragma once
// Audio loudness per video frame, and the mouth opening derived from it.
#include <vector>

namespace hallo::synth {

// RMS of each frame's audio span [i*rate/fps, (i+1)*rate/fps); samples past the
// end count as silence. [frames]
std::vector<float> frame_rms(const std::vector<float>& mono, int sample_rate, double fps, int frames);

struct MouthCurveOptions {
  float ref_percentile = 0.95f;  // loudness that counts as a fully open mouth...
  float ref_floor = 0.02f;       // ...but never below this RMS, so near-silence stays closed
  float gate = 0.05f;            // normalised loudness below this closes the mouth
};

// Smooths RMS with a centred [1/4, 1/2, 1/4] kernel (a mouth cannot snap open
// within one frame), normalises by the reference loudness and clamps to 0..1.
std::vector<float> mouth_curve(const std::vector<float>& rms, const MouthCurveOptions& opts = {});

// Pearson correlation; 0 when either side is constant. Used by the tests and
// to report how well a rendered clip follows its audio.
double correlation(const std::vector<float>& a, const std::vector<float>& b);

}  // namespace hallo::synth
