#include "eval/mfcc.h"

#include <ATen/ATen.h>

#include <cmath>
#include <vector>

#include "core/error.h"

// Port of python_speech_features 0.6.1 (base.mfcc / fbank / get_filterbanks / lifter,
// sigproc.framesig / powspec / preemphasis) in float64, step for step, so that the
// result matches numpy to ~1e-15: every numpy expression is evaluated in the same
// order with the same constants.
namespace hallo::eval {

namespace {

// numpy.finfo(float).eps: what fbank() puts in place of exact zeros before the log.
constexpr double kNumpyEps = 2.220446049250313e-16;

// sigproc.round_half_up (decimal ROUND_HALF_UP on the exact binary value): std::round
// rounds halves away from zero, the same for the positive lengths used here.
int64_t round_half_up(double x) { return static_cast<int64_t>(std::round(x)); }

double hz2mel(double hz) { return 2595 * std::log10(1 + hz / 700.); }
double mel2hz(double mel) { return 700 * (std::pow(10.0, mel / 2595.0) - 1); }

// preemphasis: append(s[0], s[1:] - c * s[:-1]).  [S] -> [S]
at::Tensor preemphasis(const at::Tensor& s, double coeff) {
  at::Tensor out = s.clone();
  const int64_t n = s.size(0);
  if (n > 1) out.slice(0, 1).copy_(s.slice(0, 1) - coeff * s.slice(0, 0, n - 1));
  return out;
}

// framesig with a rectangular window: the signal zero-extended to
// (T-1)*step + len, frame t = padded[t*step : t*step + len].  [S] -> [T, len]
at::Tensor framesig(const at::Tensor& sig, int64_t frame_len, int64_t frame_step) {
  const int64_t slen = sig.size(0);
  const int64_t numframes = slen <= frame_len ? 1 : 1 + (slen - frame_len + frame_step - 1) / frame_step;
  const int64_t padlen = (numframes - 1) * frame_step + frame_len;
  at::Tensor padded = at::zeros({padlen}, sig.options());
  padded.slice(0, 0, slen).copy_(sig);
  return padded.unfold(0, frame_len, frame_step).contiguous();
}

// powspec: 1/nfft * |rfft(frame, nfft)|^2 (frames longer than nfft are truncated, as rfft does).
// [T, len] -> [T, nfft/2+1]
at::Tensor powspec(const at::Tensor& frames, int64_t nfft) {
  const at::Tensor spec = at::fft_rfft(frames, nfft, /*dim=*/-1);
  const at::Tensor mag = at::abs(spec);  // numpy.absolute: hypot(re, im)
  return 1.0 / static_cast<double>(nfft) * at::square(mag);
}

// get_filterbanks: triangles between mel-spaced fft bins floor((nfft+1) * hz / sr).  [nfilt, nfft/2+1]
at::Tensor filterbanks(int nfilt, int nfft, int sample_rate, double lowfreq, double highfreq) {
  if (highfreq > sample_rate / 2.0) fail("mfcc: highfreq {} is greater than samplerate/2", highfreq);
  const double lowmel = hz2mel(lowfreq), highmel = hz2mel(highfreq);
  // numpy.linspace(lowmel, highmel, nfilt+2): start + i*step, the last point exactly highmel.
  const int npts = nfilt + 2;
  const double step = (highmel - lowmel) / (npts - 1);
  std::vector<double> bin(npts);
  for (int i = 0; i < npts; ++i) {
    const double mel = i == npts - 1 ? highmel : i * step + lowmel;
    bin[i] = std::floor((nfft + 1) * mel2hz(mel) / sample_rate);
  }
  at::Tensor fb = at::zeros({nfilt, nfft / 2 + 1}, at::kDouble);
  auto a = fb.accessor<double, 2>();
  for (int j = 0; j < nfilt; ++j) {
    for (int i = static_cast<int>(bin[j]); i < static_cast<int>(bin[j + 1]); ++i)
      a[j][i] = (i - bin[j]) / (bin[j + 1] - bin[j]);
    for (int i = static_cast<int>(bin[j + 1]); i < static_cast<int>(bin[j + 2]); ++i)
      a[j][i] = (bin[j + 2] - i) / (bin[j + 2] - bin[j + 1]);
  }
  return fb;
}

// scipy.fftpack.dct(type=2, norm='ortho') as a matrix: y = x . D, D[n][k] =
// f_k cos(pi k (2n+1) / 2N), f_0 = sqrt(1/N), f_k = sqrt(2/N).  [N, N]
at::Tensor dct2_ortho_matrix(int64_t n) {
  at::Tensor d = at::empty({n, n}, at::kDouble);
  auto a = d.accessor<double, 2>();
  for (int64_t i = 0; i < n; ++i)
    for (int64_t k = 0; k < n; ++k)
      a[i][k] = (k == 0 ? std::sqrt(1.0 / n) : std::sqrt(2.0 / n)) * std::cos(M_PI * k * (2 * i + 1) / (2.0 * n));
  return d;
}

// lifter: 1 + (L/2) sin(pi n / L) per coefficient (L <= 0: none).  [C]
at::Tensor lifter_weights(int64_t ncoeff, int L) {
  at::Tensor w = at::ones({ncoeff}, at::kDouble);
  if (L <= 0) return w;
  auto a = w.accessor<double, 1>();
  for (int64_t n = 0; n < ncoeff; ++n) a[n] = 1 + (L / 2.) * std::sin(M_PI * n / L);
  return w;
}

at::Tensor zeros_to_eps(const at::Tensor& x) { return at::where(x == 0, at::full_like(x, kNumpyEps), x); }

}  // namespace

at::Tensor mfcc(const at::Tensor& signal, const MfccOptions& o, MfccHooks* hooks) {
  if (signal.dim() != 1 || signal.numel() == 0)
    fail("mfcc: expected a non-empty 1-D signal, got shape {}", c10::str(signal.sizes()));
  const double highfreq = o.highfreq > 0 ? o.highfreq : o.sample_rate / 2.0;
  const at::Tensor sig = signal.detach().to(at::kCPU, at::kDouble).contiguous();  // [S]

  const at::Tensor pre = preemphasis(sig, o.preemph);  // [S]
  const at::Tensor frames = framesig(pre, round_half_up(o.winlen * o.sample_rate),
                                     round_half_up(o.winstep * o.sample_rate));  // [T, 400]
  const at::Tensor pspec = powspec(frames, o.nfft);                            // [T, 257]
  const at::Tensor energy = zeros_to_eps(pspec.sum(1));                        // [T]
  const at::Tensor fb = filterbanks(o.nfilt, o.nfft, o.sample_rate, o.lowfreq, highfreq);  // [26, 257]
  const at::Tensor feat = zeros_to_eps(at::matmul(pspec, fb.t()));             // [T, 26]

  const at::Tensor cep = at::matmul(at::log(feat), dct2_ortho_matrix(o.nfilt)).slice(1, 0, o.numcep);  // [T, 13]
  const at::Tensor lifted = cep * lifter_weights(cep.size(1), o.ceplifter);                          // [T, 13]
  at::Tensor out = lifted.clone();
  if (o.append_energy) out.select(1, 0).copy_(at::log(energy));

  if (hooks) {
    hooks->preemphasis = pre;
    hooks->frames = frames;
    hooks->powspec = pspec;
    hooks->filterbanks = fb;
    hooks->fbank = feat;
    hooks->energy = energy;
    hooks->lifter = lifted;
  }
  return out;
}

at::Tensor syncnet_mfcc(const at::Tensor& signal_i16, int sample_rate) {
  MfccOptions o;
  o.sample_rate = sample_rate;
  // SyncNetInstance.evaluate: zip(*mfcc) -> [13, T], then float32 [1, 1, 13, T].
  return mfcc(signal_i16, o).t().to(at::kFloat).contiguous().unsqueeze(0).unsqueeze(0);
}

}  // namespace hallo::eval
