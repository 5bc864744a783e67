// Per-frame loudness and the mouth-opening curve it drives.
#include "data/synth/loudness.h"

#include "data/clean/clean.h"
#include "data/clean/signal_stats.h"

#include <algorithm>
#include <cmath>

namespace hallo::synth {

std::vector<float> frame_rms(const std::vector<float>& mono, int sample_rate, double fps, int frames) {
  // The same per-frame loudness the cleaning rules measure, so the synthetic mouth
  // follows exactly what `hallo prepare` will correlate it with.
  return clean::audio_rms_per_frame(mono, sample_rate, fps, static_cast<size_t>(std::max(frames, 0)));
}

std::vector<float> mouth_curve(const std::vector<float>& rms, const MouthCurveOptions& opts) {
  const size_t n = rms.size();
  std::vector<float> sm(n, 0.0f);
  for (size_t i = 0; i < n; ++i) {
    const float prev = rms[i > 0 ? i - 1 : i], next = rms[i + 1 < n ? i + 1 : i];
    sm[i] = 0.25f * prev + 0.5f * rms[i] + 0.25f * next;
  }
  float ref = opts.ref_floor;
  if (n > 0) {
    std::vector<float> sorted = sm;
    const size_t k = std::min(n - 1, static_cast<size_t>(opts.ref_percentile * static_cast<float>(n - 1)));
    std::nth_element(sorted.begin(), sorted.begin() + static_cast<std::ptrdiff_t>(k), sorted.end());
    ref = std::max(ref, sorted[k]);
  }
  for (float& v : sm) {
    const float x = (v / ref - opts.gate) / (1.0f - opts.gate);
    v = std::clamp(x, 0.0f, 1.0f);
  }
  return sm;
}

double correlation(const std::vector<float>& a, const std::vector<float>& b) {
  // The cleaning rules' Pearson (with its constant-signal floor), so the synthetic
  // ground truth is scored exactly as `hallo prepare` scores lip-audio sync.
  const size_t n = std::min(a.size(), b.size());
  return clean::detail::pearson(a.data(), b.data(), static_cast<int>(n));
}

}  // namespace hallo::synth
