#pragma once
// Weight-free audio features: a log-mel filterbank sampled once per video
// frame. Frame i is analysed with a Hann window centred on the middle of its
// time span ((i + 0.5) / fps), so features align with video frames exactly as
// wav2vec2 features do after Hallo's interpolation.
#include <ATen/core/Tensor.h>

#include <cstdint>

namespace hallo::audio {

struct LogMelSettings {
  int sample_rate = 16000;
  double fps = 25.0;
  int n_mels = 80;
  double f_min = 0, f_max = 0;  // 0 = Nyquist
  double window_ms = 80;
};

// Slaney-style mel filterbank (librosa default: slaney mel scale, area-normalised): [n_mels, n_fft/2+1].
at::Tensor mel_filterbank(int sample_rate, int64_t n_fft, int n_mels, double f_min, double f_max);
// wave [S] -> [n_frames, n_mels] natural-log mel energies (floor 1e-6).
at::Tensor log_mel_frames(const at::Tensor& wave, int64_t n_frames, const LogMelSettings& s);

}  // namespace hallo::audio
