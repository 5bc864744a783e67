// Audio loudness per video frame: the envelope the lip-audio and voice rules use.
#include <cmath>

#include "core/error.h"
#include "data/clean/clean.h"

namespace hallo::clean {

std::vector<float> audio_rms_per_frame(const std::vector<float>& audio, int sample_rate, double fps,
                                       size_t n_frames) {
  if (sample_rate <= 0) fail_at("audio_rms_per_frame", "sample rate must be > 0, got {}", sample_rate);
  if (!(fps > 0)) fail_at("audio_rms_per_frame", "fps must be > 0, got {}", fps);
  const double spf = sample_rate / fps;  // samples per video frame, maybe fractional (44.1k / 30)
  std::vector<float> rms(n_frames, 0.f);
  for (size_t i = 0; i < n_frames; ++i) {
    // Rounded edges so consecutive frames tile the samples without gaps or overlap.
    const auto lo = static_cast<size_t>(std::llround(i * spf));
    const auto hi = static_cast<size_t>(std::llround((i + 1) * spf));
    if (hi <= lo) continue;
    double sum = 0;
    for (size_t s = lo; s < hi && s < audio.size(); ++s) sum += double(audio[s]) * audio[s];
    // Missing samples past the end count as zeros: the divisor is the full span.
    rms[i] = static_cast<float>(std::sqrt(sum / double(hi - lo)));
  }
  return rms;
}

int audio_frame_count(size_t n_samples, int sample_rate, double fps) {
  if (sample_rate <= 0) fail_at("audio_frame_count", "sample rate must be > 0, got {}", sample_rate);
  if (!(fps > 0)) fail_at("audio_frame_count", "fps must be > 0, got {}", fps);
  return static_cast<int>(std::llround(double(n_samples) * fps / sample_rate));
}

}  // namespace hallo::clean
