#pragma once
// MFCC exactly as python_speech_features.mfcc computes it with its defaults (what
// syncnet_python feeds SyncNet): pre-emphasis 0.97, 25 ms frames every 10 ms
// (rectangular window, zero-padded tail), |rfft(512)|^2 / 512, 26 triangular mel
// filters 0..sr/2, log (zeros -> DBL_EPSILON), DCT-II ortho, 13 coefficients,
// lifter 22, coefficient 0 replaced by the log frame energy. All in float64.
#include <ATen/core/Tensor.h>

namespace hallo::eval {

struct MfccOptions {
  int sample_rate = 16000;
  double winlen = 0.025, winstep = 0.01;
  int numcep = 13, nfilt = 26, nfft = 512;
  double lowfreq = 0, highfreq = -1;  // <= 0: sample_rate / 2
  double preemph = 0.97;
  int ceplifter = 22;
  bool append_energy = true;
};

// Intermediates under the golden's hook names (for debugging a port).
struct MfccHooks {
  at::Tensor preemphasis, frames, powspec, filterbanks, fbank, energy, lifter;
};

// signal: 1-D samples on the int16 scale (any dtype; promoted to float64, like numpy
// promotes the int16 array scipy reads). Returns F64 [T, numcep] with
// T = 1 + ceil((S - frame_len) / frame_step) (1 when S <= frame_len).
at::Tensor mfcc(const at::Tensor& signal, const MfccOptions& o = {}, MfccHooks* hooks = nullptr);

// What SyncNet's audio tower slices: mfcc(signal) transposed as float32 [1,1,numcep,T].
at::Tensor syncnet_mfcc(const at::Tensor& signal_i16, int sample_rate = 16000);

}  // namespace hallo::eval
