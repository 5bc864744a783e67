#include "model/audio/logmel.h"

#include <ATen/ATen.h>

#include <cmath>

#include "core/error.h"

namespace hallo::audio {

namespace {
// Slaney mel scale: linear below 1 kHz, logarithmic above (librosa htk=False).
double hz_to_mel(double hz) {
  const double f_sp = 200.0 / 3, min_log_hz = 1000.0, min_log_mel = min_log_hz / f_sp, logstep = std::log(6.4) / 27.0;
  return hz < min_log_hz ? hz / f_sp : min_log_mel + std::log(hz / min_log_hz) / logstep;
}
double mel_to_hz(double mel) {
  const double f_sp = 200.0 / 3, min_log_hz = 1000.0, min_log_mel = min_log_hz / f_sp, logstep = std::log(6.4) / 27.0;
  return mel < min_log_mel ? mel * f_sp : min_log_hz * std::exp(logstep * (mel - min_log_mel));
}
}  // namespace

at::Tensor mel_filterbank(int sample_rate, int64_t n_fft, int n_mels, double f_min, double f_max) {
  if (f_max <= 0) f_max = sample_rate / 2.0;
  if (n_mels <= 0 || n_fft <= 0 || f_min < 0 || f_max <= f_min || f_max > sample_rate / 2.0 + 1e-9)
    fail_at("logmel", "bad filterbank settings: n_mels {}, n_fft {}, f_min {}, f_max {} at {} Hz", n_mels, n_fft,
            f_min, f_max, sample_rate);
  const int64_t bins = n_fft / 2 + 1;
  std::vector<double> edges(n_mels + 2);
  const double m0 = hz_to_mel(f_min), m1 = hz_to_mel(f_max);
  for (int i = 0; i < n_mels + 2; ++i) edges[i] = mel_to_hz(m0 + (m1 - m0) * i / (n_mels + 1));
  auto fb = at::zeros({n_mels, bins}, at::kFloat);
  auto a = fb.accessor<float, 2>();
  for (int m = 0; m < n_mels; ++m) {
    const double lo = edges[m], c = edges[m + 1], hi = edges[m + 2];
    const double enorm = 2.0 / (hi - lo);  // area normalisation keeps energy comparable across bands
    for (int64_t k = 0; k < bins; ++k) {
      const double f = static_cast<double>(k) * sample_rate / n_fft;
      const double w = std::max(0.0, std::min((f - lo) / (c - lo), (hi - f) / (hi - c)));
      a[m][k] = static_cast<float>(w * enorm);
    }
  }
  return fb;
}

at::Tensor log_mel_frames(const at::Tensor& wave, int64_t n_frames, const LogMelSettings& s) {
  if (wave.dim() != 1) fail_at("logmel", "expected a mono waveform [S], got shape {}", c10::str(wave.sizes()));
  if (n_frames <= 0) fail_at("logmel", "n_frames must be positive, got {}", n_frames);
  const double hop = s.sample_rate / s.fps;
  const int64_t win = std::max<int64_t>(16, std::llround(s.window_ms * 1e-3 * s.sample_rate));
  int64_t n_fft = 1;
  while (n_fft < win) n_fft *= 2;
  // Frame i's window starts at round((i + 0.5) * hop) - win / 2; pad so every window is inside.
  const int64_t pad = win;
  auto x = at::constant_pad_nd(wave.to(at::kFloat), {pad, pad + static_cast<int64_t>(std::ceil(hop)) * 2});
  std::vector<int64_t> starts(n_frames);
  for (int64_t i = 0; i < n_frames; ++i) starts[i] = pad + std::llround((i + 0.5) * hop) - win / 2;
  auto idx = at::arange(win, at::kLong).unsqueeze(0) + at::tensor(starts, at::kLong).unsqueeze(1);  // [N, win]
  idx = idx.clamp(0, x.size(0) - 1);
  auto frames = x.index_select(0, idx.reshape(-1)).view({n_frames, win});                        // [N, win]
  frames = frames * at::hann_window(win, /*periodic=*/false, at::kFloat);
  auto spec = at::fft_rfft(frames, n_fft, /*dim=*/-1).abs().pow(2);                                // [N, n_fft/2+1]
  auto fb = mel_filterbank(s.sample_rate, n_fft, s.n_mels, s.f_min, s.f_max);                      // [M, bins]
  return at::log(at::matmul(spec, fb.t()).clamp_min(1e-6));                                        // [N, M]
}

}  // namespace hallo::audio
